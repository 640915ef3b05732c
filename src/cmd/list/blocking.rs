//! Blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) and LMPOP. Mirrors the blocking half
//! of Redis's `t_list.c`.
//!
//! A blocking command first tries its non-blocking form. When every key is empty it takes the
//! keys' stripes exclusively, checks again and registers on the keys before releasing them (the
//! protocol of `db::blocking`), then asks the connection to wait ([`Client::block`]). When the wait
//! ends the command runs again: BLPOP, BRPOP and BLMPOP reply with what the pusher handed over
//! (popped and logged as `LPOP|RPOP key n` by the pusher), or with a timeout; BLMOVE and
//! BRPOPLPUSH were only woken and run their non-blocking form again (logged as `LMOVE ...`). The
//! AOF never holds a blocking command. Inside EXEC nothing blocks: a blocking command replies as
//! its non-blocking form on empty keys.
//!
//! [`Client::block`]: crate::cmd::Client::block

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{End, lmove_generic, write_list};
use crate::cmd::{BlockRequest, Ctx, arg_i64, is_opt};
use crate::db::ValueRef;
use crate::db::blocking::{Registration, Served, Want};
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::sync::fault::{self, Fault};

/// A blocking timeout in seconds (`getTimeoutFromObjectOrReply`): `0` waits forever (None). As in
/// Redis, the seconds become whole milliseconds truncated toward zero (so `-0.0001` is `0`), and a
/// value whose milliseconds overflow a C `long long` (`inf`, `1e20`) reads as negative.
pub(crate) fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>> {
    let secs = std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|v| !v.is_nan())
        .ok_or_else(|| Error::err("timeout is not a float or out of range"))?;
    let ms = (secs * 1000.0).trunc();
    if ms >= i64::MAX as f64 || ms < 0.0 {
        return Err(Error::err("timeout is negative"));
    }
    // Redis 7.0 adds the milliseconds to the clock unchecked; a deadline past what the clock can
    // hold waits forever here.
    Ok((ms > 0.0).then(|| Duration::from_millis(ms as u64)))
}

/// Pop up to `count` elements at `end` of the list at `key`, logged as `LPOP|RPOP key n`;
/// None when there is no list. `counted`: the elements count as changes since the last save
/// (not for a woken BLPOP/BRPOP, which Redis serves uncounted).
fn pop_from(ctx: &Ctx, key: &[u8], end: End, count: usize, counted: bool) -> Result<Option<Vec<Bytes>>> {
    let name: &[u8] = if end == End::Left { b"LPOP" } else { b"RPOP" };
    write_list(
        ctx,
        key,
        false,
        |st, w| {
            let popped: Vec<Bytes> = (0..count).map_while(|_| end.pop(&mut st.items)).collect();
            if popped.is_empty() {
                return Ok(None);
            }
            let changes = if counted { popped.len() as u64 } else { 0 };
            w.log_n(&[name, key, popped.len().to_string().as_bytes()], changes);
            w.notify(crate::pubsub::notify::class::LIST, end.pop_event(), key);
            Ok(Some(popped))
        },
        |_| Ok(None),
    )
}

