//! The write path: record bytes, SELECT, preallocation, trimming, reopening, concurrency, Redis tools.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use super::*;
use crate::aof::Aof;
use crate::sync::Arc;

#[test]
fn records_are_resp_arrays_exactly_as_redis_writes_them() {
    let dir = TestDir::new("bytes");
    let cfg = dir.cfg(FsyncPolicy::No);
    let aof = Aof::open(cfg.clone()).unwrap();
    aof.append(0, &args(&["SET", "key", "value"]));
    aof.shutdown().unwrap();
    assert_eq!(
        std::fs::read(cfg.path()).unwrap(),
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"
    );
}

#[test]
fn select_emitted_on_db_change() {
    let dir = TestDir::new("select");
    let cfg = dir.cfg(FsyncPolicy::No);
    let aof = Aof::open(cfg.clone()).unwrap();
    for (db, key) in [(0, "a"), (0, "b"), (3, "c"), (0, "d")] {
        aof.append(db, &args(&["DEL", key]));
    }
    aof.shutdown().unwrap();
    let expected = [
        resp(&["SELECT", "0"]),
        resp(&["DEL", "a"]),
        resp(&["DEL", "b"]),
        resp(&["SELECT", "3"]),
        resp(&["DEL", "c"]),
        resp(&["SELECT", "0"]),
        resp(&["DEL", "d"]),
    ]
    .concat();
    assert_eq!(std::fs::read(cfg.path()).unwrap(), expected);
    let (cmds, _) = replay(&cfg).unwrap();
    assert_eq!(cmds, vec![cmd(0, &["DEL", "a"]), cmd(0, &["DEL", "b"]), cmd(3, &["DEL", "c"]), cmd(0, &["DEL", "d"])]);
}

#[test]
fn file_is_trimmed_on_shutdown() {
    let dir = TestDir::new("trim");
    let cfg = dir.cfg(FsyncPolicy::EverySec);
    let aof = Aof::open(cfg.clone()).unwrap();
    let seq = aof.append(0, &args(&["SET", "a", "1"]));
    assert_eq!(seq, 1);
    assert!(eventually(Duration::from_secs(5), || aof.info().aof_current_size > 0));
    let running = std::fs::metadata(cfg.path()).unwrap().len();
    assert_eq!(running, cfg.prealloc_bytes, "while running the file holds a preallocated chunk");
    aof.shutdown().unwrap();
    let expected = (resp(&["SELECT", "0"]).len() + resp(&["SET", "a", "1"]).len()) as u64;
    assert_eq!(std::fs::metadata(cfg.path()).unwrap().len(), expected);
    assert_eq!(aof.info().aof_current_size, expected);
    aof.shutdown().expect("shutdown is idempotent");
}

#[test]
fn a_disk_with_less_room_than_a_chunk_gets_smaller_real_extensions() {
    let dir = TestDir::new("small-room");
    let cfg = dir.cfg(FsyncPolicy::Always);
    let chunk = cfg.prealloc_bytes;
    let aof = Aof::open(cfg.clone()).unwrap();
    let value = "x".repeat(1000);
    let mut n = 0;
    // Writes records until the log holds `log_bytes`; checks that each extension on the way left at
    // most `most_ahead` bytes reserved past the log, and returns how many extensions there were.
    let mut write_until = |aof: &Aof, log_bytes: u64, most_ahead: u64| {
        let mut size = std::fs::metadata(cfg.path()).unwrap().len();
        let mut extensions = 0;
        while aof.info().aof_current_size < log_bytes {
            let seq = aof.append(0, &args(&["SET", &format!("k{n}"), &value]));
            n += 1;
            block_on(aof.wait_durable(seq)).unwrap();
            let (meta, written) = (std::fs::metadata(cfg.path()).unwrap(), aof.info().aof_current_size);
            assert!(meta.len() >= written && meta.blocks() * 512 >= meta.len(), "real blocks under the log");
            if meta.len() != size {
                assert!(meta.len() - written <= most_ahead, "{} reserved past {written}", meta.len() - written);
                (size, extensions) = (meta.len(), extensions + 1);
            }
        }
        extensions
    };
    // 16 KB free: past the first chunk, extensions of half of it (8 KB), not of a chunk.
    aof.limit_free_space(Some(16 << 10));
    assert!(write_until(&aof, chunk + (40 << 10), 8 << 10) >= 4);
    // Nothing free: just the pages the next record needs, until the real disk says no.
    aof.limit_free_space(Some(0));
    assert!(write_until(&aof, chunk + (80 << 10), 4 << 10) >= 4);
    aof.limit_free_space(None);
    aof.shutdown().unwrap();
    let (cmds, _) = replay(&cfg).unwrap();
    assert_eq!(cmds.len(), n);
}

