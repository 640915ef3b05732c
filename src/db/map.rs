//! The keyspace map: flurry's lock-free `HashMap` as the *directory* of the keyspace, keyed by a
//! bucket id, each value a [`Block`] packing the entries of the keys that hash to that bucket
//! (see `block` for its layout). Redis pays ~113 B a key (16-byte values) for its dict entry, key
//! sds and value robj; one flurry node and one value allocation per key cost ~217 B; a block pays
//! the flurry node, its value cell and the block header once per ~16 keys.
//!
//! # Parts, buckets and ids
//!
//! A key's 64-bit hash ([`hash_key`](super::hash_key), the hash that also picks its write-lock
//! stripe) splits into: the part `h % PARTS` (low bits), the bucket index within the part (the next
//! `depth` bits, `depth` being the part's own, growing), and the fingerprint (the top byte) that a
//! block compares before any key. The lock stripes are `h % stripes` with `stripes` dividing
//! `PARTS`, so **a stripe covers whole parts**, and every bucket of a part is under one stripe.
//! A bucket's id packs (index, depth, part): the same bucket at another depth is another id.
//!
//! # Invariants
//!
//! * Readers take no lock: they load the part's depth (Acquire), look the bucket's block up in
//!   the directory, and search it. A block found is a consistent state of the bucket (blocks are
//!   immutable but for atomics, see `block`). A miss with the depth unchanged means the bucket is
//!   empty; a miss after the depth changed is retried at the new depth.
//! * Every change to a bucket (insert, replace, delete, expiry) builds a new block and swaps it in
//!   (copy-on-write) under the key's EXCLUSIVE stripe: the caller holds it (`Keyspace::write`),
//!   which is also what orders the change with its AOF record. Writers under the SHARED stripe
//!   only mutate atomics inside a block (INCR's CAS) or a collection behind its own cell lock;
//!   they never change a block, so a copy (exclusive) never races them.
//! * Old blocks are retired through flurry's collector (seize): freed only after every reader
//!   that may hold them has left its guard. A reader may thus see an older block than a write
//!   that completed concurrently (its read linearizes before that write), never a torn one.
//! * Growth: when a part's keys exceed `GROW_AVG << depth` (or one of its blocks grows past
//!   `GROW_ENTRIES`), the writer, still under its exclusive stripe (which covers the whole part),
//!   builds the part's buckets at `depth + 1` (each old bucket splits in two by the next hash
//!   bit), inserts them, publishes the new depth (Release), then removes the old blocks. Only
//!   that part's writers wait: no stop-the-world. A reader that loaded the old depth either finds
//!   an old block (same contents as the new ones: nobody wrote meanwhile) or misses it after its
//!   removal, and then its re-load of the depth sees the new one (the removal follows the
//!   publication) and it retries.
//! * Counts: each part counts its keys (changed under its exclusive stripe); `len` sums them.
//! * Traversals (`for_each`, `scan`) walk each part's buckets in Redis's reverse-binary cursor
//!   order (dictScan), re-reading the depth per bucket: across growth every key present for the
//!   whole walk is visited, exactly once (buckets only split, never merge).
//!
//! Under `--features loom` the directory is a `Mutex<BTreeMap>` stand-in (flurry cannot run
//! under loom; its linearizability is flurry's contract) and everything above runs as it is.

use super::block::{self, Block, EntryRef, Item};
use super::entry::Entry;
use crate::sync::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Parts of the keyspace: a lock stripe covers whole parts (the stripe count divides this).
#[cfg(not(feature = "loom"))]
pub const PARTS: usize = 1024;
#[cfg(feature = "loom")]
pub const PARTS: usize = 2;
const PART_BITS: u32 = PARTS.trailing_zeros();
/// A part grows (doubles its buckets) when its keys exceed this many per bucket on average.
#[cfg(not(feature = "loom"))]
const GROW_AVG: usize = 24;
/// Under loom, a third key in a part grows it: the models see growth.
#[cfg(feature = "loom")]
const GROW_AVG: usize = 2;
/// ... or when one of its blocks holds more than this many entries.
const GROW_ENTRIES: usize = 4 * GROW_AVG;
/// ... or takes more than this many bytes.
const GROW_BYTES: usize = 64 * 1024;
/// Buckets per part are at most 2^MAX_DEPTH (the index bits stay clear of the fingerprint's).
const MAX_DEPTH: u32 = 40;

