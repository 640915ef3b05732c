//! A worker whose waits are short spins before it parks instead of blocking in `epoll_wait`
//! (src/workers.rs, "Spinning before a worker parks"): a client's round trips then find it
//! awake. `worker-spin-us 0` turns that off.
#![cfg(not(feature = "loom"))]

mod common;

use common::{Raw, Server, s};

/// Voluntary context switches of the server's thread `name` so far.
fn switches(srv: &Server, name: &str) -> u64 {
    let pid = srv.child.as_ref().unwrap().id();
    let mut total = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        if std::fs::read_to_string(t.path().join("comm")).unwrap_or_default().trim() != name {
            continue;
        }
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        let line = status.lines().find(|l| l.starts_with("voluntary_ctxt_switches:")).unwrap_or("");
        total += line.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    total
}

/// Worker-0's voluntary context switches per round trip over `n` PINGs, one at a time.
fn switches_per_round_trip(srv: &Server, c: &mut Raw, n: u64) -> f64 {
    let before = switches(srv, "worker-0");
    for _ in 0..n {
        c.send(b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(c.reply(), b"+PONG\r\n");
    }
    (switches(srv, "worker-0") - before) as f64 / n as f64
}

#[test]
fn a_busy_worker_spins_between_round_trips_and_worker_spin_us_0_turns_it_off() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        // One runtime in use must leave a core to the clients: nothing spins on one core.
        eprintln!("skipped: one core");
        return;
    }
    let srv = Server::start(&["--worker-threads", "2", "--worker-threads-in-use", "1"]);
    let mut c = srv.raw();
    assert_eq!(s(c.cmds(&["CONFIG", "GET", "worker-spin-us"])), "*2\r\n$14\r\nworker-spin-us\r\n$2\r\n50\r\n");
    switches_per_round_trip(&srv, &mut c, 200);
    // Spinning: the worker is awake when the next request comes (a round trip here is a few µs
    // of the client's; a few rounds allow for a loaded machine descheduling the client).
    let spinning = (0..5).map(|_| switches_per_round_trip(&srv, &mut c, 2000)).fold(f64::MAX, f64::min);
    assert!(spinning < 0.3, "spinning: {spinning:.3} switches per round trip");
    // Off: the worker blocks between any two requests.
    assert_eq!(s(c.cmds(&["CONFIG", "SET", "worker-spin-us", "0"])), "+OK\r\n");
    switches_per_round_trip(&srv, &mut c, 200);
    let blocking = switches_per_round_trip(&srv, &mut c, 2000);
    eprintln!("switches per round trip: {spinning:.3} spinning, {blocking:.3} not");
    assert!(blocking > 0.7, "not spinning: {blocking:.3} switches per round trip");
}
