//! The keyspace map: flurry's lock-free `HashMap` as the *directory* of the keyspace, keyed by a
//! bucket id, each value the bucket's [`Slot`]: one atomic pointer to the [`Block`] that packs the
//! entries of the keys hashing to that bucket (see `block` for its layout). Redis pays ~113 B a
//! key (16-byte values) for its dict entry, key sds and value robj; one flurry node and one value
//! allocation per key cost ~217 B; here the flurry node, its slot and the block header are paid
//! once per bucket of ~12-24 keys.
//!
//! # Parts, buckets and ids
//!
//! A key's 64-bit hash ([`hash_key`](super::hash_key), the hash that also picks its write-lock
//! stripe) splits into: the part `h % PARTS` (low bits), the bucket index within the part (the next
//! `depth` bits, `depth` being the part's own, growing), and the fingerprint (the top byte) that a
//! block compares before any key. The lock stripes are `h % stripes` with `stripes` dividing
//! `PARTS`, so **a stripe covers whole parts**, and every bucket of a part is under one stripe.
//! A bucket's id is its depth over its hash bits (index and part: [`bucket_id`]), so the same
//! bucket at another depth is another id, and flurry hashes the id as it is (`IdHasher`: the low
//! bits are already the key hash's).
//!
//! # Invariants
//!
//! * A slot is in the directory iff its bucket (at that depth) holds a key: its pointer is never
//!   null. A bucket that empties has its slot removed; a bucket that gets its first key has one
//!   inserted.
//! * Readers take no lock: in one guard of the directory's collector they load the part's depth
//!   (Acquire), get the bucket's slot from flurry, load the slot's block (Acquire, pairing with
//!   the Release that published it) and search it. A block found is a consistent state of the
//!   bucket (blocks are immutable but for atomics, see `block`). A missing slot with the depth
//!   unchanged means the bucket is empty; with the depth changed the reader retries at the new one.
//! * Every change to a bucket (insert, replace, delete, expiry) builds a new block and puts it in
//!   under the key's EXCLUSIVE stripe (the caller holds it, `Keyspace::write`, which also orders
//!   the change with its AOF record): one flurry get and one atomic swap of the slot's pointer (no
//!   flurry allocation), or, for a bucket's first key or its last, one flurry insert or remove.
//!   Writers under the SHARED stripe only mutate atomics inside a block (INCR's CAS) or a
//!   collection behind its own cell lock; they never change a block or a slot, so a copy
//!   (exclusive) never races them.
//! * Reclamation is flurry's collector (seize) for everything: a swapped-out block is retired with
//!   the guard's `defer_retire` (the block's first bytes are its seize link), a removed slot by
//!   flurry itself, and a slot's drop frees the block it still holds. So a block or slot is freed
//!   only after every guard that may have loaded it is gone: a reader may see an older block than
//!   a write that completed concurrently (its read linearizes at its load of the slot, before
//!   that write), never a torn or freed one.
//! * Growth: when a part's keys exceed `GROW_AVG << depth` (or one of its blocks grows past
//!   `GROW_ENTRIES`), the writer, still under its exclusive stripe (which covers the whole part),
//!   splits each bucket in two by the next hash bit, inserts the new slots at `depth + 1`, THEN
//!   publishes the new depth (Release), THEN removes the old slots. Only that part's writers wait:
//!   no stop-the-world. A reader that loaded the old depth either finds an old slot (its block has
//!   the same contents as the new ones: nobody of that part wrote meanwhile, and nobody ever
//!   writes an old slot again) or misses it after its removal, and then its re-load of the depth
//!   sees the new one (the removal follows the publication) and it retries. A writer loads the
//!   depth after taking the stripe, so it always changes a current slot.
//! * Counts: each part counts its keys (changed under its exclusive stripe); `len` sums them.
//! * Traversals (`for_each`, `scan`) walk each part's buckets in Redis's reverse-binary cursor
//!   order (dictScan), re-reading the depth per bucket: across growth every key present for the
//!   whole walk is visited, exactly once (buckets only split, never merge).
//!
//! Under `--features loom` the directory is a `Mutex<BTreeMap>` of `Arc<Slot>` (flurry cannot run
//! under loom; its linearizability is flurry's contract) and nothing swapped out is freed while the
//! map lives (seize's safety is its contract as it was flurry's); the depth and the slots' pointers
//! are loom's atomics, so the publication orders above are model-checked.

mod bulk;
mod hint;
pub use bulk::Batch;

