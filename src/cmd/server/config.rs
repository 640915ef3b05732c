//! `CONFIG GET|SET|RESETSTAT|REWRITE|HELP`: the runtime configuration of [`PARAM_TABLE`], with
//! Redis 7.0's matching rules and error texts. Mirrors the command half of Redis's `config.c`.

use bytes::Bytes;

use super::{SubSpec, help_reply, run_subcommand};
use crate::cmd::Ctx;
use crate::config::params::{self, IMMUTABLE, MULTI, PROTECTED};
use crate::config::value::{Kind, Unit, memory_text};
use crate::config::{Config, PARAM_TABLE, Param};
use crate::error::{Error, Result};
use crate::resp::Frame;

pub(crate) static CONFIG_SUBS: &[SubSpec] = &[
    SubSpec { name: "config|get", arity: -3, handler: config_get },
    SubSpec { name: "config|set", arity: -4, handler: config_set },
    SubSpec { name: "config|resetstat", arity: 2, handler: config_resetstat },
    SubSpec { name: "config|rewrite", arity: 2, handler: config_rewrite },
    SubSpec { name: "config|help", arity: 2, handler: config_help },
];

/// `CONFIG GET|SET|RESETSTAT|REWRITE|HELP ...`.
pub fn config(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    run_subcommand(ctx, argv, CONFIG_SUBS)
}

/// The row named (or aliased) `name`, any case, and the lowercase spelling that matched.
fn find_param(name: &[u8]) -> Option<(&'static Param, &'static str)> {
    std::str::from_utf8(name).ok().and_then(params::lookup)
}

/// `CONFIG GET pattern [pattern ...]`: a map (flat pairs under RESP2) of the matching parameters and
/// aliases. A name without glob characters is looked up exactly (hidden ones too) and echoed as
/// given; patterns match nocase and skip hidden parameters.
fn config_get(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let cfg = ctx.shared.config();
    let mut found: Vec<(Bytes, &'static str, &'static Param)> = Vec::new();
    for pat in &argv[2..] {
        if !pat.iter().any(|c| matches!(c, b'[' | b'*' | b'?')) {
            if let Some((p, spelled)) = find_param(pat)
                && !found.iter().any(|(_, s, _)| *s == spelled)
            {
                found.push((pat.clone(), spelled, p));
            }
            continue;
        }
        for (name, p) in params::listed_names() {
            if !found.iter().any(|(_, s, _)| *s == name) && crate::util::glob_match(pat, name.as_bytes(), true) {
                found.push((Bytes::from_static(name.as_bytes()), name, p));
            }
        }
    }
    let pairs = found
        .into_iter()
        .map(|(name, _, p)| (Frame::Bulk(name), Frame::Bulk(Bytes::from(cfg.param_text(p)))))
        .collect();
    Ok(Frame::Map(pairs))
}

/// Whether `enable-protected-configs` lets this client set protected parameters (`dir`, `dbfilename`).
fn protected_allowed(ctx: &Ctx, cfg: &Config) -> bool {
    match cfg.get("enable-protected-configs").as_deref() {
        Some("yes") => true,
        Some("local") => {
            let addr = &ctx.client.info.addr;
            let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
            host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
        }
        _ => false,
    }
}

