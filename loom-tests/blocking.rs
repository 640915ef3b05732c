//! Family: blocked pops (`db::blocking`, lists and sorted sets) through the real handlers. A blocking command registers
//! under its keys' exclusive stripes; the writer that fills a key claims its first waiter by CAS,
//! pops for it and logs `LPOP|RPOP key n` under the key's locks, then hands the element over; a
//! waiter whose timer fires races that claim with its own CAS. Each modeled connection does what
//! `connection.rs` does around [`Waiter::wait`](flurrydb::db::blocking::Waiter::wait): run the
//! command, wait (or fire its timer: `Waiter::cancel`), run it again.

use bytes::Bytes;
use flurrydb::aof::FsyncPolicy;
use flurrydb::cmd::{Client, Ctx, execute};
use flurrydb::resp::Frame;
use flurrydb::state::Shared;
use flurrydb::sync::fault::Fault;
use loom::future::block_on;
use std::sync::Arc as StdArc;

use crate::harness::{
    Dumped, Op, aof, builder, dump, expect_deadlock, in_deadlock_child, inject, replay, run, server, show,
};

const NOW_MS: u64 = 1_000;

/// One modeled client connection.
pub(crate) struct Conn(Client);

impl Conn {
    pub(crate) fn new(shared: &Shared) -> Conn {
        Conn(Client::new(shared.clients.register("loom".into(), String::new())))
    }

    fn execute(&mut self, shared: &Shared, argv: &[Bytes]) -> Frame {
        // Replies encoded in advance compare as the frames they stand for.
        execute(&mut Ctx::new(shared, &mut self.0, NOW_MS), argv).expand()
    }

    /// Runs `argv`; None when it blocked (its wait is [`Conn::finish`]'s).
    pub(crate) fn start(&mut self, shared: &Shared, argv: &[&str]) -> Option<Frame> {
        let reply = self.execute(shared, &args(argv));
        if self.0.block.is_some() { None } else { Some(reply) }
    }

    /// The blocked command's wait and re-run, as `connection.rs` does them. `times_out`: its timer
    /// fires as soon as it blocks (it gives up unless a pusher claimed it first).
    pub(crate) fn finish(&mut self, shared: &Shared, argv: &[&str], times_out: bool) -> Frame {
        let argv = args(argv);
        let mut reply = Frame::Null;
        while let Some(req) = self.0.block.take() {
            self.0.skip_reply = false;
            if times_out && req.waiter.cancel() {
                self.0.block_timed_out = true;
            } else {
                block_on(req.waiter.wait());
            }
            reply = self.execute(shared, &argv);
            self.0.block_timed_out = false;
        }
        reply
    }

    pub(crate) fn run(&mut self, shared: &Shared, argv: &[&str], times_out: bool) -> Frame {
        match self.start(shared, argv) {
            Some(reply) => reply,
            None => self.finish(shared, argv, times_out),
        }
    }

    pub(crate) fn close(self, shared: &Shared) {
        shared.clients.unregister(self.0.id);
    }
}

pub(crate) fn args(argv: &[&str]) -> Vec<Bytes> {
    argv.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
}

/// BLPOP's reply `[key, element]`.
fn pair(key: &str, ele: &str) -> Frame {
    Frame::Array(vec![
        Frame::Bulk(Bytes::copy_from_slice(key.as_bytes())),
        Frame::Bulk(Bytes::copy_from_slice(ele.as_bytes())),
    ])
}

/// The list at `key` in db 0 after the model, as the dump shows it (empty: no key).
fn list_of(state: &crate::harness::Dump, key: &str) -> Vec<Vec<u8>> {
    match state.get(&(0, key.as_bytes().to_vec())) {
        None => Vec::new(),
        Some((Dumped::List(items), _)) => items.clone(),
        Some(other) => panic!("{key} is not a list: {other:?}"),
    }
}

/// Shuts the AOF down and checks that it replays to exactly what memory holds; returns the state.
pub(crate) fn memory_is_replay(shared: &Shared) -> crate::harness::Dump {
    let aof = aof(shared);
    aof.shutdown().expect("clean shutdown");
    let memory = dump(shared);
    let log = aof.contents();
    assert_eq!(replay(&log), memory, "replay differs from memory; log:\n{}", show(&log));
    memory
}

/// (a) A client blocks on `k` while another pushes one element: it is never left waiting (a lost
/// wake-up leaves its thread blocked forever, which loom reports as a deadlock) and gets it.
fn pusher_vs_registering_waiter() {
    builder(2).check(|| {
        let shared = server(FsyncPolicy::No);
        let other = StdArc::clone(&shared);
        let waiter = loom::thread::spawn(move || {
            let mut c = Conn::new(&other);
            let reply = c.run(&other, &["BLPOP", "k", "0"], false);
            c.close(&other);
            reply
        });
        run(&shared, NOW_MS, Op::Cmd(&["RPUSH", "k", "x"]));
        assert_eq!(waiter.join().expect("no panic"), pair("k", "x"));
        let state = memory_is_replay(&shared);
        assert_eq!(list_of(&state, "k"), Vec::<Vec<u8>>::new());
    });
}

