//! `repl-diskless-load` on a replica, as Redis 7.0's `readSyncBulkPayload`/`useDisklessLoad`:
//! - `disabled` (the default): the payload is received into `temp-<time>.<pid>.rdb` while the
//!   old data is still served (`loading:0`), renamed over `dbfilename` (the file is then the
//!   primary's payload byte for byte), and loaded from there;
//! - `on-empty-db`: with an empty keyspace the RDB is parsed from the socket as it arrives, no
//!   file written, the keyspace `loading` meanwhile (`-LOADING`); with keys, as `disabled`.
//! - `swapdb`: the RDB is parsed from the socket into spare databases while the old ones are
//!   served, then swapped in at once; with a payload of the replica's own replication id (the same
//!   history) as `async_loading` (reads answered from the old data, INFO `async_loading:1`), with
//!   another under `loading` (`-LOADING`); a cut or damaged load keeps the old data. Checked
//!   against redis-server 7.0.15 with the same steps (a hand-made primary sending the payload
//!   slowly): the same answers, WATCH dirtied by the swap.
//!
//! A hand-made primary holds the payload half sent to see what the replica answers meanwhile;
//! then flurrydb -> flurrydb and redis-server 7.0 -> flurrydb converge in every mode, and a full
//! resync of the same history slowed by `rdb-key-save-delay` is served from the old data.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use common::fixed::{field, wait_for};
use common::hand_primary::{HandPrimary, read_command};
use common::{RealRedis, Server};

fn info(port: u16, section: &str) -> String {
    redis::cmd("INFO").arg(section).query::<String>(&mut common::fixed::conn(port)).unwrap()
}

fn link_up(port: u16) -> bool {
    field(&info(port, "replication"), "master_link_status").as_deref() == Some("up")
}

/// An RDB payload of `n` keys `k<i>` (values long enough that it takes several reads): a SAVE
/// of a flurrydb server.
fn payload(n: usize) -> Vec<u8> {
    payload_of(n, &"v".repeat(100))
}

/// An RDB payload of `n` keys `k<i>`, each holding `value`.
fn payload_of(n: usize, value: &str) -> Vec<u8> {
    let s = Server::start(&["--appendonly", "no"]);
    let mut c = s.raw();
    let value = value.to_string();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut argv = vec!["MSET".to_string()];
        for i in chunk {
            argv.push(format!("k{i}"));
            argv.push(value.clone());
        }
        let argv: Vec<&str> = argv.iter().map(|a| a.as_str()).collect();
        assert_eq!(c.cmds(&argv), b"+OK\r\n");
    }
    assert_eq!(c.cmds(&["SAVE"]), b"+OK\r\n");
    std::fs::read(s.dir.join("dump.rdb")).unwrap()
}

/// The files in the replica's directory other than its log.
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "server.log")
        .collect();
    v.sort();
    v
}

