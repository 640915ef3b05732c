use crate::cmd::testing::{Harness, arr, bulk, err, int};
use crate::resp::Frame;

fn bulks(items: &[&str]) -> Frame {
    arr(items.iter().map(|s| bulk(s)).collect())
}

#[test]
fn sort_orders_a_list_numerically_and_desc() {
    let mut h = Harness::new();
    h.run(&["RPUSH", "l", "3", "10", "-1.5", "2"]);
    assert_eq!(h.run(&["SORT", "l"]), bulks(&["-1.5", "2", "3", "10"]));
    assert_eq!(h.run(&["SORT", "l", "DESC"]), bulks(&["10", "3", "2", "-1.5"]));
    assert_eq!(h.run(&["SORT_RO", "l", "LIMIT", "1", "2"]), bulks(&["2", "3"]));
}

#[test]
fn sort_of_non_numbers_without_alpha_is_an_error() {
    let mut h = Harness::new();
    h.run(&["RPUSH", "l", "b", "a"]);
    assert_eq!(h.run(&["SORT", "l"]), err("ERR One or more scores can't be converted into double"));
    h.run(&["RPUSH", "n", "nan"]);
    assert_eq!(h.run(&["SORT", "n"]), err("ERR One or more scores can't be converted into double"));
    assert_eq!(h.run(&["SORT", "l", "ALPHA"]), bulks(&["a", "b"]));
    assert_eq!(h.run(&["SORT", "l", "ALPHA", "DESC"]), bulks(&["b", "a"]));
}

#[test]
fn sort_equal_scores_fall_back_to_bytes() {
    let mut h = Harness::new();
    h.run(&["RPUSH", "l", "1.0", "1", "01", "", " 2"]);
    assert_eq!(h.run(&["SORT", "l"]), bulks(&["", "01", "1", "1.0", " 2"]));
}

#[test]
fn sort_by_pattern_reads_strings_and_hash_fields() {
    let mut h = Harness::new();
    h.run(&["RPUSH", "l", "a", "b", "c"]);
    h.run(&["MSET", "w_a", "3", "w_b", "1", "w_c", "2"]);
    assert_eq!(h.run(&["SORT", "l", "BY", "w_*"]), bulks(&["b", "c", "a"]));
    h.run(&["HSET", "h_a", "f", "z"]);
    h.run(&["HSET", "h_b", "f", "y"]);
    // c has no hash: missing sorts first in ALPHA BY.
    assert_eq!(h.run(&["SORT", "l", "BY", "h_*->f", "ALPHA"]), bulks(&["c", "b", "a"]));
    // Missing weights are 0 numerically.
    assert_eq!(h.run(&["SORT", "l", "BY", "nope_*"]), bulks(&["a", "b", "c"]));
    h.run(&["SET", "w_c", "x"]);
    assert_eq!(h.run(&["SORT", "l", "BY", "w_*"]), err("ERR One or more scores can't be converted into double"));
}

#[test]
fn sort_by_nosort_keeps_natural_order_of_lists_and_sorted_sets() {
    let mut h = Harness::new();
    h.run(&["RPUSH", "l", "3", "1", "2"]);
    assert_eq!(h.run(&["SORT", "l", "BY", "nosort"]), bulks(&["3", "1", "2"]));
    assert_eq!(h.run(&["SORT", "l", "BY", "nosort", "DESC", "LIMIT", "0", "2"]), bulks(&["2", "1"]));
    h.run(&["ZADD", "z", "1", "c", "2", "a", "3", "b"]);
    assert_eq!(h.run(&["SORT", "z", "BY", "nosort"]), bulks(&["c", "a", "b"]));
    assert_eq!(h.run(&["SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "5"]), bulks(&["a", "c"]));
    assert_eq!(h.run(&["SORT", "z", "ALPHA"]), bulks(&["a", "b", "c"]));
}

#[test]
fn sort_get_patterns_hash_and_nil_for_missing() {
    let mut h = Harness::new();
    h.run(&["SADD", "s", "2", "1"]);
    h.run(&["SET", "o_1", "one"]);
    h.run(&["HSET", "h_2", "name", "two"]);
    assert_eq!(
        h.run(&["SORT", "s", "GET", "#", "GET", "o_*", "GET", "h_*->name", "GET", "fixed"]),
        arr(vec![bulk("1"), bulk("one"), Frame::Null, Frame::Null, bulk("2"), Frame::Null, bulk("two"), Frame::Null])
    );
}

#[test]
fn sort_limit_edges_as_redis() {
    let mut h = Harness::new();
    h.run(&["RPUSH", "l", "1", "2", "3"]);
    assert_eq!(h.run(&["SORT", "l", "LIMIT", "-5", "2"]), bulks(&["1", "2"]));
    assert_eq!(h.run(&["SORT", "l", "LIMIT", "2", "-1"]), bulks(&["3"]));
    assert_eq!(h.run(&["SORT", "l", "LIMIT", "3", "1"]), bulks(&[]));
    assert_eq!(h.run(&["SORT", "l", "LIMIT", "1", "0"]), bulks(&[]));
    assert_eq!(h.run(&["SORT", "l", "LIMIT", "x", "1"]), err("ERR value is not an integer or out of range"));
    assert_eq!(h.run(&["SORT", "l", "LIMIT", "1"]), err("ERR syntax error"));
}

#[test]
fn sort_errors_and_missing_keys() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["SORT", "none"]), bulks(&[]));
    h.run(&["SET", "str", "1"]);
    assert_eq!(h.run(&["SORT", "str"]), err("WRONGTYPE Operation against a key holding the wrong kind of value"));
    h.run(&["HSET", "h", "f", "v"]);
    assert_eq!(h.run(&["SORT", "h"]), err("WRONGTYPE Operation against a key holding the wrong kind of value"));
    assert_eq!(h.run(&["SORT", "none", "BOGUS"]), err("ERR syntax error"));
    assert_eq!(h.run(&["SORT_RO", "none", "STORE", "d"]), err("ERR syntax error"));
    // Syntax errors win over WRONGTYPE.
    assert_eq!(h.run(&["SORT", "str", "BY"]), err("ERR syntax error"));
}

