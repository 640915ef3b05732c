//! KEYS and SCAN over the selected database. Mirrors Redis's `db.c` (`keysCommand`,
//! `scanGenericCommand`).
//!
//! # The SCAN cursor
//!
//! flurry's table has no stable bucket order to resume from (it resizes, and exposes no buckets),
//! so the cursor is a position in the order of [`hash_key`]: a key's position is `hash_key(key) >> 1`
//! (63 bits), and cursor `c` means "positions from `c - 1` on" (0 starts; nonzero cursors are
//! therefore `position + 1`, never 0). One call returns the live keys with the COUNT smallest
//! positions at or after the cursor's, every key sharing the last of those positions included,
//! in position order, and the next cursor `last position + 2`; 0 once no position is left.
//!
//! So, as Redis guarantees, a key present from the first call to the last is returned (exactly
//! once: positions only grow), whatever is added or removed meanwhile, and a key added or removed
//! during the scan may or may not be. The price: each call walks the whole map (a weakly
//! consistent traversal) to find its positions. So that a full scan stays O(N) walks of the map times
//! a constant, a call returns at least `len / SCAN_MAX_CALLS` keys whatever COUNT says (COUNT is a
//! hint in Redis too).

use std::collections::BinaryHeap;

use bytes::Bytes;

use crate::cmd::{Ctx, is_opt};
use crate::db::{Entry, hash_key};
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::util::glob_match;

/// A full scan takes at most about this many calls, whatever COUNT (see the module doc).
const SCAN_MAX_CALLS: usize = 32;

/// A key's place in the SCAN order.
fn position(key: &[u8]) -> u64 {
    hash_key(key) >> 1
}

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
    fn wants(&self, key: &[u8], e: &Entry, now_ms: u64) -> bool {
        !e.is_expired(now_ms)
            && self.pattern.as_ref().is_none_or(|p| glob_match(p, key, false))
            && self.type_name.as_ref().is_none_or(|t| t.eq_ignore_ascii_case(e.kind().name().as_bytes()))
    }
}

/// One page of a scan over the entries `walk` visits with their positions: the wanted keys among
/// the `count` smallest positions >= `from`, every key of the last such position included, in
/// position order; and that last position, None when the page reaches the end.
///
/// One pass keeps the `count` smallest positions in a bounded max-heap (the key only if wanted).
/// Every entry left out has a position >= the heap's final maximum; only when one has exactly that
/// position (a hash tie) does a second pass collect that position's keys.
fn select_page(
    walk: impl Fn(&mut dyn FnMut(u64, &[u8], &Entry)),
    from: u64,
    count: usize,
    wants: impl Fn(&[u8], &Entry) -> bool,
) -> (Option<u64>, Vec<(u64, Bytes)>) {
    let mut heap: BinaryHeap<(u64, Option<Bytes>)> = BinaryHeap::new();
    let mut min_left_out = u64::MAX;
    walk(&mut |p, k, e| {
        if p < from {
            return;
        }
        if heap.len() >= count.max(1) {
            if heap.peek().is_some_and(|top| p >= top.0) {
                min_left_out = min_left_out.min(p);
                return;
            }
            if let Some((q, _)) = heap.pop() {
                min_left_out = min_left_out.min(q);
            }
        }
        heap.push((p, wants(k, e).then(|| Bytes::copy_from_slice(k))));
    });
    // Nothing left out: this page finishes the scan.
    let last = if min_left_out == u64::MAX { None } else { heap.peek().map(|top| top.0) };
    let mut found: Vec<(u64, Bytes)> = heap.into_iter().filter_map(|(p, k)| Some((p, k?))).collect();
    if let Some(last) = last.filter(|&last| last == min_left_out) {
        found.retain(|(p, _)| *p != last);
        walk(&mut |p, k, e| {
            if p == last && wants(k, e) {
                found.push((p, Bytes::copy_from_slice(k)));
            }
        });
    }
    found.sort_unstable();
    (last, found)
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`: `[next cursor, [keys]]`; see the module
/// doc for what the cursor is.
pub fn scan(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let cursor = parse_cursor(&argv[1])?;
    let opts = parse_options(&argv[2..])?;
    let from = cursor.saturating_sub(1);
    let map = ctx.db();
    let count = opts.count.max(map.len() / SCAN_MAX_CALLS);

    let now = ctx.now_ms;
    let walk = |f: &mut dyn FnMut(u64, &[u8], &Entry)| map.for_each(|k, e| f(position(k), k, e));
    let (last, found) = ctx.offload(map.len(), || select_page(walk, from, count, |k, e| opts.wants(k, e, now)));
    // Positions are < 2^63, so `last + 2` cannot overflow.
    let next = last.map_or(0, |p| p + 2);
    let keys = found.into_iter().map(|(_, k)| Frame::Bulk(k)).collect();
    Ok(Frame::Array(vec![Frame::Bulk(Bytes::from(next.to_string())), Frame::Array(keys)]))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use bytes::Bytes;

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
    fn a_page_includes_every_key_sharing_its_last_position() {
        use crate::db::Entry;
        let entries: Vec<(u64, Bytes, Entry)> = [(5, "a"), (7, "b"), (7, "c"), (7, "d"), (9, "e"), (3, "skip")]
            .into_iter()
            .map(|(p, k)| (p, Bytes::from_static(k.as_bytes()), Entry::string(Bytes::from_static(b"v"), 0)))
            .collect();
        let walk = |f: &mut dyn FnMut(u64, &[u8], &Entry)| entries.iter().for_each(|(p, k, e)| f(*p, k, e));
        let wants = |k: &[u8], _: &Entry| k != b"c";
        let keys = |v: Vec<(u64, Bytes)>| v.into_iter().map(|(_, k)| k).collect::<Vec<_>>();
        // count 2 cuts through the ties at 7: all of 7 come back, the next page starts after it.
        let (last, page) = super::select_page(walk, 4, 2, wants);
        assert_eq!(last, Some(7));
        assert_eq!(keys(page), ["a", "b", "d"]);
        let (last, page) = super::select_page(walk, 8, 2, wants);
        assert_eq!(last, None);
        assert_eq!(keys(page), ["e"]);
        // Exactly the remaining keys: the page ends the scan.
        let (last, page) = super::select_page(walk, 4, 5, |_, _| true);
        assert_eq!(last, None);
        assert_eq!(keys(page), ["a", "b", "c", "d", "e"]);
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
            assert!(keys.len() <= 8, "{}", keys.len());
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
        assert!(calls >= 200 / 7);
    }

    #[test]
    fn a_full_scan_of_a_large_db_takes_a_bounded_number_of_calls() {
        let mut h = Harness::new();
        for i in 0..6400 {
            h.run(&["SET", &format!("k{i}"), "v"]);
        }
        let (mut cursor, mut calls, mut total) = ("0".to_string(), 0, 0);
        loop {
            let (next, keys) = scan_once(&mut h, &cursor, &[]);
            assert!(keys.len() >= 100 || next == "0", "{}", keys.len());
            total += keys.len();
            calls += 1;
            if next == "0" {
                break;
            }
            cursor = next;
        }
        assert_eq!(total, 6400);
        assert!(calls <= super::SCAN_MAX_CALLS + 1, "{calls}");
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
