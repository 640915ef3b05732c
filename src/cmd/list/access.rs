//! How list commands reach a list: the locking protocol of `db` (see its module doc) in one place,
//! so each handler only says what it does to the items and which record it logs.
//!
//! * Writes on a live list: the key's stripe shared plus the list's own lock; the handler logs its
//!   record while the list lock is held, so same-key list records are in apply order. A cell found
//!   `dead` (emptied and removed after we looked it up) sends us round again.
//! * Writes that find the key missing and may create it, or find it expired: the stripe exclusive
//!   ([`WriteLock::lookup`] deletes an expired key and logs `DEL` first).
//! * A write that leaves the list empty removes the key and marks the cell dead, under both locks
//!   (Redis never keeps an empty list).
//! * Reads: the entry from the lock-free map, then the list lock; no stripe.

use std::collections::VecDeque;

use bytes::Bytes;

use super::super::Ctx;
use crate::db::{Entry, KeyMap, ListCell, ListState, Value, WriteLock};
use crate::error::{Error, Result};
use crate::state::Stats;
use crate::sync::Arc;
use crate::sync::fault::{self, Fault};

/// What a write finds at its key under the shared stripe.
enum Found {
    List(Arc<ListCell>),
    /// No entry at all: nothing can create one while the stripe is held, even shared.
    Missing,
    /// An entry past its expiry: only an exclusive holder may delete it (and log `DEL`).
    Expired,
    WrongType,
}

fn find(map: &KeyMap, key: &[u8], now_ms: u64) -> Found {
    map.get(key, |e| match e {
        None => Found::Missing,
        Some(e) if e.is_expired(now_ms) => Found::Expired,
        Some(e) => match &e.value {
            Value::List(cell) => Found::List(cell.clone()),
            _ => Found::WrongType,
        },
    })
}

/// The list cell of an entry, WRONGTYPE for any other value.
fn cell_of(e: Option<&Entry>) -> Result<Option<Arc<ListCell>>> {
    match e {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::List(cell) => Ok(Some(cell.clone())),
            _ => Err(Error::WrongType),
        },
    }
}

/// After a write: remove the key if its list is now empty. The caller holds the key's stripe and
/// the list lock (`st`), so no writer can be between looking the cell up and locking it unseen.
pub(super) fn bury_if_empty(st: &mut ListState, w: &WriteLock, key: &[u8]) {
    if st.items.is_empty() {
        st.dead = true;
        w.map().remove(key);
    }
}

/// After a write on a list (stripe and list lock still held, its record logged): hand elements to
/// the clients blocked on it (one atomic load when nobody is blocked; see `db::blocking`).
pub(super) fn serve_blocked(st: &mut ListState, w: &WriteLock, key: &[u8]) {
    if !st.items.is_empty() {
        w.serve_waiters(key, &mut st.items);
    }
}

/// Run one single-key list write.
///
/// `on_list` runs on the live list at `key` with its lock held and must log its own record (only
/// when it changed something); if it leaves the list empty the key is removed. `on_missing` runs
/// when there is no list; when `creates` is set it runs under the exclusive stripe and may insert
/// the key (and log), otherwise it must not write at all.
pub(super) fn write_list<R>(
    ctx: &Ctx,
    key: &[u8],
    creates: bool,
    on_list: impl FnOnce(&mut ListState, &WriteLock) -> Result<R>,
    on_missing: impl FnOnce(&WriteLock) -> Result<R>,
) -> Result<R> {
    let now = ctx.now_ms;
    loop {
        let w = ctx.write_shared(key);
        match find(w.map(), key, now) {
            Found::WrongType => return Err(Error::WrongType),
            Found::Missing if !creates => return on_missing(&w),
            Found::Missing | Found::Expired => break,
            Found::List(cell) => {
                let mut st = cell.lock();
                if st.dead && !fault::on(Fault::ListIgnoreDead) {
                    // Emptied and removed by a pop since we looked it up: look again.
                    continue;
                }
                #[cfg(feature = "loom")]
                let log_outside = fault::on(Fault::ListLogOutsideLock);
                #[cfg(feature = "loom")]
                if log_outside {
                    w.defer_log();
                }
                let r = on_list(&mut st, &w);
                serve_blocked(&mut st, &w, key);
                bury_if_empty(&mut st, &w, key);
                #[cfg(feature = "loom")]
                if log_outside {
                    drop(st);
                    crate::sync::thread::yield_now();
                    w.flush_deferred();
                }
                return r;
            }
        }
    }
    let mut w = ctx.write(&[key]);
    match w.lookup(key, now, cell_of)? {
        Some(cell) => {
            // Nobody else writes the key now, but readers lock the cell.
            let mut st = cell.lock();
            let r = on_list(&mut st, &w);
            serve_blocked(&mut st, &w, key);
            bury_if_empty(&mut st, &w, key);
            r
        }
        None => on_missing(&w),
    }
}

/// Look the list at `key` up for writing under an exclusive lock that covers its stripe
/// (multi-key commands): expired keys are deleted and logged, other types are WRONGTYPE.
pub(super) fn lookup_for_write(w: &mut WriteLock, key: &[u8], now_ms: u64) -> Result<Option<Arc<ListCell>>> {
    w.lookup(key, now_ms, cell_of)
}

/// Run a read on the list at `key` (`None` when there is none), counting a keyspace hit or miss.
pub(super) fn read_list<R>(ctx: &Ctx, key: &[u8], f: impl FnOnce(Option<&ListState>) -> R) -> Result<R> {
    let cell = ctx.read(key, |e| {
        // Like Redis's lookupKeyRead: a key of another type still counts as a hit.
        let stats = &ctx.shared.stats;
        Stats::add(if e.is_some() { &stats.keyspace_hits } else { &stats.keyspace_misses }, 1);
        cell_of(e)
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

/// A new list entry for `key` (copied out of the request buffer) holding `items`.
pub(super) fn create(w: &WriteLock, key: &[u8], items: VecDeque<Bytes>) {
    w.insert(Bytes::copy_from_slice(key), Entry::list(items, 0));
}
