//! Family: the keyspace's blocks (`db::block`, `db::map`). A bucket's keys share one immutable
//! block that every insert, replace, delete or expiry change copies under the EXCLUSIVE stripe,
//! while INCR CASes an integer cell inside the block under the SHARED stripe; a part grows
//! (doubles its buckets) under its exclusive stripe while readers take no lock; a collection
//! emptied under the shared stripe is removed (a block copy) under the exclusive one.
//!
//! Under loom there are 2 parts (and stripes): "a", "c", "k" and "m" hash (FNV-1a) to part 0, and
//! a part grows when it holds a third key.

use flurrydb::sync::fault::Fault;

use crate::harness::{Op, Race, inject};

/// INCR of `k` (a CAS on its cell, shared stripe) racing SET of `a`, a key of the same block
/// (a block copy, exclusive stripe): the copy never loses the increment.
const INCR_VS_BLOCK_COPY: Race = Race::new(
    &[Op::Cmd(&["SET", "k", "5"]), Op::Cmd(&["SET", "a", "x"])],
    &[&[Op::Cmd(&["INCR", "k"])], &[Op::Cmd(&["SET", "a", "y"]), Op::Cmd(&["GET", "k"])]],
);

#[test]
fn a_block_copy_never_loses_an_incr_of_the_same_block() {
    INCR_VS_BLOCK_COPY.model();
}

/// Broken: SET copies the block under the shared stripe: an INCR that CASes the old block's
/// cell after the copy read it is lost from memory, though its record is in the log.
#[test]
#[should_panic(expected = "not linearizable")]
fn broken_block_copy_under_shared_stripe_loses_an_incr() {
    let _f = inject(Fault::BlockCopyUnderShared);
    INCR_VS_BLOCK_COPY.model();
}

/// SET of `k` makes part 0 grow (its third key) while another client reads `a` and increments
/// `c`, two keys of the same part: the reader always finds `a` (old block or new), the INCR waits
/// for the growth (its stripe) and lands in the new block.
const GROWTH_VS_READER_AND_WRITER: Race = Race::new(
    &[Op::Cmd(&["SET", "a", "1"]), Op::Cmd(&["SET", "c", "2"])],
    &[&[Op::Cmd(&["SET", "k", "3"])], &[Op::Cmd(&["GET", "a"]), Op::Cmd(&["INCR", "c"])]],
);

#[test]
fn a_growing_part_stays_readable_and_writable() {
    GROWTH_VS_READER_AND_WRITER.model();
}

/// Broken: the growth removes the part's old slots before it publishes the new depth: a reader
/// that loaded the old depth misses `a`'s bucket, finds the depth unchanged and answers nil.
#[test]
#[should_panic(expected = "not linearizable")]
fn broken_growth_removing_before_publishing_loses_a_read() {
    let _f = inject(Fault::GrowRemoveBeforePublish);
    GROWTH_VS_READER_AND_WRITER.model();
}

/// LPOP empties list `m` under the shared stripe (marks its cell dead, logs), then removes the key
/// under the exclusive stripe; a concurrent RPUSH to `m` finds the dead cell and recreates the
/// key exclusively; an INCR of `k` (same block) before it CASes meanwhile.
const EMPTYING_POP_VS_PUSH: Race = Race::new(
    &[Op::Cmd(&["RPUSH", "m", "x"]), Op::Cmd(&["SET", "k", "5"])],
    &[&[Op::Cmd(&["LPOP", "m"])], &[Op::Cmd(&["INCR", "k"]), Op::Cmd(&["RPUSH", "m", "y"])]],
);

#[test]
fn an_emptied_key_is_removed_exclusively_against_a_push() {
    EMPTYING_POP_VS_PUSH.model();
}

/// Broken: the emptying pop removes the key (a block copy) under the shared stripe: the INCR's
/// CAS on the old block is lost.
#[test]
#[should_panic(expected = "not linearizable")]
fn broken_emptied_key_removed_under_shared_stripe_loses_an_incr() {
    let _f = inject(Fault::DeadRemoveUnderShared);
    EMPTYING_POP_VS_PUSH.model();
}
