//! Commands: the table ([`table::COMMANDS`]), the dispatcher, and one file per family of handlers.
//! A handler is a plain function `fn(&mut Ctx, &[Bytes]) -> Result<Frame>` that never touches a
//! socket, so it can be unit-tested directly. Mirrors Redis's `server.c` `call()`/`processCommand()`.

pub mod bits;
pub mod collection;
pub mod dump;
pub mod geo;
pub mod hash;
pub mod hll;
pub mod keys;
pub mod list;
pub mod migrate;
pub mod pubsub;
pub mod rawstr;
mod sample;
pub mod save;
pub mod server;
pub mod set;
pub mod slots;
pub mod sort;
pub mod stream;
pub mod string;
pub mod table;
#[cfg(all(test, not(feature = "loom")))]
pub mod testing;
pub mod tx;
pub mod zset;
pub mod zset_args;

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};

use crate::db::WriteLock;
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::state::{ClientInfo, Shared};
use crate::util::FnvBuild;
pub use table::{COMMANDS, CommandSpec, flag};
pub use tx::record_keys;

/// A command handler.
pub type Handler = fn(&mut Ctx, &[Bytes]) -> Result<Frame>;

/// Per-connection state that commands read and change.
pub struct Client {
    pub id: u64,
    /// The selected database.
    pub db: usize,
    /// Protocol version chosen with HELLO (2 or 3): the connection encodes replies with it.
    pub resp: u8,
    /// Set by QUIT: reply, then close.
    pub close_after_reply: bool,
    /// Set by a handler whose reply must not be sent (SHUTDOWN: the client sees the connection
    /// close, as with Redis); the connection clears it after skipping that one reply.
    pub skip_reply: bool,
    /// CLIENT REPLY: `Off` sends no reply at all; `Skip` (armed by CLIENT REPLY SKIP) drops the
    /// reply of the next command. The connection reads and updates it around each command.
    pub reply_mode: ReplyMode,
    /// Whether the client may run commands without the `no_auth` flag while `requirepass` is set.
    /// As in Redis, a client that connects while no password is configured starts authenticated.
    pub authenticated: bool,
    pub info: Arc<ClientInfo>,
    /// MULTI queue and WATCHed keys (unwatched when the client is dropped).
    pub tx: tx::TxState,
    /// Set by a blocking command that found nothing: the connection waits, then runs it again.
    pub block: Option<BlockRequest>,
    /// This client ran a command that may write or propagate since its last WAIT (Redis's
    /// `c->woff` may have moved).
    pub wrote: bool,
    /// The feed offset that covers this client's writes up to its last WAIT (WAIT's target).
    pub woff: u64,
    /// The blocked client's registration, kept across its re-runs (dropped: no trace left).
    pub blocked: Option<crate::db::blocking::Registration>,
    /// Set by the connection for the last re-run of a blocking command whose timeout passed.
    pub block_timed_out: bool,
    /// Set by the connection when CLIENT UNBLOCK ended the wait (the re-run replies as timed out;
    /// `call` turns the reply into the UNBLOCKED error for `ERROR`).
    pub unblocked: Option<crate::state::UnblockReason>,
    /// Set by the dispatcher when a CLIENT PAUSE covers the command: the connection waits for the
    /// pause to end, then runs it again (see `pause`).
    pub postponed: bool,
    /// In MONITOR mode (see `monitor::feed`).
    pub monitoring: bool,
    /// Which statistics a container command's run is charged to, set by its subcommand dispatch
    /// (`server::run_subcommand`) and taken by [`call`]; None charges the command's own row.
    pub charge: Option<Charge>,
    /// Its pub/sub subscriptions and outbox (unsubscribed when the client is dropped).
    pub subs: crate::pubsub::ClientSubs,
    /// CLIENT TRACKING: its prefixes and CLIENT CACHING's flag (tracking off when dropped).
    pub tracking: crate::tracking::ClientTracking,
    /// Set by PSYNC/SYNC: the connection becomes this replica's sender (see `repl::primary`).
    pub replica: Option<Box<crate::repl::Takeover>>,
    /// The name last stored in `info.last_cmd`: a client repeating one command takes that lock
    /// once, not per command.
    last_cmd: &'static str,
    /// Set by the connection: this client's calls are counted in `stats_pending` first, and the
    /// connection adds them to INFO's counters once per batch (see `CommandStats::record_pending`).
    pub batches_stats: bool,
    pub stats_pending: Option<crate::monitor::cmdstats::Pending>,
}

