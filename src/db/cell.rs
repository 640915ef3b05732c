//! The value cell every collection lives in (lists, hashes, sets): the items behind the key's own
//! lock, and the `dead` mark that makes removal of an emptied key safe against writers that looked
//! the cell up before it was removed. Mirrors the part of Redis's `object.c` that wraps a
//! collection's encoding; the locking protocol built on it is in `cmd::collection`.
//!
//! # The cell invariant
//!
//! * A cell is live while `dead` is false; `dead` is only set ([`ValueCell::mark_dead`]), under
//!   the cell lock **and** the key's stripe, by the write that empties it (an emptied collection,
//!   or blocked clients served the last element). Nothing writes a dead cell again.
//! * Removing the key is a block copy (see `map`): it needs the EXCLUSIVE stripe. A write under
//!   the shared stripe that empties its cell marks it dead and logs its record under the cell
//!   lock, releases both locks, then removes the key under the exclusive stripe if it still holds
//!   that dead cell, before its reply leaves (`cmd::collection::write`). Meanwhile the dead cell
//!   is in the map: readers treat it as absent (the lock-free `gone` mirror of `dead`, or `dead`
//!   under the cell lock), and an exclusive writer that finds it removes it first
//!   (`WriteLock::lookup`), logging nothing: the emptying record already removes it on replay.
//! * Every write to a live cell holds the cell lock while it changes the items and while it pushes
//!   its AOF record, so same-key records are in apply order even under a shared stripe.
//! * A collection is never empty while it is in the keyspace (Redis keeps no empty list, hash or
//!   set).
//!
//! # Adding a collection type
//!
//! A `Value` variant holding `Arc<ValueCell<T>>` (and its arms in `Entry::kind`, `duplicate`,
//! `moved`, the rewrite snapshot and the dumps), a [`Collection`] impl for `T` here, and a
//! `cmd/<type>.rs` of handlers that reach the value only through `cmd::collection` (`write`,
//! `read`, `lookup_write`, `create`): the locking, the type check, removal of an emptied key and
//! the ordering of records come with it.

use super::stream::Stream;
use super::zset::SortedSet;
use super::{Kind, Value, ValueRef, WriteLock};
use crate::sync::Arc;

/// The per-key cell lock. Outside loom, parking_lot's: a hot collection (a work queue all clients
/// push to) is locked by every runtime worker in turn for a few hundred nanoseconds, and its
/// adaptive spinning hands the lock over without the futex sleep and wake-up (two context
/// switches) that std's mutex falls back to quickly. Its one-byte lock word shares its word with
/// the cell's `gone` flag ([`RawCellLock`]), in the padding before the items, so that a small
/// hash's or sorted set's cell is 24 bytes and its `Arc` one malloc class (48 B) down. Under loom,
/// the facade's mutex, so models see the lock.
#[cfg(not(feature = "loom"))]
type CellMutex<T> = lock_api::Mutex<RawCellLock, T>;
#[cfg(not(feature = "loom"))]
pub type CellGuard<'a, T> = lock_api::MutexGuard<'a, RawCellLock, CellState<T>>;
#[cfg(feature = "loom")]
type CellMutex<T> = crate::sync::Mutex<T>;
#[cfg(feature = "loom")]
pub type CellGuard<'a, T> = crate::sync::MutexGuard<'a, CellState<T>>;

/// parking_lot's raw mutex (one byte) and the cell's `gone` flag beside it: the flag is read
/// without the lock, so it cannot live in the locked data, and as a field of its own after the
/// mutex it cost a padded word.
#[cfg(not(feature = "loom"))]
pub struct RawCellLock {
    lock: parking_lot::RawMutex,
    /// `dead`, readable without the lock (set with it, never cleared).
    gone: std::sync::atomic::AtomicBool,
}

// SAFETY: every method forwards to parking_lot's `RawMutex`, which upholds the trait's contract
// (exclusive between `lock`/successful `try_lock` and `unlock`); `gone` takes no part in locking.
#[cfg(not(feature = "loom"))]
unsafe impl lock_api::RawMutex for RawCellLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = RawCellLock {
        lock: <parking_lot::RawMutex as lock_api::RawMutex>::INIT,
        gone: std::sync::atomic::AtomicBool::new(false),
    };
    type GuardMarker = <parking_lot::RawMutex as lock_api::RawMutex>::GuardMarker;

    #[inline]
    fn lock(&self) {
        self.lock.lock()
    }

    #[inline]
    fn try_lock(&self) -> bool {
        self.lock.try_lock()
    }

    #[inline]
    unsafe fn unlock(&self) {
        // SAFETY: the caller holds the lock (the trait's contract), as parking_lot's requires.
        unsafe { self.lock.unlock() }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.lock.is_locked()
    }
}