/// `CONFIG SET name value [name value ...]`: all or nothing. Names are checked first (unknown,
/// immutable, protected, given twice: the first problem is reported with the name as given), then
/// every value is set on a copy; the first bad value is reported with the parameter's own name and
/// nothing changes.
fn config_set(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    if !argv.len().is_multiple_of(2) {
        return Err(Error::Syntax);
    }
    let current = ctx.shared.config().clone();
    let mut pairs: Vec<(&'static Param, &'static str, &Bytes)> = Vec::new();
    let mut failure: Option<Error> = None;
    for pair in argv[2..].chunks_exact(2) {
        let (name, value) = (&pair[0], &pair[1]);
        let given = String::from_utf8_lossy(name);
        let Some((p, spelled)) = find_param(name) else {
            failure.get_or_insert_with(|| {
                Error::err(format!("Unknown option or number of arguments for CONFIG SET - '{given}'"))
            });
            continue;
        };
        if failure.is_some() {
            continue;
        }
        let why = if p.has(IMMUTABLE) {
            "can't set immutable config"
        } else if p.has(PROTECTED) && !protected_allowed(ctx, &current) {
            "can't set protected config"
        } else if pairs.iter().any(|(_, s, _)| *s == spelled) {
            "duplicate parameter"
        } else {
            pairs.push((p, spelled, value));
            continue;
        };
        failure = Some(Error::err(format!("CONFIG SET failed (possibly related to argument '{given}') - {why}")));
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let mut lock = ctx.shared.config.write().unwrap_or_else(|e| e.into_inner());
    let mut next = lock.clone();
    for (p, spelled, value) in pairs {
        let value = String::from_utf8_lossy(value).into_owned();
        // A multi-argument value is split at spaces (`performInterfaceSet`).
        let args: Vec<String> = if p.has(MULTI) { value.split(' ').map(String::from).collect() } else { vec![value] };
        next.set_param(p, &args).map_err(|why| {
            Error::err(format!("CONFIG SET failed (possibly related to argument '{spelled}') - {why}"))
        })?;
    }
    if (next.port, &next.bind) != (lock.port, &lock.bind)
        && let Some(rebind) = ctx.shared.rebind.get()
    {
        rebind(&next).map_err(|why| {
            crate::warning!("{why}");
            let (arg, why) = if next.port != lock.port {
                ("port", "Unable to listen on this port. Check server logs.")
            } else {
                ("bind", "Failed to bind to specified addresses.")
            };
            Error::err(format!("CONFIG SET failed (possibly related to argument '{arg}') - {why}"))
        })?;
    }
    if next.appendonly != lock.appendonly {
        // Not pretended: turning the AOF on or off needs a restart here (see README).
        crate::warning!(
            "CONFIG SET appendonly {}: takes effect at the next start",
            crate::config::value::yes_no_text(next.appendonly)
        );
    }
    ctx.shared.sync_config_mirrors(&next);
    *lock = next;
    Ok(Frame::ok())
}

/// `CONFIG RESETSTAT`: zero the INFO stats counters.
fn config_resetstat(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    ctx.shared.stats.reset(ctx.shared.ks.expired_keys() as u64);
    ctx.shared.monitor.commands.reset();
    Ok(Frame::ok())
}

/// `CONFIG REWRITE`: write the running configuration back to the file the server started with:
/// each parameter's first line is replaced, its later lines dropped, and parameters that differ
/// from the default and had no line are appended. Comments and other lines are kept.
fn config_rewrite(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    let cfg = ctx.shared.config().clone();
    let Some(path) = cfg.config_file.clone() else {
        return Err(Error::err("The server is running without a config file"));
    };
    let fail = |e: std::io::Error| Error::err(format!("Rewriting config file: {e}"));
    let old = std::fs::read_to_string(&path).map_err(fail)?;
    let text = rewrite_config_text(&old, &cfg);
    let tmp = path.with_extension("rewrite-tmp");
    std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &path)).map_err(fail)?;
    Ok(Frame::ok())
}

