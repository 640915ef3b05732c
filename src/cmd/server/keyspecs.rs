//! What the command table does not hold of Redis 7.0's `COMMAND INFO`: each command's tips, key
//! specs and (implemented) subcommands, captured from Redis 7.0.15 in `info.resp` by `gen_docs.py`,
//! typed as Redis types them under RESP3; and the key-spec interpreter behind `COMMAND GETKEYS` and
//! `GETKEYSANDFLAGS`. Mirrors `addReplyCommandInfo` in Redis's `server.c` and
//! `getKeysUsingKeySpecs` in `db.c`.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use super::docs::parse;
use crate::resp::Frame;

/// Redis's `COMMAND INFO` reply for the rows of the command table.
static INFO_RESP: &[u8] = include_bytes!("info.resp");

/// Where a key spec starts looking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BeginSearch {
    /// At this argument.
    Index(i64),
    /// After this keyword, searched from `startfrom` (negative: from the end, backwards).
    Keyword(Vec<u8>, i64),
    Unknown,
}

/// How a key spec finds its keys from where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FindKeys {
    /// Up to `lastkey` (negative: from the end; with `limit`, a fraction of the rest), every `keystep`.
    Range {
        lastkey: i64,
        keystep: i64,
        limit: i64,
    },
    /// The argument at `keynumidx` gives the count; keys from `firstkey`, every `keystep`.
    Keynum {
        keynumidx: i64,
        firstkey: i64,
        keystep: i64,
    },
    Unknown,
}

/// One key spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    /// `RW`, `access`, `insert`, ... as Redis names them.
    pub flags: Vec<String>,
    pub begin: BeginSearch,
    pub find: FindKeys,
}

/// A command's captured description: the last three fields of its `COMMAND INFO` entry.
pub struct Captured {
    pub tips: Frame,
    pub key_specs: Frame,
    pub subcommands: Frame,
    pub specs: Vec<KeySpec>,
}

/// The captured description of each command, by name.
pub fn captured(name: &str) -> Option<&'static Captured> {
    static ALL: OnceLock<HashMap<String, Captured>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut pos = 0;
        let Some(Frame::Array(entries)) = parse(INFO_RESP, &mut pos) else { return HashMap::new() };
        entries.into_iter().filter_map(capture).collect()
    })
    .get(name)
}

fn capture(entry: Frame) -> Option<(String, Captured)> {
    let Frame::Array(mut f) = entry else { return None };
    if f.len() != 10 {
        return None;
    }
    let name = match &f[0] {
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        _ => return None,
    };
    let subcommands = match f.pop()? {
        Frame::Array(subs) if !subs.is_empty() => Frame::Array(subs.into_iter().map(typed_entry).collect()),
        _ => Frame::Set(vec![]),
    };
    let specs_flat = f.pop()?;
    let tips = f.pop()?;
    let specs = match &specs_flat {
        Frame::Array(s) => s.iter().map(key_spec).collect(),
        _ => Vec::new(),
    };
    Some((name, Captured { tips: as_set(tips), key_specs: typed_specs(specs_flat), subcommands, specs }))
}

/// A subcommand's whole entry, typed: flags, categories, tips and key specs as sets.
fn typed_entry(entry: Frame) -> Frame {
    let Frame::Array(f) = entry else { return entry };
    Frame::Array(
        f.into_iter()
            .enumerate()
            .map(|(i, v)| match i {
                2 | 6 | 7 => as_set(v),
                8 => typed_specs(v),
                9 => match v {
                    Frame::Array(s) if !s.is_empty() => Frame::Array(s.into_iter().map(typed_entry).collect()),
                    _ => Frame::Set(vec![]),
                },
                _ => v,
            })
            .collect(),
    )
}

fn as_set(f: Frame) -> Frame {
    match f {
        Frame::Array(items) => Frame::Set(items),
        other => other,
    }
}

/// A flat name/value array as a map, with `convert` applied to each value by its name.
fn as_map(f: Frame, convert: fn(&[u8], Frame) -> Frame) -> Frame {
    let Frame::Array(items) = f else { return f };
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        let v = match &k {
            Frame::Bulk(name) => convert(name, v),
            _ => v,
        };
        pairs.push((k, v));
    }
    Frame::Map(pairs)
}