use super::block::{self, Block, EntryRef, Item};
use super::entry::Entry;
use crate::sync::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

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
/// Buckets per part are at most 2^MAX_DEPTH (the index bits stay clear of the fingerprint's and
/// of the depth's in a bucket id).
const MAX_DEPTH: u32 = 40;
/// Where a bucket id keeps its depth (above the index and part bits: `MAX_DEPTH + PART_BITS`).
const DEPTH_SHIFT: u32 = 56;

/// Most keys one [`KeyMap::prefetch`] looks at (a pipelined batch is walked in steps of this).
pub const PREFETCH_MAX: usize = 16;
/// The most bytes of one block that [`KeyMap::prefetch`] loads.
const PREFETCH_BLOCK_BYTES: usize = 1024;

/// Retirements per thread before the map's collector reclaims them.
#[cfg(not(feature = "loom"))]
const RETIRE_BATCH: usize = 8;

/// One part's growth state and counts.
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

/// The directory key of bucket `index` of part `part` at `depth`: the depth over the key hash's
/// low `PART_BITS + depth` bits (what places a key in that bucket).
fn bucket_id(part: usize, depth: u32, index: u64) -> u64 {
    (u64::from(depth) << DEPTH_SHIFT) | (index << PART_BITS) | part as u64
}

/// The start of a block's allocation: its [`block::LINK`] bytes, the collector's link.
#[cfg(not(feature = "loom"))]
#[repr(C)]
pub struct BlockHead {
    _link: seize::Link,
}

// SAFETY: `BlockHead` is `repr(C)` with the `Link` as its first (only) field.
#[cfg(not(feature = "loom"))]
unsafe impl seize::AsLink for BlockHead {}

#[cfg(feature = "loom")]
pub struct BlockHead {
    _opaque: [u8; 0],
}

/// A bucket's value in the directory: its current block (`Block::into_raw`, never null while the
/// slot is in the directory), swapped under the bucket's exclusive stripe.
pub struct Slot {
    block: AtomicPtr<BlockHead>,
}

impl Slot {
    fn new(b: *mut BlockHead) -> Slot {
        Slot { block: AtomicPtr::new(b) }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Relaxed: the slot is unreachable (flurry reclaims it after every guard that could have
        // loaded it is gone; under loom, the last `Arc`), so nothing races this load.
        let b = self.block.load(Ordering::Relaxed);
        if let Some(p) = std::ptr::NonNull::new(b.cast::<u8>()) {
            // SAFETY: the block the slot held last, from `Block::into_raw`; the blocks swapped out
            // before it were retired on their own, so this one is freed once, here.
            drop(unsafe { Block::from_raw(p) })
        }
    }
}

/// Run `f` on the block at `p` (null: none). The caller keeps it alive (its guard).
fn with_block<R>(p: *mut BlockHead, f: impl FnOnce(Option<&Block>) -> R) -> R {
    // SAFETY: a non-null slot pointer is a block from `Block::into_raw`, alive while the caller's
    // guard is (it is retired, never freed, while a guard may see it); `ManuallyDrop`: this view
    // owns nothing.
    let b = std::ptr::NonNull::new(p.cast::<u8>()).map(|p| std::mem::ManuallyDrop::new(unsafe { Block::from_raw(p) }));
    f(b.as_deref())
}

/// Hashes a bucket id as it is: its low bits are the key hash's (see [`bucket_id`]), already well
/// spread; flurry mixes the high half in (`spread`).
#[cfg(not(feature = "loom"))]
#[derive(Default)]
struct IdHasher(u64);

#[cfg(not(feature = "loom"))]
impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
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

/// The directory: flurry's map of bucket id -> slot, its collector retiring blocks as well.
#[cfg(not(feature = "loom"))]
struct Dir {
    map: flurry::HashMap<u64, Slot, std::hash::BuildHasherDefault<IdHasher>>,
}

#[cfg(not(feature = "loom"))]
type Guard<'a> = flurry::Guard<'a>;
#[cfg(not(feature = "loom"))]
type SlotRef<'g> = &'g Slot;

/// Reclaims a retired block.
///
/// # Safety
/// `link` is the start of a block from `Block::into_raw`, retired once, unreachable.
#[cfg(not(feature = "loom"))]
unsafe fn reclaim_block(link: *mut seize::Link) {
    // SAFETY: the caller's contract.
    drop(unsafe { Block::from_raw(std::ptr::NonNull::new_unchecked(link.cast::<u8>())) })
}

#[cfg(not(feature = "loom"))]
impl Dir {
    fn new() -> Dir {
        // Reclaim retired blocks every RETIRE_BATCH retirements per thread (seize's default is
        // 120): deleting large values must give their memory back promptly (maxmemory, INFO).
        // No epochs: with them, seize does not wait for a thread whose last protected load is
        // older than every object of a batch (it cannot hold those objects), which holds for the
        // blocks themselves but not for what a splice moved out of an old block into a younger
        // one (`block::MOVED`): a reader still holding the old block must hold up the
        // reclamation of every later block of its bucket, as it does when every active guard
        // counts. (Guards here last one lookup or one write; epochs only help stalled ones.)
        let collector = seize::Collector::new().batch_size(RETIRE_BATCH).epoch_frequency(None);
        Dir { map: flurry::HashMap::with_hasher(Default::default()).with_collector(collector) }
    }