/// A collection and its per-key lock.
#[derive(Debug)]
pub struct ValueCell<T> {
    state: CellMutex<CellState<T>>,
    /// `dead`, readable without the lock (set with it, never cleared): in the lock's word outside
    /// loom (see [`RawCellLock`]).
    #[cfg(feature = "loom")]
    gone: crate::sync::AtomicBool,
}

/// The locked part of a cell.
#[derive(Debug, Default)]
pub struct CellState<T> {
    pub items: T,
    /// Set (under this lock and the key's stripe) when the key was removed from the keyspace: a
    /// writer that looked the cell up before the removal must not write into it, and retries.
    pub dead: bool,
}

impl<T> ValueCell<T> {
    pub fn new(items: T) -> ValueCell<T> {
        ValueCell {
            state: CellMutex::new(CellState { items, dead: false }),
            #[cfg(feature = "loom")]
            gone: crate::sync::AtomicBool::new(false),
        }
    }

    /// The `gone` flag.
    #[cfg(not(feature = "loom"))]
    fn gone(&self) -> &std::sync::atomic::AtomicBool {
        // SAFETY: `raw` is unsafe only because the raw lock could be unlocked through it; only
        // the flag beside the lock is touched.
        unsafe { &self.state.raw().gone }
    }

    #[cfg(feature = "loom")]
    fn gone(&self) -> &crate::sync::AtomicBool {
        &self.gone
    }

    /// Mark the cell dead (its key is being removed): under its lock (`st`) and the key's stripe.
    pub fn mark_dead(&self, st: &mut CellState<T>) {
        st.dead = true;
        // Release: a reader that sees it also sees the emptying write.
        self.gone().store(true, crate::sync::Ordering::Release);
    }

    /// Whether the cell was marked dead, without its lock.
    pub fn is_gone(&self) -> bool {
        self.gone().load(crate::sync::Ordering::Acquire)
    }

    /// Take the per-key cell lock.
    pub fn lock(&self) -> CellGuard<'_, T> {
        #[cfg(not(feature = "loom"))]
        {
            let guard = self.state.lock();
            // A MONITOR line of an in-place write goes out in the order of this lock.
            crate::monitor::feed::feed_pending_here();
            return guard;
        }
        #[cfg(feature = "loom")]
        crate::sync::lock(&self.state)
    }
}

pub use super::compact::{Hash, List, Set};

pub type ListCell = ValueCell<List>;

/// The bytes of a string changed in place (OBJECT ENCODING `raw`): SETBIT, BITFIELD, SETRANGE,
/// APPEND, PFADD write them under the cell lock (the protocol is `cmd::rawstr`). Never removed
/// by a shared writer (a string is not emptied away), so its cell is never `dead`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawStr(pub RawBytes);

/// A raw string's bytes: up to [`RAW_INLINE`] inside the cell, longer ones on the heap.
pub type RawBytes = smallvec::SmallVec<[u8; RAW_INLINE]>;

/// What fits inline beside the length in the 32 bytes a `RawBytes` takes anyway.
pub const RAW_INLINE: usize = 22;

/// `v` as a raw string's bytes (copied inline when short, else its heap buffer taken over).
pub fn raw_bytes(v: Vec<u8>) -> RawBytes {
    if v.len() <= RAW_INLINE { RawBytes::from_slice(&v) } else { RawBytes::from_vec(v) }
}

pub type RawCell = ValueCell<RawStr>;
pub type ListState = CellState<List>;
pub type ListGuard<'a> = CellGuard<'a, List>;

/// A type of collection: what the shared protocol needs to know about it.
pub trait Collection: Sized + Clone + Default + Send + Sync + 'static {
    /// What TYPE answers.
    const KIND: Kind;
    /// The cell of a value of this type; `None` for any other type (WRONGTYPE).
    fn cell_of(v: ValueRef<'_>) -> Option<&Arc<ValueCell<Self>>>;
    /// A value around a cell.
    fn into_value(cell: Arc<ValueCell<Self>>) -> Value;
    /// Elements (LLEN, HLEN, SCARD, ZCARD).
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// After a write (key's stripe and cell lock held, its record logged): lists and sorted sets
    /// hand elements to their blocked clients; other types have none.
    fn after_write(_st: &mut CellState<Self>, _w: &WriteLock, _key: &[u8]) {}
}

