//! `INFO [section ...]`: the server's state as Redis prints it, `# Section` headers and `key:value`
//! lines joined by CRLF, sections separated by an empty line. Memory and CPU figures are in
//! `info_process`, the per-command sections in `info_commands`. Mirrors Redis's `genRedisInfoString` in `server.c`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::REDIS_VERSION;
use super::info_process::{cpu_fields, memory_fields, read_proc};
use crate::cmd::Ctx;
use crate::error::Result;
use crate::resp::Frame;
use crate::state::Shared;

/// Every section, in the order Redis prints them.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

/// The sections `INFO` and `INFO default` print.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// `INFO [section ...]`: the named sections (case-insensitive; `default`, `all`, `everything`),
/// the default ones without arguments; unknown names contribute nothing.
pub fn info(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let mut wanted: Vec<&str> = Vec::new();
    if argv.len() == 1 {
        wanted.extend_from_slice(DEFAULT_SECTIONS);
    }
    for a in &argv[1..] {
        let a = a.to_ascii_lowercase();
        match &a[..] {
            b"default" => wanted.extend_from_slice(DEFAULT_SECTIONS),
            b"all" | b"everything" => wanted.extend_from_slice(SECTIONS),
            name => wanted.extend(SECTIONS.iter().filter(|s| s.as_bytes() == name)),
        }
    }
    let mut out = String::new();
    for section in SECTIONS.iter().filter(|s| wanted.contains(s)) {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        section_text(ctx.shared, section, &mut out);
    }
    Ok(Frame::Verbatim(Bytes::from(out)))
}

/// Append one section, header included.
fn section_text(shared: &Shared, section: &str, out: &mut String) {
    let (title, fields) = match section {
        "server" => ("Server", server_fields(shared)),
        "clients" => ("Clients", clients_fields(shared)),
        "memory" => ("Memory", memory_fields(shared)),
        "persistence" => ("Persistence", persistence_fields(shared)),
        "stats" => ("Stats", stats_fields(shared)),
        "replication" => ("Replication", replication_fields(shared)),
        "cpu" => ("CPU", cpu_fields()),
        "modules" => ("Modules", Vec::new()),
        "commandstats" => ("Commandstats", super::info_commands::commandstats_fields(shared)),
        "errorstats" => ("Errorstats", errorstats_fields(shared)),
        "latencystats" => ("Latencystats", super::info_commands::latencystats_fields(shared)),
        "cluster" => ("Cluster", vec![("cluster_enabled".into(), "0".into())]),
        _ => ("Keyspace", keyspace_fields(shared)),
    };
    let _ = write!(out, "# {title}\r\n");
    for (k, v) in fields {
        let _ = write!(out, "{k}:{v}\r\n");
    }
}

/// A section's `name:value` lines.
pub(super) type Fields = Vec<(Cow<'static, str>, String)>;

pub(super) fn s(v: impl ToString) -> String {
    v.to_string()
}

/// A 40-hex-digit id fixed for the life of the process (run_id, master_replid).
fn random_hex40(salt: u64) -> String {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    (0..3u64)
        .map(|i| {
            let mut h = state.build_hasher();
            h.write_u64(salt ^ i ^ u64::from(std::process::id()));
            format!("{:016x}", h.finish())
        })
        .collect::<String>()[..40]
        .to_string()
}

fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| random_hex40(1))
}

