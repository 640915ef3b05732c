//! Eviction (`db::evict`) racing writes to the key it evicts: the victim is deleted and its `DEL`
//! pushed under the key's exclusive stripe, so a concurrent SET either comes after the eviction
//! (the key holds the new value) or before it (the key is gone), and the AOF replays to what
//! memory holds either way.

use flurrydb::sync::fault::Fault;

use crate::harness::{Op, Race, inject};

const ONE_KEY: &[Op] = &[Op::Cmd(&["SET", "k", "1"])];

const SET_VS_EVICT: Race = Race::new(ONE_KEY, &[&[Op::Cmd(&["SET", "k", "new"])], &[Op::Evict]]);
const INCR_VS_EVICT: Race = Race::new(ONE_KEY, &[&[Op::Cmd(&["INCR", "k"])], &[Op::Evict]]);

/// SET of the key being evicted: linearizable, and the log replays to memory.
#[test]
fn eviction_racing_a_set_of_its_key() {
    SET_VS_EVICT.model();
}

/// INCR (its shared-stripe fast path) of the key being evicted.
#[test]
fn eviction_racing_an_incr_of_its_key() {
    INCR_VS_EVICT.model();
}

/// Broken: the eviction pushes its `DEL` after releasing the stripe: a SET in between is logged
/// before the `DEL`, so the replay loses the key that memory holds.
#[test]
#[should_panic(expected = "replay differs from memory")]
fn broken_eviction_logging_outside_the_stripe() {
    let _f = inject(Fault::EvictLogOutsideLock);
    SET_VS_EVICT.model();
}
