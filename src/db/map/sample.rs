//! Eviction's sampling of the map: whole buckets, each bucket of the map equally likely.
//!
//! [`KeyMap::sample`] draws one entry per lookup and sums every part's count first (a pass over
//! all [`PARTS`] counters, which writers on every core keep changing): right for RANDOMKEY, too
//! dear for an eviction per write. Eviction wants many keys drawn at random for each key it
//! evicts (Redis: `maxmemory-samples` per eviction); a bucket's block is a handful of keys that
//! only their hashes put together, so all of its entries are as good a draw as that many single
//! ones, for one directory lookup.
//!
//! Fairness: a bucket is drawn as a part (uniformly) and an index below `2^D`, `D` the deepest of
//! the parts looked at so far, kept only when the index is below the part's own bucket count
//! (rejection): every bucket, whatever its part's depth, is then equally likely, and so, since
//! all of its entries are visited, is every key. (Drawing an index below the part's own count
//! would favour the keys of shallower parts twice over.) The parts' depths differ by one at most
//! in steady state (keys spread evenly over parts by hash); `D` starts as the deepest of a few
//! random parts and only rises.

use super::{KeyMap, PARTS, bucket_id, with_block};
use crate::db::block::EntryRef;
use crate::sync::Ordering;

impl KeyMap {
    /// Visit every entry of random buckets until at least `keys` entries, or `keys` buckets, were
    /// visited, or `4 * keys + 16` draws (a missing bucket, a rejected index) were made; the
    /// entries visited.
    /// Falls back to [`KeyMap::sample`] when the draws found nothing in a map that has keys (a
    /// small map: most parts empty). `rand` is the caller's random source.
    pub fn sample_buckets(
        &self,
        keys: usize,
        mut rand: impl FnMut() -> u64,
        mut f: impl FnMut(&[u8], EntryRef<'_>),
    ) -> usize {
        let depth_of = |p: usize| self.parts[p].depth.load(Ordering::Acquire);
        let mut deepest = (0..4).map(|_| depth_of(rand() as usize % PARTS)).max().unwrap_or(0);
        let (mut seen, mut visits) = (0, 0);
        let g = self.dir.enter();
        // Under loom every draw is a lock of the model's directory, and random draws would make
        // the model's operations differ between its executions: straight to the fallback.
        let draws = if cfg!(feature = "loom") { 0 } else { keys.saturating_mul(4).saturating_add(16) };
        for _ in 0..draws {
            // Enough keys, or as many buckets as keys were asked for (a small map's few keys are
            // not visited over and over).
            if seen >= keys || visits >= keys {
                break;
            }
            let r = rand();
            let p = (r % PARTS as u64) as usize;
            // Acquire: as `get`'s (the slots of a grown depth are there before it is published).
            let depth = depth_of(p);
            deepest = deepest.max(depth);
            let index = (r >> 16) & ((1u64 << deepest) - 1);
            if index >> depth != 0 {
                continue;
            }
            let Some(slot) = self.dir.get(&g, bucket_id(p, depth, index)) else { continue };
            visits += 1;
            with_block(self.dir.load(&g, &slot), |b| {
                for e in b.into_iter().flat_map(|b| b.entries()) {
                    seen += 1;
                    f(e.key(), e);
                }
            });
        }
        if seen == 0 {
            self.sample(keys, |k, e| {
                seen += 1;
                f(k, e)
            });
        }
        seen
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::db::Entry;

    fn rand() -> u64 {
        crate::db::evict::random()
    }

    #[test]
    fn sample_buckets_draws_every_key_about_equally() {
        let m = KeyMap::default();
        let n = 20_000;
        for i in 0..n {
            m.insert(format!("key:{i}").as_bytes(), Entry::string_copied(b"v", 0));
        }
        let mut hits = vec![0u32; n];
        let mut total = 0;
        while total < 40 * n {
            total += m.sample_buckets(64, rand, |k, _| {
                let i: usize = std::str::from_utf8(&k[4..]).unwrap().parse().unwrap();
                hits[i] += 1;
            });
        }
        // 40 draws per key on average: a key never drawn, or drawn 3x the mean, would be a bias
        // (Poisson(40) is below 10 or above 120 with a probability of about 1e-9 per key).
        let mean = total as f64 / n as f64;
        let (lo, hi) = (hits.iter().min().copied().unwrap(), hits.iter().max().copied().unwrap());
        assert!(f64::from(lo) > mean / 4.0 && f64::from(hi) < mean * 3.0, "mean {mean} min {lo} max {hi}");
    }

    #[test]
    fn sample_buckets_finds_the_keys_of_a_small_map() {
        let m = KeyMap::default();
        assert_eq!(m.sample_buckets(5, rand, |_, _| panic!("an empty map has no keys")), 0);
        m.insert(b"only", Entry::string_copied(b"v", 0));
        let mut found = 0;
        assert!(
            m.sample_buckets(5, rand, |k, _| {
                assert_eq!(k, b"only");
                found += 1;
            }) > 0
        );
        assert!(found > 0);
    }
}
