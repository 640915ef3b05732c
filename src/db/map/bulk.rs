//! Loading many keys at once ([`KeyMap::put_batch`]): what the RDB loader, a replica's full sync
//! and the AOF loader's runs of plain `SET`s use instead of one [`KeyMap::insert`] per key.
//!
//! One insert copies its bucket's block (copy-on-write, see `block`): loading a bucket of ~16 keys
//! one key at a time builds 16 blocks of 1..16 entries (~8 entry copies, one allocation and one
//! retirement per key), and a table that grows while it loads splits every bucket once per
//! doubling. A batch instead gathers the keys of each bucket and builds the bucket's block once,
//! at its final size, from its current entries and the batch's (one allocation per bucket per
//! batch), after the part has grown (if it must) to the depth that the batch's keys need, so no
//! block is split on the way.
//!
//! # Rules
//!
//! * The effect is that of [`KeyMap::insert`] of each key of the batch, in batch order: a later put
//!   of a key replaces an earlier one (of the batch or of the map); a replaced key keeps its access
//!   word unless the put brings one (an RDB `IDLE`/`FREQ`), a new key gets the one given or a new
//!   object's ([`evict::new_access`](crate::db::evict::new_access)); the counts (`len`,
//!   `expires`) are exact.
//! * The caller makes sure nothing else WRITES the map meanwhile: it loads before serving (the
//!   keyspace is `loading`: every client is refused) or holds every stripe of the batch's parts
//!   exclusively. Readers DO run meanwhile: a replica's full sync loads into the live keyspace
//!   with its clients connected, and the commands flagged `loading` (INFO, MEMORY, an EXEC queued
//!   before) and the snapshot and memory threads read the map without a stripe. They need nothing:
//!   each bucket changes by the same publication as an insert's (a new block swapped into its
//!   existing slot, never a remove then an insert, or a new slot inserted; Release), and growth is
//!   [`KeyMap::grow`], so a concurrent reader sees each bucket before or after, never torn or
//!   missing. Loom model: `loom-tests/bulk.rs` (a batch that replaces, adds and grows the part
//!   against a reader; its broken variant publishes a bucket by remove-then-insert).
//! * Memory: a batch holds its keys in one arena and each entry as an [`Entry`] (48 bytes; a long
//!   string or a collection owns its data already, and the block takes a reference): about 72 bytes
//!   plus the key per pending key. The loaders bound a batch (see their `flush` rules).

use super::{GROW_AVG, GROW_BYTES, GROW_ENTRIES, KeyMap, MAX_DEPTH, PART_BITS, PARTS, Place, bucket_id, with_block};
use crate::db::block::{self, Item, MAX_BLOCK, MAX_ENTRIES};
use crate::db::entry::Entry;
use crate::sync::Ordering;

/// A group (bucket) this large is put key by key instead (it never is with a decent hash: the
/// part's average is at most `GROW_AVG`), so that a block never exceeds what `build` accepts.
const GROUP_MAX: usize = 8 * GROW_ENTRIES;

#[cfg(not(test))]
fn group_max() -> usize {
    GROUP_MAX
}

#[cfg(test)]
thread_local! {
    /// Tests lower it to take the key-by-key path.
    static TEST_GROUP_MAX: std::cell::Cell<usize> = const { std::cell::Cell::new(GROUP_MAX) };
}

#[cfg(test)]
fn group_max() -> usize {
    TEST_GROUP_MAX.with(|c| c.get())
}

/// One key waiting in a [`Batch`].
struct Pending {
    hash: u64,
    key_at: u32,
    key_len: u32,
    /// The access word to give the entry (RDB's IDLE/FREQ); None: kept or new (see the rules).
    access: Option<u32>,
    entry: Entry,
}

/// Keys gathered for one [`KeyMap::put_batch`] (see the module doc).
pub struct Batch {
    keys: Vec<u8>,
    puts: Vec<Pending>,
    /// Keys at which [`is_full`](Self::is_full) says to put the batch: [`batch_keys`] of the map
    /// it was last put into.
    limit: usize,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch { keys: Vec::new(), puts: Vec::new(), limit: batch_keys(0) }
    }
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Add a put of `key` (applied in order by [`KeyMap::put_batch`]).
    pub fn push(&mut self, key: &[u8], entry: Entry, access: Option<u32>) {
        let hash = crate::db::hash_key(key);
        // The arena's offsets are u32: the loaders flush long before (see `is_full`).
        let key_at = u32::try_from(self.keys.len()).expect("a batch's keys stay under 4 GiB");
        self.keys.extend_from_slice(key);
        self.puts.push(Pending { hash, key_at, key_len: key.len() as u32, access, entry });
    }

    pub fn len(&self) -> usize {
        self.puts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.puts.is_empty()
    }

    /// Whether a loader should put the batch now: it holds as many keys as the map it was last
    /// put into ([`batch_keys`]), or its key arena is near its limit.
    pub fn is_full(&self) -> bool {
        self.puts.len() >= self.limit || self.keys.len() >= (1 << 30)
    }

    fn key(&self, i: usize) -> &[u8] {
        let p = &self.puts[i];
        &self.keys[p.key_at as usize..][..p.key_len as usize]
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.puts.clear();
    }
}

