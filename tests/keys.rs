//! Keyspace and expiry commands against the real server: databases, SCAN, lazy and active expiry.
#![cfg(not(feature = "loom"))]
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::Server;

fn query<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[test]
fn replies_are_byte_exact() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    assert_eq!(c.cmds(&["SET", "a", "1"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["TYPE", "a"]), b"+string\r\n");
    assert_eq!(c.cmds(&["TYPE", "nokey"]), b"+none\r\n");
    assert_eq!(c.cmds(&["EXISTS", "a", "a", "nokey"]), b":2\r\n");
    assert_eq!(c.cmds(&["RENAME", "nokey", "b"]), b"-ERR no such key\r\n");
    assert_eq!(c.cmds(&["RANDOMKEY"]), b"$1\r\na\r\n");
    assert_eq!(c.cmds(&["MOVE", "a", "0"]), b"-ERR source and destination objects are the same\r\n");
    assert_eq!(c.cmds(&["SWAPDB", "x", "1"]), b"-ERR invalid first DB index\r\n");
    assert_eq!(
        c.cmds(&["EXPIRE", "a", "10", "NX", "XX"]),
        b"-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
    );
    assert_eq!(c.cmds(&["EXPIRE", "a", "10", "bad"]), b"-ERR Unsupported option bad\r\n");
    assert_eq!(c.cmds(&["SCAN", "nope"]), b"-ERR invalid cursor\r\n");
    assert_eq!(c.cmds(&["SCAN", "0", "COUNT", "100"]), b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\na\r\n");
    assert_eq!(c.cmds(&["TTL", "a"]), b":-1\r\n");
    assert_eq!(c.cmds(&["DEL", "a", "a"]), b":1\r\n");
    assert_eq!(c.cmds(&["RANDOMKEY"]), b"$-1\r\n");
    assert_eq!(c.cmds(&["FLUSHALL", "SYNC"]), b"+OK\r\n");
}

#[test]
fn sixteen_databases_with_select_move_and_swapdb() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for db in 0..16 {
        let _: () = query(&mut c, &["SELECT", &db.to_string()]);
        let _: () = query(&mut c, &["SET", "which", &db.to_string()]);
        let _: () = query(&mut c, &["SET", &format!("only-in-{db}"), "x"]);
    }
    let e: redis::RedisResult<()> = redis::cmd("SELECT").arg(16).query(&mut c);
    assert!(e.unwrap_err().to_string().contains("DB index is out of range"));

    // MOVE from 15 to 3: refused while 3 holds the key, done once it does not.
    assert_eq!(query::<i64>(&mut c, &["MOVE", "which", "3"]), 0);
    assert_eq!(query::<i64>(&mut c, &["MOVE", "only-in-15", "3"]), 1);
    assert_eq!(query::<i64>(&mut c, &["EXISTS", "only-in-15"]), 0);

    // A second client sitting in db 3 sees the moved key, then db 9's data after SWAPDB.
    let mut other = s.client();
    let _: () = query(&mut other, &["SELECT", "3"]);
    assert_eq!(query::<i64>(&mut other, &["EXISTS", "only-in-15", "only-in-3"]), 2);
    let _: () = query(&mut c, &["SWAPDB", "3", "9"]);
    assert_eq!(query::<String>(&mut other, &["GET", "which"]), "9");
    assert_eq!(query::<i64>(&mut other, &["DBSIZE"]), 2);
    let _: () = query(&mut other, &["SELECT", "9"]);
    assert_eq!(query::<i64>(&mut other, &["EXISTS", "only-in-15", "only-in-3"]), 2);

    // COPY into another db keeps the source.
    let _: () = query(&mut c, &["SELECT", "0"]);
    assert_eq!(query::<i64>(&mut c, &["COPY", "only-in-0", "copied", "DB", "12"]), 1);
    let _: () = query(&mut c, &["SELECT", "12"]);
    assert_eq!(query::<String>(&mut c, &["GET", "copied"]), "x");

    // FLUSHDB empties one db, FLUSHALL every db.
    let _: () = query(&mut c, &["FLUSHDB"]);
    assert_eq!(query::<i64>(&mut c, &["DBSIZE"]), 0);
    assert_eq!(query::<i64>(&mut other, &["DBSIZE"]), 3);
    let _: () = query(&mut c, &["FLUSHALL"]);
    for db in 0..16 {
        let _: () = query(&mut c, &["SELECT", &db.to_string()]);
        assert_eq!(query::<i64>(&mut c, &["DBSIZE"]), 0, "db {db}");
    }
}