/// What CLIENT REPLY set (Redis's CLIENT_REPLY_OFF / CLIENT_REPLY_SKIP_NEXT / CLIENT_REPLY_SKIP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// CLIENT REPLY SKIP ran: its own reply and the next command's are dropped.
    SkipNext,
    /// The command now running is the one whose reply is dropped.
    Skip,
}

/// Where a container command's run goes in the statistics (Redis counts subcommands apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charge {
    /// The subcommand in this statistics slot ran.
    Ran(usize),
    /// The subcommand in this slot was refused (its arity): a rejected call.
    Rejected(usize),
    /// An unknown subcommand: counted nowhere (only its error is).
    Nothing,
}

/// What a blocking command asks the connection for: wait for `waiter` until `deadline` (None:
/// forever; when it passes, [`Waiter::cancel`](crate::db::blocking::Waiter::cancel) decides), then
/// run the same command again.
pub struct BlockRequest {
    pub waiter: Arc<crate::db::blocking::Waiter>,
    pub deadline: Option<std::time::Instant>,
}

impl Client {
    pub fn new(info: Arc<ClientInfo>) -> Client {
        let subs = crate::pubsub::ClientSubs::new(info.id);
        info.tracking.attach(subs.sub.clone());
        Client {
            id: info.id,
            subs,
            tracking: Default::default(),
            db: 0,
            resp: 2,
            close_after_reply: false,
            skip_reply: false,
            reply_mode: ReplyMode::On,
            authenticated: true,
            info,
            tx: tx::TxState::default(),
            block: None,
            wrote: false,
            woff: 0,
            blocked: None,
            block_timed_out: false,
            unblocked: None,
            postponed: false,
            monitoring: false,
            last_cmd: "NULL",
            batches_stats: false,
            stats_pending: None,
            charge: None,
            replica: None,
        }
    }

    /// Record the command being run, for CLIENT LIST's `cmd=` and `idle=` fields.
    pub fn note_command(&mut self, name: &'static str, now_ms: u64) {
        if !std::ptr::eq(name, self.last_cmd) {
            self.last_cmd = name;
            *self.info.last_cmd.lock().unwrap_or_else(|e| e.into_inner()) = name;
        }
        if now_ms != 0 {
            self.info.last_interaction_ms.store(now_ms, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// What a handler sees: the shared server state, its client, the time, and the AOF sequence number
/// of the last record it enqueued (the connection waits for it under appendfsync always).
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub client: &'a mut Client,
    /// Time of the command in ms since the epoch; 0 while loading the AOF (nothing expires).
    pub now_ms: u64,
    pub last_seq: Cell<u64>,
    /// The connection's output buffer, lent for one top-level command (`connection::run_command`;
    /// None elsewhere: EXEC's array, scripts, replication, loading). While `direct` holds, GET
    /// writes a found value straight into it and returns [`Frame::written`] (no copy of the value
    /// into a reply frame, no allocation for it; Redis's `addReplyBulk` copies into the client's
    /// buffer too). Dispatch clears `direct` for every other command, so a GET that EXEC or a
    /// script runs builds its frame as before.
    pub out: Option<&'a mut BytesMut>,
    pub direct: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(shared: &'a Shared, client: &'a mut Client, now_ms: u64) -> Ctx<'a> {
        Ctx { shared, client, now_ms, last_seq: Cell::new(0), out: None, direct: false }
    }

    /// The output buffer for a reply written in place (see [`Ctx::out`]), when this command may;
    /// give it back with [`Ctx::put_out`].
    #[inline]
    pub fn take_direct_out(&mut self) -> Option<&'a mut BytesMut> {
        if self.direct { self.out.take() } else { None }
    }

    #[inline]
    pub fn put_out(&mut self, out: &'a mut BytesMut) {
        self.out = Some(out);
    }

    /// Lock the stripes of `keys` exclusively in the selected database.
    pub fn write(&self, keys: &[&[u8]]) -> WriteLock<'_> {
        self.shared.ks.write(self.client.db, keys, &self.last_seq)
    }

