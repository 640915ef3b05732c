//! Connection and server commands: PING, ECHO, QUIT, SELECT, HELLO, TIME, LASTSAVE, SHUTDOWN,
//! BGREWRITEAOF, and the subcommand dispatch shared by the container commands (CLIENT, CONFIG,
//! COMMAND). CLIENT, CONFIG, INFO and COMMAND (with its docs) live in the submodules. Mirrors the
//! connection half of Redis's `server.c` and `networking.c`'s HELLO.

pub mod client;
pub mod client_ctl;
pub mod client_tracking;
pub mod config;
pub mod docs;
pub mod info;
pub mod info_commands;
pub mod info_process;
pub mod introspect;
pub mod keyspecs;
pub mod latency;
pub mod memory;
pub mod slowlog;

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{Charge, Ctx, Handler, arg_i64, is_opt, slots};
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::state::Shared;

pub use client::client;
pub use config::config;
pub use info::info;
pub use introspect::{command, command_keys};
pub use latency::latency;
pub use memory::memory;
pub use slowlog::slowlog;

/// The version every reply that names one reports (HELLO, INFO).
pub const REDIS_VERSION: &str = "7.0.15";

// ---- subcommands ------------------------------------------------------------------------------

/// One subcommand of a container command, as Redis's table has it.
pub struct SubSpec {
    /// Full name as Redis reports it (`client|list`).
    pub name: &'static str,
    /// Arity counting the container and the subcommand name (N exact, -N at least N).
    pub arity: i32,
    pub handler: Handler,
}

impl SubSpec {
    /// The subcommand's own name (`list` of `client|list`).
    pub fn short(&self) -> &'static str {
        self.name.split_once('|').map_or(self.name, |(_, s)| s)
    }
}

/// Find `argv[1]` among `subs`, check its arity, record it as the client's last command, run it.
///
/// Errors as Redis: `ERR unknown subcommand 'xyz'. Try CLIENT HELP.`,
/// `ERR wrong number of arguments for 'client|setname' command`.
pub fn run_subcommand(ctx: &mut Ctx, argv: &[Bytes], subs: &[SubSpec]) -> Result<Frame> {
    let Some(sub) = argv.get(1) else {
        return Err(Error::Syntax);
    };
    let Some(spec) = subs.iter().find(|s| s.short().as_bytes().eq_ignore_ascii_case(sub)) else {
        let name: String = String::from_utf8_lossy(sub).chars().take(128).collect();
        let container = String::from_utf8_lossy(&argv[0]).to_ascii_uppercase();
        let text = format!("unknown subcommand '{name}'. Try {container} HELP.");
        ctx.client.charge = Some(Charge::Nothing);
        return Err(Error::err(text.replace(['\r', '\n'], " ")));
    };
    let ok = if spec.arity >= 0 {
        argv.len() == spec.arity as usize
    } else {
        argv.len() >= spec.arity.unsigned_abs() as usize
    };
    if !ok {
        ctx.client.charge = Some(Charge::Rejected(slots::sub_slot(spec)));
        return Err(Error::WrongArity(spec.name.to_string()));
    }
    ctx.client.charge = Some(Charge::Ran(slots::sub_slot(spec)));
    ctx.client.note_command(spec.name, ctx.now_ms);
    (spec.handler)(ctx, argv)
}

/// Redis's help reply: a header naming the container as typed (uppercased), the lines, then HELP.
pub fn help_reply(container: &[u8], lines: &[&str]) -> Frame {
    let name = String::from_utf8_lossy(container).to_ascii_uppercase();
    let mut out =
        vec![Frame::Simple(Bytes::from(format!("{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")))];
    out.extend(
        lines.iter().chain(&["HELP", "    Prints this help."]).map(|l| Frame::Simple(Bytes::from(l.to_string()))),
    );
    Frame::Array(out)
}

// ---- connection -------------------------------------------------------------------------------

/// `PING [message]`: `+PONG`, or the message as a bulk string.
pub fn ping(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    // A RESP2 client in subscribed mode gets `pong` and the message (empty) as an array.
    if ctx.client.resp == 2 && ctx.client.subs.total() > 0 && argv.len() <= 2 {
        let msg = argv.get(1).cloned().unwrap_or_default();
        return Ok(Frame::Array(vec![Frame::Bulk(Bytes::from_static(b"pong")), Frame::Bulk(msg)]));
    }
    match argv {
        [_] => Ok(Frame::simple("PONG")),
        [_, msg] => Ok(Frame::Bulk(msg.clone())),
        _ => Err(Error::WrongArity("ping".into())),
    }
}

