//! Configuration: defaults, a redis.conf-syntax file, then `--name value` command-line options
//! (redis-server's form), and the parameters CONFIG GET/SET expose. Mirrors Redis's `config.c`.

use std::path::PathBuf;

use clap::Parser;

use crate::aof::FsyncPolicy;
use crate::resp::split_inline_args;

/// The server's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub bind: Vec<String>,
    pub dir: PathBuf,
    pub appendonly: bool,
    pub appendfilename: String,
    pub appendfsync: FsyncPolicy,
    pub databases: usize,
    pub loglevel: String,
    pub logfile: String,
    pub save: String,
    pub requirepass: String,
    pub maxclients: usize,
    pub timeout_s: u64,
    pub tcp_keepalive_s: u64,
    pub proto_max_bulk_len: usize,
    pub client_query_buffer_limit: usize,
    /// `client-output-buffer-limit`: (hard bytes, soft bytes, soft seconds) for the normal,
    /// replica and pubsub classes; 0 = no limit. Only normal clients exist here.
    pub client_output_buffer_limit: [(u64, u64, u64); 3],
    pub maxmemory: u64,
    pub maxmemory_policy: String,
    pub protected_mode: bool,
    pub hz: u32,
    pub aof_load_truncated: bool,
    pub aof_prealloc_bytes: u64,
    pub auto_aof_rewrite_percentage: u64,
    pub auto_aof_rewrite_min_size: u64,
    /// Worker threads of the runtime (0 = one per core).
    pub worker_threads: usize,
    /// `io-threads`: accepted and reported (monitoring reads it); connections are served by the
    /// runtime's worker threads whatever its value.
    pub io_threads: u64,
    /// Commands slower than this many microseconds enter the SLOWLOG (-1 = none, 0 = every one).
    pub slowlog_log_slower_than: i64,
    /// Entries the SLOWLOG keeps.
    pub slowlog_max_len: u64,
    /// LATENCY records events at least this many milliseconds long (0 = off).
    pub latency_monitor_threshold: u64,
    /// Per-command latency histograms (INFO latencystats, LATENCY HISTOGRAM).
    pub latency_tracking: bool,
    /// The percentiles INFO latencystats prints.
    pub latency_tracking_info_percentiles: Vec<f64>,
    /// The config file the server was started with, if any (INFO server config_file).
    pub config_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 6379,
            bind: vec!["127.0.0.1".into()],
            dir: PathBuf::from("."),
            appendonly: false,
            appendfilename: "appendonly.aof".into(),
            appendfsync: FsyncPolicy::EverySec,
            databases: 16,
            loglevel: "notice".into(),
            logfile: String::new(),
            save: String::new(),
            requirepass: String::new(),
            maxclients: 10000,
            timeout_s: 0,
            tcp_keepalive_s: 300,
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            client_output_buffer_limit: [(0, 0, 0), (256 << 20, 64 << 20, 60), (32 << 20, 8 << 20, 60)],
            maxmemory: 0,
            maxmemory_policy: "noeviction".into(),
            protected_mode: true,
            hz: 10,
            aof_load_truncated: true,
            aof_prealloc_bytes: 64 * 1024 * 1024,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
            worker_threads: 0,
            io_threads: 1,
            slowlog_log_slower_than: 10000,
            slowlog_max_len: 128,
            latency_monitor_threshold: 0,
            latency_tracking: true,
            latency_tracking_info_percentiles: vec![50.0, 99.0, 99.9],
            config_file: None,
        }
    }
}

/// A configuration error; the message names the option (and the file line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn yes_no(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

/// Parse a memory amount as redis.conf does: `1gb`, `100mb`, `10k`, plain bytes.
pub fn parse_memory(v: &str) -> Result<u64, String> {
    let lower = v.to_ascii_lowercase();
    let units: [(&str, u64); 8] = [
        ("gb", 1 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
        ("b", 1),
        ("", 1),
    ];
    for (suffix, mul) in units {
        if let Some(num) = lower.strip_suffix(suffix) {
            if num.is_empty() {
                continue;
            }
            return num
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_mul(mul))
                .ok_or_else(|| "argument must be a memory value".to_string());
        }
    }
    Err("argument must be a memory value".into())
}

