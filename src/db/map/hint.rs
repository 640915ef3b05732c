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
//! One table for every map of the process, indexed by the bits of the key hash that fix its
//! bucket (a part's bucket at depth `d` is fixed by the hash's low `PART_BITS + d` bits), at most
//! [`HINT_BITS`] of them: each bucket has one hint entry (from depth `HINT_BITS - PART_BITS` on,
//! several buckets share one, the last written wins). Writers store the slot and block they publish,
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

/// The hint entry in `table` of the bucket at `depth` of the keys with `hash` (or the bucket's id).
fn entry(table: &[Hint; HINTS], hash: u64, depth: u32) -> &Hint {
    let bits = (PART_BITS + depth).min(HINT_BITS);
    &table[hash as usize & ((1 << bits) - 1)]
}

thread_local! {
    /// Lookups of this thread still covered by a batch's [`KeyMap::prefetch`](super::KeyMap::prefetch):
    /// they skip the hint (what it would load is loaded already). A heuristic: another lookup
    /// taking one of them only moves which lookup goes unhinted.
    static COVERED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The next `n` lookups of this thread were prefetched by a batch.
pub(super) fn covered(n: usize) {
    COVERED.with(|c| c.set(n as u32));
}

/// Start loading what a lookup of a key with `hash`, in a part at `depth`, will read: its
/// bucket's slot and block as last published (unless a batch's prefetch covered it).
#[inline]
pub(super) fn prefetch(hash: u64, depth: u32) {
    // Under loom: nothing (hints order nothing; the models stay as they are).
    if cfg!(feature = "loom") {
        return;
    }
    let covered = COVERED.with(|c| {
        let n = c.get();
        c.set(n.saturating_sub(1));
        n > 0
    });
    if !covered {
        prefetch_in(&TABLE, hash, depth)
    }
}

fn prefetch_in(table: &[Hint; HINTS], hash: u64, depth: u32) {
    let h = entry(table, hash, depth);
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

/// Bucket `hash`'s (its id, or a hash of one of its keys) slot is `slot` (None: unknown) and its block `b`
/// (null: none) of `size` bytes, at `depth`. The caller holds the bucket's exclusive stripe.
#[inline]
pub(super) fn set(hash: u64, depth: u32, slot: Option<&Slot>, b: *mut BlockHead, size: usize) {
    if !cfg!(feature = "loom") {
        set_in(&TABLE, hash, depth, slot, b, size)
    }
}

fn set_in(table: &[Hint; HINTS], hash: u64, depth: u32, slot: Option<&Slot>, b: *mut BlockHead, size: usize) {
    let h = entry(table, hash, depth);
    let lines = if b.is_null() { 0 } else { size.div_ceil(LINE) };
    debug_assert!((b as usize) >> PTR_BITS == 0);
    h.slot.store(slot.map_or(0, |s| s as *const Slot as usize), Relaxed);
    h.block.store(b as usize | lines << PTR_BITS, Relaxed);
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn hints_are_kept_per_bucket_and_read_back() {
        // A table of the test's own (the process's is shared by every test's maps).
        let table: Box<[Hint; HINTS]> = (0..HINTS)
            .map(|_| Hint { slot: AtomicUsize::new(0), block: AtomicUsize::new(0) })
            .collect::<Vec<_>>()
            .try_into()
            .unwrap_or_else(|_| unreachable!());
        let t = &*table;
        let hash = 0x1234_5678_9abc_def0u64;
        let slot = Slot::new(std::ptr::null_mut());
        set_in(t, hash, 8, Some(&slot), 0x7f00_0000_1000 as *mut BlockHead, 130);
        let h = entry(t, hash, 8);
        assert_eq!(h.slot.load(Relaxed), &slot as *const Slot as usize);
        assert_eq!(h.block.load(Relaxed), 0x7f00_0000_1000 | 3 << PTR_BITS);
        // Every key of a bucket reads its entry (at depth 2 the bucket is the hash's low 12
        // bits), and the bucket's id finds it too; other buckets have other entries.
        assert!(std::ptr::eq(entry(t, 0xfff, 2), entry(t, 0xabc_0fff, 2)));
        assert!(std::ptr::eq(entry(t, 0xfff, 2), entry(t, super::super::bucket_id(0x3ff, 2, 3), 2)));
        assert!(!std::ptr::eq(entry(t, 0x0fff, 3), entry(t, 0x1fff, 3)));
        // Prefetching it, or a stale or dangling hint, is harmless.
        prefetch_in(t, hash, 8);
        set_in(t, hash, 8, None, 0xdead_0000 as *mut BlockHead, 1 << 20);
        prefetch_in(t, hash, 8);
        set_in(t, hash, 8, None, std::ptr::null_mut(), 0);
        assert_eq!(h.block.load(Relaxed), 0);
        assert_eq!(h.slot.load(Relaxed), 0);
    }
}
