//! Blocking list pops through the real server: immediate service, wake-ups by other clients,
//! timeouts, FIFO order among blocked clients, MULTI, disconnects, a worker queue, and the AOF.
#![cfg(not(feature = "loom"))]

mod common;

use std::collections::HashSet;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{Raw, Server, s, send};

/// The RESP of a `[key, element]` reply.
fn pair(key: &str, ele: &str) -> String {
    format!("*2\r\n${}\r\n{key}\r\n${}\r\n{ele}\r\n", key.len(), ele.len())
}

/// Wait until `n` clients are blocked (CLIENT LIST cmd= names a blocking command).
fn wait_blocked(c: &mut Raw, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list = s(c.cmds(&["CLIENT", "LIST"]));
        let blocked = ["cmd=blpop", "cmd=brpop", "cmd=blmove", "cmd=brpoplpush", "cmd=blmpop"]
            .iter()
            .map(|p| list.matches(p).count())
            .sum::<usize>();
        if blocked >= n {
            // The command name is noted before the handler registers: give it a moment.
            sleep(Duration::from_millis(50));
            return;
        }
        assert!(Instant::now() < deadline, "{n} clients never blocked: {list}");
        sleep(Duration::from_millis(10));
    }
}

#[test]
fn blpop_returns_at_once_when_data_exists() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    c.cmds(&["RPUSH", "l", "a", "b"]);
    assert_eq!(s(c.cmds(&["BLPOP", "l", "0"])), pair("l", "a"));
    assert_eq!(s(c.cmds(&["BRPOP", "l", "0"])), pair("l", "b"));
    assert_eq!(s(c.cmds(&["EXISTS", "l"])), ":0\r\n");
}

#[test]
fn blpop_is_woken_by_another_clients_push() {
    let srv = Server::start(&[]);
    let (mut a, mut b) = (srv.raw(), srv.raw());
    send(&mut a, &["BLPOP", "q", "0"]);
    wait_blocked(&mut b, 1);
    assert_eq!(s(b.cmds(&["RPUSH", "q", "job"])), ":1\r\n");
    assert_eq!(s(a.reply()), pair("q", "job"));
    assert_eq!(s(b.cmds(&["EXISTS", "q"])), ":0\r\n");
}

#[test]
fn blpop_is_woken_by_sort_store_into_its_key() {
    let srv = Server::start(&[]);
    let (mut a, mut b) = (srv.raw(), srv.raw());
    send(&mut a, &["BLPOP", "q", "0"]);
    wait_blocked(&mut b, 1);
    b.cmds(&["RPUSH", "src", "2", "1"]);
    assert_eq!(s(b.cmds(&["SORT", "src", "STORE", "q"])), ":2\r\n");
    assert_eq!(s(a.reply()), pair("q", "1"));
    assert_eq!(s(b.cmds(&["LRANGE", "q", "0", "-1"])), "*1\r\n$1\r\n2\r\n");
}

#[test]
fn timeouts_reply_with_the_null_array() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let t = Instant::now();
    assert_eq!(s(c.cmds(&["BLPOP", "none", "0.1"])), "*-1\r\n");
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(90) && took < Duration::from_secs(2), "{took:?}");
    assert_eq!(s(c.cmds(&["BLMOVE", "none", "d", "LEFT", "LEFT", "0.05"])), "*-1\r\n");
    assert_eq!(s(c.cmds(&["BRPOPLPUSH", "none", "d", "0.05"])), "*-1\r\n");
    assert_eq!(s(c.cmds(&["BLMPOP", "0.05", "1", "none", "LEFT"])), "*-1\r\n");
    // The connection works normally afterwards, and pipelined commands waited their turn.
    send(&mut c, &["BRPOP", "none", ".05"]);
    send(&mut c, &["PING"]);
    assert_eq!(s(c.reply()), "*-1\r\n");
    assert_eq!(s(c.reply()), "+PONG\r\n");
}

