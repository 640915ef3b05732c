//! Unit tests of the list commands through the dispatcher (replies and error texts of Redis 7.0).

use std::cell::Cell;

use crate::cmd::testing::{Harness, arr, bulk, err, int, ok};
use crate::db::Kind;
use crate::resp::Frame;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn bulks(items: &[&str]) -> Frame {
    arr(items.iter().map(|s| bulk(s)).collect())
}

fn ints(items: &[i64]) -> Frame {
    arr(items.iter().map(|&n| int(n)).collect())
}

/// A harness with `l` = [a b c a b c] and `s` a string.
fn with_list() -> Harness {
    let mut h = Harness::new();
    assert_eq!(h.run(&["RPUSH", "l", "a", "b", "c", "a", "b", "c"]), int(6));
    assert_eq!(h.run(&["SET", "s", "x"]), ok());
    h
}

/// The kind of value at `key` in db 0, straight from the keyspace (expired entries included).
fn kind(h: &Harness, key: &str) -> Option<Kind> {
    h.shared.ks.db(0).get(key.as_bytes(), |e| e.map(|e| e.kind()))
}

/// The absolute expiry of `key` in ms (0: none), straight from the keyspace.
fn expire_at(h: &Harness, key: &str) -> u64 {
    h.shared.ks.db(0).get(key.as_bytes(), |e| e.map_or(0, |e| e.expire_at_ms()))
}

/// Give `key` an expiry `ms` after the harness clock, as EXPIRE does.
fn expire_in(h: &Harness, key: &str, ms: u64) {
    let seq = Cell::new(0);
    let w = h.shared.ks.write(0, &[key.as_bytes()], &seq);
    w.set_expire(key.as_bytes(), h.now_ms + ms);
}

fn range(h: &mut Harness, key: &str) -> Frame {
    h.run(&["LRANGE", key, "0", "-1"])
}

#[test]
fn lpush_prepends_each_element_in_turn_and_rpush_appends() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["LPUSH", "l", "a", "b", "c"]), int(3));
    assert_eq!(range(&mut h, "l"), bulks(&["c", "b", "a"]));
    assert_eq!(h.run(&["RPUSH", "l", "x", "y"]), int(5));
    assert_eq!(range(&mut h, "l"), bulks(&["c", "b", "a", "x", "y"]));
    assert_eq!(kind(&h, "l"), Some(Kind::List));
}

#[test]
fn pushx_only_pushes_onto_an_existing_list() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["LPUSHX", "l", "a"]), int(0));
    assert_eq!(h.run(&["RPUSHX", "l", "a", "b"]), int(0));
    assert_eq!(kind(&h, "l"), None);
    h.run(&["RPUSH", "l", "m"]);
    assert_eq!(h.run(&["LPUSHX", "l", "a", "b"]), int(3));
    assert_eq!(h.run(&["RPUSHX", "l", "z"]), int(4));
    assert_eq!(range(&mut h, "l"), bulks(&["b", "a", "m", "z"]));
}

#[test]
fn push_arity_and_wrong_type() {
    let mut h = with_list();
    assert_eq!(h.run(&["LPUSH", "l"]), err("ERR wrong number of arguments for 'lpush' command"));
    assert_eq!(h.run(&["RPUSHX", "l"]), err("ERR wrong number of arguments for 'rpushx' command"));
    for cmd in ["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"] {
        assert_eq!(h.run(&[cmd, "s", "v"]), err(WRONGTYPE), "{cmd}");
    }
    assert_eq!(h.run(&["GET", "s"]), bulk("x"));
}

#[test]
fn pop_without_count_returns_one_element_or_nil() {
    let mut h = with_list();
    assert_eq!(h.run(&["LPOP", "l"]), bulk("a"));
    assert_eq!(h.run(&["RPOP", "l"]), bulk("c"));
    assert_eq!(h.run(&["LPOP", "missing"]), Frame::Null);
    assert_eq!(h.run(&["RPOP", "missing"]), Frame::Null);
    assert_eq!(h.run(&["LPOP", "s"]), err(WRONGTYPE));
}

#[test]
fn pop_with_count_returns_an_array_of_at_most_count() {
    let mut h = with_list();
    assert_eq!(h.run(&["LPOP", "l", "2"]), bulks(&["a", "b"]));
    assert_eq!(h.run(&["RPOP", "l", "2"]), bulks(&["c", "b"]));
    assert_eq!(h.run(&["RPOP", "l", "10"]), bulks(&["a", "c"]));
    assert_eq!(kind(&h, "l"), None);
}

