//! Family 2: the per-key list lock. Pushes and pops of a live list take the stripe SHARED plus the
//! list's own lock and log under it; a pop that empties the list removes the key and marks the cell
//! `dead`; creating or deleting the key takes the stripe exclusively.

use flurrydb::sync::fault::Fault;

use crate::harness::{Op, Race, inject};

const ONE: &[Op] = &[Op::Cmd(&["RPUSH", "l", "a"])];

const PUSHES_AND_POP: Race =
    Race::new(ONE, &[&[Op::Cmd(&["RPUSH", "l", "b"])], &[Op::Cmd(&["RPUSH", "l", "c"]), Op::Cmd(&["LPOP", "l"])]]);
const PUSH_VS_EMPTYING_POP: Race = Race::new(ONE, &[&[Op::Cmd(&["RPUSH", "l", "b"])], &[Op::Cmd(&["LPOP", "l"])]]);

/// Concurrent RPUSH/RPUSH/LPOP on one list: every element is popped or still there exactly once,
/// in an order some serial execution gives, and the records replay to the same list.
#[test]
fn pushes_and_pops_keep_every_element_once_in_order() {
    PUSHES_AND_POP.model();
}

/// RPUSH racing the LPOP that empties the list (and removes the key, marking its cell `dead`): the
/// push never lands in the removed list; it retries and recreates the key.
#[test]
fn push_racing_emptying_pop_never_writes_a_dead_list() {
    PUSH_VS_EMPTYING_POP.model();
}

/// A push racing DEL of the list: the push is ordered before the DEL or recreates the key after it.
#[test]
fn push_racing_del_never_writes_a_deleted_list() {
    Race::new(ONE, &[&[Op::Cmd(&["RPUSH", "l", "b"])], &[Op::Cmd(&["DEL", "l"])]]).model();
}

/// A push racing SET of the key (a type change): the push gets WRONGTYPE or happens before the SET.
#[test]
fn push_racing_set_never_writes_a_replaced_list() {
    Race::new(ONE, &[&[Op::Cmd(&["LPUSH", "l", "b"])], &[Op::Cmd(&["SET", "l", "s"])]]).model();
}

/// Broken: a push ignores the `dead` mark and writes into the list a pop just removed: its element
/// is lost from memory while its record recreates the key on replay.
#[test]
#[should_panic(expected = "not linearizable")]
fn broken_push_ignores_dead_mark() {
    let _f = inject(Fault::CellIgnoreDead);
    PUSH_VS_EMPTYING_POP.model();
}

/// Broken: list writes enqueue their record after releasing the list lock, so two pushes (or a
/// push and a pop) can be logged in the other order than they were applied.
#[test]
#[should_panic(expected = "replay differs from memory")]
fn broken_list_log_outside_list_lock() {
    let _f = inject(Fault::CellLogOutsideLock);
    PUSHES_AND_POP.model();
}
