//! Replication under faults, flurrydb to flurrydb, while a writer keeps writing: a replica
//! SIGKILLed in the middle of its full sync and restarted; the link cut mid-stream (CLIENT KILL
//! TYPE master on the replica), which must resync partially from the backlog; the primary
//! SIGKILLed and restarted from its AOF under its attached replicas. Each time the replicas
//! converge to the primary's keyspace exactly, compared key by key.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::fixed::{Node, conn, field, linked_pair, set_numbered, try_query, wait_acked, wait_for};

/// A writer of strings, counters, lists, hashes, sets, sorted sets and long expiries over a
/// fixed set of keys, reconnecting after errors (the primary may be down for a while), until
/// stopped. Counts the writes it got a reply for.
struct Writer {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(port: u16) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let (s, d) = (Arc::clone(&stop), Arc::clone(&done));
        let handle = std::thread::spawn(move || {
            let mut i = 0u64;
            while !s.load(Ordering::Relaxed) {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                while !s.load(Ordering::Relaxed) {
                    i += 1;
                    let k = i % 500;
                    let mut p = redis::pipe();
                    p.cmd("SET").arg(format!("s{k}")).arg(format!("v{i}"));
                    p.cmd("INCR").arg(format!("n{}", k % 50));
                    p.cmd("RPUSH").arg(format!("l{}", k % 20)).arg(i);
                    p.cmd("LTRIM").arg(format!("l{}", k % 20)).arg(-50).arg(-1);
                    p.cmd("HSET").arg(format!("h{}", k % 20)).arg(format!("f{}", i % 30)).arg(i);
                    p.cmd("SADD").arg(format!("t{}", k % 20)).arg(i % 100);
                    p.cmd("ZADD").arg(format!("z{}", k % 20)).arg(i % 97).arg(format!("m{}", i % 40));
                    p.cmd("EXPIRE").arg(format!("s{k}")).arg(100_000);
                    if i.is_multiple_of(7) {
                        p.cmd("DEL").arg(format!("s{}", (k + 3) % 500));
                    }
                    match p.query::<redis::Value>(&mut c) {
                        Ok(_) => {
                            d.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => break,
                    }
                }
            }
        });
        Writer { stop, done, handle: Some(handle) }
    }

    fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Wait until at least `n` more writes went through.
    fn wait_more(&self, n: u64) {
        let from = self.done();
        wait_for("the writer to make progress", Duration::from_secs(60), || self.done() >= from + n);
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap();
    }
}