#[test]
fn zero_timeout_waits_forever_and_fractions_are_honoured() {
    let srv = Server::start(&[]);
    let (mut a, mut b) = (srv.raw(), srv.raw());
    send(&mut a, &["BLPOP", "q", "0"]);
    sleep(Duration::from_millis(300));
    b.cmds(&["LPUSH", "q", "late"]);
    assert_eq!(s(a.reply()), pair("q", "late"));
    // -0.0001 seconds truncate to 0 ms: forever, as in Redis.
    send(&mut a, &["BLPOP", "q", "-0.0001"]);
    sleep(Duration::from_millis(200));
    b.cmds(&["LPUSH", "q", "later"]);
    assert_eq!(s(a.reply()), pair("q", "later"));
}

#[test]
fn bad_timeouts_are_errors() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    assert_eq!(s(c.cmds(&["BLPOP", "k", "-1"])), "-ERR timeout is negative\r\n");
    assert_eq!(s(c.cmds(&["BLPOP", "k", "abc"])), "-ERR timeout is not a float or out of range\r\n");
    assert_eq!(s(c.cmds(&["BLMPOP", "x", "1", "k", "LEFT"])), "-ERR timeout is not a float or out of range\r\n");
    assert_eq!(s(c.cmds(&["BLMPOP", "0", "0", "k", "LEFT"])), "-ERR numkeys should be greater than 0\r\n");
}

#[test]
fn several_keys_are_checked_in_argument_order() {
    let srv = Server::start(&[]);
    let (mut a, mut b) = (srv.raw(), srv.raw());
    a.cmds(&["RPUSH", "k3", "three"]);
    a.cmds(&["RPUSH", "k2", "two"]);
    assert_eq!(s(a.cmds(&["BLPOP", "k1", "k2", "k3", "0"])), pair("k2", "two"));
    send(&mut a, &["BRPOP", "k1", "k2", "0"]);
    wait_blocked(&mut b, 1);
    b.cmds(&["RPUSH", "k2", "x"]);
    assert_eq!(s(a.reply()), pair("k2", "x"));
}

#[test]
fn blocked_clients_are_served_first_come_first_served() {
    let srv = Server::start(&[]);
    let mut p = srv.raw();
    let mut waiters: Vec<Raw> = (0..3).map(|_| srv.raw()).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        send(w, &["BLPOP", "fifo", "0"]);
        wait_blocked(&mut p, i + 1);
    }
    for (i, w) in waiters.iter_mut().enumerate() {
        p.cmds(&["RPUSH", "fifo", &format!("e{i}")]);
        assert_eq!(s(w.reply()), pair("fifo", &format!("e{i}")));
    }
    // One push of several elements serves them all, in order.
    for (i, w) in waiters.iter_mut().enumerate() {
        send(w, &["BLPOP", "fifo", "0"]);
        wait_blocked(&mut p, i + 1);
    }
    p.cmds(&["RPUSH", "fifo", "a", "b", "c"]);
    for (w, e) in waiters.iter_mut().zip(["a", "b", "c"]) {
        assert_eq!(s(w.reply()), pair("fifo", e));
    }
}

#[test]
fn blmove_and_brpoplpush_move_into_the_destination() {
    let srv = Server::start(&[]);
    let (mut a, mut b) = (srv.raw(), srv.raw());
    send(&mut a, &["BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"]);
    wait_blocked(&mut b, 1);
    b.cmds(&["RPUSH", "src", "x", "y"]);
    assert_eq!(s(a.reply()), "$1\r\ny\r\n");
    assert_eq!(s(b.cmds(&["LRANGE", "dst", "0", "-1"])), "*1\r\n$1\r\ny\r\n");
    assert_eq!(s(b.cmds(&["LRANGE", "src", "0", "-1"])), "*1\r\n$1\r\nx\r\n");
    send(&mut a, &["BRPOPLPUSH", "empty", "dst", "0"]);
    wait_blocked(&mut b, 1);
    b.cmds(&["LPUSH", "empty", "z"]);
    assert_eq!(s(a.reply()), "$1\r\nz\r\n");
    assert_eq!(s(b.cmds(&["LRANGE", "dst", "0", "-1"])), "*2\r\n$1\r\nz\r\n$1\r\ny\r\n");
    assert_eq!(s(b.cmds(&["EXISTS", "empty"])), ":0\r\n");
}