#[test]
fn prealloc_extends_in_chunks_with_real_blocks() {
    let dir = TestDir::new("prealloc");
    let cfg = dir.cfg(FsyncPolicy::Always);
    let chunk = cfg.prealloc_bytes;
    let aof = Aof::open(cfg.clone()).unwrap();
    let meta = std::fs::metadata(cfg.path()).unwrap();
    assert_eq!(meta.len(), chunk);
    assert!(meta.blocks() * 512 >= chunk, "the first chunk is reserved, not sparse: {} blocks", meta.blocks());

    // Write about 2.5 chunks through the map: the file grows by whole chunks, each one reserved.
    let value = "x".repeat(1000);
    let mut last = 0;
    for i in 0..160 {
        last = aof.append(0, &args(&["SET", &format!("k{i}"), &value]));
    }
    block_on(aof.wait_durable(last)).unwrap();
    let meta = std::fs::metadata(cfg.path()).unwrap();
    let written = aof.info().aof_current_size;
    assert!(written > 2 * chunk);
    assert_eq!(meta.len() % chunk, 0, "extended in whole chunks");
    assert_eq!(meta.len(), written.div_ceil(chunk) * chunk);
    assert!(
        meta.blocks() * 512 >= meta.len(),
        "every chunk has real blocks: {} blocks for {} bytes",
        meta.blocks(),
        meta.len()
    );
    aof.shutdown().unwrap();
    let (cmds, _) = replay(&cfg).unwrap();
    assert_eq!(cmds.len(), 160);
}

#[test]
fn reopen_appends_after_the_valid_end_of_a_crashed_file() {
    let dir = TestDir::new("reopen");
    let cfg = dir.cfg(FsyncPolicy::Always);
    let aof = Aof::open(cfg.clone()).unwrap();
    let seq = aof.append(0, &args(&["SET", "a", "1"]));
    block_on(aof.wait_durable(seq)).unwrap();
    aof.simulate_crash(); // no trim: the preallocated zeros stay
    assert_eq!(std::fs::metadata(cfg.path()).unwrap().len(), cfg.prealloc_bytes);
    drop(aof);

    let (cmds, report) = replay(&cfg).unwrap();
    assert_eq!(cmds, vec![cmd(0, &["SET", "a", "1"])]);
    assert!(!report.truncated_tail);

    let aof = Aof::open(cfg.clone()).unwrap();
    let seq = aof.append(5, &args(&["SET", "b", "2"]));
    block_on(aof.wait_durable(seq)).unwrap();
    aof.shutdown().unwrap();
    let (cmds, _) = replay(&cfg).unwrap();
    assert_eq!(cmds, vec![cmd(0, &["SET", "a", "1"]), cmd(5, &["SET", "b", "2"])]);
}

#[test]
fn concurrent_appenders_are_replayed_exactly_once_in_per_thread_order() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 400;
    let dir = TestDir::new("concurrent");
    let cfg = dir.cfg(FsyncPolicy::Always);
    let aof = Aof::open(cfg.clone()).unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let aof = Arc::clone(&aof);
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let seq = aof.append(t % 3, &args(&["RPUSH", &format!("list{t}"), &i.to_string()]));
                    if i % 50 == 0 {
                        block_on(aof.wait_durable(seq)).unwrap();
                    }
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    aof.shutdown().unwrap();
    assert!(aof.shared().msyncs.load(std::sync::atomic::Ordering::Relaxed) >= 1);

    let (cmds, _) = replay(&cfg).unwrap();
    assert_eq!(cmds.len(), THREADS * PER_THREAD);
    let mut next = [0usize; THREADS];
    for (db, argv) in cmds {
        let t: usize = argv[1].trim_start_matches("list").parse().unwrap();
        assert_eq!(db, t % 3, "each record replays in its own db");
        assert_eq!(argv[2], next[t].to_string(), "thread {t}'s records in order, each once");
        next[t] += 1;
    }
    assert!(next.iter().all(|&n| n == PER_THREAD));
}

