//! How the keyspace scales with cores, below the socket: N std threads run one command through
//! [`flurrydb::cmd::execute`] in a loop for a fixed time, each as its own client of one shared
//! server state (as connections on N runtime workers do), and the total rate is compared with one
//! thread's.
//!
//! Run: `cargo bench --bench scaling` (thread counts 1, 2, 4, ... up to the machine's cores, 1 s
//! per cell), or `cargo bench --bench scaling -- --secs 0.5 --threads 1,2,8,16 --only spread`.
//!
//! Unlike the server benchmark (benches/vs_redis.py), nothing else runs on the cores here, so on a
//! machine with C cores the figure for N <= C threads shows what the design gives: "spread" tests
//! (random keys out of 100000, as `redis-benchmark -r 100000`) should grow close to N-fold; "hot"
//! tests (every thread on one key) show the cost of contention on one key (one CAS cell for INCR,
//! one list lock for LPUSH). Throughput figures, not assertions: this is a benchmark, not a test.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flurrydb::aof::Aof;
use flurrydb::cmd::{Client, Ctx, execute};
use flurrydb::config::Config;
use flurrydb::state::Shared;

/// The server's allocator (it counts live bytes for INFO and maxmemory), so that its cost is in the
/// figures as it is in the server's.
#[global_allocator]
static ALLOCATOR: flurrydb::memory::CountingAllocator = flurrydb::memory::CountingAllocator;

/// The clock the commands see (nothing here expires).
const NOW_MS: u64 = 1_700_000_000_000;
/// Keys the "spread" tests pick from (as `redis-benchmark -r 100000`).
const SPREAD_KEYS: usize = 100_000;
/// Commands between two looks at the clock/stop flag.
const CHUNK: u64 = 256;

fn leak(b: Vec<u8>) -> Bytes {
    Bytes::from_static(Box::leak(b.into_boxed_slice()))
}

fn keys(prefix: &str) -> Vec<Bytes> {
    (0..SPREAD_KEYS).map(|i| leak(format!("{prefix}{i:012}").into_bytes())).collect()
}

/// xorshift64: a different sequence per thread, no shared state.
fn next(rng: &Cell<u64>) -> usize {
    let mut x = rng.get();
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng.set(x);
    (x % SPREAD_KEYS as u64) as usize
}

struct Test {
    name: &'static str,
    cmd: &'static [u8],
    /// One key for every thread ("hot"), or random keys out of this list ("spread").
    hot: Option<Bytes>,
    spread: Vec<Bytes>,
    /// SET and LPUSH carry a 16-byte value.
    value: Option<Bytes>,
}

fn new_client(shared: &Shared) -> Client {
    Client::new(shared.clients.register("127.0.0.1:1".into(), "127.0.0.1:6379".into()))
}

/// Commands per second, all `threads` together, over `secs`.
fn measure(shared: &Arc<Shared>, test: &Arc<Test>, threads: usize, secs: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (shared, test, stop, total, start) =
                (shared.clone(), test.clone(), stop.clone(), total.clone(), start.clone());
            std::thread::spawn(move || {
                let mut client = new_client(&shared);
                let rng = Cell::new(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(t as u64 + 1) | 1);
                let cmd = Bytes::from_static(test.cmd);
                let mut argv = vec![cmd, Bytes::new()];
                if let Some(v) = &test.value {
                    argv.push(v.clone());
                }
                let mut done = 0u64;
                start.wait();
                // Relaxed: a stop flag; the counts are read after join.
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..CHUNK {
                        argv[1] = match &test.hot {
                            Some(k) => k.clone(),
                            None => test.spread[next(&rng)].clone(),
                        };
                        let mut ctx = Ctx::new(&shared, &mut client, NOW_MS);
                        std::hint::black_box(execute(&mut ctx, &argv));
                    }
                    done += CHUNK;
                }
                total.fetch_add(done, Ordering::Relaxed);
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("bench thread");
    }
    total.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let secs: f64 = opt("--secs").map(|s| s.parse().expect("--secs: a number")).unwrap_or(1.0);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads: Vec<usize> = match opt("--threads") {
        Some(list) => list.split(',').map(|n| n.parse().expect("--threads: numbers")).collect(),
        None => std::iter::successors(Some(1usize), |n| Some(n * 2)).take_while(|&n| n <= cores.max(2)).collect(),
    };

    let shared = Shared::new(Config::default());
    shared.ks.set_aof(Aof::disabled());
    let value = leak(vec![b'x'; 16]);
    let strings = keys("key:");
    {
        let mut client = new_client(&shared);
        let mut ctx = Ctx::new(&shared, &mut client, NOW_MS);
        for k in &strings {
            execute(&mut ctx, &[Bytes::from_static(b"SET"), k.clone(), value.clone()]);
        }
    }
    let tests = [
        Test { name: "GET spread", cmd: b"GET", hot: None, spread: strings.clone(), value: None },
        Test { name: "SET spread", cmd: b"SET", hot: None, spread: strings, value: Some(value.clone()) },
        Test { name: "INCR spread", cmd: b"INCR", hot: None, spread: keys("counter:"), value: None },
        Test { name: "LPUSH spread", cmd: b"LPUSH", hot: None, spread: keys("list:"), value: Some(value.clone()) },
        Test {
            name: "INCR hot",
            cmd: b"INCR",
            hot: Some(Bytes::from_static(b"hot:counter")),
            spread: vec![],
            value: None,
        },
        Test {
            name: "LPUSH hot",
            cmd: b"LPUSH",
            hot: Some(Bytes::from_static(b"hot:list")),
            spread: vec![],
            value: Some(value),
        },
    ];

    println!("Keyspace scaling: {cores} cores, {secs} s per cell, commands through execute() (no network)\n");
    let mut head = String::from("| test |");
    let mut rule = String::from("|---|");
    for t in &threads {
        head.push_str(&format!(" {t} thread{} |", if *t == 1 { "" } else { "s" }));
        rule.push_str("--:|");
    }
    println!("{head}\n{rule}");
    let only = opt("--only");
    for test in tests {
        if only.as_deref().is_some_and(|o| !test.name.to_lowercase().contains(&o.to_lowercase())) {
            continue;
        }
        let test = Arc::new(test);
        let mut row = format!("| {} |", test.name);
        // Warm-up (discarded): caches, the allocator's thread caches, lists and counters created.
        measure(&shared, &test, 1, secs / 2.0);
        let mut base = None;
        for &t in &threads {
            let rate = measure(&shared, &test, t, secs);
            let one = *base.get_or_insert(rate);
            row.push_str(&format!(" {:.2} M/s ({:.2}x) |", rate / 1e6, rate / one));
        }
        // Lists grow from cell to cell (LPUSH is O(1) at the head; the value is static, so an
        // element costs its slot in the list, 32 bytes).
        println!("{row}");
    }
    println!("\n(x) = rate / the first column's rate. Threads beyond the core count share cores.");
}
