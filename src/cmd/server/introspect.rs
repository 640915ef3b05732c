//! `COMMAND`: the command table as Redis 7.0 describes it (`COMMAND`, `COUNT`, `INFO`, `DOCS`,
//! `LIST`, `GETKEYS`). Every reply is built from the rows of [`crate::cmd::COMMANDS`] and the
//! documentation in [`docs`]. Mirrors the COMMAND half of Redis's `server.c`.

use bytes::Bytes;

use super::{SubSpec, docs::docs, help_reply, keyspecs, run_subcommand};
use crate::cmd::{COMMANDS, CommandSpec, Ctx, flag, is_opt, lookup};
use crate::error::{Error, Result};
use crate::resp::Frame;

pub(crate) static COMMAND_SUBS: &[SubSpec] = &[
    SubSpec { name: "command|count", arity: 2, handler: command_count },
    SubSpec { name: "command|docs", arity: -2, handler: command_docs },
    SubSpec { name: "command|info", arity: -2, handler: command_info },
    SubSpec { name: "command|list", arity: -2, handler: command_list },
    SubSpec { name: "command|getkeys", arity: -4, handler: command_getkeys },
    SubSpec { name: "command|getkeysandflags", arity: -4, handler: command_getkeysandflags },
    SubSpec { name: "command|help", arity: 2, handler: command_help },
];

/// `COMMAND [COUNT|DOCS|INFO|LIST|GETKEYS|HELP ...]`: without a subcommand, every command's
/// description.
pub fn command(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    if argv.len() == 1 {
        return Ok(Frame::Array(COMMANDS.iter().map(command_entry).collect()));
    }
    run_subcommand(ctx, argv, COMMAND_SUBS)
}

fn simple_set(items: &[&str]) -> Frame {
    Frame::Set(items.iter().map(|s| Frame::Simple(Bytes::from(s.to_string()))).collect())
}

/// Redis 7.0's ten-field description of a command: name, arity, flags, first key, last key, key
/// step, ACL categories (from the table), tips, key specs, subcommands (captured from Redis, see
/// [`keyspecs`]). Flags, categories, tips and key specs are sets, as in Redis (arrays under RESP2).
pub fn command_entry(spec: &CommandSpec) -> Frame {
    let (first, last, step) = spec.keys;
    let captured = keyspecs::captured(spec.name);
    let or_empty = |f: Option<&Frame>| f.cloned().unwrap_or(Frame::Set(vec![]));
    Frame::Array(vec![
        Frame::Bulk(Bytes::from_static(spec.name.as_bytes())),
        Frame::Integer(i64::from(spec.arity)),
        // may_replicate is hidden on purpose, as in Redis's addReplyCommandFlags.
        simple_set(&spec.flags.iter().copied().filter(|f| *f != "may_replicate").collect::<Vec<_>>()),
        Frame::Integer(i64::from(first)),
        Frame::Integer(i64::from(last)),
        Frame::Integer(i64::from(step)),
        simple_set(spec.acl),
        or_empty(captured.map(|c| &c.tips)),
        or_empty(captured.map(|c| &c.key_specs)),
        or_empty(captured.map(|c| &c.subcommands)),
    ])
}

/// `COMMAND COUNT`: the number of commands.
fn command_count(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Ok(Frame::Integer(COMMANDS.len() as i64))
}

/// `COMMAND INFO [command-name ...]`: each named command's description, nil for unknown names;
/// every command's without names.
fn command_info(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    if argv.len() == 2 {
        return Ok(Frame::Array(COMMANDS.iter().map(command_entry).collect()));
    }
    let entry = |n: &Bytes| match lookup(n) {
        Some(spec) => command_entry(spec),
        None => subcommand_entry(n).unwrap_or(Frame::Null),
    };
    Ok(Frame::Array(argv[2..].iter().map(entry).collect()))
}

/// The `COMMAND INFO` entry of an implemented subcommand named `container|sub` (any case).
fn subcommand_entry(name: &[u8]) -> Option<Frame> {
    let container = name.split(|&b| b == b'|').next()?;
    let Frame::Array(subs) = &keyspecs::captured(lookup(container)?.name)?.subcommands else { return None };
    subs.iter()
        .find(|e| matches!(e, Frame::Array(f) if matches!(&f[0], Frame::Bulk(n) if n.eq_ignore_ascii_case(name))))
        .cloned()
}