    fn enter(&self) -> Guard<'_> {
        self.map.guard()
    }

    fn get<'g>(&'g self, g: &'g Guard<'_>, id: u64) -> Option<SlotRef<'g>> {
        self.map.get(&id, g)
    }

    /// The slot's block (Acquire: pairs with the Release of its publication), protected by `g`.
    fn load(&self, g: &Guard<'_>, slot: &Slot) -> *mut BlockHead {
        g.protect(&slot.block, Ordering::Acquire)
    }

    /// Publish `new` in `slot` (Release: a reader that loads it sees its bytes); the old block.
    fn swap(&self, slot: &Slot, new: *mut BlockHead) -> *mut BlockHead {
        slot.block.swap(new, Ordering::AcqRel)
    }

    /// A new slot holding `b` (flurry publishes it).
    fn insert(&self, g: &Guard<'_>, id: u64, b: *mut BlockHead) {
        self.map.insert(id, Slot::new(b), g);
    }

    /// Remove a slot: flurry retires it, and its drop frees its block.
    fn remove(&self, g: &Guard<'_>, id: u64) {
        self.map.remove(&id, g);
    }

    /// A new block's raw pointer for a slot, its link written.
    fn new_block(&self, g: &Guard<'_>, b: Block) -> *mut BlockHead {
        let p = b.into_raw().as_ptr().cast::<BlockHead>();
        const { assert!(size_of::<seize::Link>() == block::LINK) };
        let link = g.collector().expect("the map's guards belong to its collector").link();
        // SAFETY: the block's first LINK bytes are reserved for this link (see `block`).
        unsafe { std::ptr::write(p.cast::<seize::Link>(), link) };
        p
    }

    /// Start reclaiming this thread's retired objects now.
    fn flush(&self, g: &Guard<'_>) {
        g.flush()
    }

    /// # Safety
    /// `p` is a block swapped out of its slot (no new reader can find it), retired once.
    unsafe fn retire_block(&self, g: &Guard<'_>, p: *mut BlockHead) {
        // SAFETY: the caller's contract; freed once no guard that could have loaded it is left.
        unsafe { g.defer_retire(p, reclaim_block) }
    }

    fn clear(&self, g: &Guard<'_>) {
        self.map.clear(g);
    }

    fn reserve(&self, g: &Guard<'_>, slots: usize) {
        self.map.reserve(slots, g);
    }

    fn for_each_slot(&self, g: &Guard<'_>, mut f: impl FnMut(&Slot)) {
        for s in self.map.values(g) {
            f(s)
        }
    }
}

/// Loom stand-in for the directory: a `BTreeMap` (its order must not depend on a random hasher)
/// of `Arc<Slot>`. A reader clones the slot's `Arc` and loads its block after the lock is
/// released, as a flurry reader holds a slot that a writer may remove meanwhile. Swapped-out
/// blocks go to a graveyard (nothing is freed while the map lives).
#[cfg(feature = "loom")]
struct Dir {
    map: crate::sync::Mutex<std::collections::BTreeMap<u64, crate::sync::Arc<Slot>>>,
    graveyard: std::sync::Mutex<Vec<Block>>,
}

#[cfg(feature = "loom")]
struct Guard<'a>(std::marker::PhantomData<&'a ()>);
#[cfg(feature = "loom")]
type SlotRef<'g> = crate::sync::Arc<Slot>;

#[cfg(feature = "loom")]
impl Dir {
    fn new() -> Dir {
        Dir { map: crate::sync::Mutex::new(Default::default()), graveyard: Default::default() }
    }

