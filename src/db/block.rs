//! A block: the packed, immutable home of the entries of one hash bucket of the keyspace (see
//! `map` for the directory of blocks, the stripes and growth).
//!
//! # Layout (one allocation, 8-aligned)
//!
//! ```text
//! link     8 bytes the map's collector uses to retire the block (see `map`; written there)
//! header   u32 allocation size | u16 count n | u16 flags (OWNS) | n x u8 fingerprint | pad to 2 | n x u16 offset/4
//! entry    AtomicU32 access word (LRU clock / LFU counter, relaxed; 4-aligned)
//!          u8 tag: kind (low 5 bits) | LONG_KEY 0x40 | EXPIRES 0x80
//!          key: u8 length + bytes, or (LONG_KEY, 255 bytes and more) pad to 8 + `Bytes`
//!          expiry: u64 ms, unaligned, only when EXPIRES
//!          value: inline string: u8 length + bytes (at most INLINE_MAX)
//!                 integer: pad to 8 + `AtomicI64` (INCR CASes it in place)
//!                 long string: pad to 8 + `Bytes`
//!                 collection or `raw` string (changed in place, `cmd::rawstr`): pad to 8 + its
//!                 `Arc<ValueCell<..>>`
//!          pad to 4 (the next entry's access word)
//! ```
//!
//! A lookup compares the 1-byte fingerprints (the hash's top byte), then the key at the offset of
//! a matching one: two or three cache lines for a block of ~16 keys, no linear walk of the keys.
//!
//! # Invariants
//!
//! * A block never changes after it is published, except through its atomics: the integer cells
//!   (INCR/DECR under the key's SHARED stripe: a CAS in place) and the access words (relaxed, any
//!   reader). Every other change (insert, replace, delete, expiry) builds a new block ([`build`])
//!   and swaps it in under the bucket's EXCLUSIVE stripe, so a copy never races an INCR: the
//!   shared and exclusive holders of a stripe exclude each other, and the copy reads every integer
//!   cell once, after the last CAS that can reach the old block.
//! * A copied entry owns its own references: [`build`] clones a long string's `Bytes` and a
//!   collection's `Arc` into the new block, and they are dropped with the old block when the map's
//!   collector retires it (after every reader that could hold it is gone); [`splice`] (every
//!   write of a bucket) moves them to the new block instead, the old one keeping only the replaced
//!   or removed entry's (`MOVED`), dropped when it is reclaimed. Either way a reader holding an old
//!   block keeps valid values; a collection's cell is the same object in both blocks (its lock and
//!   `dead` mark are shared).
//! * Offsets, counts and lengths are written once by [`build`], which computes every position with
//!   the same walk ([`Cursor`]) that the readers use.

use std::mem::{align_of, size_of};
use std::ptr::NonNull;

use bytes::Bytes;

use super::blockheap;
use super::cell::{Hash, ListCell, RawCell, Set, ValueCell};
use super::entry::{Entry, Kind, StrRef, Value};
use super::stream::Stream;
use super::zset::SortedSet;
use crate::sync::{Arc, AtomicI64, AtomicU32, Ordering};

/// The longest string value kept inline in its block (longer ones are a `Bytes` out of line).
pub const INLINE_MAX: usize = 255;
/// Keys this long and longer are a `Bytes` out of line.
const LONG_KEY_MIN: usize = 255;
/// Redis's OBJ_ENCODING_EMBSTR_SIZE_LIMIT: the longest string OBJECT ENCODING calls `embstr`.
const EMBSTR_MAX: usize = 44;

const EXPIRES: u8 = 0x80;
const LONG_KEY: u8 = 0x40;
const KIND_MASK: u8 = 0x1f;

const K_SMALL: u8 = 0;
const K_STR: u8 = 2;
const K_INT: u8 = 4;

/// Bytes before the header: room for the map's reclamation link (`seize::Link`, 8 bytes).
pub const LINK: usize = 8;
/// The link and the fixed header (size, count, flags); the fingerprints follow.
const HEADER: usize = LINK + 8;
/// Header flag: some entry owns something to drop (a long key's or long string's `Bytes`, a
/// cell's `Arc`, an integer cell that needs dropping: loom's). Without it, dropping the block is
/// freeing its allocation: no walk over its entries.
const OWNS: u16 = 1;
/// Header flag: some entry may hold an 8-aligned object (an integer cell, a `Bytes`, an `Arc`): a
/// run of entries that [`splice`] moves keeps its position modulo 8. (Set conservatively: a
/// splice that drops the last such entry keeps it.)
const ALIGNED: u16 = 2;

impl Item<'_> {
    /// Whether this entry holds an 8-aligned object.
    fn aligned(&self) -> bool {
        self.key.len() >= LONG_KEY_MIN || !matches!(self.value, ValueRef::Small(_))
    }

    /// Whether the block must drop something of this entry.
    fn owns(&self) -> bool {
        self.key.len() >= LONG_KEY_MIN
            || match self.value {
                ValueRef::Small(_) => false,
                ValueRef::Int(_) => std::mem::needs_drop::<AtomicI64>(),
                _ => true,
            }
    }
}
/// Header flag of a block that [`splice`] copied (it is being retired): what its entries owned
/// now belongs to the copy, except entry `flags >> MOVED_SHIFT` (the one replaced or removed),
/// whose objects it still owns when `OWNS` is set, and drops when reclaimed. A reader that holds
/// the old block still finds valid objects: one moved on is dropped only by the reclamation of a
/// later block that replaced or removed its entry, retired after the old one, so after every
/// guard that could have loaded the old one: the map's collector waits for every guard active at
/// a retirement (it runs without epochs for this, see `map`'s `Dir::new`).
const MOVED: u16 = 4;
const MOVED_SHIFT: u16 = 3;
/// The entry indexes `MOVED` can name (larger ones are cloned as before; buckets split long
/// before).
#[cfg(not(feature = "loom"))]
const MOVED_MAX: usize = 1 << (16 - MOVED_SHIFT);
/// Entries start on this boundary; offsets are stored divided by it.
const UNIT: usize = if align_of::<AtomicU32>() > 4 { align_of::<AtomicU32>() } else { 4 };
/// The largest block the u16 offsets can address.
pub const MAX_BLOCK: usize = UNIT * u16::MAX as usize;
/// The most entries a block holds (its count is a u16).
pub const MAX_ENTRIES: usize = u16::MAX as usize;

const fn align_up(p: usize, a: usize) -> usize {
    (p + a - 1) & !(a - 1)
}

