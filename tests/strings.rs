//! String and integer commands against the real server.
#![cfg(not(feature = "loom"))]
mod common;

use std::io::Write;

use common::{Server, send};

#[test]
fn set_get_incr_over_raw_resp_match_redis_bytes() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    assert_eq!(c.cmds(&["SET", "a", "10"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["INCR", "a"]), b":11\r\n");
    assert_eq!(c.cmds(&["GET", "a"]), b"$2\r\n11\r\n");
    assert_eq!(c.cmds(&["GET", "missing"]), b"$-1\r\n");
    assert_eq!(c.cmds(&["SET", "a", "x", "EX", "0"]), b"-ERR invalid expire time in 'set' command\r\n");
    assert_eq!(c.cmds(&["SET", "a", "x", "NX", "XX"]), b"-ERR syntax error\r\n");
    assert_eq!(c.cmds(&["DECRBY", "a", "-9223372036854775808"]), b"-ERR decrement would overflow\r\n");
    assert_eq!(c.cmds(&["SET", "big", "9223372036854775807"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["INCR", "big"]), b"-ERR increment or decrement would overflow\r\n");
    assert_eq!(c.cmds(&["SET", "s", "010"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["INCR", "s"]), b"-ERR value is not an integer or out of range\r\n");
    assert_eq!(c.cmds(&["GET"]), b"-ERR wrong number of arguments for 'get' command\r\n");
}

#[test]
fn concurrent_incr_from_many_clients_loses_no_increment() {
    let s = Server::start(&[]);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let mut c = s.client();
            std::thread::spawn(move || {
                for _ in 0..500 {
                    let _: i64 = redis::cmd("INCR").arg("ctr").query(&mut c).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut c = s.client();
    let v: i64 = redis::cmd("GET").arg("ctr").query(&mut c).unwrap();
    assert_eq!(v, 4000);
}

#[test]
fn set_with_options_and_getex_follow_redis() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let r: Option<String> = redis::cmd("SET").arg("k").arg("v1").arg("GET").query(&mut c).unwrap();
    assert_eq!(r, None);
    let r: Option<String> = redis::cmd("SET").arg("k").arg("v2").arg("NX").arg("GET").query(&mut c).unwrap();
    assert_eq!(r.as_deref(), Some("v1"));
    let _: () = redis::cmd("SET").arg("k").arg("v3").arg("XX").arg("PX").arg(100_000).query(&mut c).unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg("k").query(&mut c).unwrap_or(-3);
    assert!(ttl > 90_000 || ttl == -3, "{ttl}");
    let v: String = redis::cmd("GETEX").arg("k").arg("PERSIST").query(&mut c).unwrap();
    assert_eq!(v, "v3");
    let n: i64 = redis::cmd("MSETNX").arg("k").arg("x").arg("new").arg("y").query(&mut c).unwrap();
    assert_eq!(n, 0);
    let vals: Vec<Option<String>> = redis::cmd("MGET").arg("k").arg("new").query(&mut c).unwrap();
    assert_eq!(vals, vec![Some("v3".into()), None]);
    let f: String = redis::cmd("INCRBYFLOAT").arg("f").arg("10.5").query(&mut c).unwrap();
    assert_eq!(f, "10.5");
    let f: String = redis::cmd("INCRBYFLOAT").arg("f").arg("0.1").query(&mut c).unwrap();
    assert_eq!(f, "10.6");
}

#[test]
fn incrbyfloat_to_zero_replies_stores_and_logs_0_never_minus_0() {
    // What redis-server 7.0.15 replies and writes to its AOF for each of these.
    let mut s = Server::start(&["--appendonly", "yes"]);
    let mut c = s.raw();
    assert_eq!(c.cmds(&["SET", "k", "-0.0"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["INCRBYFLOAT", "k", "0"]), b"$1\r\n0\r\n");
    assert_eq!(c.cmds(&["INCRBYFLOAT", "k2", "-0"]), b"$1\r\n0\r\n");
    assert_eq!(c.cmds(&["INCRBYFLOAT", "k3", "-0.000000000000000001"]), b"$1\r\n0\r\n");
    assert_eq!(c.cmds(&["GET", "k3"]), b"$1\r\n0\r\n");
    drop(c);
    assert_eq!(s.stop(), Some(0), "{}", s.log());
    let aof = std::fs::read(s.dir.join("appendonly.aof")).unwrap();
    let record = |key: &str| format!("*4\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\n0\r\n$7\r\nKEEPTTL\r\n", key.len());
    for key in ["k", "k2", "k3"] {
        assert!(aof.windows(record(key).len()).any(|w| w == record(key).as_bytes()), "{key}");
    }
    assert!(!aof.windows(4).any(|w| w == b"\n-0\r"), "no -0 logged as a result");
}

/// A top-level GET writes a found value straight into the connection's output (no reply frame);
/// everywhere else it must build its reply as before. Each case below puts the value somewhere a
/// write in place would misplace: inside EXEC's array, under CLIENT REPLY SKIP/OFF, from a script,
/// among pipelined commands, RESP3, integers and large values.
#[test]
fn get_replies_written_in_place_land_where_redis_puts_them() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    let big = "v".repeat(100_000);
    assert_eq!(c.cmds(&["MSET", "a", "x", "n", "123", "big", &big]), b"+OK\r\n");
    assert_eq!(c.cmds(&["RPUSH", "l", "e"]), b":1\r\n");
    // Pipelined: one write of the whole batch, replies in order.
    let mut batch = Vec::new();
    for args in [
        &["GET", "a"][..],
        &["INCR", "n"],
        &["GET", "n"],
        &["GET", "nope"],
        &["GET", "l"],
        &["GET", "a", "b"],
        &["GET", "big"],
    ] {
        batch.extend_from_slice(&common::enc(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>()));
    }
    c.send(&batch);
    assert_eq!(c.reply(), b"$1\r\nx\r\n");
    assert_eq!(c.reply(), b":124\r\n");
    assert_eq!(c.reply(), b"$3\r\n124\r\n");
    assert_eq!(c.reply(), b"$-1\r\n");
    assert_eq!(c.reply(), b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n".to_vec());
    assert_eq!(c.reply(), b"-ERR wrong number of arguments for 'get' command\r\n".to_vec());
    assert_eq!(c.reply(), format!("${}\r\n{big}\r\n", big.len()).into_bytes());
    // Inside a transaction: queued, then the values inside EXEC's array.
    assert_eq!(c.cmds(&["MULTI"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["GET", "a"]), b"+QUEUED\r\n");
    assert_eq!(c.cmds(&["GET", "nope"]), b"+QUEUED\r\n");
    assert_eq!(c.cmds(&["GET", "n"]), b"+QUEUED\r\n");
    assert_eq!(c.cmds(&["EXEC"]), b"*3\r\n$1\r\nx\r\n$-1\r\n$3\r\n124\r\n");
    // From a script: the value is the script's, not the connection's.
    assert_eq!(
        c.cmds(&["EVAL", "return {redis.call('GET', KEYS[1]), 'after'}", "1", "a"]),
        b"*2\r\n$1\r\nx\r\n$5\r\nafter\r\n"
    );
    // CLIENT REPLY SKIP: the next command's reply (a GET's) is not sent; OFF: none until ON.
    send(&mut c, &["CLIENT", "REPLY", "SKIP"]);
    send(&mut c, &["GET", "a"]);
    assert_eq!(c.cmds(&["GET", "n"]), b"$3\r\n124\r\n");
    send(&mut c, &["CLIENT", "REPLY", "OFF"]);
    send(&mut c, &["GET", "a"]);
    send(&mut c, &["GET", "big"]);
    assert_eq!(c.cmds(&["CLIENT", "REPLY", "ON"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["GET", "a"]), b"$1\r\nx\r\n");
    // RESP3: the same bulk string; a miss is RESP3's null.
    let mut c3 = common::connect(s.port);
    let mut hello = common::enc(&[b"HELLO", b"3"]);
    hello.extend_from_slice(&common::enc(&[b"GET", b"a"]));
    hello.extend_from_slice(&common::enc(&[b"GET", b"nope"]));
    c3.write_all(&hello).unwrap();
    let got = common::read_until(&mut c3, b"$1\r\nx\r\n_\r\n");
    assert!(got.starts_with(b"%7\r\n"), "{}", String::from_utf8_lossy(&got));
    // The hits and misses are counted as Redis does (a key of another type is a hit).
    let info = String::from_utf8(c.cmds(&["INFO", "stats"])).unwrap();
    assert!(info.contains("keyspace_hits:13\r\n") && info.contains("keyspace_misses:3\r\n"), "{info}");
}
