//! Stream commands. Mirrors Redis's `t_stream.c` (the commands; the data structure is
//! [`crate::db::stream`]).
//!
//! A stream is a [`Stream`] in a value cell; [`super::collection`] holds the locking protocol (the
//! same as every collection's), except that a stream stays in the keyspace when its last entry
//! goes, as in Redis.
//!
//! # Layout
//! This file: the argument grammar (IDs, trimming), XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM,
//! XSETID. `read`: XREAD and XREADGROUP, blocking included. `group`: XGROUP, XACK, XPENDING,
//! XCLAIM, XAUTOCLAIM. `info`: XINFO.
//!
//! # AOF records
//! Replaying them rebuilds exactly what memory held, as Redis propagates: XADD with the ID it
//! generated, and with `MAXLEN|MINID ~ x` rewritten as `= <what it left>` (length, or first ID);
//! XREADGROUP, XCLAIM and XAUTOCLAIM as one `XCLAIM key group consumer 0 id TIME t RETRYCOUNT n
//! FORCE JUSTID LASTID last` per entry they gave (or dropped), `XGROUP SETID ... ENTRIESREAD` when
//! NOACK moved the group, `XGROUP CREATECONSUMER` for a consumer nothing else creates on replay.
//! Other writes are logged as given, only when they changed something.

mod group;
mod info;
mod read;
#[cfg(all(test, not(feature = "loom")))]
mod tests;

pub use group::{XGROUP_SUBS, xack, xautoclaim, xclaim, xgroup, xpending};
pub use info::{XINFO_SUBS, xinfo};
pub use read::{xread, xreadgroup};

use bytes::Bytes;

use super::collection::{self, create, record};
use super::{Ctx, arg_i64, is_opt};
use crate::db::stream::{NodeLimits, Stream, StreamId, Trim};
use crate::db::{CellState, WriteLock};
use crate::error::{Error, Result};
use crate::pubsub::notify::class;
use crate::resp::Frame;

type XState = CellState<Stream>;