/// A collection of named members (a hash's fields, a set's or sorted set's members).
pub trait Members: Collection {
    /// Remove `name`; whether it was there (HDEL, SREM, ZREM).
    fn remove_member(&mut self, name: &[u8]) -> bool;
}

impl Members for Hash {
    fn remove_member(&mut self, name: &[u8]) -> bool {
        self.remove(name)
    }
}

impl Members for Set {
    fn remove_member(&mut self, name: &[u8]) -> bool {
        self.remove(name)
    }
}

impl Members for SortedSet {
    fn remove_member(&mut self, name: &[u8]) -> bool {
        self.remove(name).is_some()
    }
}

impl Collection for List {
    const KIND: Kind = Kind::List;
    fn cell_of(v: ValueRef<'_>) -> Option<&Arc<ValueCell<Self>>> {
        if let ValueRef::List(c) = v { Some(c) } else { None }
    }
    fn into_value(cell: Arc<ValueCell<Self>>) -> Value {
        Value::List(cell)
    }
    fn len(&self) -> usize {
        List::len(self)
    }
    fn after_write(st: &mut CellState<Self>, w: &WriteLock, key: &[u8]) {
        // One atomic load when nobody is blocked (see `db::blocking`).
        if !st.items.is_empty() {
            w.serve_waiters(key, &mut st.items);
        }
    }
}

impl Collection for Hash {
    const KIND: Kind = Kind::Hash;
    fn cell_of(v: ValueRef<'_>) -> Option<&Arc<ValueCell<Self>>> {
        if let ValueRef::Hash(c) = v { Some(c) } else { None }
    }
    fn into_value(cell: Arc<ValueCell<Self>>) -> Value {
        Value::Hash(cell)
    }
    fn len(&self) -> usize {
        Hash::len(self)
    }
}

impl Collection for Set {
    const KIND: Kind = Kind::Set;
    fn cell_of(v: ValueRef<'_>) -> Option<&Arc<ValueCell<Self>>> {
        if let ValueRef::Set(c) = v { Some(c) } else { None }
    }
    fn into_value(cell: Arc<ValueCell<Self>>) -> Value {
        Value::Set(cell)
    }
    fn len(&self) -> usize {
        Set::len(self)
    }
}

impl Collection for SortedSet {
    const KIND: Kind = Kind::Zset;
    fn cell_of(v: ValueRef<'_>) -> Option<&Arc<ValueCell<Self>>> {
        if let ValueRef::Zset(c) = v { Some(c) } else { None }
    }
    fn into_value(cell: Arc<ValueCell<Self>>) -> Value {
        Value::Zset(cell)
    }
    fn len(&self) -> usize {
        SortedSet::len(self)
    }
    fn after_write(st: &mut CellState<Self>, w: &WriteLock, key: &[u8]) {
        // One atomic load when nobody is blocked (see `db::blocking`).
        if !st.items.is_empty() {
            w.serve_waiters(key, &mut st.items);
        }
    }
}

impl Collection for RawStr {
    const KIND: Kind = Kind::String;
    fn cell_of(v: ValueRef<'_>) -> Option<&Arc<ValueCell<Self>>> {
        if let ValueRef::Raw(c) = v { Some(c) } else { None }
    }
    fn into_value(cell: Arc<ValueCell<Self>>) -> Value {
        Value::Raw(cell)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    /// An empty string stays a key (`SET k ""` then `APPEND k ""`).
    fn is_empty(&self) -> bool {
        false
    }
}

impl Collection for Stream {
    const KIND: Kind = Kind::Stream;
    fn cell_of(v: ValueRef<'_>) -> Option<&Arc<ValueCell<Self>>> {
        if let ValueRef::Stream(c) = v { Some(c) } else { None }
    }
    fn into_value(cell: Arc<ValueCell<Self>>) -> Value {
        Value::Stream(cell)
    }
    fn len(&self) -> usize {
        Stream::len(self) as usize
    }
    /// A stream stays in the keyspace when its last entry goes (Redis keeps empty streams).
    fn is_empty(&self) -> bool {
        false
    }
}