#[test]
fn pop_count_zero_is_empty_array_on_a_list_and_null_array_on_a_missing_key() {
    let mut h = with_list();
    assert_eq!(h.run(&["LPOP", "l", "0"]), arr(vec![]));
    assert_eq!(h.run(&["LLEN", "l"]), int(6));
    assert_eq!(h.run(&["LPOP", "missing", "0"]), Frame::NullArray);
    assert_eq!(h.run(&["RPOP", "missing", "3"]), Frame::NullArray);
    assert_eq!(h.run(&["LPOP", "s", "0"]), err(WRONGTYPE));
}

#[test]
fn pop_count_must_be_a_non_negative_integer_checked_before_the_key() {
    let mut h = with_list();
    let positive = err("ERR value is out of range, must be positive");
    assert_eq!(h.run(&["LPOP", "l", "-1"]), positive);
    assert_eq!(h.run(&["RPOP", "missing", "-1"]), positive);
    assert_eq!(h.run(&["LPOP", "s", "x"]), positive);
    assert_eq!(h.run(&["LPOP", "l", "-9223372036854775808"]), positive);
    assert_eq!(h.run(&["LPOP", "l", "1", "2"]), err("ERR wrong number of arguments for 'lpop' command"));
    assert_eq!(h.run(&["RPOP", "l", "1", "2"]), err("ERR wrong number of arguments for 'rpop' command"));
    assert_eq!(h.run(&["LLEN", "l"]), int(6));
}

#[test]
fn popping_the_last_element_removes_the_key() {
    let mut h = Harness::new();
    h.run(&["RPUSH", "l", "only"]);
    assert_eq!(h.run(&["RPOP", "l"]), bulk("only"));
    assert_eq!(kind(&h, "l"), None);
    // The key can be reused as anything afterwards.
    assert_eq!(h.run(&["SET", "l", "v", "NX"]), ok());
    assert_eq!(h.run(&["GETDEL", "l"]), bulk("v"));
    assert_eq!(h.run(&["LPUSH", "l", "again"]), int(1));
    assert_eq!(range(&mut h, "l"), bulks(&["again"]));
}

#[test]
fn llen_counts_elements_and_is_zero_for_a_missing_key() {
    let mut h = with_list();
    assert_eq!(h.run(&["LLEN", "l"]), int(6));
    assert_eq!(h.run(&["LLEN", "missing"]), int(0));
    assert_eq!(h.run(&["LLEN", "s"]), err(WRONGTYPE));
}

#[test]
fn lrange_clamps_like_redis() {
    let mut h = with_list();
    assert_eq!(h.run(&["LRANGE", "l", "1", "2"]), bulks(&["b", "c"]));
    assert_eq!(h.run(&["LRANGE", "l", "-2", "-1"]), bulks(&["b", "c"]));
    assert_eq!(h.run(&["LRANGE", "l", "-100", "100"]), bulks(&["a", "b", "c", "a", "b", "c"]));
    assert_eq!(h.run(&["LRANGE", "l", "5", "2"]), arr(vec![]));
    assert_eq!(h.run(&["LRANGE", "l", "-1", "-2"]), arr(vec![]));
    assert_eq!(h.run(&["LRANGE", "l", "6", "10"]), arr(vec![]));
    assert_eq!(h.run(&["LRANGE", "l", "9223372036854775807", "-9223372036854775808"]), arr(vec![]));
    assert_eq!(
        h.run(&["LRANGE", "l", "-9223372036854775808", "9223372036854775807"]),
        h.run(&["LRANGE", "l", "0", "-1"])
    );
    assert_eq!(h.run(&["LRANGE", "missing", "0", "-1"]), arr(vec![]));
    assert_eq!(h.run(&["LRANGE", "s", "0", "-1"]), err(WRONGTYPE));
    // Indexes are parsed before the key is looked at.
    assert_eq!(h.run(&["LRANGE", "missing", "x", "1"]), err("ERR value is not an integer or out of range"));
}

