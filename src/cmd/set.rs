//! Set commands. Mirrors Redis's `t_set.c`.
//!
//! A set is a [`Set`] (an `intset` of integers, a packed run of short strings, or an `IndexSet`
//! `hashtable`: O(1) SPOP and SRANDMEMBER by index; see `db::compact::set`) in a value cell;
//! [`super::collection`] holds the locking protocol (the same as every collection's). A set whose
//! last member is removed is removed. New sets and STORE results pick their form as Redis's
//! `setTypeCreate` / `setTypeAdd` do, so OBJECT ENCODING answers as Redis 7.0.
//!
//! Multi-key commands (SMOVE, SINTER & co and their STORE forms) hold every key's stripe
//! exclusively, taken in the one global order, so no shared-stripe writer is inside any of their
//! sets meanwhile: they see and leave a state no concurrent writer is half-way through. They lock
//! one cell at a time (the same set may be named twice; readers lock one cell only).
//!
//! AOF records replay to exactly what memory holds: SADD, SREM, SMOVE and the STORE commands are
//! logged as given (deterministic over the same state; expired keys they met are deleted and
//! `DEL` logged first) and only when they changed something; SPOP is logged as `SREM key popped...`,
//! or `DEL key` when it popped the whole set, as Redis propagates it.

#[cfg(all(test, not(feature = "loom")))]
mod tests;

use super::collection::{copy, record};
use bytes::Bytes;

use super::collection::{self, bury_if_empty, create};
use super::sample;
use super::{Ctx, arg_i64, is_opt};
use crate::db::compact::{Member, SetLimits};
use crate::db::{CellState, Entry, Set, ValueCell, WriteLock};
use crate::error::{Error, Result};
use crate::pubsub::notify::class::{GENERIC, SET};
use crate::resp::Frame;
use crate::sync::Arc;

type SetState = CellState<Set>;

fn write_set<R>(
    ctx: &Ctx,
    key: &[u8],
    creates: bool,
    on_set: impl FnOnce(&mut SetState, &WriteLock) -> Result<R>,
    on_missing: impl FnOnce(&WriteLock) -> Result<R>,
) -> Result<R> {
    collection::write(ctx, key, creates, on_set, on_missing)
}

fn read_set<R>(ctx: &Ctx, key: &[u8], f: impl FnOnce(Option<&SetState>) -> R) -> Result<R> {
    collection::read(ctx, key, f)
}

fn bulks<'a>(items: impl Iterator<Item = Member<'a>>) -> Vec<Frame> {
    items.map(|m| Frame::Bulk(m.to_bytes())).collect()
}

/// `set-max-intset-entries` as configured now.
pub fn limits(ctx: &Ctx) -> SetLimits {
    SetLimits { max_intset_entries: ctx.shared.config().set_max_intset_entries }
}

/// `SADD key member [member ...]`: how many members were new.
pub fn sadd(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let members = &argv[2..];
    let limits = limits(ctx);
    write_set(
        ctx,
        &argv[1],
        true,
        |st, w| {
            let added = members.iter().filter(|m| st.items.insert(m, &limits)).count();
            if added > 0 {
                // Redis counts the members added.
                collection::log_command_notify_n(w, argv, added as u64, SET, "sadd");
            }
            Ok(Frame::Integer(added as i64))
        },
        |w| {
            let mut set = Set::for_first(&members[0]);
            let added = members.iter().filter(|m| set.insert(m, &limits)).count();
            create(w, &argv[1], set);
            collection::log_command_notify_n(w, argv, added as u64, SET, "sadd");
            Ok(Frame::Integer(added as i64))
        },
    )
}

/// `SREM key member [member ...]`: how many members were removed.
pub fn srem(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    collection::remove_members::<Set>(ctx, argv, (SET, "srem"))
}

/// `SMEMBERS key`: a set under RESP3, an array under RESP2.
pub fn smembers(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    read_set(ctx, &argv[1], |st| Frame::Set(st.map_or_else(Vec::new, |st| bulks(st.items.iter()))))
}

/// `SISMEMBER key member`.
pub fn sismember(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    read_set(ctx, &argv[1], |st| Frame::Integer(i64::from(st.is_some_and(|st| st.items.contains(&argv[2][..])))))
}

