//! The AOF's central promise: for every key, replaying the file rebuilds exactly what memory held,
//! even when many clients write the same few keys at once with different commands.
#![cfg(not(feature = "loom"))]
mod common;

use common::{Server, dump_keyspace, temp_dir};
use redis::Value;

fn hammer(s: &Server, seed: u64) {
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let mut c = s.client();
            std::thread::spawn(move || {
                let mut x = seed * 1000 + t + 1;
                for i in 0..600u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = format!("hot{}", x % 3);
                    let other = format!("hot{}", (x >> 8) % 3);
                    let field = format!("f{}", i % 4);
                    // Collections on the same hot keys: type changes race the collection protocol.
                    let mut cmd = match x % 25 {
                        13 => redis::cmd("HSET").arg(&key).arg(&field).arg(i).clone(),
                        14 => redis::cmd("HINCRBY").arg(&key).arg(&field).arg(2).clone(),
                        15 => redis::cmd("HDEL").arg(&key).arg(&field).clone(),
                        16 => redis::cmd("SADD").arg(&key).arg(&field).arg(format!("t{t}")).clone(),
                        17 => redis::cmd("SREM").arg(&key).arg(&field).clone(),
                        18 => redis::cmd("SMOVE").arg(&key).arg(&other).arg(&field).clone(),
                        19 => redis::cmd("SPOP").arg(&key).clone(),
                        20 => redis::cmd("SUNIONSTORE").arg(&other).arg(&key).arg(&other).clone(),
                        21 => redis::cmd("ZADD").arg(&key).arg(i % 7).arg(&field).clone(),
                        22 => redis::cmd("ZINCRBY").arg(&key).arg("1.5").arg(&field).clone(),
                        23 => redis::cmd("ZPOPMIN").arg(&key).clone(),
                        24 => redis::cmd("ZUNIONSTORE").arg(&other).arg(2).arg(&key).arg(&other).clone(),
                        0 => redis::cmd("SET").arg(&key).arg(i).clone(),
                        1 | 2 => redis::cmd("INCR").arg(&key).clone(),
                        3 => redis::cmd("DECRBY").arg(&key).arg(3).clone(),
                        4 => redis::cmd("DEL").arg(&key).clone(),
                        5 | 6 => redis::cmd("LPUSH").arg(&key).arg(format!("t{t}-{i}")).clone(),
                        7 => redis::cmd("RPUSH").arg(&key).arg(format!("t{t}-{i}")).clone(),
                        8 => redis::cmd("RPOP").arg(&key).clone(),
                        9 => redis::cmd("EXPIRE").arg(&key).arg(1000).clone(),
                        10 => redis::cmd("RENAME").arg(&key).arg(&other).clone(),
                        11 => redis::cmd("APPEND").arg(&key).arg("x").clone(),
                        _ if i % 97 == 0 => redis::cmd("FLUSHALL").clone(),
                        _ => redis::cmd("INCRBY").arg(&key).arg(7).clone(),
                    };
                    let _: redis::RedisResult<Value> = cmd.query(&mut c);
                    let _ = &mut cmd;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn rounds(fsync: &str, n: u64) {
    let dir = temp_dir(&format!("hot-{fsync}"));
    let mut s = Server::start_in(dir, &["--appendonly", "yes", "--appendfsync", fsync]);
    for round in 0..n {
        hammer(&s, round);
        let before = dump_keyspace(s.port);
        s.kill9();
        s.restart();
        let after = dump_keyspace(s.port);
        assert_eq!(before, after, "round {round}: keyspace after kill -9 and replay differs from memory");
    }
}

#[test]
fn mixed_commands_on_hot_keys_replay_exactly_after_kill9_always() {
    rounds("always", 10);
}

#[test]
fn mixed_commands_on_hot_keys_replay_exactly_after_kill9_everysec_quiesced() {
    // everysec: once writes stop and a second passes, everything is on disk.
    let dir = temp_dir("hot-everysec");
    let mut s = Server::start_in(dir, &["--appendonly", "yes", "--appendfsync", "everysec"]);
    hammer(&s, 7);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let before = dump_keyspace(s.port);
    s.kill9();
    s.restart();
    assert_eq!(before, dump_keyspace(s.port));
}
