//! Prefetch hints: where a bucket's slot and block were last seen, so that a lone lookup loads
//! them while it walks the directory.
//!
//! A lookup is a chain of dependent loads: flurry's bin, its node, the bucket's [`Slot`] (flurry's
//! value allocation), the block's header, the key's entry. In a pipelined batch the chains of
//! different keys overlap ([`KeyMap::prefetch`](super::KeyMap::prefetch)); a lone request (P1) has
//! nothing to overlap them with, and on a keyspace larger than the core's caches each link is a
//! miss (perf, SET P1 on 1M keys: the slot's and the header's loads were 70% of `KeyMap::insert`,
//! itself 16% of the server's CPU). A hint is read from the key's hash alone, so the slot and
//! the block start loading at once, beside the bin and node misses that flurry's walk takes.
//!
//! One table for every map of the process, indexed by the key hash's low [`HINT_BITS`] bits: a
//! part's bucket at depth `d` is fixed by the hash's low `PART_BITS + d` bits, so from depth
//! [`MIN_DEPTH`] on each bucket has one hint entry (several buckets may share one; a smaller
//! keyspace stays in the caches and is not hinted). Writers store the slot and block they publish,
//! relaxed, under the bucket's stripe; readers load them relaxed and only PREFETCH them: a hint
//! that is stale (a block since replaced and freed, a slot removed, another bucket's or another
//! database's) costs a useless prefetch, never a read (a prefetch does not fault, whatever the
//! address). Nothing is ever dereferenced from here.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::{BlockHead, PART_BITS, Slot};
use crate::db::block;

/// log2 of the hint entries (16 bytes each: 1 MiB of zeroed, untouched-until-written memory).
const HINT_BITS: u32 = 16;
const HINTS: usize = 1 << HINT_BITS;
/// The least depth whose buckets each have one hint entry.
pub(super) const MIN_DEPTH: u32 = HINT_BITS - PART_BITS;
/// The block pointer's bits (user space on x86_64 and aarch64 is below 2^48); its size in cache
/// lines goes above them.
const PTR_BITS: u32 = 48;
/// The most lines of a block a hint loads (what a write copies of a small bucket's block).
const MAX_LINES: usize = 16;
const LINE: usize = 64;

#[repr(C, align(16))]
struct Hint {
    slot: AtomicUsize,
    /// The block's address | its size in lines << PTR_BITS.
    block: AtomicUsize,
}

static TABLE: [Hint; HINTS] = [const { Hint { slot: AtomicUsize::new(0), block: AtomicUsize::new(0) } }; HINTS];

fn entry(hash: u64) -> &'static Hint {
    &TABLE[hash as usize & (HINTS - 1)]
}

/// Start loading what a lookup of a key with `hash`, in a part at `depth`, will read: its
/// bucket's slot and block as last published.
#[inline]
pub(super) fn prefetch(hash: u64, depth: u32) {
    // Under loom: nothing (hints order nothing; the models stay as they are).
    if cfg!(feature = "loom") || depth < MIN_DEPTH {
        return;
    }
    let h = entry(hash);
    let slot = h.slot.load(Relaxed);
    let block = h.block.load(Relaxed);
    if slot != 0 {
        block::prefetch_line(slot as *const u8);
    }
    let at = block & ((1 << PTR_BITS) - 1);
    if at != 0 {
        let lines = (block >> PTR_BITS).min(MAX_LINES);
        for i in 0..lines {
            block::prefetch_line((at + i * LINE) as *const u8);
        }
    }
}

/// Bucket `hash`'s (a hash of one of its keys) slot is `slot` (None: unknown) and its block `b`
/// (null: none) of `size` bytes, at `depth`. The caller holds the bucket's exclusive stripe.
#[inline]
pub(super) fn set(hash: u64, depth: u32, slot: Option<&Slot>, b: *mut BlockHead, size: usize) {
    if cfg!(feature = "loom") || depth < MIN_DEPTH {
        return;
    }
    let h = entry(hash);
    let lines = if b.is_null() { 0 } else { size.div_ceil(LINE) };
    debug_assert!((b as usize) >> PTR_BITS == 0);
    h.slot.store(slot.map_or(0, |s| s as *const Slot as usize), Relaxed);
    h.block.store(b as usize | lines << PTR_BITS, Relaxed);
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn hints_are_kept_from_min_depth_and_read_back() {
        // A hash whose entry no other test of this process uses is not guaranteed: check only
        // what a set writes, right after it (tests of one thread).
        let hash = 0x1234_5678_9abc_def0u64;
        set(hash, MIN_DEPTH - 1, None, 0x1000 as *mut BlockHead, 100);
        let slot = Slot::new(std::ptr::null_mut());
        set(hash, MIN_DEPTH, Some(&slot), 0x7f00_0000_1000 as *mut BlockHead, 130);
        let h = entry(hash);
        assert_eq!(h.slot.load(Relaxed), &slot as *const Slot as usize);
        assert_eq!(h.block.load(Relaxed), 0x7f00_0000_1000 | 3 << PTR_BITS);
        // Prefetching it (and a stale or dangling hint) is harmless.
        prefetch(hash, MIN_DEPTH);
        set(hash, MIN_DEPTH, None, 0xdead_0000 as *mut BlockHead, 1 << 20);
        prefetch(hash, MIN_DEPTH + 3);
        set(hash, MIN_DEPTH, None, std::ptr::null_mut(), 0);
        assert_eq!(h.block.load(Relaxed), 0);
    }
}
