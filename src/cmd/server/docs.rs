//! Documentation of the commands for `COMMAND DOCS` (summary, since, group, complexity, history,
//! arguments, implemented subcommands), exactly as Redis 7.0.15 reports them: `docs.resp` holds
//! Redis's own `COMMAND DOCS` reply for the rows of the command table, produced by
//! `gen_docs.py` (run it against a Redis 7.0 after adding rows). redis-cli builds its hints from
//! the `arguments` of these entries.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::resp::Frame;

/// Redis's `COMMAND DOCS` reply: a flat array of name, documentation map, name, ...
static DOCS_RESP: &[u8] = include_bytes!("docs.resp");

/// The documentation map of each documented command, by name, typed as Redis types it under RESP3
/// (maps, sets of history entries and flags); under RESP2 it renders as the flat arrays of
/// `docs.resp` byte for byte.
pub fn docs() -> &'static HashMap<String, Frame> {
    static DOCS: OnceLock<HashMap<String, Frame>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let mut pos = 0;
        let Some(Frame::Array(items)) = parse(DOCS_RESP, &mut pos) else { return HashMap::new() };
        items
            .chunks_exact(2)
            .filter_map(|p| match &p[0] {
                Frame::Bulk(name) => {
                    Some((String::from_utf8_lossy(name).into_owned(), typed(p[1].clone(), Doc::Command)))
                }
                _ => None,
            })
            .collect()
    })
}

/// What a flat name/value array describes: a command (or subcommand), or one of its arguments.
#[derive(Clone, Copy)]
enum Doc {
    Command,
    Argument,
}

/// Give a flat documentation array Redis's RESP3 types: the array becomes a map; `history`,
/// `doc_flags` and an argument's `flags` become sets; `arguments` stay arrays of argument maps;
/// `subcommands` becomes a map of name to documentation.
fn typed(doc: Frame, kind: Doc) -> Frame {
    let Frame::Array(items) = doc else { return doc };
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        let name = match &k {
            Frame::Bulk(b) => b.as_ref(),
            _ => b"",
        };
        let v = match (kind, name, v) {
            (Doc::Command, b"history" | b"doc_flags", Frame::Array(a)) | (Doc::Argument, b"flags", Frame::Array(a)) => {
                Frame::Set(a)
            }
            (_, b"arguments", Frame::Array(a)) => {
                Frame::Array(a.into_iter().map(|x| typed(x, Doc::Argument)).collect())
            }
            (Doc::Command, b"subcommands", Frame::Array(a)) => {
                let mut subs = Vec::with_capacity(a.len() / 2);
                let mut s = a.into_iter();
                while let (Some(n), Some(d)) = (s.next(), s.next()) {
                    subs.push((n, typed(d, Doc::Command)));
                }
                Frame::Map(subs)
            }
            (_, _, v) => v,
        };
        pairs.push((k, v));
    }
    Frame::Map(pairs)
}

/// Parse one RESP2 reply starting at `pos` (the embedded file is trusted but still checked).
pub(super) fn parse(buf: &[u8], pos: &mut usize) -> Option<Frame> {
    let rest = buf.get(*pos..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    let (kind, head) = (rest.first()?, rest.get(1..end)?);
    *pos += end + 2;
    let n = || std::str::from_utf8(head).ok()?.parse::<i64>().ok();
    Some(match kind {
        b'+' => Frame::Simple(Bytes::copy_from_slice(head)),
        b'-' => Frame::Error(Bytes::copy_from_slice(head)),
        b':' => Frame::Integer(n()?),
        b'$' => {
            let len = usize::try_from(n()?).ok()?;
            let data = buf.get(*pos..pos.checked_add(len)?)?;
            *pos += len + 2;
            Frame::Bulk(Bytes::copy_from_slice(data))
        }
        b'*' => {
            let len = usize::try_from(n()?).ok()?;
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                items.push(parse(buf, pos)?);
            }
            Frame::Array(items)
        }
        _ => return None,
    })
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn every_table_row_is_documented() {
        for spec in crate::cmd::COMMANDS {
            assert!(docs().contains_key(spec.name), "{} has no docs", spec.name);
        }
    }

    #[test]
    fn parse_reads_every_resp2_type_and_rejects_truncation() {
        let mut pos = 0;
        let f = parse(b"*3\r\n+ok\r\n:-2\r\n$3\r\na\r\n\r\n", &mut pos);
        assert_eq!(f, Some(Frame::Array(vec![Frame::simple("ok"), Frame::Integer(-2), Frame::bulk(b"a\r\n")])));
        assert_eq!(parse(b"$10\r\nabc\r\n", &mut 0), None);
        assert_eq!(parse(b"*2\r\n:1\r\n", &mut 0), None);
    }
}