/// Retirements per thread before the map's collector reclaims them.
#[cfg(not(feature = "loom"))]
const RETIRE_BATCH: usize = 8;

/// One part's growth state.
struct Part {
    depth: AtomicU32,
    len: AtomicUsize,
    /// Keys with an expiry (the active cycle skips parts without).
    expires: AtomicUsize,
}

/// Where a key lives: its hash and what the hash decides.
#[derive(Clone, Copy)]
struct Place {
    hash: u64,
    part: usize,
    fp: u8,
}

impl Place {
    fn of(key: &[u8]) -> Place {
        let hash = super::hash_key(key);
        Place { hash, part: (hash % PARTS as u64) as usize, fp: (hash >> 56) as u8 }
    }

    fn index(&self, depth: u32) -> u64 {
        (self.hash >> PART_BITS) & ((1u64 << depth) - 1)
    }
}

fn bucket_id(part: usize, depth: u32, index: u64) -> u64 {
    (index << 16) | (u64::from(depth) << 10) | part as u64
}

/// Mixes a bucket id into a well-spread hash for flurry's table.
#[cfg(not(feature = "loom"))]
#[derive(Default)]
struct IdHasher(u64);

#[cfg(not(feature = "loom"))]
impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // murmur3's fmix64.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51afd7ed558ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ceb9fe1a85ec53);
        h ^ (h >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(not(feature = "loom"))]
struct Dir {
    map: flurry::HashMap<u64, Block, std::hash::BuildHasherDefault<IdHasher>>,
}

#[cfg(not(feature = "loom"))]
impl Dir {
    fn new() -> Dir {
        // Reclaim retired blocks every RETIRE_BATCH retirements per thread (seize's default is
        // 120): deleting large values must give their memory back promptly (maxmemory, INFO).
        let collector = seize::Collector::new().batch_size(RETIRE_BATCH);
        Dir { map: flurry::HashMap::with_hasher(Default::default()).with_collector(collector) }
    }

    fn read<R>(&self, id: u64, f: impl FnOnce(Option<&Block>) -> R) -> R {
        let guard = self.map.guard();
        f(self.map.get(&id, &guard))
    }

    fn put(&self, id: u64, b: Block) {
        let guard = self.map.guard();
        self.map.insert(id, b, &guard);
    }

    fn remove(&self, id: u64) {
        let guard = self.map.guard();
        self.map.remove(&id, &guard);
    }

    fn clear(&self) {
        let guard = self.map.guard();
        self.map.clear(&guard);
    }

    fn reserve(&self, blocks: usize) {
        let guard = self.map.guard();
        self.map.reserve(blocks, &guard);
    }
}

/// Loom stand-in for the directory. A `BTreeMap`: its order must not depend on a random hasher.
/// A reader clones the block's `Arc` and reads it after the lock is released, as a flurry reader
/// reads a block that a writer may retire meanwhile.
#[cfg(feature = "loom")]
struct Dir {
    map: crate::sync::Mutex<std::collections::BTreeMap<u64, crate::sync::Arc<Block>>>,
}

#[cfg(feature = "loom")]
impl Dir {
    fn new() -> Dir {
        Dir { map: crate::sync::Mutex::new(Default::default()) }
    }

    fn read<R>(&self, id: u64, f: impl FnOnce(Option<&Block>) -> R) -> R {
        let b = crate::sync::lock(&self.map).get(&id).cloned();
        f(b.as_deref())
    }

    fn put(&self, id: u64, b: Block) {
        crate::sync::lock(&self.map).insert(id, crate::sync::Arc::new(b));
    }

    fn remove(&self, id: u64) {
        crate::sync::lock(&self.map).remove(&id);
    }

    fn clear(&self) {
        crate::sync::lock(&self.map).clear();
    }

    fn reserve(&self, _blocks: usize) {}
}

/// What a write does to the entry it looked at.
pub enum Change<'e> {
    Keep,
    Remove,
    Put(&'e Entry),
    /// Set the expiry of the existing entry (0: persist).
    Expire(u64),
}