fn server_fields(shared: &Shared) -> Fields {
    let cfg = shared.config();
    let uptime = shared.started.elapsed().as_secs();
    let os = format!(
        "{} {} {}",
        read_proc("/proc/sys/kernel/ostype").trim(),
        read_proc("/proc/sys/kernel/osrelease").trim(),
        std::env::consts::ARCH
    );
    let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
    let config_file = cfg.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    vec![
        ("redis_version".into(), s(REDIS_VERSION)),
        ("redis_git_sha1".into(), s("00000000")),
        ("redis_git_dirty".into(), s(0)),
        ("redis_build_id".into(), s(0)),
        ("redis_mode".into(), s("standalone")),
        ("os".into(), os),
        ("arch_bits".into(), s(usize::BITS)),
        ("monotonic_clock".into(), s("POSIX clock_gettime")),
        ("multiplexing_api".into(), s("epoll")),
        ("atomicvar_api".into(), s("c11-builtin")),
        ("gcc_version".into(), s("0.0.0")),
        ("process_id".into(), s(std::process::id())),
        ("process_supervised".into(), s("no")),
        ("run_id".into(), s(run_id())),
        ("tcp_port".into(), s(cfg.port)),
        ("server_time_usec".into(), s(now_us)),
        ("uptime_in_seconds".into(), s(uptime)),
        ("uptime_in_days".into(), s(uptime / 86400)),
        ("hz".into(), s(cfg.hz)),
        ("configured_hz".into(), s(cfg.hz)),
        ("lru_clock".into(), s(crate::state::unix_secs() & ((1 << 24) - 1))),
        ("executable".into(), exe),
        ("config_file".into(), config_file),
        // Redis: 1 while its I/O threads run; here, while more than one worker runtime is in use.
        ("io_threads_active".into(), s(u8::from(crate::workers::active() > 1))),
    ]
}

fn clients_fields(shared: &Shared) -> Fields {
    // The largest query buffer and pending reply among the clients now (Redis keeps the peaks of
    // the last seconds).
    let buffers: Vec<_> = shared.clients.all().iter().map(|c| super::client::buffer_sizes(c)).collect();
    let max_in = buffers.iter().map(|b| b.qbuf).max().unwrap_or(0);
    let max_out = buffers.iter().map(|b| b.obl + b.omem).max().unwrap_or(0);
    vec![
        ("connected_clients".into(), s(buffers.len())),
        ("cluster_connections".into(), s(0)),
        ("maxclients".into(), s(shared.config().maxclients)),
        ("client_recent_max_input_buffer".into(), s(max_in)),
        ("client_recent_max_output_buffer".into(), s(max_out)),
        ("blocked_clients".into(), s(shared.ks.blocking().blocked_clients() + shared.pause.postponed())),
        ("tracking_clients".into(), s(shared.ks.tracking().stats().0)),
        ("clients_in_timeout_table".into(), s(shared.ks.blocking().with_timeout())),
    ]
}

/// The AOF's lines of INFO persistence. The one place that reads AOF state for INFO: the rewrite
/// work extends it with `Aof::info()` (rewrite in progress, sizes, last rewrite status).
pub fn aof_fields(shared: &Shared) -> Fields {
    let info = shared.ks.aof().map(|a| a.info());
    let enabled = info.as_ref().is_some_and(|i| i.aof_enabled);
    let mut f = vec![
        ("aof_enabled".into(), s(u8::from(enabled))),
        ("aof_rewrite_in_progress".into(), s(u8::from(info.as_ref().is_some_and(|i| i.aof_rewrite_in_progress)))),
        ("aof_rewrite_scheduled".into(), s(0)),
        ("aof_last_rewrite_time_sec".into(), s(-1)),
        ("aof_current_rewrite_time_sec".into(), s(-1)),
        ("aof_last_bgrewrite_status".into(), s(info.as_ref().map_or("ok", |i| i.aof_last_bgrewrite_status))),
        ("aof_rewrites".into(), s(info.as_ref().map_or(0, |i| i.aof_rewrites))),
        ("aof_rewrites_consecutive_failures".into(), s(0)),
        ("aof_last_write_status".into(), s(info.as_ref().map_or("ok", |i| i.aof_last_write_status))),
        ("aof_last_cow_size".into(), s(0)),
    ];
    if let Some(i) = info.filter(|i| i.aof_enabled) {
        f.push(("aof_current_size".into(), s(i.aof_current_size)));
        f.push(("aof_base_size".into(), s(i.aof_base_size)));
        f.push(("aof_pending_rewrite".into(), s(0)));
        f.push(("aof_buffer_length".into(), s(0)));
        f.push(("aof_pending_bio_fsync".into(), s(0)));
        f.push(("aof_delayed_fsync".into(), s(0)));
    }
    f
}

