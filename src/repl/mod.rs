//! Replication with Redis's protocol, both directions: this server as a primary that real Redis
//! replicas (and ours) follow, and as a replica of a real Redis primary (or of ours). Mirrors
//! Redis 7.0's `replication.c`.
//!
//! # Design
//! - **The stream** (`feed`): every write's record, the same one the AOF gets (scripts as their
//!   effects, expiries as `DEL`, absolute times, transactions as `MULTI` ... `EXEC`), is pushed on a
//!   lock-free queue while the write still holds the lock that orders it, exactly where its AOF
//!   record is pushed. Draining that queue (one drainer at a time) appends to the backlog with
//!   `SELECT` inserted where the db changes: the backlog order is the queue order, per key the order
//!   the writes took effect, as in the AOF. Nothing is pushed until a replica first connects (the
//!   backlog is created then, with a new replication id, as Redis does), and the feed works
//!   whether or not the AOF is on. `master_repl_offset` is the backlog's end.
//! - **A full sync** (`PSYNC ? -1`, `SYNC`, or a partial resync that the backlog cannot serve) takes
//!   a frozen snapshot (`db::Frozen`, as BGSAVE: every key stripe is held only while the blocks are
//!   pinned and what changes in place is copied), drains the queue at that point and notes the
//!   offset O: the snapshot holds exactly the writes before O, the backlog exactly those after.
//!   A thread of its own takes the snapshot and encodes it as an RDB (`rdb`) with writers going
//!   on; the connection sends it as `$<len>` + payload (or diskless, `$EOF:<mark>` as it is
//!   encoded), then the stream from O.
//! - **A partial resync** (`PSYNC <replid> <offset>` with our id, or our previous id up to
//!   `second_repl_offset`, and the offset still in the backlog) answers `+CONTINUE` and sends the
//!   stream from there.
//! - **Replica connections** (`primary`): after the `PSYNC`, the connection's task becomes the
//!   replica's sender: it writes the backlog from where the replica stands and reads `REPLCONF
//!   ACK`s. Once it has written everything it goes idle, and whoever appends the next chunk (the
//!   feed thread, mostly) writes it to the socket itself (`outlet`: one non-blocking send, no task
//!   woken); the sender is woken only when the socket did not take it all. The backlog keeps what an attached replica still needs (up to 256 MB behind,
//!   Redis's replica output-buffer hard limit; beyond that the replica is dropped).
//! - **As a replica** (`replica`): one task per `REPLICAOF` runs Redis's handshake, loads the RDB,
//!   then applies the primary's commands through the normal command path (keyspace, AOF,
//!   keyspace events and WATCH all follow), counting the bytes it processed as its offset, and
//!   appends the very same bytes to its own backlog (its replicas see its primary's stream byte for
//!   byte, so offsets agree along a chain). Nothing of its own is pushed on the feed meanwhile and
//!   no key expires actively (the primary's `DEL`s do that). On a dropped link it reconnects and
//!   asks `PSYNC <replid> <offset+1>`. `REPLICAOF NO ONE` keeps the old id as `replid2` (Redis's
//!   `shiftReplicationId`) so that its own replicas can resync partially.
//!
//! # Invariants
//! - A record is pushed under the same lock as its AOF record: per key, feed order = AOF order =
//!   the order the writes took effect.
//! - The feed is switched on only while every stripe is held; the snapshot point is taken while
//!   every stripe is held: snapshot + stream from O = the primary's state.
//! - On a replica, applying a command and appending its bytes to the backlog happen under
//!   `apply_lock`, which a full sync served by the replica also takes: its snapshot and offset agree.

pub mod failover;
pub mod feed;
pub mod flow;
pub mod outlet;
pub mod primary;
pub mod rdb;
pub mod replica;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use crate::cmd::{Ctx, arg_i64, is_opt};
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::state::Shared;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A new 40-hex-digit replication id.
pub fn new_replid() -> String {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut out = String::new();
    for i in 0..3u64 {
        let mut h = state.build_hasher();
        h.write_u64(now ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(std::process::id()));
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(40);
    out
}

/// The replication ids (Redis's `replid`, `replid2`, `second_replid_offset`).
pub struct Ids {
    pub replid: String,
    pub replid2: String,
    /// The first offset (1-based, as Redis) up to which `replid2` is valid; -1 when none.
    pub second_offset: i64,
}

/// What a would-be replica said with REPLCONF before its PSYNC.
#[derive(Default, Clone)]
pub struct Handshake {
    pub listening_port: u16,
    pub ip: Option<String>,
    pub capa_eof: bool,
    pub capa_psync2: bool,
    /// `capa flow`: a flurrydb replica, which acknowledges as it applies (see `flow`).
    pub capa_flow: bool,
}

/// One attached replica, as INFO and ROLE show it.
pub struct ReplicaLink {
    pub id: u64,
    pub ip: String,
    pub port: u16,
    /// `wait_bgsave`, `send_bulk` or `online`.
    pub state: Mutex<&'static str>,
    /// The offset it acknowledged (REPLCONF ACK).
    pub ack: AtomicU64,
    /// Unix time (s) of its last ACK.
    pub ack_time: AtomicU64,
    /// Set to make its sender close the connection.
    pub kill: tokio::sync::Notify,
}

/// The replica side's state (when `REPLICAOF host port` is in force).
#[derive(Clone)]
pub struct Master {
    pub host: String,
    pub port: u16,
}

/// Where the link to our primary is (Redis's `repl_state`, as ROLE names it).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LinkState {
    Connect,
    Connecting,
    Handshake,
    Sync,
    Connected,
}

