//! INFO persistence `rdb_changes_since_last_save` (Redis's `server.dirty`, what the `save <seconds>
//! <changes>` schedules compare with) against a real redis-server 7.0: every write command family,
//! with several elements, no-op and error cases, inside MULTI/EXEC and scripts, and a blocked client
//! served by a push; after each command both servers must report the same count (and the same
//! reply). Skipped when redis-server is not installed (CI runs it with one).
#![cfg(not(feature = "loom"))]

mod common;

use common::{Raw, RealRedis, Server, s, send};

fn changes(c: &mut Raw) -> u64 {
    let info = s(c.cmds(&["INFO", "persistence"]));
    let Some(line) = info.lines().find(|l| l.starts_with("rdb_changes_since_last_save:")) else {
        panic!("no rdb_changes_since_last_save in {info:?}")
    };
    line["rdb_changes_since_last_save:".len()..].trim().parse().unwrap()
}

/// A command line: split on `|` when it has one (scripts), else on spaces.
fn args(line: &str) -> Vec<&str> {
    if line.contains('|') { line.split('|').collect() } else { line.split(' ').collect() }
}

/// Run `lines` on both servers (`r`, `o`: their ports); every reply and the count after each
/// (read on another connection: inside MULTI it would be queued) must be equal. Returns the
/// mismatches as text (all of them, to see every family at once).
fn compare(rp: u16, op: u16, lines: &[&str]) -> Vec<String> {
    let (mut r, mut o) = (Server::raw_to(rp), Server::raw_to(op));
    let (mut ri, mut oi) = (Server::raw_to(rp), Server::raw_to(op));
    let mut bad = Vec::new();
    let (mut rprev, mut oprev) = (changes(&mut ri), changes(&mut oi));
    for line in lines {
        let a = args(line);
        let (rr, or) = (s(r.cmds(&a)), s(o.cmds(&a)));
        // Random picks (SPOP, SRANDMEMBER ...) differ; their counts must not.
        if rr != or && !line.starts_with("SPOP") && !line.starts_with("SRANDMEMBER") {
            bad.push(format!("{line}: reply ours {or:?} redis {rr:?}"));
        }
        // What each command added (one difference is reported once).
        let (rc, oc) = (changes(&mut ri), changes(&mut oi));
        if rc - rprev != oc - oprev {
            bad.push(format!("{line}: changes ours +{} redis +{}", oc - oprev, rc - rprev));
        }
        (rprev, oprev) = (rc, oc);
    }
    bad
}

