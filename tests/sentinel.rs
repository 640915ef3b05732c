//! Redis Sentinel 7.0 (`redis-server CONF --sentinel`) failing over three flurrydb nodes: the
//! primary is killed, the sentinels promote a replica, the other replica follows it, the old
//! primary restarted becomes a replica, the sentinels answer the new address, no write that
//! `WAIT 1` acknowledged is lost, and every node converges to the same keyspace. Plus what
//! Sentinel relies on, checked directly: PUBLISH reaching a replica's subscribers, CONFIG
//! REWRITE writing the live `replicaof`. Skips itself where redis-server is not installed.

mod common;

use common::fixed::{Node, Proc, conn, field, free_port, try_query, wait_for};

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn have_redis() -> bool {
    Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success())
}

struct Sentinel {
    _proc: Proc,
    port: u16,
}

impl Sentinel {
    fn start(dir: &Path, primary: u16) -> Sentinel {
        let port = free_port();
        std::fs::create_dir_all(dir).unwrap();
        let conf = dir.join("sentinel.conf");
        let mut f = std::fs::File::create(&conf).unwrap();
        // down-after 2000 ms, not 1000: Sentinel pings an instance once a second (at most) and counts
        // a new link's silence from its creation, so with 1000 ms a sentinel that has just switched
        // to the promoted replica can find it down before its first PING is answered, and fail over
        // a second time (seen once in CI: the old primary then followed the second winner).
        write!(
            f,
            "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {primary} 2\n\
             sentinel down-after-milliseconds mymaster 2000\nsentinel failover-timeout mymaster 5000\n\
             sentinel parallel-syncs mymaster 1\n",
            dir.display()
        )
        .unwrap();
        drop(f);
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let s = Sentinel { _proc: Proc { child: Some(child) }, port };
        wait_for("the sentinel to answer PING", Duration::from_secs(10), || {
            try_query::<String>(port, &["PING"]).as_deref() == Some("PONG")
        });
        s
    }

    /// `SENTINEL get-master-addr-by-name mymaster`'s port.
    fn primary_port(&self) -> Option<u16> {
        let addr: Vec<String> = try_query(self.port, &["SENTINEL", "get-master-addr-by-name", "mymaster"])?;
        addr.get(1)?.parse().ok()
    }

    /// A field of `SENTINEL master mymaster`.
    fn master_field(&self, name: &str) -> Option<String> {
        let flat: Vec<String> = try_query(self.port, &["SENTINEL", "master", "mymaster"])?;
        flat.chunks(2).find(|p| p[0] == name).map(|p| p[1].clone())
    }
}

