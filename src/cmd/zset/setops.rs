//! ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD over sorted sets and plain sets (whose
//! members score 1), as Redis's `zunionInterDiffGenericCommand`: numkeys and the keys' types are
//! checked before the options are read.
//!
//! Every key's stripe is held exclusively (taken in the one global order, as SINTERSTORE), so no
//! writer is inside any input meanwhile. Each distinct cell is locked once, in argument order, for
//! the whole computation (a key may be named twice; readers lock one cell only, and any other
//! holder of several cells holds their stripes exclusively, so nobody waits on us while holding a
//! cell we want).

use bytes::Bytes;

use super::{Ctx, entries_reply, limits, record};
use crate::cmd::zset_args::{parse_setop_keys, parse_setop_options};
use crate::db::zset::SortedSet;
use crate::db::zset::aggregate::{ScoredInput, SetOp, combine, inter_card};
use crate::db::{CellGuard, Entry, Set, ValueCell, ValueRef, WriteLock};
use crate::error::{Error, Result};
use crate::pubsub::notify::class::{GENERIC, ZSET};
use crate::resp::Frame;
use crate::sync::Arc;

/// A plain set as a set-operation input: every member scores 1.
impl ScoredInput for Set {
    fn input_len(&self) -> usize {
        self.len()
    }
    fn input_score(&self, member: &[u8]) -> Option<f64> {
        self.contains(member).then_some(1.0)
    }
    fn input_for_each(&self, f: &mut dyn FnMut(&[u8], f64)) {
        for m in self.iter() {
            f(&m, 1.0);
        }
    }
}

/// An input key's cell.
enum Held {
    Set(Arc<ValueCell<Set>>),
    Zset(Arc<ValueCell<SortedSet>>),
}

