//! What the keyspace does for MULTI/EXEC/WATCH: holding a transaction's stripes while its commands
//! run ("held mode"), collecting its AOF records into one block, letting lock-free readers see a
//! transaction all or nothing, and the WATCH entry points. Mirrors the keyspace side of Redis's
//! `multi.c`.
//!
//! # Held mode
//! EXEC computes the keys of every queued command, takes their stripes exclusively once (sorted, as
//! every multi-key write does; all stripes when a command works on whole databases) with
//! [`Keyspace::hold`], and runs the commands through their normal handlers. `std`'s `RwLock` is not
//! reentrant, so while a [`TxHold`] is alive on a thread, every `Keyspace::write`, `write_shared` and
//! `write_all` made on that thread returns a lock that holds nothing (it is exclusive: the stripes
//! are already held). A thread-local rather than a flag in the handler's context, so that handlers
//! that lock through the keyspace directly (COPY, MOVE) are covered too. EXEC never awaits, so the
//! hold never moves to another task. Records logged in held mode are buffered, and
//! [`TxHold::finish`] pushes them as ONE `MULTI` ... `EXEC` queue item, still under the stripes, so
//! no other record can land inside the block; a transaction that wrote nothing logs nothing.
//!
//! # What "atomic" means for readers (reads take no lock)
//! Writers cannot interleave: every write takes its key's stripe, and EXEC holds them all. Readers
//! are lock-free, so each stripe has an epoch, odd while an EXEC holds it:
//! - `hold` makes its stripes' epochs odd, then a Release fence, then the commands run; dropping the
//!   hold makes them even again (Release) before it releases the stripes.
//! - A read command with keys ([`Keyspace::read_consistent`]) issues an Acquire fence and loads its
//!   stripes' epochs. One key: if odd, it waits for the stripe (shared) and reads after the EXEC.
//!   Several keys: if all even it reads, then fence(Acquire) and reloads the epochs (a seqlock); if
//!   one was odd or one changed, it reads again holding its stripes shared.
//!
//! So once a client has seen any write of a transaction (by a read of one of its keys), every later
//! read of a key of that transaction, by it or by a command it sends afterwards, sees the whole
//! transaction (the fence pair orders the epoch store before the write it saw), and a multi-key read
//! (MGET, EXISTS) sees all of a transaction's writes to its keys or none. Reads without keys (KEYS,
//! SCAN, DBSIZE, RANDOMKEY) stay lock-free and may observe a transaction half-applied.

use std::cell::{Cell, RefCell};

use bytes::Bytes;
use smallvec::SmallVec;

use super::watch::WatchSet;
use super::{Guards, Keyspace, WriteLock};
use crate::sync::fault::{self, Fault};
use crate::sync::{Arc, Ordering, RwLockWriteGuard, fence};

/// The transaction held by this thread: which keyspace, which stripes, and its buffered records.
struct Held {
    ks: usize,
    /// Sorted stripe indexes, for `held_lock`'s debug check only (empty in release builds: one
    /// allocation less per EXEC and per script run).
    stripes: Vec<usize>,
    records: Vec<(usize, Vec<Bytes>)>,
    /// Records for the replication stream only (PUBLISH), each with the number of `records`
    /// before it: they go in the block at their place, and never to the AOF.
    repl_only: Vec<(usize, usize, Vec<Bytes>)>,
    /// Keys whose blocked clients are served once the block is logged (see `blocking`).
    serve: Vec<(usize, Bytes)>,
}

#[cfg(not(feature = "loom"))]
std::thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

// loom runs every modeled thread on the test's own OS thread: a std thread-local would be one hold
// shared by all of them (another modeled thread's write would find itself "in held mode", lock
// nothing and buffer its record into this one). loom's own thread-locals are per modeled thread.
#[cfg(feature = "loom")]
loom::thread_local! {
    static HELD: RefCell<Option<Held>> = RefCell::new(None);
}

