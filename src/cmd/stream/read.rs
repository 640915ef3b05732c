//! XREAD and XREADGROUP (`xreadCommand`), blocking included.
//!
//! Blocking follows the protocol of `db::blocking`: a reader that found nothing takes its keys'
//! stripes exclusively, checks again and registers (with what it reads: the IDs, `$` resolved, or
//! its group and consumer) before releasing them. The XADD that makes a key servable, holding the
//! key's stripe and the stream's lock, reads for its blocked readers in blocking order (for a
//! group: delivers and logs as XREADGROUP would) and hands the entries over; the client's re-run
//! replies with them. XGROUP DESTROY serves a group's readers their NOGROUP error. Inside EXEC
//! (and while loading) nothing blocks: the reply is the timeout's.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{entry_frame, parse_strict_id};
use crate::cmd::collection::{self, cell_of};
use crate::cmd::{BlockRequest, Client, Ctx, arg_i64, is_opt};
use crate::db::ValueCell;
use crate::db::blocking::{Registration, Served};
use crate::db::stream::{
    GroupStart, GroupWait, ReadEntry, Stream, StreamId, StreamWait, decode_served, put_array_header, put_entry,
};
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::state::Shared;
use crate::sync::Arc;
use crate::sync::fault::{self, Fault};

struct ReadArgs<'a> {
    /// None: no BLOCK. Some(None): BLOCK 0 (forever).
    block: Option<Option<Duration>>,
    count: usize,
    keys: &'a [Bytes],
    ids: &'a [Bytes],
    group: Option<(&'a Bytes, &'a Bytes)>,
    noack: bool,
}

