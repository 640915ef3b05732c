use crate::cmd::testing::{Harness, arr, bulk, err, int, ok};
use crate::resp::Frame;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn sorted(f: Frame) -> Vec<Frame> {
    let mut items = match f {
        Frame::Array(v) | Frame::Set(v) => v,
        Frame::Map(pairs) => pairs.into_iter().flat_map(|(a, b)| [a, b]).collect(),
        other => panic!("{other:?}"),
    };
    items.sort_by_key(|f| format!("{f:?}"));
    items
}

#[test]
fn hset_counts_new_fields_and_hmset_replies_ok() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["HSET", "h", "a", "1", "b", "2"]), int(2));
    assert_eq!(h.run(&["HSET", "h", "a", "9", "c", "3"]), int(1));
    assert_eq!(h.run(&["HMSET", "h", "d", "4"]), ok());
    assert_eq!(h.run(&["HGET", "h", "a"]), bulk("9"));
    assert_eq!(h.run(&["HLEN", "h"]), int(4));
    assert_eq!(h.run(&["HMGET", "h", "a", "zz", "d"]), arr(vec![bulk("9"), Frame::Null, bulk("4")]));
    assert_eq!(h.run(&["HSET", "h", "a"]), err("ERR wrong number of arguments for 'hset' command"));
    assert_eq!(h.run(&["HMSET", "h", "a", "1", "b"]), err("ERR wrong number of arguments for 'hmset' command"));
}

#[test]
fn hsetnx_sets_only_missing_fields() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["HSETNX", "h", "f", "1"]), int(1));
    assert_eq!(h.run(&["HSETNX", "h", "f", "2"]), int(0));
    assert_eq!(h.run(&["HGET", "h", "f"]), bulk("1"));
}

#[test]
fn hdel_of_the_last_field_removes_the_key() {
    let mut h = Harness::new();
    h.run(&["HSET", "h", "a", "1", "b", "2"]);
    assert_eq!(h.run(&["HDEL", "h", "a", "nope", "a"]), int(1));
    assert_eq!(h.run(&["EXISTS", "h"]), int(1));
    assert_eq!(h.run(&["HDEL", "h", "b"]), int(1));
    assert_eq!(h.run(&["EXISTS", "h"]), int(0));
    assert_eq!(h.run(&["HDEL", "h", "b"]), int(0));
}

#[test]
fn reads_of_a_missing_hash_answer_empty() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["HGET", "h", "f"]), Frame::Null);
    assert_eq!(h.run(&["HSTRLEN", "h", "f"]), int(0));
    assert_eq!(h.run(&["HEXISTS", "h", "f"]), int(0));
    assert_eq!(h.run(&["HKEYS", "h"]), arr(vec![]));
    assert_eq!(h.run(&["HGETALL", "h"]), Frame::Map(vec![]));
    assert_eq!(h.run(&["HRANDFIELD", "h"]), Frame::Null);
    assert_eq!(h.run(&["HRANDFIELD", "h", "-3"]), arr(vec![]));
}

#[test]
fn hgetall_hkeys_hvals_hstrlen_hexists() {
    let mut h = Harness::new();
    h.run(&["HSET", "h", "a", "xyz", "b", ""]);
    assert_eq!(sorted(h.run(&["HGETALL", "h"])), vec![bulk(""), bulk("a"), bulk("b"), bulk("xyz")]);
    assert_eq!(sorted(h.run(&["HKEYS", "h"])), vec![bulk("a"), bulk("b")]);
    assert_eq!(sorted(h.run(&["HVALS", "h"])), vec![bulk(""), bulk("xyz")]);
    assert_eq!(h.run(&["HSTRLEN", "h", "a"]), int(3));
    assert_eq!(h.run(&["HEXISTS", "h", "b"]), int(1));
}

#[test]
fn hincrby_checks_the_increment_the_type_and_overflow() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["HINCRBY", "h", "n", "5"]), int(5));
    assert_eq!(h.run(&["HINCRBY", "h", "n", "-7"]), int(-2));
    assert_eq!(h.run(&["HINCRBY", "h", "n", "x"]), err("ERR value is not an integer or out of range"));
    h.run(&["HSET", "h", "s", "abc", "max", "9223372036854775807"]);
    assert_eq!(h.run(&["HINCRBY", "h", "s", "1"]), err("ERR hash value is not an integer"));
    assert_eq!(h.run(&["HINCRBY", "h", "max", "1"]), err("ERR increment or decrement would overflow"));
    h.run(&["SET", "str", "1"]);
    assert_eq!(h.run(&["HINCRBY", "str", "f", "1"]), err(WRONGTYPE));
}

