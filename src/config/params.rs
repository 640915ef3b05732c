//! The parameter table: every parameter Redis 7.0.15 knows (its `static_configs[]` in `config.c`),
//! with its alias, flags, type, default and bounds, plus flurrydb's own. A row is data: a typed
//! parameter that the server reads binds a [`Field`] of [`Config`]; every other row is stored as
//! canonical text in [`Config::generic`]. Rows flagged [`INERT`] are accepted, stored and reported
//! but change nothing yet (their feature does not exist here): startup names those set to a
//! non-default value, and README's "Configuration" section lists them.

use super::Config;
use super::special;
use super::value::{self, Kind, Unit};
use crate::aof::FsyncPolicy;

/// CONFIG SET refuses it (read at startup only).
pub const IMMUTABLE: u8 = 1;
/// Takes several arguments (`save 900 1 300 10`); one argument is split at spaces.
pub const MULTI: u8 = 2;
/// Only an exact name finds it: CONFIG GET patterns skip it (Redis's HIDDEN_CONFIG, and flurrydb's own).
pub const HIDDEN: u8 = 4;
/// Accepted and reported, but its feature does not exist in flurrydb yet.
pub const INERT: u8 = 8;
/// CONFIG SET refuses it unless `enable-protected-configs` allows it.
pub const PROTECTED: u8 = 16;

/// A typed field of [`Config`] that a row reads and writes (the text is the row's canonical text).
#[derive(Clone, Copy)]
pub struct Field {
    pub set: fn(&mut Config, &str),
    pub get: fn(&Config) -> String,
}

/// One configuration parameter.
#[derive(Clone, Copy)]
pub struct Param {
    /// Lowercase name, as CONFIG GET reports it.
    pub name: &'static str,
    /// Redis's other name for it (`slaveof`, `hash-max-ziplist-entries`), listed by CONFIG GET too.
    pub alias: Option<&'static str>,
    pub flags: u8,
    pub kind: Kind,
    /// Where the value lives when the server reads it; `None`: in [`Config::generic`].
    pub field: Option<Field>,
}

impl Param {
    pub const fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    const fn alias(mut self, alias: &'static str) -> Param {
        self.alias = Some(alias);
        self
    }

    const fn field(mut self, set: fn(&mut Config, &str), get: fn(&Config) -> String) -> Param {
        self.field = Some(Field { set, get });
        self
    }
}

const fn row(name: &'static str, flags: u8, kind: Kind) -> Param {
    Param { name, alias: None, flags, kind, field: None }
}

const fn boolean(name: &'static str, default: bool, flags: u8) -> Param {
    row(name, flags, Kind::Bool { default })
}

const fn int(name: &'static str, min: i128, max: i128, default: i128, flags: u8) -> Param {
    row(name, flags, Kind::Int { min, max, default, unit: Unit::Plain })
}

const fn mem(name: &'static str, min: i128, max: i128, default: i128, flags: u8) -> Param {
    row(name, flags, Kind::Int { min, max, default, unit: Unit::Memory })
}

