//! `repl-backlog-ttl`, as Redis 7.0's `replicationCron`: a primary whose backlog has had no
//! replica for longer than the ttl frees it (INFO `repl_backlog_active:0`, a new replication id,
//! `master_repl_offset` kept); a replica that comes back then gets a full sync, and a new backlog
//! (with a new id again) starts at the old offset. Checked against redis-server 7.0.15 by hand
//! with the same steps (same INFO fields, same log line, sync_full 2 / sync_partial_ok 0).

mod common;

use std::time::Duration;

use common::Server;
use common::fixed::{field, wait_for};

fn info(port: u16) -> String {
    redis::cmd("INFO").arg("replication").query::<String>(&mut common::fixed::conn(port)).unwrap()
}

fn stats(port: u16) -> String {
    redis::cmd("INFO").arg("stats").query::<String>(&mut common::fixed::conn(port)).unwrap()
}

fn link_up(port: u16) -> bool {
    field(&info(port), "master_link_status").as_deref() == Some("up")
}

#[test]
fn a_backlog_without_replicas_for_the_ttl_is_freed_and_the_replica_resyncs_fully() {
    let primary = Server::start(&["--appendonly", "no", "--repl-backlog-ttl", "1"]);
    let replica = Server::start(&["--appendonly", "no", "--replicaof", "127.0.0.1", &primary.port.to_string()]);
    wait_for("the link", Duration::from_secs(20), || link_up(replica.port));
    assert_eq!(primary.raw().cmds(&["SET", "a", "1"]), b"+OK\r\n");
    let before = info(primary.port);
    assert_eq!(field(&before, "repl_backlog_active").as_deref(), Some("1"));
    let offset = field(&before, "master_repl_offset").unwrap();
    wait_for("the replica caught up", Duration::from_secs(20), || {
        field(&info(replica.port), "slave_repl_offset").as_ref() == Some(&offset)
    });
    // The replica leaves (keeping the primary's id as its replid2: it could resync partially).
    assert_eq!(replica.raw().cmds(&["REPLICAOF", "NO", "ONE"]), b"+OK\r\n");
    wait_for("the backlog freed", Duration::from_secs(20), || {
        field(&info(primary.port), "repl_backlog_active").as_deref() == Some("0")
    });
    let after = info(primary.port);
    assert_ne!(field(&after, "master_replid"), field(&before, "master_replid"), "a new id");
    assert_eq!(field(&after, "master_replid2").as_deref(), Some("0000000000000000000000000000000000000000"));
    assert_eq!(field(&after, "second_repl_offset").as_deref(), Some("-1"));
    assert_eq!(field(&after, "master_repl_offset"), Some(offset.clone()), "the offset stays");
    assert_eq!(field(&after, "repl_backlog_first_byte_offset").as_deref(), Some("0"));
    assert_eq!(field(&after, "repl_backlog_histlen").as_deref(), Some("0"));
    assert!(primary.log().contains("Replication backlog freed after 1 seconds without connected replicas."));
    assert_eq!(primary.raw().cmds(&["SET", "b", "2"]), b"+OK\r\n");

    // It comes back: its PSYNC names the old id, which the primary no longer serves.
    assert_eq!(replica.raw().cmds(&["REPLICAOF", "127.0.0.1", &primary.port.to_string()]), b"+OK\r\n");
    wait_for("the link again", Duration::from_secs(20), || link_up(replica.port));
    let s = stats(primary.port);
    assert_eq!(field(&s, "sync_full").as_deref(), Some("2"), "{s}");
    assert_eq!(field(&s, "sync_partial_ok").as_deref(), Some("0"), "{s}");
    assert_eq!(field(&s, "sync_partial_err").as_deref(), Some("1"), "{s}");
    let again = info(primary.port);
    assert_eq!(field(&again, "repl_backlog_active").as_deref(), Some("1"));
    assert_ne!(field(&again, "master_replid"), field(&after, "master_replid"), "created again with a new id");
    assert_eq!(replica.raw().cmds(&["GET", "b"]), b"$1\r\n2\r\n");
    drop(replica);
    drop(primary);
}

/// With a replica attached, or `repl-backlog-ttl 0`, the backlog stays.
#[test]
fn the_backlog_stays_with_a_replica_or_a_zero_ttl() {
    let primary = Server::start(&["--appendonly", "no", "--repl-backlog-ttl", "1"]);
    let replica = Server::start(&["--appendonly", "no", "--replicaof", "127.0.0.1", &primary.port.to_string()]);
    wait_for("the link", Duration::from_secs(20), || link_up(replica.port));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(field(&info(primary.port), "repl_backlog_active").as_deref(), Some("1"));
    assert_eq!(primary.raw().cmds(&["CONFIG", "SET", "repl-backlog-ttl", "0"]), b"+OK\r\n");
    assert_eq!(replica.raw().cmds(&["REPLICAOF", "NO", "ONE"]), b"+OK\r\n");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(field(&info(primary.port), "repl_backlog_active").as_deref(), Some("1"));
}
