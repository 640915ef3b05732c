//! CLIENT PAUSE, UNPAUSE and UNBLOCK: one client acting on others. Mirrors those branches of
//! Redis's `clientCommand` (networking.c); the pause itself is [`crate::pause`].

use bytes::Bytes;

use crate::cmd::{Ctx, is_opt};
use crate::error::{Error, Result};
use crate::pause::PauseKind;
use crate::resp::Frame;
use crate::state::UnblockReason;

/// `CLIENT PAUSE timeout [WRITE|ALL]`: postpone the commands the mode covers (ALL by default) for
/// `timeout` milliseconds.
pub fn client_pause(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    if argv.len() > 4 {
        return Err(Error::err("unknown subcommand or wrong number of arguments for 'PAUSE'. Try CLIENT HELP."));
    }
    let kind = match argv.get(3) {
        None => PauseKind::All,
        Some(m) if is_opt(m, "write") => PauseKind::Write,
        Some(m) if is_opt(m, "all") => PauseKind::All,
        Some(_) => return Err(Error::err("CLIENT PAUSE mode must be WRITE or ALL")),
    };
    let ms = crate::util::parse_i64(&argv[2]).ok_or_else(|| Error::err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(Error::err("timeout is negative"));
    }
    let now = crate::util::now_ms();
    // As Redis: a zero timeout ends at once (its end time is 0).
    let end = if ms > 0 { now.saturating_add(ms as u64) } else { 0 };
    ctx.shared.pause.pause(end, kind, now);
    Ok(Frame::ok())
}

/// `CLIENT UNPAUSE`: lift the pause.
pub fn client_unpause(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    ctx.shared.pause.unpause();
    Ok(Frame::ok())
}