#[test]
fn sort_store_writes_a_list_and_replies_its_length() {
    let mut h = Harness::new();
    h.run(&["RPUSH", "l", "3", "1", "2"]);
    h.run(&["SET", "d", "old"]);
    h.run(&["MSET", "v_1", "a", "v_3", "c"]);
    assert_eq!(h.run(&["SORT", "l", "STORE", "d"]), int(3));
    assert_eq!(h.run(&["LRANGE", "d", "0", "-1"]), bulks(&["1", "2", "3"]));
    // GET of a missing key stores an empty string.
    assert_eq!(h.run(&["SORT", "l", "GET", "v_*", "STORE", "d"]), int(3));
    assert_eq!(h.run(&["LRANGE", "d", "0", "-1"]), bulks(&["a", "", "c"]));
    // The source itself may be the destination.
    assert_eq!(h.run(&["SORT", "l", "DESC", "STORE", "l"]), int(3));
    assert_eq!(h.run(&["LRANGE", "l", "0", "-1"]), bulks(&["3", "2", "1"]));
}

#[test]
fn sort_store_of_an_empty_result_deletes_the_destination() {
    let mut h = Harness::new();
    h.run(&["SET", "d", "x"]);
    assert_eq!(h.run(&["SORT", "none", "STORE", "d"]), int(0));
    assert_eq!(h.run(&["EXISTS", "d"]), int(0));
    h.run(&["RPUSH", "l", "1"]);
    assert_eq!(h.run(&["SORT", "l", "LIMIT", "5", "1", "STORE", "d"]), int(0));
    assert_eq!(h.run(&["EXISTS", "d"]), int(0));
}

#[test]
fn sort_store_sorts_a_set_alpha_even_by_nosort() {
    let mut h = Harness::new();
    h.run(&["SADD", "s", "b", "c", "a"]);
    assert_eq!(h.run(&["SORT", "s", "BY", "nosort", "STORE", "d"]), int(3));
    assert_eq!(h.run(&["LRANGE", "d", "0", "-1"]), bulks(&["a", "b", "c"]));
}

#[test]
fn command_getkeys_of_sort_gives_the_key_and_the_last_store_destination() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["COMMAND", "GETKEYS", "SORT", "a", "STORE", "d"]), bulks(&["a", "d"]));
    assert_eq!(
        h.run(&["COMMAND", "GETKEYS", "SORT", "a", "BY", "x", "LIMIT", "0", "1", "GET", "store", "STORE", "d2"]),
        bulks(&["a", "d2"])
    );
    assert_eq!(h.run(&["COMMAND", "GETKEYS", "SORT", "a", "STORE"]), bulks(&["a"]));
    assert_eq!(h.run(&["COMMAND", "GETKEYS", "SORT_RO", "a", "BY", "x"]), bulks(&["a"]));
}

#[test]
fn sort_counts_a_keyspace_hit_or_miss_per_key_it_reads_as_redis() {
    let mut h = Harness::new();
    h.run(&["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
    h.run(&["MSET", "w_a", "1", "w_b", "2"]);
    let stats = |h: &Harness| {
        let s = &h.shared.stats;
        (s.keyspace_hits.get(), s.keyspace_misses.get())
    };
    let before = stats(&h);
    h.run(&["SORT", "z", "BY", "w_*", "GET", "#", "STORE", "d"]);
    let after = stats(&h);
    // z, w_a, w_b hit; w_c misses; `#` and the destination are not looked up.
    assert_eq!((after.0 - before.0, after.1 - before.1), (3, 1));
}
