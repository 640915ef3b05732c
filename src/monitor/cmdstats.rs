//! Per-command statistics: INFO commandstats (`calls`, `usec`, `rejected_calls`, `failed_calls`)
//! and the latency histograms of INFO latencystats and LATENCY HISTOGRAM. Mirrors the
//! `redisCommand` counters that Redis's `call()` and `rejectCommand()` in `server.c` update.
//!
//! A command is a *slot*: an index the command table gives each command and subcommand
//! (`crate::cmd::stat_slot`). Each thread writes its own shard of slots (`util::thread_slot`), so
//! two cores running the same command never share a cache line; readers sum the shards. Histograms
//! are allocated on a slot's first call in a shard. Every atomic is Relaxed: counters order nothing.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam::utils::CachePadded;

use super::histogram::{Histogram, Snapshot};

/// The most slots the table may define (checked by a test of the table).
pub const MAX_SLOTS: usize = 512;
const SHARDS: usize = 8;

#[derive(Default)]
struct Slot {
    calls: AtomicU64,
    /// Time in ns: summed exactly, so that sub-microsecond commands add up (reported in µs).
    nanos: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    histogram: OnceLock<Histogram>,
}

/// One thread group's slots, on cache lines of their own.
struct Shard {
    slots: Box<[CachePadded<Slot>]>,
}

/// Every command's counters.
pub struct CommandStats {
    shards: Box<[Shard]>,
    /// CONFIG RESETSTATs so far: a connection's [`Pending`] sums taken before a reset are dropped,
    /// not added after it (Redis counts each call as it ends; a call that ended before the reset
    /// must not show after it).
    resets: CachePadded<AtomicU64>,
}

impl Default for CommandStats {
    fn default() -> Self {
        let shard = || Shard { slots: (0..MAX_SLOTS).map(|_| CachePadded::new(Slot::default())).collect() };
        CommandStats { shards: (0..SHARDS).map(|_| shard()).collect(), resets: CachePadded::new(AtomicU64::new(0)) }
    }
}

/// Latency buckets one [`Pending`] holds (a pipelined run of one command spreads over a few).
const PENDING_BUCKETS: usize = 4;

/// Calls of one slot that a connection ran and has not yet added to the shared counters (see
/// [`CommandStats::record_pending`]).
#[derive(Debug, Default)]
pub struct Pending {
    slot: usize,
    /// [`CommandStats::resets`] when its first call was summed.
    epoch: u64,
    calls: u64,
    nanos: u64,
    failed: u64,
    /// (bucket, calls) of the latency histogram; the first `used` are in use.
    buckets: [(u32, u32); PENDING_BUCKETS],
    used: usize,
}

/// One command's counters, summed over the shards.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotTotals {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
}

impl CommandStats {
    fn mine(&self, slot: usize) -> &Slot {
        &self.shards[crate::util::thread_slot() % SHARDS].slots[slot % MAX_SLOTS]
    }

    /// A call that ran for `ns` nanoseconds; `failed` when it replied with an error. The histogram
    /// is fed only when `track_latency` (`latency-tracking`).
    pub fn record_call(&self, slot: usize, ns: u64, failed: bool, track_latency: bool) {
        let s = self.mine(slot);
        s.calls.fetch_add(1, Ordering::Relaxed);
        s.nanos.fetch_add(ns, Ordering::Relaxed);
        if failed {
            s.failed.fetch_add(1, Ordering::Relaxed);
        }
        if track_latency {
            s.histogram.get_or_init(Histogram::default).record(ns);
        }
    }

