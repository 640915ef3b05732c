//! XINFO STREAM [FULL [COUNT n]] / GROUPS / CONSUMERS (`xinfoCommand`), with Redis 7.0's fields.

use bytes::Bytes;

use super::{arg_ll, entries_frame, entry_frame};
use crate::cmd::Ctx;
use crate::cmd::collection;
use crate::cmd::server::{SubSpec, help_reply, run_subcommand};
use crate::db::stream::{Stream, StreamId};
use crate::error::{Error, Result};
use crate::resp::Frame;

use super::group::sub_syntax;

pub static XINFO_SUBS: &[SubSpec] = &[
    SubSpec { name: "xinfo|consumers", arity: 4, handler: xinfo_consumers },
    SubSpec { name: "xinfo|groups", arity: 3, handler: xinfo_groups },
    SubSpec { name: "xinfo|stream", arity: -3, handler: xinfo_stream },
    SubSpec { name: "xinfo|help", arity: 2, handler: xinfo_help },
];

/// `XINFO <subcommand> ...`
pub fn xinfo(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    run_subcommand(ctx, argv, XINFO_SUBS)
}

fn xinfo_help(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(help_reply(
        &argv[0],
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    ))
}

fn name(s: &'static str) -> Frame {
    Frame::Bulk(Bytes::from_static(s.as_bytes()))
}

fn id(i: StreamId) -> Frame {
    Frame::Bulk(i.to_bytes())
}

fn read_info(ctx: &Ctx, key: &[u8], f: impl FnOnce(&Stream) -> Result<Frame>) -> Result<Frame> {
    collection::read::<Stream, _>(ctx, key, |st| match st {
        None => Err(Error::NoSuchKey),
        Some(st) => f(&st.items),
    })?
}

fn lag(s: &Stream, g: &crate::db::stream::Group) -> Frame {
    s.lag(g).map_or(Frame::Null, Frame::Integer)
}

fn entries_read(g: &crate::db::stream::Group) -> Frame {
    if g.entries_read == -1 { Frame::Null } else { Frame::Integer(g.entries_read) }
}

fn xinfo_consumers(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let now = crate::util::now_ms() as i64;
    read_info(ctx, &argv[2], |s| {
        let Some(g) = s.groups.get(&argv[3][..]) else {
            return Err(Error::Raw(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                String::from_utf8_lossy(&argv[3]),
                String::from_utf8_lossy(&argv[2])
            )));
        };
        Ok(Frame::Array(
            g.consumers
                .iter()
                .map(|(n, c)| {
                    Frame::Map(vec![
                        (name("name"), Frame::Bulk(n.clone())),
                        (name("pending"), Frame::Integer(c.pel.len() as i64)),
                        (name("idle"), Frame::Integer((now - c.seen_time as i64).max(0))),
                    ])
                })
                .collect(),
        ))
    })
}

fn xinfo_groups(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    read_info(ctx, &argv[2], |s| {
        Ok(Frame::Array(
            s.groups
                .iter()
                .map(|(n, g)| {
                    Frame::Map(vec![
                        (name("name"), Frame::Bulk(n.clone())),
                        (name("consumers"), Frame::Integer(g.consumers.len() as i64)),
                        (name("pending"), Frame::Integer(g.pel.len() as i64)),
                        (name("last-delivered-id"), id(g.last_id)),
                        (name("entries-read"), entries_read(g)),
                        (name("lag"), lag(s, g)),
                    ])
                })
                .collect(),
        ))
    })
}

/// `XINFO STREAM key [FULL [COUNT n]]`'s options: (full, count; 0 = all).
fn stream_opts(argv: &[Bytes]) -> Result<(bool, usize)> {
    let opts = &argv[3..];
    let mut full = false;
    let mut count: i64 = 10;
    if !opts.is_empty() {
        if (opts.len() != 1 && opts.len() != 3) || !opts[0].eq_ignore_ascii_case(b"full") {
            return Err(sub_syntax(argv));
        }
        full = true;
        if opts.len() == 3 {
            if !opts[1].eq_ignore_ascii_case(b"count") {
                return Err(sub_syntax(argv));
            }
            count = arg_ll(&opts[2])?;
            if count < 0 {
                count = 10;
            }
        }
    }
    Ok((full, count as usize))
}

fn xinfo_stream(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    // The key is looked up (and type-checked) before the options are parsed, as Redis does.
    read_info(ctx, &argv[2], |s| {
        let (full, count) = stream_opts(argv)?;
        let nodes = s.node_count() as i64;
        let mut m = vec![
            (name("length"), Frame::Integer(s.len() as i64)),
            (name("radix-tree-keys"), Frame::Integer(nodes)),
            (name("radix-tree-nodes"), Frame::Integer(nodes + 1)),
            (name("last-generated-id"), id(s.last_id)),
            (name("max-deleted-entry-id"), id(s.max_deleted_id)),
            (name("entries-added"), Frame::Integer(s.entries_added as i64)),
            (name("recorded-first-entry-id"), id(s.first_id())),
        ];
        if !full {
            m.push((name("groups"), Frame::Integer(s.groups.len() as i64)));
            let edge = |rev| {
                s.range(StreamId::MIN, StreamId::MAX, 1, rev)
                    .pop()
                    .map_or(Frame::Null, |(i, p)| entry_frame(i, Some(p)))
            };
            m.push((name("first-entry"), edge(false)));
            m.push((name("last-entry"), edge(true)));
            return Ok(Frame::Map(m));
        }
        m.push((name("entries"), entries_frame(s.range(StreamId::MIN, StreamId::MAX, count, false))));
        let limit = if count == 0 { usize::MAX } else { count };
        let groups = s
            .groups
            .iter()
            .map(|(n, g)| {
                let pending = g
                    .pel
                    .iter()
                    .take(limit)
                    .map(|(i, nk)| {
                        Frame::Array(vec![
                            id(*i),
                            Frame::Bulk(nk.consumer.clone()),
                            Frame::Integer(nk.delivery_time as i64),
                            Frame::Integer(nk.delivery_count as i64),
                        ])
                    })
                    .collect();
                let consumers = g
                    .consumers
                    .iter()
                    .map(|(cn, c)| {
                        let pel = c
                            .pel
                            .iter()
                            .take(limit)
                            .map(|i| {
                                let nk = &g.pel[i];
                                Frame::Array(vec![
                                    id(*i),
                                    Frame::Integer(nk.delivery_time as i64),
                                    Frame::Integer(nk.delivery_count as i64),
                                ])
                            })
                            .collect();
                        Frame::Map(vec![
                            (name("name"), Frame::Bulk(cn.clone())),
                            (name("seen-time"), Frame::Integer(c.seen_time as i64)),
                            (name("pel-count"), Frame::Integer(c.pel.len() as i64)),
                            (name("pending"), Frame::Array(pel)),
                        ])
                    })
                    .collect();
                Frame::Map(vec![
                    (name("name"), Frame::Bulk(n.clone())),
                    (name("last-delivered-id"), id(g.last_id)),
                    (name("entries-read"), entries_read(g)),
                    (name("lag"), lag(s, g)),
                    (name("pel-count"), Frame::Integer(g.pel.len() as i64)),
                    (name("pending"), Frame::Array(pending)),
                    (name("consumers"), Frame::Array(consumers)),
                ])
            })
            .collect();
        m.push((name("groups"), Frame::Array(groups)));
        Ok(Frame::Map(m))
    })
}
