use bytes::Bytes;

use crate::cmd::testing::{Harness, arr, bulk, err, int};
use crate::resp::Frame;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn dbl(s: &str) -> Frame {
    Frame::Double(Bytes::copy_from_slice(s.as_bytes()))
}

fn bulks(items: &[&str]) -> Frame {
    arr(items.iter().map(|s| bulk(s)).collect())
}

/// Flat member, score pairs as RESP2 shows them: bulk strings both (a RESP2 double is one; the
/// pops and WITHSCORES ranges encode their replies at once, as bulk strings).
fn pairs(items: &[(&str, &str)]) -> Frame {
    arr(items.iter().flat_map(|(m, s)| [bulk(m), bulk(s)]).collect())
}

#[test]
fn zadd_flags_replies_and_scores_as_redis() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["ZADD", "z", "1", "a", "2", "b"]), int(2));
    assert_eq!(h.run(&["ZADD", "z", "CH", "3", "a", "2", "b", "4", "c"]), int(2));
    assert_eq!(h.run(&["ZADD", "z", "NX", "9", "a", "5", "d"]), int(1));
    assert_eq!(h.run(&["ZADD", "z", "XX", "CH", "0", "a", "7", "nope"]), int(1));
    assert_eq!(h.run(&["ZADD", "z", "GT", "CH", "-1", "a", "10", "d"]), int(1));
    assert_eq!(h.run(&["ZADD", "z", "INCR", "1.5", "a"]), dbl("1.5"));
    assert_eq!(h.run(&["ZADD", "z", "NX", "INCR", "1", "a"]), Frame::Null);
    assert_eq!(h.run(&["ZADD", "nokey", "XX", "1", "a"]), int(0));
    assert_eq!(h.run(&["EXISTS", "nokey"]), int(0));
    assert_eq!(h.run(&["ZINCRBY", "z", "0.1", "b"]), dbl("2.1000000000000001"));
    assert_eq!(h.run(&["ZSCORE", "z", "d"]), dbl("10"));
    assert_eq!(h.run(&["ZSCORE", "z", "zz"]), Frame::Null);
    assert_eq!(h.run(&["ZMSCORE", "z", "a", "zz"]), arr(vec![dbl("1.5"), Frame::Null]));
    assert_eq!(h.run(&["ZADD", "z", "inf", "i"]), int(1));
    assert_eq!(h.run(&["ZINCRBY", "z", "-inf", "i"]), err("ERR resulting score is not a number (NaN)"));
    assert_eq!(h.run(&["ZADD", "z", "nan", "a"]), err("ERR value is not a valid float"));
    assert_eq!(
        h.run(&["ZADD", "z", "NX", "XX", "1", "a"]),
        err("ERR XX and NX options at the same time are not compatible")
    );
    assert_eq!(h.run(&["ZADD", "z", "1"]), err("ERR wrong number of arguments for 'zadd' command"));
    assert_eq!(h.run(&["ZADD", "z", "1", "a", "2"]), err("ERR syntax error"));
    assert_eq!(h.run(&["ZCARD", "z"]), int(5));
}

#[test]
fn zrem_removes_and_the_emptied_key_is_gone() {
    let mut h = Harness::new();
    h.run(&["ZADD", "z", "1", "a", "2", "b"]);
    assert_eq!(h.run(&["ZREM", "z", "a", "x"]), int(1));
    assert_eq!(h.run(&["ZRANK", "z", "b"]), int(0));
    assert_eq!(h.run(&["ZREM", "z", "b"]), int(1));
    assert_eq!(h.run(&["EXISTS", "z"]), int(0));
    assert_eq!(h.run(&["ZREM", "z", "b"]), int(0));
    assert_eq!(h.run(&["ZCARD", "z"]), int(0));
}

