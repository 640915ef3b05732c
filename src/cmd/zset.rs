//! Sorted-set commands. Mirrors Redis's `t_zset.c` (the commands; the data structure is
//! [`crate::db::zset`], the argument grammar [`super::zset_args`]).
//!
//! A sorted set is a [`SortedSet`] in a value cell; [`super::collection`] holds the locking
//! protocol (the same as every collection's). A sorted set whose last member is removed is removed.
//!
//! # Layout
//! This file: ZADD, ZINCRBY, ZREM and the point reads. `range`: the ZRANGE family, ZCOUNT,
//! ZLEXCOUNT, ZREMRANGEBY*, ZRANGESTORE. `pop`: ZPOPMIN/ZPOPMAX, ZMPOP, ZRANDMEMBER, ZSCAN.
//! `setops`: ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD. `blocking`: BZPOPMIN,
//! BZPOPMAX, BZMPOP.
//!
//! # AOF records
//! Replaying them rebuilds exactly what memory held: a ZADD whose every pair changed the set is
//! logged as given (its score texts parse to the same doubles again; its flags decide the same on
//! the same state); any other ZADD and ZINCRBY as `ZADD key score member ...` of the members they
//! changed, each score written by [`format_score`] (which reads back as the same double); pops are logged as `ZREM key
//! popped...` (`ZPOPMIN|ZPOPMAX key n` when a writer serves blocked clients); ZREM, ZREMRANGEBY* and the STORE commands as given (deterministic over the same
//! state), and only when they changed something.

mod blocking;
mod pop;
mod range;
mod setops;
#[cfg(all(test, not(feature = "loom")))]
mod tests;

pub use blocking::{bzmpop, bzpopmax, bzpopmin};
pub use pop::{zmpop, zpopmax, zpopmin, zrandmember, zscan};
pub use range::{
    zcount, zlexcount, zrange, zrangebylex, zrangebyscore, zrangestore, zremrangebylex, zremrangebyrank,
    zremrangebyscore, zrevrange, zrevrangebylex, zrevrangebyscore,
};
pub use setops::{zdiff, zdiffstore, zinter, zintercard, zinterstore, zunion, zunionstore};

use super::collection::record;
use bytes::Bytes;

use super::Ctx;
use super::collection::{self, create_announced};
use super::zset_args::parse_zadd;
use crate::db::zset::score::{ScoreText, format_score};
use crate::db::zset::{SortedSet, ZsetLimits};
use crate::db::{CellState, WriteLock};
use crate::error::Result;
use crate::pubsub::notify::class::ZSET;
use crate::resp::Frame;
use pop::{pop_logged_reply, popped_bytes};

type ZState = CellState<SortedSet>;

fn write_zset<R>(
    ctx: &Ctx,
    key: &[u8],
    creates: bool,
    on_zset: impl FnOnce(&mut ZState, &WriteLock) -> Result<R>,
    on_missing: impl FnOnce(&WriteLock) -> Result<R>,
) -> Result<R> {
    collection::write(ctx, key, creates, on_zset, on_missing)
}

fn read_zset<R>(ctx: &Ctx, key: &[u8], f: impl FnOnce(Option<&ZState>) -> R) -> Result<R> {
    collection::read(ctx, key, f)
}

/// `zset-max-listpack-entries` and `zset-max-listpack-value` as configured now.
fn limits(ctx: &Ctx) -> ZsetLimits {
    let cfg = ctx.shared.config();
    ZsetLimits { max_listpack_entries: cfg.zset_max_listpack_entries, max_listpack_value: cfg.zset_max_listpack_value }
}

/// A score as Redis replies with it: a RESP3 double, a bulk string under RESP2.
fn score_frame(score: f64) -> Frame {
    Frame::Double(Bytes::copy_from_slice(ScoreText::new(score).as_bytes()))
}

