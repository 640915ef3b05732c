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

use crate::config::Config;
use crate::db::{DEFAULT_STRIPES, Keyspace};

/// Everything the connections share.
pub struct Shared {
    pub ks: Keyspace,
    pub config: RwLock<Config>,
    pub stats: Stats,
    pub clients: ClientRegistry,
    pub started: Instant,
    /// Unix time (s) of the last successful save (LASTSAVE): start time, then each AOF rewrite.
    pub last_save_unix: AtomicU64,
    /// Set when a SHUTDOWN was requested; the accept loop watches it.
    pub shutdown_requested: AtomicBool,
    /// Woken when a shutdown is requested.
    pub shutdown_notify: tokio::sync::Notify,
    /// Turns true when the server starts shutting down: every connection watches it, finishes the
    /// batch it is executing, and closes.
    pub shutdown_watch: tokio::sync::watch::Sender<bool>,
    /// The process's resident set size in bytes, sampled by [`crate::memory`] (0 = not sampled).
    pub used_memory: AtomicU64,
    /// `maxmemory`, mirrored from the configuration so that commands check it without a lock.
    pub maxmemory: AtomicU64,
}

impl Shared {
    pub fn new(config: Config) -> Arc<Shared> {
        let ks = Keyspace::new(config.databases, DEFAULT_STRIPES);
        let maxmemory = AtomicU64::new(config.maxmemory);
        Arc::new(Shared {
            ks,
            config: RwLock::new(config),
            stats: Stats::default(),
            clients: ClientRegistry::default(),
            started: Instant::now(),
            last_save_unix: AtomicU64::new(unix_secs()),
            shutdown_requested: AtomicBool::new(false),
            shutdown_notify: tokio::sync::Notify::new(),
            shutdown_watch: tokio::sync::watch::Sender::new(false),
            used_memory: AtomicU64::new(0),
            maxmemory,
        })
    }

    /// A read view of the configuration.
    pub fn config(&self) -> std::sync::RwLockReadGuard<'_, Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Copy the settings that commands check on every call into their atomic mirrors (after
    /// startup and each CONFIG SET).
    pub fn sync_config_mirrors(&self, cfg: &Config) {
        self.maxmemory.store(cfg.maxmemory, Ordering::Relaxed);
    }

    /// Ask the server to shut down (SHUTDOWN, signals).
    pub fn request_shutdown(&self) {
        self.shutdown_requested.store(true, Ordering::SeqCst);
        self.shutdown_watch.send_replace(true);
        self.shutdown_notify.notify_waiters();
        self.shutdown_notify.notify_one();
    }
}

pub fn unix_secs() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Counters reported by INFO stats. Relaxed: they order nothing.
#[derive(Default)]
pub struct Stats {
    pub commands_processed: AtomicU64,
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    /// `Keyspace::expired_keys()` at the last CONFIG RESETSTAT (INFO reports the difference).
    pub expired_keys_base: AtomicU64,
    /// Error replies sent, by their code word (`ERR`, `WRONGTYPE`): INFO errorstats.
    pub error_replies: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Count one error reply under its code word (the text up to the first space).
    pub fn record_error(&self, text: &[u8]) {
        let code = text.split(|&b| b == b' ').next().unwrap_or_default();
        let code = String::from_utf8_lossy(code).into_owned();
        *self.error_replies.lock().unwrap_or_else(|e| e.into_inner()).entry(code).or_insert(0) += 1;
    }

    /// CONFIG RESETSTAT: zero the counters; `expired_now` is the keyspace's current expired count.
    pub fn reset(&self, expired_now: u64) {
        for c in [
            &self.commands_processed,
            &self.connections_received,
            &self.rejected_connections,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.net_input_bytes,
            &self.net_output_bytes,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.expired_keys_base.store(expired_now, Ordering::Relaxed);
        self.error_replies.lock().unwrap_or_else(|e| e.into_inner()).clear();
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
    pub query_buf: AtomicUsize,
    pub resp: AtomicUsize,
    /// Set by CLIENT KILL (later) or shutdown: the task closes the connection.
    pub kill: AtomicBool,
    /// Set while the client waits in a blocking command (CLIENT LIST `flags=b`).
    pub blocked: AtomicBool,
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
            resp: AtomicUsize::new(2),
            kill: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
        });
        self.map.lock().unwrap_or_else(|e| e.into_inner()).insert(id, info.clone());
        info
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
