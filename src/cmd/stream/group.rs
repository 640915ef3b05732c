//! Consumer groups: XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM (`t_stream.c`).

use std::ops::Bound;

use bytes::Bytes;

use super::{XState, arg_ll, entry_frame, parse_bound, parse_id, parse_strict_id};
use crate::cmd::collection::{self, create, record};
use crate::cmd::server::{SubSpec, help_reply, run_subcommand};
use crate::cmd::{Ctx, arg_i64, is_opt};
use crate::db::stream::{Group, Nack, Stream, StreamId};
use crate::db::{Records, WriteLock};
use crate::error::{Error, Result};
use crate::pubsub::notify::class;
use crate::resp::Frame;

pub static XGROUP_SUBS: &[SubSpec] = &[
    SubSpec { name: "xgroup|create", arity: -5, handler: xgroup_main },
    SubSpec { name: "xgroup|setid", arity: -5, handler: xgroup_main },
    SubSpec { name: "xgroup|destroy", arity: 4, handler: xgroup_main },
    SubSpec { name: "xgroup|createconsumer", arity: 5, handler: xgroup_main },
    SubSpec { name: "xgroup|delconsumer", arity: 5, handler: xgroup_main },
    SubSpec { name: "xgroup|help", arity: 2, handler: xgroup_help },
];

/// `XGROUP <subcommand> ...`
pub fn xgroup(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    run_subcommand(ctx, argv, XGROUP_SUBS)
}

fn xgroup_help(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(help_reply(
        &argv[0],
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    ))
}

/// `addReplySubcommandSyntaxError`.
pub(crate) fn sub_syntax(argv: &[Bytes]) -> Error {
    let sub: String = String::from_utf8_lossy(&argv[1]).chars().take(128).collect();
    let cmd = String::from_utf8_lossy(&argv[0]).to_ascii_uppercase();
    Error::err(format!("unknown subcommand or wrong number of arguments for '{sub}'. Try {cmd} HELP."))
}

fn nogroup_for_key(group: &[u8], key: &[u8]) -> Error {
    Error::Raw(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        String::from_utf8_lossy(group),
        String::from_utf8_lossy(key)
    ))
}