/// `ECHO message`: the message as a bulk string.
pub fn echo(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(Frame::Bulk(argv[1].clone()))
}

/// `QUIT`: `+OK`, then the connection closes (any arguments are ignored, as Redis does).
pub fn quit(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    ctx.client.close_after_reply = true;
    Ok(Frame::ok())
}

/// `RESET`: the connection's state as a new connection's (`clearClientConnectionState`): any
/// transaction discarded and every key unwatched, RESP2, database 0, no name, and, when a password
/// is configured, not authenticated any more. Replies `+RESET`.
pub fn reset(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    client_ctl::stop_monitoring(ctx);
    ctx.client.tx = super::tx::TxState::default();
    ctx.client.subs.clear();
    ctx.client.tracking.disable();
    ctx.client.reply_mode = super::ReplyMode::On;
    for c in [&ctx.client.info.sub, &ctx.client.info.psub, &ctx.client.info.ssub] {
        c.store(0, Ordering::Relaxed);
    }
    ctx.client.db = 0;
    ctx.client.info.db.store(0, Ordering::Relaxed);
    ctx.client.resp = 2;
    ctx.client.info.resp.store(2, Ordering::Relaxed);
    *ctx.client.info.name.lock().unwrap_or_else(|e| e.into_inner()) = None;
    ctx.client.authenticated = !super::auth_required(ctx.shared);
    Ok(Frame::simple("RESET"))
}

/// `SELECT index`: switch this connection to database `index`.
pub fn select(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let id = arg_i64(&argv[1])?;
    // Redis parses an `int` and names its range.
    let id = i32::try_from(id)
        .map_err(|_| Error::err("value is out of range, value must between -2147483648 and 2147483647"))?;
    let db = usize::try_from(id).map_err(|_| Error::DbIndexOutOfRange)?;
    if db >= ctx.shared.ks.databases() {
        return Err(Error::DbIndexOutOfRange);
    }
    ctx.client.db = db;
    ctx.client.info.db.store(db, Ordering::Relaxed);
    Ok(Frame::ok())
}

/// `AUTH [username] password`: authenticate the connection as the default user, the only user.
/// Without a configured password, `AUTH password` is an error and `AUTH default anything`
/// succeeds (the default user is `nopass`), as with Redis.
pub fn auth(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    match argv {
        [_, pass] => {
            if !super::auth_required(ctx.shared) {
                return Err(Error::err(
                    "AUTH <password> called without any password configured for the default user. Are you sure \
                     your configuration is correct?",
                ));
            }
            authenticate(ctx, b"default", pass)?;
        }
        [_, user, pass] => authenticate(ctx, user, pass)?,
        _ => return Err(Error::Syntax),
    }
    Ok(Frame::ok())
}

/// Check `user`/`pass` against the default user; on success the client is authenticated.
fn authenticate(ctx: &mut Ctx, user: &[u8], pass: &[u8]) -> Result<()> {
    let ok = {
        let cfg = ctx.shared.config();
        // Always compare, even for a wrong user name, so that timing says nothing about either.
        let pass_ok = cfg.requirepass.is_empty() | constant_time_eq(pass, cfg.requirepass.as_bytes());
        (user == b"default") & pass_ok
    };
    if !ok {
        return Err(Error::Raw("WRONGPASS invalid username-password pair or user is disabled.".into()));
    }
    ctx.client.authenticated = true;
    Ok(())
}

