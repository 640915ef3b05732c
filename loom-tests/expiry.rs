//! Family 6: lazy expiry (a write that finds its key expired deletes it and logs `DEL` under the
//! exclusive stripe, `WriteLock::lookup`) racing active expiry (`Keyspace::expire_cycle`, which
//! re-checks the entry under the stripe). The key is made expired with the clock the models pass in
//! (set at 500 with PX 500, raced at 2000), never with real time.

use flurrydb::sync::fault::Fault;

use crate::harness::{Op, Race, inject, records};

const EXPIRING: &[Op] = &[Op::Cmd(&["SET", "k", "5", "PX", "500"])];

const fn at_2000(r: Race) -> Race {
    Race { setup_ms: 500, now_ms: 2_000, ..r }
}

const DEL_VS_CYCLE: Race = at_2000(Race::new(EXPIRING, &[&[Op::Cmd(&["DEL", "k"])], &[Op::ExpireCycle]]));
const SET_VS_CYCLE: Race = at_2000(Race::new(EXPIRING, &[&[Op::Cmd(&["SET", "k", "new"])], &[Op::ExpireCycle]]));
const INCR_VS_CYCLE: Race = at_2000(Race::new(EXPIRING, &[&[Op::Cmd(&["INCR", "k"])], &[Op::ExpireCycle]]));

fn one_del(log: &[u8]) {
    let dels = records(log).iter().filter(|(_, argv)| argv[0] == "DEL").count();
    assert_eq!(dels, 1, "the expired key is removed (and logged) exactly once");
}

/// DEL (lazy: its lookup finds the key expired) racing the active cycle: the key is removed once and
/// exactly one `DEL` is logged.
#[test]
fn lazy_and_active_expiry_remove_the_key_once() {
    DEL_VS_CYCLE.model_with(one_del);
}

/// A SET that lazily deletes and recreates the key racing the cycle: the new key is never removed.
#[test]
fn active_expiry_never_removes_a_recreated_key() {
    SET_VS_CYCLE.model();
}

/// INCR (its fast path sees the key expired and falls back to the exclusive path) racing the cycle.
#[test]
fn incr_of_an_expired_key_racing_active_expiry() {
    INCR_VS_CYCLE.model();
}

/// Broken: the cycle removes the key without re-checking it under the lock: it deletes the key a
/// SET just recreated.
#[test]
#[should_panic(expected = "not linearizable")]
fn broken_expire_without_recheck_removes_a_recreated_key() {
    let _f = inject(Fault::ExpireNoRecheck);
    SET_VS_CYCLE.model();
}

/// Broken: the same, caught by the DEL count: the cycle logs a second `DEL` for a key that the lazy
/// path already removed (memory and replay agree, the log does not).
#[test]
#[should_panic(expected = "exactly once")]
fn broken_expire_without_recheck_logs_a_second_del() {
    let _f = inject(Fault::ExpireNoRecheck);
    DEL_VS_CYCLE.model_with(one_del);
}
