//! RDB files, DUMP/RESTORE and MIGRATE against a real redis-server 7.0.15: our files pass
//! redis-check-rdb and load in Redis, Redis's files load here, DUMP payloads are byte-identical,
//! RESTORE's errors are Redis's, BGSAVE is a consistent snapshot that does not stop writers.
//! Tests that need redis-server skip themselves where it is absent.

mod common;

use std::time::{Duration, Instant};

use common::{RealRedis, Server, dump_keyspace};

/// Two keyspace dumps equal, compared key by key (a short message naming the first difference).
fn assert_same(
    got: &std::collections::BTreeMap<(usize, String), String>,
    want: &std::collections::BTreeMap<(usize, String), String>,
) {
    for (k, v) in want {
        assert_eq!(got.get(k), Some(v), "key {k:?}");
    }
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(extra.is_empty(), "extra keys {extra:?}");
}

fn q(c: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Commands building a keyspace of every type and encoding, small and large, with expiries,
/// several databases, a stream with groups, pending entries and consumers.
fn keyspace_commands() -> Vec<Vec<String>> {
    let mut v: Vec<Vec<String>> = Vec::new();
    let mut c = |a: &[&str]| v.push(a.iter().map(|s| s.to_string()).collect());
    c(&["SET", "str", "hello"]);
    c(&["SET", "int", "12345"]);
    c(&["SET", "neg", "-7"]);
    c(&["SET", "bigint", "9223372036854775807"]);
    c(&["SET", "lzf", &"abcdefgh".repeat(20)]);
    c(&["SET", "bin", "\u{0}\u{1}\u{2}\r\n\u{7f}"]);
    c(&["SET", "ttl", "v", "EX", "1000"]);
    c(&["APPEND", "raw", "appended"]);
    c(&["RPUSH", "list", "a", "1", "-7000", "", "70000", "x"]);
    c(&["HSET", "hash", "f", "v", "n", "42"]);
    c(&["SADD", "intset", "3", "-1", "100000", "5000000000"]);
    c(&["SADD", "set", "x", "y", "1"]);
    c(&["ZADD", "zset", "1.5", "b", "3", "c", "-inf", "a", "1e17", "d", "0.1", "e", "inf", "f"]);
    c(&["PEXPIRE", "zset", "5000000"]);
    c(&["XADD", "stream", "1-1", "f", "v", "g", "w"]);
    c(&["XADD", "stream", "1-2", "f", "v2", "g", "w2"]);
    c(&["XADD", "stream", "2-0", "other", "z"]);
    c(&["XADD", "stream", "3-0", "f", "a", "g", "b"]);
    c(&["XDEL", "stream", "1-2"]);
    c(&["XGROUP", "CREATE", "stream", "grp", "0"]);
    c(&["XGROUP", "CREATE", "stream", "late", "$"]);
    c(&["XREADGROUP", "GROUP", "grp", "alice", "COUNT", "2", "STREAMS", "stream", ">"]);
    c(&["XGROUP", "CREATECONSUMER", "stream", "grp", "bob"]);
    // Delivery times fixed, so that both servers hold the same PEL.
    c(&["XCLAIM", "stream", "grp", "alice", "0", "1-1", "2-0", "TIME", "1700000000000", "RETRYCOUNT", "3", "JUSTID"]);
    for i in 1..=40 {
        c(&["XADD", "tomb", &format!("5-{i}"), "f", &i.to_string(), "g", "x"]);
    }
    for i in [3, 4, 17, 40] {
        c(&["XDEL", "tomb", &format!("5-{i}")]);
    }
    c(&["XADD", "tomb", "6-0", "other", "fields"]);
    // A node that trimming empties entry by entry stays (its last entry a tombstone), as Redis keeps it.
    for i in 1..=150 {
        c(&["XADD", "trimmed", &format!("7-{i}"), "f", &i.to_string()]);
    }
    c(&["XDEL", "trimmed", "7-100"]);
    c(&["XTRIM", "trimmed", "MINID", "7-100"]);
    c(&["SELECT", "2"]);
    c(&["SET", "indb2", "x"]);
    c(&["SELECT", "0"]);
    for i in 0..700 {
        c(&["RPUSH", "biglist", &format!("item-{i}")]);
        c(&["HSET", "bighash", &format!("f{i}"), &format!("v{i}")]);
        c(&["SADD", "bigset", &format!("m{i}")]);
        c(&["SADD", "bigintset", &(i * 1000).to_string()]);
    }
    c(&["RPUSH", "hugeelem", &"z".repeat(10000), "small"]);
    c(&["HSET", "longvalue", "f", &"v".repeat(100)]);
    for i in 0..200 {
        c(&["ZADD", "bigzset", &format!("{}", i as f64 / 4.0), &format!("m{i:04}")]);
    }
    for i in 0..300 {
        c(&["XADD", "bigstream", &format!("{}-{i}", 1000 + i / 3), "f", &i.to_string(), "g", &"x".repeat(i % 50)]);
    }
    v
}

fn load(c: &mut redis::Connection) {
    let mut p = redis::pipe();
    for cmd in keyspace_commands() {
        let mut x = redis::cmd(&cmd[0]);
        for a in &cmd[1..] {
            x.arg(a.as_bytes());
        }
        p.add_command(x).ignore();
    }
    let _: () = p.query(c).unwrap();
}

/// The keys whose DUMP redis-server produces deterministically (not dict-ordered: hashtable hashes
/// and sets are in its hash table's order, so they are compared by value instead; a stream with
/// consumers holds their seen-times, the clock of each server).
const DETERMINISTIC: &[&str] = &[
    "str",
    "int",
    "neg",
    "bigint",
    "lzf",
    "bin",
    "raw",
    "list",
    "hash",
    "intset",
    "zset",
    "tomb",
    "trimmed",
    "biglist",
    "hugeelem",
    "bigzset",
    "bigstream",
];

#[test]
fn dump_payloads_are_byte_identical_to_redis_and_restore_both_ways() {
    let Some(real) = RealRedis::start(&["--appendonly", "no"]) else { return };
    let ours = Server::start(&[]);
    let (mut r, mut o) = (real.client(), ours.client());
    load(&mut r);
    load(&mut o);
    for k in DETERMINISTIC {
        let a: Vec<u8> = redis::cmd("DUMP").arg(*k).query(&mut r).unwrap();
        let b: Vec<u8> = redis::cmd("DUMP").arg(*k).query(&mut o).unwrap();
        assert_eq!(a.escape_ascii().to_string(), b.escape_ascii().to_string(), "DUMP {k}");
    }
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut r).unwrap();
    for k in &keys {
        let a: Vec<u8> = redis::cmd("DUMP").arg(k).query(&mut r).unwrap();
        let b: Vec<u8> = redis::cmd("DUMP").arg(k).query(&mut o).unwrap();
        let _: () = redis::cmd("RESTORE").arg(format!("{k}:fromredis")).arg(0).arg(&a).query(&mut o).unwrap();
        let _: () = redis::cmd("RESTORE").arg(format!("{k}:fromours")).arg(0).arg(&b).query(&mut r).unwrap();
        // And each restores into itself the other's way.
        let _: () = redis::cmd("RESTORE").arg(format!("{k}:fromours")).arg(0).arg(&b).query(&mut o).unwrap();
        let _: () = redis::cmd("RESTORE").arg(format!("{k}:fromredis")).arg(0).arg(&a).query(&mut r).unwrap();
    }
    // A payload restored here dumps back to the same bytes: the loader keeps the nodes as they
    // were (tombstones, and a node that trimming emptied).
    for k in DETERMINISTIC {
        let a: Vec<u8> = redis::cmd("DUMP").arg(*k).query(&mut r).unwrap();
        let b: Vec<u8> = redis::cmd("DUMP").arg(format!("{k}:fromredis")).query(&mut o).unwrap();
        assert_eq!(a.escape_ascii().to_string(), b.escape_ascii().to_string(), "DUMP {k} after RESTORE here");
    }
    let nodes = |c: &mut redis::Connection, k: &str| {
        let info: Vec<redis::Value> = redis::cmd("XINFO").arg("STREAM").arg(k).query(c).unwrap();
        info[3].clone()
    };
    assert_eq!(nodes(&mut o, "trimmed:fromredis"), nodes(&mut r, "trimmed"));
    assert_eq!(nodes(&mut o, "trimmed"), redis::Value::Int(2));
    assert_same(&dump_keyspace(real.port), &dump_keyspace(ours.port));
}

