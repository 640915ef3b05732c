//! `CONFIG GET|SET|RESETSTAT|REWRITE|HELP`: the runtime configuration of [`Config::PARAMS`], with
//! Redis 7.0's matching rules and error texts. Mirrors the command half of Redis's `config.c`.

use bytes::Bytes;

use super::{SubSpec, help_reply, run_subcommand};
use crate::cmd::Ctx;
use crate::config::Config;
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

/// The parameter named `name`, case-insensitively.
fn find_param(name: &[u8]) -> Option<&'static str> {
    Config::PARAMS.iter().copied().find(|p| p.as_bytes().eq_ignore_ascii_case(name))
}

/// `CONFIG GET pattern [pattern ...]`: a map (flat pairs under RESP2) of the matching parameters. A name
/// without glob characters is looked up exactly and echoed as given; patterns match nocase.
fn config_get(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let cfg = ctx.shared.config();
    let mut found: Vec<(Bytes, &'static str)> = Vec::new();
    for pat in &argv[2..] {
        if !pat.iter().any(|c| matches!(c, b'[' | b'*' | b'?')) {
            if let Some(p) = find_param(pat)
                && !found.iter().any(|(_, q)| *q == p)
            {
                found.push((pat.clone(), p));
            }
            continue;
        }
        for p in Config::PARAMS {
            if !found.iter().any(|(_, q)| q == p) && crate::util::glob_match(pat, p.as_bytes(), true) {
                found.push((Bytes::from_static(p.as_bytes()), p));
            }
        }
    }
    let pairs = found
        .into_iter()
        .map(|(name, p)| (Frame::Bulk(name), Frame::Bulk(Bytes::from(cfg.get(p).unwrap_or_default()))))
        .collect();
    Ok(Frame::Map(pairs))
}

/// `CONFIG SET name value [name value ...]`: all or nothing; the first bad name or value is
/// reported in Redis's words and nothing changes.
fn config_set(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    if !argv.len().is_multiple_of(2) {
        return Err(Error::Syntax);
    }
    let mut pairs: Vec<(&'static str, &Bytes, &Bytes)> = Vec::new();
    let mut failure: Option<Error> = None;
    for pair in argv[2..].chunks_exact(2) {
        let (name, value) = (&pair[0], &pair[1]);
        let given = String::from_utf8_lossy(name);
        let Some(p) = find_param(name) else {
            failure.get_or_insert_with(|| {
                Error::err(format!("Unknown option or number of arguments for CONFIG SET - '{given}'"))
            });
            continue;
        };
        if failure.is_some() {
            continue;
        }
        let why = if Config::IMMUTABLE.contains(&p) {
            "can't set immutable config"
        } else if pairs.iter().any(|(q, _, _)| *q == p) {
            "duplicate parameter"
        } else {
            pairs.push((p, name, value));
            continue;
        };
        failure = Some(Error::err(format!("CONFIG SET failed (possibly related to argument '{given}') - {why}")));
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let mut lock = ctx.shared.config.write().unwrap_or_else(|e| e.into_inner());
    let mut next = lock.clone();
    for (p, name, value) in pairs {
        let value = String::from_utf8_lossy(value).into_owned();
        let args: Vec<String> =
            if p == "bind" { value.split_whitespace().map(String::from).collect() } else { vec![value] };
        next.apply(p, &args).map_err(|why| {
            Error::err(format!(
                "CONFIG SET failed (possibly related to argument '{}') - {why}",
                String::from_utf8_lossy(name)
            ))
        })?;
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

/// The config file text `old` with every parameter set to its value in `cfg`.
fn rewrite_config_text(old: &str, cfg: &Config) -> String {
    let defaults = Config::default();
    let line_for = |p: &str| {
        let v = cfg.get(p).unwrap_or_default();
        if v.is_empty() || (v.contains([' ', '"', '\'', '\\']) && p != "bind" && p != "save") {
            format!("{p} \"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
        } else {
            format!("{p} {v}")
        }
    };
    let mut done: Vec<&str> = Vec::new();
    let mut out = String::new();
    for line in old.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        match find_param(first.as_bytes()).filter(|_| !line.trim_start().starts_with('#')) {
            Some(p) if done.contains(&p) => {}
            Some(p) => {
                done.push(p);
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
    for p in Config::PARAMS {
        if done.contains(p) || cfg.get(p) == defaults.get(p) || *p == "dir" {
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
            pairs(h.run(&["CONFIG", "GET", "MAXMEM*"])),
            arr(vec![bulk("maxmemory"), bulk("0"), bulk("maxmemory-policy"), bulk("noeviction")])
        );
        assert_eq!(pairs(h.run(&["CONFIG", "GET", "appendonly", "append*"])).clone(), {
            arr(vec![
                bulk("appendonly"),
                bulk("no"),
                bulk("appendfilename"),
                bulk("appendonly.aof"),
                bulk("appendfsync"),
                bulk("everysec"),
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
        assert_eq!(h.run(&["CONFIG", "SET", "hz", "25", "maxmemory-policy", "allkeys-lru"]), ok());
        assert_eq!(h.run(&["CONFIG", "REWRITE"]), ok());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "# keep me\nhz 25\nport 6379\n# Generated by CONFIG REWRITE\nmaxmemory-policy allkeys-lru\n");
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
