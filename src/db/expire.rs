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

    /// Up to `n` live keys of physical db `db` drawn from the hints of a random shard (eviction's
    /// `volatile-*` policies: Redis samples its expires dict). `live(key, at)` says whether a
    /// hint still stands for its key; when most of the drawn ones do not (keys deleted or evicted
    /// long before their time), the shard's stale hints of `db` are dropped at once.
    pub fn sample(&self, db: usize, n: usize, live: impl Fn(&[u8], u64) -> bool) -> Vec<Bytes> {
        let shard = &self.shards[(super::evict::random() % self.shards.len() as u64) as usize];
        let mut heap = crate::sync::lock(shard);
        let (mut out, mut stale) = (Vec::new(), 0);
        for _ in 0..2 * n {
            if out.len() >= n || heap.is_empty() {
                break;
            }
            let i = (super::evict::random() % heap.len() as u64) as usize;
            if let Some(Reverse((at, d, key))) = heap.as_slice().get(i)
                && *d == db
            {
                if live(key, *at) {
                    out.push(key.clone());
                } else {
                    stale += 1;
                }
            }
        }
        if stale > n / 2 {
            heap.retain(|Reverse((at, d, key))| *d != db || live(key, *at));
        }
        out
    }

    /// Drop every hint that no longer stands for its key (`live(physical db, key, at)` false).
    pub fn purge(&self, live: impl Fn(usize, &[u8], u64) -> bool) {
        for shard in &self.shards {
            crate::sync::lock(shard).retain(|Reverse((at, d, key))| live(*d, key, *at));
        }
    }

    /// Hints currently held (INFO, tests).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| crate::sync::lock(s).len()).sum()
    }
}