#[test]
fn restore_replies_and_errors_are_redis_s() {
    let Some(real) = RealRedis::start(&["--appendonly", "no"]) else { return };
    let ours = Server::start(&[]);
    let (mut r, mut o) = (real.raw(), ours.raw());
    let mut rc = real.client();
    let _: () = redis::cmd("SET").arg("src").arg("value").query(&mut rc).unwrap();
    let _: () = redis::cmd("HSET").arg("h").arg("f").arg("v").query(&mut rc).unwrap();
    let good: Vec<u8> = redis::cmd("DUMP").arg("src").query(&mut rc).unwrap();
    let hash: Vec<u8> = redis::cmd("DUMP").arg("h").query(&mut rc).unwrap();
    let mut bad_sum = good.clone();
    *bad_sum.last_mut().unwrap() ^= 1;
    let mut bad_ver = good.clone();
    let n = bad_ver.len();
    bad_ver[n - 10] = 11;
    // A payload with a valid footer around a body cut short: decodes to nothing.
    let body = &hash[..hash.len() - 10];
    let mut cut = body[..body.len() - 3].to_vec();
    cut.extend_from_slice(&10u16.to_le_bytes());
    let crc = flurrydb::rdb::crc64::crc64(0, &cut);
    cut.extend_from_slice(&crc.to_le_bytes());
    let past =
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() - 10_000).to_string();
    let far = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 10_000_000)
        .to_string();
    let cases: Vec<Vec<&[u8]>> = vec![
        vec![b"RESTORE", b"k1", b"0", &good],
        vec![b"RESTORE", b"k1", b"0", &good],
        vec![b"RESTORE", b"k1", b"0", &good, b"REPLACE"],
        vec![b"GET", b"k1"],
        vec![b"RESTORE", b"k2", b"-1", &good],
        vec![b"RESTORE", b"k2", b"abc", &good],
        vec![b"RESTORE", b"k2", b"0", &bad_sum],
        vec![b"RESTORE", b"k2", b"0", &bad_ver],
        vec![b"RESTORE", b"k2", b"0", &cut],
        vec![b"RESTORE", b"k2", b"0", b"short"],
        vec![b"RESTORE", b"k2", b"0", &good, b"IDLETIME", b"-1"],
        vec![b"RESTORE", b"k2", b"0", &good, b"FREQ", b"256"],
        vec![b"RESTORE", b"k2", b"0", &good, b"FREQ", b"5", b"IDLETIME", b"5"],
        vec![b"RESTORE", b"k2", b"0", &good, b"BOGUS"],
        vec![b"RESTORE", b"k2", b"0", &good, b"IDLETIME"],
        vec![b"RESTORE", b"k2", b"0", &good, b"IDLETIME", b"100"],
        vec![b"OBJECT", b"IDLETIME", b"k2"],
        vec![b"RESTORE", b"k3", past.as_bytes(), &good, b"ABSTTL"],
        vec![b"EXISTS", b"k3"],
        vec![b"RESTORE", b"k1", past.as_bytes(), &good, b"ABSTTL", b"REPLACE"],
        vec![b"EXISTS", b"k1"],
        vec![b"RESTORE", b"k4", far.as_bytes(), &good, b"ABSTTL"],
        vec![b"RESTORE", b"k5", b"100000", &hash],
        vec![b"TYPE", b"k5"],
        vec![b"RESTORE", b"k5", b"0", &hash, b"REPLACE"],
        vec![b"TTL", b"k5"],
        vec![b"RESTORE"],
        vec![b"DUMP", b"nosuchkey"],
    ];
    for c in &cases {
        let a = r.cmd(c);
        let b = o.cmd(c);
        assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "{:?}",
            c.iter().map(|x| x.escape_ascii().to_string()).collect::<Vec<_>>()
        );
    }
    let ttl_r = r.cmds(&["PTTL", "k4"]);
    let ttl_o = o.cmds(&["PTTL", "k4"]);
    let num = |v: &[u8]| String::from_utf8_lossy(&v[1..v.len() - 2]).parse::<i64>().unwrap();
    assert!((num(&ttl_r) - num(&ttl_o)).abs() < 5000, "{ttl_r:?} {ttl_o:?}");
}

