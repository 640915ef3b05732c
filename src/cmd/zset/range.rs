//! The ZRANGE family (`zrangeGenericCommand` and its wrappers), ZCOUNT, ZLEXCOUNT,
//! ZREMRANGEBYRANK/SCORE/LEX and ZRANGESTORE.

use bytes::Bytes;

use super::{Ctx, ZState, entries_reply, limits, members_encoded, pairs_encoded, read_zset, record, write_zset};
use crate::cmd::arg_i64;
use crate::cmd::collection;
use crate::cmd::zset_args::{RangeArgs, RangeBy, RangeKind, parse_lex_range, parse_range, parse_score_range};
use crate::db::Entry;
use crate::db::zset::SortedSet;
use crate::error::Result;
use crate::pubsub::notify::class::{GENERIC, ZSET};
use crate::resp::Frame;

/// The entries a parsed range selects, in reply order.
fn select(z: &SortedSet, args: &RangeArgs) -> Vec<(Bytes, f64)> {
    match &args.by {
        RangeBy::Rank(start, end) => z.range_by_rank(*start, *end, args.rev),
        RangeBy::Score(r) => z.range_by_score(r, args.rev, args.limit),
        RangeBy::Lex(r) => z.range_by_lex(r, args.rev, args.limit),
    }
}

/// [`select`] with the members borrowed from the set.
fn select_refs<'s>(z: &'s SortedSet, args: &RangeArgs) -> Vec<(&'s [u8], f64)> {
    match &args.by {
        RangeBy::Rank(start, end) => z.range_by_rank_refs(*start, *end, args.rev),
        RangeBy::Score(r) => z.range_by_score_refs(r, args.rev, args.limit),
        RangeBy::Lex(r) => z.range_by_lex_refs(r, args.rev, args.limit),
    }
}

/// One read-only range command: grammar first, then the key. The reply is encoded straight from
/// the set's members (no copy of each into a `Bytes`, no frame per entry), except RESP3's
/// WITHSCORES (its scores are `,` doubles).
fn range_generic(ctx: &mut Ctx, argv: &[Bytes], kind: RangeKind, rev: bool) -> Result<Frame> {
    let args = parse_range(argv, 1, false, kind, rev)?;
    let resp3 = ctx.client.resp >= 3;
    read_zset(ctx, &argv[1], |st| {
        if args.withscores && resp3 {
            let entries = st.map_or_else(Vec::new, |st| select(&st.items, &args));
            return entries_reply(entries, true, true);
        }
        let Some(st) = st else { return Frame::Array(Vec::new()) };
        let entries = select_refs(&st.items, &args);
        if args.withscores { pairs_encoded(&entries) } else { members_encoded(&entries) }
    })
}

/// `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`.
pub fn zrange(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    range_generic(ctx, argv, RangeKind::Auto, false)
}

/// `ZREVRANGE key start stop [WITHSCORES]`.
pub fn zrevrange(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    range_generic(ctx, argv, RangeKind::Rank, true)
}

/// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`.
pub fn zrangebyscore(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    range_generic(ctx, argv, RangeKind::Score, false)
}

/// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`.
pub fn zrevrangebyscore(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    range_generic(ctx, argv, RangeKind::Score, true)
}

/// `ZRANGEBYLEX key min max [LIMIT offset count]`.
pub fn zrangebylex(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    range_generic(ctx, argv, RangeKind::Lex, false)
}

/// `ZREVRANGEBYLEX key max min [LIMIT offset count]`.
pub fn zrevrangebylex(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    range_generic(ctx, argv, RangeKind::Lex, true)
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`: the range replaces
/// `dst` (deleted when empty); its size.
pub fn zrangestore(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let args = parse_range(argv, 2, true, RangeKind::Auto, false)?;
    let limits = limits(ctx);
    let (dst, src) = (&argv[1][..], &argv[2][..]);
    let now = ctx.now_ms;
    let mut w = ctx.write(&[dst, src]);
    let entries = match collection::lookup_write::<SortedSet>(&mut w, src, now)? {
        Some(cell) => select(&cell.lock().items, &args),
        None => Vec::new(),
    };
    let n = entries.len() as i64;
    if entries.is_empty() {
        if !w.lookup(dst, now, |e| e.is_some()) {
            return Ok(Frame::Integer(0));
        }
        w.map().remove(dst);
        w.log_notify(&record(argv), GENERIC, "del");
    } else {
        w.insert(Bytes::copy_from_slice(dst), Entry::collection(SortedSet::from_entries(entries, &limits), 0));
        w.log_notify(&record(argv), ZSET, "zrangestore");
    }
    Ok(Frame::Integer(n))
}

/// `ZCOUNT key min max`.
pub fn zcount(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let r = parse_score_range(&argv[2], &argv[3])?;
    read_zset(ctx, &argv[1], |st| Frame::Integer(st.map_or(0, |st| st.items.count_by_score(&r) as i64)))
}

/// `ZLEXCOUNT key min max`.
pub fn zlexcount(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let r = parse_lex_range(&argv[2], &argv[3])?;
    read_zset(ctx, &argv[1], |st| Frame::Integer(st.map_or(0, |st| st.items.count_by_lex(&r) as i64)))
}

/// One ZREMRANGEBY* command: `remove` on the set, logged as given when it removed something.
fn remrange(ctx: &mut Ctx, argv: &[Bytes], event: &str, remove: impl FnOnce(&mut ZState) -> usize) -> Result<Frame> {
    write_zset(
        ctx,
        &argv[1],
        false,
        |st, w| {
            let n = remove(st);
            if n > 0 {
                w.log_notify_n(&record(argv), n as u64, ZSET, event);
            }
            Ok(Frame::Integer(n as i64))
        },
        |_| Ok(Frame::Integer(0)),
    )
}

/// `ZREMRANGEBYRANK key start stop`.
pub fn zremrangebyrank(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (start, end) = (arg_i64(&argv[2])?, arg_i64(&argv[3])?);
    remrange(ctx, argv, "zremrangebyrank", |st| st.items.remove_range_by_rank(start, end))
}

/// `ZREMRANGEBYSCORE key min max`.
pub fn zremrangebyscore(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let r = parse_score_range(&argv[2], &argv[3])?;
    remrange(ctx, argv, "zremrangebyscore", |st| st.items.remove_range_by_score(&r))
}

/// `ZREMRANGEBYLEX key min max`.
pub fn zremrangebylex(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let r = parse_lex_range(&argv[2], &argv[3])?;
    remrange(ctx, argv, "zremrangebylex", |st| st.items.remove_range_by_lex(&r))
}