impl Held {
    fn same(&self, other: &Held) -> bool {
        match (self, other) {
            (Held::Set(a), Held::Set(b)) => Arc::ptr_eq(a, b),
            (Held::Zset(a), Held::Zset(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// A locked input.
enum Guard<'a> {
    Set(CellGuard<'a, Set>),
    Zset(CellGuard<'a, SortedSet>),
}

impl Guard<'_> {
    fn input(&self) -> &dyn ScoredInput {
        match self {
            Guard::Set(g) => &g.items,
            Guard::Zset(g) => &g.items,
        }
    }
}

/// The cells at `keys` (None: missing), every type checked (WRONGTYPE for any other type, before
/// the options are parsed, as Redis). The caller holds every stripe exclusively.
fn load(ctx: &Ctx, w: &mut WriteLock, keys: &[Bytes], now_ms: u64) -> Result<Vec<Option<Held>>> {
    keys.iter()
        .map(|k| {
            let held = w.lookup(k, now_ms, |e| match e.map(|e| e.value()) {
                None => Ok(None),
                Some(ValueRef::Set(c)) => Ok(Some(Held::Set(c.clone()))),
                Some(ValueRef::Zset(c)) => Ok(Some(Held::Zset(c.clone()))),
                Some(_) => Err(Error::WrongType),
            });
            ctx.count_lookup(k, !matches!(held, Ok(None)));
            held
        })
        .collect()
}

/// Lock each distinct cell once and run `f` over the inputs (a missing key is an empty input).
fn with_inputs<R>(held: &[Option<Held>], f: impl FnOnce(&[&dyn ScoredInput]) -> R) -> R {
    let empty = SortedSet::new();
    // For each input, the index of the first input naming the same cell.
    let first: Vec<usize> = held
        .iter()
        .enumerate()
        .map(|(i, h)| match h {
            Some(h) => held[..i].iter().position(|o| o.as_ref().is_some_and(|o| o.same(h))).unwrap_or(i),
            None => i,
        })
        .collect();
    let guards: Vec<Option<Guard>> = held
        .iter()
        .enumerate()
        .map(|(i, h)| match h {
            Some(Held::Set(c)) if first[i] == i => Some(Guard::Set(c.lock())),
            Some(Held::Zset(c)) if first[i] == i => Some(Guard::Zset(c.lock())),
            _ => None,
        })
        .collect();
    let inputs: Vec<&dyn ScoredInput> =
        first.iter().map(|&j| guards[j].as_ref().map_or(&empty as &dyn ScoredInput, Guard::input)).collect();
    f(&inputs)
}

/// ZUNION, ZINTER, ZDIFF: `numkeys key [key ...]` then the options; the result as a range reply.
fn setop(ctx: &mut Ctx, argv: &[Bytes], op: SetOp, name: &str) -> Result<Frame> {
    let (keys, after) = parse_setop_keys(argv, 1, name)?;
    let key_refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    let resp3 = ctx.client.resp >= 3;
    let now = ctx.now_ms;
    let mut w = ctx.write(&key_refs);
    let held = load(ctx, &mut w, keys, now)?;
    let o = parse_setop_options(argv, after, keys.len(), op, false, false)?;
    let result = with_inputs(&held, |inputs| combine(op, inputs, &o.weights, o.aggregate));
    Ok(entries_reply(result, o.withscores, resp3))
}

/// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: the result replaces `dst` (deleted when empty); its size.
fn setop_store(ctx: &mut Ctx, argv: &[Bytes], op: SetOp, name: &str) -> Result<Frame> {
    let (keys, after) = parse_setop_keys(argv, 2, name)?;
    let dst = &argv[1][..];
    let mut all: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    all.push(dst);
    let limits = limits(ctx);
    let now = ctx.now_ms;
    let mut w = ctx.write(&all);
    let held = load(ctx, &mut w, keys, now)?;
    let o = parse_setop_options(argv, after, keys.len(), op, true, false)?;
    let result = with_inputs(&held, |inputs| combine(op, inputs, &o.weights, o.aggregate));
    drop(held);
    let n = result.len() as i64;
    if result.is_empty() {
        if !w.lookup(dst, now, |e| e.is_some()) {
            return Ok(Frame::Integer(0));
        }
        w.map().remove(dst);
        w.log_notify(&record(argv), GENERIC, "del");
    } else {
        w.insert(Bytes::copy_from_slice(dst), Entry::collection(SortedSet::from_entries(result, &limits), 0));
        w.log_notify(&record(argv), ZSET, name);
    }
    Ok(Frame::Integer(n))
}

/// `ZUNION numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`.
pub fn zunion(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    setop(ctx, argv, SetOp::Union, "zunion")
}

/// `ZINTER numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`.
pub fn zinter(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    setop(ctx, argv, SetOp::Inter, "zinter")
}

/// `ZDIFF numkeys key [key ...] [WITHSCORES]`.
pub fn zdiff(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    setop(ctx, argv, SetOp::Diff, "zdiff")
}

/// `ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]`.
pub fn zunionstore(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    setop_store(ctx, argv, SetOp::Union, "zunionstore")
}

/// `ZINTERSTORE destination numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]`.
pub fn zinterstore(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    setop_store(ctx, argv, SetOp::Inter, "zinterstore")
}

/// `ZDIFFSTORE destination numkeys key [key ...]`.
pub fn zdiffstore(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    setop_store(ctx, argv, SetOp::Diff, "zdiffstore")
}

/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`: the size of the intersection, at most
/// `limit` when one is given (0: no limit).
pub fn zintercard(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (keys, after) = parse_setop_keys(argv, 1, "zintercard")?;
    let key_refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    let now = ctx.now_ms;
    let mut w = ctx.write(&key_refs);
    let held = load(ctx, &mut w, keys, now)?;
    let o = parse_setop_options(argv, after, keys.len(), SetOp::Inter, false, true)?;
    let n = with_inputs(&held, |inputs| inter_card(inputs, o.card_limit));
    Ok(Frame::Integer(n as i64))
}
