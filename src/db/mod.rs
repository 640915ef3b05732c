//! The keyspace: 16 (configurable) databases of block maps (`map`), the striped per-key write locks that
//! order every write against its AOF record, lazy and active expiry. Mirrors Redis's `db.c`/`expire.c`.
//!
//! # The ordering invariant (why replaying the AOF rebuilds exactly what memory held)
//!
//! Every key hashes to one of `stripes` `RwLock`s. Reads take no lock. Every write to a key
//! holds its stripe while it changes the map **and** while it pushes its AOF record
//! ([`WriteLock::log`]), so for each key the order of records in the queue (a FIFO) is the order in
//! which the writes took effect:
//!
//! * Exclusive (`Keyspace::write`): SET, DEL, RENAME, expiry changes, creating or deleting a key,
//!   type changes, every multi-key command (stripes taken in ascending order: no deadlock), and
//!   FLUSHALL/FLUSHDB/SWAPDB/rewrite snapshots (all stripes). Nothing else writes the key meanwhile.
//! * Shared (`Keyspace::write_shared`): the fast paths that only mutate a value in place, which
//!   never create, delete or retype a key:
//!   - INCR/DECR/INCRBY/DECRBY on an existing integer cell: a CAS loop, then the record. Concurrent
//!     shared writers may enqueue in another order than they CASed, but their records are deltas
//!     and deltas commute; everything that does not commute with them needs the stripe
//!     exclusively, so it is ordered before or after all of them. Replay adds deltas with wrapping
//!     arithmetic, so another order of the same deltas cannot fail in the middle.
//!   - collection operations (lists, hashes, sets) on an existing collection: they also take the
//!     value cell's own lock (`cell`) and push their record under it, so same-key records are in
//!     apply order. A write that empties the collection removes the key under both locks and marks
//!     the cell `dead`; a writer that looked the cell up before sees `dead` and retries (it then
//!     takes the exclusive path to create the key). The one implementation of this protocol, used
//!     by every collection type, is `cmd::collection`; the cell and its invariant are in `cell`.
//! * Whenever a write treats a key as expired it deletes it and logs `DEL` first, under the
//!   exclusive stripe ([`WriteLock::lookup`]): replay never consults the clock (nothing expires while
//!   loading), so the file alone decides. Expiry times are logged as absolute times.

mod block;
pub mod blockheap;
pub mod blocking;
mod cell;
pub mod compact;
mod entry;
pub mod evict;
pub mod geo;
pub mod hll;
mod keyhash;
mod map;
mod snapshot;
pub mod stream;
mod tx;
mod undo;
mod watch;
pub mod zset;

use bytes::Bytes;
use crossbeam::utils::CachePadded;
use std::cell::Cell;
use std::sync::OnceLock;

pub use block::{EntryRef, INLINE_MAX, ValueRef};
pub use cell::{
    CellGuard, CellState, Collection, Hash, List, ListCell, ListGuard, ListState, Members, RawBytes, RawCell, RawStr,
    Set, ValueCell, raw_bytes,
};
pub use entry::{Entry, Kind, StrRef, Value};
pub use keyhash::{KeyHashed, hash_key, hash_key_seeded};
pub use map::Batch;
pub use map::{Change, KeyMap, PARTS, PREFETCH_MAX};
pub use snapshot::{Frozen, FrozenValue, SnapshotEntry, SnapshotValue};
pub use tx::{TxHold, WouldBlock};
pub use undo::{TooCostly, UNDO_BUDGET, UndoLog};
pub use watch::WatchSet;