/// The classes of `client-output-buffer-limit`, in the order Redis reports them.
const OUTPUT_BUFFER_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// Parse `client-output-buffer-limit <class> <hard> <soft> <soft seconds> [<class> ...]` into `limits`,
/// all or nothing, with Redis's error texts.
fn parse_output_buffer_limits(args: &[String], limits: &mut [(u64, u64, u64); 3]) -> Result<(), String> {
    let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut next = *limits;
    for group in words.chunks_exact(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string();
        let hard = parse_memory(group[1]).map_err(|_| bad())?;
        let soft = parse_memory(group[2]).map_err(|_| bad())?;
        let secs: u64 = group[3].parse().map_err(|_| bad())?;
        next[class] = (hard, soft, secs);
    }
    *limits = next;
    Ok(())
}

fn in_range(v: &str, min: u64, max: u64) -> Result<u64, String> {
    let n: i64 = num(v)?;
    if n < min as i64 || n as u64 > max {
        return Err(format!("argument must be between {min} and {max} inclusive"));
    }
    Ok(n as u64)
}

fn signed_in_range(v: &str, min: i64, max: i64) -> Result<i64, String> {
    let n: i64 = num(v)?;
    if n < min || n > max {
        return Err(format!("argument must be between {min} and {max} inclusive"));
    }
    Ok(n)
}

/// `latency-tracking-info-percentiles`: space-separated numbers in [0, 100] (none is allowed).
fn parse_percentiles(v: &str) -> Result<Vec<f64>, String> {
    v.split_whitespace()
        .map(|w| {
            let p: f64 = w.parse().map_err(|_| "Invalid latency-tracking-info-percentiles parameters".to_string())?;
            if !(0.0..=100.0).contains(&p) {
                return Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into());
            }
            Ok(p)
        })
        .collect()
}

fn num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.parse().map_err(|_| "argument couldn't be parsed into an integer".to_string())
}

fn single<'a>(name: &str, args: &'a [String]) -> Result<&'a str, String> {
    match args {
        [v] => Ok(v),
        _ => Err(format!("wrong number of arguments for '{name}'")),
    }
}

/// How a parameter is set from its argument list.
#[derive(Clone, Copy)]
enum Setter {
    /// Exactly one argument (anything else is "wrong number of arguments").
    One(fn(&mut Config, &str) -> Result<(), String>),
    /// The whole argument list (`bind`, `save`, `client-output-buffer-limit`).
    Args(fn(&mut Config, &[String]) -> Result<(), String>),
}

/// One configuration parameter: the single place that names it, sets it from strings (command-line
/// options, config file lines, CONFIG SET) and renders it for CONFIG GET / CONFIG REWRITE.
#[derive(Clone, Copy)]
struct Param {
    /// Lowercase name, as CONFIG GET reports it.
    name: &'static str,
    /// Only read at startup: CONFIG SET refuses it.
    immutable: bool,
    set: Setter,
    get: fn(&Config) -> String,
}

