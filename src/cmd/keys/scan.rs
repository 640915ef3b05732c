//! KEYS and SCAN over the selected database. Mirrors Redis's `db.c` (`keysCommand`,
//! `scanGenericCommand`).
//!
//! # The SCAN cursor
//!
//! The map (`db::map`) is split into parts, each a table of buckets that only ever splits in two
//! (growth), so SCAN is Redis's `dictScan` per part: the cursor packs (bucket cursor, part), the
//! bucket cursor walks the part's buckets in reverse-binary order (the bit a split adds is the
//! cursor's high bit), parts in order. As Redis guarantees, a key present from the first call to
//! the last is returned (exactly once: buckets never merge), whatever is added or removed
//! meanwhile, and a key added or removed during the scan may or may not be. A call visits buckets
//! until it has seen COUNT keys (or 10 x COUNT buckets), as Redis's.

use bytes::Bytes;

use crate::cmd::{Ctx, is_opt};
use crate::db::EntryRef;
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::util::glob_match;

/// `KEYS pattern`: every live key matching the glob `pattern`, in no particular order.
pub fn keys(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let pattern = &argv[1][..];
    let all = pattern == b"*";
    let now = ctx.now_ms;
    let db = ctx.db();
    let out = ctx.offload(db.len(), || {
        let mut out = Vec::new();
        db.for_each(|k, e| {
            if !e.is_expired(now) && (all || glob_match(pattern, k, false)) {
                out.push(Frame::Bulk(Bytes::copy_from_slice(k)));
            }
        });
        out
    });
    Ok(Frame::Array(out))
}

/// Parse a SCAN cursor as Redis's `parseScanCursorOrReply` (C `strtoul`): optional sign, decimal
/// digits, the text ends at a NUL; a leading space, trailing garbage or overflow is
/// `ERR invalid cursor`; `-n` wraps around as in C; an empty cursor is 0.
pub(crate) fn parse_cursor(arg: &[u8]) -> Result<u64> {
    let invalid = || Error::err("invalid cursor");
    let text = arg.split(|&b| b == 0).next().unwrap_or_default();
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        // strtoul parsed nothing: only the empty string leaves nothing behind.
        return if text.is_empty() { Ok(0) } else { Err(invalid()) };
    }
    let mut n: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(invalid());
        }
        n = n.checked_mul(10).and_then(|n| n.checked_add(u64::from(b - b'0'))).ok_or_else(invalid)?;
    }
    Ok(if negative { n.wrapping_neg() } else { n })
}

/// The SCAN options (HSCAN/SSCAN take the same, less TYPE).
pub(crate) struct ScanOpts {
    pub count: usize,
    pub pattern: Option<Bytes>,
    type_name: Option<Bytes>,
}

fn parse_options(args: &[Bytes]) -> Result<ScanOpts> {
    parse_scan_options(args, true)
}

/// Parse SCAN's options; `with_type`: whether TYPE is one (SCAN; not HSCAN/SSCAN).
pub(crate) fn parse_scan_options(args: &[Bytes], with_type: bool) -> Result<ScanOpts> {
    let mut o = ScanOpts { count: 10, pattern: None, type_name: None };
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).ok_or(Error::Syntax)?;
        if is_opt(&args[i], "count") {
            let n = crate::cmd::arg_i64(value)?;
            if n < 1 {
                return Err(Error::Syntax);
            }
            o.count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is_opt(&args[i], "match") {
            o.pattern = (&value[..] != b"*").then(|| value.clone());
        } else if with_type && is_opt(&args[i], "type") {
            o.type_name = Some(value.clone());
        } else {
            return Err(Error::Syntax);
        }
        i += 2;
    }
    Ok(o)
}

