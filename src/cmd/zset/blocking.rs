//! BZPOPMIN, BZPOPMAX, BZMPOP: the blocking pops of sorted sets, on the protocol of
//! `db::blocking` exactly as BLPOP (see `cmd::list::blocking`): the non-blocking form first; when
//! every key is empty the client registers under its keys' exclusive stripes, and the writer that
//! fills a key pops for it in blocking order (logged as `ZPOPMIN|ZPOPMAX key n`) and hands the
//! members over. Inside EXEC nothing blocks. Mirrors `blockingGenericZpopCommand` (`t_zset.c`).

use bytes::Bytes;

use super::{Ctx, pop_logged_reply, popped_bytes, score_frame, write_zset};
use crate::cmd::list::{block_on, parse_timeout};
use crate::cmd::zset_args::parse_mpop;
use crate::db::blocking::{Served, Want};
use crate::error::{Error, Result};
use crate::resp::Frame;

/// A key and the (member, score) pairs popped from it.
type Popped = (Bytes, Vec<(Bytes, f64)>);

/// Pop up to `count` from the first key (in argument order) holding a sorted set: (key, [(member,
/// score)]). A re-run of a blocked command passes over keys of another type (Redis serves a blocked
/// client only from a sorted set); a first run replies WRONGTYPE for them.
fn pop_first(ctx: &Ctx, keys: &[Bytes], max: bool, count: usize, rerun: bool) -> Result<Option<Popped>> {
    for key in keys {
        let popped =
            write_zset(ctx, key, false, |st, w| Ok(Some(pop_logged_reply(st, w, key, count, max))), |_| Ok(None))
                .map(|p| p.map(popped_bytes));
        match popped {
            Ok(Some(p)) if !p.is_empty() => return Ok(Some((key.clone(), p))),
            Ok(_) => {}
            Err(Error::WrongType) if rerun => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Member and score text, alternately (what a writer hands over), as pairs.
fn served_pairs(items: Vec<Bytes>) -> Vec<(Bytes, Bytes)> {
    let mut it = items.into_iter();
    std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
}

/// BZPOPMIN's and BZPOPMAX's reply: `[key, member, score]`.
fn triple(key: Bytes, member: Bytes, score: Frame) -> Frame {
    Frame::Array(vec![Frame::Bulk(key), Frame::Bulk(member), score])
}

fn bzpop_generic(ctx: &mut Ctx, argv: &[Bytes], max: bool) -> Result<Frame> {
    let timeout = parse_timeout(&argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    let want = Want::ZPop { max, count: 1 };
    let served = |s: Served| match served_pairs(s.items).pop() {
        Some((m, score)) => triple(s.key, m, Frame::Double(score)),
        None => Frame::NullArray,
    };
    block_on(ctx, keys, timeout, want, Frame::NullArray, served, |ctx, rerun| {
        Ok(pop_first(ctx, keys, max, 1, rerun)?.and_then(|(key, mut popped)| {
            let (m, s) = popped.pop()?;
            Some((key.clone(), triple(key, m, score_frame(s))))
        }))
    })
}

/// `BZPOPMIN key [key ...] timeout`
pub fn bzpopmin(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    bzpop_generic(ctx, argv, false)
}

/// `BZPOPMAX key [key ...] timeout`
pub fn bzpopmax(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    bzpop_generic(ctx, argv, true)
}

/// ZMPOP's reply shape: `[key, [[member, score] ...]]`.
fn mpop_reply(key: Bytes, pairs: impl Iterator<Item = (Bytes, Frame)>) -> Frame {
    let pairs = pairs.map(|(m, s)| Frame::Array(vec![Frame::Bulk(m), s])).collect();
    Frame::Array(vec![Frame::Bulk(key), Frame::Array(pairs)])
}

/// `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]`
pub fn bzmpop(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let timeout = parse_timeout(&argv[1])?;
    let (keys, max, count) = parse_mpop(argv, 2)?;
    let want = Want::ZPop { max, count };
    let served = |s: Served| mpop_reply(s.key, served_pairs(s.items).into_iter().map(|(m, sc)| (m, Frame::Double(sc))));
    block_on(ctx, keys, timeout, want, Frame::NullArray, served, |ctx, rerun| {
        Ok(pop_first(ctx, keys, max, count, rerun)?
            .map(|(key, popped)| (key.clone(), mpop_reply(key, popped.into_iter().map(|(m, s)| (m, score_frame(s)))))))
    })
}