fn yes_no_str(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

use Setter::{Args, One};

/// Every parameter, in the order CONFIG GET * lists them.
const PARAM_TABLE: &[Param] = &[
    Param { name: "port", immutable: true, set: One(|c, v| num(v).map(|n| c.port = n)), get: |c| c.port.to_string() },
    Param {
        name: "bind",
        immutable: true,
        set: Args(|c, args| {
            if args.is_empty() {
                return Err("wrong number of arguments for 'bind'".into());
            }
            c.bind = args.to_vec();
            Ok(())
        }),
        get: |c| c.bind.join(" "),
    },
    Param {
        name: "dir",
        immutable: false,
        set: One(|c, v| {
            c.dir = PathBuf::from(v);
            Ok(())
        }),
        get: |c| std::fs::canonicalize(&c.dir).unwrap_or_else(|_| c.dir.clone()).display().to_string(),
    },
    Param {
        name: "appendonly",
        immutable: false,
        set: One(|c, v| yes_no(v).map(|n| c.appendonly = n)),
        get: |c| yes_no_str(c.appendonly),
    },
    Param {
        name: "appendfilename",
        immutable: true,
        set: One(|c, v| {
            if v.contains('/') {
                return Err("appendfilename can't be a path, just a filename".into());
            }
            c.appendfilename = v.into();
            Ok(())
        }),
        get: |c| c.appendfilename.clone(),
    },
    Param {
        name: "appendfsync",
        immutable: false,
        set: One(|c, v| {
            v.parse()
                .map_err(|_| "argument(s) must be one of the following: everysec, always, no".to_string())
                .map(|n| c.appendfsync = n)
        }),
        get: |c| c.appendfsync.to_string(),
    },
    Param {
        name: "databases",
        immutable: true,
        set: One(|c, v| {
            let n: usize = num(v)?;
            if n == 0 {
                return Err("argument must be between 1 and 2147483647 inclusive".into());
            }
            c.databases = n;
            Ok(())
        }),
        get: |c| c.databases.to_string(),
    },
    Param {
        name: "loglevel",
        immutable: false,
        set: One(|c, v| match v.to_ascii_lowercase().as_str() {
            l @ ("debug" | "verbose" | "notice" | "warning" | "nothing") => {
                c.loglevel = l.into();
                Ok(())
            }
            _ => Err("argument(s) must be one of the following: debug, verbose, notice, warning".into()),
        }),
        get: |c| c.loglevel.clone(),
    },
    Param {
        name: "logfile",
        immutable: true,
        set: One(|c, v| {
            c.logfile = v.into();
            Ok(())
        }),
        get: |c| c.logfile.clone(),
    },
    Param {
        name: "save",
        immutable: false,
        set: Args(|c, args| {
            c.save = args.join(" ");
            Ok(())
        }),
        get: |c| c.save.clone(),
    },
    Param {
        name: "requirepass",
        immutable: false,
        set: One(|c, v| {
            c.requirepass = v.into();
            Ok(())
        }),
        get: |c| c.requirepass.clone(),
    },
    Param {
        name: "maxclients",
        immutable: false,
        set: One(|c, v| in_range(v, 1, u32::MAX as u64).map(|n| c.maxclients = n as usize)),
        get: |c| c.maxclients.to_string(),
    },
    Param {
        name: "timeout",
        immutable: false,
        set: One(|c, v| in_range(v, 0, i32::MAX as u64).map(|n| c.timeout_s = n)),
        get: |c| c.timeout_s.to_string(),
    },
    Param {
        name: "tcp-keepalive",
        immutable: false,
        set: One(|c, v| in_range(v, 0, i32::MAX as u64).map(|n| c.tcp_keepalive_s = n)),
        get: |c| c.tcp_keepalive_s.to_string(),
    },
    Param {
        name: "proto-max-bulk-len",
        immutable: false,
        set: One(|c, v| parse_memory(v).map(|n| c.proto_max_bulk_len = n as usize)),
        get: |c| c.proto_max_bulk_len.to_string(),
    },
    Param {
        name: "client-query-buffer-limit",
        immutable: false,
        set: One(|c, v| {
            let n = parse_memory(v)?;
            if n < 1 << 20 || n > i64::MAX as u64 {
                return Err("argument must be between 1048576 and 9223372036854775807 inclusive".into());
            }
            c.client_query_buffer_limit = n as usize;
            Ok(())
        }),
        get: |c| c.client_query_buffer_limit.to_string(),
    },
    Param {
        name: "client-output-buffer-limit",
        immutable: false,
        set: Args(|c, args| parse_output_buffer_limits(args, &mut c.client_output_buffer_limit)),
        get: |c| {
            OUTPUT_BUFFER_CLASSES
                .iter()
                .zip(c.client_output_buffer_limit)
                .map(|(class, (hard, soft, secs))| format!("{class} {hard} {soft} {secs}"))
                .collect::<Vec<_>>()
                .join(" ")
        },
    },
    Param {
        name: "maxmemory",
        immutable: false,
        set: One(|c, v| parse_memory(v).map(|n| c.maxmemory = n)),
        get: |c| c.maxmemory.to_string(),
    },
    Param {
        name: "maxmemory-policy",
        immutable: false,
        set: One(|c, v| {
            let p = v.to_ascii_lowercase();
            if !Config::MAXMEMORY_POLICIES.contains(&p.as_str()) {
                return Err(format!(
                    "argument(s) must be one of the following: {}",
                    Config::MAXMEMORY_POLICIES.join(", ")
                ));
            }
            c.maxmemory_policy = p;
            Ok(())
        }),
        get: |c| c.maxmemory_policy.clone(),
    },
    Param {
        name: "protected-mode",
        immutable: false,
        set: One(|c, v| yes_no(v).map(|n| c.protected_mode = n)),
        get: |c| yes_no_str(c.protected_mode),
    },
    Param {
        name: "hz",
        immutable: false,
        set: One(|c, v| num::<u32>(v).map(|n| c.hz = n.clamp(1, 500))),
        get: |c| c.hz.to_string(),
    },
    Param {
        name: "aof-load-truncated",
        immutable: false,
        set: One(|c, v| yes_no(v).map(|n| c.aof_load_truncated = n)),
        get: |c| yes_no_str(c.aof_load_truncated),
    },
    Param {
        name: "aof-prealloc-bytes",
        immutable: true,
        set: One(|c, v| parse_memory(v).map(|n| c.aof_prealloc_bytes = n.max(4096))),
        get: |c| c.aof_prealloc_bytes.to_string(),
    },
    Param {
        name: "auto-aof-rewrite-percentage",
        immutable: false,
        set: One(|c, v| num(v).map(|n| c.auto_aof_rewrite_percentage = n)),
        get: |c| c.auto_aof_rewrite_percentage.to_string(),
    },
    Param {
        name: "auto-aof-rewrite-min-size",
        immutable: false,
        set: One(|c, v| parse_memory(v).map(|n| c.auto_aof_rewrite_min_size = n)),
        get: |c| c.auto_aof_rewrite_min_size.to_string(),
    },
    Param {
        name: "worker-threads",
        immutable: true,
        set: One(|c, v| num(v).map(|n| c.worker_threads = n)),
        get: |c| c.worker_threads.to_string(),
    },
    Param {
        name: "io-threads",
        immutable: true,
        set: One(|c, v| in_range(v, 1, 128).map(|n| c.io_threads = n)),
        get: |c| c.io_threads.to_string(),
    },
    Param {
        name: "slowlog-log-slower-than",
        immutable: false,
        set: One(|c, v| signed_in_range(v, -1, i64::MAX).map(|n| c.slowlog_log_slower_than = n)),
        get: |c| c.slowlog_log_slower_than.to_string(),
    },
    Param {
        name: "slowlog-max-len",
        immutable: false,
        set: One(|c, v| in_range(v, 0, i64::MAX as u64).map(|n| c.slowlog_max_len = n)),
        get: |c| c.slowlog_max_len.to_string(),
    },
    Param {
        name: "latency-monitor-threshold",
        immutable: false,
        set: One(|c, v| in_range(v, 0, i64::MAX as u64).map(|n| c.latency_monitor_threshold = n)),
        get: |c| c.latency_monitor_threshold.to_string(),
    },
    Param {
        name: "latency-tracking",
        immutable: false,
        set: One(|c, v| yes_no(v).map(|n| c.latency_tracking = n)),
        get: |c| yes_no_str(c.latency_tracking),
    },
    Param {
        name: "latency-tracking-info-percentiles",
        immutable: false,
        set: One(|c, v| parse_percentiles(v).map(|p| c.latency_tracking_info_percentiles = p)),
        get: |c| c.latency_tracking_info_percentiles.iter().map(f64::to_string).collect::<Vec<_>>().join(" "),
    },
];

/// Directives accepted (with one argument) for compatibility with stock redis.conf files; no effect here.
const IGNORED_DIRECTIVES: &[&str] = &[
    "daemonize",
    "supervised",
    "pidfile",
    "io-threads-do-reads",
    "tcp-backlog",
    "unixsocket",
    "unixsocketperm",
    "always-show-logo",
    "set-proc-title",
    "dbfilename",
    "rdbcompression",
    "rdbchecksum",
    "stop-writes-on-bgsave-error",
    "aof-use-rdb-preamble",
    "aof-timestamp-enabled",
    "no-appendfsync-on-rewrite",
    "lazyfree-lazy-eviction",
    "lazyfree-lazy-expire",
    "lazyfree-lazy-server-del",
    "replica-lazy-flush",
    "lazyfree-lazy-user-del",
    "appenddirname",
    "syslog-enabled",
];

/// How many rows of [`PARAM_TABLE`] are immutable (sizes [`Config::IMMUTABLE`]).
const IMMUTABLE_COUNT: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < PARAM_TABLE.len() {
        if PARAM_TABLE[i].immutable {
            n += 1;
        }
        i += 1;
    }
    n
};

