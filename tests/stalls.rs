//! No command stalls the server: while one connection runs a long command (KEYS or SCAN over a big
//! database, FLUSHALL, LRANGE of a big list), the other connections keep being answered, and SIGTERM or SHUTDOWN during
//! a long command still ends the server with a valid AOF.
//!
//! Nothing here is timed: each test asserts that every other connection completed round trips
//! *while* the long command ran (between sending it and the first byte of its reply). Before the
//! fix, a PING queued on the worker running KEYS, and every writer during FLUSHALL, completed none.
#![cfg(not(feature = "loom"))]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::Server;

const KEYS: usize = 200_000;

/// Fill db 0 with `n` string keys `key:<i>`, pipelined.
fn load(srv: &Server, n: usize) {
    let mut c = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    let chunk = 10_000;
    for start in (0..n).step_by(chunk) {
        let mut buf = Vec::new();
        for i in start..(start + chunk).min(n) {
            let k = format!("key:{i}");
            buf.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n$1\r\nv\r\n", k.len()).as_bytes());
        }
        c.write_all(&buf).unwrap();
        let want = 5 * ((start + chunk).min(n) - start);
        let mut got = vec![0u8; want];
        c.read_exact(&mut got).unwrap();
        assert!(got.chunks(5).all(|r| r == b"+OK\r\n"));
    }
}

/// Round trips of `request` (expecting a one-line reply) that each of `clients` connections
/// completed while `long` ran on another connection; `long`'s reply must start with `reply`.
fn round_trips_during(srv: &Server, clients: usize, request: &'static [u8], long: &[u8], reply: &[u8]) -> Vec<usize> {
    let stop = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, running, ready, port) = (stop.clone(), running.clone(), ready.clone(), srv.port);
            thread::spawn(move || {
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.set_nodelay(true).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let mut line = [0u8; 64];
                let mut during = 0;
                let mut first = true;
                while !stop.load(Ordering::SeqCst) {
                    let was_running = running.load(Ordering::SeqCst);
                    c.write_all(request).unwrap();
                    let n = c.read(&mut line).unwrap();
                    assert!(n > 0 && line[n - 1] == b'\n', "one-line reply");
                    if first {
                        ready.fetch_add(1, Ordering::SeqCst);
                        first = false;
                    }
                    // Counted only when the long command was already running before it was sent
                    // and still is after its reply came back.
                    if was_running && running.load(Ordering::SeqCst) {
                        during += 1;
                    }
                    // Idle a little, as real clients do: the connection's task parks, and its next
                    // request wakes it on whichever worker's queue the I/O driver picks.
                    thread::sleep(Duration::from_millis(1));
                }
                during
            })
        })
        .collect();
    while ready.load(Ordering::SeqCst) < clients {
        thread::yield_now();
    }
    let mut c = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    running.store(true, Ordering::SeqCst);
    c.write_all(long).unwrap();
    let mut first = [0u8; 1];
    c.read_exact(&mut first).unwrap();
    running.store(false, Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let counts = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let mut rest = vec![0u8; reply.len() - 1];
    c.read_exact(&mut rest).unwrap();
    assert_eq!([&first[..], &rest[..]].concat(), reply);
    counts
}

const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
const SET: &[u8] = b"*3\r\n$3\r\nSET\r\n$5\r\nother\r\n$1\r\nv\r\n";

#[test]
fn keys_over_a_big_database_does_not_hold_pings_on_other_connections() {
    let srv = Server::start(&["--appendonly", "no"]);
    load(&srv, KEYS);
    // Three KEYS in one batch: one task busy for all three.
    let keys = b"*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n".repeat(3);
    let counts = round_trips_during(&srv, 6, PING, &keys, format!("*{KEYS}\r\n").as_bytes());
    assert!(counts.iter().all(|&n| n >= 3), "PINGs answered on each connection during KEYS: {counts:?}");
}

#[test]
fn scan_over_a_big_database_does_not_hold_pings_on_other_connections() {
    let srv = Server::start(&["--appendonly", "no"]);
    load(&srv, KEYS);
    // A COUNT as large as the database: each call walks all of it.
    let scan = b"*4\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nCOUNT\r\n$8\r\n10000000\r\n".repeat(8);
    let counts = round_trips_during(&srv, 6, PING, &scan, b"*2\r\n");
    assert!(counts.iter().all(|&n| n >= 3), "PINGs answered on each connection during SCAN: {counts:?}");
}