/// `COMMAND DOCS [command-name ...]`: name/documentation pairs of the named commands and
/// subcommands (`config|get`; unknown names are skipped), of every command without names.
fn command_docs(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let doc_of = |spec: &CommandSpec| {
        Some((Frame::Bulk(Bytes::from_static(spec.name.as_bytes())), docs().get(spec.name)?.clone()))
    };
    let out = if argv.len() == 2 {
        COMMANDS.iter().filter_map(doc_of).collect()
    } else {
        argv[2..].iter().filter_map(|n| lookup(n).map_or_else(|| subcommand_doc(n), doc_of)).collect()
    };
    Ok(Frame::Map(out))
}

/// The `COMMAND DOCS` pair of an implemented subcommand named `container|sub` (any case).
fn subcommand_doc(name: &[u8]) -> Option<(Frame, Frame)> {
    let container = name.split(|&b| b == b'|').next()?;
    let Frame::Map(doc) = docs().get(lookup(container)?.name)? else { return None };
    let Frame::Map(subs) = &doc.iter().find(|(k, _)| k == &Frame::bulk(b"subcommands"))?.1 else { return None };
    subs.iter().find(|(k, _)| matches!(k, Frame::Bulk(n) if n.eq_ignore_ascii_case(name))).cloned()
}

