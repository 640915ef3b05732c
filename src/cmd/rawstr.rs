//! How every write that changes a string in place reaches its bytes (SETBIT, BITFIELD, SETRANGE,
//! APPEND, PFADD, PFCOUNT's cache, PFDEBUG TODENSE): the collections' protocol (`cmd::collection`)
//! applied to a `raw` string's cell ([`RawCell`]), so a one-bit change of a 1 MB bitmap costs
//! what changing one bit costs, not a copy of the megabyte. Mirrors Redis's
//! `dbUnshareStringValue` + an in-place `sds` edit.
//!
//! # The protocol
//!
//! * A live `raw` string: the key's stripe shared plus the cell lock; the handler changes the
//!   bytes and logs its record while the cell lock is held, so same-key records are in apply order
//!   (as for a collection). Nothing removes or replaces the key meanwhile: that needs the stripe
//!   exclusively, and no shared writer ever removes a string, so the cell is never `dead`.
//! * Anything else (a missing or expired key, a string in another encoding): the stripe
//!   exclusive. A string in another encoding becomes `raw` first (its bytes copied once into a new
//!   cell, its expiry kept): what `dbUnshareStringValue` does. A missing key is the handler's to
//!   create ([`create`]) under that lock.
//! * Readers (GET, GETRANGE, BITCOUNT, BITPOS, PFCOUNT, STRLEN, SORT BY, scripts, the rewrite
//!   snapshot) take the cell out of the lock-free map and lock it to read ([`crate::db::StrRef`]).
//! * One type check: a key of another type is WRONGTYPE; `check` adds the command's own (an HLL
//!   must be a valid one) before anything changes.

use bytes::Bytes;

use super::Ctx;
use crate::db::{Entry, RawBytes, RawCell, RawStr, StrRef, ValueCell, ValueRef, WriteLock};
use crate::error::{Error, Result};
use crate::sync::Arc;

/// Run one single-key write that changes the string at `key` in place.
///
/// `check` sees the current bytes before anything changes (even the encoding): its error is the
/// reply. `on_str` runs on the bytes of the existing string with its cell lock held and logs its
/// own record when it changed something. `on_missing` runs under the exclusive stripe when there is
/// no key; it may create one ([`create`]) and log.
pub fn write<R>(
    ctx: &Ctx,
    key: &[u8],
    check: impl Fn(&[u8]) -> Result<()>,
    on_str: impl FnOnce(&mut RawBytes, &WriteLock) -> Result<R>,
    on_missing: impl FnOnce(&WriteLock) -> Result<R>,
) -> Result<R> {
    write_seen(ctx, key, true, check, on_str, on_missing)
}

/// [`write`] after a lock-free look ([`peek`]) at `key`: `found` false (no string there then)
/// goes straight to the exclusive stripe, which a missing key needs anyway (SETBIT on a new key:
/// one lookup and one stripe lock fewer). Either way the locked path decides.
pub fn write_seen<R>(
    ctx: &Ctx,
    key: &[u8],
    found: bool,
    check: impl Fn(&[u8]) -> Result<()>,
    on_str: impl FnOnce(&mut RawBytes, &WriteLock) -> Result<R>,
    on_missing: impl FnOnce(&WriteLock) -> Result<R>,
) -> Result<R> {
    let now = ctx.now_ms;
    if found {
        let w = ctx.write_shared(key);
        let cell = w.map().get(key, |e| match e {
            Some(e) if !e.is_expired(now) => match e.value() {
                ValueRef::Raw(c) => Some(c.clone()),
                _ => None,
            },
            _ => None,
        });
        if let Some(cell) = cell {
            return edit(&w, &cell, check, on_str);
        }
    }
    enum Cur {
        Raw(Arc<RawCell>),
        Other(StrRef, u64),
    }
    let mut w = ctx.write(&[key]);
    let cur = w.lookup(key, now, |e| {
        e.map(|e| match e.value() {
            ValueRef::Raw(c) => Ok(Cur::Raw(c.clone())),
            _ => e.str_ref().map(|s| Cur::Other(s, e.expire_at_ms())).ok_or(Error::WrongType),
        })
        .transpose()
    })?;
    let cell = match cur {
        None => return on_missing(&w),
        Some(Cur::Raw(c)) => c,
        Some(Cur::Other(s, ttl)) => {
            let bytes = s.with(|b| check(b).map(|()| RawBytes::from_slice(b)))?;
            let cell = Arc::new(ValueCell::new(RawStr(bytes)));
            w.insert(Bytes::copy_from_slice(key), Entry::from_cell(cell.clone(), ttl));
            cell
        }
    };
    edit(&w, &cell, check, on_str)
}

/// [`write_seen`] for a write that creates a missing key from bytes it can build beforehand
/// (`make`; `on_created` then announces and logs the creation): when the lock-free look found no
/// string and the new bytes are `small` (cheap to build in vain), the new key is inserted under
/// the exclusive stripe only if the map holds nothing at `key`, in the one walk of its bucket
/// that the insert makes (no lookup before it). Anything there (a key created meanwhile, an
/// expired one, another type) takes [`write_seen`]'s path, as does a large new string (no
/// allocation before the key's type is checked).
pub fn write_or_create<R>(
    ctx: &Ctx,
    key: &Bytes,
    found: bool,
    small: bool,
    on_str: impl FnOnce(&mut RawBytes, &WriteLock) -> Result<R>,
    make: impl Fn() -> RawBytes,
    on_created: impl Fn(&WriteLock) -> Result<R>,
) -> Result<R> {
    if !found && small {
        let w = ctx.write(&[key]);
        if w.insert_absent(key, &Entry::raw_string(make(), 0)) {
            return on_created(&w);
        }
    }
    write_seen(
        ctx,
        key,
        found,
        |_| Ok(()),
        on_str,
        |w| {
            create(w, key, make(), 0);
            on_created(w)
        },
    )
}