std::thread_local! {
    /// The records vector of this thread's last hold, emptied, for its next (no allocation per
    /// EXEC or script run once it has grown). Only ever an empty vector: any interleaving of
    /// loom's modeled threads on one OS thread is harmless.
    static SPARE_RECORDS: Cell<Vec<(usize, Vec<Bytes>)>> = const { Cell::new(Vec::new()) };
}

fn addr(ks: &Keyspace) -> usize {
    ks as *const Keyspace as usize
}

/// The stripes of a running EXEC, held exclusively until dropped (see the module doc).
pub struct TxHold<'a> {
    ks: &'a Keyspace,
    /// Sorted. In place up to a few (a script's or a small EXEC's keys: no allocation per run).
    stripes: SmallVec<[usize; 4]>,
    _guards: SmallVec<[RwLockWriteGuard<'a, ()>; 4]>,
}

/// Why [`TxHold::extend`] could not take a stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WouldBlock;

impl Keyspace {
    /// Take the stripes of `keys` (`None`: every stripe) exclusively for an EXEC and enter held mode
    /// on this thread.
    pub fn hold(&self, keys: Option<&[&[u8]]>) -> TxHold<'_> {
        let mut stripes: SmallVec<[usize; 4]> = match keys {
            None => (0..self.stripes.len()).collect(),
            Some(keys) => keys.iter().map(|k| self.stripe_of(k)).collect(),
        };
        stripes.sort_unstable();
        stripes.dedup();
        let guards = stripes.iter().map(|&i| self.stripe_write(i)).collect();
        for &i in &stripes {
            // Relaxed: only the exclusive holder of the stripe changes its epoch; the fence below
            // publishes it to readers that see any write made after it.
            let e = &self.tx_epoch[i];
            e.store(e.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        fence(Ordering::Release);
        HELD.with(|h| {
            let checked = if cfg!(debug_assertions) { stripes.to_vec() } else { Vec::new() };
            *h.borrow_mut() = Some(Held {
                ks: addr(self),
                stripes: checked,
                records: SPARE_RECORDS.with(|s| s.take()),
                repl_only: Vec::new(),
                serve: Vec::new(),
            })
        });
        TxHold { ks: self, stripes, _guards: guards }
    }

    /// Held mode: a lock that holds nothing, when this thread runs an EXEC on this keyspace.
    pub(super) fn held_lock<'a>(
        &'a self,
        db: usize,
        keys: Option<&[&[u8]]>,
        last_seq: &'a Cell<u64>,
    ) -> Option<WriteLock<'a>> {
        let held = HELD.with(|h| {
            h.borrow().as_ref().filter(|h| h.ks == addr(self)).map(|h| {
                debug_assert!(
                    keys.is_none_or(|keys| keys.iter().all(|k| h.stripes.binary_search(&self.stripe_of(k)).is_ok())),
                    "a command inside EXEC wrote a key whose stripe EXEC does not hold (table key positions?)"
                );
            })
        });
        held.map(|()| self.lock_with(db, Guards::Released, last_seq, true))
    }

    /// Held mode: buffer the record instead of pushing it. False when this thread holds no EXEC.
    ///
    /// With no AOF and no replication stream (both fixed while any stripe is held: the stream
    /// starts under every stripe, the AOF at startup) nobody will read the record: an empty one
    /// stands for it (`wrote` still sees it; `finish` pushes nothing then), without copying it.
    pub(super) fn buffer_record(&self, db: usize, argv: &[&[u8]]) -> bool {
        HELD.with(|h| match h.borrow_mut().as_mut().filter(|h| h.ks == addr(self)) {
            Some(h) => {
                let read = self.aof().is_some_and(|a| a.enabled()) || self.repl_feed().is_active();
                let argv = if read { argv.iter().map(|a| Bytes::copy_from_slice(a)).collect() } else { Vec::new() };
                h.records.push((db, argv));
                true
            }
            None => false,
        })
    }

    /// Propagate `argv` to the replicas only (not the AOF), as Redis's
    /// `forceCommandPropagation(c, PROPAGATE_REPL)` does for PUBLISH: inside an EXEC or a script
    /// it takes its place in the transaction's block, elsewhere it is pushed now. Nothing while
    /// no replica ever connected, nor on a replica (its primary's bytes are its stream).
    pub fn propagate_repl(&self, db: usize, argv: &[&[u8]]) {
        let feed = self.repl_feed();
        if !feed.is_active() || feed.is_replica() {
            return;
        }
        let buffered = HELD.with(|h| match h.borrow_mut().as_mut().filter(|h| h.ks == addr(self)) {
            Some(h) => {
                let at = h.records.len();
                h.repl_only.push((at, db, argv.iter().map(|a| Bytes::copy_from_slice(a)).collect()));
                true
            }
            None => false,
        });
        if !buffered {
            feed.push(db, argv);
        }
    }

    /// Held mode: note `key` of `db` to serve its blocked clients after the transaction (as Redis
    /// serves them after EXEC). False when this thread holds no EXEC.
    pub(super) fn defer_serve(&self, db: usize, key: &[u8]) -> bool {
        HELD.with(|h| match h.borrow_mut().as_mut().filter(|h| h.ks == addr(self)) {
            Some(h) => {
                if !h.serve.iter().any(|(d, k)| *d == db && k == key) {
                    h.serve.push((db, Bytes::copy_from_slice(key)));
                }
                true
            }
            None => false,
        })
    }

    /// Whether this thread runs an EXEC or a script that holds stripes of this keyspace.
    pub fn holds_here(&self) -> bool {
        HELD.with(|h| h.borrow().as_ref().is_some_and(|h| h.ks == addr(self)))
    }

    /// Run a read command `f` over `keys` so that it sees each transaction on them entirely or not
    /// at all (module doc). `f` may run twice when a transaction raced with it.
    pub fn read_consistent<R>(&self, keys: &[&[u8]], mut f: impl FnMut() -> R) -> R {
        if keys.is_empty() || self.is_loading() || self.holds_here() {
            return f();
        }
        // Acquire: pairs with the Release fence in `hold` (through any write this client has seen).
        fence(Ordering::Acquire);
        if let [key] = keys {
            let i = self.stripe_of(key);
            if self.tx_epoch[i].load(Ordering::Acquire) & 1 == 1 {
                drop(self.stripe_read(i));
            }
            return f();
        }
        let mut idx: Vec<usize> = keys.iter().map(|k| self.stripe_of(k)).collect();
        idx.sort_unstable();
        idx.dedup();
        // Acquire: pairs with the Release store that ends a hold.
        let before: Vec<u64> = idx.iter().map(|&i| self.tx_epoch[i].load(Ordering::Acquire)).collect();
        if before.iter().all(|e| e & 1 == 0) {
            let r = f();
            fence(Ordering::Acquire);
            if fault::on(Fault::ReadSkipEpochRecheck)
                || idx.iter().zip(&before).all(|(&i, &b)| self.tx_epoch[i].load(Ordering::Relaxed) == b)
            {
                return r;
            }
        }
        let _guards: Vec<_> = idx.iter().map(|&i| self.stripe_read(i)).collect();
        f()
    }

    /// WATCH `keys` in `db` for `client`, into `set` (created on first use).
    pub fn watch(&self, set: &mut Option<WatchSet>, client: u64, db: usize, keys: &[&[u8]], now_ms: u64) {
        let seq = Cell::new(0);
        let w = self.write(db, keys, &seq);
        let set = set.get_or_insert_with(|| WatchSet::new(Arc::clone(&self.watch), self.stripes.len(), client));
        for key in keys {
            let expired = w.map().get(key, |e| e.is_some_and(|e| e.is_expired(now_ms)));
            if self.watch.add(self.stripe_of(key), db, key, set.client(), set.dirty_flag(), expired) {
                set.push(db, key);
            }
        }
    }

    /// Whether no key is watched by anyone (tests).
    #[doc(hidden)]
    pub fn watch_registry_is_idle(&self) -> bool {
        self.watch.is_idle()
    }

    /// Whether EXEC must fail for `set`: a watched key changed, or expired since it was watched.
    /// Call it holding the transaction's stripes.
    pub fn watch_failed(&self, set: &WatchSet, now_ms: u64) -> bool {
        set.is_dirty()
            || set.keys().iter().any(|(db, key)| {
                !self.watch.watched_expired(self.stripe_of(key), *db, key, set.client())
                    && self.db(*db).get(key, |e| e.is_some_and(|e| e.is_expired(now_ms)))
            })
    }

    /// A write's record: dirty the watchers of its keys (see `watch`) and invalidate the clients
    /// that may cache them (see `tracking`). Redis's `signalModifiedKey`. While nobody watches or
    /// tracks anything this is two relaxed loads.
    pub(super) fn touch_record(&self, db: usize, argv: &[&[u8]]) {
        // Every effective write passes here once per record: the changes since the last save
        // (what its command declared, else one).
        crate::rdb::dirty::record();
        let watch = !self.watch.is_idle();
        let track = self.tracking.is_armed();
        if !(watch || track) || group_bookkeeping(argv) {
            return;
        }
        crate::cmd::record_keys(argv, db, |kdb, key| {
            if kdb < self.databases() {
                if watch {
                    self.watch.touch(self.stripe_of(key), kdb, key, || self.db(kdb).get(key, |e| e.is_some()));
                }
                if track {
                    self.tracking.key_modified(key);
                }
            }
        });
    }

    /// A tracking client's read of `keys` (by name: tracking ignores the database): remembered
    /// while the keys' stripes are held exclusively for a moment, so that every write of them
    /// either happened before (the read sees it) or sees the entry (see `tracking`). Inside an
    /// EXEC or a script the transaction holds them already.
    pub fn track_reads(&self, id: u64, keys: &[&[u8]]) {
        if keys.is_empty() {
            return;
        }
        if self.holds_here() || self.is_loading() {
            self.tracking.remember(id, keys.iter().copied());
            return;
        }
        let mut idx: Vec<usize> = keys.iter().map(|k| self.stripe_of(k)).collect();
        idx.sort_unstable();
        idx.dedup();
        let _guards: Vec<_> = idx.iter().map(|&i| self.stripe_write(i)).collect();
        self.tracking.remember(id, keys.iter().copied());
    }

    /// FLUSHDB/FLUSHALL of `db` is about to happen (every stripe held).
    pub(super) fn touch_flush(&self, db: usize) {
        let map = self.db(db);
        self.watch.touch_db(db, |k| map.get(k, |e| e.is_some()), |_| true);
    }

    /// SWAPDB `a` `b` is about to happen (every stripe held).
    pub(super) fn touch_swap(&self, a: usize, b: usize) {
        let (ma, mb) = (self.db(a), self.db(b));
        let exists = |m: &super::KeyMap, k: &[u8]| m.get(k, |e| e.is_some());
        self.watch.touch_db(a, |k| exists(ma, k) || exists(mb, k), |k| !exists(mb, k));
        self.watch.touch_db(b, |k| exists(mb, k) || exists(ma, k), |k| !exists(ma, k));
    }
}