impl Config {
    /// Names of every parameter (CONFIG GET patterns match against these), from [`PARAM_TABLE`].
    pub const PARAMS: &'static [&'static str] = &{
        let mut names = [""; PARAM_TABLE.len()];
        let mut i = 0;
        while i < names.len() {
            names[i] = PARAM_TABLE[i].name;
            i += 1;
        }
        names
    };

    /// Parameters that only take effect at startup (CONFIG SET refuses them), from [`PARAM_TABLE`].
    pub const IMMUTABLE: &'static [&'static str] = &{
        let mut names = [""; IMMUTABLE_COUNT];
        let (mut i, mut n) = (0, 0);
        while i < PARAM_TABLE.len() {
            if PARAM_TABLE[i].immutable {
                names[n] = PARAM_TABLE[i].name;
                n += 1;
            }
            i += 1;
        }
        names
    };

    /// The eviction policies Redis accepts, in the order its error message lists them.
    pub const MAXMEMORY_POLICIES: &'static [&'static str] = &[
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "noeviction",
    ];

    /// Apply one option given as name (any case) and argument list (file line or command-line option).
    pub fn apply(&mut self, name: &str, args: &[String]) -> Result<(), String> {
        let name = name.to_ascii_lowercase();
        match PARAM_TABLE.iter().find(|p| p.name == name).map(|p| p.set) {
            Some(Args(set)) => set(self, args),
            Some(One(set)) => set(self, single(&name, args)?),
            None => {
                single(&name, args)?;
                if IGNORED_DIRECTIVES.contains(&name.as_str()) {
                    Ok(())
                } else {
                    Err(format!("Bad directive or wrong number of arguments ('{name}')"))
                }
            }
        }
    }

    /// The value CONFIG GET reports for a parameter (its exact lowercase name).
    pub fn get(&self, name: &str) -> Option<String> {
        PARAM_TABLE.iter().find(|p| p.name == name).map(|p| (p.get)(self))
    }

    /// Apply every line of a redis.conf-syntax text; errors name the line.
    pub fn apply_file_text(&mut self, text: &str) -> Result<(), ConfigError> {
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let err = |msg: String| {
                ConfigError(format!(
                    "\n*** FATAL CONFIG FILE ERROR ***\nReading the configuration file, at line {}\n>>> '{}'\n{}",
                    i + 1,
                    trimmed,
                    msg
                ))
            };
            let Some(args) = split_inline_args(trimmed.as_bytes()) else {
                return Err(err("Unbalanced quotes in configuration line".into()));
            };
            let args: Vec<String> = args.into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect();
            let Some((name, rest)) = args.split_first() else { continue };
            self.apply(name, rest).map_err(err)?;
        }
        Ok(())
    }
}

