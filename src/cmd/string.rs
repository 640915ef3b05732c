//! String and integer commands. Mirrors Redis's `t_string.c`.
//!
//! AOF records are written in the form whose replay is exact: relative expiries become `PXAT` /
//! `PEXPIREAT` absolute times, INCR-family writes become `INCRBY key delta` (deltas commute, see
//! `db`), INCRBYFLOAT becomes `SET key result KEEPTTL`, GETDEL becomes `DEL`.

mod lcs;

use bytes::Bytes;

use super::rawstr::grow_zero;
use super::{Ctx, arg_i64, is_opt};
use crate::db::{Entry, EntryRef, Kind, RawBytes, ValueRef, WriteLock};
use crate::error::{Error, Result};
use crate::longdouble::LongDouble;
use crate::pubsub::notify::class::{EXPIRED, GENERIC, NEW, STRING};
use crate::resp::Frame;
use crate::sync::Ordering;
use crate::sync::fault::Fault;
pub use lcs::lcs;

/// Largest string value (Redis's 512 MB limit; proto-max-bulk-len).
const MAX_STRING_BYTES: usize = 512 * 1024 * 1024;

/// Which command's option grammar applies (SET's or GETEX's).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grammar {
    Set,
    GetEx,
}

/// The expiry requested by SET/GETEX options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireOpt {
    None,
    KeepTtl,
    Persist,
    /// Absolute time in ms.
    At(u64),
}

#[derive(Default)]
struct SetFlags {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// (unit is seconds, is absolute, argument)
    expire: Option<(bool, bool, Bytes)>,
}

/// Parse SET/GETEX options exactly as Redis's `parseExtendedStringArgumentsOrReply`.
fn parse_set_options(args: &[Bytes], grammar: Grammar) -> Result<SetFlags> {
    let mut f = SetFlags::default();
    let mut j = 0;
    while j < args.len() {
        let opt = &args[j];
        let next = args.get(j + 1);
        let has_ttl = f.expire.is_some();
        let set = grammar == Grammar::Set;
        if is_opt(opt, "nx") && !f.xx && set {
            f.nx = true;
        } else if is_opt(opt, "xx") && !f.nx && set {
            f.xx = true;
        } else if is_opt(opt, "get") && set {
            f.get = true;
        } else if is_opt(opt, "keepttl") && !f.persist && !has_ttl && set {
            f.keepttl = true;
        } else if is_opt(opt, "persist") && grammar == Grammar::GetEx && !has_ttl && !f.keepttl {
            f.persist = true;
        } else if let Some(next) = next.filter(|_| !f.keepttl && !f.persist) {
            let kind = [("ex", true, false), ("px", false, false), ("exat", true, true), ("pxat", false, true)]
                .into_iter()
                .find(|(name, _, _)| is_opt(opt, name));
            match (kind, &f.expire) {
                (Some((_, secs, abs)), None) => f.expire = Some((secs, abs, next.clone())),
                // The same option again: the last one wins (Redis only rejects mixing kinds).
                (Some((_, secs, abs)), Some((s0, a0, _))) if *s0 == secs && *a0 == abs => {
                    f.expire = Some((secs, abs, next.clone()))
                }
                _ => return Err(Error::Syntax),
            }
            j += 1;
        } else {
            return Err(Error::Syntax);
        }
        j += 1;
    }
    Ok(f)
}

/// Turn an expire argument into an absolute time in ms (`getExpireMillisecondsOrReply`).
pub fn expire_at_ms(arg: &[u8], seconds: bool, absolute: bool, now_ms: u64, cmd: &'static str) -> Result<u64> {
    let mut ms = arg_i64(arg)?;
    if ms <= 0 || (seconds && ms > i64::MAX / 1000) {
        return Err(Error::InvalidExpire(cmd));
    }
    if seconds {
        ms *= 1000;
    }
    if !absolute {
        ms = ms.checked_add(now_ms as i64).ok_or(Error::InvalidExpire(cmd))?;
    }
    Ok(ms as u64)
}

impl SetFlags {
    fn expire(&self, now_ms: u64, cmd: &'static str) -> Result<ExpireOpt> {
        Ok(match &self.expire {
            Some((secs, abs, arg)) => ExpireOpt::At(expire_at_ms(arg, *secs, *abs, now_ms, cmd)?),
            None if self.keepttl => ExpireOpt::KeepTtl,
            None if self.persist => ExpireOpt::Persist,
            None => ExpireOpt::None,
        })
    }
}