impl ScanOpts {
    fn wants(&self, key: &[u8], e: EntryRef<'_>, now_ms: u64) -> bool {
        !e.is_expired(now_ms)
            && self.pattern.as_ref().is_none_or(|p| glob_match(p, key, false))
            && self.type_name.as_ref().is_none_or(|t| t.eq_ignore_ascii_case(e.kind().name().as_bytes()))
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`: `[next cursor, [keys]]`; see the module
/// doc for what the cursor is.
pub fn scan(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let cursor = parse_cursor(&argv[1])?;
    let opts = parse_options(&argv[2..])?;
    let now = ctx.now_ms;
    let map = ctx.db();
    // A large COUNT walks much of the database: off the worker's queue (see `offload`).
    let (next, keys) = ctx.offload(opts.count.min(map.len()), || {
        let mut keys = Vec::new();
        let next = map.scan(cursor, opts.count, |k, e| {
            if opts.wants(k, e, now) {
                keys.push(Frame::Bulk(Bytes::copy_from_slice(k)));
            }
        });
        (next, keys)
    });
    Ok(Frame::Array(vec![Frame::Bulk(Bytes::from(next.to_string())), Frame::Array(keys)]))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::parse_cursor;
    use crate::cmd::testing::{Harness, arr, bulk, err};
    use crate::resp::Frame;

    fn names(f: Frame) -> BTreeSet<String> {
        match f {
            Frame::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    /// One SCAN call: (next cursor, keys in reply order).
    fn scan_once(h: &mut Harness, cursor: &str, extra: &[&str]) -> (String, Vec<String>) {
        let mut args = vec!["SCAN", cursor];
        args.extend_from_slice(extra);
        match h.run(&args) {
            Frame::Array(mut parts) if parts.len() == 2 => {
                let keys = parts.pop().unwrap();
                let Frame::Bulk(c) = parts.pop().unwrap() else { panic!("cursor") };
                let Frame::Array(keys) = keys else { panic!("keys") };
                let keys = keys
                    .into_iter()
                    .map(|k| match k {
                        Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                        other => panic!("{other:?}"),
                    })
                    .collect();
                (String::from_utf8_lossy(&c).into_owned(), keys)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keys_matches_globs_and_hides_expired_keys() {
        let mut h = Harness::new();
        for k in ["hello", "hallo", "hxllo", "world", "h*"] {
            h.run(&["SET", k, "1"]);
        }
        h.run(&["SET", "hidden", "1", "PX", "1"]);
        h.now_ms += 1;
        assert_eq!(names(h.run(&["KEYS", "h?llo"])), ["hallo", "hello", "hxllo"].map(String::from).into());
        assert_eq!(names(h.run(&["KEYS", "h[ae]llo"])), ["hallo", "hello"].map(String::from).into());
        assert_eq!(names(h.run(&["KEYS", "h\\*"])), ["h*"].map(String::from).into());
        assert_eq!(names(h.run(&["KEYS", "*"])).len(), 5);
        assert_eq!(h.run(&["KEYS", "nomatch*"]), arr(vec![]));
    }

    #[test]
    fn cursor_parsing_follows_strtoul() {
        assert_eq!(parse_cursor(b"0"), Ok(0));
        assert_eq!(parse_cursor(b""), Ok(0));
        assert_eq!(parse_cursor(b"+7"), Ok(7));
        assert_eq!(parse_cursor(b"-1"), Ok(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_cursor(b"5\0junk"), Ok(5));
        for bad in [&b"18446744073709551616"[..], b" 0", b"x", b"1x", b"-", b"+"] {
            assert!(parse_cursor(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn scan_argument_errors_match_redis() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["SCAN", "x"]), err("ERR invalid cursor"));
        assert_eq!(h.run(&["SCAN", "0", "COUNT", "0"]), err("ERR syntax error"));
        assert_eq!(h.run(&["SCAN", "0", "COUNT", "-1"]), err("ERR syntax error"));
        assert_eq!(h.run(&["SCAN", "0", "COUNT", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(h.run(&["SCAN", "0", "MATCH"]), err("ERR syntax error"));
        assert_eq!(h.run(&["SCAN", "0", "FOO", "bar"]), err("ERR syntax error"));
        assert_eq!(h.run(&["SCAN", "-1"]), arr(vec![bulk("0"), arr(vec![])]));
    }

    #[test]
    fn scan_of_an_empty_db_finishes_at_once() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["SCAN", "0"]), arr(vec![bulk("0"), arr(vec![])]));
    }

    #[test]
    fn scan_with_small_count_walks_every_key_exactly_once() {
        let mut h = Harness::new();
        for i in 0..200 {
            h.run(&["SET", &format!("key:{i}"), "v"]);
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut cursor = "0".to_string();
        let mut calls = 0;
        loop {
            let (next, keys) = scan_once(&mut h, &cursor, &["COUNT", "7"]);
            // COUNT keys, plus the rest of the last bucket visited (whole buckets, as Redis).
            assert!(keys.len() < 7 + 8, "{}", keys.len());
            for k in keys {
                *seen.entry(k).or_default() += 1;
            }
            calls += 1;
            if next == "0" {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen.len(), 200);
        assert!(seen.values().all(|&n| n == 1));
        assert!(calls >= 200 / (7 + 8));
    }

    #[test]
    fn each_call_returns_at_least_count_keys_until_the_end() {
        let mut h = Harness::new();
        for i in 0..6400 {
            h.run(&["SET", &format!("k{i}"), "v"]);
        }
        let (mut cursor, mut calls, mut total) = ("0".to_string(), 0, 0);
        loop {
            let (next, keys) = scan_once(&mut h, &cursor, &[]);
            assert!(keys.len() >= 10 || next == "0", "{}", keys.len());
            total += keys.len();
            calls += 1;
            if next == "0" {
                break;
            }
            cursor = next;
        }
        assert_eq!(total, 6400);
        assert!(calls <= 6400 / 10 + 1, "{calls}");
    }

    #[test]
    fn scan_returns_every_key_present_throughout_while_others_are_added_and_removed() {
        let mut h = Harness::new();
        for i in 0..300 {
            h.run(&["SET", &format!("stable:{i}"), "v"]);
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut cursor = "0".to_string();
        let mut round = 0;
        loop {
            let (next, keys) = scan_once(&mut h, &cursor, &["COUNT", "10"]);
            for k in keys {
                *seen.entry(k).or_default() += 1;
            }
            for j in 0..20 {
                h.run(&["SET", &format!("new:{round}:{j}"), "v"]);
            }
            h.run(&["DEL", &format!("new:{}:0", round.max(1) - 1)]);
            round += 1;
            if next == "0" {
                break;
            }
            cursor = next;
        }
        for i in 0..300 {
            assert_eq!(seen.get(&format!("stable:{i}")), Some(&1), "stable:{i}");
        }
        assert!(seen.values().all(|&n| n == 1));
    }

    #[test]
    fn scan_filters_by_match_and_type_and_hides_expired_keys() {
        let mut h = Harness::new();
        h.run(&["SET", "user:1", "a"]);
        h.run(&["SET", "user:2", "b"]);
        h.run(&["SET", "other", "c"]);
        h.run(&["SET", "user:gone", "d", "PX", "1"]);
        let items = crate::db::List::from_items([b"x"], -2);
        h.shared.ks.db(0).insert(b"user:list", crate::db::Entry::list(items, 0));
        h.now_ms += 1;
        let (next, keys) = scan_once(&mut h, "0", &["MATCH", "user:*", "COUNT", "1000"]);
        assert_eq!(next, "0");
        assert_eq!(
            keys.into_iter().collect::<BTreeSet<_>>(),
            ["user:1", "user:2", "user:list"].map(String::from).into()
        );
        let (_, keys) = scan_once(&mut h, "0", &["TYPE", "LIST"]);
        assert_eq!(keys, vec!["user:list".to_string()]);
        let (_, keys) = scan_once(&mut h, "0", &["TYPE", "string", "MATCH", "o*"]);
        assert_eq!(keys, vec!["other".to_string()]);
        let (_, keys) = scan_once(&mut h, "0", &["TYPE", "nosuchtype"]);
        assert!(keys.is_empty());
    }
}
