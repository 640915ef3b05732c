//! List commands. Mirrors Redis's `t_list.c`.
//!
//! Every list is a [`List`] (packed nodes of elements, as Redis's quicklist; see
//! `db::compact::list`) in a value cell; [`super::collection`] holds the locking
//! protocol shared by every collection (fast path: shared stripe + cell lock; slow path: exclusive
//! stripe). A list that becomes empty is removed, as Redis never keeps an empty list.
//!
//! AOF records replay to exactly what memory holds: pushes, LSET, LINSERT, LREM and LTRIM are
//! logged as given (they are deterministic) and only when they changed something; pops are logged
//! as `LPOP|RPOP key n` with the number actually popped; RPOPLPUSH is logged as `LMOVE src dst
//! RIGHT LEFT`. Errors and no-ops log nothing.

mod blocking;
#[cfg(all(test, not(feature = "loom")))]
mod tests;

use bytes::Bytes;

use super::collection::{self, bury_if_empty, create, create_announced, record};
use super::{Ctx, arg_i64, is_opt};
use crate::db::{List, ListState, WriteLock};
use crate::error::{Error, Result};
use crate::pubsub::notify::class::LIST;
use crate::resp::Frame;
use crate::sync::Arc;
pub use blocking::{blmove, blmpop, blpop, brpop, brpoplpush, lmpop};
pub(crate) use blocking::{block_on, parse_timeout};

/// Which end of a list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum End {
    Left,
    Right,
}

impl End {
    /// `LEFT` / `RIGHT` (case-insensitive), else a syntax error (`getListPositionFromObjectOrReply`).
    fn parse(arg: &[u8]) -> Result<End> {
        if is_opt(arg, "left") {
            Ok(End::Left)
        } else if is_opt(arg, "right") {
            Ok(End::Right)
        } else {
            Err(Error::Syntax)
        }
    }

    fn name(self) -> &'static [u8] {
        match self {
            End::Left => b"LEFT",
            End::Right => b"RIGHT",
        }
    }

    fn pop(self, items: &mut List) -> Option<Bytes> {
        match self {
            End::Left => items.pop_front(),
            End::Right => items.pop_back(),
        }
    }

    /// The keyspace events of a push and a pop at this end.
    fn push_event(self) -> &'static str {
        if self == End::Left { "lpush" } else { "rpush" }
    }

    fn pop_event(self) -> &'static str {
        if self == End::Left { "lpop" } else { "rpop" }
    }

    fn push(self, items: &mut List, v: &[u8]) {
        match self {
            End::Left => items.push_front(v),
            End::Right => items.push_back(v),
        }
    }
}

/// `list-max-listpack-size` as configured now (the node size of lists created from now on).
pub(super) fn fill(ctx: &Ctx) -> i64 {
    ctx.shared.config().list_max_listpack_size
}

/// [`collection::write`] on a list.
pub(super) fn write_list<R>(
    ctx: &Ctx,
    key: &[u8],
    creates: bool,
    on_list: impl FnOnce(&mut ListState, &WriteLock) -> Result<R>,
    on_missing: impl FnOnce(&WriteLock) -> Result<R>,
) -> Result<R> {
    collection::write(ctx, key, creates, on_list, on_missing)
}

/// [`collection::read`] on a list.
fn read_list<R>(ctx: &Ctx, key: &[u8], f: impl FnOnce(Option<&ListState>) -> R) -> Result<R> {
    collection::read(ctx, key, f)
}

fn len_reply(st: &ListState) -> Frame {
    Frame::Integer(st.items.len() as i64)
}

/// Parse a count that must be >= 0; anything else (not a number included) gets `err`
/// (`getPositiveLongFromObjectOrReply`).
fn non_negative(arg: &[u8], err: Error) -> Result<i64> {
    arg_i64(arg).ok().filter(|n| *n >= 0).ok_or(err)
}

/// A list index (negative counts from the tail) resolved against `len`, None when out of range.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if index < 0 { index + len } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

/// LRANGE/LTRIM's range normalisation: the inclusive in-bounds range, None when empty.
fn resolve_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { start + len } else { start }.max(0);
    let end = if end < 0 { end + len } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}

// ---- push and pop ------------------------------------------------------------------------------

