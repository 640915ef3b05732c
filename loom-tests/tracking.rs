//! Family: client-side caching (`tracking`). A tracking client's read registers its keys in the
//! tracking table while holding the keys' stripes exclusively, BEFORE it reads them; a write of the
//! key holds its stripe (exclusive for a string, shared plus the cell lock for a collection) while
//! it changes the value and while its record reaches the invalidation hook (`touch_record`, whose
//! first step is the relaxed load of `Tracking::armed`). So the read either comes after the write
//! (it reads the new value) or the write finds the registration and pushes an invalidation. The
//! models run the real handlers: a RESP3 client with `CLIENT TRACKING ON` reads while another
//! client writes the same key, and at the end a reply that differs from the key's value must have
//! its invalidation waiting in the reader's outbox (the connection writes it after the reply).
//!
//! The reader's connection is played as `connection::run_command` plays it: the outbox is held
//! (`Subscriber::hold_late`) while the read runs, what is not held is sent before the reply, and
//! the rest after it; the invalidation must come AFTER the reply, or the client would apply it and
//! then cache the stale value. The second broken variant does not hold (sends everything that
//! arrived while the read ran before its reply, as pub/sub messages are): loom finds the write
//! that lands between the read and the reply.
//!
//! The broken variant registers the keys after the read (`Fault::TrackRegisterAfterRead`): a write
//! between the read and the registration finds nobody to invalidate, and the reader keeps a stale
//! value. (Registering without the stripes is not caught here: the loom stand-in for the flurry
//! map is a mutex, which orders the read and the write by itself; the stripe is what orders them
//! for the lock-free map, whose reads and writes alone leave the store-buffering reordering open.)

use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use flurrydb::aof::FsyncPolicy;
use flurrydb::cmd::{Client, Ctx, execute};
use flurrydb::resp::Frame;
use flurrydb::state::Shared;
use flurrydb::sync::fault::Fault;

use crate::harness::{builder, inject, server};

const NOW: u64 = 1_000;

fn cmd(shared: &Shared, client: &mut Client, args: &[&str]) -> Frame {
    let argv: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
    execute(&mut Ctx::new(shared, client, NOW), &argv)
}

fn client(shared: &Shared, name: &str) -> Client {
    Client::new(shared.clients.register(name.into(), String::new()))
}

/// One race: `setup` (one plain client), then a RESP3 tracking client runs `read` while another
/// client runs `write`; `key` is what the write invalidates.
struct Race {
    setup: &'static [&'static [&'static str]],
    read: &'static [&'static str],
    write: &'static [&'static str],
    key: &'static str,
}

/// The invalidation push for `key`, as a RESP3 tracking client receives it.
fn invalidation(key: &str) -> Vec<u8> {
    format!(">2\r\n$10\r\ninvalidate\r\n*1\r\n${}\r\n{key}\r\n", key.len()).into_bytes()
}

impl Race {
    /// Runs the race under loom; also checks that both outcomes (a read before the write, left
    /// with an invalidation, and a read of the new value) occur among the executions.
    fn model(&'static self) {
        self.model_with(true)
    }

    /// `hold`: whether the reader's outbox keeps what arrives during the read for after the reply.
    fn model_with(&'static self, hold: bool) {
        let stale_invalidated = StdArc::new(AtomicUsize::new(0));
        let fresh = StdArc::new(AtomicUsize::new(0));
        let (si, fr) = (stale_invalidated.clone(), fresh.clone());
        builder(2).check(move || {
            let shared = server(FsyncPolicy::No);
            let mut admin = client(&shared, "setup");
            for argv in self.setup {
                cmd(&shared, &mut admin, argv);
            }
            let mut reader = client(&shared, "reader");
            assert!(matches!(cmd(&shared, &mut reader, &["HELLO", "3"]), Frame::Map(_)));
            assert_eq!(cmd(&shared, &mut reader, &["CLIENT", "TRACKING", "ON"]), Frame::ok());
            let s2 = shared.clone();
            let write = self.write;
            let writer = loom::thread::spawn(move || {
                let mut w = client(&s2, "writer");
                cmd(&s2, &mut w, write)
            });
            if hold {
                reader.subs.sub.hold_late();
            }
            let cached = cmd(&shared, &mut reader, self.read);
            // Sent before the reply: what arrived while the read ran, but not what is held.
            let mut before = BytesMut::new();
            reader.subs.sub.drain_into(&mut before);
            reader.subs.sub.release_late();
            writer.join().unwrap();
            // What the key holds now, read by a client that does not track.
            let now = cmd(&shared, &mut admin, self.read);
            // After the reply.
            let mut pushes = BytesMut::new();
            reader.subs.sub.drain_into(&mut pushes);
            let invalidated = pushes.windows(invalidation(self.key).len()).any(|w| w == invalidation(self.key));
            assert!(
                cached == now || invalidated,
                "stale value without an invalidation after the reply: the reader cached {cached:?}, the key \
                 holds {now:?}, pushes before the reply {before:?}, after {pushes:?}"
            );
            if cached == now {
                fr.fetch_add(1, Ordering::Relaxed);
            } else {
                si.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert!(stale_invalidated.load(Ordering::Relaxed) > 0, "no execution read before the write");
        assert!(fresh.load(Ordering::Relaxed) > 0, "no execution read after the write");
    }
}

/// A string: GET under tracking racing SET (the write holds the stripe exclusively).
static GET_VS_SET: Race =
    Race { setup: &[&["SET", "k", "v1"]], read: &["GET", "k"], write: &["SET", "k", "v2"], key: "k" };

/// A hash: HGET (reads under the cell lock, no stripe) racing HSET (the stripe shared plus the
/// cell lock).
static HGET_VS_HSET: Race =
    Race { setup: &[&["HSET", "h", "f", "v1"]], read: &["HGET", "h", "f"], write: &["HSET", "h", "f", "v2"], key: "h" };

/// A tracked GET racing a SET of its key: never a stale value without an invalidation.
#[test]
fn tracked_read_vs_write_string() {
    GET_VS_SET.model();
}

/// A tracked HGET racing an HSET of its key: never a stale value without an invalidation.
#[test]
fn tracked_read_vs_write_collection() {
    HGET_VS_HSET.model();
}

/// Broken: the GET registers its key after reading; a SET in between invalidates nobody.
#[test]
#[should_panic(expected = "stale value without an invalidation")]
fn broken_string_read_registers_after_reading() {
    let _f = inject(Fault::TrackRegisterAfterRead);
    GET_VS_SET.model();
}

/// Broken: the HGET registers its key after reading; an HSET in between invalidates nobody.
#[test]
#[should_panic(expected = "stale value without an invalidation")]
fn broken_collection_read_registers_after_reading() {
    let _f = inject(Fault::TrackRegisterAfterRead);
    HGET_VS_HSET.model();
}

/// Broken: the reader's connection sends what arrived while the GET ran before its reply: a SET
/// between the read and the reply has its invalidation applied before the stale value is cached.
#[test]
#[should_panic(expected = "stale value without an invalidation")]
fn broken_invalidation_sent_before_the_reply() {
    GET_VS_SET.model_with(false);
}
