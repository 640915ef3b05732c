//! A small, then full, disk under `--appendonly yes`: the server takes writes until the disk is
//! really full (it does not ask for a whole `aof-prealloc-bytes` chunk first), then refuses writes
//! with -MISCONF while reads go on; once space is freed writes resume, and after a restart every
//! acknowledged write is there. Needs a 3 MB tmpfs: the test mounts one when it may (root) and
//! otherwise says so and passes.
#![cfg(not(feature = "loom"))]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, temp_dir};

/// A tmpfs mounted on a directory for the life of the value; unmounted on drop (after the server
/// holding files in it is gone: declare it before the server).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => Some(Tmpfs(dir.to_path_buf())),
            _ => None,
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

fn set(c: &mut common::Raw, key: &str, value: &str) -> Vec<u8> {
    c.cmds(&["SET", key, value])
}

/// Redis 7.0.15's reply to a write on a full disk.
const MISCONF: &[u8] = b"-MISCONF Errors writing to the AOF file: No space left on device\r\n";

/// The value every filling SET writes (about 1 KB per record).
fn value() -> String {
    "v".repeat(1000)
}

/// A 3 MB tmpfs on a fresh directory holding a 512 KB filler file (room to give back later), or
/// `None` (with a note) where mounting is not permitted.
fn small_disk(tag: &str) -> Option<(PathBuf, Tmpfs)> {
    let dir = temp_dir(tag);
    let Some(tmpfs) = Tmpfs::mount(&dir, "3m") else {
        eprintln!("note: skipping the small-disk test: cannot mount a tmpfs here (needs root)");
        return None;
    };
    std::fs::write(dir.join("filler"), vec![7u8; 512 * 1024]).unwrap();
    Some((dir, tmpfs))
}

/// SET k0, k1, ... until a reply is not OK; checks that it is MISCONF and that the disk took far
/// more than one SET first. Returns the acknowledged keys.
fn fill_until_misconf(c: &mut common::Raw) -> Vec<String> {
    let value = value();
    let mut acked = Vec::new();
    let refusal = loop {
        let key = format!("k{}", acked.len());
        let reply = set(c, &key, &value);
        if reply != b"+OK\r\n" {
            break reply;
        }
        acked.push(key);
        assert!(acked.len() < 10_000, "3 MB cannot hold 10 MB of records");
    };
    assert_eq!(refusal, MISCONF, "{}", String::from_utf8_lossy(&refusal));
    // About 2.5 MB of the disk is free for the file: far more than one SET fits before the refusal.
    assert!(acked.len() > 1000, "only {} SETs were taken before -MISCONF", acked.len());
    assert_eq!(set(c, "again", "1"), MISCONF, "writes stay refused while the disk is full");
    acked
}

/// Once the filler is deleted, the writer's retry succeeds on its own and writes are taken again.
fn free_space_and_wait_for_writes(dir: &Path, c: &mut common::Raw, s: &Server) {
    std::fs::remove_file(dir.join("filler")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = set(c, "resumed", "yes");
        if reply == b"+OK\r\n" {
            return;
        }
        assert_eq!(reply, MISCONF, "{}", String::from_utf8_lossy(&reply));
        assert!(Instant::now() < deadline, "writes did not resume after space was freed; log: {}", s.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_all_present(c: &mut common::Raw, acked: &[String]) {
    let value = value();
    for key in acked {
        let expected = if key == "resumed" { "yes" } else { &value };
        assert_eq!(
            c.cmds(&["GET", key]),
            format!("${}\r\n{expected}\r\n", expected.len()).into_bytes(),
            "{key} was acknowledged"
        );
    }
}

#[test]
fn a_full_disk_refuses_writes_until_space_is_freed_and_loses_no_acknowledged_write() {
    let Some((dir, _tmpfs)) = small_disk("small-disk") else { return };
    let mut s = Server::start_in(dir.clone(), &["--appendonly", "yes"]);
    let mut c = s.raw();
    let mut acked = fill_until_misconf(&mut c);
    assert_eq!(c.cmds(&["GET", "k0"]), format!("$1000\r\n{}\r\n", value()).into_bytes(), "reads go on");
    let log = s.log();
    assert!(log.contains("# Error writing to the AOF file: No space left on device"), "in the log's format: {log}");
    assert!(!log.contains("flurrydb aof:"), "every line in the log's format: {log}");

    free_space_and_wait_for_writes(&dir, &mut c, &s);
    acked.push("resumed".into());
    for i in 0..100 {
        let key = format!("after{i}");
        assert_eq!(set(&mut c, &key, &value()), b"+OK\r\n");
        acked.push(key);
    }

    // A clean stop and a restart on the same disk: every acknowledged write is replayed.
    drop(c);
    assert_eq!(s.stop(), Some(0), "log: {}", s.log());
    s.restart();
    assert_all_present(&mut s.raw(), &acked);
}

#[test]
fn a_process_killed_on_a_full_disk_under_always_keeps_every_acknowledged_write() {
    let Some((dir, _tmpfs)) = small_disk("small-disk-always") else { return };
    let mut s = Server::start_in(dir.clone(), &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut acked = fill_until_misconf(&mut s.raw());

    // SIGKILL while the disk is full, then start again on it: the file loads.
    s.kill9();
    s.restart();
    let mut c = s.raw();
    assert_all_present(&mut c, &acked);

    free_space_and_wait_for_writes(&dir, &mut c, &s);
    acked.push("resumed".into());
    drop(c);
    s.kill9();
    s.restart();
    assert_all_present(&mut s.raw(), &acked);
}