fn stat(port: u16, name: &str) -> u64 {
    field(&try_query::<String>(port, &["INFO", "stats"]).unwrap_or_default(), name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// With writes stopped: every replica has applied the primary's whole stream and holds exactly
/// its keyspace.
fn assert_converged(primary: &Node, replicas: &[&Node]) {
    let mut c = conn(primary.port);
    let _: () = redis::cmd("SET").arg("marker").arg("end").query(&mut c).unwrap();
    let n: i64 = redis::cmd("WAIT").arg(replicas.len()).arg(30_000).query(&mut c).unwrap();
    assert_eq!(n as usize, replicas.len(), "not every replica acknowledged the last write");
    let want = common::dump_keyspace(primary.port);
    assert!(want.len() > 100, "the primary holds only {} keys", want.len());
    for r in replicas {
        let got = common::dump_keyspace(r.port);
        if got != want {
            let diff: Vec<_> = want
                .iter()
                .filter(|(k, v)| got.get(*k) != Some(*v))
                .map(|(k, v)| format!("{k:?}: primary {v} / replica {:?}", got.get(k)))
                .chain(got.keys().filter(|k| !want.contains_key(*k)).map(|k| format!("{k:?}: only on the replica")))
                .take(5)
                .collect();
            panic!("replica on {} differs from the primary: {diff:#?}", r.port);
        }
    }
}

/// Big incompressible values so that a full sync takes long enough to be interrupted.
fn fill(port: u16, keys: usize, size: usize) {
    let mut c = conn(port);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in 0..keys / 100 {
        let mut p = redis::pipe();
        for k in 0..100 {
            let v: Vec<u8> = (0..size)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            p.cmd("SET").arg(format!("big{}", chunk * 100 + k)).arg(v).ignore();
        }
        p.query::<()>(&mut c).unwrap();
    }
}

#[test]
fn replica_killed_mid_full_sync_restarts_and_converges() {
    let root = common::temp_dir("faults-sync");
    let primary = Node::start(&root.join("p"), None, "");
    fill(primary.port, 3000, 16 * 1024);
    let writer = Writer::start(primary.port);
    writer.wait_more(100);
    let mut replica = Node::start(&root.join("r"), Some(primary.port), "");
    // Caught mid-transfer: the replica says its sync is in progress.
    let mut caught = false;
    for _ in 0..2000 {
        let i = replica.info("replication");
        if field(&i, "master_sync_in_progress").as_deref() == Some("1") {
            caught = true;
            break;
        }
        if field(&i, "master_link_status").as_deref() == Some("up") {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    replica.proc.kill9();
    let full_before = stat(primary.port, "sync_full");
    writer.wait_more(200);
    replica.launch();
    wait_for("the restarted replica's link", Duration::from_secs(60), || replica.follows(primary.port));
    assert!(stat(primary.port, "sync_full") > full_before, "the restarted replica resynced fully");
    writer.wait_more(200);
    writer.stop();
    assert_converged(&primary, &[&replica]);
    eprintln!("killed mid-sync: {caught}");
    drop((primary, replica));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn link_cut_mid_stream_resyncs_partially_and_converges() {
    let root = common::temp_dir("faults-link");
    let primary = Node::start(&root.join("p"), None, "repl-backlog-size 64mb\n");
    let replicas = Node::replicas_of(&primary, &root, 2, "");
    let writer = Writer::start(primary.port);
    for round in 0..3 {
        writer.wait_more(200);
        let ok_before = stat(primary.port, "sync_partial_ok");
        let full_before = stat(primary.port, "sync_full");
        let r = &replicas[round % 2];
        let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("master").query(&mut conn(r.port)).unwrap();
        assert_eq!(killed, 1);
        wait_for("a partial resync", Duration::from_secs(30), || {
            stat(primary.port, "sync_partial_ok") > ok_before && r.follows(primary.port)
        });
        assert_eq!(stat(primary.port, "sync_full"), full_before, "the backlog covered the gap: no full sync");
    }
    writer.wait_more(200);
    writer.stop();
    assert_converged(&primary, &[&replicas[0], &replicas[1]]);
    drop((primary, replicas));
    let _ = std::fs::remove_dir_all(&root);
}

/// The primary SIGKILLed and restarted from its AOF (same directory, same port) while replicas
/// are attached and the writer goes on; then a replica killed and restarted; in turns.
#[test]
fn primary_and_replica_killed_in_turns_converge() {
    let root = common::temp_dir("faults-primary");
    let mut primary = Node::start(&root.join("p"), None, "appendfsync always\n");
    let mut replicas = Node::replicas_of(&primary, &root, 2, "");
    let writer = Writer::start(primary.port);
    for round in 0..2 {
        writer.wait_more(300);
        primary.proc.kill9();
        std::thread::sleep(Duration::from_millis(200));
        primary.launch();
        for r in &replicas {
            wait_for("the replicas to resync with the restarted primary", Duration::from_secs(60), || {
                r.follows(primary.port)
            });
        }
        writer.wait_more(300);
        let r = &mut replicas[round % 2];
        r.proc.kill9();
        writer.wait_more(100);
        r.launch();
        wait_for("the restarted replica's link", Duration::from_secs(60), || r.follows(primary.port));
    }
    writer.wait_more(200);
    writer.stop();
    assert_converged(&primary, &[&replicas[0], &replicas[1]]);
    drop((primary, replicas));
    let _ = std::fs::remove_dir_all(&root);
}

/// A replica under `CLIENT PAUSE WRITE` loses none of its primary's stream (the commands were
/// once postponed and then dropped by the link): after UNPAUSE it holds every write.
#[test]
fn a_paused_replica_keeps_its_primarys_writes() {
    let root = common::temp_dir("faults-pause");
    let (primary, replica) = linked_pair(&root, "", "");
    let mut r = conn(replica.port);
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(3000).arg("WRITE").query(&mut r).unwrap();
    let mut c = conn(primary.port);
    set_numbered(&mut c, "k", 50);
    let _: i64 = redis::cmd("WAIT").arg(1).arg(1000).query(&mut c).unwrap();
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut r).unwrap();
    let _: () = redis::cmd("SET").arg("marker").arg("end").query(&mut c).unwrap();
    wait_acked(&mut c, 1);
    assert_eq!(common::dump_keyspace(replica.port), common::dump_keyspace(primary.port));
    drop((primary, replica));
    let _ = std::fs::remove_dir_all(&root);
}

/// A primary restarted from its RDB file (appendonly no) keeps its replication history, as Redis
/// 7.0 does with the file's `repl-id`/`repl-offset`: the old id becomes its secondary id, valid up
/// to the saved offset, and its replica resyncs partially with nothing resent, the stream going on
/// in the right database. (An AOF restart gets a new history, as Redis's AOF load restores none:
/// `primary_and_replica_killed_in_turns_converge` covers it.)
#[test]
fn a_primary_restarted_from_its_rdb_serves_its_replica_partially() {
    let root = common::temp_dir("faults-rdb-restart");
    let (mut primary, replica) = linked_pair(&root, "appendonly no\n", "");
    let mut c = conn(primary.port);
    set_numbered(&mut c, "k", 200);
    let _: () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("in3").arg("x").query(&mut c).unwrap();
    wait_acked(&mut c, 1);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    let info = primary.info("replication");
    let (id, offset) = (field(&info, "master_replid").unwrap(), field(&info, "master_repl_offset").unwrap());
    let offset: u64 = offset.parse().unwrap();
    primary.proc.kill9();
    primary.launch();
    let info = primary.info("replication");
    assert_eq!(field(&info, "master_replid2"), Some(id.clone()), "{info}");
    assert_eq!(field(&info, "second_repl_offset"), Some((offset + 1).to_string()), "{info}");
    assert_eq!(field(&info, "master_repl_offset"), Some(offset.to_string()), "{info}");
    assert_ne!(field(&info, "master_replid"), Some(id));
    wait_for("the replica to resync", Duration::from_secs(60), || replica.follows(primary.port));
    assert_eq!(stat(primary.port, "sync_partial_ok"), 1, "{}", primary.log());
    assert_eq!(stat(primary.port, "sync_full"), 0, "{}", primary.log());
    // The stream goes on, in db 0 again (the restarted primary starts with a SELECT).
    let mut c = conn(primary.port);
    set_numbered(&mut c, "after", 200);
    assert_converged(&primary, &[&replica]);
    drop((primary, replica));
    let _ = std::fs::remove_dir_all(&root);
}

/// A replica restarted from its own RDB (a SAVE on the replica, then SIGKILL) resumes where the
/// file left off, as Redis 7.0 does: the file records its primary's replication id, the offset
/// it applied and the database the stream had selected, and the restarted replica asks `PSYNC
/// <id> <offset+1>` and gets a partial resync; the writes made while it was down (in db 3, with
/// no new SELECT on the primary's stream) land where they belong.
#[test]
fn a_replica_restarted_from_its_rdb_resyncs_partially() {
    let root = common::temp_dir("faults-replica-rdb-restart");
    let (primary, mut replica) = linked_pair(&root, "", "appendonly no\n");
    let mut c = conn(primary.port);
    for i in 0..200 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg(i).query(&mut c).unwrap();
        let _: () = redis::cmd("INCR").arg("counter").query(&mut c).unwrap();
    }
    let _: () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("in3").arg("x").query(&mut c).unwrap();
    wait_acked(&mut c, 1);
    let _: () = redis::cmd("SAVE").query(&mut conn(replica.port)).unwrap();
    replica.proc.kill9();
    // Written while the replica is down: still in db 3, the stream selects nothing new.
    for i in 0..50 {
        let _: () = redis::cmd("SET").arg(format!("while_down{i}")).arg(i).query(&mut c).unwrap();
        let _: () = redis::cmd("INCR").arg("counter3").query(&mut c).unwrap();
    }
    assert_eq!(stat(primary.port, "sync_full"), 1);
    replica.launch();
    wait_for("the restarted replica's link", Duration::from_secs(60), || replica.follows(primary.port));
    assert_eq!(stat(primary.port, "sync_partial_ok"), 1, "{}", primary.log());
    assert_eq!(stat(primary.port, "sync_full"), 1, "{}", primary.log());
    assert_converged(&primary, &[&replica]);
    let mut r = conn(replica.port);
    let _: () = redis::cmd("SELECT").arg(3).query(&mut r).unwrap();
    assert_eq!(redis::cmd("GET").arg("counter3").query::<i64>(&mut r).unwrap(), 50);
    drop((primary, replica));
    let _ = std::fs::remove_dir_all(&root);
}

/// A primary restarted from its RDB after some of its keys' TTLs passed drops them while
/// loading; its replicas, which resync partially, still hold them, so the drops go down the
/// new backlog as DELs (Redis 7.0's rdbLoad with RDBFLAGS_FEED_REPL), in their databases.
#[test]
fn keys_expired_while_a_primary_was_down_are_deleted_on_its_replicas() {
    let root = common::temp_dir("faults-rdb-expired");
    let (mut primary, replica) = linked_pair(&root, "appendonly no\n", "");
    let mut c = conn(primary.port);
    set_numbered(&mut c, "k", 100);
    let _: () = redis::cmd("SET").arg("brief").arg("x").arg("PX").arg(1500).query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("lasting").arg("x").arg("EX").arg(100_000).query(&mut c).unwrap();
    let _: () = redis::cmd("SELECT").arg(5).query(&mut c).unwrap();
    let _: () = redis::cmd("RPUSH").arg("brief5").arg("a").arg("b").query(&mut c).unwrap();
    let _: () = redis::cmd("PEXPIRE").arg("brief5").arg(1500).query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("kept5").arg("y").query(&mut c).unwrap();
    wait_acked(&mut c, 1);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    primary.proc.kill9();
    std::thread::sleep(Duration::from_millis(2000));
    primary.launch();
    assert!(primary.log().contains("keys expired: 2"), "{}", primary.log());
    wait_for("the replica to resync", Duration::from_secs(60), || replica.follows(primary.port));
    assert_eq!(stat(primary.port, "sync_partial_ok"), 1, "{}", primary.log());
    assert_eq!(stat(primary.port, "sync_full"), 0, "{}", primary.log());
    let mut c = conn(primary.port);
    let _: () = redis::cmd("SET").arg("after").arg(1).query(&mut c).unwrap();
    wait_acked(&mut c, 1);
    // DBSIZE counts what a replica holds, expired or not (a replica does not expire keys itself).
    let mut r = conn(replica.port);
    for (db, want) in [(0, 102), (5, 1)] {
        let _: () = redis::cmd("SELECT").arg(db).query(&mut r).unwrap();
        assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut r).unwrap(), want, "db {db} on the replica");
    }
    assert_converged(&primary, &[&replica]);
    drop((primary, replica));
    let _ = std::fs::remove_dir_all(&root);
}