const LINES: &[&str] = &[
    // Strings.
    "SET s1 a",
    "SET s1 b NX",
    "SET s1 c XX",
    "SET s9 c XX",
    "SET s1 d GET",
    "SET s1 e EX 100",
    "SET s1 f KEEPTTL",
    "SET s1 g PX 0",
    "SETNX s1 x",
    "SETNX s2 x",
    "SETEX s3 100 v",
    "PSETEX s4 100000 v",
    "GETSET s2 y",
    "GETSET s5 y",
    "GETDEL s5",
    "GETDEL s5",
    "GETEX s2",
    "GETEX s2 EX 100",
    "GETEX s2 PERSIST",
    "GETEX s2 PERSIST",
    "GETEX nokey EX 100",
    "MSET m1 a m2 b m3 c",
    "MSET m1 a m1 b",
    "MSETNX m1 a m9 b",
    "MSETNX m8 a m9 b",
    "INCR n1",
    "INCRBY n1 5",
    "DECR n1",
    "DECRBY n1 2",
    "INCRBYFLOAT n1 1.5",
    "INCR s1",
    "APPEND s2 zz",
    "APPEND s6 zz",
    "SETRANGE s2 1 qq",
    "SETRANGE|s7|0|",
    "SETRANGE|s2|0|",
    "SETRANGE s7 2 x",
    "GET s1",
    // Bitmaps, HyperLogLog.
    "SETBIT b1 7 1",
    "SETBIT b1 7 1",
    "SETBIT b1 100 0",
    "BITOP OR b2 b1 s9",
    "BITOP OR b3 s8 s9",
    "BITOP AND b1 s8 s9",
    "BITFIELD bf SET u8 0 200 INCRBY u8 0 10 GET u8 0",
    "BITFIELD bf OVERFLOW FAIL INCRBY u8 0 250",
    "BITFIELD_RO bf GET u8 0",
    "PFADD h1 a b c",
    "PFADD h1 a b c",
    "PFADD h2",
    "PFADD h2",
    "PFCOUNT h1",
    "PFCOUNT h1",
    "PFADD h1 d",
    "PFCOUNT h1 h2",
    "PFMERGE h3 h1 h2",
    "PFMERGE h3",
    // Lists.
    "LPUSH l1 a b c",
    "RPUSH l1 d e",
    "LPUSHX l9 a b",
    "RPUSHX l1 f g",
    "LINSERT l1 BEFORE a x",
    "LINSERT l1 BEFORE zz x",
    "LSET l1 0 y",
    "LSET l1 100 y",
    "LREM l1 0 x",
    "LREM l1 0 a",
    "LREM l1 0 nope",
    "LTRIM l1 1 -2",
    "LTRIM l1 0 -1",
    "LPOP l1",
    "RPOP l1 2",
    "LPOP l9",
    "LPOP l1 0",
    "RPUSH l2 1 2 3 4 5",
    "LMOVE l2 l3 LEFT RIGHT",
    "LMOVE l9 l3 LEFT RIGHT",
    "RPOPLPUSH l2 l2",
    "LMPOP 2 l9 l2 LEFT COUNT 2",
    "BLPOP l2 0.01",
    "BLMPOP 0.01 1 l2 RIGHT COUNT 5",
    "BRPOPLPUSH l3 l4 0.01",
    "LPUSH s1 x",
    // Hashes.
    "HSET hh a 1 b 2 c 3",
    "HSET hh a 1 b 5 d 4",
    "HMSET hh a 1 e 2",
    "HSETNX hh a 9",
    "HSETNX hh z 9",
    "HINCRBY hh a 3",
    "HINCRBYFLOAT hh a 1.5",
    "HINCRBY hh nope 0",
    "HDEL hh a b nope",
    "HDEL hh nope",
    "HDEL hh c d e z",
    "HSET s1 a b",
    // Sets.
    "SADD st a b c",
    "SADD st a b d e",
    "SADD st a",
    "SREM st a x",
    "SREM st x",
    "SMOVE st st2 b",
    "SMOVE st st2 b",
    "SADD st b",
    "SMOVE st st2 b",
    "SMOVE st st2 nope",
    "SPOP st",
    "SADD st a b c d e f",
    "SPOP st 2",
    "SPOP st 100",
    "SPOP st 3",
    "SADD sa a b c",
    "SADD sb b c d",
    "SINTERSTORE sd sa sb",
    "SINTERSTORE sd sa nokey",
    "SINTERSTORE sd sa nokey",
    "SUNIONSTORE sd sa sb",
    "SDIFFSTORE sd sa sb",
    "SDIFFSTORE sd sa sa",
    "SDIFFSTORE sd sa sa",
    "SRANDMEMBER sa",
    // Sorted sets.
    "ZADD z 1 a 2 b 3 c",
    "ZADD z 1 a 5 b 4 d",
    "ZADD z NX 9 a 9 e",
    "ZADD z XX 9 a 9 f",
    "ZADD z XX CH 9 a 10 b",
    "ZADD z GT 1 a",
    "ZADD z INCR 2 a",
    "ZINCRBY z 1 b",
    "ZINCRBY z 1 nb",
    "ZREM z a nope",
    "ZREM z nope",
    "ZADD z 1 m1 2 m2 3 m3 4 m4",
    "ZREMRANGEBYSCORE z 1 2",
    "ZREMRANGEBYRANK z 0 0",
    "ZREMRANGEBYLEX z - +",
    "ZREMRANGEBYLEX z - +",
    "ZADD za 1 a 2 b 3 c",
    "ZADD zb 1 b 2 c 3 d",
    "ZUNIONSTORE zu 2 za zb",
    "ZINTERSTORE zu 2 za zb",
    "ZDIFFSTORE zu 2 za za",
    "ZDIFFSTORE zu 2 za za",
    "ZRANGESTORE zr za 0 -1",
    "ZRANGESTORE zr za 5 10",
    "ZRANGESTORE zr za 5 10",
    "ZPOPMIN za",
    "ZPOPMAX zb 2",
    "ZPOPMIN nokey 3",
    "ZADD zc 1 a 2 b 3 c 4 d",
    "ZMPOP 1 zc MIN COUNT 2",
    "BZPOPMIN zc 0.01",
    "BZMPOP 0.01 2 zx zc MAX COUNT 5",
    "ZADD s1 1 a",
    // Geo.
    "GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
    "GEOADD g 13.361389 38.115556 Palermo",
    "GEOADD g CH 13.5 38.1 Palermo",
    "GEOSEARCHSTORE gs g FROMLONLAT 15 37 BYRADIUS 200 km",
    "GEOSEARCHSTORE gs g FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST",
    "GEOSEARCHSTORE gs g FROMLONLAT 0 0 BYRADIUS 1 km",
    "GEOSEARCHSTORE gs g FROMLONLAT 0 0 BYRADIUS 1 km",
    "GEORADIUS g 15 37 200 km STORE gs",
    "GEORADIUSBYMEMBER g Palermo 200 km STOREDIST gs",
    // Sort.
    "RPUSH sl 3 1 2",
    "SORT sl STORE so",
    "SORT nokey STORE so",
    "SORT nokey STORE so",
    // Streams.
    "XADD x 1-1 f v",
    "XADD x 2-1 f v g w",
    "XADD x 1-1 f v",
    "XADD x NOMKSTREAM 3-1 f v",
    "XADD xn NOMKSTREAM 3-1 f v",
    "XADD x MAXLEN 2 4-1 f v",
    "XGROUP CREATE x g1 0",
    "XGROUP CREATE x g1 0",
    "XGROUP CREATE xm g1 $ MKSTREAM",
    "XGROUP CREATECONSUMER x g1 c1",
    "XGROUP CREATECONSUMER x g1 c1",
    "XREADGROUP GROUP g1 c2 COUNT 10 STREAMS x >",
    "XREADGROUP GROUP g1 c2 COUNT 10 STREAMS x >",
    "XREADGROUP GROUP g1 c2 COUNT 10 STREAMS x 0",
    "XACK x g1 2-1 4-1 9-9",
    "XACK x g1 2-1",
    "XADD x 4-2 f v",
    "XADD x 4-3 f v",
    "XREADGROUP GROUP g1 c2 STREAMS x >",
    "XACK x g1 4-2 4-3 4-2",
    "XADD x 5-1 f v",
    "XADD x 6-1 f v",
    "XREADGROUP GROUP g1 c1 STREAMS x >",
    "XCLAIM x g1 c3 0 5-1 6-1",
    "XCLAIM x g1 c3 0 5-1 JUSTID",
    "XCLAIM x g1 c4 999999999 5-1",
    "XAUTOCLAIM x g1 c5 0 0-0 COUNT 1",
    "XAUTOCLAIM x g1 c5 0 0-0 COUNT 10 JUSTID",
    "XGROUP DELCONSUMER x g1 c5",
    "XGROUP DELCONSUMER x g1 c9",
    "XGROUP SETID x g1 0",
    "XSETID x 10-1",
    "XDEL x 5-1 9-9",
    "XDEL x 9-9",
    "XTRIM x MAXLEN 1",
    "XTRIM x MAXLEN 1",
    "XGROUP DESTROY x g1",
    "XGROUP DESTROY x g1",
    // Keys.
    "DEL s1 s2 nokey",
    "DEL nokey",
    "UNLINK s3 s4 nokey",
    "EXPIRE m1 100",
    "EXPIRE nokey 100",
    "EXPIRE m1 100 NX",
    "PEXPIRE m1 100000 XX",
    "EXPIREAT m1 4000000000",
    "PEXPIREAT m1 4000000000000",
    "PERSIST m1",
    "PERSIST m1",
    "EXPIRE m2 -1",
    "EXPIRE m1 100 GT LT",
    "RENAME m3 m30",
    "RENAME m3 m30",
    "RENAMENX m30 n1",
    "RENAMENX m30 m31",
    "COPY m31 m32",
    "COPY m31 m32",
    "COPY m31 m32 REPLACE",
    "MOVE m32 1",
    "MOVE m32 1",
    "SWAPDB 0 1",
    "SWAPDB 0 1",
    "DUMP nokey",
    "TOUCH m31",
    "SELECT 3",
    "SET a 1",
    "SET b 1",
    "FLUSHDB",
    "FLUSHDB",
    "SELECT 0",
    "FLUSHALL",
    "FLUSHALL",
    // Transactions and scripts: each command counts as it would alone.
    "MULTI",
    "SADD t a b c",
    "SADD t a",
    "DEL t nokey",
    "INCR tn",
    "EXEC",
    "MULTI",
    "SET tq 1",
    "LPUSH tq x",
    "EXEC",
    "EVAL|redis.call('sadd',KEYS[1],'a','b','c'); redis.call('sadd',KEYS[1],'a'); return redis.call('del',KEYS[1],'nokey')|1|ev",
    "EVAL|return redis.call('get',KEYS[1])|1|ev",
    "EVAL|redis.call('rpush',KEYS[1],'a','b'); return redis.pcall('incr',KEYS[1])|1|ev",
    "FUNCTION LOAD|#!lua name=lib1\nredis.register_function('f1', function(keys, args) return redis.call('hset', keys[1], 'a', 1, 'b', 2) end)",
    "FUNCTION LOAD|#!lua name=lib1\nredis.register_function('f1', function(keys, args) return 1 end)",
    "FCALL|f1|1|fk",
    "FUNCTION DELETE lib1",
    "FUNCTION DELETE lib1",
    "FUNCTION FLUSH",
    "FLUSHALL",
];