/// LPUSH, RPUSH, LPUSHX, RPUSHX (`pushGenericCommand`); `only_existing` for the X forms.
fn push_generic(ctx: &Ctx, argv: &[Bytes], end: End, only_existing: bool) -> Result<Frame> {
    let key = &argv[1];
    let values = || argv[2..].iter().map(|v| &v[..]);
    let fill = fill(ctx);
    write_list(
        ctx,
        key,
        !only_existing,
        |st, w| {
            for v in values() {
                end.push(&mut st.items, v);
            }
            // Redis counts every element pushed.
            collection::log_command_n(w, argv, argv.len() as u64 - 2);
            w.notify(LIST, end.push_event(), key);
            Ok(len_reply(st))
        },
        |w| {
            if only_existing {
                return Ok(Frame::Integer(0));
            }
            let mut items = List::new(fill);
            for v in values() {
                end.push(&mut items, v);
            }
            items.shrink();
            let n = items.len();
            w.log_n(&record(argv), argv.len() as u64 - 2);
            // Redis announces the new list and the push, then serves the blocked clients (their
            // pops), who take their elements before the list is visible (see `db::blocking`).
            w.notify(crate::pubsub::notify::class::NEW, "new", key);
            w.notify(LIST, end.push_event(), key);
            w.serve_waiters(key, &mut items);
            if !items.is_empty() {
                create_announced(w, key, items);
            } else {
                // Blocked clients took it all: Redis created the list and their pops deleted it.
                w.notify(crate::pubsub::notify::class::GENERIC, "del", key);
            }
            Ok(Frame::Integer(n as i64))
        },
    )
}

/// `LPUSH key element [element ...]`
pub fn lpush(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    push_generic(ctx, argv, End::Left, false)
}

/// `RPUSH key element [element ...]`
pub fn rpush(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    push_generic(ctx, argv, End::Right, false)
}

/// `LPUSHX key element [element ...]`: only when the list exists.
pub fn lpushx(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    push_generic(ctx, argv, End::Left, true)
}

/// `RPUSHX key element [element ...]`: only when the list exists.
pub fn rpushx(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    push_generic(ctx, argv, End::Right, true)
}

/// LPOP and RPOP (`popGenericCommand`). Without a count: the element or nil. With one: an array
/// of up to `count` elements, `*0` for count 0 on an existing list, a null array on a missing key.
fn pop_generic(ctx: &Ctx, argv: &[Bytes], end: End) -> Result<Frame> {
    let (name, record_name): (&str, &[u8]) = match end {
        End::Left => ("lpop", b"LPOP"),
        End::Right => ("rpop", b"RPOP"),
    };
    let count = match argv.len() {
        2 => None,
        3 => Some(non_negative(&argv[2], Error::MustBePositive)?),
        _ => return Err(Error::WrongArity(name.into())),
    };
    let key = &argv[1];
    write_list(
        ctx,
        key,
        false,
        |st, w| {
            let n = count.unwrap_or(1).min(st.items.len() as i64) as usize;
            if n == 0 {
                return Ok(Frame::Array(Vec::new()));
            }
            let reply = match count {
                // One element: no vector of them.
                None => end.pop(&mut st.items).map_or(Frame::Null, Frame::Bulk),
                Some(_) => Frame::Array((0..n).filter_map(|_| end.pop(&mut st.items)).map(Frame::Bulk).collect()),
            };
            w.log_n(&[record_name, key, crate::util::i64_text(n as i64, &mut [0u8; 20])], n as u64);
            w.notify(LIST, end.pop_event(), key);
            Ok(reply)
        },
        |_| Ok(if count.is_some() { Frame::NullArray } else { Frame::Null }),
    )
}

/// `LPOP key [count]`
pub fn lpop(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    pop_generic(ctx, argv, End::Left)
}

/// `RPOP key [count]`
pub fn rpop(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    pop_generic(ctx, argv, End::Right)
}

// ---- reads -------------------------------------------------------------------------------------

/// `LLEN key`
pub fn llen(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    collection::card::<crate::db::List>(ctx, &argv[1])
}

/// `LRANGE key start stop`: inclusive, negative indexes count from the tail.
pub fn lrange(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (start, end) = (arg_i64(&argv[2])?, arg_i64(&argv[3])?);
    read_list(ctx, &argv[1], |st| {
        let Some(st) = st else {
            return Frame::Array(Vec::new());
        };
        match resolve_range(start, end, st.items.len()) {
            None => Frame::Array(Vec::new()),
            Some((s, e)) => crate::cmd::offload(e - s + 1, || Frame::Encoded(st.items.range_encoded(s, e))),
        }
    })
}

/// `LINDEX key index`: nil when out of range (a missing key wins over a bad index, as in Redis).
pub fn lindex(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    read_list(ctx, &argv[1], |st| {
        let Some(st) = st else { return Ok(Frame::Null) };
        let index = arg_i64(&argv[2])?;
        Ok(resolve_index(index, st.items.len())
            .and_then(|i| st.items.get(i))
            .map_or(Frame::Null, |v| Frame::Bulk(Bytes::copy_from_slice(v))))
    })?
}

