//! Value syntax of the generic parameter types: how a bool, number, enum or string parameter reads
//! its argument into the one canonical text that CONFIG GET reports, with Redis's error texts.
//! Mirrors the type half of Redis's `config.c` (`boolConfigSet`, `numericParseString`,
//! `numericBoundaryCheck`, `enumConfigSet`) and `memtoull` in `util.c`; parameters with their own
//! syntax are in [`super::special`].

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

/// A byte count as CONFIG REWRITE writes it (`rewriteConfigFormatMemory`): in `gb`, `mb` or `kb`
/// when it is a whole number of them.
pub fn memory_text(bytes: i128) -> String {
    const UNITS: [(i128, &str); 3] = [(1 << 30, "gb"), (1 << 20, "mb"), (1 << 10, "kb")];
    match UNITS.iter().find(|(size, _)| bytes > 0 && bytes % size == 0) {
        Some((size, unit)) => format!("{}{unit}", bytes / size),
        None => bytes.to_string(),
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    #[test]
    fn rewrite_writes_memory_in_its_largest_whole_unit() {
        use super::memory_text;
        assert_eq!(memory_text(64 << 20), "64mb");
        assert_eq!(memory_text(1 << 30), "1gb");
        assert_eq!(memory_text(3 << 10), "3kb");
        assert_eq!(memory_text(1000), "1000");
        assert_eq!(memory_text(0), "0");
    }

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
    fn several_enum_names_read_as_bit_flags() {
        let flags = &["default", "save", "nosave", "now", "force"];
        assert_eq!(parse_enum_flags(flags, &args(&["now save"])), Ok("save now".into()));
        assert_eq!(parse_enum_flags(flags, &args(&["default"])), Ok("default".into()));
        assert_eq!(
            parse_enum_flags(flags, &args(&["save", "nosave"])).unwrap_err(),
            "shutdown options SAVE and NOSAVE can't be used simultaneously"
        );
    }
}