fn sentinel_logs(root: &Path) -> String {
    let mut out = String::new();
    for i in 0..3 {
        let log = std::fs::read_to_string(root.join(format!("s{i}/log"))).unwrap_or_default();
        out.push_str(&format!("--- sentinel {i}\n"));
        for l in log.lines().filter(|l| l.contains(" # ") || l.contains("+slave") || l.contains("+sentinel")) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

#[test]
fn sentinel_fails_over_three_flurrydb_nodes() {
    if !have_redis() {
        eprintln!("redis-server not installed: skipped");
        return;
    }
    let started = Instant::now();
    let root = common::temp_dir("sentinel");
    let mut nodes = vec![Node::start(&root.join("n0"), None, "")];
    let p0 = nodes[0].port;
    nodes.push(Node::start(&root.join("n1"), Some(p0), ""));
    nodes.push(Node::start(&root.join("n2"), Some(p0), ""));
    for n in &nodes[1..] {
        wait_for("the replicas' links", Duration::from_secs(20), || n.follows(p0));
    }
    let sentinels: Vec<Sentinel> = (0..3).map(|i| Sentinel::start(&root.join(format!("s{i}")), p0)).collect();
    // Each sentinel finds the replicas (INFO's slave lines) and the other sentinels (their hellos).
    for s in &sentinels {
        wait_for("the sentinels to see 2 replicas and 2 other sentinels", Duration::from_secs(20), || {
            s.master_field("num-slaves").as_deref() == Some("2")
                && s.master_field("num-other-sentinels").as_deref() == Some("2")
        });
    }

    // A writer: each SET then `WAIT 1 1000`; the keys it got >= 1 for are acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            let Ok(mut c) = std::panic::catch_unwind(|| conn(p0)) else { return acked };
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("k{i}");
                let set: redis::RedisResult<()> = redis::cmd("SET").arg(&key).arg(i).query(&mut c);
                if set.is_err() {
                    break;
                }
                match redis::cmd("WAIT").arg(1).arg(1000).query::<i64>(&mut c) {
                    Ok(n) if n >= 1 => acked.push(i),
                    Ok(_) => {}
                    Err(_) => break,
                }
                i += 1;
            }
            acked
        })
    };
    wait_for("some acknowledged writes", Duration::from_secs(20), || {
        try_query::<i64>(p0, &["DBSIZE"]).is_some_and(|n| n >= 200)
    });

    // The primary dies mid-stream.
    nodes[0].proc.kill9();
    stop.store(true, Ordering::Relaxed);
    let acked = writer.join().unwrap();
    assert!(acked.len() >= 100, "only {} acknowledged writes", acked.len());

    // Every sentinel names the promoted replica.
    let mut new_primary = 0;
    wait_for("the sentinels to switch to a new primary", Duration::from_secs(40), || {
        let ports: Vec<Option<u16>> = sentinels.iter().map(|s| s.primary_port()).collect();
        if let Some(Some(p)) = ports.first()
            && *p != p0
            && ports.iter().all(|q| *q == Some(*p))
        {
            new_primary = *p;
            return true;
        }
        false
    });
    let (promoted, other) = if nodes[1].port == new_primary { (1, 2) } else { (2, 1) };
    assert_eq!(nodes[promoted].port, new_primary, "{}", sentinel_logs(&root));
    assert_eq!(field(&nodes[promoted].info("replication"), "role").as_deref(), Some("master"));
    // The other replica follows it (Sentinel's REPLICAOF), and says so in its config file.
    wait_for("the other replica to follow the new primary", Duration::from_secs(30), || {
        nodes[other].follows(new_primary)
    });
    assert!(nodes[other].conf().contains(&format!("replicaof 127.0.0.1 {new_primary}")), "{}", nodes[other].conf());
    // The promoted node's config file lost its replicaof line (CONFIG REWRITE after REPLICAOF NO ONE).
    assert!(!nodes[promoted].conf().contains("replicaof"), "{}", nodes[promoted].conf());

    // No acknowledged write is lost.
    let mut c = conn(new_primary);
    for i in &acked {
        let v: Option<u64> = redis::cmd("GET").arg(format!("k{i}")).query(&mut c).unwrap();
        assert_eq!(v, Some(*i), "acknowledged write k{i} lost after the failover");
    }
    // A client that asks a sentinel writes to the new primary.
    let asked = sentinels[1].primary_port().unwrap();
    let _: () = redis::cmd("SET").arg("after").arg("failover").query(&mut conn(asked)).unwrap();

    // The old primary comes back from its AOF as a primary; the sentinels make it a replica.
    nodes[0].launch();
    wait_for("the old primary to be converted to a replica", Duration::from_secs(40), || nodes[0].follows(new_primary));
    assert!(nodes[0].conf().contains(&format!("replicaof 127.0.0.1 {new_primary}")), "{}", nodes[0].conf());

    // Everybody converges to the new primary's keyspace.
    let n: i64 = redis::cmd("WAIT").arg(2).arg(10000).query(&mut c).unwrap();
    assert_eq!(n, 2);
    let want = common::dump_keyspace(new_primary);
    for i in [0, other] {
        wait_for("a replica to converge", Duration::from_secs(20), || common::dump_keyspace(nodes[i].port) == want);
    }
    // The sentinels list both replicas under the new primary.
    for s in &sentinels {
        wait_for("the sentinels to list 2 replicas of the new primary", Duration::from_secs(30), || {
            s.master_field("num-slaves").as_deref() == Some("2")
                && s.master_field("port") == Some(new_primary.to_string())
        });
    }
    eprintln!("failover scenario: {:?}, {} acknowledged writes", started.elapsed(), acked.len());
    drop(sentinels);
    drop(nodes);
    let _ = std::fs::remove_dir_all(&root);
}