/// The keyspace map of one database: see the module doc.
pub struct KeyMap {
    dir: Dir,
    parts: Box<[Part]>,
    /// Where the active-expiry cycle goes on ([`KeyMap::due`]): a `scan` cursor.
    expire_cursor: AtomicU64,
}

impl KeyMap {
    pub fn new() -> KeyMap {
        KeyMap {
            dir: Dir::new(),
            parts: (0..PARTS)
                .map(|_| Part { depth: AtomicU32::new(0), len: AtomicUsize::new(0), expires: AtomicUsize::new(0) })
                .collect(),
            expire_cursor: AtomicU64::new(0),
        }
    }

    /// Run `f` on the entry of `key`, if any. Lock-free.
    pub fn get<R>(&self, key: &[u8], f: impl FnOnce(Option<EntryRef<'_>>) -> R) -> R {
        let at = Place::of(key);
        let part = &self.parts[at.part];
        let mut f = Some(f);
        loop {
            // Acquire: pairs with the Release publication of a grown depth (see `grow`).
            let depth = part.depth.load(Ordering::Acquire);
            let found = self.dir.read(bucket_id(at.part, depth, at.index(depth)), |b| {
                let b = b?;
                let f = f.take()?;
                Some(f(b.find(at.fp, key).map(|i| b.entry(i))))
            });
            if let Some(r) = found {
                return r;
            }
            if part.depth.load(Ordering::Acquire) == depth {
                return f.take().map_or_else(|| unreachable!("f runs once"), |f| f(None));
            }
        }
    }

    /// Look at `key`'s entry and change it as `op` says. The caller holds the key's exclusive
    /// stripe (see the module doc).
    pub fn update<'e, R>(&self, key: &[u8], op: impl FnOnce(Option<EntryRef<'_>>) -> (Change<'e>, R)) -> R {
        let at = Place::of(key);
        let part = &self.parts[at.part];
        // Relaxed: only this stripe's exclusive holders change it, and we hold the stripe.
        let depth = part.depth.load(Ordering::Relaxed);
        let id = bucket_id(at.part, depth, at.index(depth));
        let (r, grow) = self.dir.read(id, |old| {
            let found = old.and_then(|b| b.find(at.fp, key));
            let (change, r) = op(found.and_then(|i| old.map(|b| b.entry(i))));
            let had_ttl = found.and_then(|i| old.map(|b| b.entry(i).expire_at_ms() != 0)).unwrap_or(false);
            // Relaxed: statistics changed only under the part's exclusive stripe.
            let count_ttl = |before: bool, after: bool| match (before, after) {
                (false, true) => drop(part.expires.fetch_add(1, Ordering::Relaxed)),
                (true, false) => drop(part.expires.fetch_sub(1, Ordering::Relaxed)),
                _ => {}
            };
            // The other entries of the bucket, with room for one more (no regrowth of the Vec).
            let others = || {
                let mut items = Vec::with_capacity(old.map_or(0, |b| b.len()) + 1);
                if let Some(b) = old {
                    for j in (0..b.len()).filter(|&j| Some(j) != found) {
                        items.push(Item::copied(b.fingerprint(j), b.entry(j)));
                    }
                }
                items
            };
            let mut grow = false;
            match change {
                Change::Keep => {}
                Change::Remove => {
                    if found.is_some() {
                        let items = others();
                        if items.is_empty() {
                            self.dir.remove(id);
                        } else {
                            self.dir.put(id, block::build(&items));
                        }
                        part.len.fetch_sub(1, Ordering::Relaxed);
                        count_ttl(had_ttl, false);
                    }
                }
                Change::Put(e) => {
                    // A replaced entry keeps its access word; a new key's is a new object's
                    // (Redis's `createObject`: the LRU clock now, or the LFU's initial counter).
                    let access =
                        found.and_then(|i| old.map(|b| b.entry(i).access())).unwrap_or_else(super::evict::new_access);
                    let mut items = others();
                    items.push(Item::new(at.fp, key, e, access));
                    let b = block::build(&items);
                    grow = b.len() > GROW_ENTRIES || b.bytes() > GROW_BYTES;
                    self.dir.put(id, b);
                    count_ttl(had_ttl, e.expire_at_ms() != 0);
                    if found.is_none() {
                        let n = part.len.fetch_add(1, Ordering::Relaxed) + 1;
                        grow |= n > GROW_AVG << depth;
                    }
                }
                Change::Expire(at_ms) => {
                    if let (Some(i), Some(b)) = (found, old) {
                        let items: Vec<Item> = (0..b.len())
                            .map(|j| {
                                let mut it = Item::copied(b.fingerprint(j), b.entry(j));
                                if j == i {
                                    it.expire_at_ms = at_ms;
                                }
                                it
                            })
                            .collect();
                        self.dir.put(id, block::build(&items));
                        count_ttl(had_ttl, at_ms != 0);
                    }
                }
            }
            (r, grow)
        });
        if grow {
            self.grow(at.part);
        }
        r
    }

