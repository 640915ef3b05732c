//! Expiry commands: EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT with NX|XX|GT|LT, TTL/PTTL,
//! EXPIRETIME/PEXPIRETIME, PERSIST. Mirrors Redis's `expire.c` (`expireGenericCommand`,
//! `ttlGenericCommand`).
//!
//! A new expiry is logged as `PEXPIREAT key <absolute ms>`, so replay never depends on when it
//! runs; a time already in the past deletes the key and logs `DEL`. While loading (`now_ms == 0`)
//! nothing counts as past: the time is set and the key expires once the server runs.

use bytes::Bytes;

use super::count_lookup;
use crate::cmd::{Ctx, arg_i64, is_opt};
use crate::error::{Error, Result};
use crate::resp::Frame;

/// The NX|XX|GT|LT options of the EXPIRE family.
#[derive(Default, Clone, Copy)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

/// Parse the options after the time (`parseExtendedExpireArgumentsOrReply`); repeats are allowed.
fn parse_flags(args: &[Bytes]) -> Result<ExpireFlags> {
    let mut f = ExpireFlags::default();
    for opt in args {
        if is_opt(opt, "nx") {
            f.nx = true;
        } else if is_opt(opt, "xx") {
            f.xx = true;
        } else if is_opt(opt, "gt") {
            f.gt = true;
        } else if is_opt(opt, "lt") {
            f.lt = true;
        } else {
            // Redis formats the option as a C string: it ends at the first NUL byte.
            let text = opt.split(|&b| b == 0).next().unwrap_or_default();
            let text = String::from_utf8_lossy(text).replace(['\r', '\n'], " ");
            return Err(Error::err(format!("Unsupported option {text}")));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(Error::err("NX and XX, GT or LT options at the same time are not compatible"));
    }
    if f.gt && f.lt {
        return Err(Error::err("GT and LT options at the same time are not compatible"));
    }
    Ok(f)
}

impl ExpireFlags {
    /// Whether the options allow replacing expiry `current` (ms, 0 = none) by `when`. No expiry
    /// counts as infinite: GT never beats it, LT always does.
    fn allow(self, current: u64, when: i64) -> bool {
        let has = current != 0;
        let current = i64::try_from(current).unwrap_or(i64::MAX);
        !((self.nx && has) || (self.xx && !has) || (self.gt && (!has || when <= current)) || (self.lt && has && when >= current))
    }
}

/// The shared body of the EXPIRE family: `time` is in seconds or ms, relative to now or absolute.
/// Replies 1 when the expiry was set (or the key deleted for a past time), 0 when the key is missing
/// or the options refused.
fn expire_generic(ctx: &Ctx, argv: &[Bytes], seconds: bool, absolute: bool, cmd: &'static str) -> Result<Frame> {
    let flags = parse_flags(&argv[3..])?;
    let mut when = arg_i64(&argv[2])?;
    if seconds {
        when = when.checked_mul(1000).ok_or(Error::InvalidExpire(cmd))?;
    }
    let now = ctx.now_ms;
    let base = if absolute { 0 } else { i64::try_from(now).unwrap_or(i64::MAX) };
    let when = when.checked_add(base).ok_or(Error::InvalidExpire(cmd))?;

    let key = &argv[1];
    let mut w = ctx.write(&[key]);
    let Some(current) = w.lookup(key, now, |e| e.map(|e| e.expire_at_ms())) else {
        return Ok(Frame::Integer(0));
    };
    if !flags.allow(current, when) {
        return Ok(Frame::Integer(0));
    }
    if now != 0 && when <= now as i64 {
        w.map().remove(key);
        w.log(&[b"DEL", key]);
        return Ok(Frame::Integer(1));
    }
    // Only while loading can `when` be <= 0 here: 1 ms keeps "has an expiry, already due".
    let at = u64::try_from(when).unwrap_or(0).max(1);
    w.map().get(key, |e| e.map(|e| w.set_expire(key, e, at)));
    w.log(&[b"PEXPIREAT", key, at.to_string().as_bytes()]);
    Ok(Frame::Integer(1))
}

/// `EXPIRE key seconds [NX|XX|GT|LT]`
pub fn expire(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    expire_generic(ctx, argv, true, false, "expire")
}

/// `PEXPIRE key milliseconds [NX|XX|GT|LT]`
pub fn pexpire(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    expire_generic(ctx, argv, false, false, "pexpire")
}

/// `EXPIREAT key unix-time-seconds [NX|XX|GT|LT]`
pub fn expireat(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    expire_generic(ctx, argv, true, true, "expireat")
}

/// `PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT]`
pub fn pexpireat(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    expire_generic(ctx, argv, false, true, "pexpireat")
}

/// The shared body of TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 for a missing key, -1 for a key
/// without expiry, else the remaining (or absolute) time, seconds rounded to nearest.
fn ttl_generic(ctx: &Ctx, key: &[u8], millis: bool, absolute: bool) -> Frame {
    let at = ctx.read(key, |e| e.map(|e| e.expire_at_ms()));
    count_lookup(ctx, at.is_some());
    let ms = match at {
        None => return Frame::Integer(-2),
        Some(0) => return Frame::Integer(-1),
        Some(at) if absolute => i64::try_from(at).unwrap_or(i64::MAX),
        Some(at) => i64::try_from(at.saturating_sub(ctx.now_ms)).unwrap_or(i64::MAX),
    };
    // Redis computes (ms + 500) / 1000 in C: wrapping keeps its answer for times near i64::MAX.
    Frame::Integer(if millis { ms } else { ms.wrapping_add(500) / 1000 })
}

/// `TTL key`: remaining seconds.
pub fn ttl(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(ttl_generic(ctx, &argv[1], false, false))
}

/// `PTTL key`: remaining milliseconds.
pub fn pttl(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(ttl_generic(ctx, &argv[1], true, false))
}

/// `EXPIRETIME key`: the absolute expiry in unix seconds.
pub fn expiretime(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(ttl_generic(ctx, &argv[1], false, true))
}

/// `PEXPIRETIME key`: the absolute expiry in unix milliseconds.
pub fn pexpiretime(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(ttl_generic(ctx, &argv[1], true, true))
}

/// `PERSIST key`: 1 if an expiry was removed, 0 if the key is missing or has none.
pub fn persist(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let key = &argv[1];
    let now = ctx.now_ms;
    let mut w = ctx.write(&[key]);
    let current = w.lookup(key, now, |e| e.map(|e| e.expire_at_ms()));
    if current.unwrap_or(0) == 0 {
        return Ok(Frame::Integer(0));
    }
    w.map().get(key, |e| e.map(|e| w.set_expire(key, e, 0)));
    w.log(&[b"PERSIST", key]);
    Ok(Frame::Integer(1))
}
