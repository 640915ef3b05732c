//! Used memory for `maxmemory` and INFO: allocator statistics, as Redis reports (zmalloc's
//! used_memory). The server binary installs [`CountingAllocator`] as its global allocator: it
//! forwards every call to the system allocator and keeps the live byte count (of the chunks glibc
//! hands out, header and rounding included: [`chunk_bytes`], as Redis counts jemalloc's size
//! classes, so that `maxmemory` bounds what the data really costs) in cache-padded
//! per-thread shards (a thread only ever writes its own shard's line, so no two cores fight over
//! one; the figure is the sum of all shards). Where it is not installed (library tests),
//! the process's resident set size stands in. A background thread samples the figure every
//! [`SAMPLE_INTERVAL`] into an atomic, so that commands check the limit without any work.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use crossbeam::utils::CachePadded;

use crate::state::Shared;

const SHARDS: usize = 64;

/// Live bytes allocated through [`CountingAllocator`], one shard per thread (by
/// `util::thread_slot`; threads beyond [`SHARDS`] share [`OVERFLOW`]). A shard's own figure means nothing (a value freed by another thread than
/// the one that allocated it is subtracted from the freeing thread's shard); the sum is exact.
static ALLOCATED: [CachePadded<AtomicI64>; SHARDS] = [const { CachePadded::new(AtomicI64::new(0)) }; SHARDS];
/// Live bytes of the keyspace's large blocks, allocated from its own heap (`db::blockheap`), not
/// through [`CountingAllocator`]: sharded as [`ALLOCATED`], added to it.
static BLOCK_HEAP: [CachePadded<AtomicI64>; SHARDS] = [const { CachePadded::new(AtomicI64::new(0)) }; SHARDS];
static BLOCK_HEAP_OVERFLOW: CachePadded<AtomicI64> = CachePadded::new(AtomicI64::new(0));
/// Set by the first allocation through [`CountingAllocator`].
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// The count of the threads past the first [`SHARDS`] (they share it, so they add atomically).
static OVERFLOW: CachePadded<AtomicI64> = CachePadded::new(AtomicI64::new(0));

/// The bytes glibc's malloc takes for a request of `n` bytes: its chunk, an 8-byte header and
/// 16-byte steps, 32 at least (0 for no request). Large requests are mapped pages; the rounding
/// is then negligible.
pub const fn chunk_bytes(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        let c = (n + 8 + 15) & !15;
        if c < 32 { 32 } else { c }
    }
}

fn count(bytes: i64) {
    count_in(&ALLOCATED, &OVERFLOW, bytes)
}

/// `bytes` more (fewer) live in the keyspace's block heap (see [`BLOCK_HEAP`]).
pub fn count_block_heap(bytes: i64) {
    count_in(&BLOCK_HEAP, &BLOCK_HEAP_OVERFLOW, bytes)
}

fn count_in(shards: &[CachePadded<AtomicI64>; SHARDS], overflow: &AtomicI64, bytes: i64) {
    // Relaxed: a statistic; it orders nothing.
    match crate::util::own_thread_slot().and_then(|slot| shards.get(slot)) {
        // This thread is the only writer of its shard (a slot belongs to one thread, and a thread
        // being torn down has none): a plain load and store, no locked instruction (an allocation's hottest cost was the `lock add`).
        Some(own) => own.store(own.load(Ordering::Relaxed) + bytes, Ordering::Relaxed),
        None => {
            overflow.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

/// Mark the allocator installed: a load first, so that allocations on many cores do not keep
/// writing (and bouncing) the flag's cache line.
fn note_installed() {
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
}

/// The system allocator, counting live bytes (install with `#[global_allocator]`).
pub struct CountingAllocator;

// SAFETY: every method forwards to `System` with the caller's own pointer and layout, so the
// `GlobalAlloc` contract is `System`'s; the counting only touches atomics and never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same layout, same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note_installed();
            count(chunk_bytes(layout.size()) as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same layout, same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note_installed();
            count(chunk_bytes(layout.size()) as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(chunk_bytes(layout.size()) as i64));
        // SAFETY: `ptr` was allocated by this allocator (i.e. by `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller guarantees `new_size` is valid.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(chunk_bytes(new_size) as i64 - chunk_bytes(layout.size()) as i64);
        }
        p
    }
}

/// Live bytes allocated through [`CountingAllocator`] and from the keyspace's block heap, or None
/// when the counting allocator is not the global allocator.
pub fn allocated_bytes() -> Option<u64> {
    if !INSTALLED.load(Ordering::Relaxed) {
        return None;
    }
    let heap =
        BLOCK_HEAP.iter().map(|s| s.load(Ordering::Relaxed)).sum::<i64>() + BLOCK_HEAP_OVERFLOW.load(Ordering::Relaxed);
    Some((total() + heap).max(0) as u64)
}

/// The sum of every shard.
fn total() -> i64 {
    ALLOCATED.iter().map(|s| s.load(Ordering::Relaxed)).sum::<i64>() + OVERFLOW.load(Ordering::Relaxed)
}

/// Used memory as INFO and maxmemory see it: allocator statistics, else the resident set size.
pub fn used_bytes() -> u64 {
    allocated_bytes().unwrap_or_else(rss_bytes)
}

/// How often the resident set size is sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// The process's resident set size in bytes, from `VmRSS` in `/proc/self/status` (0 if unreadable).
pub fn rss_bytes() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb.saturating_mul(1024))
}

