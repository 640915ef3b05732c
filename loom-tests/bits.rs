//! Bitmaps and HyperLogLogs: writes replace the string under the key's exclusive stripe and push
//! their record before releasing it; a SETBIT or PFADD that changes nothing answers from a
//! lock-free read (no record). Against each other and against other writes of the same key, every
//! outcome is that of one serial order and the log replays to it.

use flurrydb::sync::fault::Fault;

use crate::harness::{Op, Race, inject};

/// `k` is one byte with bit 6 set (bit 7 clear); `h` an HLL holding "a".
const SETUP: &[Op] = &[Op::Cmd(&["SETBIT", "k", "6", "1"]), Op::Cmd(&["PFADD", "h", "a"])];

/// Two SETBITs of the same bit to different values (the second a no-op unless the first ran
/// before it): the last one applied is the one the log replays last.
const SETBIT_VS_SETBIT: Race =
    Race::new(SETUP, &[&[Op::Cmd(&["SETBIT", "k", "7", "1"])], &[Op::Cmd(&["SETBIT", "k", "7", "0"])]]);

#[test]
fn setbits_of_one_bit_are_serializable() {
    SETBIT_VS_SETBIT.model();
}

/// A no-op SETBIT (lock-free) racing SET and DEL of its key.
#[test]
fn noop_setbit_racing_set_and_del_is_serializable() {
    Race::new(SETUP, &[&[Op::Cmd(&["SETBIT", "k", "6", "1"])], &[Op::Cmd(&["SET", "k", "x"]), Op::Cmd(&["DEL", "k"])]])
        .model();
}

/// PFADD that changes the HLL racing a no-op PFADD, PFCOUNT (which rewrites the cached
/// cardinality) and DEL.
#[test]
fn pfadds_racing_pfcount_and_del_are_serializable() {
    Race::new(
        SETUP,
        &[
            &[Op::Cmd(&["PFADD", "h", "b"]), Op::Cmd(&["PFADD", "h", "a"])],
            &[Op::Cmd(&["PFCOUNT", "h"]), Op::Cmd(&["DEL", "h"])],
        ],
    )
    .model();
}

/// BITOP reading a key that SETBIT writes: the destination holds one serial order's result.
#[test]
fn bitop_racing_setbit_is_serializable() {
    Race::new(SETUP, &[&[Op::Cmd(&["BITOP", "NOT", "d", "k"])], &[Op::Cmd(&["SETBIT", "k", "0", "1"])]]).model();
}

/// SETBIT changing a `raw` string in place (shared stripe + cell lock), one growing it, racing a
/// GET of the same key: GET sees the string before or after, never a torn one.
const SETBIT_IN_PLACE_VS_GET: Race =
    Race::new(SETUP, &[&[Op::Cmd(&["SETBIT", "k", "15", "1"])], &[Op::Cmd(&["GET", "k"])]]);

/// Two in-place SETBITs of different bits (one grows the string): neither change is lost, and the
/// log replays to memory.
const SETBITS_IN_PLACE: Race =
    Race::new(SETUP, &[&[Op::Cmd(&["SETBIT", "k", "15", "1"])], &[Op::Cmd(&["SETBIT", "k", "0", "1"])]]);

#[test]
fn setbit_in_place_racing_get_is_serializable() {
    SETBIT_IN_PLACE_VS_GET.model();
}

#[test]
fn setbits_in_place_of_different_bits_are_serializable() {
    SETBITS_IN_PLACE.model();
}

/// APPEND and SETRANGE in place racing each other and a GETRANGE.
#[test]
fn append_and_setrange_in_place_are_serializable() {
    Race::new(
        SETUP,
        &[
            &[Op::Cmd(&["APPEND", "k", "ab"])],
            &[Op::Cmd(&["SETRANGE", "k", "1", "z"]), Op::Cmd(&["GETRANGE", "k", "0", "-1"])],
        ],
    )
    .model();
}

/// Broken: the in-place write changes a copy and stores it back in two steps without the cell
/// lock: the GET sees the string grown but the bit not yet set.
#[test]
#[should_panic(expected = "not linearizable")]
fn broken_setbit_edit_outside_lock_torn_read() {
    let _f = inject(Fault::BitEditOutsideLock);
    SETBIT_IN_PLACE_VS_GET.model();
}

/// Broken: the same, racing another SETBIT: one of the two changes is lost (and the log, which has
/// both, replays to something else).
#[test]
#[should_panic(expected = "not linearizable")]
fn broken_setbit_edit_outside_lock_lost_update() {
    let _f = inject(Fault::BitEditOutsideLock);
    SETBITS_IN_PLACE.model();
}

/// Broken: SETBIT pushes its record after releasing the stripe, so the two records of the same
/// bit can be in the other order than the writes.
#[test]
#[should_panic(expected = "replay differs from memory")]
fn broken_setbit_log_outside_lock() {
    let _f = inject(Fault::BitLogOutsideLock);
    SETBIT_VS_SETBIT.model();
}