#[test]
fn flushall_of_a_big_database_does_not_hold_writers_or_pings() {
    let srv = Server::start(&["--appendonly", "yes", "--appendfsync", "everysec"]);
    load(&srv, KEYS);
    let mut flush = b"*1\r\n$8\r\nFLUSHALL\r\n".to_vec();
    // Two FLUSHALLs with a refill between: the second one empties the recycled spare maps too.
    let counts = round_trips_during(&srv, 4, SET, &flush, b"+OK\r\n");
    assert!(counts.iter().all(|&n| n >= 3), "SETs answered on each connection during FLUSHALL: {counts:?}");
    load(&srv, KEYS);
    flush = b"*1\r\n$7\r\nFLUSHDB\r\n".to_vec();
    let counts = round_trips_during(&srv, 4, PING, &flush, b"+OK\r\n");
    assert!(counts.iter().all(|&n| n >= 3), "PINGs answered on each connection during FLUSHDB: {counts:?}");
    let mut c = srv.client();
    let size: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(size, 0, "nothing written after the FLUSHDB");
    redis::cmd("SET").arg("after").arg("1").query::<()>(&mut c).unwrap();
    // The AOF replays to the same keyspace: the flushes, then the writes around them.
    let before = common::dump_keyspace(srv.port);
    let mut srv = srv;
    assert_eq!(srv.stop(), Some(0));
    srv.restart();
    assert_eq!(common::dump_keyspace(srv.port), before);
}

#[test]
fn lrange_of_a_big_list_does_not_hold_pings_on_other_connections() {
    let srv = Server::start(&["--appendonly", "no"]);
    let mut c = srv.raw();
    for chunk in 0..(KEYS / 1000) {
        let mut args: Vec<String> = vec!["RPUSH".into(), "list".into()];
        args.extend((0..1000).map(|i| format!("{}", chunk * 1000 + i)));
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        assert_eq!(c.cmds(&args), format!(":{}\r\n", (chunk + 1) * 1000).into_bytes());
    }
    let lrange = b"*4\r\n$6\r\nLRANGE\r\n$4\r\nlist\r\n$1\r\n0\r\n$2\r\n-1\r\n".repeat(3);
    let counts = round_trips_during(&srv, 6, PING, &lrange, format!("*{KEYS}\r\n").as_bytes());
    assert!(counts.iter().all(|&n| n >= 3), "PINGs answered on each connection during LRANGE: {counts:?}");
}

/// Send `KEYS *` over and over on one connection (each a long command) until the server closes it.
fn keys_forever(port: u16) -> thread::JoinHandle<()> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let keys = b"*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n".repeat(4);
    c.write_all(&keys).unwrap();
    let mut first = [0u8; 1];
    c.read_exact(&mut first).unwrap();
    thread::spawn(move || {
        let mut sink = vec![0u8; 1 << 16];
        loop {
            match c.read(&mut sink) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if c.write_all(b"*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n").is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// Stop the server with `stop` while two connections run back-to-back KEYS, then check it exited 0
/// and that its AOF reloads every key.
fn stop_during_long_commands(fsync: &str, stop: impl FnOnce(&mut Server) -> Option<i32>) {
    let mut srv = Server::start(&["--appendonly", "yes", "--appendfsync", fsync]);
    load(&srv, KEYS);
    let busy = [keys_forever(srv.port), keys_forever(srv.port)];
    assert_eq!(stop(&mut srv), Some(0), "the server exits 0 while two connections run KEYS");
    for b in busy {
        b.join().unwrap();
    }
    srv.restart();
    let mut c = srv.client();
    let size: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(size, KEYS);
}

#[test]
fn sigterm_during_long_commands_exits_0_with_a_valid_aof() {
    stop_during_long_commands("everysec", Server::stop);
}

#[test]
fn shutdown_during_long_commands_exits_0_with_a_valid_aof() {
    stop_during_long_commands("always", |srv| {
        let mut raw = srv.raw();
        raw.send(b"*1\r\n$8\r\nSHUTDOWN\r\n");
        assert!(raw.read_to_close().is_empty(), "SHUTDOWN closes the connection without a reply");
        srv.wait_exit(Duration::from_secs(60))
    });
}