/// The key specs field: a set of maps (`flags` a set; `begin_search`/`find_keys` maps with a `spec` map).
fn typed_specs(f: Frame) -> Frame {
    let Frame::Array(specs) = f else { return f };
    Frame::Set(
        specs
            .into_iter()
            .map(|s| {
                as_map(s, |name, v| match name {
                    b"flags" => as_set(v),
                    b"begin_search" | b"find_keys" => {
                        as_map(v, |name, v| if name == b"spec" { as_map(v, |_, v| v) } else { v })
                    }
                    _ => v,
                })
            })
            .collect(),
    )
}

/// The value of `key` in a flat name/value array.
fn get<'a>(flat: &'a Frame, key: &str) -> Option<&'a Frame> {
    let Frame::Array(items) = flat else { return None };
    items.chunks_exact(2).find(|p| matches!(&p[0], Frame::Bulk(k) if k.as_ref() == key.as_bytes())).map(|p| &p[1])
}

fn int_of(flat: &Frame, key: &str) -> i64 {
    match get(flat, key) {
        Some(Frame::Integer(n)) => *n,
        _ => 0,
    }
}

fn text_of(f: Option<&Frame>) -> Vec<u8> {
    match f {
        Some(Frame::Bulk(b) | Frame::Simple(b)) => b.to_vec(),
        _ => Vec::new(),
    }
}

/// Read one captured key spec.
fn key_spec(flat: &Frame) -> KeySpec {
    let flags = match get(flat, "flags") {
        Some(Frame::Array(f)) => f.iter().map(|x| String::from_utf8_lossy(&text_of(Some(x))).into_owned()).collect(),
        _ => Vec::new(),
    };
    let begin = get(flat, "begin_search").map_or(BeginSearch::Unknown, |b| {
        let spec = get(b, "spec").cloned().unwrap_or(Frame::Array(vec![]));
        match &text_of(get(b, "type"))[..] {
            b"index" => BeginSearch::Index(int_of(&spec, "index")),
            b"keyword" => BeginSearch::Keyword(text_of(get(&spec, "keyword")), int_of(&spec, "startfrom")),
            _ => BeginSearch::Unknown,
        }
    });
    let find = get(flat, "find_keys").map_or(FindKeys::Unknown, |k| {
        let spec = get(k, "spec").cloned().unwrap_or(Frame::Array(vec![]));
        match &text_of(get(k, "type"))[..] {
            b"range" => FindKeys::Range {
                lastkey: int_of(&spec, "lastkey"),
                keystep: int_of(&spec, "keystep"),
                limit: int_of(&spec, "limit"),
            },
            b"keynum" => FindKeys::Keynum {
                keynumidx: int_of(&spec, "keynumidx"),
                firstkey: int_of(&spec, "firstkey"),
                keystep: int_of(&spec, "keystep"),
            },
            _ => FindKeys::Unknown,
        }
    });
    KeySpec { flags, begin, find }
}

/// Whether a command's specs name real keys (Redis's `doesCommandHaveKeys` without a getkeys proc).
pub fn has_keys(specs: &[KeySpec]) -> bool {
    specs.iter().any(|s| !s.flags.iter().any(|f| f == "not_key"))
}

