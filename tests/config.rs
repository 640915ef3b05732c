//! Configuration against the real server binary: Debian's stock redis.conf of Redis 7.0.15 loads
//! unchanged, CONFIG GET * lists exactly what redis-server 7.0.15 lists, any parameter can be given
//! as `--name value`, parameters without effect are named in one startup warning, and a bad value
//! stops startup with Redis's error text.
#![cfg(not(feature = "loom"))]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;

/// Start the binary on `conf` (the harness always passes `--port` first, so no config file).
fn start_with_conf(conf: &std::path::Path, dir: std::path::PathBuf, port: u16) -> Server {
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_flurrydb-server"))
        .arg(conf)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let s = Server { child: Some(child), port, dir, args: vec![] };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = [0u8; 16];
            if c.write_all(b"PING\r\n").is_ok() && c.read(&mut buf).is_ok_and(|n| buf[..n].starts_with(b"+PONG")) {
                return s;
            }
        }
        assert!(Instant::now() < deadline, "server did not start; log: {}", s.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn config_get(s: &Server, pattern: &str) -> Vec<String> {
    let mut c = s.client();
    redis::cmd("CONFIG").arg("GET").arg(pattern).query(&mut c).unwrap()
}

/// The lines of the log that name the parameters without effect.
fn inert_warnings(s: &Server) -> Vec<String> {
    s.log().lines().filter(|l| l.contains("accepted but have no effect")).map(String::from).collect()
}

#[test]
fn debian_stock_redis_conf_loads_unchanged_and_answers_pong() {
    let dir = common::temp_dir("stockconf");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut conf = include_str!("fixtures/redis-7.0.15.conf").to_string();
    // Only what a test must change: where to listen and write, and stay in the foreground.
    conf.push_str(&format!(
        "\nport {port}\ndir {}\ndaemonize no\nlogfile \"\"\npidfile {}\n",
        dir.display(),
        dir.join("redis.pid").display()
    ));
    let path = dir.join("redis.conf");
    std::fs::write(&path, conf).unwrap();
    let s = start_with_conf(&path, dir, port);
    assert_eq!(config_get(&s, "bind"), ["bind", "127.0.0.1 -::1"]);
    assert_eq!(config_get(&s, "slave-serve-stale-data"), ["slave-serve-stale-data", "yes"]);
    assert_eq!(config_get(&s, "auto-aof-rewrite-min-size"), ["auto-aof-rewrite-min-size", "67108864"]);
    assert_eq!(config_get(&s, "proc-title-template"), ["proc-title-template", "{title} {listen-addr} {server-mode}"]);
    // Every directive the stock file sets to a non-default value has an effect (daemonize is no here).
    assert_eq!(inert_warnings(&s), Vec::<String>::new(), "{}", s.log());
    let pid = s.child.as_ref().unwrap().id();
    assert_eq!(std::fs::read_to_string(s.dir.join("redis.pid")).unwrap(), format!("{pid}\n"));
}

#[test]
fn config_get_star_lists_exactly_the_names_redis_7_0_15_lists() {
    let s = Server::start(&[]);
    let all = config_get(&s, "*");
    let mut names: Vec<&str> = all.chunks(2).map(|pair| pair[0].as_str()).collect();
    names.sort_unstable();
    let fixture: Vec<&str> = include_str!("fixtures/config-get-names-7.0.15.txt").lines().collect();
    assert_eq!(names, fixture);
    assert!(inert_warnings(&s).is_empty(), "{}", s.log());
}

#[test]
fn any_parameter_is_a_command_line_option_and_inert_ones_are_named_at_startup() {
    let s = Server::start(&[
        "--hz",
        "20",
        "--lua-time-limit",
        "100",
        "--slaveof",
        "127.0.0.1",
        "6399",
        "--notify-keyspace-events",
        "KEA",
        "--hash-max-ziplist-entries",
        "512",
        "--aof-timestamp-enabled",
        "yes",
    ]);
    assert_eq!(config_get(&s, "hz"), ["hz", "20"]);
    assert_eq!(config_get(&s, "busy-reply-threshold"), ["busy-reply-threshold", "100"]);
    assert_eq!(config_get(&s, "replicaof"), ["replicaof", "127.0.0.1 6399"]);
    assert_eq!(config_get(&s, "notify-keyspace-events"), ["notify-keyspace-events", "AKE"]);
    let warnings = inert_warnings(&s);
    assert_eq!(warnings.len(), 1, "{}", s.log());
    // `replicaof` has its effect (the server follows 127.0.0.1:6399, retrying); `aof-timestamp-enabled` has none.
    assert!(warnings[0].ends_with("flurrydb yet: aof-timestamp-enabled"), "{}", warnings[0]);
    let mut c = s.raw();
    assert_eq!(
        c.cmds(&["CONFIG", "SET", "replicaof", "no one"]),
        b"-ERR CONFIG SET failed (possibly related to argument 'replicaof') - can't set immutable config\r\n"
    );
}

#[test]
fn a_bad_value_stops_startup_with_redis_error_text() {
    let dir = common::temp_dir("badconf");
    let out = Command::new(env!("CARGO_BIN_EXE_flurrydb-server"))
        .args(["--port", "0", "--dir"])
        .arg(&dir)
        .args(["--maxmemory-policy", "sometimes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("*** FATAL CONFIG FILE ERROR"), "{err}");
    assert!(err.contains(">>> 'maxmemory-policy \"sometimes\"'"), "{err}");
    assert!(
        err.contains(
            "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, \
             volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"
        ),
        "{err}"
    );
}

#[test]
fn pidfile_holds_the_pid_while_running_and_is_removed_at_shutdown() {
    let dir = common::temp_dir("pidfile");
    let pidfile = dir.join("flurrydb.pid");
    let mut s = Server::start_in(dir.clone(), &["--pidfile", pidfile.to_str().unwrap()]);
    let pid = s.child.as_ref().unwrap().id();
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), format!("{pid}\n"));
    assert!(inert_warnings(&s).is_empty(), "pidfile has an effect: {}", s.log());
    assert_eq!(s.stop(), Some(0));
    assert!(!pidfile.exists(), "removed at shutdown");
    // A pid file that cannot be written is a warning, as in Redis: the server still starts.
    let s = Server::start_in(common::temp_dir("pidfile-bad"), &["--pidfile", "/nonexistent-dir/x.pid"]);
    assert!(s.log().contains("Failed to write PID file: No such file or directory"), "{}", s.log());
}

#[test]
fn config_set_port_and_bind_listen_anew_as_redis() {
    let s = Server::start(&["--appendonly", "no"]);
    let mut c = s.client();
    // A port that is taken: Redis's error, and the server keeps its old listener.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port().to_string();
    let mut raw = s.raw();
    assert_eq!(
        String::from_utf8(raw.cmds(&["CONFIG", "SET", "port", &busy])).unwrap(),
        "-ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port. Check server logs.\r\n"
    );
    assert_eq!(config_get(&s, "port"), ["port".to_string(), s.port.to_string()]);
    drop(taken);
    assert_eq!(
        String::from_utf8(raw.cmds(&["CONFIG", "SET", "bind", "127.0.0.1 192.0.2.1"])).unwrap(),
        "-ERR CONFIG SET failed (possibly related to argument 'bind') - Failed to bind to specified addresses.\r\n"
    );
    // A free port: new connections go there, the old port is closed, this connection stays.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    redis::cmd("CONFIG").arg("SET").arg("port").arg(free).query::<()>(&mut c).unwrap();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let mut moved = Server { child: None, port: free, dir: s.dir.clone(), args: vec![] };
    assert_eq!(config_get(&moved, "port"), ["port".to_string(), free.to_string()]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", s.port)).is_ok() {
        assert!(Instant::now() < deadline, "the old port still accepts");
        std::thread::sleep(Duration::from_millis(10));
    }
    // bind and port together, in one CONFIG SET.
    let again = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c2 = moved.client();
    redis::cmd("CONFIG").arg("SET").arg("bind").arg("127.0.0.1").arg("port").arg(again).query::<()>(&mut c2).unwrap();
    moved.port = again;
    assert_eq!(config_get(&moved, "bind"), ["bind", "127.0.0.1"]);
    let mut s = s;
    s.port = again;
    assert_eq!(s.stop(), Some(0));
}