impl TxHold<'_> {
    /// Whether the stripes of `keys` (`None`: every stripe) are all held.
    pub fn covers(&self, keys: Option<&[&[u8]]>) -> bool {
        match keys {
            None => self.stripes.len() == self.ks.stripes.len(),
            Some(keys) => keys.iter().all(|k| self.stripes.binary_search(&self.ks.stripe_of(k)).is_ok()),
        }
    }

    /// Take the stripes of `keys` (`None`: every stripe) that this hold lacks, for a script that
    /// touches a key it did not declare (see `script::run` for the whole rule).
    ///
    /// Deadlock freedom: every other writer takes its stripes in ascending order and only ever waits
    /// for a stripe above all those it holds. So does this: a missing stripe above every stripe held
    /// is waited for (ascending, as everyone); one below is only tried (`try_write`), `tries` times
    /// with a yield between. On a miss it returns [`WouldBlock`], keeping what it took (released
    /// with the hold): the caller aborts (nothing written yet) or fails the command.
    pub fn extend(&mut self, keys: Option<&[&[u8]]>, tries: usize) -> Result<(), WouldBlock> {
        let mut want: Vec<usize> = match keys {
            None => (0..self.ks.stripes.len()).collect(),
            Some(keys) => keys.iter().map(|k| self.ks.stripe_of(k)).collect(),
        };
        want.sort_unstable();
        want.dedup();
        want.retain(|i| self.stripes.binary_search(i).is_err());
        if fault::on(Fault::ScriptSkipsUndeclaredStripe) || fault::on(Fault::ScriptWithoutStripes) {
            want.clear();
        }
        for i in want {
            let above = self.stripes.last().is_none_or(|&max| i > max);
            let guard = if above {
                Some(self.ks.stripe_write(i))
            } else {
                let mut got = None;
                for t in 0..tries.max(1) {
                    if let Ok(g) = self.ks.stripes[i].try_write() {
                        got = Some(g);
                        break;
                    }
                    if t + 1 < tries {
                        crate::sync::thread::yield_now();
                    }
                }
                got
            };
            let Some(guard) = guard else { return Err(WouldBlock) };
            let e = &self.ks.tx_epoch[i];
            e.store(e.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            fence(Ordering::Release);
            let at = self.stripes.partition_point(|&s| s < i);
            self.stripes.insert(at, i);
            self._guards.push(guard);
            HELD.with(|h| {
                if let Some(h) = h.borrow_mut().as_mut()
                    && cfg!(debug_assertions)
                {
                    let at = h.stripes.partition_point(|&s| s < i);
                    h.stripes.insert(at, i);
                }
            });
        }
        Ok(())
    }

    /// Whether the transaction has buffered any record (it changed the keyspace).
    pub fn wrote(&self) -> bool {
        HELD.with(|h| h.borrow().as_ref().is_some_and(|h| !h.records.is_empty()))
    }

    /// Drop the buffered records unlogged (a script stopped by SHUTDOWN NOSAVE: the server exits
    /// without persisting, and a half script must not reach the file).
    pub fn discard_records(&self) {
        HELD.with(|h| {
            if let Some(h) = h.borrow_mut().as_mut() {
                h.records.clear();
            }
        });
    }

    /// [`finish`](Self::finish) for a script: its records are logged as they are when there is
    /// one, as one `MULTI` ... `EXEC` block when there are more (Redis 7.0's effects replication).
    pub fn finish_script(self, last_seq: &Cell<u64>) {
        let single = HELD.with(|h| {
            let mut h = h.borrow_mut();
            let h = h.as_mut()?;
            if h.records.len() == 1 && h.repl_only.is_empty() { h.records.pop() } else { None }
        });
        if let Some((db, argv)) = single
            && !self.ks.is_loading()
        {
            let argv: Vec<&[u8]> = argv.iter().map(|a| &a[..]).collect();
            if self.ks.repl_feed().is_active() {
                self.ks.repl_feed().push(db, &argv);
            }
            if let Some(aof) = self.ks.aof() {
                let seq = aof.append(db, &argv);
                if seq > last_seq.get() {
                    last_seq.set(seq);
                }
            }
        }
        self.finish(last_seq);
    }

    /// Push the transaction's buffered records as one `MULTI` ... `EXEC` block (nothing when it
    /// wrote nothing) while the stripes are still held; its seq goes to `last_seq`. Then serve the
    /// clients blocked on lists it filled, still under the stripes (their pops follow the block).
    pub fn finish(self, last_seq: &Cell<u64>) {
        let (records, repl_only, serve) =
            HELD.with(|h| h.borrow_mut().take().map(|h| (h.records, h.repl_only, h.serve))).unwrap_or_default();
        let block =
            |records: &[(usize, Vec<Bytes>)]| crate::aof::encode_block(records.iter().map(|(db, a)| (*db, &a[..])));
        // The AOF's block, when the replicas get the same one (no replication-only records).
        let mut shared = None;
        if !self.ks.is_loading() && self.ks.repl_feed().is_active() {
            if repl_only.is_empty() {
                shared = block(&records);
                if let Some((db, bytes)) = &shared {
                    self.ks.repl_feed().push_encoded(*db, bytes.clone());
                }
            } else {
                let stream = with_repl_only(&records, repl_only);
                if let [(db, argv)] = &stream[..] {
                    // One command alone needs no MULTI (Redis's `propagatePendingCommands`).
                    let argv: Vec<&[u8]> = argv.iter().map(|a| &a[..]).collect();
                    self.ks.repl_feed().push(*db, &argv);
                } else if let Some((db, bytes)) = block(&stream) {
                    self.ks.repl_feed().push_encoded(db, bytes);
                }
            }
        }
        if !self.ks.is_loading()
            && let Some(aof) = self.ks.aof().filter(|a| a.enabled())
            && let Some((db, bytes)) = shared.or_else(|| block(&records))
        {
            let seq = aof.append_encoded(db, bytes);
            if seq > last_seq.get() {
                last_seq.set(seq);
            }
        }
        let mut records = records;
        records.clear();
        SPARE_RECORDS.with(|s| s.set(records));
        if !serve.is_empty() {
            // Held mode is over (HELD taken): these pops are logged as ordinary records.
            let w = self.ks.lock_with(0, Guards::Released, last_seq, true);
            for (db, key) in serve {
                w.serve_key(db, &key);
            }
        }
    }
}