/// Keys per batch for a loader putting into a map that holds `len` keys: as many as the map holds
/// (so each batch copies each existing entry at most once: O(1) copies per key over a whole load),
/// at least 64K (few keys per bucket otherwise) and at most 512K (bounded memory).
fn batch_keys(len: usize) -> usize {
    len.clamp(1 << 16, 1 << 19)
}

/// The sort key that makes every bucket of a part, at any depth, a contiguous run: the hash's
/// bucket bits reversed (a bucket at depth d is the run of keys whose low d bucket bits agree).
fn spread_key(hash: u64) -> u64 {
    (hash >> PART_BITS).reverse_bits()
}

impl KeyMap {
    /// Put every key of `batch` as [`KeyMap::insert`] would, one block build per bucket (see the
    /// module doc for the rules; nothing else writes the map meanwhile). Leaves `batch` empty.
    pub fn put_batch(&self, batch: &mut Batch) {
        if batch.is_empty() {
            return;
        }
        // The puts of each part, by a counting sort on the part (stable: batch order within).
        let mut starts = vec![0u32; PARTS + 1];
        for p in &batch.puts {
            starts[(p.hash % PARTS as u64) as usize + 1] += 1;
        }
        for i in 0..PARTS {
            starts[i + 1] += starts[i];
        }
        let mut order = vec![0u32; batch.len()];
        let mut next = starts.clone();
        for (i, p) in batch.puts.iter().enumerate() {
            let part = (p.hash % PARTS as u64) as usize;
            order[next[part] as usize] = i as u32;
            next[part] += 1;
        }
        let mut run = Vec::new();
        for part in 0..PARTS {
            let (a, b) = (starts[part] as usize, starts[part + 1] as usize);
            if a < b {
                run.clear();
                run.extend_from_slice(&order[a..b]);
                self.put_part(part, batch, &mut run);
            }
        }
        batch.clear();
        batch.limit = batch_keys(self.len());
    }

