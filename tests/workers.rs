//! Connections move between worker runtimes (src/workers.rs) with their whole state, and run on
//! the runtime they belong on: `worker-threads-in-use` fixes how many are in use, as the balancer
//! does by load, and a connection moves at the end of its next batch.
#![cfg(not(feature = "loom"))]

mod common;

use std::time::{Duration, Instant};

use common::{Raw, Server, bulk, s, send, wait_blocked};

/// CPU clock ticks used so far by the server's threads named `name` (its workers are `worker-<i>`).
fn thread_ticks(srv: &Server, name: &str) -> u64 {
    let pid = srv.child.as_ref().unwrap().id();
    let mut total = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest.split_whitespace().skip(11).take(2).map(|v| v.parse().unwrap_or(0)).collect();
        total += f.iter().sum::<u64>();
    }
    total
}

fn client_id(c: &mut Raw) -> u64 {
    let r = s(c.cmds(&["CLIENT", "ID"]));
    r.trim_start_matches(':').trim().parse().unwrap()
}

/// Round trips on `c` (20 INCRs each, so that the server does more than wait on the socket) until
/// the server's thread `busy` has used 10 more clock ticks (at most 20 s); the ticks that `busy`
/// and `idle` used meanwhile.
fn work_until(srv: &Server, c: &mut Raw, busy: &str, idle: &str) -> (u64, u64) {
    let (b0, i0) = (thread_ticks(srv, busy), thread_ticks(srv, idle));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut req = Vec::new();
    for _ in 0..20 {
        req.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$4\r\nhits\r\n");
    }
    while thread_ticks(srv, busy) < b0 + 10 && Instant::now() < deadline {
        c.send(&req);
        for _ in 0..20 {
            let r = c.reply();
            assert!(r.starts_with(b":"), "{}", s(r));
        }
    }
    (thread_ticks(srv, busy) - b0, thread_ticks(srv, idle) - i0)
}

/// Two connections, one with an even and one with an odd id (so each belongs on a different
/// runtime when two are in use), and a third for control.
fn even_and_odd(srv: &Server) -> (Raw, Raw) {
    let mut even = None;
    let mut odd = None;
    while even.is_none() || odd.is_none() {
        let mut c = srv.raw();
        if client_id(&mut c) % 2 == 0 {
            even.get_or_insert(c);
        } else {
            odd.get_or_insert(c);
        }
    }
    (even.unwrap(), odd.unwrap())
}

#[test]
fn a_connection_runs_on_the_runtime_it_belongs_on_and_moves_when_the_count_changes() {
    let srv = Server::start(&["--worker-threads", "2", "--worker-threads-in-use", "1"]);
    let mut ctl = srv.raw();
    let (_even, mut odd) = even_and_odd(&srv);
    assert!(s(ctl.cmds(&["INFO", "server"])).contains("io_threads_active:0\r\n"));

    // One runtime in use: the odd connection's work is worker-0's.
    let (d0, d1) = work_until(&srv, &mut odd, "worker-0", "worker-1");
    assert!(d0 >= 10 && d1 * 3 < d0, "one runtime in use: worker-0 +{d0} ticks, worker-1 +{d1}");

    // Two: after its next batch the odd connection runs on worker-1.
    assert_eq!(s(ctl.cmds(&["CONFIG", "SET", "worker-threads-in-use", "2"])), "+OK\r\n");
    assert!(s(ctl.cmds(&["INFO", "server"])).contains("io_threads_active:1\r\n"));
    assert_eq!(s(odd.cmds(&["PING"])), "+PONG\r\n");
    let (d1, d0) = work_until(&srv, &mut odd, "worker-1", "worker-0");
    assert!(d1 >= 10 && d0 * 3 < d1, "two runtimes in use: worker-0 +{d0} ticks, worker-1 +{d1}");

    // Back to one: back to worker-0.
    assert_eq!(s(ctl.cmds(&["CONFIG", "SET", "worker-threads-in-use", "1"])), "+OK\r\n");
    assert_eq!(s(odd.cmds(&["PING"])), "+PONG\r\n");
    let (d0, d1) = work_until(&srv, &mut odd, "worker-0", "worker-1");
    assert!(d0 >= 10 && d1 * 3 < d0, "one runtime again: worker-0 +{d0} ticks, worker-1 +{d1}");
    // Every INCR counted once, on whichever runtime it ran.
    let total = s(ctl.cmds(&["GET", "hits"]));
    let n: u64 = total.lines().nth(1).unwrap().parse().unwrap();
    assert!(n >= 60 && n % 20 == 0, "{total}");
}

