//! Server-wide shared state that commands read and write: the keyspace, the runtime configuration,
//! counters, and the registry of connected clients.
//!
//! The configuration and the client registry use `std` locks directly: they are not part of any
//! protocol that orders writes against the AOF, so loom has nothing to check there.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use crossbeam::utils::CachePadded;

use crate::config::Config;
use crate::db::{DEFAULT_STRIPES, Keyspace};

/// Everything the connections share.
pub struct Shared {
    pub ks: Keyspace,
    pub config: RwLock<Config>,
    pub stats: Stats,
    /// Per-command statistics, the slow log and the latency monitor.
    pub monitor: crate::monitor::Monitor,
    pub clients: ClientRegistry,
    pub started: Instant,
    /// Unix time (s) of the last successful save (LASTSAVE): start time, then each AOF rewrite.
    pub last_save_unix: Arc<AtomicU64>,
    /// RDB saves: BGSAVE state, the change count, the schedules (see `rdb::persist`).
    pub rdb: Arc<crate::rdb::persist::RdbState>,
    /// Set when a SHUTDOWN was requested; the accept loop watches it.
    pub shutdown_requested: AtomicBool,
    /// Woken when a shutdown is requested.
    pub shutdown_notify: tokio::sync::Notify,
    /// Turns true when the server starts shutting down: every connection watches it, finishes the
    /// batch it is executing, and closes.
    pub shutdown_watch: tokio::sync::watch::Sender<bool>,
    /// Used memory when the server state was created (INFO `used_memory_startup`).
    pub used_memory_startup: u64,
    /// The process's resident set size in bytes, sampled by [`crate::memory`] (0 = not sampled).
    pub used_memory: AtomicU64,
    /// `maxmemory`, mirrored from the configuration so that commands check it without a lock.
    pub maxmemory: AtomicU64,
    /// The limits every connection checks on every read, mirrored likewise.
    pub conn_limits: ConnLimitMirror,
    /// Listens on a new `port`/`bind` and stops the old listeners (CONFIG SET port/bind), installed by
    /// the server layer once it listens: commands cannot reach sockets themselves.
    pub rebind: std::sync::OnceLock<Rebind>,
    /// Lua scripting: the script cache, function libraries, VM pool, running scripts.
    pub scripting: crate::script::Scripting,
    /// Every pub/sub subscription (and where keyspace events are published).
    pub pubsub: Arc<crate::pubsub::Hub>,
    /// CLIENT PAUSE: the pause in force, and the postponed clients' wake-up.
    pub pause: crate::pause::Pause,
    /// MONITOR: the connections that see every command (the keyspace holds it too).
    pub monitors: Arc<crate::monitor::feed::Monitors>,
    /// Replication: ids, replicas, the link to our primary (the feed is in the keyspace).
    pub repl: crate::repl::Repl,
}

/// See [`Shared::rebind`]: Ok once the new listeners accept, else the reason (old ones kept).
pub type Rebind = Box<dyn Fn(&Config) -> Result<(), String> + Send + Sync>;

/// The settings a connection checks on every read batch: plain values for its loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// `timeout` in seconds (0 = none).
    pub idle_timeout_s: u64,
    pub max_bulk: usize,
    pub max_query: usize,
    /// `client-output-buffer-limit normal`: hard bytes, soft bytes, soft seconds.
    pub out_limit: (u64, u64, u64),
}

impl ConnLimits {
    pub fn of(cfg: &Config) -> ConnLimits {
        ConnLimits {
            idle_timeout_s: cfg.timeout_s,
            max_bulk: cfg.proto_max_bulk_len,
            max_query: cfg.client_query_buffer_limit,
            out_limit: cfg.client_output_buffer_limit[0],
        }
    }
}

/// [`ConnLimits`] in atomics, so that connections read them without touching the configuration's
/// lock (a shared read lock is an atomic read-modify-write every core would fight over). Relaxed:
/// a connection that sees a CONFIG SET one batch late is fine.
#[derive(Default)]
pub struct ConnLimitMirror {
    idle_timeout_s: AtomicU64,
    max_bulk: AtomicUsize,
    max_query: AtomicUsize,
    out_hard: AtomicU64,
    out_soft: AtomicU64,
    out_secs: AtomicU64,
}

impl ConnLimitMirror {
    pub fn store(&self, l: ConnLimits) {
        self.idle_timeout_s.store(l.idle_timeout_s, Ordering::Relaxed);
        self.max_bulk.store(l.max_bulk, Ordering::Relaxed);
        self.max_query.store(l.max_query, Ordering::Relaxed);
        self.out_hard.store(l.out_limit.0, Ordering::Relaxed);
        self.out_soft.store(l.out_limit.1, Ordering::Relaxed);
        self.out_secs.store(l.out_limit.2, Ordering::Relaxed);
    }

