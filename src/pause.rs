//! CLIENT PAUSE / UNPAUSE: the server-wide pause, and the check every command makes against it.
//! Mirrors Redis 7.0's `pauseClients`/`unpauseClients` (networking.c) and the pause branch of
//! `processCommand` (server.c).
//!
//! While a pause is on, a command it covers is not refused: its client is *postponed* (Redis's
//! `BLOCKED_POSTPONE`). The dispatcher marks it ([`postpones`]); the connection sends what the
//! batch produced so far, parks its task on [`Pause::wait_change`] (an awaited future: the worker
//! thread serves other connections meanwhile, nothing stops the world) and runs the command again
//! once the pause ends, is lifted by UNPAUSE, or passes its end time. `ALL` covers every command;
//! `WRITE` covers the commands that may change the dataset or propagate: write commands, EVAL,
//! EVALSHA, FCALL, PUBLISH, SPUBLISH, PFCOUNT, and EXEC when a queued command is one of those
//! (inside MULTI, queueing such a command waits too, as in Redis). Reads are served.
//!
//! The hot path costs one relaxed atomic load ([`Pause::is_on`]) while no pause is on. While a
//! pause is on, active expiry stops (the dataset stays constant, as in Redis).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;

use crate::cmd::{CommandSpec, Ctx, flag};

/// What a pause covers (Redis's `CLIENT_PAUSE_*`, in increasing restrictiveness).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PauseKind {
    Off = 0,
    Write = 1,
    All = 2,
}

impl PauseKind {
    fn from_u8(v: u8) -> PauseKind {
        match v {
            1 => PauseKind::Write,
            2 => PauseKind::All,
            _ => PauseKind::Off,
        }
    }
}

/// The server's pause state.
#[derive(Default)]
pub struct Pause {
    /// The [`PauseKind`] in force (0 = none): the only thing a command loads while none is on.
    kind: AtomicU8,
    /// When it ends (unix ms).
    end_ms: AtomicU64,
    /// Serializes PAUSE, UNPAUSE and the lifting of an expired pause.
    update: Mutex<()>,
    /// Woken (every waiter) whenever the pause is lifted.
    changed: tokio::sync::Notify,
    /// Clients postponed now (counted in INFO `blocked_clients`, as Redis counts them).
    postponed: AtomicUsize,
}

impl Pause {
    /// Whether a pause may be on (one relaxed load; [`Pause::kind`] checks its end time).
    #[inline]
    pub fn is_on(&self) -> bool {
        self.kind.load(Ordering::Relaxed) != 0
    }

    /// The pause in force at `now_ms`; a pause past its end time is lifted here.
    pub fn kind(&self, now_ms: u64) -> PauseKind {
        let kind = PauseKind::from_u8(self.kind.load(Ordering::Acquire));
        if kind == PauseKind::Off || now_ms <= self.end_ms.load(Ordering::Acquire) {
            return kind;
        }
        let _g = self.update.lock().unwrap_or_else(|e| e.into_inner());
        if self.kind.load(Ordering::Acquire) != 0 && now_ms > self.end_ms.load(Ordering::Acquire) {
            self.lift();
        }
        PauseKind::from_u8(self.kind.load(Ordering::Acquire))
    }

    /// Whether clients are paused at all now (active expiry stops meanwhile).
    pub fn is_paused(&self, now_ms: u64) -> bool {
        self.is_on() && self.kind(now_ms) != PauseKind::Off
    }

    /// `CLIENT PAUSE`: pause until `end_ms`. A pause already in force keeps the more restrictive
    /// kind and the later end (Redis's `pauseClients`).
    pub fn pause(&self, end_ms: u64, kind: PauseKind, now_ms: u64) {
        let _g = self.update.lock().unwrap_or_else(|e| e.into_inner());
        let old = PauseKind::from_u8(self.kind.load(Ordering::Acquire));
        let old_end = self.end_ms.load(Ordering::Acquire);
        let (kind, end_ms) = if old != PauseKind::Off && old_end >= now_ms {
            (old.max(kind), old_end.max(end_ms))
        } else {
            (kind, end_ms)
        };
        self.end_ms.store(end_ms, Ordering::Release);
        self.kind.store(kind as u8, Ordering::Release);
    }

    /// `CLIENT UNPAUSE`: lift the pause; postponed clients run their commands.
    pub fn unpause(&self) {
        let _g = self.update.lock().unwrap_or_else(|e| e.into_inner());
        self.lift();
    }