impl LinkState {
    fn role_name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Handshake => "handshake",
            LinkState::Sync => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// The replica side's progress, read by INFO/ROLE and written by the link task.
pub struct LinkStatus {
    pub state: LinkState,
    /// Offset processed (applied) from the primary's stream; -1 before the first sync.
    pub offset: i64,
    /// Offset read (received) from the primary's stream.
    pub read_offset: i64,
    /// Unix time (s) of the last byte from the primary.
    pub last_io: u64,
    /// Unix time (s) the link went down (0: never up).
    pub down_since: u64,
    /// The (replid, offset) to ask `PSYNC` for: our primary's id and how far we got.
    pub cached: Option<(String, i64)>,
    /// The database our primary's stream has selected at `offset` (Redis's `master->db`): a
    /// partial resync goes on in it, as the primary sends no `SELECT` until its db changes.
    pub stream_db: usize,
}

/// The server's replication state.
pub struct Repl {
    pub ids: Mutex<Ids>,
    /// `Some` while this server is a replica.
    pub master: Mutex<Option<Master>>,
    pub link: Mutex<LinkStatus>,
    /// Bumped by every REPLICAOF: a link task whose generation is stale stops.
    pub generation: AtomicU64,
    pub replicas: Mutex<Vec<Arc<ReplicaLink>>>,
    handshakes: Mutex<HashMap<u64, Handshake>>,
    /// The clients blocked in WAIT: every ACK wakes them to count again.
    wait_waiters: crate::sync::Mutex<Vec<Arc<crate::db::blocking::Waiter>>>,
    /// Replica side: applying a command of the primary and appending its bytes to the backlog.
    pub apply_lock: Mutex<()>,
    pub sync_full: AtomicU64,
    pub sync_partial_ok: AtomicU64,
    pub sync_partial_err: AtomicU64,
    /// The feed thread runs (started with the first replica).
    feeding: AtomicBool,
    /// The client id of the link to our primary (0: none).
    pub master_client: AtomicU64,
    /// Mirrors of the settings every command checks (see [`Repl::sync_config`]).
    min_replicas: AtomicU64,
    min_lag: AtomicU64,
    read_only: AtomicBool,
    serve_stale: AtomicBool,
    /// `repl-ping-replica-period` (seconds), read by the feed thread on every wake.
    ping_period: AtomicU64,
    /// The server state this belongs to (to start tasks from a handler).
    me: std::sync::OnceLock<std::sync::Weak<Shared>>,
    /// FAILOVER's progress.
    pub failover: Mutex<failover::Failover>,
    /// Unix time (s) since which a primary with a backlog has had no replica (0: it has one, or
    /// no backlog): `repl-backlog-ttl` counts from it (Redis's `repl_no_slaves_since`).
    no_replicas_since: AtomicU64,
    /// The backlog was freed by `repl-backlog-ttl` (INFO `repl_backlog_active:0`) and not created
    /// again since.
    backlog_freed: AtomicBool,
    /// A `repl-diskless-load swapdb` load of a payload with our own replication id runs while the
    /// old data is served (INFO `async_loading:1`, Redis's `server.async_loading`).
    pub async_loading: AtomicBool,
}

impl Default for Repl {
    fn default() -> Self {
        Repl {
            ids: Mutex::new(Ids { replid: new_replid(), replid2: "0".repeat(40), second_offset: -1 }),
            master: Mutex::new(None),
            link: Mutex::new(LinkStatus {
                state: LinkState::Connect,
                offset: -1,
                read_offset: -1,
                last_io: 0,
                down_since: 0,
                cached: None,
                stream_db: 0,
            }),
            generation: AtomicU64::new(0),
            replicas: Mutex::new(Vec::new()),
            handshakes: Mutex::new(HashMap::new()),
            wait_waiters: crate::sync::Mutex::new(Vec::new()),
            apply_lock: Mutex::new(()),
            sync_full: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
            feeding: AtomicBool::new(false),
            me: std::sync::OnceLock::new(),
            master_client: AtomicU64::new(0),
            min_replicas: AtomicU64::new(0),
            min_lag: AtomicU64::new(10),
            read_only: AtomicBool::new(true),
            serve_stale: AtomicBool::new(true),
            ping_period: AtomicU64::new(10),
            failover: Mutex::new(failover::Failover::default()),
            no_replicas_since: AtomicU64::new(0),
            backlog_freed: AtomicBool::new(false),
            async_loading: AtomicBool::new(false),
        }
    }
}

pub fn unix_now() -> u64 {
    crate::util::now_ms() / 1000
}

/// A numeric configuration value (its canonical text), or `default`.
pub fn config_u64(shared: &Shared, name: &str, default: u64) -> u64 {
    shared.config().get(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn config_bool(shared: &Shared, name: &str, default: bool) -> bool {
    // (INFO only: commands read the mirrors, see `Repl::sync_config`.)
    shared.config().get(name).map_or(default, |v| v == "yes")
}

impl Repl {
    /// Called once by `Shared::new`.
    pub fn attach(&self, shared: &Arc<Shared>) {
        let _ = self.me.set(Arc::downgrade(shared));
    }

    /// The server state, to start tasks from a handler.
    pub fn me(&self) -> Option<Arc<Shared>> {
        self.me.get().and_then(|w| w.upgrade())
    }

    pub fn is_replica(&self) -> bool {
        lock(&self.master).is_some()
    }

    pub fn link(&self) -> MutexGuard<'_, LinkStatus> {
        lock(&self.link)
    }

    pub fn ids(&self) -> MutexGuard<'_, Ids> {
        lock(&self.ids)
    }

    /// Copy `min-replicas-to-write`, `min-replicas-max-lag`, `replica-read-only`,
    /// `replica-serve-stale-data` and `repl-ping-replica-period` into their mirrors (at startup
    /// and after CONFIG SET).
    pub fn sync_config(&self, cfg: &crate::config::Config) {
        let num = |name: &str, default: u64| cfg.get(name).and_then(|v| v.parse().ok()).unwrap_or(default);
        let yes = |name: &str| cfg.get(name).is_none_or(|v| v == "yes");
        self.min_replicas.store(num("min-replicas-to-write", 0), Ordering::Relaxed);
        self.min_lag.store(num("min-replicas-max-lag", 10), Ordering::Relaxed);
        self.read_only.store(yes("replica-read-only"), Ordering::Relaxed);
        self.serve_stale.store(yes("replica-serve-stale-data"), Ordering::Relaxed);
        self.ping_period.store(num("repl-ping-replica-period", 10).max(1), Ordering::Relaxed);
    }

    /// How often the replicas are PINGed (`repl-ping-replica-period`, at least 1 s).
    pub fn ping_period(&self) -> Duration {
        Duration::from_secs(self.ping_period.load(Ordering::Relaxed).max(1))
    }

    /// `Some(true)`: client `id` is the link to our primary; `Some(false)`: a replica's link
    /// (CLIENT KILL TYPE master / replica).
    pub fn client_kind(&self, id: u64) -> Option<bool> {
        if self.master_client.load(Ordering::Relaxed) == id {
            return Some(true);
        }
        lock(&self.replicas).iter().any(|r| r.id == id).then_some(false)
    }

    /// Forget what a closed connection said with REPLCONF.
    pub fn forget(&self, client: u64) {
        let mut h = lock(&self.handshakes);
        if !h.is_empty() {
            h.remove(&client);
        }
    }

    fn handshake(&self, client: u64) -> Handshake {
        lock(&self.handshakes).get(&client).cloned().unwrap_or_default()
    }

    /// An ACK arrived (or a replica left): the clients blocked in WAIT count again. Called
    /// after the ACK's offset is stored: a WAIT that registered before this takes the list is
    /// woken, one that registers after counts the new offset (see [`wait`]).
    pub fn note_ack(&self) {
        let waiters = std::mem::take(&mut *crate::sync::lock(&self.wait_waiters));
        for w in waiters {
            w.wake_rerun();
        }
    }

    /// Replicas whose acknowledged offset is at least `offset`.
    pub fn count_acks(&self, offset: u64) -> usize {
        lock(&self.replicas)
            .iter()
            .filter(|r| *lock(&r.state) == "online" && r.ack.load(Ordering::Relaxed) >= offset)
            .count()
    }

    /// Online replicas whose last ACK is at most `max_lag` seconds old (min-replicas-max-lag).
    pub fn good_replicas(&self, max_lag: u64) -> usize {
        let now = unix_now();
        lock(&self.replicas)
            .iter()
            .filter(|r| {
                *lock(&r.state) == "online" && now.saturating_sub(r.ack_time.load(Ordering::Relaxed)) <= max_lag
            })
            .count()
    }
}

/// Start the feed thread once: it drains the feed into the backlog when a push wakes it (then
/// leaves [`COALESCE`] for more records to gather, so that a busy primary appends chunks rather
/// than single commands and wakes its replicas' senders once per chunk), and PINGs the replicas
/// every `repl-ping-replica-period` seconds.
fn ensure_feed_thread(shared: &Arc<Shared>) {
    if shared.repl.feeding.swap(true, Ordering::SeqCst) {
        return;
    }
    let weak = Arc::downgrade(shared);
    let _ = std::thread::Builder::new().name("repl-feed".into()).spawn(move || {
        let mut last_ping = std::time::Instant::now();
        let mut last_cron = std::time::Instant::now();
        if let Some(shared) = weak.upgrade() {
            shared.ks.repl_feed().set_drainer();
        }
        loop {
            let Some(shared) = weak.upgrade() else { return };
            // A mirror: no config lock on a wake (thousands a second under load).
            let period = shared.repl.ping_period();
            let feed = shared.ks.repl_feed();
            // Wake at least every 100 ms to notice that the server is gone.
            feed.wait(period.saturating_sub(last_ping.elapsed()).min(Duration::from_millis(100)));
            if last_cron.elapsed() >= Duration::from_secs(1) {
                last_cron = std::time::Instant::now();
                expire_backlog(&shared, unix_now());
            }
            if !feed.is_active() {
                continue;
            }
            if last_ping.elapsed() >= period {
                last_ping = std::time::Instant::now();
                if !lock(&shared.repl.replicas).is_empty() {
                    feed.push_raw(b"*1\r\n$4\r\nping\r\n");
                }
            }
            let before = feed.backlog().end();
            if feed.drain() != before {
                drop(shared);
                std::thread::sleep(COALESCE);
            }
        }
    });
}

/// `repl-backlog-ttl` (Redis's `replicationCron`): a primary whose backlog has had no replica for
/// longer than the ttl (seconds; 0: forever) frees it and takes a new replication id, so that a
/// replica that comes back gets a full sync; `master_repl_offset` stays (a new backlog starts
/// there). Called once a second by the feed thread with the time now (s).
pub fn expire_backlog(shared: &Shared, now: u64) {
    let repl = &shared.repl;
    let feed = shared.ks.repl_feed();
    let has_replicas = || !lock(&repl.replicas).is_empty() || !feed.backlog().readers.is_empty();
    if !feed.is_active() || feed.is_replica() || repl.is_replica() || has_replicas() {
        repl.no_replicas_since.store(0, Ordering::Relaxed);
        return;
    }
    let since = repl.no_replicas_since.load(Ordering::Relaxed);
    if since == 0 {
        repl.no_replicas_since.store(now, Ordering::Relaxed);
        return;
    }
    let ttl = config_u64(shared, "repl-backlog-ttl", 3600);
    if ttl == 0 || now.saturating_sub(since) <= ttl {
        return;
    }
    // As the backlog is created: under apply_lock and every stripe, where no PSYNC can take a
    // snapshot point nor a write push a record.
    let _apply = lock(&repl.apply_lock);
    let seq = std::cell::Cell::new(0);
    let _w = shared.ks.write_all(0, &seq);
    if !feed.is_active() || repl.is_replica() || has_replicas() {
        return;
    }
    feed.set_active(false);
    let end = feed.snapshot_point();
    feed.reset(end);
    {
        let mut ids = repl.ids();
        ids.replid = new_replid();
        ids.replid2 = "0".repeat(40);
        ids.second_offset = -1;
    }
    repl.backlog_freed.store(true, Ordering::Relaxed);
    repl.no_replicas_since.store(0, Ordering::Relaxed);
    crate::notice!("Replication backlog freed after {ttl} seconds without connected replicas.");
}

/// How long the feed thread lets records gather after a drain that moved the backlog: bounds
/// the drains (and the replicas' reads) to two thousand a second under load, while a lone write
/// still propagates at once. Under SET P16 with two replicas (`benches/ab_repl.py`), 500 µs
/// against 200 µs: replica CPU per request 1.01-1.05 µs against 1.24-1.35 (Redis's 1.04: its
/// replicas get the stream in chunks of one event-loop turn), delay from a write's reply until a
/// replica shows it p50 2.8 ms against 3.1-3.6 (the replicas wake less, so they keep up better).
const COALESCE: Duration = Duration::from_micros(500);

/// What the connection does after a PSYNC/SYNC: hand its socket to [`primary::serve`].
pub struct Takeover {
    pub link: Arc<ReplicaLink>,
    /// The line to send first (`+FULLRESYNC ...` / `+CONTINUE ...`), if any.
    pub greeting: Option<String>,
    /// Full sync: the RDB payload, from the thread that encodes it ([`start_full_sync`]).
    pub payload: Option<tokio::sync::mpsc::Receiver<rdb::Chunk>>,
    /// Where the stream starts.
    pub from: u64,
    /// Send the snapshot as Redis's diskless sync does (`$EOF:<mark>`, streamed while it is
    /// encoded): the replica said `capa eof` and `repl-diskless-sync` is on.
    pub diskless: bool,
    /// Writers wait for this replica when it falls behind (it said `capa flow`, see `flow`).
    pub flow: bool,
}

// ---- commands ---------------------------------------------------------------------------------

/// REPLCONF option value [option value ...].
pub fn replconf(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    if argv.len().is_multiple_of(2) {
        return Err(Error::Syntax);
    }
    let repl = &ctx.shared.repl;
    let mut hs = repl.handshake(ctx.client.id);
    for pair in argv[1..].chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        if is_opt(opt, "listening-port") {
            let port = arg_i64(val)?;
            hs.listening_port = port as u16;
        } else if is_opt(opt, "ip-address") {
            if val.len() >= 256 {
                return Err(Error::err(format!(
                    "REPLCONF ip-address provided by replica instance is too long: {} bytes",
                    val.len()
                )));
            }
            hs.ip = Some(String::from_utf8_lossy(val).into_owned());
        } else if is_opt(opt, "capa") {
            if is_opt(val, "eof") {
                hs.capa_eof = true;
            } else if is_opt(val, "psync2") {
                hs.capa_psync2 = true;
            } else if is_opt(val, "flow") {
                hs.capa_flow = true;
            }
        } else if is_opt(opt, "ack") || is_opt(opt, "getack") {
            // ACK only counts on a replica's link (read by its sender); GETACK only from our
            // primary (answered by the link task). Elsewhere: no reply at all, as Redis.
            ctx.client.skip_reply = true;
            return Ok(Frame::Null);
        } else if is_opt(opt, "rdb-only") {
            let v = arg_i64(val).ok().filter(|v| (0..=1).contains(v));
            if v.is_none() {
                return Err(Error::err("value is out of range, value must between 0 and 1"));
            }
        } else if is_opt(opt, "rdb-filter-only") {
            let filters = String::from_utf8_lossy(val).into_owned();
            for f in filters.split_whitespace() {
                if !f.eq_ignore_ascii_case("functions") {
                    return Err(Error::err(format!("Unsupported rdb-filter-only option: {f}")));
                }
            }
        } else {
            return Err(Error::err(format!("Unrecognized REPLCONF option: {}", String::from_utf8_lossy(opt))));
        }
    }
    lock(&repl.handshakes).insert(ctx.client.id, hs);
    Ok(Frame::ok())
}

