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

/// The per-key cell lock. Outside loom, our own one-byte lock over parking_lot's parking lot
/// ([`RawCellLock`]): a hot collection (a work queue all clients push to) is locked by every
/// runtime worker in turn for a few hundred nanoseconds. A waiter spins with `pause` for about as
/// long as the lock is usually held ([`SPIN_NS`]), then yields its core twice ([`SPIN_YIELDS`]:
/// the holder may be preempted by the very thread that waits), then parks (parking_lot's own mutex
/// yields up to seven times before it parks: on a machine with as many busy threads as cores each
/// yield is a context switch that hands the core to another runnable thread, measured as most of
/// the kernel time of a one-hot-key benchmark; two yields measured 5-10% better than none on the
/// hot LPUSH/RPUSH/SADD/ZPOPMIN tests at pipeline 16, same run, README). Its lock byte shares
/// its word with the cell's `gone` flag, in the padding before the items, so that a small hash's
/// or sorted set's cell is 24 bytes and its `Arc` one malloc class (48 B) down. Under loom, the
/// facade's mutex, so models see the lock.
#[cfg(not(feature = "loom"))]
type CellMutex<T> = lock_api::Mutex<RawCellLock, T>;
#[cfg(not(feature = "loom"))]
pub type CellGuard<'a, T> = lock_api::MutexGuard<'a, RawCellLock, CellState<T>>;
#[cfg(feature = "loom")]
type CellMutex<T> = crate::sync::Mutex<T>;
#[cfg(feature = "loom")]
pub type CellGuard<'a, T> = crate::sync::MutexGuard<'a, CellState<T>>;

/// How long a waiter for a held cell lock spins before it parks: a little more than one
/// collection write's hold (an insert into a 100k-field hash plus its AOF push, 0.3-1 µs), so that
/// the common hand-off between two workers costs no context switch, while a waiter whose holder
/// was preempted (or holds it for a long write) gives its core up soon.
#[cfg(not(feature = "loom"))]
pub const SPIN_NS: u32 = 2_000;

/// How many times a waiter whose spin ran out yields its core before it parks.
#[cfg(not(feature = "loom"))]
const SPIN_YIELDS: u32 = 2;

/// The lock byte's bits: held, and (while held or being released) threads parked on it.
#[cfg(not(feature = "loom"))]
const LOCKED: u8 = 1;
#[cfg(not(feature = "loom"))]
const PARKED: u8 = 2;
/// The unlock token that hands a parked thread the lock itself (parking_lot's "fair" unlock, at
/// most about every 0.5 ms per lock: a thread that parked is not starved by spinners).
#[cfg(not(feature = "loom"))]
const TOKEN_HANDOFF: parking_lot_core::UnparkToken = parking_lot_core::UnparkToken(1);

/// The cell lock: one lock byte (`LOCKED`, `PARKED`; waiters park in parking_lot's global parking
/// lot keyed by its address) and the cell's `gone` flag beside it: the flag is read without the
/// lock, so it cannot live in the locked data, and as a field of its own after the mutex it cost a
/// padded word.
#[cfg(not(feature = "loom"))]
pub struct RawCellLock {
    state: std::sync::atomic::AtomicU8,
    /// `dead`, readable without the lock (set with it, never cleared).
    gone: std::sync::atomic::AtomicBool,
}

#[cfg(not(feature = "loom"))]
impl RawCellLock {
    /// The parking lot's key for this lock: its lock byte's address.
    fn key(&self) -> usize {
        &self.state as *const _ as usize
    }