/// PUBLISH on a primary reaches its replicas' subscribers (through the replication stream, not
/// the AOF): Sentinel's `__sentinel__:hello` discovery through replicas relies on it.
#[test]
fn publish_reaches_the_replicas_subscribers_but_not_the_aof() {
    let primary = common::Server::start(&["--appendonly", "yes"]);
    let replica = common::Server::start(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    wait_for("the link", Duration::from_secs(20), || {
        field(&try_query::<String>(replica.port, &["INFO", "replication"]).unwrap_or_default(), "master_link_status")
            .as_deref()
            == Some("up")
    });
    let mut sub = replica.raw();
    sub.cmds(&["SUBSCRIBE", "__sentinel__:hello"]);
    let mut c = primary.client();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    let n: i64 = redis::cmd("PUBLISH").arg("__sentinel__:hello").arg("hi there").query(&mut c).unwrap();
    assert_eq!(n, 0, "nobody subscribes on the primary itself");
    let msg = sub.reply();
    assert_eq!(String::from_utf8_lossy(&msg), "*3\r\n$7\r\nmessage\r\n$18\r\n__sentinel__:hello\r\n$8\r\nhi there\r\n");
    // The stream stays a valid keyspace feed: a key written after the message arrives in db 3.
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut c).unwrap();
    let v: Option<String> = redis::cmd("GET")
        .arg("k")
        .query(&mut {
            let mut r = replica.client();
            let _: () = redis::cmd("SELECT").arg(3).query(&mut r).unwrap();
            r
        })
        .unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    // The AOF has the SET, not the PUBLISH.
    let aof = std::fs::read(primary.dir.join("appendonly.aof")).unwrap();
    let has = |needle: &[u8]| aof.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"\r\nSET\r\n") || has(b"\r\nset\r\n"));
    assert!(!has(b"PUBLISH") && !has(b"publish"));
}

/// `REPLICAOF` changes what CONFIG GET and CONFIG REWRITE see: `replicaof host port` for a
/// replica, no `replicaof` line at all for a primary (Redis's `rewriteConfigReplicaOfOption`).
#[test]
fn config_rewrite_writes_the_live_replicaof() {
    let dir = common::temp_dir("sentinel-rewrite");
    let conf = dir.join("node.conf");
    std::fs::write(&conf, "# mine\nreplicaof 127.0.0.1 1\nhz 10\n").unwrap();
    let port = free_port();
    let mut p = Proc {
        child: Some(
            Command::new(env!("CARGO_BIN_EXE_flurrydb-server"))
                .arg(&conf)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
                .arg("--dir")
                .arg(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ),
    };
    wait_for("PING", Duration::from_secs(30), || try_query::<String>(port, &["PING"]).as_deref() == Some("PONG"));
    let mut c = conn(port);
    let get = |c: &mut redis::Connection| -> Vec<String> {
        redis::cmd("CONFIG").arg("GET").arg("replicaof").query(c).unwrap()
    };
    assert_eq!(get(&mut c), ["replicaof", "127.0.0.1 1"]);
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg("2").query(&mut c).unwrap();
    assert_eq!(get(&mut c), ["replicaof", "127.0.0.1 2"]);
    let _: () = redis::cmd("CONFIG").arg("REWRITE").query(&mut c).unwrap();
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.starts_with("# mine\nreplicaof 127.0.0.1 2\n"), "{text}");
    let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut c).unwrap();
    assert_eq!(get(&mut c), ["replicaof", ""]);
    let _: () = redis::cmd("CONFIG").arg("REWRITE").query(&mut c).unwrap();
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(!text.contains("replicaof"), "{text}");
    assert!(text.contains("# mine\n") && text.contains("hz 10\n"), "{text}");
    p.kill9();
    let _ = std::fs::remove_dir_all(&dir);
}

