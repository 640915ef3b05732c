//! Hash commands. Mirrors Redis's `t_hash.c`.
//!
//! A hash is a [`Hash`] (packed `listpack` while small, an `IndexMap` `hashtable` past
//! `hash-max-listpack-entries`/`-value`, converted one way as Redis) in a value cell;
//! [`super::collection`] holds the locking protocol (the same as every collection's). A hash whose
//! last field is deleted is removed.
//!
//! AOF records replay to exactly what memory holds: HSET, HSETNX, HMSET, HDEL and HINCRBY are
//! logged as given (they are deterministic) and only when they changed something; HINCRBYFLOAT is
//! logged as `HSET key field result`, as Redis propagates it. Errors and no-ops log nothing.

#[cfg(all(test, not(feature = "loom")))]
mod tests;

use super::collection::{copy, record};
use bytes::Bytes;

use super::collection::{self, create};
use super::sample::{self, MAX_RANDOM_REPLY};
use super::{Ctx, arg_i64, is_opt};
use crate::db::compact::HashLimits;
use crate::db::{CellState, Hash, WriteLock};
use crate::error::{Error, Result};
use crate::longdouble::LongDouble;
use crate::pubsub::notify::class::HASH;
use crate::resp::Frame;

type HashState = CellState<Hash>;

fn write_hash<R>(
    ctx: &Ctx,
    key: &[u8],
    creates: bool,
    on_hash: impl FnOnce(&mut HashState, &WriteLock) -> Result<R>,
    on_missing: impl FnOnce(&WriteLock) -> Result<R>,
) -> Result<R> {
    collection::write(ctx, key, creates, on_hash, on_missing)
}

fn read_hash<R>(ctx: &Ctx, key: &[u8], f: impl FnOnce(Option<&HashState>) -> R) -> Result<R> {
    collection::read(ctx, key, f)
}

/// `hash-max-listpack-entries` and `hash-max-listpack-value` as configured now.
pub fn limits(ctx: &Ctx) -> HashLimits {
    let cfg = ctx.shared.config();
    HashLimits { max_listpack_entries: cfg.hash_max_listpack_entries, max_listpack_value: cfg.hash_max_listpack_value }
}

/// Set every field/value pair of `pairs` in `h` (after HSET's conversion check on all of them);
/// the number of fields that were new.
fn set_pairs(h: &mut Hash, pairs: &[Bytes], limits: &HashLimits) -> i64 {
    h.try_conversion(pairs.iter().map(|a| &a[..]), limits);
    let mut added = 0;
    for p in pairs.chunks_exact(2) {
        added += i64::from(h.set(&p[0], &p[1], limits));
    }
    added
}

fn bulk(b: &[u8]) -> Frame {
    Frame::Bulk(copy(b))
}

/// HSET and HMSET: pairs counted before the key is looked up (Redis's arity error comes first).
fn hset_generic(ctx: &mut Ctx, argv: &[Bytes]) -> Result<i64> {
    if argv.len() % 2 == 1 {
        return Err(Error::WrongArity(String::from_utf8_lossy(&argv[0]).to_lowercase()));
    }
    let pairs = &argv[2..];
    let limits = limits(ctx);
    write_hash(
        ctx,
        &argv[1],
        true,
        |st, w| {
            let added = set_pairs(&mut st.items, pairs, &limits);
            // Redis counts every pair, new or not.
            collection::log_command_notify_n(w, argv, pairs.len() as u64 / 2, HASH, "hset");
            Ok(added)
        },
        |w| {
            let mut h = Hash::new();
            let added = set_pairs(&mut h, pairs, &limits);
            create(w, &argv[1], h);
            collection::log_command_notify_n(w, argv, pairs.len() as u64 / 2, HASH, "hset");
            Ok(added)
        },
    )
}

/// `HSET key field value [field value ...]`: the number of new fields.
pub fn hset(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    hset_generic(ctx, argv).map(Frame::Integer)
}

/// `HMSET key field value [field value ...]`: OK.
pub fn hmset(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    hset_generic(ctx, argv).map(|_| Frame::ok())
}

