//! WAIT as a blocked client: it counts the acknowledgements of the calling client's own writes
//! (Redis's `c->woff`), is woken by the replicas' ACKs, shows in `blocked_clients`, ends at its
//! timeout or by CLIENT UNBLOCK (TIMEOUT: the count; ERROR: `-UNBLOCKED`), and blocks even where
//! no replica ever connected, as redis-server does (compared where it is installed).

mod common;

use std::process::Command;
use std::time::Duration;

use common::fixed::{Node, conn, field, linked_pair, try_query, wait_for};

fn blocked_clients(port: u16) -> u64 {
    field(&try_query::<String>(port, &["INFO", "clients"]).unwrap_or_default(), "blocked_clients")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `WAIT 1 0` on a server without replicas, ended by CLIENT UNBLOCK with `how`: the raw reply.
fn unblocked_wait(port: u16, how: &str) -> Vec<u8> {
    let mut w = common::Server::raw_to(port);
    let id = String::from_utf8(w.cmds(&["CLIENT", "ID"])).unwrap();
    let id = id.trim_start_matches(':').trim().to_string();
    w.send(b"*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$1\r\n0\r\n");
    wait_for("WAIT to block", Duration::from_secs(10), || blocked_clients(port) == 1);
    let n: i64 = redis::cmd("CLIENT").arg("UNBLOCK").arg(&id).arg(how).query(&mut conn(port)).unwrap();
    assert_eq!(n, 1);
    w.reply()
}

#[test]
fn wait_without_replicas_blocks_until_unblocked_as_redis() {
    let ours = common::Server::start(&[]);
    let mut servers = vec![ours.port];
    let real = common::RealRedis::start(&[]);
    if let Some(r) = &real {
        servers.push(r.port);
    }
    for port in servers {
        assert_eq!(unblocked_wait(port, "TIMEOUT"), b":0\r\n", "port {port}");
        assert_eq!(unblocked_wait(port, "ERROR"), b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n", "port {port}");
        // A timeout ends it with the count.
        assert_eq!(common::Server::raw_to(port).cmds(&["WAIT", "1", "50"]), b":0\r\n");
        assert_eq!(blocked_clients(port), 0);
    }
}

fn signal(n: &Node, sig: &str) {
    let pid = n.proc.child.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
    if sig == "-STOP" {
        // A stop takes effect thread by thread, asynchronously to kill(2) (a thread running on
        // another CPU goes on until that CPU takes the interrupt: on a loaded VM, long enough to
        // receive and acknowledge the next command, which failed this test once in CI). Wait until
        // every thread of the replica shows stopped.
        let stopped = || {
            std::fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|tasks| {
                tasks.flatten().all(|t| {
                    let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                    // The state follows the command name's closing parenthesis.
                    matches!(stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()), Some('T' | 't'))
                })
            })
        };
        wait_for("the replica to stop", Duration::from_secs(10), stopped);
    }
}

/// A client that did not write is not held up by another client's writes the replica has not
/// acknowledged; the writer is, until the replica catches up and its ACK wakes the WAIT.
#[test]
fn wait_counts_the_clients_own_writes_and_wakes_on_acks() {
    let root = common::temp_dir("wait");
    let (primary, replica) = linked_pair(&root, "", "");
    let mut writer = conn(primary.port);
    let _: () = redis::cmd("SET").arg("a").arg("1").query(&mut writer).unwrap();
    let n: i64 = redis::cmd("WAIT").arg(1).arg(10_000).query(&mut writer).unwrap();
    assert_eq!(n, 1);
    let mut reader = conn(primary.port);
    let _: Option<String> = redis::cmd("GET").arg("a").query(&mut reader).unwrap();

    signal(&replica, "-STOP");
    let _: () = redis::cmd("SET").arg("b").arg("2").query(&mut writer).unwrap();
    // The reader wrote nothing: the replica acknowledged all it has to wait for.
    let n: i64 = redis::cmd("WAIT").arg(1).arg(10_000).query(&mut reader).unwrap();
    assert_eq!(n, 1, "a client without writes waits for nobody else's");
    // The writer's WAIT blocks (a blocked client) until the replica resumes and acknowledges.
    let handle = std::thread::spawn(move || redis::cmd("WAIT").arg(1).arg(0).query::<i64>(&mut writer).unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while blocked_clients(primary.port) != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer's WAIT did not block: blocked_clients {}, finished {}, {}",
            blocked_clients(primary.port),
            handle.is_finished(),
            primary.info("replication")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Other clients are served meanwhile.
    let _: () = redis::cmd("SET").arg("c").arg("3").query(&mut reader).unwrap();
    assert_eq!(blocked_clients(primary.port), 1, "the WAIT is still blocked");
    signal(&replica, "-CONT");
    assert_eq!(handle.join().unwrap(), 1);
    assert_eq!(blocked_clients(primary.port), 0);
    drop((primary, replica));
    let _ = std::fs::remove_dir_all(&root);
}
