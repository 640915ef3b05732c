//! MONITOR: every command, as Redis formats it, copied to every monitoring connection. Mirrors
//! Redis's `replicationFeedMonitors` (replication.c), `monitorCommand` (server.c) and where
//! `call()` feeds them.
//!
//! A fan-out like PUBLISH's: the monitors are [`Subscriber`] outboxes (the connection polls its
//! own while monitoring), so a command on any runtime thread appends its line directly; nothing
//! waits for a monitor. While nobody monitors, a command pays one relaxed atomic load
//! ([`Monitors::active`]).
//!
//! What is shown, as in Redis 7.0: each command once, after it ran (so `SELECT 3` shows db 3; a
//! write: once it holds its keys, see below),
//! whatever its reply, a blocked command at its first run; not commands refused before running
//! (unknown, arity, NOAUTH, OOM ...), nor `admin` commands and subcommands (CONFIG,
//! CLIENT LIST/KILL/PAUSE..., SLOWLOG GET..., LATENCY ..., MONITOR, DEBUG, SHUTDOWN, ...). EVAL,
//! EVALSHA and FCALL (and their _RO forms) are shown before they run, then each command the
//! script calls as `[db lua]`; the commands of a transaction are shown as they run inside EXEC,
//! then EXEC. AUTH's and HELLO's credentials are `(redacted)`.
//!
//! Order: one connection's commands appear in the order it ran them. A write command is shown
//! when it has taken its keys' stripes, before it changes anything ([`Monitors::defer`]): writes
//! to one key appear in the order they took it, and a read that saw a write appears after it
//! (reads are lock-free: a read that raced a write and saw the old value may still appear after
//! it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::cmd::{CommandSpec, is_opt};
use crate::pubsub::Subscriber;

/// The monitoring connections.
#[derive(Default)]
pub struct Monitors {
    /// How many there are: the one load a command makes while there are none.
    count: AtomicUsize,
    list: RwLock<Vec<Arc<Subscriber>>>,
}

/// Who ran a command, as the line names it.
pub enum Source<'a> {
    /// A client at this peer address (`ip:port`).
    Peer(&'a str),
    /// A script's `redis.call`.
    Lua,
}

impl Monitors {
    /// Whether anybody monitors (one relaxed load).
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) != 0
    }

    /// Start sending every command to `sub`.
    pub fn add(&self, sub: Arc<Subscriber>) {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        if !list.iter().any(|s| s.id == sub.id) {
            DEFERRED.fetch_add(1, Ordering::Relaxed);
            list.push(sub);
            self.count.store(list.len(), Ordering::Relaxed);
        }
    }

    /// Stop monitoring for client `id` (RESET, disconnect).
    pub fn remove(&self, id: u64) {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        let before = list.len();
        list.retain(|s| s.id != id);
        DEFERRED.fetch_sub(before - list.len(), Ordering::Relaxed);
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// Send one command's line to every monitor, under the output limits `limits` (Redis checks
    /// a monitor against the `normal` class).
    pub fn feed(&self, db: usize, source: Source<'_>, argv: &[Bytes], limits: (u64, u64, u64)) {
        let line = format_line(crate::util::now_us(), db, source, argv);
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        for m in list.iter() {
            m.deliver_line(&line, limits);
        }
    }

    /// A write command is about to run on this thread: its line is fed when it takes its keys'
    /// stripes exclusively ([`Monitors::feed_pending`], called by the keyspace), or, for an
    /// in-place write under a shared stripe (collections, raw strings), when it takes the key's
    /// cell lock ([`feed_pending_here`]), or after it ran if it took neither. Writes to one key
    /// are so shown in the order they took effect, and before any read sees their effect.
    pub fn defer(self: &Arc<Self>, pending: Pending) {
        PENDING.with(|p| *p.borrow_mut() = Some((self.clone(), pending)));
    }

    /// Feed the line [`Monitors::defer`] left on this thread, if any.
    pub fn feed_pending(&self) {
        if let Some((_, p)) = PENDING.with(|p| p.borrow_mut().take()) {
            self.feed_one(p);
        }
    }

    fn feed_one(&self, p: Pending) {
        let source = if p.lua { Source::Lua } else { Source::Peer(&p.peer) };
        self.feed(p.db, source, &p.argv, p.limits);
    }
}