    /// Double the buckets of part `p` (see the module doc). Its stripe is held exclusively (or
    /// nothing else writes the map: loading).
    fn grow(&self, p: usize) {
        let part = &self.parts[p];
        let depth = part.depth.load(Ordering::Relaxed);
        if depth >= MAX_DEPTH {
            return;
        }
        let high = 1u64 << depth;
        for i in 0..high {
            self.dir.read(bucket_id(p, depth, i), |b| {
                let Some(b) = b else { return };
                let (mut lo, mut hi) = (Vec::new(), Vec::new());
                for j in 0..b.len() {
                    let e = b.entry(j);
                    let it = Item::copied(b.fingerprint(j), e);
                    if Place::of(e.key()).index(depth + 1) & high == 0 { lo.push(it) } else { hi.push(it) }
                }
                for (index, items) in [(i, lo), (i | high, hi)] {
                    if !items.is_empty() {
                        self.dir.put(bucket_id(p, depth + 1, index), block::build(&items));
                    }
                }
            });
        }
        let broken = crate::sync::fault::on(crate::sync::fault::Fault::GrowRemoveBeforePublish);
        if !broken {
            // Release: a reader that sees the new depth finds the new blocks.
            part.depth.store(depth + 1, Ordering::Release);
        }
        for i in 0..high {
            self.dir.remove(bucket_id(p, depth, i));
        }
        if broken {
            part.depth.store(depth + 1, Ordering::Release);
        }
    }

    /// Insert or replace. The caller holds the key's exclusive stripe.
    pub fn insert(&self, key: &[u8], entry: Entry) {
        self.update(key, |_| (Change::Put(&entry), ()))
    }