#[test]
fn lindex_counts_negative_from_the_tail_and_is_nil_out_of_range() {
    let mut h = with_list();
    assert_eq!(h.run(&["LINDEX", "l", "0"]), bulk("a"));
    assert_eq!(h.run(&["LINDEX", "l", "-1"]), bulk("c"));
    assert_eq!(h.run(&["LINDEX", "l", "-6"]), bulk("a"));
    assert_eq!(h.run(&["LINDEX", "l", "-7"]), Frame::Null);
    assert_eq!(h.run(&["LINDEX", "l", "6"]), Frame::Null);
    assert_eq!(h.run(&["LINDEX", "l", "-9223372036854775808"]), Frame::Null);
    assert_eq!(h.run(&["LINDEX", "l", "x"]), err("ERR value is not an integer or out of range"));
    // The key is looked at before the index is parsed.
    assert_eq!(h.run(&["LINDEX", "missing", "x"]), Frame::Null);
    assert_eq!(h.run(&["LINDEX", "s", "x"]), err(WRONGTYPE));
}

#[test]
fn lset_replaces_in_range_and_reports_missing_key_or_bad_index() {
    let mut h = with_list();
    assert_eq!(h.run(&["LSET", "l", "-1", "Z"]), ok());
    assert_eq!(h.run(&["LSET", "l", "0", "A"]), ok());
    assert_eq!(range(&mut h, "l"), bulks(&["A", "b", "c", "a", "b", "Z"]));
    assert_eq!(h.run(&["LSET", "l", "6", "v"]), err("ERR index out of range"));
    assert_eq!(h.run(&["LSET", "l", "-7", "v"]), err("ERR index out of range"));
    assert_eq!(h.run(&["LSET", "l", "x", "v"]), err("ERR value is not an integer or out of range"));
    assert_eq!(h.run(&["LSET", "missing", "x", "v"]), err("ERR no such key"));
    assert_eq!(h.run(&["LSET", "missing", "0", "v"]), err("ERR no such key"));
    assert_eq!(h.run(&["LSET", "s", "0", "v"]), err(WRONGTYPE));
    assert_eq!(kind(&h, "missing"), None);
}

#[test]
fn linsert_before_and_after_the_first_pivot() {
    let mut h = with_list();
    assert_eq!(h.run(&["LINSERT", "l", "BEFORE", "b", "X"]), int(7));
    assert_eq!(h.run(&["LINSERT", "l", "after", "c", "Y"]), int(8));
    assert_eq!(range(&mut h, "l"), bulks(&["a", "X", "b", "c", "Y", "a", "b", "c"]));
    assert_eq!(h.run(&["LINSERT", "l", "after", "zz", "Y"]), int(-1));
    assert_eq!(h.run(&["LINSERT", "missing", "before", "a", "b"]), int(0));
    assert_eq!(kind(&h, "missing"), None);
    assert_eq!(h.run(&["LINSERT", "s", "before", "a", "b"]), err(WRONGTYPE));
    assert_eq!(h.run(&["LINSERT", "missing", "around", "a", "b"]), err("ERR syntax error"));
}

#[test]
fn lrem_removes_from_head_tail_or_all() {
    let mut h = with_list();
    assert_eq!(h.run(&["LREM", "l", "1", "b"]), int(1));
    assert_eq!(range(&mut h, "l"), bulks(&["a", "c", "a", "b", "c"]));
    assert_eq!(h.run(&["LREM", "l", "-1", "a"]), int(1));
    assert_eq!(range(&mut h, "l"), bulks(&["a", "c", "b", "c"]));
    assert_eq!(h.run(&["LREM", "l", "0", "c"]), int(2));
    assert_eq!(range(&mut h, "l"), bulks(&["a", "b"]));
    assert_eq!(h.run(&["LREM", "l", "5", "zz"]), int(0));
    assert_eq!(h.run(&["LREM", "l", "-9223372036854775808", "a"]), int(1));
    assert_eq!(h.run(&["LREM", "l", "0", "b"]), int(1));
    assert_eq!(kind(&h, "l"), None);
    assert_eq!(h.run(&["LREM", "missing", "0", "a"]), int(0));
    assert_eq!(h.run(&["LREM", "s", "0", "a"]), err(WRONGTYPE));
    assert_eq!(h.run(&["LREM", "s", "x", "a"]), err("ERR value is not an integer or out of range"));
}