    /// Lock the stripe of `key` shared (in-place fast paths only: see `db`).
    pub fn write_shared(&self, key: &[u8]) -> WriteLock<'_> {
        self.shared.ks.write_shared(self.client.db, key, &self.last_seq)
    }

    /// Lock every stripe (FLUSHALL, SWAPDB).
    pub fn write_all(&self) -> WriteLock<'_> {
        self.shared.ks.write_all(self.client.db, &self.last_seq)
    }

    /// Run `f`, a command's work over `items` keys or elements, without holding up the other
    /// connections of this worker thread (see [`offload`]).
    pub fn offload<R>(&self, items: usize, f: impl FnOnce() -> R) -> R {
        offload(items, f)
    }

    /// Announce keyspace event `event` of `class` on `key` in the selected database (see
    /// `pubsub::notify`; prefer [`WriteLock::notify`] while a write lock is held).
    #[inline]
    pub fn notify(&self, class: u32, event: &str, key: &[u8]) {
        self.shared.ks.events().notify(class, event, key, self.client.db);
    }

    /// Count a read lookup of `key` in INFO's keyspace_hits / keyspace_misses, and announce a miss
    /// (`keymiss`, class `m`): Redis's `lookupKeyRead`. A key of another type is a hit.
    pub fn count_lookup(&self, key: &[u8], hit: bool) {
        let stats = &self.shared.stats;
        crate::state::Stats::add(if hit { &stats.keyspace_hits } else { &stats.keyspace_misses }, 1);
        if !hit {
            self.notify(crate::pubsub::notify::class::KEY_MISS, "keymiss", key);
        }
    }

    /// The selected database's map, for lock-free reads.
    pub fn db(&self) -> &crate::db::KeyMap {
        self.shared.ks.db(self.client.db)
    }

    /// Run `f` on the live (not expired) entry of `key` in the selected database, updating its
    /// access word (LRU clock or LFU counter: Redis's `lookupKey`).
    pub fn read<R>(&self, key: &[u8], f: impl FnOnce(Option<crate::db::EntryRef<'_>>) -> R) -> R {
        let now = self.now_ms;
        self.db().get(key, |e| {
            let e = e.filter(|e| !e.is_expired(now) && !e.is_dead());
            if let Some(e) = e {
                crate::db::evict::touch(e);
            }
            f(e)
        })
    }

    /// [`read`](Self::read) without touching the access word (Redis's `LOOKUP_NOTOUCH`: OBJECT,
    /// TYPE, EXISTS, the TTL family).
    pub fn peek<R>(&self, key: &[u8], f: impl FnOnce(Option<crate::db::EntryRef<'_>>) -> R) -> R {
        let now = self.now_ms;
        self.db().get(key, |e| f(e.filter(|e| !e.is_expired(now) && !e.is_dead())))
    }
}

/// Work over fewer items than this runs in place: handing the worker off costs a thread switch.
pub const OFFLOAD_MIN_ITEMS: usize = 4096;

/// Run `f`, a long piece of a command (KEYS or SCAN over a big database, emptying one, a huge
/// LRANGE), so that no other connection waits for it.
///
/// Why: connection tasks run on tokio's worker threads, and a task woken on a worker waits in that
/// worker's queue, its newest in a LIFO slot that no other worker may steal, until the running
/// task yields. A handler never yields, so a 0.7 s KEYS held every PING queued behind it on its
/// worker for up to 0.6 s, while the other workers idled. Past [`OFFLOAD_MIN_ITEMS`],
/// `block_in_place` hands this worker's queue (LIFO slot included) to another thread for the
/// duration, and the command goes on here. Outside a multi-threaded runtime (unit tests, loom,
/// AOF loading) `f` simply runs.
pub fn offload<R>(items: usize, f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    // The runtime is asked only past the threshold: most calls are small (every script run).
    let multi_thread = || Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if items >= OFFLOAD_MIN_ITEMS && multi_thread() { tokio::task::block_in_place(f) } else { f() }
}

fn index() -> &'static HashMap<&'static [u8], &'static CommandSpec, FnvBuild> {
    static INDEX: OnceLock<HashMap<&'static [u8], &'static CommandSpec, FnvBuild>> = OnceLock::new();
    INDEX.get_or_init(|| COMMANDS.iter().map(|c| (c.name.as_bytes(), c)).collect())
}

