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

#[test]
fn a_full_disk_refuses_writes_until_space_is_freed_and_loses_no_acknowledged_write() {
    let dir = temp_dir("small-disk");
    let Some(_tmpfs) = Tmpfs::mount(&dir, "3m") else {
        eprintln!("note: skipping the small-disk test: cannot mount a tmpfs here (needs root)");
        return;
    };
    // Room to give back later: a filler file taking a sixth of the disk.
    let filler = dir.join("filler");
    std::fs::write(&filler, vec![7u8; 512 * 1024]).unwrap();

    let mut s = Server::start_in(dir.clone(), &["--appendonly", "yes"]);
    let mut c = s.raw();
    let value = "v".repeat(1000);
    let mut acked = Vec::new();
    let refusal = loop {
        let key = format!("k{}", acked.len());
        let reply = set(&mut c, &key, &value);
        if reply != b"+OK\r\n" {
            break reply;
        }
        acked.push(key);
        assert!(acked.len() < 10_000, "3 MB cannot hold 10 MB of records");
    };
    // Redis 7.0.15's words on a full disk.
    let misconf = b"-MISCONF Errors writing to the AOF file: No space left on device\r\n";
    assert_eq!(refusal, misconf, "{}", String::from_utf8_lossy(&refusal));
    // About 2.5 MB of the disk is free for the file: far more than one SET fits before the refusal.
    assert!(acked.len() > 1000, "only {} SETs were taken before -MISCONF", acked.len());
    assert_eq!(set(&mut c, "again", "1"), misconf, "writes stay refused while the disk is full");
    assert_eq!(c.cmds(&["GET", "k0"]), format!("${}\r\n{value}\r\n", value.len()).into_bytes(), "reads go on");
    assert_eq!(c.cmds(&["DBSIZE"])[..1], b":"[..]);

    let log = s.log();
    assert!(log.contains("# Error writing to the AOF file: "), "a warning in the log's format: {log}");
    assert!(!log.contains("flurrydb aof:"), "every line in the log's format: {log}");

    // Free space: the writer's retry succeeds on its own and writes are taken again.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = set(&mut c, "resumed", "yes");
        if reply == b"+OK\r\n" {
            break;
        }
        assert_eq!(reply, misconf, "{}", String::from_utf8_lossy(&reply));
        assert!(Instant::now() < deadline, "writes did not resume after space was freed; log: {}", s.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    acked.push("resumed".into());
    for i in 0..100 {
        let key = format!("after{i}");
        assert_eq!(set(&mut c, &key, &value), b"+OK\r\n");
        acked.push(key);
    }

    // A clean stop and a restart on the same disk: every acknowledged write is replayed.
    drop(c);
    assert_eq!(s.stop(), Some(0), "log: {}", s.log());
    s.restart();
    let mut c = s.raw();
    for key in &acked {
        let expected = if key == "resumed" { "yes" } else { &value };
        assert_eq!(
            c.cmds(&["GET", key]),
            format!("${}\r\n{expected}\r\n", expected.len()).into_bytes(),
            "{key} was acknowledged"
        );
    }
    drop(c);
    drop(s);
}