#[test]
fn changes_since_last_save_equal_redis() {
    let Some(real) = RealRedis::start_in(&common::temp_dir("dirty-ref"), &["--appendonly", "no"]) else { return };
    let ours = Server::start(&["--appendonly", "no"]);
    let bad = compare(real.port, ours.port, LINES);
    assert!(bad.is_empty(), "{} differences:\n{}", bad.len(), bad.join("\n"));
}

/// The same list with the AOF on (records are built then; the count must not change with it).
#[test]
fn changes_since_last_save_equal_redis_with_aof() {
    let Some(real) = RealRedis::start_in(&common::temp_dir("dirty-ref"), &["--appendonly", "no"]) else { return };
    let ours = Server::start(&["--appendonly", "yes"]);
    let bad = compare(real.port, ours.port, LINES);
    assert!(bad.is_empty(), "{} differences:\n{}", bad.len(), bad.join("\n"));
}

/// A client blocked on a list, a sorted set and a stream group, served by another client's push:
/// the push and the served pop count as Redis counts them.
#[test]
fn served_blocked_clients_count_as_redis() {
    let Some(real) = RealRedis::start_in(&common::temp_dir("dirty-ref"), &["--appendonly", "no"]) else { return };
    let ours = Server::start(&["--appendonly", "no"]);
    let mut bad = Vec::new();
    for (block, push) in [
        ("BLPOP bl 0", "RPUSH bl a b c"),
        ("BLMOVE bl2 bl3 LEFT LEFT 0", "RPUSH bl2 a b"),
        ("BLMPOP 0 1 bl4 LEFT COUNT 2", "RPUSH bl4 a b c"),
        ("BZPOPMIN bz 0", "ZADD bz 1 a 2 b"),
        ("BZMPOP 0 1 bz2 MIN COUNT 5", "ZADD bz2 1 a 2 b"),
        ("XREADGROUP GROUP g c BLOCK 0 STREAMS bx >", "XADD bx 1-1 f v"),
    ] {
        let mut counts = Vec::new();
        for port in [real.port, ours.port] {
            let mut c = Server::raw_to(port);
            if block.contains("bx") {
                let _ = c.cmds(&["XGROUP", "CREATE", "bx", "g", "$", "MKSTREAM"]);
            }
            let mut b = Server::raw_to(port);
            send(&mut b, &args(block));
            common::wait_blocked(&mut c, 1);
            let _ = c.cmds(&args(push));
            let _ = b.reply();
            counts.push(changes(&mut c));
        }
        if counts[0] != counts[1] {
            bad.push(format!("{block} / {push}: ours {} redis {}", counts[1], counts[0]));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// INFO field `name` of `section` as text.
fn info_field(c: &mut Raw, section: &str, name: &str) -> String {
    let info = s(c.cmds(&["INFO", section]));
    let prefix = format!("{name}:");
    info.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_default().trim().to_string()
}

/// Wait until the replica on `c` is linked and has applied the primary's stream up to `offset`.
fn wait_synced(c: &mut Raw, offset: Option<&str>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let up = info_field(c, "replication", "master_link_status") == "up";
        if up && offset.is_none_or(|o| info_field(c, "replication", "slave_repl_offset") == o) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "replica never synced");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A real redis-server replica and ours, of one real primary: a full sync (disk, then diskless
/// swapdb and on-empty-db) and the commands they apply from the stream (an expired key's DEL among
/// them) count as the real replica counts them.
#[test]
fn replicas_count_as_redis_replicas() {
    let Some(primary) = RealRedis::start_in(
        &common::temp_dir("dirty-primary"),
        &["--appendonly", "no", "--repl-diskless-sync-delay", "0"],
    ) else {
        return;
    };
    let Some(real) = RealRedis::start_in(&common::temp_dir("dirty-replica"), &["--appendonly", "no"]) else { return };
    let ours = Server::start(&["--appendonly", "no"]);
    let mut p = primary.raw();
    for line in [
        "SADD s a b c",
        "HSET h a 1 b 2",
        "FUNCTION LOAD|#!lua name=l\nredis.register_function('f', function() return 1 end)",
    ] {
        let _ = p.cmds(&args(line));
    }
    let port = primary.port.to_string();
    let mut bad = Vec::new();
    let mut replicas = [Server::raw_to(real.port), Server::raw_to(ours.port)];
    let step = |replicas: &mut [Raw; 2], p: &mut Raw, what: &str, run: &mut dyn FnMut(&mut Raw, &mut Raw)| {
        let before = [changes(&mut replicas[0]), changes(&mut replicas[1])];
        let [r, o] = replicas;
        run(r, p);
        run(o, p);
        let offset = info_field(p, "replication", "master_repl_offset");
        for c in replicas.iter_mut() {
            wait_synced(c, Some(&offset));
        }
        let after = [changes(&mut replicas[0]), changes(&mut replicas[1])];
        (after[0] - before[0] != after[1] - before[1])
            .then(|| format!("{what}: ours +{} redis +{}", after[1] - before[1], after[0] - before[0]))
    };
    bad.extend(step(&mut replicas, &mut p, "full sync from disk", &mut |c, _| {
        let _ = c.cmds(&["REPLICAOF", "127.0.0.1", &port]);
        wait_synced(c, None);
    }));
    // The stream: commands sent to the primary once, applied by both replicas.
    let before = [changes(&mut replicas[0]), changes(&mut replicas[1])];
    for line in [
        "SADD s c d e",
        "HSET h a 1 b 3 c 4",
        "DEL s nokey",
        "SET k v PX 50",
        "LPUSH l a b c",
        "RPOP l 2",
        "MSET a 1 b 2",
    ] {
        let _ = p.cmds(&args(line));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    // The primary expires `k`: its DEL reaches the replicas, which count it as a DEL.
    let _ = p.cmds(&["GET", "k"]);
    let offset = info_field(&mut p, "replication", "master_repl_offset");
    for c in replicas.iter_mut() {
        wait_synced(c, Some(&offset));
    }
    let after = [changes(&mut replicas[0]), changes(&mut replicas[1])];
    if after[0] - before[0] != after[1] - before[1] {
        bad.push(format!("the stream: ours +{} redis +{}", after[1] - before[1], after[0] - before[0]));
    }
    for mode in ["swapdb", "on-empty-db"] {
        bad.extend(step(&mut replicas, &mut p, mode, &mut |c, _| {
            let _ = c.cmds(&["CONFIG", "SET", "repl-diskless-load", mode]);
            let _ = c.cmds(&["REPLICAOF", "NO", "ONE"]);
            if mode == "on-empty-db" {
                let _ = c.cmds(&["FLUSHALL"]);
            }
            let _ = c.cmds(&["REPLICAOF", "127.0.0.1", &port]);
            wait_synced(c, None);
        }));
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// With save points set, FLUSHALL saves the empty dataset at once (Redis's
/// `flushAllDataAndResetRDB`): the count is back to 0 and the file is there; FLUSHDB does not save.
#[test]
fn flushall_with_save_points_saves() {
    let rdir = common::temp_dir("dirty-save-ref");
    let Some(real) = RealRedis::start_in(&rdir, &["--appendonly", "no", "--save", "3600 1"]) else { return };
    let ours = Server::start(&["--appendonly", "no", "--save", "3600 1"]);
    for (port, dir) in [(real.port, &rdir), (ours.port, &ours.dir)] {
        let mut c = Server::raw_to(port);
        let _ = c.cmds(&["MSET", "a", "1", "b", "2"]);
        let _ = c.cmds(&["FLUSHDB"]);
        assert_eq!(changes(&mut c), 4, "port {port}");
        let _ = c.cmds(&["MSET", "a", "1", "b", "2"]);
        assert_eq!(s(c.cmds(&["FLUSHALL"])), "+OK\r\n");
        assert_eq!(changes(&mut c), 0, "port {port}");
        assert!(dir.join("dump.rdb").exists(), "port {port}");
        assert_eq!(info_field(&mut c, "persistence", "rdb_saves"), "0", "port {port}");
    }
}

/// An evicted key's DEL counts no change (Redis's `performEvictions` propagates it, nothing more):
/// after SETs that overflow maxmemory, the count is the number of SETs.
#[test]
fn evictions_count_nothing() {
    let ours = Server::start(&["--appendonly", "no", "--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = ours.raw();
    let v = "v".repeat(1000);
    let before = changes(&mut c);
    let mut sets = 0;
    while info_field(&mut c, "stats", "evicted_keys") == "0" {
        for _ in 0..100 {
            assert_eq!(s(c.cmds(&["SET", &format!("key:{sets}"), &v])), "+OK\r\n");
            sets += 1;
        }
        assert!(sets < 1_000_000, "nothing was evicted");
    }
    assert_eq!(changes(&mut c) - before, sets);
}