/// `SMISMEMBER key member [member ...]`: 1 or 0 per member.
pub fn smismember(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    read_set(ctx, &argv[1], |st| {
        Frame::Array(
            argv[2..]
                .iter()
                .map(|m| Frame::Integer(i64::from(st.is_some_and(|st| st.items.contains(&m[..])))))
                .collect(),
        )
    })
}

/// `SCARD key`.
pub fn scard(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    collection::card::<Set>(ctx, &argv[1])
}

/// `SMOVE source destination member`: 1 when the member was moved (or is in a set moved onto
/// itself), 0 when the source does not hold it.
pub fn smove(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (src, dst, member) = (&argv[1][..], &argv[2][..], &argv[3]);
    let limits = limits(ctx);
    let now = ctx.now_ms;
    let mut w = ctx.write(&[src, dst]);
    let src_cell = collection::lookup_write::<Set>(&mut w, src, now);
    let dst_cell = collection::lookup_write::<Set>(&mut w, dst, now);
    // A missing source answers 0 before the destination's type is checked (as Redis).
    let Some(src_cell) = src_cell? else { return Ok(Frame::Integer(0)) };
    let dst_cell = dst_cell?;
    if src == dst {
        return Ok(Frame::Integer(i64::from(src_cell.lock().items.contains(&member[..]))));
    }
    {
        let mut st = src_cell.lock();
        if !st.items.remove(member) {
            return Ok(Frame::Integer(0));
        }
        w.notify(SET, "srem", src);
        bury_if_empty(&src_cell, &mut st, &w, src);
    }
    let added = match dst_cell {
        Some(cell) => cell.lock().items.insert(member, &limits),
        None => {
            let mut set = Set::for_first(member);
            set.insert(member, &limits);
            create(&w, dst, set);
            true
        }
    };
    // Redis counts the removal, and the addition when the destination lacked the member.
    w.log_n(&record(argv), 1 + added as u64);
    if added {
        w.notify(SET, "sadd", dst);
    }
    Ok(Frame::Integer(1))
}

/// SPOP with a count keeps removing random members while the rest is more than this many times
/// larger than what is left to pop; past that it rebuilds the set from the members that stay
/// (Redis's SPOP_MOVE_STRATEGY_MUL).
const SPOP_MOVE_STRATEGY_MUL: usize = 5;

/// `SPOP key [count]`: one random member (nil when none), or up to `count` as a set.
pub fn spop(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let count = match argv.len() {
        2 => None,
        3 => {
            let n = arg_i64(&argv[2]).map_err(|_| Error::MustBePositive)?;
            Some(usize::try_from(n).map_err(|_| Error::MustBePositive)?)
        }
        _ => return Err(Error::Syntax),
    };
    let key = &argv[1];
    let limits = limits(ctx);
    let empty = || if count.is_some() { Frame::Set(Vec::new()) } else { Frame::Null };
    write_set(
        ctx,
        key,
        false,
        |st, w| {
            let want = count.unwrap_or(1);
            if want == 0 {
                return Ok(empty());
            }
            w.notify(SET, "spop", key);
            if want >= st.items.len() {
                let all: Vec<Bytes> = std::mem::take(&mut st.items).to_vec();
                if count.is_some() {
                    // Redis counts the members popped.
                    w.log_n(&[b"DEL", key], all.len() as u64);
                    return Ok(Frame::Set(all.into_iter().map(Frame::Bulk).collect()));
                }
                w.log(&[b"SREM", key, &all[0]]);
                return Ok(Frame::Bulk(all[0].clone()));
            }
            // A random index per member (O(1) to find in the intset and the table), then its removal.
            let mut rng = sample::Rng::new();
            if count.is_none() {
                // `SPOP key`: one member, no vectors of them (nor of the record's arguments).
                let i = rng.below(st.items.len());
                let Some(m) = st.items.remove_index(i) else { return Ok(Frame::Null) };
                w.log(&[b"SREM", key, &m]);
                return Ok(Frame::Bulk(m));
            }
            let popped: Vec<Bytes> = if (st.items.len() - want) * SPOP_MOVE_STRATEGY_MUL > want {
                (0..want)
                    .filter_map(|_| {
                        let i = rng.below(st.items.len());
                        st.items.remove_index(i)
                    })
                    .collect()
            } else {
                // Most of the set goes: as Redis, pick the members that stay and build a new set
                // of them (whose form they choose: an intset when they are all integers).
                let keep = st.items.len() - want;
                let mut stay = Vec::with_capacity(keep);
                for _ in 0..keep {
                    let i = rng.below(st.items.len());
                    stay.extend(st.items.remove_index(i));
                }
                let popped = std::mem::take(&mut st.items).to_vec();
                st.items = Set::from_members(stay.iter().map(|b| &b[..]), &limits);
                popped
            };
            let mut rec: Vec<&[u8]> = vec![b"SREM", key];
            rec.extend(popped.iter().map(|m| &m[..]));
            w.log_n(&rec, popped.len() as u64);
            Ok(match count {
                None => Frame::Bulk(popped[0].clone()),
                Some(_) => Frame::Set(popped.into_iter().map(Frame::Bulk).collect()),
            })
        },
        |_| Ok(empty()),
    )
}

