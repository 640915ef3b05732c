//! Bitmaps, HyperLogLogs and geo sets under the AOF's promise: many clients writing the same few
//! keys with SETBIT, BITFIELD, BITOP, PFADD, PFMERGE, PFCOUNT (which refreshes the cached
//! cardinality in the value), plain string writes, GEOADD and the geo searches that store; after
//! kill -9 and replay, every key holds exactly the bytes memory held, also after an AOF rewrite.
#![cfg(not(feature = "loom"))]
mod common;

use common::{Server, dump_keyspace, temp_dir};
use redis::Value;

fn hammer(s: &Server, seed: u64) {
    let threads: Vec<_> = (0..6u64)
        .map(|t| {
            let mut c = s.client();
            std::thread::spawn(move || {
                let mut x = seed * 1000 + t + 1;
                for i in 0..500u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = format!("bk{}", x % 3);
                    let other = format!("bk{}", (x >> 8) % 3);
                    let hll = format!("hk{}", x % 3);
                    let hll2 = format!("hk{}", (x >> 8) % 3);
                    let off = (x >> 16) % 300;
                    let geo = format!("gk{}", x % 2);
                    let lon = format!("{:.5}", 13.0 + (x % 1000) as f64 / 500.0);
                    let cmd = match x % 19 {
                        0..=2 => redis::cmd("SETBIT").arg(&key).arg(off).arg((x >> 30) & 1).clone(),
                        3 => redis::cmd("BITFIELD")
                            .arg(&key)
                            .arg("OVERFLOW")
                            .arg(["WRAP", "SAT", "FAIL"][(x % 3) as usize])
                            .arg("INCRBY")
                            .arg("u5")
                            .arg(off)
                            .arg(7)
                            .arg("SET")
                            .arg("i9")
                            .arg(format!("#{}", off % 20))
                            .arg(i as i64 - 250)
                            .clone(),
                        4 => redis::cmd("BITOP")
                            .arg(["AND", "OR", "XOR"][(x % 3) as usize])
                            .arg(&other)
                            .arg(&key)
                            .arg(&other)
                            .clone(),
                        5 => redis::cmd("APPEND").arg(&key).arg("ab").clone(),
                        6 => redis::cmd("INCR").arg(&key).clone(),
                        7 => redis::cmd("DEL").arg(&key).clone(),
                        8..=10 => {
                            redis::cmd("PFADD").arg(&hll).arg(format!("e{}", x % 5000)).arg(format!("t{t}-{i}")).clone()
                        }
                        11 => redis::cmd("PFCOUNT").arg(&hll).clone(),
                        12 => redis::cmd("PFMERGE").arg(&hll2).arg(&hll).clone(),
                        13 => redis::cmd("PFCOUNT").arg(&hll).arg(&hll2).clone(),
                        14 => redis::cmd("EXPIRE").arg(&hll).arg(1000).clone(),
                        16 => redis::cmd("GEOADD").arg(&geo).arg(&lon).arg("38.1").arg(format!("p{}", x % 50)).clone(),
                        17 => redis::cmd("GEOSEARCHSTORE")
                            .arg(format!("gk{}", (x >> 8) % 2))
                            .arg(&geo)
                            .arg("FROMLONLAT")
                            .arg("14")
                            .arg("38")
                            .arg("BYRADIUS")
                            .arg(x % 150)
                            .arg("km")
                            .arg("STOREDIST")
                            .clone(),
                        18 => redis::cmd("GEORADIUS")
                            .arg(&geo)
                            .arg("14")
                            .arg("38")
                            .arg(x % 200)
                            .arg("km")
                            .arg("COUNT")
                            .arg(3)
                            .arg("STORE")
                            .arg(format!("gk{}", (x >> 8) % 2))
                            .clone(),
                        _ => redis::cmd("SETRANGE").arg(&key).arg(off / 8).arg("zz").clone(),
                    };
                    let _: redis::RedisResult<Value> = cmd.query(&mut c);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn bitmaps_hlls_and_geo_sets_on_hot_keys_replay_exactly_after_kill9() {
    let dir = temp_dir("bits-hll");
    let mut s = Server::start_in(dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    for round in 0..4 {
        hammer(&s, round);
        if round % 2 == 1 {
            // The rewritten file (every value as one command) replays to memory too.
            let mut c = s.raw();
            assert!(c.cmds(&["BGREWRITEAOF"]).starts_with(b"+"));
            for _ in 0..200 {
                let info = String::from_utf8_lossy(&c.cmds(&["INFO", "persistence"])).to_string();
                if info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrite_scheduled:0") {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            hammer(&s, round + 100);
        }
        let before = dump_keyspace(s.port);
        s.kill9();
        s.restart();
        let after = dump_keyspace(s.port);
        assert_eq!(before, after, "round {round}: keyspace after kill -9 and replay differs from memory");
    }
}
