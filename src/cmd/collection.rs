//! How every collection command (lists, hashes, sets) reaches its value: the one locking protocol
//! of `db` (see its module doc and `db::cell`), so each `t_<type>` module only says what it does to
//! the items and which record it logs. Mirrors Redis's `db.c` `lookupKeyRead`/`lookupKeyWrite` +
//! `checkType` + `dbAdd`/`dbDelete`.
//!
//! # The protocol
//!
//! * Writes on a live collection ([`write()`]): the key's stripe shared plus the cell lock; the
//!   handler logs its record while the cell lock is held, so same-key records are in apply order.
//!   A cell found `dead` (emptied and removed after we looked it up) sends us round again.
//! * Writes that find the key missing and may create it, or find it expired: the stripe exclusive
//!   ([`WriteLock::lookup`] deletes an expired key and logs `DEL` first); nothing else can create
//!   the key meanwhile, so the insert ([`create`]) cannot race another.
//! * A write that leaves the collection empty removes the key and marks the cell dead, under both
//!   locks ([`bury_if_empty`]), after logging its record: replay removes the key the same way.
//! * Multi-key writes hold every key's stripe exclusively ([`lookup_write`]) and lock the cells
//!   they touch; no shared writer can be inside one of those keys meanwhile.
//! * Reads ([`read`]): the entry from the lock-free map, then the cell lock; no stripe. A dead cell
//!   reads as a missing key.
//! * One type check: a key holding another type is [`Error::WrongType`], in every path.

use bytes::Bytes;

use super::Ctx;
use crate::db::{CellState, Change, Collection, Entry, EntryRef, KeyMap, Members, ValueCell, WriteLock};
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::sync::Arc;
use crate::sync::fault::{self, Fault};

/// What a write finds at its key under the shared stripe.
enum Found<T> {
    Cell(Arc<ValueCell<T>>),
    /// No entry at all: nothing can create one while the stripe is held, even shared.
    Missing,
    /// An entry past its expiry: only an exclusive holder may delete it (and log `DEL`).
    Expired,
    WrongType,
}

fn find<T: Collection>(map: &KeyMap, key: &[u8], now_ms: u64) -> Found<T> {
    map.get(key, |e| match e {
        None => Found::Missing,
        Some(e) if e.is_expired(now_ms) => Found::Expired,
        Some(e) => T::cell_of(e.value()).map_or(Found::WrongType, |c| Found::Cell(c.clone())),
    })
}

/// The whole command as an AOF record (what most collection writes log): on the stack for a
/// command of up to 8 arguments (SETBIT, PFADD of a few elements ...), so a write logged with the
/// AOF off costs no allocation.
pub fn record(argv: &[Bytes]) -> smallvec::SmallVec<[&[u8]; 8]> {
    argv.iter().map(|a| &a[..]).collect()
}

/// Push the whole command as the write's record: [`record`] without allocating the list of
/// arguments for a command of up to 8 (every hot single-key write: LPUSH, HSET, SADD, ZADD ...).
/// With nobody to read the record (no AOF, replicas, WATCH or tracking) the write is only counted.
pub fn log_command(w: &WriteLock, argv: &[Bytes]) {
    if w.count_unread() {
        return;
    }
    w.log_in(w.db_index(), &record(argv));
}

/// [`log_command`], the record counting `n` changes since the last save instead of one (Redis's
/// `server.dirty += n`: LPUSH's elements, SADD's members added ...).
#[inline]
pub fn log_command_n(w: &WriteLock, argv: &[Bytes], n: u64) {
    crate::rdb::dirty::next_record_counts(n);
    log_command(w, argv);
}

/// [`log_command_notify`], the record counting `n` changes instead of one.
pub fn log_command_notify_n(w: &WriteLock, argv: &[Bytes], n: u64, class: u32, event: &str) {
    log_command_n(w, argv, n);
    w.notify(class, event, &argv[1]);
}