    pub fn load(&self) -> ConnLimits {
        ConnLimits {
            idle_timeout_s: self.idle_timeout_s.load(Ordering::Relaxed),
            max_bulk: self.max_bulk.load(Ordering::Relaxed),
            max_query: self.max_query.load(Ordering::Relaxed),
            out_limit: (
                self.out_hard.load(Ordering::Relaxed),
                self.out_soft.load(Ordering::Relaxed),
                self.out_secs.load(Ordering::Relaxed),
            ),
        }
    }
}

impl Shared {
    pub fn new(config: Config) -> Arc<Shared> {
        let ks = Keyspace::new(config.databases, DEFAULT_STRIPES);
        let maxmemory = AtomicU64::new(config.maxmemory);
        let conn_limits = ConnLimitMirror::default();
        conn_limits.store(ConnLimits::of(&config));
        let monitor = crate::monitor::Monitor::default();
        monitor.sync_config(&config);
        let scripting = crate::script::Scripting::default();
        let busy_ms = config.get("busy-reply-threshold").and_then(|v| v.parse::<u64>().ok()).unwrap_or(5000);
        scripting.busy_threshold_ms.store(busy_ms, Ordering::Relaxed);
        let monitors = Arc::new(crate::monitor::feed::Monitors::default());
        ks.attach_monitors(monitors.clone());
        let pubsub = Arc::new(crate::pubsub::Hub::default());
        ks.events().attach(pubsub.clone());
        pubsub.set_limits(config.client_output_buffer_limit[2]);
        ks.events().set_flags(notify_flags(&config));
        sync_tracking(&ks, &config);
        ks.evictor().configure(&config);
        let last_save_unix = Arc::new(AtomicU64::new(unix_secs()));
        let rdb = Arc::new(crate::rdb::persist::RdbState::new(last_save_unix.clone()));
        let shared = Arc::new(Shared {
            ks,
            config: RwLock::new(config),
            stats: Stats::default(),
            monitor,
            clients: ClientRegistry::default(),
            started: Instant::now(),
            last_save_unix,
            rdb,
            shutdown_requested: AtomicBool::new(false),
            shutdown_notify: tokio::sync::Notify::new(),
            shutdown_watch: tokio::sync::watch::Sender::new(false),
            used_memory_startup: crate::memory::used_bytes(),
            used_memory: AtomicU64::new(0),
            maxmemory,
            conn_limits,
            rebind: std::sync::OnceLock::new(),
            scripting,
            pubsub,
            pause: crate::pause::Pause::default(),
            monitors,
            repl: crate::repl::Repl::default(),
        });
        shared.repl.attach(&shared);
        shared.repl.sync_config(&shared.config());
        shared
    }

    /// A read view of the configuration.
    pub fn config(&self) -> std::sync::RwLockReadGuard<'_, Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Copy the settings that commands check on every call into their atomic mirrors (after
    /// startup and each CONFIG SET).
    pub fn sync_config_mirrors(&self, cfg: &Config) {
        self.maxmemory.store(cfg.maxmemory, Ordering::Relaxed);
        self.ks.evictor().configure(cfg);
        self.conn_limits.store(ConnLimits::of(cfg));
        self.monitor.sync_config(cfg);
        let busy_ms = cfg.get("busy-reply-threshold").and_then(|v| v.parse::<u64>().ok()).unwrap_or(5000);
        self.scripting.busy_threshold_ms.store(busy_ms, Ordering::Relaxed);
        self.pubsub.set_limits(cfg.client_output_buffer_limit[2]);
        self.ks.events().set_flags(notify_flags(cfg));
        sync_tracking(&self.ks, cfg);
        self.repl.sync_config(cfg);
        crate::workers::set_in_use(cfg.worker_threads_in_use);
        crate::workers::set_spin_us(cfg.worker_spin_us);
        if let Some(aof) = self.ks.aof() {
            aof.set_fsync(cfg.appendfsync);
        }
    }

    /// Ask the server to shut down (SHUTDOWN, signals).
    pub fn request_shutdown(&self) {
        self.shutdown_requested.store(true, Ordering::SeqCst);
        self.scripting.stop_all();
        self.shutdown_watch.send_replace(true);
        // After the flag: a connection registered after this walk sees the flag (see `connection`).
        for c in self.clients.all() {
            c.closing.notify_one();
        }
        self.shutdown_notify.notify_waiters();
        self.shutdown_notify.notify_one();
    }
}

