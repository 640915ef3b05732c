//! Streams and the AOF: many clients add to, read through groups from, acknowledge, claim and
//! trim the same few streams at once (blocking readers included); replaying the file after kill
//! -9, and after a rewrite, rebuilds exactly what memory held, consumer groups included.
#![cfg(not(feature = "loom"))]
mod common;

use common::{Server, aof_commands, dump_keyspace, temp_dir};
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

/// Group `g` on streams `xs0` and `xs1` (created empty when missing; an existing group is left).
fn create_groups(c: &mut redis::Connection) {
    for k in 0..2 {
        let _: redis::RedisResult<Value> =
            redis::cmd("XGROUP").arg("CREATE").arg(format!("xs{k}")).arg("g").arg("0").arg("MKSTREAM").query(c);
    }
}

fn hammer(s: &Server, seed: u64) {
    let mut setup = s.client();
    create_groups(&mut setup);
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

/// The names of the commands between each MULTI and its EXEC, block by block.
fn blocks(log: &[Vec<Vec<u8>>]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut open: Option<Vec<String>> = None;
    for argv in log {
        let name = String::from_utf8_lossy(&argv[0]).to_uppercase();
        match (name.as_str(), &mut open) {
            ("MULTI", None) => open = Some(Vec::new()),
            ("EXEC", Some(_)) => out.push(open.take().unwrap()),
            (_, Some(b)) => b.push(format!("{name} {}", String::from_utf8_lossy(&argv[1]).to_uppercase())),
            _ => {}
        }
    }
    assert!(open.is_none(), "an unterminated MULTI block");
    out
}

/// XREADGROUP, XCLAIM and XAUTOCLAIM that touch several entries log them as Redis propagates them,
/// one XCLAIM per entry (plus XGROUP SETID), inside ONE MULTI/EXEC block; a file cut inside such a
/// block (a crash mid-write) replays to the state before that command, never to half of it.
#[test]
fn multi_entry_group_commands_are_one_block_and_a_torn_block_is_dropped() {
    let dir = temp_dir("streams-blocks");
    let mut s = Server::start_in(dir.clone(), &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = s.raw();
    c.cmds(&["XGROUP", "CREATE", "s", "g", "0", "MKSTREAM"]);
    for i in 1..=4 {
        c.cmds(&["XADD", "s", &format!("1-{i}"), "f", &i.to_string()]);
    }
    assert!(c.cmds(&["XREADGROUP", "GROUP", "g", "c1", "COUNT", "3", "STREAMS", "s", ">"]).starts_with(b"*1\r\n"));
    assert!(c.cmds(&["XCLAIM", "s", "g", "c2", "0", "1-1", "1-2", "JUSTID"]).starts_with(b"*2\r\n"));
    let before_autoclaim = dump_keyspace(s.port);
    assert!(c.cmds(&["XAUTOCLAIM", "s", "g", "c3", "0", "0", "COUNT", "3", "JUSTID"]).starts_with(b"*3\r\n"));
    let after = dump_keyspace(s.port);
    s.stop();

    let file = dir.join("appendonly.aof");
    let bytes = std::fs::read(&file).unwrap();
    let log = aof_commands(&bytes);
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (xclaim, setid) = ("XCLAIM S", "XGROUP SETID");
    assert_eq!(
        blocks(&log),
        vec![names(&[xclaim, xclaim, xclaim, setid]), names(&[xclaim, xclaim]), names(&[xclaim, xclaim, xclaim]),],
        "log: {:?}",
        log.iter().map(|a| String::from_utf8_lossy(&a[0]).to_string()).collect::<Vec<_>>()
    );

    // The whole file replays to memory.
    s.restart();
    assert_eq!(dump_keyspace(s.port), after);
    s.stop();

    // Cut inside the last block (XAUTOCLAIM's: MULTI and its first XCLAIM made it, not the rest):
    // replay drops the block.
    let last_multi =
        bytes.windows(b"*1\r\n$5\r\nMULTI\r\n".len()).rposition(|w| w == b"*1\r\n$5\r\nMULTI\r\n").unwrap();
    let first_claim = last_multi + bytes[last_multi..].windows(6).position(|w| w == b"XCLAIM").unwrap();
    let next = b"\r\n*14\r\n";
    let cut = first_claim + bytes[first_claim..].windows(next.len()).position(|w| w == next).unwrap() + 2;
    std::fs::write(&file, &bytes[..cut]).unwrap();
    s.restart();
    assert_eq!(dump_keyspace(s.port), before_autoclaim, "half of XAUTOCLAIM was replayed");
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Streams and in-place strings at once: clients add to, read through a group from and
/// acknowledge entries of two streams while others SETBIT, BITFIELD, APPEND and PFADD two bitmaps
/// (one of 64 KB, changed in place) and two HLLs, all on the same few keys; after kill -9 the
/// replayed keyspace equals what memory held, round after round.
#[test]
fn streams_bitmaps_and_hlls_written_together_replay_exactly_after_kill9() {
    let dir = temp_dir("streams-bits");
    let mut s = Server::start_in(dir.clone(), &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut setup = s.client();
    create_groups(&mut setup);
    let _: Value = redis::cmd("SETBIT").arg("bm0").arg(64 * 1024 * 8 - 1).arg(1).query(&mut setup).unwrap();
    for round in 0..3u64 {
        let threads: Vec<_> = (0..6u64)
            .map(|t| {
                let mut c = s.client();
                std::thread::spawn(move || {
                    let mut x = round * 1000 + t + 1;
                    let mut mine: Vec<(String, Vec<u8>)> = Vec::new();
                    for i in 0..300u64 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let xs = format!("xs{}", x % 2);
                        let bm = format!("bm{}", (x >> 4) % 2);
                        let hl = format!("hl{}", (x >> 5) % 2);
                        let cmd = match x % 10 {
                            0 | 1 => redis::cmd("XADD").arg(&xs).arg("*").arg("t").arg(t).arg("i").arg(i).clone(),
                            2 => redis::cmd("XREADGROUP")
                                .arg("GROUP")
                                .arg("g")
                                .arg(format!("c{}", t % 3))
                                .arg("COUNT")
                                .arg(3)
                                .arg("STREAMS")
                                .arg(&xs)
                                .arg(">")
                                .clone(),
                            3 => match mine.pop() {
                                Some((k, id)) => redis::cmd("XACK").arg(k).arg("g").arg(id).clone(),
                                None => redis::cmd("XLEN").arg(&xs).clone(),
                            },
                            4 | 5 => {
                                redis::cmd("SETBIT").arg(&bm).arg((x >> 8) % (64 * 1024 * 8)).arg((x >> 40) & 1).clone()
                            }
                            6 => redis::cmd("BITFIELD")
                                .arg(&bm)
                                .arg("INCRBY")
                                .arg("u7")
                                .arg((x >> 8) % 5000)
                                .arg(3)
                                .arg("GET")
                                .arg("i9")
                                .arg(77)
                                .clone(),
                            7 => redis::cmd("APPEND").arg(&bm).arg("xy").clone(),
                            _ => redis::cmd("PFADD").arg(&hl).arg(format!("e{}", x % 20000)).arg(i).clone(),
                        };
                        let r: redis::RedisResult<Value> = cmd.query(&mut c);
                        if let (Ok(v), 2) = (&r, x % 10) {
                            mine.extend(ids_of(v).into_iter().map(|id| (xs.clone(), id)));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let before = dump_keyspace(s.port);
        assert!(before.keys().any(|(_, k)| k == "bm0") && before.keys().any(|(_, k)| k == "xs1"));
        s.kill9();
        s.restart();
        assert_eq!(before, dump_keyspace(s.port), "round {round}: replay differs from memory");
    }
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
