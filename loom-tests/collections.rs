//! Family 2b: the collection protocol of `cmd::collection` on hashes and sets (the list models in
//! `lists` check the same protocol on lists). A write on a live collection takes the stripe SHARED
//! plus the cell lock and logs under it; the write that empties a collection removes the key and
//! marks the cell `dead`; a writer that finds a dead cell retries and takes the exclusive path to
//! create the key. Multi-key set commands hold every key's stripe exclusively.

use flurrydb::sync::fault::Fault;

use crate::harness::{Op, Race, inject};

const ONE_MEMBER: &[Op] = &[Op::Cmd(&["SADD", "s", "a"])];
const ONE_FIELD: &[Op] = &[Op::Cmd(&["HSET", "h", "f", "1"])];

const SADD_VS_EMPTYING_SREM: Race =
    Race::new(ONE_MEMBER, &[&[Op::Cmd(&["SADD", "s", "b"])], &[Op::Cmd(&["SREM", "s", "a"])]]);
const HSET_VS_EMPTYING_HDEL: Race =
    Race::new(ONE_FIELD, &[&[Op::Cmd(&["HSET", "h", "g", "2"])], &[Op::Cmd(&["HDEL", "h", "f"])]]);
/// Two writes whose records do not commute: SADD then SREM of the same member leaves it out,
/// SREM then SADD leaves it in.
const SADD_VS_SREM_SAME_MEMBER: Race =
    Race::new(ONE_MEMBER, &[&[Op::Cmd(&["SADD", "s", "b"])], &[Op::Cmd(&["SREM", "s", "b"])]]);
const HSET_VS_HDEL_SAME_FIELD: Race =
    Race::new(ONE_FIELD, &[&[Op::Cmd(&["HSET", "h", "g", "2"])], &[Op::Cmd(&["HDEL", "h", "g"])]]);

/// SADD racing the SREM that empties the set (removing the key, marking its cell `dead`): the
/// member never lands in the removed set; SADD retries and recreates the key, and the log
/// replays to memory.
#[test]
fn sadd_racing_emptying_srem_never_writes_a_dead_set() {
    SADD_VS_EMPTYING_SREM.model();
}

/// HSET racing the HDEL that empties the hash: the same protocol, on a hash.
#[test]
fn hset_racing_emptying_hdel_never_writes_a_dead_hash() {
    HSET_VS_EMPTYING_HDEL.model();
}

/// Same-key writes that do not commute are logged in the order they were applied.
#[test]
fn same_key_set_and_hash_records_are_in_apply_order() {
    SADD_VS_SREM_SAME_MEMBER.model();
    HSET_VS_HDEL_SAME_FIELD.model();
}

/// SMOVE (exclusive on both keys) racing SADD to its source: the member moves exactly once and
/// SINTERSTORE racing an emptying SREM of one of its sources sees all of the SREM or none of it.
#[test]
fn multi_key_set_commands_are_atomic_against_single_key_writers() {
    Race::new(
        &[Op::Cmd(&["SADD", "a", "x"]), Op::Cmd(&["SADD", "b", "y"])],
        &[&[Op::Cmd(&["SMOVE", "a", "b", "x"])], &[Op::Cmd(&["SADD", "a", "z"])]],
    )
    .model();
    Race::new(
        &[Op::Cmd(&["SADD", "a", "x"]), Op::Cmd(&["SADD", "b", "x"])],
        &[&[Op::Cmd(&["SINTERSTORE", "d", "a", "b"])], &[Op::Cmd(&["SREM", "a", "x"])]],
    )
    .model();
}

/// Broken: SADD ignores the `dead` mark and adds into the set an emptying SREM just removed: its
/// member is lost from memory though SADD answered 1.
#[test]
#[should_panic(expected = "not linearizable")]
fn broken_sadd_ignores_dead_mark() {
    let _f = inject(Fault::CellIgnoreDead);
    SADD_VS_EMPTYING_SREM.model();
}

/// Broken: HSET ignores the `dead` mark of a hash an emptying HDEL just removed.
#[test]
#[should_panic(expected = "not linearizable")]
fn broken_hset_ignores_dead_mark() {
    let _f = inject(Fault::CellIgnoreDead);
    HSET_VS_EMPTYING_HDEL.model();
}

/// Broken: set writes enqueue their record after releasing the cell lock, so SADD and SREM of
/// one member can be logged in the other order than they were applied.
#[test]
#[should_panic(expected = "replay differs from memory")]
fn broken_set_log_outside_cell_lock() {
    let _f = inject(Fault::CellLogOutsideLock);
    SADD_VS_SREM_SAME_MEMBER.model();
}

/// Broken: hash writes enqueue their record after releasing the cell lock.
#[test]
#[should_panic(expected = "replay differs from memory")]
fn broken_hash_log_outside_cell_lock() {
    let _f = inject(Fault::CellLogOutsideLock);
    HSET_VS_HDEL_SAME_FIELD.model();
}

/// SDIFF (which locks its keys' stripes itself) racing an EXEC that adds one member to both of its
/// keys: it sees the whole transaction or none of it (both answer empty; half of it would answer
/// the member), and never waits on itself (a reader's wait for a transaction must not hold the
/// stripes it then takes).
#[test]
fn sdiff_racing_exec_sees_all_or_nothing_of_it() {
    Race::new(
        &[],
        &[
            &[Op::Cmd(&["MULTI"]), Op::Cmd(&["SADD", "a", "x"]), Op::Cmd(&["SADD", "b", "x"]), Op::Cmd(&["EXEC"])],
            &[Op::Cmd(&["SDIFF", "a", "b"])],
        ],
    )
    .sessions()
    .model();
}
