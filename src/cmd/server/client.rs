//! `CLIENT`: the connection's own name and id, and the listing of connected clients in Redis's
//! `CLIENT LIST` line format. Mirrors the CLIENT half of Redis's `networking.c`.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{SubSpec, help_reply, run_subcommand};
use crate::cmd::{Ctx, is_opt};
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::state::ClientInfo;

pub(crate) static CLIENT_SUBS: &[SubSpec] = &[
    SubSpec { name: "client|id", arity: 2, handler: client_id },
    SubSpec { name: "client|info", arity: 2, handler: client_info },
    SubSpec { name: "client|list", arity: -2, handler: client_list },
    SubSpec { name: "client|setname", arity: 3, handler: client_setname },
    SubSpec { name: "client|getname", arity: 2, handler: client_getname },
    SubSpec { name: "client|help", arity: 2, handler: client_help },
    SubSpec { name: "client|kill", arity: -3, handler: client_kill },
    SubSpec { name: "client|reply", arity: 3, handler: client_reply },
    SubSpec { name: "client|no-evict", arity: 3, handler: client_no_evict },
    SubSpec { name: "client|tracking", arity: -3, handler: super::client_tracking::client_tracking },
    SubSpec { name: "client|caching", arity: 3, handler: super::client_tracking::client_caching },
    SubSpec { name: "client|getredir", arity: 2, handler: super::client_tracking::client_getredir },
    SubSpec { name: "client|trackinginfo", arity: 2, handler: super::client_tracking::client_trackinginfo },
    SubSpec { name: "client|pause", arity: -3, handler: super::client_ctl::client_pause },
    SubSpec { name: "client|unpause", arity: 2, handler: super::client_ctl::client_unpause },
    SubSpec { name: "client|unblock", arity: -3, handler: super::client_ctl::client_unblock },
];

/// `CLIENT ID|INFO|LIST|SETNAME|GETNAME|HELP ...`.
pub fn client(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    run_subcommand(ctx, argv, CLIENT_SUBS)
}

/// Redis accepts client names made of the printable characters `!` to `~` only.
pub fn validate_name(name: &[u8]) -> Result<()> {
    if name.iter().all(|c| (b'!'..=b'~').contains(c)) {
        Ok(())
    } else {
        Err(Error::err("Client names cannot contain spaces, newlines or special characters."))
    }
}

/// Set (or, with an empty name, clear) this connection's name. The name must be valid.
pub fn set_name(ctx: &Ctx, name: &Bytes) {
    let v = if name.is_empty() { None } else { Some(name.clone()) };
    *ctx.client.info.name.lock().unwrap_or_else(|e| e.into_inner()) = v;
}

/// `CLIENT ID`: this connection's id.
fn client_id(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Ok(Frame::Integer(ctx.client.id as i64))
}

/// `CLIENT SETNAME name`: name this connection; an empty name clears it.
fn client_setname(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    validate_name(&argv[2])?;
    set_name(ctx, &argv[2]);
    Ok(Frame::ok())
}

/// `CLIENT GETNAME`: this connection's name, or nil.
fn client_getname(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    let name = ctx.client.info.name.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(name.map_or(Frame::Null, Frame::Bulk))
}

/// `CLIENT INFO`: this connection's `CLIENT LIST` line.
fn client_info(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    let kind = ctx.shared.repl.client_kind(ctx.client.id);
    Ok(Frame::Verbatim(Bytes::from(client_line(&ctx.client.info, kind))))
}

/// `CLIENT LIST [TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID id [id ...]]`: one line per client.
fn client_list(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let mut ids: Option<Vec<i64>> = None;
    // Which clients TYPE asks for (None: every client).
    let mut want: Option<ClientType> = None;
    if argv.len() == 4 && is_opt(&argv[2], "TYPE") {
        let t = &argv[3];
        want = Some(
            client_type_by_name(t)
                .ok_or_else(|| Error::err(format!("Unknown client type '{}'", String::from_utf8_lossy(t))))?,
        );
    } else if argv.len() > 3 && is_opt(&argv[2], "ID") {
        let parsed: Option<Vec<i64>> = argv[3..].iter().map(|a| crate::util::parse_i64(a)).collect();
        ids = Some(parsed.ok_or_else(|| Error::err("Invalid client ID"))?);
    } else if argv.len() != 2 {
        return Err(Error::Syntax);
    }
    let mut out = String::new();
    for c in ctx.shared.clients.all() {
        let kind = ctx.shared.repl.client_kind(c.id);
        if want.is_some_and(|t| t != client_type(&c, kind)) {
            continue;
        }
        if ids.as_ref().is_none_or(|ids| ids.contains(&(c.id as i64))) {
            out.push_str(&client_line(&c, kind));
        }
    }
    Ok(Frame::Verbatim(Bytes::from(out)))
}

