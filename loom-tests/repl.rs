//! Family: replication's full sync. `repl::full_sync_point` takes every stripe, switches the
//! replication feed on, freezes the keyspace (pins the blocks, copies what changes in place) and
//! drains the feed's queue to note the offset; writes racing it push their records on the feed
//! under their own locks, and the snapshot is encoded after them. A replica that loads the
//! snapshot and then applies the stream from that offset must hold exactly the primary's
//! keyspace: every racing write in the snapshot or in the stream, never both, never neither.
//!
//! And WAIT: a blocked client listed for the replicas' ACKs, counting them once more after it is
//! listed; an ACK stores its offset, then wakes every listed client. A WAIT racing the ACK that
//! satisfies it never waits forever.
//!
//! And `repl-diskless-load swapdb`'s swap (`WriteLock::swap_in_all`): every database replaced by
//! a loaded spare at once under every stripe, the stripes' epochs odd meanwhile, so a lock-free
//! multi-key read sees all old or all new, and a client that saw one new database never reads an
//! old one after.

use std::sync::Arc as StdArc;

use bytes::Bytes;
use flurrydb::aof::{Aof, FsyncPolicy};
use flurrydb::cmd::{Client, Ctx, execute};
use flurrydb::resp::Frame;
use flurrydb::state::Shared;
use flurrydb::sync::fault::Fault;

use crate::blocking::Conn;
use crate::harness::{Op, builder, dump, expect_deadlock, in_deadlock_child, inject, plain_server, run, server};

const SETUP: &[Op] = &[Op::Cmd(&["SET", "a", "1"]), Op::Cmd(&["RPUSH", "l", "x"])];
/// A shared-stripe INCR, an in-place list push, an exclusive SET in another database.
const WRITES: &[Op] =
    &[Op::Cmd(&["INCR", "a"]), Op::Cmd(&["RPUSH", "l", "y"]), Op::Cmd(&["SELECT", "1"]), Op::Cmd(&["SET", "b", "2"])];

/// What a replica builds: the copy's keys (as commands), then the stream from `offset` replayed
/// as the AOF loader replays (it resolves the stream's SELECTs).
fn replica_of(primary: &Shared, copy: &[flurrydb::db::SnapshotEntry], offset: u64) -> crate::harness::Dump {
    let feed = primary.ks.repl_feed();
    feed.drain();
    let stream: Vec<u8> = feed.backlog().read_from(offset, usize::MAX).expect("the backlog holds it").concat();
    let replica = plain_server();
    replica.ks.set_loading(true);
    let mut client = Client::new(replica.clients.register("sync".into(), String::new()));
    for e in copy {
        e.commands(|argv| {
            client.db = e.db;
            let argv: Vec<Bytes> = argv.iter().map(|a| Bytes::copy_from_slice(a)).collect();
            let reply = execute(&mut Ctx::new(&replica, &mut client, 0), &argv);
            assert!(!matches!(reply, Frame::Error(_)), "{reply:?}");
        });
    }
    Aof::replay_in_memory(&stream, |db, argv| {
        client.db = db;
        match execute(&mut Ctx::new(&replica, &mut client, 0), argv) {
            Frame::Error(e) => Err(String::from_utf8_lossy(&e).into_owned()),
            _ => Ok(()),
        }
    })
    .expect("the stream replays");
    replica.ks.set_loading(false);
    dump(&replica)
}

/// Takes a snapshot point, lets the writer finish, returns the snapshot's keys and offset.
type TakePoint = fn(&Shared, &mut dyn FnMut()) -> (Vec<flurrydb::db::SnapshotEntry>, u64);