/// Compare two byte strings in time that depends only on the longer one's length, not on where
/// they first differ nor on whether their lengths match (Redis's `time_independent_strcmp`).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`: switches the connection to
/// RESP2 or RESP3 (other versions are refused with NOPROTO; without one the protocol is kept) and
/// replies the server's properties as a map (a flat name/value array under RESP2).
pub fn hello(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let mut i = 1;
    let mut proto = ctx.client.resp;
    if let Some(v) = argv.get(1) {
        let ver = crate::util::parse_i64(v)
            .ok_or_else(|| Error::err("Protocol version is not an integer or out of range"))?;
        proto = match ver {
            2 => 2,
            3 => 3,
            _ => return Err(Error::Raw("NOPROTO unsupported protocol version".into())),
        };
        i = 2;
    }
    let mut auth: Option<(&Bytes, &Bytes)> = None;
    let mut name: Option<&Bytes> = None;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        if is_opt(&argv[i], "AUTH") && more >= 2 {
            auth = Some((&argv[i + 1], &argv[i + 2]));
            i += 3;
        } else if is_opt(&argv[i], "SETNAME") && more >= 1 {
            client::validate_name(&argv[i + 1])?;
            name = Some(&argv[i + 1]);
            i += 2;
        } else {
            return Err(Error::err(format!("Syntax error in HELLO option '{}'", String::from_utf8_lossy(&argv[i]))));
        }
    }
    if let Some((user, pass)) = auth {
        authenticate(ctx, user, pass)?;
    } else if !ctx.client.authenticated && super::auth_required(ctx.shared) {
        return Err(Error::Raw(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH \
             <user> <pass> option can be used to authenticate the client and select the RESP protocol \
             version at the same time"
                .into(),
        ));
    }
    if let Some(name) = name {
        client::set_name(ctx, name);
    }
    ctx.client.resp = proto;
    ctx.client.subs.sub.set_resp(proto);
    ctx.client.info.resp.store(usize::from(proto), Ordering::Relaxed);
    let s = |t: &'static str| Frame::Bulk(Bytes::from_static(t.as_bytes()));
    Ok(Frame::Map(vec![
        (s("server"), s("redis")),
        (s("version"), s(REDIS_VERSION)),
        (s("proto"), Frame::Integer(i64::from(proto))),
        (s("id"), Frame::Integer(ctx.client.id as i64)),
        (s("mode"), s("standalone")),
        (s("role"), s("master")),
        (s("modules"), Frame::Array(vec![])),
    ]))
}

// ---- server -----------------------------------------------------------------------------------

/// `TIME`: the server's clock as [unix seconds, microseconds], both bulk strings.
pub fn time(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Ok(Frame::Array(vec![Frame::bulk_int(d.as_secs() as i64), Frame::bulk_int(i64::from(d.subsec_micros()))]))
}

