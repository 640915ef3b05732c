//! Random-ish sampling of a flurry map for eviction ([`KeyMap::sample`]).
//!
//! flurry has no random access (no buckets to pick, no iterator that starts anywhere but the
//! first bin), and walking to a random position costs a pointer chase per entry passed. So each
//! map keeps a reservoir of its keys, drawn at random and looked up (one `get` each). While an
//! eviction policy is on ([`set_feeding`]), every key the map creates joins it
//! ([`Reservoir::offer`], from `KeyMap::insert`): each eviction takes a key out of the keyspace,
//! each insert brings one in, so the reservoir follows the keyspace without walking it. Keys that
//! are gone (evicted, deleted) drop out when drawn, and all at once when they make up a third of
//! it. A traversal (every `len / size`-th key, from a random offset; about an eighth of the keys,
//! at least 4096 or all, at most 2^20) fills it only when it holds less than a sixteenth of the
//! map: when the policy was switched on over existing keys, or after a flush.
//!
//! Its cost: a copy of each key (24 bytes inline) while a policy is on; the difference from
//! Redis's `dictGetSomeKeys`: right after a traversal, keys outside it are not candidates until
//! they are rewritten or the next traversal.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Whether maps feed their reservoirs on insert (an eviction policy is configured).
static FEEDING: AtomicBool = AtomicBool::new(false);

pub fn set_feeding(on: bool) {
    FEEDING.store(on, Relaxed);
}

/// Whether a key the map just created should join its reservoir (while feeding).
#[inline]
pub fn wants() -> bool {
    FEEDING.load(Relaxed)
}

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
    /// Set when a third of the reservoir may be gone keys: drop them.
    stale: AtomicBool,
}

impl Reservoir {
    fn needs_refill(&self, map_len: usize) -> bool {
        self.keys.is_empty() || self.keys.len() * 16 < map_len
    }

    /// A key the map just created (see [`wants`]).
    pub fn offer(&mut self, key: &[u8], map_len: usize) {
        self.keys.push(Key::new(key));
        if self.keys.len() > map_len + map_len / 2 + MIN_SIZE {
            self.stale.store(true, Relaxed);
        }
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
        self.keys = keys;
    }

    /// Run `f` on up to `n` live entries of `map` drawn from the reservoir.
    pub fn sample(&mut self, map: &KeyMap, n: usize, f: &mut dyn FnMut(&[u8], &Entry)) {
        if self.stale.swap(false, Relaxed) {
            crate::cmd::offload(self.keys.len(), || self.keys.retain(|k| map.get(k.as_bytes(), |e| e.is_some())));
        }
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