/// Every command name, subcommands (`client|list`) included, with the command's ACL categories
/// (subcommands carry none here).
fn all_names() -> impl Iterator<Item = (&'static str, &'static [&'static str])> {
    let subs = crate::cmd::slots::sub_tables().into_iter().flatten().map(|s| (s.name, &[][..]));
    COMMANDS.iter().map(|c| (c.name, c.acl)).chain(subs)
}

/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]`: command names.
fn command_list(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let names: Vec<&str> = match argv {
        [_, _] => all_names().map(|(n, _)| n).collect(),
        [_, _, f, kind, value] if is_opt(f, "FILTERBY") => {
            if is_opt(kind, "MODULE") {
                Vec::new()
            } else if is_opt(kind, "ACLCAT") {
                let want = |a: &&str| a.trim_start_matches('@').as_bytes().eq_ignore_ascii_case(value);
                all_names().filter(|(_, acl)| acl.iter().any(want)).map(|(n, _)| n).collect()
            } else if is_opt(kind, "PATTERN") {
                all_names()
                    .filter(|(n, _)| crate::util::glob_match(value, n.as_bytes(), true))
                    .map(|(n, _)| n)
                    .collect()
            } else {
                return Err(Error::Syntax);
            }
        }
        _ => return Err(Error::Syntax),
    };
    Ok(Frame::Array(names.into_iter().map(|n| Frame::Bulk(Bytes::from_static(n.as_bytes()))).collect()))
}

/// `COMMAND GETKEYS command [arg ...]`: the keys of a full command.
fn command_getkeys(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let keys = full_command_keys(&argv[2..])?;
    Ok(Frame::Array(keys.into_iter().map(|(k, _)| Frame::Bulk(k)).collect()))
}

/// `COMMAND GETKEYSANDFLAGS command [arg ...]`: each key of a full command with its key spec's
/// flags (`RW`, `access`, ...; none when found by the command's own key finder).
fn command_getkeysandflags(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let keys = full_command_keys(&argv[2..])?;
    Ok(Frame::Array(
        keys.into_iter()
            .map(|(k, flags)| {
                let flags = flags.into_iter().map(|f| Frame::Simple(Bytes::from(f))).collect();
                Frame::Array(vec![Frame::Bulk(k), Frame::Set(flags)])
            })
            .collect(),
    ))
}

/// The keys of a full command (Redis's `getKeysFromCommand`), none when it has none or its
/// arguments do not locate them.
pub fn command_keys(cmd: &[Bytes]) -> Vec<Bytes> {
    full_command_keys(cmd).map(|keys| keys.into_iter().map(|(k, _)| k).collect()).unwrap_or_default()
}

/// The keys of a full command and their flags, as Redis's `getKeysSubcommandImpl` finds them: from
/// the key specs when their flags are fixed, else (a spec that does not fit, `variable_flags`, or
/// no spec) from the command's own key finder.
fn full_command_keys(cmd: &[Bytes]) -> Result<Vec<(Bytes, Vec<String>)>> {
    let spec = lookup(&cmd[0]).ok_or_else(|| Error::err("Invalid command specified"))?;
    let specs = keyspecs::captured(spec.name).map_or(&[][..], |c| &c.specs[..]);
    let movable = spec.is(flag::MOVABLEKEYS);
    if !keyspecs::has_keys(specs) && !movable {
        return Err(Error::err("The command has no key arguments"));
    }
    if !spec.arity_ok(cmd.len()) {
        return Err(Error::err("Invalid number of arguments specified for command"));
    }
    let variable_flags = specs.iter().any(|s| s.flags.iter().any(|f| f == "variable_flags"));
    let from_specs = if variable_flags { None } else { keyspecs::keys_from_specs(specs, cmd, spec.arity) };
    let found = match from_specs {
        Some(keys) => keys.into_iter().map(|(i, flags)| (cmd[i].clone(), flags.to_vec())).collect(),
        None => own_keys(spec.name, cmd),
    };
    if found.is_empty() {
        return Err(Error::err("Invalid arguments specified for command"));
    }
    Ok(found)
}

/// The key finders of the commands whose keys the specs cannot give (Redis's `getkeys_proc`):
/// SET's flags depend on GET; LMPOP/BLMPOP read `numkeys` as C's `atoi`.
fn own_keys(name: &str, cmd: &[Bytes]) -> Vec<(Bytes, Vec<String>)> {
    let flags = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match name {
        "set" => {
            let get = cmd.iter().skip(3).any(|a| is_opt(a, "GET"));
            vec![(cmd[1].clone(), if get { flags(&["RW", "access", "update"]) } else { flags(&["OW", "update"]) })]
        }
        "sort_ro" => vec![(cmd[1].clone(), flags(&["RO", "access"]))],
        // The key, or after KEYS every argument (Redis's `migrateGetKeys`).
        "migrate" => {
            let rw = flags(&["RW", "access", "delete"]);
            match cmd.iter().skip(6).position(|a| is_opt(a, "KEYS")) {
                Some(_) if !cmd[3].is_empty() => Vec::new(),
                Some(p) => cmd[7 + p..].iter().map(|k| (k.clone(), rw.clone())).collect(),
                None => vec![(cmd[3].clone(), rw)],
            }
        }
        // The key, then the argument after the last STORE (Redis's `sortGetKeys`: LIMIT skips two
        // arguments, BY and GET one; STORE skips none).
        "sort" => {
            let mut keys = vec![(cmd[1].clone(), flags(&["RO", "access"]))];
            let mut store = None;
            let mut i = 2;
            while i < cmd.len() {
                if is_opt(&cmd[i], "limit") {
                    i += 2;
                } else if is_opt(&cmd[i], "get") || is_opt(&cmd[i], "by") {
                    i += 1;
                } else if is_opt(&cmd[i], "store") && i + 1 < cmd.len() {
                    store = Some(cmd[i + 1].clone());
                }
                i += 1;
            }
            keys.extend(store.map(|k| (k, flags(&["OW", "update"]))));
            keys
        }
        // The destination, then `numkeys` sources (Redis's `zunionInterDiffStoreGetKeys`).
        "zunionstore" | "zinterstore" | "zdiffstore" => match numkeys_keys(cmd, 2) {
            Some(keys) => std::iter::once(&cmd[1]).chain(keys).map(|k| (k.clone(), Vec::new())).collect(),
            None => Vec::new(),
        },
        _ => {
            movable_keys(name, cmd).map_or_else(Vec::new, |keys| keys.iter().map(|k| (k.clone(), Vec::new())).collect())
        }
    }
}

/// The keys of a command whose key positions depend on its arguments (`numkeys key [key ...]`:
/// LMPOP, BLMPOP, ZMPOP, ZUNION & co), as Redis's `genericGetKeys` finds them: `numkeys` read as
/// C `atoi` does, and None when it is below 1 or more keys than the arguments hold.
fn movable_keys<'a>(name: &str, cmd: &'a [Bytes]) -> Option<&'a [Bytes]> {
    let count_at = match name {
        "lmpop" | "sintercard" | "zmpop" | "zunion" | "zinter" | "zdiff" | "zintercard" => 1,
        "blmpop" | "bzmpop" => 2,
        _ => return None,
    };
    numkeys_keys(cmd, count_at)
}

/// The `numkeys` keys after `cmd[count_at]`.
fn numkeys_keys(cmd: &[Bytes], count_at: usize) -> Option<&[Bytes]> {
    let first = count_at + 1;
    let n = atoi(cmd.get(count_at)?);
    let room = cmd.len().saturating_sub(first) as i64;
    if n < 1 || n > room {
        return None;
    }
    cmd.get(first..first + usize::try_from(n).ok()?)
}

/// C's `atoi`: leading spaces, a sign, then digits up to the first other byte (0 when none);
/// saturated instead of undefined on overflow.
fn atoi(arg: &[u8]) -> i64 {
    let s = arg.iter().skip_while(|b| b.is_ascii_whitespace()).copied().collect::<Vec<u8>>();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, &s[..]),
    };
    let n = digits
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0i64, |n, d| n.saturating_mul(10).saturating_add(i64::from(d - b'0')));
    if neg { -n } else { n }
}

/// `COMMAND HELP`.
fn command_help(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(help_reply(
        &argv[0],
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    ))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::cmd::testing::{Harness, arr, bulk, err, int};

    fn simple(s: &str) -> Frame {
        Frame::Simple(Bytes::from(s.to_string()))
    }

    fn get_entry() -> Frame {
        arr(vec![
            bulk("get"),
            int(2),
            Frame::Set(vec![simple("readonly"), simple("fast")]),
            int(1),
            int(1),
            int(1),
            Frame::Set(vec![simple("@read"), simple("@string"), simple("@fast")]),
            Frame::Set(vec![]),
            Frame::Set(vec![Frame::Map(vec![
                (bulk("flags"), Frame::Set(vec![simple("RO"), simple("access")])),
                (
                    bulk("begin_search"),
                    Frame::Map(vec![
                        (bulk("type"), bulk("index")),
                        (bulk("spec"), Frame::Map(vec![(bulk("index"), int(1))])),
                    ]),
                ),
                (
                    bulk("find_keys"),
                    Frame::Map(vec![
                        (bulk("type"), bulk("range")),
                        (
                            bulk("spec"),
                            Frame::Map(vec![
                                (bulk("lastkey"), int(0)),
                                (bulk("keystep"), int(1)),
                                (bulk("limit"), int(0)),
                            ]),
                        ),
                    ]),
                ),
            ])]),
            Frame::Set(vec![]),
        ])
    }

    #[test]
    fn command_getkeysandflags_gives_each_key_its_spec_flags() {
        let mut h = Harness::new();
        let pair = |k: &str, flags: &[&str]| arr(vec![bulk(k), Frame::Set(flags.iter().map(|f| simple(f)).collect())]);
        assert_eq!(
            h.run(&["COMMAND", "GETKEYSANDFLAGS", "LMOVE", "a", "b", "LEFT", "RIGHT"]),
            arr(vec![pair("a", &["RW", "access", "delete"]), pair("b", &["RW", "insert"])])
        );
        assert_eq!(h.run(&["COMMAND", "GETKEYSANDFLAGS", "set", "k", "v"]), arr(vec![pair("k", &["OW", "update"])]));
        assert_eq!(
            h.run(&["COMMAND", "GETKEYSANDFLAGS", "SET", "k", "v", "get"]),
            arr(vec![pair("k", &["RW", "access", "update"])]),
            "SET's flags depend on GET (its key spec says variable_flags)"
        );
        assert_eq!(h.run(&["COMMAND", "GETKEYSANDFLAGS", "LMPOP", "1x", "a", "LEFT"]), arr(vec![pair("a", &[])]));
        assert_eq!(
            h.run(&["COMMAND", "GETKEYSANDFLAGS", "get"]),
            err("ERR wrong number of arguments for 'command|getkeysandflags' command")
        );
        assert_eq!(
            h.run(&["COMMAND", "GETKEYSANDFLAGS", "lmpop", "0", "a", "left"]),
            err("ERR Invalid arguments specified for command")
        );
    }

    #[test]
    fn command_info_names_subcommands_with_their_own_entries() {
        let mut h = Harness::new();
        let Frame::Array(info) = h.run(&["COMMAND", "INFO", "config"]) else { panic!() };
        let Frame::Array(fields) = &info[0] else { panic!() };
        let Frame::Array(subs) = &fields[9] else { panic!("{:?}", fields[9]) };
        let names: Vec<Frame> =
            subs.iter().map(|s| if let Frame::Array(f) = s { f[0].clone() } else { panic!() }).collect();
        assert_eq!(names, ["config|get", "config|help", "config|resetstat", "config|rewrite", "config|set"].map(bulk));
        for sub in subs {
            let Frame::Array(f) = sub else { panic!() };
            let row =
                super::super::config::CONFIG_SUBS.iter().find(|s| Frame::bulk(s.name.as_bytes()) == f[0]).unwrap();
            assert_eq!(f[1], int(i64::from(row.arity)), "{}: the captured arity is the dispatcher's", row.name);
        }
        let Frame::Array(one) = h.run(&["COMMAND", "INFO", "CONFIG|get", "script|debug", "x|y"]) else { panic!() };
        assert_eq!(one[0], subs[0], "a subcommand by its full name");
        assert_eq!(&one[1..], [Frame::Null, Frame::Null], "not implemented, not a container");
        let Frame::Map(docs) = h.run(&["COMMAND", "DOCS", "config|GET", "script|debug"]) else { panic!() };
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].0, bulk("config|get"));
    }

    #[test]
    fn command_lists_every_row_in_the_ten_field_format() {
        let mut h = Harness::new();
        let Frame::Array(all) = h.run(&["COMMAND"]) else { panic!() };
        assert_eq!(all.len(), COMMANDS.len());
        assert!(all.contains(&get_entry()));
        assert!(all.iter().all(|e| matches!(e, Frame::Array(f) if f.len() == 10)));
        assert_eq!(h.run(&["COMMAND", "COUNT"]), int(COMMANDS.len() as i64));
        assert_eq!(h.run(&["COMMAND", "COUNT", "x"]), err("ERR wrong number of arguments for 'command|count' command"));
    }

    #[test]
    fn command_info_describes_named_commands_and_nil_for_unknown() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["COMMAND", "INFO", "GET"]), arr(vec![get_entry()]));
        assert_eq!(h.run(&["COMMAND", "INFO", "nosuch", "get"]), arr(vec![Frame::Null, get_entry()]));
        let Frame::Array(all) = h.run(&["COMMAND", "INFO"]) else { panic!() };
        assert_eq!(all.len(), COMMANDS.len());
    }

    #[test]
    fn command_docs_gives_redis_documentation_with_arguments() {
        let mut h = Harness::new();
        let key_arg = Frame::Map(vec![
            (bulk("name"), bulk("key")),
            (bulk("type"), bulk("key")),
            (bulk("key_spec_index"), int(0)),
        ]);
        let doc = Frame::Map(vec![
            (bulk("summary"), bulk("Get the value of a key")),
            (bulk("since"), bulk("1.0.0")),
            (bulk("group"), bulk("string")),
            (bulk("complexity"), bulk("O(1)")),
            (bulk("arguments"), arr(vec![key_arg])),
        ]);
        assert_eq!(h.run(&["COMMAND", "DOCS", "get", "nosuch"]), Frame::Map(vec![(bulk("get"), doc)]));
        let Frame::Map(all) = h.run(&["COMMAND", "DOCS"]) else { panic!() };
        assert_eq!(all.len(), COMMANDS.len(), "every command has docs");
    }

    #[test]
    fn command_list_names_commands_and_filters() {
        let mut h = Harness::new();
        let Frame::Array(all) = h.run(&["COMMAND", "LIST"]) else { panic!() };
        assert!(all.contains(&bulk("get")) && all.contains(&bulk("client|list")));
        assert_eq!(
            h.run(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "client|*name"]),
            arr(vec![bulk("client|setname"), bulk("client|getname")])
        );
        let Frame::Array(conn) = h.run(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "connection"]) else { panic!() };
        assert!(conn.contains(&bulk("ping")) && !conn.contains(&bulk("get")));
        assert_eq!(h.run(&["COMMAND", "LIST", "FILTERBY", "MODULE", "x"]), arr(vec![]));
        assert_eq!(h.run(&["COMMAND", "LIST", "FILTERBY", "xyz", "a"]), err("ERR syntax error"));
        assert_eq!(h.run(&["COMMAND", "LIST", "x"]), err("ERR syntax error"));
    }

    #[test]
    fn command_getkeys_reads_numkeys_of_lmpop_and_blmpop_as_redis() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["COMMAND", "GETKEYS", "LMPOP", "2", "a", "b", "LEFT"]), arr(vec![bulk("a"), bulk("b")]));
        assert_eq!(
            h.run(&["COMMAND", "GETKEYS", "blmpop", "0", "2", "a", "b", "LEFT", "COUNT", "3"]),
            arr(vec![bulk("a"), bulk("b")])
        );
        assert_eq!(h.run(&["COMMAND", "GETKEYS", "LMPOP", "1x", "a", "LEFT"]), arr(vec![bulk("a")]));
        let invalid = Frame::Error("ERR Invalid arguments specified for command".into());
        assert_eq!(h.run(&["COMMAND", "GETKEYS", "LMPOP", "0", "a", "LEFT"]), invalid);
        assert_eq!(h.run(&["COMMAND", "GETKEYS", "LMPOP", "5", "a", "LEFT"]), invalid);
        assert_eq!(h.run(&["COMMAND", "GETKEYS", "LMPOP", "x", "a", "LEFT"]), invalid);
    }

    #[test]
    fn command_getkeys_finds_the_keys_of_sorted_set_commands_as_redis() {
        let mut h = Harness::new();
        let keys = |k: &[&str]| arr(k.iter().map(|k| bulk(k)).collect());
        let getkeys = |h: &mut Harness, args: &[&str]| h.run(&[&["COMMAND", "GETKEYS"][..], args].concat());
        assert_eq!(getkeys(&mut h, &["zunionstore", "d", "2", "a", "b", "WEIGHTS", "1", "2"]), keys(&["d", "a", "b"]));
        assert_eq!(getkeys(&mut h, &["zunion", "2", "a", "b"]), keys(&["a", "b"]));
        assert_eq!(getkeys(&mut h, &["zintercard", "1", "a", "LIMIT", "1"]), keys(&["a"]));
        assert_eq!(getkeys(&mut h, &["zmpop", "2", "a", "b", "MIN"]), keys(&["a", "b"]));
        assert_eq!(getkeys(&mut h, &["zrangestore", "d", "s", "0", "1"]), keys(&["d", "s"]));
        assert_eq!(getkeys(&mut h, &["zdiffstore", "d", "1", "a"]), keys(&["d", "a"]));
        let invalid = Frame::Error("ERR Invalid arguments specified for command".into());
        assert_eq!(getkeys(&mut h, &["zunion", "0", "a"]), invalid);
        assert_eq!(getkeys(&mut h, &["zinterstore", "d", "3", "a"]), invalid);
    }

    #[test]
    fn command_getkeys_uses_key_positions() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["COMMAND", "GETKEYS", "mset", "a", "1", "b", "2"]), arr(vec![bulk("a"), bulk("b")]));
        assert_eq!(h.run(&["COMMAND", "GETKEYS", "SET", "k", "v", "EX", "1"]), arr(vec![bulk("k")]));
        assert_eq!(h.run(&["COMMAND", "GETKEYS", "del", "a", "b", "c"]), arr(vec![bulk("a"), bulk("b"), bulk("c")]));
        assert_eq!(
            h.run(&["COMMAND", "GETKEYS", "get", "a", "b"]),
            err("ERR Invalid number of arguments specified for command")
        );
        assert_eq!(h.run(&["COMMAND", "GETKEYS", "nosuch", "a"]), err("ERR Invalid command specified"));
        assert_eq!(h.run(&["COMMAND", "GETKEYS", "ping", "a", "b"]), err("ERR The command has no key arguments"));
        assert_eq!(h.run(&["COMMAND", "GETKEYS", "ping", "x"]), err("ERR The command has no key arguments"));
        assert_eq!(
            h.run(&["COMMAND", "GETKEYS", "get"]),
            err("ERR wrong number of arguments for 'command|getkeys' command")
        );
    }

    #[test]
    fn command_unknown_subcommand_and_help() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["COMMAND", "xyz"]), err("ERR unknown subcommand 'xyz'. Try COMMAND HELP."));
        let Frame::Array(lines) = h.run(&["COMMAND", "HELP"]) else { panic!() };
        assert_eq!(lines[0], simple("COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    }
}
