//! The configuration's specification: command line, config file, the table's types, ranges and
//! aliases, and that every parameter reads back what it reports.

use super::params::{self, HIDDEN, INERT, MULTI, PARAM_TABLE};
use super::value::Kind;
use super::*;

fn cli(args: &[&str]) -> Result<Config, String> {
    let argv = std::iter::once("flurrydb-server").chain(args.iter().copied()).map(String::from);
    match Cli::from_args(argv) {
        Invocation::Run(c) => c.into_config().map_err(|e| e.0),
        other => Err(format!("{other:?}")),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
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
    // `--save` with no value (last, or before another option) is `--save ""`.
    let c = cli(&["--save", "900", "1"]).and_then(|_| cli(&["--save", "--port", "1235"])).unwrap();
    assert_eq!((c.save.as_str(), c.port), ("", 1235));
    assert_eq!(cli(&["--port", "1236", "--save"]).unwrap().port, 1236);
    // Any parameter of the table, and values with spaces or quotes, survive the trip through a line.
    let c =
        cli(&["--hash-max-ziplist-entries", "7", "--masterauth", "a \"b\" c", "--bind", "127.0.0.1", "::1"]).unwrap();
    assert_eq!(c.get("hash-max-listpack-entries").unwrap(), "7");
    assert_eq!(c.get("masterauth").unwrap(), "a \"b\" c");
    assert_eq!(c.bind, ["127.0.0.1", "::1"]);
    assert_eq!(cli(&["--version"]).err().as_deref(), Some("Version"));
    assert_eq!(cli(&["-v"]).err().as_deref(), Some("Version"));
    assert_eq!(cli(&["-h"]).err().as_deref(), Some("Help"));
    assert_eq!(cli(&["--help"]).err().as_deref(), Some("Help"));
}

#[test]
fn command_line_overrides_config_file() {
    let dir = std::env::temp_dir().join(format!("flurrydb-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("redis.conf");
    std::fs::write(&path, "# comment\nport 7001\nappendfsync no\nsave 900 1\nsave 300 10\nmaxmemory 1mb\n").unwrap();
    let c = cli(&[path.to_str().unwrap(), "--port", "7002"]).unwrap();
    assert_eq!(c.port, 7002);
    assert_eq!(c.appendfsync, FsyncPolicy::No);
    assert_eq!(c.maxmemory, 1 << 20);
    assert_eq!(c.save, "900 1 300 10", "later save lines of a file add save points");
    assert_eq!(cli(&[path.to_str().unwrap(), "--save", ""]).unwrap().save, "");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_or_malformed_option_names_it_and_its_line() {
    let mut c = Config::default();
    let e = c.apply_file_text("port 1\nbogus-thing 3\n").unwrap_err();
    assert!(e.0.contains("line 2") && e.0.contains(">>> 'bogus-thing 3'"), "{}", e.0);
    assert!(e.0.ends_with("\nBad directive or wrong number of arguments"), "{}", e.0);
    let e = c.apply_file_text("appendonly maybe\n").unwrap_err();
    assert!(e.0.contains("appendonly maybe") && e.0.ends_with("argument must be 'yes' or 'no'"), "{}", e.0);
    let e = c.apply_file_text("hz 1 2\n").unwrap_err();
    assert!(e.0.ends_with("\nwrong number of arguments"), "{}", e.0);
    let e = c.apply_file_text("rename-command FLUSHALL \"\"\n").unwrap_err();
    assert!(e.0.ends_with("'rename-command' is not supported by flurrydb"), "{}", e.0);
    assert!(cli(&["--appendfsync", "sometimes"]).unwrap_err().contains("appendfsync \"sometimes\""));
    assert!(cli(&["--no-such-flag", "1"]).unwrap_err().contains("no-such-flag \"1\""));
    let e = cli(&["--logfile", "/nonexistent-flurrydb-dir/server.log"]).unwrap_err();
    assert!(e.ends_with("\nCan't open the log file: No such file or directory"), "{e}");
    // Old directives Redis 7.0 still accepts and ignores.
    c.apply_file_text("list-max-ziplist-entries 512\nlua-replicate-commands yes\n").unwrap();
}

#[test]
fn include_reads_another_file_in_place() {
    let dir = std::env::temp_dir().join(format!("flurrydb-include-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inner = dir.join("inner.conf");
    std::fs::write(&inner, "hz 33\nmaxmemory-policy allkeys-lru\n").unwrap();
    let mut c = Config::default();
    c.apply_file_text(&format!("hz 5\ninclude {}\n", inner.display())).unwrap();
    assert_eq!((c.hz, c.maxmemory_policy.as_str()), (33, "allkeys-lru"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn debian_stock_redis_conf_loads_unchanged() {
    let mut c = Config::default();
    c.apply_file_text(include_str!("../../tests/fixtures/redis-7.0.15.conf")).unwrap();
    assert_eq!(c.bind, ["127.0.0.1", "-::1"]);
    assert_eq!(c.client_output_buffer_limit[1], (256 << 20, 64 << 20, 60));
    let inert = c.inert_settings();
    assert!(inert.contains(&"daemonize") && !inert.contains(&"pidfile"), "{inert:?}");
    assert!(!inert.contains(&"appendfsync") && !inert.contains(&"rdbcompression"), "{inert:?}");
    assert!(Config::default().inert_settings().is_empty());
}

#[test]
fn param_table_names_and_aliases_are_unique_and_lowercase() {
    let mut seen = std::collections::HashSet::new();
    for p in PARAM_TABLE {
        for name in std::iter::once(p.name).chain(p.alias) {
            assert!(!name.is_empty() && name == name.to_ascii_lowercase(), "'{name}' must be lowercase");
            assert!(seen.insert(name), "'{name}' appears twice");
            assert!(!DEPRECATED_DIRECTIVES.contains(&name) && !UNSUPPORTED_DIRECTIVES.contains(&name));
        }
        if p.field.is_some() {
            assert!(!p.has(params::HIDDEN) || !p.has(INERT), "'{}'", p.name);
        }
    }
}

#[test]
fn typed_fields_default_to_their_rows_default() {
    let c = Config::default();
    for p in PARAM_TABLE.iter().filter(|p| p.field.is_some() && p.name != "dir") {
        assert_eq!(c.param_text(p), p.kind.default_text(), "default of '{}'", p.name);
    }
    assert!(c.generic.is_empty());
}

#[test]
fn config_get_star_lists_what_redis_7_0_15_lists() {
    let ours: std::collections::BTreeSet<&str> = params::listed_names().map(|(n, _)| n).collect();
    let redis: std::collections::BTreeSet<&str> =
        include_str!("../../tests/fixtures/config-get-names-7.0.15.txt").lines().collect();
    assert_eq!(ours, redis);
}

#[test]
fn aliases_read_and_write_the_same_value() {
    let mut c = Config::default();
    c.apply("HASH-MAX-ZIPLIST-ENTRIES", &strings(&["10"])).unwrap();
    assert_eq!(c.get("hash-max-listpack-entries").unwrap(), "10");
    c.apply("slaveof", &strings(&["10.0.0.1", "6380"])).unwrap();
    assert_eq!(c.get("replicaof").unwrap(), "10.0.0.1 6380");
    c.apply("lua-time-limit", &strings(&["7"])).unwrap();
    assert_eq!(c.get("busy-reply-threshold").unwrap(), "7");
    c.apply("slave-read-only", &strings(&["no"])).unwrap();
    assert_eq!(c.get("replica-read-only").unwrap(), "no");
}

#[test]
fn values_are_checked_with_redis_ranges_and_texts() {
    let mut c = Config::default();
    let mut set = |name: &str, v: &str| c.apply(name, &strings(&[v]));
    assert_eq!(set("hz", "abc").unwrap_err(), "argument couldn't be parsed into an integer");
    assert_eq!(set("timeout", "-1").unwrap_err(), "argument must be between 0 and 2147483647 inclusive");
    assert_eq!(set("maxclients", "0").unwrap_err(), "argument must be between 1 and 4294967295 inclusive");
    assert_eq!(set("active-defrag-cycle-min", "100").unwrap_err(), "argument must be between 1 and 99 inclusive");
    assert_eq!(set("maxmemory", "-1").unwrap_err(), "argument must be a memory value");
    assert_eq!(
        set("maxmemory-policy", "foo").unwrap_err(),
        "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, \
         allkeys-lru, allkeys-lfu, allkeys-random, noeviction"
    );
    assert_eq!(set("list-max-listpack-size", "0"), Ok(()));
    assert_eq!(set("rdbcompression", "maybe").unwrap_err(), "argument must be 'yes' or 'no'");
    assert_eq!(set("appendfilename", "a/b").unwrap_err(), "appendfilename can't be a path, just a filename");
    assert_eq!(set("appendfilename", "").unwrap_err(), "appendfilename can't be empty");
    assert_eq!(set("supervised", "AUTO"), Ok(()));
    assert_eq!(set("hz", "1000"), Ok(()));
    assert_eq!(c.hz, 500, "hz is capped to 500 as in Redis");
    assert_eq!(c.get("supervised").unwrap(), "auto");
    assert_eq!(
        c.apply("proc-title-template", &strings(&["{title} {nope}"])).unwrap_err(),
        "template format is invalid or contains unknown variables"
    );
    assert!(c.apply("activedefrag", &strings(&["yes"])).unwrap_err().starts_with("Active defragmentation cannot"));
    assert_eq!(c.apply("oom-score-adj", &strings(&["relative"])), Ok(()));
    assert_eq!(c.get("oom-score-adj").unwrap(), "yes");
}

/// A value different from the default that `p` accepts, as CONFIG SET would send it.
fn other_value(p: &Param) -> String {
    let special = [
        ("bind", "127.0.0.1 ::1"),
        ("dir", "/"),
        ("loglevel", "warning"),
        ("client-output-buffer-limit", "normal 1mb 2mb 3 pubsub 4 5 6"),
        ("latency-tracking-info-percentiles", "50 99.99"),
        ("save", "900 1 300 10"),
        ("oom-score-adj", "absolute"),
        ("oom-score-adj-values", "1 2 3"),
        ("notify-keyspace-events", "KEg$"),
        ("replicaof", "10.0.0.1 6380"),
        ("proc-title-template", "{title} {port}"),
        ("shutdown-on-sigint", "save now"),
        ("shutdown-on-sigterm", "nosave"),
        ("appendfilename", "other.aof"),
        ("appenddirname", "otherdir"),
        ("cluster-announce-hostname", "h.example"),
    ];
    if let Some((_, v)) = special.iter().find(|(n, _)| *n == p.name) {
        return v.to_string();
    }
    match p.kind {
        Kind::Bool { default } => value::yes_no_text(!default).into(),
        Kind::Int { min, max, default, unit } => value::int_text(if default < max { default + 1 } else { min }, unit),
        Kind::Enum { values, default } => values.iter().find(|v| **v != default).unwrap().to_string(),
        Kind::Str { .. } => "some value".into(),
        Kind::Special { .. } => panic!("give special '{}' a value in this test", p.name),
    }
}

/// Set `p` from the text CONFIG GET rendered for it, as CONFIG SET does.
fn set_rendered(cfg: &mut Config, p: &Param, value: &str) -> Result<(), String> {
    let args: Vec<String> =
        if p.has(MULTI) { value.split(' ').map(String::from).collect() } else { vec![value.to_string()] };
    cfg.set_param(p, &args)
}

#[test]
fn every_parameter_round_trips_and_touches_only_itself() {
    let defaults = Config::default();
    let names: Vec<&Param> = PARAM_TABLE.iter().collect();
    // `activedefrag yes` is refused (no defragmenting allocator): it has one value.
    for p in names.iter().filter(|p| p.name != "activedefrag") {
        let value = other_value(p);
        let mut changed = Config::default();
        set_rendered(&mut changed, p, &value).unwrap_or_else(|e| panic!("{} {value:?}: {e}", p.name));
        let rendered = changed.param_text(p);
        assert_ne!(rendered, defaults.param_text(p), "'{}' did not change", p.name);
        for cfg in [&defaults, &changed] {
            let text = cfg.param_text(p);
            // An empty replicaof is written `replicaof no one`, never read back from "".
            if p.name == "replicaof" && text.is_empty() {
                continue;
            }
            let mut again = cfg.clone();
            set_rendered(&mut again, p, &text).unwrap_or_else(|e| panic!("{} {text:?}: {e}", p.name));
            assert_eq!(again.param_text(p), text, "'{}' does not round-trip", p.name);
        }
        for q in &names {
            if q.name != p.name {
                assert_eq!(changed.param_text(q), defaults.param_text(q), "setting '{}' changed '{}'", p.name, q.name);
            }
        }
        assert_eq!(changed.inert_settings(), if p.has(INERT) { vec![p.name] } else { vec![] }, "'{}'", p.name);
    }
    assert!(names.iter().any(|p| p.has(HIDDEN)));
}

#[test]
fn readme_names_every_parameter_without_effect() {
    let readme = include_str!("../../README.md");
    let section = readme.split("## Configuration").nth(1).and_then(|s| s.split("\n## ").next()).unwrap();
    for p in PARAM_TABLE {
        let listed = section.contains(&format!("`{}`", p.name));
        assert!(listed, "README's Configuration section must name '{}'", p.name);
        if !p.has(INERT) {
            let inert_part = section.split("no effect yet").nth(1).unwrap().split("Known differences").next().unwrap();
            assert!(!inert_part.contains(&format!("`{}`", p.name)), "'{}' has an effect", p.name);
        }
    }
}