/// The shape both snapshot models share: SETUP (then the feed switched on when `feed_on`: a
/// primary that already has a backlog), WRITES on another thread racing `point` on this one.
/// `point` takes its snapshot, lets the writer finish (`join`), then returns the snapshot's keys
/// (a frozen one is read only now, after every write) and its offset: those keys plus the stream
/// from that offset must rebuild exactly the primary's keyspace.
fn snapshot_races_writes(feed_on: bool, point: TakePoint) {
    builder(2).check(move || {
        let shared: StdArc<Shared> = server(FsyncPolicy::No);
        for op in SETUP {
            run(&shared, 1_000, *op);
        }
        if feed_on {
            shared.ks.repl_feed().set_active(true);
        }
        let mut writer = Some({
            let shared = StdArc::clone(&shared);
            loom::thread::spawn(move || {
                let mut client = Client::new(shared.clients.register("w".into(), String::new()));
                for op in WRITES {
                    let Op::Cmd(argv) = op else { unreachable!() };
                    let argv: Vec<Bytes> = argv.iter().map(|a| Bytes::from_static(a.as_bytes())).collect();
                    execute(&mut Ctx::new(&shared, &mut client, 1_000), &argv);
                }
            })
        });
        let mut join = || writer.take().expect("joined once").join().expect("no panic");
        let (copy, offset) = point(&shared, &mut join);
        assert_eq!(replica_of(&shared, &copy, offset), dump(&shared), "snapshot + stream differ from the primary");
    });
}

/// A full sync (`repl::full_sync_point`, which switches the feed on as the first replica does):
/// its frozen snapshot is encoded after the racing writes, as the sync thread encodes it while
/// writers go on.
fn full_sync_races_writes() {
    snapshot_races_writes(false, |shared, join| {
        let (frozen, _, _, offset) = flurrydb::repl::full_sync_point(shared, 1);
        join();
        (frozen.to_entries(), offset)
    });
}

#[test]
fn writes_racing_a_full_sync_are_in_the_copy_or_the_stream() {
    full_sync_races_writes();
}

/// Broken: the offset is taken after the stripes are released: a write in between is in neither
/// the copy nor the stream sent after it.
#[test]
#[should_panic(expected = "snapshot + stream differ from the primary")]
fn broken_offset_outside_the_locks() {
    let _f = inject(Fault::ReplOffsetOutsideLock);
    full_sync_races_writes();
}

/// Broken: the full sync's snapshot reads integer cells and collections when it is encoded
/// instead of copying them at its point: an INCR or RPUSH after the point is in both the payload
/// and the stream.
#[test]
#[should_panic(expected = "snapshot + stream differ from the primary")]
fn broken_full_sync_reads_cells_late() {
    let _f = inject(Fault::SnapshotCellsByReference);
    full_sync_races_writes();
}

/// A client's `WAIT 1 0` after its write races the replica's ACK of that write: it replies 1,
/// either at once or woken by the ACK (a lost wake-up leaves it blocked forever: a loom deadlock).
fn wait_races_the_ack() {
    builder(2).check(|| {
        let shared = server(FsyncPolicy::No);
        let feed = shared.ks.repl_feed();
        feed.set_active(true);
        let link = StdArc::new(flurrydb::repl::ReplicaLink {
            id: 1_000_000,
            ip: "127.0.0.1".into(),
            port: 1,
            state: std::sync::Mutex::new("online"),
            ack: std::sync::atomic::AtomicU64::new(0),
            ack_time: std::sync::atomic::AtomicU64::new(0),
            kill: tokio::sync::Notify::new(),
        });
        shared.repl.replicas.lock().unwrap().push(StdArc::clone(&link));
        let mut c = Conn::new(&shared);
        c.run(&shared, &["SET", "k", "v"], false);
        // The offset the replica acknowledges: the end of the stream with the SET.
        let end = feed.drain();
        let acker = {
            let shared = StdArc::clone(&shared);
            loom::thread::spawn(move || {
                // As the replica's connection does on `REPLCONF ACK <end>`.
                link.ack.fetch_max(end, std::sync::atomic::Ordering::Relaxed);
                shared.repl.note_ack();
            })
        };
        let reply = c.run(&shared, &["WAIT", "1", "0"], false);
        acker.join().expect("no panic");
        assert_eq!(reply, Frame::Integer(1));
        c.close(&shared);
    });
}

#[test]
fn wait_never_misses_the_ack_that_satisfies_it() {
    wait_races_the_ack();
}

/// Broken: WAIT counts before it is listed: the ACK in between wakes nobody.
#[test]
#[should_panic(expected = "loom found a deadlock")]
fn broken_wait_counts_before_listening() {
    expect_deadlock("repl::child_wait_counts_before_listening");
}