/// The bytes of `cell` changed by `on_str` under the cell lock (the stripe held by `w`).
fn edit<R>(
    w: &WriteLock,
    cell: &RawCell,
    check: impl Fn(&[u8]) -> Result<()>,
    on_str: impl FnOnce(&mut RawBytes, &WriteLock) -> Result<R>,
) -> Result<R> {
    let mut st = cell.lock();
    debug_assert!(!st.dead, "a string cell is never removed by a shared writer");
    check(&st.items.0)?;
    #[cfg(feature = "loom")]
    if crate::sync::fault::on(crate::sync::fault::Fault::BitEditOutsideLock) {
        let mut copy = st.items.0.clone();
        drop(st);
        let r = on_str(&mut copy, w);
        crate::sync::thread::yield_now();
        let grown = copy.len();
        cell.lock().items.0.resize(grown, 0);
        crate::sync::thread::yield_now();
        cell.lock().items.0 = copy;
        return r;
    }
    // Loom models only: the broken variant pushes the record after giving the cell lock up.
    #[cfg(feature = "loom")]
    let log_outside = crate::sync::fault::on(crate::sync::fault::Fault::BitLogOutsideLock);
    #[cfg(feature = "loom")]
    if log_outside {
        w.defer_log();
    }
    let r = on_str(&mut st.items.0, w);
    #[cfg(feature = "loom")]
    if log_outside {
        drop(st);
        crate::sync::thread::yield_now();
        w.flush_deferred();
    }
    r
}

/// A new `raw` string `bytes` at `key` (expiry `ttl`), under the exclusive stripe. The key is the
/// command's argument itself (a reference count, no copy: the map stores its own copy of a key,
/// so nothing keeps the request's buffer alive).
pub fn create(w: &WriteLock, key: &Bytes, bytes: RawBytes, ttl: u64) {
    w.insert(key.clone(), Entry::raw_string(bytes, ttl));
}

/// Run `f` on the string at `key` for a read (`None`: no key), counting a keyspace hit or miss as
/// Redis's `lookupKeyRead`; WRONGTYPE for another type. `f` runs inside the map's read, a `raw`
/// string under its cell lock: nothing is copied, no reference counted.
pub fn read<R>(ctx: &Ctx, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R> {
    let mut f = Some(f);
    let mut call = |b: Option<&[u8]>| f.take().map(|f| f(b)).expect("called once");
    let found = ctx.read(key, |e| e.map(|e| e.with_str(|b| call(Some(b))).ok_or(Error::WrongType)));
    ctx.count_lookup(key, found.is_some());
    match found {
        None => Ok(call(None)),
        Some(r) => r,
    }
}

/// Run `f`, an edit that needs a `Vec` (the HLL code's), on the bytes `v`: moved out and back
/// (no copy once they are on the heap).
pub fn as_vec<R>(v: &mut RawBytes, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut vec = std::mem::take(v).into_vec();
    let r = f(&mut vec);
    *v = crate::db::raw_bytes(vec);
    r
}

/// Run `f` on the string at `key` if there is one (inside the map's read, a `raw` string under its
/// cell lock), without counting a lookup: the no-op checks of SETBIT and PFADD.
pub fn peek<R>(ctx: &Ctx, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    ctx.read(key, |e| e.and_then(|e| e.with_str(f)))
}

/// Make room for `len` bytes as `sdsMakeRoomFor` does: twice that below 1 MB, 1 MB more past it,
/// so that a string grown a little at a time (APPEND, SETBIT from its start) grows in amortized
/// constant time.
pub fn reserve_for(v: &mut RawBytes, len: usize) {
    const MAX_PREALLOC: usize = 1 << 20;
    if v.capacity() < len {
        let target = if len < MAX_PREALLOC { len * 2 } else { len + MAX_PREALLOC };
        v.reserve_exact(target - v.len());
    }
}

/// Grow `v` with zero bytes to at least `len` bytes (`sdsgrowzero`).
pub fn grow_zero(v: &mut RawBytes, len: usize) {
    /// A short growth (SETBIT's new key, a bitmap grown a byte at a time) is one copy from here:
    /// `SmallVec::resize` pushes its zeros one at a time through an iterator.
    const ZEROS: [u8; 64] = [0; 64];
    if v.len() < len {
        reserve_for(v, len);
        let missing = len - v.len();
        if missing <= ZEROS.len() {
            v.extend_from_slice(&ZEROS[..missing]);
        } else {
            v.resize(len, 0);
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    /// Short growths (one copy of zeros) and long ones (a resize) both add zero bytes only, keep
    /// what was there, and reserve as `sdsMakeRoomFor` (twice the new length below 1 MB).
    #[test]
    fn grow_zero_adds_zeros_and_keeps_the_bytes() {
        for (start, len) in [(0, 13), (5, 22), (5, 23), (3, 67), (20, 84), (20, 85), (1, 5000)] {
            let mut v: RawBytes = (0..start).map(|b| b as u8 | 0x80).collect();
            grow_zero(&mut v, len);
            assert_eq!(v.len(), len, "{start} -> {len}");
            assert!(v[..start].iter().enumerate().all(|(i, &b)| b == i as u8 | 0x80));
            assert!(v[start..].iter().all(|&b| b == 0));
            assert!(v.capacity() >= len && (!v.spilled() || v.capacity() >= 2 * len));
            grow_zero(&mut v, len - 1);
            assert_eq!(v.len(), len, "never shrinks");
        }
    }
}