/// The config file text `old` with every parameter set to its value in `cfg`: a parameter's first
/// line (under its name or alias) becomes `name value`, its later lines are dropped, and parameters
/// that differ from their default without a line are appended.
fn rewrite_config_text(old: &str, cfg: &Config) -> String {
    let line_for = |p: &Param| {
        let mut v = cfg.param_text(p);
        if let Kind::Int { unit: Unit::Memory | Unit::MemoryOrPercent, .. } = p.kind
            && let Ok(bytes) = v.parse::<i128>()
        {
            v = memory_text(bytes);
        }
        if v.is_empty() || (v.contains([' ', '"', '\'', '\\']) && !p.has(MULTI)) {
            format!("{} \"{}\"", p.name, v.replace('\\', "\\\\").replace('"', "\\\""))
        } else {
            format!("{} {v}", p.name)
        }
    };
    let mut done: Vec<&str> = Vec::new();
    let mut out = String::new();
    for line in old.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        match find_param(first.as_bytes()).filter(|_| !line.trim_start().starts_with('#')) {
            Some((p, _)) if done.contains(&p.name) => {}
            // A primary has no `replicaof` line (Redis's `rewriteConfigReplicaOfOption`).
            Some((p, _)) if p.name == "replicaof" && cfg.param_text(p).is_empty() => done.push(p.name),
            Some((p, _)) => {
                done.push(p.name);
                out.push_str(&line_for(p));
                out.push('\n');
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    let mut header = false;
    for p in PARAM_TABLE {
        if done.contains(&p.name) || cfg.param_text(p) == p.kind.default_text() || p.name == "dir" {
            continue;
        }
        if !header {
            out.push_str("# Generated by CONFIG REWRITE\n");
            header = true;
        }
        out.push_str(&line_for(p));
        out.push('\n');
    }
    out
}

/// `CONFIG HELP`.
fn config_help(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(help_reply(
        &argv[0],
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    ))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use std::sync::atomic::Ordering;

    use crate::cmd::testing::{Harness, arr, bulk, err, ok};
    use crate::resp::Frame;

    /// CONFIG GET's map as the flat name/value array RESP2 clients see.
    fn pairs(f: Frame) -> Frame {
        match f {
            Frame::Map(p) => arr(p.into_iter().flat_map(|(k, v)| [k, v]).collect()),
            other => other,
        }
    }

    #[test]
    fn unknown_subcommand_and_subcommand_arity_errors_name_the_container() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["config", "xyz"]), err("ERR unknown subcommand 'xyz'. Try CONFIG HELP."));
        assert_eq!(h.run(&["CONFIG", "GET"]), err("ERR wrong number of arguments for 'config|get' command"));
        assert_eq!(
            h.run(&["CONFIG", "RESETSTAT", "x"]),
            err("ERR wrong number of arguments for 'config|resetstat' command")
        );
        assert_eq!(h.run(&["CONFIG"]), err("ERR wrong number of arguments for 'config' command"));
    }

    #[test]
    fn config_get_matches_globs_nocase_and_echoes_exact_names() {
        let mut h = Harness::new();
        assert_eq!(pairs(h.run(&["CONFIG", "GET", "PORT"])), arr(vec![bulk("PORT"), bulk("6379")]));
        assert_eq!(pairs(h.run(&["CONFIG", "GET", "port", "Port"])), arr(vec![bulk("port"), bulk("6379")]));
        assert_eq!(pairs(h.run(&["CONFIG", "GET", "nosuch"])), arr(vec![]));
        assert_eq!(
            pairs(h.run(&["CONFIG", "GET", "MAXMEMORY-POL*"])),
            arr(vec![bulk("maxmemory-policy"), bulk("noeviction")])
        );
        assert_eq!(pairs(h.run(&["CONFIG", "GET", "appendonly", "append*"])).clone(), {
            arr(vec![
                bulk("appendonly"),
                bulk("no"),
                bulk("appendfilename"),
                bulk("appendonly.aof"),
                bulk("appendfsync"),
                bulk("everysec"),
                bulk("appenddirname"),
                bulk("appendonlydir"),
            ])
        });
    }

    #[test]
    fn config_set_applies_all_or_nothing() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["CONFIG", "SET", "hz", "20", "maxmemory", "1mb"]), ok());
        assert_eq!(pairs(h.run(&["CONFIG", "GET", "hz"])), arr(vec![bulk("hz"), bulk("20")]));
        assert_eq!(h.shared.config().maxmemory, 1 << 20);
        assert_eq!(
            h.run(&["CONFIG", "SET", "hz", "30", "maxmemory", "lots"]),
            err("ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value")
        );
        assert_eq!(h.shared.config().hz, 20);
    }

    #[test]
    fn config_set_errors_are_redis_texts() {
        let mut h = Harness::new();
        assert_eq!(
            h.run(&["CONFIG", "SET", "XYZ", "1"]),
            err("ERR Unknown option or number of arguments for CONFIG SET - 'XYZ'")
        );
        assert_eq!(
            h.run(&["CONFIG", "SET", "DATABASES", "3"]),
            err("ERR CONFIG SET failed (possibly related to argument 'DATABASES') - can't set immutable config")
        );
        assert_eq!(
            h.run(&["CONFIG", "SET", "hz", "10", "HZ", "11"]),
            err("ERR CONFIG SET failed (possibly related to argument 'HZ') - duplicate parameter")
        );
        assert_eq!(h.run(&["CONFIG", "SET", "hz", "10", "extra"]), err("ERR syntax error"));
        assert_eq!(h.run(&["CONFIG", "SET", "hz"]), err("ERR wrong number of arguments for 'config|set' command"));
        assert_eq!(
            h.run(&["CONFIG", "SET", "appendfsync", "sometimes"]),
            err(
                "ERR CONFIG SET failed (possibly related to argument 'appendfsync') - argument(s) must be one of the following: everysec, always, no"
            )
        );
        assert_eq!(
            h.run(&["CONFIG", "SET", "maxmemory-policy", "foo"]),
            err(
                "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"
            )
        );
        assert_eq!(
            h.run(&["CONFIG", "SET", "appendonly", "maybe"]),
            err("ERR CONFIG SET failed (possibly related to argument 'appendonly') - argument must be 'yes' or 'no'")
        );
    }

    #[test]
    fn limits_are_settable_with_redis_ranges_and_texts() {
        let mut h = Harness::new();
        assert_eq!(
            pairs(h.run(&["CONFIG", "GET", "client-output-buffer-limit"])),
            arr(vec![
                bulk("client-output-buffer-limit"),
                bulk("normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60")
            ])
        );
        assert_eq!(h.run(&["CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 2mb 3"]), ok());
        assert_eq!(h.shared.config().client_output_buffer_limit[0], (1 << 20, 2 << 20, 3));
        let fail = |why: &str| {
            err(&format!("ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - {why}"))
        };
        assert_eq!(
            h.run(&["CONFIG", "SET", "client-output-buffer-limit", "normal 1"]),
            fail("Wrong number of arguments in buffer limit configuration.")
        );
        assert_eq!(
            h.run(&["CONFIG", "SET", "client-output-buffer-limit", "bogus 1 2 3"]),
            fail("Invalid client class specified in buffer limit configuration.")
        );
        assert_eq!(
            h.run(&["CONFIG", "SET", "client-output-buffer-limit", "normal x 0 0"]),
            fail("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
        );
        assert_eq!(
            h.run(&["CONFIG", "SET", "client-query-buffer-limit", "1000"]),
            err(
                "ERR CONFIG SET failed (possibly related to argument 'client-query-buffer-limit') - argument must be between 1048576 and 9223372036854775807 inclusive"
            )
        );
        assert_eq!(
            h.run(&["CONFIG", "SET", "maxclients", "0"]),
            err(
                "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive"
            )
        );
        assert_eq!(h.run(&["CONFIG", "SET", "maxmemory", "10mb"]), ok());
        assert_eq!(h.shared.maxmemory.load(Ordering::Relaxed), 10 << 20);
    }

    #[test]
    fn config_get_star_lists_every_redis_name_and_exact_names_find_hidden_ones() {
        let mut h = Harness::new();
        let Frame::Map(all) = h.run(&["CONFIG", "GET", "*"]) else { panic!() };
        let mut names: Vec<String> = all
            .iter()
            .map(|(k, _)| match k {
                Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        names.sort();
        let fixture: Vec<&str> = include_str!("../../../tests/fixtures/config-get-names-7.0.15.txt").lines().collect();
        assert_eq!(names, fixture);
        assert_eq!(pairs(h.run(&["CONFIG", "GET", "watchdog*"])), arr(vec![]));
        assert_eq!(pairs(h.run(&["CONFIG", "GET", "watchdog-period"])), arr(vec![bulk("watchdog-period"), bulk("0")]));
        assert_eq!(pairs(h.run(&["CONFIG", "GET", "worker-threads"])), arr(vec![bulk("worker-threads"), bulk("0")]));
        assert_eq!(
            pairs(h.run(&["CONFIG", "GET", "hash-max-ziplist-entries", "hash-max-listpack-entries", "HZ", "hz"])),
            arr(vec![
                bulk("hash-max-ziplist-entries"),
                bulk("512"),
                bulk("hash-max-listpack-entries"),
                bulk("512"),
                bulk("HZ"),
                bulk("10")
            ])
        );
    }

    #[test]
    fn config_set_of_many_pairs_is_atomic_and_names_the_failing_parameter() {
        let mut h = Harness::new();
        // A value error names the parameter as the table spells it (the alias when given one).
        assert_eq!(
            h.run(&["CONFIG", "SET", "maxmemory", "10mb", "save", "900 1", "HZ", "abc"]),
            err(
                "ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer"
            )
        );
        assert_eq!(h.shared.config().maxmemory, 0);
        assert_eq!(h.shared.config().save, "");
        assert_eq!(
            h.run(&["CONFIG", "SET", "HASH-MAX-ZIPLIST-ENTRIES", "x"]),
            err(
                "ERR CONFIG SET failed (possibly related to argument 'hash-max-ziplist-entries') - argument couldn't be parsed into an integer"
            )
        );
        // A name and its alias are two parameters to CONFIG SET, as in Redis: the last one wins.
        assert_eq!(h.run(&["CONFIG", "SET", "hash-max-ziplist-entries", "5", "hash-max-listpack-entries", "6"]), ok());
        assert_eq!(
            pairs(h.run(&["CONFIG", "GET", "hash-max-ziplist-entries"])),
            arr(vec![bulk("hash-max-ziplist-entries"), bulk("6")])
        );
        // The first problem with the names wins, whatever its kind.
        assert_eq!(
            h.run(&["CONFIG", "SET", "databases", "3", "bogus", "1"]),
            err("ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config")
        );
        assert_eq!(
            h.run(&["CONFIG", "SET", "hz", "5", "bogus", "1", "databases", "3"]),
            err("ERR Unknown option or number of arguments for CONFIG SET - 'bogus'")
        );
        assert_eq!(
            h.run(&["CONFIG", "SET", "dir", "/tmp"]),
            err("ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config")
        );
        assert_eq!(
            h.run(&["CONFIG", "SET", "slowlog-log-slower-than", "-2"]),
            err(
                "ERR CONFIG SET failed (possibly related to argument 'slowlog-log-slower-than') - argument must be between -1 and 9223372036854775807 inclusive"
            )
        );
        assert_eq!(
            h.run(&[
                "CONFIG",
                "SET",
                "slowlog-log-slower-than",
                "5",
                "slowlog-max-len",
                "7",
                "latency-monitor-threshold",
                "3",
                "latency-tracking",
                "no",
                "latency-tracking-info-percentiles",
                "90 99.5"
            ]),
            ok()
        );
        let c = h.shared.config().clone();
        assert_eq!((c.slowlog_log_slower_than, c.slowlog_max_len, c.latency_monitor_threshold), (5, 7, 3));
        assert!(!c.latency_tracking);
        assert_eq!(c.latency_tracking_info_percentiles, [90.0, 99.5]);
        assert_eq!(h.run(&["CONFIG", "SET", "notify-keyspace-events", "KEA", "shutdown-on-sigint", "now save"]), ok());
        assert_eq!(
            pairs(h.run(&["CONFIG", "GET", "notify-keyspace-events"])),
            arr(vec![bulk("notify-keyspace-events"), bulk("AKE")])
        );
        assert_eq!(
            pairs(h.run(&["CONFIG", "GET", "shutdown-on-sigint"])),
            arr(vec![bulk("shutdown-on-sigint"), bulk("save now")])
        );
    }

    #[test]
    fn config_rewrite_round_trips_inert_and_multi_argument_parameters() {
        let mut h = Harness::new();
        let dir = std::env::temp_dir().join(format!("flurrydb-rewrite2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("redis.conf");
        std::fs::write(&path, "slave-read-only yes\nsave 900 1\nsave 300 10\n").unwrap();
        h.shared.config.write().unwrap().config_file = Some(path.clone());
        let set = [
            "replica-read-only",
            "no",
            "save",
            "60 5",
            "masterauth",
            "p w\"d",
            "oom-score-adj-values",
            "1 2 3",
            "client-output-buffer-limit",
            "pubsub 1mb 2mb 3",
            "latency-tracking-info-percentiles",
            "",
        ];
        let mut argv = vec!["CONFIG", "SET"];
        argv.extend(set);
        assert_eq!(h.run(&argv), ok());
        assert_eq!(h.run(&["CONFIG", "REWRITE"]), ok());
        let text = std::fs::read_to_string(&path).unwrap();
        let mut reread = crate::config::Config::default();
        reread.apply_file_text(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let running = h.shared.config().clone();
        for p in crate::config::PARAM_TABLE.iter().filter(|p| p.name != "dir") {
            assert_eq!(reread.param_text(p), running.param_text(p), "'{}' after rewrite:\n{text}", p.name);
        }
        assert!(text.starts_with("replica-read-only no\nsave 60 5\n"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn config_resetstat_zeroes_counters() {
        let mut h = Harness::new();
        h.run(&["GET", "missing"]);
        assert_eq!(h.run(&["CONFIG", "RESETSTAT"]), ok());
        assert_eq!(h.shared.stats.keyspace_misses.get(), 0);
        assert!(h.shared.stats.error_counts().is_empty());
    }

    #[test]
    fn config_rewrite_without_file_is_refused_and_with_one_updates_it() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["CONFIG", "REWRITE"]), err("ERR The server is running without a config file"));
        let dir = std::env::temp_dir().join(format!("flurrydb-rewrite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("redis.conf");
        std::fs::write(&path, "# keep me\nhz 10\nport 7000\nhz 12\n").unwrap();
        h.shared.config.write().unwrap().config_file = Some(path.clone());
        assert_eq!(
            h.run(&["CONFIG", "SET", "hz", "25", "maxmemory-policy", "allkeys-lru", "maxmemory", "100mb"]),
            ok()
        );
        assert_eq!(h.run(&["CONFIG", "REWRITE"]), ok());
        let text = std::fs::read_to_string(&path).unwrap();
        // Memory values in their largest whole unit, as Redis writes them.
        assert_eq!(
            text,
            "# keep me\nhz 25\nport 6379\n# Generated by CONFIG REWRITE\nmaxmemory 100mb\nmaxmemory-policy allkeys-lru\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn config_help_lists_subcommands() {
        let mut h = Harness::new();
        let Frame::Array(lines) = h.run(&["config", "help"]) else { panic!() };
        assert_eq!(lines[0], Frame::simple("CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
        assert_eq!(lines.len(), 11);
        assert_eq!(lines[10], Frame::simple("    Prints this help."));
    }
}
