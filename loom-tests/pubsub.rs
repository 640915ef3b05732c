//! Family: keyspace notifications. A write announces its events while it holds its key's stripe,
//! so per key the events reach subscribers in the order the writes took effect (a listener that
//! sees `set` last must find the key there). The broken variant announces SET's events after
//! releasing the stripe: a DEL can then be applied after the SET but announced before it.

use bytes::{Bytes, BytesMut};
use flurrydb::aof::FsyncPolicy;
use flurrydb::cmd::{Client, Ctx, execute};
use flurrydb::sync::fault::Fault;

use crate::harness::{Op, builder, inject, run, server};

const NOW: u64 = 1_700_000_000_000;

fn cmd(shared: &flurrydb::state::Shared, client: &mut Client, args: &[&str]) {
    let argv: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
    execute(&mut Ctx::new(shared, client, NOW), &argv);
}

/// The events on `__keyspace@0__:k` that reached `listener`, in order.
fn events(listener: &Client) -> Vec<String> {
    let mut out = BytesMut::new();
    listener.subs.sub.drain_into(&mut out);
    let text = String::from_utf8(out.to_vec()).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    // *3 $7 message $n channel $n event
    lines.chunks(7).filter(|c| c.len() == 7 && c[2] == "message").map(|c| c[6].to_string()).collect()
}

fn set_vs_del() {
    builder(2).check(|| {
        let shared = server(FsyncPolicy::No);
        let mut listener = Client::new(shared.clients.register("listener".into(), String::new()));
        cmd(&shared, &mut listener, &["CONFIG", "SET", "notify-keyspace-events", "K$g"]);
        cmd(&shared, &mut listener, &["SUBSCRIBE", "__keyspace@0__:k"]);
        let s2 = shared.clone();
        let t = loom::thread::spawn(move || {
            run(&s2, NOW, Op::Cmd(&["SET", "k", "v"]));
        });
        run(&shared, NOW, Op::Cmd(&["DEL", "k"]));
        t.join().unwrap();
        let seen = events(&listener);
        let exists = shared.ks.db(0).get(b"k", |e| e.is_some());
        let last = seen.last().map(String::as_str);
        assert!(
            (exists && last == Some("set")) || (!exists && last == Some("del")),
            "events out of apply order: {seen:?} but the key {} there",
            if exists { "is" } else { "is not" }
        );
    });
}

/// SET racing DEL of its key: the last event announced is the last write applied.
#[test]
fn keyspace_events_follow_apply_order() {
    set_vs_del();
}

/// Broken: SET announces after releasing its stripe; a DEL in between is announced first.
#[test]
#[should_panic(expected = "events out of apply order")]
fn broken_set_notifies_outside_lock() {
    let _f = inject(Fault::SetNotifyOutsideLock);
    set_vs_del();
}

// Family: pub/sub direct writes. A publisher ending its batch writes an idle subscriber's outbox
// to the subscriber's socket itself, holding the outbox lock across the send; the connection stops
// being idle (takes that lock) before it writes its own reply or closes the socket. So nothing a
// publisher writes can follow what the connection wrote after it woke, and a message is either
// written or left in the outbox, once. The broken variant sends after releasing the lock.

fn direct_write_vs_waking_connection() {
    use flurrydb::pubsub::{ClientSubs, Hub, Kind};
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::sync::Arc;
    builder(2).check(|| {
        let hub = Arc::new(Hub::default());
        let mut conn_subs = ClientSubs::new(1);
        conn_subs.subscribe(&hub, Kind::Channel, &[Bytes::from_static(b"c")], 2);
        let (mut peer, conn) = std::os::unix::net::UnixStream::pair().unwrap();
        peer.set_nonblocking(true).unwrap();
        // The connection waits, everything written.
        let idle = conn_subs.sub.idle(conn.as_raw_fd());
        let (h2, sub) = (hub.clone(), conn_subs.sub.clone());
        let publisher = loom::thread::spawn(move || {
            h2.publish(b"c", b"m");
            sub.write_direct();
        });
        // A request arrives: the connection stops being idle, then writes its reply.
        drop(idle);
        (&conn).write_all(b"+REPLY\r\n").unwrap();
        publisher.join().unwrap();
        let msg: &[u8] = b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n";
        let got = crate::harness::read_now(&mut peer);
        let mut left = BytesMut::new();
        conn_subs.sub.drain_into(&mut left);
        assert!(got.ends_with(b"+REPLY\r\n"), "a publisher wrote after the connection's reply: {got:?}");
        assert!(
            (got == b"+REPLY\r\n" && &left[..] == msg) || (got == [msg, b"+REPLY\r\n"].concat() && left.is_empty()),
            "a message lost or written twice: socket {got:?}, outbox {left:?}"
        );
    });
}

/// An idle subscriber written by a publisher while its connection wakes: the publisher's bytes
/// never follow the connection's own.
#[test]
fn pubsub_direct_writes_precede_the_connections_own() {
    direct_write_vs_waking_connection();
}

/// Broken: the publisher sends after releasing the outbox lock; the connection's reply can go
/// out first.
#[test]
#[should_panic(expected = "a publisher wrote after the connection's reply")]
fn broken_pubsub_direct_write_outside_lock() {
    let _f = inject(Fault::PubsubDirectWriteUnlocked);
    direct_write_vs_waking_connection();
}