/// Monitors anywhere in the process: while 0, [`feed_pending_here`] is one relaxed load.
static DEFERRED: AtomicUsize = AtomicUsize::new(0);

/// Feed the line a write command running on this thread left with [`Monitors::defer`], if any
/// (called when a key's cell lock is taken: an in-place write is ordered by that lock, not by its
/// shared stripe).
#[inline]
pub fn feed_pending_here() {
    if DEFERRED.load(Ordering::Relaxed) == 0 {
        return;
    }
    if let Some((m, p)) = PENDING.with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.take())) {
        m.feed_one(p);
    }
}

/// A write command's line, waiting for its stripes (see [`Monitors::defer`]).
pub struct Pending {
    pub db: usize,
    pub lua: bool,
    pub peer: String,
    pub argv: Vec<Bytes>,
    pub limits: (u64, u64, u64),
}

std::thread_local! {
    static PENDING: std::cell::RefCell<Option<(Arc<Monitors>, Pending)>> = const { std::cell::RefCell::new(None) };
}

/// One MONITOR line: `+<sec>.<usec> [<db> <peer>|lua] "arg" ...\r\n`.
pub fn format_line(now_us: u64, db: usize, source: Source<'_>, argv: &[Bytes]) -> Vec<u8> {
    let mut line = Vec::with_capacity(48 + argv.iter().map(|a| a.len() + 3).sum::<usize>());
    let who = match source {
        Source::Peer(addr) => addr,
        Source::Lua => "lua",
    };
    line.extend_from_slice(format!("+{}.{:06} [{db} {who}] ", now_us / 1_000_000, now_us % 1_000_000).as_bytes());
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            line.push(b' ');
        }
        crate::util::cat_repr(a, &mut line);
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// The commands fed before they run (Redis flags them `skip_monitor` and feeds them itself, so
/// that a script's commands follow it).
pub fn fed_before(spec: &CommandSpec) -> bool {
    matches!(spec.name, "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro")
}

/// Whether a run of `spec` with `argv` is never shown: `admin` commands and subcommands (too
/// dangerous to show, says Redis), and those fed before they run.
pub fn hidden(spec: &CommandSpec, argv: &[Bytes]) -> bool {
    let sub = |names: &[&str]| argv.get(1).is_some_and(|a| names.iter().any(|n| is_opt(a, n)));
    spec.flags.contains(&"admin")
        || fed_before(spec)
        || match spec.name {
            "client" => sub(&["unpause", "kill", "unblock", "pause", "no-evict", "list"]),
            "config" => sub(&["resetstat", "get", "rewrite", "set"]),
            "latency" => sub(&["doctor", "graph", "latest", "history", "reset", "histogram"]),
            "slowlog" => sub(&["get", "reset", "len"]),
            _ => false,
        }
}

/// Whether a MONITOR connection may not run it: it reads or writes the keyspace or may propagate
/// (Redis: `Replica can't interact with the keyspace`; a monitor is a replica there). For EXEC,
/// the dispatcher asks about each queued command too.
pub fn touches_keyspace(spec: &CommandSpec, argv: &[Bytes]) -> bool {
    spec.is(crate::cmd::flag::READONLY) || crate::pause::writes(spec, argv)
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn argv(args: &[&[u8]]) -> Vec<Bytes> {
        args.iter().map(|a| Bytes::copy_from_slice(a)).collect()
    }

    #[test]
    fn lines_quote_as_sdscatrepr() {
        let line = format_line(1_700_000_000_123_456, 0, Source::Peer("127.0.0.1:5000"), &argv(&[b"SET", b"k", b"v"]));
        assert_eq!(line, b"+1700000000.123456 [0 127.0.0.1:5000] \"SET\" \"k\" \"v\"\r\n");
        let line =
            format_line(1_000_000_000_000_007, 3, Source::Lua, &argv(&[b"set", b"a \"b\\\n\r\t\x07\x08\x01\xff", b""]));
        assert_eq!(
            line,
            b"+1000000000.000007 [3 lua] \"set\" \"a \\\"b\\\\\\n\\r\\t\\a\\b\\x01\\xff\" \"\"\r\n".to_vec()
        );
    }
}