fn failover_state(port: u16) -> String {
    field(&try_query::<String>(port, &["INFO", "replication"]).unwrap_or_default(), "master_failover_state")
        .unwrap_or_default()
}

fn reply_text(port: u16, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<redis::Value>(&mut conn(port)) {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error {:?} {:?}", e.code(), e.detail()),
    }
}

/// FAILOVER's argument errors and refusals, as Redis 7.0 answers them (compared with
/// redis-server where installed).
#[test]
fn failover_refusals_answer_as_redis() {
    let ours = common::Server::start(&[]);
    let cases: &[&[&str]] = &[
        &["FAILOVER", "foo"],
        &["FAILOVER", "TIMEOUT", "abc"],
        &["FAILOVER", "TIMEOUT", "-1"],
        &["FAILOVER", "TIMEOUT", "0"],
        &["FAILOVER", "TO", "h", "abc"],
        &["FAILOVER", "TO", "h"],
        &["FAILOVER", "FORCE"],
        &["FAILOVER", "FORCE", "FORCE"],
        &["FAILOVER", "ABORT"],
        &["FAILOVER", "ABORT", "x"],
        &["FAILOVER"],
        &["FAILOVER", "TO", "127.0.0.1", "1", "TIMEOUT", "10", "FORCE"],
    ];
    let want = [
        "error Some(\"ERR\") Some(\"syntax error\")",
        "error Some(\"ERR\") Some(\"value is not an integer or out of range\")",
        "error Some(\"ERR\") Some(\"FAILOVER timeout must be greater than 0\")",
        "error Some(\"ERR\") Some(\"FAILOVER timeout must be greater than 0\")",
        "error Some(\"ERR\") Some(\"value is not an integer or out of range\")",
        "error Some(\"ERR\") Some(\"syntax error\")",
        "error Some(\"ERR\") Some(\"FAILOVER requires connected replicas.\")",
        "error Some(\"ERR\") Some(\"syntax error\")",
        "error Some(\"ERR\") Some(\"No failover in progress.\")",
        "error Some(\"ERR\") Some(\"syntax error\")",
        "error Some(\"ERR\") Some(\"FAILOVER requires connected replicas.\")",
        "error Some(\"ERR\") Some(\"FAILOVER requires connected replicas.\")",
    ];
    let real = common::RealRedis::start(&[]);
    for (case, want) in cases.iter().zip(want) {
        assert_eq!(reply_text(ours.port, case), want, "{case:?}");
        if let Some(r) = &real {
            assert_eq!(reply_text(r.port, case), want, "redis-server: {case:?}");
        }
    }
    // A replica refuses it.
    // (Once its first sync has loaded: while it loads, FAILOVER gets -LOADING, in Redis too.)
    let replica = common::Server::start(&["--replicaof", "127.0.0.1", &ours.port.to_string()]);
    wait_for("the link", Duration::from_secs(20), || {
        field(&try_query::<String>(replica.port, &["INFO", "replication"]).unwrap_or_default(), "master_link_status")
            .as_deref()
            == Some("up")
    });
    let text = reply_text(replica.port, &["FAILOVER"]);
    assert!(text.contains("FAILOVER is not valid when server is a replica."), "{text}");
    let text = reply_text(ours.port, &["FAILOVER", "TO", "127.0.0.1", "1"]);
    assert!(text.contains("FAILOVER target HOST and PORT is not a replica."), "{text}");
    let text = reply_text(replica.port, &["PSYNC", "0123", "1", "FAILOVER"]);
    assert!(text.contains("PSYNC FAILOVER replid must match my replid."), "{text}");
    let text = reply_text(ours.port, &["PSYNC", "0123", "1", "FAILOVER"]);
    assert!(text.contains("PSYNC FAILOVER can't be sent to a master."), "{text}");
}