/// [`log_command`] and the keyspace event `event` of `class` on its key.
pub fn log_command_notify(w: &WriteLock, argv: &[Bytes], class: u32, event: &str) {
    log_command(w, argv);
    w.notify(class, event, &argv[1]);
}

/// An owned copy of an argument, to store it (arguments are slices of the read buffer).
pub fn copy(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

/// `LLEN`/`HLEN`/`SCARD`/`ZCARD key`: the number of elements, 0 for a missing key.
pub fn card<T: Collection>(ctx: &Ctx, key: &[u8]) -> Result<Frame> {
    read::<T, _>(ctx, key, |st| Frame::Integer(st.map_or(0, |st| st.items.len() as i64)))
}

/// `HDEL`/`SREM`/`ZREM key name [name ...]`: how many were removed; the command is logged as
/// given when any was.
pub fn remove_members<T: Members>(ctx: &Ctx, argv: &[Bytes], (class, event): (u32, &str)) -> Result<Frame> {
    write::<T, _>(
        ctx,
        &argv[1],
        false,
        |st, w| {
            let removed = argv[2..].iter().filter(|m| st.items.remove_member(m)).count();
            if removed > 0 {
                log_command_notify_n(w, argv, removed as u64, class, event);
            }
            Ok(Frame::Integer(removed as i64))
        },
        |_| Ok(Frame::Integer(0)),
    )
}

/// The cell of an entry of type `T`; WRONGTYPE for any other value.
pub fn cell_of<T: Collection>(e: Option<EntryRef<'_>>) -> Result<Option<Arc<ValueCell<T>>>> {
    match e {
        None => Ok(None),
        Some(e) => T::cell_of(e.value()).cloned().map(Some).ok_or(Error::WrongType),
    }
}

/// After a write: if the collection is now empty, mark its cell dead and, under an exclusive
/// stripe, remove the key. The caller holds the key's stripe and the cell lock (`st`), so no
/// writer can be between looking the cell up and locking it unseen. Under a shared stripe the
/// removal (a block copy) waits for [`purge_dead`], which [`write`] runs before it returns.
pub fn bury_if_empty<T: Collection>(cell: &ValueCell<T>, st: &mut CellState<T>, w: &WriteLock, key: &[u8]) {
    if st.items.is_empty() {
        cell.mark_dead(st);
        if w.is_exclusive() && !fault::on(Fault::DeadRemoveUnderShared) {
            w.map().remove(key);
        } else if fault::on(Fault::DeadRemoveUnderShared) {
            // The broken protocol: a block copy under the shared stripe.
            w.map().remove(key);
        }
        w.notify(crate::pubsub::notify::class::GENERIC, "del", key);
    }
}

/// Remove `key` if it still holds `cell`, dead: the second half of a shared-stripe write that
/// emptied it (see `db::cell`). Takes the exclusive stripe.
fn purge_dead<T: Collection>(ctx: &Ctx, key: &[u8], cell: &Arc<ValueCell<T>>) {
    let w = ctx.write(&[key]);
    w.map().update(key, |e| {
        let same = e.and_then(|e| T::cell_of(e.value())).is_some_and(|c| Arc::ptr_eq(c, cell));
        (if same { Change::Remove } else { Change::Keep }, ())
    });
}

/// After a write on a collection (stripe and cell lock held, its record logged): the type's hook
/// (lists serve blocked clients), then removal of an emptied key.
fn finish<T: Collection>(cell: &ValueCell<T>, st: &mut CellState<T>, w: &WriteLock, key: &[u8]) {
    T::after_write(st, w, key);
    bury_if_empty(cell, st, w, key);
}

/// Run one single-key collection write.
///
/// `on_cell` runs on the live collection at `key` with its lock held and must log its own record
/// (only when it changed something); if it leaves the collection empty the key is removed.
/// `on_missing` runs when there is none; when `creates` is set it runs under the exclusive stripe
/// and may insert the key ([`create`]) and log, otherwise it must not write at all.
pub fn write<T: Collection, R>(
    ctx: &Ctx,
    key: &[u8],
    creates: bool,
    on_cell: impl FnOnce(&mut CellState<T>, &WriteLock) -> Result<R>,
    on_missing: impl FnOnce(&WriteLock) -> Result<R>,
) -> Result<R> {
    let now = ctx.now_ms;
    {
        let w = ctx.write_shared(key);
        match find::<T>(w.map(), key, now) {
            Found::WrongType => return Err(Error::WrongType),
            Found::Missing if !creates => return on_missing(&w),
            Found::Missing | Found::Expired => {}
            Found::Cell(cell) => {
                let mut st = cell.lock();
                // A dead cell was emptied since we looked it up: its key is (being) removed. Go
                // on under the exclusive stripe (its lookup removes a dead cell first).
                if !st.dead || fault::on(Fault::CellIgnoreDead) {
                    #[cfg(feature = "loom")]
                    let log_outside = fault::on(Fault::CellLogOutsideLock);
                    #[cfg(feature = "loom")]
                    if log_outside {
                        w.defer_log();
                    }
                    let r = on_cell(&mut st, &w);
                    finish(&cell, &mut st, &w, key);
                    let dead = st.dead && !w.is_exclusive();
                    drop(st);
                    #[cfg(feature = "loom")]
                    if log_outside {
                        crate::sync::thread::yield_now();
                        w.flush_deferred();
                    }
                    if dead && !fault::on(Fault::DeadRemoveUnderShared) {
                        drop(w);
                        purge_dead(ctx, key, &cell);
                    }
                    return r;
                }
            }
        }
    }
    let mut w = ctx.write(&[key]);
    match w.lookup(key, now, cell_of::<T>)? {
        Some(cell) => {
            // Nobody else writes the key now, but readers lock the cell.
            let mut st = cell.lock();
            let r = on_cell(&mut st, &w);
            finish(&cell, &mut st, &w, key);
            r
        }
        None => on_missing(&w),
    }
}

/// Look the collection at `key` up for writing under an exclusive lock that covers its stripe
/// (multi-key commands): expired keys are deleted and logged, other types are WRONGTYPE.
pub fn lookup_write<T: Collection>(w: &mut WriteLock, key: &[u8], now_ms: u64) -> Result<Option<Arc<ValueCell<T>>>> {
    w.lookup(key, now_ms, cell_of::<T>)
}

/// Run a read on the collection at `key` (`None` when there is none), counting a keyspace hit or
/// miss.
pub fn read<T: Collection, R>(ctx: &Ctx, key: &[u8], f: impl FnOnce(Option<&CellState<T>>) -> R) -> Result<R> {
    let cell = ctx.read(key, |e| {
        // Like Redis's lookupKeyRead: a key of another type still counts as a hit.
        ctx.count_lookup(key, e.is_some());
        cell_of::<T>(e)
    })?;
    Ok(match cell {
        None => f(None),
        Some(cell) => {
            let st = cell.lock();
            // A dead cell was emptied and removed after we found it: the key is gone.
            if st.dead { f(None) } else { f(Some(&st)) }
        }
    })
}

/// A new collection entry for `key` (copied out of the request buffer) holding `items` (not
/// empty). The caller holds the key's stripe exclusively and found it missing.
pub fn create<T: Collection>(w: &WriteLock, key: &[u8], items: T) {
    w.insert(Bytes::copy_from_slice(key), Entry::collection(items, 0));
}

/// [`create`] for a key whose `new` event the caller announced already (see
/// [`WriteLock::insert_announced`]).
pub fn create_announced<T: Collection>(w: &WriteLock, key: &[u8], items: T) {
    w.insert_announced(Bytes::copy_from_slice(key), Entry::collection(items, 0));
}