#[test]
fn blmove_destination_wakes_a_client_blocked_on_it() {
    let srv = Server::start(&[]);
    let (mut a, mut b, mut c) = (srv.raw(), srv.raw(), srv.raw());
    send(&mut a, &["BLPOP", "stage2", "0"]);
    wait_blocked(&mut c, 1);
    send(&mut b, &["BLMOVE", "stage1", "stage2", "LEFT", "RIGHT", "0"]);
    wait_blocked(&mut c, 2);
    c.cmds(&["RPUSH", "stage1", "job"]);
    assert_eq!(s(b.reply()), "$3\r\njob\r\n");
    assert_eq!(s(a.reply()), pair("stage2", "job"));
}

#[test]
fn blmpop_takes_up_to_count_elements() {
    let srv = Server::start(&[]);
    let (mut a, mut b) = (srv.raw(), srv.raw());
    b.cmds(&["RPUSH", "l", "1", "2", "3"]);
    assert_eq!(
        s(a.cmds(&["BLMPOP", "0", "2", "none", "l", "RIGHT", "COUNT", "2"])),
        "*2\r\n$1\r\nl\r\n*2\r\n$1\r\n3\r\n$1\r\n2\r\n"
    );
    send(&mut a, &["BLMPOP", "0", "1", "m", "LEFT", "COUNT", "5"]);
    wait_blocked(&mut b, 1);
    b.cmds(&["RPUSH", "m", "x", "y"]);
    assert_eq!(s(a.reply()), "*2\r\n$1\r\nm\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n");
    assert_eq!(s(a.cmds(&["LMPOP", "1", "m", "LEFT"])), "*-1\r\n");
}

#[test]
fn inside_multi_nothing_blocks() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    c.cmds(&["MULTI"]);
    c.cmds(&["BLPOP", "none", "0"]);
    c.cmds(&["BLMOVE", "none", "d", "LEFT", "LEFT", "0"]);
    c.cmds(&["BLMPOP", "0", "1", "none", "LEFT"]);
    c.cmds(&["RPUSH", "l", "v"]);
    c.cmds(&["BRPOP", "l", "0"]);
    c.cmds(&["LMPOP", "1", "none", "LEFT"]);
    assert_eq!(s(c.cmds(&["EXEC"])), format!("*6\r\n*-1\r\n$-1\r\n*-1\r\n:1\r\n{}*-1\r\n", pair("l", "v")));
}

#[test]
fn a_client_that_disconnects_while_blocked_takes_nothing() {
    let srv = Server::start(&[]);
    let mut b = srv.raw();
    {
        let mut a = srv.raw();
        send(&mut a, &["BLPOP", "gone", "0"]);
        wait_blocked(&mut b, 1);
    }
    sleep(Duration::from_millis(200));
    assert_eq!(s(b.cmds(&["RPUSH", "gone", "kept"])), ":1\r\n");
    sleep(Duration::from_millis(100));
    assert_eq!(s(b.cmds(&["LLEN", "gone"])), ":1\r\n");
}

#[test]
fn workers_process_every_job_exactly_once() {
    const JOBS: usize = 400;
    let srv = Server::start(&[]);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let mut c = srv.raw();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    let r = s(c.cmds(&["BLPOP", "jobs", "1"]));
                    if r == "*-1\r\n" {
                        return got;
                    }
                    let job = r.rsplit("\r\n").nth(1).unwrap_or_default().to_string();
                    if job == "stop" {
                        return got;
                    }
                    got.push(job);
                }
            })
        })
        .collect();
    let mut p = srv.raw();
    for i in 0..JOBS {
        p.cmds(&["RPUSH", "jobs", &format!("job{i}")]);
    }
    for _ in 0..4 {
        p.cmds(&["RPUSH", "jobs", "stop"]);
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for w in workers {
        for job in w.join().unwrap() {
            total += 1;
            assert!(seen.insert(job.clone()), "{job} processed twice");
        }
    }
    assert_eq!(total, JOBS);
    assert_eq!(seen.len(), JOBS);
}