fn signal(p: &Proc, sig: &str) {
    let pid = p.child.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
}

/// FAILOVER TO a replica while a client writes: writes pause, the target catches up and is
/// promoted, the old primary follows it with a partial resync (nothing resent), every write
/// acknowledged before is on the new primary, and the third node converges. A target that cannot
/// catch up (stopped) makes the failover time out, or be aborted, with the primary unchanged.
#[test]
fn failover_to_a_replica_switches_roles_without_a_full_sync() {
    let root = common::temp_dir("failover");
    let p = Node::start(&root.join("p"), None, "");
    let r1 = Node::start(&root.join("r1"), Some(p.port), "");
    let r2 = Node::start(&root.join("r2"), Some(p.port), "");
    for r in [&r1, &r2] {
        wait_for("the replicas' links", Duration::from_secs(20), || r.follows(p.port));
    }
    let mut c = conn(p.port);
    for i in 0..200 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg(i).query(&mut c).unwrap();
    }
    let n: i64 = redis::cmd("WAIT").arg(2).arg(10_000).query(&mut c).unwrap();
    assert_eq!(n, 2);

    // A target that cannot acknowledge: the timeout ends the failover, the primary stays one.
    signal(&r2.proc, "-STOP");
    let _: () = redis::cmd("SET").arg("while").arg("stopped").query(&mut c).unwrap();
    let ok: String =
        redis::cmd("FAILOVER").arg("TO").arg("127.0.0.1").arg(r2.port).arg("TIMEOUT").arg(300).query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(failover_state(p.port), "waiting-for-sync");
    let text = reply_text(p.port, &["FAILOVER"]);
    assert!(text.contains("FAILOVER already in progress."), "{text}");
    let text = reply_text(p.port, &["REPLICAOF", "127.0.0.1", "1"]);
    assert!(text.contains("REPLICAOF not allowed while failing over."), "{text}");
    wait_for("the timeout", Duration::from_secs(10), || failover_state(p.port) == "no-failover");
    assert!(p.log().contains("aborted: Replica never caught up before timeout"), "{}", p.log());
    let _: () = redis::cmd("SET").arg("after").arg("timeout").query(&mut c).unwrap();
    // ABORT while waiting: writes resume.
    let _: String = redis::cmd("FAILOVER").arg("TO").arg("127.0.0.1").arg(r2.port).query(&mut c).unwrap();
    // CLIENT UNPAUSE lifts only what CLIENT PAUSE set (Redis's pause purposes): a write still
    // waits for the failover, and runs once it is aborted.
    let _: String = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut c).unwrap();
    let mut w = common::Server::raw_to(p.port);
    w.send(b"SET during failover\r\n");
    w.s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut none = [0u8; 16];
    let early = std::io::Read::read(&mut w.s, &mut none);
    assert!(early.is_err(), "a write ran during FAILOVER after CLIENT UNPAUSE: {early:?}");
    w.s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _: String = redis::cmd("FAILOVER").arg("ABORT").query(&mut c).unwrap();
    assert_eq!(w.reply(), b"+OK\r\n");
    assert_eq!(failover_state(p.port), "no-failover");
    let _: () = redis::cmd("SET").arg("after").arg("abort").query(&mut c).unwrap();
    assert_eq!(field(&p.info("replication"), "role").as_deref(), Some("master"));
    signal(&r2.proc, "-CONT");

    // The real switch, under a writer.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let port = p.port;
        std::thread::spawn(move || {
            let mut c = conn(port);
            let mut acked = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let set: redis::RedisResult<()> = redis::cmd("SET").arg(format!("w{i}")).arg(i).query(&mut c);
                if set.is_err() {
                    // READONLY: the primary became a replica.
                    break;
                }
                if redis::cmd("WAIT").arg(1).arg(2000).query::<i64>(&mut c).is_ok_and(|n| n >= 1) {
                    acked.push(i);
                }
                i += 1;
            }
            acked
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let full_before = stat_of(r1.port, "sync_full");
    let ok: String = redis::cmd("FAILOVER").arg("TO").arg("127.0.0.1").arg(r1.port).query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    wait_for("the old primary to follow the target", Duration::from_secs(20), || p.follows(r1.port));
    assert_eq!(field(&r1.info("replication"), "role").as_deref(), Some("master"));
    assert_eq!(failover_state(p.port), "no-failover");
    assert_eq!(stat_of(r1.port, "sync_full"), full_before, "the old primary resynced partially");
    assert!(stat_of(r1.port, "sync_partial_ok") >= 1);
    stop.store(true, Ordering::Relaxed);
    let acked = writer.join().unwrap();
    assert!(!acked.is_empty());
    let mut c1 = conn(r1.port);
    for i in &acked {
        let v: Option<u64> = redis::cmd("GET").arg(format!("w{i}")).query(&mut c1).unwrap();
        assert_eq!(v, Some(*i), "acknowledged write w{i} lost");
    }
    let text = reply_text(p.port, &["SET", "x", "1"]);
    assert!(text.contains("READONLY"), "{text}");
    // The third node (dropped by the old primary) follows the chain and converges.
    let _: () = redis::cmd("SET").arg("marker").arg("end").query(&mut c1).unwrap();
    let want = common::dump_keyspace(r1.port);
    for n in [&p, &r2] {
        wait_for("convergence", Duration::from_secs(30), || common::dump_keyspace(n.port) == want);
    }
    drop((p, r1, r2));
    let _ = std::fs::remove_dir_all(&root);
}