#[test]
fn a_push_never_misses_a_registering_waiter() {
    pusher_vs_registering_waiter();
}

/// Broken: the waiter releases its stripes after its last check and registers after: a push in
/// between finds nobody, and the waiter waits forever.
#[test]
#[should_panic(expected = "loom found a deadlock")]
fn broken_register_without_the_stripe() {
    expect_deadlock("blocking::child_register_without_the_stripe");
}

#[test]
#[ignore = "run by broken_register_without_the_stripe in a child process"]
fn child_register_without_the_stripe() {
    if in_deadlock_child() {
        let _f = inject(Fault::BlockRegisterWithoutStripe);
        pusher_vs_registering_waiter();
    }
}

/// (b) A client blocked on `k` times out at the moment another pushes one element: the element is
/// either in the waiter's reply (and gone from the list) or still in the list (and the waiter got
/// the timeout), never lost and never both; the log replays to memory.
fn pusher_vs_timing_out_waiter() {
    builder(2).check(|| {
        let shared = server(FsyncPolicy::No);
        let other = StdArc::clone(&shared);
        let waiter = loom::thread::spawn(move || {
            let mut c = Conn::new(&other);
            let reply = c.run(&other, &["BLPOP", "k", "0"], true);
            c.close(&other);
            reply
        });
        run(&shared, NOW_MS, Op::Cmd(&["RPUSH", "k", "x"]));
        let reply = waiter.join().expect("no panic");
        let state = memory_is_replay(&shared);
        let list = list_of(&state, "k");
        let delivered = reply == pair("k", "x");
        assert!(delivered || reply == Frame::NullArray, "unexpected reply {reply:?}");
        assert_eq!(
            usize::from(delivered) + list.len(),
            1,
            "element lost or delivered twice: reply {reply:?}, list {list:?}"
        );
    });
}

#[test]
fn a_timing_out_waiter_gets_the_element_or_leaves_it() {
    pusher_vs_timing_out_waiter();
}

/// Broken: the timer ignores a hand-off in progress: the popped (and logged) element is dropped.
#[test]
#[should_panic(expected = "element lost or delivered twice")]
fn broken_timeout_drops_a_handed_over_element() {
    let _f = inject(Fault::TimeoutDropsHandedOver);
    pusher_vs_timing_out_waiter();
}

/// Broken: the pusher claims the waiter with a load and a store, so the timer can win in between
/// and the element is popped for a client that already replied with a timeout.
#[test]
#[should_panic(expected = "element lost or delivered twice")]
fn broken_claim_without_cas() {
    let _f = inject(Fault::ClaimWithoutCas);
    pusher_vs_timing_out_waiter();
}

/// (b2) CLIENT UNBLOCK ... ERROR races a push to the same blocked client: the client always
/// resumes, and either gets the element (the unblock lost: it answers 0) or the UNBLOCKED error
/// with the element left in the list; the element exists exactly once, and the log replays.
fn pusher_vs_client_unblock() {
    builder(2).check(|| {
        let shared = server(FsyncPolicy::No);
        let mut c = Conn::new(&shared);
        assert_eq!(c.start(&shared, &["BLPOP", "k", "0"]), None, "blocks on the missing key");
        let req = c.0.block.take().expect("blocked");
        let waiter = req.waiter.clone();
        let unblocker = loom::thread::spawn(move || waiter.unblock());
        run(&shared, NOW_MS, Op::Cmd(&["RPUSH", "k", "x"]));
        // The connection's wait (possibly before the unblock wakes it), then its re-run (see
        // `connection::wait_blocked`).
        block_on(req.waiter.wait());
        let ended = unblocker.join().expect("no panic");
        if ended {
            c.0.block_timed_out = true;
            c.0.unblocked = Some(flurrydb::state::UnblockReason::Error);
        }
        c.0.skip_reply = false;
        let reply = c.execute(&shared, &args(&["BLPOP", "k", "0"]));
        c.0.block_timed_out = false;
        c.close(&shared);
        let state = memory_is_replay(&shared);
        let list = list_of(&state, "k");
        let delivered = reply == pair("k", "x");
        let unblocked = reply == Frame::Error(Bytes::from_static(b"UNBLOCKED client unblocked via CLIENT UNBLOCK"));
        assert!(delivered != unblocked, "unexpected reply {reply:?}");
        assert_eq!(unblocked, ended, "UNBLOCK answered {ended} but the client replied {reply:?}");
        assert_eq!(
            usize::from(delivered) + list.len(),
            1,
            "element lost or delivered twice: reply {reply:?}, list {list:?}"
        );
    });
}

#[test]
fn an_unblocked_waiter_gets_the_element_or_the_error() {
    pusher_vs_client_unblock();
}