/// The collection variants: a pointer each. Adding one is a line here (and its `Value` variant).
macro_rules! pointer_kinds {
    ($($name:ident($ty:ty) = $tag:expr),* $(,)?) => {
        /// A borrowed view of a value inside a block.
        #[derive(Clone, Copy, Debug)]
        pub enum ValueRef<'a> {
            /// An inline string that is not an integer's canonical text (`embstr` up to 44 bytes).
            Small(&'a [u8]),
            /// A long string, out of line.
            Str(&'a Bytes),
            /// An integer cell: INCR/DECR CAS it in place.
            Int(&'a AtomicI64),
            $($name(&'a Arc<$ty>),)*
        }

        impl<'a> ValueRef<'a> {
            /// The view of an owned value (what [`build`] copies into a block).
            pub fn of(v: &'a Value) -> ValueRef<'a> {
                match v {
                    Value::Small(s) => ValueRef::Small(s.as_bytes()),
                    Value::Str(b) if b.len() <= INLINE_MAX => ValueRef::Small(b),
                    Value::Str(b) => ValueRef::Str(b),
                    Value::Int(n) => ValueRef::Int(n),
                    $(Value::$name(c) => ValueRef::$name(c),)*
                }
            }

            /// An owned value equal to this one; collections share their cell (RENAME, MOVE).
            pub fn to_value(self) -> Value {
                match self {
                    ValueRef::Small(b) => super::entry::SmallStr::new(b)
                        .map_or_else(|| Value::Str(Bytes::copy_from_slice(b)), Value::Small),
                    ValueRef::Str(b) => Value::Str(b.clone()),
                    ValueRef::Int(n) => Value::Int(AtomicI64::new(n.load(Ordering::Acquire))),
                    $(ValueRef::$name(c) => Value::$name(c.clone()),)*
                }
            }

            /// Where the value's bytes or cell live when not in the block (a long string's
            /// buffer, a cell): the address a prefetch of it loads (see `KeyMap::prefetch`).
            pub fn out_of_line(self) -> Option<*const u8> {
                match self {
                    ValueRef::Small(_) | ValueRef::Int(_) => None,
                    ValueRef::Str(b) => Some(b.as_ptr()),
                    $(ValueRef::$name(c) => Some(Arc::as_ptr(c).cast::<u8>()),)*
                }
            }

            fn tag(self) -> u8 {
                match self {
                    ValueRef::Small(_) => K_SMALL,
                    ValueRef::Str(_) => K_STR,
                    ValueRef::Int(_) => K_INT,
                    $(ValueRef::$name(_) => $tag,)*
                }
            }
        }

        /// Read the value of kind `kind` at `p` (the cursor is past the key and expiry).
        ///
        /// # Safety
        /// `c` walks a block built by [`build`], positioned at the value of an entry of kind `kind`.
        unsafe fn read_value<'a>(c: &mut Cursor<'a>, kind: u8) -> ValueRef<'a> {
            // SAFETY: the caller's contract; each arm reads what `write_value` wrote for the tag.
            unsafe {
                match kind {
                    K_SMALL => ValueRef::Small(c.short_bytes()),
                    K_STR => ValueRef::Str(c.object::<Bytes>()),
                    K_INT => ValueRef::Int(c.object::<AtomicI64>()),
                    $($tag => ValueRef::$name(c.object::<Arc<$ty>>()),)*
                    _ => unreachable!("tag {kind} is written by no build"),
                }
            }
        }

        /// Write (a clone of) `v` at the cursor.
        ///
        /// # Safety
        /// `c` walks a block being built, sized by the same walk.
        unsafe fn write_value(c: &mut Cursor<'_>, v: ValueRef<'_>) {
            // SAFETY: the caller's contract.
            unsafe {
                match v {
                    ValueRef::Small(b) => c.put_short_bytes(b),
                    ValueRef::Str(b) => c.put_object(b.clone()),
                    ValueRef::Int(n) => c.put_object(AtomicI64::new(n.load(Ordering::Acquire))),
                    $(ValueRef::$name(p) => c.put_object(p.clone()),)*
                }
            }
        }

        /// Drop the owned parts of the value of kind `kind` at the cursor.
        ///
        /// # Safety
        /// As [`read_value`]; the block is being freed and nothing reads it again.
        unsafe fn drop_value(c: &mut Cursor<'_>, kind: u8) {
            // SAFETY: the caller's contract.
            unsafe {
                match kind {
                    K_SMALL => {
                        c.short_bytes();
                    }
                    K_STR => c.drop_object::<Bytes>(),
                    K_INT => c.drop_object::<AtomicI64>(),
                    $($tag => c.drop_object::<Arc<$ty>>(),)*
                    _ => unreachable!("tag {kind} is written by no build"),
                }
            }
        }

        /// Write a clone of the owned object `v` (of a block at `old`) at the same place plus
        /// `delta` in the block at `new` (`splice`: the bitwise copy there owns nothing yet).
        ///
        /// # Safety
        /// `v` is a value of the block at `old`; `new` is a block being built whose bytes at the
        /// object's position plus `delta` are the (aligned) bitwise copy of it.
        #[cfg(not(feature = "loom"))]
        unsafe fn clone_value_into(v: ValueRef<'_>, old: NonNull<u8>, new: NonNull<u8>, delta: usize) -> bool {
            fn at<T>(r: &T, old: NonNull<u8>, new: NonNull<u8>, delta: usize) -> *mut T {
                let p = (r as *const T as usize).wrapping_sub(old.as_ptr() as usize).wrapping_add(delta);
                new.as_ptr().wrapping_add(p).cast::<T>()
            }
            // SAFETY: the caller's contract: each destination is in the new block, aligned.
            unsafe {
                match v {
                    ValueRef::Small(_) | ValueRef::Int(_) => false,
                    ValueRef::Str(b) => {
                        std::ptr::write(at(b, old, new, delta), b.clone());
                        true
                    }
                    $(ValueRef::$name(a) => {
                        std::ptr::write(at(a, old, new, delta), a.clone());
                        true
                    })*
                }
            }
        }

        /// Bytes the value takes from position `p` on (padding included): `p` after it.
        fn value_end(p: usize, v: ValueRef<'_>) -> usize {
            match v {
                ValueRef::Small(b) => p + 1 + b.len(),
                ValueRef::Str(_) => object_end::<Bytes>(p),
                ValueRef::Int(_) => object_end::<AtomicI64>(p),
                $(ValueRef::$name(_) => object_end::<Arc<$ty>>(p),)*
            }
        }
    };
}

pointer_kinds! {
    Raw(RawCell) = 3,
    List(ListCell) = 5,
    Hash(ValueCell<Hash>) = 6,
    Set(ValueCell<Set>) = 7,
    Zset(ValueCell<SortedSet>) = 8,
    Stream(ValueCell<Stream>) = 9,
}

fn object_end<T>(p: usize) -> usize {
    align_up(p, align_of::<T>()) + size_of::<T>()
}

/// One entry to write into a new block.
#[derive(Clone, Copy)]
pub struct Item<'a> {
    pub fp: u8,
    pub key: &'a [u8],
    pub access: u32,
    pub expire_at_ms: u64,
    pub value: ValueRef<'a>,
}

impl<'a> Item<'a> {
    /// An entry of an existing block, copied as it is (one walk over its fields).
    pub fn copied(fp: u8, e: EntryRef<'a>) -> Item<'a> {
        let p = e.parse();
        let mut c = Cursor::at(e.base, p.value_at);
        // SAFETY: `parse` left the cursor at the value of an entry of this tag.
        let value = unsafe { read_value(&mut c, p.tag & KIND_MASK) };
        Item { fp, key: p.key, access: e.access(), expire_at_ms: p.expire_at_ms, value }
    }

    /// A new entry from an owned one (its values are cloned into the block; the caller drops it).
    pub fn new(fp: u8, key: &'a [u8], e: &'a Entry, access: u32) -> Item<'a> {
        Item { fp, key, access, expire_at_ms: e.expire_at_ms(), value: ValueRef::of(&e.value) }
    }

    fn tag(&self) -> u8 {
        let mut t = self.value.tag();
        if self.key.len() >= LONG_KEY_MIN {
            t |= LONG_KEY;
        }
        if self.expire_at_ms != 0 {
            t |= EXPIRES;
        }
        t
    }

    /// The position after this entry written at `p` (a multiple of UNIT).
    fn end(&self, p: usize) -> usize {
        let mut p = p + size_of::<AtomicU32>() + 1;
        p = if self.key.len() >= LONG_KEY_MIN { object_end::<Bytes>(p) } else { p + 1 + self.key.len() };
        if self.expire_at_ms != 0 {
            p += 8;
        }
        align_up(value_end(p, self.value), UNIT)
    }
}

/// The bytes an `Item` list of these entries would take as a block (what `build` allocates).
pub fn block_size(items: &[Item<'_>]) -> usize {
    let n = items.len();
    let mut p = entries_at(n);
    for it in items {
        p = it.end(p);
    }
    align_up(p, 8)
}

/// A block: see the module doc. Owns its allocation and the values' references in it.
pub struct Block {
    ptr: NonNull<u8>,
}

// SAFETY: a block's shared state is atomics (integer cells, access words), `Bytes` and `Arc`s of
// `Sync` cells, all `Send + Sync`; everything else is immutable after `build`.
unsafe impl Send for Block {}
// SAFETY: as above.
unsafe impl Sync for Block {}

/// Walks a block's bytes: reads (lookups) and writes (build) step through an entry alike.
struct Cursor<'a> {
    base: NonNull<u8>,
    p: usize,
    _block: std::marker::PhantomData<&'a Block>,
}

impl<'a> Cursor<'a> {
    fn at(base: NonNull<u8>, p: usize) -> Cursor<'a> {
        Cursor { base, p, _block: std::marker::PhantomData }
    }

    /// # Safety
    /// `p + n` is within the block.
    unsafe fn bytes_at(&self, p: usize, n: usize) -> &'a [u8] {
        // SAFETY: the caller's contract; the block lives for 'a and these bytes never change.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(p), n) }
    }

    /// # Safety
    /// The cursor is at a u8.
    unsafe fn u8(&mut self) -> u8 {
        // SAFETY: the caller's contract.
        let b = unsafe { *self.base.as_ptr().add(self.p) };
        self.p += 1;
        b
    }

    /// # Safety
    /// The cursor is at a u8 length and that many bytes.
    unsafe fn short_bytes(&mut self) -> &'a [u8] {
        // SAFETY: the caller's contract.
        unsafe {
            let n = usize::from(self.u8());
            let b = self.bytes_at(self.p, n);
            self.p += n;
            b
        }
    }

    /// # Safety
    /// The cursor is at (padding before) a `T` written by `put_object`.
    unsafe fn object<T>(&mut self) -> &'a T {
        self.p = align_up(self.p, align_of::<T>());
        // SAFETY: the caller's contract: an initialized, aligned `T` living as long as the block.
        let r = unsafe { &*(self.base.as_ptr().add(self.p) as *const T) };
        self.p += size_of::<T>();
        r
    }

    /// # Safety
    /// As `object`; the block is being freed and nothing reads this `T` again.
    unsafe fn drop_object<T>(&mut self) {
        self.p = align_up(self.p, align_of::<T>());
        // SAFETY: the caller's contract.
        unsafe { std::ptr::drop_in_place(self.base.as_ptr().add(self.p) as *mut T) };
        self.p += size_of::<T>();
    }

    /// # Safety
    /// The block is being built and has room for the u64 at the cursor.
    unsafe fn u64_unaligned(&mut self) -> u64 {
        // SAFETY: the caller's contract.
        let v = unsafe { std::ptr::read_unaligned(self.base.as_ptr().add(self.p) as *const u64) };
        self.p += 8;
        u64::from_le(v)
    }

    /// # Safety
    /// The block is being built, with room for `b` at the cursor.
    unsafe fn put_bytes(&mut self, b: &[u8]) {
        // SAFETY: the caller's contract; source and block do not overlap (a new allocation).
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.base.as_ptr().add(self.p), b.len()) };
        self.p += b.len();
    }

    /// # Safety
    /// As `put_bytes`; `b` is at most 255 bytes.
    unsafe fn put_short_bytes(&mut self, b: &[u8]) {
        // SAFETY: the caller's contract.
        unsafe {
            self.put_bytes(&[b.len() as u8]);
            self.put_bytes(b);
        }
    }

    /// # Safety
    /// As `put_bytes`, with room for the padding and the `T`.
    unsafe fn put_object<T>(&mut self, v: T) {
        self.p = align_up(self.p, align_of::<T>());
        // SAFETY: the caller's contract: aligned, in bounds, uninitialized.
        unsafe { std::ptr::write(self.base.as_ptr().add(self.p) as *mut T, v) };
        self.p += size_of::<T>();
    }
}

