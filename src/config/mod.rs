//! Configuration: defaults, a redis.conf-syntax file, then `--name value` command-line options
//! (redis-server's form), and the parameters CONFIG GET/SET/REWRITE expose. Mirrors Redis's
//! `config.c`: the parameter table is in [`params`], the syntax of the generic types in [`value`],
//! that of parameters with their own in [`special`], the command line in [`cli`]. Every parameter redis-server 7.0.15 knows is accepted; those whose
//! feature flurrydb lacks are stored and reported but have no effect ([`params::INERT`]).

pub mod cli;
pub mod params;
pub mod special;
pub mod value;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use cli::{Cli, Invocation};
pub use params::{PARAM_TABLE, Param};
pub use value::parse_memory;

use crate::aof::FsyncPolicy;
use crate::resp::split_inline_args;

/// The server's configuration: typed fields for the parameters the server reads, and the canonical
/// text of every other parameter that was set.
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
    /// Sorted sets leave their packed encoding past this many members...
    pub zset_max_listpack_entries: usize,
    /// ...or once a member is longer than this many bytes.
    pub zset_max_listpack_value: usize,
    /// Hashes leave their packed encoding past this many fields...
    pub hash_max_listpack_entries: usize,
    /// ...or once a field or value is longer than this many bytes.
    pub hash_max_listpack_value: usize,
    /// Sets of integers leave the intset encoding past this many members.
    pub set_max_intset_entries: usize,
    /// A list node's limit: > 0 entries, < 0 bytes (-1: 4 KiB ... -5: 64 KiB).
    pub list_max_listpack_size: i64,
    /// `hll-sparse-max-bytes`: a sparse HyperLogLog longer than this turns dense.
    pub hll_sparse_max_bytes: usize,
    /// Stream nodes hold at most this many entries (0: no limit)...
    pub stream_node_max_entries: usize,
    /// ...and about this many bytes (0: no limit).
    pub stream_node_max_bytes: usize,
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
    /// Worker threads, each the one worker of its own runtime (0 = one per core; see `workers`).
    pub worker_threads: usize,
    /// `worker-threads-in-use`: 0, chosen by the load; n, fixed (see `workers`).
    pub worker_threads_in_use: usize,
    /// `worker-spin-us`: how long a worker may spin before it parks (0: never; see `workers`).
    pub worker_spin_us: u64,
    /// `slowlog-log-slower-than` in microseconds (-1 = never log, 0 = log every command).
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: u64,
    /// `latency-monitor-threshold` in milliseconds (0 = monitor off).
    pub latency_monitor_threshold: u64,
    pub latency_tracking: bool,
    pub latency_tracking_info_percentiles: Vec<f64>,
    /// The canonical text of every set parameter without a typed field, by name; absent = default.
    pub generic: BTreeMap<&'static str, String>,
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
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            list_max_listpack_size: -2,
            hll_sparse_max_bytes: 3000,
            stream_node_max_entries: 100,
            stream_node_max_bytes: 4096,
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
            worker_threads_in_use: 0,
            worker_spin_us: crate::workers::DEFAULT_SPIN_US,
            slowlog_log_slower_than: 10000,
            slowlog_max_len: 128,
            latency_monitor_threshold: 0,
            latency_tracking: true,
            latency_tracking_info_percentiles: vec![50.0, 99.0, 99.9],
            generic: BTreeMap::new(),
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

/// Directives of old redis.conf files that Redis 7.0 accepts (with one argument) and ignores.
const DEPRECATED_DIRECTIVES: &[&str] =
    &["list-max-ziplist-entries", "list-max-ziplist-value", "lua-replicate-commands"];

/// Directives that are not parameters and that flurrydb cannot honour: refused with a clear message.
const UNSUPPORTED_DIRECTIVES: &[&str] = &["rename-command", "user", "loadmodule", "sentinel"];

impl Config {
    /// Set a parameter (a name or alias, any case) from its arguments: a config file line, a
    /// command-line option or a CONFIG SET value. The error is Redis's text for it.
    pub fn apply(&mut self, name: &str, args: &[String]) -> Result<(), String> {
        let (p, _) = params::lookup(name).ok_or("Bad directive or wrong number of arguments")?;
        self.set_param(p, args)
    }

    /// Set the row `p` from its arguments (all or nothing).
    pub fn set_param(&mut self, p: &Param, args: &[String]) -> Result<(), String> {
        let multi = p.has(params::MULTI);
        if !multi && args.len() != 1 {
            return Err("wrong number of arguments".into());
        }
        let text = p.kind.parse(self, args, multi)?;
        match p.field {
            Some(f) => (f.set)(self, &text),
            None => {
                self.generic.insert(p.name, text);
            }
        }
        Ok(())
    }

    /// The value CONFIG GET reports for a parameter (a name or alias, any case).
    pub fn get(&self, name: &str) -> Option<String> {
        params::lookup(name).map(|(p, _)| self.param_text(p))
    }

    /// The canonical text of row `p`'s current value.
    pub fn param_text(&self, p: &Param) -> String {
        match p.field {
            Some(f) => (f.get)(self),
            None => self.generic.get(p.name).cloned().unwrap_or_else(|| p.kind.default_text()),
        }
    }

    /// The parameters that have no effect in flurrydb yet but hold a non-default value.
    pub fn inert_settings(&self) -> Vec<&'static str> {
        PARAM_TABLE
            .iter()
            .filter(|p| p.has(params::INERT) && self.param_text(p) != p.kind.default_text())
            .map(|p| p.name)
            .collect()
    }

    /// Apply every line of a redis.conf-syntax text; errors name the line, as Redis prints them.
    pub fn apply_file_text(&mut self, text: &str) -> Result<(), ConfigError> {
        let mut save_seen = false;
        for (i, line) in text.split('\n').enumerate() {
            let trimmed = line.trim_matches([' ', '\t', '\r', '\n']);
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let err = |msg: String| {
                ConfigError(format!(
                    "\n*** FATAL CONFIG FILE ERROR (flurrydb {}) ***\nReading the configuration file, at line {}\n\
                     >>> '{}'\n{}",
                    env!("CARGO_PKG_VERSION"),
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
            let name = name.to_ascii_lowercase();
            if params::lookup(&name).is_none() {
                self.apply_directive(&name, rest).map_err(err)?;
                continue;
            }
            // Later `save` lines of one file add save points to the earlier ones, as in Redis.
            let mut rest = rest.to_vec();
            if name == "save" {
                if save_seen && !matches!(rest.as_slice(), [e] if e.is_empty()) && !self.save.is_empty() {
                    rest = special::split_multi(&rest);
                    rest.splice(0..0, self.save.split(' ').map(String::from));
                }
                save_seen = true;
            }
            self.apply(&name, &rest).map_err(err)?;
        }
        Ok(())
    }

    /// A config file line that is not a parameter: `include`, the deprecated ones, or an error.
    fn apply_directive(&mut self, name: &str, args: &[String]) -> Result<(), String> {
        if DEPRECATED_DIRECTIVES.contains(&name) && args.len() == 1 {
            return Ok(());
        }
        if name == "include" && args.len() == 1 {
            let path = &args[0];
            if path.contains(['*', '?', '[']) {
                return Err("include with a wildcard is not supported by flurrydb".into());
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("Fatal error, can't open config file '{path}': {e}"))?;
            return self.apply_file_text(&text).map_err(|e| e.0);
        }
        if UNSUPPORTED_DIRECTIVES.contains(&name) || name.contains('.') {
            return Err(format!("'{name}' is not supported by flurrydb"));
        }
        Err("Bad directive or wrong number of arguments".into())
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests;
