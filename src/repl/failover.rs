//! `FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]`: a coordinated switch of roles with one
//! of our replicas, as Redis 7.0's `failoverCommand` (replication.c).
//!
//! The primary pauses writes (the server's `CLIENT PAUSE WRITE`), waits until the target (or any
//! replica) has acknowledged the whole stream, then becomes a replica of it and asks
//! `PSYNC <replid> <offset> FAILOVER`: the target, whose replication id is ours, promotes itself
//! (as `REPLICAOF NO ONE`, keeping our id as its `replid2`) and answers `+CONTINUE`, so nothing is
//! resent. The pause is lifted once the target accepted the PSYNC (or when the failover is
//! aborted: by `FAILOVER ABORT`, by the timeout without FORCE, by a refused PSYNC or a failed
//! connection, the primary then stays a primary). With FORCE the switch happens at the timeout
//! even if the target is behind.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::{lock, set_master};
use crate::cmd::{Ctx, arg_i64, is_opt};
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::state::Shared;

/// Redis's `failover_state`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Phase {
    #[default]
    None,
    /// Writes paused, waiting for a replica to acknowledge our whole stream.
    WaitForSync,
    /// We are a replica of the target, asking it `PSYNC ... FAILOVER`.
    InProgress,
}

impl Phase {
    /// INFO's `master_failover_state`.
    pub fn info_name(self) -> &'static str {
        match self {
            Phase::None => "no-failover",
            Phase::WaitForSync => "waiting-for-sync",
            Phase::InProgress => "failover-in-progress",
        }
    }
}

#[derive(Default)]
pub struct Failover {
    pub phase: Phase,
    /// The replica we fail over to (chosen when it caught up if none was named).
    pub target: Option<(String, u16)>,
    /// Unix ms when the wait ends (0: no timeout).
    pub end_ms: u64,
    pub force: bool,
}

/// The current phase.
pub fn phase(shared: &Shared) -> Phase {
    lock(&shared.repl.failover).phase
}

/// `FAILOVER ...`.
pub fn failover(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let shared = ctx.shared;
    let repl = &shared.repl;
    if argv.len() == 2 && is_opt(&argv[1], "abort") {
        if phase(shared) == Phase::None {
            return Err(Error::err("No failover in progress."));
        }
        abort(shared, "Failover manually aborted");
        return Ok(Frame::ok());
    }
    let (mut timeout, mut force, mut to): (i64, bool, Option<(String, i64)>) = (0, false, None);
    let mut j = 1;
    while j < argv.len() {
        if is_opt(&argv[j], "timeout") && j + 1 < argv.len() && timeout == 0 {
            timeout = arg_i64(&argv[j + 1])?;
            if timeout <= 0 {
                return Err(Error::err("FAILOVER timeout must be greater than 0"));
            }
            j += 2;
        } else if is_opt(&argv[j], "to") && j + 2 < argv.len() && to.is_none() {
            let port = arg_i64(&argv[j + 2])?;
            to = Some((String::from_utf8_lossy(&argv[j + 1]).into_owned(), port));
            j += 3;
        } else if is_opt(&argv[j], "force") && !force {
            force = true;
            j += 1;
        } else {
            return Err(Error::Syntax);
        }
    }
    if phase(shared) != Phase::None {
        return Err(Error::err("FAILOVER already in progress."));
    }
    if repl.is_replica() {
        return Err(Error::err("FAILOVER is not valid when server is a replica."));
    }
    if lock(&repl.replicas).is_empty() {
        return Err(Error::err("FAILOVER requires connected replicas."));
    }
    if force && (timeout == 0 || to.is_none()) {
        return Err(Error::err("FAILOVER with force option requires both a timeout and target HOST and IP."));
    }
    let target = match to {
        Some((host, port)) => {
            let replicas = lock(&repl.replicas);
            let Some(r) = replicas.iter().find(|r| r.ip.eq_ignore_ascii_case(&host) && i64::from(r.port) == port)
            else {
                return Err(Error::err("FAILOVER target HOST and PORT is not a replica."));
            };
            if *lock(&r.state) != "online" {
                return Err(Error::err("FAILOVER target replica is not online."));
            }
            crate::notice!("FAILOVER requested to {host}:{port}.");
            Some((host, r.port))
        }
        None => {
            crate::notice!("FAILOVER requested to any replica.");
            None
        }
    };
    let now = crate::util::now_ms();
    {
        let mut f = lock(&repl.failover);
        *f = Failover {
            phase: Phase::WaitForSync,
            target,
            end_ms: if timeout > 0 { now + timeout as u64 } else { 0 },
            force,
        };
    }
    shared.pause.pause_for(crate::pause::Purpose::Failover, u64::MAX, crate::pause::PauseKind::Write, now);
    let Some(me) = repl.me() else { return Err(Error::err("server is not running")) };
    tokio::spawn(watch(me));
    Ok(Frame::ok())
}