    fn enter(&self) -> Guard<'_> {
        Guard(std::marker::PhantomData)
    }

    fn get<'g>(&'g self, _: &'g Guard<'_>, id: u64) -> Option<SlotRef<'g>> {
        crate::sync::lock(&self.map).get(&id).cloned()
    }

    fn load(&self, _: &Guard<'_>, slot: &Slot) -> *mut BlockHead {
        slot.block.load(Ordering::Acquire)
    }

    fn swap(&self, slot: &Slot, new: *mut BlockHead) -> *mut BlockHead {
        slot.block.swap(new, Ordering::AcqRel)
    }

    fn insert(&self, _: &Guard<'_>, id: u64, b: *mut BlockHead) {
        crate::sync::lock(&self.map).insert(id, crate::sync::Arc::new(Slot::new(b)));
    }

    fn remove(&self, _: &Guard<'_>, id: u64) {
        crate::sync::lock(&self.map).remove(&id);
    }

    fn new_block(&self, _: &Guard<'_>, b: Block) -> *mut BlockHead {
        b.into_raw().as_ptr().cast()
    }

    fn flush(&self, _: &Guard<'_>) {}

    /// # Safety
    /// As the real one's.
    unsafe fn retire_block(&self, _: &Guard<'_>, p: *mut BlockHead) {
        // SAFETY: a block swapped out of its slot, from `new_block`, retired once.
        let b = unsafe { Block::from_raw(std::ptr::NonNull::new_unchecked(p.cast::<u8>())) };
        // std's mutex, held for no loom operation: it adds no modeled ordering.
        self.graveyard.lock().unwrap_or_else(|e| e.into_inner()).push(b);
    }

    fn clear(&self, _: &Guard<'_>) {
        crate::sync::lock(&self.map).clear();
    }

    fn reserve(&self, _: &Guard<'_>, _slots: usize) {}

    fn for_each_slot(&self, _: &Guard<'_>, mut f: impl FnMut(&Slot)) {
        let slots: Vec<_> = crate::sync::lock(&self.map).values().cloned().collect();
        for s in &slots {
            f(s)
        }
    }
}

/// What a write does to the entry it looked at.
pub enum Change<'e> {
    Keep,
    Remove,
    Put(&'e Entry),
    /// Set the expiry of the existing entry (0: persist).
    Expire(u64),
}

/// Every block of a map at one point, kept alive while this lives (see [`KeyMap::pin`]): a
/// background save encodes from them, with no lock, while writers go on with new blocks.
pub struct Pinned<'m> {
    /// A guard of the map's collector, entered before the blocks were loaded: every block
    /// swapped out (or whose slot is removed) after that waits for it to be dropped.
    _guard: Guard<'m>,
    blocks: Vec<*mut BlockHead>,
}