#[test]
fn scan_returns_every_key_exactly_once_while_another_client_adds_keys() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for chunk in 0..10 {
        let mut p = redis::pipe();
        for i in 0..100 {
            p.cmd("SET").arg(format!("stable:{}", chunk * 100 + i)).arg("v").ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writer = s.client();
    let flag = stop.clone();
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = progress.clone();
    let adder = std::thread::spawn(move || {
        let mut n = 0u64;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let _: () = redis::cmd("SET").arg(format!("added:{n}")).arg("v").query(&mut writer).unwrap();
            n += 1;
            count.store(n, std::sync::atomic::Ordering::Relaxed);
        }
        n
    });
    // The scan must run while keys are being added (a loaded machine may start the adder late).
    while progress.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, keys): (String, Vec<String>) =
            redis::cmd("SCAN").arg(&cursor).arg("COUNT").arg(25).query(&mut c).unwrap();
        for k in keys {
            *seen.entry(k).or_default() += 1;
        }
        if next == "0" {
            break;
        }
        cursor = next;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let added = adder.join().unwrap();
    assert!(added > 0);
    for i in 0..1000 {
        assert_eq!(seen.get(&format!("stable:{i}")), Some(&1), "stable:{i}");
    }
    assert!(seen.values().all(|&n| n == 1), "a key was returned twice");
    let (_, matched): (String, Vec<String>) =
        redis::cmd("SCAN").arg(0).arg("MATCH").arg("stable:99?").arg("COUNT").arg(100_000).query(&mut c).unwrap();
    assert_eq!(matched.len(), 10);
}

#[test]
fn expired_keys_vanish_lazily_on_access() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = query(&mut c, &["SET", "k", "v", "PX", "100"]);
    assert_eq!(query::<i64>(&mut c, &["PEXPIRE", "k", "50", "GT"]), 0);
    assert!(query::<i64>(&mut c, &["PTTL", "k"]) > 0);
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(query::<Option<String>>(&mut c, &["GET", "k"]), None);
    assert_eq!(query::<i64>(&mut c, &["TTL", "k"]), -2);
    assert_eq!(query::<i64>(&mut c, &["EXISTS", "k"]), 0);
    // EXPIRE with a past time deletes at once.
    let _: () = query(&mut c, &["SET", "p", "v"]);
    assert_eq!(query::<i64>(&mut c, &["EXPIREAT", "p", "1"]), 1);
    assert_eq!(query::<i64>(&mut c, &["EXISTS", "p"]), 0);
    // A write to an expired key treats it as missing.
    assert_eq!(query::<i64>(&mut c, &["EXPIRE", "k", "100"]), 0);
}

#[test]
fn active_expiry_reclaims_keys_nobody_touches() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut p = redis::pipe();
    for i in 0..500 {
        p.cmd("SET").arg(format!("t:{i}")).arg("v").arg("EX").arg(1).ignore();
    }
    p.cmd("SET").arg("keep").arg("v").ignore();
    let _: () = p.query(&mut c).unwrap();
    assert_eq!(query::<i64>(&mut c, &["DBSIZE"]), 501);
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let n: i64 = query(&mut c, &["DBSIZE"]);
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "DBSIZE still {n}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(query::<Vec<String>>(&mut c, &["KEYS", "*"]), vec!["keep".to_string()]);
}

#[test]
fn rename_keeps_the_ttl_and_persist_removes_it() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = query(&mut c, &["SET", "a", "v", "EX", "100"]);
    let _: () = query(&mut c, &["RENAME", "a", "b"]);
    let ttl: i64 = query(&mut c, &["TTL", "b"]);
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_eq!(query::<i64>(&mut c, &["PERSIST", "b"]), 1);
    assert_eq!(query::<i64>(&mut c, &["TTL", "b"]), -1);
    assert_eq!(query::<i64>(&mut c, &["RENAMENX", "b", "b"]), 0);
}
