//! The keyspace map: per part of the keyspace, a table of bucket slots, each slot holding the
//! [`Block`] that packs the entries of the keys hashing to that bucket (see `block` for its
//! layout). Redis pays ~113 B a key (16-byte values) for its dict entry, key sds and value robj;
//! one flurry node and one value allocation per key cost ~217 B; a block pays its header and one
//! table slot per ~16 keys.
//!
//! # Parts, tables and buckets
//!
//! A key's 64-bit hash ([`hash_key`](super::hash_key), the hash that also picks its write-lock
//! stripe) splits into: the part `h % PARTS` (low bits), the bucket index within the part (the next
//! `depth` bits, `depth` being the part's table's, growing), and the fingerprint (the top byte)
//! that a block compares before any key. The lock stripes are `h % stripes` with `stripes` dividing
//! `PARTS`, so **a stripe covers whole parts**, and every bucket of a part is under one stripe.
//! A part holds an atomic pointer to its current [`Table`]: its depth and 2^depth slots, each an
//! atomic pointer to a block (null: an empty bucket). A lookup is: the part's table, the slot,
//! the block (three dependent loads, no hashing beyond the key's), then the block's fingerprints.
//!
//! # Invariants
//!
//! * Readers take no lock: they enter the collector's guard, load the part's table, then the
//!   slot's block (Acquire, pairing with the Release that published each), and search it. A block
//!   found is a consistent state of the bucket (blocks are immutable but for atomics, see `block`);
//!   a table found is consistent (its depth never changes; only its slots do).
//! * Every change to a bucket (insert, replace, delete, expiry) builds a new block and swaps it
//!   into the slot (copy-on-write: one atomic swap, no directory walk) under the key's EXCLUSIVE
//!   stripe: the caller holds it (`Keyspace::write`), which is also what orders the change with
//!   its AOF record. Writers under the SHARED stripe only mutate atomics inside a block (INCR's
//!   CAS) or a collection behind its own cell lock; they never change a block or a slot, so a copy
//!   (exclusive) never races them.
//! * Old blocks and tables are retired through seize's collector (the reclamation flurry uses):
//!   freed only after every guard that may have loaded them is gone. A reader may thus see an
//!   older block than a write that completed concurrently (its read linearizes at its load of the
//!   slot, before that write), never a torn or freed one.
//! * Growth: when a part's keys exceed `GROW_AVG << depth` (or one of its blocks grows past
//!   `GROW_ENTRIES`), the writer, still under its exclusive stripe (which covers the whole part),
//!   builds a new table at `depth + 1` (each old bucket splits in two by the next hash bit) and
//!   fills it completely, THEN publishes it (Release), then retires the old table and blocks. Only
//!   that part's writers wait: no stop-the-world. A reader holding the old table reads old blocks
//!   with the same contents as the new ones (nobody of that part wrote meanwhile: the stripe); a
//!   writer loads the table after taking the stripe, so it always changes the current table.
//! * Counts: each part counts its keys (changed under its exclusive stripe); `len` sums them.
//! * Traversals (`for_each`, `scan`) walk each part's buckets in Redis's reverse-binary cursor
//!   order (dictScan), loading the part's table per bucket: across growth every key present for
//!   the whole walk is visited, exactly once (buckets only split, never merge).
//!
//! Under `--features loom` the reclamation is a stand-in (nothing is freed while the map lives:
//! seize cannot run under loom, its safety is its contract as it was flurry's); the tables, slots
//! and their atomics are loom's, so the publication orders above are model-checked.

use super::block::{self, Block, EntryRef, Item};
use super::entry::Entry;
use crate::sync::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

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

