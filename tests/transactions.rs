//! Transactions through the real server: MULTI/EXEC pipelines, WATCH optimistic locking with
//! competing clients, EXECABORT and runtime errors, what invalidates a WATCH, atomicity as seen by
//! concurrent readers, and transactions in the AOF (kill -9, a torn MULTI block).
#![cfg(not(feature = "loom"))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Raw, Server};

fn aof_always() -> [&'static str; 4] {
    ["--appendonly", "yes", "--appendfsync", "always"]
}

#[test]
fn atomic_pipeline_runs_every_command_and_returns_their_replies() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (set, n, v): (String, i64, String) =
        redis::pipe().atomic().set("a", 1).incr("a", 41).get("a").query(&mut c).unwrap();
    assert_eq!((set.as_str(), n, v.as_str()), ("OK", 42, "42"));
}

#[test]
fn queued_commands_reply_queued_and_exec_replies_an_array() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    assert_eq!(r.cmds(&["MULTI"]), b"+OK\r\n");
    assert_eq!(r.cmds(&["SET", "a", "b"]), b"+QUEUED\r\n");
    assert_eq!(r.cmds(&["INCR", "a"]), b"+QUEUED\r\n");
    assert_eq!(r.cmds(&["MULTI"]), b"-ERR MULTI calls can not be nested\r\n");
    assert_eq!(r.cmds(&["WATCH", "a"]), b"-ERR WATCH inside MULTI is not allowed\r\n");
    // A runtime error is one entry of EXEC's reply; the other commands ran.
    assert_eq!(r.cmds(&["EXEC"]), b"*2\r\n+OK\r\n-ERR value is not an integer or out of range\r\n");
    assert_eq!(r.cmds(&["GET", "a"]), b"$1\r\nb\r\n");
    assert_eq!(r.cmds(&["EXEC"]), b"-ERR EXEC without MULTI\r\n");
    assert_eq!(r.cmds(&["DISCARD"]), b"-ERR DISCARD without MULTI\r\n");
}

#[test]
fn errors_while_queueing_abort_the_transaction() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.cmds(&["MULTI"]);
    assert_eq!(r.cmds(&["NOSUCH", "x"]), b"-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n");
    assert_eq!(r.cmds(&["GET"]), b"-ERR wrong number of arguments for 'get' command\r\n");
    assert_eq!(r.cmds(&["SET", "a", "1"]), b"+QUEUED\r\n");
    assert_eq!(r.cmds(&["EXEC"]), b"-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert_eq!(r.cmds(&["GET", "a"]), b"$-1\r\n");
}

/// WATCH k, let `other` run `by_other`, then MULTI PING EXEC: the raw EXEC reply.
fn exec_after_watch(s: &Server, by_other: &[&[&str]], pause: Duration) -> Vec<u8> {
    let (mut a, mut b) = (s.raw(), s.raw());
    assert_eq!(a.cmds(&["WATCH", "k"]), b"+OK\r\n");
    for c in by_other {
        b.cmds(c);
    }
    std::thread::sleep(pause);
    a.cmds(&["MULTI"]);
    a.cmds(&["PING"]);
    a.cmds(&["EXEC"])
}

#[test]
fn watch_is_invalidated_by_writes_expiry_flushall_and_rename() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let none = Duration::ZERO;
    let (ran, failed) = (b"*1\r\n+PONG\r\n".to_vec(), b"*-1\r\n".to_vec());
    assert_eq!(exec_after_watch(&s, &[], none), ran);
    assert_eq!(exec_after_watch(&s, &[&["SET", "other", "1"]], none), ran);
    assert_eq!(exec_after_watch(&s, &[&["SET", "k", "1"]], none), failed);
    r.cmds(&["SET", "k", "1", "PX", "100"]);
    assert_eq!(exec_after_watch(&s, &[], Duration::from_millis(300)), failed, "expired after WATCH");
    r.cmds(&["SET", "k", "1"]);
    assert_eq!(exec_after_watch(&s, &[&["FLUSHALL"]], none), failed);
    assert_eq!(exec_after_watch(&s, &[&["FLUSHALL"]], none), ran, "FLUSHALL of a missing key");
    r.cmds(&["SET", "z", "1"]);
    assert_eq!(exec_after_watch(&s, &[&["RENAME", "z", "k"]], none), failed);
    assert_eq!(exec_after_watch(&s, &[&["RENAME", "k", "z"]], none), failed);
    assert_eq!(exec_after_watch(&s, &[&["SELECT", "1"], &["SET", "k", "1"]], none), ran, "another db");
    // EXEC, DISCARD and UNWATCH forget the watches.
    let mut a = s.raw();
    a.cmds(&["WATCH", "k"]);
    r.cmds(&["SET", "k", "2"]);
    assert_eq!(a.cmds(&["UNWATCH"]), b"+OK\r\n");
    a.cmds(&["MULTI"]);
    assert_eq!(a.cmds(&["EXEC"]), b"*0\r\n");
}