/// Redis's client types, by name (`getClientTypeByName`): None for an unknown name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    PubSub,
    /// The link to our primary.
    Master,
    /// A replica's link (replica, slave).
    Replica,
}

/// Redis's `getClientType`: the link to our primary, a replica's link, a subscriber, or normal.
/// `kind` is [`Repl::client_kind`](crate::repl::Repl::client_kind) of the client.
fn client_type(c: &ClientInfo, kind: Option<bool>) -> ClientType {
    match kind {
        Some(true) => ClientType::Master,
        Some(false) => ClientType::Replica,
        None if is_pubsub(c) => ClientType::PubSub,
        None => ClientType::Normal,
    }
}

fn client_type_by_name(name: &[u8]) -> Option<ClientType> {
    let lower = name.to_ascii_lowercase();
    match &lower[..] {
        b"normal" => Some(ClientType::Normal),
        b"pubsub" => Some(ClientType::PubSub),
        b"master" => Some(ClientType::Master),
        b"slave" | b"replica" => Some(ClientType::Replica),
        _ => None,
    }
}

/// `CLIENT KILL ip:port` (+OK, or `ERR No such client`; may kill the caller) and `CLIENT KILL
/// <ID|TYPE|ADDR|LADDR|USER|SKIPME> <value> ...` (how many were killed; SKIPME yes by default):
/// Redis's `clientKillCommand`. A killed connection is closed as a shutdown closes it (it finishes
/// the command it is running); the caller, if it matches, closes after this reply.
fn client_kill(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (mut addr, mut laddr, mut ctype, mut id, mut skipme) = (None, None, None, 0u64, true);
    if argv.len() == 3 {
        addr = Some(&argv[2][..]);
        skipme = false;
    } else {
        let mut i = 2;
        while i < argv.len() {
            let Some(value) = argv.get(i + 1) else { return Err(Error::Syntax) };
            let opt = &argv[i];
            if is_opt(opt, "id") {
                id = crate::util::parse_i64(value)
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| Error::err("client-id should be greater than 0"))? as u64;
            } else if is_opt(opt, "type") {
                ctype =
                    Some(client_type_by_name(value).ok_or_else(|| {
                        Error::err(format!("Unknown client type '{}'", String::from_utf8_lossy(value)))
                    })?);
            } else if is_opt(opt, "addr") {
                addr = Some(&value[..]);
            } else if is_opt(opt, "laddr") {
                laddr = Some(&value[..]);
            } else if is_opt(opt, "user") {
                // Only the default user exists.
                if &value[..] != b"default" {
                    return Err(Error::err(format!("No such user '{}'", String::from_utf8_lossy(value))));
                }
            } else if is_opt(opt, "skipme") {
                skipme = if is_opt(value, "yes") {
                    true
                } else if is_opt(value, "no") {
                    false
                } else {
                    return Err(Error::Syntax);
                };
            } else {
                return Err(Error::Syntax);
            }
            i += 2;
        }
    }
    let me = ctx.client.id;
    let mut killed = 0;
    for c in ctx.shared.clients.all() {
        let kind = client_type(&c, ctx.shared.repl.client_kind(c.id));
        if addr.is_some_and(|a| a != c.addr.as_bytes())
            || laddr.is_some_and(|a| a != c.laddr.as_bytes())
            || ctype.is_some_and(|t| t != kind)
            || (id != 0 && c.id != id)
            || (c.id == me && skipme)
        {
            continue;
        }
        if c.id == me {
            ctx.client.close_after_reply = true;
        } else {
            c.closing.notify_one();
        }
        killed += 1;
    }
    if argv.len() == 3 {
        return if killed == 0 { Err(Error::err("No such client")) } else { Ok(Frame::ok()) };
    }
    Ok(Frame::Integer(killed))
}

/// `CLIENT REPLY ON|OFF|SKIP`: +OK for ON; OFF and SKIP send no reply (see [`crate::cmd::ReplyMode`]).
fn client_reply(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    use crate::cmd::ReplyMode;
    ctx.client.reply_mode = if is_opt(&argv[2], "on") {
        ReplyMode::On
    } else if is_opt(&argv[2], "off") {
        ReplyMode::Off
    } else if is_opt(&argv[2], "skip") {
        // Unless replies are off altogether: then SKIP changes nothing.
        if ctx.client.reply_mode == ReplyMode::Off { ReplyMode::Off } else { ReplyMode::SkipNext }
    } else {
        return Err(Error::Syntax);
    };
    Ok(Frame::ok())
}