/// One part: its bucket table and counts.
struct Part {
    /// The current table (`Dir::new_table`), replaced by growth under the exclusive stripe.
    table: AtomicPtr<TableBox>,
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

/// A part's buckets: 2^depth slots, each null (an empty bucket) or the block of its bucket
/// (`Block::into_raw`). Replaced as a whole only by growth (and `clear`); a slot changes under
/// the part's exclusive stripe.
struct Table {
    depth: u32,
    slots: Box<[AtomicPtr<BlockHead>]>,
}

impl Table {
    fn new(depth: u32) -> Table {
        Table { depth, slots: (0..1usize << depth).map(|_| AtomicPtr::new(std::ptr::null_mut())).collect() }
    }
}

/// The start of a block's allocation: its [`block::LINK`] bytes, the collector's link.
#[cfg(not(feature = "loom"))]
#[repr(C)]
struct BlockHead {
    _link: seize::Link,
}

// SAFETY: `BlockHead` is `repr(C)` with the `Link` as its first (only) field.
#[cfg(not(feature = "loom"))]
unsafe impl seize::AsLink for BlockHead {}

#[cfg(feature = "loom")]
struct BlockHead {
    _opaque: [u8; 0],
}

/// Run `f` on the block at `p` (null: none). The caller keeps it alive (its guard).
fn with_block<R>(p: *mut BlockHead, f: impl FnOnce(Option<&Block>) -> R) -> R {
    // SAFETY: a non-null slot holds a block from `Block::into_raw`, alive while the caller's guard
    // is (it is retired, never freed, while a guard may see it); `ManuallyDrop`: this view owns
    // nothing.
    let b = std::ptr::NonNull::new(p.cast::<u8>()).map(|p| std::mem::ManuallyDrop::new(unsafe { Block::from_raw(p) }));
    f(b.as_deref())
}

/// Reclamation of replaced blocks and tables: seize's collector (the one flurry uses). A reader
/// enters a guard, loads pointers through it, and what it loaded stays allocated until it leaves;
/// a writer retires what it unlinked.
#[cfg(not(feature = "loom"))]
struct Dir {
    collector: seize::Collector,
}

#[cfg(not(feature = "loom"))]
type Guard<'a> = seize::Guard<'a>;
#[cfg(not(feature = "loom"))]
type TableBox = seize::Linked<Table>;

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
        Dir { collector: seize::Collector::new().batch_size(RETIRE_BATCH) }
    }

    fn enter(&self) -> Guard<'_> {
        self.collector.enter()
    }

    fn load<T: seize::AsLink>(&self, g: &Guard<'_>, p: &AtomicPtr<T>) -> *mut T {
        g.protect(p, Ordering::Acquire)
    }

    /// Publish `v` (Release: a reader that loads it sees what it points to).
    fn store<T>(&self, p: &AtomicPtr<T>, v: *mut T) {
        p.store(v, Ordering::Release)
    }

    fn swap<T>(&self, p: &AtomicPtr<T>, v: *mut T) -> *mut T {
        p.swap(v, Ordering::AcqRel)
    }

    fn new_table(&self, t: Table) -> *mut TableBox {
        self.collector.link_boxed(t)
    }

    /// A new block's raw pointer for a slot, its link written.
    fn new_block(&self, b: Block) -> *mut BlockHead {
        let p = b.into_raw().as_ptr().cast::<BlockHead>();
        const { assert!(size_of::<seize::Link>() == block::LINK) };
        // SAFETY: the block's first LINK bytes are reserved for this link (see `block`).
        unsafe { std::ptr::write(p.cast::<seize::Link>(), self.collector.link()) };
        p
    }

    /// Start reclaiming this thread's retired objects now.
    fn flush(&self, g: &Guard<'_>) {
        g.flush()
    }

    /// # Safety
    /// `p` is a block unlinked from its slot (no new reader can find it), retired once.
    unsafe fn retire_block(&self, g: &Guard<'_>, p: *mut BlockHead) {
        // SAFETY: the caller's contract; freed once no guard that could have loaded it is left.
        unsafe { g.defer_retire(p, reclaim_block) }
    }

    /// # Safety
    /// `t` is a table unlinked from its part, retired once (its blocks are retired or moved).
    unsafe fn retire_table(&self, g: &Guard<'_>, t: *mut TableBox) {
        // SAFETY: as `retire_block`; the table was allocated by `link_boxed`.
        unsafe { g.defer_retire(t, seize::reclaim::boxed::<TableBox>) }
    }
}