#[test]
fn ranges_by_rank_score_and_lex() {
    let mut h = Harness::new();
    h.run(&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"]);
    assert_eq!(h.run(&["ZRANGE", "z", "1", "-2"]), bulks(&["b", "c"]));
    assert_eq!(h.run(&["ZRANGE", "z", "0", "0", "REV", "WITHSCORES"]), pairs(&[("d", "4")]));
    assert_eq!(h.run(&["ZREVRANGE", "z", "0", "1"]), bulks(&["d", "c"]));
    assert_eq!(h.run(&["ZRANGEBYSCORE", "z", "(1", "3", "LIMIT", "1", "5"]), bulks(&["c"]));
    assert_eq!(
        h.run(&["ZREVRANGEBYSCORE", "z", "+inf", "-inf", "WITHSCORES", "LIMIT", "0", "1"]),
        pairs(&[("d", "4")])
    );
    assert_eq!(h.run(&["ZRANGE", "z", "(4", "2", "BYSCORE", "REV"]), bulks(&["c", "b"]));
    assert_eq!(h.run(&["ZCOUNT", "z", "2", "+inf"]), int(3));
    assert_eq!(h.run(&["ZREVRANK", "z", "a"]), int(3));
    h.run(&["ZADD", "l", "0", "a", "0", "b", "0", "c"]);
    assert_eq!(h.run(&["ZRANGEBYLEX", "l", "(a", "+"]), bulks(&["b", "c"]));
    assert_eq!(h.run(&["ZREVRANGEBYLEX", "l", "[b", "-"]), bulks(&["b", "a"]));
    assert_eq!(h.run(&["ZLEXCOUNT", "l", "-", "(c"]), int(2));
    assert_eq!(
        h.run(&["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"]),
        err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
    );
    assert_eq!(h.run(&["ZCOUNT", "z", "x", "1"]), err("ERR min or max is not a float"));
    assert_eq!(h.run(&["ZLEXCOUNT", "l", "a", "+"]), err("ERR min or max not valid string range item"));
    assert_eq!(h.run(&["ZRANGE", "nokey", "0", "-1"]), arr(vec![]));
}

#[test]
fn resp3_scores_are_doubles_and_withscores_pairs_are_arrays() {
    let mut h = Harness::new();
    h.run(&["HELLO", "3"]);
    h.run(&["ZADD", "z", "1", "a", "2.5", "b"]);
    let pair = |m: &str, s: &str| arr(vec![bulk(m), dbl(s)]);
    assert_eq!(h.run(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]), arr(vec![pair("a", "1"), pair("b", "2.5")]));
    // Members alone read the same under both protocols (encoded at once).
    assert_eq!(h.run(&["ZRANGE", "z", "(1", "+inf", "BYSCORE", "LIMIT", "0", "5"]), bulks(&["b"]));
    assert_eq!(h.run(&["ZREVRANGE", "z", "0", "-1"]), bulks(&["b", "a"]));
    assert_eq!(h.run(&["ZPOPMIN", "z"]), arr(vec![bulk("a"), dbl("1")]));
    assert_eq!(h.run(&["ZPOPMAX", "z", "1"]), arr(vec![pair("b", "2.5")]));
    h.run(&["ZADD", "z", "1", "a"]);
    assert_eq!(h.run(&["ZMPOP", "1", "z", "MIN"]), arr(vec![bulk("z"), arr(vec![pair("a", "1")])]));
    assert_eq!(h.run(&["ZMPOP", "1", "z", "MIN"]), Frame::NullArray);
}

