//! CLIENT PAUSE/UNPAUSE, CLIENT UNBLOCK, MONITOR and CLIENT REPLY over real connections, against
//! redis-server 7.0.15's behaviour (the MONITOR stream is compared byte for byte, modulo
//! timestamps and client ports, with a recording and with a live redis-server when installed).

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Raw, RealRedis, Server, s, send};

/// Whether `c` has nothing to read within `ms` (its command is still waiting).
fn silent(c: &mut Raw, ms: u64) -> bool {
    c.s.set_read_timeout(Some(Duration::from_millis(ms))).unwrap();
    let mut b = [0u8; 1];
    let quiet = matches!(c.s.peek(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut);
    c.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    quiet
}

fn info_field(c: &mut Raw, section: &str, field: &str) -> String {
    let text = s(c.cmds(&["INFO", section]));
    let prefix = format!("{field}:");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("{field} missing")).to_string()
}

/// `flags=` of client `id` in CLIENT LIST.
fn flags_of(c: &mut Raw, id: &str) -> String {
    let list = s(c.cmds(&["CLIENT", "LIST", "ID", id]));
    list.split(' ').find_map(|kv| kv.strip_prefix("flags=")).unwrap().to_string()
}

fn client_id(c: &mut Raw) -> String {
    s(c.cmds(&["CLIENT", "ID"])).trim_start_matches(':').trim().to_string()
}

#[test]
fn paused_write_waits_while_reads_are_served_and_runs_after_unpause() {
    let srv = Server::start(&[]);
    let (mut admin, mut writer, mut reader) = (srv.raw(), srv.raw(), srv.raw());
    assert_eq!(s(writer.cmds(&["SET", "k", "old"])), "+OK\r\n");
    let wid = client_id(&mut writer);
    assert_eq!(s(admin.cmds(&["CLIENT", "PAUSE", "60000", "WRITE"])), "+OK\r\n");
    // A pipeline: the write waits, and the read behind it on the same connection waits with it.
    send(&mut writer, &["SET", "k", "new"]);
    send(&mut writer, &["GET", "k"]);
    assert!(silent(&mut writer, 300), "a paused write must wait");
    // Reads on another connection are served meanwhile; the paused client shows as blocked.
    assert_eq!(s(reader.cmds(&["GET", "k"])), "$3\r\nold\r\n");
    assert_eq!(info_field(&mut reader, "clients", "blocked_clients"), "1");
    assert_eq!(flags_of(&mut reader, &wid), "b");
    // EVAL and PUBLISH wait too (may write / propagate); so does a transaction holding a write,
    // while one of reads runs.
    assert_eq!(s(reader.cmds(&["MULTI"])), "+OK\r\n");
    assert_eq!(s(reader.cmds(&["GET", "k"])), "+QUEUED\r\n");
    assert_eq!(s(reader.cmds(&["EXEC"])), "*1\r\n$3\r\nold\r\n");
    let mut pubr = srv.raw();
    send(&mut pubr, &["PUBLISH", "ch", "m"]);
    assert!(silent(&mut pubr, 100));
    assert!(!srv.log().contains("panicked"));
    assert_eq!(s(admin.cmds(&["CLIENT", "UNPAUSE"])), "+OK\r\n");
    assert_eq!(s(writer.reply()), "+OK\r\n");
    assert_eq!(s(writer.reply()), "$3\r\nnew\r\n");
    assert_eq!(s(pubr.reply()), ":0\r\n");
    assert_eq!(info_field(&mut reader, "clients", "blocked_clients"), "0");
}

#[test]
fn pause_all_holds_every_command_until_its_time_is_up() {
    let srv = Server::start(&[]);
    let (mut admin, mut c) = (srv.raw(), srv.raw());
    assert_eq!(s(c.cmds(&["MULTI"])), "+OK\r\n");
    assert_eq!(s(admin.cmds(&["CLIENT", "PAUSE", "400"])), "+OK\r\n");
    let t = Instant::now();
    // Queueing a write inside MULTI waits under a pause, as in Redis; so does PING under ALL.
    send(&mut c, &["SET", "a", "1"]);
    send(&mut c, &["EXEC"]);
    send(&mut c, &["PING"]);
    assert!(silent(&mut c, 150));
    assert_eq!(s(c.reply()), "+QUEUED\r\n");
    assert_eq!(s(c.reply()), "*1\r\n+OK\r\n");
    assert_eq!(s(c.reply()), "+PONG\r\n");
    assert!(t.elapsed() >= Duration::from_millis(350), "{:?}", t.elapsed());
    // The errors are Redis's.
    assert_eq!(s(admin.cmds(&["CLIENT", "PAUSE", "-1"])), "-ERR timeout is negative\r\n");
    assert_eq!(s(admin.cmds(&["CLIENT", "PAUSE", "x"])), "-ERR timeout is not an integer or out of range\r\n");
    assert_eq!(s(admin.cmds(&["CLIENT", "PAUSE", "10", "reads"])), "-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n");
}

