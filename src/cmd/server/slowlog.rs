//! `SLOWLOG GET [count] | LEN | RESET | HELP`: the commands that ran at least
//! `slowlog-log-slower-than` µs (see [`crate::monitor::slowlog`]). Mirrors Redis's `slowlog.c`.

use bytes::Bytes;

use super::{SubSpec, help_reply, run_subcommand};
use crate::cmd::{Ctx, arg_i64};
use crate::error::{Error, Result};
use crate::resp::Frame;

pub(crate) static SLOWLOG_SUBS: &[SubSpec] = &[
    SubSpec { name: "slowlog|get", arity: -2, handler: slowlog_get },
    SubSpec { name: "slowlog|len", arity: 2, handler: slowlog_len },
    SubSpec { name: "slowlog|reset", arity: 2, handler: slowlog_reset },
    SubSpec { name: "slowlog|help", arity: 2, handler: slowlog_help },
];

/// `SLOWLOG <subcommand> ...`.
pub fn slowlog(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    run_subcommand(ctx, argv, SLOWLOG_SUBS)
}

/// Redis's reply to a known subcommand given the wrong arguments by the handler itself.
pub(crate) fn subcommand_syntax_error(argv: &[Bytes]) -> Error {
    let sub: String = String::from_utf8_lossy(&argv[1]).chars().take(128).collect();
    let container = String::from_utf8_lossy(&argv[0]).to_ascii_uppercase();
    Error::err(format!("unknown subcommand or wrong number of arguments for '{sub}'. Try {container} HELP."))
}

/// `SLOWLOG GET [count]`: the newest `count` entries (10 by default, -1 for all), each as id,
/// unix time, duration in µs, arguments, client address, client name.
fn slowlog_get(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let count = match argv.len() {
        2 => Some(10),
        3 => {
            let bad = || Error::err("count should be greater than or equal to -1");
            match arg_i64(&argv[2]).map_err(|_| bad())? {
                -1 => None,
                n if n < -1 => return Err(bad()),
                n => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            }
        }
        _ => return Err(subcommand_syntax_error(argv)),
    };
    let entries = ctx.shared.monitor.slowlog.lock().unwrap_or_else(|e| e.into_inner()).newest(count);
    let int = |n: u64| Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    Ok(Frame::Array(
        entries
            .into_iter()
            .map(|e| {
                Frame::Array(vec![
                    int(e.id),
                    int(e.time),
                    int(e.duration_us),
                    Frame::Array(e.argv.into_iter().map(Frame::Bulk).collect()),
                    Frame::Bulk(Bytes::from(e.peer)),
                    Frame::Bulk(e.name),
                ])
            })
            .collect(),
    ))
}

/// `SLOWLOG LEN`.
fn slowlog_len(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Ok(Frame::Integer(ctx.shared.monitor.slowlog.lock().unwrap_or_else(|e| e.into_inner()).len() as i64))
}

/// `SLOWLOG RESET`.
fn slowlog_reset(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    ctx.shared.monitor.slowlog.lock().unwrap_or_else(|e| e.into_inner()).reset();
    Ok(Frame::ok())
}

/// `SLOWLOG HELP`.
fn slowlog_help(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(help_reply(
        &argv[0],
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    ))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::{Harness, bulk, err, int, ok};
    use crate::resp::Frame;

    fn entries(f: Frame) -> Vec<Vec<Frame>> {
        let Frame::Array(items) = f else { panic!("{f:?}") };
        items.into_iter().map(|e| if let Frame::Array(e) = e { e } else { panic!() }).collect()
    }

    #[test]
    fn slowlog_logs_every_command_at_threshold_zero_newest_first() {
        let mut h = Harness::new();
        h.run(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        h.run(&["CLIENT", "SETNAME", "bob"]);
        h.run(&["SET", "k", &"v".repeat(130)]);
        let got = entries(h.run(&["SLOWLOG", "GET", "2"]));
        assert_eq!(got.len(), 2);
        let (set, setname) = (&got[0], &got[1]);
        assert!(matches!((&set[0], &setname[0]), (Frame::Integer(a), Frame::Integer(b)) if a == &(b + 1)));
        let v = format!("{}... (2 more bytes)", "v".repeat(128));
        assert_eq!(set[3], Frame::Array(vec![bulk("SET"), bulk("k"), bulk(&v)]));
        assert_eq!((&set[4], &set[5]), (&bulk("127.0.0.1:1"), &bulk("bob")));
        assert_eq!(
            h.run(&["SLOWLOG", "LEN"]),
            int(4),
            "config set, client setname, set, slowlog get (LEN is logged after it runs)"
        );
        assert_eq!(h.run(&["SLOWLOG", "RESET"]), ok());
        assert_eq!(entries(h.run(&["SLOWLOG", "GET", "-1"])).len(), 1, "the reset itself");
    }

    #[test]
    fn slowlog_redacts_auth_and_skips_exec() {
        let mut h = Harness::new();
        h.run(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        h.run(&["AUTH", "secret"]);
        h.run(&["MULTI"]);
        h.run(&["PING"]);
        h.run(&["EXEC"]);
        let got = entries(h.run(&["SLOWLOG", "GET"]));
        let names: Vec<Frame> =
            got.iter().map(|e| if let Frame::Array(a) = &e[3] { a[0].clone() } else { panic!() }).collect();
        assert_eq!(names, vec![bulk("PING"), bulk("MULTI"), bulk("AUTH"), bulk("CONFIG")]);
        assert_eq!(got[2][3], Frame::Array(vec![bulk("AUTH"), bulk("(redacted)")]));
    }

    #[test]
    fn slowlog_errors_are_redis_texts() {
        let mut h = Harness::new();
        let count = err("ERR count should be greater than or equal to -1");
        assert_eq!(h.run(&["SLOWLOG", "GET", "-2"]), count);
        assert_eq!(h.run(&["SLOWLOG", "GET", "abc"]), count);
        assert_eq!(
            h.run(&["slowlog", "get", "1", "x"]),
            err("ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP.")
        );
        assert_eq!(h.run(&["SLOWLOG", "LEN", "x"]), err("ERR wrong number of arguments for 'slowlog|len' command"));
        assert_eq!(h.run(&["SLOWLOG", "nosuch"]), err("ERR unknown subcommand 'nosuch'. Try SLOWLOG HELP."));
        let Frame::Array(help) = h.run(&["SLOWLOG", "HELP"]) else { panic!() };
        assert_eq!(help.len(), 12);
    }
}