/// SYNC.
pub fn sync(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    start_sync(ctx, argv, false)
}

/// PSYNC replid offset.
pub fn psync(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    start_sync(ctx, argv, true)
}

fn start_sync(ctx: &mut Ctx, argv: &[Bytes], psync: bool) -> Result<Frame> {
    let shared = ctx.shared;
    let repl = &shared.repl;
    if psync && argv.len() > 3 && is_opt(&argv[3], "failover") {
        failover::psync_request(ctx, argv)?;
    }
    if failover::phase(shared) != failover::Phase::None {
        return Err(Error::Raw("NOMASTERLINK Can't SYNC while failing over".into()));
    }
    if repl.is_replica() && repl.link().state != LinkState::Connected {
        return Err(Error::Raw("NOMASTERLINK Can't SYNC while not connected with my master".into()));
    }
    let hs = repl.handshake(ctx.client.id);
    let peer = ctx.client.info.addr.clone();
    let ip = hs.ip.clone().unwrap_or_else(|| peer.rsplit_once(':').map_or(peer.clone(), |(h, _)| h.to_string()));
    crate::notice!("Replica {ip}:{} asks for synchronization", hs.listening_port);
    let link = Arc::new(ReplicaLink {
        id: ctx.client.id,
        ip,
        port: hs.listening_port,
        state: Mutex::new("wait_bgsave"),
        ack: AtomicU64::new(0),
        ack_time: AtomicU64::new(unix_now()),
        kill: tokio::sync::Notify::new(),
    });
    let feed = shared.ks.repl_feed();
    if psync {
        let offset = arg_i64(&argv[2])?;
        let want = String::from_utf8_lossy(&argv[1]).into_owned();
        if let Some(greeting) = try_partial(shared, &want, offset, hs.capa_psync2) {
            // The bytes from `offset` (1-based) on: index offset-1.
            let from = (offset - 1) as u64;
            feed.backlog().set_reader(link.id, Some(from));
            *lock(&link.state) = "online";
            lock(&repl.replicas).push(link.clone());
            repl.sync_partial_ok.fetch_add(1, Ordering::Relaxed);
            ensure_feed_thread_from(ctx);
            ctx.client.replica = Some(Box::new(Takeover {
                link,
                greeting: Some(greeting),
                payload: None,
                from,
                diskless: false,
                flow: hs.capa_flow,
            }));
            ctx.client.skip_reply = true;
            return Ok(Frame::Null);
        }
        if !want.starts_with('?') {
            repl.sync_partial_err.fetch_add(1, Ordering::Relaxed);
        }
    }
    repl.sync_full.fetch_add(1, Ordering::Relaxed);
    let diskless = hs.capa_eof && shared.config().get("repl-diskless-sync").is_none_or(|v| v == "yes");
    let (payload, replid, offset) = start_full_sync(shared, link.id, diskless)?;
    lock(&repl.replicas).push(link.clone());
    ensure_feed_thread_from(ctx);
    let greeting = psync.then(|| format!("+FULLRESYNC {replid} {offset}\r\n"));
    ctx.client.replica =
        Some(Box::new(Takeover { link, greeting, payload: Some(payload), from: offset, diskless, flow: hs.capa_flow }));
    ctx.client.skip_reply = true;
    Ok(Frame::Null)
}