    /// [`put_batch`](Self::put_batch)'s work for part `p`: `run` holds the indices of its puts,
    /// in batch order.
    fn put_part(&self, p: usize, batch: &Batch, run: &mut Vec<u32>) {
        let part = &self.parts[p];
        let puts = &batch.puts;
        // Buckets contiguous at any depth; batch order among a key's puts (equal hashes).
        run.sort_unstable_by_key(|&i| (spread_key(puts[i as usize].hash), i));
        // Only the last put of each key (equal keys have equal hashes: neighbours).
        let mut w = 0;
        for r in 0..run.len() {
            let i = run[r] as usize;
            let dup_later = run[r + 1..]
                .iter()
                .take_while(|&&j| puts[j as usize].hash == puts[i].hash)
                .any(|&j| batch.key(j as usize) == batch.key(i));
            if !dup_later {
                run[w] = run[r];
                w += 1;
            }
        }
        run.truncate(w);
        // Relaxed: nothing else writes the part (the caller's contract).
        let mut depth = part.depth.load(Ordering::Relaxed);
        let len = part.len.load(Ordering::Relaxed);
        // The keys the part will hold: all of the batch's when it is empty, else those not there.
        let new_keys = if len == 0 { run.len() } else { self.count_absent(p, depth, batch, run) };
        while len + new_keys > GROW_AVG << depth && depth < MAX_DEPTH {
            self.grow(p);
            depth = part.depth.load(Ordering::Relaxed);
        }
        let bits = |i: u32| Place { hash: puts[i as usize].hash, part: p, fp: 0 }.index(depth);
        let mut later = Vec::new();
        let mut oversized = false;
        let mut g0 = 0;
        while g0 < run.len() {
            let index = bits(run[g0]);
            let g1 = g0 + run[g0..].iter().take_while(|&&i| bits(i) == index).count();
            let group = &run[g0..g1];
            g0 = g1;
            let id = bucket_id(p, depth, index);
            let g = self.dir.enter();
            let slot = self.dir.get(&g, id);
            let slot = slot.as_deref();
            with_block(slot.map_or(std::ptr::null_mut(), |s| self.dir.load(&g, s)), |old| {
                let old_len = old.map_or(0, |b| b.len());
                if old_len + group.len() > group_max() {
                    later.extend_from_slice(group);
                    return;
                }
                let mut items: Vec<Item<'_>> = Vec::with_capacity(old_len + group.len());
                if let Some(b) = old {
                    items.extend((0..old_len).map(|j| Item::copied(b.fingerprint(j), b.entry(j))));
                }
                let (mut added, mut ttl_delta) = (0usize, 0isize);
                for &i in group {
                    let put = &puts[i as usize];
                    let key = batch.key(i as usize);
                    let fp = (put.hash >> 56) as u8;
                    let found = old.and_then(|b| b.find(fp, key));
                    let access = put
                        .access
                        .or_else(|| found.map(|j| items[j].access))
                        .unwrap_or_else(crate::db::evict::new_access);
                    let it = Item::new(fp, key, &put.entry, access);
                    ttl_delta += isize::from(it.expire_at_ms != 0);
                    match found {
                        Some(j) => {
                            ttl_delta -= isize::from(items[j].expire_at_ms != 0);
                            items[j] = it;
                        }
                        None => {
                            items.push(it);
                            added += 1;
                        }
                    }
                }
                if items.len() > MAX_ENTRIES || block::block_size(&items) > MAX_BLOCK / 2 {
                    later.extend_from_slice(group);
                    return;
                }
                let b = block::build(&items);
                oversized |= b.len() > GROW_ENTRIES || b.bytes() > GROW_BYTES;
                if slot.is_some() && crate::sync::fault::on(crate::sync::fault::Fault::BulkRemoveThenInsert) {
                    self.set_bucket(&g, id, slot, None);
                    self.set_bucket(&g, id, None, Some(b));
                } else {
                    self.set_bucket(&g, id, slot, Some(b));
                }
                // Relaxed: statistics changed only by the part's writer (see the module doc).
                part.len.fetch_add(added, Ordering::Relaxed);
                if ttl_delta > 0 {
                    part.expires.fetch_add(ttl_delta as usize, Ordering::Relaxed);
                } else if ttl_delta < 0 {
                    part.expires.fetch_sub(ttl_delta.unsigned_abs(), Ordering::Relaxed);
                }
            });
        }
        if oversized {
            self.grow(p);
        }
        // Buckets too large to build at once: key by key (each key's puts are one put now, so
        // their order does not matter), splitting as inserts do.
        for i in later {
            let put = &puts[i as usize];
            let key = batch.key(i as usize);
            self.update(key, |_| (super::Change::Put(&put.entry), ()));
            if let Some(a) = put.access {
                self.get(key, |e| e.map(|e| e.set_access(a)));
            }
        }
    }