/// Digits of `n` in decimal.
fn dec_len(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// `<kind><n>\r\n` at the end of `out`.
fn put_header(out: &mut Vec<u8>, kind: u8, n: usize) {
    let mut line = [0u8; 23];
    let mut digits = [0u8; 20];
    let d = crate::util::i64_text(n as i64, &mut digits);
    line[0] = kind;
    line[1..=d.len()].copy_from_slice(d);
    line[d.len() + 1..d.len() + 3].copy_from_slice(b"\r\n");
    out.extend_from_slice(&line[..d.len() + 3]);
}

/// `$<len>\r\n<data>\r\n` at the end of `out`.
fn put_bulk(out: &mut Vec<u8>, data: &[u8]) {
    put_header(out, b'$', data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Bytes of `$<len>\r\n<data>\r\n`.
fn bulk_len(len: usize) -> usize {
    1 + dec_len(len) + 2 + len + 2
}

/// Entries with their scores as a RESP2 reply, a flat array `member, score, ...` of bulk strings
/// (the scores' text as `addReplyDouble`'s), encoded at once (see [`Frame::Encoded`]) into one
/// allocation of the reply's exact size: no frame, `Bytes` or score `String` per entry. Only for
/// RESP2 clients: under RESP3 the scores are `,` doubles, which an encoded reply does not carry.
fn pairs_encoded<M: AsRef<[u8]>>(entries: &[(M, f64)]) -> Frame {
    let scores: smallvec::SmallVec<[ScoreText; 1]> = entries.iter().map(|(_, s)| ScoreText::new(*s)).collect();
    let mut size = 1 + dec_len(entries.len() * 2) + 2;
    for ((m, _), s) in entries.iter().zip(&scores) {
        size += bulk_len(m.as_ref().len()) + bulk_len(s.as_bytes().len());
    }
    let mut out = Vec::with_capacity(size);
    put_header(&mut out, b'*', entries.len() * 2);
    for ((m, _), s) in entries.iter().zip(&scores) {
        put_bulk(&mut out, m.as_ref());
        put_bulk(&mut out, s.as_bytes());
    }
    debug_assert_eq!(out.len(), size);
    // Its length is its capacity: `Bytes` takes the buffer over without a second allocation.
    Frame::Encoded(Bytes::from(out))
}

/// Entries' members as an array of bulk strings (the same under RESP2 and RESP3), encoded at once
/// into one allocation of its exact size (see [`pairs_encoded`]).
fn members_encoded<M: AsRef<[u8]>>(entries: &[(M, f64)]) -> Frame {
    let size = 1 + dec_len(entries.len()) + 2 + entries.iter().map(|(m, _)| bulk_len(m.as_ref().len())).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    put_header(&mut out, b'*', entries.len());
    for (m, _) in entries {
        put_bulk(&mut out, m.as_ref());
    }
    debug_assert_eq!(out.len(), size);
    Frame::Encoded(Bytes::from(out))
}

/// Entries as a range reply: members only, or with scores (flat pairs under RESP2, a two-element
/// array per entry under RESP3, as Redis 7.0).
fn entries_reply(entries: Vec<(Bytes, f64)>, withscores: bool, resp3: bool) -> Frame {
    if !withscores {
        return Frame::Array(entries.into_iter().map(|(m, _)| Frame::Bulk(m)).collect());
    }
    if !resp3 {
        return pairs_encoded(&entries);
    }
    Frame::Array(if resp3 {
        entries.into_iter().map(|(m, s)| Frame::Array(vec![Frame::Bulk(m), score_frame(s)])).collect()
    } else {
        entries.into_iter().flat_map(|(m, s)| [Frame::Bulk(m), score_frame(s)]).collect()
    })
}

/// Log `ZADD key score member ...` of the entries a ZADD/ZINCRBY changed (nothing when none).
fn log_changed(w: &WriteLock, key: &[u8], changed: &[(&[u8], f64)]) {
    if changed.is_empty() {
        return;
    }
    let scores: Vec<String> = changed.iter().map(|(_, s)| format_score(*s)).collect();
    let mut rec: Vec<&[u8]> = vec![b"ZADD", key];
    for ((m, _), s) in changed.iter().zip(&scores) {
        rec.push(s.as_bytes());
        rec.push(m);
    }
    // Redis counts the members added or updated.
    w.log_n(&rec, changed.len() as u64);
}

/// ZADD and ZINCRBY (`incr`): arguments parsed before the key is looked up, as Redis.
fn zadd_generic(ctx: &mut Ctx, argv: &[Bytes], incr: bool) -> Result<Frame> {
    let args = parse_zadd(argv, incr)?;
    let limits = limits(ctx);
    let flags = args.flags;
    let key = &argv[1];
    let event = if flags.incr { "zincr" } else { "zadd" };
    let reply = |sum: crate::db::zset::add::ZaddSummary, w: &WriteLock, announce: bool| {
        if !flags.incr && sum.changed.len() == args.pairs.len() {
            // Every pair changed the set: the command as given replays the same (each score text
            // is the client's, which parses to the same double again), as Redis propagates it,
            // without formatting the scores.
            collection::log_command_n(w, argv, sum.changed.len() as u64);
        } else {
            log_changed(w, key, &sum.changed);
        }
        if announce && !sum.changed.is_empty() {
            w.notify(ZSET, event, key);
        }
        if let Some(e) = sum.error {
            return Err(e);
        }
        Ok(if flags.incr {
            sum.score.map_or(Frame::Null, score_frame)
        } else {
            Frame::Integer(sum.reply_count(flags.ch) as i64)
        })
    };
    write_zset(
        ctx,
        key,
        !flags.xx,
        |st, w| reply(st.items.zadd(&args.pairs, flags, &limits), w, true),
        |w| {
            if flags.xx {
                return Ok(if flags.incr { Frame::Null } else { Frame::Integer(0) });
            }
            let mut z = SortedSet::for_new_key(args.pairs[0].1.len(), &limits);
            let sum = z.zadd(&args.pairs, flags, &limits);
            let changed = !sum.changed.is_empty();
            let reply = reply(sum, w, false);
            // Redis announces the new set and the add, then serves the blocked clients (their
            // pops), who take their members before the set is visible (see `db::blocking`).
            if changed {
                w.notify(crate::pubsub::notify::class::NEW, "new", key);
                w.notify(ZSET, event, key);
            }
            w.serve_waiters(key, &mut z);
            if !z.is_empty() {
                create_announced(w, key, z);
            } else if changed {
                // Blocked clients took it all: Redis created the set and their pops deleted it.
                w.notify(crate::pubsub::notify::class::GENERIC, "del", key);
            }
            reply
        },
    )
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`.
pub fn zadd(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    zadd_generic(ctx, argv, false)
}

/// `ZINCRBY key increment member`: the new score.
pub fn zincrby(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    zadd_generic(ctx, argv, true)
}

/// `ZREM key member [member ...]`: how many were removed.
pub fn zrem(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    collection::remove_members::<SortedSet>(ctx, argv, (ZSET, "zrem"))
}

/// `ZCARD key`.
pub fn zcard(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    collection::card::<SortedSet>(ctx, &argv[1])
}

/// `ZSCORE key member`: the score, nil when absent.
pub fn zscore(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    read_zset(ctx, &argv[1], |st| st.and_then(|st| st.items.score(&argv[2])).map_or(Frame::Null, score_frame))
}

/// `ZMSCORE key member [member ...]`: a score or nil per member.
pub fn zmscore(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    read_zset(ctx, &argv[1], |st| {
        Frame::Array(
            argv[2..].iter().map(|m| st.and_then(|st| st.items.score(m)).map_or(Frame::Null, score_frame)).collect(),
        )
    })
}

fn rank_generic(ctx: &mut Ctx, argv: &[Bytes], rev: bool) -> Result<Frame> {
    read_zset(ctx, &argv[1], |st| {
        st.and_then(|st| st.items.rank(&argv[2], rev)).map_or(Frame::Null, |(r, _)| Frame::Integer(r as i64))
    })
}

/// `ZRANK key member`: the 0-based rank by ascending score, nil when absent.
pub fn zrank(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    rank_generic(ctx, argv, false)
}

/// `ZREVRANK key member`: the rank by descending score.
pub fn zrevrank(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    rank_generic(ctx, argv, true)
}