fn parse(argv: &[Bytes], xreadgroup: bool) -> Result<ReadArgs<'_>> {
    let mut a = ReadArgs { block: None, count: 0, keys: &[], ids: &[], group: None, noack: false };
    let mut streams_at = 0;
    let mut i = 1;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        let o = &argv[i][..];
        if is_opt(o, "block") && more > 0 {
            if crate::script::run::in_script_call() {
                // As Redis (t_stream.c): refused at the option, before its timeout is parsed.
                let name = String::from_utf8_lossy(&argv[0]).into_owned();
                return Err(Error::err(format!("{name} command is not allowed with BLOCK option from scripts")));
            }
            i += 1;
            let ms = arg_i64(&argv[i]).map_err(|_| Error::err("timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(Error::err("timeout is negative"));
            }
            a.block = Some((ms > 0).then(|| Duration::from_millis(ms as u64)));
        } else if is_opt(o, "count") && more > 0 {
            i += 1;
            a.count = arg_i64(&argv[i])?.max(0) as usize;
        } else if is_opt(o, "streams") && more > 0 {
            streams_at = i + 1;
            let n = argv.len() - streams_at;
            if !n.is_multiple_of(2) {
                return Err(Error::err(
                    "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            a.keys = &argv[streams_at..streams_at + n / 2];
            a.ids = &argv[streams_at + n / 2..];
            break;
        } else if is_opt(o, "group") && more >= 2 {
            if !xreadgroup {
                return Err(Error::err("The GROUP option is only supported by XREADGROUP. You called XREAD instead."));
            }
            a.group = Some((&argv[i + 1], &argv[i + 2]));
            i += 2;
        } else if is_opt(o, "noack") {
            if !xreadgroup {
                return Err(Error::err("The NOACK option is only supported by XREADGROUP. You called XREAD instead."));
            }
            a.noack = true;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    if streams_at == 0 {
        return Err(Error::Syntax);
    }
    if xreadgroup && a.group.is_none() {
        return Err(Error::err("Missing GROUP option for XREADGROUP"));
    }
    Ok(a)
}

/// The reply: `[[key, entries] ...]`, a map of key to entries under RESP3.
fn reply(resp3: bool, found: Vec<(Bytes, Frame)>) -> Frame {
    if resp3 {
        Frame::Map(found.into_iter().map(|(k, e)| (Frame::Bulk(k), e)).collect())
    } else {
        Frame::Array(found.into_iter().map(|(k, e)| Frame::Array(vec![Frame::Bulk(k), e])).collect())
    }
}

/// Entries read for a key, as the reply's frame: encoded at once (see `Frame::Encoded`) unless one
/// is a deleted entry (its nil reads differently under RESP2 and RESP3).
fn entries(e: Vec<ReadEntry>) -> Frame {
    if e.iter().any(|(_, p)| p.is_none()) {
        return Frame::Array(e.into_iter().map(|(id, p)| entry_frame(id, p)).collect());
    }
    let mut out = bytes::BytesMut::with_capacity(64 * e.len() + 8);
    put_array_header(&mut out, e.len());
    for (id, pairs) in e {
        let pairs = pairs.unwrap_or_default();
        put_entry(&mut out, id, pairs.len(), pairs.iter().map(|p| &p[..]));
    }
    Frame::Encoded(out.freeze())
}

/// A re-run after blocking: what was handed over, or the timeout's reply. None: not a re-run.
fn rerun(ctx: &mut Ctx) -> Option<Result<Frame>> {
    let reg = ctx.client.blocked.as_ref()?;
    if let Some(Served { key, items, seq }) = reg.take_served() {
        ctx.client.blocked = None;
        // The reply waits for the delivery's records like any write's (appendfsync always).
        if seq > ctx.last_seq.get() {
            ctx.last_seq.set(seq);
        }
        return Some(match decode_served(items) {
            Ok(e) => Ok(reply(ctx.client.resp == 3, vec![(key, entries(e))])),
            Err(text) => Ok(Frame::Error(text)),
        });
    }
    let timed_out = ctx.client.block_timed_out;
    ctx.client.blocked = None;
    timed_out.then_some(Ok(Frame::NullArray))
}

/// Whether blocking is possible now (not inside EXEC, not loading).
fn can_block(ctx: &Ctx) -> bool {
    ctx.now_ms != 0 && !ctx.shared.ks.in_exec()
}

/// Register `wait` (the caller holds its keys' stripes exclusively and found nothing) and ask the
/// connection to wait.
fn block(
    shared: &Shared,
    client: &mut Client,
    mut w: crate::db::WriteLock<'_>,
    timeout: Option<Duration>,
    wait: StreamWait,
) -> Frame {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let reg = Registration::new_stream(shared.ks.blocking().clone(), client.db, deadline, wait);
    if fault::on(Fault::BlockRegisterWithoutStripe) {
        // Broken: the keys are released between the last check and the registration.
        w.release();
        crate::sync::thread::yield_now();
    }
    shared.ks.blocking().register(&reg);
    drop(w);
    client.block = Some(BlockRequest { waiter: reg.waiter(), deadline: reg.deadline });
    client.blocked = Some(reg);
    client.skip_reply = true;
    Frame::Null
}

/// The stream cell at `key` for a read (no stripe): None when missing, WRONGTYPE for another type.
fn read_cell(ctx: &Ctx, key: &[u8]) -> Result<Option<Arc<ValueCell<Stream>>>> {
    let now = ctx.now_ms;
    ctx.read(key, |e| cell_of::<Stream>(e.filter(|e| !e.is_expired(now))))
}

/// XREAD's entries from each stream that has some after its ID (encoded under the stream's lock,
/// see `Stream::encode_range`). `cells`: the streams found by the first look (None: look them up
/// again).
fn xread_attempt(
    ctx: &Ctx,
    a: &ReadArgs,
    ids: &[StreamId],
    cells: Option<&[Option<Arc<ValueCell<Stream>>>]>,
) -> Result<Vec<(Bytes, Frame)>> {
    let mut found = Vec::new();
    for (i, (key, &after)) in a.keys.iter().zip(ids).enumerate() {
        let cell = match cells {
            Some(cells) => cells[i].clone(),
            None => read_cell(ctx, key)?,
        };
        let Some(cell) = cell else { continue };
        let st = cell.lock();
        if st.dead || st.items.is_empty() || st.items.last_valid_id() <= after {
            continue;
        }
        let Some(from) = after.incr() else { continue };
        if let Some(e) = st.items.encode_range(from, StreamId::MAX, a.count, false) {
            found.push((key.clone(), Frame::Encoded(e)));
        }
    }
    Ok(found)
}

/// `XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]`
pub fn xread(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let a = parse(argv, false)?;
    if let Some(r) = rerun(ctx) {
        return r;
    }
    // Types and IDs in key order, `$` resolved now.
    let mut ids = Vec::with_capacity(a.keys.len());
    let mut cells = Vec::with_capacity(a.keys.len());
    for (key, id) in a.keys.iter().zip(a.ids) {
        let cell = read_cell(ctx, key)?;
        ids.push(match &id[..] {
            b"$" => cell.as_ref().map_or(StreamId::MIN, |c| c.lock().items.last_id),
            b">" => {
                return Err(Error::err(
                    "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ));
            }
            _ => parse_strict_id(id)?,
        });
        cells.push(cell);
    }
    let resp3 = ctx.client.resp == 3;
    let mut first = Some(&cells[..]);
    loop {
        let found = xread_attempt(ctx, &a, &ids, first.take())?;
        if !found.is_empty() {
            return Ok(reply(resp3, found));
        }
        let Some(timeout) = a.block.filter(|_| can_block(ctx)) else { return Ok(Frame::NullArray) };
        let refs: Vec<&[u8]> = a.keys.iter().map(|k| &k[..]).collect();
        let shared = ctx.shared;
        let w = shared.ks.write(ctx.client.db, &refs, &ctx.last_seq);
        // Added between the attempt and the lock: read again.
        if !xread_attempt(ctx, &a, &ids, None)?.is_empty() {
            continue;
        }
        let wait = StreamWait { keys: a.keys.to_vec(), ids, group: None, count: a.count };
        return Ok(block(shared, ctx.client, w, timeout, wait));
    }
}

/// `XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key [key
/// ...] id [id ...]`
pub fn xreadgroup(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let a = parse(argv, true)?;
    if let Some(r) = rerun(ctx) {
        return r;
    }
    let (gname, consumer) = a.group.expect("checked by parse");
    let now = ctx.now_ms;
    let clock = crate::util::now_ms();
    let refs: Vec<&[u8]> = a.keys.iter().map(|k| &k[..]).collect();
    let shared = ctx.shared;
    let mut w = shared.ks.write(ctx.client.db, &refs, &ctx.last_seq);
    // Types, groups and IDs in key order, before anything is read.
    let mut plan = Vec::with_capacity(a.keys.len());
    for (key, id) in a.keys.iter().zip(a.ids) {
        let cell = collection::lookup_write::<Stream>(&mut w, key, now)?;
        let has_group = cell.as_ref().is_some_and(|c| c.lock().items.groups.contains_key(&gname[..]));
        let Some(cell) = cell.filter(|_| has_group) else {
            return Err(Error::Raw(format!(
                "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(gname)
            )));
        };
        let start = match &id[..] {
            b"$" => {
                return Err(Error::err(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                ));
            }
            b">" => GroupStart::New,
            _ => GroupStart::History(parse_strict_id(id)?),
        };
        plan.push((key, cell, start));
    }
    let db = w.db_index();
    let mut found = Vec::new();
    // Every record of the read (an XCLAIM per delivered entry, XGROUP SETID ...), of every key,
    // pushed as one MULTI/EXEC block once all are read (the keys' stripes are held exclusively
    // until then), as Redis propagates them.
    let mut records = w.records();
    // Redis counts one change per stream served and one per consumer created.
    let mut changes = 0;
    for (key, cell, start) in plan {
        let mut st = cell.lock();
        let s = &mut st.items;
        let serve = match start {
            GroupStart::History(_) => true,
            GroupStart::New => !s.is_empty() && s.last_valid_id() > s.groups[&gname[..]].last_id,
        };
        if serve {
            let created = !s.groups[&gname[..]].consumers.contains_key(&consumer[..]);
            let (entries_read, _) =
                s.read_group(key, gname, consumer, start, a.count, a.noack, clock, &mut |argv| records.push(argv));
            if created {
                w.notify(crate::pubsub::notify::class::STREAM, "xgroup-createconsumer", key);
            }
            changes += 1 + created as u64;
            found.push((key.clone(), entries(entries_read)));
        }
    }
    records.set_changes(changes);
    w.log_records(db, &records);
    if !found.is_empty() {
        return Ok(reply(ctx.client.resp == 3, found));
    }
    match a.block.filter(|_| can_block(ctx)) {
        Some(timeout) => {
            let group = Some(GroupWait { group: gname.clone(), consumer: consumer.clone(), noack: a.noack });
            let ids = vec![StreamId::MAX; a.keys.len()];
            let wait = StreamWait { keys: a.keys.to_vec(), ids, group, count: a.count };
            Ok(block(shared, ctx.client, w, timeout, wait))
        }
        None => Ok(Frame::NullArray),
    }
}