#[test]
fn ltrim_keeps_the_range_and_removes_the_key_when_nothing_is_left() {
    let mut h = with_list();
    assert_eq!(h.run(&["LTRIM", "l", "1", "-2"]), ok());
    assert_eq!(range(&mut h, "l"), bulks(&["b", "c", "a", "b"]));
    assert_eq!(h.run(&["LTRIM", "l", "-100", "100"]), ok());
    assert_eq!(h.run(&["LLEN", "l"]), int(4));
    assert_eq!(h.run(&["LTRIM", "l", "-3", "1"]), ok());
    assert_eq!(range(&mut h, "l"), bulks(&["c"]));
    assert_eq!(h.run(&["LTRIM", "l", "1", "0"]), ok());
    assert_eq!(kind(&h, "l"), None);
    assert_eq!(h.run(&["LTRIM", "missing", "0", "1"]), ok());
    assert_eq!(h.run(&["LTRIM", "s", "0", "1"]), err(WRONGTYPE));
    assert_eq!(h.run(&["LTRIM", "missing", "x", "1"]), err("ERR value is not an integer or out of range"));
}

#[test]
fn lpos_finds_first_match_or_nil() {
    let mut h = with_list();
    assert_eq!(h.run(&["LPOS", "l", "b"]), int(1));
    assert_eq!(h.run(&["LPOS", "l", "zz"]), Frame::Null);
    assert_eq!(h.run(&["LPOS", "missing", "a"]), Frame::Null);
    assert_eq!(h.run(&["LPOS", "s", "a"]), err(WRONGTYPE));
}

#[test]
fn lpos_rank_skips_matches_and_negative_rank_searches_from_the_tail() {
    let mut h = with_list();
    assert_eq!(h.run(&["LPOS", "l", "a", "RANK", "2"]), int(3));
    assert_eq!(h.run(&["LPOS", "l", "a", "RANK", "3"]), Frame::Null);
    assert_eq!(h.run(&["LPOS", "l", "a", "RANK", "-1"]), int(3));
    assert_eq!(h.run(&["LPOS", "l", "a", "RANK", "-2"]), int(0));
    assert_eq!(h.run(&["LPOS", "l", "c", "rank", "-1", "count", "0"]), ints(&[5, 2]));
    // -LONG_MIN stays negative in Redis's C: every match from the tail.
    assert_eq!(h.run(&["LPOS", "l", "a", "RANK", "-9223372036854775808", "COUNT", "1"]), ints(&[3, 0]));
}

#[test]
fn lpos_count_and_maxlen() {
    let mut h = with_list();
    assert_eq!(h.run(&["LPOS", "l", "a", "COUNT", "0"]), ints(&[0, 3]));
    assert_eq!(h.run(&["LPOS", "l", "a", "COUNT", "1"]), ints(&[0]));
    assert_eq!(h.run(&["LPOS", "l", "a", "COUNT", "2", "RANK", "2"]), ints(&[3]));
    assert_eq!(h.run(&["LPOS", "l", "a", "COUNT", "2", "RANK", "2", "MAXLEN", "1"]), ints(&[]));
    assert_eq!(h.run(&["LPOS", "l", "a", "COUNT", "0", "MAXLEN", "3"]), ints(&[0]));
    assert_eq!(h.run(&["LPOS", "l", "c", "MAXLEN", "2"]), Frame::Null);
    assert_eq!(h.run(&["LPOS", "l", "zz", "COUNT", "2"]), ints(&[]));
    assert_eq!(h.run(&["LPOS", "missing", "a", "COUNT", "0"]), ints(&[]));
}

#[test]
fn lpos_option_errors_have_redis_texts() {
    let mut h = with_list();
    let rank0 = err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
                     or use negative to start from the end of the list");
    assert_eq!(h.run(&["LPOS", "l", "a", "RANK", "0"]), rank0);
    // Options are parsed before the key's type is checked.
    assert_eq!(h.run(&["LPOS", "s", "a", "RANK", "0"]), rank0);
    assert_eq!(h.run(&["LPOS", "l", "a", "RANK", "x"]), err("ERR value is not an integer or out of range"));
    assert_eq!(h.run(&["LPOS", "l", "a", "COUNT", "-1"]), err("ERR COUNT can't be negative"));
    assert_eq!(h.run(&["LPOS", "l", "a", "COUNT", "x"]), err("ERR COUNT can't be negative"));
    assert_eq!(h.run(&["LPOS", "l", "a", "MAXLEN", "-1"]), err("ERR MAXLEN can't be negative"));
    assert_eq!(h.run(&["LPOS", "l", "a", "RANK"]), err("ERR syntax error"));
    assert_eq!(h.run(&["LPOS", "l", "a", "FOO", "1"]), err("ERR syntax error"));
}

