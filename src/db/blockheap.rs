//! The keyspace's heap of blocks: one dlmalloc heap that every thread shares, under a lock, with a
//! small per-thread cache of free blocks of up to [`SMALL_MAX`] bytes in front of it (as glibc's).
//!
//! Every write of a bucket copies its block (see `block`), so the keyspace allocates and frees
//! blocks at the rate of the writes. glibc gives each thread its own arena for the chunks its
//! per-thread cache (up to 1032 bytes, 7 of each size) does not serve, and a chunk freed goes back
//! to the arena it came from, reused only by that arena's threads. A connection's task moves
//! between the runtime's workers: the blocks it allocated on one worker were freed into that
//! worker's arena while their copies came from the other's, each arena kept its own free chunks,
//! and the resident set grew by the sum of the arenas' peaks (1M SETs of 100-byte values, blocks
//! of 1-12 KB: 151 B/key while the task stayed on one worker, 167-236 when it moved). One arena
//! for every thread (`mallopt(M_ARENA_MAX, 1)`) kept it at 151, but then every allocation past
//! the per-thread cache, the connections' and replication's as well as the blocks', shared one
//! arena's lock and lines: SET at pipeline 16 on a primary feeding two replicas lost 6-7%. Here
//! only the blocks share a heap: its free chunks serve the next block whichever thread allocates
//! it; everything else keeps glibc's per-thread arenas.
//!
//! Only blocks past the cache's limit in the heap (the rest from glibc) was tried: a bucket's
//! block crosses the limit as it grows and splits, so the two allocators each kept free chunks
//! of the other's sizes (16-byte values with an expiry: 87 B/key instead of 69).
//!
//! dlmalloc (the allocator glibc's malloc descends from: best-fit bins, free neighbours merged)
//! takes its memory from the system in mmap'd segments of [`GRANULARITY`]. A block's bytes count
//! in the used memory (INFO `used_memory`, `maxmemory`) as glibc's chunk of its size would
//! (`memory::count_block_heap`), from its allocation to its free (not while cached).

use std::alloc::Layout;
use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};

use dlmalloc::Dlmalloc;
use parking_lot::Mutex;

use crate::memory::{chunk_bytes, count_block_heap};

/// The largest block kept in a thread's cache of free small blocks (glibc's per-thread cache's
/// limit: 1032 usable bytes, a 1040-byte chunk).
pub const SMALL_MAX: usize = 1032;
/// Free small blocks a thread keeps per size class (glibc's per-thread cache keeps 7).
const DEPTH: usize = 16;
/// glibc's chunk step: the cache's size classes.
const STEP: usize = 16;
const CLASSES: usize = chunk_bytes(SMALL_MAX) / STEP + 1;
/// The heap's system allocations: mmap'd segments of this size at least (untouched pages of a
/// segment cost no resident memory).
const GRANULARITY: usize = 1 << 20;

/// The heap (dlmalloc is `Send`, not `Sync`: the lock makes it shared).
static HEAP: Mutex<Dlmalloc> = parking_lot::const_mutex(
    const {
        let mut d = Dlmalloc::new();
        assert!(d.set_granularity(GRANULARITY));
        d
    },
);

/// A thread's free small blocks, by class (chunk bytes / [`STEP`]), each allocated with its
/// class's size ([`heap_size`]); given back to the heap when the thread ends.
struct Cache {
    lists: [Vec<NonNull<u8>>; CLASSES],
}

impl Drop for Cache {
    fn drop(&mut self) {
        let mut heap = HEAP.lock();
        for (class, list) in self.lists.iter_mut().enumerate() {
            for p in list.drain(..) {
                // SAFETY: a cached block of this class: from the heap with the class's size.
                unsafe { heap.free(p.as_ptr(), class * STEP - 8, 8) }
            }
        }
    }
}

thread_local! {
    static CACHE: RefCell<Cache> = const { RefCell::new(Cache { lists: [const { Vec::new() }; CLASSES] }) };
}

/// The bytes the heap allocates for a block of `size` bytes: a small block its class's size
/// (glibc's usable size of the chunk `size` would get), so that any free block of the class
/// serves it; a large one its own size.
fn heap_size(size: usize) -> usize {
    if size <= SMALL_MAX { chunk_bytes(size) - 8 } else { size }
}

/// Where blocks come from: not decided yet (0), this heap (1), the global allocator (2). Decided
/// once, by [`use_global_allocator`] before the first block or by the first block, never changed.
static MODE: AtomicU8 = AtomicU8::new(0);
const HEAP_MODE: u8 = 1;
const GLOBAL_MODE: u8 = 2;

/// Take the blocks from the global allocator, not from this heap (a server started with
/// `maxmemory`: one malloc arena, whose free pages `malloc_trim` gives back while keys are evicted;
/// this heap gives back only its free top, and a cache at its limit frees blocks everywhere in it:
/// `tests/evict_rss.rs` grew the RSS by 12-14 MB at `maxmemory 8mb`). Call before the first block
/// is built; returns whether it took effect.
pub fn use_global_allocator() -> bool {
    // Relaxed: the mode orders nothing; every block allocated is freed by the mode it was
    // allocated under, since the mode never changes once a block exists.
    MODE.compare_exchange(0, GLOBAL_MODE, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        || MODE.load(Ordering::Relaxed) == GLOBAL_MODE
}

fn global() -> bool {
    match MODE.load(Ordering::Relaxed) {
        0 => match MODE.compare_exchange(0, HEAP_MODE, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => false,
            Err(m) => m == GLOBAL_MODE,
        },
        m => m == GLOBAL_MODE,
    }
}

fn global_layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap_or_else(|_| unreachable!("block sizes are checked"))
}