/// Loom stand-in for the reclamation: nothing is freed while the map lives (retired blocks and
/// tables go to a graveyard), so a model reading an old block is sound; the atomics that publish
/// tables and blocks are loom's, so their orderings are modeled.
#[cfg(feature = "loom")]
struct Dir {
    graveyard: std::sync::Mutex<Vec<Retired>>,
    order: crate::sync::Mutex<()>,
}

#[cfg(feature = "loom")]
enum Retired {
    Block(#[allow(dead_code)] Block),
    Table(#[allow(dead_code)] Box<Table>),
}

#[cfg(feature = "loom")]
struct Guard<'a>(std::marker::PhantomData<&'a ()>);
#[cfg(feature = "loom")]
type TableBox = Table;

#[cfg(feature = "loom")]
impl Dir {
    fn new() -> Dir {
        Dir { graveyard: Default::default(), order: crate::sync::Mutex::new(()) }
    }

    fn enter(&self) -> Guard<'_> {
        Guard(std::marker::PhantomData)
    }

    // Every access to a table pointer or slot is one step under `order`: the directory is
    // linearizable in the models (as flurry's map was, its contract), and each access is a point
    // where loom switches threads. (Loom's own atomics alone made the state space explode.)
    fn load<T>(&self, _: &Guard<'_>, p: &AtomicPtr<T>) -> *mut T {
        let _l = crate::sync::lock(&self.order);
        p.load(Ordering::SeqCst)
    }

    fn store<T>(&self, p: &AtomicPtr<T>, v: *mut T) {
        let _l = crate::sync::lock(&self.order);
        p.store(v, Ordering::SeqCst)
    }

    fn swap<T>(&self, p: &AtomicPtr<T>, v: *mut T) -> *mut T {
        let _l = crate::sync::lock(&self.order);
        p.swap(v, Ordering::SeqCst)
    }

    fn new_table(&self, t: Table) -> *mut TableBox {
        Box::into_raw(Box::new(t))
    }

    fn new_block(&self, b: Block) -> *mut BlockHead {
        b.into_raw().as_ptr().cast()
    }