/// `CLIENT UNBLOCK client-id [TIMEOUT|ERROR]`: end the wait of a client blocked in BLPOP & co.,
/// BZPOPMIN & co., XREAD/XREADGROUP BLOCK: 1 when it was blocked, else 0. TIMEOUT (the default)
/// makes it reply as if its timeout passed; ERROR makes it reply `-UNBLOCKED client unblocked via
/// CLIENT UNBLOCK`. A client postponed by CLIENT PAUSE is not blocked here (0).
pub fn client_unblock(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    if argv.len() > 4 {
        return Err(Error::err("unknown subcommand or wrong number of arguments for 'UNBLOCK'. Try CLIENT HELP."));
    }
    let reason = match argv.get(3) {
        None => UnblockReason::Timeout,
        Some(r) if is_opt(r, "timeout") => UnblockReason::Timeout,
        Some(r) if is_opt(r, "error") => UnblockReason::Error,
        Some(_) => return Err(Error::err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
    };
    let id = crate::util::parse_i64(&argv[2]).ok_or(Error::NotInteger)?;
    let Some(target) = u64::try_from(id).ok().and_then(|id| ctx.shared.clients.get(id)) else {
        return Ok(Frame::Integer(0));
    };
    let mut slot = target.block_slot.lock().unwrap_or_else(|e| e.into_inner());
    // Under the slot's lock: the connection reads `unblocked` only after taking it back.
    let ended = slot.waiter.as_ref().is_some_and(|w| w.unblock());
    if ended {
        slot.unblocked = Some(reason);
    }
    Ok(Frame::Integer(ended as i64))
}

/// `MONITOR`: from now on, receive every command the server runs (see `monitor::feed`). A second
/// MONITOR is ignored (no reply, as in Redis); inside EXEC it is refused.
pub fn monitor(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    if ctx.shared.ks.in_exec() {
        return Err(Error::err("MONITOR isn't allowed for DENY BLOCKING client"));
    }
    if ctx.client.monitoring {
        ctx.client.skip_reply = true;
        return Ok(Frame::Null);
    }
    ctx.client.monitoring = true;
    ctx.client.info.monitor.store(true, std::sync::atomic::Ordering::Relaxed);
    ctx.shared.monitors.add(ctx.client.subs.sub.clone());
    Ok(Frame::ok())
}

/// Leave MONITOR mode (RESET; a closing connection calls it too).
pub fn stop_monitoring(ctx: &mut Ctx) {
    if std::mem::take(&mut ctx.client.monitoring) {
        ctx.client.info.monitor.store(false, std::sync::atomic::Ordering::Relaxed);
        ctx.shared.monitors.remove(ctx.client.id);
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::{Harness, err, int, ok};
    use crate::resp::Frame;

    #[test]
    fn pause_marks_covered_commands_postponed_and_unpause_lifts_it() {
        let mut h = Harness::new();
        h.now_ms = crate::util::now_ms();
        assert_eq!(h.run(&["CLIENT", "PAUSE", "60000", "write"]), ok());
        // A read runs; a write, PUBLISH, EVAL and FUNCTION LOAD are postponed (no reply yet).
        assert_eq!(h.run(&["GET", "k"]), Frame::Null);
        assert!(!h.client.postponed);
        for cmd in
            [&["SET", "k", "v"][..], &["PUBLISH", "c", "m"], &["EVAL", "return 1", "0"], &["FUNCTION", "LOAD", "x"]]
        {
            h.run(cmd);
            assert!(std::mem::take(&mut h.client.postponed), "{cmd:?}");
            h.client.skip_reply = false;
        }
        // Inside MULTI, reads are queued; queueing a write waits.
        assert_eq!(h.run(&["MULTI"]), ok());
        assert_eq!(h.run(&["GET", "k"]), Frame::simple("QUEUED"));
        h.run(&["SET", "k", "v"]);
        assert!(std::mem::take(&mut h.client.postponed), "queueing a write waits");
        h.client.skip_reply = false;
        assert_eq!(h.run(&["DISCARD"]), ok());
        // EXEC of a transaction holding a write waits as a whole.
        h.shared.pause.unpause();
        assert_eq!(h.run(&["MULTI"]), ok());
        assert_eq!(h.run(&["INCR", "n"]), Frame::simple("QUEUED"));
        h.shared.pause.pause(h.now_ms + 60_000, crate::pause::PauseKind::Write, h.now_ms);
        h.run(&["EXEC"]);
        assert!(std::mem::take(&mut h.client.postponed), "EXEC of a write waits");
        h.client.skip_reply = false;
        assert_eq!(h.run(&["DISCARD"]), ok());
        // A pause started inside EXEC lets the rest of the transaction run.
        h.shared.pause.unpause();
        assert_eq!(h.run(&["MULTI"]), ok());
        assert_eq!(h.run(&["CLIENT", "PAUSE", "60000", "WRITE"]), Frame::simple("QUEUED"));
        assert_eq!(h.run(&["SET", "k", "v"]), Frame::simple("QUEUED"));
        assert_eq!(h.run(&["EXEC"]), Frame::Array(vec![ok(), ok()]));
        assert!(!h.client.postponed);
        // ALL covers every command, CLIENT UNPAUSE included.
        h.shared.pause.pause(h.now_ms + 60_000, crate::pause::PauseKind::All, h.now_ms);
        h.run(&["CLIENT", "UNPAUSE"]);
        assert!(std::mem::take(&mut h.client.postponed));
        h.client.skip_reply = false;
        h.shared.pause.unpause();
        assert_eq!(h.run(&["PING"]), Frame::simple("PONG"));
    }

    #[test]
    fn argument_errors_are_redis_s() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["CLIENT", "PAUSE"]), err("ERR wrong number of arguments for 'client|pause' command"));
        assert_eq!(h.run(&["CLIENT", "PAUSE", "1.5"]), err("ERR timeout is not an integer or out of range"));
        assert_eq!(h.run(&["CLIENT", "PAUSE", "-1"]), err("ERR timeout is negative"));
        assert_eq!(h.run(&["CLIENT", "PAUSE", "1", "some"]), err("ERR CLIENT PAUSE mode must be WRITE or ALL"));
        assert_eq!(
            h.run(&["CLIENT", "PAUSE", "1", "write", "x"]),
            err("ERR unknown subcommand or wrong number of arguments for 'PAUSE'. Try CLIENT HELP.")
        );
        assert_eq!(
            h.run(&["CLIENT", "UNPAUSE", "x"]),
            err("ERR wrong number of arguments for 'client|unpause' command")
        );
        assert_eq!(h.run(&["CLIENT", "UNBLOCK", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(
            h.run(&["CLIENT", "UNBLOCK", "x", "y"]),
            err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        );
        assert_eq!(h.run(&["CLIENT", "UNBLOCK", "-1", "error"]), int(0));
        let me = h.client.id.to_string();
        assert_eq!(h.run(&["CLIENT", "UNBLOCK", &me]), int(0), "not blocked");
        assert_eq!(h.run(&["MONITOR", "x"]), err("ERR wrong number of arguments for 'monitor' command"));
        assert_eq!(h.run(&["MONITOR"]), ok());
        assert!(h.client.monitoring);
        h.run(&["MONITOR"]);
        assert!(std::mem::take(&mut h.client.skip_reply), "a second MONITOR has no reply");
        assert_eq!(h.run(&["GET", "k"]), err("ERR Replica can't interact with the keyspace"));
        assert_eq!(h.run(&["RESET"]), Frame::simple("RESET"));
        assert!(!h.client.monitoring && !h.shared.monitors.active());
    }
}
