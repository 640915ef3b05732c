//! A cache at its limit keeps its resident set near `maxmemory`, as Redis's does (issue 18 item 3):
//! two clients write about three times what the limit holds (random keys, 100-byte values, allkeys-lru), so
//! that keys are evicted as fast as they are written and the blocks of every bucket are copied and
//! freed over and over; the server's RSS growth (from /proc, read by this test) must stay within
//! `maxmemory` plus a quarter.
//!
//! The bound: `used_memory` counts the chunks malloc hands out (`memory::chunk_bytes`), so what
//! the data costs is held at `maxmemory`; what the RSS adds is memory malloc keeps free. With one
//! arena (`memory::one_arena_under_maxmemory`) that measured 2-4% at 64 MB in the release build's
//! cache run (Redis: 0-1%); a quarter leaves room for the debug build and another glibc, and still
//! fails on memory the count misses (a block or value not counted, retired blocks never freed) or
//! on a heap that keeps growing while the keyspace churns.
#![cfg(all(not(feature = "loom"), target_os = "linux"))]

mod common;

use common::Server;

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

fn info_field(c: &mut redis::Connection, name: &str) -> u64 {
    let text: String = redis::cmd("INFO").query(c).unwrap();
    text.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap().trim().parse().unwrap()
}

#[test]
fn rss_stays_near_maxmemory_while_keys_are_evicted() {
    const MAXMEMORY: u64 = 8 << 20;
    let srv = Server::start(&["--maxmemory", "8mb", "--maxmemory-policy", "allkeys-lru", "--appendonly", "no"]);
    let pid = srv.child.as_ref().expect("running").id();
    let mut c = srv.client();
    let rss0 = rss_bytes(pid);
    let value = vec![b'v'; 100];
    // 160k SETs, about 3x what the limit holds (~55k keys), over a keyspace of 4M names.
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let mut c = srv.client();
            let value = value.clone();
            std::thread::spawn(move || {
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (t + 1);
                for _ in 0..40 {
                    let mut p = redis::pipe();
                    for _ in 0..2000 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        p.cmd("SET").arg(format!("c:{}", x % 4_000_000)).arg(&value[..]).ignore();
                    }
                    let () = p.query(&mut c).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let evicted = info_field(&mut c, "evicted_keys");
    let used = info_field(&mut c, "used_memory");
    assert!(evicted > 60_000, "the writes ran past the limit: {evicted} evicted");
    assert!(used <= MAXMEMORY + (1 << 20), "used_memory {used} held at the limit");
    // The memory sampler gives free pages back once a second while keys are evicted.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let growth = rss_bytes(pid).saturating_sub(rss0);
    eprintln!(
        "RSS growth {:.1} MB, used_memory {:.1} MB, {evicted} evicted",
        growth as f64 / 1048576.0,
        used as f64 / 1048576.0
    );
    assert!(
        growth <= MAXMEMORY + MAXMEMORY / 4,
        "RSS grew {:.1} MB at maxmemory {} MB (used_memory {:.1} MB)",
        growth as f64 / 1048576.0,
        MAXMEMORY >> 20,
        used as f64 / 1048576.0
    );
}