/// Redis's `string2ull`: a strict i64 that is not negative, else what `strtoull` reads in full.
fn string2ull(s: &[u8]) -> Option<u64> {
    // Up to 19 digits (no sign, no space) cannot overflow: summed directly, whatever their
    // leading zeros (redis-benchmark's `__rand_int__-0` IDs are zero-padded to 12 digits).
    if !s.is_empty() && s.len() <= 19 && s.iter().all(u8::is_ascii_digit) {
        return Some(s.iter().fold(0u64, |v, d| v * 10 + u64::from(d - b'0')));
    }
    if let Some(v) = crate::util::parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let (i, neg) = crate::util::c_sign_prefix(s);
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

fn invalid_id() -> Error {
    Error::err("Invalid stream ID specified as stream command argument")
}

/// `streamGenericParseIDOrReply`: `-`, `+` (refused when `strict`), `<ms>`, `<ms>-<seq>`, and when
/// `star` `<ms>-*`. Returns the ID and whether its sequence was given.
fn parse_id_full(arg: &[u8], missing_seq: u64, strict: bool, star: bool) -> Result<(StreamId, bool)> {
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    match arg {
        b"-" | b"+" if strict => return Err(invalid_id()),
        b"-" => return Ok((StreamId::MIN, true)),
        b"+" => return Ok((StreamId::MAX, true)),
        _ => {}
    }
    // C strings: the argument ends at its first NUL.
    let arg = arg.split(|&b| b == 0).next().unwrap_or_default();
    let (ms, seq) = match arg.iter().position(|&b| b == b'-') {
        Some(i) => (&arg[..i], Some(&arg[i + 1..])),
        None => (arg, None),
    };
    let ms = string2ull(ms).ok_or_else(invalid_id)?;
    match seq {
        Some(b"*") if star => Ok((StreamId::new(ms, 0), false)),
        Some(seq) => Ok((StreamId::new(ms, string2ull(seq).ok_or_else(invalid_id)?), true)),
        None => Ok((StreamId::new(ms, missing_seq), true)),
    }
}

/// An ID where `-` and `+` are refused (`streamParseStrictIDOrReply`).
pub(crate) fn parse_strict_id(arg: &[u8]) -> Result<StreamId> {
    parse_id_full(arg, 0, true, false).map(|(id, _)| id)
}

/// An ID where `-` and `+` mean the ends (`streamParseIDOrReply`).
pub(crate) fn parse_id(arg: &[u8], missing_seq: u64) -> Result<StreamId> {
    parse_id_full(arg, missing_seq, false, false).map(|(id, _)| id)
}

/// A range bound (`streamParseIntervalIDOrReply`): `(id` is exclusive, moved one step inward.
pub(crate) fn parse_bound(arg: &[u8], start: bool) -> Result<StreamId> {
    let missing = if start { 0 } else { u64::MAX };
    if arg.len() > 1 && arg[0] == b'(' {
        let id = parse_id_full(&arg[1..], missing, true, false)?.0;
        let moved = if start { id.incr() } else { id.decr() };
        moved.ok_or_else(|| {
            Error::err(if start { "invalid start ID for the interval" } else { "invalid end ID for the interval" })
        })
    } else {
        parse_id(arg, missing)
    }
}

/// `getLongLongFromObjectOrReply`.
fn arg_ll(arg: &[u8]) -> Result<i64> {
    arg_i64(arg)
}

/// One entry as Redis replies with it: `[id, [field, value, ...]]`.
pub(crate) fn entry_frame(id: StreamId, pairs: Option<Vec<Bytes>>) -> Frame {
    let fields = match pairs {
        Some(p) => Frame::Array(p.into_iter().map(Frame::Bulk).collect()),
        None => Frame::NullArray,
    };
    Frame::Array(vec![Frame::Bulk(id.to_bytes()), fields])
}

pub(crate) fn entries_frame(entries: Vec<(StreamId, Vec<Bytes>)>) -> Frame {
    Frame::Array(entries.into_iter().map(|(id, p)| entry_frame(id, Some(p))).collect())
}

/// `stream-node-max-bytes` and `stream-node-max-entries` as configured now, and the LIMIT of a `~`
/// trim without one (Redis's `100 * stream-node-max-entries`, capped both ways): one read of the
/// configuration per command.
fn limits(ctx: &Ctx) -> (NodeLimits, u64) {
    let cfg = ctx.shared.config();
    let n = 100 * cfg.stream_node_max_entries as u64;
    let approx = if n == 0 { 10_000 } else { n.min(1_000_000) };
    (NodeLimits { max_bytes: cfg.stream_node_max_bytes, max_entries: cfg.stream_node_max_entries }, approx)
}

/// The parsed trimming options of XADD and XTRIM (`streamAddTrimArgs`).
#[derive(Debug, Default)]
struct TrimArgs {
    how: Option<Trim>,
    approx: bool,
    limit: u64,
    /// Index of the MAXLEN/MINID value (its `~`/`=` is just before it when given).
    arg_idx: usize,
    /// Whether `~` or `=` was written.
    op_given: bool,
    nomkstream: bool,
    /// XADD: the ID argument's index, the ID and whether its sequence was given; None for `*`.
    id_idx: usize,
    id: Option<(StreamId, bool)>,
}

/// `streamParseAddOrTrimArgsOrReply`. `loading`: records replayed from the AOF, where LIMIT is
/// not enforced (they were rewritten to trim exactly).
fn parse_trim_args(argv: &[Bytes], xadd: bool, loading: bool, approx_default: u64) -> Result<TrimArgs> {
    let mut a = TrimArgs::default();
    let mut limit_given = false;
    let mut i = 2;
    let incompatible = || Error::err("syntax error, MAXLEN and MINID options at the same time are not compatible");
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let opt = &argv[i][..];
        if xadd && opt == b"*" {
            break;
        } else if (is_opt(opt, "maxlen") || is_opt(opt, "minid")) && more > 0 {
            if a.how.is_some() {
                return Err(incompatible());
            }
            // An optional `~` or `=` between the option and its threshold.
            let next = &argv[i + 1][..];
            (a.approx, a.op_given) = (false, false);
            if more >= 2 && (next == b"~" || next == b"=") {
                a.approx = next == b"~";
                a.op_given = true;
                i += 1;
            }
            a.how = Some(if is_opt(opt, "maxlen") {
                let n = arg_ll(&argv[i + 1])?;
                if n < 0 {
                    return Err(Error::err("The MAXLEN argument must be >= 0."));
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(parse_strict_id(&argv[i + 1])?)
            });
            i += 1;
            a.arg_idx = i;
        } else if is_opt(opt, "limit") && more > 0 {
            let n = arg_ll(&argv[i + 1])?;
            if n < 0 {
                return Err(Error::err("The LIMIT argument must be >= 0."));
            }
            a.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && is_opt(opt, "nomkstream") {
            a.nomkstream = true;
        } else if xadd {
            a.id = Some(parse_id_full(opt, 0, true, true)?);
            break;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    a.id_idx = i;
    if a.limit != 0 && a.how.is_none() {
        return Err(Error::err("syntax error, LIMIT cannot be used without specifying a trimming strategy"));
    }
    if !xadd && a.how.is_none() {
        return Err(Error::err("syntax error, XTRIM must be called with a trimming strategy"));
    }
    if loading {
        a.limit = 0;
    } else if limit_given {
        if !a.approx {
            return Err(Error::err("syntax error, LIMIT cannot be used without the special ~ option"));
        }
    } else if a.approx {
        // At most 100 nodes' worth.
        a.limit = approx_default;
    } else {
        a.limit = 0;
    }
    Ok(a)
}

/// Trim `s` as `a` says; the record's rewritten MAXLEN/MINID value when the trim was approximate
/// (`streamRewriteTrimArgument`).
fn apply_trim(s: &mut Stream, a: &TrimArgs) -> (u64, Option<String>) {
    let Some(how) = a.how else { return (0, None) };
    let deleted = s.trim(how, a.approx, a.limit);
    let rewritten = a.approx.then(|| match how {
        Trim::MaxLen(_) => s.len().to_string(),
        Trim::MinId(_) => {
            if s.is_empty() {
                StreamId::MAX.to_string()
            } else {
                s.first_id().to_string()
            }
        }
    });
    (deleted, rewritten)
}

/// The record of an XADD/XTRIM: the command as given, with the generated ID and `~ x` as `= y`
/// (on the stack for the usual few arguments: it is built under the stream's lock).
fn trim_record<'a>(
    argv: &'a [Bytes],
    a: &TrimArgs,
    rewritten: &'a Option<String>,
    id: Option<&'a [u8]>,
) -> smallvec::SmallVec<[&'a [u8]; 12]> {
    let mut rec: smallvec::SmallVec<[&[u8]; 12]> = argv.iter().map(|a| &a[..]).collect();
    if let Some(r) = rewritten {
        rec[a.arg_idx - 1] = b"=";
        rec[a.arg_idx] = r.as_bytes();
    }
    if let Some(id) = id {
        rec[a.id_idx] = id;
    }
    rec
}

/// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]`
pub fn xadd(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let loading = ctx.now_ms == 0;
    let (limits, approx_limit) = limits(ctx);
    let a = parse_trim_args(argv, true, loading, approx_limit)?;
    let field_pos = a.id_idx + 1;
    if argv.len() < field_pos + 2 || (argv.len() - field_pos) % 2 == 1 {
        return Err(Error::WrongArity("xadd".into()));
    }
    if let Some((id, true)) = a.id
        && id.is_zero()
    {
        return Err(Error::err("The ID specified in XADD must be greater than 0-0"));
    }
    let key = &argv[1];
    let pairs = &argv[field_pos..];
    // The clock of a generated ID, read before the stream's lock is taken (the ID is decided under
    // it: a clock behind the stream's last ID gives last + 1, as Redis).
    let clock = if a.id.is_none() { crate::util::now_ms() } else { 0 };
    // The new ID and whether the entry trimmed any (announced after `xadd`, as Redis). The reply is
    // made once the stream's lock is released.
    let add = |s: &mut Stream, w: &WriteLock| -> Result<(StreamId, bool)> {
        if s.last_id == StreamId::MAX {
            return Err(Error::err("The stream has exhausted the last possible ID, unable to add more items"));
        }
        let last = s.last_id;
        let edom = || Error::err("The ID specified in XADD is equal or smaller than the target stream top item");
        let id = match a.id {
            Some((id, true)) => id,
            Some((id, false)) if id.ms == last.ms => {
                if last.seq == u64::MAX {
                    return Err(edom());
                }
                StreamId::new(last.ms, last.seq + 1)
            }
            Some((id, false)) => id,
            None if clock > last.ms => StreamId::new(clock, 0),
            None => last.incr().unwrap_or(StreamId::MIN),
        };
        if id <= last {
            return Err(edom());
        }
        if pairs.iter().map(|p| p.len()).sum::<usize>() > crate::db::stream::MAX_ENTRY_BYTES {
            return Err(Error::err("Elements are too large to be stored"));
        }
        s.append(id, pairs, limits);
        let (trimmed, rewritten) = apply_trim(s, &a);
        let generated = !matches!(a.id, Some((_, true)));
        let mut text = [0u8; 41];
        let id_text = generated.then(|| id.text(&mut text));
        w.log(&trim_record(argv, &a, &rewritten, id_text));
        Ok((id, trimmed > 0))
    };
    let announce = |w: &WriteLock, trimmed: bool| {
        w.notify(class::STREAM, "xadd", key);
        if trimmed {
            w.notify(class::STREAM, "xtrim", key);
        }
    };
    let id = collection::write::<Stream, _>(
        ctx,
        key,
        !a.nomkstream,
        |st, w| {
            let (id, trimmed) = add(&mut st.items, w)?;
            announce(w, trimmed);
            w.serve_stream_waiters(key, &mut st.items);
            Ok(Some(id))
        },
        |w| {
            if a.nomkstream {
                return Ok(None);
            }
            let mut s = Stream::default();
            let (id, trimmed) = add(&mut s, w)?;
            // Blocked readers are served once the key is in (see `WriteLock::insert`), when this
            // write ends: after its `new` and `xadd` events, as Redis.
            create(w, key, s);
            announce(w, trimmed);
            Ok(Some(id))
        },
    )?;
    Ok(id.map_or(Frame::Null, |id| Frame::Bulk(id.to_bytes())))
}

/// `XLEN key`
pub fn xlen(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    collection::card::<Stream>(ctx, &argv[1])
}

fn range_generic(ctx: &mut Ctx, argv: &[Bytes], rev: bool) -> Result<Frame> {
    let (sa, ea) = if rev { (&argv[3], &argv[2]) } else { (&argv[2], &argv[3]) };
    let start = parse_bound(sa, true)?;
    let end = parse_bound(ea, false)?;
    let mut count: i64 = -1;
    let mut j = 4;
    while j < argv.len() {
        if is_opt(&argv[j], "count") && j + 1 < argv.len() {
            count = arg_ll(&argv[j + 1])?.max(0);
            j += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    collection::read::<Stream, _>(ctx, &argv[1], |st| match st {
        None => Frame::Array(Vec::new()),
        Some(_) if count == 0 => Frame::NullArray,
        Some(st) => st
            .items
            .encode_range(start, end, count.max(0) as usize, rev)
            .map_or_else(|| Frame::Array(Vec::new()), Frame::Encoded),
    })
}

/// `XRANGE key start end [COUNT count]`
pub fn xrange(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    range_generic(ctx, argv, false)
}

/// `XREVRANGE key end start [COUNT count]`
pub fn xrevrange(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    range_generic(ctx, argv, true)
}

/// `XDEL key id [id ...]`: how many were deleted.
pub fn xdel(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    // Redis parses the IDs only once it found the stream.
    collection::write::<Stream, _>(
        ctx,
        &argv[1],
        false,
        |st: &mut XState, w| {
            let ids = argv[2..].iter().map(|a| parse_strict_id(a)).collect::<Result<Vec<_>>>()?;
            let deleted = ids.into_iter().filter(|id| st.items.delete(*id)).count();
            if deleted > 0 {
                // Redis counts the entries deleted.
                w.log_notify_n(&record(argv), deleted as u64, class::STREAM, "xdel");
            }
            Ok(Frame::Integer(deleted as i64))
        },
        |_| Ok(Frame::Integer(0)),
    )
}

/// `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]`: how many were removed.
pub fn xtrim(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let loading = ctx.now_ms == 0;
    let mut a = parse_trim_args(argv, false, loading, limits(ctx).1)?;
    // No ID in XTRIM: keep the record's arguments as they are.
    a.id_idx = 0;
    collection::write::<Stream, _>(
        ctx,
        &argv[1],
        false,
        |st: &mut XState, w| {
            let (deleted, rewritten) = apply_trim(&mut st.items, &a);
            if deleted > 0 {
                // Redis counts the entries trimmed.
                w.log_n(&trim_record(argv, &a, &rewritten, None), deleted);
                w.notify(class::STREAM, "xtrim", &argv[1]);
            }
            Ok(Frame::Integer(deleted as i64))
        },
        |_| Ok(Frame::Integer(0)),
    )
}

/// `XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]`
pub fn xsetid(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let id = parse_strict_id(&argv[2])?;
    let mut entries_added: i64 = -1;
    let mut max_xdel = StreamId::MIN;
    let mut i = 3;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        if is_opt(&argv[i], "entriesadded") && more > 0 {
            entries_added = arg_ll(&argv[i + 1])?;
            if entries_added < 0 {
                return Err(Error::err("entries_added must be positive"));
            }
            i += 2;
        } else if is_opt(&argv[i], "maxdeletedid") && more > 0 {
            max_xdel = parse_strict_id(&argv[i + 1])?;
            if id < max_xdel {
                return Err(Error::err("The ID specified in XSETID is smaller than the provided max_deleted_entry_id"));
            }
            i += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    collection::write::<Stream, _>(
        ctx,
        &argv[1],
        false,
        |st: &mut XState, w| {
            let s = &mut st.items;
            if !s.is_empty() {
                if id < s.last_valid_id() {
                    return Err(Error::err("The ID specified in XSETID is smaller than the target stream top item"));
                }
                if entries_added != -1 && s.len() > entries_added as u64 {
                    return Err(Error::err(
                        "The entries_added specified in XSETID is smaller than the target stream length",
                    ));
                }
            }
            s.last_id = id;
            if entries_added != -1 {
                s.entries_added = entries_added as u64;
            }
            if !max_xdel.is_zero() {
                s.max_deleted_id = max_xdel;
            }
            w.log_notify(&record(argv), class::STREAM, "xsetid");
            Ok(Frame::ok())
        },
        |_| Err(Error::NoSuchKey),
    )
}