#[test]
fn expiry_stops_while_paused() {
    let srv = Server::start(&["--hz", "100"]);
    let mut c = srv.raw();
    assert_eq!(s(c.cmds(&["SET", "k", "v", "PX", "50"])), "+OK\r\n");
    assert_eq!(s(c.cmds(&["CLIENT", "PAUSE", "60000", "WRITE"])), "+OK\r\n");
    std::thread::sleep(Duration::from_millis(300));
    // Logically gone, but not reclaimed: the dataset stays as it was.
    assert_eq!(s(c.cmds(&["GET", "k"])), "$-1\r\n");
    assert_eq!(s(c.cmds(&["DBSIZE"])), ":1\r\n");
    assert_eq!(s(c.cmds(&["CLIENT", "UNPAUSE"])), "+OK\r\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    while s(c.cmds(&["DBSIZE"])) != ":0\r\n" {
        assert!(Instant::now() < deadline, "never expired after UNPAUSE");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Block `waiter` with `cmd`, then CLIENT UNBLOCK it with `mode` from `admin`.
fn unblock(admin: &mut Raw, waiter: &mut Raw, id: &str, cmd: &[&str], mode: Option<&str>) -> (String, String) {
    send(waiter, cmd);
    let deadline = Instant::now() + Duration::from_secs(5);
    while info_field(admin, "clients", "blocked_clients") != "1" {
        assert!(Instant::now() < deadline, "{cmd:?} never blocked");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut args = vec!["CLIENT", "UNBLOCK", id];
    args.extend(mode);
    let r = s(admin.cmds(&args));
    (r, s(waiter.reply()))
}

#[test]
fn unblock_timeout_and_error_for_list_zset_and_stream_waiters() {
    let srv = Server::start(&[]);
    let (mut admin, mut w) = (srv.raw(), srv.raw());
    let id = client_id(&mut w);
    assert_eq!(s(admin.cmds(&["XADD", "s2", "1-1", "f", "v"])), "$3\r\n1-1\r\n");
    assert_eq!(s(admin.cmds(&["XGROUP", "CREATE", "s2", "g", "$"])), "+OK\r\n");
    let cmds: [&[&str]; 6] = [
        &["BLPOP", "l", "0"],
        &["BLMOVE", "l", "l2", "LEFT", "LEFT", "0"],
        &["BZPOPMIN", "z", "0"],
        &["BZMPOP", "0", "1", "z", "MIN"],
        &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
        &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s2", ">"],
    ];
    for cmd in cmds {
        // As Redis 7.0 answers a timed-out blocked client: the null array, BLMOVE included.
        let timeout = "*-1\r\n";
        assert_eq!(unblock(&mut admin, &mut w, &id, cmd, None), (":1\r\n".into(), timeout.into()), "{cmd:?}");
        assert_eq!(unblock(&mut admin, &mut w, &id, cmd, Some("timeout")), (":1\r\n".into(), timeout.into()));
        assert_eq!(
            unblock(&mut admin, &mut w, &id, cmd, Some("ERROR")),
            (":1\r\n".into(), "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n".into())
        );
    }
    // The connection goes on; nothing was left registered.
    assert_eq!(s(w.cmds(&["PING"])), "+PONG\r\n");
    assert_eq!(info_field(&mut admin, "clients", "blocked_clients"), "0");
    assert_eq!(s(admin.cmds(&["RPUSH", "l", "x"])), ":1\r\n");
    assert_eq!(s(admin.cmds(&["LLEN", "l"])), ":1\r\n");
    // Not blocked, unknown, and bad arguments.
    assert_eq!(s(admin.cmds(&["CLIENT", "UNBLOCK", &id])), ":0\r\n");
    assert_eq!(s(admin.cmds(&["CLIENT", "UNBLOCK", "999999", "ERROR"])), ":0\r\n");
    assert_eq!(s(admin.cmds(&["CLIENT", "UNBLOCK", "x"])), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(
        s(admin.cmds(&["CLIENT", "UNBLOCK", &id, "never"])),
        "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"
    );
    let errors = s(admin.cmds(&["INFO", "errorstats"]));
    assert!(errors.contains("errorstat_UNBLOCKED:count=6"), "{errors}");
    let stats = s(admin.cmds(&["INFO", "commandstats"]));
    assert!(stats.contains("cmdstat_blpop:calls=3,") && stats.contains("failed_calls=3"), "{stats}");
}

/// A MONITOR session: what a client runs, and what the monitor saw (timestamps and ports
/// replaced by `T` and `ADDR`).
fn monitor_session(port: u16) -> String {
    let mut m = Server::raw_to(port);
    let mut c = Server::raw_to(port);
    assert_eq!(s(m.cmds(&["MONITOR"])), "+OK\r\n");
    let script: &[&[&[u8]]] = &[
        &[b"SET", b"k", b"a b\"c\x01\n\\"],
        &[b"AUTH", b"foo"],
        &[b"AUTH", b"u", b"p"],
        &[b"HELLO", b"2", b"AUTH", b"default", b"pass"],
        &[b"HELLO", b"2", b"SETNAME", b"n"],
        &[b"EVAL", b"redis.call('set','x','1'); return redis.call('get','x')", b"0"],
        &[b"SELECT", b"3"],
        &[b"MULTI"],
        &[b"SET", b"a", b"1"],
        &[b"INCR", b"a"],
        &[b"EXEC"],
        &[b"SELECT", b"4"],
        &[b"PING"],
        &[b"GET"],
        &[b"FOO"],
        &[b"CLIENT", b"LIST"],
        &[b"CLIENT", b"ID"],
        &[b"CLIENT", b"SETINFO", b"LIB-NAME", b"x"],
        &[b"CLIENT", b"ID", b"x"],
        &[b"CONFIG", b"GET", b"x"],
        &[b"SET", b"x", b"123"],
        &[b"MULTI"],
        &[b"SET", b"a"],
        &[b"EXEC"],
        &[b"EVALSHA", b"0000000000000000000000000000000000000000", b"0"],
        &[b"BLPOP", b"zz", b"0.05"],
        &[b"SLOWLOG", b"GET"],
        &[b"SLOWLOG", b"HELP"],
        &[b"LATENCY", b"LATEST"],
        &[b"CLIENT", b"SETNAME", b"foo"],
        &[b"SELECT", b"0"],
        &[
            b"FUNCTION",
            b"LOAD",
            b"#!lua name=lib\nredis.register_function('f', function(k, a) return redis.call('ping') end)",
        ],
        &[b"FCALL", b"f", b"0"],
        &[b"FUNCTION", b"DELETE", b"lib"],
        &[b"ECHO", b"\xff\t\r\x07\x08"],
        &[b"QUIT"],
    ];
    for cmd in script {
        c.cmd(cmd);
    }
    // The monitor's own commands: shown after their replies; keyspace commands refused.
    for cmd in [&["PING"][..], &["GET", "x"], &["ECHO", "e"], &["RESET"], &["PING"]] {
        send(&mut m, cmd);
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    m.s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    while !got.ends_with(b"+RESET\r\n+PONG\r\n") {
        assert!(Instant::now() < deadline, "monitor stream incomplete: {}", String::from_utf8_lossy(&got));
        let mut buf = [0u8; 8192];
        if let Ok(n) = m.s.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    normalize(&got)
}

/// `+1700000000.123456 [0 127.0.0.1:5000]` -> `+T [0 ADDR]` (and `[0 lua]` -> `+T [0 lua]`),
/// checking that each timestamp is now-ish.
fn normalize(stream: &[u8]) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let text = String::from_utf8_lossy(stream);
    let mut out = String::new();
    for line in text.split_inclusive("\r\n") {
        let Some((stamp, rest)) =
            line.strip_prefix('+').and_then(|l| l.split_once(' ')).filter(|(t, _)| t.contains('.'))
        else {
            out.push_str(line);
            continue;
        };
        let (secs, micros) = stamp.split_once('.').unwrap();
        assert_eq!(micros.len(), 6, "{line}");
        let t: f64 = format!("{secs}.{micros}").parse().unwrap();
        assert!((now - t).abs() < 60.0, "{line}");
        let (who, args) = rest.split_once("] ").unwrap();
        let (db, addr) = who.trim_start_matches('[').split_once(' ').unwrap();
        let addr = if addr == "lua" { "lua" } else { "ADDR" };
        assert!(addr == "lua" || rest.contains("127.0.0.1:"), "{line}");
        out.push_str(&format!("+T [{db} {addr}] {args}"));
    }
    out
}

// Recorded from redis-server 7.0.15 with `monitor_session` (`MONITOR_RECORD_PORT=6379 cargo test
// --test client_control record -- --ignored` re-records it).
const REDIS_MONITOR: &str = include_str!("fixtures/monitor_session.txt");

#[test]
fn monitor_stream_is_redis_s() {
    let srv = Server::start(&[]);
    let ours = monitor_session(srv.port);
    assert_eq!(ours, REDIS_MONITOR);
    if let Some(redis) = RealRedis::start(&["--appendonly", "no"]) {
        assert_eq!(ours, monitor_session(redis.port), "vs live redis-server");
    }
}

#[test]
#[ignore]
fn record() {
    let port: u16 = std::env::var("MONITOR_RECORD_PORT").unwrap().parse().unwrap();
    std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/monitor_session.txt"), monitor_session(port))
        .unwrap();
}

#[test]
fn monitor_sees_commands_from_every_connection_and_stops_when_it_leaves() {
    let srv = Server::start(&[]);
    let mut m = srv.raw();
    assert_eq!(s(m.cmds(&["MONITOR"])), "+OK\r\n");
    let mid = {
        let mut other = srv.raw();
        let list = s(other.cmds(&["CLIENT", "LIST"]));
        let line = list.lines().find(|l| l.contains("cmd=monitor")).unwrap().to_string();
        assert!(line.contains(" flags=O "), "{line}");
        line.split(' ').next().unwrap().trim_start_matches("id=").to_string()
    };
    // Eight connections, on whatever threads they land, 50 commands each: all seen, each
    // connection's in its own order.
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let port = srv.port;
            std::thread::spawn(move || {
                let mut c = Server::raw_to(port);
                for j in 0..50 {
                    assert_eq!(s(c.cmds(&["SET", &format!("k{i}"), &j.to_string()])), "+OK\r\n");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut seen = String::new();
    m.s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.matches("\"SET\"").count() < 400 {
        assert!(Instant::now() < deadline, "saw {}", seen.matches("\"SET\"").count());
        let mut buf = [0u8; 65536];
        if let Ok(n) = m.s.read(&mut buf) {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    for i in 0..8 {
        let values: Vec<usize> = seen
            .lines()
            .filter_map(|l| l.strip_suffix('"').and_then(|l| l.split_once(&format!("\"SET\" \"k{i}\" \""))))
            .map(|(_, v)| v.parse().unwrap())
            .collect();
        assert_eq!(values, (0..50).collect::<Vec<_>>(), "k{i}");
    }
    // After RESET it is a normal client again; once gone, nobody is fed.
    assert_eq!(s(m.cmds(&["RESET"])), "+RESET\r\n");
    let mut other = srv.raw();
    assert_eq!(flags_of(&mut other, &mid), "N");
    assert_eq!(s(other.cmds(&["SET", "x", "1"])), "+OK\r\n");
    assert!(silent(&mut m, 100), "fed after RESET");
}

#[test]
fn client_reply_off_skip_on() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    send(&mut c, &["CLIENT", "REPLY", "OFF"]);
    send(&mut c, &["SET", "a", "1"]);
    send(&mut c, &["GET", "a"]);
    send(&mut c, &["CLIENT", "REPLY", "SKIP"]);
    send(&mut c, &["CLIENT", "REPLY", "ON"]);
    assert_eq!(s(c.reply()), "+OK\r\n");
    assert_eq!(s(c.cmds(&["GET", "a"])), "$1\r\n1\r\n");
    send(&mut c, &["CLIENT", "REPLY", "SKIP"]);
    send(&mut c, &["INCR", "a"]);
    assert_eq!(s(c.cmds(&["GET", "a"])), "$1\r\n2\r\n");
    assert_eq!(s(c.cmds(&["CLIENT", "REPLY", "MAYBE"])), "-ERR syntax error\r\n");
}

#[test]
fn xreadgroup_waiters_are_unblocked_when_their_stream_goes() {
    let srv = Server::start(&["--hz", "100"]);
    let (mut a, mut g) = (srv.raw(), srv.raw());
    let gone = "-UNBLOCKED the stream key no longer exists\r\n";
    let nogroup = "-NOGROUP the consumer group this client was blocked on no longer exists\r\n";
    let cases: [(&[&[&str]], &str); 8] = [
        (&[&["DEL", "s"]], gone),
        (&[&["SET", "s", "x"]], gone),
        (&[&["PEXPIRE", "s", "1"]], gone),
        (&[&["FLUSHALL"]], gone),
        (&[&["RENAME", "s", "s9"]], gone),
        (&[&["SWAPDB", "0", "1"]], gone),
        (&[&["MOVE", "s", "2"]], gone),
        // Deleted and created again inside one transaction: the group is gone.
        (&[&["MULTI"], &["DEL", "s"], &["XADD", "s", "5-5", "f", "v"], &["EXEC"]], nogroup),
    ];
    for (kill, want) in cases {
        for cmd in [&["FLUSHALL"][..], &["XADD", "s", "1-1", "f", "v"], &["XGROUP", "CREATE", "s", "g", "$"]] {
            a.cmds(cmd);
        }
        send(&mut g, &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]);
        // A plain XREAD reader on a fresh connection each time.
        let mut r = srv.raw();
        send(&mut r, &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while info_field(&mut a, "clients", "blocked_clients") != "2" {
            assert!(Instant::now() < deadline, "never blocked");
            std::thread::sleep(Duration::from_millis(5));
        }
        for cmd in kill {
            a.cmds(cmd);
        }
        assert_eq!(s(g.reply()), want, "{kill:?}");
        if kill.len() == 1 {
            // XREAD readers stay blocked, as in Redis.
            assert!(silent(&mut r, 50), "{kill:?}");
        } else {
            assert!(s(r.reply()).contains("5-5"));
        }
    }
}

#[test]
fn monitor_shows_writes_to_one_key_in_the_order_they_took_effect() {
    let srv = Server::start(&[]);
    let mut m = srv.raw();
    assert_eq!(s(m.cmds(&["MONITOR"])), "+OK\r\n");
    // Eight connections append to one key: the key's final value is the concatenation of the
    // APPENDs in the order they ran, which the monitor must show.
    eight_writers(srv.port, |i, j| ["APPEND".into(), "k".into(), format!("<{i}.{j}>")]);
    let mut other = srv.raw();
    let value = s(other.cmds(&["GET", "k"]));
    let seen = monitor_until(&mut m, "\"APPEND\"", 800);
    let shown: String = seen
        .lines()
        .filter_map(|l| l.split_once("\"APPEND\" \"k\" \"").map(|(_, v)| v.trim_end_matches('"').to_string()))
        .collect();
    assert_eq!(value.lines().nth(1).unwrap(), shown);
}

#[test]
fn monitor_shows_pushes_to_one_list_in_the_order_they_took_effect() {
    // RPUSH on an existing list runs under the key's shared stripe and the list's own lock: its
    // line must follow that lock's order, not the stripe's.
    let srv = Server::start(&[]);
    let mut m = srv.raw();
    assert_eq!(s(m.cmds(&["MONITOR"])), "+OK\r\n");
    let mut first = srv.raw();
    first.cmds(&["RPUSH", "l", "start"]);
    eight_writers(srv.port, |i, j| ["RPUSH".into(), "l".into(), format!("{i}.{j}")]);
    let listed = s(first.cmds(&["LRANGE", "l", "0", "-1"]));
    let listed: Vec<&str> = listed.lines().skip(2).step_by(2).skip(1).collect();
    let seen = monitor_until(&mut m, "\"RPUSH\"", 801);
    let shown: Vec<String> = seen
        .lines()
        .filter_map(|l| l.split_once("\"RPUSH\" \"l\" \"").map(|(_, v)| v.trim_end_matches('"').to_string()))
        .filter(|v| v != "start")
        .collect();
    assert_eq!(listed.len(), 800);
    assert_eq!(listed, shown);
}

/// Eight connections each send 100 commands, `cmd(i, j)` for client i's j-th; returns when all are answered.
fn eight_writers(port: u16, cmd: fn(usize, usize) -> [String; 3]) {
    let handles: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Server::raw_to(port);
                for j in 0..100 {
                    let argv = cmd(i, j);
                    c.cmds(&[&argv[0], &argv[1], &argv[2]]);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// What monitor connection `m` printed until `word` appeared `n` times (10 s at most).
fn monitor_until(m: &mut Raw, word: &str, n: usize) -> String {
    let mut seen = String::new();
    m.s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.matches(word).count() < n {
        assert!(Instant::now() < deadline, "saw {}", seen.matches(word).count());
        let mut buf = [0u8; 65536];
        if let Ok(n) = m.s.read(&mut buf) {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    seen
}
