//! Safe under bad input, load and abuse, against the real server: passwords, protected mode, the
//! client and buffer limits, maxmemory, graceful shutdown, and many idle connections.
#![cfg(not(feature = "loom"))]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Server;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The server process's resident set size in bytes.
fn server_rss(s: &Server) -> u64 {
    let pid = s.child.as_ref().expect("running").id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn signal(s: &Server, sig: &str) {
    let pid = s.child.as_ref().expect("running").id();
    Command::new("kill").args([sig, &pid.to_string()]).status().unwrap();
}

/// Wait for the server process to exit; its exit code.
fn wait_exit(s: &mut Server, limit: Duration) -> Option<i32> {
    let mut c = s.child.take()?;
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = c.try_wait() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = c.kill();
    None
}

// ---- AUTH ---------------------------------------------------------------------------------------

/// A server whose clients must authenticate with `pass` (set once started: the test harness's
/// start-up probe is an unauthenticated PING).
fn start_with_password(pass: &str) -> Server {
    let s = Server::start(&[]);
    assert_eq!(s.raw().cmds(&["CONFIG", "SET", "requirepass", pass]), b"+OK\r\n");
    s
}

#[test]
fn requirepass_refuses_everything_but_auth_hello_quit_until_authenticated() {
    let s = start_with_password("foo");
    let mut c = s.raw();
    assert_eq!(c.cmds(&["GET", "a"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmds(&["PING"]), b"-NOAUTH Authentication required.\r\n");
    // Unknown commands and arity errors come first, as with Redis.
    assert_eq!(text(&c.cmds(&["NOSUCH"])), "-ERR unknown command 'NOSUCH', with args beginning with: \r\n");
    assert_eq!(c.cmds(&["GET"]), b"-ERR wrong number of arguments for 'get' command\r\n");
    let wrong = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    assert_eq!(c.cmds(&["AUTH", "bar"]), wrong);
    assert_eq!(c.cmds(&["AUTH", "default", "bar"]), wrong);
    assert_eq!(c.cmds(&["AUTH", "bob", "foo"]), wrong);
    assert_eq!(c.cmds(&["AUTH", "fo"]), wrong);
    assert_eq!(c.cmds(&["AUTH", "fooo"]), wrong);
    assert_eq!(c.cmds(&["AUTH", "a", "b", "c"]), b"-ERR syntax error\r\n");
    assert_eq!(
        text(&c.cmds(&["HELLO"])),
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> \
         <pass> option can be used to authenticate the client and select the RESP protocol version at the same \
         time\r\n"
    );
    assert_eq!(c.cmds(&["HELLO", "2", "AUTH", "default", "bar"]), wrong);
    assert_eq!(c.cmds(&["GET", "a"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmds(&["AUTH", "foo"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["GET", "a"]), b"$-1\r\n");
    // Once authenticated, the small unauthenticated request limits are gone.
    let many: Vec<&str> = std::iter::once("MGET").chain(std::iter::repeat_n("k", 20)).collect();
    assert!(c.cmds(&many).starts_with(b"*20\r\n"));

    let mut c = s.raw();
    assert!(c.cmds(&["HELLO", "2", "AUTH", "default", "foo"]).starts_with(b"*14\r\n"));
    assert_eq!(c.cmds(&["SET", "a", "1"]), b"+OK\r\n");
    let mut c = s.raw();
    assert_eq!(c.cmds(&["AUTH", "default", "foo"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["GET", "a"]), b"$1\r\n1\r\n");
    let mut c = s.raw();
    assert_eq!(c.cmds(&["QUIT"]), b"+OK\r\n");
}

#[test]
fn unauthenticated_clients_cannot_send_big_requests() {
    let s = start_with_password("foo");
    let mut c = s.raw();
    c.send(b"*11\r\n");
    assert_eq!(text(&c.read_to_close()), "-ERR Protocol error: unauthenticated multibulk length\r\n");
    let mut c = s.raw();
    c.send(b"*2\r\n$16385\r\n");
    assert_eq!(text(&c.read_to_close()), "-ERR Protocol error: unauthenticated bulk length\r\n");
    let mut c = s.raw();
    let big = vec![b'x'; 16384];
    assert_eq!(c.cmd(&[b"AUTH", &big]), b"-WRONGPASS invalid username-password pair or user is disabled.\r\n");
}

#[test]
fn requirepass_from_config_file_and_config_set_and_removal() {
    // The harness's start-up probe cannot authenticate: start the binary by hand.
    let dir = common::temp_dir("authconf");
    let conf = dir.join("redis.conf");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(&conf, format!("port {port}\nrequirepass \"s3cret\"\ndir {}\n", dir.display())).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_flurrydb-server"))
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let s = Server { child: Some(child), port, dir, args: vec![] };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = s.raw();
    assert_eq!(c.cmds(&["PING"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmds(&["AUTH", "s3cret"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["CONFIG", "SET", "requirepass", "other"]), b"+OK\r\n");
    // An authenticated client stays so; a new one needs the new password.
    assert_eq!(c.cmds(&["PING"]), b"+PONG\r\n");
    let mut d = s.raw();
    assert_eq!(d.cmds(&["PING"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmds(&["CONFIG", "SET", "requirepass", ""]), b"+OK\r\n");
    assert_eq!(d.cmds(&["PING"]), b"+PONG\r\n", "no password: nothing is required");
    assert_eq!(
        text(&d.cmds(&["AUTH", "x"])),
        "-ERR AUTH <password> called without any password configured for the default user. Are you sure your \
         configuration is correct?\r\n"
    );
    assert_eq!(d.cmds(&["AUTH", "default", "anything"]), b"+OK\r\n");
}

// ---- protected mode -----------------------------------------------------------------------------

/// A non-loopback IPv4 address of this machine, if it has one.
fn local_non_loopback_ip() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    text(&out.stdout)
        .split_whitespace()
        .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| !ip.is_loopback()))
        .map(String::from)
}

#[test]
fn protected_mode_denies_non_loopback_clients_without_a_password() {
    let Some(ip) = local_non_loopback_ip() else {
        eprintln!("no non-loopback address: protected mode test skipped");
        return;
    };
    let remote = |s: &Server| {
        let mut c = TcpStream::connect((ip.as_str(), s.port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = c.write_all(b"PING\r\n");
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        text(&out)
    };
    // As in Redis, a later `bind` replaces the harness's: keep loopback for the harness and `raw()`.
    let s = Server::start(&["--bind", "127.0.0.1", &ip]);
    let denied = remote(&s);
    assert!(
        denied.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user.")
            && denied.ends_with("in order for the server to start accepting connections from the outside.\r\n"),
        "{denied}"
    );
    assert_eq!(
        denied,
        "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n"
    );
    // Loopback clients are served.
    assert_eq!(s.raw().cmds(&["PING"]), b"+PONG\r\n");
    // A password lifts it (the client then needs to authenticate).
    assert_eq!(s.raw().cmds(&["CONFIG", "SET", "requirepass", "p"]), b"+OK\r\n");
    assert_eq!(remote(&s), "-NOAUTH Authentication required.\r\n");
    let s = Server::start(&["--bind", "127.0.0.1", &ip, "--protected-mode", "no"]);
    assert_eq!(remote(&s), "+PONG\r\n");
}

// ---- limits -------------------------------------------------------------------------------------

#[test]
fn connections_beyond_maxclients_are_refused() {
    let s = Server::start(&["--maxclients", "4"]);
    // The start-up probe connection may still be closing: wait until it is gone.
    std::thread::sleep(Duration::from_millis(100));
    let mut held: Vec<_> = (0..4).map(|_| s.raw()).collect();
    for c in &mut held {
        assert_eq!(c.cmds(&["PING"]), b"+PONG\r\n");
    }
    let mut extra = s.raw();
    let _ = extra.s.write_all(b"PING\r\n");
    assert_eq!(text(&extra.read_to_close()), "-ERR max number of clients reached\r\n");
    let info = text(&held[0].cmds(&["INFO", "stats"]));
    assert!(info.contains("rejected_connections:1\r\n"), "{info}");
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(s.raw().cmds(&["PING"]), b"+PONG\r\n", "a slot freed is usable again");
}

#[test]
fn maxclients_is_backed_by_the_open_files_limit() {
    let s = Server::start(&[]);
    let pid = s.child.as_ref().unwrap().id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap().to_string();
    let soft: u64 = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    let maxclients = text(&s.raw().cmds(&["CONFIG", "GET", "maxclients"]));
    let maxclients: u64 = maxclients.lines().nth(4).unwrap().parse().unwrap();
    assert!(soft >= maxclients + 32, "{line} / maxclients {maxclients}");
    if maxclients < 10000 {
        assert!(s.log().contains("maxclients has been reduced to"), "{}", s.log());
    }
}

#[test]
fn a_client_whose_query_buffer_passes_the_limit_is_closed() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    assert_eq!(c.cmds(&["CONFIG", "SET", "client-query-buffer-limit", "1mb"]), b"+OK\r\n");
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5000000\r\n");
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < 3_000_000 {
        if c.s.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    assert_eq!(c.read_to_close(), b"", "closed without a reply");
    assert!(s.log().contains("Closing client that reached max query buffer length"), "{}", s.log());
    assert_eq!(s.raw().cmds(&["EXISTS", "k"]), b":0\r\n");
}

#[test]
fn output_buffer_hard_limit_closes_the_client() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    let big = vec![b'v'; 1 << 20];
    assert_eq!(c.cmd(&[b"SET", b"big", &big]), b"+OK\r\n");
    assert_eq!(c.cmds(&["CONFIG", "SET", "client-output-buffer-limit", "normal 100kb 0 0"]), b"+OK\r\n");
    c.send(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    assert_eq!(c.read_to_close(), b"");
    assert!(s.log().contains("for overcoming of output buffer limits"), "{}", s.log());
    let mut c = s.raw();
    assert_eq!(c.cmds(&["STRLEN", "big"]), b":1048576\r\n");
    assert_eq!(c.cmds(&["CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["GET", "big"]).len(), (1 << 20) + 12);
}

#[test]
fn output_buffer_soft_limit_closes_a_client_that_stops_reading() {
    let s = Server::start(&["--client-output-buffer-limit", "normal 0 100kb 1"]);
    let mut c = s.raw();
    let big = vec![b'v'; 1 << 20];
    assert_eq!(c.cmd(&[b"SET", b"big", &big]), b"+OK\r\n");
    for _ in 0..20 {
        c.send(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    }
    std::thread::sleep(Duration::from_millis(2500));
    let got = c.read_to_close();
    assert!(got.len() < 20 << 20, "closed before everything was sent ({} bytes)", got.len());
    assert_eq!(s.raw().cmds(&["PING"]), b"+PONG\r\n");
}

#[test]
fn a_client_that_never_reads_cannot_grow_server_memory() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    let big = vec![b'v'; 1 << 20];
    assert_eq!(c.cmd(&[b"SET", b"big", &big]), b"+OK\r\n");
    std::thread::sleep(Duration::from_millis(200));
    let before = server_rss(&s);
    // 2000 GETs of a 1 MB value: 2 GB of replies the client never reads.
    let mut abuser = s.raw();
    abuser.s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let req = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(2000);
    let _ = abuser.s.write_all(&req);
    std::thread::sleep(Duration::from_millis(1500));
    let during = server_rss(&s);
    eprintln!(
        "server RSS before {} KiB, while a client does not read 2 GB of replies {} KiB",
        before >> 10,
        during >> 10
    );
    assert!(during < before + (64 << 20), "RSS grew from {before} to {during}");
    // Other clients are served meanwhile.
    assert_eq!(s.raw().cmds(&["STRLEN", "big"]), b":1048576\r\n");
    drop(abuser);
    std::thread::sleep(Duration::from_millis(300));
    eprintln!("server RSS after the abuser left {} KiB", server_rss(&s) >> 10);
}

#[test]
fn idle_clients_are_closed_after_timeout() {
    let s = Server::start(&["--timeout", "1"]);
    let mut idle = s.raw();
    assert_eq!(idle.cmds(&["PING"]), b"+PONG\r\n");
    let mut busy = s.raw();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1600) {
        assert_eq!(busy.cmds(&["PING"]), b"+PONG\r\n", "an active client is kept");
        std::thread::sleep(Duration::from_millis(200));
    }
    idle.s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(idle.read_to_close(), b"");
    assert!(start.elapsed() < Duration::from_secs(4));
    // timeout 0 (the default) never closes.
    assert_eq!(busy.cmds(&["CONFIG", "SET", "timeout", "0"]), b"+OK\r\n");
    let mut idle = s.raw();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(idle.cmds(&["PING"]), b"+PONG\r\n");
}

// ---- maxmemory ----------------------------------------------------------------------------------

fn info_field(c: &mut common::Raw, section: &str, field: &str) -> u64 {
    let info = text(&c.cmds(&["INFO", section]));
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in {info}"))
}

#[test]
fn maxmemory_refuses_growing_commands_but_serves_reads_and_deletes() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    std::thread::sleep(Duration::from_millis(200));
    let used = info_field(&mut c, "memory", "used_memory");
    let rss = server_rss(&s);
    assert!(used > 0 && used < rss, "used_memory {used} (allocator statistics) vs RSS {rss}");
    let limit = used + (16 << 20);
    assert_eq!(c.cmds(&["CONFIG", "SET", "maxmemory", &limit.to_string()]), b"+OK\r\n");
    let value = vec![b'x'; 1 << 20];
    let mut oom = None;
    for i in 0..200 {
        let reply = c.cmd(&[b"SET", format!("k{i}").as_bytes(), &value]);
        if reply != b"+OK\r\n" {
            oom = Some((i, reply));
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (written, reply) = oom.expect("writes are refused once over maxmemory");
    assert_eq!(text(&reply), "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    assert!(written >= 4, "only {written} MB written under a 16 MB margin");
    // Stay clearly over the limit for the checks below (the count is exact: a refused request's
    // buffer alone can tip it either way).
    let over = info_field(&mut c, "memory", "used_memory") / 2;
    assert_eq!(c.cmds(&["CONFIG", "SET", "maxmemory", &over.to_string()]), b"+OK\r\n");
    assert_eq!(text(&c.cmds(&["APPEND", "k0", "x"])), "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    assert_eq!(c.cmds(&["STRLEN", "k0"]), b":1048576\r\n", "reads go on");
    assert_eq!(c.cmds(&["GET", "nokey"]), b"$-1\r\n");
    assert_eq!(c.cmds(&["DEL", "k0", "k1"]), b":2\r\n", "deletes go on");
    assert_eq!(c.cmds(&["INCR", "k2"]).first(), Some(&b'-'));
    // Deleting frees memory by the allocator's count: writes resume under the same limit.
    for i in 2..written {
        c.cmds(&["DEL", &format!("k{i}")]);
    }
    std::thread::sleep(Duration::from_millis(300));
    let now = info_field(&mut c, "memory", "used_memory");
    assert_eq!(
        c.cmds(&["SET", "after-del", "v"]),
        b"+OK\r\n",
        "writes resume once deletes freed memory: used {used} -> {now}, limit {over}, wrote {written}"
    );
    assert_eq!(c.cmds(&["CONFIG", "SET", "maxmemory", "0"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["SET", "k0", "small"]), b"+OK\r\n");
}

// ---- graceful shutdown --------------------------------------------------------------------------

fn aof_is_trimmed_and_valid(s: &Server) {
    let file = s.dir.join("appendonly.aof");
    let bytes = std::fs::read(&file).unwrap();
    assert!(!bytes.is_empty() && !bytes.ends_with(&[0]), "the AOF is trimmed to its records");
    if Command::new("redis-check-aof").arg("--help").output().is_err() {
        return;
    }
    let out = Command::new("redis-check-aof").arg(&file).output().unwrap();
    assert!(text(&out.stdout).contains("is valid"), "{}", text(&out.stdout));
}

/// Keep writing from another thread; the number of acknowledged writes when the server went away.
fn writer(s: &Server) -> std::thread::JoinHandle<u64> {
    let mut c = s.raw();
    std::thread::spawn(move || {
        let mut acked = 0u64;
        // Pipelines of 100 SETs: the shutdown lands in the middle of batches.
        loop {
            let mut req = Vec::new();
            for i in acked..acked + 100 {
                let k = format!("key:{i}");
                req.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n$1\r\nv\r\n", k.len()).as_bytes());
            }
            if c.s.write_all(&req).is_err() {
                return acked;
            }
            for _ in 0..100 {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.reply()));
                match r {
                    Ok(r) if r == b"+OK\r\n" => acked += 1,
                    _ => return acked,
                }
            }
        }
    })
}

fn signal_shutdown_keeps_acknowledged_writes(sig: &str) {
    let mut s = Server::start(&["--appendonly", "yes", "--appendfsync", "everysec"]);
    let w = writer(&s);
    std::thread::sleep(Duration::from_millis(300));
    signal(&s, sig);
    assert_eq!(wait_exit(&mut s, Duration::from_secs(10)), Some(0), "{}", s.log());
    let acked = w.join().unwrap();
    assert!(acked > 0);
    aof_is_trimmed_and_valid(&s);
    s.restart();
    let mut c = s.raw();
    let n: u64 = text(&c.cmds(&["DBSIZE"]))[1..].trim().parse().unwrap();
    assert!(n >= acked, "{acked} acknowledged writes, {n} keys after restart");
    assert_eq!(c.cmds(&["EXISTS", &format!("key:{}", acked - 1)]), b":1\r\n");
}

#[test]
fn sigterm_finishes_in_flight_commands_and_exits_zero_with_a_valid_aof() {
    signal_shutdown_keeps_acknowledged_writes("-TERM");
}

#[test]
fn sigint_finishes_in_flight_commands_and_exits_zero_with_a_valid_aof() {
    signal_shutdown_keeps_acknowledged_writes("-INT");
}

#[test]
fn shutdown_command_exits_zero_with_a_valid_aof() {
    let mut s = Server::start(&["--appendonly", "yes"]);
    let mut c = s.raw();
    assert_eq!(c.cmds(&["SET", "a", "1"]), b"+OK\r\n");
    c.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n");
    assert_eq!(c.read_to_close(), b"");
    assert_eq!(wait_exit(&mut s, Duration::from_secs(10)), Some(0));
    aof_is_trimmed_and_valid(&s);
}

#[test]
fn a_second_sigint_exits_at_once() {
    let mut s = Server::start(&[]);
    let mut c = s.raw();
    let big = vec![b'v'; 1 << 20];
    assert_eq!(c.cmd(&[b"SET", b"big", &big]), b"+OK\r\n");
    // A client that does not read its replies holds up the clean shutdown for a few seconds.
    c.send(&b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(50));
    std::thread::sleep(Duration::from_millis(200));
    signal(&s, "-INT");
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.child.as_mut().unwrap().try_wait().unwrap().is_none(), "still draining");
    let start = Instant::now();
    signal(&s, "-INT");
    assert_eq!(wait_exit(&mut s, Duration::from_secs(5)), Some(1));
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(s.log().contains("You insist... exiting now."), "{}", s.log());
}

// ---- load ---------------------------------------------------------------------------------------

#[test]
fn ten_thousand_idle_connections_do_not_starve_active_clients() {
    let want = 10_000u64;
    let limit = flurrydb::limits::raise_nofile(want + 200).unwrap_or(1024);
    let idle_n = want.min(limit.saturating_sub(200)) as usize;
    if idle_n < want as usize {
        eprintln!("open-files limit {limit}: scaled down to {idle_n} idle connections");
    }
    let s = Server::start(&["--maxclients", "10100"]);
    std::thread::sleep(Duration::from_millis(100));
    let rss_before = server_rss(&s);
    let t = Instant::now();
    let mut idle = Vec::with_capacity(idle_n);
    for _ in 0..idle_n {
        idle.push(TcpStream::connect(("127.0.0.1", s.port)).unwrap());
    }
    let mut c = s.raw();
    // Every idle connection is registered once the server answers this.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let clients = info_field(&mut c, "clients", "connected_clients");
        if clients as usize > idle_n || Instant::now() > deadline {
            assert!(clients as usize > idle_n, "{clients} connected");
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let rss_idle = server_rss(&s);
    eprintln!(
        "{idle_n} idle connections opened in {:?}; server RSS {} KiB before, {} KiB with them ({} bytes each)",
        t.elapsed(),
        rss_before >> 10,
        rss_idle >> 10,
        rss_idle.saturating_sub(rss_before) / idle_n as u64
    );
    let mut lat = Vec::new();
    for i in 0..2000 {
        let t = Instant::now();
        assert_eq!(c.cmds(&["SET", "k", &i.to_string()]), b"+OK\r\n");
        lat.push(t.elapsed());
    }
    lat.sort();
    let p99 = lat[lat.len() * 99 / 100];
    let max = *lat.last().unwrap();
    eprintln!("active client with {idle_n} idle ones: p50 {:?} p99 {p99:?} max {max:?}", lat[lat.len() / 2]);
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?}");
    // The idle ones are still served too.
    idle[idle_n / 2].write_all(b"PING\r\n").unwrap();
    idle[idle_n / 2].set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 7];
    idle[idle_n / 2].read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
}
