//! Value syntax of configuration parameters: how each type of parameter reads its arguments into the
//! one canonical text that CONFIG GET reports, with Redis's error texts. Mirrors the type half of
//! Redis's `config.c` (`boolConfigSet`, `numericParseString`, `numericBoundaryCheck`,
//! `enumConfigSet`, the special `set*Option` functions) and `memtoull` in `util.c`.

use super::Config;
use crate::util::parse_i64;

/// How a numeric parameter's argument is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain integer (`string2ll`).
    Plain,
    /// Bytes with an optional unit: `64mb`, `1gb`, `10k` (`memtoull`).
    Memory,
    /// Bytes, or a percentage of maxmemory written `N%` (stored negative, as Redis does).
    MemoryOrPercent,
    /// An octal number (`unixsocketperm`).
    Octal,
}

/// A validity check of a string parameter (`isValidAOFfilename`...), with Redis's error text.
pub type StrCheck = fn(&str) -> Result<(), String>;

/// The type of a parameter, its default and its bounds: what Redis's `create*Config` macros declare.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `yes` or `no`.
    Bool { default: bool },
    /// An integer within `min..=max` (inclusive, as Redis declares them).
    Int { min: i128, max: i128, default: i128, unit: Unit },
    /// One name of `values` (any case); with [`super::params::MULTI`], several names (bit flags).
    Enum { values: &'static [&'static str], default: &'static str },
    /// Any single string, checked by `check` when there is one.
    Str { default: &'static str, check: Option<StrCheck> },
    /// A parameter with its own syntax: `parse` turns the arguments (and the current configuration,
    /// for parameters that update part of a value) into the canonical text.
    Special { default: &'static str, parse: fn(&Config, &[String]) -> Result<String, String> },
}

impl Kind {
    /// The canonical text of the default value (what CONFIG GET reports before any change).
    pub fn default_text(&self) -> String {
        match *self {
            Kind::Bool { default } => yes_no_text(default).into(),
            Kind::Int { default, unit, .. } => int_text(default, unit),
            Kind::Enum { default, .. } => default.into(),
            Kind::Str { default, .. } | Kind::Special { default, .. } => default.into(),
        }
    }

    /// Read `args` (one argument unless `multi`) into the canonical text, or Redis's error text.
    pub fn parse(&self, cfg: &Config, args: &[String], multi: bool) -> Result<String, String> {
        if let Kind::Special { parse, .. } = self {
            return parse(cfg, args);
        }
        if let Kind::Enum { values, .. } = self
            && multi
        {
            return parse_enum_flags(values, args);
        }
        let [v] = args else { return Err("wrong number of arguments".into()) };
        match *self {
            Kind::Bool { .. } => parse_yes_no(v).map(|b| yes_no_text(b).into()),
            Kind::Int { min, max, unit, .. } => parse_int(v, unit, min, max).map(|n| int_text(n, unit)),
            Kind::Enum { values, .. } => values
                .iter()
                .find(|e| e.eq_ignore_ascii_case(v))
                .map(|e| e.to_string())
                .ok_or_else(|| enum_error(values)),
            Kind::Str { check, .. } => check.map_or(Ok(()), |c| c(v)).map(|_| v.clone()),
            Kind::Special { .. } => unreachable!("handled above"),
        }
    }
}

pub fn yes_no_text(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// `yesnotoi`: `yes` or `no`, any case.
pub fn parse_yes_no(v: &str) -> Result<bool, String> {
    if v.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err("argument must be 'yes' or 'no'".into())
    }
}

fn enum_error(values: &[&str]) -> String {
    format!("argument(s) must be one of the following: {}", values.join(", "))
}

/// Several enum names at once (`shutdown-on-sigint save now`); `default` alone is the empty set.
fn parse_enum_flags(values: &[&str], args: &[String]) -> Result<String, String> {
    let words: Vec<&str> = args.iter().flat_map(|a| a.split(' ')).filter(|w| !w.is_empty()).collect();
    let mut set = Vec::new();
    for w in &words {
        let Some(v) = values.iter().find(|e| e.eq_ignore_ascii_case(w)) else { return Err(enum_error(values)) };
        if !set.contains(v) && *v != values[0] {
            set.push(*v);
        }
    }
    if words.is_empty() {
        return Err(enum_error(values));
    }
    if set.contains(&"save") && set.contains(&"nosave") {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
    }
    // Names in table order, as configEnumGetName renders flags.
    let text: Vec<&str> = values.iter().copied().filter(|v| set.contains(v)).collect();
    Ok(if text.is_empty() { values[0].to_string() } else { text.join(" ") })
}

/// `memtoull`: digits with an optional unit (`b`, `k`, `kb`, `m`, `mb`, `g`, `gb`, any case); no sign.
/// Empty digits read as 0, as Redis's `strtoull` does.
pub fn parse_memory(v: &str) -> Option<u64> {
    let digits_end = v.bytes().position(|c| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(digits_end);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let n: u64 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    n.checked_mul(mul)
}

/// A numeric argument in `unit`, checked against `min..=max` with Redis's texts.
pub fn parse_int(v: &str, unit: Unit, min: i128, max: i128) -> Result<i128, String> {
    let n: Option<i128> = match unit {
        Unit::Plain => parse_i64(v.as_bytes()).map(i128::from),
        Unit::Memory => parse_memory(v).map(i128::from),
        Unit::MemoryOrPercent => parse_memory(v).map(i128::from).or_else(|| {
            let pct = v.strip_suffix('%').filter(|p| !p.is_empty())?;
            parse_i64(pct.as_bytes()).filter(|p| *p >= 0).map(|p| -i128::from(p))
        }),
        Unit::Octal => i64::from_str_radix(v, 8).ok().map(i128::from),
    };
    let Some(n) = n else {
        return Err(match unit {
            Unit::Plain => "argument couldn't be parsed into an integer",
            Unit::Memory => "argument must be a memory value",
            Unit::MemoryOrPercent => "argument must be a memory or percent value",
            Unit::Octal => "argument couldn't be parsed as an octal number",
        }
        .into());
    };
    if unit == Unit::MemoryOrPercent && n < 0 {
        if n < min {
            return Err(format!("percentage argument must be less or equal to {}", -min));
        }
    } else if n < min || n > max {
        return Err(match unit {
            Unit::Octal => format!("argument must be between {min:o} and {max:o} inclusive"),
            _ => format!("argument must be between {min} and {max} inclusive"),
        });
    }
    Ok(n)
}

/// The canonical text of a number (`numericConfigGet`).
pub fn int_text(n: i128, unit: Unit) -> String {
    match unit {
        Unit::MemoryOrPercent if n < 0 => format!("{}%", -n),
        Unit::Octal => format!("{n:o}"),
        _ => n.to_string(),
    }
}

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
    fn memory_values_read_as_memtoull_does() {
        assert_eq!(parse_memory("64mb"), Some(64 << 20));
        assert_eq!(parse_memory("1GB"), Some(1 << 30));
        assert_eq!(parse_memory("10k"), Some(10_000));
        assert_eq!(parse_memory("7b"), Some(7));
        assert_eq!(parse_memory(""), Some(0));
        assert_eq!(parse_memory("-1"), None);
        assert_eq!(parse_memory("1.5mb"), None);
        assert_eq!(parse_memory("99999999999999999999gb"), None);
    }

    #[test]
    fn numbers_are_checked_against_redis_bounds_and_texts() {
        let i32max = i32::MAX as i128;
        assert_eq!(
            parse_int("abc", Unit::Plain, 0, i32max).unwrap_err(),
            "argument couldn't be parsed into an integer"
        );
        assert_eq!(parse_int("+5", Unit::Plain, 0, i32max).unwrap_err(), "argument couldn't be parsed into an integer");
        assert_eq!(
            parse_int("-1", Unit::Plain, 0, i32max).unwrap_err(),
            "argument must be between 0 and 2147483647 inclusive"
        );
        assert_eq!(parse_int("-1", Unit::Memory, 0, 1 << 40).unwrap_err(), "argument must be a memory value");
        assert_eq!(parse_int("10%", Unit::MemoryOrPercent, -100, i64::MAX as i128), Ok(-10));
        assert_eq!(int_text(-10, Unit::MemoryOrPercent), "10%");
        assert_eq!(
            parse_int("200%", Unit::MemoryOrPercent, -100, 1).unwrap_err(),
            "percentage argument must be less or equal to 100"
        );
        assert_eq!(
            parse_int("x", Unit::MemoryOrPercent, -100, 1).unwrap_err(),
            "argument must be a memory or percent value"
        );
        assert_eq!(parse_int("700", Unit::Octal, 0, 0o777), Ok(0o700));
        assert_eq!(int_text(0o700, Unit::Octal), "700");
        assert_eq!(
            parse_int("1000", Unit::Octal, 0, 0o777).unwrap_err(),
            "argument must be between 0 and 777 inclusive"
        );
        assert_eq!(
            parse_int("9", Unit::Octal, 0, 0o777).unwrap_err(),
            "argument couldn't be parsed as an octal number"
        );
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
        let flags = &["default", "save", "nosave", "now", "force"];
        assert_eq!(parse_enum_flags(flags, &args(&["now save"])), Ok("save now".into()));
        assert_eq!(parse_enum_flags(flags, &args(&["default"])), Ok("default".into()));
        assert_eq!(
            parse_enum_flags(flags, &args(&["save", "nosave"])).unwrap_err(),
            "shutdown options SAVE and NOSAVE can't be used simultaneously"
        );
        assert!(check_proc_title("{title} {listen-addr} {server-mode}").is_ok());
        assert!(check_proc_title("{title} {nope}").is_err());
        assert!(check_proc_title("{title}").is_err());
        assert!(check_proc_title("{title").is_err());
    }
}