thread_local! {
    /// The last command [`lookup`] found on this thread, under the name exactly as it was sent, as
    /// a static string of the same bytes (a pipeline usually repeats one command: one compare
    /// instead of a lowercase copy and a hash; and none at all for the `argv[0]` that
    /// [`static_name`] gave the decoder, compared by address).
    static LAST_LOOKUP: std::cell::Cell<Option<(&'static CommandSpec, &'static [u8])>> =
        const { std::cell::Cell::new(None) };
}

/// Find a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    if name.len() > 32 {
        return None;
    }
    if let Some((spec, spelt)) = LAST_LOOKUP.with(|c| c.get())
        && (std::ptr::eq(spelt, name) || short_eq(spelt, name))
    {
        return Some(spec);
    }
    let mut buf = [0u8; 32];
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let found = index().get(&lower[..]).copied();
    if let Some(spec) = found
        && let Some(spelt) = spelling(spec, name)
    {
        LAST_LOOKUP.with(|c| c.set(Some((spec, spelt))));
    }
    found
}

/// The name `name` as a static string, when it is a command's name spelt as the table spells it
/// (lowercase) or in capitals, as clients send it: the request decoder makes such an `argv[0]`
/// without a reference to the read buffer (two atomic reference-count changes less per request,
/// with the same bytes).
pub fn static_name(name: &[u8]) -> Option<&'static [u8]> {
    if let Some((_, spelt)) = LAST_LOOKUP.with(|c| c.get())
        && short_eq(spelt, name)
    {
        return Some(spelt);
    }
    let spec = lookup(name)?;
    spelling(spec, name)
}