#[test]
fn remrange_and_pops() {
    let mut h = Harness::new();
    h.run(&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"]);
    assert_eq!(h.run(&["ZREMRANGEBYRANK", "z", "0", "0"]), int(1));
    assert_eq!(h.run(&["ZREMRANGEBYSCORE", "z", "(4", "inf"]), int(1));
    assert_eq!(h.run(&["ZPOPMIN", "z", "-1"]), err("ERR value is out of range, must be positive"));
    assert_eq!(h.run(&["ZPOPMAX", "z", "2"]), pairs(&[("d", "4"), ("c", "3")]));
    assert_eq!(h.run(&["ZPOPMIN", "z"]), pairs(&[("b", "2")]));
    assert_eq!(h.run(&["EXISTS", "z"]), int(0));
    assert_eq!(h.run(&["ZPOPMIN", "z"]), arr(vec![]));
    h.run(&["ZADD", "l", "0", "a", "0", "b"]);
    assert_eq!(h.run(&["ZREMRANGEBYLEX", "l", "-", "+"]), int(2));
    assert_eq!(h.run(&["EXISTS", "l"]), int(0));
    h.run(&["ZADD", "y", "1", "a", "2", "b"]);
    assert_eq!(
        h.run(&["ZMPOP", "2", "nokey", "y", "MAX", "COUNT", "5"]),
        arr(vec![bulk("y"), arr(vec![arr(vec![bulk("b"), dbl("2")]), arr(vec![bulk("a"), dbl("1")])])])
    );
    h.run(&["SET", "s", "x"]);
    h.run(&["ZADD", "y", "1", "a"]);
    assert_eq!(h.run(&["ZMPOP", "2", "s", "y", "MIN"]), err(WRONGTYPE));
    assert_eq!(h.run(&["ZMPOP", "0", "y", "MIN"]), err("ERR numkeys should be greater than 0"));
}

/// RESP2 pops and WITHSCORES ranges (encoded at once) carry every kind of score text as
/// redis-server 7.0.15 replies it, from both encodings.
#[test]
fn resp2_pops_and_ranges_print_every_kind_of_score() {
    let mut h = Harness::new();
    let want =
        [("b", "-inf"), ("d", "-0.10000000000000001"), ("e", "0"), ("a", "2.5"), ("c", "1.0000000000000001e+300")];
    for big in [false, true] {
        h.run(&["DEL", "z"]);
        h.run(&["ZADD", "z", "2.5", "a", "-inf", "b", "1e300", "c", "-0.1", "d", "0", "e"]);
        if big {
            // Past zset-max-listpack-value: the tree encoding.
            h.run(&["ZADD", "z", "9", &"x".repeat(100)]);
            h.run(&["ZREM", "z", &"x".repeat(100)]);
        }
        assert_eq!(h.run(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]), pairs(&want));
        assert_eq!(h.run(&["ZPOPMIN", "z"]), pairs(&want[..1]));
        assert_eq!(h.run(&["ZPOPMAX", "z", "2"]), pairs(&[want[4], want[3]]));
        assert_eq!(h.run(&["ZPOPMIN", "z", "5"]), pairs(&want[1..3]));
        assert_eq!(h.run(&["ZPOPMIN", "z", "5"]), arr(vec![]));
    }
}