const fn enumeration(name: &'static str, values: &'static [&'static str], default: &'static str, flags: u8) -> Param {
    row(name, flags, Kind::Enum { values, default })
}

const fn string(name: &'static str, default: &'static str, flags: u8) -> Param {
    row(name, flags, Kind::Str { default, check: None })
}

const fn checked(name: &'static str, default: &'static str, check: value::StrCheck, flags: u8) -> Param {
    row(name, flags, Kind::Str { default, check: Some(check) })
}

const fn special(
    name: &'static str,
    default: &'static str,
    parse: fn(&Config, &[String]) -> Result<String, String>,
    flags: u8,
) -> Param {
    row(name, flags, Kind::Special { default, parse })
}

const I32: i128 = i32::MAX as i128;
const I32_MIN: i128 = i32::MIN as i128;
const I64: i128 = i64::MAX as i128;
const U32: i128 = u32::MAX as i128;
const U64: i128 = u64::MAX as i128;
const MB: i128 = 1 << 20;
const RO: u8 = IMMUTABLE | INERT;
const NO: u8 = INERT;
const SHUTDOWN_FLAGS: &[&str] = &["default", "save", "nosave", "now", "force"];
const PROTECTED_ACTION: &[&str] = &["no", "yes", "local"];
const MAXMEMORY_POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// Bind a row to a numeric field (the canonical text is always a valid number).
macro_rules! num {
    ($row:expr, $f:ident) => {
        $row.field(|c, v| c.$f = v.parse().unwrap_or_default(), |c| c.$f.to_string())
    };
}
/// Bind a row to a `bool` field.
macro_rules! yes_no {
    ($row:expr, $f:ident) => {
        $row.field(|c, v| c.$f = v == "yes", |c| value::yes_no_text(c.$f).to_string())
    };
}
/// Bind a row to a `String` field.
macro_rules! text {
    ($row:expr, $f:ident) => {
        $row.field(|c, v| c.$f = v.to_string(), |c| c.$f.clone())
    };
}

/// `activedefrag`: there is no defragmenting allocator here, so `yes` is refused as Redis built
/// without jemalloc refuses it.
fn parse_activedefrag(_: &Config, args: &[String]) -> Result<String, String> {
    let [v] = args else { return Err("wrong number of arguments".into()) };
    match value::parse_yes_no(v)? {
        false => Ok("no".into()),
        true => Err("Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified \
                     Jemalloc like the one shipped by default with the Redis source distribution"
            .into()),
    }
}

/// `oom-score-adj`: `relative` is `yes`'s other name.
fn parse_oom_score_adj(_: &Config, args: &[String]) -> Result<String, String> {
    let [v] = args else { return Err("wrong number of arguments".into()) };
    match v.to_ascii_lowercase().as_str() {
        "relative" | "yes" => Ok("yes".into()),
        v @ ("no" | "absolute") => Ok(v.into()),
        _ => Err("argument(s) must be one of the following: no, yes, relative, absolute".into()),
    }
}

/// Every parameter. CONFIG GET * lists the names and aliases of the rows not [`HIDDEN`], in this order.
pub const PARAM_TABLE: &[Param] = &[
    // ---- Parameters the server reads ------------------------------------------------------------
    num!(int("port", 0, 65535, 6379, 0), port),
    special("bind", "127.0.0.1", special::parse_bind, MULTI).field(
        |c, v| c.bind = v.split(' ').filter(|a| !a.is_empty()).map(String::from).collect(),
        |c| c.bind.join(" "),
    ),
    special("dir", ".", special::parse_dir, PROTECTED).field(
        |c, v| c.dir = v.into(),
        |c| std::fs::canonicalize(&c.dir).unwrap_or_else(|_| c.dir.clone()).display().to_string(),
    ),
    yes_no!(boolean("appendonly", false, 0), appendonly),
    text!(checked("appendfilename", "appendonly.aof", special::check_appendfilename, IMMUTABLE), appendfilename),
    enumeration("appendfsync", &["everysec", "always", "no"], "everysec", 0)
        .field(|c, v| c.appendfsync = v.parse().unwrap_or(FsyncPolicy::EverySec), |c| c.appendfsync.to_string()),
    num!(int("databases", 1, I32, 16, IMMUTABLE), databases),
    text!(special("loglevel", "notice", special::parse_loglevel, 0), loglevel),
    text!(string("logfile", "", IMMUTABLE), logfile),
    text!(string("requirepass", "", 0), requirepass),
    num!(int("maxclients", 1, U32, 10000, 0), maxclients),
    num!(int("timeout", 0, I32, 0, 0), timeout_s),
    num!(int("tcp-keepalive", 0, I32, 300, 0), tcp_keepalive_s),
    num!(mem("proto-max-bulk-len", MB, I64, 512 * MB, 0), proto_max_bulk_len),
    num!(mem("client-query-buffer-limit", MB, I64, 1024 * MB, 0), client_query_buffer_limit),
    special(
        "client-output-buffer-limit",
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        special::parse_output_buffer_limits,
        MULTI,
    )
    .field(set_output_buffer_limits, |c| special::output_buffer_limits_text(&c.client_output_buffer_limit)),
    num!(mem("maxmemory", 0, U64, 0, 0), maxmemory),
    text!(enumeration("maxmemory-policy", MAXMEMORY_POLICIES, "noeviction", 0), maxmemory_policy),
    yes_no!(boolean("protected-mode", true, 0), protected_mode),
    // Redis accepts any hz and caps it to 1..=500.
    int("hz", 0, I32, 10, 0).field(|c, v| c.hz = v.parse::<u32>().unwrap_or(500).clamp(1, 500), |c| c.hz.to_string()),
    yes_no!(boolean("aof-load-truncated", true, 0), aof_load_truncated),
    num!(int("auto-aof-rewrite-percentage", 0, I32, 100, 0), auto_aof_rewrite_percentage),
    num!(mem("auto-aof-rewrite-min-size", 0, I64, 64 * MB, 0), auto_aof_rewrite_min_size),
    // flurrydb's own (exact-name lookups only, so CONFIG GET * lists what Redis lists).
    mem("aof-prealloc-bytes", 0, I64, 64 * MB, IMMUTABLE | HIDDEN).field(
        |c, v| c.aof_prealloc_bytes = v.parse::<u64>().unwrap_or(0).max(4096),
        |c| c.aof_prealloc_bytes.to_string(),
    ),
    num!(int("worker-threads", 0, 1024, 0, IMMUTABLE | HIDDEN), worker_threads),
    // 0: the load chooses how many worker runtimes are in use (see `workers`); n: fixed.
    num!(int("worker-threads-in-use", 0, 1024, 0, HIDDEN), worker_threads_in_use),
    // How long a worker whose last wait was short spins before it parks (see `workers`); 0: never.
    num!(int("worker-spin-us", 0, 1_000_000, crate::workers::DEFAULT_SPIN_US as i128, HIDDEN), worker_spin_us),
    // Read by SLOWLOG, LATENCY and INFO latencystats (src/monitor).
    num!(int("slowlog-log-slower-than", -1, I64, 10000, 0), slowlog_log_slower_than),
    num!(int("slowlog-max-len", 0, I64, 128, 0), slowlog_max_len),
    num!(int("latency-monitor-threshold", 0, I64, 0, 0), latency_monitor_threshold),
    yes_no!(boolean("latency-tracking", true, 0), latency_tracking),
    special("latency-tracking-info-percentiles", "50 99 99.9", special::parse_percentiles, MULTI).field(
        |c, v| c.latency_tracking_info_percentiles = v.split(' ').filter_map(|p| p.parse().ok()).collect(),
        |c| {
            c.latency_tracking_info_percentiles
                .iter()
                .map(|p| special::percentile_text(*p))
                .collect::<Vec<_>>()
                .join(" ")
        },
    ),
    // RDB save points (rdb::persist); none by default here (see README "Known differences").
    special("save", "", special::parse_save, MULTI).field(|c, v| c.save = v.into(), |c| c.save.clone()),
    // ---- Booleans -------------------------------------------------------------------------------
    boolean("rdbchecksum", true, IMMUTABLE),
    boolean("daemonize", false, RO),
    boolean("io-threads-do-reads", false, RO),
    boolean("always-show-logo", false, RO),
    boolean("rdbcompression", true, 0),
    boolean("rdb-del-sync-files", false, NO),
    boolean("activerehashing", true, NO),
    boolean("stop-writes-on-bgsave-error", true, 0),
    boolean("set-proc-title", true, RO),
    boolean("dynamic-hz", true, NO),
    boolean("lazyfree-lazy-eviction", false, NO),
    boolean("lazyfree-lazy-expire", false, NO),
    boolean("lazyfree-lazy-server-del", false, NO),
    boolean("lazyfree-lazy-user-del", false, NO),
    boolean("lazyfree-lazy-user-flush", false, NO),
    boolean("repl-disable-tcp-nodelay", false, NO),
    boolean("repl-diskless-sync", true, 0),
    boolean("aof-rewrite-incremental-fsync", true, NO),
    boolean("no-appendfsync-on-rewrite", false, NO),
    boolean("cluster-require-full-coverage", true, NO),
    boolean("rdb-save-incremental-fsync", true, NO),
    boolean("aof-use-rdb-preamble", true, 0),
    boolean("aof-timestamp-enabled", false, NO),
    boolean("cluster-replica-no-failover", false, NO).alias("cluster-slave-no-failover"),
    boolean("replica-lazy-flush", false, NO).alias("slave-lazy-flush"),
    boolean("replica-serve-stale-data", true, 0).alias("slave-serve-stale-data"),
    boolean("replica-read-only", true, 0).alias("slave-read-only"),
    boolean("replica-ignore-maxmemory", true, NO).alias("slave-ignore-maxmemory"),
    boolean("jemalloc-bg-thread", true, NO),
    special("activedefrag", "no", parse_activedefrag, NO),
    boolean("syslog-enabled", false, RO),
    boolean("cluster-enabled", false, RO),
    boolean("cluster-allow-reads-when-down", false, NO),
    boolean("cluster-allow-pubsubshard-when-down", true, NO),
    boolean("crash-log-enabled", true, NO),
    boolean("crash-memcheck-enabled", true, NO),
    boolean("use-exit-on-panic", false, NO | HIDDEN),
    boolean("disable-thp", true, RO),
    boolean("cluster-allow-replica-migration", true, NO),
    boolean("replica-announced", true, 0),
    boolean("aof-disable-auto-gc", false, NO),
    boolean("replica-ignore-disk-write-errors", false, NO),
    boolean("tls-cluster", false, NO),
    boolean("tls-replication", false, NO),
    boolean("tls-prefer-server-ciphers", false, NO),
    boolean("tls-session-caching", true, NO),
    // ---- Strings --------------------------------------------------------------------------------
    string("aclfile", "", RO),
    string("unixsocket", "", RO),
    string("pidfile", "", IMMUTABLE),
    string("replica-announce-ip", "", 0).alias("slave-announce-ip"),
    string("masteruser", "", 0),
    string("masterauth", "", 0),
    string("cluster-announce-ip", "", NO),
    string("cluster-config-file", "nodes.conf", RO),
    checked("cluster-announce-hostname", "", special::check_hostname, NO),
    string("syslog-ident", "redis", RO),
    checked("dbfilename", "dump.rdb", special::check_dbfilename, PROTECTED),
    checked("appenddirname", "appendonlydir", special::check_appenddirname, RO),
    string("server_cpulist", "", RO),
    string("bio_cpulist", "", RO),
    string("aof_rewrite_cpulist", "", RO),
    string("bgsave_cpulist", "", RO),
    string("ignore-warnings", "", NO),
    checked("proc-title-template", "{title} {listen-addr} {server-mode}", special::check_proc_title, NO),
    string("bind-source-addr", "", NO),
    string("tls-cert-file", "", NO),
    string("tls-key-file", "", NO),
    string("tls-key-file-pass", "", NO),
    string("tls-client-cert-file", "", NO),
    string("tls-client-key-file", "", NO),
    string("tls-client-key-file-pass", "", NO),
    string("tls-dh-params-file", "", NO),
    string("tls-ca-cert-file", "", NO),
    string("tls-ca-cert-dir", "", NO),
    string("tls-protocols", "", NO),
    string("tls-ciphers", "", NO),
    string("tls-ciphersuites", "", NO),
    // ---- Enumerations ---------------------------------------------------------------------------
    enumeration("supervised", &["upstart", "systemd", "auto", "no"], "no", RO),
    enumeration(
        "syslog-facility",
        &["user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"],
        "local0",
        RO,
    ),
    enumeration("repl-diskless-load", &["disabled", "on-empty-db", "swapdb"], "disabled", 0),
    special("oom-score-adj", "no", parse_oom_score_adj, NO),
    enumeration("acl-pubsub-default", &["allchannels", "resetchannels"], "resetchannels", NO),
    enumeration("sanitize-dump-payload", &["no", "yes", "clients"], "no", NO),
    enumeration("enable-protected-configs", PROTECTED_ACTION, "no", IMMUTABLE),
    enumeration("enable-debug-command", PROTECTED_ACTION, "no", RO),
    enumeration("enable-module-command", PROTECTED_ACTION, "no", RO),
    enumeration("cluster-preferred-endpoint-type", &["ip", "hostname", "unknown-endpoint"], "ip", NO),
    enumeration("propagation-error-behavior", &["ignore", "panic", "panic-on-replicas"], "ignore", NO),
    enumeration("shutdown-on-sigint", SHUTDOWN_FLAGS, "default", MULTI | NO),
    enumeration("shutdown-on-sigterm", SHUTDOWN_FLAGS, "default", MULTI | NO),
    enumeration("tls-auth-clients", &["no", "yes", "optional"], "yes", NO),
    // ---- Integers -------------------------------------------------------------------------------
    int("io-threads", 1, 128, 1, RO),
    int("cluster-replica-validity-factor", 0, I32, 10, NO).alias("cluster-slave-validity-factor"),
    num!(int("list-max-listpack-size", I32_MIN, I32, -2, 0), list_max_listpack_size).alias("list-max-ziplist-size"),
    int("cluster-migration-barrier", 0, I32, 1, NO),
    int("active-defrag-cycle-min", 1, 99, 1, NO),
    int("active-defrag-cycle-max", 1, 99, 25, NO),
    int("active-defrag-threshold-lower", 0, 1000, 10, NO),
    int("active-defrag-threshold-upper", 0, 1000, 100, NO),
    int("lfu-log-factor", 0, I32, 10, 0),
    int("lfu-decay-time", 0, I32, 1, 0),
    int("replica-priority", 0, I32, 100, 0).alias("slave-priority"),
    int("repl-diskless-sync-delay", 0, I32, 5, NO),
    int("maxmemory-samples", 1, I32, 5, 0),
    int("maxmemory-eviction-tenacity", 0, 100, 10, 0),
    int("replica-announce-port", 0, 65535, 0, 0).alias("slave-announce-port"),
    int("tcp-backlog", 0, I32, 511, RO),
    int("cluster-port", 0, 65535, 0, RO),
    int("cluster-announce-bus-port", 0, 65535, 0, NO),
    int("cluster-announce-port", 0, 65535, 0, NO),
    int("cluster-announce-tls-port", 0, 65535, 0, NO),
    int("repl-timeout", 1, I32, 60, 0),
    int("repl-ping-replica-period", 1, I32, 10, 0).alias("repl-ping-slave-period"),
    int("list-compress-depth", 0, I32, 0, NO),
    int("rdb-key-save-delay", I32_MIN, I32, 0, HIDDEN),
    int("key-load-delay", I32_MIN, I32, 0, HIDDEN),
    int("active-expire-effort", 1, 10, 1, NO),
    int("min-replicas-to-write", 0, I32, 0, 0).alias("min-slaves-to-write"),
    int("min-replicas-max-lag", 0, I32, 10, 0).alias("min-slaves-max-lag"),
    int("watchdog-period", 0, I32, 0, NO | HIDDEN),
    int("shutdown-timeout", 0, I32, 10, NO),
    int("repl-diskless-sync-max-replicas", 0, I32, 0, NO),
    row("unixsocketperm", RO, Kind::Int { min: 0, max: 0o777, default: 0, unit: Unit::Octal }),
    int("socket-mark-id", 0, U32, 0, RO),
    int("active-defrag-max-scan-fields", 1, I64, 1000, NO),
    int("acllog-max-len", 0, I64, 128, NO),
    int("busy-reply-threshold", 0, I64, 5000, 0).alias("lua-time-limit"),
    int("cluster-node-timeout", 0, I64, 15000, NO),
    num!(int("stream-node-max-entries", 0, I64, 100, 0), stream_node_max_entries),
    mem("repl-backlog-size", 1, I64, MB, 0),
    mem("cluster-link-sendbuf-limit", 0, U64, 0, NO),
    num!(int("hash-max-listpack-entries", 0, I64, 512, 0), hash_max_listpack_entries).alias("hash-max-ziplist-entries"),
    num!(int("set-max-intset-entries", 0, I64, 512, 0), set_max_intset_entries),
    num!(int("zset-max-listpack-entries", 0, I64, 128, 0), zset_max_listpack_entries).alias("zset-max-ziplist-entries"),
    mem("active-defrag-ignore-bytes", 1, I64, 100 * MB, NO),
    num!(mem("hash-max-listpack-value", 0, I64, 64, 0), hash_max_listpack_value).alias("hash-max-ziplist-value"),
    num!(mem("stream-node-max-bytes", 0, I64, 4096, 0), stream_node_max_bytes),
    num!(mem("zset-max-listpack-value", 0, I64, 64, 0), zset_max_listpack_value).alias("zset-max-ziplist-value"),
    num!(mem("hll-sparse-max-bytes", 0, I64, 3000, 0), hll_sparse_max_bytes),
    int("tracking-table-max-keys", 0, I64, 1_000_000, 0),
    row("maxmemory-clients", NO, Kind::Int { min: -100, max: I64, default: 0, unit: Unit::MemoryOrPercent }),
    int("repl-backlog-ttl", 0, I64, 3600, 0),
    int("loading-process-events-interval-bytes", 1024, I32, 2 * MB, NO | HIDDEN),
    int("tls-port", 0, 65535, 0, NO),
    int("tls-session-cache-size", 0, I32, 20 * 1024, NO),
    int("tls-session-cache-timeout", 0, I32, 300, NO),
    // ---- Special syntax -------------------------------------------------------------------------
    special("oom-score-adj-values", "0 200 800", special::parse_oom_values, MULTI | NO),
    special("notify-keyspace-events", "", special::parse_notify_events, 0),
    special("replicaof", "", special::parse_replicaof, IMMUTABLE | MULTI).alias("slaveof"),
];

fn set_output_buffer_limits(c: &mut Config, v: &str) {
    let n: Vec<u64> = v.split(' ').filter_map(|w| w.parse().ok()).collect();
    for (class, limits) in n.chunks_exact(3).enumerate().take(3) {
        c.client_output_buffer_limit[class] = (limits[0], limits[1], limits[2]);
    }
}

/// The row named `name` (or aliased so), any case, and the spelling it matched (lowercase).
pub fn lookup(name: &str) -> Option<(&'static Param, &'static str)> {
    PARAM_TABLE.iter().find_map(|p| {
        if p.name.eq_ignore_ascii_case(name) {
            Some((p, p.name))
        } else {
            p.alias.filter(|a| a.eq_ignore_ascii_case(name)).map(|a| (p, a))
        }
    })
}

/// Every name CONFIG GET patterns match (names and aliases of the rows not hidden), with its row.
pub fn listed_names() -> impl Iterator<Item = (&'static str, &'static Param)> {
    PARAM_TABLE
        .iter()
        .filter(|p| !p.has(HIDDEN))
        .flat_map(|p| std::iter::once((p.name, p)).chain(p.alias.map(|a| (a, p))))
}
