//! Random-ish sampling of a flurry map for eviction ([`KeyMap::sample`]).
//!
//! flurry has no random access (no buckets to pick, no iterator that starts anywhere but the
//! first bin), and walking to a random position costs a pointer chase per entry passed. So each
//! map keeps a reservoir: a uniform sample of its keys (every `len / size`-th of one traversal,
//! from a random offset), about an eighth of the keys (at least 4096 or all, at most 2^20), and a
//! sample draws keys of the reservoir at random and looks them up (one `get` each). Keys that are
//! gone (evicted, deleted) drop out when drawn; the reservoir is refilled by a new traversal once
//! half of it is gone or the map has doubled since. Its cost: one traversal per `size / 2`
//! evictions, about 16 entries walked per key evicted, and an eighth of the keys copied.
//!
//! The difference from Redis's `dictGetSomeKeys`: keys written since the last refill are not
//! candidates until the next one (they are the most recently used, so LRU would rarely pick them;
//! LFU gives new keys a grace period Redis does not).

use super::entry::Entry;
use super::key::Key;
use super::map::KeyMap;

/// Fewest keys a reservoir is filled with (all of them, for smaller maps).
const MIN_SIZE: usize = 4096;
/// Most keys a reservoir holds.
const MAX_SIZE: usize = 1 << 20;

#[derive(Default)]
pub struct Reservoir {
    keys: Vec<Key>,
    /// Keys taken at the last refill, and the map's length then.
    filled: usize,
    map_len: usize,
}

impl Reservoir {
    fn needs_refill(&self, map_len: usize) -> bool {
        self.keys.len() * 2 < self.filled || map_len > self.map_len * 2 || self.keys.is_empty()
    }

    fn refill(&mut self, map: &KeyMap) {
        let len = map.len();
        let size = (len / 8).max(len.min(MIN_SIZE)).clamp(1, MAX_SIZE);
        let step = (len / size).max(1);
        let offset = (super::evict::random() % step as u64) as usize;
        let mut keys = Vec::with_capacity(size + size / 8);
        let mut i = 0usize;
        crate::cmd::offload(len, || {
            map.for_each(|k, _| {
                if i % step == offset {
                    keys.push(Key::new(k));
                }
                i += 1;
            })
        });
        self.filled = keys.len();
        self.map_len = len;
        self.keys = keys;
    }

    /// Run `f` on up to `n` live entries of `map` drawn from the reservoir.
    pub fn sample(&mut self, map: &KeyMap, n: usize, f: &mut dyn FnMut(&[u8], &Entry)) {
        if self.needs_refill(map.len()) {
            self.refill(map);
        }
        let (mut given, mut tries) = (0, 0);
        while given < n && tries < 2 * n && !self.keys.is_empty() {
            tries += 1;
            let i = (super::evict::random() % self.keys.len() as u64) as usize;
            let live = map.get(self.keys[i].as_bytes(), |e| e.map(|e| f(self.keys[i].as_bytes(), e)).is_some());
            if live {
                given += 1;
            } else {
                self.keys.swap_remove(i);
            }
        }
    }
}