/// The command line, in redis-server's form: `flurrydb-server [config-file] [--name value ...]`.
#[derive(Parser, Debug, Default)]
#[command(name = "flurrydb-server", version, about = "A Redis 7.0 compatible server", long_about = None)]
pub struct Cli {
    /// A redis.conf-syntax configuration file, read before the options below.
    pub config_file: Option<PathBuf>,
    /// TCP port to listen on (default 6379).
    #[arg(long)]
    pub port: Option<String>,
    /// Addresses to listen on (default 127.0.0.1).
    #[arg(long, num_args = 1..)]
    pub bind: Option<Vec<String>>,
    /// Working directory: the AOF lives here (default the current directory).
    #[arg(long)]
    pub dir: Option<String>,
    /// Enable the append-only file (yes|no).
    #[arg(long)]
    pub appendonly: Option<String>,
    /// Name of the append-only file (default appendonly.aof).
    #[arg(long)]
    pub appendfilename: Option<String>,
    /// fsync policy: always, everysec or no.
    #[arg(long)]
    pub appendfsync: Option<String>,
    /// RDB save points: accepted for compatibility (`--save ''`); no RDB is written.
    #[arg(long, num_args = 0..)]
    pub save: Option<Vec<String>>,
    /// Number of databases (default 16).
    #[arg(long)]
    pub databases: Option<String>,
    /// Log level: debug, verbose, notice, warning, nothing.
    #[arg(long)]
    pub loglevel: Option<String>,
    /// Log file ("" = standard output).
    #[arg(long)]
    pub logfile: Option<String>,
    /// Password clients must AUTH with.
    #[arg(long)]
    pub requirepass: Option<String>,
    /// Maximum number of connected clients.
    #[arg(long)]
    pub maxclients: Option<String>,
    /// Close idle clients after this many seconds (0 = never).
    #[arg(long)]
    pub timeout: Option<String>,
    /// TCP keepalive interval in seconds (0 = off; default 300).
    #[arg(long = "tcp-keepalive")]
    pub tcp_keepalive: Option<String>,
    /// Close a client whose pending query buffer exceeds this (default 1gb).
    #[arg(long = "client-query-buffer-limit")]
    pub client_query_buffer_limit: Option<String>,
    /// `<class> <hard> <soft> <soft seconds>`: close clients whose pending output exceeds the limits.
    #[arg(long = "client-output-buffer-limit", num_args = 1..)]
    pub client_output_buffer_limit: Option<Vec<String>>,
    /// Largest bulk string accepted (default 512mb).
    #[arg(long = "proto-max-bulk-len")]
    pub proto_max_bulk_len: Option<String>,
    /// Memory limit (0 = none).
    #[arg(long)]
    pub maxmemory: Option<String>,
    /// Refuse non-loopback clients when no password is set (yes|no).
    #[arg(long = "protected-mode")]
    pub protected_mode: Option<String>,
    /// Load a truncated AOF, dropping its torn last record (yes|no).
    #[arg(long = "aof-load-truncated")]
    pub aof_load_truncated: Option<String>,
    /// Bytes the AOF file is extended by at a time (default 64mb).
    #[arg(long = "aof-prealloc-bytes")]
    pub aof_prealloc_bytes: Option<String>,
    /// Worker threads of the server (0 = one per core).
    #[arg(long = "worker-threads")]
    pub worker_threads: Option<String>,
    /// Background task frequency (default 10).
    #[arg(long)]
    pub hz: Option<String>,
}