    /// How many of the puts in `run` (sorted by [`spread_key`], one per key) are of keys that part
    /// `p` (at `depth`) does not hold: one directory lookup per bucket.
    fn count_absent(&self, p: usize, depth: u32, batch: &Batch, run: &[u32]) -> usize {
        let puts = &batch.puts;
        let bits = |i: u32| Place { hash: puts[i as usize].hash, part: p, fp: 0 }.index(depth);
        let mut absent = 0;
        let mut g0 = 0;
        while g0 < run.len() {
            let index = bits(run[g0]);
            let g1 = g0 + run[g0..].iter().take_while(|&&i| bits(i) == index).count();
            let g = self.dir.enter();
            let slot = self.dir.get(&g, bucket_id(p, depth, index));
            absent += with_block(slot.as_deref().map_or(std::ptr::null_mut(), |s| self.dir.load(&g, s)), |b| {
                run[g0..g1]
                    .iter()
                    .filter(|&&i| {
                        b.is_none_or(|b| b.find((puts[i as usize].hash >> 56) as u8, batch.key(i as usize)).is_none())
                    })
                    .count()
            });
            g0 = g1;
        }
        absent
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn key(i: usize) -> Vec<u8> {
        format!("key:{i:010}").into_bytes()
    }

    /// What the map holds, key -> (value bytes, expiry), by a full traversal.
    fn contents(m: &KeyMap) -> HashMap<Vec<u8>, (Vec<u8>, u64)> {
        let mut out = HashMap::new();
        m.for_each(|k, e| {
            let v = e.string_bytes().map(|b| b.to_vec()).unwrap_or_default();
            assert!(out.insert(k.to_vec(), (v, e.expire_at_ms())).is_none(), "a key twice");
        });
        out
    }

    /// A batch does what one insert per key does, in order: duplicates in the batch, keys already
    /// in the map (with and without a TTL), an empty map and one that must grow on the way.
    #[test]
    fn a_batch_puts_what_inserts_in_order_put() {
        let (bulk, one) = (KeyMap::new(), KeyMap::new());
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for round in 0..6 {
            let mut batch = Batch::new();
            // Round 0 into an empty map; later rounds overwrite and add (the parts grow).
            let n = 3000 + round * 20_000;
            for _ in 0..n {
                let i = next(40_000 * (round as u64 + 1)) as usize;
                let ttl = if next(3) == 0 { 4_000_000_000_000 + next(1000) } else { 0 };
                let v = format!("v{}", next(1 << 40)).into_bytes();
                batch.push(&key(i), Entry::string_copied(&v, ttl), None);
                one.insert(&key(i), Entry::string_copied(&v, ttl));
            }
            bulk.put_batch(&mut batch);
            assert!(batch.is_empty());
            assert_eq!(bulk.len(), one.len(), "round {round}");
            assert_eq!(bulk.expires(), one.expires(), "round {round}");
            assert_eq!(contents(&bulk), contents(&one), "round {round}");
            let grown = (0..PARTS).filter(|&p| bulk.parts[p].depth.load(Ordering::Relaxed) >= 1).count();
            assert!(round < 3 || grown > PARTS / 2, "round {round}: {grown} parts grew");
        }
        // Every key is found by a lookup too (each at its bucket at the part's depth).
        for (k, (v, _)) in contents(&one) {
            assert_eq!(bulk.get(&k, |e| e.and_then(|e| e.string_bytes())).as_deref(), Some(&v[..]));
        }
        // Blocks at their live sizes (no bucket left oversized).
        let (blocks, _) = bulk.block_stats();
        let per_block = bulk.len() as f64 / blocks as f64;
        assert!((8.0..=32.0).contains(&per_block), "{per_block:.1} keys per block");
    }

    /// A replaced key keeps its access word unless the put brings one; a new key gets the one
    /// given.
    #[test]
    fn access_words_are_kept_or_given() {
        let m = KeyMap::new();
        m.insert(b"old", Entry::string_copied(b"1", 0));
        m.insert(b"given", Entry::string_copied(b"1", 0));
        m.get(b"old", |e| e.unwrap().set_access(77));
        let mut batch = Batch::new();
        batch.push(b"old", Entry::string_copied(b"2", 0), None);
        batch.push(b"given", Entry::string_copied(b"2", 0), Some(5));
        batch.push(b"new", Entry::int(3, 0), Some(9));
        m.put_batch(&mut batch);
        assert_eq!(m.get(b"old", |e| e.unwrap().access()), 77);
        assert_eq!(m.get(b"given", |e| e.unwrap().access()), 5);
        assert_eq!(m.get(b"new", |e| e.unwrap().access()), 9);
        assert_eq!(m.get(b"new", |e| e.unwrap().string_bytes()).as_deref(), Some(&b"3"[..]));
        assert_eq!(m.len(), 3);
    }

    /// A bucket too large to build at once is put key by key (here the limit is lowered so that
    /// most buckets are), splitting as inserts do; the result is the same.
    #[test]
    fn oversized_groups_fall_back_to_inserts() {
        TEST_GROUP_MAX.with(|c| c.set(12));
        let (bulk, one) = (KeyMap::new(), KeyMap::new());
        for round in 0..2 {
            let mut batch = Batch::new();
            for i in (0..60_000).filter(|i| i % 2 == round) {
                let v = [b'a' + (i % 26) as u8; 200];
                batch.push(&key(i % 40_000), Entry::string_copied(&v, 0), Some(i as u32));
                one.insert(&key(i % 40_000), Entry::string_copied(&v, 0));
            }
            bulk.put_batch(&mut batch);
        }
        TEST_GROUP_MAX.with(|c| c.set(GROUP_MAX));
        assert_eq!(bulk.len(), 40_000);
        assert_eq!(contents(&bulk), contents(&one));
        // The access word given by the last put of each key, on both paths.
        for i in 20_000..40_000 {
            assert_eq!(bulk.get(&key(i), |e| e.unwrap().access()), i as u32);
        }
    }
}