    #[cold]
    fn lock_slow(&self) {
        use std::sync::atomic::Ordering::{Acquire, Relaxed};
        let mut spun: Option<std::time::Instant> = None;
        let mut yields = 0;
        let mut state = self.state.load(Relaxed);
        loop {
            if state & LOCKED == 0 {
                match self.state.compare_exchange_weak(state, state | LOCKED, Acquire, Relaxed) {
                    Ok(_) => return,
                    Err(s) => {
                        state = s;
                        continue;
                    }
                }
            }
            // Spin while nobody is parked (a parked thread means the holder is slow to come back)
            // and for at most SPIN_NS; the clock is read once per 16 pauses.
            if state & PARKED == 0 {
                let start = *spun.get_or_insert_with(std::time::Instant::now);
                if start.elapsed().as_nanos() < u128::from(SPIN_NS) {
                    for _ in 0..16 {
                        std::hint::spin_loop();
                        state = self.state.load(Relaxed);
                        if state & LOCKED == 0 {
                            break;
                        }
                    }
                    continue;
                }
                if yields < SPIN_YIELDS {
                    yields += 1;
                    std::thread::yield_now();
                    state = self.state.load(Relaxed);
                    continue;
                }
                if let Err(s) = self.state.compare_exchange_weak(state, state | PARKED, Relaxed, Relaxed) {
                    state = s;
                    continue;
                }
            }
            // SAFETY: `key` is this lock's address, which parks only threads waiting for it; the
            // callbacks take no parking-lot locks and do not panic.
            let result = unsafe {
                parking_lot_core::park(
                    self.key(),
                    || self.state.load(Relaxed) == LOCKED | PARKED,
                    || {},
                    |_, was_last| {
                        if was_last {
                            self.state.fetch_and(!PARKED, Relaxed);
                        }
                    },
                    parking_lot_core::DEFAULT_PARK_TOKEN,
                    None,
                )
            };
            // Handed the lock by its releaser (it stays LOCKED): ours, with Acquire through the
            // parking lot's bucket lock.
            if result == parking_lot_core::ParkResult::Unparked(TOKEN_HANDOFF) {
                return;
            }
            spun = None;
            state = self.state.load(Relaxed);
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        use std::sync::atomic::Ordering::Release;
        // SAFETY: as in `lock_slow`; the callback runs with the bucket locked, so no thread can
        // park on this key between its reading of the queue and its store.
        unsafe {
            parking_lot_core::unpark_one(self.key(), |result| {
                if result.unparked_threads != 0 && result.be_fair {
                    // Hand over: the lock stays held, by the woken thread.
                    if !result.have_more_threads {
                        self.state.store(LOCKED, Release);
                    }
                    return TOKEN_HANDOFF;
                }
                self.state.store(if result.have_more_threads { PARKED } else { 0 }, Release);
                parking_lot_core::DEFAULT_UNPARK_TOKEN
            });
        }
    }
}

// SAFETY: `lock` and a successful `try_lock` set LOCKED with a compare-and-swap from a state
// without it (or receive the lock from `unlock_slow`'s hand-off, which never clears LOCKED), so at
// most one thread holds the lock between acquiring it and `unlock`; Acquire on taking and Release
// on releasing order the protected data. `gone` takes no part in locking.
#[cfg(not(feature = "loom"))]
unsafe impl lock_api::RawMutex for RawCellLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self =
        RawCellLock { state: std::sync::atomic::AtomicU8::new(0), gone: std::sync::atomic::AtomicBool::new(false) };
    type GuardMarker = <parking_lot::RawMutex as lock_api::RawMutex>::GuardMarker;

    #[inline]
    fn lock(&self) {
        use std::sync::atomic::Ordering::{Acquire, Relaxed};
        if self.state.compare_exchange_weak(0, LOCKED, Acquire, Relaxed).is_err() {
            self.lock_slow();
        }
    }

    #[inline]
    fn try_lock(&self) -> bool {
        use std::sync::atomic::Ordering::{Acquire, Relaxed};
        let mut state = self.state.load(Relaxed);
        loop {
            if state & LOCKED != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(state, state | LOCKED, Acquire, Relaxed) {
                Ok(_) => return true,
                Err(s) => state = s,
            }
        }
    }

    #[inline]
    unsafe fn unlock(&self) {
        use std::sync::atomic::Ordering::{Relaxed, Release};
        if self.state.compare_exchange(LOCKED, 0, Release, Relaxed).is_err() {
            self.unlock_slow();
        }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.state.load(std::sync::atomic::Ordering::Relaxed) & LOCKED != 0
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

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Whether a thread is parked on the cell's lock (its PARKED bit).
    fn parked<T>(c: &ValueCell<T>) -> bool {
        // SAFETY: only the lock byte is read.
        unsafe { c.state.raw().state.load(std::sync::atomic::Ordering::Relaxed) & PARKED != 0 }
    }

    #[test]
    fn the_cell_lock_excludes_under_contention() {
        let cell = Arc::new(ValueCell::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let cell = Arc::clone(&cell);
                std::thread::spawn(move || {
                    for i in 0..50_000u64 {
                        let mut st = cell.lock();
                        // A read-modify-write in two steps, lost if two threads interleave.
                        let v = st.items;
                        if i % 1024 == 0 {
                            std::thread::yield_now();
                        }
                        st.items = v + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(cell.lock().items, 200_000);
        assert!(!parked(&cell), "nobody is left parked");
    }

    #[test]
    fn a_waiter_past_its_spin_parks_and_is_woken_by_the_unlock() {
        let cell = Arc::new(ValueCell::new(Vec::<u32>::new()));
        let held = cell.lock();
        assert!(cell.state.is_locked());
        assert!(cell.state.try_lock().is_none(), "try_lock fails while held");
        let waiter = {
            let cell = Arc::clone(&cell);
            std::thread::spawn(move || cell.lock().items.push(2))
        };
        // The waiter spins for SPIN_NS (2 µs), then parks: wait until it has.
        let mut tries = 0;
        while !parked(&cell) {
            tries += 1;
            assert!(tries < 5_000, "the waiter never parked");
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut held = held;
        held.items.push(1);
        drop(held);
        waiter.join().unwrap();
        assert_eq!(cell.lock().items, [1, 2], "the waiter ran after the holder, and was woken");
        assert!(!parked(&cell));
        assert!(!cell.state.is_locked());
        assert!(cell.state.try_lock().is_some());
    }

    #[test]
    fn the_gone_flag_is_independent_of_the_lock_byte() {
        let cell = ValueCell::new(0u8);
        assert!(!cell.is_gone());
        {
            let mut st = cell.lock();
            assert!(!cell.is_gone(), "taking the lock does not set it");
            cell.mark_dead(&mut st);
        }
        assert!(cell.is_gone());
        let st = cell.lock();
        assert!(st.dead && cell.is_gone(), "locking again does not clear it");
        drop(st);
        assert!(!cell.state.is_locked());
    }
}