/// `name`, a spelling of `spec`'s name, as a static string: lowercase or capitals.
fn spelling(spec: &'static CommandSpec, name: &[u8]) -> Option<&'static [u8]> {
    static UPPER: OnceLock<Vec<&'static [u8]>> = OnceLock::new();
    let lower = spec.name.as_bytes();
    if short_eq(lower, name) {
        return Some(lower);
    }
    let upper = UPPER.get_or_init(|| {
        COMMANDS.iter().map(|c| &*Box::leak(c.name.to_ascii_uppercase().into_bytes().into_boxed_slice())).collect()
    });
    let upper = upper.get(slots::spec_slot(spec))?;
    short_eq(upper, name).then_some(upper)
}

/// `a == b` for short slices of equal length (command names, small keys), without a call to
/// libc's `memcmp`, which costs more than the compare of a few bytes (2.8% of a pipelined GET's
/// CPU went to `memcmp` from here and from `connection::prefetch_ahead`).
#[inline]
pub(crate) fn short_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Redis's reply to an unknown command: name and the first arguments, quoted, newlines sanitized.
pub fn unknown_command(argv: &[Bytes]) -> Error {
    let mut args = String::new();
    for a in &argv[1..] {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        let s = String::from_utf8_lossy(a);
        let s: String = s.chars().take(room).collect();
        args.push_str(&format!("'{s}' "));
    }
    let name: String = String::from_utf8_lossy(&argv[0]).chars().take(128).collect();
    let text = format!("unknown command '{name}', with args beginning with: {args}");
    Error::err(text.replace(['\r', '\n'], " "))
}

/// Execute one command: look it up, check arity and refusals, run the handler. Error replies are
/// counted by code for INFO errorstats; runs are counted by [`call`].
pub fn execute(ctx: &mut Ctx, argv: &[Bytes]) -> Frame {
    let _running = crate::tracking::running(ctx.client.id);
    let frame = dispatch(ctx, argv);
    if let Frame::Error(text) = &frame {
        ctx.shared.stats.record_error(text);
    }
    // CLIENT CACHING applies to the next command only, or to the whole next transaction; a CLIENT
    // command in between keeps it (Redis's `resetClient`).
    if ctx.client.tracking.caching && !ctx.client.tx.in_multi() && !is_opt(&argv[0], "client") {
        ctx.client.tracking.caching = false;
    }
    frame
}

fn dispatch(ctx: &mut Ctx, argv: &[Bytes]) -> Frame {
    let Some(spec) = lookup(&argv[0]) else {
        return tx::reject(ctx, false, unknown_command(argv));
    };
    ctx.client.note_command(spec.name, ctx.now_ms);
    if let Err(e) = refusal(ctx, spec, argv) {
        if ctx.now_ms != 0 {
            ctx.shared.monitor.commands.record_rejected(slots::spec_slot(spec));
        }
        return tx::reject(ctx, spec.name == "exec", e);
    }
    if ctx.shared.pause.is_on() && crate::pause::postpones(ctx, spec, argv) {
        ctx.client.postponed = true;
        ctx.client.skip_reply = true;
        return Frame::Null;
    }
    if ctx.client.tx.queues(spec) {
        return tx::queue(ctx, spec, argv);
    }
    // WAIT waits for this client's writes (Redis's `c->woff`): a command that may write or
    // propagate marks it (its records may be pushed by another thread: a hot key's combiner, a
    // blocked client's server), and the next WAIT takes the stream's end.
    if !ctx.client.wrote
        && (crate::pause::writes(spec, argv) || spec.name == "exec" && ctx.client.tx.queued_any(crate::pause::writes))
    {
        ctx.client.wrote = true;
    }
    // Only a top-level GET writes its reply in place (see `Ctx::out`).
    ctx.direct = ctx.direct && spec.name == "get";
    call(ctx, spec, argv)
}

/// Why the command may not run (or be queued) now: arity, authentication, a transaction, memory,
/// loading, a failing AOF.
fn refusal(ctx: &Ctx, spec: &CommandSpec, argv: &[Bytes]) -> Result<()> {
    if !spec.arity_ok(argv.len()) {
        return Err(Error::WrongArity(spec.name.to_string()));
    }
    if !ctx.client.authenticated && !spec.is(flag::NO_AUTH) && auth_required(ctx.shared) {
        return Err(Error::Raw("NOAUTH Authentication required.".into()));
    }
    if ctx.now_ms != 0 && ctx.shared.scripting.is_busy() && !allowed_while_busy(spec, argv) {
        return Err(Error::Raw(ctx.shared.scripting.busy_error()));
    }
    if ctx.client.tx.in_multi() && spec.is(flag::NO_MULTI) {
        return Err(Error::err("Command not allowed inside a transaction"));
    }
    // As in Redis, a transaction being queued may not grow either: inside MULTI every command but
    // EXEC, DISCARD, QUIT and RESET is refused above maxmemory.
    let queueing = ctx.client.tx.in_multi() && !matches!(spec.name, "exec" | "discard" | "quit" | "reset");
    if ctx.now_ms != 0 && (spec.is(flag::DENYOOM) || queueing) && out_of_memory(ctx.shared) {
        return Err(Error::Raw("OOM command not allowed when used memory > 'maxmemory'.".into()));
    }
    // Redis 7.0: a RESP2 client with subscriptions may only manage them, PING, QUIT and RESET.
    if ctx.client.resp == 2 && ctx.client.subs.total() > 0 && !pubsub::allowed_in_subscribed_mode(spec.name) {
        return Err(pubsub::subscribed_mode_error(spec.name));
    }
    // A MONITOR connection is a replica to Redis: it may not touch the keyspace.
    if ctx.client.monitoring
        && (crate::monitor::feed::touches_keyspace(spec, argv)
            || spec.name == "exec" && ctx.client.tx.queued_any(crate::monitor::feed::touches_keyspace))
    {
        return Err(Error::err("Replica can't interact with the keyspace"));
    }
    if ctx.now_ms != 0 && ctx.shared.ks.is_loading() && !spec.is(flag::LOADING) {
        return Err(Error::Raw("LOADING Redis is loading the dataset in memory".into()));
    }
    if spec.is_write()
        && ctx.now_ms != 0
        && let Some(aof) = ctx.shared.ks.aof()
        && let Some(reason) = aof.write_error()
    {
        return Err(Error::Misconf(reason));
    }
    if (spec.is_write() || spec.name == "ping") && ctx.now_ms != 0 && crate::rdb::persist::denies_writes(ctx.shared) {
        return Err(Error::Raw(crate::rdb::persist::MISCONF_RDB.into()));
    }
    // READONLY, MASTERDOWN, NOREPLICAS.
    crate::repl::refusal(ctx, spec, argv)?;
    Ok(())
}

/// Whether a command runs while a script is busy (Redis's `allow_busy` flag; of the containers'
/// subcommands, SCRIPT KILL, FUNCTION KILL and FUNCTION STATS have it).
fn allowed_while_busy(spec: &CommandSpec, argv: &[Bytes]) -> bool {
    spec.is(flag::ALLOW_BUSY)
        || matches!(spec.name, "script" | "function")
            && argv.get(1).is_some_and(|a| is_opt(a, "KILL") || spec.name == "function" && is_opt(a, "STATS"))
}

/// Run a command's handler and account for it (INFO commandstats, latencystats, SLOWLOG, LATENCY;
/// not while loading the AOF, and not a run that blocks: its final run counts). A read command with
/// keys sees each transaction on its keys entirely or not at all (see `db::tx`).
pub(crate) fn call(ctx: &mut Ctx, spec: &CommandSpec, argv: &[Bytes]) -> Frame {
    let tracked = spec.is(flag::READONLY) && ctx.client.tracking.remembers(&ctx.client.info);
    let late = tracked && crate::sync::fault::on(crate::sync::fault::Fault::TrackRegisterAfterRead);
    if tracked && !late {
        track_read(ctx, spec, argv);
    }
    if ctx.client.stats_pending.is_some() && !counts_pending(spec) {
        // It may read the counters (INFO, LATENCY, a script or transaction running those): the
        // calls before it are counted first.
        ctx.shared.monitor.commands.flush(&mut ctx.client.stats_pending);
    }
    // Its first key is hashed once for the whole run: the stripe, the lookup and its hint all take
    // that hash (see `db::keyhash`).
    let first_key = usize::try_from(spec.keys.0).unwrap_or(0);
    let _hashed = (first_key > 0).then(|| argv.get(first_key)).flatten().map(|k| crate::db::KeyHashed::arm(k, None));
    let started = clock().raw();
    // MONITOR: a blocked command is shown at its first run only (see `monitor::feed`).
    let monitored = ctx.now_ms != 0 && ctx.shared.monitors.active() && ctx.client.blocked.is_none();
    if monitored && crate::monitor::feed::fed_before(spec) {
        feed_monitors(ctx, argv);
    }
    let shown = monitored && !crate::monitor::feed::hidden(spec, argv);
    if shown && spec.is_write() {
        // Fed when it takes its keys' stripes (per-key order), or just below if it takes none.
        ctx.shared.monitors.defer(monitor_line(ctx, argv));
    }
    let mut frame = run_handler(ctx, spec, argv);
    if late {
        track_read(ctx, spec, argv);
    }
    let charge = ctx.client.charge.take();
    if shown {
        if spec.is_write() {
            ctx.shared.monitors.feed_pending();
        } else if !matches!(charge, Some(Charge::Nothing | Charge::Rejected(_))) {
            // (An unknown subcommand or a subcommand's arity error is refused before the call
            // in Redis: not shown.)
            feed_monitors(ctx, argv);
        }
    }
    // CLIENT UNBLOCK ended this command's wait: it counts as failed either way (Redis's
    // `updateStatsOnUnblock(.., had_errors=1)`); ERROR replaces the timeout's reply.
    let unblocked = ctx.client.unblocked.take();
    if unblocked == Some(crate::state::UnblockReason::Error) {
        frame = Frame::Error(Bytes::from_static(b"UNBLOCKED client unblocked via CLIENT UNBLOCK"));
    }
    if ctx.now_ms != 0 && ctx.client.block.is_none() {
        let ns = clock().delta_as_nanos(started, clock().raw());
        account(ctx, spec, argv, charge, ns, &frame, unblocked.is_some());
    }
    frame
}

/// The clock that times each call (INFO commandstats, latencystats, SLOWLOG; Redis times each call
/// too): the TSC, calibrated once. A raw read is the `rdtsc` alone (a few ns where clock_gettime
/// costs ~20); the ticks become nanoseconds once per call, from the difference.
fn clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// A tracking client runs a read-only command: remember its keys, before it reads them (see
/// `tracking`). Redis's `trackingRememberKeys`, which leaves out EVAL_RO/EVALSHA_RO/FCALL_RO (the
/// read commands their scripts call remember the script's keys, see `script::run`) and commands
/// called by scripts.
fn track_read(ctx: &Ctx, spec: &CommandSpec, argv: &[Bytes]) {
    if matches!(spec.name, "eval_ro" | "evalsha_ro" | "fcall_ro") || crate::script::run::in_script_call() {
        return;
    }
    let owned;
    let keys: Vec<&[u8]> = if spec.is(flag::MOVABLEKEYS) || spec.keys.0 == 0 {
        owned = server::command_keys(argv);
        owned.iter().map(|k| &k[..]).collect()
    } else {
        spec.key_indexes(argv.len()).map(|i| &argv[i][..]).collect()
    };
    ctx.shared.ks.track_reads(ctx.client.id, &keys);
}

/// Show a command to the MONITOR connections now (credentials redacted).
fn feed_monitors(ctx: &Ctx, argv: &[Bytes]) {
    use crate::monitor::feed::Source;
    let redacted: Vec<Bytes>;
    let argv = match lookup(&argv[0]).map(|s| s.name) {
        Some(name @ ("auth" | "hello")) => {
            redacted = redact_credentials(name, argv);
            &redacted[..]
        }
        _ => argv,
    };
    let source = if crate::script::run::in_script_call() { Source::Lua } else { Source::Peer(&ctx.client.info.addr) };
    let limits = ctx.shared.conn_limits.load().out_limit;
    ctx.shared.monitors.feed(ctx.client.db, source, argv, limits);
}

/// A write command's MONITOR line, to be fed once it holds its keys (no credentials in writes).
fn monitor_line(ctx: &Ctx, argv: &[Bytes]) -> crate::monitor::feed::Pending {
    crate::monitor::feed::Pending {
        db: ctx.client.db,
        lua: crate::script::run::in_script_call(),
        peer: ctx.client.info.addr.clone(),
        argv: argv.to_vec(),
        limits: ctx.shared.conn_limits.load().out_limit,
    }
}

/// Whether a call of `spec` may wait in its client's `stats_pending` (see
/// `CommandStats::record_pending`): every command but those that read or reset the counters, or
/// may run one that does.
fn counts_pending(spec: &CommandSpec) -> bool {
    static READERS: OnceLock<Vec<bool>> = OnceLock::new();
    let readers = READERS.get_or_init(|| {
        let reads = |name: &str| {
            matches!(
                name,
                "info"
                    | "latency"
                    | "config"
                    | "exec"
                    | "eval"
                    | "evalsha"
                    | "eval_ro"
                    | "evalsha_ro"
                    | "fcall"
                    | "fcall_ro"
                    | "debug"
                    | "function"
                    | "script"
            )
        };
        COMMANDS.iter().map(|c| reads(c.name)).collect()
    });
    !readers.get(slots::spec_slot(spec)).copied().unwrap_or(true)
}

/// Report one finished call to the monitor.
fn account(
    ctx: &mut Ctx,
    spec: &CommandSpec,
    argv: &[Bytes],
    charge: Option<Charge>,
    ns: u64,
    frame: &Frame,
    failed: bool,
) {
    let monitor = &ctx.shared.monitor;
    // Each run counts once in its slot's calls; their sum is Redis's stat_numcommands (INFO
    // total_commands_processed): runs only, not refusals nor commands queued by MULTI.
    let slot = match charge {
        None => slots::spec_slot(spec),
        Some(Charge::Ran(slot)) => slot,
        Some(Charge::Rejected(slot)) => return monitor.commands.record_rejected(slot),
        Some(Charge::Nothing) => return,
    };
    // As Redis, AUTH's and HELLO's credentials never reach the slow log.
    let redacted: Vec<Bytes>;
    let argv = match spec.name {
        "auth" | "hello" => {
            redacted = redact_credentials(spec.name, argv);
            &redacted[..]
        }
        _ => argv,
    };
    let pending = (ctx.client.batches_stats && counts_pending(spec)).then_some(&mut ctx.client.stats_pending);
    monitor.after_call_in(
        pending,
        crate::monitor::Call {
            slot,
            ns,
            failed: failed || matches!(frame, Frame::Error(_)),
            fast: spec.is(flag::FAST),
            argv: (!spec.is(flag::SKIP_SLOWLOG)).then_some(argv),
            peer: &ctx.client.info.addr,
            name: &ctx.client.info.name,
        },
    );
}

/// AUTH's arguments, or HELLO's two after `AUTH`, replaced by `(redacted)` (Redis's
/// `redactClientCommandArgument`).
fn redact_credentials(name: &str, argv: &[Bytes]) -> Vec<Bytes> {
    let secret = |i: usize| match name {
        "auth" => i >= 1,
        _ => (2..i).any(|j| i - j <= 2 && is_opt(&argv[j], "AUTH")),
    };
    argv.iter()
        .enumerate()
        .map(|(i, a)| if secret(i) { Bytes::from_static(b"(redacted)") } else { a.clone() })
        .collect()
}

fn run_handler(ctx: &mut Ctx, spec: &CommandSpec, argv: &[Bytes]) -> Frame {
    let ks = &ctx.shared.ks;
    let result = if spec.is(flag::READONLY) && spec.keys.0 > 0 && !spec.locks_keys {
        if spec.keys == (1, 1, 1) {
            ks.read_consistent(&[&argv[1]], || (spec.handler)(ctx, argv))
        } else {
            let keys: Vec<&[u8]> = spec.key_indexes(argv.len()).map(|i| &argv[i][..]).collect();
            ks.read_consistent(&keys, || (spec.handler)(ctx, argv))
        }
    } else {
        (spec.handler)(ctx, argv)
    };
    match result {
        Ok(f) => f,
        Err(e) => e.to_frame(),
    }
}

/// Whether a password is configured, so that unauthenticated clients are refused (Redis's
/// `authRequired`: the default user has a password).
pub fn auth_required(shared: &Shared) -> bool {
    !shared.config().requirepass.is_empty()
}

/// `maxmemory` is set and the sampled used memory exceeds it. Under every policy the server
/// behaves as `noeviction`: nothing is evicted, commands that may grow memory are refused.
/// Whether a command that may grow memory must be refused: over `maxmemory` after evicting what
/// the policy allows (Redis's `performEvictions() == EVICT_FAIL`; see `db::evict`).
pub(crate) fn out_of_memory(shared: &Shared) -> bool {
    if !over_maxmemory(shared) {
        return false;
    }
    if shared.ks.in_exec() {
        // Inside EXEC (a script run by it): the stripes are held; Redis evicts before EXEC only.
        return true;
    }
    use std::sync::atomic::Ordering::Relaxed;
    let max = shared.maxmemory.load(Relaxed);
    let used = || crate::memory::allocated_bytes().unwrap_or_else(|| shared.used_memory.load(Relaxed));
    shared.ks.evictor().perform(&shared.ks, max, used) == crate::db::evict::Outcome::Fail
}

pub(crate) fn over_maxmemory(shared: &Shared) -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    let max = shared.maxmemory.load(Relaxed);
    // The allocator's live count when the server installed it (exact, as Redis's check); the
    // sampled resident set otherwise.
    max != 0 && crate::memory::allocated_bytes().unwrap_or_else(|| shared.used_memory.load(Relaxed)) > max
}