/// Pop from the first key (in argument order) that holds a list. A re-run of a blocked command
/// passes over keys of another type (Redis serves a blocked client only from a list); a first run
/// replies WRONGTYPE for them.
fn pop_first(
    ctx: &Ctx,
    keys: &[Bytes],
    end: End,
    count: usize,
    rerun: bool,
    counted: bool,
) -> Result<Option<(Bytes, Vec<Bytes>)>> {
    for key in keys {
        match pop_from(ctx, key, end, count, counted) {
            Ok(Some(items)) => return Ok(Some((key.clone(), items))),
            Ok(None) | Err(Error::WrongType) if rerun => {}
            Ok(None) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Run `attempt` (the non-blocking form: `Some(reply)` when it found something); when it found
/// nothing, block on `keys` for `timeout`, waiting for `want` (see the module doc; BZPOPMIN & co
/// use it too). Run again
/// after the wait: `served` builds the reply from what a pusher handed over. `empty` is the reply
/// inside EXEC.
#[allow(clippy::too_many_arguments)]
pub(crate) fn block_on(
    ctx: &mut Ctx,
    keys: &[Bytes],
    timeout: Option<Duration>,
    want: Want,
    empty: Frame,
    served: impl FnOnce(Served) -> Frame,
    mut attempt: impl FnMut(&Ctx, bool) -> Result<Option<(Bytes, Frame)>>,
) -> Result<Frame> {
    let shared = ctx.shared;
    let db = ctx.client.db;
    if let Some(reg) = ctx.client.blocked.as_ref() {
        if ctx.client.block_timed_out && fault::on(Fault::TimeoutDropsHandedOver) {
            // Broken: a timed-out client replies without looking at what was handed over.
            ctx.client.blocked = None;
            return Ok(Frame::NullArray);
        }
        if let Some(s) = reg.take_served() {
            ctx.client.blocked = None;
            // The reply waits for the pop's record like any write's (appendfsync always).
            if s.seq > ctx.last_seq.get() {
                ctx.last_seq.set(s.seq);
            }
            return Ok(served(s));
        }
        if ctx.client.block_timed_out {
            ctx.client.blocked = None;
            return Ok(Frame::NullArray);
        }
    }
    loop {
        let rerun = ctx.client.blocked.is_some();
        match attempt(ctx, rerun) {
            Ok(Some((_, reply))) => {
                ctx.client.blocked = None;
                return Ok(reply);
            }
            Ok(None) => {}
            Err(e) => {
                if let Some(reg) = ctx.client.blocked.take() {
                    shared.ks.pass_on(reg);
                }
                return Err(e);
            }
        }
        if ctx.now_ms == 0 || shared.ks.in_exec() {
            return Ok(empty);
        }
        let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        let mut w = shared.ks.write(db, &refs, &ctx.last_seq);
        let now = ctx.now_ms;
        // A key holding the type this client blocks for (sorted sets for ZPop, lists otherwise).
        let zset = matches!(want, Want::ZPop { .. });
        let holds =
            |v: ValueRef<'_>| if zset { matches!(v, ValueRef::Zset(_)) } else { matches!(v, ValueRef::List(_)) };
        let filled = keys.iter().any(|k| w.map().get(k, |e| e.is_some_and(|e| !e.is_expired(now) && holds(e.value()))));
        if filled {
            // Pushed between the attempt and the lock: try again.
            continue;
        }
        if !ctx.client.blocked.as_ref().is_some_and(|r| r.is_for(db, keys)) {
            let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
            let owned = keys.iter().map(|k| Bytes::copy_from_slice(k)).collect();
            ctx.client.blocked = Some(Registration::new(shared.ks.blocking().clone(), db, owned, deadline, want));
        }
        let Some(reg) = ctx.client.blocked.as_ref() else { return Ok(empty) };
        if fault::on(Fault::BlockRegisterWithoutStripe) {
            // Broken: the keys are released between the last check and the registration.
            w.release();
            crate::sync::thread::yield_now();
        }
        shared.ks.blocking().register(reg);
        drop(w);
        ctx.client.block = Some(BlockRequest { waiter: reg.waiter(), deadline: reg.deadline });
        ctx.client.skip_reply = true;
        return Ok(Frame::Null);
    }
}

/// `[key, element ...]`: BLPOP's and BRPOP's reply.
fn pair_reply(key: Bytes, items: Vec<Bytes>) -> Frame {
    let mut reply = vec![Frame::Bulk(key)];
    reply.extend(items.into_iter().map(Frame::Bulk));
    Frame::Array(reply)
}

/// BLPOP and BRPOP: `[key, element]` from the first non-empty key.
fn bpop_generic(ctx: &mut Ctx, argv: &[Bytes], end: End) -> Result<Frame> {
    let timeout = parse_timeout(&argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    let want = Want::Pop { left: end == End::Left, count: 1, mpop: false };
    let served = |s: Served| pair_reply(s.key, s.items);
    block_on(ctx, keys, timeout, want, Frame::NullArray, served, |ctx, rerun| {
        // A woken BLPOP/BRPOP is what Redis serves without counting it (`serveClientBlockedOnList`).
        Ok(pop_first(ctx, keys, end, 1, rerun, !rerun)?.map(|(key, items)| (key.clone(), pair_reply(key, items))))
    })
}

/// `BLPOP key [key ...] timeout`
pub fn blpop(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    bpop_generic(ctx, argv, End::Left)
}

/// `BRPOP key [key ...] timeout`
pub fn brpop(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    bpop_generic(ctx, argv, End::Right)
}

/// BLMOVE and BRPOPLPUSH: LMOVE once `src` holds an element.
fn bmove_generic(ctx: &mut Ctx, argv: &[Bytes], from: End, to: End, timeout: Option<Duration>) -> Result<Frame> {
    let (src, dst) = (&argv[1], &argv[2]);
    // Never served by a pusher (see `db::blocking`): woken, it runs again.
    block_on(
        ctx,
        std::slice::from_ref(src),
        timeout,
        Want::Rerun,
        Frame::Null,
        |_| Frame::Null,
        // Woken, the move is one Redis serves without counting it.
        |ctx, rerun| {
            lmove_generic(ctx, src, dst, from, to, !rerun).map(|f| (f != Frame::Null).then(|| (src.clone(), f)))
        },
    )
}

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout`
pub fn blmove(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (from, to) = (End::parse(&argv[3])?, End::parse(&argv[4])?);
    let timeout = parse_timeout(&argv[5])?;
    bmove_generic(ctx, argv, from, to, timeout)
}

/// `BRPOPLPUSH source destination timeout`: `BLMOVE source destination RIGHT LEFT timeout`.
pub fn brpoplpush(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let timeout = parse_timeout(&argv[3])?;
    bmove_generic(ctx, argv, End::Right, End::Left, timeout)
}

/// The arguments of LMPOP/BLMPOP from `numkeys` on: `numkeys key [key ...] LEFT|RIGHT [COUNT n]`
/// (`lmpopGenericCommand`'s checks, in its order).
fn parse_mpop(args: &[Bytes]) -> Result<(&[Bytes], End, usize)> {
    let numkeys =
        arg_i64(&args[0]).ok().filter(|n| *n > 0).ok_or_else(|| Error::err("numkeys should be greater than 0"))?;
    let where_idx = usize::try_from(numkeys).ok().and_then(|n| n.checked_add(1)).filter(|&i| i < args.len());
    let Some(where_idx) = where_idx else { return Err(Error::Syntax) };
    let end = End::parse(&args[where_idx])?;
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        match args.get(j + 1) {
            Some(v) if count.is_none() && is_opt(&args[j], "count") => {
                let n =
                    arg_i64(v).ok().filter(|n| *n > 0).ok_or_else(|| Error::err("count should be greater than 0"))?;
                count = Some(usize::try_from(n).unwrap_or(usize::MAX));
                j += 2;
            }
            _ => return Err(Error::Syntax),
        }
    }
    Ok((&args[1..where_idx], end, count.unwrap_or(1)))
}

/// LMPOP's and BLMPOP's reply: `[key, [element ...]]`.
fn mpop_attempt(ctx: &Ctx, keys: &[Bytes], end: End, count: usize, rerun: bool) -> Result<Option<(Bytes, Frame)>> {
    Ok(pop_first(ctx, keys, end, count, rerun, true)?
        .map(|(key, items)| (key.clone(), Frame::Array(vec![Frame::Bulk(key), Frame::bulk_array(items)]))))
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`: pop from the first non-empty list;
/// the null array when all are empty.
pub fn lmpop(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (keys, end, count) = parse_mpop(&argv[1..])?;
    Ok(mpop_attempt(ctx, keys, end, count, false)?.map_or(Frame::NullArray, |(_, reply)| reply))
}

/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`
pub fn blmpop(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let timeout = parse_timeout(&argv[1])?;
    let (keys, end, count) = parse_mpop(&argv[2..])?;
    let want = Want::Pop { left: end == End::Left, count, mpop: true };
    let served = |s: Served| Frame::Array(vec![Frame::Bulk(s.key), Frame::bulk_array(s.items)]);
    block_on(ctx, keys, timeout, want, Frame::NullArray, served, |ctx, rerun| {
        mpop_attempt(ctx, keys, end, count, rerun)
    })
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::Harness;
    use crate::resp::Frame;

    fn err(s: &str) -> Frame {
        Frame::Error(bytes::Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn timeouts_are_parsed_as_redis_does() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["BLPOP", "k", "-1"]), err("ERR timeout is negative"));
        assert_eq!(h.run(&["BLPOP", "k", "inf"]), err("ERR timeout is negative"));
        assert_eq!(h.run(&["BLPOP", "k", "1e20"]), err("ERR timeout is negative"));
        assert_eq!(h.run(&["BLPOP", "k", "abc"]), err("ERR timeout is not a float or out of range"));
        assert_eq!(h.run(&["BLPOP", "k", "nan"]), err("ERR timeout is not a float or out of range"));
        assert_eq!(h.run(&["BLMPOP", "-1", "0", "k", "LEFT"]), err("ERR timeout is negative"));
        assert_eq!(h.run(&["BLMOVE", "a", "b", "UP", "LEFT", "x"]), err("ERR syntax error"));
    }

    #[test]
    fn blocking_pops_serve_existing_elements_at_once() {
        let mut h = Harness::new();
        h.run(&["RPUSH", "b", "1", "2", "3"]);
        assert_eq!(h.run(&["BLPOP", "a", "b", "0"]), Frame::bulk_array(["b", "1"].map(bytes::Bytes::from)));
        assert_eq!(h.run(&["BRPOP", "a", "b", "0"]), Frame::bulk_array(["b", "3"].map(bytes::Bytes::from)));
        assert_eq!(h.run(&["BLMOVE", "b", "c", "LEFT", "RIGHT", "0"]), Frame::Bulk("2".into()));
        assert_eq!(h.run(&["EXISTS", "b"]), Frame::Integer(0));
        assert_eq!(h.run(&["BRPOPLPUSH", "c", "b", "0"]), Frame::Bulk("2".into()));
        assert_eq!(h.run(&["LRANGE", "b", "0", "-1"]), Frame::bulk_array(["2"].map(bytes::Bytes::from)));
    }

    #[test]
    fn lmpop_pops_from_the_first_non_empty_list() {
        let mut h = Harness::new();
        h.run(&["RPUSH", "b", "1", "2", "3"]);
        let reply = h.run(&["LMPOP", "2", "a", "b", "RIGHT", "COUNT", "2"]);
        let items = Frame::bulk_array(["3", "2"].map(bytes::Bytes::from));
        assert_eq!(reply, Frame::Array(vec![Frame::Bulk("b".into()), items]));
        let reply = h.run(&["LMPOP", "1", "b", "left", "count", "10"]);
        let items = Frame::bulk_array(["1"].map(bytes::Bytes::from));
        assert_eq!(reply, Frame::Array(vec![Frame::Bulk("b".into()), items]));
        assert_eq!(h.run(&["LMPOP", "1", "b", "LEFT"]), Frame::NullArray);
    }

    #[test]
    fn lmpop_errors_match_redis() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["LMPOP", "0", "a", "LEFT"]), err("ERR numkeys should be greater than 0"));
        assert_eq!(h.run(&["LMPOP", "x", "a", "LEFT"]), err("ERR numkeys should be greater than 0"));
        assert_eq!(h.run(&["LMPOP", "2", "a", "LEFT"]), err("ERR syntax error"));
        assert_eq!(h.run(&["LMPOP", "9223372036854775807", "a", "LEFT"]), err("ERR syntax error"));
        assert_eq!(h.run(&["LMPOP", "1", "a", "MIDDLE"]), err("ERR syntax error"));
        assert_eq!(h.run(&["LMPOP", "1", "a", "LEFT", "COUNT", "0"]), err("ERR count should be greater than 0"));
        assert_eq!(h.run(&["LMPOP", "1", "a", "LEFT", "COUNT", "1", "COUNT", "2"]), err("ERR syntax error"));
        assert_eq!(h.run(&["LMPOP", "1", "a", "LEFT", "COUNT"]), err("ERR syntax error"));
        h.run(&["SET", "s", "v"]);
        assert_eq!(
            h.run(&["LMPOP", "2", "a", "s", "LEFT"]),
            err("WRONGTYPE Operation against a key holding the wrong kind of value")
        );
    }
}