fn stat_of(port: u16, name: &str) -> u64 {
    field(&try_query::<String>(port, &["INFO", "stats"]).unwrap_or_default(), name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CLIENT LIST marks a replica's link `flags=S` and the link to our primary `flags=M`, and
/// `TYPE replica|master|normal` select them as Redis's `getClientType` does.
#[test]
fn client_list_shows_replication_links() {
    let primary = common::Server::start(&[]);
    let replica = common::Server::start(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    wait_for("the link", Duration::from_secs(20), || {
        field(&try_query::<String>(replica.port, &["INFO", "replication"]).unwrap_or_default(), "master_link_status")
            .as_deref()
            == Some("up")
    });
    let list = |port: u16, args: &[&str]| -> Vec<String> {
        let mut cmd = redis::cmd("CLIENT");
        cmd.arg("LIST");
        for a in args {
            cmd.arg(*a);
        }
        let text: String = cmd.query(&mut conn(port)).unwrap();
        text.lines().map(String::from).collect()
    };
    let replicas = list(primary.port, &["TYPE", "replica"]);
    assert_eq!(replicas.len(), 1, "{replicas:?}");
    assert!(replicas[0].contains(" flags=S ") && replicas[0].contains(" cmd=psync "), "{replicas:?}");
    assert_eq!(list(primary.port, &["TYPE", "slave"]), replicas);
    assert!(list(primary.port, &["TYPE", "normal"]).iter().all(|l| l.contains(" flags=N ")));
    assert!(list(primary.port, &[]).iter().any(|l| l.contains(" flags=S ")));
    let masters = list(replica.port, &["TYPE", "master"]);
    assert_eq!(masters.len(), 1, "{masters:?}");
    assert!(masters[0].contains(" flags=M "), "{masters:?}");
    assert!(list(replica.port, &["TYPE", "replica"]).is_empty());
    assert!(list(primary.port, &["TYPE", "master"]).is_empty());
}