/// The replica (mode `mode`, holding `old` keys or none) of a hand-made primary that sends half
/// of the payload (`$EOF:<mark>` form when `eof`), then stops: returns what the replica answers
/// to `GET old` and its INFO `loading` then; then the rest, and checks the keys arrived.
fn half_sent(mode: &str, with_old_key: bool, eof: bool) -> (Vec<u8>, String, Server, Vec<u8>) {
    let rdb = payload(20_000);
    let p = HandPrimary::bind();
    let replica = Server::start(&["--appendonly", "no", "--repl-diskless-load", mode]);
    if with_old_key {
        assert_eq!(replica.raw().cmds(&["SET", "old", "1"]), b"+OK\r\n");
    }
    assert_eq!(replica.raw().cmds(&["REPLICAOF", "127.0.0.1", &p.port.to_string()]), b"+OK\r\n");
    let (mut to, mut from, psync) = p.accept();
    assert_eq!(psync[0].to_ascii_uppercase(), "PSYNC");
    let mark = "m".repeat(40);
    let head = if eof { format!("$EOF:{mark}\r\n") } else { format!("${}\r\n", rdb.len()) };
    to.write_all(format!("+FULLRESYNC {} 0\r\n{head}", "a".repeat(40)).as_bytes()).unwrap();
    let half = rdb.len() / 2;
    to.write_all(&rdb[..half]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut r = replica.raw();
    let got = r.cmds(&["GET", "old"]);
    let loading = field(&String::from_utf8_lossy(&r.cmds(&["INFO", "persistence"])), "loading").unwrap_or_default();
    to.write_all(&rdb[half..]).unwrap();
    if eof {
        to.write_all(mark.as_bytes()).unwrap();
    }
    std::thread::spawn(move || while read_command(&mut from).is_some() {});
    wait_for("the link", Duration::from_secs(20), || link_up(replica.port));
    assert_eq!(replica.raw().cmds(&["DBSIZE"]), b":20000\r\n");
    assert_eq!(replica.raw().cmds(&["GET", "old"]), b"$-1\r\n", "the old data is gone");
    // Keep the link's socket open until the checks are made.
    let keep = to;
    drop(keep);
    (got, loading, replica, rdb)
}

#[test]
fn disabled_serves_the_old_data_while_receiving_and_writes_the_payload_as_its_rdb() {
    for eof in [false, true] {
        let (got, loading, replica, rdb) = half_sent("disabled", true, eof);
        assert_eq!(got, b"$1\r\n1\r\n", "the old data is served while the payload arrives");
        assert_eq!(loading, "0");
        assert_eq!(files(&replica.dir), ["dump.rdb"], "the temp file was renamed");
        assert_eq!(std::fs::read(replica.dir.join("dump.rdb")).unwrap(), rdb, "the primary's payload as it came");
    }
}

#[test]
fn on_empty_db_loads_an_empty_replica_from_the_socket() {
    for eof in [false, true] {
        let (got, loading, replica, _) = half_sent("on-empty-db", false, eof);
        assert_eq!(got, b"-LOADING Redis is loading the dataset in memory\r\n");
        assert_eq!(loading, "1");
        assert!(files(&replica.dir).is_empty(), "no file: {:?}", files(&replica.dir));
    }
}

#[test]
fn on_empty_db_with_keys_receives_into_a_file() {
    let (got, loading, replica, rdb) = half_sent("on-empty-db", true, true);
    assert_eq!(got, b"$1\r\n1\r\n");
    assert_eq!(loading, "0");
    assert_eq!(std::fs::read(replica.dir.join("dump.rdb")).unwrap(), rdb);
}

/// A diskless load whose mark does not follow the RDB fails and leaves nothing half loaded.
#[test]
fn a_broken_eof_mark_is_refused_and_leaves_the_keyspace_empty() {
    let rdb = payload(100);
    let p = HandPrimary::bind();
    let replica = Server::start(&["--appendonly", "no", "--repl-diskless-load", "on-empty-db"]);
    assert_eq!(replica.raw().cmds(&["REPLICAOF", "127.0.0.1", &p.port.to_string()]), b"+OK\r\n");
    let (mut to, _from, _) = p.accept();
    let mark = "m".repeat(40);
    to.write_all(format!("+FULLRESYNC {} 0\r\n$EOF:{mark}\r\n", "a".repeat(40)).as_bytes()).unwrap();
    to.write_all(&rdb).unwrap();
    to.write_all("x".repeat(40).as_bytes()).unwrap();
    wait_for("the refusal", Duration::from_secs(20), || replica.log().contains("EOF marker is broken"));
    assert_eq!(replica.raw().cmds(&["DBSIZE"]), b":0\r\n");
}

/// Two primaries to replicate from: ours with `ours_args`, and redis-server 7.0 with
/// `redis_args` where it is installed (in a directory of its own: with repl-diskless-sync no it
/// writes its dump.rdb there). Returns both servers (kept alive by the caller), Redis's directory
/// and their ports.
fn our_and_redis_primaries(
    tag: &str,
    ours_args: &[&str],
    redis_args: &[&str],
) -> (Server, Option<RealRedis>, PathBuf, Vec<u16>) {
    let ours = Server::start(ours_args);
    let redis_dir = common::temp_dir(tag);
    let redis = RealRedis::start_in(&redis_dir, redis_args);
    let mut primaries = vec![ours.port];
    if let Some(r) = &redis {
        primaries.push(r.port);
    }
    (ours, redis, redis_dir, primaries)
}

/// Our primary and real Redis's, each payload form, each mode: the replica converges.
#[test]
fn every_mode_converges_with_our_primary_and_with_redis() {
    let (_ours, redis, redis_dir, primaries) = our_and_redis_primaries("redis-primary", &["--appendonly", "no"], &[]);
    for &port in &primaries {
        let mut c = Server::raw_to(port);
        for i in 0..2000 {
            c.cmds(&["SET", &format!("k{i}"), &format!("v{i}")]);
        }
        c.cmds(&["RPUSH", "list", "a", "b", "c"]);
        c.cmds(&["HSET", "hash", "f", "v"]);
        for diskless_sync in ["yes", "no"] {
            assert_eq!(c.cmds(&["CONFIG", "SET", "repl-diskless-sync", diskless_sync]), b"+OK\r\n");
            for mode in ["disabled", "on-empty-db", "swapdb"] {
                let replica = Server::start(&["--appendonly", "no", "--repl-diskless-load", mode]);
                assert_eq!(replica.raw().cmds(&["SET", "stale", "1"]), b"+OK\r\n");
                assert_eq!(replica.raw().cmds(&["REPLICAOF", "127.0.0.1", &port.to_string()]), b"+OK\r\n");
                wait_for("the link", Duration::from_secs(20), || link_up(replica.port));
                c.cmds(&["SET", "after", mode]);
                wait_for("the stream", Duration::from_secs(20), || {
                    replica.raw().cmds(&["GET", "after"]) == format!("${}\r\n{mode}\r\n", mode.len()).into_bytes()
                });
                assert_eq!(
                    common::dump_keyspace(replica.port),
                    common::dump_keyspace(port),
                    "primary {port}, repl-diskless-sync {diskless_sync}, mode {mode}"
                );
            }
        }
    }
    drop(redis);
    let _ = std::fs::remove_dir_all(&redis_dir);
}

fn persistence(port: u16) -> (String, String) {
    let text = info(port, "persistence");
    (field(&text, "loading").unwrap_or_default(), field(&text, "async_loading").unwrap_or_default())
}

/// A swapdb replica that synced `small` (id `a...`) from a hand-made primary, whose link the
/// primary then closed: returns the primary, the replica, and the reconnection's stream and PSYNC.
fn swapdb_replica_synced_once(
    small: &[u8],
) -> (HandPrimary, Server, std::net::TcpStream, std::io::BufReader<std::net::TcpStream>, Vec<String>) {
    let p = HandPrimary::bind();
    let replica = Server::start(&["--appendonly", "no", "--repl-diskless-load", "swapdb"]);
    assert_eq!(replica.raw().cmds(&["REPLICAOF", "127.0.0.1", &p.port.to_string()]), b"+OK\r\n");
    let (mut to, _from, _) = p.accept();
    to.write_all(format!("+FULLRESYNC {} 0\r\n${}\r\n", "a".repeat(40), small.len()).as_bytes()).unwrap();
    to.write_all(small).unwrap();
    wait_for("the first sync", Duration::from_secs(20), || link_up(replica.port));
    to.shutdown(std::net::Shutdown::Both).unwrap();
    let (to, from, psync) = p.accept();
    (p, replica, to, from, psync)
}

/// swapdb, a full resync of the same history (Redis's async loading): while the payload is half
/// sent the replica answers from its old data with `loading:0`, `async_loading:1`, refuses SAVE
/// with `-LOADING`; then every database is replaced at once, and a transaction WATCHing a key the
/// swap changed fails. As redis-server 7.0.15 does with the same steps.
#[test]
fn swapdb_serves_the_old_data_while_loading_the_same_history() {
    for eof in [false, true] {
        let small = payload_of(10, "old");
        let rdb = payload_of(20_000, &"n".repeat(100));
        let (_p, replica, mut to, mut from, psync) = swapdb_replica_synced_once(&small);
        assert_eq!(psync, ["PSYNC", &"a".repeat(40), "1"]);
        let mut watcher = replica.raw();
        assert_eq!(watcher.cmds(&["WATCH", "k0"]), b"+OK\r\n");
        let mark = "m".repeat(40);
        let head = if eof { format!("$EOF:{mark}\r\n") } else { format!("${}\r\n", rdb.len()) };
        to.write_all(format!("+FULLRESYNC {} 0\r\n{head}", "a".repeat(40)).as_bytes()).unwrap();
        let half = rdb.len() / 2;
        to.write_all(&rdb[..half]).unwrap();
        wait_for("async loading", Duration::from_secs(20), || persistence(replica.port) == ("0".into(), "1".into()));
        let mut r = replica.raw();
        assert_eq!(r.cmds(&["GET", "k0"]), b"$3\r\nold\r\n", "the old data is served");
        assert_eq!(r.cmds(&["DBSIZE"]), b":10\r\n");
        assert_eq!(r.cmds(&["GET", "k15000"]), b"$-1\r\n", "none of the new");
        assert_eq!(r.cmds(&["SAVE"]), b"-LOADING Redis is loading the dataset in memory\r\n");
        assert_eq!(r.cmds(&["BGSAVE"]), b"-LOADING Redis is loading the dataset in memory\r\n");
        to.write_all(&rdb[half..]).unwrap();
        if eof {
            to.write_all(mark.as_bytes()).unwrap();
        }
        std::thread::spawn(move || while read_command(&mut from).is_some() {});
        wait_for("the link", Duration::from_secs(20), || link_up(replica.port));
        assert_eq!(persistence(replica.port), ("0".into(), "0".into()));
        assert_eq!(r.cmds(&["DBSIZE"]), b":20000\r\n");
        assert_eq!(r.cmds(&["GET", "k0"]), format!("$100\r\n{}\r\n", "n".repeat(100)).into_bytes());
        assert_eq!(watcher.cmds(&["MULTI"]), b"+OK\r\n");
        assert_eq!(watcher.cmds(&["GET", "k0"]), b"+QUEUED\r\n");
        assert_eq!(watcher.cmds(&["EXEC"]), b"*-1\r\n", "the swap touched the watched key");
        assert!(files(&replica.dir).is_empty(), "no file: {:?}", files(&replica.dir));
        drop(to);
    }
}

/// swapdb with a payload of another history (the first sync, the replica's own id): the old data
/// stays in memory but the replica is `loading` (`-LOADING`), as Redis's `startLoading` without
/// async; then the new data replaces it.
#[test]
fn swapdb_with_another_history_is_loading() {
    for eof in [false, true] {
        let (got, loading, replica, _) = half_sent("swapdb", true, eof);
        assert_eq!(got, b"-LOADING Redis is loading the dataset in memory\r\n");
        assert_eq!(loading, "1");
        assert_eq!(persistence(replica.port), ("0".into(), "0".into()));
        assert!(files(&replica.dir).is_empty(), "no file: {:?}", files(&replica.dir));
    }
}

/// swapdb: a load cut half way (the primary's socket closed) or whose `$EOF:` mark is broken
/// keeps the old data whole (Redis's `disklessLoadDiscardTempDb`), and the replica retries: the
/// next full sync swaps the new data in.
#[test]
fn swapdb_keeps_the_old_data_when_the_load_fails() {
    for broken_mark in [false, true] {
        let small = payload_of(10, "old");
        let rdb = payload_of(5000, "new");
        let (p, replica, mut to, from, _) = swapdb_replica_synced_once(&small);
        let mark = "m".repeat(40);
        to.write_all(format!("+FULLRESYNC {} 0\r\n$EOF:{mark}\r\n", "a".repeat(40)).as_bytes()).unwrap();
        if broken_mark {
            to.write_all(&rdb).unwrap();
            to.write_all("x".repeat(40).as_bytes()).unwrap();
            wait_for("the refusal", Duration::from_secs(20), || replica.log().contains("EOF marker is broken"));
        } else {
            to.write_all(&rdb[..rdb.len() / 2]).unwrap();
            wait_for("async loading", Duration::from_secs(20), || persistence(replica.port).1 == "1");
            to.shutdown(std::net::Shutdown::Both).unwrap();
        }
        wait_for("the discarded load", Duration::from_secs(20), || {
            replica.log().contains("Discarding temporary DB") && persistence(replica.port) == ("0".into(), "0".into())
        });
        let mut r = replica.raw();
        assert_eq!(r.cmds(&["DBSIZE"]), b":10\r\n", "broken mark {broken_mark}");
        assert_eq!(r.cmds(&["GET", "k0"]), b"$3\r\nold\r\n");
        drop((to, from));
        // The replica retries: the whole payload this time.
        let (mut to, mut from, psync) = p.accept();
        assert_eq!(psync, ["PSYNC", &"a".repeat(40), "1"]);
        to.write_all(format!("+FULLRESYNC {} 0\r\n${}\r\n", "a".repeat(40), rdb.len()).as_bytes()).unwrap();
        to.write_all(&rdb).unwrap();
        std::thread::spawn(move || while read_command(&mut from).is_some() {});
        wait_for("the link", Duration::from_secs(20), || link_up(replica.port));
        assert_eq!(r.cmds(&["DBSIZE"]), b":5000\r\n");
        assert_eq!(r.cmds(&["GET", "k0"]), b"$3\r\nnew\r\n");
        drop(to);
    }
}

/// flurrydb -> flurrydb and redis-server 7.0 -> flurrydb, swapdb: the primary's backlog overrun
/// while the link is down forces a full resync of the same history, its RDB slowed by
/// `rdb-key-save-delay`; meanwhile the replica answers from the old data with `async_loading:1`,
/// then converges.
#[test]
fn swapdb_async_load_from_our_primary_and_from_redis() {
    let (_ours, redis, redis_dir, primaries) = our_and_redis_primaries(
        "redis-primary-swapdb",
        &["--appendonly", "no", "--repl-backlog-size", "16384"],
        &["--repl-backlog-size", "16384", "--repl-diskless-sync-delay", "0"],
    );
    for &port in &primaries {
        let mut c = Server::raw_to(port);
        for i in 0..2000 {
            c.cmds(&["SET", &format!("k{i}"), "old"]);
        }
        c.cmds(&["HSET", "hash", "f", "v"]);
        let replica = Server::start(&["--appendonly", "no", "--repl-diskless-load", "swapdb"]);
        assert_eq!(replica.raw().cmds(&["REPLICAOF", "127.0.0.1", &port.to_string()]), b"+OK\r\n");
        wait_for("the link", Duration::from_secs(20), || link_up(replica.port));
        wait_for("the data", Duration::from_secs(20), || replica.raw().cmds(&["DBSIZE"]) == b":2001\r\n");
        // 2000 keys at 1 ms each: a load of about 2 s.
        assert_eq!(c.cmds(&["CONFIG", "SET", "rdb-key-save-delay", "1000"]), b"+OK\r\n");
        assert_eq!(c.cmds(&["CLIENT", "KILL", "TYPE", "replica"]), b":1\r\n");
        // Past the 16 KB backlog before the replica comes back (it waits a second).
        let filler = "f".repeat(1000);
        for i in 0..100 {
            c.cmds(&["SET", &format!("filler{i}"), &filler]);
        }
        c.cmds(&["SET", "k0", "new"]);
        wait_for("async loading", Duration::from_secs(20), || persistence(replica.port).1 == "1");
        let mut r = replica.raw();
        assert_eq!(r.cmds(&["GET", "k0"]), b"$3\r\nold\r\n", "primary {port}: the old data is served");
        assert_eq!(r.cmds(&["DBSIZE"]), b":2001\r\n");
        assert_eq!(persistence(replica.port).0, "0");
        assert_eq!(c.cmds(&["CONFIG", "SET", "rdb-key-save-delay", "0"]), b"+OK\r\n");
        wait_for("the swap", Duration::from_secs(30), || r.cmds(&["GET", "k0"]) == b"$3\r\nnew\r\n");
        wait_for("the link", Duration::from_secs(20), || link_up(replica.port));
        let full = field(&info(port, "stats"), "sync_full").unwrap();
        assert_eq!(full, "2", "primary {port}: the second sync was full");
        c.cmds(&["SET", "after", "1"]);
        wait_for("the stream", Duration::from_secs(20), || r.cmds(&["GET", "after"]) == b"$1\r\n1\r\n");
        assert_eq!(common::dump_keyspace(replica.port), common::dump_keyspace(port), "primary {port}");
    }
    drop(redis);
    let _ = std::fs::remove_dir_all(&redis_dir);
}

/// swapdb on a replica with the AOF on: the AOF is rewritten after the swap (as after the other
/// modes' loads), so the replica restarted from it (kill -9) holds the primary's keys, not its old
/// ones.
#[test]
fn swapdb_rewrites_the_aof_after_the_swap() {
    let primary = Server::start(&["--appendonly", "no"]);
    let mut c = primary.raw();
    for i in 0..500 {
        c.cmds(&["SET", &format!("k{i}"), &format!("v{i}")]);
    }
    c.cmds(&["SELECT", "2"]);
    c.cmds(&["RPUSH", "list", "a", "b"]);
    let mut replica = Server::start(&["--appendonly", "yes", "--repl-diskless-load", "swapdb"]);
    assert_eq!(replica.raw().cmds(&["SET", "stale", "1"]), b"+OK\r\n");
    assert_eq!(replica.raw().cmds(&["REPLICAOF", "127.0.0.1", &primary.port.to_string()]), b"+OK\r\n");
    wait_for("the link", Duration::from_secs(20), || link_up(replica.port));
    replica.wait_for_rewrite();
    assert_eq!(common::dump_keyspace(replica.port), common::dump_keyspace(primary.port));
    replica.kill9();
    replica.restart();
    assert_eq!(
        common::dump_keyspace(replica.port),
        common::dump_keyspace(primary.port),
        "after a restart from the AOF"
    );
}