use crate::aof::Aof;
use crate::sync::{
    Arc, AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use watch::WatchRegistry;

/// Keys with an expiry that one active-expiry step looks at, at least, per database.
const EXPIRE_EXAMINE_MIN: usize = 1000;

/// Default number of write-lock stripes.
#[cfg(not(feature = "loom"))]
pub const DEFAULT_STRIPES: usize = 1024;
/// Few stripes under loom: each lock is a modeled object.
#[cfg(feature = "loom")]
pub const DEFAULT_STRIPES: usize = 2;

/// All databases, their write locks and expiry bookkeeping.
pub struct Keyspace {
    /// One map per database plus as many spares (see [`WriteLock::empty_db`]).
    maps: Vec<KeyMap>,
    /// Physical maps that no database uses, empty, oldest first: FLUSHDB/FLUSHALL swap one in. A
    /// traversal that started before a flush (KEYS, SCAN) may still walk the old map while it is
    /// cleared and, once recycled, refilled as another database (first in, first out makes that
    /// late: as with SWAPDB, a traversal concurrent with a flush is weakly consistent).
    spare: Mutex<std::collections::VecDeque<usize>>,
    /// Logical db index -> physical map index (SWAPDB swaps two entries under all stripes).
    logical: Vec<AtomicUsize>,
    /// Each on its own cache line: two cores writing keys of neighbouring stripes must not
    /// fight over one line (every write takes its stripe with an atomic read-modify-write).
    stripes: Box<[CachePadded<RwLock<()>>]>,
    /// Per stripe: odd while an EXEC holds it (see `tx`).
    tx_epoch: Box<[AtomicU64]>,
    /// WATCHed keys, by stripe.
    watch: Arc<WatchRegistry>,
    aof: OnceLock<Arc<Aof>>,
    /// Set while the AOF is replayed: nothing is logged.
    loading: AtomicBool,
    /// Keys removed by expiry (INFO expired_keys).
    expired_keys: AtomicUsize,
    /// Clients blocked on list keys (BLPOP and friends).
    blocking: std::sync::Arc<blocking::Blocking>,
    /// Keyspace notifications (`notify-keyspace-events`): see `pubsub::notify`.
    events: crate::pubsub::notify::Events,
    /// Client-side caching's tracked keys and prefixes (see `tracking`).
    tracking: std::sync::Arc<crate::tracking::Tracking>,
    /// MONITOR: a write command's line is shown when it takes its keys' stripes (see
    /// `monitor::feed`), so writes to one key are shown in the order they took it.
    monitors: OnceLock<std::sync::Arc<crate::monitor::feed::Monitors>>,
    /// Eviction at maxmemory: settings, pool, counters (see `evict`).
    evictor: evict::Evictor,
    /// The replication stream: every record also goes here while replicas may need it (see
    /// `repl::feed`), pushed at the same place as the AOF record, under the same locks.
    repl: crate::repl::feed::Feed,
}

/// The stripe locks a write holds: one (the common case, no allocation) or several.
enum Guards<'a> {
    One(#[allow(dead_code)] StripeGuard<'a>),
    Many(#[allow(dead_code)] Vec<StripeGuard<'a>>),
    Released,
}

enum StripeGuard<'a> {
    Shared(#[allow(dead_code)] RwLockReadGuard<'a, ()>),
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'a, ()>),
}

/// Loom models only: records held back by a broken-protocol variant, as (db, argv).
#[cfg(feature = "loom")]
type Deferred = Vec<(usize, Vec<Vec<u8>>)>;

/// Held while a command writes: the stripe locks of its keys, the db it writes, and where the
/// sequence number of its last AOF record goes (the connection waits on it under appendfsync always).
pub struct WriteLock<'a> {
    ks: &'a Keyspace,
    db: usize,
    _guards: Guards<'a>,
    last_seq: &'a Cell<u64>,
    exclusive: bool,
    /// Loom models only: records held back by [`WriteLock::defer_log`] (a broken-protocol variant).
    #[cfg(feature = "loom")]
    deferred: std::cell::RefCell<Option<Deferred>>,
    /// Keys that may hold a list for blocked clients now: served before the stripes are released.
    serve: std::cell::RefCell<Vec<(usize, Bytes)>>,
}

impl Drop for WriteLock<'_> {
    fn drop(&mut self) {
        // The guards are released after this body: the blocked clients are served under them.
        if !self.serve.get_mut().is_empty() {
            self.serve_noted();
        }
    }
}

impl Keyspace {
    pub fn new(databases: usize, stripes: usize) -> Keyspace {
        // A stripe must cover whole parts of the map (see `map`): a power of two up to PARTS.
        let stripes = stripes.clamp(1, PARTS).next_power_of_two();
        Keyspace {
            maps: (0..2 * databases).map(|_| KeyMap::new()).collect(),
            spare: Mutex::new((databases..2 * databases).collect()),
            logical: (0..databases).map(AtomicUsize::new).collect(),
            stripes: (0..stripes).map(|_| CachePadded::new(RwLock::new(()))).collect(),
            tx_epoch: (0..stripes).map(|_| AtomicU64::new(0)).collect(),
            watch: Arc::new(WatchRegistry::new(stripes)),
            aof: OnceLock::new(),
            loading: AtomicBool::new(false),
            expired_keys: AtomicUsize::new(0),
            blocking: Default::default(),
            events: Default::default(),
            tracking: Default::default(),
            monitors: OnceLock::new(),
            evictor: Default::default(),
            repl: Default::default(),
        }
    }

    /// The replication feed (see `repl::feed`).
    pub fn repl_feed(&self) -> &crate::repl::feed::Feed {
        &self.repl
    }

    /// Client-side caching's tables: the write path tells it which keys changed.
    pub fn tracking(&self) -> &std::sync::Arc<crate::tracking::Tracking> {
        &self.tracking
    }

    /// Attach the MONITOR fan-out (once, when the server state is built).
    pub fn attach_monitors(&self, monitors: std::sync::Arc<crate::monitor::feed::Monitors>) {
        let _ = self.monitors.set(monitors);
    }

    /// Eviction at maxmemory (see `evict`).
    pub fn evictor(&self) -> &evict::Evictor {
        &self.evictor
    }

    /// The keyspace notifications' switchboard (the one `notify` every write path calls).
    pub fn events(&self) -> &crate::pubsub::notify::Events {
        &self.events
    }

    /// Attach the AOF once it is open (after loading). Until then nothing is logged.
    pub fn set_aof(&self, aof: Arc<Aof>) {
        let _ = self.aof.set(aof);
    }

    /// The registry of clients blocked on list keys.
    pub fn blocking(&self) -> &std::sync::Arc<blocking::Blocking> {
        &self.blocking
    }

    /// Whether this thread is running the commands of an EXEC (they must not block).
    pub fn in_exec(&self) -> bool {
        self.holds_here()
    }

    pub fn aof(&self) -> Option<&Arc<Aof>> {
        self.aof.get()
    }