fn nogroup(key: &[u8], group: &[u8]) -> Error {
    Error::Raw(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

fn xgroup_main(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    let (create_sub, setid_sub) = (sub == "create", sub == "setid");
    let mut mkstream = false;
    let mut entries_read: i64 = -1;
    let mut i = 5;
    while i < argv.len() {
        if create_sub && is_opt(&argv[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if (create_sub || setid_sub) && is_opt(&argv[i], "entriesread") && i + 1 < argv.len() {
            entries_read = arg_ll(&argv[i + 1])?;
            if entries_read < 0 && entries_read != -1 {
                return Err(Error::err("value for ENTRIESREAD must be positive or -1"));
            }
            i += 2;
        } else {
            return Err(sub_syntax(argv));
        }
    }
    let (key, gname) = (&argv[1 + 1], &argv[3]);
    let no_key = || {
        Error::err(
            "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
        )
    };
    // The reply and the event to announce once the stream is in place (MKSTREAM makes it after).
    let run = |s: &mut Stream, w: &WriteLock| -> Result<(Frame, Option<&'static str>)> {
        if !create_sub && !s.groups.contains_key(&gname[..]) && sub != "destroy" {
            return Err(nogroup_for_key(gname, key));
        }
        match sub.as_str() {
            "create" if (5..=8).contains(&argv.len()) => {
                let id = if &argv[4][..] == b"$" { s.last_id } else { parse_strict_id(&argv[4])? };
                if s.groups.contains_key(&gname[..]) {
                    return Err(Error::Raw("BUSYGROUP Consumer Group name already exists".into()));
                }
                s.groups.insert(gname.clone(), Group::new(id, entries_read));
                w.log(&record(argv));
                Ok((Frame::ok(), Some("xgroup-create")))
            }
            "setid" if argv.len() == 5 || argv.len() == 7 => {
                let id = if &argv[4][..] == b"$" { s.last_id } else { parse_id(&argv[4], 0)? };
                let g = s.groups.get_mut(&gname[..]).expect("checked");
                g.last_id = id;
                g.entries_read = entries_read;
                w.log(&record(argv));
                Ok((Frame::ok(), Some("xgroup-setid")))
            }
            "destroy" if argv.len() == 4 => {
                if s.groups.remove(&gname[..]).is_none() {
                    return Ok((Frame::Integer(0), None));
                }
                w.log(&record(argv));
                w.notify(class::STREAM, "xgroup-destroy", key);
                // Its blocked readers get their NOGROUP error.
                w.serve_stream_waiters(key, s);
                Ok((Frame::Integer(1), None))
            }
            "createconsumer" if argv.len() == 5 => {
                let g = s.groups.get_mut(&gname[..]).expect("checked");
                if g.consumers.contains_key(&argv[4][..]) {
                    return Ok((Frame::Integer(0), None));
                }
                g.ensure_consumer(&argv[4], crate::util::now_ms());
                w.log(&record(argv));
                Ok((Frame::Integer(1), Some("xgroup-createconsumer")))
            }
            "delconsumer" if argv.len() == 5 => {
                let g = s.groups.get_mut(&gname[..]).expect("checked");
                match g.del_consumer(&argv[4]) {
                    Some(n) => {
                        w.log(&record(argv));
                        Ok((Frame::Integer(n as i64), Some("xgroup-delconsumer")))
                    }
                    None => Ok((Frame::Integer(0), None)),
                }
            }
            _ => Err(sub_syntax(argv)),
        }
    };
    collection::write::<Stream, _>(
        ctx,
        key,
        mkstream,
        |st: &mut XState, w| {
            let (r, event) = run(&mut st.items, w)?;
            if let Some(event) = event {
                w.notify(class::STREAM, event, key);
            }
            Ok(r)
        },
        |w| {
            if !mkstream {
                return Err(no_key());
            }
            // Parse the ID before the stream is made: a bad ID leaves nothing behind.
            if (5..=8).contains(&argv.len()) && &argv[4][..] != b"$" {
                parse_strict_id(&argv[4])?;
            }
            let mut s = Stream::default();
            let (r, event) = run(&mut s, w)?;
            create(w, key, s);
            if let Some(event) = event {
                w.notify(class::STREAM, event, key);
            }
            Ok(r)
        },
    )
}

/// `XACK key group id [id ...]`: how many pending entries were acknowledged.
pub fn xack(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    // The IDs parsed once, before any lock (the hot stream's cell lock is held only for the PEL
    // look-ups). An invalid one is the reply only when the group exists (Redis looks the group up
    // first): `Err` is kept and answered under the lock.
    let ids: Result<smallvec::SmallVec<[StreamId; 4]>> = argv[3..].iter().map(|a| parse_strict_id(a)).collect();
    // Fast path, no stripe: a live stream whose group is missing, or has none of the IDs pending
    // (all valid), is left as it is and the reply is 0, as of this read under the stream's lock
    // (an XACK that acknowledges nothing changes nothing: no record, no event, no WATCH touch).
    let noop = ctx.read(&argv[1], |e| {
        let cell = e.and_then(|e| <Stream as crate::db::Collection>::cell_of(e.value()))?;
        let st = cell.lock();
        if st.dead {
            return None;
        }
        let Some(g) = st.items.groups.get(&argv[2][..]) else { return Some(true) };
        Some(ids.as_ref().is_ok_and(|ids| ids.iter().all(|id| !g.pel.contains_key(id))))
    });
    if noop == Some(true) {
        return Ok(Frame::Integer(0));
    }
    collection::write::<Stream, _>(
        ctx,
        &argv[1],
        false,
        |st: &mut XState, w| {
            let Some(g) = st.items.groups.get_mut(&argv[2][..]) else { return Ok(Frame::Integer(0)) };
            let acked = ids?.into_iter().filter(|id| g.ack(*id)).count();
            if acked > 0 {
                // Redis counts the entries acknowledged.
                w.log_n(&record(argv), acked as u64);
            }
            Ok(Frame::Integer(acked as i64))
        },
        |_| Ok(Frame::Integer(0)),
    )
}

/// `XPENDING key group [[IDLE min-idle-time] start end count [consumer]]`
pub fn xpending(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let argc = argv.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(Error::Syntax);
    }
    let mut range = None;
    let mut minidle = 0i64;
    if argc >= 6 {
        let mut at = 3;
        if is_opt(&argv[3], "idle") {
            minidle = arg_ll(&argv[4])?;
            if argc < 8 {
                return Err(Error::Syntax);
            }
            at += 2;
        }
        let count = arg_ll(&argv[at + 2])?.max(0) as usize;
        let start = parse_bound(&argv[at], true)?;
        let end = parse_bound(&argv[at + 1], false)?;
        range = Some((start, end, count, argv.get(at + 3)));
    }
    let (key, gname) = (&argv[1], &argv[2]);
    let now = crate::util::now_ms();
    collection::read::<Stream, _>(ctx, key, |st| {
        let Some(g) = st.and_then(|st| st.items.groups.get(&gname[..])) else { return Err(nogroup(key, gname)) };
        let Some((start, end, mut count, consumer)) = range else {
            if g.pel.is_empty() {
                return Ok(Frame::Array(vec![Frame::Integer(0), Frame::Null, Frame::Null, Frame::NullArray]));
            }
            let first = g.pel.keys().next().expect("not empty");
            let last = g.pel.keys().next_back().expect("not empty");
            let per: Vec<Frame> = g
                .consumers
                .iter()
                .filter(|(_, c)| !c.pel.is_empty())
                .map(|(n, c)| {
                    Frame::Array(vec![Frame::Bulk(n.clone()), Frame::Bulk(Bytes::from(c.pel.len().to_string()))])
                })
                .collect();
            return Ok(Frame::Array(vec![
                Frame::Integer(g.pel.len() as i64),
                Frame::Bulk(first.to_bytes()),
                Frame::Bulk(last.to_bytes()),
                Frame::Array(per),
            ]));
        };
        let ids: Box<dyn Iterator<Item = &StreamId>> = match consumer {
            Some(name) => match g.consumers.get(&name[..]) {
                Some(c) => Box::new(c.pel.range(start..)),
                None => return Ok(Frame::Array(Vec::new())),
            },
            None => Box::new(g.pel.range(start..).map(|(id, _)| id)),
        };
        let mut out = Vec::new();
        for id in ids {
            if count == 0 || *id > end {
                break;
            }
            let n = &g.pel[id];
            let idle = now as i64 - n.delivery_time as i64;
            if minidle != 0 && idle < minidle {
                continue;
            }
            count -= 1;
            out.push(Frame::Array(vec![
                Frame::Bulk(id.to_bytes()),
                Frame::Bulk(n.consumer.clone()),
                Frame::Integer(idle.max(0)),
                Frame::Integer(n.delivery_count as i64),
            ]));
        }
        Ok(Frame::Array(out))
    })?
}

/// Log the record Redis propagates for a claimed (or dropped) pending entry.
fn log_xclaim(records: &mut Records, key: &[u8], gname: &[u8], id: StreamId, n: &Nack, last: StreamId) {
    crate::db::stream::xclaim_record(key, gname, id, n, last, |record| records.push(record));
}

/// `XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds]
/// [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]`
pub fn xclaim(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (key, gname, cname) = (&argv[1], &argv[2], &argv[3]);
    collection::write::<Stream, _>(
        ctx,
        key,
        false,
        |st: &mut XState, w| {
            let s = &mut st.items;
            if !s.groups.contains_key(&gname[..]) {
                return Err(nogroup(key, gname));
            }
            let minidle =
                arg_i64(&argv[4]).map_err(|_| Error::err("Invalid min-idle-time argument for XCLAIM"))?.max(0);
            let mut ids = Vec::new();
            let mut j = 5;
            while j < argv.len() {
                match parse_strict_id(&argv[j]) {
                    Ok(id) => ids.push(id),
                    Err(_) => break,
                }
                j += 1;
            }
            let now = crate::util::now_ms() as i64;
            let (mut force, mut justid) = (false, false);
            let mut retrycount: i64 = -1;
            let mut deliverytime: i64 = -1;
            let mut last_id = StreamId::MIN;
            while j < argv.len() {
                let more = argv.len() - 1 - j;
                let opt = &argv[j][..];
                if is_opt(opt, "force") {
                    force = true;
                } else if is_opt(opt, "justid") {
                    justid = true;
                } else if is_opt(opt, "idle") && more > 0 {
                    j += 1;
                    let idle = arg_i64(&argv[j]).map_err(|_| Error::err("Invalid IDLE option argument for XCLAIM"))?;
                    deliverytime = now.wrapping_sub(idle);
                } else if is_opt(opt, "time") && more > 0 {
                    j += 1;
                    deliverytime =
                        arg_i64(&argv[j]).map_err(|_| Error::err("Invalid TIME option argument for XCLAIM"))?;
                } else if is_opt(opt, "retrycount") && more > 0 {
                    j += 1;
                    retrycount =
                        arg_i64(&argv[j]).map_err(|_| Error::err("Invalid RETRYCOUNT option argument for XCLAIM"))?;
                } else if is_opt(opt, "lastid") && more > 0 {
                    j += 1;
                    last_id = parse_strict_id(&argv[j])?;
                } else {
                    return Err(Error::err(format!("Unrecognized XCLAIM option '{}'", String::from_utf8_lossy(opt))));
                }
                j += 1;
            }
            let mut g = s.groups.remove(&gname[..]).expect("checked");
            let mut propagate_last_id = false;
            if last_id > g.last_id {
                g.last_id = last_id;
                propagate_last_id = true;
            }
            if deliverytime < 0 || deliverytime > now {
                deliverytime = now;
            }
            let mut out = Vec::new();
            let mut have_consumer = false;
            // An XCLAIM per claimed (or dropped) entry and XGROUP SETID: one MULTI/EXEC block.
            let mut records = w.records();
            for id in ids {
                let nack = g.pel.get(&id).cloned();
                if !s.exists(id) {
                    if let Some(n) = nack {
                        log_xclaim(&mut records, key, gname, id, &n, g.last_id);
                        propagate_last_id = false;
                        g.ack(id);
                    }
                    continue;
                }
                let (old_consumer, old_time, old_count) = match (&nack, force) {
                    (Some(n), _) => (Some(n.consumer.clone()), n.delivery_time, n.delivery_count),
                    (None, true) => (None, 0, 1),
                    (None, false) => continue,
                };
                if old_consumer.is_some() && minidle != 0 && now - (old_time as i64) < minidle {
                    continue;
                }
                if !have_consumer {
                    if g.ensure_consumer(cname, now as u64) {
                        w.notify(class::STREAM, "xgroup-createconsumer", key);
                        // Redis counts the consumer created.
                        records.count(1);
                    }
                    have_consumer = true;
                }
                let count = if retrycount >= 0 {
                    retrycount as u64
                } else if !justid {
                    old_count + 1
                } else {
                    old_count
                };
                g.assign(id, cname, deliverytime as u64, count);
                out.push(if justid { Frame::Bulk(id.to_bytes()) } else { entry_frame(id, s.get(id).map(|e| e.1)) });
                let n = g.pel[&id].clone();
                log_xclaim(&mut records, key, gname, id, &n, g.last_id);
                propagate_last_id = false;
            }
            if propagate_last_id {
                let (last, read) = (g.last_id.to_string(), g.entries_read.to_string());
                records.push(&[b"XGROUP", b"SETID", key, gname, last.as_bytes(), b"ENTRIESREAD", read.as_bytes()]);
            }
            w.log_records(w.db_index(), &records);
            s.groups.insert(gname.clone(), g);
            Ok(Frame::Array(out))
        },
        |_| Err(nogroup(key, gname)),
    )
}

/// `XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]`
pub fn xautoclaim(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (key, gname, cname) = (&argv[1], &argv[2], &argv[3]);
    let minidle = arg_i64(&argv[4]).map_err(|_| Error::err("Invalid min-idle-time argument for XAUTOCLAIM"))?.max(0);
    let start = parse_bound(&argv[5], true)?;
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if is_opt(&argv[j], "count") && more > 0 {
            let max = i64::MAX / 16;
            count = arg_i64(&argv[j + 1])
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| Error::err("COUNT must be > 0"))?;
            j += 1;
        } else if is_opt(&argv[j], "justid") {
            justid = true;
        } else {
            return Err(Error::Syntax);
        }
        j += 1;
    }
    collection::write::<Stream, _>(
        ctx,
        key,
        false,
        |st: &mut XState, w| {
            let s = &mut st.items;
            let Some(mut g) = s.groups.remove(&gname[..]) else { return Err(nogroup(key, gname)) };
            let now = crate::util::now_ms();
            let mut attempts = count.saturating_mul(10);
            let mut lower = Bound::Included(start);
            let mut out = Vec::new();
            let mut deleted = Vec::new();
            let mut eof = false;
            let mut have_consumer = false;
            // An XCLAIM per claimed (or dropped) entry: one MULTI/EXEC block.
            let mut records = w.records();
            loop {
                if attempts == 0 {
                    break;
                }
                attempts -= 1;
                if count == 0 {
                    break;
                }
                let Some((&id, n)) = g.pel.range((lower, Bound::Unbounded)).next() else {
                    eof = true;
                    break;
                };
                let n = n.clone();
                lower = Bound::Excluded(id);
                if !s.exists(id) {
                    log_xclaim(&mut records, key, gname, id, &n, g.last_id);
                    g.ack(id);
                    deleted.push(Frame::Bulk(id.to_bytes()));
                    count -= 1;
                    continue;
                }
                if minidle != 0 && (now as i64 - n.delivery_time as i64) < minidle {
                    continue;
                }
                if !have_consumer {
                    if g.ensure_consumer(cname, now) {
                        w.notify(class::STREAM, "xgroup-createconsumer", key);
                        // Redis counts the consumer created.
                        records.count(1);
                    }
                    have_consumer = true;
                }
                let c = if justid { n.delivery_count } else { n.delivery_count + 1 };
                g.assign(id, cname, now, c);
                out.push(if justid { Frame::Bulk(id.to_bytes()) } else { entry_frame(id, s.get(id).map(|e| e.1)) });
                count -= 1;
                let n = g.pel[&id].clone();
                log_xclaim(&mut records, key, gname, id, &n, g.last_id);
            }
            let cursor = if eof {
                StreamId::MIN
            } else {
                g.pel.range((lower, Bound::Unbounded)).next().map_or(StreamId::MIN, |(id, _)| *id)
            };
            w.log_records(w.db_index(), &records);
            s.groups.insert(gname.clone(), g);
            Ok(Frame::Array(vec![Frame::Bulk(cursor.to_bytes()), Frame::Array(out), Frame::Array(deleted)]))
        },
        |_| Err(nogroup(key, gname)),
    )
}