/// Redis's `updateFailoverStatus`, every 10 ms while waiting: the timeout, then whether the
/// target (or any replica) acknowledged our whole stream.
async fn watch(shared: Arc<Shared>) {
    let feed = shared.ks.repl_feed();
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut f = lock(&shared.repl.failover);
        if f.phase != Phase::WaitForSync {
            return;
        }
        if f.end_ms != 0 && crate::util::now_ms() >= f.end_ms {
            if f.force
                && let Some((host, port)) = f.target.clone()
            {
                crate::notice!("FAILOVER to {host}:{port} time out exceeded, failing over.");
                f.phase = Phase::InProgress;
                drop(f);
                set_master(&shared, host, port);
            } else {
                drop(f);
                abort(&shared, "Replica never caught up before timeout");
            }
            return;
        }
        let end = feed.drain();
        let caught_up = lock(&shared.repl.replicas)
            .iter()
            .filter(|r| *lock(&r.state) == "online" && r.ack.load(Ordering::Relaxed) == end)
            .find(|r| f.target.as_ref().is_none_or(|(h, p)| r.ip.eq_ignore_ascii_case(h) && r.port == *p))
            .map(|r| (r.ip.clone(), r.port));
        if let Some((host, port)) = caught_up {
            crate::notice!("Failover target {host}:{port} is synced, failing over.");
            f.target = Some((host.clone(), port));
            f.phase = Phase::InProgress;
            drop(f);
            set_master(&shared, host, port);
            return;
        }
    }
}

/// The end of a failover: the target accepted our PSYNC (`ok`), or it failed and we stay (or
/// become again) a primary. Writes resume either way.
pub fn finish(shared: &Shared, ok: bool, why: &str) {
    if ok {
        clear(shared);
    } else {
        abort(shared, why);
    }
}

/// Redis's `abortFailover`.
pub fn abort(shared: &Shared, why: &str) {
    let f = lock(&shared.repl.failover);
    if f.phase == Phase::None {
        return;
    }
    match &f.target {
        Some((h, p)) => crate::notice!("FAILOVER to {h}:{p} aborted: {why}"),
        None => crate::notice!("FAILOVER to any replica aborted: {why}"),
    }
    let in_progress = f.phase == Phase::InProgress;
    drop(f);
    if in_progress {
        super::promote(shared);
    }
    clear(shared);
}

/// Redis's `clearFailoverState`: no failover, writes resume.
fn clear(shared: &Shared) {
    *lock(&shared.repl.failover) = Failover::default();
    shared.pause.unpause_for(crate::pause::Purpose::Failover);
}

/// The target side of `PSYNC <replid> <offset> FAILOVER`: promote ourselves when the id is our
/// primary's (ours, as its replica), before the PSYNC is served.
pub fn psync_request(ctx: &Ctx, argv: &[Bytes]) -> Result<()> {
    let shared = ctx.shared;
    let id = String::from_utf8_lossy(&argv[1]).into_owned();
    crate::warning!("Failover request received for replid {id}.");
    if !shared.repl.is_replica() {
        return Err(Error::err("PSYNC FAILOVER can't be sent to a master."));
    }
    if shared.repl.ids().replid != id {
        return Err(Error::err("PSYNC FAILOVER replid must match my replid."));
    }
    super::promote(shared);
    crate::notice!("MASTER MODE enabled (failover request from '{}')", ctx.client.info.addr);
    Ok(())
}