fn wait_file(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn our_save_passes_redis_check_rdb_and_loads_in_redis_and_redis_s_loads_here() {
    let real_dir = common::temp_dir("redis-save");
    let Some(real) = RealRedis::start_in(&real_dir, &["--appendonly", "no"]) else { return };
    let ours = Server::start(&[]);
    let (mut r, mut o) = (real.client(), ours.client());
    load(&mut r);
    load(&mut o);
    let _: () = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=mylib\nredis.register_function('myfunc', function() return 7 end)")
        .query(&mut o)
        .unwrap();
    let _: () = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=mylib\nredis.register_function('myfunc', function() return 7 end)")
        .query(&mut r)
        .unwrap();
    let expected = dump_keyspace(real.port);
    assert_same(&dump_keyspace(ours.port), &expected);

    // Ours -> redis-check-rdb -> redis-server.
    assert_eq!(q(&mut o, &["SAVE"]), redis::Value::Okay);
    let file = ours.dir.join("dump.rdb");
    if let Ok(out) = std::process::Command::new("redis-check-rdb").arg(&file).output() {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("RDB looks OK"), "redis-check-rdb: {text}");
    }
    let dir = common::temp_dir("rdb-into-redis");
    std::fs::copy(&file, dir.join("dump.rdb")).unwrap();
    let loaded = RealRedis::start_in(&dir, &["--appendonly", "no", "--dbfilename", "dump.rdb"]).unwrap();
    assert_same(&dump_keyspace(loaded.port), &expected);
    let f: i64 = redis::cmd("FCALL").arg("myfunc").arg(0).query(&mut loaded.client()).unwrap();
    assert_eq!(f, 7);
    drop(loaded);

    // Redis -> ours.
    assert_eq!(q(&mut r, &["SAVE"]), redis::Value::Okay);
    std::fs::copy(real_dir.join("dump.rdb"), dir.join("dump.rdb")).unwrap();
    let here = Server::start_in(dir.clone(), &["--dbfilename", "dump.rdb"]);
    assert_same(&dump_keyspace(here.port), &expected);
    let f: i64 = redis::cmd("FCALL").arg("myfunc").arg(0).query(&mut here.client()).unwrap();
    assert_eq!(f, 7);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&real_dir);
}

