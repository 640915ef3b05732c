//! INFO persistence's `loading_*` fields during a load slowed by `key-load-delay` (as Redis's
//! tests slow theirs): the RDB at startup and a replica's full sync from disk and diskless. While
//! `loading:1` the six fields are there, after `module_fork_last_cow_size` as in redis-server
//! 7.0's INFO (compared with a real one loading the same file), with a sane start time and
//! growing loaded bytes; once loaded they are gone.
#![cfg(not(feature = "loom"))]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Raw, Server, s};

const FIELDS: [&str; 6] = [
    "loading_start_time",
    "loading_total_bytes",
    "loading_rdb_used_mem",
    "loading_loaded_bytes",
    "loading_loaded_perc",
    "loading_eta_seconds",
];

/// A server child killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Start `bin` in `dir` with `args` and connect as soon as it listens (before its load ends,
/// unlike `Server::start`, which waits for PONG).
fn spawn(bin: &str, dir: &std::path::Path, args: &[&str]) -> (Process, Raw, u16) {
    let port = free_port();
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let child = Process(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            return (child, Raw::new(c), port);
        }
        assert!(Instant::now() < deadline, "{bin} never listened");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// INFO persistence as (name, value) pairs, in order.
fn persistence(c: &mut Raw) -> Vec<(String, String)> {
    s(c.cmds(&["INFO", "persistence"]))
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn get<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Poll INFO persistence while `loading` (or `async_loading`) is 1, checking the fields each time;
/// returns the snapshots seen while loading (the last one is after the load, checked too).
fn watch_load(c: &mut Raw, total: Option<u64>) -> Vec<Vec<(String, String)>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let f = persistence(c);
        let loading = get(&f, "loading") == Some("1") || get(&f, "async_loading") == Some("1");
        if !loading {
            if !seen.is_empty() {
                for name in FIELDS {
                    assert_eq!(get(&f, name), None, "{name} after the load");
                }
                return seen;
            }
        } else {
            let names: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
            let at = names.iter().position(|&n| n == "module_fork_last_cow_size").expect("module_fork_last_cow_size");
            assert_eq!(&names[at + 1..], FIELDS, "the loading fields, last, in Redis's order");
            let start: i64 = get(&f, "loading_start_time").unwrap().parse().unwrap();
            assert!((unix_now() - start).abs() < 120, "start time {start}");
            if let Some(total) = total {
                assert_eq!(get(&f, "loading_total_bytes"), Some(total.to_string().as_str()));
            }
            let perc: f64 = get(&f, "loading_loaded_perc").unwrap().parse().unwrap();
            assert!((0.0..=100.0).contains(&perc), "perc {perc}");
            let eta: i64 = get(&f, "loading_eta_seconds").unwrap().parse().unwrap();
            assert!(eta >= 0, "eta {eta}");
            seen.push(f);
        }
        assert!(Instant::now() < deadline, "the load never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn loaded(f: &[(String, String)]) -> u64 {
    get(f, "loading_loaded_bytes").unwrap().parse().unwrap()
}

/// Loaded bytes never go back, and grew while it was watched.
fn assert_growing(seen: &[Vec<(String, String)>]) {
    let bytes: Vec<u64> = seen.iter().map(|f| loaded(f)).collect();
    assert!(bytes.windows(2).all(|w| w[0] <= w[1]), "loaded bytes went back: {bytes:?}");
    assert!(bytes.len() >= 3 && bytes.last() > bytes.first(), "loaded bytes did not grow: {bytes:?}");
}

/// `keys` keys of 100 bytes saved by a server into `dir`/dump.rdb; returns the file's size.
fn make_rdb(dir: &std::path::Path, keys: usize) -> u64 {
    let srv = Server::start(&["--appendonly", "no"]);
    fill(&mut srv.raw(), keys);
    let mut c = srv.raw();
    assert_eq!(s(c.cmds(&["SAVE"])), "+OK\r\n");
    std::fs::copy(srv.dir.join("dump.rdb"), dir.join("dump.rdb")).unwrap()
}

fn fill(c: &mut Raw, keys: usize) {
    let v = "v".repeat(100);
    for chunk in (0..keys).collect::<Vec<_>>().chunks(500) {
        let mut args = vec!["MSET".to_string()];
        for i in chunk {
            args.push(format!("key:{i}"));
            args.push(v.clone());
        }
        let a: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
        assert_eq!(s(c.cmds(&a)), "+OK\r\n");
    }
}

#[test]
fn rdb_load_at_startup_shows_its_progress() {
    let dir = common::temp_dir("loading-rdb");
    let size = make_rdb(&dir, 20_000);
    // 20000 keys x 100 µs: about 2 s of loading.
    let (_child, mut c, _) =
        spawn(env!("CARGO_BIN_EXE_flurrydb-server"), &dir, &["--appendonly", "no", "--key-load-delay", "100"]);
    let seen = watch_load(&mut c, Some(size));
    assert_growing(&seen);
    let used_mem: u64 = get(seen.last().unwrap(), "loading_rdb_used_mem").unwrap().parse().unwrap();
    assert!(used_mem > 0, "the RDB's used-mem aux field");
    assert_eq!(s(c.cmds(&["DBSIZE"])), ":20000\r\n");

    // redis-server 7.0 loading the same file shows the same fields at the same place.
    if Command::new("redis-server").arg("--version").output().is_err() {
        return;
    }
    // (It answers while it loads only every `loading-process-events-interval-bytes`, 2 MB unless
    // told.)
    let (_real, mut r, _) = spawn(
        "redis-server",
        &dir,
        &["--appendonly", "no", "--key-load-delay", "100", "--loading-process-events-interval-bytes", "1024"],
    );
    let seen = watch_load(&mut r, Some(size));
    assert!(!seen.is_empty());
}

#[test]
fn aof_load_at_startup_shows_its_progress() {
    // An AOF with an RDB preamble (the rewrite's), which `key-load-delay` slows, then commands.
    let mut srv = Server::start(&["--appendonly", "yes", "--aof-use-rdb-preamble", "yes"]);
    fill(&mut srv.raw(), 20_000);
    assert!(s(srv.raw().cmds(&["BGREWRITEAOF"])).starts_with('+'));
    srv.wait_for_rewrite();
    fill(&mut srv.raw(), 2_000);
    assert_eq!(srv.stop(), Some(0));
    let dir = common::temp_dir("loading-aof");
    let size = std::fs::copy(srv.dir.join("appendonly.aof"), dir.join("appendonly.aof")).unwrap();
    let (_child, mut c, _) =
        spawn(env!("CARGO_BIN_EXE_flurrydb-server"), &dir, &["--appendonly", "yes", "--key-load-delay", "100"]);
    let seen = watch_load(&mut c, Some(size));
    assert_growing(&seen);
    assert_eq!(s(c.cmds(&["DBSIZE"])), ":20000\r\n");
}

#[test]
fn replica_full_syncs_show_their_progress() {
    let pdir = common::temp_dir("loading-primary");
    let primary = Server::start_in(pdir, &["--appendonly", "no"]);
    fill(&mut primary.raw(), 20_000);
    let rdir = common::temp_dir("loading-replica");
    let (_child, mut c, _) = spawn(env!("CARGO_BIN_EXE_flurrydb-server"), &rdir, &["--key-load-delay", "100"]);
    let port = primary.port.to_string();
    // From disk: the file's size is the total.
    assert_eq!(s(c.cmds(&["REPLICAOF", "127.0.0.1", &port])), "+OK\r\n");
    let seen = watch_load(&mut c, None);
    assert_growing(&seen);
    let total: u64 = get(seen.last().unwrap(), "loading_total_bytes").unwrap().parse().unwrap();
    assert!(total > 20_000 && total >= loaded(seen.last().unwrap()), "total {total}");
    // Diskless: the length is unknown (0) and the percentage follows the primary's used-mem.
    for mode in ["on-empty-db", "swapdb"] {
        let _ = c.cmds(&["REPLICAOF", "NO", "ONE"]);
        assert_eq!(s(c.cmds(&["CONFIG", "SET", "repl-diskless-load", mode])), "+OK\r\n");
        if mode == "on-empty-db" {
            let _ = c.cmds(&["FLUSHALL"]);
        }
        assert_eq!(s(c.cmds(&["REPLICAOF", "127.0.0.1", &port])), "+OK\r\n");
        let seen = watch_load(&mut c, Some(0));
        assert_growing(&seen);
        assert_ne!(get(seen.last().unwrap(), "loading_rdb_used_mem"), Some("0"), "{mode}: used-mem");
    }
}
