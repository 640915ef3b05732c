//! Family 5: the rewrite switch. `Keyspace::start_rewrite` takes every stripe, pushes the rewrite
//! marker and snapshots the keyspace; a spawned thread writes the snapshot as the new file's base
//! and commits; the writer appends every record queued after the marker (the tail) and switches
//! files. Writes racing it must be in the base or in the tail, never both, never neither.

use flurrydb::sync::fault::Fault;

use crate::harness::{Op, Race, inject};

/// The APPEND is logged as APPEND but rewritten as SET: the harness tells the new file by it.
const SETUP: &[Op] = &[Op::Cmd(&["APPEND", "s", "v"]), Op::Cmd(&["SET", "a", "1"]), Op::Cmd(&["RPUSH", "l", "x"])];

/// An INCR (shared-stripe fast path) then an RPUSH (list fast path) race the rewrite: the new file
/// (base + tail) replays to exactly the keyspace in memory.
const WRITES_VS_REWRITE: Race =
    Race::new(SETUP, &[&[Op::Cmd(&["INCR", "a"]), Op::Cmd(&["RPUSH", "l", "y"])], &[Op::StartRewrite]]);

/// A SET then a DEL (exclusive stripe) race the rewrite.
const EXCLUSIVE_VS_REWRITE: Race =
    Race::new(SETUP, &[&[Op::Cmd(&["SET", "b", "2"]), Op::Cmd(&["DEL", "a"])], &[Op::StartRewrite]]);

#[test]
fn fast_path_writes_racing_rewrite_are_neither_lost_nor_doubled() {
    WRITES_VS_REWRITE.model();
}

#[test]
fn exclusive_writes_racing_rewrite_are_neither_lost_nor_doubled() {
    EXCLUSIVE_VS_REWRITE.model();
}

/// Broken: the marker is pushed after the snapshot, with the stripes already released: a write in
/// between is in neither the base nor the tail.
#[test]
#[should_panic(expected = "replay differs from memory")]
fn broken_rewrite_marker_outside_the_locks() {
    let _f = inject(Fault::RewriteMarkerOutsideLock);
    WRITES_VS_REWRITE.model();
}