/// The replication stream of a transaction: its `records` with the replication-only ones put
/// back at their places.
fn with_repl_only(
    records: &[(usize, Vec<Bytes>)],
    repl_only: Vec<(usize, usize, Vec<Bytes>)>,
) -> Vec<(usize, Vec<Bytes>)> {
    let mut out = Vec::with_capacity(records.len() + repl_only.len());
    let mut extra = repl_only.into_iter().peekable();
    for (i, r) in records.iter().enumerate() {
        while let Some((_, db, argv)) = extra.next_if(|(at, _, _)| *at <= i) {
            out.push((db, argv));
        }
        out.push(r.clone());
    }
    out.extend(extra.map(|(_, db, argv)| (db, argv)));
    out
}

impl Drop for TxHold<'_> {
    fn drop(&mut self) {
        HELD.with(|h| *h.borrow_mut() = None);
        for &i in &self.stripes {
            // Release: a reader that loads the even epoch sees every write of the transaction.
            let e = &self.ks.tx_epoch[i];
            e.store(e.load(Ordering::Relaxed) + 1, Ordering::Release);
        }
        // The guards are released after this body.
    }
}

/// Whether `argv` is a record of stream consumer-group bookkeeping, which Redis 7.0.15 does not
/// signal to WATCH (no `signalModifiedKey`): XGROUP CREATE (without MKSTREAM), SETID, DESTROY,
/// CREATECONSUMER, DELCONSUMER, and XACK, XCLAIM, XAUTOCLAIM, XSETID (XREADGROUP logs XCLAIM and
/// XGROUP SETID). Checked against redis-server 7.0.15 with a WATCHing client on another connection.
fn group_bookkeeping(argv: &[&[u8]]) -> bool {
    let Some(name) = argv.first() else { return false };
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    if is("xgroup") {
        // CREATE ... MKSTREAM may have created the key: that one is a change WATCH sees.
        return !argv.iter().skip(5).any(|a| a.eq_ignore_ascii_case(b"mkstream"));
    }
    is("xack") || is("xclaim") || is("xautoclaim") || is("xsetid")
}