#[test]
fn save_points_bgsave_and_shutdown_save_write_the_file_as_redis() {
    let mut s = Server::start(&["--save", "1 1", "--dbfilename", "x.rdb"]);
    let mut c = s.client();
    let file = s.dir.join("x.rdb");
    let info = |c: &mut redis::Connection, field: &str| -> String {
        let text: String = redis::cmd("INFO").arg("persistence").query(c).unwrap();
        text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or_default().to_string()
    };
    let _: () = redis::cmd("SET").arg("a").arg("1").query(&mut c).unwrap();
    assert_eq!(info(&mut c, "rdb_changes_since_last_save"), "1");
    // The schedule (1 change in 1 second) saves within a couple of seconds.
    wait_file(&file);
    assert!(file.exists());
    let deadline = Instant::now() + Duration::from_secs(10);
    while info(&mut c, "rdb_changes_since_last_save") != "0" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(info(&mut c, "rdb_last_bgsave_status"), "ok");
    assert_eq!(s.raw().cmds(&["BGSAVE", "NOW"]), b"-ERR syntax error\r\n");
    let _: () = redis::cmd("SET").arg("b").arg("2").query(&mut c).unwrap();
    // SHUTDOWN (default: save points are set) writes the final state.
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    s.wait_exit(Duration::from_secs(20));
    s.restart();
    let mut c = s.client();
    let b: String = redis::cmd("GET").arg("b").query(&mut c).unwrap();
    assert_eq!(b, "2");
    // SHUTDOWN NOSAVE does not.
    let _: () = redis::cmd("SET").arg("c").arg("3").query(&mut c).unwrap();
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut c);
    s.wait_exit(Duration::from_secs(20));
    s.restart();
    let mut c = s.client();
    let v: Option<String> = redis::cmd("GET").arg("c").query(&mut c).unwrap();
    assert_eq!(v, None);
}