fn persistence_fields(shared: &Shared) -> Fields {
    let rdb = &shared.rdb;
    let mut f = vec![
        ("loading".into(), s(u8::from(shared.ks.is_loading()))),
        ("async_loading".into(), s(u8::from(shared.repl.async_loading.load(Ordering::Relaxed)))),
        ("current_cow_peak".into(), s(0)),
        ("current_cow_size".into(), s(0)),
        ("current_cow_size_age".into(), s(0)),
        ("current_fork_perc".into(), s("0.00")),
        ("current_save_keys_processed".into(), s(0)),
        ("current_save_keys_total".into(), s(0)),
        ("rdb_changes_since_last_save".into(), s(rdb.changes())),
        ("rdb_bgsave_in_progress".into(), s(u8::from(rdb.in_progress.load(Ordering::Relaxed)))),
        ("rdb_last_save_time".into(), s(shared.last_save_unix.load(Ordering::Relaxed))),
        ("rdb_last_bgsave_status".into(), s(if rdb.last_bgsave_ok.load(Ordering::Relaxed) { "ok" } else { "err" })),
        ("rdb_last_bgsave_time_sec".into(), s(rdb.last_bgsave_secs.load(Ordering::Relaxed))),
        ("rdb_current_bgsave_time_sec".into(), s(rdb.current_secs())),
        ("rdb_saves".into(), s(rdb.saves.load(Ordering::Relaxed))),
        ("rdb_last_cow_size".into(), s(0)),
        ("rdb_last_load_keys_expired".into(), s(rdb.loaded_expired.load(Ordering::Relaxed))),
        ("rdb_last_load_keys_loaded".into(), s(rdb.loaded_keys.load(Ordering::Relaxed))),
    ];
    f.extend(aof_fields(shared));
    f.extend([("module_fork_in_progress".into(), s(0)), ("module_fork_last_cow_size".into(), s(0))]);
    // As Redis, while a load runs (`server.loading`, which an async load sets too).
    if shared.ks.is_loading() || shared.repl.async_loading.load(Ordering::Relaxed) {
        f.extend(crate::rdb::loading::fields().into_iter().map(|(k, v)| (k.into(), v)));
    }
    f
}

