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
use crate::pubsub::notify::class::GENERIC;
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
        !((self.nx && has)
            || (self.xx && !has)
            || (self.gt && (!has || when <= current))
            || (self.lt && has && when >= current))
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
        w.notify(GENERIC, "del", key);
        return Ok(Frame::Integer(1));
    }
    // Only while loading can `when` be <= 0 here: 1 ms keeps "has an expiry, already due".
    let at = u64::try_from(when).unwrap_or(0).max(1);
    w.set_expire(key, at);
    w.log(&[b"PEXPIREAT", key, at.to_string().as_bytes()]);
    w.notify(GENERIC, "expire", key);
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
    let at = ctx.peek(key, |e| e.map(|e| e.expire_at_ms()));
    count_lookup(ctx, key, at.is_some());
    let ms = match at {
        None => return Frame::Integer(-2),
        Some(0) => return Frame::Integer(-1),
        Some(at) if absolute => i64::try_from(at).unwrap_or(i64::MAX),
        Some(at) => i64::try_from(at.saturating_sub(ctx.now_ms)).unwrap_or(i64::MAX),
    };
    // Rounded to the nearest second without overflowing near i64::MAX (Redis answers
    // 9223372036854776 there too).
    Frame::Integer(if millis { ms } else { ((i128::from(ms) + 500) / 1000) as i64 })
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
    w.set_expire(key, 0);
    w.log(&[b"PERSIST", key]);
    w.notify(GENERIC, "persist", key);
    Ok(Frame::Integer(1))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::{Harness, bulk, err, int};

    fn harness_with_key() -> Harness {
        let mut h = Harness::new();
        h.run(&["SET", "k", "v"]);
        h
    }

    #[test]
    fn expire_sets_a_ttl_in_seconds_and_the_key_vanishes_when_due() {
        let mut h = harness_with_key();
        assert_eq!(h.run(&["EXPIRE", "k", "10"]), int(1));
        assert_eq!(h.run(&["TTL", "k"]), int(10));
        assert_eq!(h.run(&["PTTL", "k"]), int(10_000));
        h.now_ms += 9_999;
        assert_eq!(h.run(&["GET", "k"]), bulk("v"));
        h.now_ms += 1;
        assert_eq!(h.run(&["GET", "k"]), crate::resp::Frame::Null);
        assert_eq!(h.run(&["TTL", "k"]), int(-2));
    }

    #[test]
    fn pexpire_expireat_and_pexpireat_set_absolute_times() {
        let mut h = harness_with_key();
        let now = h.now_ms;
        assert_eq!(h.run(&["PEXPIRE", "k", "1500"]), int(1));
        assert_eq!(h.run(&["PEXPIRETIME", "k"]), int((now + 1500) as i64));
        assert_eq!(h.run(&["EXPIRETIME", "k"]), int(((now + 1500 + 500) / 1000) as i64));
        let at_s = now / 1000 + 100;
        assert_eq!(h.run(&["EXPIREAT", "k", &at_s.to_string()]), int(1));
        assert_eq!(h.run(&["PEXPIRETIME", "k"]), int((at_s * 1000) as i64));
        assert_eq!(h.run(&["PEXPIREAT", "k", &(now + 7).to_string()]), int(1));
        assert_eq!(h.run(&["PTTL", "k"]), int(7));
    }

    #[test]
    fn ttl_rounds_to_the_nearest_second() {
        let mut h = harness_with_key();
        h.run(&["PEXPIRE", "k", "1499"]);
        assert_eq!(h.run(&["TTL", "k"]), int(1));
        h.run(&["PEXPIRE", "k", "1500"]);
        assert_eq!(h.run(&["TTL", "k"]), int(2));
        h.run(&["PEXPIRE", "k", "400"]);
        assert_eq!(h.run(&["TTL", "k"]), int(0));
    }

    #[test]
    fn ttl_family_is_minus_two_for_missing_and_minus_one_without_expiry() {
        let mut h = harness_with_key();
        for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
            assert_eq!(h.run(&[cmd, "nokey"]), int(-2), "{cmd}");
            assert_eq!(h.run(&[cmd, "k"]), int(-1), "{cmd}");
        }
    }

    #[test]
    fn expire_on_a_missing_key_is_zero() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["EXPIRE", "nokey", "10"]), int(0));
        assert_eq!(h.run(&["PEXPIREAT", "nokey", "1"]), int(0));
    }

    #[test]
    fn a_time_in_the_past_deletes_the_key_and_replies_one() {
        let mut h = harness_with_key();
        assert_eq!(h.run(&["EXPIRE", "k", "0"]), int(1));
        assert_eq!(h.run(&["EXISTS", "k"]), int(0));
        assert_eq!(h.run(&["DBSIZE"]), int(0));
        h.run(&["SET", "k", "v"]);
        assert_eq!(h.run(&["PEXPIRE", "k", "-9223372036854775808"]), int(1));
        assert_eq!(h.run(&["EXISTS", "k"]), int(0));
        h.run(&["SET", "k", "v"]);
        assert_eq!(h.run(&["EXPIREAT", "k", "1"]), int(1));
        assert_eq!(h.run(&["EXISTS", "k"]), int(0));
    }

    #[test]
    fn overflowing_times_are_invalid_expire_times() {
        let mut h = harness_with_key();
        let max = "9223372036854775807";
        assert_eq!(h.run(&["EXPIRE", "k", max]), err("ERR invalid expire time in 'expire' command"));
        assert_eq!(h.run(&["PEXPIRE", "k", max]), err("ERR invalid expire time in 'pexpire' command"));
        assert_eq!(h.run(&["EXPIREAT", "k", max]), err("ERR invalid expire time in 'expireat' command"));
        assert_eq!(h.run(&["EXPIRE", "k", "-9223372036854775808"]), err("ERR invalid expire time in 'expire' command"));
        assert_eq!(h.run(&["PEXPIREAT", "k", max]), int(1));
        assert_eq!(h.run(&["PEXPIRETIME", "k"]), int(i64::MAX));
        assert_eq!(h.run(&["EXPIRETIME", "k"]), int(9223372036854776));
        assert_eq!(h.run(&["EXPIRE", "k", "x"]), err("ERR value is not an integer or out of range"));
    }

    #[test]
    fn option_errors_match_redis() {
        let mut h = harness_with_key();
        let both = "ERR NX and XX, GT or LT options at the same time are not compatible";
        assert_eq!(h.run(&["EXPIRE", "k", "10", "NX", "XX"]), err(both));
        assert_eq!(h.run(&["EXPIRE", "k", "10", "nx", "gt"]), err(both));
        assert_eq!(h.run(&["EXPIRE", "k", "10", "LT", "NX"]), err(both));
        assert_eq!(
            h.run(&["EXPIRE", "k", "10", "GT", "LT"]),
            err("ERR GT and LT options at the same time are not compatible")
        );
        // Options are checked before the time.
        assert_eq!(h.run(&["EXPIRE", "k", "x", "foo"]), err("ERR Unsupported option foo"));
        assert_eq!(h.run(&["EXPIRE", "k", "10", "NX", "NX"]), int(1));
    }

    #[test]
    fn nx_and_xx_depend_on_whether_a_ttl_exists() {
        let mut h = harness_with_key();
        assert_eq!(h.run(&["EXPIRE", "k", "100", "XX"]), int(0));
        assert_eq!(h.run(&["TTL", "k"]), int(-1));
        assert_eq!(h.run(&["EXPIRE", "k", "100", "NX"]), int(1));
        assert_eq!(h.run(&["EXPIRE", "k", "200", "NX"]), int(0));
        assert_eq!(h.run(&["EXPIRE", "k", "200", "XX"]), int(1));
        assert_eq!(h.run(&["TTL", "k"]), int(200));
    }

    #[test]
    fn gt_and_lt_treat_no_ttl_as_infinite() {
        let mut h = harness_with_key();
        assert_eq!(h.run(&["EXPIRE", "k", "100", "GT"]), int(0));
        assert_eq!(h.run(&["EXPIRE", "k", "100", "LT"]), int(1));
        assert_eq!(h.run(&["EXPIRE", "k", "50", "GT"]), int(0));
        assert_eq!(h.run(&["EXPIRE", "k", "100", "GT"]), int(0));
        assert_eq!(h.run(&["EXPIRE", "k", "200", "GT"]), int(1));
        assert_eq!(h.run(&["EXPIRE", "k", "300", "LT"]), int(0));
        assert_eq!(h.run(&["EXPIRE", "k", "150", "XX", "LT"]), int(1));
        assert_eq!(h.run(&["TTL", "k"]), int(150));
        // A past time that passes LT still deletes.
        assert_eq!(h.run(&["EXPIRE", "k", "-1", "LT"]), int(1));
        assert_eq!(h.run(&["EXISTS", "k"]), int(0));
    }

    #[test]
    fn persist_removes_the_ttl_once() {
        let mut h = harness_with_key();
        assert_eq!(h.run(&["PERSIST", "k"]), int(0));
        assert_eq!(h.run(&["PERSIST", "nokey"]), int(0));
        h.run(&["EXPIRE", "k", "5"]);
        assert_eq!(h.run(&["PERSIST", "k"]), int(1));
        assert_eq!(h.run(&["TTL", "k"]), int(-1));
        assert_eq!(h.run(&["PERSIST", "k"]), int(0));
        h.now_ms += 10_000;
        assert_eq!(h.run(&["GET", "k"]), bulk("v"));
    }

    #[test]
    fn persist_on_an_expired_key_is_zero() {
        let mut h = harness_with_key();
        h.run(&["PEXPIRE", "k", "5"]);
        h.now_ms += 5;
        assert_eq!(h.run(&["PERSIST", "k"]), int(0));
        assert_eq!(h.run(&["DBSIZE"]), int(0));
    }

    #[test]
    fn while_loading_a_past_time_sets_the_expiry_instead_of_deleting() {
        let mut h = harness_with_key();
        let now = h.now_ms;
        h.now_ms = 0;
        assert_eq!(h.run(&["PEXPIREAT", "k", "5"]), int(1));
        assert_eq!(h.run(&["GET", "k"]), bulk("v"));
        h.now_ms = now;
        assert_eq!(h.run(&["GET", "k"]), crate::resp::Frame::Null);
    }

    #[test]
    fn active_cycle_reclaims_untouched_expired_keys() {
        let mut h = Harness::new();
        for i in 0..50 {
            h.run(&["SET", &format!("t{i}"), "v", "EX", "1"]);
        }
        h.run(&["SET", "forever", "v"]);
        h.run(&["SET", "later", "v", "EX", "60"]);
        assert_eq!(h.shared.ks.expire_cycle(h.now_ms + 999, 1000), 0);
        assert_eq!(h.run(&["DBSIZE"]), int(52));
        // A small budget takes several steps.
        assert_eq!(h.shared.ks.expire_cycle(h.now_ms + 1000, 20), 20);
        let mut total = 20;
        while total < 50 {
            let n = h.shared.ks.expire_cycle(h.now_ms + 1000, 20);
            assert!(n > 0);
            total += n;
        }
        assert_eq!(total, 50);
        assert_eq!(h.run(&["DBSIZE"]), int(2));
        assert_eq!(h.shared.ks.expired_keys(), 50);
    }

    #[test]
    fn active_cycle_ignores_stale_hints_after_persist_or_a_longer_ttl() {
        let mut h = harness_with_key();
        h.run(&["SET", "p", "v"]);
        h.run(&["EXPIRE", "k", "1"]);
        h.run(&["EXPIRE", "p", "1"]);
        h.run(&["PERSIST", "p"]);
        h.run(&["EXPIRE", "k", "100"]);
        assert_eq!(h.shared.ks.expire_cycle(h.now_ms + 2_000, 100), 0);
        assert_eq!(h.run(&["DBSIZE"]), int(2));
        assert_eq!(h.shared.ks.expire_cycle(h.now_ms + 100_000, 100), 1);
        assert_eq!(h.run(&["EXISTS", "k", "p"]), int(1));
    }
}