/// Serve a full sync's payload from a thread of its own (Redis forks a child): it takes the
/// snapshot point ([`full_sync_point`]; the frozen snapshot's guards are that thread's), hands
/// back the replication id and offset, then encodes the RDB with writers going on: into one
/// chunk for a `$<len>` payload, or `diskless`, chunk by chunk as the replica reads them. Returns
/// once the point is taken: the payload's receiver, the id and the offset.
fn start_full_sync(
    shared: &Shared,
    reader: u64,
    diskless: bool,
) -> Result<(tokio::sync::mpsc::Receiver<rdb::Chunk>, String, u64)> {
    let me = shared.repl.me().ok_or_else(|| Error::err("the server is not started"))?;
    let (tx, rx) = tokio::sync::mpsc::channel(rdb::STREAM_CHUNKS);
    let (point_tx, point_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("repl-sync".into())
        .spawn(move || {
            let shared = &*me;
            let (frozen, extras, replid, offset) = full_sync_point(shared, reader);
            let _ = point_tx.send((replid.clone(), offset));
            let result = if diskless {
                rdb::encode_to(&mut rdb::ChunkSender(tx.clone()), &frozen, extras, &replid, offset).map(|()| Vec::new())
            } else {
                let mut out = Vec::new();
                rdb::encode_to(&mut out, &frozen, extras, &replid, offset).map(|()| out)
            };
            drop(frozen);
            let last = match result {
                Ok(out) if out.is_empty() => vec![rdb::Chunk::End],
                Ok(out) => vec![rdb::Chunk::Data(out), rdb::Chunk::End],
                Err(e) => vec![rdb::Chunk::Failed(e)],
            };
            for c in last {
                if tx.blocking_send(c).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| Error::err(format!("can't start the sync thread: {e}")))?;
    let keys: usize = (0..shared.ks.databases()).map(|d| shared.ks.db(d).len()).sum();
    let (replid, offset) = crate::cmd::offload(keys, || point_rx.recv())
        .map_err(|_| Error::err("the sync thread failed before its snapshot point"))?;
    Ok((rx, replid, offset))
}

/// A full sync's snapshot point: with every stripe held, the feed switched on (a new id with the
/// backlog, as Redis's first replica), the queue drained, the offset noted and the keyspace
/// frozen (`Keyspace::freeze`: blocks pinned, what changes in place copied): the snapshot holds
/// exactly the writes before the offset, the backlog exactly those after. The replica `reader`
/// is registered at the offset (the backlog keeps what it will be sent). Returns the snapshot
/// (encode it on this thread), what else goes in the RDB, the replication id and the offset.
pub fn full_sync_point(shared: &Shared, reader: u64) -> (crate::db::Frozen<'_>, rdb::Extras, String, u64) {
    let repl = &shared.repl;
    let feed = shared.ks.repl_feed();
    let _apply = lock(&repl.apply_lock);
    let seq = std::cell::Cell::new(0);
    let mut w = shared.ks.write_all(0, &seq);
    let replica = feed.is_replica();
    if !replica && !feed.is_active() {
        let mut ids = repl.ids();
        let freed = repl.backlog_freed.load(Ordering::Relaxed);
        if lock(&repl.replicas).is_empty() && (feed.backlog().end() == 0 || freed) {
            ids.replid = new_replid();
            ids.replid2 = "0".repeat(40);
            ids.second_offset = -1;
            crate::notice!(
                "Replication backlog created, my new replication IDs are '{}' and '{}'",
                ids.replid,
                ids.replid2
            );
        }
        feed.backlog().size = config_u64(shared, "repl-backlog-size", 1 << 20).max(16 * 1024);
        feed.set_active(true);
        repl.backlog_freed.store(false, Ordering::Relaxed);
    }
    let snap = shared.ks.freeze(crate::util::now_ms());
    let extras = rdb::Extras::of(shared);
    if crate::sync::fault::on(crate::sync::fault::Fault::ReplOffsetOutsideLock) {
        w.release();
        crate::sync::thread::yield_now();
    }
    let offset = if replica { feed.backlog().end() } else { feed.snapshot_point() };
    feed.backlog().set_reader(reader, Some(offset));
    drop(w);
    let replid = repl.ids().replid.clone();
    (snap, extras, replid, offset)
}

/// The replication state an RDB written now records (Redis's `rdbPopulateSaveInfo`): for a
/// primary with a backlog, its replication id and offset, the feed drained here so that the file
/// holds exactly the writes before the offset; for a replica that synced, its primary's id, the
/// offset it applied and the database the stream has selected there, so that restarted from the
/// file it asks `PSYNC <id> <offset+1>` (see [`restore_after_load`]). Call holding `apply_lock`
/// (a replica applies a batch of its primary's commands and advances its offset under it) and
/// then every key stripe. `None` otherwise (no backlog, or a replica that never synced).
pub fn save_info(shared: &Shared) -> Option<crate::rdb::ReplInfo> {
    if shared.repl.is_replica() {
        let l = shared.repl.link();
        let (id, offset) = l.cached.clone()?;
        return (offset >= 0).then(|| crate::rdb::ReplInfo { stream_db: l.stream_db as i64, id, offset });
    }
    let feed = shared.ks.repl_feed();
    if feed.is_replica() || !feed.is_active() {
        return None;
    }
    let offset = feed.snapshot_point();
    Some(crate::rdb::ReplInfo { stream_db: 0, id: shared.repl.ids().replid.clone(), offset: offset as i64 })
}

/// After the RDB file was loaded at startup (Redis's `loadDataFromDisk`; not after an AOF, whose
/// load Redis gives no replication state either), with the file's aux fields and the keys the load
/// dropped as expired:
/// - a primary whose file records `repl-id` and `repl-offset` keeps that history as its secondary
///   id, valid up to the offset, and starts its backlog there, so that the replicas it had resync
///   partially with nothing to resend; a new primary id all the same (Redis's too). The keys that
///   expired while it was down, which the load dropped and its replicas still hold, go into the
///   new backlog as `DEL`s (Redis's `rdbLoad` with `RDBFLAGS_FEED_REPL`).
/// - a server configured as a replica (`replicaof`) takes the id and offset as its primary's and
///   the stream's database as the one selected there (Redis's `replicationCacheMasterUsingMyself`
///   at load): [`set_master`] then asks `PSYNC <id> <offset+1>`.
pub fn restore_after_load(shared: &Shared, aux: impl Fn(&str) -> Option<Vec<u8>>, expired: &[(usize, Bytes)]) {
    let text = |name: &str| aux(name).map(|v| String::from_utf8_lossy(&v).into_owned());
    let (Some(id), Some(offset), Some(db)) = (text("repl-id"), text("repl-offset"), text("repl-stream-db")) else {
        return;
    };
    let (Ok(offset), Ok(db)) = (offset.parse::<i64>(), db.parse::<i64>()) else { return };
    if id.len() != 40 || offset < 0 || db < 0 || db as usize >= shared.ks.databases() || shared.repl.is_replica() {
        return;
    }
    let feed = shared.ks.repl_feed();
    let configured_replica = shared.config().get("replicaof").is_some_and(|v| !v.trim().is_empty() && v != "no one");
    if configured_replica {
        let seq = std::cell::Cell::new(0);
        let _all = shared.ks.write_all(0, &seq);
        shared.repl.ids().replid = id;
        feed.reset(offset as u64);
        shared.repl.link().stream_db = db as usize;
        crate::notice!("Replication state restored from the RDB: offset {offset}, stream db {db}");
        return;
    }
    let Some(me) = shared.repl.me() else { return };
    {
        let seq = std::cell::Cell::new(0);
        let _all = shared.ks.write_all(0, &seq);
        let mut ids = shared.repl.ids();
        ids.replid2 = id;
        ids.second_offset = offset + 1;
        feed.reset(offset as u64);
        feed.backlog().size = config_u64(shared, "repl-backlog-size", 1 << 20).max(16 * 1024);
        feed.set_active(true);
        for (db, key) in expired {
            feed.push(*db, &[b"DEL", key]);
        }
        crate::notice!(
            "Replication history restored from the RDB: secondary replication ID {}, valid up to offset {}",
            ids.replid2,
            ids.second_offset
        );
    }
    // Writes feed the backlog from now on: its drainer runs.
    ensure_feed_thread(&me);
}

fn ensure_feed_thread_from(ctx: &Ctx) {
    if let Some(shared) = ctx.shared.repl.me() {
        ensure_feed_thread(&shared);
    }
}

/// Redis's `masterTryPartialResynchronization`: the `+CONTINUE` line when the backlog can serve
/// `offset` (1-based) under id `want`.
fn try_partial(shared: &Shared, want: &str, offset: i64, psync2: bool) -> Option<String> {
    let repl = &shared.repl;
    let ids = repl.ids();
    let ours = want.eq_ignore_ascii_case(&ids.replid);
    let previous = want.eq_ignore_ascii_case(&ids.replid2) && offset <= ids.second_offset;
    if !ours && !previous {
        if !want.starts_with('?') {
            crate::notice!(
                "Partial resynchronization not accepted: Replication ID mismatch (Replica asked for '{want}', my replication IDs are '{}' and '{}')",
                ids.replid,
                ids.replid2
            );
        }
        return None;
    }
    let feed = shared.ks.repl_feed();
    if !repl.is_replica() {
        feed.drain();
    }
    let b = feed.backlog();
    let active = feed.is_active() || repl.is_replica();
    if !active || offset < 1 || !b.holds((offset - 1) as u64) {
        crate::notice!("Unable to partial resync with replica for lack of backlog (Replica request was: {offset}).");
        return None;
    }
    crate::notice!(
        "Partial resynchronization request accepted. Sending {} bytes of backlog starting from offset {offset}.",
        b.end() - (offset - 1) as u64
    );
    Some(if psync2 { format!("+CONTINUE {}\r\n", ids.replid) } else { "+CONTINUE\r\n".to_string() })
}

/// WAIT numreplicas timeout: a blocked client (it holds no worker thread), woken by every ACK
/// to count the replicas that acknowledged its own writes (Redis's `c->woff`: the stream's end
/// after its last write, taken at the first WAIT after that write), until enough did or the
/// timeout passes (0: never). CLIENT UNBLOCK ends it as a timeout.
pub fn wait(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let shared = ctx.shared;
    let repl = &shared.repl;
    if repl.is_replica() {
        ctx.client.blocked = None;
        return Err(Error::err(
            "WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.",
        ));
    }
    let want = arg_i64(&argv[1])?;
    let timeout = crate::cmd::arg_i64(&argv[2]).map_err(|_| Error::err("timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(Error::err("timeout is negative"));
    }
    let feed = shared.ks.repl_feed();
    // No replica ever connected: nothing is fed, and no replica acknowledges anything yet (it
    // blocks all the same, as Redis; a replica that connects meanwhile wakes it with its ACKs).
    let active = feed.is_active();
    let rerun = ctx.client.blocked.is_some();
    if !rerun && active && ctx.client.wrote {
        // Every record of this client's writes is queued by now: the end after a drain covers them.
        ctx.client.woff = feed.drain();
        ctx.client.wrote = false;
    }
    let target = ctx.client.woff;
    let acked = repl.count_acks(target);
    let expired = ctx.client.blocked.as_ref().and_then(|r| r.deadline).is_some_and(|d| std::time::Instant::now() >= d);
    if acked as i64 >= want
        || ctx.client.tx.in_multi()
        || shared.ks.in_exec()
        || ctx.now_ms == 0
        || ctx.client.block_timed_out
        || expired
    {
        ctx.client.blocked = None;
        return Ok(Frame::Integer(acked as i64));
    }
    if !rerun {
        if active {
            feed.push_raw(b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n");
            feed.drain();
        }
        let deadline = (timeout > 0)
            .then(|| std::time::Instant::now().checked_add(Duration::from_millis(timeout as u64)))
            .flatten();
        ctx.client.blocked = Some(crate::db::blocking::Registration::new(
            shared.ks.blocking().clone(),
            ctx.client.db,
            Vec::new(),
            deadline,
            crate::db::blocking::Want::Rerun,
        ));
    }
    let Some(reg) = ctx.client.blocked.as_ref() else { return Ok(Frame::Integer(acked as i64)) };
    // Waiting again (a woken waiter is reset), listed for the ACKs, then counted once more: an ACK
    // stored before the listing is counted here, one after it wakes this client.
    shared.ks.blocking().register(reg);
    let waiter = reg.waiter();
    let acked = if crate::sync::fault::on(crate::sync::fault::Fault::WaitCountBeforeListen) {
        // Broken: counted first, listed after: an ACK in between finds nobody to wake.
        let n = repl.count_acks(target);
        crate::sync::thread::yield_now();
        crate::sync::lock(&repl.wait_waiters).push(waiter.clone());
        n
    } else {
        crate::sync::lock(&repl.wait_waiters).push(waiter.clone());
        repl.count_acks(target)
    };
    if acked as i64 >= want {
        ctx.client.blocked = None;
        return Ok(Frame::Integer(acked as i64));
    }
    ctx.client.block = Some(crate::cmd::BlockRequest { waiter, deadline: reg.deadline });
    ctx.client.skip_reply = true;
    Ok(Frame::Null)
}

/// ROLE.
pub fn role(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    let repl = &ctx.shared.repl;
    if let Some(m) = lock(&repl.master).clone() {
        let link = repl.link();
        let offset = if link.offset >= 0 { link.offset } else { -1 };
        return Ok(Frame::Array(vec![
            Frame::Bulk(Bytes::from_static(b"slave")),
            Frame::Bulk(Bytes::from(m.host)),
            Frame::Integer(i64::from(m.port)),
            Frame::Bulk(Bytes::from_static(link.state.role_name().as_bytes())),
            Frame::Integer(offset),
        ]));
    }
    let offset = ctx.shared.ks.repl_feed().backlog().end();
    let replicas = lock(&repl.replicas)
        .iter()
        .filter(|r| *lock(&r.state) == "online")
        .map(|r| {
            Frame::Array(vec![
                Frame::Bulk(Bytes::from(r.ip.clone())),
                Frame::Bulk(Bytes::from(r.port.to_string())),
                Frame::Bulk(Bytes::from(r.ack.load(Ordering::Relaxed).to_string())),
            ])
        })
        .collect();
    Ok(Frame::Array(vec![
        Frame::Bulk(Bytes::from_static(b"master")),
        Frame::Integer(offset as i64),
        Frame::Array(replicas),
    ]))
}

/// REPLICAOF host port | NO ONE (and SLAVEOF).
pub fn replicaof(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let shared = ctx.shared;
    if failover::phase(shared) != failover::Phase::None {
        return Err(Error::err("REPLICAOF not allowed while failing over."));
    }
    if is_opt(&argv[1], "no") && is_opt(&argv[2], "one") {
        if shared.repl.is_replica() {
            promote(shared);
            crate::notice!("MASTER MODE enabled (user request from '{}')", ctx.client.info.addr);
        }
        return Ok(Frame::ok());
    }
    if ctx.client.replica.is_some() {
        return Err(Error::err("Command is not valid when client is a replica."));
    }
    let port = arg_i64(&argv[2]).ok().filter(|p| (0..=65535).contains(p)).ok_or(Error::err("Invalid master port"))?;
    let host = String::from_utf8_lossy(&argv[1]).into_owned();
    if let Some(m) = lock(&shared.repl.master).as_ref()
        && m.host.eq_ignore_ascii_case(&host)
        && i64::from(m.port) == port
    {
        return Ok(Frame::Simple(Bytes::from_static(b"OK Already connected to specified master")));
    }
    let Some(me) = shared.repl.me() else { return Err(Error::err("server is not running")) };
    set_master(&me, host.clone(), port as u16);
    crate::notice!("REPLICAOF {host}:{port} enabled (user request from '{}')", ctx.client.info.addr);
    Ok(Frame::ok())
}

/// `replicaof host port` in the configuration: follow it from the start (call inside the runtime).
pub fn start_from_config(shared: &Arc<Shared>) {
    let text = shared.config().get("replicaof").unwrap_or_default();
    let mut parts = text.split_whitespace();
    if let (Some(host), Some(port)) = (parts.next(), parts.next().and_then(|p| p.parse::<u16>().ok())) {
        set_master_as(shared, host.to_string(), port, true);
    }
}

/// Become a replica of `host:port` (Redis's `replicationSetMaster`).
pub fn set_master(shared: &Arc<Shared>, host: String, port: u16) {
    set_master_as(shared, host, port, false);
}

/// [`set_master`]; `at_startup` (the `replicaof` of the configuration): our own history is
/// offered to the primary only if the RDB loaded restored one ([`restore_after_load`]), as Redis
/// caches itself as the master only on a live REPLICAOF; a fresh replica asks `PSYNC ? -1`.
fn set_master_as(shared: &Arc<Shared>, host: String, port: u16, at_startup: bool) {
    let repl = &shared.repl;
    let feed = shared.ks.repl_feed();
    let was_master = !repl.is_replica();
    {
        let seq = std::cell::Cell::new(0);
        let _w = shared.ks.write_all(0, &seq);
        if was_master && (!at_startup || feed.backlog().end() > 0) {
            // Our own history is what we ask the new primary to continue (it may have been our
            // replica): Redis's `replicationCacheMasterUsingMyself`.
            let end = if feed.is_active() { feed.drain() } else { feed.backlog().end() };
            let id = repl.ids().replid.clone();
            repl.link().cached = Some((id, end as i64));
        }
        feed.set_active(false);
        feed.set_replica(true);
        repl.backlog_freed.store(false, Ordering::Relaxed);
    }
    set_replicaof_param(shared, &[host.clone(), port.to_string()]);
    *lock(&repl.master) = Some(Master { host, port });
    {
        let mut l = repl.link();
        l.state = LinkState::Connect;
        l.down_since = unix_now();
    }
    disconnect_replicas(repl);
    let generation = repl.generation.fetch_add(1, Ordering::SeqCst) + 1;
    let me = Arc::clone(shared);
    tokio::spawn(async move { replica::run(me, generation).await });
}

/// `REPLICAOF NO ONE`: stop following, keep the data, start a new history whose past is the old
/// one (Redis's `replicationUnsetMaster` + `shiftReplicationId`).
pub fn promote(shared: &Shared) {
    let repl = &shared.repl;
    repl.generation.fetch_add(1, Ordering::SeqCst);
    let _apply = lock(&repl.apply_lock);
    let feed = shared.ks.repl_feed();
    let seq = std::cell::Cell::new(0);
    let _w = shared.ks.write_all(0, &seq);
    *lock(&repl.master) = None;
    {
        let mut ids = repl.ids();
        let end = feed.backlog().end();
        ids.replid2 = std::mem::replace(&mut ids.replid, new_replid());
        ids.second_offset = end as i64 + 1;
        crate::warning!(
            "Setting secondary replication ID to {}, valid up to offset: {}. New replication ID is {}",
            ids.replid2,
            ids.second_offset,
            ids.replid
        );
        feed.force_select();
    }
    {
        let mut l = repl.link();
        l.state = LinkState::Connect;
        l.cached = None;
        l.offset = -1;
        l.read_offset = -1;
        l.down_since = 0;
    }
    feed.set_replica(false);
    // A backlog exists once we synced (or served a replica): writes feed it from now on.
    feed.set_active(feed.backlog().end() > 0 || !lock(&repl.replicas).is_empty());
    disconnect_replicas(repl);
    drop(_w);
    drop(_apply);
    set_replicaof_param(shared, &["no".into(), "one".into()]);
}

/// Keep the `replicaof` parameter the live state, as Redis's `masterhost`/`masterport` are: what
/// CONFIG GET shows and CONFIG REWRITE writes (Sentinel rewrites it after each switch).
fn set_replicaof_param(shared: &Shared, args: &[String]) {
    let mut cfg = shared.config.write().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = cfg.apply("replicaof", args) {
        crate::warning!("replicaof {}: {e}", args.join(" "));
    }
}

fn disconnect_replicas(repl: &Repl) {
    for r in lock(&repl.replicas).iter() {
        r.kill.notify_one();
    }
}

/// The refusals replication adds to the dispatcher's (Redis's `processCommand`): writes on a
/// read-only replica, commands without `stale` while the link is down and
/// `replica-serve-stale-data` is no, writes without enough good replicas.
pub fn refusal(ctx: &Ctx, spec: &crate::cmd::CommandSpec, argv: &[Bytes]) -> Result<()> {
    let shared = ctx.shared;
    let repl = &shared.repl;
    if shared.ks.repl_feed().is_replica() {
        if ctx.now_ms == 0 || replica::applying() {
            return Ok(());
        }
        let write = spec.is_write()
            || spec.name == "exec" && ctx.client.tx.queued_any(|s: &crate::cmd::CommandSpec, _| s.is_write());
        if write && repl.read_only.load(Ordering::Relaxed) {
            return Err(Error::Raw("READONLY You can't write against a read only replica.".into()));
        }
        if !repl.serve_stale.load(Ordering::Relaxed)
            && !is_stale_ok(spec, argv)
            && repl.link().state != LinkState::Connected
        {
            return Err(Error::Raw(
                "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.".into(),
            ));
        }
        // Redis's `CMD_NO_ASYNC_LOADING` (SAVE, BGSAVE, BGREWRITEAOF, REPLICAOF, PSYNC, ...).
        if repl.async_loading.load(Ordering::Relaxed) && spec.flags.contains(&"no_async_loading") {
            return Err(Error::Raw("LOADING Redis is loading the dataset in memory".into()));
        }
        return Ok(());
    }
    let min = repl.min_replicas.load(Ordering::Relaxed);
    if min == 0 || ctx.now_ms == 0 {
        return Ok(());
    }
    let write = spec.is_write()
        || spec.name == "exec" && ctx.client.tx.queued_any(|s: &crate::cmd::CommandSpec, _| s.is_write());
    let lag = repl.min_lag.load(Ordering::Relaxed);
    if write && lag > 0 && (repl.good_replicas(lag) as u64) < min {
        return Err(Error::Raw("NOREPLICAS Not enough good replicas to write.".into()));
    }
    Ok(())
}

/// Whether a command runs on a replica whose link is down under `replica-serve-stale-data no`
/// (Redis's `stale` flag; the containers whose every subcommand has it, and SCRIPT LOAD).
fn is_stale_ok(spec: &crate::cmd::CommandSpec, argv: &[Bytes]) -> bool {
    spec.flags.contains(&"stale")
        || matches!(spec.name, "config" | "client" | "slowlog" | "latency" | "pubsub" | "cluster" | "acl" | "debug")
        || spec.name == "script" && argv.get(1).is_some_and(|a| is_opt(a, "load"))
}

/// The `INFO replication` fields.
pub fn info_fields(shared: &Shared) -> Vec<(String, String)> {
    let repl = &shared.repl;
    let mut f: Vec<(String, String)> = Vec::new();
    let mut add = |k: &str, v: String| f.push((k.to_string(), v));
    let master = lock(&repl.master).clone();
    add("role", if master.is_some() { "slave" } else { "master" }.into());
    if let Some(m) = &master {
        let l = repl.link();
        let now = unix_now();
        add("master_host", m.host.clone());
        add("master_port", m.port.to_string());
        add("master_link_status", if l.state == LinkState::Connected { "up" } else { "down" }.into());
        let io = if l.state == LinkState::Connected { now.saturating_sub(l.last_io) as i64 } else { -1 };
        add("master_last_io_seconds_ago", io.to_string());
        add("master_sync_in_progress", u8::from(l.state == LinkState::Sync).to_string());
        let (read, done) = if l.offset >= 0 { (l.read_offset, l.offset) } else { (1, 1) };
        add("slave_read_repl_offset", read.to_string());
        add("slave_repl_offset", done.to_string());
        if l.state != LinkState::Connected {
            let since = if l.down_since > 0 { now.saturating_sub(l.down_since) as i64 } else { -1 };
            add("master_link_down_since_seconds", since.to_string());
        }
        add("slave_priority", config_u64(shared, "replica-priority", 100).to_string());
        add("slave_read_only", u8::from(config_bool(shared, "replica-read-only", true)).to_string());
        add("replica_announced", u8::from(config_bool(shared, "replica-announced", true)).to_string());
    }
    let replicas = lock(&repl.replicas).clone();
    add("connected_slaves", replicas.len().to_string());
    let min = config_u64(shared, "min-replicas-to-write", 0);
    let lag = config_u64(shared, "min-replicas-max-lag", 10);
    if min > 0 && lag > 0 {
        add("min_slaves_good_slaves", repl.good_replicas(lag).to_string());
    }
    let now = unix_now();
    for (i, r) in replicas.iter().enumerate() {
        let state = *lock(&r.state);
        let lag = if state == "online" { now.saturating_sub(r.ack_time.load(Ordering::Relaxed)) } else { 0 };
        add(
            &format!("slave{i}"),
            format!("ip={},port={},state={state},offset={},lag={lag}", r.ip, r.port, r.ack.load(Ordering::Relaxed)),
        );
    }
    add("master_failover_state", failover::phase(shared).info_name().into());
    let ids = repl.ids();
    add("master_replid", ids.replid.clone());
    add("master_replid2", ids.replid2.clone());
    let feed = shared.ks.repl_feed();
    let b = feed.backlog();
    let exists = (feed.is_active() || b.end() > 0) && !repl.backlog_freed.load(Ordering::Relaxed);
    add("master_repl_offset", b.end().to_string());
    add("second_repl_offset", ids.second_offset.to_string());
    add("repl_backlog_active", u8::from(exists).to_string());
    add("repl_backlog_size", config_u64(shared, "repl-backlog-size", 1 << 20).to_string());
    add("repl_backlog_first_byte_offset", if exists { (b.start() + 1).to_string() } else { "0".into() });
    add("repl_backlog_histlen", (b.end() - b.start()).to_string());
    f
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::Harness;
    use crate::resp::Frame;
    use std::time::Duration;

    #[test]
    fn the_ping_period_mirror_follows_config_set() {
        let mut h = Harness::new();
        assert_eq!(h.shared.repl.ping_period(), Duration::from_secs(10));
        assert_eq!(h.run(&["CONFIG", "SET", "repl-ping-replica-period", "3"]), Frame::ok());
        assert_eq!(h.shared.repl.ping_period(), Duration::from_secs(3));
        assert!(matches!(h.run(&["CONFIG", "SET", "repl-ping-replica-period", "0"]), Frame::Error(_)));
        assert_eq!(h.shared.repl.ping_period(), Duration::from_secs(3));
    }
}
