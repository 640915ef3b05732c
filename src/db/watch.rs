//! The WATCH registry: which clients watch which keys, and marking them dirty when a key changes.
//! Mirrors the watched-keys half of Redis's `multi.c` (`watchForKey`, `touchWatchedKey`,
//! `touchAllWatchedKeysInDb`, `isWatchedKeyExpired`).
//!
//! # Cost on the write path
//! Every effective write reaches [`Keyspace`](super::Keyspace) through `WriteLock::log_in` (its AOF
//! record is pushed there even with `appendonly no`, where the push does nothing), so that is the one
//! hook. While nobody watches anything a write pays one relaxed load of [`WatchRegistry::total`].
//! Otherwise the record's keys are found from the command table's key positions, and each key's
//! stripe counter is loaded; only a stripe that has watchers has its mutex taken.
//!
//! # Ordering
//! WATCH registers a key while holding the key's stripe lock exclusively. Every write holds the
//! key's stripe (shared or exclusive) while it mutates and while it reaches the hook, so a write
//! either finished before the registration (the watcher then reads its result) or it starts after
//! it and its counter load sees the watcher (the stripe lock's release/acquire orders the two).

use bytes::Bytes;

use crate::sync::{Arc, AtomicBool, AtomicUsize, Mutex, Ordering, lock};

/// One client's watch of one key.
struct Watcher {
    db: usize,
    key: Bytes,
    client: u64,
    dirty: Arc<AtomicBool>,
    /// The key was logically expired when it was watched: its deletion is not a change (Redis 7.0).
    expired: bool,
}

/// The watchers of the keys of one lock stripe.
#[derive(Default)]
struct StripeWatchers {
    count: AtomicUsize,
    list: Mutex<Vec<Watcher>>,
}

/// Every watched key, bucketed by the key's lock stripe.
pub struct WatchRegistry {
    /// Watchers registered anywhere: 0 makes the write-path hook one load.
    total: AtomicUsize,
    stripes: Box<[StripeWatchers]>,
}

impl WatchRegistry {
    pub(super) fn new(stripes: usize) -> WatchRegistry {
        WatchRegistry { total: AtomicUsize::new(0), stripes: (0..stripes).map(|_| StripeWatchers::default()).collect() }
    }

    /// Whether anyone watches anything (the write path's fast check).
    pub(super) fn is_idle(&self) -> bool {
        // Relaxed: the stripe lock held by both the writer and WATCH orders this (module doc).
        self.total.load(Ordering::Relaxed) == 0
    }

    /// Register `client`'s watch of `key` in `db` (stripe `stripe`, held exclusively by the caller).
    /// Returns false when it was already registered.
    pub(super) fn add(
        &self,
        stripe: usize,
        db: usize,
        key: &[u8],
        client: u64,
        dirty: &Arc<AtomicBool>,
        expired: bool,
    ) -> bool {
        let s = &self.stripes[stripe];
        let mut list = lock(&s.list);
        if list.iter().any(|w| w.client == client && w.db == db && w.key == key) {
            return false;
        }
        list.push(Watcher { db, key: Bytes::copy_from_slice(key), client, dirty: Arc::clone(dirty), expired });
        // Relaxed: see `is_idle`.
        s.count.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Drop every watch of `client` on the given keys.
    pub fn remove(&self, stripe_of: impl Fn(&[u8]) -> usize, client: u64, keys: &[(usize, Bytes)]) {
        for (db, key) in keys {
            let s = &self.stripes[stripe_of(key)];
            let mut list = lock(&s.list);
            let before = list.len();
            list.retain(|w| !(w.client == client && w.db == *db && w.key == *key));
            let gone = before - list.len();
            if gone > 0 {
                s.count.fetch_sub(gone, Ordering::Relaxed);
                self.total.fetch_sub(gone, Ordering::Relaxed);
            }
        }
    }

    /// `key` in `db` changed (its stripe is held). `exists` says whether the key is in the map now:
    /// a watcher that saw the key already expired is not dirtied by its deletion.
    pub(super) fn touch(&self, stripe: usize, db: usize, key: &[u8], exists: impl FnOnce() -> bool) {
        let s = &self.stripes[stripe];
        // Relaxed: see `is_idle`.
        if s.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut list = lock(&s.list);
        let mut exists = Some(exists);
        let mut present = None;
        for w in list.iter_mut().filter(|w| w.db == db && w.key == key) {
            if w.expired {
                let now_present = *present.get_or_insert_with(|| exists.take().is_some_and(|f| f()));
                if !now_present {
                    w.expired = false;
                    continue;
                }
            }
            // Release: pairs with the Acquire in EXEC's check.
            w.dirty.store(true, Ordering::Release);
        }
    }

    /// Every watcher of database `db` whose key passes `affected` (FLUSHDB, FLUSHALL, SWAPDB; the
    /// caller holds every stripe) is dirtied, except one that watched an already expired key that
    /// is now gone (`expired_gone`).
    pub(super) fn touch_db(&self, db: usize, affected: impl Fn(&[u8]) -> bool, expired_gone: impl Fn(&[u8]) -> bool) {
        if self.is_idle() {
            return;
        }
        for s in self.stripes.iter() {
            if s.count.load(Ordering::Relaxed) == 0 {
                continue;
            }
            for w in lock(&s.list).iter_mut().filter(|w| w.db == db) {
                if !affected(&w.key) {
                    continue;
                }
                if w.expired && expired_gone(&w.key) {
                    w.expired = false;
                    continue;
                }
                w.dirty.store(true, Ordering::Release);
            }
        }
    }

    /// Whether `client`'s watch of `key` in `db` was taken on a key that was already expired.
    pub(super) fn watched_expired(&self, stripe: usize, db: usize, key: &[u8], client: u64) -> bool {
        lock(&self.stripes[stripe].list).iter().any(|w| w.client == client && w.db == db && w.key == key && w.expired)
    }
}

/// A client's watched keys (WATCH ... until EXEC, DISCARD, UNWATCH or disconnect). Dropping it
/// unregisters them.
pub struct WatchSet {
    registry: Arc<WatchRegistry>,
    stripe_count: usize,
    client: u64,
    keys: Vec<(usize, Bytes)>,
    dirty: Arc<AtomicBool>,
}

impl WatchSet {
    pub(super) fn new(registry: Arc<WatchRegistry>, stripe_count: usize, client: u64) -> WatchSet {
        WatchSet { registry, stripe_count, client, keys: Vec::new(), dirty: Arc::new(AtomicBool::new(false)) }
    }

    pub(super) fn client(&self) -> u64 {
        self.client
    }

    pub(super) fn dirty_flag(&self) -> &Arc<AtomicBool> {
        &self.dirty
    }

    pub(super) fn push(&mut self, db: usize, key: &[u8]) {
        self.keys.push((db, Bytes::copy_from_slice(key)));
    }

    /// The watched (db, key) pairs.
    pub fn keys(&self) -> &[(usize, Bytes)] {
        &self.keys
    }

    /// Whether a watched key was changed since it was watched (expiry at EXEC is checked apart).
    pub fn is_dirty(&self) -> bool {
        // Acquire: pairs with the Release in `touch`.
        self.dirty.load(Ordering::Acquire)
    }
}

impl Drop for WatchSet {
    fn drop(&mut self) {
        let n = self.stripe_count;
        self.registry.remove(|k| (super::hash_key(k) % n as u64) as usize, self.client, &self.keys);
    }
}
