//! Family: MULTI/EXEC/WATCH through the real `cmd::tx` handlers. EXEC holds the stripes of every
//! queued key while its commands run and pushes their records as one `MULTI` ... `EXEC` block;
//! multi-key reads see a transaction whole or not at all (the stripe epochs); WATCH is checked
//! under the transaction's stripes. Each thread is one client connection ([`Race::sessions`]).

use flurrydb::sync::fault::Fault;

use crate::harness::{Op, Race, inject, records};

const EXEC_INCR_AB: &[Op] =
    &[Op::Cmd(&["MULTI"]), Op::Cmd(&["INCR", "a"]), Op::Cmd(&["INCR", "b"]), Op::Cmd(&["EXEC"])];

/// A transaction INCRs `a` and `b` (two stripes) while another client SETs `a`: the replies and
/// the final state are those of the whole EXEC before or after the SET.
const EXEC_VS_SET: Race = Race::new(&[], &[EXEC_INCR_AB, &[Op::Cmd(&["SET", "a", "0"])]]).sessions();

/// The same against a concurrent INCR of `a` (its fast path CASes under the shared stripe).
const EXEC_VS_INCR: Race = Race::new(&[], &[EXEC_INCR_AB, &[Op::Cmd(&["INCR", "a"])]]).sessions();

/// The EXEC is logged as one block: MULTI, its two INCRs (as `INCRBY`), EXEC, never split by the other record.
fn exec_is_one_block(log: &[u8]) {
    let names: Vec<String> = records(log).into_iter().map(|(_, argv)| argv[0].to_ascii_uppercase()).collect();
    let at = names.iter().position(|n| n == "MULTI").expect("the EXEC is logged");
    assert_eq!(names[at..at + 4], ["MULTI", "INCRBY", "INCRBY", "EXEC"], "the EXEC block is split: {names:?}");
}

/// EXEC is atomic against a SET of one of its keys: serializable, and the log replays to memory.
#[test]
fn exec_is_atomic_against_a_concurrent_set() {
    EXEC_VS_SET.model_with(exec_is_one_block);
}

/// EXEC is atomic against a fast-path INCR of one of its keys.
#[test]
fn exec_is_atomic_against_a_concurrent_incr() {
    EXEC_VS_INCR.model_with(exec_is_one_block);
}

/// Broken: EXEC runs its commands without their stripes, so the SET lands inside the transaction
/// and logs before the block: the file says SET then INCR while memory did INCR then SET.
#[test]
#[should_panic(expected = "replay differs from memory")]
fn broken_exec_without_stripes_vs_set() {
    let _f = inject(Fault::ExecWithoutStripes);
    EXEC_VS_SET.model();
}

/// A transaction SETs `a` and `b` (two stripes) while another client MGETs both: it sees both
/// writes or neither.
const MGET_VS_EXEC: Race = Race::new(
    &[],
    &[
        &[Op::Cmd(&["MULTI"]), Op::Cmd(&["SET", "a", "1"]), Op::Cmd(&["SET", "b", "1"]), Op::Cmd(&["EXEC"])],
        &[Op::Cmd(&["MGET", "a", "b"])],
    ],
)
.sessions();

/// A lock-free MGET never sees half an EXEC.
#[test]
fn reader_never_sees_half_an_exec() {
    MGET_VS_EXEC.model();
}

/// Broken: the reader trusts its first read without re-checking the epochs (no seqlock), so it
/// can read `a` before the EXEC and `b` after it.
#[test]
#[should_panic(expected = "not linearizable")]
fn broken_reader_skips_epoch_recheck() {
    let _f = inject(Fault::ReadSkipEpochRecheck);
    MGET_VS_EXEC.model();
}

/// Broken: the EXEC without stripes leaves the epochs even, so the reader cannot tell.
#[test]
#[should_panic(expected = "not linearizable")]
fn broken_exec_without_stripes_vs_mget() {
    let _f = inject(Fault::ExecWithoutStripes);
    MGET_VS_EXEC.model();
}

/// A client WATCHes `k`, reads it, and SETs it in a transaction while another client SETs it: a
/// SET that lands after the WATCH makes the EXEC return the null array (k keeps the other value).
const WATCH_VS_SET: Race = Race::new(
    &[Op::Cmd(&["SET", "k", "v"])],
    &[
        &[
            Op::Cmd(&["WATCH", "k"]),
            Op::Cmd(&["GET", "k"]),
            Op::Cmd(&["MULTI"]),
            Op::Cmd(&["SET", "k", "x"]),
            Op::Cmd(&["EXEC"]),
        ],
        &[Op::Cmd(&["SET", "k", "y"])],
    ],
)
.sessions();

/// WATCH is invalidated by a write that lands after it; the outcomes are serial ones only.
#[test]
fn watch_is_invalidated_by_a_concurrent_write() {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static ABORTED: AtomicUsize = AtomicUsize::new(0);
    // An aborted EXEC logs no block: some execution must have put the SET between WATCH and EXEC.
    WATCH_VS_SET.model_with(|log| {
        if !records(log).iter().any(|(_, argv)| argv[0].eq_ignore_ascii_case("MULTI")) {
            ABORTED.fetch_add(1, Relaxed);
        }
    });
    assert!(ABORTED.load(Relaxed) > 0, "no execution aborted the EXEC");
}

/// Broken: EXEC checks the watched keys before taking its stripes, so the SET can land between the
/// check and the transaction: EXEC succeeds although `k` changed after the client read it.
#[test]
#[should_panic(expected = "not linearizable")]
fn broken_watch_checked_before_hold() {
    let _f = inject(Fault::WatchCheckBeforeHold);
    WATCH_VS_SET.model();
}
