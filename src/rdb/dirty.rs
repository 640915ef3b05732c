//! The count of changes since the last save (Redis's `server.dirty`, INFO
//! `rdb_changes_since_last_save`, the `save` schedules): one per logged write record, counted in
//! per-thread slots so that writers on many cores do not contend on one cache line.

use crossbeam::utils::CachePadded;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

const SLOTS: usize = 64;

static COUNTS: [CachePadded<AtomicU64>; SLOTS] = [const { CachePadded::new(AtomicU64::new(0)) }; SLOTS];
static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SLOT: usize = NEXT.fetch_add(1, Relaxed) % SLOTS;
}

/// Count one change.
#[inline]
pub fn incr() {
    let i = SLOT.try_with(|s| *s).unwrap_or(0);
    COUNTS[i].fetch_add(1, Relaxed);
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
}