/// `HSETNX key field value`: 1 when the field was set, 0 when it existed.
pub fn hsetnx(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let field = &argv[2];
    let limits = limits(ctx);
    write_hash(
        ctx,
        &argv[1],
        true,
        |st, w| {
            if st.items.contains_key(field) {
                return Ok(Frame::Integer(0));
            }
            set_pairs(&mut st.items, &argv[2..4], &limits);
            collection::log_command_notify(w, argv, HASH, "hset");
            Ok(Frame::Integer(1))
        },
        |w| {
            let mut h = Hash::new();
            set_pairs(&mut h, &argv[2..4], &limits);
            create(w, &argv[1], h);
            collection::log_command_notify(w, argv, HASH, "hset");
            Ok(Frame::Integer(1))
        },
    )
}

/// `HGET key field`.
pub fn hget(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    read_hash(ctx, &argv[1], |st| st.and_then(|st| st.items.get(&argv[2])).map_or(Frame::Null, bulk))
}

/// `HMGET key field [field ...]`: a value or nil per field.
pub fn hmget(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    read_hash(ctx, &argv[1], |st| {
        Frame::Array(argv[2..].iter().map(|f| st.and_then(|st| st.items.get(f)).map_or(Frame::Null, bulk)).collect())
    })
}

/// `HDEL key field [field ...]`: how many fields were removed.
pub fn hdel(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    collection::remove_members::<Hash>(ctx, argv, (HASH, "hdel"))
}

/// `HLEN key`.
pub fn hlen(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    collection::card::<Hash>(ctx, &argv[1])
}

/// `HSTRLEN key field`: the length of the field's value, 0 when absent.
pub fn hstrlen(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    read_hash(ctx, &argv[1], |st| {
        Frame::Integer(st.and_then(|st| st.items.get(&argv[2])).map_or(0, |v| v.len() as i64))
    })
}

/// `HEXISTS key field`.
pub fn hexists(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    read_hash(ctx, &argv[1], |st| Frame::Integer(i64::from(st.is_some_and(|st| st.items.contains_key(&argv[2])))))
}

/// `HKEYS key`.
pub fn hkeys(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    read_hash(ctx, &argv[1], |st| {
        Frame::Array(st.map_or_else(Vec::new, |st| st.items.iter().map(|(f, _)| bulk(f)).collect()))
    })
}

/// `HVALS key`.
pub fn hvals(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    read_hash(ctx, &argv[1], |st| {
        Frame::Array(st.map_or_else(Vec::new, |st| st.items.iter().map(|(_, v)| bulk(v)).collect()))
    })
}

/// `HGETALL key`: a map under RESP3, a flat array under RESP2.
pub fn hgetall(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    read_hash(ctx, &argv[1], |st| {
        Frame::Map(st.map_or_else(Vec::new, |st| st.items.iter().map(|(f, v)| (bulk(f), bulk(v))).collect()))
    })
}

/// `HINCRBY key field increment`: the new value.
pub fn hincrby(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let incr = arg_i64(&argv[3])?;
    let field = &argv[2];
    let limits = limits(ctx);
    let apply = |h: &mut Hash| -> Result<i64> {
        let old = match h.get(field) {
            Some(v) => crate::util::parse_i64(v).ok_or_else(|| Error::err("hash value is not an integer"))?,
            None => 0,
        };
        let new = old.checked_add(incr).ok_or(Error::Overflow)?;
        h.set(field, new.to_string().as_bytes(), &limits);
        Ok(new)
    };
    write_hash(
        ctx,
        &argv[1],
        true,
        |st, w| {
            let new = apply(&mut st.items)?;
            w.log_notify(&record(argv), HASH, "hincrby");
            Ok(Frame::Integer(new))
        },
        |w| {
            let mut h = Hash::new();
            let new = apply(&mut h)?;
            create(w, &argv[1], h);
            w.log_notify(&record(argv), HASH, "hincrby");
            Ok(Frame::Integer(new))
        },
    )
}