#[test]
#[ignore = "run by broken_wait_counts_before_listening in a child process"]
fn child_wait_counts_before_listening() {
    if in_deadlock_child() {
        let _f = inject(Fault::WaitCountBeforeListen);
        wait_races_the_ack();
    }
}

/// A background save's frozen snapshot (`rdb::persist::freeze`: under every stripe it pins the
/// blocks, copies the integer cells and the collections, notes the replication offset; the
/// file is encoded later from the pinned blocks, with writers going on) racing a shared-stripe
/// INCR of an integer cell in a pinned block, an in-place RPUSH and a SET that swaps a block out:
/// the snapshot, encoded after every write finished, plus the stream from its offset rebuild
/// exactly the primary's keyspace (a restart from the file and a partial resync).
fn frozen_snapshot_races_writes() {
    snapshot_races_writes(true, |shared, join| {
        let (frozen, _, _, repl) = flurrydb::rdb::persist::freeze(shared);
        join();
        let offset = repl.expect("a primary with a backlog records its offset").offset as u64;
        (frozen.to_entries(), offset)
    });
}

#[test]
fn writes_racing_a_frozen_snapshot_are_in_it_or_after_its_offset() {
    frozen_snapshot_races_writes();
}

/// Broken: the snapshot reads integer cells and collections when it is encoded instead of
/// copying them at its point: an INCR or RPUSH after the point is in both the file and the stream.
#[test]
#[should_panic(expected = "snapshot + stream differ from the primary")]
fn broken_frozen_snapshot_reads_cells_late() {
    let _f = inject(Fault::SnapshotCellsByReference);
    frozen_snapshot_races_writes();
}

/// A replica's databases (a=old, b=old in db 0, c=old in db 1) swapped for loaded spares (all
/// `new`) while a client reads: `MGET a b`, then `c` in db 1. The MGET sees both old or both new;
/// having seen a new `a`, the client never reads the old `c`.
fn swap_races_reads() {
    builder(2).check(|| {
        let shared: StdArc<Shared> = plain_server();
        run(&shared, 1_000, Op::Cmd(&["MSET", "a", "old", "b", "old"]));
        let spares = shared.ks.take_spares().expect("every spare is free");
        for (db, keys) in [(0, &["a", "b"][..]), (1, &["c"][..])] {
            let mut batch = flurrydb::db::Batch::new();
            for k in keys {
                batch.push(k.as_bytes(), flurrydb::db::Entry::string_copied(b"new", 0), None);
            }
            shared.ks.spare_map(spares[db]).put_batch(&mut batch);
        }
        {
            let mut client = Client::new(shared.clients.register("setup".into(), String::new()));
            client.db = 1;
            let argv: Vec<Bytes> = ["SET", "c", "old"].iter().map(|a| Bytes::from_static(a.as_bytes())).collect();
            execute(&mut Ctx::new(&shared, &mut client, 1_000), &argv);
        }
        let reader = {
            let shared = StdArc::clone(&shared);
            loom::thread::spawn(move || {
                let mut client = Client::new(shared.clients.register("r".into(), String::new()));
                let cmd = |client: &mut Client, args: &[&'static str]| {
                    let argv: Vec<Bytes> = args.iter().map(|a| Bytes::from_static(a.as_bytes())).collect();
                    format!("{:?}", execute(&mut Ctx::new(&shared, client, 1_000), &argv))
                };
                let mget = cmd(&mut client, &["MGET", "a", "b"]);
                client.db = 1;
                let c = cmd(&mut client, &["GET", "c"]);
                (mget, c)
            })
        };
        let seq = std::cell::Cell::new(0);
        let old = shared.ks.write_all(0, &seq).swap_in_all(&spares);
        let (mget, c) = reader.join().unwrap();
        let news = mget.matches("new").count();
        assert!(news == 0 || news == 2, "an MGET saw old and new mixed: {mget}");
        assert!(news == 0 || c.contains("new"), "saw the new db 0, then the old db 1: {mget} then {c}");
        for p in old {
            shared.ks.recycle(p);
        }
    });
}

