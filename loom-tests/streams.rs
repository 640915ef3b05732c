//! Family: blocked stream readers (`db::blocking` with `Want::Stream`, `cmd::stream::read`) through
//! the real handlers. A blocked XREAD/XREADGROUP registers under its keys' exclusive stripes; the
//! XADD that makes the key readable, holding the key's stripe and the stream's lock, claims each
//! ready reader by CAS, reads (for a group: delivers, creating pending entries and logging them
//! as `XCLAIM`) and hands the entries over. A reader whose timer fires races that claim.

use bytes::Bytes;
use flurrydb::aof::FsyncPolicy;
use flurrydb::resp::Frame;
use flurrydb::sync::fault::Fault;
use std::sync::Arc as StdArc;

use crate::blocking::{Conn, memory_is_replay};
use crate::harness::{Dump, Dumped, Op, builder, expect_deadlock, in_deadlock_child, inject, run, server};

const NOW_MS: u64 = 1_000;

fn b(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// XREAD's / XREADGROUP's reply with one entry `id` of `key` holding `f v`.
fn one(key: &str, id: &str) -> Frame {
    let entry = Frame::Array(vec![b(id), Frame::Array(vec![b("f"), b("v")])]);
    Frame::Array(vec![Frame::Array(vec![b(key), Frame::Array(vec![entry])])])
}

/// The IDs pending in the groups of the stream at `key` (its rewrite's XCLAIMs).
fn pending(state: &Dump, key: &str) -> Vec<Vec<u8>> {
    match state.get(&(0, key.as_bytes().to_vec())) {
        Some((Dumped::Stream(cmds), _)) => cmds.iter().filter(|c| c[0] == b"XCLAIM").map(|c| c[5].clone()).collect(),
        other => panic!("{key} is not a stream: {other:?}"),
    }
}

const XREADGROUP: &[&str] = &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"];

/// (a) A client blocks with XREAD on `s` while another adds an entry: it is never left waiting (a
/// lost wake-up leaves its thread blocked forever, which loom reports as a deadlock) and gets it.
fn xadd_vs_registering_reader() {
    builder(2).check(|| {
        let shared = server(FsyncPolicy::No);
        run(&shared, NOW_MS, Op::Cmd(&["XADD", "s", "1-0", "f", "v"]));
        let other = StdArc::clone(&shared);
        let reader = loom::thread::spawn(move || {
            let mut c = Conn::new(&other);
            let reply = c.run(&other, &["XREAD", "BLOCK", "0", "STREAMS", "s", "1-0"], false);
            c.close(&other);
            reply
        });
        run(&shared, NOW_MS, Op::Cmd(&["XADD", "s", "2-0", "f", "v"]));
        assert_eq!(reader.join().expect("no panic"), one("s", "2-0"));
        memory_is_replay(&shared);
    });
}

#[test]
fn an_xadd_never_misses_a_registering_reader() {
    xadd_vs_registering_reader();
}

/// Broken: the reader releases its stripes after its last check and registers after: an XADD in
/// between finds nobody, and the reader waits forever.
#[test]
#[should_panic(expected = "loom found a deadlock")]
fn broken_stream_register_without_the_stripe() {
    expect_deadlock("streams::child_stream_register_without_the_stripe");
}

#[test]
#[ignore = "run by broken_stream_register_without_the_stripe in a child process"]
fn child_stream_register_without_the_stripe() {
    if in_deadlock_child() {
        let _f = inject(Fault::BlockRegisterWithoutStripe);
        xadd_vs_registering_reader();
    }
}

/// (b) A group reader blocked on `s` times out at the moment another client adds an entry: the
/// entry is either in the reader's reply and pending for it, or undelivered (the reader got the
/// timeout, nothing pending): never pending for a reader that replied with a timeout, never
/// delivered without its pending entry; the log (with the hand-off's `XCLAIM`) replays to memory.
fn xadd_vs_timing_out_group_reader() {
    builder(2).check(|| {
        let shared = server(FsyncPolicy::No);
        run(&shared, NOW_MS, Op::Cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]));
        let other = StdArc::clone(&shared);
        let reader = loom::thread::spawn(move || {
            let mut c = Conn::new(&other);
            let reply = c.run(&other, XREADGROUP, true);
            c.close(&other);
            reply
        });
        run(&shared, NOW_MS, Op::Cmd(&["XADD", "s", "1-0", "f", "v"]));
        let reply = reader.join().expect("no panic");
        let state = memory_is_replay(&shared);
        let delivered = reply == one("s", "1-0");
        assert!(delivered || reply == Frame::NullArray, "unexpected reply {reply:?}");
        let pel = pending(&state, "s");
        assert_eq!(
            delivered,
            pel == vec![b"1-0".to_vec()],
            "entry lost or given to a reader that gave up: {reply:?}, {pel:?}"
        );
    });
}

#[test]
fn a_timing_out_group_reader_gets_the_entry_or_leaves_it() {
    xadd_vs_timing_out_group_reader();
}

/// Broken: the writer claims the reader with a load and a store: the timer can win in between and
/// the entry is delivered (pending) to a client that replied with a timeout.
#[test]
#[should_panic(expected = "entry lost or given to a reader that gave up")]
fn broken_stream_claim_without_cas() {
    let _f = inject(Fault::ClaimWithoutCas);
    xadd_vs_timing_out_group_reader();
}

/// (c) The hand-off against XACK: a group reader is blocked on `s`; one client adds an entry (the
/// writer delivers it to the reader: a pending entry and its `XCLAIM` record) while another
/// acknowledges that ID. Whatever the order, the log replays to exactly what memory holds: the
/// hand-off's records are pushed under the stream's lock, so an XACK is logged before or after
/// all of them, as it took effect.
fn handoff_vs_xack() {
    builder(2).check(|| {
        let shared = server(FsyncPolicy::No);
        run(&shared, NOW_MS, Op::Cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]));
        let mut reader = Conn::new(&shared);
        assert_eq!(reader.start(&shared, XREADGROUP), None, "blocks: nothing new");
        let other = StdArc::clone(&shared);
        let acker = loom::thread::spawn(move || run(&other, NOW_MS, Op::Cmd(&["XACK", "s", "g", "1-0"])));
        run(&shared, NOW_MS, Op::Cmd(&["XADD", "s", "1-0", "f", "v"]));
        let acked = acker.join().expect("no panic");
        assert_eq!(reader.finish(&shared, XREADGROUP, false), one("s", "1-0"));
        reader.close(&shared);
        let state = memory_is_replay(&shared);
        let still = pending(&state, "s").len();
        assert_eq!(still + usize::from(acked == Frame::Integer(1)), 1, "acked {acked:?}, pending {still}");
    });
}

#[test]
fn a_handoff_and_an_xack_replay_in_the_order_they_took_effect() {
    handoff_vs_xack();
}

/// Broken: the XADD pushes its records (its own and the hand-off's XCLAIM) after releasing the
/// stream's lock: an XACK that acknowledged the delivered entry can be logged before them, and
/// replay leaves the entry pending.
#[test]
#[should_panic(expected = "replay differs from memory")]
fn broken_handoff_logged_outside_the_stream_lock() {
    let _f = inject(Fault::CellLogOutsideLock);
    handoff_vs_xack();
}