/// `SRANDMEMBER key [count]`: one random member, or `count` distinct ones (negative: `-count`
/// picks that may repeat).
pub fn srandmember(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let count = match argv.len() {
        2 => None,
        3 => Some(sample::parse_random_count(&argv[2])?),
        _ => return Err(Error::Syntax),
    };
    read_set(ctx, &argv[1], |st| {
        let Some(count) = count else {
            return Ok(st.map_or(Frame::Null, |st| {
                let i = sample::Rng::new().below(st.items.len());
                st.items.get_index(i).map_or(Frame::Null, |m| Frame::Bulk(m.to_bytes()))
            }));
        };
        let Some(st) = st.filter(|_| count != 0) else { return Ok(Frame::Array(Vec::new())) };
        let picks = sample::random_indices(st.items.len(), count)?;
        let members: Vec<Member> = st.items.iter().collect();
        Ok(Frame::Array(picks.into_iter().filter_map(|i| members.get(i).map(|m| Frame::Bulk(m.to_bytes()))).collect()))
    })?
}

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`.
pub fn sscan(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let cursor = sample::scan_cursor(&argv[2])?;
    read_set(ctx, &argv[1], |st| {
        let Some(st) = st else { return Ok(sample::scan_reply(0, Vec::new())) };
        let opts = sample::scan_options(&argv[3..])?;
        let members: Vec<Member> = st.items.iter().collect();
        let names: Vec<&[u8]> = members.iter().map(|m| &**m).collect();
        let (next, picks) = if matches!(st.items, Set::Ints(_)) {
            // An intset is answered whole in one call, in its order, cursor 0 (as Redis).
            (0, sample::scan_all(&names, &opts))
        } else {
            sample::scan_page(&names, cursor, &opts)
        };
        Ok(sample::scan_reply(next, picks.into_iter().map(|i| Frame::Bulk(copy(names[i]))).collect()))
    })?
}

/// Which algebra a multi-set command computes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// The sets at `keys` (None: missing), every type checked first (WRONGTYPE wins over a missing
/// key, as Redis's loops check each key before computing). The caller holds every stripe.
fn load(ctx: &Ctx, w: &mut WriteLock, keys: &[&[u8]], now_ms: u64) -> Result<Vec<Option<Arc<ValueCell<Set>>>>> {
    keys.iter()
        .map(|k| {
            let cell = collection::lookup_write::<Set>(w, k, now_ms);
            ctx.count_lookup(k, !matches!(cell, Ok(None)));
            cell
        })
        .collect()
}

/// Compute `op` over the sets; with `limit` > 0, an intersection stops at that many members. The
/// result is built as Redis builds it (an empty intset, then `setTypeAdd` of each member), so its
/// form and order (ascending for an intset) are Redis's.
fn compute(op: Op, sets: &[Option<Arc<ValueCell<Set>>>], limit: usize, limits: &SetLimits) -> Set {
    let mut out: Vec<Bytes> = Vec::new();
    match op {
        Op::Inter => {
            if sets.iter().any(Option::is_none) {
                return Set::default();
            }
            let cells: Vec<&Arc<ValueCell<Set>>> = sets.iter().flatten().collect();
            // Walk the smallest set; the others only filter it.
            let Some(first) = cells.iter().min_by_key(|c| c.lock().items.len()) else { return Set::default() };
            out = first.lock().items.to_vec();
            for c in &cells {
                if Arc::ptr_eq(c, first) {
                    continue;
                }
                let st = c.lock();
                out.retain(|m| st.items.contains(m));
            }
            if limit > 0 && out.len() > limit {
                out.truncate(limit);
            }
        }
        Op::Union => {
            for c in sets.iter().flatten() {
                out.extend(c.lock().items.iter().map(|m| m.to_bytes()));
            }
        }
        Op::Diff => {
            let Some(Some(first)) = sets.first() else { return Set::default() };
            out = first.lock().items.to_vec();
            for c in sets[1..].iter().flatten() {
                if Arc::ptr_eq(c, first) {
                    out.clear();
                    break;
                }
                let st = c.lock();
                out.retain(|m| !st.items.contains(m));
            }
        }
    }
    Set::from_members(out.iter().map(|m| &m[..]), limits)
}

/// SINTER, SUNION, SDIFF: the result as a set.
fn algebra(ctx: &mut Ctx, op: Op, keys: &[Bytes]) -> Result<Frame> {
    let keys: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    let limits = limits(ctx);
    let now = ctx.now_ms;
    let mut w = ctx.write(&keys);
    let sets = load(ctx, &mut w, &keys, now)?;
    Ok(Frame::Set(bulks(compute(op, &sets, 0, &limits).iter())))
}

/// SINTERSTORE, SUNIONSTORE, SDIFFSTORE: the result replaces `dst` (deleted when empty); its size.
fn algebra_store(ctx: &mut Ctx, op: Op, argv: &[Bytes]) -> Result<Frame> {
    let dst = &argv[1][..];
    let srcs: Vec<&[u8]> = argv[2..].iter().map(|k| &k[..]).collect();
    let mut all = srcs.clone();
    all.push(dst);
    let limits = limits(ctx);
    let now = ctx.now_ms;
    let mut w = ctx.write(&all);
    let sets = load(ctx, &mut w, &srcs, now)?;
    let result = compute(op, &sets, 0, &limits);
    let existed = w.lookup(dst, now, |e| e.is_some());
    let n = result.len() as i64;
    if result.is_empty() {
        if !existed {
            return Ok(Frame::Integer(0));
        }
        w.map().remove(dst);
        w.log_notify(&record(argv), GENERIC, "del");
    } else {
        w.insert(copy(dst), Entry::collection(result, 0));
        let event = match op {
            Op::Inter => "sinterstore",
            Op::Union => "sunionstore",
            Op::Diff => "sdiffstore",
        };
        w.log_notify(&record(argv), SET, event);
    }
    Ok(Frame::Integer(n))
}

/// `SINTER key [key ...]`.
pub fn sinter(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    algebra(ctx, Op::Inter, &argv[1..])
}

/// `SUNION key [key ...]`.
pub fn sunion(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    algebra(ctx, Op::Union, &argv[1..])
}

/// `SDIFF key [key ...]`.
pub fn sdiff(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    algebra(ctx, Op::Diff, &argv[1..])
}

/// `SINTERSTORE destination key [key ...]`.
pub fn sinterstore(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    algebra_store(ctx, Op::Inter, argv)
}

/// `SUNIONSTORE destination key [key ...]`.
pub fn sunionstore(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    algebra_store(ctx, Op::Union, argv)
}

/// `SDIFFSTORE destination key [key ...]`.
pub fn sdiffstore(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    algebra_store(ctx, Op::Diff, argv)
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`: the size of the intersection, at most
/// `limit` when one is given (0: no limit).
pub fn sintercard(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let numkeys_err = || Error::err("numkeys should be greater than 0");
    let numkeys = arg_i64(&argv[1]).map_err(|_| numkeys_err())?;
    if numkeys < 1 {
        return Err(numkeys_err());
    }
    if numkeys > argv.len() as i64 - 2 {
        return Err(Error::err("Number of keys can't be greater than number of args"));
    }
    let end = 2 + numkeys as usize;
    let mut limit = 0usize;
    let mut i = end;
    while i < argv.len() {
        if is_opt(&argv[i], "limit") && i + 1 < argv.len() {
            let negative = || Error::err("LIMIT can't be negative");
            let n = arg_i64(&argv[i + 1]).map_err(|_| negative())?;
            limit = usize::try_from(n).map_err(|_| negative())?;
            i += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    let keys: Vec<&[u8]> = argv[2..end].iter().map(|k| &k[..]).collect();
    let limits = limits(ctx);
    let now = ctx.now_ms;
    let mut w = ctx.write(&keys);
    let sets = load(ctx, &mut w, &keys, now)?;
    Ok(Frame::Integer(compute(Op::Inter, &sets, limit, &limits).len() as i64))
}