    /// Remove `key`, running `f` on the removed entry. The caller holds the key's exclusive stripe.
    pub fn remove_with<R>(&self, key: &[u8], f: impl FnOnce(Option<EntryRef<'_>>) -> R) -> R {
        self.update(key, |e| (Change::Remove, f(e)))
    }

    pub fn remove(&self, key: &[u8]) -> bool {
        self.remove_with(key, |e| e.is_some())
    }

    /// Set the expiry of `key` (0: none); false when there is no such key. The caller holds the
    /// key's exclusive stripe.
    pub fn set_expire(&self, key: &[u8], at_ms: u64) -> bool {
        self.update(key, |e| (Change::Expire(at_ms), e.is_some()))
    }

    /// Empty the map. Nothing else writes it meanwhile (it is swapped out, or every stripe is held).
    pub fn clear(&self) {
        for part in self.parts.iter() {
            part.depth.store(0, Ordering::Release);
            part.len.store(0, Ordering::Relaxed);
            part.expires.store(0, Ordering::Relaxed);
        }
        self.dir.clear();
    }

    /// Grows the parts (if needed) to hold `additional` more keys without growing on the way.
    /// Nothing else writes the map meanwhile (loading).
    pub fn reserve(&self, additional: usize) {
        let per_part = additional / PARTS;
        for (p, part) in self.parts.iter().enumerate() {
            while part.len.load(Ordering::Relaxed) + per_part > GROW_AVG << part.depth.load(Ordering::Relaxed)
                && part.depth.load(Ordering::Relaxed) < MAX_DEPTH
            {
                self.grow(p);
            }
        }
        self.dir.reserve(additional / GROW_AVG);
    }

    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len.load(Ordering::Relaxed)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys with an expiry (INFO keyspace `expires`).
    pub fn expires(&self) -> usize {
        self.parts.iter().map(|p| p.expires.load(Ordering::Relaxed)).sum()
    }

    /// The active-expiry cycle's step (Redis's `activeExpireCycle`, walking instead of sampling):
    /// from where the last step stopped, the expired keys of the parts that hold keys with an
    /// expiry, with their expiry times, until `max_due` are found, `max_examined` keys with an
    /// expiry were looked at, or one whole pass is done. Hints only: the caller re-checks each
    /// under its stripe.
    pub fn due(&self, now_ms: u64, max_due: usize, max_examined: usize) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        let mut examined = 0;
        // Relaxed: only the expiry thread moves it; a race only revisits or skips a few buckets.
        let start = self.expire_cursor.load(Ordering::Relaxed);
        let mut cursor = start;
        // One pass: until the cursor is back where it started (the starting part's rest at the
        // end when it started mid-way); bounded in case growth moved the cursor's bits.
        let mut parts_done = 0;
        while out.len() < max_due
            && examined < max_examined
            && parts_done <= PARTS
            && !(parts_done > 0 && cursor == start)
        {
            let part = (cursor % PARTS as u64) as usize;
            let next = if self.parts[part].expires.load(Ordering::Relaxed) == 0 {
                0
            } else {
                self.scan_part(part, cursor >> PART_BITS, &mut |k, e| {
                    let at = e.expire_at_ms();
                    if at != 0 {
                        examined += 1;
                        if e.is_expired(now_ms) {
                            out.push((k.to_vec(), at));
                        }
                    }
                })
            };
            cursor = if next == 0 {
                parts_done += 1;
                ((part + 1) % PARTS) as u64
            } else {
                (next << PART_BITS) | part as u64
            };
        }
        self.expire_cursor.store(cursor, Ordering::Relaxed);
        out.truncate(max_due);
        out
    }

    /// Visit the keys of bucket `cursor` of part `p` (at the part's current depth); the cursor of
    /// the next bucket in reverse-binary order, 0 once the part is done (Redis's dictScan).
    pub fn scan_part(&self, p: usize, cursor: u64, f: &mut dyn FnMut(&[u8], EntryRef<'_>)) -> u64 {
        let part = &self.parts[p];
        loop {
            let depth = part.depth.load(Ordering::Acquire);
            let mask = (1u64 << depth) - 1;
            let present = self.dir.read(bucket_id(p, depth, cursor & mask), |b| {
                b.map(|b| {
                    for e in b.entries() {
                        f(e.key(), e);
                    }
                })
                .is_some()
            });
            if present || part.depth.load(Ordering::Acquire) == depth {
                // Set the bits above the mask, then increment the reversed cursor.
                let v = (cursor | !mask).reverse_bits().wrapping_add(1).reverse_bits();
                return v;
            }
        }
    }

    /// One SCAN call from `cursor` (see `cmd::keys::scan`): visit buckets, parts in order, each
    /// part's in reverse-binary order, until `count` keys (or `10 * count` buckets) were seen; the
    /// next cursor, 0 at the end.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], EntryRef<'_>)) -> u64 {
        let mut part = (cursor % PARTS as u64) as usize;
        let mut bucket = cursor >> PART_BITS;
        let (mut seen, mut buckets) = (0usize, 0usize);
        loop {
            // An empty part costs one load: it does not count as a visited bucket.
            if self.parts[part].len.load(Ordering::Relaxed) == 0 {
                bucket = 0;
            } else {
                bucket = self.scan_part(part, bucket, &mut |k, e| {
                    seen += 1;
                    f(k, e)
                });
                buckets += 1;
            }
            if bucket == 0 {
                part += 1;
                if part == PARTS {
                    return 0;
                }
            }
            if seen >= count || buckets >= count.saturating_mul(10) {
                return (bucket << PART_BITS) | part as u64;
            }
        }
    }