#[test]
fn hincrbyfloat_formats_as_redis_and_refuses_infinity() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["HINCRBYFLOAT", "h", "f", "10.5"]), bulk("10.5"));
    assert_eq!(h.run(&["HINCRBYFLOAT", "h", "f", "0.1"]), bulk("10.6"));
    assert_eq!(h.run(&["HINCRBYFLOAT", "h", "f", "-5.6"]), bulk("5"));
    assert_eq!(h.run(&["HINCRBYFLOAT", "h", "f", "inf"]), err("ERR value is NaN or Infinity"));
    assert_eq!(h.run(&["HINCRBYFLOAT", "h", "f", "abc"]), err("ERR value is not a valid float"));
    h.run(&["HSET", "h", "s", "abc"]);
    assert_eq!(h.run(&["HINCRBYFLOAT", "h", "s", "1"]), err("ERR hash value is not a float"));
}

#[test]
fn hrandfield_counts_follow_redis() {
    let mut h = Harness::new();
    h.run(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    let len = |f: Frame| match f {
        Frame::Array(v) => v.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(len(h.run(&["HRANDFIELD", "h", "2"])), 2);
    assert_eq!(sorted(h.run(&["HRANDFIELD", "h", "10"])), vec![bulk("a"), bulk("b"), bulk("c")]);
    assert_eq!(len(h.run(&["HRANDFIELD", "h", "-7"])), 7);
    assert_eq!(len(h.run(&["HRANDFIELD", "h", "-2", "WITHVALUES"])), 4);
    assert_eq!(len(h.run(&["HRANDFIELD", "h", "0"])), 0);
    assert_eq!(h.run(&["HRANDFIELD", "h", "1", "BOGUS"]), err("ERR syntax error"));
    assert_eq!(
        h.run(&["HRANDFIELD", "h", "-9223372036854775808"]),
        err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    );
    assert_eq!(h.run(&["HRANDFIELD", "h", "-9223372036854775807", "WITHVALUES"]), err("ERR value is out of range"));
    // Huge negative counts are refused instead of building an unbounded reply.
    assert_eq!(h.run(&["HRANDFIELD", "h", "-9223372036854775807"]), err("ERR value is out of range"));
}

#[test]
fn hscan_follows_the_cursor_to_every_field_once() {
    let mut h = Harness::new();
    for i in 0..100 {
        h.run(&["HSET", "h", &format!("f{i}"), &format!("v{i}")]);
    }
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    loop {
        let Frame::Array(reply) = h.run(&["HSCAN", "h", &cursor, "COUNT", "7"]) else { panic!() };
        let [Frame::Bulk(next), Frame::Array(items)] = &reply[..] else { panic!("{reply:?}") };
        for pair in items.chunks(2) {
            let (Frame::Bulk(f), Frame::Bulk(v)) = (&pair[0], &pair[1]) else { panic!() };
            assert_eq!(&f[1..], &v[1..]);
            seen.push(f.clone());
        }
        cursor = String::from_utf8(next.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 100);
    assert_eq!(h.run(&["HSCAN", "h", "0", "TYPE", "hash"]), err("ERR syntax error"));
    assert_eq!(h.run(&["HSCAN", "h", "0", "COUNT", "0"]), err("ERR syntax error"));
    assert_eq!(h.run(&["HSCAN", "h", "x"]), err("ERR invalid cursor"));
    assert_eq!(h.run(&["HSCAN", "nokey", "0", "COUNT", "0"]), arr(vec![bulk("0"), arr(vec![])]));
}

#[test]
fn every_hash_command_refuses_other_types_and_others_refuse_hashes() {
    let mut h = Harness::new();
    h.run(&["SET", "s", "v"]);
    for cmd in
        [&["HGET", "s", "f"][..], &["HSET", "s", "f", "v"], &["HLEN", "s"], &["HGETALL", "s"], &["HDEL", "s", "f"]]
    {
        assert_eq!(h.run(cmd), err(WRONGTYPE), "{cmd:?}");
    }
    h.run(&["HSET", "h", "f", "v"]);
    for cmd in [&["GET", "h"][..], &["LPUSH", "h", "x"], &["SADD", "h", "x"], &["INCR", "h"], &["APPEND", "h", "x"]] {
        assert_eq!(h.run(cmd), err(WRONGTYPE), "{cmd:?}");
    }
    assert_eq!(h.run(&["TYPE", "h"]), Frame::Simple("hash".into()));
}

#[test]
fn generic_commands_move_copy_and_expire_hashes() {
    let mut h = Harness::new();
    h.run(&["HSET", "h", "f", "v"]);
    assert_eq!(h.run(&["COPY", "h", "h2"]), int(1));
    h.run(&["HSET", "h", "g", "w"]);
    assert_eq!(h.run(&["HLEN", "h2"]), int(1), "COPY is deep");
    assert_eq!(h.run(&["RENAME", "h", "h3"]), ok());
    assert_eq!(h.run(&["HLEN", "h3"]), int(2));
    assert_eq!(h.run(&["MOVE", "h3", "1"]), int(1));
    assert_eq!(h.run(&["EXPIRE", "h2", "10"]), int(1));
    h.now_ms += 11_000;
    assert_eq!(h.run(&["HGET", "h2", "f"]), Frame::Null);
    assert_eq!(h.run(&["HSET", "h2", "x", "y"]), int(1), "an expired hash is replaced, not extended");
    assert_eq!(h.run(&["HLEN", "h2"]), int(1));
}