    fn flush(&self, _: &Guard<'_>) {}

    /// # Safety
    /// As the real one's.
    unsafe fn retire_block(&self, _: &Guard<'_>, p: *mut BlockHead) {
        // SAFETY: an unlinked block from `new_block`, retired once.
        let b = unsafe { Block::from_raw(std::ptr::NonNull::new_unchecked(p.cast::<u8>())) };
        // std's mutex, held for no loom operation: it adds no modeled ordering.
        self.graveyard.lock().unwrap_or_else(|e| e.into_inner()).push(Retired::Block(b));
    }

    /// # Safety
    /// As the real one's.
    unsafe fn retire_table(&self, _: &Guard<'_>, t: *mut TableBox) {
        // SAFETY: an unlinked table from `new_table`, retired once.
        let t = unsafe { Box::from_raw(t) };
        self.graveyard.lock().unwrap_or_else(|e| e.into_inner()).push(Retired::Table(t));
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

/// The keyspace map of one database: see the module doc.
pub struct KeyMap {
    dir: Dir,
    parts: Box<[Part]>,
    /// Where the active-expiry cycle goes on ([`KeyMap::due`]): a `scan` cursor.
    expire_cursor: AtomicU64,
}

impl KeyMap {
    pub fn new() -> KeyMap {
        let dir = Dir::new();
        let parts = (0..PARTS)
            .map(|_| Part {
                table: AtomicPtr::new(dir.new_table(Table::new(0))),
                len: AtomicUsize::new(0),
                expires: AtomicUsize::new(0),
            })
            .collect();
        KeyMap { dir, parts, expire_cursor: AtomicU64::new(0) }
    }

    /// The current table of part `p`, alive while `g` is.
    fn table<'g>(&self, g: &'g Guard<'_>, p: usize) -> &'g Table {
        // SAFETY: a part's table is always a live table from `new_table`; one replaced is retired,
        // not freed, while a guard that loaded it is alive.
        let t: *mut TableBox = self.dir.load(g, &self.parts[p].table);
        // SAFETY: as above.
        unsafe { &*t }
    }

    /// Run `f` on the entry of `key`, if any. Lock-free.
    pub fn get<R>(&self, key: &[u8], f: impl FnOnce(Option<EntryRef<'_>>) -> R) -> R {
        let at = Place::of(key);
        let g = self.dir.enter();
        let t = self.table(&g, at.part);
        let slot = &t.slots[at.index(t.depth) as usize];
        with_block(self.dir.load(&g, slot), |b| f(b.and_then(|b| b.find(at.fp, key).map(|i| b.entry(i)))))
    }

    /// Put `b` (None: the bucket is empty) in `slot` of a published table, retiring the block it
    /// held. The caller holds the slot's part's exclusive stripe.
    fn swap(&self, g: &Guard<'_>, slot: &AtomicPtr<BlockHead>, b: Option<Block>) {
        let new = b.map_or(std::ptr::null_mut(), |b| self.dir.new_block(b));
        // Release: a reader that loads the new block sees its bytes.
        let old = self.dir.swap(slot, new);
        if !old.is_null() {
            let owns = with_block(old, |b| b.is_some_and(Block::owns));
            // SAFETY: `old` is unlinked now (only this stripe's holder changes the slot), retired once.
            unsafe { self.dir.retire_block(g, old) }
            if owns {
                // What it owns (a large string, a collection) is freed as soon as no reader holds
                // the block, not after RETIRE_BATCH more writes on this thread (maxmemory, INFO).
                self.dir.flush(g);
            }
        }
    }

    /// Look at `key`'s entry and change it as `op` says. The caller holds the key's exclusive
    /// stripe (see the module doc).
    pub fn update<'e, R>(&self, key: &[u8], op: impl FnOnce(Option<EntryRef<'_>>) -> (Change<'e>, R)) -> R {
        let at = Place::of(key);
        let part = &self.parts[at.part];
        let g = self.dir.enter();
        let table = self.table(&g, at.part);
        let depth = table.depth;
        let slot = &table.slots[at.index(depth) as usize];
        let (r, grow) = with_block(self.dir.load(&g, slot), |old| {
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
                        self.swap(&g, slot, (b.len() > 1).then(|| block::splice(b, i, None)));
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
                    self.swap(&g, slot, Some(b));
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
                        self.swap(&g, slot, Some(block::splice(b, i, Some(&it))));
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
        let g = self.dir.enter();
        let old_ptr = self.dir.load(&g, &part.table);
        let old = self.table(&g, p);
        let depth = old.depth;
        if depth >= MAX_DEPTH {
            return;
        }
        let high = 1usize << depth;
        let new_ptr = self.dir.new_table(Table::new(depth + 1));
        // SAFETY: just allocated; freed only through `retire_table` or the map's drop.
        let new = unsafe { &*new_ptr };
        let broken = crate::sync::fault::on(crate::sync::fault::Fault::GrowPublishBeforeFill);
        if broken {
            self.dir.store(&part.table, new_ptr);
        }
        for i in 0..high {
            with_block(self.dir.load(&g, &old.slots[i]), |b| {
                let Some(b) = b else { return };
                let (mut lo, mut hi) = (Vec::new(), Vec::new());
                for j in 0..b.len() {
                    let e = b.entry(j);
                    let it = Item::copied(b.fingerprint(j), e);
                    if Place::of(e.key()).index(depth + 1) as usize & high == 0 { lo.push(it) } else { hi.push(it) }
                }
                for (index, items) in [(i, lo), (i | high, hi)] {
                    if !items.is_empty() {
                        // Release: needed only where the table is already public (the broken variant).
                        self.dir.store(&new.slots[index], self.dir.new_block(block::build(&items)));
                    }
                }
            });
        }
        if !broken {
            // Release: a reader that loads the new table sees its slots and their blocks.
            self.dir.store(&part.table, new_ptr);
        }
        // SAFETY: the old table and its blocks are unlinked (their entries live on in the new
        // blocks), each retired once; a reader that loaded them keeps them until it leaves.
        unsafe {
            for slot in old.slots.iter() {
                let b = self.dir.load(&g, slot);
                if !b.is_null() {
                    self.dir.retire_block(&g, b);
                }
            }
            self.dir.retire_table(&g, old_ptr);
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

    /// Empty the map. Nothing else writes it meanwhile (it is swapped out, or every stripe is
    /// held); readers may still hold the old tables: they are retired.
    pub fn clear(&self) {
        let g = self.dir.enter();
        for part in self.parts.iter() {
            let old = self.dir.swap(&part.table, self.dir.new_table(Table::new(0)));
            // SAFETY: `old` and its blocks are unlinked, each retired once.
            unsafe {
                for slot in (&*old).slots.iter() {
                    let b = self.dir.load(&g, slot);
                    if !b.is_null() {
                        self.dir.retire_block(&g, b);
                    }
                }
                self.dir.retire_table(&g, old);
            }
            part.len.store(0, Ordering::Relaxed);
            part.expires.store(0, Ordering::Relaxed);
        }
    }

    /// Grows the parts (if needed) to hold `additional` more keys without growing on the way.
    /// Nothing else writes the map meanwhile (loading).
    pub fn reserve(&self, additional: usize) {
        let per_part = additional / PARTS;
        for (p, part) in self.parts.iter().enumerate() {
            loop {
                let depth = {
                    let g = self.dir.enter();
                    self.table(&g, p).depth
                };
                if part.len.load(Ordering::Relaxed) + per_part <= GROW_AVG << depth || depth >= MAX_DEPTH {
                    break;
                }
                self.grow(p);
            }
        }
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
        let g = self.dir.enter();
        let t = self.table(&g, p);
        let mask = (1u64 << t.depth) - 1;
        with_block(self.dir.load(&g, &t.slots[(cursor & mask) as usize]), |b| {
            for e in b.into_iter().flat_map(|b| b.entries()) {
                f(e.key(), e);
            }
        });
        // Set the bits above the mask, then increment the reversed cursor.
        (cursor | !mask).reverse_bits().wrapping_add(1).reverse_bits()
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
            let g = self.dir.enter();
            let t = self.table(&g, p);
            let buckets = 1u64 << t.depth;
            let first = rng.below(buckets);
            // The first present bucket from a random one (a bounded walk: the part may empty meanwhile).
            for i in 0..buckets.min(1 << 16) {
                let index = (first + i) & (buckets - 1);
                let hit = with_block(self.dir.load(&g, &t.slots[index as usize]), |b| match b {
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
        for p in 0..PARTS {
            for slot in self.table(&g, p).slots.iter() {
                with_block(self.dir.load(&g, slot), |b| {
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

impl Drop for KeyMap {
    fn drop(&mut self) {
        for part in self.parts.iter() {
            let t = part.table.load(Ordering::Acquire);
            // SAFETY: nothing else can reach the map (`&mut self`): its live tables and blocks are
            // freed here once; retired ones are the collector's (freed when it drops, after this).
            unsafe {
                for slot in (&*t).slots.iter() {
                    let b = slot.load(Ordering::Acquire);
                    if !b.is_null() {
                        drop(Block::from_raw(std::ptr::NonNull::new_unchecked(b.cast::<u8>())));
                    }
                }
                drop(Box::from_raw(t));
            }
        }
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
        let grown = (0..PARTS).filter(|&p| m.table(&m.dir.enter(), p).depth >= 1).count();
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
        let grown = (0..PARTS).filter(|&p| m.table(&m.dir.enter(), p).depth >= 1).count();
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
