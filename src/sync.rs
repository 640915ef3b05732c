//! The one place that chooses between `std` and `loom` synchronization primitives.
//!
//! Every atomic, lock, `Arc` and thread that a concurrency protocol of this crate relies on is imported
//! from here, so that `cargo test --features loom` model-checks the very code that ships (the same
//! facade tokio keeps in `src/loom`). Code that must differ under loom (the flurry map, the crossbeam
//! queue, the mmap file) keeps a narrow interface with a loom stand-in behind it, in its own module.

#[cfg(not(feature = "loom"))]
pub use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(not(feature = "loom"))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
#[cfg(not(feature = "loom"))]
pub use std::thread;

#[cfg(feature = "loom")]
pub use loom::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(feature = "loom")]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
#[cfg(feature = "loom")]
pub use loom::thread;

/// Lock a mutex, ignoring poisoning: every critical section in this crate leaves its data consistent
/// before anything that can panic, and a poisoned lock must not take the server down with it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Shared lock on an `RwLock`, ignoring poisoning (see [`lock`]).
pub fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

/// Exclusive lock on an `RwLock`, ignoring poisoning (see [`lock`]).
pub fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// Deliberate protocol breakages, switched on only by the loom models' `should_panic` variants to
/// show that each model catches the bug it is about. Outside `--features loom` every switch is a
/// constant `false` and compiles away.
pub mod fault {
    /// A protocol step that a model can break.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Fault {
        /// A script touches a key it did not declare without taking that key's stripe.
        ScriptSkipsUndeclaredStripe,
        /// A script that stops to run again holding every stripe keeps its changes so far.
        ScriptSkipsUndo,
        /// A script runs without holding its declared keys' stripes.
        ScriptWithoutStripes,
        /// INCR's fast path pushes its AOF record after releasing the key's stripe.
        IncrLogOutsideLock,
        /// SET pushes its AOF record after releasing the key's stripe.
        SetLogOutsideLock,
        /// SET announces its keyspace events after releasing the key's stripe.
        SetNotifyOutsideLock,
        /// A collection write ignores the `dead` mark of a cell that was removed from the keyspace.
        CellIgnoreDead,
        /// A collection write pushes its AOF record after releasing the cell lock.
        CellLogOutsideLock,
        /// A shared-stripe write that empties its collection removes the key (a block copy) under
        /// the shared stripe instead of the exclusive one.
        DeadRemoveUnderShared,
        /// A single-key exclusive write (a block copy) takes its stripe SHARED, so it can copy a
        /// block while an INCR CASes a cell of the old one.
        BlockCopyUnderShared,
        /// A part's growth removes its old slots before it publishes the new depth, so a reader
        /// that loaded the old depth misses its key and finds the depth unchanged.
        GrowRemoveBeforePublish,
        /// Active expiry removes the key without re-checking its expiry under the stripe lock.
        ExpireNoRecheck,
        /// The AOF writer publishes the durable watermark before the data is flushed.
        DurableBeforeFlush,
        /// A durability waiter checks the watermark before registering its waker (lost wake-up).
        WaiterCheckBeforeRegister,
        /// The AOF writer parks with a bare wait that forgets a producer's wake-up left before it
        /// parked (lost wake-up; a shutdown's wake-up is kept so the model can still finish).
        WriterParkWithoutRecheck,
        /// A rewrite's marker is pushed after the snapshot instead of with every stripe held.
        RewriteMarkerOutsideLock,
        /// The AOF is closed at shutdown without holding the key stripes (writes may still apply).
        AofCloseWithoutStripes,
        /// EXEC runs its queued commands without taking their stripes (no hold, no odd epochs).
        ExecWithoutStripes,
        /// A multi-key read returns what it read without re-checking the stripes' epochs.
        ReadSkipEpochRecheck,
        /// EXEC checks its watched keys before taking the stripes instead of while holding them.
        WatchCheckBeforeHold,
        /// A blocking pop releases its keys' stripes after its last check and registers after
        /// (lost wake-up: a push in between finds nobody to serve).
        BlockRegisterWithoutStripe,
        /// A blocked client whose timer fires ignores a pusher's hand-off in progress and replies
        /// as timed out (the handed-over element is lost).
        TimeoutDropsHandedOver,
        /// A pusher claims a blocked client by a load and a store instead of a compare-and-swap
        /// (the client's timer can win in between: the element goes to a client that gave up).
        ClaimWithoutCas,
        /// A pusher hands the element to the newest blocked client instead of the oldest.
        HandOffToNewestWaiter,
        /// CLIENT UNBLOCK ends a wait without the compare-and-swap: it overrides a pusher's claim
        /// (the element popped for the client is answered with the UNBLOCKED error instead).
        UnblockIgnoresClaim,
        /// SETBIT or PFADD pushes its AOF record after releasing the key's stripe (or, in place,
        /// the string's cell lock).
        BitLogOutsideLock,
        /// An in-place string write (SETBIT, APPEND ...) changes a copy of the bytes and stores it
        /// back in two steps (the string grown, then the new bytes), giving the cell lock up in
        /// between: a reader sees a torn string, a concurrent writer's change is lost.
        BitEditOutsideLock,
        /// A tracking client's read command registers its keys after reading them instead of
        /// before (a write in between finds nobody to invalidate: the cached value is stale).
        TrackRegisterAfterRead,
        /// An eviction pushes its `DEL` after releasing the key's stripe.
        EvictLogOutsideLock,
        /// A full sync takes its replication offset after releasing the stripes it copied the
        /// keyspace under (a write in between is in neither the copy nor the stream sent after).
        ReplOffsetOutsideLock,
        /// A publisher writes an idle subscriber's messages to its socket after releasing the
        /// outbox lock (the connection may have stopped being idle, written, or closed meanwhile).
        PubsubDirectWriteUnlocked,
        /// A replica's sender goes idle without checking, under its outlet's lock, that the stream
        /// still ends where it was sent up to (lost wake-up: a chunk appended and offered before
        /// it went idle is never sent).
        OutletIdleWithoutRecheck,
        /// WAIT counts the replicas' acknowledgements before it listens for their ACKs (lost
        /// wake-up: an ACK in between wakes nobody, and the client waits forever).
        WaitCountBeforeListen,
        /// The bulk loader (`KeyMap::put_batch`) publishes a rebuilt bucket by removing its slot
        /// and inserting a new one instead of swapping the block in the slot: a reader in between
        /// misses a key that was there before the batch and is there after it.
        BulkRemoveThenInsert,
        /// A frozen snapshot (BGSAVE) reads integer cells and collections when it encodes them,
        /// after the writers are let in, instead of copying them at the snapshot point.
        SnapshotCellsByReference,
        /// `repl-diskless-load swapdb`'s swap of every database leaves the stripes' epochs even, so
        /// a lock-free multi-key read racing it can read one key before and one after.
        SwapWithoutEpochs,
    }

    #[cfg(feature = "loom")]
    std::thread_local! {
        // loom runs every modeled thread on the test's own OS thread, so a std thread-local set by
        // the test is seen by all of them, and tests running in parallel do not see each other's.
        static ACTIVE: std::cell::Cell<Option<Fault>> = const { std::cell::Cell::new(None) };
    }

    /// Whether `f` is switched on (always false outside loom builds).
    #[inline(always)]
    pub fn on(f: Fault) -> bool {
        #[cfg(feature = "loom")]
        {
            ACTIVE.with(|a| a.get() == Some(f))
        }
        #[cfg(not(feature = "loom"))]
        {
            let _ = f;
            false
        }
    }

    /// Switch `f` on for the current test thread (loom builds only).
    #[cfg(feature = "loom")]
    pub fn inject(f: Option<Fault>) {
        ACTIVE.with(|a| a.set(f));
    }
}