/// A block's allocation of `size` (> 0) bytes, 8-aligned, not zeroed: a small one from this
/// thread's cache when it holds one of its class.
pub fn allocate(size: usize) -> NonNull<u8> {
    if global() {
        let layout = global_layout(size);
        // SAFETY: `size` > 0.
        return NonNull::new(unsafe { std::alloc::alloc(layout) })
            .unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
    }
    let chunk = chunk_bytes(size);
    count_block_heap(chunk as i64);
    if size <= SMALL_MAX
        && let Ok(Some(p)) = CACHE.try_with(|c| c.borrow_mut().lists[chunk / STEP].pop())
    {
        return p;
    }
    let n = heap_size(size);
    // SAFETY: a non-zero size and a power-of-two alignment, as `GlobalAlloc::alloc` requires.
    let p = unsafe { HEAP.lock().malloc(n, 8) };
    NonNull::new(p).unwrap_or_else(|| {
        std::alloc::handle_alloc_error(std::alloc::Layout::from_size_align(n, 8).unwrap_or_else(|_| unreachable!()))
    })
}

/// Free a block's allocation: a small one into this thread's cache while its class has room
/// (half of it goes back to the heap when full).
///
/// # Safety
/// `p` came from [`allocate`] with this `size`; nothing uses it again.
pub unsafe fn release(p: NonNull<u8>, size: usize) {
    if global() {
        // SAFETY: the caller's contract; allocated by the global allocator (the mode never changes).
        return unsafe { std::alloc::dealloc(p.as_ptr(), global_layout(size)) };
    }
    let chunk = chunk_bytes(size);
    count_block_heap(-(chunk as i64));
    let n = heap_size(size);
    if size <= SMALL_MAX {
        let kept = CACHE.try_with(|c| {
            let mut c = c.borrow_mut();
            let list = &mut c.lists[chunk / STEP];
            if list.len() == DEPTH {
                let mut heap = HEAP.lock();
                for q in list.drain(DEPTH / 2..) {
                    // SAFETY: a cached block of this class: from the heap with size `n`.
                    unsafe { heap.free(q.as_ptr(), n, 8) }
                }
            }
            list.push(p);
        });
        if kept.is_ok() {
            return;
        }
    }
    // SAFETY: the caller's contract: allocated from `HEAP` with this size and alignment.
    unsafe { HEAP.lock().free(p.as_ptr(), n, 8) }
}

/// Give the heap's free top back to the system (MEMORY PURGE), and this thread's cached blocks.
pub fn trim() {
    let _ = CACHE.try_with(|c| {
        let mut c = c.borrow_mut();
        let mut heap = HEAP.lock();
        for (class, list) in c.lists.iter_mut().enumerate() {
            for q in list.drain(..) {
                // SAFETY: a cached block of this class: from the heap with the class's size.
                unsafe { heap.free(q.as_ptr(), class * STEP - 8, 8) }
            }
        }
    });
    // SAFETY: trimming only releases memory the heap holds free.
    unsafe {
        HEAP.lock().trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_block_freed_on_one_thread_serves_one_allocated_on_another() {
        let size = 4000;
        // Several tries: other tests may allocate from the heap meanwhile.
        let reused = (0..20).any(|_| {
            let a = std::thread::spawn(move || allocate(size).as_ptr() as usize).join().unwrap();
            // SAFETY: `a` has `size` bytes, freshly allocated.
            unsafe { std::ptr::write_bytes(a as *mut u8, 7, size) };
            // SAFETY: from `allocate(size)`, released once, not used again.
            std::thread::spawn(move || unsafe { release(NonNull::new(a as *mut u8).unwrap(), size) }).join().unwrap();
            let b = allocate(size);
            // SAFETY: from `allocate(size)`.
            unsafe { release(b, size) };
            b.as_ptr() as usize == a
        });
        assert!(reused, "the freed chunk is reused by another thread");
        trim();
    }

    #[test]
    fn many_blocks_of_mixed_sizes_keep_their_bytes() {
        let blocks: Vec<(NonNull<u8>, usize)> = (0..2000)
            .map(|i| {
                let size = 16 + (i * 37) % 9000;
                let p = allocate(size);
                // SAFETY: `size` bytes just allocated.
                unsafe { std::ptr::write_bytes(p.as_ptr(), (i % 251) as u8, size) };
                (p, size)
            })
            .collect();
        for (i, &(p, size)) in blocks.iter().enumerate() {
            assert_eq!(p.as_ptr() as usize % 8, 0);
            // SAFETY: still allocated; `size` bytes.
            let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), size) };
            assert!(bytes.iter().all(|&b| b == (i % 251) as u8), "block {i} intact");
        }
        for (p, size) in blocks {
            // SAFETY: each from `allocate(size)`, released once.
            unsafe { release(p, size) };
        }
    }

    #[test]
    fn a_small_block_is_kept_by_its_thread_and_serves_its_class() {
        let size = 500;
        let a = allocate(size);
        // SAFETY: from `allocate(size)`, released once.
        unsafe { release(a, size) };
        let b = allocate(size - 7);
        assert_eq!(a, b, "this thread's cached block, for a size of the same class");
        // A full class gives half back; the rest serve this thread.
        let ps: Vec<_> = (0..DEPTH + 1).map(|_| allocate(size)).collect();
        // SAFETY: each from `allocate(size)`, released once.
        ps.iter().for_each(|&p| unsafe { release(p, size) });
        let held = CACHE.with(|c| c.borrow().lists[chunk_bytes(size) / STEP].len());
        assert_eq!(held, DEPTH / 2 + 1);
        // SAFETY: from `allocate`, released once.
        unsafe { release(b, size) };
        trim();
        assert_eq!(CACHE.with(|c| c.borrow().lists[chunk_bytes(size) / STEP].len()), 0);
    }
}