fn stats_fields(shared: &Shared) -> Fields {
    let st = &shared.stats;
    let get = |c: &crate::state::Counter| s(c.get());
    let expired = (shared.ks.expired_keys() as u64).saturating_sub(st.expired_keys_base.load(Ordering::Relaxed));
    let errors: u64 = st.error_counts().values().sum();
    let rates = shared.monitor.rates.now();
    vec![
        ("total_connections_received".into(), get(&st.connections_received)),
        ("total_commands_processed".into(), s(shared.monitor.commands.total_calls())),
        ("instantaneous_ops_per_sec".into(), s(rates.ops_per_sec)),
        ("total_net_input_bytes".into(), get(&st.net_input_bytes)),
        ("total_net_output_bytes".into(), get(&st.net_output_bytes)),
        ("total_net_repl_input_bytes".into(), s(0)),
        ("total_net_repl_output_bytes".into(), s(0)),
        ("instantaneous_input_kbps".into(), format!("{:.2}", rates.input_kbps)),
        ("instantaneous_output_kbps".into(), format!("{:.2}", rates.output_kbps)),
        ("instantaneous_input_repl_kbps".into(), s("0.00")),
        ("instantaneous_output_repl_kbps".into(), s("0.00")),
        ("rejected_connections".into(), get(&st.rejected_connections)),
        ("sync_full".into(), s(shared.repl.sync_full.load(std::sync::atomic::Ordering::Relaxed))),
        ("sync_partial_ok".into(), s(shared.repl.sync_partial_ok.load(std::sync::atomic::Ordering::Relaxed))),
        ("sync_partial_err".into(), s(shared.repl.sync_partial_err.load(std::sync::atomic::Ordering::Relaxed))),
        ("expired_keys".into(), s(expired)),
        ("expired_stale_perc".into(), s("0.00")),
        ("expired_time_cap_reached_count".into(), s(0)),
        ("expire_cycle_cpu_milliseconds".into(), s(0)),
        ("evicted_keys".into(), s(shared.ks.evictor().evicted_keys())),
        ("evicted_clients".into(), s(0)),
        ("total_eviction_exceeded_time".into(), s(shared.ks.evictor().exceeded_ms())),
        ("current_eviction_exceeded_time".into(), s(0)),
        ("keyspace_hits".into(), get(&st.keyspace_hits)),
        ("keyspace_misses".into(), get(&st.keyspace_misses)),
        ("pubsub_channels".into(), s(shared.pubsub.channel_count(crate::pubsub::Kind::Channel))),
        ("pubsub_patterns".into(), s(shared.pubsub.numpat())),
        ("pubsubshard_channels".into(), s(shared.pubsub.channel_count(crate::pubsub::Kind::Shard))),
        ("latest_fork_usec".into(), s(0)),
        ("total_forks".into(), s(0)),
        ("migrate_cached_sockets".into(), s(0)),
        ("slave_expires_tracked_keys".into(), s(0)),
        ("active_defrag_hits".into(), s(0)),
        ("active_defrag_misses".into(), s(0)),
        ("active_defrag_key_hits".into(), s(0)),
        ("active_defrag_key_misses".into(), s(0)),
        ("total_active_defrag_time".into(), s(0)),
        ("current_active_defrag_time".into(), s(0)),
        ("tracking_total_keys".into(), s(shared.ks.tracking().stats().1)),
        ("tracking_total_items".into(), s(shared.ks.tracking().stats().2)),
        ("tracking_total_prefixes".into(), s(shared.ks.tracking().stats().3)),
        ("unexpected_error_replies".into(), s(0)),
        ("total_error_replies".into(), s(errors)),
        ("dump_payload_sanitizations".into(), s(0)),
        ("total_reads_processed".into(), get(&st.reads_processed)),
        ("total_writes_processed".into(), get(&st.writes_processed)),
        ("io_threaded_reads_processed".into(), s(0)),
        ("io_threaded_writes_processed".into(), s(0)),
        ("reply_buffer_shrinks".into(), s(0)),
        ("reply_buffer_expands".into(), s(0)),
    ]
}

fn replication_fields(shared: &Shared) -> Fields {
    crate::repl::info_fields(shared).into_iter().map(|(k, v)| (k.into(), v)).collect()
}

fn errorstats_fields(shared: &Shared) -> Fields {
    let map = shared.stats.error_counts();
    map.iter().map(|(code, n)| (format!("errorstat_{code}").into(), format!("count={n}"))).collect()
}

