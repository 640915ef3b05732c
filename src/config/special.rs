//! Parameters with a syntax of their own: `save`, `bind`, `dir`, `replicaof`, `client-output-buffer-limit`,
//! `oom-score-adj-values`, `notify-keyspace-events`, `latency-tracking-info-percentiles`, `loglevel`,
//! and the checks of string parameters (file names, hostnames, the process title template). Mirrors
//! the `setConfig*Option` / `isValid*` functions of Redis's `config.c` and `keyspaceEventsStringToFlags`
//! in `notify.c`.

use super::Config;
use super::value::parse_memory;

/// `pathIsBaseName`: no `/` in the name.
fn base_name(v: &str, what: &str, kind: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err(format!("{what} can't be empty"));
    }
    if v.contains('/') {
        return Err(format!("{what} can't be a path, just a {kind}"));
    }
    Ok(())
}

pub fn check_appendfilename(v: &str) -> Result<(), String> {
    base_name(v, "appendfilename", "filename")
}

pub fn check_appenddirname(v: &str) -> Result<(), String> {
    base_name(v, "appenddirname", "dirname")
}

pub fn check_dbfilename(v: &str) -> Result<(), String> {
    if v.contains('/') { Err("dbfilename can't be a path, just a filename".into()) } else { Ok(()) }
}

/// `isValidAnnouncedHostname`.
pub fn check_hostname(v: &str) -> Result<(), String> {
    if v.len() >= 256 {
        return Err("Hostnames must be less than 256 characters".into());
    }
    if !v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.') {
        return Err("Hostnames may only contain alphanumeric characters, hyphens or dots".into());
    }
    Ok(())
}

/// `validateProcTitleTemplate`: every `{variable}` is known (`{{` is a literal brace) and the title
/// expanded with an empty `{title}` is not blank.
pub fn check_proc_title(v: &str) -> Result<(), String> {
    let bad = || "template format is invalid or contains unknown variables".to_string();
    let (mut out, mut rest) = (String::new(), v);
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(quoted) = after.strip_prefix('{') {
            out.push('{');
            rest = quoted;
            continue;
        }
        let end = after.find('}').ok_or_else(bad)?;
        out.push_str(match &after[..end] {
            "title" | "server-mode" | "unixsocket" => "",
            "listen-addr" => "*:0",
            "config-file" => "-",
            "port" | "tls-port" => "0",
            _ => return Err(bad()),
        });
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if out.trim_matches(' ').is_empty() { Err(bad()) } else { Ok(()) }
}

/// The arguments of a multi-argument parameter: one non-empty argument is split at spaces, so that
/// `--save "900 1"` and CONFIG SET's single value read like a config file line.
pub fn split_multi(args: &[String]) -> Vec<String> {
    match args {
        [one] if !one.is_empty() => one.split(' ').filter(|w| !w.is_empty()).map(String::from).collect(),
        _ => args.to_vec(),
    }
}

/// `save <seconds> <changes> ...` or `save ""`.
pub fn parse_save(_: &Config, args: &[String]) -> Result<String, String> {
    let args = split_multi(args);
    let args: &[String] = if matches!(args.as_slice(), [e] if e.is_empty()) { &[] } else { &args };
    let bad = || "Invalid save parameters".to_string();
    if args.len() % 2 == 1 {
        return Err(bad());
    }
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let n: i64 = a.parse().map_err(|_| bad())?;
        if (i % 2 == 0 && n < 1) || n < 0 {
            return Err(bad());
        }
        out.push(n.to_string());
    }
    Ok(out.join(" "))
}

/// `bind addr [addr ...]` (at most 16; a single empty argument binds nothing).
pub fn parse_bind(_: &Config, args: &[String]) -> Result<String, String> {
    let args = split_multi(args);
    if args.len() > 16 {
        return Err("Too many bind addresses specified.".into());
    }
    Ok(args.join(" "))
}

/// `dir path`.
pub fn parse_dir(_: &Config, args: &[String]) -> Result<String, String> {
    match args {
        [d] => Ok(d.clone()),
        _ => Err("wrong number of arguments".into()),
    }
}

/// `replicaof host port` or `replicaof no one`.
pub fn parse_replicaof(_: &Config, args: &[String]) -> Result<String, String> {
    let args = split_multi(args);
    let [host, port] = args.as_slice() else { return Err("wrong number of arguments".into()) };
    if host.eq_ignore_ascii_case("no") && port.eq_ignore_ascii_case("one") {
        return Ok(String::new());
    }
    match port.parse::<i64>() {
        Ok(p) if (0..=65535).contains(&p) => Ok(format!("{host} {p}")),
        _ => Err("Invalid master port".into()),
    }
}