/// A borrowed view of one entry of a block: what the keyspace's readers and writers see.
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    base: NonNull<u8>,
    off: usize,
    _block: std::marker::PhantomData<&'a Block>,
}

impl std::fmt::Debug for EntryRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryRef").field("key", &Bytes::copy_from_slice(self.key())).finish()
    }
}

/// An entry's fields after its access word, as `EntryRef` parses them.
struct Parsed<'a> {
    tag: u8,
    key: &'a [u8],
    expire_at_ms: u64,
    /// The cursor at the value.
    value_at: usize,
}

impl<'a> EntryRef<'a> {
    fn parse(&self) -> Parsed<'a> {
        let mut c = Cursor::at(self.base, self.off + size_of::<AtomicU32>());
        // SAFETY: `off` is an entry of a block built by `build`, which wrote these fields in this order.
        unsafe {
            let tag = c.u8();
            let key: &'a [u8] = if tag & LONG_KEY != 0 { &c.object::<Bytes>()[..] } else { c.short_bytes() };
            let expire_at_ms = if tag & EXPIRES != 0 { c.u64_unaligned() } else { 0 };
            Parsed { tag, key, expire_at_ms, value_at: c.p }
        }
    }

    pub fn key(&self) -> &'a [u8] {
        self.parse().key
    }

    /// The value.
    pub fn value(&self) -> ValueRef<'a> {
        let p = self.parse();
        let mut c = Cursor::at(self.base, p.value_at);
        // SAFETY: `parse` left the cursor at the value of an entry of this tag.
        unsafe { read_value(&mut c, p.tag & KIND_MASK) }
    }

    fn access_word(&self) -> &'a AtomicU32 {
        // SAFETY: every entry starts with its access word, UNIT-aligned, written by `build`.
        unsafe { &*(self.base.as_ptr().add(self.off) as *const AtomicU32) }
    }

    /// The access word (Redis's `robj.lru`: a 24-bit LRU clock or LFU counter), for eviction.
    pub fn access(&self) -> u32 {
        // Relaxed: a statistic that orders nothing (readers update it without a lock).
        self.access_word().load(Ordering::Relaxed)
    }

    /// Set the access word; any reader may, without a lock (a lost update is harmless, as in Redis).
    pub fn set_access(&self, w: u32) {
        self.access_word().store(w, Ordering::Relaxed)
    }

    /// Expiry time in ms, 0 when the key is persistent.
    pub fn expire_at_ms(&self) -> u64 {
        let p = self.parse();
        p.expire_at_ms
    }

    /// Whether the key is logically gone at `now_ms` (now 0 = loading: nothing expires).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        let at = self.expire_at_ms();
        at != 0 && now_ms != 0 && at <= now_ms
    }

    pub fn kind(&self) -> Kind {
        match self.value() {
            ValueRef::Small(_) | ValueRef::Str(_) | ValueRef::Raw(_) | ValueRef::Int(_) => Kind::String,
            ValueRef::List(_) => Kind::List,
            ValueRef::Hash(_) => Kind::Hash,
            ValueRef::Set(_) => Kind::Set,
            ValueRef::Zset(_) => Kind::Zset,
            ValueRef::Stream(_) => Kind::Stream,
        }
    }

    /// What OBJECT ENCODING answers, as Redis 7.0: `int`, `embstr` up to 44 bytes, `raw` past them
    /// or when built in place, then the collections' own encodings (lists: `quicklist`).
    pub fn encoding(&self) -> &'static str {
        match self.value() {
            ValueRef::Int(_) => "int",
            ValueRef::Small(b) if b.len() <= EMBSTR_MAX => "embstr",
            ValueRef::Str(b) if b.len() <= EMBSTR_MAX => "embstr",
            ValueRef::Small(_) | ValueRef::Str(_) | ValueRef::Raw(_) => "raw",
            ValueRef::List(_) => "quicklist",
            ValueRef::Hash(c) => c.lock().items.encoding(),
            ValueRef::Set(c) => c.lock().items.encoding(),
            ValueRef::Zset(c) => c.lock().items.encoding().as_str(),
            ValueRef::Stream(_) => "stream",
        }
    }

    /// Whether this is a collection whose cell was emptied and marked dead, its key about to be
    /// removed (see `cell`): it reads as absent.
    pub fn is_dead(&self) -> bool {
        match self.value() {
            ValueRef::Raw(c) => c.is_gone(),
            ValueRef::List(c) => c.is_gone(),
            ValueRef::Hash(c) => c.is_gone(),
            ValueRef::Set(c) => c.is_gone(),
            ValueRef::Zset(c) => c.is_gone(),
            ValueRef::Stream(c) => c.is_gone(),
            _ => false,
        }
    }

    /// The string value as bytes (integers formatted), None for a collection. A `raw` string is
    /// copied out under its cell lock; [`EntryRef::str_ref`] reads one without copying.
    pub fn string_bytes(&self) -> Option<Bytes> {
        match self.value() {
            ValueRef::Small(b) => Some(Bytes::copy_from_slice(b)),
            ValueRef::Str(b) => Some(b.clone()),
            ValueRef::Raw(c) => Some(Bytes::copy_from_slice(&c.lock().items.0)),
            // Acquire: pairs with the AcqRel CAS of INCR.
            ValueRef::Int(n) => Some(Bytes::from(n.load(Ordering::Acquire).to_string())),
            _ => None,
        }
    }

    /// The string value for a read ([`StrRef::with`]), None for a collection.
    pub fn str_ref(&self) -> Option<StrRef> {
        match self.value() {
            ValueRef::Small(b) => Some(match super::entry::SmallStr::new(b) {
                Some(s) => StrRef::Small(s),
                None => StrRef::Bytes(Bytes::copy_from_slice(b)),
            }),
            ValueRef::Str(b) => Some(StrRef::Bytes(b.clone())),
            // Acquire: pairs with the AcqRel CAS of INCR.
            ValueRef::Int(n) => Some(StrRef::Int(n.load(Ordering::Acquire))),
            ValueRef::Raw(c) => Some(StrRef::Raw(c.clone())),
            _ => None,
        }
    }

    /// Run `f` on the string value's bytes (an integer as its text; a `raw` string under its cell
    /// lock, taken here: no reference to the cell is cloned), None for a collection.
    pub fn with_str<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        match self.value() {
            ValueRef::Small(b) => Some(f(b)),
            ValueRef::Str(b) => Some(f(b)),
            // Acquire: pairs with the AcqRel CAS of INCR.
            ValueRef::Int(n) => Some(f(crate::util::i64_text(n.load(Ordering::Acquire), &mut [0u8; 20]))),
            ValueRef::Raw(c) => Some(f(&c.lock().items.0)),
            _ => None,
        }
    }

    /// The bytes this entry takes (MEMORY USAGE, eviction's estimate): its span in the block
    /// (access word to padding), its fingerprint and offset in the header, and the out-of-line
    /// bytes of a long key or long string as `alloc` sizes an allocation of n bytes. A cell's
    /// contents (raw string, collection) are the caller's to add.
    pub fn footprint(&self, alloc: impl Fn(usize) -> usize) -> usize {
        let p = self.parse();
        let v = self.value();
        let span = align_up(value_end(p.value_at, v), UNIT) - self.off;
        let long_key = if p.tag & LONG_KEY != 0 { alloc(p.key.len()) } else { 0 };
        let long_str = match v {
            ValueRef::Str(b) => alloc(b.len()),
            _ => 0,
        };
        span + 3 + long_key + long_str
    }

    /// An owned entry with a deep copy of the value (COPY): collections are duplicated, not shared.
    pub fn duplicate(&self) -> Entry {
        let value = match self.value() {
            ValueRef::Raw(c) => Value::Raw(Arc::new(ValueCell::new(c.lock().items.clone()))),
            ValueRef::List(c) => Value::List(Arc::new(ValueCell::new(c.lock().items.clone()))),
            ValueRef::Hash(c) => Value::Hash(Arc::new(ValueCell::new(c.lock().items.clone()))),
            ValueRef::Set(c) => Value::Set(Arc::new(ValueCell::new(c.lock().items.clone()))),
            ValueRef::Zset(c) => Value::Zset(Arc::new(ValueCell::new(c.lock().items.clone()))),
            ValueRef::Stream(c) => Value::Stream(Arc::new(ValueCell::new(c.lock().items.clone()))),
            v => v.to_value(),
        };
        Entry::with_value(value, self.expire_at_ms())
    }

    /// An owned entry with the same value (RENAME, MOVE): collections move by reference.
    pub fn moved(&self) -> Entry {
        Entry::with_value(self.value().to_value(), self.expire_at_ms())
    }
}