#[test]
fn blocked_pops_survive_kill9_as_their_non_blocking_records() {
    let mut srv = Server::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let (mut a, mut b) = (srv.raw(), srv.raw());
    b.cmds(&["RPUSH", "l", "1", "2", "3"]);
    assert_eq!(s(a.cmds(&["BLPOP", "l", "0"])), pair("l", "1"));
    send(&mut a, &["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]);
    wait_blocked(&mut b, 1);
    b.cmds(&["RPUSH", "src", "m1", "m2"]);
    assert_eq!(s(a.reply()), "$2\r\nm1\r\n");
    send(&mut a, &["BLMPOP", "0", "1", "mp", "RIGHT", "COUNT", "2"]);
    wait_blocked(&mut b, 1);
    b.cmds(&["RPUSH", "mp", "a", "b", "c"]);
    assert_eq!(s(a.reply()), "*2\r\n$2\r\nmp\r\n*2\r\n$1\r\nc\r\n$1\r\nb\r\n");
    send(&mut a, &["BRPOP", "gone", "0"]);
    wait_blocked(&mut b, 1);
    b.cmds(&["RPUSH", "gone", "only"]);
    assert_eq!(s(a.reply()), pair("gone", "only"));
    let dump = |c: &mut Raw| ["l", "src", "dst", "mp", "gone"].map(|k| s(c.cmds(&["LRANGE", k, "0", "-1"]))).join("|");
    let before = dump(&mut b);
    srv.kill9();
    srv.restart();
    let mut c = srv.raw();
    assert_eq!(dump(&mut c), before);
    let aof = std::fs::read_dir(&srv.dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| String::from_utf8_lossy(&std::fs::read(e.path()).unwrap_or_default()).to_lowercase())
        .collect::<String>();
    assert!(!aof.contains("blpop") && !aof.contains("blmove") && !aof.contains("blmpop"));
}

/// As in Redis, blocked clients are served before the next command runs: three clients blocked on
/// one key get the elements of three pushes from three connections in blocking order, and a
/// non-blocking LPOP sent right after each push finds nothing (Redis 7.0.15 gives exactly these
/// replies).
#[test]
fn blocked_clients_are_served_before_the_next_command_as_in_redis() {
    let srv = Server::start(&[]);
    let mut thief = srv.raw();
    let mut waiters: Vec<Raw> = (0..3).map(|_| srv.raw()).collect();
    let mut pushers: Vec<Raw> = (0..3).map(|_| srv.raw()).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        send(w, &["BLPOP", "q", "0"]);
        wait_blocked(&mut thief, i + 1);
    }
    for (i, p) in pushers.iter_mut().enumerate() {
        assert_eq!(s(p.cmds(&["RPUSH", "q", &format!("e{i}")])), ":1\r\n");
        assert_eq!(s(thief.cmds(&["LPOP", "q"])), "$-1\r\n", "the LPOP took e{i} from a blocked client");
    }
    for (i, w) in waiters.iter_mut().enumerate() {
        assert_eq!(s(w.reply()), pair("q", &format!("e{i}")));
    }
    // Pushes pipelined back to back on one connection, then an LPOP: the same.
    for (i, w) in waiters.iter_mut().enumerate() {
        send(w, &["BLPOP", "q", "0"]);
        wait_blocked(&mut thief, i + 1);
    }
    let mut pipeline = Vec::new();
    for args in [&["RPUSH", "q", "a"][..], &["RPUSH", "q", "b", "c"], &["LPOP", "q"], &["LLEN", "q"]] {
        pipeline.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            pipeline.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    pushers[0].send(&pipeline);
    let replies: Vec<String> = (0..4).map(|_| s(pushers[0].reply())).collect();
    assert_eq!(replies, [":1\r\n", ":2\r\n", "$-1\r\n", ":0\r\n"]);
    for (w, e) in waiters.iter_mut().zip(["a", "b", "c"]) {
        assert_eq!(s(w.reply()), pair("q", e));
    }
}

/// Pushes from several connections at once: every blocked client gets exactly one element and
/// none is left in the list or given twice.
#[test]
fn concurrent_pushes_serve_every_blocked_client_exactly_once() {
    const N: usize = 8;
    let srv = Server::start(&[]);
    let mut admin = srv.raw();
    let mut waiters: Vec<Raw> = (0..N).map(|_| srv.raw()).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        send(w, &["BRPOP", "q", "0"]);
        wait_blocked(&mut admin, i + 1);
    }
    let pushers: Vec<_> = (0..N)
        .map(|i| {
            let mut p = srv.raw();
            std::thread::spawn(move || p.cmds(&["LPUSH", "q", &format!("e{i}")]))
        })
        .collect();
    pushers.into_iter().for_each(|p| drop(p.join().unwrap()));
    let got: HashSet<String> = waiters.iter_mut().map(|w| s(w.reply())).collect();
    let want: HashSet<String> = (0..N).map(|i| pair("q", &format!("e{i}"))).collect();
    assert_eq!(got, want);
    assert_eq!(s(admin.cmds(&["EXISTS", "q"])), ":0\r\n");
}

/// A push inside MULTI serves blocked clients once EXEC has run (the element never shows up in the
/// transaction's replies as taken).
#[test]
fn a_push_inside_exec_serves_the_blocked_client_after_the_transaction() {
    let srv = Server::start(&[]);
    let (mut a, mut b) = (srv.raw(), srv.raw());
    send(&mut a, &["BLPOP", "q", "0"]);
    wait_blocked(&mut b, 1);
    b.cmds(&["MULTI"]);
    b.cmds(&["RPUSH", "q", "x", "y"]);
    b.cmds(&["LLEN", "q"]);
    assert_eq!(s(b.cmds(&["EXEC"])), "*2\r\n:2\r\n:2\r\n");
    assert_eq!(s(a.reply()), pair("q", "x"));
    assert_eq!(s(b.cmds(&["LRANGE", "q", "0", "-1"])), "*1\r\n$1\r\ny\r\n");
}

/// INFO's `blocked_clients` and `clients_in_timeout_table`, CLIENT LIST's `flags=b`, as in Redis.
#[test]
fn blocked_clients_show_in_info_and_client_list() {
    let srv = Server::start(&[]);
    let (mut a, mut b, mut c) = (srv.raw(), srv.raw(), srv.raw());
    let info = |c: &mut Raw| s(c.cmds(&["INFO", "clients"]));
    assert!(info(&mut c).contains("blocked_clients:0\r\n"));
    send(&mut a, &["BLPOP", "x", "0"]);
    send(&mut b, &["BLMOVE", "y", "z", "LEFT", "LEFT", "100"]);
    wait_blocked(&mut c, 2);
    let text = info(&mut c);
    assert!(text.contains("blocked_clients:2\r\n") && text.contains("clients_in_timeout_table:1\r\n"), "{text}");
    let list = s(c.cmds(&["CLIENT", "LIST"]));
    assert_eq!(list.matches(" flags=b ").count(), 2, "{list}");
    assert_eq!(list.matches(" flags=N ").count(), 1, "{list}");
    c.cmds(&["RPUSH", "x", "1"]);
    c.cmds(&["RPUSH", "y", "1"]);
    assert_eq!(s(a.reply()), pair("x", "1"));
    assert_eq!(s(b.reply()), "$1\r\n1\r\n");
    assert!(info(&mut c).contains("blocked_clients:0\r\n"));
    assert!(!s(c.cmds(&["CLIENT", "LIST"])).contains("flags=b"));
}

/// A client whose BLMOVE was woken but who disconnects before it ran again passes the element on.
#[test]
fn a_woken_mover_that_cannot_take_its_element_passes_it_on() {
    let srv = Server::start(&[]);
    let (mut mover, mut popper, mut c) = (srv.raw(), srv.raw(), srv.raw());
    c.cmds(&["SET", "dst", "string"]);
    send(&mut mover, &["BLMOVE", "src", "dst", "LEFT", "LEFT", "0"]);
    wait_blocked(&mut c, 1);
    send(&mut popper, &["BLPOP", "src", "0"]);
    wait_blocked(&mut c, 2);
    c.cmds(&["RPUSH", "src", "job"]);
    // The mover's re-run fails (dst holds a string): the element goes to the next client.
    assert_eq!(s(mover.reply()), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert_eq!(s(popper.reply()), pair("src", "job"));
}