/// LPOS's options.
struct LposOpts {
    /// Which match to start from; negative searches from the tail.
    rank: i64,
    /// None: reply with one index; Some(0): every match; Some(n): at most n.
    count: Option<i64>,
    /// Compare at most this many elements (0: all).
    maxlen: i64,
}

fn parse_lpos_opts(args: &[Bytes]) -> Result<LposOpts> {
    let mut o = LposOpts { rank: 1, count: None, maxlen: 0 };
    let mut j = 0;
    while j < args.len() {
        let (opt, value) = (&args[j], args.get(j + 1));
        match value {
            Some(v) if is_opt(opt, "rank") => {
                o.rank = arg_i64(v)?;
                if o.rank == 0 {
                    return Err(Error::err(
                        "RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
                         or use negative to start from the end of the list",
                    ));
                }
            }
            Some(v) if is_opt(opt, "count") => {
                o.count = Some(non_negative(v, Error::err("COUNT can't be negative"))?);
            }
            Some(v) if is_opt(opt, "maxlen") => {
                o.maxlen = non_negative(v, Error::err("MAXLEN can't be negative"))?;
            }
            _ => return Err(Error::Syntax),
        }
        j += 2;
    }
    Ok(o)
}

/// The indexes LPOS reports (`lposCommand`). Redis negates the rank in C `long`s, so RANK
/// -9223372036854775808 stays negative there and means "every match from the tail": the wrapping
/// arithmetic below reproduces that.
fn lpos_matches(items: &List, ele: &[u8], o: &LposOpts) -> Vec<usize> {
    let (from_tail, rank) = if o.rank < 0 { (true, o.rank.wrapping_neg()) } else { (false, o.rank) };
    let len = items.len();
    let mut matches: i64 = 0;
    let mut found = Vec::new();
    let walk = if from_tail { items.iter_rev() } else { items.iter() };
    for (i, item) in walk.enumerate() {
        if o.maxlen != 0 && i as i64 >= o.maxlen {
            break;
        }
        let pos = if from_tail { len - 1 - i } else { i };
        if item != ele {
            continue;
        }
        matches += 1;
        if matches >= rank {
            found.push(pos);
            match o.count {
                None => break,
                Some(c) if c != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= c => break,
                _ => {}
            }
        }
    }
    found
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`
pub fn lpos(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let o = parse_lpos_opts(&argv[3..])?;
    let ele = &argv[2];
    read_list(ctx, &argv[1], |st| {
        let found = st.map(|st| lpos_matches(&st.items, ele, &o)).unwrap_or_default();
        match o.count {
            Some(_) => Frame::Array(found.into_iter().map(|i| Frame::Integer(i as i64)).collect()),
            None => found.first().map_or(Frame::Null, |&i| Frame::Integer(i as i64)),
        }
    })
}

// ---- in-place edits ----------------------------------------------------------------------------

/// `LSET key index element`
pub fn lset(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    write_list(
        ctx,
        &argv[1],
        false,
        |st, w| {
            let index = arg_i64(&argv[2])?;
            let i = resolve_index(index, st.items.len()).ok_or(Error::IndexOutOfRange)?;
            if !st.items.set(i, &argv[3]) {
                return Err(Error::IndexOutOfRange);
            }
            w.log(&record(argv));
            w.notify(LIST, "lset", &argv[1]);
            Ok(Frame::ok())
        },
        |_| Err(Error::NoSuchKey),
    )
}

/// `LINSERT key BEFORE|AFTER pivot element`: the new length, -1 without the pivot, 0 without the key.
pub fn linsert(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let after = if is_opt(&argv[2], "after") {
        true
    } else if is_opt(&argv[2], "before") {
        false
    } else {
        return Err(Error::Syntax);
    };
    let (pivot, ele) = (&argv[3], &argv[4]);
    write_list(
        ctx,
        &argv[1],
        false,
        |st, w| {
            let Some(at) = st.items.iter().position(|x| x == &pivot[..]) else {
                return Ok(Frame::Integer(-1));
            };
            st.items.insert(if after { at + 1 } else { at }, ele);
            w.log(&record(argv));
            w.notify(LIST, "linsert", &argv[1]);
            Ok(len_reply(st))
        },
        |_| Ok(Frame::Integer(0)),
    )
}

/// `LREM key count element`: remove the first `count` matches (from the tail if negative, all
/// if 0); the number removed.
pub fn lrem(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let count = arg_i64(&argv[2])?;
    let ele = &argv[3];
    // Redis negates in a C long: -LONG_MIN stays negative and never equals the removed count.
    let limit = if count == 0 { usize::MAX } else { usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX) };
    write_list(
        ctx,
        &argv[1],
        false,
        |st, w| {
            let len = st.items.len();
            let picked: Vec<usize> = if count < 0 {
                st.items
                    .iter_rev()
                    .enumerate()
                    .filter(|(_, x)| x == &&ele[..])
                    .map(|(i, _)| len - 1 - i)
                    .take(limit)
                    .collect()
            } else {
                st.items.iter().enumerate().filter(|(_, x)| x == &&ele[..]).map(|(i, _)| i).take(limit).collect()
            };
            if !picked.is_empty() {
                let mut remove = vec![false; len];
                for &i in &picked {
                    remove[i] = true;
                }
                st.items.retain_indexed(|i, _| !remove[i]);
                w.log_n(&record(argv), picked.len() as u64);
                w.notify(LIST, "lrem", &argv[1]);
            }
            Ok(Frame::Integer(picked.len() as i64))
        },
        |_| Ok(Frame::Integer(0)),
    )
}

/// `LTRIM key start stop`: keep only the given inclusive range.
pub fn ltrim(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (start, end) = (arg_i64(&argv[2])?, arg_i64(&argv[3])?);
    write_list(
        ctx,
        &argv[1],
        false,
        |st, w| {
            let len = st.items.len();
            match resolve_range(start, end, len) {
                Some((s, e)) => {
                    st.items.drop_back(len - 1 - e);
                    st.items.drop_front(s);
                }
                None => st.items.clear(),
            }
            if st.items.len() != len {
                // Redis counts the elements trimmed.
                w.log_n(&record(argv), (len - st.items.len()) as u64);
            }
            w.notify(LIST, "ltrim", &argv[1]);
            Ok(Frame::ok())
        },
        |_| Ok(Frame::ok()),
    )
}

// ---- moves between lists -----------------------------------------------------------------------

/// LMOVE and RPOPLPUSH (`lmoveGenericCommand`): pop from `src` at `from`, push onto `dst` at
/// `to` (creating it), atomically under both keys' exclusive stripes. The same key rotates.
/// `counted`: the move counts as a change since the last save (not for a woken BLMOVE, which Redis
/// serves uncounted).
fn lmove_generic(ctx: &Ctx, src: &[u8], dst: &[u8], from: End, to: End, counted: bool) -> Result<Frame> {
    let now = ctx.now_ms;
    let mut w = ctx.write(&[src, dst]);
    let Some(src_cell) = collection::lookup_write(&mut w, src, now)? else { return Ok(Frame::Null) };
    let dst_cell = if src == dst { None } else { collection::lookup_write(&mut w, dst, now)? };
    let mut src_st = src_cell.lock();
    let Some(v) = from.pop(&mut src_st.items) else { return Ok(Frame::Null) };
    match dst_cell {
        None if src == dst => to.push(&mut src_st.items, &v),
        // Two keys never share a cell (RENAME and MOVE move it); locking it twice would deadlock.
        Some(dst_cell) if Arc::ptr_eq(&dst_cell, &src_cell) => to.push(&mut src_st.items, &v),
        // Both stripes are ours exclusively: no writer holds either list lock, and readers take
        // one list lock at a time, so holding two cannot deadlock.
        Some(dst_cell) => to.push(&mut dst_cell.lock().items, &v),
        None => create(&w, dst, List::from_items([&v], fill(ctx))),
    }
    w.log_n(&[b"LMOVE", src, dst, from.name(), to.name()], counted as u64);
    w.notify(LIST, to.push_event(), dst);
    w.notify(LIST, from.pop_event(), src);
    // The destination holds an element now, and the source may still: serve the clients blocked on
    // them once the lists' locks are released (still under both stripes, after the LMOVE record).
    w.serve_after(dst);
    if !src_st.items.is_empty() && src != dst {
        w.serve_after(src);
    }
    bury_if_empty(&src_cell, &mut src_st, &w, src);
    Ok(Frame::Bulk(v))
}

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`
pub fn lmove(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (from, to) = (End::parse(&argv[3])?, End::parse(&argv[4])?);
    lmove_generic(ctx, &argv[1], &argv[2], from, to, true)
}

/// `RPOPLPUSH source destination`: `LMOVE source destination RIGHT LEFT`.
pub fn rpoplpush(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    lmove_generic(ctx, &argv[1], &argv[2], End::Right, End::Left, true)
}
