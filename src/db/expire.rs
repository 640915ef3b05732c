//! The active-expiry index: sharded min-heaps of (expiry time, physical db, key). Entries are
//! hints: the cycle re-checks the live entry under its stripe lock, so stale ones (key deleted,
//! TTL changed, re-set) are simply dropped when they come due. Mirrors Redis's `expire.c`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use bytes::Bytes;

use crate::sync::{AtomicUsize, Mutex, Ordering};

type Due = (u64, usize, Bytes);

pub struct ExpiryIndex {
    shards: Vec<Mutex<BinaryHeap<Reverse<Due>>>>,
    next: AtomicUsize,
}

impl ExpiryIndex {
    pub fn new(shards: usize) -> ExpiryIndex {
        ExpiryIndex { shards: (0..shards).map(|_| Mutex::new(BinaryHeap::new())).collect(), next: AtomicUsize::new(0) }
    }

    /// Remember that `key` in physical db `db` expires at `at_ms`.
    pub fn track(&self, db: usize, key: Bytes, at_ms: u64) {
        // Relaxed: only spreads pushes over shards, orders nothing.
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        crate::sync::lock(&self.shards[i]).push(Reverse((at_ms, db, key)));
    }

    /// Take up to `budget` hints whose time is at or before `now_ms`.
    pub fn pop_due(&self, now_ms: u64, budget: usize) -> Vec<Due> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut heap = crate::sync::lock(shard);
            while out.len() < budget {
                match heap.peek() {
                    Some(Reverse((at, _, _))) if *at <= now_ms => out.push(heap.pop().unwrap().0),
                    _ => break,
                }
            }
        }
        out
    }

    /// Drop the hints of physical db `db` (FLUSHDB/FLUSHALL, under every stripe): they would only
    /// be dropped as stale when due, which for far-future times is never soon.
    pub fn forget_db(&self, db: usize) {
        for shard in &self.shards {
            crate::sync::lock(shard).retain(|Reverse((_, d, _))| *d != db);
        }
    }

    /// Hints currently held (INFO, tests).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| crate::sync::lock(s).len()).sum()
    }
}