#[test]
fn watch_retry_loop_counts_exactly_the_successful_execs() {
    let s = Server::start(&[]);
    let port = s.port;
    let successes = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let successes = Arc::clone(&successes);
            std::thread::spawn(move || {
                let mut c =
                    redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
                for _ in 0..40 {
                    loop {
                        redis::cmd("WATCH").arg("counter").query::<()>(&mut c).unwrap();
                        let v: Option<i64> = redis::cmd("GET").arg("counter").query(&mut c).unwrap();
                        let r: Option<(String,)> =
                            redis::pipe().atomic().set("counter", v.unwrap_or(0) + 1).query(&mut c).unwrap();
                        if r.is_some() {
                            successes.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let total: i64 = redis::cmd("GET").arg("counter").query(&mut s.client()).unwrap();
    assert_eq!(total as u64, successes.load(Ordering::SeqCst));
    assert_eq!(total, 8 * 40);
}

fn parse_ints(reply: &[u8]) -> Vec<i64> {
    let text = String::from_utf8_lossy(reply);
    let lines: Vec<&str> = text.split("\r\n").collect();
    let mut out = Vec::new();
    let mut i = 1;
    while i < lines.len() {
        if lines[i] == "$-1" {
            out.push(0);
        } else if lines[i].starts_with('$') {
            out.push(lines[i + 1].parse().unwrap());
            i += 1;
        } else if let Some(n) = lines[i].strip_prefix(':') {
            out.push(n.parse().unwrap());
        }
        i += 1;
    }
    out
}

/// 8 clients run `MULTI; INCR a; INCR b; EXEC` while readers look at a and b with MGET, with
/// `MULTI GET a GET b EXEC`, and with GET a then GET b: nobody sees a transaction half-applied.
fn readers_never_see_half_a_transaction(s: &Server) {
    let stop = Arc::new(AtomicBool::new(false));
    let port = s.port;
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut r = Raw::new(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    r.send(b"*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\na\r\n*2\r\n$4\r\nINCR\r\n$1\r\nb\r\n*1\r\n$4\r\nEXEC\r\n");
                    for _ in 0..4 {
                        r.reply();
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let readers: Vec<_> = (0..3)
        .map(|kind| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut r = Raw::new(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
                let mut checks = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (a, b) = match kind {
                        0 => {
                            let v = parse_ints(&r.cmds(&["MGET", "a", "b"]));
                            (v[0], v[1])
                        }
                        1 => {
                            r.cmds(&["MULTI"]);
                            r.cmds(&["GET", "a"]);
                            r.cmds(&["GET", "b"]);
                            let v = parse_ints(&r.cmds(&["EXEC"]));
                            (v[0], v[1])
                        }
                        _ => {
                            let a = parse_ints(&[&b"*1\r\n"[..], &r.cmds(&["GET", "a"])].concat())[0];
                            let b = parse_ints(&[&b"*1\r\n"[..], &r.cmds(&["GET", "b"])].concat())[0];
                            assert!(b >= a, "GET a = {a} then GET b = {b}: saw a transaction half-applied");
                            (a, a)
                        }
                    };
                    assert_eq!(a, b, "reader {kind} saw a = {a}, b = {b}");
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let execs: i64 = writers.into_iter().map(|t| t.join().unwrap()).sum();
    for t in readers {
        assert!(t.join().unwrap() > 10, "every reader ran");
    }
    let mut r = s.raw();
    let v = parse_ints(&r.cmds(&["MGET", "a", "b"]));
    assert_eq!(v, vec![execs, execs]);
}

#[test]
fn concurrent_readers_never_see_a_transaction_half_applied() {
    let s = Server::start(&[]);
    readers_never_see_half_a_transaction(&s);
}

#[test]
fn concurrent_transactions_replay_from_the_aof_without_interleaving() {
    let mut s = Server::start(&["--appendonly", "yes", "--appendfsync", "everysec"]);
    // Other clients' plain writes go to the same keys' stripes meanwhile.
    let port = s.port;
    let noise = std::thread::spawn(move || {
        let mut r = Raw::new(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
        let deadline = Instant::now() + Duration::from_millis(1200);
        let mut i = 0;
        while Instant::now() < deadline {
            r.cmds(&["SET", &format!("noise{}", i % 50), &i.to_string()]);
            r.cmds(&["INCR", "c"]);
            i += 1;
        }
    });
    readers_never_see_half_a_transaction(&s);
    noise.join().unwrap();
    let before = s.raw().cmds(&["MGET", "a", "b", "c", "noise7"]);
    s.stop();
    let file = std::fs::read(s.dir.join("appendonly.aof")).unwrap();
    assert_blocks_are_contiguous(&file);
    s.restart();
    assert_eq!(s.raw().cmds(&["MGET", "a", "b", "c", "noise7"]), before);
}

/// Every MULTI in the file is followed by its own records and an EXEC before any other MULTI.
fn assert_blocks_are_contiguous(file: &[u8]) {
    let text = String::from_utf8_lossy(file);
    let mut open = false;
    let mut blocks = 0;
    for line in text.split("\r\n") {
        match line {
            "MULTI" => {
                assert!(!open, "a MULTI inside another block");
                open = true;
            }
            "EXEC" => {
                assert!(open, "EXEC without MULTI");
                open = false;
                blocks += 1;
            }
            // Only INCR a / INCR b may be inside a block here.
            "SET" | "c" => assert!(!open, "another client's record inside a MULTI block"),
            _ => {}
        }
    }
    assert!(!open);
    assert!(blocks > 0);
}

#[test]
fn a_transaction_survives_kill9_and_restart() {
    let mut s = Server::start(&aof_always());
    let mut r = s.raw();
    r.cmds(&["SET", "before", "1"]);
    r.cmds(&["MULTI"]);
    r.cmds(&["SET", "x", "1"]);
    r.cmds(&["INCR", "y"]);
    r.cmds(&["RPUSH", "l", "a", "b"]);
    r.cmds(&["SELECT", "3"]);
    r.cmds(&["SET", "in3", "v"]);
    r.cmds(&["GET", "x"]);
    assert_eq!(r.cmds(&["EXEC"]), b"*6\r\n+OK\r\n:1\r\n:2\r\n+OK\r\n+OK\r\n$-1\r\n");
    r.cmds(&["SET", "after", "1"]);
    // A read-only transaction logs nothing.
    r.cmds(&["MULTI"]);
    r.cmds(&["GET", "in3"]);
    r.cmds(&["EXEC"]);
    s.kill9();
    let file = String::from_utf8_lossy(&std::fs::read(s.dir.join("appendonly.aof")).unwrap()).into_owned();
    assert_eq!(file.matches("MULTI").count(), 1, "{file}");
    s.restart();
    let mut r = s.raw();
    assert_eq!(r.cmds(&["MGET", "before", "x", "y", "after"]), b"*4\r\n$1\r\n1\r\n$1\r\n1\r\n$1\r\n1\r\n$-1\r\n");
    assert_eq!(r.cmds(&["LRANGE", "l", "0", "-1"]), b"*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    r.cmds(&["SELECT", "3"]);
    assert_eq!(r.cmds(&["MGET", "in3", "after"]), b"*2\r\n$1\r\nv\r\n$1\r\n1\r\n");
}

#[test]
fn a_torn_last_multi_block_is_dropped_and_later_writes_load() {
    for torn in [
        &b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nz\r\n$1\r\n1\r\n"[..],
        &b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nz\r\n$1"[..],
    ] {
        let mut s = Server::start(&aof_always());
        let mut r = s.raw();
        r.cmds(&["MULTI"]);
        r.cmds(&["SET", "a", "1"]);
        r.cmds(&["EXEC"]);
        s.stop();
        let path = s.dir.join("appendonly.aof");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(torn);
        std::fs::write(&path, &bytes).unwrap();
        s.restart();
        let mut r = s.raw();
        assert_eq!(r.cmds(&["MGET", "a", "z"]), b"*2\r\n$1\r\n1\r\n$-1\r\n");
        // The dropped block was cut from the file: what is written now loads after a restart.
        assert_eq!(r.cmds(&["SET", "c", "3"]), b"+OK\r\n");
        s.stop();
        s.restart();
        assert_eq!(s.raw().cmds(&["MGET", "a", "z", "c"]), b"*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n");
    }
}

/// Above maxmemory Redis 7.0 refuses every command queued in MULTI (not only those that may grow
/// memory), and EXEC then aborts the transaction.
#[test]
fn queueing_above_maxmemory_is_refused_and_exec_aborts() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    assert_eq!(r.cmds(&["MULTI"]), b"+OK\r\n");
    assert_eq!(r.cmds(&["CONFIG", "SET", "maxmemory", "1"]), b"+QUEUED\r\n");
    assert_eq!(r.cmds(&["EXEC"]), b"*1\r\n+OK\r\n");
    let oom = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";
    assert_eq!(r.cmds(&["MULTI"]), b"+OK\r\n");
    assert_eq!(r.cmds(&["SET", "k", "v"]), oom);
    assert_eq!(r.cmds(&["GET", "k"]), oom);
    assert_eq!(r.cmds(&["EXEC"]), b"-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert_eq!(r.cmds(&["MULTI"]), b"+OK\r\n");
    assert_eq!(r.cmds(&["RESET"]), b"+RESET\r\n");
    assert_eq!(r.cmds(&["CONFIG", "SET", "maxmemory", "0"]), b"+OK\r\n");
    assert_eq!(r.cmds(&["GET", "k"]), b"$-1\r\n");
}