impl Block {
    /// The allocation, owned by the caller from now on (the map's slots hold it; its first
    /// [`LINK`] bytes are the caller's to use).
    pub fn into_raw(self) -> NonNull<u8> {
        let p = self.ptr;
        std::mem::forget(self);
        p
    }

    /// The block of an allocation from [`Block::into_raw`].
    ///
    /// # Safety
    /// `p` came from `into_raw` and is not owned by another `Block` that will be dropped (a
    /// borrowed view must not be dropped: wrap it in `ManuallyDrop`).
    pub unsafe fn from_raw(p: NonNull<u8>) -> Block {
        Block { ptr: p }
    }

    fn base(&self) -> NonNull<u8> {
        self.ptr
    }

    fn size(&self) -> usize {
        // SAFETY: the header's first field, written by `build`.
        unsafe { std::ptr::read(self.ptr.as_ptr().add(LINK) as *const u32) as usize }
    }

    /// Entries in the block.
    pub fn len(&self) -> usize {
        // SAFETY: the header's second field, written by `build`.
        unsafe { std::ptr::read(self.ptr.as_ptr().add(LINK + 4) as *const u16) as usize }
    }

    /// Bytes allocated for this block.
    pub fn bytes(&self) -> usize {
        self.size()
    }

    /// Whether dropping the block releases something beyond its own bytes (a long string, a
    /// long key, a cell).
    pub fn owns(&self) -> bool {
        self.flags() & OWNS != 0
    }

    /// Whether some entry may hold an object (an integer cell, a `Bytes`, a cell's `Arc`;
    /// conservative): a block without one holds only inline strings, which never change.
    pub fn may_hold_objects(&self) -> bool {
        self.flags() & ALIGNED != 0
    }

    fn flags(&self) -> u16 {
        // SAFETY: the header's third field, written by `build`.
        unsafe { std::ptr::read(self.ptr.as_ptr().add(LINK + 6) as *const u16) }
    }