/// Redis's `getKeysUsingKeySpecs`: the positions of the keys in `argv` (name included) with their
/// spec's flags; None when a spec does not fit the arguments (the caller falls back to the
/// command's own key finder). `arity` is the command's: with a variable arity, positions past the
/// end are skipped.
pub fn keys_from_specs<'a>(specs: &'a [KeySpec], argv: &[Bytes], arity: i32) -> Option<Vec<(usize, &'a [String])>> {
    let argc = argv.len() as i64;
    let mut keys = Vec::new();
    for spec in specs.iter().filter(|s| !s.flags.iter().any(|f| f == "not_key")) {
        let mut first = match &spec.begin {
            BeginSearch::Index(pos) => *pos,
            BeginSearch::Keyword(word, startfrom) => {
                let start = if *startfrom > 0 { *startfrom } else { argc + startfrom };
                let end = if *startfrom > 0 { argc - 1 } else { 1 };
                let mut i = start;
                let mut found = 0;
                while i != end {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if argv[i as usize].eq_ignore_ascii_case(word) {
                        found = i + 1;
                        break;
                    }
                    i = if start <= end { i + 1 } else { i - 1 };
                }
                if found == 0 {
                    continue;
                }
                found
            }
            BeginSearch::Unknown => return None,
        };
        let (last, step) = match spec.find {
            FindKeys::Range { lastkey, keystep, limit } => {
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (last, keystep)
            }
            FindKeys::Keynum { keynumidx, firstkey, keystep } => {
                let at = usize::try_from(first + keynumidx).ok().filter(|&i| keynumidx < argc && i < argv.len())?;
                let n = crate::util::parse_i64(&argv[at]).filter(|&n| n >= 0)?;
                first += firstkey;
                (first + n - 1, keystep)
            }
            FindKeys::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            if i >= argc || i < first {
                if arity < 0 {
                    i += step.max(1);
                    continue;
                }
                return None;
            }
            keys.push((i as usize, &spec.flags[..]));
            i += step.max(1);
        }
        if spec.flags.iter().any(|f| f == "incomplete") {
            return None;
        }
    }
    Some(keys)
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<Bytes> {
        args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
    }

    fn positions(name: &str, args: &[&str]) -> Option<Vec<usize>> {
        let c = captured(name).unwrap();
        keys_from_specs(&c.specs, &argv(args), -1).map(|k| k.into_iter().map(|(i, _)| i).collect())
    }

    #[test]
    fn every_table_row_has_its_captured_description() {
        for spec in crate::cmd::COMMANDS {
            let c = captured(spec.name).unwrap_or_else(|| panic!("{} is not in info.resp: run gen_docs.py", spec.name));
            // SSUBSCRIBE and friends: their channels have `not_key` specs but a first/last/step.
            let channels = !c.specs.is_empty() && !has_keys(&c.specs);
            assert_eq!(
                has_keys(&c.specs) || channels,
                spec.keys.0 > 0 || spec.is(crate::cmd::flag::MOVABLEKEYS),
                "{}",
                spec.name
            );
        }
    }

    #[test]
    fn key_specs_are_read_with_their_flags() {
        let lmove = &captured("lmove").unwrap().specs;
        assert_eq!(lmove.len(), 2);
        assert_eq!(lmove[0].flags, ["RW", "access", "delete"]);
        assert_eq!(lmove[1].begin, BeginSearch::Index(2));
        assert_eq!(lmove[1].find, FindKeys::Range { lastkey: 0, keystep: 1, limit: 0 });
        let lmpop = &captured("lmpop").unwrap().specs;
        assert_eq!(lmpop[0].find, FindKeys::Keynum { keynumidx: 0, firstkey: 1, keystep: 1 });
    }

    #[test]
    fn specs_find_keys_by_index_range_and_keynum() {
        assert_eq!(positions("mset", &["mset", "a", "1", "b", "2"]), Some(vec![1, 3]));
        assert_eq!(positions("blpop", &["blpop", "a", "b", "0"]), Some(vec![1, 2]));
        assert_eq!(positions("lmpop", &["lmpop", "2", "a", "b", "LEFT"]), Some(vec![2, 3]));
        assert_eq!(positions("lmpop", &["lmpop", "1x", "a", "LEFT"]), None, "not a number: the fallback decides");
        assert_eq!(positions("lmpop", &["lmpop", "5", "a", "LEFT"]), None, "more keys than arguments");
        assert_eq!(positions("blmpop", &["blmpop", "0", "1", "k", "LEFT"]), Some(vec![3]));
    }

    #[test]
    fn subcommands_and_tips_are_typed_as_redis_resp3() {
        let slowlog = captured("slowlog").unwrap();
        let Frame::Array(subs) = &slowlog.subcommands else { panic!() };
        let names: Vec<&Frame> = subs.iter().map(|s| if let Frame::Array(f) = s { &f[0] } else { panic!() }).collect();
        assert_eq!(
            names,
            [
                &Frame::bulk(b"slowlog|get"),
                &Frame::bulk(b"slowlog|help"),
                &Frame::bulk(b"slowlog|len"),
                &Frame::bulk(b"slowlog|reset")
            ]
        );
        assert_eq!(captured("get").unwrap().subcommands, Frame::Set(vec![]));
        let Frame::Set(specs) = &captured("get").unwrap().key_specs else { panic!() };
        assert!(matches!(&specs[0], Frame::Map(m) if matches!(&m[0].1, Frame::Set(_))));
    }
}
