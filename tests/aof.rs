//! The append-only file through the real server: restart equality for every command family, a torn
//! tail, a corrupted middle, rewrite under load, write errors, expiry across restarts.
#![cfg(not(feature = "loom"))]
mod common;

use std::process::Command;

use common::{RealRedis, Server, dump_keyspace};

fn aof_on(fsync: &'static str) -> [&'static str; 4] {
    ["--appendonly", "yes", "--appendfsync", fsync]
}

/// A script touching every command family, in several databases.
fn write_everything(s: &Server) {
    write_script(&mut s.raw());
}

fn write_script(c: &mut common::Raw) {
    let script: &[&[&str]] = &[
        &["SET", "s", "hello"],
        &["SET", "ttl", "v", "EX", "1000"],
        &["SETEX", "ttl2", "1000", "v"],
        &["APPEND", "s", " world"],
        &["SETRANGE", "s", "0", "J"],
        &["INCR", "n"],
        &["INCRBY", "n", "41"],
        &["DECR", "n"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["MSET", "m1", "a", "m2", "b"],
        &["GETDEL", "m2"],
        &["RPUSH", "l", "a", "b", "c", "d"],
        &["LPUSH", "l", "z"],
        &["LPOP", "l"],
        &["RPOP", "l", "1"],
        &["LSET", "l", "0", "A"],
        &["LINSERT", "l", "BEFORE", "b", "ab"],
        &["LREM", "l", "0", "c"],
        &["RPUSH", "l2", "x", "y"],
        &["LMOVE", "l2", "l", "LEFT", "RIGHT"],
        &["RPOPLPUSH", "l2", "l3"],
        &["LTRIM", "l", "0", "2"],
        &["SET", "gone", "x"],
        &["DEL", "gone"],
        &["SET", "r1", "v"],
        &["RENAME", "r1", "r2"],
        &["EXPIRE", "r2", "5000"],
        &["SET", "p", "v", "EX", "100"],
        &["PERSIST", "p"],
        &["COPY", "s", "s_copy"],
        &["HSET", "h", "a", "1", "b", "2", "c", "3"],
        &["HMSET", "h", "d", "4"],
        &["HSETNX", "h", "e", "5"],
        &["HDEL", "h", "a"],
        &["HINCRBY", "h", "b", "40"],
        &["HINCRBYFLOAT", "h", "f", "0.1"],
        &["HINCRBYFLOAT", "h", "f", "1e3"],
        &["HSET", "h_gone", "x", "1"],
        &["HDEL", "h_gone", "x"],
        &["HSET", "h_ttl", "x", "1"],
        &["PEXPIRE", "h_ttl", "5000000"],
        &["SADD", "st", "a", "b", "c", "d", "e"],
        &["SREM", "st", "a"],
        &["SPOP", "st"],
        &["SPOP", "st", "2"],
        &["SADD", "st2", "x", "y", "b", "c", "d", "e"],
        &["SMOVE", "st2", "st3", "x"],
        &["SINTERSTORE", "st_inter", "st", "st2"],
        &["SUNIONSTORE", "st_union", "st", "st2", "st3"],
        &["SDIFFSTORE", "st_diff", "st2", "st"],
        &["SADD", "st_all", "p", "q"],
        &["SPOP", "st_all", "10"],
        &["COPY", "h", "h_copy"],
        &["RENAME", "st2", "st2_renamed"],
        &["ZADD", "z", "1", "a", "2.5", "b", "-inf", "c", "0.1", "d", "1e300", "e"],
        &["ZADD", "z", "XX", "CH", "GT", "3", "a", "1", "b", "7", "nope"],
        &["ZADD", "z", "INCR", "0.2", "d"],
        &["ZINCRBY", "z", "1e-17", "a"],
        &["ZINCRBY", "z_new", "-3", "m"],
        &["ZREM", "z", "nope", "e"],
        &["ZADD", "z2", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "5", "f"],
        &["ZREMRANGEBYLEX", "z2", "[b", "(d"],
        &["ZREMRANGEBYSCORE", "z2", "(4", "+inf"],
        &["ZREMRANGEBYRANK", "z2", "0", "0"],
        &["ZPOPMIN", "z2"],
        &["ZPOPMAX", "z2", "1"],
        &["ZADD", "z3", "1", "x", "2", "y", "3", "z"],
        &["ZMPOP", "2", "nokey", "z3", "MAX", "COUNT", "2"],
        &["ZRANGESTORE", "z_range", "z", "0", "1"],
        &["ZUNIONSTORE", "z_union", "2", "z", "st", "WEIGHTS", "0.5", "3", "AGGREGATE", "MAX"],
        &["ZINTERSTORE", "z_inter", "2", "z", "z_range"],
        &["ZDIFFSTORE", "z_diff", "2", "z", "z_range"],
        &["ZADD", "z_gone", "1", "a"],
        &["ZPOPMIN", "z_gone", "5"],
        &["ZADD", "z_ttl", "1", "a"],
        &["PEXPIRE", "z_ttl", "5000000"],
        &["COPY", "z", "z_copy"],
        &["RENAME", "z_copy", "z_renamed"],
        &["MSET", "w_b", "3", "w_d", "1", "w_e", "2"],
        &["SORT", "st2_renamed", "BY", "w_*", "GET", "#", "GET", "w_*", "STORE", "sorted_by"],
        &["SORT", "st2_renamed", "BY", "nosort", "STORE", "sorted_set"],
        &["SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "2", "STORE", "sorted_z"],
        &["SORT", "l", "ALPHA", "STORE", "s_copy"],
        &["SET", "sorted_gone", "x"],
        &["SORT", "l", "ALPHA", "LIMIT", "99", "1", "STORE", "sorted_gone"],
        &["XADD", "x", "1-1", "a", "1"],
        &["XADD", "x", "*", "a", "2", "b", "3"],
        &["XADD", "x", "MAXLEN", "~", "1", "*", "c", "4"],
        &["XADD", "x", "5000000000000-*", "d", "5"],
        &["XADD", "x", "MINID", "=", "0-2", "*", "e", "6"],
        &["XDEL", "x", "1-1"],
        &["XGROUP", "CREATE", "x", "g", "0"],
        &["XGROUP", "CREATE", "x", "g2", "$", "ENTRIESREAD", "3"],
        &["XGROUP", "CREATECONSUMER", "x", "g", "idle"],
        // Redis's own replay of a plain XREADGROUP loses the group's entries-read (it propagates
        // only XCLAIM ... LASTID): this script is also replayed by redis-server, so it reads with
        // NOACK and makes pending entries with XCLAIM FORCE (tests/aof_streams.rs covers the rest).
        &["XREADGROUP", "GROUP", "g", "c1", "NOACK", "COUNT", "2", "STREAMS", "x", ">"],
        &["XREADGROUP", "GROUP", "g", "c2", "NOACK", "COUNT", "1", "STREAMS", "x", ">"],
        &["XCLAIM", "x", "g", "c1", "0", "5000000000000-0", "5000000000000-1", "FORCE", "JUSTID"],
        &["XACK", "x", "g", "5000000000000-0"],
        &["XCLAIM", "x", "g", "c3", "0", "5000000000000-1", "RETRYCOUNT", "7"],
        &["XAUTOCLAIM", "x", "g", "c4", "0", "0", "COUNT", "1"],
        &["XADD", "x", "*", "f", "7"],
        &["XGROUP", "CREATE", "xe", "g", "$", "MKSTREAM"],
        &["XADD", "xt", "1-1", "a", "1"],
        &["XADD", "xt", "2-1", "a", "1"],
        &["XTRIM", "xt", "MAXLEN", "1"],
        &["XSETID", "xt", "99-0", "ENTRIESADDED", "10", "MAXDELETEDID", "3-0"],
        &["SELECT", "5"],
        &["SET", "in5", "five"],
        &["RPUSH", "l5", "q"],
        &["SELECT", "0"],
        &["SET", "mv", "moving"],
        &["MOVE", "mv", "7"],
        &["SELECT", "9"],
        &["SET", "tmp", "1"],
        &["FLUSHDB"],
        &["SET", "after_flush", "1"],
        &["SWAPDB", "9", "10"],
    ];
    for cmd in script {
        let reply = c.cmds(cmd);
        assert!(!reply.starts_with(b"-"), "{cmd:?} failed: {}", String::from_utf8_lossy(&reply));
    }
}

#[test]
fn every_command_family_survives_a_clean_restart() {
    let mut s = Server::start(&aof_on("everysec"));
    write_everything(&s);
    let before = dump_keyspace(s.port);
    assert_eq!(s.stop(), Some(0), "SIGTERM must exit 0; log: {}", s.log());
    s.restart();
    assert_eq!(before, dump_keyspace(s.port));
}

#[test]
fn every_command_family_survives_kill9_under_always() {
    let mut s = Server::start(&aof_on("always"));
    write_everything(&s);
    let before = dump_keyspace(s.port);
    s.kill9();
    s.restart();
    assert_eq!(before, dump_keyspace(s.port));
}

#[test]
fn cleanly_stopped_file_is_valid_for_redis_check_aof() {
    let mut s = Server::start(&aof_on("always"));
    write_everything(&s);
    s.stop();
    let file = s.dir.join("appendonly.aof");
    let len = std::fs::metadata(&file).unwrap().len();
    let bytes = std::fs::read(&file).unwrap();
    assert!(len > 0 && !bytes.ends_with(&[0]), "file is trimmed to its records");
    if Command::new("redis-check-aof").arg("--help").output().is_err() {
        return; // redis-tools not installed: CI runs the check
    }
    let out = Command::new("redis-check-aof").arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("is valid"), "{text}");
}

#[test]
fn real_redis_server_loads_a_cleanly_stopped_file_with_the_same_keys() {
    let mut s = Server::start(&aof_on("always"));
    write_everything(&s);
    let ours = dump_keyspace(s.port);
    s.stop();
    let Some(redis) = RealRedis::start_in(&s.dir, &["--appendonly", "yes"]) else {
        return; // redis-server not installed: CI runs this with it
    };
    assert_eq!(dump_keyspace(redis.port), ours, "redis-server must load our file to the same keyspace");
}

/// redis-server 7.0 persists into appendonlydir/ (a manifest, a base, incremental files); started
/// on that directory with no file of ours, we import it and hold the same keyspace.
fn we_load_what_redis_wrote(extra: &[&str], rewrite_midway: bool) {
    let dir = common::temp_dir("from-redis");
    let Some(mut redis) = RealRedis::start_in(&dir, &[&["--appendonly", "yes"], extra].concat()) else { return };
    let mut c = redis.raw();
    if rewrite_midway {
        c.cmds(&["SET", "before_rewrite", "1"]);
        c.cmds(&["HSET", "h_before", "f", "v"]);
        assert!(c.cmds(&["BGREWRITEAOF"]).starts_with(b"+"));
        for _ in 0..100 {
            let info = String::from_utf8_lossy(&c.cmds(&["INFO", "persistence"])).to_string();
            if info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrite_scheduled:0") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    write_script(&mut c);
    let theirs = dump_keyspace(redis.port);
    common::send(&mut c, &["SHUTDOWN"]);
    c.read_to_close();
    redis.wait();
    assert!(dir.join("appendonlydir").exists(), "redis-server wrote its multi-part AOF");
    let mut s = Server::start_in(dir.clone(), &aof_on("everysec"));
    assert_eq!(dump_keyspace(s.port), theirs, "log: {}", s.log());
    // Our own file now holds it all: it survives our restart, and later writes go on from it.
    s.raw().cmds(&["SET", "after_import", "1"]);
    let mut expected = dump_keyspace(s.port);
    s.stop();
    s.restart();
    assert_eq!(dump_keyspace(s.port), expected);
    expected.remove(&(0, "after_import".to_string()));
    assert!(!expected.is_empty());
}

#[test]
fn a_directory_redis_persisted_with_its_default_rdb_preamble_loads() {
    we_load_what_redis_wrote(&[], false);
}

#[test]
fn a_directory_redis_persisted_with_a_rewritten_aof_base_loads() {
    we_load_what_redis_wrote(&["--aof-use-rdb-preamble", "no"], true);
}

/// An RDB base with keys loads (tests/rdb.rs compares it key by key); a damaged one stops startup
/// with the RDB error and leaves nothing half-imported.
#[test]
fn a_damaged_rdb_base_stops_startup_with_a_clear_error() {
    let dir = common::temp_dir("from-redis-rdb");
    let Some(mut redis) = RealRedis::start_in(&dir, &["--appendonly", "yes"]) else { return };
    let mut c = redis.raw();
    c.cmds(&["SET", "k", "v"]);
    assert!(c.cmds(&["BGREWRITEAOF"]).starts_with(b"+"));
    std::thread::sleep(std::time::Duration::from_millis(500));
    common::send(&mut c, &["SHUTDOWN"]);
    c.read_to_close();
    redis.wait();
    let base = std::fs::read_dir(dir.join("appendonlydir"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".base.rdb"))
        .expect("an RDB base");
    let mut bytes = std::fs::read(&base).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff; // the checksum
    std::fs::write(&base, &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flurrydb-server"))
        .args(["--port", "0", "--appendonly", "yes", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let log = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("Wrong RDB checksum"), "{log}");
    assert!(!dir.join("appendonly.aof").exists(), "nothing half-imported is left");
}

#[test]
fn torn_tail_is_dropped_and_the_rest_loads() {
    let mut s = Server::start(&aof_on("always"));
    s.raw().cmds(&["SET", "a", "1"]);
    s.raw().cmds(&["RPUSH", "l", "x"]);
    s.stop();
    let file = s.dir.join("appendonly.aof");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$5\r\nhal");
    std::fs::write(&file, &bytes).unwrap();
    s.restart();
    let mut c = s.raw();
    assert_eq!(c.cmds(&["GET", "a"]), b"$1\r\n1\r\n");
    assert_eq!(c.cmds(&["GET", "b"]), b"$-1\r\n");
    assert_eq!(c.cmds(&["LRANGE", "l", "0", "-1"]), b"*1\r\n$1\r\nx\r\n");
    // New writes go after the valid end, and the file loads again.
    assert_eq!(c.cmds(&["SET", "c", "3"]), b"+OK\r\n");
    s.stop();
    s.restart();
    assert_eq!(s.raw().cmds(&["GET", "c"]), b"$1\r\n3\r\n");
}

#[test]
fn corrupted_middle_stops_startup_naming_the_offset() {
    let mut s = Server::start(&aof_on("always"));
    for i in 0..20 {
        s.raw().cmds(&["SET", &format!("k{i}"), "v"]);
    }
    s.stop();
    let file = s.dir.join("appendonly.aof");
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    let star = mid + bytes[mid..].iter().position(|&b| b == b'*').unwrap();
    bytes[star] = b'!';
    std::fs::write(&file, &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flurrydb-server"))
        .args(["--port", "0", "--dir"])
        .arg(&s.dir)
        .args(["--appendonly", "yes"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the server must refuse to start on a corrupted AOF");
    let log = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(log.contains(&star.to_string()), "log must name offset {star}: {log}");
}

#[test]
fn keys_expired_while_down_are_not_loaded_and_ttls_are_not_lengthened() {
    let mut s = Server::start(&aof_on("always"));
    let mut c = s.raw();
    c.cmds(&["SET", "short", "v", "PX", "300"]);
    c.cmds(&["SET", "long", "v", "EX", "100"]);
    s.stop();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    s.restart();
    let mut c = s.raw();
    assert_eq!(c.cmds(&["EXISTS", "short"]), b":0\r\n");
    assert_eq!(c.cmds(&["DBSIZE"]), b":1\r\n", "the expired key is reclaimed at load");
    let ttl: i64 = String::from_utf8_lossy(&c.cmds(&["TTL", "long"]))[1..].trim().parse().unwrap();
    assert!((95..=99).contains(&ttl), "TTL must keep counting while the server is down, got {ttl}");
}

#[test]
fn rewrite_under_load_loses_nothing_and_applies_nothing_twice() {
    let mut s = Server::start(&aof_on("always"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let mut c = s.raw();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut acked = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    assert_eq!(&c.cmds(&["INCR", "ctr"])[..1], b":");
                    assert_eq!(&c.cmds(&["RPUSH", "list", &format!("{t}-{acked}")])[..1], b":");
                    acked += 1;
                }
                acked
            })
        })
        .collect();
    let mut admin = s.raw();
    for _ in 0..5 {
        std::thread::sleep(std::time::Duration::from_millis(150));
        let r = admin.cmds(&["BGREWRITEAOF"]);
        assert!(
            r.starts_with(b"+Background") || r.starts_with(b"-ERR Background append only file rewriting already"),
            "{}",
            String::from_utf8_lossy(&r)
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let info = String::from_utf8_lossy(&admin.cmds(&["INFO", "persistence"])).to_string();
    assert!(info.contains("aof_rewrites:") && !info.contains("aof_rewrites:0\r\n"), "{info}");
    let before = dump_keyspace(s.port);
    s.kill9();
    s.restart();
    let after = dump_keyspace(s.port);
    assert_eq!(before, after);
    assert_eq!(s.raw().cmds(&["GET", "ctr"]), format!("${}\r\n{acked}\r\n", acked.to_string().len()).into_bytes());
}

/// Set the soft file-size limit of `pid` (the hard limit stays, so it can be raised again).
fn prlimit(pid: u32, fsize: &str) -> bool {
    Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={fsize}:")])
        .output()
        .map(|o| {
            if !o.status.success() {
                eprintln!("prlimit: {}", String::from_utf8_lossy(&o.stderr));
            }
            o.status.success()
        })
        .unwrap_or(false)
}

#[test]
fn write_errors_refuse_writes_with_misconf_keep_reads_and_recover() {
    let mut s = Server::start(&["--appendonly", "yes", "--appendfsync", "always", "--aof-prealloc-bytes", "65536"]);
    let pid = s.child.as_ref().unwrap().id();
    let mut c = s.raw();
    assert_eq!(c.cmds(&["SET", "before", "1"]), b"+OK\r\n");
    let size = std::fs::metadata(s.dir.join("appendonly.aof")).unwrap().len();
    if !prlimit(pid, &size.to_string()) {
        return; // prlimit unavailable: nothing to inject with
    }
    let big = "x".repeat(4096);
    let mut refused = false;
    for i in 0..64 {
        let r = c.cmds(&["SET", &format!("k{i}"), &big]);
        if r.starts_with(b"-MISCONF") {
            refused = true;
            break;
        }
        assert_eq!(r, b"+OK\r\n");
    }
    assert!(refused, "writes past the file-size limit must be refused with -MISCONF");
    assert_eq!(c.cmds(&["SET", "more", "1"])[..8], b"-MISCONF"[..]);
    assert_eq!(c.cmds(&["GET", "before"]), b"$1\r\n1\r\n", "reads go on");
    assert!(prlimit(pid, "unlimited"));
    let mut resumed = false;
    for _ in 0..100 {
        if c.cmds(&["SET", "after", "1"]) == b"+OK\r\n" {
            resumed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(resumed, "writes resume once the cause is gone");
    let before = dump_keyspace(s.port);
    s.kill9();
    s.restart();
    assert_eq!(before, dump_keyspace(s.port), "what memory held, the file holds");
}

#[test]
fn sort_store_over_an_existing_key_is_one_multi_exec_block_in_the_file() {
    let mut s = Server::start(&aof_on("always"));
    let mut c = s.raw();
    c.cmds(&["RPUSH", "src", "3", "1", "2"]);
    c.cmds(&["SET", "dst", "old"]);
    assert_eq!(c.cmds(&["SORT", "src", "STORE", "dst"]), b":3\r\n".to_vec());
    assert_eq!(s.stop(), Some(0));
    let text = std::fs::read(s.dir.join("appendonly.aof")).unwrap();
    let block = b"*1\r\n$5\r\nMULTI\r\n*2\r\n$3\r\nDEL\r\n$3\r\ndst\r\n\
*5\r\n$5\r\nRPUSH\r\n$3\r\ndst\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n*1\r\n$4\r\nEXEC\r\n";
    assert!(text.windows(block.len()).any(|w| w == block), "{}", String::from_utf8_lossy(&text));
    s.restart();
    let mut c = s.raw();
    assert_eq!(c.cmds(&["LRANGE", "dst", "0", "-1"]), b"*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n".to_vec());
}

/// Writes after a rewrite, in several databases, so the tail after the base needs its `SELECT`s.
fn write_tail(c: &mut common::Raw) {
    for cmd in [
        &["INCR", "n"][..],
        &["SELECT", "3"],
        &["RPUSH", "tail-list", "a", "b"],
        &["HSET", "tail-hash", "f", "v"],
        &["SELECT", "0"],
        &["APPEND", "s", "!"],
        &["ZADD", "tail-z", "2.5", "m"],
        &["DEL", "m1"],
    ] {
        let reply = c.cmds(cmd);
        assert!(!reply.starts_with(b"-"), "{cmd:?} failed: {}", String::from_utf8_lossy(&reply));
    }
}

/// `aof-use-rdb-preamble yes` (the default, as Redis's): the rewritten file is an RDB of the
/// snapshot followed by the commands written since. It reloads to the same keyspace after kill -9,
/// redis-check-aof accepts it, and redis-server 7.0 loads it (its old single-file AOF with a
/// preamble) to the same keyspace.
#[test]
fn a_rewritten_file_is_an_rdb_preamble_then_commands_and_reloads_everywhere() {
    let mut s = Server::start(&aof_on("always"));
    write_everything(&s);
    let mut c = s.raw();
    c.cmds(&["FUNCTION", "LOAD", "#!lua name=plib\nredis.register_function('pf', function() return 7 end)"]);
    assert!(c.cmds(&["BGREWRITEAOF"]).starts_with(b"+Background"));
    s.wait_for_rewrite();
    write_tail(&mut c);
    let file = s.dir.join("appendonly.aof");
    assert!(std::fs::read(&file).unwrap().starts_with(b"REDIS0010"), "the base is an RDB file");
    let before = dump_keyspace(s.port);
    s.kill9();
    s.restart();
    assert_eq!(dump_keyspace(s.port), before);
    assert_eq!(s.raw().cmds(&["FCALL", "pf", "0"]), b":7\r\n", "the library came back from the preamble");
    // More writes after the restart go after the loaded file's valid end.
    s.raw().cmds(&["INCR", "n"]);
    let before = dump_keyspace(s.port);
    assert_eq!(s.stop(), Some(0), "SIGTERM must exit 0; log: {}", s.log());
    s.restart();
    assert_eq!(dump_keyspace(s.port), before);
    s.stop();
    if Command::new("redis-check-aof").arg("--help").output().is_ok() {
        let out = Command::new("redis-check-aof").arg(&file).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("RDB preamble is OK") && text.contains("is valid"), "{text}");
    }
    let Some(redis) = RealRedis::start_in(&s.dir, &["--appendonly", "yes"]) else {
        return; // redis-server not installed: CI runs this with it
    };
    assert_eq!(dump_keyspace(redis.port), before, "redis-server must load our file to the same keyspace");
    assert_eq!(redis.raw().cmds(&["FCALL", "pf", "0"]), b":7\r\n");
}

/// `aof-use-rdb-preamble no`: the base is commands again (a file any AOF reader takes).
#[test]
fn without_the_preamble_the_rewritten_base_is_commands() {
    let mut s = Server::start(&aof_on("everysec"));
    write_everything(&s);
    let mut c = s.raw();
    assert_eq!(c.cmds(&["CONFIG", "SET", "aof-use-rdb-preamble", "no"]), b"+OK\r\n");
    assert!(c.cmds(&["BGREWRITEAOF"]).starts_with(b"+Background"));
    s.wait_for_rewrite();
    write_tail(&mut c);
    assert!(std::fs::read(s.dir.join("appendonly.aof")).unwrap().starts_with(b"*"), "the base is commands");
    let before = dump_keyspace(s.port);
    s.kill9();
    s.restart();
    assert_eq!(dump_keyspace(s.port), before);
}

/// A preamble that does not read to its checksum stops startup naming it; the file is left as it
/// was (nothing after a broken preamble can be found, so nothing is cut).
#[test]
fn a_damaged_preamble_stops_startup_and_leaves_the_file() {
    let mut s = Server::start(&aof_on("always"));
    write_everything(&s);
    let mut c = s.raw();
    assert!(c.cmds(&["BGREWRITEAOF"]).starts_with(b"+Background"));
    s.wait_for_rewrite();
    write_tail(&mut c);
    s.stop();
    let file = s.dir.join("appendonly.aof");
    let mut bytes = std::fs::read(&file).unwrap();
    let end = bytes.windows(16).position(|w| w == b"*2\r\n$6\r\nSELECT\r\n").expect("the tail's first record (SELECT)");
    bytes[end - 1] ^= 0xff; // the last byte of the preamble's checksum
    std::fs::write(&file, &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flurrydb-server"))
        .args(["--port", "0", "--appendonly", "yes", "--save", "", "--dir"])
        .arg(&s.dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let log = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("RDB preamble") && log.contains("Wrong RDB checksum"), "{log}");
    assert_eq!(std::fs::read(&file).unwrap(), bytes, "the file is left as it was");
}

/// A key in the preamble whose time passed while the server was down is loaded and removed right
/// after the load, its `DEL` logged, as for a key written by a command (the TTLs of the others kept).
#[test]
fn keys_of_the_preamble_expired_while_down_are_removed_and_logged() {
    let mut s = Server::start(&aof_on("always"));
    let mut c = s.raw();
    c.cmds(&["SET", "short", "v", "PX", "300"]);
    c.cmds(&["SET", "long", "v", "EX", "1000"]);
    c.cmds(&["HSET", "plain", "f", "v"]);
    assert!(c.cmds(&["BGREWRITEAOF"]).starts_with(b"+Background"));
    s.wait_for_rewrite();
    s.stop();
    std::thread::sleep(std::time::Duration::from_millis(400));
    s.restart();
    let mut c = s.raw();
    assert_eq!(c.cmds(&["EXISTS", "short", "long", "plain"]), b":2\r\n");
    let ttl: i64 = String::from_utf8_lossy(&c.cmds(&["TTL", "long"]))[1..].trim().parse().unwrap();
    assert!((990..=1000).contains(&ttl), "{ttl}");
    s.stop();
    let bytes = std::fs::read(s.dir.join("appendonly.aof")).unwrap();
    assert!(bytes.windows(20).any(|w| w == b"$3\r\nDEL\r\n$5\r\nshort\r\n"), "the expiry is logged as DEL");
}