#[test]
fn lmove_moves_between_lists_and_creates_the_destination() {
    let mut h = Harness::new();
    h.run(&["RPUSH", "src", "1", "2", "3"]);
    assert_eq!(h.run(&["LMOVE", "src", "dst", "LEFT", "RIGHT"]), bulk("1"));
    assert_eq!(h.run(&["LMOVE", "src", "dst", "right", "left"]), bulk("3"));
    assert_eq!(range(&mut h, "dst"), bulks(&["3", "1"]));
    assert_eq!(h.run(&["RPOPLPUSH", "src", "dst"]), bulk("2"));
    assert_eq!(range(&mut h, "dst"), bulks(&["2", "3", "1"]));
    // The source emptied: it is gone.
    assert_eq!(kind(&h, "src"), None);
    assert_eq!(h.run(&["LMOVE", "src", "dst", "LEFT", "LEFT"]), Frame::Null);
    assert_eq!(h.run(&["RPOPLPUSH", "src", "dst"]), Frame::Null);
}

#[test]
fn lmove_on_the_same_list_rotates() {
    let mut h = Harness::new();
    h.run(&["RPUSH", "l", "1", "2", "3"]);
    assert_eq!(h.run(&["LMOVE", "l", "l", "LEFT", "RIGHT"]), bulk("1"));
    assert_eq!(range(&mut h, "l"), bulks(&["2", "3", "1"]));
    assert_eq!(h.run(&["RPOPLPUSH", "l", "l"]), bulk("1"));
    assert_eq!(range(&mut h, "l"), bulks(&["1", "2", "3"]));
    assert_eq!(h.run(&["LMOVE", "l", "l", "LEFT", "LEFT"]), bulk("1"));
    assert_eq!(range(&mut h, "l"), bulks(&["1", "2", "3"]));
    h.run(&["RPUSH", "one", "x"]);
    assert_eq!(h.run(&["LMOVE", "one", "one", "RIGHT", "LEFT"]), bulk("x"));
    assert_eq!(range(&mut h, "one"), bulks(&["x"]));
}

#[test]
fn lmove_type_and_syntax_errors_change_nothing() {
    let mut h = with_list();
    assert_eq!(h.run(&["LMOVE", "l", "s", "LEFT", "RIGHT"]), err(WRONGTYPE));
    assert_eq!(h.run(&["RPOPLPUSH", "l", "s"]), err(WRONGTYPE));
    assert_eq!(h.run(&["LMOVE", "s", "l", "LEFT", "RIGHT"]), err(WRONGTYPE));
    assert_eq!(h.run(&["LLEN", "l"]), int(6));
    assert_eq!(h.run(&["GET", "s"]), bulk("x"));
    // A missing source answers nil before the destination's type is looked at.
    assert_eq!(h.run(&["LMOVE", "missing", "s", "LEFT", "RIGHT"]), Frame::Null);
    assert_eq!(h.run(&["LMOVE", "l", "l", "UP", "LEFT"]), err("ERR syntax error"));
    assert_eq!(h.run(&["LMOVE", "l", "l", "LEFT", "DOWN"]), err("ERR syntax error"));
}

#[test]
fn writes_on_an_expired_list_see_no_key() {
    let mut h = with_list();
    expire_in(&h, "l", 100);
    h.now_ms += 101;
    assert_eq!(h.run(&["LLEN", "l"]), int(0));
    assert_eq!(h.run(&["LPOP", "l"]), Frame::Null);
    assert_eq!(h.run(&["RPUSHX", "l", "v"]), int(0));
    assert_eq!(h.run(&["RPUSH", "l", "v"]), int(1));
    assert_eq!(expire_at(&h, "l"), 0);
    assert_eq!(range(&mut h, "l"), bulks(&["v"]));
}

#[test]
fn a_list_keeps_its_ttl_while_pushed_and_popped() {
    let mut h = Harness::new();
    h.run(&["RPUSH", "l", "a", "b"]);
    expire_in(&h, "l", 10_000);
    h.run(&["RPUSH", "l", "c"]);
    h.run(&["LPOP", "l"]);
    h.run(&["LSET", "l", "0", "x"]);
    assert_eq!(expire_at(&h, "l"), h.now_ms + 10_000);
}

#[test]
fn values_are_binary_safe_and_not_shared_with_the_request() {
    let mut h = Harness::new();
    h.run(&["RPUSH", "l", "", "a\r\nb", "\u{0}"]);
    assert_eq!(range(&mut h, "l"), bulks(&["", "a\r\nb", "\u{0}"]));
    assert_eq!(h.run(&["LPOS", "l", ""]), int(0));
}