    fn lift(&self) {
        self.kind.store(0, Ordering::Release);
        self.end_ms.store(0, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Clients postponed now.
    pub fn postponed(&self) -> usize {
        self.postponed.load(Ordering::Relaxed)
    }

    /// Wait (a parked future) until the pause in force now is lifted or reaches its end time;
    /// the caller then runs its command again (which may wait again under a new pause).
    pub async fn wait_change(&self) {
        let _count = Postponed::new(&self.postponed);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the state is read: a lift after this load wakes it.
            notified.as_mut().enable();
            let now = crate::util::now_ms();
            if self.kind(now) == PauseKind::Off {
                return;
            }
            let end = self.end_ms.load(Ordering::Acquire);
            let wait = std::time::Duration::from_millis(end.saturating_sub(now) + 1);
            tokio::select! {
                _ = notified => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Counts one postponed client while alive.
struct Postponed<'a>(&'a AtomicUsize);

impl<'a> Postponed<'a> {
    fn new(n: &'a AtomicUsize) -> Postponed<'a> {
        n.fetch_add(1, Ordering::Relaxed);
        Postponed(n)
    }
}

impl Drop for Postponed<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Commands Redis 7.0 flags `may_replicate` (EVAL & co. may write, PUBLISH propagates, PFCOUNT
/// may rewrite its key's cache).
fn may_replicate(spec: &CommandSpec) -> bool {
    spec.is(flag::MAY_REPLICATE)
        || matches!(spec.name, "eval" | "evalsha" | "fcall" | "pfcount" | "publish" | "spublish")
}

/// Whether `spec` called with `argv` may write or propagate (the commands a `WRITE` pause covers).
/// For containers, their subcommands' flags: FUNCTION LOAD/DELETE/FLUSH/RESTORE and every XGROUP
/// subcommand but HELP are write commands.
pub fn writes(spec: &CommandSpec, argv: &[Bytes]) -> bool {
    let sub = |names: &[&str]| argv.get(1).is_some_and(|a| names.iter().any(|n| crate::cmd::is_opt(a, n)));
    spec.is_write()
        || may_replicate(spec)
        || spec.name == "function" && sub(&["load", "delete", "flush", "restore"])
        || spec.name == "xgroup" && sub(&["create", "createconsumer", "delconsumer", "destroy", "setid"])
}

/// Whether the command about to run (or be queued) must wait for the pause to end. Called by the
/// dispatcher after every refusal check, as Redis's `processCommand` checks the pause last. Not
/// for a blocked command's re-run, nor for a MONITOR connection (Redis never pauses replicas), nor for our
/// primary's commands on a replica.
pub fn postpones(ctx: &Ctx, spec: &CommandSpec, argv: &[Bytes]) -> bool {
    // Our primary's stream is applied as it comes (a dropped command would be a lost write).
    if ctx.now_ms == 0 || ctx.client.blocked.is_some() || ctx.client.monitoring || crate::repl::replica::applying() {
        return false;
    }
    match ctx.shared.pause.kind(ctx.now_ms) {
        PauseKind::Off => false,
        PauseKind::All => true,
        PauseKind::Write => writes(spec, argv) || spec.name == "exec" && ctx.client.tx.queued_any(writes),
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn pause_keeps_the_stricter_kind_and_later_end_and_expires() {
        let p = Pause::default();
        assert!(!p.is_on());
        p.pause(1_000, PauseKind::All, 0);
        p.pause(2_000, PauseKind::Write, 0);
        assert_eq!(p.kind(500), PauseKind::All);
        assert_eq!(p.kind(1_500), PauseKind::All);
        assert_eq!(p.kind(2_001), PauseKind::Off);
        assert!(!p.is_on());
        // An expired pause is not merged with a new one.
        p.pause(3_000, PauseKind::All, 0);
        p.pause(5_000, PauseKind::Write, 4_000);
        assert_eq!(p.kind(4_500), PauseKind::Write);
        p.unpause();
        assert_eq!(p.kind(4_500), PauseKind::Off);
    }

    #[tokio::test]
    async fn waiters_resume_on_unpause_and_at_the_end_time() {
        let p = std::sync::Arc::new(Pause::default());
        p.pause(crate::util::now_ms() + 60_000, PauseKind::Write, crate::util::now_ms());
        let waiter = tokio::spawn({
            let p = p.clone();
            async move { p.wait_change().await }
        });
        while p.postponed() == 0 {
            tokio::task::yield_now().await;
        }
        p.unpause();
        waiter.await.unwrap();
        assert_eq!(p.postponed(), 0);
        p.pause(crate::util::now_ms() + 30, PauseKind::All, crate::util::now_ms());
        p.wait_change().await;
        assert_eq!(p.kind(crate::util::now_ms()), PauseKind::Off);
    }
}