/// `CLIENT NO-EVICT ON|OFF`: accepted (flag `e` in CLIENT LIST); no client is ever evicted here
/// (`maxmemory-clients` has no effect yet).
fn client_no_evict(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let on = if is_opt(&argv[2], "on") {
        true
    } else if is_opt(&argv[2], "off") {
        false
    } else {
        return Err(Error::Syntax);
    };
    ctx.client.info.no_evict.store(on, Ordering::Relaxed);
    Ok(Frame::ok())
}

/// `CLIENT HELP`: the subcommands implemented here, in Redis's words.
fn client_help(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(help_reply(
        &argv[0],
        &[
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
        ],
    ))
}

/// Redis's static reply buffer (`PROTO_REPLY_CHUNK_BYTES`): CLIENT LIST's `obl=` counts pending
/// reply bytes up to it, `oll=`/`omem=` the chunks and bytes beyond.
const REPLY_CHUNK_BYTES: usize = 16 * 1024;

/// A client's buffers as CLIENT LIST reports them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BufferSizes {
    pub qbuf: usize,
    pub qbuf_free: usize,
    pub argv_mem: usize,
    pub multi_mem: usize,
    pub obl: usize,
    pub oll: usize,
    pub omem: usize,
    /// `tot-mem=`: the buffers above, the reply chunk, and the client's own record.
    pub total: u64,
}

/// Read a client's published buffer sizes (see `connection`).
pub fn buffer_sizes(c: &ClientInfo) -> BufferSizes {
    let qbuf = c.query_buf.load(Ordering::Relaxed);
    let qbuf_free = c.query_buf_free.load(Ordering::Relaxed);
    let argv_mem = c.argv_mem.load(Ordering::Relaxed);
    let multi_mem = c.multi_mem.load(Ordering::Relaxed);
    let pending = c.reply_pending.load(Ordering::Relaxed);
    let obl = pending.min(REPLY_CHUNK_BYTES);
    let omem = pending - obl;
    let total = qbuf + qbuf_free + argv_mem + multi_mem + REPLY_CHUNK_BYTES + omem + size_of::<ClientInfo>();
    BufferSizes {
        qbuf,
        qbuf_free,
        argv_mem,
        multi_mem,
        obl,
        oll: omem.div_ceil(REPLY_CHUNK_BYTES),
        omem,
        total: total as u64,
    }
}

/// Whether the client holds any subscription: Redis's pubsub client type (`flags=P`).
fn is_pubsub(c: &ClientInfo) -> bool {
    c.sub.load(Ordering::Relaxed) + c.psub.load(Ordering::Relaxed) + c.ssub.load(Ordering::Relaxed) > 0
}