impl Pinned<'_> {
    /// Visit every pinned block, in the order they were pinned.
    pub(crate) fn for_each_block(&self, mut f: impl FnMut(&Block)) {
        for &p in &self.blocks {
            with_block(p, |b| {
                if let Some(b) = b {
                    f(b)
                }
            });
        }
    }

    /// Visit every entry of the pinned blocks (block order, then entry order).
    pub fn for_each(&self, mut f: impl FnMut(&[u8], EntryRef<'_>)) {
        self.for_each_block(|b| {
            for e in b.entries() {
                f(e.key(), e)
            }
        });
    }
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
        let g = self.dir.enter();
        // Relaxed: a hint (the loop's Acquire load is the one that orders).
        hint::prefetch(at.hash, part.depth.load(Ordering::Relaxed));
        loop {
            // Acquire: pairs with the Release publication of a grown depth (see `grow`).
            let depth = part.depth.load(Ordering::Acquire);
            if let Some(slot) = self.dir.get(&g, bucket_id(at.part, depth, at.index(depth))) {
                return with_block(self.dir.load(&g, &slot), |b| {
                    f(b.and_then(|b| b.find(at.fp, key).map(|i| b.entry(i))))
                });
            }
            if part.depth.load(Ordering::Acquire) == depth {
                return f(None);
            }
        }
    }

    /// Load the cache lines that lookups of `keys` (the first [`PREFETCH_MAX`]) will read: their
    /// slots, their blocks' headers and their blocks, in stages over all the keys, so that the
    /// misses of different keys overlap (one key's lookup is a chain of dependent loads; a
    /// pipelined batch's are independent). A hint: it reads as [`KeyMap::get`] does (lock-free, in
    /// one guard) and changes nothing, not even an access word. `hashed` gets each key's hash
    /// ([`hash_key`](super::hash_key)) first, for the caller's own prefetches (the keys' stripe
    /// locks: `Keyspace::prefetch`).
    pub fn prefetch(&self, keys: &[&[u8]], mut hashed: impl FnMut(u64)) {
        let keys = &keys[..keys.len().min(PREFETCH_MAX)];
        hint::covered(keys.len());
        let mut at = [Place { hash: 0, part: 0, fp: 0 }; PREFETCH_MAX];
        let mut blocks = [std::ptr::null_mut::<BlockHead>(); PREFETCH_MAX];
        for (a, k) in at.iter_mut().zip(keys) {
            *a = Place::of(k);
            hashed(a.hash);
        }
        let g = self.dir.enter();
        for (b, a) in blocks.iter_mut().zip(&at[..keys.len()]) {
            // Acquire: as `get` (a depth that changed meanwhile only makes the hint miss).
            let depth = self.parts[a.part].depth.load(Ordering::Acquire);
            if let Some(slot) = self.dir.get(&g, bucket_id(a.part, depth, a.index(depth))) {
                *b = self.dir.load(&g, &slot);
            }
        }
        // The headers, without waiting: their misses overlap.
        for &b in &blocks[..keys.len()] {
            block::prefetch_line(b.cast());
        }
        // Then each whole block (up to PREFETCH_BLOCK_BYTES): a read needs its header and one
        // entry's line, a write copies the block (measured: GET the same, SET and INCR 10-15% less
        // CPU per request than touching the header and the entry only).
        for &b in &blocks[..keys.len()] {
            with_block(b, |b| {
                if let Some(b) = b {
                    b.prefetch(0, PREFETCH_BLOCK_BYTES);
                }
            });
        }
        // Then, in blocks that may hold one, each key's cell or long string (a raw string's
        // SETBIT, a collection's command: its lock word and first bytes; measured: SETBIT at P16
        // on random keys took 15% of its CPU in the first touch of the cell). Finding the entry
        // waits for the block's lines requested above, all of them in flight together.
        for (&b, (a, k)) in blocks.iter().zip(at.iter().zip(keys)) {
            with_block(b, |b| {
                if let Some(b) = b.filter(|b| b.may_hold_objects())
                    && let Some(p) = b.find(a.fp, k).and_then(|i| b.entry(i).value().out_of_line())
                {
                    block::prefetch_line(p);
                }
            });
        }
    }

    /// Make `b` (None: the bucket empties) bucket `id`'s block, `slot` its slot if it has one,
    /// retiring the block it replaces. The caller holds the bucket's part's exclusive stripe.
    fn set_bucket(&self, g: &Guard<'_>, id: u64, slot: Option<&Slot>, b: Option<Block>) {
        let depth = (id >> DEPTH_SHIFT) as u32;
        let owns = match (slot, b) {
            (Some(slot), Some(b)) => {
                let size = b.bytes();
                let new = self.dir.new_block(g, b);
                hint::set(id, depth, Some(slot), new, size);
                // Release: a reader that loads the new block sees its bytes.
                let old = self.dir.swap(slot, new);
                let owns = with_block(old, |b| b.is_some_and(Block::owns));
                // SAFETY: `old` is unlinked now (only this stripe's holder changes the slot),
                // retired once.
                unsafe { self.dir.retire_block(g, old) }
                owns
            }
            (Some(slot), None) => {
                let owns = with_block(self.dir.load(g, slot), |b| b.is_some_and(Block::owns));
                hint::set(id, depth, None, std::ptr::null_mut(), 0);
                self.dir.remove(g, id);
                owns
            }
            (None, Some(b)) => {
                let size = b.bytes();
                let new = self.dir.new_block(g, b);
                hint::set(id, depth, None, new, size);
                self.dir.insert(g, id, new);
                false
            }
            (None, None) => false,
        };
        if owns {
            // What the old block owns (a large string, a collection) is freed as soon as no
            // reader holds it, not after RETIRE_BATCH more writes on this thread (maxmemory, INFO).
            self.dir.flush(g);
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
        let g = self.dir.enter();
        hint::prefetch(at.hash, depth);
        let slot = self.dir.get(&g, id);
        let slot = slot.as_deref();
        let (r, grow) = with_block(slot.map_or(std::ptr::null_mut(), |s| self.dir.load(&g, s)), |old| {
            let found = old.and_then(|b| b.find(at.fp, key));
            let (change, r) = op(found.and_then(|i| old.map(|b| b.entry(i))));
            let had_ttl = found.and_then(|i| old.map(|b| b.entry(i).expire_at_ms() != 0)).unwrap_or(false);
            // Relaxed: statistics changed only under the part's exclusive stripe.
            let count_ttl = |before: bool, after: bool| match (before, after) {
                (false, true) => drop(part.expires.fetch_add(1, Ordering::Relaxed)),
                (true, false) => drop(part.expires.fetch_sub(1, Ordering::Relaxed)),
                _ => {}
            };
            let mut grow = false;
            match change {
                Change::Keep => {}
                Change::Remove => {
                    if let (Some(i), Some(b)) = (found, old) {
                        self.set_bucket(&g, id, slot, (b.len() > 1).then(|| block::splice(b, i, None)));
                        part.len.fetch_sub(1, Ordering::Relaxed);
                        count_ttl(had_ttl, false);
                    }
                }
                Change::Put(e) => {
                    // A replaced entry keeps its access word; a new key's is a new object's
                    // (Redis's `createObject`: the LRU clock now, or the LFU's initial counter).
                    let access =
                        found.and_then(|i| old.map(|b| b.entry(i).access())).unwrap_or_else(super::evict::new_access);
                    let it = Item::new(at.fp, key, e, access);
                    let b = match old {
                        // Replaced in place, or added at the end.
                        Some(b) => block::splice(b, found.unwrap_or(b.len()), Some(&it)),
                        None => block::build(&[it]),
                    };
                    grow = b.len() > GROW_ENTRIES || b.bytes() > GROW_BYTES;
                    self.set_bucket(&g, id, slot, Some(b));
                    count_ttl(had_ttl, e.expire_at_ms() != 0);
                    if found.is_none() {
                        let n = part.len.fetch_add(1, Ordering::Relaxed) + 1;
                        grow |= n > GROW_AVG << depth;
                    }
                }
                Change::Expire(at_ms) => {
                    if let (Some(i), Some(b)) = (found, old) {
                        let mut it = Item::copied(b.fingerprint(i), b.entry(i));
                        it.expire_at_ms = at_ms;
                        self.set_bucket(&g, id, slot, Some(block::splice(b, i, Some(&it))));
                        count_ttl(had_ttl, at_ms != 0);
                    }
                }
            }
            (r, grow)
        });
        // (The guard stays entered through the growth: guards nest.)
        if grow {
            self.grow(at.part);
        }
        r
    }

    /// Double the buckets of part `p` (see the module doc). Its stripe is held exclusively (or
    /// nothing else writes the map: loading).
    fn grow(&self, p: usize) {
        let part = &self.parts[p];
        // Relaxed: only this part's exclusive stripe holder changes it.
        let depth = part.depth.load(Ordering::Relaxed);
        if depth >= MAX_DEPTH {
            return;
        }
        let g = self.dir.enter();
        let high = 1u64 << depth;
        for i in 0..high {
            let Some(slot) = self.dir.get(&g, bucket_id(p, depth, i)) else { continue };
            with_block(self.dir.load(&g, &slot), |b| {
                let Some(b) = b else { return };
                let (mut lo, mut hi) = (Vec::new(), Vec::new());
                for j in 0..b.len() {
                    let e = b.entry(j);
                    let it = Item::copied(b.fingerprint(j), e);
                    if Place::of(e.key()).index(depth + 1) & high == 0 { lo.push(it) } else { hi.push(it) }
                }
                for (index, items) in [(i, lo), (i | high, hi)] {
                    if !items.is_empty() {
                        let id = bucket_id(p, depth + 1, index);
                        let b = block::build(&items);
                        let size = b.bytes();
                        let new = self.dir.new_block(&g, b);
                        hint::set(id, depth + 1, None, new, size);
                        self.dir.insert(&g, id, new);
                    }
                }
            });
        }
        let broken = crate::sync::fault::on(crate::sync::fault::Fault::GrowRemoveBeforePublish);
        if !broken {
            // Release: a reader that sees the new depth finds the new slots.
            part.depth.store(depth + 1, Ordering::Release);
        }
        // The old slots are unreachable for a reader of the new depth; flurry retires them and
        // their blocks (their entries live on in the new blocks).
        for i in 0..high {
            self.dir.remove(&g, bucket_id(p, depth, i));
        }
        if broken {
            part.depth.store(depth + 1, Ordering::Release);
        }
    }

    /// Insert or replace. The caller holds the key's exclusive stripe.
    pub fn insert(&self, key: &[u8], entry: Entry) {
        self.update(key, |_| (Change::Put(&entry), ()))
    }

    /// Insert `entry` at `key` only if the map holds nothing there (no live, expired or dead
    /// entry): true when inserted, in the one walk of the key's bucket that an insert makes.
    /// The caller holds the key's exclusive stripe.
    pub fn insert_absent(&self, key: &[u8], entry: &Entry) -> bool {
        self.update(key, |e| if e.is_none() { (Change::Put(entry), true) } else { (Change::Keep, false) })
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

    /// Empty the map. Nothing else writes it meanwhile (it is swapped out, or every stripe is
    /// held); readers may still hold old slots and blocks: flurry retires them.
    pub fn clear(&self) {
        for part in self.parts.iter() {
            part.depth.store(0, Ordering::Release);
            part.len.store(0, Ordering::Relaxed);
            part.expires.store(0, Ordering::Relaxed);
        }
        self.dir.clear(&self.dir.enter());
    }

    /// Grows the parts (if needed) to hold `additional` more keys without growing on the way, and
    /// sizes the directory for their buckets. Nothing else writes the map meanwhile (loading).
    pub fn reserve(&self, additional: usize) {
        let per_part = additional / PARTS;
        let mut buckets = 0;
        for (p, part) in self.parts.iter().enumerate() {
            while part.len.load(Ordering::Relaxed) + per_part > GROW_AVG << part.depth.load(Ordering::Relaxed)
                && part.depth.load(Ordering::Relaxed) < MAX_DEPTH
            {
                self.grow(p);
            }
            buckets += 1usize << part.depth.load(Ordering::Relaxed);
        }
        self.dir.reserve(&self.dir.enter(), buckets);
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
        let g = self.dir.enter();
        loop {
            // Acquire: pairs with the Release publication of a grown depth (see `grow`).
            let depth = part.depth.load(Ordering::Acquire);
            let mask = (1u64 << depth) - 1;
            let slot = self.dir.get(&g, bucket_id(p, depth, cursor & mask));
            if let Some(slot) = &slot {
                with_block(self.dir.load(&g, slot), |b| {
                    for e in b.into_iter().flat_map(|b| b.entries()) {
                        f(e.key(), e);
                    }
                });
            }
            if slot.is_some() || part.depth.load(Ordering::Acquire) == depth {
                // Set the bits above the mask, then increment the reversed cursor.
                return (cursor | !mask).reverse_bits().wrapping_add(1).reverse_bits();
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

    /// Pin every bucket's current block for a copy made later without any lock (a background
    /// save). The caller holds every stripe of this map exclusively, so no block is swapped while
    /// they are collected: together they are the map at that point. The blocks are immutable but
    /// for their atomics (integer cells, access words) and the collections behind their cells:
    /// the caller copies those before it lets writers in. The returned value holds a guard of
    /// the map's collector on this thread: blocks retired while it lives are freed after it.
    pub fn pin(&self) -> Pinned<'_> {
        let guard = self.dir.enter();
        let mut blocks = Vec::new();
        self.dir.for_each_slot(&guard, |s| blocks.push(self.dir.load(&guard, s)));
        Pinned { _guard: guard, blocks }
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
            let g = self.dir.enter();
            // Acquire: as `get`'s.
            let depth = self.parts[p].depth.load(Ordering::Acquire);
            let buckets = 1u64 << depth;
            let first = rng.below(buckets);
            // The first present bucket from a random one (a bounded walk: the part may empty or
            // grow meanwhile).
            for i in 0..buckets.min(1 << 16) {
                let index = (first + i) & (buckets - 1);
                let Some(slot) = self.dir.get(&g, bucket_id(p, depth, index)) else { continue };
                let hit = with_block(self.dir.load(&g, &slot), |b| match b {
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
        let g = self.dir.enter();
        self.dir.for_each_slot(&g, |slot| {
            with_block(self.dir.load(&g, slot), |b| {
                if let Some(b) = b {
                    blocks += 1;
                    bytes += b.bytes();
                }
            })
        });
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
    use crate::db::entry::Kind;
    use crate::sync::Arc;
    use std::collections::HashMap;

    fn key(i: usize) -> Vec<u8> {
        format!("key:{i:010}").into_bytes()
    }

    #[test]
    fn readers_of_old_blocks_find_live_cells_while_one_writer_replaces_and_removes_them() {
        // Raw strings (cells behind an `Arc`) that one writer keeps replacing and removing, their
        // buckets spliced on every write (their references moved on: `block::MOVED`), while
        // readers clone the cells they find and read them after the map read ended: every cell
        // read holds the bytes its key was written with.
        use crate::db::{RawBytes, RawCell};
        let m = KeyMap::new();
        let keys = 64;
        let val = |k: usize, round: usize| RawBytes::from_slice(format!("{k}:{round}:{}", "x".repeat(40)).as_bytes());
        for k in 0..keys {
            m.insert(&key(k), Entry::raw_string(val(k, 0), 0));
        }
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for t in 0..2 {
                let (m, stop) = (&m, &stop);
                s.spawn(move || {
                    let mut seen = 0usize;
                    let mut i = t;
                    while !stop.load(Ordering::Relaxed) {
                        let k = i % keys;
                        i = i.wrapping_mul(31).wrapping_add(7);
                        let cell: Option<crate::sync::Arc<RawCell>> = m.get(&key(k), |e| match e.map(|e| e.value()) {
                            Some(ValueRef::Raw(c)) => Some(c.clone()),
                            _ => None,
                        });
                        if let Some(c) = cell {
                            let st = c.lock();
                            let text = String::from_utf8(st.items.0.to_vec()).expect("utf-8");
                            assert!(text.starts_with(&format!("{k}:")), "key {k} read {text}");
                            seen += 1;
                        }
                    }
                    assert!(seen > 0);
                });
            }
            for round in 0..20000 {
                let k = (round * 7) % keys;
                if round % 3 == 0 {
                    m.remove(&key(k));
                } else {
                    m.insert(&key(k), Entry::raw_string(val(k, round), 0));
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
    }

    #[test]
    fn keys_stay_found_while_parts_grow_and_counts_stay_exact() {
        let m = KeyMap::new();
        let n = PARTS * GROW_AVG * 2;
        for i in 0..n {
            m.insert(&key(i), Entry::string_copied(format!("v{i}").as_bytes(), 0));
        }
        assert_eq!(m.len(), n);
        let grown = (0..PARTS).filter(|&p| m.parts[p].depth.load(Ordering::Relaxed) >= 1).count();
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

    /// The value of key `i` in the prefetch test: every kind of value, so that blocks hold
    /// cells, long strings and integers (whose cells or buffers the prefetch also touches).
    fn mixed_value(i: usize) -> Entry {
        match i % 5 {
            0 => Entry::raw_string(crate::db::cell::raw_bytes(format!("v{i}").into_bytes()), 0),
            1 => Entry::string_copied(format!("v{i}{}", "x".repeat(300)).as_bytes(), 0),
            2 => Entry::int(i as i64, 0),
            3 => Entry::list(crate::db::compact::List::from_items([format!("v{i}")], -2), 0),
            _ => Entry::string_copied(format!("v{i}").as_bytes(), 0),
        }
    }

    #[test]
    fn a_prefetch_finds_what_get_finds_and_changes_nothing() {
        let m = KeyMap::new();
        let n = PARTS * 4;
        for i in 0..n {
            m.insert(&key(i), mixed_value(i));
        }
        let access = |i: usize| m.get(&key(i), |e| e.map(|e| e.access()));
        let before: Vec<_> = (0..n).map(access).collect();
        // Present and absent keys, an empty one, more than one call's worth.
        let owned: Vec<Vec<u8>> = (0..PREFETCH_MAX * 2).map(|i| key(i * 3)).chain([Vec::new()]).collect();
        let keys: Vec<&[u8]> = owned.iter().map(|k| &k[..]).collect();
        let mut hashes = Vec::new();
        m.prefetch(&keys, |h| hashes.push(h));
        let expected: Vec<u64> = keys[..PREFETCH_MAX].iter().map(|k| super::super::hash_key(k)).collect();
        assert_eq!(hashes, expected, "each key's hash, in order, up to PREFETCH_MAX");
        m.prefetch(&[], |_| unreachable!("no key"));
        // While a writer grows the parts under it (the map's own contract: a stale depth only
        // makes the hint miss).
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in n..n * 8 {
                    m.insert(&key(i), mixed_value(i));
                }
            });
            for _ in 0..200 {
                m.prefetch(&keys, |_| {});
            }
        });
        assert_eq!(m.len(), n * 8);
        assert_eq!((0..n).map(access).collect::<Vec<_>>(), before, "access words unchanged");
        for i in 0..n {
            let got = m.get(&key(i), |e| e.map(|e| (e.kind(), e.string_bytes())));
            let want = match i % 5 {
                1 => format!("v{i}{}", "x".repeat(300)),
                2 => i.to_string(),
                _ => format!("v{i}"),
            };
            match got {
                Some((Kind::List, None)) => assert_eq!(i % 5, 3),
                Some((Kind::String, Some(b))) => assert_eq!(&b[..], want.as_bytes()),
                other => panic!("key {i}: {other:?}"),
            }
        }
    }

    #[test]
    fn out_of_line_values_name_their_cell_or_buffer() {
        let m = KeyMap::new();
        for i in 0..5 {
            m.insert(&key(i), mixed_value(i));
        }
        let at = |i: usize| m.get(&key(i), |e| e.unwrap().value().out_of_line());
        let want = |i: usize| {
            m.get(&key(i), |e| match e.unwrap().value() {
                ValueRef::Raw(c) => Some(Arc::as_ptr(c).cast::<u8>()),
                ValueRef::List(c) => Some(Arc::as_ptr(c).cast::<u8>()),
                ValueRef::Str(b) => Some(b.as_ptr()),
                ValueRef::Small(_) | ValueRef::Int(_) => None,
                other => panic!("{other:?}"),
            })
        };
        for i in 0..5 {
            assert_eq!(at(i), want(i), "key {i}");
            assert_eq!(at(i).is_some(), matches!(i % 5, 0 | 1 | 3), "key {i}: in the block or not");
        }
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
        let grown = (0..PARTS).filter(|&p| m.parts[p].depth.load(Ordering::Relaxed) >= 1).count();
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

/// Eviction's sampling: whole buckets (see the module).
mod sample;