/// Mirror `tracking-table-max-keys` and the output limits its invalidations are delivered under.
fn sync_tracking(ks: &Keyspace, cfg: &Config) {
    let max_keys = cfg.get("tracking-table-max-keys").and_then(|v| v.parse::<u64>().ok()).unwrap_or(1_000_000);
    ks.tracking().set_config(max_keys, cfg.client_output_buffer_limit[0], cfg.client_output_buffer_limit[2]);
}

/// The class bits of the configured `notify-keyspace-events`.
fn notify_flags(cfg: &Config) -> u32 {
    crate::pubsub::notify::flags_of(&cfg.get("notify-keyspace-events").unwrap_or_default())
}

pub fn unix_secs() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

const COUNTER_SHARDS: usize = 8;

/// A statistics counter that every core bumps on every command: one cache-padded atomic per
/// thread group, summed when read (INFO), so that two cores never fight over one cache line.
/// Relaxed: counters order nothing. The shards live on the heap: a dozen counters inline would make
/// `Shared` over 10 KB, built on the stack of whoever creates it (a loom model's thread has 32 KB).
#[derive(Default)]
pub struct Counter {
    shards: Box<[CachePadded<AtomicU64>; COUNTER_SHARDS]>,
}

impl Counter {
    pub fn add(&self, n: u64) {
        self.shards[crate::util::thread_slot() % COUNTER_SHARDS].fetch_add(n, Ordering::Relaxed);
    }

    /// The total.
    pub fn get(&self) -> u64 {
        self.shards.iter().fold(0u64, |sum, s| sum.wrapping_add(s.load(Ordering::Relaxed)))
    }

    /// Back to 0 (CONFIG RESETSTAT).
    pub fn reset(&self) {
        for s in self.shards.iter() {
            s.store(0, Ordering::Relaxed);
        }
    }
}

/// One thread shard of the error replies counted by code word.
type ErrorCounts = CachePadded<Mutex<BTreeMap<String, u64>>>;

/// Counters reported by INFO stats. Relaxed: they order nothing.
#[derive(Default)]
pub struct Stats {
    pub connections_received: Counter,
    pub rejected_connections: Counter,
    pub keyspace_hits: Counter,
    pub keyspace_misses: Counter,
    pub net_input_bytes: Counter,
    /// Shared with the replicas' outlets (bytes written to a replica by whoever appends the stream).
    pub net_output_bytes: std::sync::Arc<Counter>,
    /// Socket reads and writes that moved bytes (INFO `total_reads_processed`, `..._writes_...`).
    pub reads_processed: Counter,
    pub writes_processed: Counter,
    /// `Keyspace::expired_keys()` at the last CONFIG RESETSTAT (INFO reports the difference).
    pub expired_keys_base: AtomicU64,
    /// Error replies sent, by their code word (`ERR`, `WRONGTYPE`): INFO errorstats. One map per
    /// thread shard, so that clients erring on several cores never wait for one lock.
    error_replies: Box<[ErrorCounts; COUNTER_SHARDS]>,
}

impl Stats {
    pub fn add(counter: &Counter, n: u64) {
        counter.add(n);
    }

    /// Count one error reply under its code word (the text up to the first space).
    pub fn record_error(&self, text: &[u8]) {
        let code = text.split(|&b| b == b' ').next().unwrap_or_default();
        let shard = &self.error_replies[crate::util::thread_slot() % COUNTER_SHARDS];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&*String::from_utf8_lossy(code)) {
            Some(n) => *n += 1,
            None => {
                map.insert(String::from_utf8_lossy(code).into_owned(), 1);
            }
        }
    }

    /// Error replies by code word, summed over the shards, in code order.
    pub fn error_counts(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        for shard in self.error_replies.iter() {
            for (code, n) in shard.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                *all.entry(code.clone()).or_insert(0) += n;
            }
        }
        all
    }

    /// CONFIG RESETSTAT: zero the counters; `expired_now` is the keyspace's current expired count.
    pub fn reset(&self, expired_now: u64) {
        for c in [
            &self.connections_received,
            &self.rejected_connections,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.net_input_bytes,
            &*self.net_output_bytes,
            &self.reads_processed,
            &self.writes_processed,
        ] {
            c.reset();
        }
        self.expired_keys_base.store(expired_now, Ordering::Relaxed);
        for shard in self.error_replies.iter() {
            shard.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }
}