fn keyspace_fields(shared: &Shared) -> Fields {
    (0..shared.ks.databases())
        .filter_map(|db| {
            let (keys, expires) = shared.ks.key_counts(db);
            (keys > 0).then(|| (format!("db{db}").into(), format!("keys={keys},expires={expires},avg_ttl=0")))
        })
        .collect()
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::cmd::testing::Harness;

    fn info_text(h: &mut Harness, args: &[&str]) -> String {
        let mut argv = vec!["INFO"];
        argv.extend_from_slice(args);
        match h.run(&argv) {
            Frame::Verbatim(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("not a bulk: {other:?}"),
        }
    }

    fn headers(text: &str) -> Vec<&str> {
        text.split("\r\n").filter(|l| l.starts_with("# ")).collect()
    }

    fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
        text.split("\r\n").find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
    }

    #[test]
    fn default_info_has_redis_sections_in_order_separated_by_blank_lines() {
        let mut h = Harness::new();
        let text = info_text(&mut h, &[]);
        assert_eq!(
            headers(&text),
            [
                "# Server",
                "# Clients",
                "# Memory",
                "# Persistence",
                "# Stats",
                "# Replication",
                "# CPU",
                "# Modules",
                "# Errorstats",
                "# Cluster",
                "# Keyspace"
            ]
        );
        assert!(text.starts_with("# Server\r\nredis_version:7.0.15\r\n"), "{text}");
        assert!(text.contains("\r\n\r\n# Clients\r\nconnected_clients:1\r\n"), "{text}");
        assert!(text.ends_with("# Keyspace\r\n"), "{text:?}");
        assert_eq!(info_text(&mut h, &["default"]).len() / 100, text.len() / 100);
    }

    #[test]
    fn all_and_everything_add_commandstats_and_latencystats() {
        let mut h = Harness::new();
        for arg in ["all", "EVERYTHING"] {
            let text = info_text(&mut h, &[arg]);
            assert_eq!(headers(&text).len(), 13, "{arg}");
            assert!(text.contains("# Commandstats\r\n") && text.contains("# Latencystats\r\n"));
        }
    }

    #[test]
    fn sections_are_case_insensitive_in_fixed_order_and_unknown_is_empty() {
        let mut h = Harness::new();
        let text = info_text(&mut h, &["CPU", "clients"]);
        assert_eq!(headers(&text), ["# Clients", "# CPU"]);
        assert!(text.contains("clients_in_timeout_table:0\r\n\r\n# CPU\r\nused_cpu_sys:"), "{text}");
        assert_eq!(info_text(&mut h, &["nosuch"]), "");
        assert_eq!(headers(&info_text(&mut h, &["server", "nosuch"])), ["# Server"]);
    }

    #[test]
    fn keyspace_lists_non_empty_databases_with_expires() {
        let mut h = Harness::new();
        h.run(&["SET", "a", "1"]);
        h.run(&["SET", "b", "1", "EX", "100"]);
        h.run(&["SELECT", "5"]);
        h.run(&["SET", "c", "1"]);
        assert_eq!(
            info_text(&mut h, &["keyspace"]),
            "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\ndb5:keys=1,expires=0,avg_ttl=0\r\n"
        );
    }

    #[test]
    fn server_memory_persistence_replication_fields() {
        let mut h = Harness::new();
        let text = info_text(&mut h, &["server", "memory", "persistence", "replication", "cluster"]);
        assert_eq!(field(&text, "redis_mode"), Some("standalone"));
        assert_eq!(field(&text, "process_id"), Some(std::process::id().to_string().as_str()));
        assert_eq!(field(&text, "tcp_port"), Some("6379"));
        assert_eq!(field(&text, "arch_bits"), Some("64"));
        let rss: u64 = field(&text, "used_memory_rss").unwrap().parse().unwrap();
        assert!(rss > 1 << 20, "a real measurement: {rss}");
        assert_eq!(field(&text, "maxmemory_policy"), Some("noeviction"));
        assert_eq!(field(&text, "loading"), Some("0"));
        assert_eq!(field(&text, "aof_enabled"), Some("0"));
        assert_eq!(field(&text, "aof_last_write_status"), Some("ok"));
        assert_eq!(field(&text, "aof_last_bgrewrite_status"), Some("ok"));
        assert_eq!(field(&text, "role"), Some("master"));
        assert_eq!(field(&text, "connected_slaves"), Some("0"));
        assert_eq!(field(&text, "cluster_enabled"), Some("0"));
        assert_eq!(field(&text, "master_replid").map(str::len), Some(40));
    }

    #[test]
    fn stats_count_commands_hits_misses_and_errors() {
        let mut h = Harness::new();
        h.run(&["SET", "a", "1"]);
        h.run(&["GET", "a"]);
        h.run(&["GET", "nope"]);
        h.run(&["NOSUCHCMD"]);
        h.run(&["SET", "a"]);
        let text = info_text(&mut h, &["stats", "errorstats"]);
        // As Redis: commands that ran (SET, GET, GET), not the unknown one, the refused one, or
        // this INFO (counted once it ran).
        assert_eq!(field(&text, "total_commands_processed"), Some("3"));
        assert_eq!(field(&text, "keyspace_hits"), Some("1"));
        assert_eq!(field(&text, "keyspace_misses"), Some("1"));
        assert_eq!(field(&text, "total_error_replies"), Some("2"));
        assert_eq!(field(&text, "errorstat_ERR"), Some("count=2"));
        assert_eq!(field(&text, "expired_keys"), Some("0"));
    }
}