    pub fn set_loading(&self, on: bool) {
        self.loading.store(on, Ordering::SeqCst);
    }

    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::SeqCst)
    }

    pub fn databases(&self) -> usize {
        self.logical.len()
    }

    /// Keys in physical map `physical` (to size the work of [`Keyspace::recycle`]).
    pub fn physical_len(&self, physical: usize) -> usize {
        self.maps[physical].len()
    }

    /// Clear a map that [`WriteLock::empty_db`] swapped out (no stripe held) and make it a spare.
    pub fn recycle(&self, physical: usize) {
        self.maps[physical].clear();
        crate::sync::lock(&self.spare).push_back(physical);
    }

    /// `repl-diskless-load swapdb`: one empty spare map per database, taken out of the spares, to
    /// load a primary's payload into while the databases go on being served (see
    /// [`WriteLock::swap_in_all`]); given back with [`Keyspace::recycle`]. None (nothing taken) when
    /// a flush is still clearing some of the spares.
    pub fn take_spares(&self) -> Option<Vec<usize>> {
        let mut spare = crate::sync::lock(&self.spare);
        if spare.len() < self.logical.len() {
            return None;
        }
        Some(spare.drain(..self.logical.len()).collect())
    }

    /// Physical map `physical` (one [`Keyspace::take_spares`] gave: no client sees it).
    pub fn spare_map(&self, physical: usize) -> &KeyMap {
        &self.maps[physical]
    }

    pub fn expired_keys(&self) -> usize {
        self.expired_keys.load(Ordering::Relaxed)
    }

    fn physical(&self, db: usize) -> usize {
        // Acquire: pairs with the Release stores of SWAPDB (made under every stripe).
        self.logical[db].load(Ordering::Acquire)
    }

    /// The map of logical database `db` (for lock-free reads).
    pub fn db(&self, db: usize) -> &KeyMap {
        &self.maps[self.physical(db)]
    }

    fn stripe_of(&self, key: &[u8]) -> usize {
        (hash_key(key) % self.stripes.len() as u64) as usize
    }

    /// Load what a pipelined batch on `keys` (the first key of each request) will touch in
    /// database `db`: the map's slots and blocks ([`KeyMap::prefetch`]) and each key's stripe
    /// lock, for writing (a write's lock acquisition was a miss on a line that other cores'
    /// writes take too: 3.6% of a P16 SET's CPU). A hint: it changes nothing.
    pub fn prefetch(&self, db: usize, keys: &[&[u8]]) {
        let n = self.stripes.len() as u64;
        self.db(db).prefetch(keys, |hash| {
            let stripe: &RwLock<()> = &self.stripes[(hash % n) as usize];
            block::prefetch_write((stripe as *const RwLock<()>).cast());
        });
    }

    /// Take stripe `i` exclusively. A stripe is held for one command (microseconds), except by an
    /// EXEC or a script, which hold theirs for their whole run (a script for as long as it loops):
    /// a wait that meets one of those (its epoch is odd) is made with this worker's other
    /// connections handed to another thread (`cmd::offload`), so that they, and a SCRIPT KILL
    /// among them, are not held behind the wait. Other waits block as before.
    #[inline]
    pub(crate) fn stripe_write(&self, i: usize) -> RwLockWriteGuard<'_, ()> {
        #[cfg(not(feature = "loom"))]
        match self.stripes[i].try_write() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => self.stripe_wait(i, |l| l.try_write().ok(), crate::sync::write),
        }
        #[cfg(feature = "loom")]
        crate::sync::write(&self.stripes[i])
    }

    /// Take stripe `i` shared; a wait behind an EXEC or a script as in [`Self::stripe_write`].
    #[inline]
    pub(crate) fn stripe_read(&self, i: usize) -> RwLockReadGuard<'_, ()> {
        #[cfg(not(feature = "loom"))]
        match self.stripes[i].try_read() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => self.stripe_wait(i, |l| l.try_read().ok(), crate::sync::read),
        }
        #[cfg(feature = "loom")]
        crate::sync::read(&self.stripes[i])
    }

    /// The contended side of [`Self::stripe_write`] / [`Self::stripe_read`]: spin a little (a
    /// command's hold ends in microseconds), then wait, off this worker when a hold keeps it.
    #[cfg(not(feature = "loom"))]
    #[cold]
    fn stripe_wait<'a, G>(
        &'a self,
        i: usize,
        try_take: impl Fn(&'a RwLock<()>) -> Option<G>,
        take: impl FnOnce(&'a RwLock<()>) -> G,
    ) -> G {
        let l: &'a RwLock<()> = &self.stripes[i];
        // A try every 8 pauses: each is a read-modify-write of the line the holder must write to
        // release it.
        for _ in 0..8 {
            for _ in 0..8 {
                std::hint::spin_loop();
            }
            if let Some(g) = try_take(l) {
                return g;
            }
        }
        // Relaxed: a hint only (a hold that starts after this load is waited for in place).
        if self.tx_epoch[i].load(Ordering::Relaxed) & 1 == 1 {
            crate::cmd::offload(usize::MAX, || take(l))
        } else {
            take(l)
        }
    }

    /// Lock the stripes of `keys` exclusively, for a write in database `db`.
    /// While this thread runs an EXEC, the stripes are already held: nothing is locked (see `tx`).
    pub fn write<'a>(&'a self, db: usize, keys: &[&[u8]], last_seq: &'a Cell<u64>) -> WriteLock<'a> {
        let w = self.write_keys(db, keys, last_seq);
        if self.blocking.group_readers_waiting() {
            // The write may delete a stream that XREADGROUP clients block on: look at its keys
            // when it is done (see `blocking::fail_group_readers`).
            for key in keys {
                w.serve_later(db, key);
            }
        }
        w
    }

    fn write_keys<'a>(&'a self, db: usize, keys: &[&[u8]], last_seq: &'a Cell<u64>) -> WriteLock<'a> {
        if let Some(w) = self.held_lock(db, Some(keys), last_seq) {
            return w;
        }
        let guards = if let [key] = keys {
            let i = self.stripe_of(key);
            if crate::sync::fault::on(crate::sync::fault::Fault::BlockCopyUnderShared) {
                Guards::One(StripeGuard::Shared(self.stripe_read(i)))
            } else {
                Guards::One(StripeGuard::Exclusive(self.stripe_write(i)))
            }
        } else {
            let mut idx: Vec<usize> = keys.iter().map(|k| self.stripe_of(k)).collect();
            idx.sort_unstable();
            idx.dedup();
            Guards::Many(idx.into_iter().map(|i| StripeGuard::Exclusive(self.stripe_write(i))).collect())
        };
        self.lock_with(db, guards, last_seq, true)
    }

    /// A write lock over `guards` (already taken) for database `db`.
    fn lock_with<'a>(
        &'a self,
        db: usize,
        guards: Guards<'a>,
        last_seq: &'a Cell<u64>,
        exclusive: bool,
    ) -> WriteLock<'a> {
        if exclusive
            && let Some(m) = self.monitors.get()
            && m.active()
        {
            // The stripes are held exclusively: show the write command running on this thread
            // now (an in-place write under a shared stripe is shown when it takes the key's cell
            // lock, which orders it: see `ValueCell::lock`).
            m.feed_pending();
        }
        WriteLock {
            ks: self,
            db,
            _guards: guards,
            last_seq,
            exclusive,
            #[cfg(feature = "loom")]
            deferred: Default::default(),
            serve: Default::default(),
        }
    }

    /// Lock the stripe of `key` shared: only for in-place mutations (see the module doc).
    /// Inside an EXEC it holds nothing and is exclusive (see `tx`).
    pub fn write_shared<'a>(&'a self, db: usize, key: &[u8], last_seq: &'a Cell<u64>) -> WriteLock<'a> {
        if let Some(w) = self.held_lock(db, Some(&[key]), last_seq) {
            return w;
        }
        let g = StripeGuard::Shared(self.stripe_read(self.stripe_of(key)));
        self.lock_with(db, Guards::One(g), last_seq, false)
    }

    /// Lock every stripe exclusively: no write is in progress anywhere while this is held.
    /// Inside an EXEC (which then holds every stripe) it holds nothing (see `tx`).
    pub fn write_all<'a>(&'a self, db: usize, last_seq: &'a Cell<u64>) -> WriteLock<'a> {
        let w = match self.held_lock(db, None, last_seq) {
            Some(w) => w,
            None => {
                let guards = Guards::Many(
                    (0..self.stripes.len()).map(|i| StripeGuard::Exclusive(self.stripe_write(i))).collect(),
                );
                self.lock_with(db, guards, last_seq, true)
            }
        };
        if self.blocking.group_readers_waiting() {
            // FLUSHDB, FLUSHALL, SWAPDB may delete the streams XREADGROUP clients block on.
            for (d, key) in self.blocking.group_reader_keys() {
                w.serve_later(d, &key);
            }
        }
        w
    }

    /// One active-expiry step: remove up to `budget` keys whose time has passed, looking at up to
    /// `max(budget, EXPIRE_EXAMINE_MIN)` keys with an expiry per database (see `KeyMap::due`).
    /// Returns how many.
    pub fn expire_cycle(&self, now_ms: u64, budget: usize) -> usize {
        // A replica waits for its primary's DELs (Redis expires nothing actively on a replica).
        if self.is_loading() || self.repl.is_replica() {
            return 0;
        }
        let seq = Cell::new(0);
        let mut removed = 0;
        for db in 0..self.logical.len() {
            if removed >= budget {
                break;
            }
            let due = self.db(db).due(now_ms, budget - removed, budget.max(EXPIRE_EXAMINE_MIN));
            for (key, at) in due {
                let w = self.write(db, &[&key], &seq);
                // Re-check under the lock: the key may have been deleted, re-set or SWAPDB'd meanwhile.
                let hit = crate::sync::fault::on(crate::sync::fault::Fault::ExpireNoRecheck)
                    || w.map().get(&key, |e| e.is_some_and(|e| e.expire_at_ms() == at && e.is_expired(now_ms)));
                if hit {
                    w.map().remove(&key);
                    // Redis's expiry propagates the DEL but counts no change.
                    w.log_n(&[b"DEL", &key], 0);
                    self.expired_keys.fetch_add(1, Ordering::Relaxed);
                    w.notify(crate::pubsub::notify::class::EXPIRED, "expired", &key);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Keys with an expiry, in every database (tests).
    pub fn expiry_hints(&self) -> usize {
        (0..self.logical.len()).map(|db| self.db(db).expires()).sum()
    }

    /// Count keys and keys with an expiry in `db` (INFO keyspace).
    pub fn key_counts(&self, db: usize) -> (usize, usize) {
        let map = self.db(db);
        (map.len(), map.expires())
    }
}

impl<'a> WriteLock<'a> {
    /// The database this write is in.
    pub fn db_index(&self) -> usize {
        self.db
    }

    /// The map of this write's database.
    pub fn map(&self) -> &'a KeyMap {
        self.ks.db(self.db)
    }

    /// The map of another database (MOVE, COPY ... DB); its keys' stripes must be held.
    pub fn map_of(&self, db: usize) -> &'a KeyMap {
        self.ks.db(db)
    }

    pub fn keyspace(&self) -> &'a Keyspace {
        self.ks
    }

    /// Look `key` up for writing: an expired entry is removed and `DEL` logged first (needs the
    /// exclusive stripe; under a shared stripe an expired entry is reported as absent and the caller
    /// must retry exclusively).
    pub fn lookup<R>(&mut self, key: &[u8], now_ms: u64, f: impl FnOnce(Option<EntryRef<'_>>) -> R) -> R {
        self.lookup_in(self.db, key, now_ms, f)
    }

    /// [`lookup`](Self::lookup) in another database.
    pub fn lookup_in<R>(&mut self, db: usize, key: &[u8], now_ms: u64, f: impl FnOnce(Option<EntryRef<'_>>) -> R) -> R {
        let map = self.ks.db(db);
        // One hash walk in the common case: `f` runs inside it unless the entry has expired or is
        // an emptied collection's dead cell (see `cell`).
        let mut f = Some(f);
        let live = map.get(key, |e| match e {
            Some(e) if e.is_expired(now_ms) => Err(true),
            Some(e) if e.is_dead() => Err(false),
            other => {
                if let Some(e) = other {
                    evict::touch(e);
                }
                Ok(f.take().map(|f| f(other)))
            }
        });
        match live {
            Ok(Some(r)) => return r,
            Ok(None) => unreachable!("f runs at most once"),
            // A dead cell: its emptying record already removes the key on replay.
            Err(false) if self.exclusive => {
                map.remove(key);
            }
            Err(false) => {}
            Err(true) => {
                if self.exclusive {
                    map.remove(key);
                    // Redis's expiry counts no change since the last save. A replica applying
                    // its primary's stream is the exception: Redis's replica never expires a key
                    // itself, so the primary's command (the DEL of the key its expiry removed,
                    // nearly always) finds the key and counts it.
                    let changes = u64::from(crate::repl::replica::applying());
                    self.log_in_n(db, &[b"DEL", key], changes);
                    self.ks.expired_keys.fetch_add(1, Ordering::Relaxed);
                    self.ks.events.notify(crate::pubsub::notify::class::EXPIRED, "expired", key, db);
                }
            }
        }
        // Gone: absent (under the exclusive stripe nothing can have re-created it meanwhile).
        f.take().map_or_else(|| unreachable!("f runs at most once"), |f| f(None))
    }

    /// Announce keyspace event `event` of `class` (a `pubsub::notify::class`) on `key` in this
    /// write's database: Redis's `notifyKeyspaceEvent`. Call it after the change, with the lock
    /// held, in the order Redis announces. One atomic load when notifications are off.
    #[inline]
    pub fn notify(&self, class: u32, event: &str, key: &[u8]) {
        self.ks.events.notify(class, event, key, self.db);
    }

    /// Push this write's record and announce it: keyspace event `event` of `class` on the record's
    /// key (`argv[1]`). The usual last line of a single-key write.
    pub fn log_notify(&self, argv: &[&[u8]], class: u32, event: &str) {
        self.log(argv);
        self.notify(class, event, argv[1]);
    }

    /// [`notify`](Self::notify) for a key of another database (MOVE, COPY ... DB).
    #[inline]
    pub fn notify_in(&self, db: usize, class: u32, event: &str, key: &[u8]) {
        self.ks.events.notify(class, event, key, db);
    }

    /// Whether this lock holds its stripes exclusively.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    /// Insert or replace `key` in this database, registering its expiry with the active cycle.
    pub fn insert(&self, key: Bytes, entry: Entry) {
        self.insert_in(self.db, key, entry)
    }

    /// [`insert`](Self::insert) for a key that was absent and whose `new` event the caller has
    /// announced already (a push that serves blocked clients announces `new` and itself before
    /// their pops, as Redis does).
    pub fn insert_announced(&self, key: Bytes, entry: Entry) {
        self.insert_with(self.db, key, entry, false)
    }

    /// [`insert`](Self::insert) into another database.
    pub fn insert_in(&self, db: usize, key: Bytes, entry: Entry) {
        self.insert_with(db, key, entry, true)
    }

    /// [`insert`](Self::insert) of a new `raw` string or collection at `key` only if the map
    /// holds nothing there (not even an expired or emptied entry, which [`lookup`](Self::lookup)
    /// must clear first): true when inserted (its `new` event announced). One walk of the key's
    /// bucket where a lookup then an insert make two: the create path of a write whose lock-free
    /// look found no key (SETBIT on a new key).
    pub fn insert_absent(&self, key: &[u8], entry: &Entry) -> bool {
        debug_assert!(self.exclusive, "an insert needs the exclusive stripe");
        let map = self.ks.db(self.db);
        if !map.insert_absent(key, entry) {
            return false;
        }
        use crate::pubsub::notify::class::NEW;
        if self.ks.events.wants(NEW) {
            self.ks.events.notify(NEW, "new", key, self.db);
        }
        if matches!(entry.value, Value::List(_) | Value::Zset(_) | Value::Stream(_)) {
            self.serve_later(self.db, key);
        }
        true
    }

    fn insert_with(&self, db: usize, key: Bytes, entry: Entry, announce_new: bool) {
        // The map stores its own copy of the key (see `key`): nothing keeps a connection's read
        // buffer alive. So does the expiry index, for keys with a TTL.
        let servable = matches!(entry.value, Value::List(_) | Value::Zset(_) | Value::Stream(_));
        use crate::pubsub::notify::class::NEW;
        let new = announce_new && self.ks.events.wants(NEW) && self.ks.db(db).get(&key, |e| e.is_none());
        self.ks.db(db).insert(&key, entry);
        if new {
            self.ks.events.notify(NEW, "new", &key, db);
        }
        if servable {
            // A new list or sorted set: serve the clients blocked on it once this write is logged
            // (see `blocking`).
            self.serve_later(db, &key);
        }
    }

    /// Set the expiry of the existing entry at `key` (0: persist); a block copy, under the
    /// exclusive stripe.
    pub fn set_expire(&self, key: &[u8], at_ms: u64) {
        self.map().set_expire(key, at_ms);
    }

    /// [`log`](Self::log), the record counting `n` changes since the last save (Redis's
    /// `server.dirty += n`) instead of one.
    pub fn log_n(&self, argv: &[&[u8]], n: u64) {
        crate::rdb::dirty::next_record_counts(n);
        self.log(argv);
    }

    /// [`log_in`](Self::log_in), the record counting `n` changes instead of one.
    pub fn log_in_n(&self, db: usize, argv: &[&[u8]], n: u64) -> u64 {
        crate::rdb::dirty::next_record_counts(n);
        self.log_in(db, argv)
    }

    /// [`log_notify`](Self::log_notify), the record counting `n` changes instead of one.
    pub fn log_notify_n(&self, argv: &[&[u8]], n: u64, class: u32, event: &str) {
        crate::rdb::dirty::next_record_counts(n);
        self.log_notify(argv, class, event);
    }

    /// Push this write's AOF record (in this write's database) while the stripe is held; with
    /// nobody to read it (see [`count_unread`](Self::count_unread)) only count the change.
    pub fn log(&self, argv: &[&[u8]]) {
        if !self.count_unread() {
            self.log_in(self.db, argv);
        }
    }

    /// What [`log`](Self::log) does when nothing would read the record, without the record: true
    /// (the write counted as a change since the last save) when no AOF, no replication stream, no
    /// WATCH and no tracking client exists, the keyspace is not loading and this thread holds no
    /// EXEC or script (whose block buffers the record); false, doing nothing, otherwise: then the
    /// caller builds the record and calls `log`. Lets a hot write skip building its argument list
    /// (`cmd::collection::log_command`). The AOF is fixed at startup and the replication stream
    /// starts under every stripe, which this write holds (shared at least), so neither appears
    /// between this check and the write's end; WATCH and tracking are read as `touch_record` reads
    /// them. `log` checks it itself; a caller that must build its record first checks it before.
    pub fn count_unread(&self) -> bool {
        let ks = self.ks;
        if !ks.watch.is_idle()
            || ks.tracking.is_armed()
            || ks.repl.is_active()
            || ks.aof.get().is_some_and(|a| a.enabled())
            || ks.is_loading()
            || ks.holds_here()
        {
            return false;
        }
        #[cfg(feature = "loom")]
        if self.deferred.borrow().is_some() {
            return false;
        }
        crate::rdb::dirty::record();
        true
    }

    /// Push this write's record, or (only when a loom model injects `fault`) release the stripes
    /// first and push it after: the broken protocol the models must catch.
    pub fn log_or_fault(mut self, fault: crate::sync::fault::Fault, argv: &[&[u8]]) {
        if crate::sync::fault::on(fault) {
            self._guards = Guards::Released;
            crate::sync::thread::yield_now();
        }
        self.log(argv);
    }

    /// Loom models only: hold this write's records back until [`WriteLock::flush_deferred`], so a
    /// broken-protocol variant can push them after releasing the lock that orders them.
    #[cfg(feature = "loom")]
    pub fn defer_log(&self) {
        *self.deferred.borrow_mut() = Some(Vec::new());
    }

    /// Loom models only: push the records held back since [`WriteLock::defer_log`].
    #[cfg(feature = "loom")]
    pub fn flush_deferred(&self) {
        let held = self.deferred.borrow_mut().take().unwrap_or_default();
        for (db, argv) in held {
            let argv: Vec<&[u8]> = argv.iter().map(|a| &a[..]).collect();
            self.log_in(db, &argv);
        }
    }

    /// Release the stripes early (fault injection only: the broken protocols loom models catch).
    pub fn release(&mut self) {
        self._guards = Guards::Released;
    }

    /// Push the records of ONE command that needs several (SORT ... STORE: `DEL dst`, `RPUSH dst
    /// ...`) as one `MULTI` ... `EXEC` block, so that a crash between them cannot leave half of the
    /// command in the file (the loader drops a torn block). Inside EXEC they join its block.
    pub fn log_all(&self, records: &[Vec<&[u8]>]) {
        self.log_block(self.db, records, None);
    }

    /// [`log_all`](Self::log_all), the block counting `n` changes since the last save in all
    /// (SORT ... STORE: the elements stored, or the deletion).
    pub fn log_all_n(&self, records: &[Vec<&[u8]>], n: u64) {
        self.log_block(self.db, records, Some(n));
    }

    /// [`log_all`](Self::log_all) in database `db`, for records collected as [`Records`]
    /// (XREADGROUP, XCLAIM, XAUTOCLAIM, a served blocked group reader: one `XCLAIM` per entry plus
    /// `XGROUP SETID`, as Redis propagates them inside one `MULTI`/`EXEC`). Returns the sequence
    /// number of the block (0 when nothing was pushed).
    /// The block counts [`Records::changes`] (pushed or not).
    pub fn log_records(&self, db: usize, records: &Records) -> u64 {
        let lists = records.lists();
        if lists.is_empty() {
            crate::rdb::dirty::add(records.changes);
            return 0;
        }
        self.log_block(db, &lists, Some(records.changes))
    }

    /// An empty [`Records`] for this write's records.
    pub fn records(&self) -> Records {
        let on = self.ks.aof.get().is_none_or(|a| a.enabled())
            || !self.ks.watch.is_idle()
            || self.ks.holds_here()
            || self.ks.repl.is_active();
        Records { on, ..Default::default() }
    }

    /// Push `records` as one block; with `weight`, the block counts that many changes since the
    /// last save (on its first record), else one per record.
    fn log_block(&self, db: usize, records: &[Vec<&[u8]>], weight: Option<u64>) -> u64 {
        let weigh = |i: usize| {
            if let Some(n) = weight {
                crate::rdb::dirty::next_record_counts(if i == 0 { n } else { 0 });
            }
        };
        if records.len() < 2 || cfg!(feature = "loom") {
            return records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    weigh(i);
                    self.log_in(db, r)
                })
                .max()
                .unwrap_or(0);
        }
        for (i, r) in records.iter().enumerate() {
            weigh(i);
            self.ks.touch_record(db, r);
        }
        if self.ks.is_loading() || self.ks.buffer_record(db, &records[0]) {
            for r in &records[1..] {
                self.ks.buffer_record(db, r);
            }
            return 0;
        }
        // Encoded once for the AOF and the replicas alike.
        let Some((db, bytes)) = crate::aof::encode_block(records.iter().map(|r| (db, &r[..]))) else { return 0 };
        if self.ks.repl.is_active() {
            self.ks.repl.push_encoded(db, bytes.clone());
        }
        let Some(aof) = self.ks.aof.get() else { return 0 };
        let seq = aof.append_encoded(db, bytes);
        if seq > self.last_seq.get() {
            self.last_seq.set(seq);
        }
        seq
    }

    pub fn log_in(&self, db: usize, argv: &[&[u8]]) -> u64 {
        self.ks.touch_record(db, argv);
        if self.ks.is_loading() || self.ks.buffer_record(db, argv) {
            return 0;
        }
        #[cfg(feature = "loom")]
        if let Some(held) = self.deferred.borrow_mut().as_mut() {
            held.push((db, argv.iter().map(|a| a.to_vec()).collect()));
            return 0;
        }
        if self.ks.repl.is_active() {
            self.ks.repl.push(db, argv);
        }
        let Some(aof) = self.ks.aof.get() else { return 0 };
        let seq = aof.append(db, argv);
        if seq > self.last_seq.get() {
            self.last_seq.set(seq);
        }
        seq
    }

    /// Empty database `db` (FLUSHDB, FLUSHALL; the caller holds every stripe) in O(1): an empty
    /// spare map takes its place, and the old map is returned, to be cleared by
    /// [`Keyspace::recycle`] once the stripes are released, so that emptying a million keys does
    /// not hold every writer. Without a spare (every one is being cleared by a concurrent flush),
    /// the map is cleared in place and None is returned.
    pub fn empty_db(&self, db: usize) -> Option<usize> {
        self.ks.touch_flush(db);
        let old = self.ks.physical(db);
        let Some(spare) = crate::sync::lock(&self.ks.spare).pop_front() else {
            self.ks.maps[old].clear();
            return None;
        };
        // Release: pairs with the Acquire in `physical` (as SWAPDB's stores).
        self.ks.logical[db].store(spare, Ordering::Release);
        Some(old)
    }

    /// Put `maps` (from [`Keyspace::take_spares`], one per database) in place of every database at
    /// once, as Redis's `swapMainDbWithTempDb` at the end of a `repl-diskless-load swapdb` load;
    /// the caller holds every stripe, so no client sees old and new data mixed. WATCHers of a key
    /// in either version are dirtied, the clients blocked on a key are served if it now holds what
    /// they wait for, and every tracking client drops its cache. Returns the old maps, to be given
    /// to [`Keyspace::recycle`] once the stripes are released.
    pub fn swap_in_all(&self, maps: &[usize]) -> Vec<usize> {
        assert_eq!(maps.len(), self.ks.logical.len());
        // Every stripe's epoch odd while the databases change, as an EXEC's hold (see `tx`): a
        // multi-key read racing the swap reads again after it, and a read of any key after a
        // client saw one new database waits for the whole swap. Relaxed stores: only the holder of
        // every stripe changes them; the fence publishes them before the first database changes.
        let epochs = !crate::sync::fault::on(crate::sync::fault::Fault::SwapWithoutEpochs);
        if epochs {
            for e in self.ks.tx_epoch.iter() {
                e.store(e.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
            crate::sync::fence(Ordering::Release);
        }
        let exists = |m: &KeyMap, k: &[u8]| m.get(k, |e| e.is_some());
        let mut old = Vec::with_capacity(maps.len());
        for (db, &new) in maps.iter().enumerate() {
            let (cur, next) = (self.ks.db(db), &self.ks.maps[new]);
            self.ks.watch.touch_db(db, |k| exists(cur, k) || exists(next, k), |k| !exists(next, k));
            old.push(self.ks.physical(db));
            // Release: pairs with the Acquire in `physical` (as SWAPDB's stores).
            self.ks.logical[db].store(new, Ordering::Release);
            for key in self.ks.blocking.keys_of(db) {
                self.serve_later(db, &key);
            }
        }
        self.ks.tracking.flushed();
        if epochs {
            for e in self.ks.tx_epoch.iter() {
                // Release: a reader that loads the even epoch sees every database swapped.
                e.store(e.load(Ordering::Relaxed) + 1, Ordering::Release);
            }
        }
        old
    }

    /// Swap two databases (SWAPDB); the caller holds every stripe.
    pub fn swap_dbs(&self, a: usize, b: usize) {
        self.ks.touch_swap(a, b);
        let pa = self.ks.physical(a);
        let pb = self.ks.physical(b);
        // Release: pairs with the Acquire in `physical`.
        self.ks.logical[a].store(pb, Ordering::Release);
        self.ks.logical[b].store(pa, Ordering::Release);
        // Every key of both dbs may now hold a list or sorted set: serve their blocked clients.
        for db in [a, b] {
            for key in self.ks.blocking.keys_of(db) {
                self.serve_later(db, &key);
            }
        }
    }
}

/// The records of ONE command that may need several, collected while it runs and pushed as one
/// block by [`WriteLock::log_records`] (a crash cannot leave half of them in the file).
/// Made by [`WriteLock::records`]: when no record would go anywhere (no AOF, no EXEC buffering
/// them, nobody WATCHing) it keeps none, and the command pays nothing for them.
#[derive(Debug, Default)]
pub struct Records {
    on: bool,
    /// The records' arguments, one after another (one buffer, not an allocation per argument).
    data: Vec<u8>,
    /// Where each argument ends in `data`.
    ends: Vec<usize>,
    /// Where each record's arguments end in `ends`.
    recs: Vec<usize>,
    /// The changes since the last save the block counts: one per record pushed (kept or not),
    /// plus what [`count`](Self::count) added.
    changes: u64,
}

impl Records {
    /// Add a record. Returns a nonzero stand-in for its sequence number: a [`stream::LogFn`]
    /// caller only learns that something was logged; the real number is the block's, known once
    /// it is pushed.
    pub fn push(&mut self, argv: &[&[u8]]) -> u64 {
        self.changes += 1;
        if self.on {
            for a in argv {
                self.data.extend_from_slice(a);
                self.ends.push(self.data.len());
            }
            self.recs.push(self.ends.len());
        }
        1
    }

    /// Count `n` more changes since the last save for this block (XCLAIM's consumer created).
    pub fn count(&mut self, n: u64) {
        self.changes += n;
    }

    /// Count `n` changes for this block, whatever its records (Redis's XREADGROUP counts one per
    /// stream it served and one per consumer it created, not its entries' records).
    pub fn set_changes(&mut self, n: u64) {
        self.changes = n;
    }

    /// The records, each as its argument slices.
    fn lists(&self) -> Vec<Vec<&[u8]>> {
        let (mut arg, mut at) = (0, 0);
        self.recs
            .iter()
            .map(|&rec_end| {
                let argv = self.ends[arg..rec_end]
                    .iter()
                    .map(|&end| {
                        let a = &self.data[at..end];
                        at = end;
                        a
                    })
                    .collect();
                arg = rec_end;
                argv
            })
            .collect()
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::Records;

    #[test]
    fn records_give_back_each_record_as_pushed() {
        let mut r = Records { on: true, ..Default::default() };
        r.push(&[b"XCLAIM", b"s", b"", b"0-1"]);
        r.push(&[b"XGROUP", b"SETID", b"s", b"g", b"0-1"]);
        r.push(&[b""]);
        let want: Vec<Vec<&[u8]>> =
            vec![vec![b"XCLAIM", b"s", b"", b"0-1"], vec![b"XGROUP", b"SETID", b"s", b"g", b"0-1"], vec![b""]];
        assert_eq!(r.lists(), want);
        let mut off = Records::default();
        off.push(&[b"DEL", b"k"]);
        assert!(off.lists().is_empty());
    }
}