/// The highest used memory sampled (MEMORY STATS `peak.allocated`).
static PEAK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn peak_bytes() -> u64 {
    PEAK.load(Ordering::Relaxed)
}

/// Take one sample now (and tick the LRU clock of the keys' access words).
pub fn sample(shared: &Shared) {
    let used = used_bytes();
    shared.used_memory.store(used, Ordering::Relaxed);
    PEAK.fetch_max(used, Ordering::Relaxed);
    crate::db::evict::tick();
}

/// Give the heap's free pages back to the system (MEMORY PURGE), and the free top of the
/// keyspace's block heap.
pub fn purge() {
    crate::db::blockheap::trim();
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes no pointer of ours.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// glibc malloc arenas for a server with `maxmemory` set: one (`mallopt(M_ARENA_MAX, 1)`), so
/// that the resident set stays near `maxmemory` as Redis's does (issue 18 item 3). Call before
/// the runtime's threads start: a thread takes its arena at its first allocation. Returns
/// whether the limit was set.
///
/// glibc gives each thread that allocates its own arena (up to 8 per core). A cache at its limit
/// frees as much as it allocates, in blocks of every size (each write copies its bucket's block);
/// each arena keeps its own free chunks for its own threads, so the resident set is the sum of
/// every arena's peak, not the peak of the sum: the cache run of `benches/vs_redis.py` at
/// `maxmemory 64mb` grew the RSS by 69-70 MB with per-thread arenas, 66 MB with one (Redis 64),
/// `used_memory` holding 64.0 MB in both. One arena serializes only the allocations that glibc's
/// per-thread cache (tcache: chunks up to 1032 bytes, 7 of each size) does not serve; the A/B of
/// every redis-benchmark test at pipeline 1 and 16 and of the cache run is in the README
/// ("Memory and eviction"). Without `maxmemory` the heap churns too (each write copies its bucket's
/// block), and per-thread arenas made the RSS depend on where a connection's task ran: 1M SETs of
/// 100-byte values through one connection grew it by 151 B/key while the task stayed on one worker,
/// 167-236 when it moved (one arena: 151 every run). One arena there was tried in session 12 and not
/// kept: SET at pipeline 16 on a primary feeding two replicas lost 6-7% to the arena's lock. The
/// blocks now come from a heap of their own that every thread shares (`db::blockheap`), whatever
/// the arenas.
/// It is decided at startup: a `maxmemory` set later by CONFIG SET leaves the threads the arenas
/// they have (glibc cannot move a thread's chunks to another arena).
pub fn one_arena_under_maxmemory(maxmemory: u64) -> bool {
    if maxmemory == 0 {
        return false;
    }
    // SAFETY: mallopt only sets a glibc tunable; it takes no pointer.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) == 1 }
}

/// Sample the counters behind INFO's instantaneous rates.
fn sample_rates(shared: &Shared) {
    let st = &shared.stats;
    let ops = shared.monitor.commands.total_calls();
    let (input, output) = (st.net_input_bytes.get(), st.net_output_bytes.get());
    shared.monitor.rates.sample(crate::util::now_ms(), ops, input, output);
}

/// How often a cache at its limit gives free pages back ([`TrimAfterEvictions`]).
pub const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// `malloc_trim` once per [`TRIM_INTERVAL`] while keys are being evicted.
///
/// A cache at `maxmemory` frees as much as it allocates, in blocks of every size (a bucket's
/// block is copied on each write, see `db::block`): glibc keeps the freed chunks in its arenas,
/// scattered among live ones, and the resident set grows past `used_memory` (measured with the
/// cache run of `benches/vs_redis.py` at `maxmemory 64mb`, 5 runs: +74-98 MB of RSS, +68-80 MB
/// when trimmed every second; Redis +64 MB). Redis's jemalloc returns such pages by itself (its decay);
/// `malloc_trim` is glibc's way: it gives back every whole free page of every arena
/// (`MADV_DONTNEED`), each arena under its own lock in turn, so no thread waits for more than
/// one arena's walk. Without evictions there is nothing to do: the heap is growing, or idle.
#[derive(Default)]
pub struct TrimAfterEvictions {
    evicted: usize,
    last: Option<std::time::Instant>,
}

impl TrimAfterEvictions {
    /// Whether to trim now, given INFO's `evicted_keys`; remembers a trim it asks for.
    pub fn due(&mut self, evicted: usize, now: std::time::Instant) -> bool {
        if evicted == self.evicted || self.last.is_some_and(|t| now.duration_since(t) < TRIM_INTERVAL) {
            return false;
        }
        self.evicted = evicted;
        self.last = Some(now);
        true
    }
}

/// Start the sampling thread: used memory, and INFO's instantaneous rates (the same 100 ms
/// period as Redis's `serverCron` samples them); free pages back to the system while evicting.
pub fn spawn_sampler(shared: Arc<Shared>) {
    sample(&shared);
    std::thread::Builder::new()
        .name("mem-sampler".into())
        .spawn(move || {
            let mut trim = TrimAfterEvictions::default();
            loop {
                std::thread::sleep(SAMPLE_INTERVAL);
                sample(&shared);
                sample_rates(&shared);
                if trim.due(shared.ks.evictor().evicted_keys(), std::time::Instant::now()) {
                    purge();
                }
            }
        })
        .expect("spawn memory sampler thread");
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn rss_is_measured_and_grows_with_touched_memory() {
        let before = rss_bytes();
        assert!(before > 1 << 20, "rss {before}");
        let v = std::hint::black_box(vec![1u8; 64 << 20]);
        let after = rss_bytes();
        assert!(after >= before + (32 << 20), "before {before} after {after}");
        drop(v);
    }

    #[test]
    fn chunks_are_glibc_sizes() {
        assert_eq!([0, 1, 24, 25, 40, 41, 64, 112].map(chunk_bytes), [0, 32, 32, 48, 48, 64, 80, 128]);
    }

    #[test]
    fn trims_once_a_second_and_only_while_evicting() {
        let mut t = TrimAfterEvictions::default();
        let t0 = std::time::Instant::now();
        assert!(!t.due(0, t0), "no evictions: nothing to give back");
        assert!(t.due(5, t0));
        assert!(!t.due(9, t0 + Duration::from_millis(500)), "at most once per interval");
        assert!(t.due(9, t0 + TRIM_INTERVAL), "evictions since the last trim");
        assert!(!t.due(9, t0 + 5 * TRIM_INTERVAL), "none since");
    }

    #[test]
    fn one_arena_only_under_maxmemory() {
        assert!(!one_arena_under_maxmemory(0), "no maxmemory: per-thread arenas");
        // A test process may set it: every thread allocates correctly afterwards.
        assert!(one_arena_under_maxmemory(64 << 20));
        let sums: Vec<usize> = (0..4)
            .map(|t| std::thread::spawn(move || (0..1000).map(|i| vec![t as u8; 100 + i * 7]).map(|v| v.len()).sum()))
            .map(|h| h.join().unwrap())
            .collect();
        assert!(sums.iter().all(|&s| s == sums[0]));
    }

    #[test]
    fn purge_gives_pages_back_without_harm() {
        let v = vec![7u8; 1 << 20];
        purge();
        assert_eq!(v[12345], 7);
    }

    #[test]
    fn counting_allocator_tracks_live_bytes_exactly() {
        let a = CountingAllocator;
        let layout = Layout::from_size_align(1 << 20, 8).unwrap();
        let before = total();
        // SAFETY: a valid non-zero layout; every pointer is freed below with its own layout.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            let z = a.alloc_zeroed(layout);
            assert_eq!(*z.add(1000), 0);
            let p = a.realloc(p, layout, 3 << 20);
            let now = total();
            // Other test threads allocate through System, not through `a`: only ours count.
            assert_eq!(now - before, (chunk_bytes(1 << 20) + chunk_bytes(3 << 20)) as i64);
            a.dealloc(p, Layout::from_size_align(3 << 20, 8).unwrap());
            a.dealloc(z, layout);
        }
        let after = total();
        assert_eq!(after, before);
        assert!(allocated_bytes().is_some(), "the allocator marks itself installed");

        // Allocated on one thread (its shard goes up), freed on another (that shard goes down):
        // the sum stays exact, as when seize reclaims a value on another worker.
        let p = std::thread::spawn(move || {
            // SAFETY: a valid non-zero layout; freed below with the same layout.
            unsafe { CountingAllocator.alloc(layout) as usize }
        })
        .join()
        .unwrap();
        let held = total();
        assert_eq!(held - before, chunk_bytes(1 << 20) as i64);
        // SAFETY: `p` came from `CountingAllocator` with `layout` and is freed once.
        unsafe { a.dealloc(p as *mut u8, layout) };
        let after = total();
        assert_eq!(after, before);
    }
}