#[test]
fn a_moving_connection_keeps_its_transaction_watch_database_and_name() {
    let srv = Server::start(&["--worker-threads", "2", "--worker-threads-in-use", "1"]);
    let mut ctl = srv.raw();
    let (_even, mut odd) = even_and_odd(&srv);
    assert_eq!(s(odd.cmds(&["SELECT", "3"])), "+OK\r\n");
    assert_eq!(s(odd.cmds(&["CLIENT", "SETNAME", "mover"])), "+OK\r\n");
    assert_eq!(s(odd.cmds(&["WATCH", "w"])), "+OK\r\n");
    assert_eq!(s(odd.cmds(&["MULTI"])), "+OK\r\n");
    assert_eq!(s(odd.cmds(&["SET", "a", "1"])), "+QUEUED\r\n");
    // The odd connection moves to worker-1 after its next batch, in the middle of MULTI.
    assert_eq!(s(ctl.cmds(&["CONFIG", "SET", "worker-threads-in-use", "2"])), "+OK\r\n");
    assert_eq!(s(odd.cmds(&["SET", "b", "2"])), "+QUEUED\r\n");
    assert_eq!(s(odd.cmds(&["INCR", "a"])), "+QUEUED\r\n");
    assert_eq!(s(odd.cmds(&["EXEC"])), "*3\r\n+OK\r\n+OK\r\n:2\r\n");
    assert_eq!(s(odd.cmds(&["CLIENT", "GETNAME"])), bulk("mover"));
    assert_eq!(s(odd.cmds(&["GET", "b"])), bulk("2"), "still database 3");
    assert_eq!(s(ctl.cmds(&["SELECT", "3"])), "+OK\r\n");
    assert_eq!(s(ctl.cmds(&["GET", "a"])), bulk("2"));

    // A WATCH taken on one runtime is broken by a write from the other, after a move back.
    assert_eq!(s(odd.cmds(&["WATCH", "w"])), "+OK\r\n");
    assert_eq!(s(ctl.cmds(&["CONFIG", "SET", "worker-threads-in-use", "1"])), "+OK\r\n");
    assert_eq!(s(odd.cmds(&["PING"])), "+PONG\r\n");
    assert_eq!(s(ctl.cmds(&["SET", "w", "changed"])), "+OK\r\n");
    assert_eq!(s(odd.cmds(&["MULTI"])), "+OK\r\n");
    assert_eq!(s(odd.cmds(&["SET", "a", "3"])), "+QUEUED\r\n");
    assert_eq!(s(odd.cmds(&["EXEC"])), "*-1\r\n");
    assert_eq!(s(ctl.cmds(&["GET", "a"])), bulk("2"));
}

#[test]
fn clients_on_different_runtimes_wake_and_message_one_another() {
    let srv = Server::start(&["--worker-threads", "2", "--worker-threads-in-use", "2"]);
    let mut ctl = srv.raw();
    let (mut even, mut odd) = even_and_odd(&srv);
    // A pop blocked on worker-0, served by a push on worker-1, and the other way round.
    send(&mut even, &["BLPOP", "q", "10"]);
    wait_blocked(&mut ctl, 1);
    assert_eq!(s(odd.cmds(&["RPUSH", "q", "v1"])), ":1\r\n");
    assert_eq!(s(even.reply()), format!("*2\r\n{}{}", bulk("q"), bulk("v1")));
    send(&mut odd, &["BLPOP", "q", "10"]);
    wait_blocked(&mut ctl, 1);
    assert_eq!(s(even.cmds(&["RPUSH", "q", "v2"])), ":1\r\n");
    assert_eq!(s(odd.reply()), format!("*2\r\n{}{}", bulk("q"), bulk("v2")));

    // A subscriber does not move (its messages are written from other threads); it is served
    // where it is while the count changes, and moves once it has unsubscribed.
    let sub_reply = s(odd.cmds(&["SUBSCRIBE", "ch"]));
    assert!(sub_reply.ends_with(":1\r\n"), "{sub_reply}");
    assert_eq!(s(ctl.cmds(&["CONFIG", "SET", "worker-threads-in-use", "1"])), "+OK\r\n");
    assert_eq!(s(even.cmds(&["PUBLISH", "ch", "m1"])), ":1\r\n");
    assert_eq!(s(odd.reply()), format!("*3\r\n{}{}{}", bulk("message"), bulk("ch"), bulk("m1")));
    let unsub = s(odd.cmds(&["UNSUBSCRIBE", "ch"]));
    assert!(unsub.ends_with(":0\r\n"), "{unsub}");
    assert_eq!(s(odd.cmds(&["PING"])), "+PONG\r\n");
    assert_eq!(s(ctl.cmds(&["CONFIG", "SET", "worker-threads-in-use", "2"])), "+OK\r\n");
    assert_eq!(s(odd.cmds(&["SET", "k", "v"])), "+OK\r\n");
    assert_eq!(s(even.cmds(&["GET", "k"])), bulk("v"));
    // CLIENT KILL reaches a connection that has just moved.
    let id = client_id(&mut odd);
    assert_eq!(s(ctl.cmds(&["CONFIG", "SET", "worker-threads-in-use", "1"])), "+OK\r\n");
    assert_eq!(s(odd.cmds(&["PING"])), "+PONG\r\n");
    assert_eq!(s(ctl.cmds(&["CLIENT", "KILL", "ID", &id.to_string()])), ":1\r\n");
    assert!(odd.read_to_close().is_empty());
}