    /// Where the `i`th entry ends (its padding included).
    #[cfg(not(feature = "loom"))]
    fn entry_end(&self, i: usize) -> usize {
        let e = self.entry(i);
        let p = e.parse();
        align_up(value_end(p.value_at, e.value()), UNIT)
    }

    fn fingerprints(&self) -> &[u8] {
        // SAFETY: `len` fingerprints follow the header.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(HEADER), self.len()) }
    }

    fn offset(&self, i: usize) -> usize {
        let at = align_up(HEADER + self.len(), 2) + 2 * i;
        // SAFETY: `len` u16 offsets follow the fingerprints, 2-aligned.
        usize::from(unsafe { std::ptr::read(self.ptr.as_ptr().add(at) as *const u16) }) * UNIT
    }

    /// Ask the CPU to load the cache lines of bytes `[from, from + len)` of the block (clamped to
    /// it), without waiting for them: a hint (see `KeyMap::prefetch`).
    pub(super) fn prefetch(&self, from: usize, len: usize) {
        let end = from.saturating_add(len).min(self.size());
        let mut at = from & !(LINE - 1);
        while at < end {
            prefetch_line(self.ptr.as_ptr().wrapping_add(at));
            at += LINE;
        }
    }

    /// The `i`th entry (`i < len`).
    pub fn entry(&self, i: usize) -> EntryRef<'_> {
        assert!(i < self.len());
        EntryRef { base: self.base(), off: self.offset(i), _block: std::marker::PhantomData }
    }

    /// The fingerprint of the `i`th entry.
    pub fn fingerprint(&self, i: usize) -> u8 {
        self.fingerprints()[i]
    }

    /// The index of `key` (fingerprint `fp`), if it is here.
    pub fn find(&self, fp: u8, key: &[u8]) -> Option<usize> {
        self.fingerprints()
            .iter()
            .enumerate()
            .filter(|&(_, &f)| f == fp)
            .map(|(i, _)| i)
            .find(|&i| self.entry(i).key() == key)
    }

    /// Every entry, in block order.
    pub fn entries(&self) -> impl Iterator<Item = EntryRef<'_>> {
        (0..self.len()).map(|i| self.entry(i))
    }
}