    /// [`record_call`](Self::record_call) for a connection's pipelined run of one command: the
    /// calls are summed in `pending` (the connection's own, no atomic per call: three per call
    /// were ~3% of a pipelined GET's CPU) and added to the shared counters by
    /// [`flush`](Self::flush): when a call of another slot comes, or the histogram buckets it
    /// holds are full, and by the connection before its replies leave and before any command
    /// that reads these counters runs (see `cmd::call`), so that whoever sees a reply (or runs
    /// INFO after it in the same pipeline) sees its call counted.
    pub fn record_pending(
        &self,
        pending: &mut Option<Pending>,
        slot: usize,
        ns: u64,
        failed: bool,
        track_latency: bool,
    ) {
        let epoch = self.resets.load(Ordering::Relaxed);
        if pending.as_ref().is_some_and(|p| p.epoch != epoch) {
            // Calls that ended before a CONFIG RESETSTAT: gone with the counters they were for.
            *pending = None;
        }
        if pending.as_ref().is_some_and(|p| p.slot != slot) {
            self.flush(pending);
        }
        let p = pending.get_or_insert_with(|| Pending { slot, epoch, ..Pending::default() });
        if track_latency {
            let b = super::histogram::bucket(ns) as u32;
            match p.buckets[..p.used].iter_mut().find(|(i, _)| *i == b) {
                Some((_, n)) => *n += 1,
                None if p.used < PENDING_BUCKETS => {
                    p.buckets[p.used] = (b, 1);
                    p.used += 1;
                }
                None => {
                    self.flush(pending);
                    return self.record_pending(pending, slot, ns, failed, track_latency);
                }
            }
        }
        let p = pending.get_or_insert_with(|| Pending { slot, epoch, ..Pending::default() });
        p.calls += 1;
        p.nanos += ns;
        p.failed += u64::from(failed);
    }

    /// Add what `pending` holds to the shared counters, and empty it.
    pub fn flush(&self, pending: &mut Option<Pending>) {
        let Some(p) = pending.take() else { return };
        if p.epoch != self.resets.load(Ordering::Relaxed) {
            return;
        }
        let s = self.mine(p.slot);
        s.calls.fetch_add(p.calls, Ordering::Relaxed);
        s.nanos.fetch_add(p.nanos, Ordering::Relaxed);
        if p.failed > 0 {
            s.failed.fetch_add(p.failed, Ordering::Relaxed);
        }
        if p.used > 0 {
            let h = s.histogram.get_or_init(Histogram::default);
            for &(b, n) in &p.buckets[..p.used] {
                h.record_n(b as usize, u64::from(n));
            }
        }
    }

