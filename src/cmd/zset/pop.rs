//! ZPOPMIN, ZPOPMAX, ZMPOP (`genericZpopCommand`, `zmpopGenericCommand`), ZRANDMEMBER and ZSCAN.

use bytes::Bytes;

use super::{Ctx, ZState, entries_reply, pairs_encoded, read_zset, score_frame, write_zset};
use crate::cmd::collection::{self, bury_if_empty};
use crate::cmd::sample::{self, MAX_RANDOM_REPLY};
use crate::cmd::zset_args::{parse_mpop, parse_pop_count, parse_randmember};
use crate::db::WriteLock;
use crate::db::zset::{Popped, SortedSet, member_bytes};
use crate::error::{Error, Result};
use crate::resp::Frame;

/// Pop up to `count` entries and log them as `ZREM key popped...`.
pub(super) fn pop_logged_reply(st: &mut ZState, w: &WriteLock, key: &[u8], count: usize, max: bool) -> Popped {
    let popped = st.items.pop_entries(count, max);
    if !popped.is_empty() {
        let mut rec: smallvec::SmallVec<[&[u8]; 8]> = smallvec::smallvec![&b"ZREM"[..], key];
        rec.extend(popped.iter().map(|(m, _)| &m[..]));
        // Redis counts every member popped.
        w.log_n(&rec, popped.len() as u64);
        w.notify(crate::pubsub::notify::class::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    }
    popped
}

/// Popped entries as `(member, score)` pairs of `Bytes`.
pub(super) fn popped_bytes(popped: Popped) -> Vec<(Bytes, f64)> {
    popped.into_iter().map(|(m, s)| (member_bytes(m), s)).collect()
}

fn zpop_generic(ctx: &mut Ctx, argv: &[Bytes], max: bool) -> Result<Frame> {
    let count = parse_pop_count(argv)?;
    let resp3 = ctx.client.resp >= 3;
    let key = &argv[1];
    write_zset(
        ctx,
        key,
        false,
        |st, w| {
            let popped = pop_logged_reply(st, w, key, count.unwrap_or(1), max);
            if !resp3 {
                // Flat pairs of bulk strings, encoded straight from the popped entries.
                return Ok(pairs_encoded(&popped));
            }
            // RESP3: a single pop is a flat pair (as Redis 7.0), a counted one an array of pairs;
            // the scores are doubles.
            if count.is_none() {
                let items = popped.into_iter().flat_map(|(m, s)| [Frame::Bulk(member_bytes(m)), score_frame(s)]);
                return Ok(Frame::Array(items.collect()));
            }
            Ok(entries_reply(popped_bytes(popped), true, true))
        },
        |_| Ok(Frame::Array(Vec::new())),
    )
}

/// `ZPOPMIN key [count]`: the lowest entries with their scores.
pub fn zpopmin(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    zpop_generic(ctx, argv, false)
}

/// `ZPOPMAX key [count]`: the highest entries with their scores.
pub fn zpopmax(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    zpop_generic(ctx, argv, true)
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]`: `[key, [[member, score] ...]]` from the
/// first non-empty sorted set, the null array when there is none. The keys' stripes are held
/// exclusively; they are looked at in order and the first non-empty one is popped (a key of another
/// type before it is WRONGTYPE, as Redis).
pub fn zmpop(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (keys, max, count) = parse_mpop(argv, 1)?;
    let key_refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    let now = ctx.now_ms;
    let mut w = ctx.write(&key_refs);
    for key in keys {
        let Some(cell) = collection::lookup_write::<SortedSet>(&mut w, key, now)? else { continue };
        let mut st = cell.lock();
        let popped = pop_logged_reply(&mut st, &w, key, count, max);
        bury_if_empty(&cell, &mut st, &w, key);
        let pairs = popped.into_iter().map(|(m, s)| Frame::Array(vec![Frame::Bulk(member_bytes(m)), score_frame(s)]));
        return Ok(Frame::Array(vec![Frame::Bulk(key.clone()), Frame::Array(pairs.collect())]));
    }
    Ok(Frame::NullArray)
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`: one random member (nil when none), or `count` distinct
/// ones (negative: `-count` picks that may repeat).
pub fn zrandmember(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let parsed = parse_randmember(argv)?;
    if let Some((count, _)) = parsed
        && count < 0
        && count.unsigned_abs() > MAX_RANDOM_REPLY
    {
        return Err(Error::err("value is out of range"));
    }
    let resp3 = ctx.client.resp >= 3;
    read_zset(ctx, &argv[1], |st| {
        let Some((count, withscores)) = parsed else {
            return Ok(st.map_or(Frame::Null, |st| {
                let i = sample::Rng::new().below(st.items.len());
                st.items.at(i).map_or(Frame::Null, |(m, _)| Frame::Bulk(m))
            }));
        };
        let Some(st) = st.filter(|_| count != 0) else { return Ok(Frame::Array(Vec::new())) };
        let picks = sample::random_indices(st.items.len(), count)?;
        let all = st.items.entries();
        let entries = picks.into_iter().map(|i| all[i].clone()).collect();
        Ok(entries_reply(entries, withscores, resp3))
    })?
}

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`: members and their scores (as bulk strings).
pub fn zscan(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let cursor = sample::scan_cursor(&argv[2])?;
    read_zset(ctx, &argv[1], |st| {
        let Some(st) = st else { return Ok(sample::scan_reply(0, Vec::new())) };
        let opts = sample::scan_options(&argv[3..])?;
        let entries = st.items.entries();
        let names: Vec<&Bytes> = entries.iter().map(|e| &e.0).collect();
        let (next, picks) = if st.items.encoding() == crate::db::zset::Encoding::Listpack {
            // A listpack sorted set is answered whole in one call, in its order, cursor 0 (as Redis).
            (0, sample::scan_all(&names, &opts))
        } else {
            sample::scan_page(&names, cursor, &opts)
        };
        let items = picks.into_iter().flat_map(|i| {
            let (m, s) = &entries[i];
            [Frame::Bulk(m.clone()), Frame::Bulk(Bytes::from(crate::db::zset::score::format_score(*s)))]
        });
        Ok(sample::scan_reply(next, items.collect()))
    })?
}