#[test]
fn reads_racing_a_swapdb_load_see_old_or_new_never_both() {
    swap_races_reads();
}

/// Broken: the swap leaves the epochs even: the MGET can read `a` before and `b` after, or the
/// client read db 0 swapped and db 1 not yet.
#[test]
#[should_panic(expected = "saw")]
fn broken_swap_without_epochs() {
    let _f = inject(Fault::SwapWithoutEpochs);
    swap_races_reads();
}

// Family: replica direct writes (`repl::outlet`). An appender publishes the stream's new end,
// then offers the chunk to the replica's outlet: written to the socket there if the sender is
// idle. The sender reads the backlog, writes what is new, and goes idle only if the end, read
// under the outlet's lock, is what it wrote up to. So a chunk appended while the sender goes idle
// is either seen by its check or offered to it idle: never left unsent with nobody awake to send
// it. The broken variant goes idle without that check.

fn sender_goes_idle_vs_append() {
    use flurrydb::repl::outlet::{Offer, Outlet};
    use loom::sync::atomic::{AtomicU64, Ordering};
    use std::io::Write;
    use std::os::fd::AsRawFd;
    builder(2).check(|| {
        let outlet = Outlet::new(1, StdArc::new(flurrydb::state::Counter::default()));
        // The backlog: its bytes under a lock, its end published as `Feed::end` is.
        let backlog = loom::sync::Arc::new(loom::sync::Mutex::new(Vec::<u8>::new()));
        let end = loom::sync::Arc::new(AtomicU64::new(0));
        let (mut peer, conn) = std::os::unix::net::UnixStream::pair().unwrap();
        peer.set_nonblocking(true).unwrap();
        conn.set_nonblocking(true).unwrap();
        let appender = {
            let (outlet, backlog, end) = (outlet.clone(), backlog.clone(), end.clone());
            loom::thread::spawn(move || {
                // As `Feed::appended`: append, publish the end, offer, all under the backlog lock.
                let mut b = backlog.lock().unwrap();
                b.extend_from_slice(b"abc");
                end.store(3, Ordering::SeqCst);
                let offer = outlet.offer(0, b"abc");
                assert_ne!(offer, Offer::Woken, "the socket takes 3 bytes");
            })
        };
        // The sender: read the backlog from `from`, write it, go idle when caught up.
        let mut from = 0u64;
        let mut idle = None;
        for _ in 0..3 {
            let new = backlog.lock().unwrap()[from as usize..].to_vec();
            if !new.is_empty() {
                (&conn).write_all(&new).unwrap();
                from += new.len() as u64;
                continue;
            }
            idle = outlet.idle(conn.as_raw_fd(), from, || end.load(Ordering::SeqCst));
            if idle.is_some() {
                break;
            }
        }
        appender.join().unwrap();
        // Asleep until woken: with no wake-up pending, what reached the socket is all it gets.
        let woken = {
            let n = outlet.wake.notified();
            let mut n = std::pin::pin!(n);
            std::future::Future::poll(n.as_mut(), &mut std::task::Context::from_waker(std::task::Waker::noop()))
                .is_ready()
        };
        if woken && let Some(i) = idle.take() {
            from = i.resume();
            let new = backlog.lock().unwrap()[from as usize..].to_vec();
            (&conn).write_all(&new).unwrap();
        }
        drop(idle);
        let got = crate::harness::read_now(&mut peer);
        assert_eq!(got, b"abc", "a chunk appended before the sender went idle was never sent (or sent twice)");
    });
}

/// A sender going idle races the append of the next chunk: the chunk reaches the replica once.
#[test]
fn replica_direct_writes_never_leave_a_chunk_unsent() {
    sender_goes_idle_vs_append();
}

/// Broken: the sender goes idle without checking the end under the outlet's lock; a chunk
/// offered while it was still busy is never sent.
#[test]
#[should_panic(expected = "a chunk appended before the sender went idle was never sent")]
fn broken_sender_idle_without_recheck() {
    let _f = inject(Fault::OutletIdleWithoutRecheck);
    sender_goes_idle_vs_append();
}