/// A new block holding `items` (at most [`MAX_ENTRIES`], at most [`MAX_BLOCK`] bytes: the map
/// splits its buckets long before).
pub fn build(items: &[Item<'_>]) -> Block {
    let n = items.len();
    let size = block_size(items);
    assert!(n <= MAX_ENTRIES && size <= MAX_BLOCK && size <= u32::MAX as usize, "block of {n} entries, {size} bytes");
    let ptr = new_allocation(size);
    let offsets_at = align_up(HEADER + n, 2);
    let mut p = entries_at(n);
    // SAFETY: every write below is within `size` bytes: `block_size` walked the same positions.
    unsafe {
        let owns = items.iter().any(Item::owns);
        let aligned = items.iter().any(Item::aligned);
        write_header(ptr, size, n, if owns { OWNS } else { 0 } | if aligned { ALIGNED } else { 0 });
        for (i, it) in items.iter().enumerate() {
            Cursor::at(ptr, HEADER + i).put_bytes(&[it.fp]);
            Cursor::at(ptr, offsets_at + 2 * i).put_bytes(&((p / UNIT) as u16).to_ne_bytes());
            p = write_entry(ptr, p, it);
        }
    }
    Block { ptr }
}

/// Where the entries of a block of `n` start.
fn entries_at(n: usize) -> usize {
    align_up(align_up(HEADER + n, 2) + 2 * n, UNIT)
}

/// A cache line's bytes (what one prefetch loads).
const LINE: usize = 64;

/// Ask the CPU to load the cache line of `p` without waiting for it. A hint: any address will do.
pub(super) fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and changes no memory, whatever the address (SSE, which
    // every x86_64 has).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Load the cache line at `p` for writing (x86_64's `PREFETCHW`: the line comes in exclusive, so
/// a locked instruction on it later does not wait for another core to give it up); a read
/// prefetch where the CPU lacks it. A hint: it never faults, whatever the address.
pub(crate) fn prefetch_write(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
        // 0: not checked yet, 1: PREFETCHW, 2: none.
        static HAS: AtomicU8 = AtomicU8::new(0);
        let mut has = HAS.load(Relaxed);
        if has == 0 {
            // CPUID leaf 0x8000_0001, ECX bit 8: PRFCHW (3DNowPrefetch), asked only when the
            // maximum extended leaf reaches it.
            let ok = std::arch::x86_64::__cpuid(0x8000_0000).eax >= 0x8000_0001
                && std::arch::x86_64::__cpuid(0x8000_0001).ecx & (1 << 8) != 0;
            has = if ok { 1 } else { 2 };
            HAS.store(has, Relaxed);
        }
        if has == 1 {
            // SAFETY: PREFETCHW (present, checked above) is a hint: it never faults, reads or
            // writes no architectural state, whatever the address.
            unsafe { std::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly)) }
        } else {
            prefetch_line(p);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A block's allocation of `size` bytes (> 0: the header), 8-aligned: from the keyspace's
/// shared heap (`db::blockheap`: its free chunks serve every thread).
fn allocate(size: usize) -> NonNull<u8> {
    blockheap::allocate(size)
}

/// Free a block's allocation.
///
/// # Safety
/// `p` came from [`allocate`] with `size`; nothing uses it again.
unsafe fn release(p: NonNull<u8>, size: usize) {
    // SAFETY: the caller's contract.
    unsafe { blockheap::release(p, size) }
}

/// A zeroed allocation of `size` bytes, 8-aligned (zeroed: `splice` copies padding as words;
/// the link's bytes are zero until the map writes its link).
fn new_allocation(size: usize) -> NonNull<u8> {
    // An allocation then a memset, not a zeroing allocator: glibc's calloc skipped its per-thread
    // cache (slower, RSS fragmented +40% per key), and a cached block is not zero.
    let p = allocate(size);
    // SAFETY: the `size` bytes just allocated.
    unsafe { std::ptr::write_bytes(p.as_ptr(), 0, size) };
    p
}

/// # Safety
/// `ptr` is a new allocation of `size` bytes.
unsafe fn write_header(ptr: NonNull<u8>, size: usize, n: usize, flags: u16) {
    let mut c = Cursor::at(ptr, LINK);
    // SAFETY: the caller's contract: the header's 8 bytes after the link.
    unsafe {
        c.put_bytes(&(size as u32).to_ne_bytes());
        c.put_bytes(&(n as u16).to_ne_bytes());
        c.put_bytes(&flags.to_ne_bytes());
    }
}

/// Write `it` at `p` (UNIT-aligned); the position after it.
///
/// # Safety
/// `ptr` is a block being built with room for the entry at `p` (`Item::end`).
unsafe fn write_entry(ptr: NonNull<u8>, p: usize, it: &Item<'_>) -> usize {
    let mut e = Cursor::at(ptr, p);
    // SAFETY: the caller's contract.
    unsafe {
        e.put_object(AtomicU32::new(it.access));
        let tag = it.tag();
        e.put_bytes(&[tag]);
        if tag & LONG_KEY != 0 {
            e.put_object(Bytes::copy_from_slice(it.key));
        } else {
            e.put_short_bytes(it.key);
        }
        if tag & EXPIRES != 0 {
            e.put_bytes(&it.expire_at_ms.to_le_bytes());
        }
        write_value(&mut e, it.value);
    }
    it.end(p)
}

/// A copy of `old` with its entry `i` replaced by `new` (`i < len`), `new` appended (`i ==
/// len`), or entry `i` removed (`new` None); at least one entry is left. What every write of a
/// bucket does (see `map`), under the bucket's exclusive stripe.
///
/// The unchanged entries are not rebuilt one by one: the runs before and after `i` are copied as
/// they are (word by word, atomically: lock-free readers may store access words meanwhile; no
/// integer cell changes, the exclusive stripe excludes INCR), each moved by a multiple of 8 when
/// the block may hold 8-aligned objects (a gap of 4 bytes at most before a run), their offsets
/// moved by as much; then, only when the block owns something (`OWNS`), the copied `Bytes` and
/// `Arc`s are cloned in place (the bitwise copies own nothing). Under loom (whose atomics are not
/// plain memory) the block is rebuilt entry by entry, as [`build`] does.
pub fn splice(old: &Block, i: usize, new: Option<&Item<'_>>) -> Block {
    let n = old.len();
    assert!(i < n || (i == n && new.is_some()), "splice at {i} of {n}");
    #[cfg(feature = "loom")]
    {
        let mut items = Vec::with_capacity(n + 1);
        for j in 0..n {
            if j == i {
                items.extend(new.copied());
            } else {
                items.push(Item::copied(old.fingerprint(j), old.entry(j)));
            }
        }
        if i == n {
            items.extend(new.copied());
        }
        build(&items)
    }
    #[cfg(not(feature = "loom"))]
    // SAFETY: see each block.
    unsafe {
        splice_words(old, i, new)
    }
}

/// [`splice`] outside loom.
///
/// # Safety
/// As `splice`'s arguments (checked there).
#[cfg(not(feature = "loom"))]
unsafe fn splice_words(old: &Block, i: usize, new: Option<&Item<'_>>) -> Block {
    use std::sync::atomic::AtomicU32 as Word;
    let n = old.len();
    let new_n = n + usize::from(i == n) - usize::from(new.is_none());
    let flags = old.flags();
    let aligned = flags & ALIGNED != 0 || new.is_some_and(Item::aligned);
    let old_end = if n == 0 { entries_at(0) } else { old.entry_end(n - 1) };
    // The runs kept: A = entries [0, i), C = entries (i, n).
    let a = (if n == 0 { old_end } else { old.offset(0) }, if i < n { old.offset(i) } else { old_end });
    let c = if i < n { (if i + 1 < n { old.offset(i + 1) } else { old_end }, old_end) } else { (old_end, old_end) };
    // The first position from `min` on where a run that starts at `from` keeps its place modulo 8.
    let place = |min: usize, from: usize, len: usize| {
        if aligned && len > 0 { min + (from.wrapping_sub(min) & 7) } else { min }
    };
    let ra = place(entries_at(new_n), a.0, a.1 - a.0);
    let q = ra + (a.1 - a.0);
    let after_new = new.map_or(q, |it| it.end(q));
    let rc = place(after_new, c.0, c.1 - c.0);
    let size = align_up(rc + (c.1 - c.0), 8);
    assert!(
        new_n <= MAX_ENTRIES && size <= MAX_BLOCK && size <= u32::MAX as usize,
        "block of {new_n} entries, {size} bytes"
    );
    let ptr = new_allocation(size);
    let (src, dst) = (old.ptr.as_ptr(), ptr.as_ptr());
    let copy = |from: (usize, usize), to: usize| {
        for k in (0..from.1 - from.0).step_by(4) {
            // SAFETY: runs of whole entries: 4-aligned, in both blocks; atomic loads, as readers
            // may store access words (relaxed) concurrently; the rest of the bytes never change.
            unsafe {
                let w = (*src.add(from.0 + k).cast::<Word>()).load(Ordering::Relaxed);
                std::ptr::write(dst.add(to + k).cast::<u32>(), w);
            }
        }
    };
    copy(a, ra);
    copy(c, rc);
    let offsets_at = align_up(HEADER + new_n, 2);
    let mut k = 0;
    let mut put = |fp: u8, off: usize| {
        // SAFETY: `k < new_n`: within the header.
        unsafe {
            Cursor::at(ptr, HEADER + k).put_bytes(&[fp]);
            Cursor::at(ptr, offsets_at + 2 * k).put_bytes(&((off / UNIT) as u16).to_ne_bytes());
        }
        k += 1;
    };
    for j in 0..i.min(n) {
        put(old.fingerprint(j), old.offset(j) - a.0 + ra);
    }
    if let Some(it) = new {
        put(it.fp, q);
        // SAFETY: the room for it was sized by `Item::end(q)`.
        unsafe { write_entry(ptr, q, it) };
    }
    for j in (i + 1).min(n)..n {
        put(old.fingerprint(j), old.offset(j) - c.0 + rc);
    }
    let mut owns = new.is_some_and(Item::owns);
    if flags & OWNS != 0 && i < MOVED_MAX {
        // The bitwise copies take over what the old entries own (no reference count touched: a
        // clone per `Arc` was a cache miss on every cell of the bucket, per write); the old block
        // keeps only entry `i`'s, which it drops when it is reclaimed (see `MOVED`).
        owns = true;
        let i_owns = i < n && Item::copied(old.fingerprint(i), old.entry(i)).owns();
        let moved = (flags & ALIGNED) | MOVED | ((i as u16) << MOVED_SHIFT) | if i_owns { OWNS } else { 0 };
        // SAFETY: the old block's flags are read only by this bucket's exclusive stripe holder
        // (this splice, `map`'s set_bucket) and by its drop, never by lock-free readers: this
        // write races nothing. The caller retires the old block now (see `MOVED`).
        unsafe { std::ptr::write(old.ptr.as_ptr().add(LINK + 6).cast::<u16>(), moved) };
    } else if flags & OWNS != 0 {
        // The bitwise copies own nothing yet: clone what the old entries own into them.
        for (run, to) in [(0..i.min(n), ra.wrapping_sub(a.0)), ((i + 1).min(n)..n, rc.wrapping_sub(c.0))] {
            for j in run {
                let e = old.entry(j);
                let p = e.parse();
                // SAFETY: a run with an owned object is moved by a multiple of 8 (`ALIGNED` is
                // set with `OWNS`), so the object's copy is at its place plus `to`, aligned.
                unsafe {
                    if p.tag & LONG_KEY != 0 {
                        let key = Cursor::at(old.ptr, e.off + size_of::<AtomicU32>() + 1).object::<Bytes>();
                        let at = (key as *const Bytes as usize) - (src as usize);
                        std::ptr::write(dst.add(at.wrapping_add(to)).cast::<Bytes>(), key.clone());
                        owns = true;
                    }
                    owns |= clone_value_into(e.value(), old.ptr, ptr, to);
                }
            }
        }
    }
    // SAFETY: the header of the new allocation.
    unsafe { write_header(ptr, size, new_n, if owns { OWNS } else { 0 } | if aligned { ALIGNED } else { 0 }) };
    Block { ptr }
}

impl Drop for Block {
    fn drop(&mut self) {
        let size = self.size();
        let flags = self.flags();
        // The access words need no drop (plain atomics; under loom, too: nothing to release).
        let n = if flags & OWNS != 0 || std::mem::needs_drop::<AtomicU32>() { self.len() } else { 0 };
        // A spliced block owns only its entry `MOVED` names (if `OWNS`), the rest moved on.
        let only = (flags & MOVED != 0).then(|| usize::from(flags >> MOVED_SHIFT));
        for i in 0..n {
            if only.is_some_and(|o| o != i) {
                continue;
            }
            let off = self.offset(i);
            let mut c = Cursor::at(self.ptr, off);
            // SAFETY: the block is being dropped: nothing reads it again (its readers' guards are
            // gone, see `map`); each field is dropped once, in the order `build` wrote it.
            unsafe {
                c.drop_object::<AtomicU32>();
                let tag = c.u8();
                if tag & LONG_KEY != 0 {
                    c.drop_object::<Bytes>();
                } else {
                    c.short_bytes();
                }
                if tag & EXPIRES != 0 {
                    c.u64_unaligned();
                }
                drop_value(&mut c, tag & KIND_MASK);
            }
        }
        // SAFETY: allocated by `new_allocation` (`allocate`) with this size.
        unsafe { release(self.ptr, size) }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::db::{Collection, List};

    fn items_of(b: &Block) -> Vec<(Vec<u8>, Option<Bytes>, u64)> {
        b.entries().map(|e| (e.key().to_vec(), e.string_bytes(), e.expire_at_ms())).collect()
    }

    #[test]
    fn a_block_holds_every_kind_and_a_copy_reads_the_same() {
        let long_key = vec![b'k'; 300];
        let owned = [
            (b"a".to_vec(), Entry::string_copied(b"hello", 0)),
            (b"n".to_vec(), Entry::int(-42, 77)),
            (b"s".to_vec(), Entry::string_copied(&[b'x'; 100], 5)),
            (b"l".to_vec(), Entry::string_copied(&[b'y'; 1000], 0)),
            (b"r".to_vec(), Entry::raw_string(crate::db::RawBytes::from_slice(b"12"), 0)),
            (long_key.clone(), Entry::string_copied(b"v", 9)),
            (b"list".to_vec(), Entry::list(List::from_items([&b"q"[..]], -2), 0)),
            (vec![], Entry::string_copied(b"", 0)),
        ];
        let items: Vec<Item> =
            owned.iter().enumerate().map(|(i, (k, e))| Item::new(i as u8, k, e, i as u32 * 3)).collect();
        let b = build(&items);
        assert_eq!(b.len(), owned.len());
        assert_eq!(b.bytes(), block_size(&items));
        for (i, (k, e)) in owned.iter().enumerate() {
            let at = b.find(i as u8, k).expect("found");
            let r = b.entry(at);
            assert_eq!(r.key(), &k[..]);
            assert_eq!(r.string_bytes(), e.value_string_bytes());
            assert_eq!(r.expire_at_ms(), e.expire_at_ms());
            assert_eq!(r.access(), i as u32 * 3);
            assert_eq!(r.kind(), e.kind());
        }
        // The footprints (without out-of-line bytes) are the block less its header and tail padding.
        let n = owned.len();
        let spans: usize = b.entries().map(|e| e.footprint(|_| 0) - 3).sum();
        let header = align_up(align_up(HEADER + n, 2) + 2 * n, UNIT);
        assert!(b.bytes() >= header + spans && b.bytes() - header - spans < 8, "{} vs {header} + {spans}", b.bytes());
        let r = b.entry(b.find(4, b"r").unwrap());
        assert!(matches!(r.value(), ValueRef::Raw(_)));
        assert_eq!(r.encoding(), "raw");
        assert_eq!(
            b.entry(b.find(3, b"l").unwrap()).footprint(|n| n),
            b.entry(b.find(3, b"l").unwrap()).footprint(|_| 0) + 1000
        );
        assert!(b.find(0, b"zz").is_none());
        assert!(b.find(1, b"a").is_none(), "another fingerprint");
        assert_eq!(b.entry(b.find(3, b"l").unwrap()).encoding(), "raw");
        assert_eq!(b.entry(b.find(0, b"a").unwrap()).encoding(), "embstr");
        assert_eq!(b.entry(b.find(4, b"r").unwrap()).encoding(), "raw");
        assert_eq!(b.entry(b.find(1, b"n").unwrap()).encoding(), "int");
        assert_eq!(b.entry(b.find(6, b"list").unwrap()).encoding(), "quicklist");

        // INCR in place, then a copy (as under the exclusive stripe) carries the new value.
        if let ValueRef::Int(n) = b.entry(1).value() {
            n.fetch_add(2, Ordering::AcqRel);
        }
        b.entry(0).set_access(99);
        let copy = build(&b.entries().enumerate().map(|(i, e)| Item::copied(b.fingerprint(i), e)).collect::<Vec<_>>());
        assert_eq!(items_of(&copy), items_of(&b));
        assert_eq!(copy.entry(1).string_bytes().as_deref(), Some(&b"-40"[..]));
        assert_eq!(copy.entry(0).access(), 99);
        // The list's cell is shared by both blocks and the owned entry.
        let ValueRef::List(c) = copy.entry(6).value() else { panic!("list") };
        assert_eq!(Arc::strong_count(c), 3);
        drop(b);
        assert_eq!(Arc::strong_count(c), 2);
        assert_eq!(c.lock().items.len(), 1);
        assert!(<List as Collection>::cell_of(copy.entry(6).value()).is_some());
    }

    /// A block of short strings and integers owns nothing (dropping it is one free); one with a
    /// long string, a long key or a cell owns, and dropping it releases them.
    #[test]
    fn only_blocks_with_owned_parts_walk_their_entries_on_drop() {
        // SAFETY: the header's flags, written by `build`.
        let flags = |b: &Block| unsafe { std::ptr::read(b.ptr.as_ptr().add(LINK + 6) as *const u16) };
        let plain = [Entry::string_copied(b"abc", 0), Entry::int(7, 9)];
        let b = build(&plain.iter().map(|e| Item::new(0, b"k", e, 0)).collect::<Vec<_>>());
        assert_eq!(flags(&b), ALIGNED, "the integer cell is 8-aligned, and owns nothing");
        drop(b);
        let list = Entry::list(List::from_items([&b"q"[..]], -2), 0);
        let ValueRef::List(cell) = ValueRef::of(&list.value) else { panic!("list") };
        let long_key = vec![b'k'; 300];
        for (key, e) in
            [(&b"l"[..], &list), (&long_key[..], &plain[0]), (&b"s"[..], &Entry::string_copied(&[b'x'; 300], 0))]
        {
            let b = build(&[Item::new(0, b"k", &plain[0], 0), Item::new(1, key, e, 0)]);
            assert_eq!(flags(&b), OWNS | ALIGNED);
            if key == b"l" {
                assert_eq!(Arc::strong_count(cell), 2);
                drop(b);
                assert_eq!(Arc::strong_count(cell), 1);
            }
        }
    }

    /// A write prefetch is a hint: on any address (valid, null, unmapped) it changes nothing.
    #[test]
    fn a_write_prefetch_changes_nothing_and_never_faults() {
        let v = [7u8; 256];
        for at in [0, 63, 64, 255] {
            prefetch_write(&v[at]);
        }
        prefetch_write(std::ptr::null());
        prefetch_write(usize::MAX as *const u8);
        assert!(v.iter().all(|&b| b == 7));
    }

    /// Every way a write splices a block (replace, append, remove), over every kind of entry and
    /// at every position, reads as a block built from scratch would; objects stay 8-aligned;
    /// references are owned once (the list cell's count comes back when the blocks are dropped).
    #[test]
    fn splices_read_as_rebuilt_blocks_and_own_their_references() {
        let list = Entry::list(List::from_items([&b"q"[..]], -2), 0);
        let ValueRef::List(cell) = ValueRef::of(&list.value) else { panic!("list") };
        let owned: Vec<(Vec<u8>, Entry)> = vec![
            (b"s1".to_vec(), Entry::string_copied(b"abc", 0)),
            (b"s2".to_vec(), Entry::string_copied(&[b'v'; 16], 123)),
            (b"n".to_vec(), Entry::int(-42, 0)),
            (b"nt".to_vec(), Entry::int(7, 99)),
            (b"long".to_vec(), Entry::string_copied(&[b'L'; 300], 0)),
            (vec![b'k'; 260], Entry::string_copied(b"under a long key", 5)),
            (b"list".to_vec(), Entry::list(List::from_items([&b"q"[..]], -2), 0)),
            (b"list2".to_vec(), Entry::with_value(Value::List(cell.clone()), 77)),
            (b"odd".to_vec(), Entry::string_copied(b"12345", 0)),
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        // The model: (owned index, access) per entry, in block order.
        let mut model: Vec<(usize, u32)> = vec![(0, 1)];
        let mut b = build(&[Item::new(0, &owned[0].0, &owned[0].1, 1)]);
        let check = |b: &Block, model: &[(usize, u32)]| {
            assert_eq!(b.len(), model.len());
            for (j, &(o, access)) in model.iter().enumerate() {
                let (k, e) = (&owned[o].0, &owned[o].1);
                let r = b.entry(j);
                assert_eq!(
                    (r.key(), r.expire_at_ms(), r.access(), r.kind()),
                    (&k[..], e.expire_at_ms(), access, e.kind())
                );
                assert_eq!(r.string_bytes(), e.value_string_bytes());
                assert_eq!(b.fingerprint(j), o as u8);
                let addr = match r.value() {
                    ValueRef::Small(_) => None,
                    ValueRef::Int(c) => Some(c as *const AtomicI64 as usize),
                    ValueRef::Str(s) => Some(s as *const Bytes as usize),
                    ValueRef::List(c) => Some(c as *const Arc<ListCell> as usize),
                    _ => None,
                };
                assert!(addr.is_none_or(|a| a % 8 == 0), "entry {j} misaligned");
            }
            let rebuilt =
                build(&model.iter().map(|&(o, a)| Item::new(o as u8, &owned[o].0, &owned[o].1, a)).collect::<Vec<_>>());
            // A spliced entry keeps the padding before each 8-aligned object that its first place
            // gave it (4 bytes at most more than a rebuild's), and a gap of 4 bytes at most before
            // it; a block of short strings only has neither.
            let objects: usize = model
                .iter()
                .map(|&(o, _)| {
                    usize::from(owned[o].0.len() >= LONG_KEY_MIN)
                        + usize::from(!matches!(ValueRef::of(&owned[o].1.value), ValueRef::Small(_)))
                })
                .sum();
            let slack = if b.flags() & ALIGNED == 0 { 0 } else { 15 + 4 * (model.len() + objects) };
            assert!(b.bytes() <= rebuilt.bytes() + slack, "{} vs {} (+{slack})", b.bytes(), rebuilt.bytes());
        };
        // Short strings only first (no 8-aligned object: no padding, no gap), then every kind.
        for step in 0..3000u32 {
            let o = if step < 1000 { [0, 1, 8][rnd(3)] } else { rnd(owned.len()) };
            let item = Item::new(o as u8, &owned[o].0, &owned[o].1, step);
            let next = match rnd(3) {
                0 if model.len() < 40 => {
                    model.push((o, step));
                    splice(&b, b.len(), Some(&item))
                }
                1 if model.len() > 1 => {
                    let i = rnd(model.len());
                    model.remove(i);
                    splice(&b, i, None)
                }
                _ => {
                    let i = rnd(model.len());
                    model[i] = (o, step);
                    splice(&b, i, Some(&item))
                }
            };
            b = next;
            check(&b, &model);
        }
        drop(b);
        drop(owned);
        assert_eq!(Arc::strong_count(cell), 1);
    }

    #[test]
    fn a_splice_moves_the_kept_references_and_the_old_block_drops_only_the_replaced_ones() {
        use crate::db::{RawBytes, RawCell, ValueCell};
        let cells: Vec<Arc<RawCell>> =
            (0..4).map(|i| Arc::new(ValueCell::new(crate::db::RawStr(RawBytes::from_slice(&[i; 30]))))).collect();
        let entries: Vec<(Vec<u8>, Entry)> =
            cells.iter().enumerate().map(|(i, c)| (vec![b'k', i as u8], Entry::from_cell(c.clone(), 0))).collect();
        let long_key = vec![b'L'; 300];
        let long = Entry::string_copied(&[b'z'; 400], 0);
        let mut items: Vec<Item> = entries.iter().map(|(k, e)| Item::new(k[1], k, e, 0)).collect();
        items.push(Item::new(9, &long_key, &long, 0));
        let b0 = build(&items);
        drop(items);
        drop(entries);
        let counts = || cells.iter().map(Arc::strong_count).collect::<Vec<_>>();
        assert_eq!(counts(), [2, 2, 2, 2]);
        // Replace entry 1: the others move to the copy (no count changes), the old block keeps k1.
        let fresh = Entry::string_copied(b"new", 0);
        let b1 = splice(&b0, 1, Some(&Item::new(1, b"k\x01", &fresh, 0)));
        assert_eq!(counts(), [2, 2, 2, 2]);
        assert!(b0.owns(), "the old block still owns the replaced cell");
        // A reader of the old block still sees every value.
        let read = |b: &Block, j: usize| match b.entry(j).value() {
            ValueRef::Raw(c) => c.lock().items.0.to_vec(),
            _ => b.entry(j).string_bytes().expect("a string").to_vec(),
        };
        assert_eq!(read(&b0, 3), vec![3; 30]);
        assert_eq!(read(&b0, 4), vec![b'z'; 400]);
        // Remove entry 2 from the copy, append to that copy: neither old block owns anything more.
        let b2 = splice(&b1, 2, None);
        let b3 = splice(&b2, b2.len(), Some(&Item::new(7, b"k7", &fresh, 0)));
        assert!(!b2.owns(), "an append leaves the old block nothing to drop");
        assert_eq!(counts(), [2, 2, 2, 2]);
        drop(b0);
        assert_eq!(counts(), [2, 1, 2, 2]);
        drop(b1);
        assert_eq!(counts(), [2, 1, 1, 2]);
        assert_eq!(read(&b2, 2), vec![3; 30]);
        drop(b2);
        assert_eq!(items_of(&b3).len(), 5);
        assert_eq!(read(&b3, 3), vec![b'z'; 400]);
        drop(b3);
        assert_eq!(counts(), [1, 1, 1, 1]);
    }

    #[test]
    fn sixteen_byte_values_under_short_keys_take_forty_bytes_an_entry() {
        let e = Entry::string_copied(&[b'v'; 16], 0);
        let key = b"key:0000000001";
        let one = [Item::new(1, key, &e, 0)];
        // link 8 + header 8 + fp 1 + pad 1 + offset 2 = 20 -> entry at 20: access 4, tag 1, key 1+14, value
        // 1+16 -> 57 -> 60 (UNIT), 64 (the block's 8).
        assert_eq!(block_size(&one), 64);
        let with_ttl = Entry::string_copied(&[b'v'; 16], 1);
        assert_eq!(block_size(&[Item::new(1, key, &with_ttl, 0)]), 72);
    }
}
