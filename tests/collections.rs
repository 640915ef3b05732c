//! Hashes, sets and sorted sets over a socket: AOF rewrite of large collections (batches of at most 64 items
//! per command, as Redis's rewrite), and concurrent writers of shared collection keys whose log
//! replays to what memory held.
#![cfg(not(feature = "loom"))]

mod common;

use common::{Server, aof_commands, dump_keyspace};

const AOF_ALWAYS: [&str; 4] = ["--appendonly", "yes", "--appendfsync", "always"];

#[test]
fn rewrite_emits_hashes_sets_and_zsets_in_batches_of_64_and_reloads_them() {
    // A base of commands (Redis's `aof-use-rdb-preamble no`), to read its batches.
    let mut s = Server::start(&[&AOF_ALWAYS[..], &["--aof-use-rdb-preamble", "no"]].concat());
    let mut c = s.raw();
    let mut hset = vec!["HSET".to_string(), "big_hash".into()];
    for i in 0..150 {
        hset.extend([format!("field{i}"), format!("value{i}")]);
    }
    let mut sadd = vec!["SADD".to_string(), "big_set".into()];
    sadd.extend((0..150).map(|i| format!("member{i}")));
    let mut zadd = vec!["ZADD".to_string(), "big_zset".into()];
    for i in 0..150 {
        zadd.extend([format!("{}", f64::from(i) / 7.0 - 3.0), format!("member{i}")]);
    }
    for cmd in [hset, sadd, zadd] {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert_eq!(c.cmds(&args), b":150\r\n");
    }
    c.cmds(&["HSET", "small_hash", "f", "v"]);
    c.cmds(&["PEXPIRE", "small_hash", "9000000"]);
    c.cmds(&["SADD", "small_set", "1", "2"]);
    c.cmds(&["ZADD", "small_zset", "-inf", "a", "0.1", "b", "inf", "c"]);
    assert!(c.cmds(&["BGREWRITEAOF"]).starts_with(b"+Background"));
    s.wait_for_rewrite();
    c.cmds(&["HDEL", "big_hash", "field0"]);
    c.cmds(&["SREM", "big_set", "member0"]);
    c.cmds(&["ZREM", "big_zset", "member0"]);
    let before = dump_keyspace(s.port);
    s.stop();

    let log = aof_commands(&std::fs::read(s.dir.join("appendonly.aof")).unwrap());
    let mut items = std::collections::HashMap::<(Vec<u8>, Vec<u8>), usize>::new();
    for argv in &log {
        let per_item = match &argv[0][..] {
            b"HSET" => 2,
            b"SADD" => 1,
            b"ZADD" => 2,
            _ => continue,
        };
        let n = (argv.len() - 2) / per_item;
        assert!(n <= 64, "a rewritten command holds {n} items");
        *items.entry((argv[0].clone(), argv[1].clone())).or_default() += n;
    }
    assert_eq!(items[&(b"HSET".to_vec(), b"big_hash".to_vec())], 150);
    assert_eq!(items[&(b"SADD".to_vec(), b"big_set".to_vec())], 150);
    assert_eq!(items[&(b"ZADD".to_vec(), b"big_zset".to_vec())], 150);
    assert!(log.iter().any(|a| a[0] == b"PEXPIREAT" && a[1] == b"small_hash"));

    s.restart();
    assert_eq!(dump_keyspace(s.port), before);
}

#[test]
fn concurrent_writers_of_shared_hashes_sets_and_zsets_replay_to_memory_after_kill9() {
    let mut s = Server::start(&AOF_ALWAYS);
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let mut c = s.raw();
            std::thread::spawn(move || {
                for i in 0..300 {
                    let m = format!("m{}", i % 7);
                    let f = format!("f{}", i % 5);
                    c.cmds(&["SADD", "set", &m, &format!("t{t}")]);
                    c.cmds(&["HINCRBY", "hash", &f, "1"]);
                    c.cmds(&["HINCRBYFLOAT", "hash", "float", "0.5"]);
                    c.cmds(&["ZINCRBY", "zset", "0.1", &m]);
                    c.cmds(&["ZADD", "zset", "GT", "CH", &format!("{}", i % 13), &f]);
                    if i % 3 == t % 3 {
                        c.cmds(&["SREM", "set", &m, "t0", "t1", "t2", "t3"]);
                        c.cmds(&["HDEL", "hash", &f]);
                    }
                    if i % 11 == 0 {
                        c.cmds(&["SPOP", "set", "2"]);
                        c.cmds(&["SMOVE", "set", "other", &m]);
                        c.cmds(&["SUNIONSTORE", "union", "set", "other"]);
                        c.cmds(&["ZPOPMIN", "zset", "2"]);
                        c.cmds(&["ZUNIONSTORE", "zunion", "3", "zset", "set", "zunion", "AGGREGATE", "MAX"]);
                        c.cmds(&["ZMPOP", "2", "zunion", "zset", "MAX"]);
                    }
                }
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());
    let before = dump_keyspace(s.port);
    s.kill9();
    s.restart();
    assert_eq!(dump_keyspace(s.port), before);
}