impl Cli {
    /// The options given on the command line, as (name, args) pairs, in a fixed order.
    fn options(&self) -> Vec<(&'static str, Vec<String>)> {
        let one = |v: &Option<String>| v.clone().map(|v| vec![v]);
        let pairs = [
            ("port", one(&self.port)),
            ("bind", self.bind.clone()),
            ("dir", one(&self.dir)),
            ("appendonly", one(&self.appendonly)),
            ("appendfilename", one(&self.appendfilename)),
            ("appendfsync", one(&self.appendfsync)),
            ("save", self.save.clone()),
            ("databases", one(&self.databases)),
            ("loglevel", one(&self.loglevel)),
            ("logfile", one(&self.logfile)),
            ("requirepass", one(&self.requirepass)),
            ("maxclients", one(&self.maxclients)),
            ("timeout", one(&self.timeout)),
            ("tcp-keepalive", one(&self.tcp_keepalive)),
            ("client-query-buffer-limit", one(&self.client_query_buffer_limit)),
            ("client-output-buffer-limit", self.client_output_buffer_limit.clone()),
            ("proto-max-bulk-len", one(&self.proto_max_bulk_len)),
            ("maxmemory", one(&self.maxmemory)),
            ("protected-mode", one(&self.protected_mode)),
            ("aof-load-truncated", one(&self.aof_load_truncated)),
            ("aof-prealloc-bytes", one(&self.aof_prealloc_bytes)),
            ("worker-threads", one(&self.worker_threads)),
            ("hz", one(&self.hz)),
        ];
        pairs.into_iter().filter_map(|(n, v)| v.map(|v| (n, v))).collect()
    }