// ---- argument helpers shared by the families -------------------------------------------------

/// Parse an integer argument (`ERR value is not an integer or out of range`).
pub fn arg_i64(arg: &[u8]) -> Result<i64> {
    crate::util::parse_i64(arg).ok_or(Error::NotInteger)
}

/// Case-insensitive comparison of an argument with an option name.
pub fn is_opt(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<Bytes> {
        args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
    }

    #[test]
    fn credentials_are_redacted_as_redis_does() {
        assert_eq!(redact_credentials("auth", &argv(&["AUTH", "u", "p"])), argv(&["AUTH", "(redacted)", "(redacted)"]));
        assert_eq!(
            redact_credentials("hello", &argv(&["HELLO", "3", "auth", "u", "p", "SETNAME", "n"])),
            argv(&["HELLO", "3", "auth", "(redacted)", "(redacted)", "SETNAME", "n"])
        );
        assert_eq!(redact_credentials("hello", &argv(&["HELLO", "3"])), argv(&["HELLO", "3"]));
    }

    #[test]
    fn lookup_through_its_cache_finds_what_the_index_finds() {
        let uncached = |name: &str| index().get(name.to_ascii_lowercase().as_bytes()).map(|c| c.name);
        // Repeats (cache hits), case variants, a prefix and an extension of a cached name, unknown
        // names after known ones, names too long to cache, and the empty name.
        let names = [
            "GET",
            "GET",
            "get",
            "GEt",
            "GE",
            "GETX",
            "set",
            "SET",
            "nosuch",
            "nosuch",
            "SET",
            "",
            "zrangebyscore",
            "ZRANGEBYSCORE",
            "georadiusbymember_ro",
            "GEORADIUSBYMEMBER_RO",
            "georadiusbymember_r",
            "PFADD",
            "pfadd",
        ];
        for n in names {
            assert_eq!(lookup(n.as_bytes()).map(|c| c.name), uncached(n), "{n:?}");
        }
    }
}
