//! Replication with Redis's protocol: our primary with a real Redis replica, ours with ours,
//! under concurrent writes of every type; then the keyspaces compared key by key (by commands);
//! WAIT, ROLE, INFO replication, partial resynchronization, READONLY, promotion.
//! The tests that need redis-server skip themselves where it is not installed.

mod common;

use std::time::{Duration, Instant};

use common::hand_primary::{HandPrimary, read_command, resp};
use common::{RealRedis, Server};

/// `common::dump_keyspace` without a consumer group's `entries-read` and `lag`: Redis 7.0
/// propagates XREADGROUP as `XCLAIM ... LASTID`, which does not carry the read counter, so a
/// replica (Redis's own included) only knows it from the RDB of its last full sync.
fn dump_keyspace(port: u16) -> std::collections::BTreeMap<(usize, String), String> {
    let mut out = common::dump_keyspace(port);
    for v in out.values_mut() {
        if v.starts_with("stream ") {
            let mut kept = Vec::new();
            let mut skip = false;
            for tok in v.split(' ') {
                if skip {
                    skip = false;
                } else if tok == "entries-read" || tok == "lag" {
                    skip = true;
                } else {
                    kept.push(tok);
                }
            }
            *v = kept.join(" ");
        }
    }
    out
}

fn conn(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap()
}

fn info(port: u16, section: &str) -> String {
    redis::cmd("INFO").arg(section).query::<String>(&mut conn(port)).unwrap()
}

fn field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string()))
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// The replica at `port` reports its link up.
fn wait_link_up(port: u16) {
    wait_for("master_link_status:up", Duration::from_secs(20), || {
        field(&info(port, "replication"), "master_link_status").as_deref() == Some("up")
    });
}