/// `oom-score-adj-values <master> <replica> <bgchild>`, each within -2000..=2000.
pub fn parse_oom_values(_: &Config, args: &[String]) -> Result<String, String> {
    let args = split_multi(args);
    if args.len() != 3 {
        return Err("wrong number of arguments".into());
    }
    let mut out = Vec::new();
    for a in &args {
        match a.parse::<i64>() {
            Ok(n) if (-2000..=2000).contains(&n) => out.push(n.to_string()),
            _ => return Err("Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into()),
        }
    }
    Ok(out.join(" "))
}

/// `notify-keyspace-events <classes>`, rendered in Redis's order (`keyspaceEventsFlagsToString`).
pub fn parse_notify_events(_: &Config, args: &[String]) -> Result<String, String> {
    let [v] = args else { return Err("wrong number of arguments".into()) };
    const ALL: &str = "g$lshzxetd";
    if !v.chars().all(|c| "Ag$lshzxeKEtmdn".contains(c)) {
        return Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into());
    }
    let has = |c: char| v.contains(c) || (v.contains('A') && ALL.contains(c));
    let mut out = String::new();
    if ALL.chars().all(has) {
        out.push('A');
        if has('n') {
            out.push('n');
        }
    } else {
        out.extend("g$lshzxetdn".chars().filter(|&c| has(c)));
    }
    out.extend("KEm".chars().filter(|&c| has(c)));
    Ok(out)
}

/// `latency-tracking-info-percentiles p [p ...]` (each in 0..=100; `""` for none).
pub fn parse_percentiles(_: &Config, args: &[String]) -> Result<String, String> {
    let args = split_multi(args);
    let args: &[String] = if matches!(args.as_slice(), [e] if e.is_empty()) { &[] } else { &args };
    let mut out = Vec::new();
    for a in args {
        let p: f64 = a
            .parse()
            .ok()
            .filter(|p: &f64| p.is_finite())
            .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
        if !(0.0..=100.0).contains(&p) {
            return Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into());
        }
        out.push(percentile_text(p));
    }
    Ok(out.join(" "))
}

/// `%f` with trailing zeros (and a trailing dot) trimmed, as Redis's `trimDoubleString`.
pub fn percentile_text(p: f64) -> String {
    let s = format!("{p:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `loglevel`: Redis 7.0's four levels, and `nothing` (Redis 7.2's, kept for existing setups).
pub fn parse_loglevel(_: &Config, args: &[String]) -> Result<String, String> {
    let [v] = args else { return Err("wrong number of arguments".into()) };
    let v = v.to_ascii_lowercase();
    match v.as_str() {
        "debug" | "verbose" | "notice" | "warning" | "nothing" => Ok(v),
        _ => Err("argument(s) must be one of the following: debug, verbose, notice, warning".into()),
    }
}

/// The classes of `client-output-buffer-limit`, in the order Redis reports them.
pub const OUTPUT_BUFFER_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// `client-output-buffer-limit <class> <hard> <soft> <soft seconds> [<class> ...]`: the classes given
/// replace the current ones, all or nothing.
pub fn parse_output_buffer_limits(cfg: &Config, args: &[String]) -> Result<String, String> {
    let words = split_multi(args);
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut next = cfg.client_output_buffer_limit;
    for group in words.chunks_exact(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string();
        let hard = parse_memory(&group[1]).ok_or_else(bad)?;
        let soft = parse_memory(&group[2]).ok_or_else(bad)?;
        let secs = group[3].parse::<u64>().map_err(|_| bad())?;
        next[class] = (hard, soft, secs);
    }
    Ok(output_buffer_limits_text(&next))
}

pub fn output_buffer_limits_text(limits: &[(u64, u64, u64); 3]) -> String {
    OUTPUT_BUFFER_CLASSES
        .iter()
        .zip(limits)
        .map(|(class, (hard, soft, secs))| format!("{class} {hard} {soft} {secs}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn special_values_render_as_redis_does() {
        let c = Config::default();
        assert_eq!(parse_notify_events(&c, &args(&["KEA"])), Ok("AKE".into()));
        assert_eq!(parse_notify_events(&c, &args(&["Ex$"])), Ok("$xE".into()));
        assert_eq!(parse_notify_events(&c, &args(&[""])), Ok("".into()));
        assert_eq!(
            parse_notify_events(&c, &args(&["w"])).unwrap_err(),
            "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
        );
        assert_eq!(parse_save(&c, &args(&["900 1 300 10"])), Ok("900 1 300 10".into()));
        assert_eq!(parse_save(&c, &args(&[""])), Ok("".into()));
        assert_eq!(parse_save(&c, &args(&["0 1"])).unwrap_err(), "Invalid save parameters");
        assert_eq!(parse_save(&c, &args(&["900"])).unwrap_err(), "Invalid save parameters");
        assert_eq!(parse_replicaof(&c, &args(&["no", "one"])), Ok("".into()));
        assert_eq!(parse_replicaof(&c, &args(&["10.0.0.1 6380"])), Ok("10.0.0.1 6380".into()));
        assert_eq!(parse_replicaof(&c, &args(&["h", "x"])).unwrap_err(), "Invalid master port");
        assert_eq!(parse_oom_values(&c, &args(&["1 2"])).unwrap_err(), "wrong number of arguments");
        assert_eq!(parse_percentiles(&c, &args(&["50 99 99.9"])), Ok("50 99 99.9".into()));
        assert_eq!(
            parse_percentiles(&c, &args(&["101"])).unwrap_err(),
            "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
        );
        assert!(check_proc_title("{title} {listen-addr} {server-mode}").is_ok());
        assert!(check_proc_title("{title} {nope}").is_err());
        assert!(check_proc_title("{title}").is_err());
        assert!(check_proc_title("{title").is_err());
    }
}