/// Broken: CLIENT UNBLOCK overrides a pusher's claim: the popped (and logged) element is answered
/// with the UNBLOCKED error and lost.
#[test]
#[should_panic(expected = "element lost or delivered twice")]
fn broken_unblock_ignores_the_claim() {
    let _f = inject(Fault::UnblockIgnoresClaim);
    pusher_vs_client_unblock();
}

/// (c) Two clients blocked on `k` (the first before the race, the second during it) and two
/// pushes of one element each: the first blocked gets the first element, the other the second,
/// each exactly once, and the log replays to memory.
fn two_waiters_two_pushes() {
    builder(2).check(|| {
        let shared = server(FsyncPolicy::No);
        let mut first = Conn::new(&shared);
        assert_eq!(first.start(&shared, &["BLPOP", "k", "0"]), None, "blocks on the missing key");
        let other = StdArc::clone(&shared);
        let second = loom::thread::spawn(move || {
            let mut c = Conn::new(&other);
            let reply = c.run(&other, &["BLPOP", "k", "0"], false);
            c.close(&other);
            reply
        });
        run(&shared, NOW_MS, Op::Cmd(&["RPUSH", "k", "x"]));
        run(&shared, NOW_MS, Op::Cmd(&["RPUSH", "k", "y"]));
        let first_reply = first.finish(&shared, &["BLPOP", "k", "0"], false);
        first.close(&shared);
        let second_reply = second.join().expect("no panic");
        assert_eq!(first_reply, pair("k", "x"), "FIFO: the first blocked client gets the first element");
        assert_eq!(second_reply, pair("k", "y"));
        let state = memory_is_replay(&shared);
        assert_eq!(list_of(&state, "k"), Vec::<Vec<u8>>::new());
    });
}

#[test]
fn the_first_blocked_client_gets_the_first_element_once() {
    two_waiters_two_pushes();
}

/// Broken: the pusher serves the newest waiter first.
#[test]
#[should_panic(expected = "FIFO")]
fn broken_hand_off_to_the_newest_waiter() {
    let _f = inject(Fault::HandOffToNewestWaiter);
    two_waiters_two_pushes();
}

/// The members of the sorted set at `key` in db 0 after the model (empty: no key).
fn zset_of(state: &crate::harness::Dump, key: &str) -> Vec<Vec<u8>> {
    match state.get(&(0, key.as_bytes().to_vec())) {
        None => Vec::new(),
        Some((Dumped::Zset(entries), _)) => entries.iter().map(|(m, _)| m.clone()).collect(),
        Some(other) => panic!("{key} is not a sorted set: {other:?}"),
    }
}

/// (d) The same hand-off for sorted sets: a client blocked by BZPOPMIN on `z` times out at the
/// moment another ZADDs one member. The member is either in the waiter's reply (popped and logged
/// as `ZPOPMIN z 1` by the writer) or still in the set (and the waiter got the timeout), never
/// lost and never both; the log replays to memory.
fn zadder_vs_timing_out_bzpopmin() {
    builder(2).check(|| {
        let shared = server(FsyncPolicy::No);
        let other = StdArc::clone(&shared);
        let waiter = loom::thread::spawn(move || {
            let mut c = Conn::new(&other);
            let reply = c.run(&other, &["BZPOPMIN", "z", "0"], true);
            c.close(&other);
            reply
        });
        run(&shared, NOW_MS, Op::Cmd(&["ZADD", "z", "1", "m"]));
        let reply = waiter.join().expect("no panic");
        let state = memory_is_replay(&shared);
        let members = zset_of(&state, "z");
        let served = Frame::Array(vec![
            Frame::Bulk(Bytes::from_static(b"z")),
            Frame::Bulk(Bytes::from_static(b"m")),
            Frame::Double(Bytes::from_static(b"1")),
        ]);
        let delivered = reply == served;
        assert!(delivered || reply == Frame::NullArray, "unexpected reply {reply:?}");
        assert_eq!(
            usize::from(delivered) + members.len(),
            1,
            "member lost or delivered twice: reply {reply:?}, set {members:?}"
        );
    });
}

#[test]
fn a_timing_out_bzpopmin_gets_the_member_or_leaves_it() {
    zadder_vs_timing_out_bzpopmin();
}

/// Broken: the timer ignores a hand-off in progress: the popped (and logged) member is dropped.
#[test]
#[should_panic(expected = "member lost or delivered twice")]
fn broken_zset_timeout_drops_a_handed_over_member() {
    let _f = inject(Fault::TimeoutDropsHandedOver);
    zadder_vs_timing_out_bzpopmin();
}

/// Broken: the writer claims the waiter with a load and a store, so the timer can win in between
/// and the member is popped for a client that already replied with a timeout.
#[test]
#[should_panic(expected = "member lost or delivered twice")]
fn broken_zset_claim_without_cas() {
    let _f = inject(Fault::ClaimWithoutCas);
    zadder_vs_timing_out_bzpopmin();
}