#[test]
fn disabled_aof_is_a_no_op() {
    let aof = Aof::disabled();
    assert!(!aof.enabled());
    assert_eq!(aof.append(0, &args(&["SET", "a", "1"])), 0);
    block_on(aof.wait_durable(0)).unwrap();
    assert_eq!(aof.write_error(), None);
    assert!(matches!(aof.start_rewrite(), Err(AofError::Disabled)));
    assert!(!aof.info().aof_enabled);
    aof.shutdown().unwrap();
}

#[test]
fn fsync_policy_parses_and_displays() {
    for (text, policy) in
        [("always", FsyncPolicy::Always), ("everysec", FsyncPolicy::EverySec), ("no", FsyncPolicy::No)]
    {
        assert_eq!(text.parse::<FsyncPolicy>().unwrap(), policy);
        assert_eq!(policy.to_string(), text);
    }
    assert_eq!("EverySec".parse::<FsyncPolicy>().unwrap(), FsyncPolicy::EverySec);
    assert!(matches!("sometimes".parse::<FsyncPolicy>(), Err(AofError::Config(_))));
}

fn have(binary: &str) -> bool {
    Command::new(binary).arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn redis_check_aof_accepts_trimmed_file() {
    if !have("redis-check-aof") {
        eprintln!("skipped: redis-check-aof is not installed");
        return;
    }
    let dir = TestDir::new("check-aof");
    let cfg = dir.cfg(FsyncPolicy::EverySec);
    let aof = Aof::open(cfg.clone()).unwrap();
    for i in 0..100 {
        aof.append(i % 4, &args(&["SET", &format!("key:{i}"), "va\r\nlue"]));
    }
    aof.append(1, &args(&["MULTI"]));
    aof.append(1, &args(&["INCR", "counter"]));
    aof.append(1, &args(&["EXEC"]));
    aof.shutdown().unwrap();
    let out = Command::new("redis-check-aof").arg(cfg.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("is valid"), "redis-check-aof said: {text}");
}

#[test]
fn redis_server_loads_trimmed_file() {
    if !have("redis-server") || !have("redis-cli") {
        eprintln!("skipped: redis-server/redis-cli are not installed");
        return;
    }
    let dir = TestDir::new("redis-server");
    let cfg = dir.cfg(FsyncPolicy::Always);
    let aof = Aof::open(cfg.clone()).unwrap();
    aof.append(0, &args(&["SET", "greeting", "hello"]));
    aof.append(3, &args(&["RPUSH", "list", "a", "b\r\nc"]));
    aof.append(3, &args(&["INCRBY", "n", "41"]));
    aof.append(3, &args(&["INCR", "n"]));
    aof.shutdown().unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let mut server = Command::new("redis-server")
        .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
        .args(["--appendfilename", "appendonly.aof", "--dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let cli = |db: &str, argv: &[&str]| {
        let out = Command::new("redis-cli").args(["-p", &port, "-n", db]).args(argv).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let up = eventually(Duration::from_secs(10), || cli("0", &["PING"]) == "PONG");
    let got =
        up.then(|| (cli("0", &["GET", "greeting"]), cli("3", &["LRANGE", "list", "0", "-1"]), cli("3", &["GET", "n"])));
    let _ = cli("0", &["SHUTDOWN", "NOSAVE"]);
    if server.try_wait().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_millis(200));
        let _ = server.kill();
    }
    let _ = server.wait();
    let (greeting, list, n) = got.expect("redis-server started");
    assert_eq!(greeting, "hello");
    assert_eq!(list, "a\nb\r\nc");
    assert_eq!(n, "42");
}

#[test]
fn aof_and_its_wait_future_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let aof = Aof::disabled();
    send_sync(&aof);
    send(&aof.wait_durable(1));
}