/// `LASTSAVE`: unix time of the last successful save (start, then each AOF rewrite).
pub fn lastsave(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Ok(Frame::Integer(ctx.shared.last_save_unix.load(Ordering::Relaxed) as i64))
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`: ask the server to stop. On success the client
/// gets no reply: the connection closes and the process exits with status 0, as with Redis. There
/// is no RDB and no replica to wait for, so SAVE/NOW/FORCE change nothing; ABORT finds no
/// shutdown in progress, since one never waits.
pub fn shutdown(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (mut nosave, mut save, mut flags, mut abort) = (false, false, false, false);
    for a in &argv[1..] {
        if is_opt(a, "NOSAVE") {
            nosave = true;
        } else if is_opt(a, "SAVE") {
            save = true;
        } else if is_opt(a, "NOW") || is_opt(a, "FORCE") {
            flags = true;
        } else if is_opt(a, "ABORT") {
            abort = true;
        } else {
            return Err(Error::Syntax);
        }
    }
    if (abort && (nosave || save || flags)) || (nosave && save) {
        return Err(Error::Syntax);
    }
    if abort {
        return Err(Error::err("No shutdown in progress."));
    }
    use crate::rdb::persist::ShutdownSave;
    ctx.shared.rdb.set_shutdown_mode(if save {
        ShutdownSave::Save
    } else if nosave {
        ShutdownSave::NoSave
    } else {
        ShutdownSave::Default
    });
    ctx.shared.request_shutdown();
    ctx.client.close_after_reply = true;
    ctx.client.skip_reply = true;
    Ok(Frame::ok())
}

/// Start a background AOF rewrite. Wired to the AOF by the rewrite work; until then it refuses.
pub fn start_rewrite(shared: &Shared) -> std::result::Result<(), String> {
    use crate::aof::AofError;
    match crate::rdb::persist::start_aof_rewrite(shared) {
        Ok(()) => Ok(()),
        Err(AofError::RewriteInProgress) => Err("ERR Background append only file rewriting already in progress".into()),
        Err(AofError::Disabled) => {
            Err("ERR Background append only file rewriting is only available with appendonly yes".into())
        }
        Err(e) => Err(format!("ERR Background append only file rewriting failed: {e}")),
    }
}

/// `BGREWRITEAOF`: start rewriting the AOF in the background.
pub fn bgrewriteaof(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    start_rewrite(ctx.shared).map_err(Error::Raw)?;
    Ok(Frame::simple("Background append only file rewriting started"))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::cmd::testing::{Harness, arr, bulk, err, int, ok};

    #[test]
    fn ping_replies_pong_or_echoes_its_message() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["PING"]), Frame::simple("PONG"));
        assert_eq!(h.run(&["ping", "hi"]), bulk("hi"));
        assert_eq!(h.run(&["PING", "a", "b"]), err("ERR wrong number of arguments for 'ping' command"));
    }

    #[test]
    fn echo_returns_its_argument() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["ECHO", "x y"]), bulk("x y"));
        assert_eq!(h.run(&["ECHO"]), err("ERR wrong number of arguments for 'echo' command"));
    }

    #[test]
    fn reset_gives_back_a_new_connections_state() {
        let mut h = Harness::new();
        h.run(&["CLIENT", "SETNAME", "me"]);
        h.run(&["SELECT", "3"]);
        h.run(&["HELLO", "3"]);
        h.run(&["WATCH", "k"]);
        h.run(&["MULTI"]);
        assert_eq!(h.run(&["RESET"]), Frame::simple("RESET"));
        assert_eq!((h.client.db, h.client.resp, h.client.tx.in_multi()), (0, 2, false));
        assert_eq!(h.run(&["CLIENT", "GETNAME"]), Frame::Null);
        assert_eq!(h.run(&["EXEC"]), err("ERR EXEC without MULTI"));
        assert_eq!(h.run(&["RESET", "x"]), err("ERR wrong number of arguments for 'reset' command"));
        // Inside MULTI it is not queued: it discards the transaction.
        h.run(&["MULTI"]);
        assert_eq!(h.run(&["RESET"]), Frame::simple("RESET"));
        assert_eq!(h.run(&["EXEC"]), err("ERR EXEC without MULTI"));
    }

    #[test]
    fn reset_requires_auth_again_when_a_password_is_set() {
        let mut h = Harness::new();
        h.run(&["CONFIG", "SET", "requirepass", "pw"]);
        assert_eq!(h.run(&["AUTH", "pw"]), ok());
        assert_eq!(h.run(&["RESET"]), Frame::simple("RESET"));
        assert_eq!(h.run(&["PING"]), err("NOAUTH Authentication required."));
        assert_eq!(h.run(&["AUTH", "pw"]), ok());
        assert_eq!(h.run(&["PING"]), Frame::simple("PONG"));
    }

    #[test]
    fn quit_replies_ok_and_marks_the_connection_for_closing() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["QUIT", "ignored"]), ok());
        assert!(h.client.close_after_reply);
    }

    #[test]
    fn select_switches_database_and_rejects_bad_indexes() {
        let mut h = Harness::new();
        h.run(&["SET", "k", "0"]);
        assert_eq!(h.run(&["SELECT", "3"]), ok());
        assert_eq!(h.client.db, 3);
        assert_eq!(h.run(&["GET", "k"]), Frame::Null);
        assert_eq!(h.run(&["SELECT", "16"]), err("ERR DB index is out of range"));
        assert_eq!(h.run(&["SELECT", "-1"]), err("ERR DB index is out of range"));
        assert_eq!(h.run(&["SELECT", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(
            h.run(&["SELECT", "4294967296"]),
            err("ERR value is out of range, value must between -2147483648 and 2147483647")
        );
        assert_eq!(h.run(&["SELECT", "99999999999999999999"]), err("ERR value is not an integer or out of range"));
        assert_eq!(h.client.db, 3);
    }

    fn hello_reply(id: u64, proto: i64) -> Frame {
        Frame::Map(vec![
            (bulk("server"), bulk("redis")),
            (bulk("version"), bulk("7.0.15")),
            (bulk("proto"), int(proto)),
            (bulk("id"), int(id as i64)),
            (bulk("mode"), bulk("standalone")),
            (bulk("role"), bulk("master")),
            (bulk("modules"), arr(vec![])),
        ])
    }

    #[test]
    fn hello_switches_between_resp2_and_resp3_and_refuses_other_versions() {
        let mut h = Harness::new();
        let id = h.client.id;
        assert_eq!(h.run(&["HELLO"]), hello_reply(id, 2));
        assert_eq!(h.run(&["HELLO", "3"]), hello_reply(id, 3));
        assert_eq!(h.client.resp, 3);
        assert_eq!(h.run(&["HELLO"]), hello_reply(id, 3), "no version keeps the protocol");
        assert_eq!(h.run(&["HELLO", "4"]), err("NOPROTO unsupported protocol version"));
        assert_eq!(h.run(&["HELLO", "1"]), err("NOPROTO unsupported protocol version"));
        assert_eq!(h.run(&["HELLO", "x"]), err("ERR Protocol version is not an integer or out of range"));
        assert_eq!(h.client.resp, 3, "a refused HELLO changes nothing");
        assert_eq!(h.run(&["HELLO", "2"]), hello_reply(id, 2));
        assert_eq!(h.client.resp, 2);
    }

    #[test]
    fn hello_options_setname_and_auth_as_redis_without_password() {
        let mut h = Harness::new();
        let id = h.client.id;
        assert_eq!(h.run(&["HELLO", "2", "SETNAME", "app", "AUTH", "default", "any"]), hello_reply(id, 2));
        assert_eq!(h.run(&["CLIENT", "GETNAME"]), bulk("app"));
        assert_eq!(
            h.run(&["HELLO", "2", "AUTH", "bob", "x"]),
            err("WRONGPASS invalid username-password pair or user is disabled.")
        );
        assert_eq!(h.run(&["HELLO", "2", "AUTH", "default"]), err("ERR Syntax error in HELLO option 'AUTH'"));
        assert_eq!(h.run(&["HELLO", "2", "SETNAME"]), err("ERR Syntax error in HELLO option 'SETNAME'"));
        assert_eq!(h.run(&["HELLO", "2", "foo"]), err("ERR Syntax error in HELLO option 'foo'"));
        assert_eq!(
            h.run(&["HELLO", "2", "SETNAME", "a b"]),
            err("ERR Client names cannot contain spaces, newlines or special characters.")
        );
        h.shared.config.write().unwrap().requirepass = "secret".into();
        assert_eq!(
            h.run(&["HELLO", "2", "AUTH", "default", "bad"]),
            err("WRONGPASS invalid username-password pair or user is disabled.")
        );
        assert_eq!(h.run(&["HELLO", "2", "AUTH", "default", "secret"]), hello_reply(id, 2));
    }

    #[test]
    fn time_is_seconds_and_microseconds_as_bulk_strings() {
        let mut h = Harness::new();
        let Frame::Array(parts) = h.run(&["TIME"]) else { panic!("not an array") };
        let [Frame::Bulk(s), Frame::Bulk(us)] = &parts[..] else { panic!("{parts:?}") };
        let s: u64 = std::str::from_utf8(s).unwrap().parse().unwrap();
        let us: u64 = std::str::from_utf8(us).unwrap().parse().unwrap();
        assert!(s.abs_diff(crate::state::unix_secs()) <= 1);
        assert!(us < 1_000_000);
        assert_eq!(h.run(&["TIME", "x"]), err("ERR wrong number of arguments for 'time' command"));
    }

    #[test]
    fn lastsave_reports_the_shared_save_time() {
        let mut h = Harness::new();
        h.shared.last_save_unix.store(1234, Ordering::Relaxed);
        assert_eq!(h.run(&["LASTSAVE"]), int(1234));
    }

    #[test]
    fn shutdown_requests_exit_and_sends_no_reply() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["SHUTDOWN", "bogus"]), err("ERR syntax error"));
        assert_eq!(h.run(&["SHUTDOWN", "NOSAVE", "SAVE"]), err("ERR syntax error"));
        assert_eq!(h.run(&["SHUTDOWN", "ABORT", "NOW"]), err("ERR syntax error"));
        assert_eq!(h.run(&["SHUTDOWN", "ABORT"]), err("ERR No shutdown in progress."));
        assert!(!h.shared.shutdown_requested.load(Ordering::SeqCst));
        h.run(&["SHUTDOWN", "NOSAVE", "NOW", "FORCE"]);
        assert!(h.shared.shutdown_requested.load(Ordering::SeqCst));
        assert!(h.client.skip_reply && h.client.close_after_reply);
    }

    #[test]
    fn bgrewriteaof_without_appendonly_is_refused() {
        let mut h = Harness::new();
        assert_eq!(
            h.run(&["BGREWRITEAOF"]),
            err("ERR Background append only file rewriting is only available with appendonly yes")
        );
    }
}