/// The string value of an entry, or WRONGTYPE.
fn string_of(e: EntryRef<'_>) -> Result<Bytes> {
    e.string_bytes().ok_or(Error::WrongType)
}

/// Reply for an optional string value.
fn bulk_or_null(v: Option<Bytes>) -> Frame {
    v.map(Frame::Bulk).unwrap_or(Frame::Null)
}

fn ms_text(ms: u64) -> Bytes {
    Bytes::from(ms.to_string())
}

/// The shared body of SET, SETNX, SETEX, PSETEX, GETSET (`setGenericCommand`).
/// Returns Ok(None) when NX/XX prevented the write, Ok(Some(old)) otherwise (old value if `get`).
fn set_generic(
    ctx: &Ctx,
    key: &Bytes,
    val: &Bytes,
    nx: bool,
    xx: bool,
    get: bool,
    expire: ExpireOpt,
) -> Result<(bool, Option<Bytes>)> {
    let now = ctx.now_ms;
    let mut w = ctx.write(&[key]);
    // A plain SET overwrites whatever is there: no need to look (nor to log the lazy expiry of an
    // old value first: replaying SET replaces it all the same).
    // With `expired` or `new` events on, look anyway: they announce what the old value was.
    let plain = !nx && !xx && !get && expire != ExpireOpt::KeepTtl && !ctx.shared.ks.events().wants(EXPIRED | NEW);
    let (found, old, old_ttl) = if plain {
        (false, None, 0)
    } else {
        w.lookup(key, now, |e| match e {
            None => Ok((false, None, 0)),
            Some(e) if get => Ok((true, Some(string_of(e)?), e.expire_at_ms())),
            Some(e) => Ok((true, None, e.expire_at_ms())),
        })?
    };
    if (nx && found) || (xx && !found) {
        return Ok((false, old));
    }
    let at = match expire {
        ExpireOpt::At(at) => at,
        ExpireOpt::KeepTtl => old_ttl,
        _ => 0,
    };
    w.insert(key.clone(), Entry::string_copied(val, at));
    // Under the stripe: per key, events are announced in the order the writes took effect.
    let ks = &ctx.shared.ks;
    let announce = || {
        ks.events().notify(STRING, "set", key, ctx.client.db);
        if let ExpireOpt::At(_) = expire {
            ks.events().notify(GENERIC, "expire", key, ctx.client.db);
        }
    };
    let late = crate::sync::fault::on(Fault::SetNotifyOutsideLock);
    if !late {
        announce();
    }
    match expire {
        ExpireOpt::At(at) => w.log_or_fault(Fault::SetLogOutsideLock, &[b"SET", key, val, b"PXAT", &ms_text(at)]),
        ExpireOpt::KeepTtl if old_ttl != 0 => {
            w.log_or_fault(Fault::SetLogOutsideLock, &[b"SET", key, val, b"PXAT", &ms_text(old_ttl)])
        }
        _ => w.log_or_fault(Fault::SetLogOutsideLock, &[b"SET", key, val]),
    }
    if late {
        crate::sync::thread::yield_now();
        announce();
    }
    Ok((true, old))
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`
pub fn set(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let f = parse_set_options(&argv[3..], Grammar::Set)?;
    let expire = f.expire(ctx.now_ms, "set")?;
    let (done, old) = set_generic(ctx, &argv[1], &argv[2], f.nx, f.xx, f.get, expire)?;
    Ok(match (f.get, done) {
        (true, _) => bulk_or_null(old),
        (false, true) => Frame::ok(),
        (false, false) => Frame::Null,
    })
}

/// `SETNX key value`
pub fn setnx(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (done, _) = set_generic(ctx, &argv[1], &argv[2], true, false, false, ExpireOpt::None)?;
    Ok(Frame::Integer(done as i64))
}

/// `SETEX key seconds value`
pub fn setex(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let at = expire_at_ms(&argv[2], true, false, ctx.now_ms, "setex")?;
    set_generic(ctx, &argv[1], &argv[3], false, false, false, ExpireOpt::At(at))?;
    Ok(Frame::ok())
}

/// `PSETEX key milliseconds value`
pub fn psetex(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let at = expire_at_ms(&argv[2], false, false, ctx.now_ms, "psetex")?;
    set_generic(ctx, &argv[1], &argv[3], false, false, false, ExpireOpt::At(at))?;
    Ok(Frame::ok())
}

/// `GETSET key value`
pub fn getset(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (_, old) = set_generic(ctx, &argv[1], &argv[2], false, false, true, ExpireOpt::None)?;
    Ok(bulk_or_null(old))
}

/// `GET key`
pub fn get(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    if let Some(out) = ctx.take_direct_out() {
        // A found value goes straight into the output (see `Ctx::out`); a miss is `Frame::Null`.
        let found = ctx.read(&argv[1], |e| {
            e.map(|e| e.with_str(|b| crate::resp::put_bulk(out, b)).ok_or(Error::WrongType)).transpose()
        });
        ctx.put_out(out);
        // A key of another type is a hit too (Redis's lookupKeyRead, then checkType).
        ctx.count_lookup(&argv[1], !matches!(found, Ok(None)));
        return Ok(if found?.is_some() { Frame::written() } else { Frame::Null });
    }
    let v = ctx.read(&argv[1], |e| e.map(string_of).transpose());
    ctx.count_lookup(&argv[1], !matches!(v, Ok(None)));
    Ok(bulk_or_null(v?))
}

/// `MGET key [key ...]`: a key that is missing or not a string gives nil.
pub fn mget(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(Frame::Array(
        argv[1..]
            .iter()
            .map(|k| {
                bulk_or_null(ctx.read(k, |e| {
                    ctx.count_lookup(k, e.is_some());
                    e.and_then(|e| e.string_bytes())
                }))
            })
            .collect(),
    ))
}

/// `GETDEL key`
pub fn getdel(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let key = &argv[1];
    let now = ctx.now_ms;
    let mut w = ctx.write(&[key]);
    let v = w.lookup(key, now, |e| e.map(string_of).transpose())?;
    if v.is_some() {
        w.map().remove(key);
        w.log(&[b"DEL", key]);
        w.notify(GENERIC, "del", key);
    }
    Ok(bulk_or_null(v))
}

/// `GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]`
pub fn getex(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let f = parse_set_options(&argv[2..], Grammar::GetEx)?;
    let expire = f.expire(ctx.now_ms, "getex")?;
    let key = &argv[1];
    let now = ctx.now_ms;
    let mut w = ctx.write(&[key]);
    let v = w.lookup(key, now, |e| e.map(|e| Ok::<_, Error>((string_of(e)?, e.expire_at_ms()))).transpose())?;
    let Some((v, ttl)) = v else { return Ok(Frame::Null) };
    match expire {
        ExpireOpt::At(at) if at <= now => {
            w.map().remove(key);
            w.log(&[b"DEL", key]);
            w.notify(GENERIC, "del", key);
        }
        ExpireOpt::At(at) => {
            w.set_expire(key, at);
            w.log(&[b"PEXPIREAT", key, &ms_text(at)]);
            w.notify(GENERIC, "expire", key);
        }
        ExpireOpt::Persist if ttl != 0 => {
            w.set_expire(key, 0);
            w.log(&[b"PERSIST", key]);
            w.notify(GENERIC, "persist", key);
        }
        _ => {}
    }
    Ok(Frame::Bulk(v))
}

/// `MSET key value [key value ...]`
pub fn mset(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    mset_generic(ctx, argv, false, "mset")
}

/// `MSETNX key value [key value ...]`: all or nothing.
pub fn msetnx(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    mset_generic(ctx, argv, true, "msetnx")
}

fn mset_generic(ctx: &mut Ctx, argv: &[Bytes], nx: bool, name: &str) -> Result<Frame> {
    if argv.len().is_multiple_of(2) {
        return Err(Error::WrongArity(name.into()));
    }
    let keys: Vec<&[u8]> = argv[1..].iter().step_by(2).map(|k| &k[..]).collect();
    let now = ctx.now_ms;
    let mut w = ctx.write(&keys);
    if nx {
        let mut any = false;
        for k in &keys {
            any |= w.lookup(k, now, |e| e.is_some());
        }
        if any {
            return Ok(Frame::Integer(0));
        }
    }
    for pair in argv[1..].chunks(2) {
        w.insert(pair[0].clone(), Entry::string_copied(&pair[1], 0));
        w.notify(STRING, "set", &pair[0]);
    }
    let mut rec: Vec<&[u8]> = vec![b"MSET"];
    rec.extend(argv[1..].iter().map(|a| &a[..]));
    // Redis counts every pair.
    w.log_n(&rec, keys.len() as u64);
    Ok(if nx { Frame::Integer(1) } else { Frame::ok() })
}

/// `APPEND key value`: to an existing string in place (it becomes `raw`, as Redis's
/// `dbUnshareStringValue`); a new key is encoded as SET would.
pub fn append(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (key, val) = (&argv[1], &argv[2]);
    let done = |w: &WriteLock, len: usize| {
        w.log(&[b"APPEND", key, val]);
        w.notify(STRING, "append", key);
        Ok(Frame::Integer(len as i64))
    };
    super::rawstr::write(
        ctx,
        key,
        |_| Ok(()),
        |v, w| {
            if v.len() + val.len() > MAX_STRING_BYTES {
                return Err(Error::StringTooLong);
            }
            super::rawstr::reserve_for(v, v.len() + val.len());
            v.extend_from_slice(val);
            done(w, v.len())
        },
        |w| {
            w.insert(key.clone(), Entry::string_copied(val, 0));
            done(w, val.len())
        },
    )
}

/// `STRLEN key`
pub fn strlen(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let n = super::rawstr::read(ctx, &argv[1], |s| s.map_or(0, |s| s.len()))?;
    Ok(Frame::Integer(n as i64))
}

/// `GETRANGE key start end`
pub fn getrange(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (start, end) = (arg_i64(&argv[2])?, arg_i64(&argv[3])?);
    let v = super::rawstr::read(ctx, &argv[1], |s| {
        s.map_or_else(Bytes::new, |s| Bytes::copy_from_slice(&s[range_of(start, end, s.len())]))
    })?;
    Ok(Frame::Bulk(v))
}

/// GETRANGE's `start end` resolved against a string of `len` bytes, as Redis.
fn range_of(mut start: i64, mut end: i64, len: usize) -> std::ops::Range<usize> {
    let len = len as i64;
    if start < 0 && end < 0 && start > end {
        return 0..0;
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return 0..0;
    }
    start as usize..end as usize + 1
}

/// `SETRANGE key offset value`: in place (the string becomes `raw`).
pub fn setrange(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (key, val) = (&argv[1], &argv[3]);
    let offset = arg_i64(&argv[2])?;
    if offset < 0 {
        return Err(Error::err("offset is out of range"));
    }
    let offset = offset as usize;
    if val.is_empty() {
        // Nothing to write: the length (0 for a missing key), after the type check.
        let cur = ctx.read(key, |e| e.map(|e| e.str_ref().ok_or(Error::WrongType)).transpose())?;
        return Ok(Frame::Integer(cur.map_or(0, |s| s.with(|b| b.len())) as i64));
    }
    if offset.saturating_add(val.len()) > MAX_STRING_BYTES {
        // Checked after the type (as Redis): a wrong type answers WRONGTYPE.
        ctx.read(key, |e| e.map(|e| e.str_ref().ok_or(Error::WrongType)).transpose())?;
        return Err(Error::StringTooLong);
    }
    let write = |v: &mut RawBytes, w: &WriteLock| {
        grow_zero(v, offset + val.len());
        v[offset..offset + val.len()].copy_from_slice(val);
        w.log(&[b"SETRANGE", key, &argv[2], val]);
        w.notify(STRING, "setrange", key);
        Frame::Integer(v.len() as i64)
    };
    super::rawstr::write(
        ctx,
        key,
        |_| Ok(()),
        |v, w| Ok(write(v, w)),
        |w| {
            let mut v = RawBytes::new();
            grow_zero(&mut v, offset + val.len());
            v[offset..].copy_from_slice(val);
            super::rawstr::create(w, key, v, 0);
            w.log(&[b"SETRANGE", key, &argv[2], val]);
            w.notify(STRING, "setrange", key);
            Ok(Frame::Integer((offset + val.len()) as i64))
        },
    )
}

/// `INCR key`
pub fn incr(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    incr_by(ctx, &argv[1], 1).map(Frame::Integer)
}

/// `DECR key`
pub fn decr(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    incr_by(ctx, &argv[1], -1).map(Frame::Integer)
}

/// `INCRBY key increment`
pub fn incrby(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let d = arg_i64(&argv[2])?;
    incr_by(ctx, &argv[1], d).map(Frame::Integer)
}

/// `DECRBY key decrement`
pub fn decrby(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let d = arg_i64(&argv[2])?;
    if d == i64::MIN {
        return Err(Error::err("decrement would overflow"));
    }
    incr_by(ctx, &argv[1], -d).map(Frame::Integer)
}

/// Add `delta` to the integer at `key` (`incrDecrCommand`).
///
/// Fast path: the key holds a live integer cell: take its stripe shared, CAS the cell (checked
/// overflow), and enqueue `INCRBY key delta` before releasing the stripe. Otherwise (missing,
/// expired, a string to parse) take the stripe exclusively. While loading, additions wrap: the
/// file's deltas may be in another order than they were applied (see `db`).
pub fn incr_by(ctx: &Ctx, key: &Bytes, delta: i64) -> Result<i64> {
    let loading = ctx.shared.ks.is_loading();
    let add = |v: i64| if loading { Some(v.wrapping_add(delta)) } else { v.checked_add(delta) };
    let now = ctx.now_ms;
    let mut text_buf = [0u8; 20];
    let delta_text = crate::util::i64_text(delta, &mut text_buf);
    {
        let w = ctx.write_shared(key);
        let fast = w.map().get(key, |e| match e {
            Some(e) if !e.is_expired(now) => match e.value() {
                // AcqRel: the CAS publishes the new value to readers (Acquire in string_bytes).
                ValueRef::Int(cell) => {
                    // A write lookup touches the key (LRU clock / LFU counter), as Redis's.
                    crate::db::evict::touch(e);
                    Some(cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, add).map(|old| add(old).unwrap_or(0)))
                }
                _ => None,
            },
            _ => None,
        });
        if let Some(r) = fast {
            let v = r.map_err(|_| Error::Overflow)?;
            w.notify(STRING, "incrby", key);
            w.log_or_fault(Fault::IncrLogOutsideLock, &[b"INCRBY", key, delta_text]);
            return Ok(v);
        }
    }
    let mut w = ctx.write(&[key]);
    let cur = w.lookup(key, now, |e| match e {
        None => Ok((0, 0)),
        Some(e) => match e.value() {
            ValueRef::Int(c) => Ok((c.load(Ordering::Acquire), e.expire_at_ms())),
            // Text kept as text (INCRBYFLOAT's, APPEND's) still counts when it is an integer's.
            ValueRef::Small(s) => crate::util::parse_i64(s).map(|n| (n, e.expire_at_ms())).ok_or(Error::NotInteger),
            ValueRef::Str(b) => crate::util::parse_i64(b).map(|n| (n, e.expire_at_ms())).ok_or(Error::NotInteger),
            ValueRef::Raw(c) => {
                crate::util::parse_i64(&c.lock().items.0).map(|n| (n, e.expire_at_ms())).ok_or(Error::NotInteger)
            }
            ValueRef::List(_) | ValueRef::Hash(_) | ValueRef::Set(_) | ValueRef::Zset(_) | ValueRef::Stream(_) => {
                Err(Error::WrongType)
            }
        },
    })?;
    let (old, ttl) = cur;
    let new = add(old).ok_or(Error::Overflow)?;
    w.insert(key.clone(), Entry::int(new, ttl));
    w.log(&[b"INCRBY", key, delta_text]);
    w.notify(STRING, "incrby", key);
    Ok(new)
}

/// `INCRBYFLOAT key increment`: logged as `SET key result KEEPTTL` (floats do not commute).
pub fn incrbyfloat(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let key = &argv[1];
    let now = ctx.now_ms;
    let mut w = ctx.write(&[key]);
    let cur = w.lookup(key, now, |e| match e {
        None => LongDouble::parse(b"0").map(|v| (v, 0)).ok_or(Error::NotFloat),
        Some(e) if e.kind() != Kind::String => Err(Error::WrongType),
        Some(e) => {
            let b = string_of(e)?;
            LongDouble::parse(&b).map(|v| (v, e.expire_at_ms())).ok_or(Error::NotFloat)
        }
    })?;
    let incr = LongDouble::parse(&argv[2]).ok_or(Error::NotFloat)?;
    let new = cur.0.plus(incr);
    if !new.is_finite() {
        return Err(Error::err("increment would produce NaN or Infinity"));
    }
    let text = Bytes::from(new.to_human_string());
    w.insert(key.clone(), Entry::text_string(text.clone(), cur.1));
    w.log(&[b"SET", key, &text, b"KEEPTTL"]);
    w.notify(STRING, "incrbyfloat", key);
    Ok(Frame::Bulk(text))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::{Harness, bulk, err, int, ok};
    use crate::resp::Frame;

    #[test]
    fn incrbyfloat_checks_the_type_before_the_increment() {
        let mut h = Harness::new();
        h.run(&["RPUSH", "l", "a"]);
        assert_eq!(
            h.run(&["INCRBYFLOAT", "l", "abc"]),
            err("WRONGTYPE Operation against a key holding the wrong kind of value")
        );
        assert_eq!(h.run(&["INCRBYFLOAT", "f", "0.1"]), bulk("0.1"));
        assert_eq!(h.run(&["INCRBYFLOAT", "f", "0.2"]), bulk("0.3"));
        assert_eq!(h.run(&["INCRBYFLOAT", "f", "abc"]), err("ERR value is not a valid float"));
    }

    #[test]
    fn incrbyfloat_never_replies_negative_zero() {
        // redis-server 7.0.15 replies and stores "0" (and logs `SET k 0 KEEPTTL`) in each case.
        let mut h = Harness::new();
        h.run(&["SET", "k", "-0.0"]);
        assert_eq!(h.run(&["INCRBYFLOAT", "k", "0"]), bulk("0"));
        assert_eq!(h.run(&["GET", "k"]), bulk("0"));
        assert_eq!(h.run(&["INCRBYFLOAT", "k2", "-0"]), bulk("0"));
        assert_eq!(h.run(&["INCRBYFLOAT", "k3", "-0e5"]), bulk("0"));
        assert_eq!(h.run(&["INCRBYFLOAT", "k4", "-0.000000000000000005"]), bulk("0"));
        assert_eq!(h.run(&["GET", "k4"]), bulk("0"));
        h.run(&["SET", "k5", "0.5"]);
        assert_eq!(h.run(&["INCRBYFLOAT", "k5", "-0.5"]), bulk("0"));
        assert_eq!(h.run(&["INCRBYFLOAT", "k6", "-0.0000000000000000051"]), bulk("-0.00000000000000001"));
    }

    #[test]
    fn set_nx_on_existing_key_returns_nil_and_keeps_the_value() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["SET", "k", "v"]), ok());
        assert_eq!(h.run(&["SET", "k", "w", "NX"]), Frame::Null);
        assert_eq!(h.run(&["GET", "k"]), bulk("v"));
        assert_eq!(h.run(&["SET", "nope", "w", "XX"]), Frame::Null);
        assert_eq!(h.run(&["SET", "k", "w", "XX", "GET"]), bulk("v"));
    }

    #[test]
    fn expired_key_is_invisible_and_replaced_by_incr() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["SET", "k", "5", "PX", "100"]), ok());
        assert_eq!(h.run(&["INCR", "k"]), int(6));
        h.now_ms += 200;
        assert_eq!(h.run(&["GET", "k"]), Frame::Null);
        assert_eq!(h.run(&["INCR", "k"]), int(1));
        assert_eq!(h.run(&["PTTL", "k"]), int(-1));
    }

    #[test]
    fn set_option_errors_follow_redis_order() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["SET", "k", "v", "EX", "10", "PX", "5"]), err("ERR syntax error"));
        assert_eq!(h.run(&["SET", "k", "v", "KEEPTTL", "EX", "5"]), err("ERR syntax error"));
        assert_eq!(h.run(&["SET", "k", "v", "EX", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(h.run(&["SET", "k", "v", "PX", "-1"]), err("ERR invalid expire time in 'set' command"));
        assert_eq!(
            h.run(&["SET", "k", "v", "EX", "9223372036854775807"]),
            err("ERR invalid expire time in 'set' command")
        );
        assert_eq!(h.run(&["SETEX", "k", "0", "v"]), err("ERR invalid expire time in 'setex' command"));
        assert_eq!(h.run(&["GETEX", "k", "PERSIST", "EX", "1"]), err("ERR syntax error"));
    }

    #[test]
    fn getrange_and_setrange_follow_redis_bounds() {
        let mut h = Harness::new();
        h.run(&["SET", "s", "Hello World"]);
        assert_eq!(h.run(&["GETRANGE", "s", "-5", "-1"]), bulk("World"));
        assert_eq!(h.run(&["GETRANGE", "s", "5", "2"]), bulk(""));
        assert_eq!(h.run(&["GETRANGE", "s", "0", "100"]), bulk("Hello World"));
        assert_eq!(h.run(&["SETRANGE", "s", "-1", "x"]), err("ERR offset is out of range"));
        assert_eq!(h.run(&["SETRANGE", "s", "6", "Redis"]), int(11));
        assert_eq!(h.run(&["GET", "s"]), bulk("Hello Redis"));
        assert_eq!(h.run(&["SETRANGE", "e", "0", ""]), int(0));
        assert_eq!(h.run(&["EXISTS", "e"]), int(0));
        assert_eq!(
            h.run(&["SETRANGE", "s", "536870911", "xx"]),
            err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
        );
    }
}
