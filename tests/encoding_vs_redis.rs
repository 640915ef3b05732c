//! OBJECT ENCODING against a real redis-server 7.0: a script of commands goes to both servers, and
//! after each one the replies must be byte-equal and every key's OBJECT ENCODING the same. The
//! script walks every path where Redis picks or changes an encoding (creation, growth past each
//! threshold, the one-way conversions, COPY/RENAME, STORE results, INCRBYFLOAT/APPEND/SETRANGE,
//! CONFIG SET of each threshold under its old and new names). Replies whose order Redis defines
//! for small encodings (HGETALL of a listpack hash, SMEMBERS of an intset, SUNION/SINTER of
//! intsets) are compared in order. Skipped when redis-server is not installed (CI has it).
#![cfg(not(feature = "loom"))]

mod common;

use common::{RealRedis, Server};

fn words(line: &str) -> Vec<String> {
    line.split_whitespace()
        .map(|w| match w.strip_prefix("@long") {
            // `@long` + n: a string of n bytes (n = 65 is past the 64-byte thresholds).
            Some(n) => "x".repeat(n.parse().unwrap()),
            None => w.to_string(),
        })
        .collect()
}

const SCRIPT: &str = "
SET s1 123
SET s2 -0
SET s3 @long44
SET s4 @long45
SET s5 12345678901234567890
SET s6 9999
SET s7 10000
OBJECT REFCOUNT s6
OBJECT REFCOUNT s7
OBJECT REFCOUNT s3
APPEND a1 12
APPEND a1 3
SETRANGE r1 0 abc
SETRANGE s1 0 9
INCRBYFLOAT f1 3
INCRBYFLOAT f2 1.5
INCR f1
INCR i1
INCRBY i2 -5
MSET m1 1 m2 hello
GETSET m1 x
SETNX n1 77
COPY s4 s4copy
COPY a1 a1copy
RENAME r1 r1moved
RPUSH l1 a b c
LPUSH l2 1
SORT l1 ALPHA STORE l3
HSET h1 f v g 1
HGETALL h1
HSET h1 z @long64
HSET h1 f2 @long65
HDEL h1 f2
HSET h2 @long65 v
HSETNX h3 f v
HSETNX h3 f @long65
HSETNX h4 f v
HSETNX h4 g @long65
HINCRBY h5 @long65 1
HINCRBY h6 n 1
HINCRBYFLOAT h7 n 1.5
HINCRBYFLOAT h8 @long65 1
HSET h9 a 1 b 2 c 3
HDEL h9 b
HSET h9 d 4
HGETALL h9
HSCAN h9 0 COUNT 1
HSCAN h9 17 MATCH [ad]*
CONFIG SET hash-max-ziplist-entries 3
HSET h10 a 1 b 2 c 3
HSET h10 d 4
HDEL h10 a b c
CONFIG SET hash-max-listpack-entries 0
HSET h11 a 1
CONFIG SET hash-max-listpack-entries 512
CONFIG SET hash-max-listpack-value 3
HSET h12 abc def
HSET h12 abcd e
CONFIG SET hash-max-ziplist-value 64
CONFIG GET hash-max-ziplist-entries
COPY h1 h1copy
COPY h9 h9copy
RENAME h10 h10moved
SADD si 3 1 2 -7 100000 5000000000
SMEMBERS si
SADD si a
SREM si a
SADD ss a
SADD sm 1 a
SADD sm2 a 1
SADD big 70000
SADD big -9223372036854775808 9223372036854775807
SMEMBERS big
SSCAN big 0 COUNT 1
SSCAN si 0 MATCH 5*
SSCAN x3 9 MATCH 1*
CONFIG SET set-max-intset-entries 3
SADD sl 1 2 3
SADD sl 4
SREM sl 4 3
CONFIG SET set-max-intset-entries 0
SADD s0 1
CONFIG SET set-max-intset-entries 512
CONFIG GET set-max-intset-entries
SADD x1 1 2 3
SADD x2 2 3 a
SADD x3 5 3 1
SINTER x1 x3
SUNION x1 x3
SDIFF x1 x2
SINTERSTORE d1 x1 x2
SMEMBERS d1
SUNIONSTORE d2 x1 x2
SDIFFSTORE d3 x2 x1
SDIFFSTORE d4 x1 x2
SUNIONSTORE d5 x1 x3
SMEMBERS d5
SMOVE x2 mv1 a
SMOVE x1 mv2 1
SMOVE x3 mv2 5
SMOVE x3 ss 3
SMEMBERS mv2
COPY si sicopy
COPY x1 x1copy
SPOP x1copy 100
SADD sp a
SPOP sp 1
ZADD z1 1 a 2 b
ZSCAN z1 0 COUNT 1
ZSCAN z1 3 MATCH b*
ZADD z1 3 @long65
ZREM z1 @long65
ZADD z2 1 @long65
ZUNIONSTORE z3 1 z1
ZUNIONSTORE z4 2 si ss
CONFIG SET zset-max-ziplist-entries 1
ZADD z5 1 a
ZADD z5 2 b
CONFIG SET zset-max-listpack-entries 128
COPY z5 z5copy
OBJECT ENCODING nokey
OBJECT REFCOUNT nokey
OBJECT FREQ s1
OBJECT HELP
OBJECT
OBJECT ENCODING
OBJECT ENCODING a b
OBJECT nosuch x
";

