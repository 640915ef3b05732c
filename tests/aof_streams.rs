//! Streams and the AOF: many clients add to, read through groups from, acknowledge, claim and
//! trim the same few streams at once (blocking readers included); replaying the file after kill
//! -9, and after a rewrite, rebuilds exactly what memory held, consumer groups included.
#![cfg(not(feature = "loom"))]
mod common;

use common::{Server, dump_keyspace, temp_dir};
use redis::Value;

/// The IDs in an XREADGROUP reply.
fn ids_of(v: &Value) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Value::Array(streams) = v {
        for s in streams {
            if let Value::Array(kv) = s {
                if let Some(Value::Array(entries)) = kv.get(1) {
                    for e in entries {
                        if let Value::Array(pair) = e {
                            if let Some(Value::BulkString(id)) = pair.first() {
                                out.push(id.clone());
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

fn hammer(s: &Server, seed: u64) {
    let mut setup = s.client();
    for k in 0..2 {
        let _: redis::RedisResult<Value> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(format!("xs{k}"))
            .arg("g")
            .arg("0")
            .arg("MKSTREAM")
            .query(&mut setup);
    }
    let threads: Vec<_> = (0..6u64)
        .map(|t| {
            let mut c = s.client();
            std::thread::spawn(move || {
                let mut x = seed * 1000 + t + 1;
                let mut mine: Vec<Vec<u8>> = Vec::new();
                for i in 0..300u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = format!("xs{}", x % 2);
                    let consumer = format!("c{}", t % 3);
                    let cmd = match x % 12 {
                        0..=3 => redis::cmd("XADD").arg(&key).arg("*").arg("t").arg(t).arg("i").arg(i).clone(),
                        4 => {
                            redis::cmd("XADD").arg(&key).arg("MAXLEN").arg("~").arg(50).arg("*").arg("f").arg(i).clone()
                        }
                        5 | 6 => redis::cmd("XREADGROUP")
                            .arg("GROUP")
                            .arg("g")
                            .arg(&consumer)
                            .arg("COUNT")
                            .arg(3)
                            .arg("STREAMS")
                            .arg(&key)
                            .arg(">")
                            .clone(),
                        7 => redis::cmd("XREADGROUP")
                            .arg("GROUP")
                            .arg("g")
                            .arg(&consumer)
                            .arg("BLOCK")
                            .arg(20)
                            .arg("COUNT")
                            .arg(2)
                            .arg("STREAMS")
                            .arg(&key)
                            .arg(">")
                            .clone(),
                        8 => match mine.pop() {
                            Some(id) => redis::cmd("XACK").arg(&key).arg("g").arg(id).clone(),
                            None => redis::cmd("XLEN").arg(&key).clone(),
                        },
                        9 => redis::cmd("XAUTOCLAIM")
                            .arg(&key)
                            .arg("g")
                            .arg(&consumer)
                            .arg(0)
                            .arg("0")
                            .arg("COUNT")
                            .arg(2)
                            .clone(),
                        10 => redis::cmd("XREADGROUP")
                            .arg("GROUP")
                            .arg("g")
                            .arg(&consumer)
                            .arg("NOACK")
                            .arg("COUNT")
                            .arg(1)
                            .arg("STREAMS")
                            .arg(&key)
                            .arg(">")
                            .clone(),
                        _ => match mine.first() {
                            Some(id) if i % 2 == 0 => redis::cmd("XDEL").arg(&key).arg(id).clone(),
                            _ => redis::cmd("XTRIM").arg(&key).arg("MAXLEN").arg(80).clone(),
                        },
                    };
                    let r: redis::RedisResult<Value> = cmd.query(&mut c);
                    if let Ok(v) = r {
                        mine.extend(ids_of(&v));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn concurrent_stream_groups_replay_exactly_after_kill9_always() {
    let dir = temp_dir("streams-always");
    let mut s = Server::start_in(dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    for round in 0..3 {
        hammer(&s, round);
        let before = dump_keyspace(s.port);
        assert!(before.keys().any(|(_, k)| k == "xs0"), "the streams exist");
        s.kill9();
        s.restart();
        assert_eq!(before, dump_keyspace(s.port), "round {round}: replay differs from memory");
    }
}

#[test]
fn rewritten_streams_replay_exactly() {
    let dir = temp_dir("streams-rewrite");
    let mut s = Server::start_in(dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    hammer(&s, 11);
    let mut c = s.client();
    let _: () = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    hammer(&s, 12);
    let before = dump_keyspace(s.port);
    s.kill9();
    s.restart();
    assert_eq!(before, dump_keyspace(s.port));
}