/// What CLIENT LIST/INFO show about one connection; updated by its task.
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub created: Instant,
    pub name: Mutex<Option<Bytes>>,
    pub db: AtomicUsize,
    /// Unix time (ms) of the client's last command (CLIENT LIST `idle=`).
    pub last_interaction_ms: AtomicU64,
    /// Name of the last command run (CLIENT LIST `cmd=`): `NULL`, `get`, `client|list`.
    pub last_cmd: Mutex<&'static str>,
    /// The socket's file descriptor (CLIENT LIST `fd=`), -1 until the accept loop sets it.
    pub fd: AtomicI64,
    /// Bytes in the query buffer and room left in it (CLIENT LIST `qbuf=`, `qbuf-free=`): set at
    /// each read (the batch being run included) and after the batch (what is left unparsed).
    pub query_buf: AtomicUsize,
    pub query_buf_free: AtomicUsize,
    /// Bytes of the arguments of the command being run, 0 between batches (`argv-mem=`).
    pub argv_mem: AtomicUsize,
    /// Commands queued since MULTI, -1 outside a transaction (`multi=`), and their bytes.
    pub multi: AtomicI64,
    pub multi_mem: AtomicUsize,
    /// Reply bytes waiting to be written to the socket (`obl=`, `oll=`, `omem=`, `events=rw`).
    pub reply_pending: AtomicUsize,
    pub resp: AtomicUsize,
    /// Notified when the server shuts down: the task finishes its batch and closes (one `Notify`
    /// per connection: nothing shared that every connection's loop would poll).
    pub closing: tokio::sync::Notify,
    /// Set while the client waits in a blocking command (CLIENT LIST `flags=b`).
    pub blocked: AtomicBool,
    /// Channels, patterns and shard channels subscribed (CLIENT LIST `sub=`, `psub=`, `ssub=`).
    pub sub: AtomicUsize,
    pub psub: AtomicUsize,
    pub ssub: AtomicUsize,
    /// CLIENT NO-EVICT on (`flags=e`).
    pub no_evict: AtomicBool,
    /// CLIENT TRACKING state that other clients read (flags, redirect, where its pushes go).
    pub tracking: crate::tracking::Peer,
    /// What a blocked client waits on, for CLIENT UNBLOCK (set by the connection while it waits).
    pub block_slot: Mutex<BlockSlot>,
    /// In MONITOR mode (`flags=O`).
    pub monitor: AtomicBool,
}

/// How CLIENT UNBLOCK ends a wait: as if the timeout passed, or with the UNBLOCKED error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnblockReason {
    Timeout,
    Error,
}

/// A blocked client's waiter while it waits, and why CLIENT UNBLOCK ended the wait.
#[derive(Default)]
pub struct BlockSlot {
    pub waiter: Option<Arc<crate::db::blocking::Waiter>>,
    pub unblocked: Option<UnblockReason>,
}

/// The connected clients, by id.
#[derive(Default)]
pub struct ClientRegistry {
    next_id: AtomicU64,
    pub map: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
}

impl ClientRegistry {
    /// Register a new connection and return its info.
    pub fn register(&self, addr: String, laddr: String) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created: now,
            name: Mutex::new(None),
            db: AtomicUsize::new(0),
            last_interaction_ms: AtomicU64::new(crate::util::now_ms()),
            last_cmd: Mutex::new("NULL"),
            fd: AtomicI64::new(-1),
            query_buf: AtomicUsize::new(0),
            query_buf_free: AtomicUsize::new(0),
            argv_mem: AtomicUsize::new(0),
            multi: AtomicI64::new(-1),
            multi_mem: AtomicUsize::new(0),
            reply_pending: AtomicUsize::new(0),
            resp: AtomicUsize::new(2),
            closing: tokio::sync::Notify::new(),
            blocked: AtomicBool::new(false),
            sub: AtomicUsize::new(0),
            psub: AtomicUsize::new(0),
            ssub: AtomicUsize::new(0),
            no_evict: AtomicBool::new(false),
            tracking: Default::default(),
            block_slot: Mutex::new(BlockSlot::default()),
            monitor: AtomicBool::new(false),
        });
        self.map.lock().unwrap_or_else(|e| e.into_inner()).insert(id, info.clone());
        info
    }

    /// The connected client with this id.
    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned()
    }

    pub fn unregister(&self, id: u64) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    pub fn count(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn error_replies_from_many_threads_sum_by_code_and_reset() {
        let stats = Stats::default();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        stats.record_error(b"ERR value is not an integer or out of range");
                        stats.record_error(b"WRONGTYPE Operation against a key holding the wrong kind of value");
                    }
                });
            }
        });
        stats.record_error(b"NOAUTH");
        let counts: Vec<(String, u64)> = stats.error_counts().into_iter().collect();
        assert_eq!(counts, [("ERR".to_string(), 400), ("NOAUTH".to_string(), 1), ("WRONGTYPE".to_string(), 400)]);
        stats.reset(0);
        assert!(stats.error_counts().is_empty());
    }
}