#[test]
fn object_encoding_follows_redis_through_every_conversion_path() {
    let Some(redis) = RealRedis::start(&["--appendonly", "no"]) else { return };
    let ours = Server::start(&[]);
    let mut theirs = redis.raw();
    let mut us = ours.raw();
    let mut both = |argv: &[String]| {
        let a: Vec<&[u8]> = argv.iter().map(|s| s.as_bytes()).collect();
        (theirs.cmd(&a), us.cmd(&a))
    };
    for line in SCRIPT.lines().filter(|l| !l.trim().is_empty()) {
        let argv = words(line);
        let (r, o) = both(&argv);
        assert_eq!(String::from_utf8_lossy(&o), String::from_utf8_lossy(&r), "reply to `{line}`");
        let (keys, _) = both(&["KEYS".into(), "*".into()]);
        let keys = String::from_utf8_lossy(&keys).into_owned();
        let mut names: Vec<&str> = keys.lines().filter(|l| !l.starts_with(['*', '$'])).collect();
        names.sort();
        for k in names {
            let (r, o) = both(&["OBJECT".into(), "ENCODING".into(), k.into()]);
            assert_eq!(String::from_utf8_lossy(&o), String::from_utf8_lossy(&r), "OBJECT ENCODING {k} after `{line}`");
        }
    }
}

/// Encodings across a restart, as redis-server 7.0.15 gives them (checked by hand with its AOF): a
/// replayed log rebuilds each value by the same commands, so a hash or set that left its small
/// form stays in its large one; after BGREWRITEAOF the values are rebuilt from their contents
/// (Redis loads its RDB preamble the same way), so they are small again where they fit, and an
/// APPEND-built string that is an integer's text becomes `int`.
#[test]
fn encodings_after_aof_replay_and_after_a_rewrite_are_redis_s() {
    let mut s = Server::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let long = "x".repeat(70);
    let mut c = s.raw();
    for cmd in [
        vec!["HSET", "h", "a", "1", "b", &long],
        vec!["HDEL", "h", "b"],
        vec!["SADD", "s", "1", "2", "a"],
        vec!["SREM", "s", "a"],
        vec!["RPUSH", "l", "a"],
        vec!["SET", "n", "5"],
        vec!["APPEND", "r", "12"],
        vec!["APPEND", "r", "3"],
        vec!["HSET", "h2", "a", "1"],
        vec!["HSET", "h2", "c", &long],
    ] {
        c.cmds(&cmd);
    }
    let encodings = |s: &Server| -> Vec<String> {
        let mut c = s.raw();
        ["h", "s", "l", "n", "r", "h2"]
            .iter()
            .map(|k| common::s(c.cmds(&["OBJECT", "ENCODING", k])).lines().nth(1).unwrap_or("").to_string())
            .collect()
    };
    let live = ["hashtable", "hashtable", "quicklist", "int", "raw", "hashtable"];
    assert_eq!(encodings(&s), live);
    s.stop();
    s.restart();
    assert_eq!(encodings(&s), live, "after replaying the log");
    let r = s.raw().cmds(&["BGREWRITEAOF"]);
    assert!(r.starts_with(b"+Background"), "{}", String::from_utf8_lossy(&r));
    s.wait_for_rewrite();
    s.stop();
    s.restart();
    assert_eq!(encodings(&s), ["listpack", "intset", "quicklist", "int", "int", "hashtable"], "after a rewrite");
}
