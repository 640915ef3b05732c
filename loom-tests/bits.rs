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

/// Broken: SETBIT pushes its record after releasing the stripe, so the two records of the same
/// bit can be in the other order than the writes.
#[test]
#[should_panic(expected = "replay differs from memory")]
fn broken_setbit_log_outside_lock() {
    let _f = inject(Fault::BitLogOutsideLock);
    SETBIT_VS_SETBIT.model();
}