    /// Build the configuration: defaults, then the file, then the command line.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        if let Some(path) = &self.config_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("Fatal error, can't open config file '{}': {e}", path.display())))?;
            cfg.apply_file_text(&text)?;
            cfg.config_file = Some(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()));
        }
        for (name, args) in self.options() {
            cfg.apply(name, &args).map_err(|e| ConfigError(format!("Invalid option --{name}: {e}")))?;
        }
        Ok(cfg)
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Config, String> {
        let mut argv = vec!["flurrydb-server"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map_err(|e| e.to_string())?.into_config().map_err(|e| e.0)
    }

    #[test]
    fn accepts_the_flags_redis_server_is_started_with() {
        let c = cli(&[
            "--port",
            "7000",
            "--bind",
            "127.0.0.1",
            "--dir",
            "/tmp",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ])
        .unwrap();
        assert_eq!(c.port, 7000);
        assert!(c.appendonly);
        assert_eq!(c.appendfsync, FsyncPolicy::Always);
        assert_eq!(c.save, "");
        let c = cli(&["--save", "", "--appendonly", "yes", "--appendfsync", "no"]).unwrap();
        assert!(c.appendonly, "--save '' must not swallow the options after it");
        assert_eq!(c.appendfsync, FsyncPolicy::No);
        let c = cli(&["--save", "900", "1", "300", "10", "--port", "1234"]).unwrap();
        assert_eq!((c.save.as_str(), c.port), ("900 1 300 10", 1234));
    }

    #[test]
    fn command_line_overrides_config_file() {
        let dir = std::env::temp_dir().join(format!("flurrydb-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("redis.conf");
        std::fs::write(&path, "# comment\nport 7001\nappendfsync no\nsave 900 1\nmaxmemory 1mb\n").unwrap();
        let c = cli(&[path.to_str().unwrap(), "--port", "7002"]).unwrap();
        assert_eq!(c.port, 7002);
        assert_eq!(c.appendfsync, FsyncPolicy::No);
        assert_eq!(c.maxmemory, 1 << 20);
        assert_eq!(c.save, "900 1");
    }

    #[test]
    fn unknown_or_malformed_option_names_it_and_its_line() {
        let mut c = Config::default();
        let e = c.apply_file_text("port 1\nbogus-thing 3\n").unwrap_err();
        assert!(e.0.contains("line 2") && e.0.contains("bogus-thing"), "{}", e.0);
        let e = c.apply_file_text("appendonly maybe\n").unwrap_err();
        assert!(e.0.contains("appendonly maybe"), "{}", e.0);
        assert!(cli(&["--appendfsync", "sometimes"]).unwrap_err().contains("appendfsync"));
        assert!(cli(&["--no-such-flag", "1"]).unwrap_err().contains("--no-such-flag"));
    }

    #[test]
    fn param_table_names_are_unique_lowercase_and_derive_the_lists() {
        for (i, p) in PARAM_TABLE.iter().enumerate() {
            assert!(!p.name.is_empty() && p.name == p.name.to_ascii_lowercase(), "'{}' must be lowercase", p.name);
            assert!(PARAM_TABLE[..i].iter().all(|q| q.name != p.name), "'{}' appears twice", p.name);
            assert!(!IGNORED_DIRECTIVES.contains(&p.name), "'{}' is both a parameter and ignored", p.name);
        }
        assert_eq!(Config::PARAMS, PARAM_TABLE.iter().map(|p| p.name).collect::<Vec<_>>());
        let immutable: Vec<_> = PARAM_TABLE.iter().filter(|p| p.immutable).map(|p| p.name).collect();
        assert_eq!(Config::IMMUTABLE, immutable);
    }

    #[test]
    fn monitoring_parameters_check_ranges_as_redis() {
        let mut c = Config::default();
        let set = |c: &mut Config, n: &str, v: &str| c.apply(n, &[v.to_string()]);
        assert_eq!(
            set(&mut c, "slowlog-log-slower-than", "-5"),
            Err("argument must be between -1 and 9223372036854775807 inclusive".into())
        );
        assert_eq!(
            set(&mut c, "slowlog-log-slower-than", "1.5"),
            Err("argument couldn't be parsed into an integer".into())
        );
        assert_eq!(
            set(&mut c, "latency-monitor-threshold", "-1"),
            Err("argument must be between 0 and 9223372036854775807 inclusive".into())
        );
        assert_eq!(
            set(&mut c, "latency-tracking-info-percentiles", "101"),
            Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into())
        );
        assert_eq!(
            set(&mut c, "latency-tracking-info-percentiles", "abc"),
            Err("Invalid latency-tracking-info-percentiles parameters".into())
        );
        set(&mut c, "latency-tracking-info-percentiles", "50.0 99.99").unwrap();
        assert_eq!(c.get("latency-tracking-info-percentiles").unwrap(), "50 99.99");
        set(&mut c, "latency-tracking-info-percentiles", "").unwrap();
        assert_eq!(c.get("latency-tracking-info-percentiles").unwrap(), "");
        assert_eq!(Config::default().get("slowlog-log-slower-than").unwrap(), "10000");
        assert_eq!(Config::default().get("slowlog-max-len").unwrap(), "128");
    }

    /// Set `name` from the text CONFIG GET rendered for it, splitting it as CONFIG SET does.
    fn set_rendered(cfg: &mut Config, name: &str, value: &str) -> Result<(), String> {
        let args: Vec<String> =
            if name == "bind" { value.split_whitespace().map(String::from).collect() } else { vec![value.to_string()] };
        cfg.apply(name, &args)
    }

    #[test]
    fn every_parameter_round_trips_through_its_rendered_value() {
        let dir = std::env::temp_dir();
        let mut changed = Config::default();
        changed
            .apply_file_text(&format!(
                "port 7123\nbind 127.0.0.1 ::1\ndir {}\nappendonly yes\nappendfilename other.aof\n\
                 appendfsync always\ndatabases 4\nloglevel warning\nlogfile /nonexistent/flurrydb.log\n\
                 save 900 1 300 10\nrequirepass secret\nmaxclients 50\ntimeout 9\ntcp-keepalive 60\n\
                 proto-max-bulk-len 1mb\nclient-query-buffer-limit 2mb\n\
                 client-output-buffer-limit normal 1mb 2mb 3 pubsub 4 5 6\nmaxmemory 10mb\n\
                 maxmemory-policy allkeys-lru\nprotected-mode no\nhz 20\naof-load-truncated no\n\
                 aof-prealloc-bytes 1mb\nauto-aof-rewrite-percentage 50\nauto-aof-rewrite-min-size 1mb\n\
                 worker-threads 2\nio-threads 4\nslowlog-log-slower-than -1\nslowlog-max-len 5\n\
                 latency-monitor-threshold 100\nlatency-tracking no\n\
                 latency-tracking-info-percentiles \"50 99.99\"\n",
                dir.display()
            ))
            .unwrap();
        let defaults = Config::default();
        for &name in Config::PARAMS {
            let (default, value) = (defaults.get(name).unwrap(), changed.get(name).unwrap());
            assert_ne!(default, value, "give '{name}' a non-default value in this test");
            for cfg in [&defaults, &changed] {
                let rendered = cfg.get(name).unwrap();
                let mut again = cfg.clone();
                set_rendered(&mut again, name, &rendered).unwrap_or_else(|e| panic!("{name} {rendered:?}: {e}"));
                assert_eq!(again.get(name).unwrap(), rendered, "'{name}' does not round-trip");
            }
            // The setter and the getter must touch the same field, and only that one.
            let mut cfg = Config::default();
            set_rendered(&mut cfg, name, &value).unwrap();
            for &other in Config::PARAMS {
                let want = if other == name { &changed } else { &defaults };
                assert_eq!(cfg.get(other), want.get(other), "setting '{name}' changed '{other}'");
            }
        }
    }
}
