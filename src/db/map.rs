//! The one file that knows the keyspace map is flurry's concurrent `HashMap`.
//!
//! Access goes through closures so that no map reference (nor flurry's `!Send` guard) can outlive a
//! call or cross an `.await`. Under `--features loom` the map is a `Mutex<HashMap>` stand-in with the
//! same interface (flurry cannot run under loom); its linearizability is flurry's contract.

use super::entry::Entry;
use super::key::Key;

/// Retirements per thread before the map's collector reclaims them.
#[cfg(not(feature = "loom"))]
const RETIRE_BATCH: usize = 8;

#[cfg(not(feature = "loom"))]
pub struct KeyMap {
    map: flurry::HashMap<Key, Entry>,
    /// Keys to sample for eviction (see `sampler`).
    sampler: std::sync::Mutex<super::sampler::Reservoir>,
}

#[cfg(not(feature = "loom"))]
impl KeyMap {
    pub fn new() -> KeyMap {
        // Reclaim retired entries every RETIRE_BATCH retirements per thread (seize's default is 120):
        // deleting large values must give their memory back promptly (maxmemory, INFO used_memory).
        let collector = seize::Collector::new().batch_size(RETIRE_BATCH);
        KeyMap { map: flurry::HashMap::new().with_collector(collector), sampler: Default::default() }
    }

    /// Run `f` on the entry of `key`, if any.
    pub fn get<R>(&self, key: &[u8], f: impl FnOnce(Option<&Entry>) -> R) -> R {
        let guard = self.map.guard();
        f(self.map.get(key, &guard))
    }

    /// Insert or replace.
    pub fn insert(&self, key: &[u8], entry: Entry) {
        let guard = self.map.guard();
        let created = self.map.insert(Key::new(key), entry, &guard).is_none();
        if created && super::sampler::wants() {
            crate::sync::lock(&self.sampler).offer(key, self.map.len());
        }
    }

    /// Remove `key`, running `f` on the removed entry.
    pub fn remove_with<R>(&self, key: &[u8], f: impl FnOnce(Option<&Entry>) -> R) -> R {
        let guard = self.map.guard();
        f(self.map.remove(key, &guard))
    }

    pub fn remove(&self, key: &[u8]) -> bool {
        self.remove_with(key, |e| e.is_some())
    }

    pub fn clear(&self) {
        let guard = self.map.guard();
        self.map.clear(&guard);
    }

    /// Grows the table (if needed) to hold `additional` more keys without resizing on the way.
    pub fn reserve(&self, additional: usize) {
        let guard = self.map.guard();
        self.map.reserve(additional, &guard);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Visit every entry (a weakly consistent traversal, as flurry's iterator).
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &Entry)) {
        let guard = self.map.guard();
        for (k, v) in self.map.iter(&guard) {
            f(k.as_bytes(), v);
        }
    }

    /// Visit entries until `f` returns `Some` (RANDOMKEY); the same traversal as `for_each`.
    pub fn find_map<R>(&self, mut f: impl FnMut(&[u8], &Entry) -> Option<R>) -> Option<R> {
        let guard = self.map.guard();
        self.map.iter(&guard).find_map(|(k, v)| f(k.as_bytes(), v))
    }

    /// Run `f` on up to `n` random-ish live entries (eviction's sampling; see `sampler`).
    pub fn sample(&self, n: usize, mut f: impl FnMut(&[u8], &Entry)) {
        crate::sync::lock(&self.sampler).sample(self, n, &mut f);
    }
}

/// Loom stand-in. A `BTreeMap`, not a `HashMap`: its iteration order (snapshot, dump) must not
/// depend on a random hasher, or loom's replay of an interleaving would not be deterministic.
#[cfg(feature = "loom")]
pub struct KeyMap {
    map: crate::sync::Mutex<std::collections::BTreeMap<Key, crate::sync::Arc<Entry>>>,
}

#[cfg(feature = "loom")]
impl KeyMap {
    pub fn new() -> KeyMap {
        KeyMap { map: crate::sync::Mutex::new(std::collections::BTreeMap::new()) }
    }

    pub fn get<R>(&self, key: &[u8], f: impl FnOnce(Option<&Entry>) -> R) -> R {
        let e = crate::sync::lock(&self.map).get(key).cloned();
        f(e.as_deref())
    }

    pub fn insert(&self, key: &[u8], entry: Entry) {
        crate::sync::lock(&self.map).insert(Key::new(key), crate::sync::Arc::new(entry));
    }

    pub fn remove_with<R>(&self, key: &[u8], f: impl FnOnce(Option<&Entry>) -> R) -> R {
        let e = crate::sync::lock(&self.map).remove(key);
        f(e.as_deref())
    }

    pub fn remove(&self, key: &[u8]) -> bool {
        self.remove_with(key, |e| e.is_some())
    }

    pub fn clear(&self) {
        crate::sync::lock(&self.map).clear();
    }

    pub fn reserve(&self, _additional: usize) {}

    pub fn len(&self) -> usize {
        crate::sync::lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn for_each(&self, mut f: impl FnMut(&[u8], &Entry)) {
        let items: Vec<_> = crate::sync::lock(&self.map).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (k, v) in items {
            f(k.as_bytes(), &v);
        }
    }

    pub fn find_map<R>(&self, mut f: impl FnMut(&[u8], &Entry) -> Option<R>) -> Option<R> {
        let items: Vec<_> = crate::sync::lock(&self.map).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        items.into_iter().find_map(|(k, v)| f(k.as_bytes(), &v))
    }

    pub fn sample(&self, n: usize, mut f: impl FnMut(&[u8], &Entry)) {
        let items: Vec<_> = crate::sync::lock(&self.map).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (k, v) in items.into_iter().take(n) {
            f(k.as_bytes(), &v);
        }
    }
}

impl Default for KeyMap {
    fn default() -> Self {
        KeyMap::new()
    }
}