#[test]
fn zrangestore_and_set_operations_over_sets_and_zsets() {
    let mut h = Harness::new();
    h.run(&["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
    h.run(&["SADD", "s", "b", "c", "d"]);
    assert_eq!(h.run(&["ZRANGESTORE", "dst", "z", "1", "-1"]), int(2));
    assert_eq!(h.run(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]), pairs(&[("b", "2"), ("c", "3")]));
    assert_eq!(h.run(&["ZRANGESTORE", "dst", "nokey", "0", "-1"]), int(0));
    assert_eq!(h.run(&["EXISTS", "dst"]), int(0));
    assert_eq!(
        h.run(&["ZUNION", "2", "z", "s", "WEIGHTS", "2", "1", "WITHSCORES"]),
        pairs(&[("d", "1"), ("a", "2"), ("b", "5"), ("c", "7")])
    );
    assert_eq!(h.run(&["ZINTER", "2", "z", "s", "AGGREGATE", "MAX", "WITHSCORES"]), pairs(&[("b", "2"), ("c", "3")]));
    assert_eq!(h.run(&["ZDIFF", "2", "z", "s"]), bulks(&["a"]));
    assert_eq!(h.run(&["ZINTER", "2", "z", "z", "WITHSCORES"]), pairs(&[("a", "2"), ("b", "4"), ("c", "6")]));
    assert_eq!(h.run(&["ZINTERSTORE", "out", "2", "z", "s"]), int(2));
    assert_eq!(h.run(&["ZRANGE", "out", "0", "-1", "WITHSCORES"]), pairs(&[("b", "3"), ("c", "4")]));
    assert_eq!(h.run(&["ZDIFFSTORE", "out", "2", "z", "z"]), int(0));
    assert_eq!(h.run(&["EXISTS", "out"]), int(0));
    assert_eq!(h.run(&["ZINTERCARD", "2", "z", "s", "LIMIT", "1"]), int(1));
    assert_eq!(h.run(&["ZINTERCARD", "2", "z", "s"]), int(2));
    h.run(&["SET", "str", "x"]);
    assert_eq!(h.run(&["ZUNION", "2", "z", "str", "BOGUS"]), err(WRONGTYPE));
    assert_eq!(h.run(&["ZUNION", "0", "z"]), err("ERR at least 1 input key is needed for 'zunion' command"));
    assert_eq!(h.run(&["ZUNIONSTORE", "o", "1", "z", "WEIGHTS", "x"]), err("ERR weight value is not a float"));
}

#[test]
fn wrongtype_everywhere_and_generic_commands_see_zsets() {
    let mut h = Harness::new();
    h.run(&["SET", "str", "x"]);
    for cmd in [
        &["ZADD", "str", "1", "a"][..],
        &["ZSCORE", "str", "a"],
        &["ZRANGE", "str", "0", "-1"],
        &["ZPOPMIN", "str"],
        &["ZRANDMEMBER", "str"],
        &["ZSCAN", "str", "0"],
        &["ZREMRANGEBYRANK", "str", "0", "1"],
        &["ZRANGESTORE", "d", "str", "0", "1"],
    ] {
        assert_eq!(h.run(cmd), err(WRONGTYPE), "{cmd:?}");
    }
    h.run(&["ZADD", "z", "1", "a"]);
    assert_eq!(h.run(&["GET", "z"]), err(WRONGTYPE));
    assert_eq!(h.run(&["SADD", "z", "a"]), err(WRONGTYPE));
    assert_eq!(h.run(&["TYPE", "z"]), Frame::simple("zset"));
    assert_eq!(h.run(&["COPY", "z", "z2"]), int(1));
    assert_eq!(h.run(&["RENAME", "z2", "z3"]), Frame::ok());
    assert_eq!(h.run(&["ZADD", "z3", "2", "b"]), int(1));
    assert_eq!(h.run(&["ZCARD", "z"]), int(1));
    let Frame::Array(scan) = h.run(&["SCAN", "0", "TYPE", "zset", "COUNT", "100"]) else { panic!() };
    let Frame::Array(mut keys) = scan[1].clone() else { panic!() };
    keys.sort_by_key(|f| format!("{f:?}"));
    assert_eq!(keys, vec![bulk("z"), bulk("z3")]);
    let Frame::Array(zscan) = h.run(&["ZSCAN", "z3", "0"]) else { panic!() };
    let Frame::Array(items) = zscan[1].clone() else { panic!() };
    let mut got: Vec<(Frame, Frame)> = items.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect();
    got.sort_by_key(|p| format!("{p:?}"));
    assert_eq!(got, vec![(bulk("a"), bulk("1")), (bulk("b"), bulk("2"))]);
    let Frame::Array(picks) = h.run(&["ZRANDMEMBER", "z3", "-3", "WITHSCORES"]) else { panic!() };
    assert_eq!(picks.len(), 6);
    assert_eq!(h.run(&["ZRANDMEMBER", "z3", "5"]).to_resp2(), h.run(&["ZRANDMEMBER", "z3", "2"]).to_resp2().clone());
}

#[test]
fn config_set_zset_max_listpack_entries_picks_the_encoding_as_redis() {
    let mut h = Harness::new();
    // The packed form stores a zero score as 0, the tree keeps -0: what ZSCORE shows.
    h.run(&["ZADD", "packed", "-0", "a"]);
    assert_eq!(h.run(&["ZSCORE", "packed", "a"]), dbl("0"));
    assert_eq!(h.run(&["CONFIG", "SET", "zset-max-listpack-entries", "0"]), Frame::ok());
    h.run(&["ZADD", "tree", "-0", "a"]);
    assert_eq!(h.run(&["ZSCORE", "tree", "a"]), dbl("-0"));
    assert_eq!(
        h.run(&["CONFIG", "SET", "zset-max-ziplist-entries", "128", "zset-max-listpack-value", "1kb"]),
        Frame::ok()
    );
    assert_eq!(
        h.run(&["CONFIG", "GET", "zset-max-listpack-value"]).to_resp2(),
        bulks(&["zset-max-listpack-value", "1024"])
    );
    h.run(&["ZADD", "again", "-0", "a"]);
    assert_eq!(h.run(&["ZSCORE", "again", "a"]), dbl("0"));
}
