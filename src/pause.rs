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

/// Who asked for a pause (Redis's `pause_purpose`): each keeps its own kind and end time, and
/// lifting one (CLIENT UNPAUSE, the end of a FAILOVER) leaves the others in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// CLIENT PAUSE / UNPAUSE.
    Client = 0,
    /// FAILOVER's pause of writes until the target took over (or the failover was aborted).
    Failover = 1,
}

const PURPOSES: usize = 2;

/// The server's pause state.
#[derive(Default)]
pub struct Pause {
    /// The [`PauseKind`] in force (0 = none): the only thing a command loads while none is on.
    /// The most restrictive kind over the purposes' pauses (Redis's `client_pause_type`).
    kind: AtomicU8,
    /// When it ends (unix ms): the furthest end among the purposes of that kind.
    end_ms: AtomicU64,
    /// Each purpose's pause (kind, end), the source of `kind`/`end_ms`; serializes PAUSE,
    /// UNPAUSE and the lifting of an expired pause.
    events: Mutex<[Option<(PauseKind, u64)>; PURPOSES]>,
    /// Woken (every waiter) whenever the pause in force becomes less restrictive.
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

    /// The pause in force at `now_ms`; a purpose's pause past its end time is dropped here.
    pub fn kind(&self, now_ms: u64) -> PauseKind {
        let kind = PauseKind::from_u8(self.kind.load(Ordering::Acquire));
        if kind == PauseKind::Off || now_ms <= self.end_ms.load(Ordering::Acquire) {
            return kind;
        }
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        self.update(&mut events, now_ms);
        PauseKind::from_u8(self.kind.load(Ordering::Acquire))
    }

    /// Whether clients are paused at all now (active expiry stops meanwhile).
    pub fn is_paused(&self, now_ms: u64) -> bool {
        self.is_on() && self.kind(now_ms) != PauseKind::Off
    }

    /// `CLIENT PAUSE`: pause until `end_ms` (see [`Pause::pause_for`]).
    pub fn pause(&self, end_ms: u64, kind: PauseKind, now_ms: u64) {
        self.pause_for(Purpose::Client, end_ms, kind, now_ms);
    }

    /// `CLIENT UNPAUSE`: lift the pause CLIENT PAUSE set (a FAILOVER's stays).
    pub fn unpause(&self) {
        self.unpause_for(Purpose::Client);
    }

    /// Pause for `purpose` until `end_ms`. A pause of that purpose still in force keeps the more
    /// restrictive kind and the later end (Redis's `pauseClients`).
    pub fn pause_for(&self, purpose: Purpose, end_ms: u64, kind: PauseKind, now_ms: u64) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut events[purpose as usize];
        *slot = match *slot {
            Some((old, old_end)) if old_end >= now_ms => Some((old.max(kind), old_end.max(end_ms))),
            _ => Some((kind, end_ms)),
        };
        self.update(&mut events, now_ms);
    }

    /// Lift `purpose`'s pause (Redis's `unpauseClients`); postponed clients run their commands
    /// unless another purpose's pause still covers them.
    pub fn unpause_for(&self, purpose: Purpose) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events[purpose as usize] = None;
        self.update(&mut events, crate::util::now_ms());
    }

    /// Redis's `updateClientPauseTypeAndEndTime`: drop the purposes' pauses past their end, and
    /// publish the most restrictive kind left with the furthest end among that kind's; wake the
    /// postponed clients when it became less restrictive (they check again, and may wait again).
    fn update(&self, events: &mut [Option<(PauseKind, u64)>; PURPOSES], now_ms: u64) {
        let old = PauseKind::from_u8(self.kind.load(Ordering::Acquire));
        let mut kind = PauseKind::Off;
        for e in events.iter_mut() {
            match *e {
                Some((_, end)) if end < now_ms => *e = None,
                Some((k, _)) => kind = kind.max(k),
                None => {}
            }
        }
        let end = events.iter().flatten().filter(|(k, _)| *k == kind).map(|(_, end)| *end).max().unwrap_or(0);
        self.end_ms.store(end, Ordering::Release);
        self.kind.store(kind as u8, Ordering::Release);
        if kind < old {
            self.changed.notify_waiters();
        }
    }

    /// Clients postponed now.
    pub fn postponed(&self) -> usize {
        self.postponed.load(Ordering::Relaxed)
    }

    /// Wait (a parked future) until the pause in force now is lifted, reaches its end time or
    /// becomes less restrictive; the caller then runs its command again (which may wait again
    /// under the pause then in force).
    pub async fn wait_change(&self) {
        let _count = Postponed::new(&self.postponed);
        let start = self.kind(crate::util::now_ms());
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the state is read: a lift after this load wakes it.
            notified.as_mut().enable();
            let now = crate::util::now_ms();
            if self.kind(now) < start || start == PauseKind::Off {
                return;
            }
            let end = self.end_ms.load(Ordering::Acquire);
            let wait = std::time::Duration::from_millis(end.saturating_sub(now).saturating_add(1));
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

    #[test]
    fn each_purpose_keeps_its_pause() {
        let p = Pause::default();
        p.pause_for(Purpose::Failover, u64::MAX, PauseKind::Write, 0);
        p.pause(1_000, PauseKind::All, 0);
        assert_eq!(p.kind(500), PauseKind::All);
        // CLIENT PAUSE's end leaves FAILOVER's pause in force, and so does CLIENT UNPAUSE.
        assert_eq!(p.kind(1_001), PauseKind::Write);
        p.pause(2_000, PauseKind::All, 1_500);
        p.unpause();
        assert_eq!(p.kind(1_600), PauseKind::Write);
        p.unpause_for(Purpose::Failover);
        assert_eq!(p.kind(1_600), PauseKind::Off);
        assert!(!p.is_on());
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