/// One client's line in Redis's `CLIENT LIST` format, newline included. `repl`: Some(true) for
/// the link to our primary (`M`), Some(false) for a replica's link (`S`).
pub fn client_line(c: &ClientInfo, repl: Option<bool>) -> String {
    let name = c.name.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let name = name.map(|n| String::from_utf8_lossy(&n).into_owned()).unwrap_or_default();
    let cmd = *c.last_cmd.lock().unwrap_or_else(|e| e.into_inner());
    let idle_s = crate::util::now_ms().saturating_sub(c.last_interaction_ms.load(Ordering::Relaxed)) / 1000;
    let b = buffer_sizes(c);
    let multi = c.multi.load(Ordering::Relaxed);
    let mut flags = String::new();
    // Redis's order: O or S, M, P, x, b.
    if c.monitor.load(Ordering::Relaxed) {
        flags.push('O');
    } else if repl == Some(false) {
        flags.push('S');
    }
    if repl == Some(true) {
        flags.push('M');
    }
    if is_pubsub(c) {
        flags.push('P');
    }
    if multi >= 0 {
        flags.push('x');
    }
    if c.blocked.load(Ordering::Relaxed) {
        flags.push('b');
    }
    flags.push_str(c.tracking.list_flags());
    if c.no_evict.load(Ordering::Relaxed) {
        flags.push('e');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let events = if b.obl > 0 { "rw" } else { "r" };
    let rbs = b.qbuf + b.qbuf_free;
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={flags} db={} sub={} psub={} ssub={} multi={multi} \
         qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={rbs} rbp={rbs} obl={} oll={} omem={} tot-mem={} \
         events={events} cmd={cmd} user=default redir={} resp={}\n",
        c.id,
        c.addr,
        c.laddr,
        c.fd.load(Ordering::Relaxed),
        name,
        c.created.elapsed().as_secs(),
        idle_s,
        c.db.load(Ordering::Relaxed),
        c.sub.load(Ordering::Relaxed),
        c.psub.load(Ordering::Relaxed),
        c.ssub.load(Ordering::Relaxed),
        b.qbuf,
        b.qbuf_free,
        b.argv_mem,
        b.multi_mem,
        b.obl,
        b.oll,
        b.omem,
        b.total,
        c.tracking.redir(),
        c.resp.load(Ordering::Relaxed),
    )
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::{Harness, bulk, err, int, ok};
    use crate::resp::Frame;

    fn text(f: Frame) -> String {
        match f {
            Frame::Verbatim(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("not a bulk: {other:?}"),
        }
    }

    #[test]
    fn setname_getname_roundtrip_and_empty_name_clears() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["CLIENT", "GETNAME"]), Frame::Null);
        assert_eq!(h.run(&["client", "setname", "worker-1"]), ok());
        assert_eq!(h.run(&["CLIENT", "GETNAME"]), bulk("worker-1"));
        assert_eq!(h.run(&["CLIENT", "SETNAME", ""]), ok());
        assert_eq!(h.run(&["CLIENT", "GETNAME"]), Frame::Null);
    }

    #[test]
    fn setname_rejects_spaces_newlines_and_non_ascii() {
        let mut h = Harness::new();
        for bad in ["a b", "a\nb", "é", "\x7f"] {
            assert_eq!(
                h.run(&["CLIENT", "SETNAME", bad]),
                err("ERR Client names cannot contain spaces, newlines or special characters.")
            );
        }
    }

    #[test]
    fn subcommand_errors_are_redis_texts() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["CLIENT"]), err("ERR wrong number of arguments for 'client' command"));
        assert_eq!(h.run(&["CLIENT", "xyz"]), err("ERR unknown subcommand 'xyz'. Try CLIENT HELP."));
        assert_eq!(h.run(&["client", "xyz"]), err("ERR unknown subcommand 'xyz'. Try CLIENT HELP."));
        assert_eq!(h.run(&["CLIENT", "SETNAME"]), err("ERR wrong number of arguments for 'client|setname' command"));
        assert_eq!(
            h.run(&["CLIENT", "GETNAME", "x"]),
            err("ERR wrong number of arguments for 'client|getname' command")
        );
        assert_eq!(h.run(&["CLIENT", "ID", "x"]), err("ERR wrong number of arguments for 'client|id' command"));
        assert_eq!(h.run(&["CLIENT", "INFO", "x"]), err("ERR wrong number of arguments for 'client|info' command"));
    }

    #[test]
    fn id_is_the_connection_id() {
        let mut h = Harness::new();
        let id = h.client.id as i64;
        assert_eq!(h.run(&["CLIENT", "ID"]), int(id));
    }

    #[test]
    fn info_line_has_redis_fields_in_order() {
        let mut h = Harness::new();
        h.run(&["CLIENT", "SETNAME", "me"]);
        h.run(&["SELECT", "2"]);
        let line = text(h.run(&["CLIENT", "INFO"]));
        assert!(line.ends_with('\n') && !line.ends_with("\n\n"), "{line:?}");
        let keys: Vec<&str> = line.trim_end().split(' ').map(|kv| kv.split_once('=').unwrap().0).collect();
        assert_eq!(
            keys,
            [
                "id",
                "addr",
                "laddr",
                "fd",
                "name",
                "age",
                "idle",
                "flags",
                "db",
                "sub",
                "psub",
                "ssub",
                "multi",
                "qbuf",
                "qbuf-free",
                "argv-mem",
                "multi-mem",
                "rbs",
                "rbp",
                "obl",
                "oll",
                "omem",
                "tot-mem",
                "events",
                "cmd",
                "user",
                "redir",
                "resp"
            ]
        );
        assert!(line.starts_with(&format!("id={} addr=127.0.0.1:1 laddr=127.0.0.1:6379 ", h.client.id)), "{line}");
        assert!(line.contains(" name=me ") && line.contains(" db=2 ") && line.contains(" flags=N "), "{line}");
        assert!(line.contains(" cmd=client|info user=default redir=-1 resp=2\n"), "{line}");
    }

    #[test]
    fn cmd_field_follows_each_change_of_command() {
        let mut h = Harness::new();
        let last = |h: &Harness| *h.client.info.last_cmd.lock().unwrap();
        assert_eq!(last(&h), "NULL");
        for (cmd, want) in [("GET", "get"), ("GET", "get"), ("SET", "set"), ("SET", "set"), ("GET", "get")] {
            let args: &[&str] = if cmd == "GET" { &["GET", "k"] } else { &["SET", "k", "v"] };
            h.run(args);
            assert_eq!(last(&h), want, "after {cmd}");
        }
        h.run(&["CLIENT", "ID"]);
        assert_eq!(last(&h), "client|id");
        h.run(&["GET", "k"]);
        assert_eq!(last(&h), "get");
    }

    #[test]
    fn list_shows_every_client_and_filters_by_type_and_id() {
        let mut h = Harness::new();
        let other = h.shared.clients.register("127.0.0.1:2".into(), "127.0.0.1:6379".into());
        let all = text(h.run(&["CLIENT", "LIST"]));
        assert_eq!(all.lines().count(), 2);
        assert!(all.contains("cmd=client|list"), "{all}");
        assert_eq!(text(h.run(&["CLIENT", "LIST", "TYPE", "normal"])).lines().count(), 2);
        assert_eq!(text(h.run(&["CLIENT", "LIST", "TYPE", "pubsub"])), "");
        let only = text(h.run(&["CLIENT", "LIST", "ID", &other.id.to_string(), "999"]));
        assert!(only.starts_with(&format!("id={} addr=127.0.0.1:2 ", other.id)) && only.lines().count() == 1);
        assert!(only.contains(" cmd=NULL "), "{only}");
        assert_eq!(h.run(&["CLIENT", "LIST", "TYPE", "xyz"]), err("ERR Unknown client type 'xyz'"));
        assert_eq!(h.run(&["CLIENT", "LIST", "ID", "abc"]), err("ERR Invalid client ID"));
        assert_eq!(h.run(&["CLIENT", "LIST", "ID"]), err("ERR syntax error"));
        assert_eq!(h.run(&["CLIENT", "LIST", "TYPE"]), err("ERR syntax error"));
        assert_eq!(h.run(&["CLIENT", "LIST", "foo", "bar"]), err("ERR syntax error"));
    }

    #[test]
    fn kill_errors_and_counts_are_redis_s() {
        let mut h = Harness::new();
        let e = |s: &str| err(s);
        assert_eq!(h.run(&["client", "kill", "id", "0"]), e("ERR client-id should be greater than 0"));
        assert_eq!(h.run(&["client", "kill", "id", "x"]), e("ERR client-id should be greater than 0"));
        assert_eq!(h.run(&["client", "kill", "type", "x"]), e("ERR Unknown client type 'x'"));
        assert_eq!(h.run(&["client", "kill", "user", "bob"]), e("ERR No such user 'bob'"));
        assert_eq!(h.run(&["client", "kill", "skipme", "maybe"]), e("ERR syntax error"));
        assert_eq!(h.run(&["client", "kill", "id", "1", "skipme"]), e("ERR syntax error"));
        assert_eq!(h.run(&["client", "kill", "nosuch", "1"]), e("ERR syntax error"));
        assert_eq!(h.run(&["client", "kill", "1.2.3.4:5"]), e("ERR No such client"));
        assert_eq!(h.run(&["client", "kill"]), e("ERR wrong number of arguments for 'client|kill' command"));
        // SKIPME yes (the default) spares the caller; the old form and SKIPME no do not.
        assert_eq!(h.run(&["client", "kill", "type", "normal"]), int(0));
        assert_eq!(h.run(&["client", "kill", "type", "master"]), int(0));
        assert!(!h.client.close_after_reply);
        assert_eq!(h.run(&["client", "kill", "type", "normal", "skipme", "no"]), int(1));
        assert!(h.client.close_after_reply);
        h.client.close_after_reply = false;
        assert_eq!(h.run(&["client", "kill", "127.0.0.1:1"]), ok());
        assert!(h.client.close_after_reply);
    }

    #[test]
    fn help_starts_with_redis_header() {
        let mut h = Harness::new();
        let Frame::Array(lines) = h.run(&["client", "help"]) else { panic!() };
        assert_eq!(lines[0], Frame::simple("CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
        assert_eq!(lines.last(), Some(&Frame::simple("    Prints this help.")));
    }
}