    /// A call refused before it ran (arity, NOAUTH, OOM, MISCONF, ...).
    pub fn record_rejected(&self, slot: usize) {
        self.mine(slot).rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn totals(&self, slot: usize) -> SlotTotals {
        let mut t = SlotTotals::default();
        let mut nanos = 0u64;
        for shard in self.shards.iter() {
            let s = &shard.slots[slot % MAX_SLOTS];
            t.calls += s.calls.load(Ordering::Relaxed);
            nanos = nanos.wrapping_add(s.nanos.load(Ordering::Relaxed));
            t.rejected += s.rejected.load(Ordering::Relaxed);
            t.failed += s.failed.load(Ordering::Relaxed);
        }
        t.usec = nanos / 1000;
        t
    }

    /// Every slot's calls: the commands run (INFO total_commands_processed).
    pub fn total_calls(&self) -> u64 {
        let slots = self.shards.iter().flat_map(|shard| shard.slots.iter());
        slots.fold(0u64, |sum, s| sum.wrapping_add(s.calls.load(Ordering::Relaxed)))
    }

    /// The slot's latency histogram summed over the shards; None when no call was ever tracked.
    pub fn histogram(&self, slot: usize) -> Option<Snapshot> {
        let mut sum: Option<Snapshot> = None;
        for shard in self.shards.iter() {
            if let Some(h) = shard.slots[slot % MAX_SLOTS].histogram.get() {
                h.add_to(sum.get_or_insert_with(Snapshot::default));
            }
        }
        sum
    }

    /// CONFIG RESETSTAT: every counter and histogram back to zero (histograms stay allocated but
    /// empty, so a reset command no longer shows in latencystats until it runs again).
    pub fn reset(&self) {
        self.resets.fetch_add(1, Ordering::Relaxed);
        for shard in self.shards.iter() {
            for s in shard.slots.iter() {
                for c in [&s.calls, &s.nanos, &s.rejected, &s.failed] {
                    c.store(0, Ordering::Relaxed);
                }
                if let Some(h) = s.histogram.get() {
                    h.reset();
                }
            }
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn calls_from_many_threads_sum_exactly() {
        let stats = CommandStats::default();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..1000 {
                        stats.record_call(7, 2_000, i % 10 == 0, true);
                    }
                });
            }
        });
        stats.record_rejected(7);
        assert_eq!(stats.totals(7), SlotTotals { calls: 4000, usec: 8000, rejected: 1, failed: 400 });
        for _ in 0..1000 {
            stats.record_call(9, 300, false, false);
        }
        assert_eq!(stats.totals(9).usec, 300, "sub-microsecond calls add up");
        assert_eq!(stats.histogram(7).unwrap().total(), 4000);
        assert_eq!(stats.totals(8), SlotTotals::default());
        assert!(stats.histogram(8).is_none());
    }

    #[test]
    fn pending_calls_count_once_flushed_exactly_as_direct_ones() {
        let (direct, batched) = (CommandStats::default(), CommandStats::default());
        let mut pending = None;
        // Runs of one slot, a change of slot, more latency buckets than a Pending holds, and calls
        // with and without latency tracking.
        let calls: Vec<(usize, u64, bool, bool)> = (0..200u64)
            .map(|i| (if i % 50 < 30 { 3 } else { 4 }, 1_000 + i * i * 997, i % 7 == 0, i % 11 != 0))
            .collect();
        for &(slot, ns, failed, track) in &calls {
            direct.record_call(slot, ns, failed, track);
            batched.record_pending(&mut pending, slot, ns, failed, track);
        }
        assert!(pending.is_some(), "the last run waits for a flush");
        assert_ne!(batched.totals(4), direct.totals(4));
        batched.flush(&mut pending);
        assert!(pending.is_none());
        for slot in [3, 4] {
            assert_eq!(batched.totals(slot), direct.totals(slot), "slot {slot}");
            assert_eq!(batched.histogram(slot), direct.histogram(slot), "slot {slot}");
        }
        batched.flush(&mut pending);
        assert_eq!(batched.totals(3), direct.totals(3), "an empty flush adds nothing");
    }

    #[test]
    fn untracked_calls_count_without_a_histogram_and_reset_zeroes_all() {
        let stats = CommandStats::default();
        stats.record_call(1, 5_000, false, false);
        assert!(stats.histogram(1).is_none());
        stats.record_call(1, 5_000, false, true);
        stats.reset();
        assert_eq!(stats.totals(1), SlotTotals::default());
        assert_eq!(stats.histogram(1).map(|h| h.total()), Some(0));
    }

    #[test]
    fn pending_calls_that_ended_before_a_reset_are_not_counted_after_it() {
        let stats = CommandStats::default();
        let mut pending = None;
        // Another connection's pipelined calls, summed but not yet flushed, then CONFIG RESETSTAT.
        for _ in 0..5 {
            stats.record_pending(&mut pending, 2, 1_000, false, true);
        }
        stats.reset();
        // Its later calls of the same command count; the five before the reset do not.
        for _ in 0..3 {
            stats.record_pending(&mut pending, 2, 2_000, true, true);
        }
        stats.flush(&mut pending);
        let t = stats.totals(2);
        assert_eq!((t.calls, t.usec, t.failed), (3, 6, 3));
        assert_eq!(stats.histogram(2).map(|h| h.total()), Some(3));
        // Summed before the reset and flushed after it: dropped.
        stats.record_pending(&mut pending, 5, 1_000, false, false);
        stats.reset();
        stats.flush(&mut pending);
        assert_eq!(stats.totals(5), SlotTotals::default());
    }
}