    /// Visit every entry: each part's buckets in cursor order (every key present throughout is
    /// visited exactly once, see the module doc).
    pub fn for_each(&self, mut f: impl FnMut(&[u8], EntryRef<'_>)) {
        for p in 0..PARTS {
            if self.parts[p].len.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let mut cursor = 0;
            loop {
                cursor = self.scan_part(p, cursor, &mut f);
                if cursor == 0 {
                    break;
                }
            }
        }
    }

    /// Visit entries until `f` returns `Some`; the same traversal as `for_each`.
    pub fn find_map<R>(&self, mut f: impl FnMut(&[u8], EntryRef<'_>) -> Option<R>) -> Option<R> {
        let mut out = None;
        for p in 0..PARTS {
            if self.parts[p].len.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let mut cursor = 0;
            loop {
                cursor = self.scan_part(p, cursor, &mut |k, e| {
                    if out.is_none() {
                        out = f(k, e);
                    }
                });
                if out.is_some() {
                    return out;
                }
                if cursor == 0 {
                    break;
                }
            }
        }
        None
    }

    /// Run `f` on `n` random entries (repeats possible), for eviction's sampling and RANDOMKEY: a
    /// part drawn in proportion to its keys, a random present bucket of it, a random entry of its
    /// block (as Redis's, not exactly uniform: a key of a small bucket is likelier). Fewer when
    /// the map is (or becomes) empty.
    pub fn sample(&self, n: usize, mut f: impl FnMut(&[u8], EntryRef<'_>)) {
        // Running totals of the parts' keys: a draw below the total picks its part by binary search.
        let mut total = 0usize;
        let upto: Vec<usize> = self
            .parts
            .iter()
            .map(|p| {
                total += p.len.load(Ordering::Relaxed);
                total
            })
            .collect();
        if total == 0 {
            return;
        }
        let mut rng = Rng::new();
        for _ in 0..n {
            let r = rng.below(total as u64) as usize;
            let p = upto.partition_point(|&t| t <= r).min(PARTS - 1);
            let depth = self.parts[p].depth.load(Ordering::Acquire);
            let buckets = 1u64 << depth;
            let first = rng.below(buckets);
            // The first present bucket from a random one (a bounded walk: the part may empty meanwhile).
            for i in 0..buckets.min(1 << 16) {
                let index = (first + i) & (buckets - 1);
                let hit = self.dir.read(bucket_id(p, depth, index), |b| match b {
                    Some(b) if b.len() > 0 => {
                        let e = b.entry(rng.below(b.len() as u64) as usize);
                        f(e.key(), e);
                        true
                    }
                    _ => false,
                });
                if hit {
                    break;
                }
            }
        }
    }

    /// Number of blocks and their bytes (the per-key part of the map's memory), for tests and
    /// MEMORY STATS.
    pub fn block_stats(&self) -> (usize, usize) {
        let (mut blocks, mut bytes) = (0, 0);
        for p in 0..PARTS {
            let depth = self.parts[p].depth.load(Ordering::Acquire);
            for i in 0..(1u64 << depth) {
                self.dir.read(bucket_id(p, depth, i), |b| {
                    if let Some(b) = b {
                        blocks += 1;
                        bytes += b.bytes();
                    }
                });
            }
        }
        (blocks, bytes)
    }
}

/// A small xorshift generator seeded per use: samples need to be spread, not secure.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        use std::hash::BuildHasher;
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Rng(std::collections::hash_map::RandomState::new().hash_one(n) | 1)
    }

    /// Uniform enough below `n` (> 0).
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

impl Default for KeyMap {
    fn default() -> Self {
        KeyMap::new()
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::db::ValueRef;
    use std::collections::HashMap;

    fn key(i: usize) -> Vec<u8> {
        format!("key:{i:010}").into_bytes()
    }

    #[test]
    fn keys_stay_found_while_parts_grow_and_counts_stay_exact() {
        let m = KeyMap::new();
        let n = PARTS * GROW_AVG * 2;
        for i in 0..n {
            m.insert(&key(i), Entry::string_copied(format!("v{i}").as_bytes(), 0));
        }
        assert_eq!(m.len(), n);
        let grown = m.parts.iter().filter(|p| p.depth.load(Ordering::Relaxed) >= 1).count();
        assert!(grown > PARTS * 9 / 10, "{grown} parts grew");
        for i in (0..n).step_by(7) {
            assert_eq!(
                m.get(&key(i), |e| e.and_then(|e| e.string_bytes())).as_deref(),
                Some(format!("v{i}").as_bytes())
            );
        }
        assert!(m.get(b"nope", |e| e.is_none()));
        let mut seen = 0;
        m.for_each(|_, _| seen += 1);
        assert_eq!(seen, n);
        for i in (0..n).filter(|i| i % 2 == 0) {
            assert!(m.remove(&key(i)));
        }
        assert!(!m.remove(&key(0)));
        assert_eq!(m.len(), n / 2);
        assert!(m.get(&key(1), |e| e.is_some()) && m.get(&key(2), |e| e.is_none()));
        let (blocks, bytes) = m.block_stats();
        assert!(blocks > 0 && bytes > 0);
        m.clear();
        assert_eq!((m.len(), m.block_stats()), (0, (0, 0)));
        assert!(m.get(&key(1), |e| e.is_none()));
    }

    #[test]
    fn an_expiry_change_or_a_replace_copies_the_block_and_keeps_incr_cells() {
        let m = KeyMap::new();
        m.insert(b"n", Entry::int(5, 0));
        m.insert(b"s", Entry::string_copied(b"x", 0));
        m.get(b"n", |e| match e.map(|e| e.value()) {
            Some(ValueRef::Int(c)) => c.fetch_add(1, Ordering::AcqRel),
            _ => panic!("an integer cell"),
        });
        m.get(b"n", |e| e.unwrap().set_access(7));
        assert!(m.set_expire(b"n", 1234));
        assert!(!m.set_expire(b"missing", 1));
        m.insert(b"s", Entry::string_copied(b"y", 0));
        m.get(b"n", |e| {
            let e = e.unwrap();
            assert_eq!((e.string_bytes().as_deref(), e.expire_at_ms(), e.access()), (Some(&b"6"[..]), 1234, 7));
        });
        assert!(m.set_expire(b"n", 0));
        assert_eq!(m.get(b"n", |e| e.unwrap().expire_at_ms()), 0);
        assert_eq!(m.get(b"s", |e| e.unwrap().string_bytes()).as_deref(), Some(&b"y"[..]));
        assert_eq!(m.len(), 2);
    }

    /// Redis's SCAN guarantee across growth: a key present for the whole scan is returned exactly
    /// once, while keys added between calls make every part grow (several times).
    #[test]
    fn scan_returns_every_stable_key_once_across_growth() {
        let m = KeyMap::new();
        let stable = PARTS * 8;
        for i in 0..stable {
            m.insert(&key(i), Entry::string_copied(b"v", 0));
        }
        let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
        let (mut cursor, mut next_new, mut calls) = (0u64, stable, 0);
        loop {
            cursor = m.scan(cursor, 50, |k, _| *seen.entry(k.to_vec()).or_default() += 1);
            calls += 1;
            // Grow during the first calls: 300 new keys per call (a scan that keeps up with
            // unbounded growth would never end, in Redis too).
            if calls <= 120 {
                for _ in 0..300 {
                    m.insert(&key(next_new), Entry::string_copied(b"n", 0));
                    next_new += 1;
                }
            }
            if cursor == 0 {
                break;
            }
        }
        let grown = m.parts.iter().filter(|p| p.depth.load(Ordering::Relaxed) >= 1).count();
        assert!(grown > PARTS * 9 / 10, "only {grown} parts grew during the scan");
        for i in 0..stable {
            assert_eq!(seen.get(&key(i)), Some(&1), "stable key {i} after {calls} calls");
        }
        assert!(seen.values().all(|&n| n == 1), "no key twice");
    }

    #[test]
    fn samples_come_from_the_map_and_spread() {
        let m = KeyMap::new();
        let mut got = 0;
        m.sample(5, |_, _| got += 1);
        assert_eq!(got, 0, "an empty map gives none");
        m.insert(b"only", Entry::string_copied(b"v", 0));
        let mut keys = Vec::new();
        m.sample(3, |k, _| keys.push(k.to_vec()));
        assert_eq!(keys, vec![b"only".to_vec(); 3]);
        for i in 0..10_000 {
            m.insert(&key(i), Entry::string_copied(b"v", 0));
        }
        let mut distinct = std::collections::HashSet::new();
        m.sample(1000, |k, _| {
            distinct.insert(k.to_vec());
        });
        assert!(distinct.len() > 900, "{} distinct of 1000", distinct.len());
    }
}