#[test]
fn a_redis_appendonlydir_with_an_rdb_base_loads_here() {
    let dir = common::temp_dir("redis-aofdir");
    let Some(real) = RealRedis::start_in(&dir, &["--appendonly", "yes", "--aof-use-rdb-preamble", "yes"]) else {
        return;
    };
    let mut r = real.client();
    load(&mut r);
    let _: () = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=lib2\nredis.register_function('f2', function() return 2 end)")
        .query(&mut r)
        .unwrap();
    assert_eq!(
        q(&mut r, &["BGREWRITEAOF"]),
        redis::Value::SimpleString("Background append only file rewriting started".into())
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text: String = redis::cmd("INFO").arg("persistence").query(&mut r).unwrap();
        if text.contains("aof_rewrite_in_progress:0") && text.contains("aof_rewrite_scheduled:0") {
            break;
        }
        assert!(Instant::now() < deadline, "rewrite did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Writes after the rewrite land in the incremental file.
    let _: () = redis::cmd("SET").arg("after").arg("rewrite").query(&mut r).unwrap();
    let _: () = redis::cmd("RPUSH").arg("list").arg("tail").query(&mut r).unwrap();
    let expected = dump_keyspace(real.port);
    let base_is_rdb = std::fs::read_dir(dir.join("appendonlydir"))
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".base.rdb"));
    assert!(base_is_rdb, "redis-server wrote an RDB base");
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut r);
    drop(real);
    let here = Server::start_in(dir.clone(), &["--appendonly", "yes"]);
    assert_same(&dump_keyspace(here.port), &expected);
    let f: i64 = redis::cmd("FCALL").arg("f2").arg(0).query(&mut here.client()).unwrap();
    assert_eq!(f, 2);
}

#[test]
fn migrate_moves_keys_both_ways_with_redis_s_replies() {
    let Some(real) = RealRedis::start(&["--appendonly", "no"]) else { return };
    let ours = Server::start(&[]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let (rp, op) = (real.port.to_string(), ours.port.to_string());
    let mut o = ours.client();
    let mut r = real.client();
    load(&mut o);
    let expected = dump_keyspace(ours.port);
    // Everything of db 0 and db 2 of ours moves to Redis (KEYS form), then back (one by one).
    for db in ["0", "2"] {
        let _: () = redis::cmd("SELECT").arg(db).query(&mut o).unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut o).unwrap();
        let mut cmd = redis::cmd("MIGRATE");
        cmd.arg("127.0.0.1").arg(&rp).arg("").arg(db).arg(5000).arg("KEYS");
        for k in &keys {
            cmd.arg(k);
        }
        assert_eq!(cmd.query::<redis::Value>(&mut o).unwrap(), redis::Value::Okay);
        let left: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut o).unwrap();
        assert!(left.is_empty(), "{left:?}");
    }
    assert_same(&dump_keyspace(real.port), &expected);
    for db in ["0", "2"] {
        let _: () = redis::cmd("SELECT").arg(db).query(&mut r).unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut r).unwrap();
        for k in &keys {
            let v: redis::Value =
                redis::cmd("MIGRATE").arg("127.0.0.1").arg(&op).arg(k).arg(db).arg(5000).query(&mut r).unwrap();
            assert_eq!(v, redis::Value::Okay, "{k}");
        }
    }
    let _: () = redis::cmd("SELECT").arg(0).query(&mut o).unwrap();
    assert_same(&dump_keyspace(ours.port), &expected);

    // Replies and errors, the same command sent by each server to the other.
    let (mut rr, mut oo) = (real.raw(), ours.raw());
    for c in [&mut rr, &mut oo] {
        c.cmds(&["SET", "x", "1"]);
        c.cmds(&["SET", "y", "1"]);
    }
    let cases: Vec<Vec<&str>> = vec![
        vec!["MIGRATE", "127.0.0.1", "{other}", "x", "0", "1000", "COPY"],
        vec!["MIGRATE", "127.0.0.1", "{other}", "x", "0", "1000", "COPY"],
        vec!["MIGRATE", "127.0.0.1", "{other}", "x", "0", "1000", "COPY", "REPLACE"],
        vec!["MIGRATE", "127.0.0.1", "{other}", "nokey", "0", "1000"],
        vec!["MIGRATE", "127.0.0.1", "{other}", "x", "0", "1000", "KEYS", "y"],
        vec!["MIGRATE", "127.0.0.1", "{other}", "", "0", "1000", "KEYS", "nokey1", "nokey2"],
        vec!["MIGRATE", "127.0.0.1", "{other}", "x", "0", "1000", "AUTH", "pw"],
        vec!["MIGRATE", "127.0.0.1", "{other}", "x", "0", "1000", "AUTH2", "u", "pw"],
        vec!["MIGRATE", "127.0.0.1", "{other}", "x", "0", "1000", "AUTH"],
        vec!["MIGRATE", "127.0.0.1", "{other}", "x", "0", "1000", "BOGUS"],
        vec!["MIGRATE", "127.0.0.1", "{other}", "x", "zero", "1000"],
        vec!["MIGRATE", "127.0.0.1", &closed, "x", "0", "1000"],
        vec!["MIGRATE", "127.0.0.1", "{other}", "y", "5", "1000"],
        vec!["EXISTS", "y"],
    ];
    for c in &cases {
        let with = |port: &str| -> Vec<String> {
            c.iter().map(|a| if *a == "{other}" { port.to_string() } else { a.to_string() }).collect()
        };
        let a = rr.cmds(&with(&op).iter().map(|s| s.as_str()).collect::<Vec<_>>());
        let b = oo.cmds(&with(&rp).iter().map(|s| s.as_str()).collect::<Vec<_>>());
        assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b), "{c:?}");
    }
}

