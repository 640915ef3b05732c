//! Family 1: INCR/DECR's fast path (a CAS on the integer cell under the SHARED stripe, then the
//! `INCRBY` record) against each other and against the exclusive writes of the same key.

use flurrydb::sync::fault::Fault;

use crate::harness::{Op, Race, inject};

const SETUP: &[Op] = &[Op::Cmd(&["SET", "k", "5"])];

/// Two fast-path INCRs and a DECRBY on one key: no increment is lost, and the three `INCRBY`
/// records (possibly enqueued in another order than the CASes) replay to the same value.
#[test]
fn concurrent_incrs_lose_none() {
    Race::new(SETUP, &[&[Op::Cmd(&["INCR", "k"])], &[Op::Cmd(&["INCR", "k"]), Op::Cmd(&["DECRBY", "k", "3"])]]).model();
}

/// Two INCRs one step below i64::MAX: exactly one succeeds, the other gets the overflow error
/// (never a wrapped value), and only the successful one is logged.
#[test]
fn incr_overflow_is_reported_not_wrapped() {
    const AT_MAX: &[Op] = &[Op::Cmd(&["SET", "k", "9223372036854775806"])];
    Race::new(AT_MAX, &[&[Op::Cmd(&["INCR", "k"])], &[Op::Cmd(&["INCR", "k"])]]).model();
}

const INCR_VS_SET: Race = Race::new(SETUP, &[&[Op::Cmd(&["INCR", "k"])], &[Op::Cmd(&["SET", "k", "10"])]]);
const INCR_VS_DEL: Race = Race::new(SETUP, &[&[Op::Cmd(&["INCR", "k"])], &[Op::Cmd(&["DEL", "k"])]]);
const INCR_VS_RENAME: Race =
    Race::new(SETUP, &[&[Op::Cmd(&["INCR", "k"])], &[Op::Cmd(&["RENAME", "k", "j"]), Op::Cmd(&["INCR", "j"])]]);

/// INCR racing SET of the same key: the state is that of one serial order and the log replays to it.
#[test]
fn incr_racing_set_is_serializable() {
    INCR_VS_SET.model();
}

/// INCR racing DEL of the same key (the INCR may recreate it through the exclusive path).
#[test]
fn incr_racing_del_is_serializable() {
    INCR_VS_DEL.model();
}

/// INCR racing RENAME of its key (then an INCR of the new name): the moved value carries every
/// increment that happened before the rename, none after.
#[test]
fn incr_racing_rename_is_serializable() {
    INCR_VS_RENAME.model();
}

/// Broken: INCR enqueues its record after releasing the stripe, so a SET can log in between and
/// the file says SET then INCRBY while memory did INCR then SET.
#[test]
#[should_panic(expected = "replay differs from memory")]
fn broken_incr_log_outside_lock_vs_set() {
    let _f = inject(Fault::IncrLogOutsideLock);
    INCR_VS_SET.model();
}

/// Broken: the same, caught by DEL (the file has DEL then INCRBY: replay recreates the key).
#[test]
#[should_panic(expected = "replay differs from memory")]
fn broken_incr_log_outside_lock_vs_del() {
    let _f = inject(Fault::IncrLogOutsideLock);
    INCR_VS_DEL.model();
}

/// Broken: the same, caught by RENAME (the increment lands on the wrong key in the replay).
#[test]
#[should_panic(expected = "replay differs from memory")]
fn broken_incr_log_outside_lock_vs_rename() {
    let _f = inject(Fault::IncrLogOutsideLock);
    INCR_VS_RENAME.model();
}

/// Broken: SET enqueues its record after releasing the stripe, so an INCR of the new value logs first.
#[test]
#[should_panic(expected = "replay differs from memory")]
fn broken_set_log_outside_lock_vs_incr() {
    let _f = inject(Fault::SetLogOutsideLock);
    INCR_VS_SET.model();
}