/// Writes of every type from `threads` clients at once: strings, counters, lists, hashes, sets,
/// sorted sets, streams with a group, expiries (short ones that expire meanwhile, long ones that
/// stay), a script, transactions, two databases.
fn write_everything(port: u16, threads: usize, rounds: usize) {
    let _: redis::Value = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("stream")
        .arg("g")
        .arg("$")
        .arg("MKSTREAM")
        .query(&mut conn(port))
        .unwrap_or(redis::Value::Nil);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = conn(port);
                let q = |c: &mut redis::Connection, args: &[&str]| {
                    let mut cmd = redis::cmd(args[0]);
                    for a in &args[1..] {
                        cmd.arg(*a);
                    }
                    let _: redis::Value = cmd.query(c).unwrap();
                };
                for i in 0..rounds {
                    let (ts, is) = (t.to_string(), i.to_string());
                    let k = |p: &str| format!("{p}:{}", i % 7);
                    q(&mut c, &["SET", &format!("s:{t}:{i}"), &is]);
                    q(&mut c, &["INCR", "counter"]);
                    q(&mut c, &["INCRBY", &k("cnt"), &ts]);
                    q(&mut c, &["APPEND", &k("app"), &ts]);
                    q(&mut c, &["RPUSH", &k("list"), &is, &ts]);
                    if i % 3 == 0 {
                        q(&mut c, &["LPOP", &k("list")]);
                    }
                    q(&mut c, &["HSET", &k("hash"), &ts, &is]);
                    q(&mut c, &["HINCRBY", "hcount", &ts, "1"]);
                    q(&mut c, &["SADD", &k("set"), &is]);
                    if i % 4 == 0 {
                        q(&mut c, &["SREM", &k("set"), &(i / 2).to_string()]);
                    }
                    q(&mut c, &["ZADD", &k("zset"), &is, &ts]);
                    q(&mut c, &["ZINCRBY", "zcount", "1.5", &ts]);
                    q(&mut c, &["XADD", "stream", "*", "t", &ts, "i", &is]);
                    if i % 5 == 0 {
                        q(
                            &mut c,
                            &["XREADGROUP", "GROUP", "g", &format!("c{t}"), "COUNT", "2", "STREAMS", "stream", ">"],
                        );
                    }
                    q(&mut c, &["SET", &format!("ttl:{t}:{i}"), "v", "EX", "1000"]);
                    q(&mut c, &["SET", &format!("short:{t}:{i}"), "v", "PX", "30"]);
                    q(&mut c, &["EXPIRE", &k("hash"), "5000"]);
                    q(
                        &mut c,
                        &[
                            "EVAL",
                            "redis.call('INCR', KEYS[1]); return redis.call('LPUSH', KEYS[2], ARGV[1])",
                            "2",
                            "script:n",
                            &k("slist"),
                            &is,
                        ],
                    );
                    let _: () = redis::pipe()
                        .atomic()
                        .cmd("INCR")
                        .arg("tx:n")
                        .ignore()
                        .cmd("SADD")
                        .arg("tx:set")
                        .arg(&ts)
                        .ignore()
                        .cmd("DEL")
                        .arg(k("app"))
                        .ignore()
                        .query(&mut c)
                        .unwrap();
                    q(&mut c, &["SELECT", "5"]);
                    q(&mut c, &["SET", &format!("db5:{t}"), &is]);
                    q(&mut c, &["SELECT", "0"]);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// The keyspaces of the primary and the replica once the replica caught up (WAIT, then the
/// short TTLs passed).
fn assert_same_keyspace(primary: u16, replica: u16, replicas: i64) {
    // WAIT counts the acknowledgements of this connection's own writes (Redis's `c->woff`): a
    // PUBLISH (propagated, no key) puts this connection's offset past every earlier write.
    let mut p = conn(primary);
    let _: i64 = redis::cmd("PUBLISH").arg("wait-marker").arg("x").query(&mut p).unwrap();
    let acked: i64 = redis::cmd("WAIT").arg(replicas).arg(10_000).query(&mut p).unwrap();
    assert_eq!(acked, replicas, "WAIT counts the replicas that acknowledged");
    std::thread::sleep(Duration::from_millis(200));
    // The short TTLs have passed: the primary's DELs reach the replica (WAIT again).
    let _: i64 = redis::cmd("DBSIZE").query(&mut p).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let a = loop {
        let _: i64 = redis::cmd("PUBLISH").arg("wait-marker").arg("x").query(&mut p).unwrap();
        let _: i64 = redis::cmd("WAIT").arg(replicas).arg(1000).query(&mut p).unwrap();
        let (a, b) = (dump_keyspace(primary), dump_keyspace(replica));
        if a == b {
            break a;
        }
        if Instant::now() > deadline {
            let diff: Vec<String> = a
                .iter()
                .filter(|(k, v)| b.get(*k) != Some(*v))
                .map(|(k, v)| format!("{k:?}: primary {v} replica {:?}", b.get(k)))
                .chain(b.keys().filter(|k| !a.contains_key(*k)).map(|k| format!("{k:?}: only on the replica")))
                .take(10)
                .collect();
            panic!("the keyspaces differ ({} vs {} keys):\n{}", a.len(), b.len(), diff.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(a.len() > 100, "the workload wrote keys ({})", a.len());
}

#[test]
fn our_primary_with_a_real_redis_replica_converges_and_resyncs_partially() {
    let primary = Server::start(&["--appendonly", "no"]);
    // Keys before the replica comes: they travel in the full sync's RDB.
    write_everything(primary.port, 2, 50);
    // In a directory of its own: a Redis replica writes the RDB it receives to dump.rdb there.
    let redis_dir = common::temp_dir("redis-replica");
    let Some(replica) = RealRedis::start_in(&redis_dir, &["--replicaof", "127.0.0.1", &primary.port.to_string()])
    else {
        return;
    };
    wait_link_up(replica.port);
    let role: redis::Value = redis::cmd("ROLE").query(&mut conn(primary.port)).unwrap();
    let text = format!("{role:?}");
    assert!(text.contains("master") && text.contains(&replica.port.to_string()), "{text}");
    write_everything(primary.port, 4, 150);
    assert_same_keyspace(primary.port, replica.port, 1);

    // The primary's replication fields, as Redis's.
    let i = info(primary.port, "replication");
    assert_eq!(field(&i, "role").as_deref(), Some("master"));
    assert_eq!(field(&i, "connected_slaves").as_deref(), Some("1"));
    let slave0 = field(&i, "slave0").unwrap();
    assert!(slave0.starts_with(&format!("ip=127.0.0.1,port={},state=online,offset=", replica.port)), "{slave0}");
    let offset: u64 = field(&i, "master_repl_offset").unwrap().parse().unwrap();
    assert!(offset > 0);
    assert_eq!(field(&i, "repl_backlog_active").as_deref(), Some("1"));
    let r = info(replica.port, "replication");
    assert_eq!(field(&r, "master_replid"), field(&i, "master_replid"), "the replica took our id");

    // Close the link: the replica comes back with PSYNC and continues from the backlog.
    let _: redis::Value =
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("master").query(&mut conn(replica.port)).unwrap();
    let mut c = conn(primary.port);
    let _: () = redis::cmd("SET").arg("after-cut").arg("1").query(&mut c).unwrap();
    wait_link_up(replica.port);
    write_everything(primary.port, 2, 30);
    assert_same_keyspace(primary.port, replica.port, 1);
    let stats = info(primary.port, "stats");
    assert_eq!(field(&stats, "sync_full").as_deref(), Some("1"), "{stats}");
    assert_eq!(field(&stats, "sync_partial_ok").as_deref(), Some("1"), "{stats}");

    // The primary drops its replica (CLIENT KILL TYPE replica, as Sentinel does): again partial.
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("replica").query(&mut c).unwrap();
    assert_eq!(killed, 1);
    let _: () = redis::cmd("SET").arg("after-kill").arg("1").query(&mut c).unwrap();
    wait_for("the replica to come back", Duration::from_secs(20), || {
        field(&info(primary.port, "stats"), "sync_partial_ok").as_deref() == Some("2")
    });
    wait_link_up(replica.port);
    assert_same_keyspace(primary.port, replica.port, 1);
    drop(replica);
    let _ = std::fs::remove_dir_all(&redis_dir);
}

#[test]
fn our_primary_with_our_replica_converges_and_the_replica_is_read_only() {
    let primary = Server::start(&["--appendonly", "no"]);
    write_everything(primary.port, 2, 50);
    let _: () = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=lib\nredis.register_function('f', function() return 1 end)")
        .query(&mut conn(primary.port))
        .map(|_: String| ())
        .unwrap();
    let replica = Server::start(&["--appendonly", "yes", "--replicaof", "127.0.0.1", &primary.port.to_string()]);
    wait_link_up(replica.port);
    write_everything(primary.port, 4, 150);
    assert_same_keyspace(primary.port, replica.port, 1);

    let mut r = replica.raw();
    assert_eq!(r.cmds(&["SET", "x", "1"]), b"-READONLY You can't write against a read only replica.\r\n");
    assert_eq!(r.cmds(&["GET", "counter"]), b"$3\r\n700\r\n");
    assert_eq!(
        r.cmds(&["FCALL_RO", "f", "0"]),
        b"-ERR Can not execute a script with write flag using *_ro command.\r\n"
    );
    assert!(r.cmds(&["FUNCTION", "LIST"]).windows(3).any(|w| w == b"lib"), "the library came with the RDB");
    let role = r.cmds(&["ROLE"]);
    let want = format!("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:{}\r\n$9\r\nconnected\r\n:", primary.port);
    assert!(role.starts_with(want.as_bytes()), "{}", String::from_utf8_lossy(&role));
    let i = info(replica.port, "replication");
    assert_eq!(field(&i, "role").as_deref(), Some("slave"));
    assert_eq!(field(&i, "master_port"), Some(primary.port.to_string()));
    assert_eq!(field(&i, "slave_read_only").as_deref(), Some("1"));
    let p = info(primary.port, "replication");
    assert_eq!(field(&i, "slave_repl_offset"), field(&p, "master_repl_offset"), "caught up, offsets agree");
    assert_eq!(field(&i, "master_repl_offset"), field(&p, "master_repl_offset"));
    assert!(r.cmds(&["WAIT", "1", "0"]).starts_with(b"-ERR WAIT cannot be used with replica instances"));
    // Its link to the primary is a `master` client; killed, it comes back with a partial resync.
    assert_eq!(r.cmds(&["CLIENT", "KILL", "TYPE", "master"]), b":1\r\n");
    wait_for("a partial resync", Duration::from_secs(20), || {
        field(&info(primary.port, "stats"), "sync_partial_ok").as_deref() == Some("1")
    });
    wait_link_up(replica.port);
    let i = info(replica.port, "replication");

    // Promotion: a new id, the old one kept as replid2 up to the offset reached.
    let old_id = field(&i, "master_replid").unwrap();
    let offset: u64 = field(&i, "master_repl_offset").unwrap().parse().unwrap();
    assert_eq!(r.cmds(&["REPLICAOF", "NO", "ONE"]), b"+OK\r\n");
    let i = info(replica.port, "replication");
    assert_eq!(field(&i, "role").as_deref(), Some("master"));
    assert_eq!(field(&i, "master_replid2"), Some(old_id.clone()));
    assert_ne!(field(&i, "master_replid"), Some(old_id));
    assert_eq!(field(&i, "second_repl_offset"), Some((offset + 1).to_string()));
    assert_eq!(r.cmds(&["SET", "x", "1"]), b"+OK\r\n");
}

#[test]
fn a_promoted_replica_serves_the_old_primary_partially() {
    let a = Server::start(&["--appendonly", "no"]);
    let b = Server::start(&["--appendonly", "no", "--replicaof", "127.0.0.1", &a.port.to_string()]);
    wait_link_up(b.port);
    write_everything(a.port, 2, 40);
    assert_same_keyspace(a.port, b.port, 1);
    // Fail over by hand: B becomes the primary, A follows it and continues from its history.
    assert_eq!(b.raw().cmds(&["REPLICAOF", "NO", "ONE"]), b"+OK\r\n");
    assert_eq!(a.raw().cmds(&["REPLICAOF", "127.0.0.1", &b.port.to_string()]), b"+OK\r\n");
    wait_link_up(a.port);
    write_everything(b.port, 2, 40);
    assert_same_keyspace(b.port, a.port, 1);
    let stats = info(b.port, "stats");
    assert_eq!(field(&stats, "sync_partial_ok").as_deref(), Some("1"), "{stats}");
    assert_eq!(field(&stats, "sync_full").as_deref(), Some("0"), "{stats}");
}

/// A hand-made replica's `PSYNC ? -1`: reads the `+FULLRESYNC` line and the payload's `$` line.
/// Returns the bytes read so far, where the payload starts in them, and what followed the `$`
/// (a length, or `EOF:<mark>`).
fn psync_from_scratch(c: &mut common::Raw) -> (Vec<u8>, usize, String) {
    use std::io::Read;
    c.send(b"PSYNC ? -1\r\n");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = c.s.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        let lines: Vec<&str> = text.split("\r\n").collect();
        if lines.len() > 2 {
            assert!(lines[0].starts_with("+FULLRESYNC "), "{text}");
            let spec = lines[1].strip_prefix('$').unwrap_or_else(|| panic!("{}", lines[1])).to_string();
            let payload_at = lines[0].len() + lines[1].len() + 4;
            return (got, payload_at, spec);
        }
        assert!(Instant::now() < deadline);
    }
}

#[test]
fn replconf_and_psync_answer_as_redis() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    assert_eq!(c.cmds(&["REPLCONF", "listening-port"]), b"-ERR syntax error\r\n");
    assert_eq!(c.cmds(&["REPLCONF", "bogus", "1"]), b"-ERR Unrecognized REPLCONF option: bogus\r\n");
    assert_eq!(c.cmds(&["REPLCONF", "listening-port", "x"]), b"-ERR value is not an integer or out of range\r\n");
    assert_eq!(c.cmds(&["REPLCONF", "listening-port", "7777", "capa", "eof", "capa", "psync2"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["WAIT", "0", "0"]), b":0\r\n");
    assert_eq!(c.cmds(&["WAIT", "1", "-1"]), b"-ERR timeout is negative\r\n");
    assert_eq!(c.cmds(&["ROLE"]), b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
    assert_eq!(c.cmds(&["REPLICAOF", "NO", "ONE"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["REPLICAOF", "host", "x"]), b"-ERR Invalid master port\r\n");
    assert_eq!(c.cmds(&["REPLICAOF", "host", "65536"]), b"-ERR Invalid master port\r\n");
    assert_eq!(c.cmds(&["REPLCONF", "rdb-only", "2"]), b"-ERR value is out of range, value must between 0 and 1\r\n");
    // A hand-made replica: PSYNC ? -1 gets +FULLRESYNC, an RDB, then the stream with a SELECT.
    // It said `capa eof`, so the RDB comes as Redis's diskless sync sends it: `$EOF:<40-byte
    // mark>`, the payload, the mark.
    let (mut got, payload_at, spec) = psync_from_scratch(&mut c);
    let mark = spec.strip_prefix("EOF:").unwrap_or_else(|| panic!("{spec}")).as_bytes().to_vec();
    assert_eq!(mark.len(), 40);
    let mut buf = [0u8; 4096];
    use std::io::Read;
    let rdb_len = loop {
        if let Some(i) = got[payload_at..].windows(40).position(|w| w == mark) {
            break payload_at + i + 40;
        }
        let n = c.s.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    };
    assert!(got[..rdb_len].windows(9).any(|w| w == b"REDIS0010"));
    assert_eq!(got.len(), rdb_len, "nothing follows the mark before the replica's first ACK");
    // As Redis's `repl_put_online_on_ack`: the stream starts once the replica has said it loaded.
    c.send(b"REPLCONF ACK 0\r\n");
    let mut w = s.raw();
    assert_eq!(w.cmds(&["SELECT", "2"]), b"+OK\r\n");
    assert_eq!(w.cmds(&["SET", "k", "v", "EX", "100"]), b"+OK\r\n");
    // The record as Redis 7.0 propagates it: an absolute time.
    let want = b"*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$4\r\nPXAT\r\n$13\r\n";
    let mut stream = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while stream.len() < want.len() + 15 && Instant::now() < deadline {
        let n = c.s.read(&mut buf).unwrap();
        stream.extend_from_slice(&buf[..n]);
    }
    assert!(stream.starts_with(want), "{}", String::from_utf8_lossy(&stream));
    let i = info(s.port, "replication");
    assert_eq!(field(&i, "connected_slaves").as_deref(), Some("1"));
    assert!(field(&i, "slave0").unwrap().starts_with("ip=127.0.0.1,port=7777,state=online,offset=0,lag="));
}

#[test]
fn our_replica_of_a_real_redis_primary_converges_and_survives_a_restart() {
    let redis_dir = common::temp_dir("redis-primary");
    let Some(primary) = RealRedis::start_in(&redis_dir, &["--repl-diskless-sync-delay", "0"]) else { return };
    write_everything(primary.port, 2, 50);
    let dir = common::temp_dir("repl-of-redis");
    let mut replica =
        Server::start_in(dir, &["--appendonly", "no", "--replicaof", "127.0.0.1", &primary.port.to_string()]);
    wait_link_up(replica.port);
    write_everything(primary.port, 4, 100);
    assert_same_keyspace(primary.port, replica.port, 1);
    let r = info(replica.port, "replication");
    let p = info(primary.port, "replication");
    assert_eq!(field(&r, "master_replid"), field(&p, "master_replid"));
    assert_eq!(field(&r, "slave_repl_offset"), field(&p, "master_repl_offset"));

    // Killed mid-stream and restarted: it syncs again (fully: the process lost its replication
    // state) and converges while the primary goes on writing.
    let writer = std::thread::spawn({
        let port = primary.port;
        move || write_everything(port, 2, 100)
    });
    std::thread::sleep(Duration::from_millis(50));
    replica.kill9();
    replica.restart();
    writer.join().unwrap();
    wait_link_up(replica.port);
    assert_same_keyspace(primary.port, replica.port, 1);
    drop(primary);
    let _ = std::fs::remove_dir_all(&redis_dir);
}

#[test]
fn min_replicas_and_stale_data_refuse_as_redis() {
    let primary = Server::start(&[]);
    let mut c = primary.raw();
    assert_eq!(c.cmds(&["CONFIG", "SET", "min-replicas-to-write", "1"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["SET", "k", "v"]), b"-NOREPLICAS Not enough good replicas to write.\r\n");
    assert_eq!(c.cmds(&["GET", "k"]), b"$-1\r\n", "reads are served");
    let i = info(primary.port, "replication");
    assert_eq!(field(&i, "min_slaves_good_slaves").as_deref(), Some("0"));
    let replica = Server::start(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    wait_link_up(replica.port);
    wait_for("a good replica", Duration::from_secs(10), || c.cmds(&["SET", "k", "v"]) == b"+OK\r\n");
    assert_eq!(field(&info(primary.port, "replication"), "min_slaves_good_slaves").as_deref(), Some("1"));

    // A replica whose link is down, with replica-serve-stale-data no: only `stale` commands.
    let mut r = replica.raw();
    wait_for("the SET on the replica", Duration::from_secs(10), || r.cmds(&["GET", "k"]) == b"$1\r\nv\r\n");
    assert_eq!(r.cmds(&["CONFIG", "SET", "replica-serve-stale-data", "no"]), b"+OK\r\n");
    assert_eq!(r.cmds(&["REPLICAOF", "127.0.0.1", "1"]), b"+OK\r\n");
    let masterdown = b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n";
    assert_eq!(r.cmds(&["GET", "k"]), masterdown);
    assert_eq!(r.cmds(&["PING"]), masterdown);
    assert!(r.cmds(&["INFO", "replication"]).windows(21).any(|w| w == b"master_link_status:do"));
    assert_eq!(r.cmds(&["CONFIG", "SET", "replica-serve-stale-data", "yes"]), b"+OK\r\n");
    assert_eq!(r.cmds(&["GET", "k"]), b"$1\r\nv\r\n");
    let role = r.cmds(&["ROLE"]);
    assert!(role.starts_with(b"*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:1\r\n"), "{}", String::from_utf8_lossy(&role));
}

/// A replica that did not say `capa eof` (or a primary with `repl-diskless-sync no`) gets the RDB
/// as one `$<len>` bulk, as Redis sends it from disk.
#[test]
fn a_replica_without_capa_eof_gets_the_rdb_with_its_length() {
    use std::io::Read;
    for (flags, capa) in [(&[][..], false), (&["--repl-diskless-sync", "no"][..], true)] {
        let s = Server::start(flags);
        let mut c = s.raw();
        if capa {
            assert_eq!(c.cmds(&["REPLCONF", "capa", "eof"]), b"+OK\r\n");
        }
        let (mut got, payload_at, spec) = psync_from_scratch(&mut c);
        let len: usize = spec.parse().unwrap_or_else(|_| panic!("{spec}"));
        let total = payload_at + len;
        let mut buf = [0u8; 4096];
        while got.len() < total {
            let n = c.s.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        let payload = &got[payload_at..total];
        assert!(payload.starts_with(b"REDIS0010"), "{:?}", &payload[..payload.len().min(16)]);
        assert_eq!(payload[payload.len() - 9], 0xff, "the RDB ends with EOF and its checksum");
    }
}

/// PUBLISH inside MULTI/EXEC or a script reaches the replicas at its place in the transaction's
/// block (Redis's `also_propagate` keeps one order for writes and PUBLISH), never before it, and
/// never reaches the AOF; SPUBLISH is propagated as PUBLISH is (no cluster mode).
#[test]
fn publish_inside_a_transaction_or_script_is_propagated_in_its_place() {
    use std::io::Read;
    let s = Server::start(&["--appendonly", "yes"]);
    let mut c = s.raw();
    let (mut got, payload_at, spec) = psync_from_scratch(&mut c);
    let len: usize = spec.parse().unwrap_or_else(|_| panic!("{spec}"));
    let mut buf = [0u8; 4096];
    while got.len() < payload_at + len {
        let n = c.s.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    let mut stream = got.split_off(payload_at + len);
    c.send(b"REPLCONF ACK 0\r\n");
    let mut w = s.raw();
    for cmd in [&["MULTI"][..], &["SET", "a", "1"], &["PUBLISH", "ch", "m1"], &["SET", "b", "2"]] {
        w.cmds(cmd);
    }
    assert!(w.cmds(&["EXEC"]).starts_with(b"*3\r\n"));
    let script = "redis.call('set','c','3') redis.call('publish','ch','m2') redis.call('set','d','4')";
    assert_eq!(w.cmds(&["EVAL", script, "0"]), b"$-1\r\n");
    // A transaction that only publishes: the PUBLISH alone, as Redis (one op, no MULTI).
    w.cmds(&["MULTI"]);
    w.cmds(&["SPUBLISH", "sh", "m3"]);
    assert_eq!(w.cmds(&["EXEC"]), b"*1\r\n:0\r\n");
    w.cmds(&["SET", "last", "5"]);
    let names = |stream: &[u8]| -> Vec<String> {
        common::aof_commands(stream)
            .into_iter()
            .map(|argv| argv.iter().map(|a| String::from_utf8_lossy(a).to_lowercase()).collect::<Vec<_>>().join(" "))
            .filter(|c| c != "ping")
            .collect()
    };
    let want = [
        "select 0",
        "multi",
        "set a 1",
        "publish ch m1",
        "set b 2",
        "exec",
        "multi",
        "set c 3",
        "publish ch m2",
        "set d 4",
        "exec",
        "spublish sh m3",
        "set last 5",
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stream.ends_with(b"last\r\n$1\r\n5\r\n") && Instant::now() < deadline {
        let n = c.s.read(&mut buf).unwrap();
        stream.extend_from_slice(&buf[..n]);
    }
    assert_eq!(names(&stream), want, "{}", String::from_utf8_lossy(&stream));
    let aof = names(&std::fs::read(s.dir.join("appendonly.aof")).unwrap());
    assert!(!aof.iter().any(|c| c.contains("publish")), "{aof:?}");
    assert!(aof.iter().any(|c| c == "set d 4"), "{aof:?}");
}

/// A chain: a hand-made primary P, our replica B, and C, a replica of B. C's full sync from B (and
/// so its snapshot point) falls while B has applied P's `MULTI` and queued part of the block: C
/// must get the whole transaction, not its tail without the head (B's offset, the backlog it
/// proxies and the point of a full sync stand at the block's start until its EXEC is processed).
#[test]
fn a_full_sync_served_mid_transaction_carries_the_whole_transaction() {
    use std::io::Write;
    let p = HandPrimary::bind();
    let b = Server::start(&["--appendonly", "no", "--replicaof", "127.0.0.1", &p.port.to_string()]);
    // The handshake, then PSYNC answered as a primary with an empty dataset.
    let (mut to_b, mut from_b, _) = p.accept();
    let mut rdb = Vec::new();
    let nothing: &[flurrydb::db::SnapshotEntry] = &[];
    flurrydb::rdb::write_rdb(&mut rdb, nothing, &flurrydb::rdb::Aux::default()).unwrap();
    let id = "a".repeat(40);
    to_b.write_all(format!("+FULLRESYNC {id} 0\r\n${}\r\n", rdb.len()).as_bytes()).unwrap();
    to_b.write_all(&rdb).unwrap();
    // B's ACKs are read and dropped, so its link never stalls.
    std::thread::spawn(move || while read_command(&mut from_b).is_some() {});
    wait_link_up(b.port);
    let head =
        [resp(&["SELECT", "0"]), resp(&["SET", "before", "1"]), resp(&["MULTI"]), resp(&["SET", "a", "1"])].concat();
    to_b.write_all(&head).unwrap();
    wait_for("B to apply SET before", Duration::from_secs(10), || {
        redis::cmd("GET").arg("before").query::<Option<String>>(&mut conn(b.port)).unwrap().is_some()
    });
    std::thread::sleep(Duration::from_millis(200)); // B has queued SET a inside the block
    let offset_before_block = resp(&["SELECT", "0"]).len() + resp(&["SET", "before", "1"]).len();
    let i = info(b.port, "replication");
    assert_eq!(
        field(&i, "master_repl_offset"),
        Some(offset_before_block.to_string()),
        "B's offset stops at the open block's start: {i}"
    );
    let c = Server::start(&["--appendonly", "no", "--replicaof", "127.0.0.1", &b.port.to_string()]);
    wait_link_up(c.port);
    to_b.write_all(&[resp(&["SET", "b", "2"]), resp(&["EXEC"]), resp(&["SET", "after", "3"])].concat()).unwrap();
    for port in [b.port, c.port] {
        wait_for("the writes after the block", Duration::from_secs(10), || {
            redis::cmd("GET").arg("after").query::<Option<String>>(&mut conn(port)).unwrap().is_some()
        });
        let got: Vec<Option<String>> =
            redis::cmd("MGET").arg(&["before", "a", "b", "after"]).query(&mut conn(port)).unwrap();
        let want = ["1", "1", "2", "3"].map(|v| Some(v.to_string())).to_vec();
        assert_eq!(got, want, "keyspace of the server on port {port}");
    }
    let total = head.len() + [resp(&["SET", "b", "2"]), resp(&["EXEC"]), resp(&["SET", "after", "3"])].concat().len();
    assert_eq!(field(&info(b.port, "replication"), "master_repl_offset"), Some(total.to_string()));
}