#[test]
fn bgsave_is_a_point_in_time_snapshot_and_writers_go_on_meanwhile() {
    let ours = Server::start(&["--rdb-key-save-delay", "300"]);
    let mut c = ours.client();
    let mut p = redis::pipe();
    for i in 0..3000 {
        p.cmd("SET").arg(format!("pad:{i}")).arg(i).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (done, stop) = (done.clone(), stop.clone());
        let mut w = ours.client();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                // The pair changes together: any consistent copy holds a == b.
                let _: () = redis::pipe()
                    .atomic()
                    .cmd("INCR")
                    .arg("a")
                    .ignore()
                    .cmd("INCR")
                    .arg("b")
                    .ignore()
                    .query(&mut w)
                    .unwrap();
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    while done.load(std::sync::atomic::Ordering::SeqCst) < 50 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let v: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    assert_eq!(v, "Background saving started");
    let at_start = done.load(std::sync::atomic::Ordering::SeqCst);
    let mut during = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
        if text.contains("rdb_bgsave_in_progress:0") {
            break;
        }
        during = done.load(std::sync::atomic::Ordering::SeqCst) - at_start;
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.join().unwrap();
    assert!(during > 0, "writers made no progress while the file was written");
    let text: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
    assert!(text.contains("rdb_last_bgsave_status:ok"), "{text}");
    // The file: a == b, and every padding key.
    let mut f = std::io::BufReader::new(std::fs::File::open(ours.dir.join("dump.rdb")).unwrap());
    let (mut a, mut b, mut keys) = (None, None, 0);
    flurrydb::rdb::read_rdb(&mut f, |k| {
        keys += 1;
        let v = match k.value {
            flurrydb::db::SnapshotValue::Int(n) => n,
            flurrydb::db::SnapshotValue::Str(s) => String::from_utf8_lossy(&s).parse().unwrap(),
            _ => panic!("type"),
        };
        match &k.key[..] {
            b"a" => a = Some(v),
            b"b" => b = Some(v),
            _ => {}
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(keys, 3002);
    assert!(a.is_some() && a == b, "{a:?} {b:?}");
}

#[test]
fn corrupt_files_stop_startup_with_an_error_not_a_panic() {
    let dir = common::temp_dir("rdb-corrupt");
    let entries = vec![flurrydb::db::SnapshotEntry {
        db: 0,
        key: "k".into(),
        value: flurrydb::db::SnapshotValue::List(vec!["a".into(); 100]),
        expire_at_ms: 0,
    }];
    let mut good = Vec::new();
    flurrydb::rdb::write_rdb(&mut good, &entries, &flurrydb::rdb::Aux::default()).unwrap();
    let n = good.len();
    let mut bad_sum = good.clone();
    bad_sum[n - 3] ^= 1;
    for (i, bytes) in [&good[..n / 2], &bad_sum[..], b"REDIS0099garbage"].into_iter().enumerate() {
        std::fs::write(dir.join("dump.rdb"), bytes).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_flurrydb-server"))
            .args(["--port", "0", "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "case {i}");
        let log = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(!log.contains("panicked"), "{log}");
        assert!(log.contains("RDB") || log.contains("DB"), "{log}");
    }
    std::fs::write(dir.join("dump.rdb"), &good).unwrap();
    let s = Server::start_in(dir, &[]);
    let n: i64 = redis::cmd("LLEN").arg("k").query(&mut s.client()).unwrap();
    assert_eq!(n, 100);
}

#[test]
fn restore_replays_from_the_aof_with_its_absolute_ttl() {
    let mut s = Server::start(&["--appendonly", "yes"]);
    let mut c = s.client();
    let _: () = redis::cmd("RPUSH").arg("src").arg("a").arg("b").query(&mut c).unwrap();
    let payload: Vec<u8> = redis::cmd("DUMP").arg("src").query(&mut c).unwrap();
    let _: () = redis::cmd("RESTORE").arg("withttl").arg(500_000).arg(&payload).query(&mut c).unwrap();
    let _: () = redis::cmd("RESTORE").arg("plain").arg(0).arg(&payload).query(&mut c).unwrap();
    let _: () = redis::cmd("RESTORE")
        .arg("plain")
        .arg(0)
        .arg(&payload)
        .arg("REPLACE")
        .arg("IDLETIME")
        .arg(10)
        .query(&mut c)
        .unwrap();
    let before = dump_keyspace(s.port);
    s.stop();
    s.restart();
    assert_same(&dump_keyspace(s.port), &before);
    let pttl: i64 = redis::cmd("PTTL").arg("withttl").query(&mut s.client()).unwrap();
    assert!(pttl > 400_000 && pttl <= 500_000, "{pttl}");
}

/// Collection writes count as changes since the last save as Redis 7.0 counts them when no AOF,
/// replica, WATCH or tracking client reads their records (the writes then skip building the
/// record: `WriteLock::count_unread`): one per single-element write, none for a write that
/// changed nothing. The expected counts are Redis 7.0.15's, checked against it when installed.
#[test]
fn single_element_collection_writes_count_as_changes_as_redis() {
    let script: &[&[&str]] = &[
        &["LPUSH", "l", "a"],
        &["RPUSH", "l", "b"],
        &["LPOP", "l"],
        &["RPOP", "l"],
        &["LPOP", "l"],
        &["SADD", "s", "x"],
        &["SPOP", "s"],
        &["SPOP", "s"],
        &["HSET", "h", "f", "v"],
        &["ZADD", "z", "1", "m"],
        &["ZPOPMIN", "z"],
        &["ZPOPMIN", "z"],
        &["SREM", "s", "y"],
    ];
    let expected = [1, 2, 3, 4, 4, 5, 6, 6, 7, 8, 9, 9, 9];
    let changes = |c: &mut redis::Connection| -> Vec<i64> {
        script
            .iter()
            .map(|cmd| {
                let mut q = redis::cmd(cmd[0]);
                for a in &cmd[1..] {
                    q.arg(*a);
                }
                let _: redis::Value = q.query(c).unwrap();
                let text: String = redis::cmd("INFO").arg("persistence").query(c).unwrap();
                text.lines()
                    .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap()
            })
            .collect()
    };
    let s = Server::start(&["--appendonly", "no"]);
    assert_eq!(changes(&mut s.client()), expected);
    if let Some(real) = RealRedis::start(&["--appendonly", "no"]) {
        assert_eq!(changes(&mut real.client()), expected, "Redis itself");
    }
}