/// `HINCRBYFLOAT key field increment`: the new value, computed in long double as Redis; logged as
/// `HSET key field result`.
pub fn hincrbyfloat(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let incr = LongDouble::parse(&argv[3]).ok_or(Error::NotFloat)?;
    if !incr.is_finite() {
        return Err(Error::err("value is NaN or Infinity"));
    }
    let (key, field) = (&argv[1], &argv[2]);
    let limits = limits(ctx);
    let apply = |h: &mut Hash, w: &WriteLock| -> Result<Frame> {
        let old = match h.get(field) {
            Some(v) => LongDouble::parse(v).ok_or_else(|| Error::err("hash value is not a float"))?,
            None => LongDouble::parse(b"0").ok_or(Error::NotFloat)?,
        };
        let new = old.plus(incr);
        if !new.is_finite() {
            return Err(Error::err("increment would produce NaN or Infinity"));
        }
        let text = Bytes::from(new.to_human_string());
        h.set(field, &text, &limits);
        w.log(&[b"HSET", key, field, &text]);
        Ok(Frame::Bulk(text))
    };
    write_hash(
        ctx,
        key,
        true,
        |st, w| {
            let r = apply(&mut st.items, w)?;
            w.notify(HASH, "hincrbyfloat", key);
            Ok(r)
        },
        |w| {
            let mut h = Hash::new();
            let r = apply(&mut h, w)?;
            create(w, key, h);
            w.notify(HASH, "hincrbyfloat", key);
            Ok(r)
        },
    )
}

/// `HRANDFIELD key [count [WITHVALUES]]`.
pub fn hrandfield(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    if argv.len() == 2 {
        return read_hash(ctx, &argv[1], |st| match st {
            None => Frame::Null,
            Some(st) => {
                let i = sample::Rng::new().below(st.items.len());
                st.items.get_index(i).map_or(Frame::Null, |(f, _)| bulk(f))
            }
        });
    }
    let count = sample::parse_random_count(&argv[2])?;
    let with_values = match argv.get(3) {
        None => false,
        Some(a) if argv.len() == 4 && is_opt(a, "withvalues") => true,
        Some(_) => return Err(Error::Syntax),
    };
    if with_values && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return Err(Error::err("value is out of range"));
    }
    if count < 0 && count.unsigned_abs() > MAX_RANDOM_REPLY {
        return Err(Error::err("value is out of range"));
    }
    let resp3 = ctx.client.resp >= 3;
    read_hash(ctx, &argv[1], |st| {
        let Some(st) = st.filter(|_| count != 0) else { return Ok(Frame::Array(Vec::new())) };
        let picks = sample::random_indices(st.items.len(), count)?;
        let pairs = st.items.pairs();
        let mut out = Vec::with_capacity(picks.len() * if with_values { 2 } else { 1 });
        for i in picks {
            let Some(&(f, v)) = pairs.get(i) else { continue };
            match (with_values, resp3) {
                (false, _) => out.push(bulk(f)),
                (true, true) => out.push(Frame::Array(vec![bulk(f), bulk(v)])),
                (true, false) => out.extend([bulk(f), bulk(v)]),
            }
        }
        Ok(Frame::Array(out))
    })?
}

/// `HSCAN key cursor [MATCH pattern] [COUNT count]`: fields and their values.
pub fn hscan(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let cursor = sample::scan_cursor(&argv[2])?;
    read_hash(ctx, &argv[1], |st| {
        let Some(st) = st else { return Ok(sample::scan_reply(0, Vec::new())) };
        let opts = sample::scan_options(&argv[3..])?;
        let pairs = st.items.pairs();
        let names: Vec<&[u8]> = pairs.iter().map(|p| p.0).collect();
        let (next, picks) = if matches!(st.items, Hash::Packed(_)) {
            // A listpack hash is answered whole in one call, in its order, cursor 0 (as Redis).
            (0, sample::scan_all(&names, &opts))
        } else {
            sample::scan_page(&names, cursor, &opts)
        };
        let items = picks.into_iter().flat_map(|i| [bulk(pairs[i].0), bulk(pairs[i].1)]);
        Ok(sample::scan_reply(next, items.collect()))
    })?
}
