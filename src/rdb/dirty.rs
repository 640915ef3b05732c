//! The count of changes since the last save (Redis's `server.dirty`, INFO
//! `rdb_changes_since_last_save`, the `save` schedules), counted in per-thread slots so that
//! writers on many cores do not contend on one cache line.
//!
//! Every logged write record counts (`Keyspace::touch_record`, or `WriteLock::count_unread` when
//! nothing reads records): one by default, or what the command that pushes it declared just before
//! with [`next_record_counts`] (`WriteLock::log_n` and the like), as Redis 7.0 counts it: SADD the
//! members added, HSET every pair, LPUSH every element, DEL the keys deleted, a lazily expired
//! key's DEL nothing... `tests/dirty_vs_redis.rs` compares every command family with redis-server.

use crossbeam::utils::CachePadded;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

const SLOTS: usize = 64;

static COUNTS: [CachePadded<AtomicU64>; SLOTS] = [const { CachePadded::new(AtomicU64::new(0)) }; SLOTS];
static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SLOT: usize = NEXT.fetch_add(1, Relaxed) % SLOTS;
    /// What the next record on this thread counts, when not 1 (see [`next_record_counts`]).
    static WEIGHT: Cell<Option<u64>> = const { Cell::new(None) };
    /// Inside [`uncounted`]: nothing this thread does counts.
    static OFF: Cell<bool> = const { Cell::new(false) };
}

/// Count `n` changes.
#[inline]
pub fn add(n: u64) {
    if n == 0 || OFF.try_with(|o| o.get()).unwrap_or(false) {
        return;
    }
    let i = SLOT.try_with(|s| *s).unwrap_or(0);
    COUNTS[i].fetch_add(n, Relaxed);
}

/// Count one change.
#[inline]
pub fn incr() {
    add(1);
}

/// The next record pushed on this thread counts `n` changes instead of one (the records after it
/// one each again). Call it right before the record is logged: the log call consumes it.
#[inline]
pub fn next_record_counts(n: u64) {
    let _ = WEIGHT.try_with(|w| w.set(Some(n)));
}

/// Run `f` counting none of the changes it makes on this thread: a replica's full sync runs
/// FLUSHALL, FUNCTION FLUSH and FUNCTION LOAD to replace its data, which Redis's
/// `readSyncBulkPayload` does without counting them (its caller counts the load itself).
pub fn uncounted<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = OFF.try_with(|o| o.set(self.0));
        }
    }
    let _restore = Restore(OFF.try_with(|o| o.replace(true)).unwrap_or(false));
    f()
}

/// Count one record: what [`next_record_counts`] declared for it, else one.
#[inline]
pub fn record() {
    let n = WEIGHT.try_with(|w| w.take()).ok().flatten().unwrap_or(1);
    add(n);
}

/// Changes counted since the process started (compare two readings).
pub fn total() -> u64 {
    COUNTS.iter().map(|c| c.load(Relaxed)).sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_from_many_threads() {
        let before = super::total();
        let hs: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..1000 {
                        super::incr();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert!(super::total() - before >= 4000);
    }

    #[test]
    fn nothing_counts_inside_uncounted() {
        std::thread::spawn(|| {
            super::uncounted(|| {
                super::next_record_counts(7);
                super::record();
                super::add(3);
                assert!(super::OFF.with(|o| o.get()));
            });
            assert!(!super::OFF.with(|o| o.get()));
            assert_eq!(super::WEIGHT.with(|w| w.get()), None, "the weight was taken, not counted");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_declared_weight_counts_for_one_record() {
        // Other tests' threads may count meanwhile (totals only grow): check that a declared
        // weight is taken by one record only, and that it counts at least that much.
        std::thread::spawn(|| {
            super::next_record_counts(0);
            assert_eq!(super::WEIGHT.with(|w| w.get()), Some(0));
            super::record();
            assert_eq!(super::WEIGHT.with(|w| w.get()), None);
            super::next_record_counts(5);
            let before = super::total();
            super::record();
            assert!(super::total() - before >= 5);
        })
        .join()
        .unwrap();
    }
}
