//! Micro-benchmarks of the request path, below the socket: RESP decode, reply encode, dispatch
//! through [`flurrydb::cmd::execute`], the keyspace under 1..N threads, and the AOF append.
//!
//! Run: `cargo bench --bench micro` (all), `cargo bench --bench micro -- keyspace` (a filter),
//! `cargo bench --bench micro -- --list`. Harness: divan (chosen over criterion: it adds three
//! small crates to the dev-dependencies, and measures contention with its `threads` option).
//!
//! Multi-threaded benches run the body on N std threads at once (divan's `threads`); each thread
//! has its own [`Client`] (a thread-local registered in one shared server state), as each
//! connection does in the server. Times are per operation per thread: a figure that grows with the
//! thread count is contention. "hot" = every thread hits one key, "spread" = random keys out of
//! [`SPREAD_KEYS`].
//!
//! Keys and values are `Bytes::from_static` over leaked buffers, so cloning an argument costs no
//! reference-count traffic that would itself be contended across threads.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use divan::Bencher;
use divan::counter::{BytesCount, ItemsCount};
use flurrydb::aof::Aof;
use flurrydb::cmd::{Client, Ctx, execute};
use flurrydb::config::Config;
use flurrydb::resp::{Decoded, Frame, RequestDecoder};
use flurrydb::state::Shared;

fn main() {
    // At least 300 ms per bench (divan's default stops after 100 samples, which is too few for the
    // sub-microsecond ones); `--min-time`/`--max-time` on the command line override it.
    divan::Divan::default().min_time(Duration::from_millis(300)).config_with_args().main();
}

/// The clock the commands see (nothing in these benches expires).
const NOW_MS: u64 = 1_700_000_000_000;
/// Keys the "spread" variants pick from (as `redis-benchmark -r 100000`).
const SPREAD_KEYS: usize = 100_000;
/// Largest bulk accepted by the decoder (Redis's default proto-max-bulk-len).
const MAX_BULK_BYTES: usize = 512 * 1024 * 1024;
/// Thread counts of the multi-threaded benches (0 = every available core).
const THREADS: &[usize] = &[1, 2, 4];

fn leak(b: Vec<u8>) -> Bytes {
    Bytes::from_static(Box::leak(b.into_boxed_slice()))
}

fn argv(args: &[&str]) -> Vec<Bytes> {
    args.iter().map(|a| leak(a.as_bytes().to_vec())).collect()
}

/// `*N\r\n$len\r\narg\r\n...` for one request.
fn multibulk(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Keys `key:000000000042` (redis-benchmark's shape), value 16 bytes.
static KEYS: LazyLock<Vec<Bytes>> =
    LazyLock::new(|| (0..SPREAD_KEYS).map(|i| leak(format!("key:{i:012}").into_bytes())).collect());
static VALUE: LazyLock<Bytes> = LazyLock::new(|| leak(vec![b'x'; 16]));

/// Seeds for the per-thread key pickers.
static SEEDS: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

thread_local! {
    /// xorshift state for picking spread keys, a different seed per thread.
    static RNG: Cell<u64> = Cell::new(SEEDS.fetch_add(0x6A09_E667_F3BC_C909, Ordering::Relaxed) | 1);
}

/// A random index into [`KEYS`].
fn random_index() -> usize {
    let x = RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    });
    (x % SPREAD_KEYS as u64) as usize
}

fn random_key() -> &'static Bytes {
    &KEYS[random_index()]
}

/// A server state as the binary builds it, AOF off.
fn new_shared() -> Arc<Shared> {
    let shared = Shared::new(Config::default());
    shared.ks.set_aof(Aof::disabled());
    shared
}

fn new_client(shared: &Shared) -> Client {
    Client::new(shared.clients.register("127.0.0.1:1".into(), "127.0.0.1:6379".into()))
}

/// One state shared by every multi-threaded bench, with the spread keys preloaded (strings under
/// `key:*`, lists under `list:*` are created by the benches that push).
static SHARED: LazyLock<Arc<Shared>> = LazyLock::new(|| {
    let shared = new_shared();
    let mut client = new_client(&shared);
    let mut ctx = Ctx::new(&shared, &mut client, NOW_MS);
    for k in KEYS.iter() {
        execute(&mut ctx, &[Bytes::from_static(b"SET"), k.clone(), VALUE.clone()]);
    }
    shared
});

thread_local! {
    static CLIENT: RefCell<Client> = RefCell::new(new_client(&SHARED));
}

/// Execute one command as this thread's client of [`SHARED`].
fn run(argv: &[Bytes]) -> Frame {
    CLIENT.with_borrow_mut(|client| {
        let mut ctx = Ctx::new(&SHARED, client, NOW_MS);
        execute(&mut ctx, argv)
    })
}

/// RESP request decoding, as the connection does it: one `RequestDecoder` over the read buffer.
mod decode {
    use super::*;

    fn decode_all(bencher: Bencher, input: Vec<u8>, commands: usize) {
        let len = input.len();
        let mut decoder = RequestDecoder::default();
        bencher.counter(BytesCount::new(len)).with_inputs(|| BytesMut::from(&input[..])).bench_local_refs(|buf| {
            for _ in 0..commands {
                match decoder.decode(buf, MAX_BULK_BYTES) {
                    Ok(Decoded::Command(args)) => {
                        divan::black_box(args);
                    }
                    other => panic!("bench input did not decode: {other:?}"),
                }
            }
        });
    }

    #[divan::bench]
    fn get_multibulk(bencher: Bencher) {
        decode_all(bencher, multibulk(&["GET", "key:000000000042"]), 1);
    }

    #[divan::bench]
    fn set_multibulk(bencher: Bencher) {
        decode_all(bencher, multibulk(&["SET", "key:000000000042", "xxxxxxxxxxxxxxxx"]), 1);
    }

    /// 16 SETs in one buffer (redis-benchmark -P 16).
    #[divan::bench]
    fn set_pipeline_16(bencher: Bencher) {
        let one = multibulk(&["SET", "key:000000000042", "xxxxxxxxxxxxxxxx"]);
        decode_all(bencher, one.repeat(16), 16);
    }

    #[divan::bench]
    fn set_inline(bencher: Bencher) {
        decode_all(bencher, b"SET key:000000000042 xxxxxxxxxxxxxxxx\r\n".to_vec(), 1);
    }
}

/// Reply encoding into a reused output buffer.
mod encode {
    use super::*;

    fn encode(bencher: Bencher, frame: Frame) {
        let mut out = BytesMut::with_capacity(4096);
        bencher.bench_local(|| {
            out.clear();
            divan::black_box(&frame).encode(&mut out, 2);
            divan::black_box(out.len())
        });
    }

    #[divan::bench]
    fn status_ok(bencher: Bencher) {
        encode(bencher, Frame::ok());
    }

    #[divan::bench]
    fn integer(bencher: Bencher) {
        encode(bencher, Frame::Integer(1_234_567));
    }

    #[divan::bench]
    fn bulk_16(bencher: Bencher) {
        encode(bencher, Frame::Bulk(VALUE.clone()));
    }

    #[divan::bench]
    fn null(bencher: Bencher) {
        encode(bencher, Frame::Null);
    }

    /// LRANGE-like reply: 10 bulks of 16 bytes.
    #[divan::bench]
    fn array_10_bulks(bencher: Bencher) {
        encode(bencher, Frame::Array(vec![Frame::Bulk(VALUE.clone()); 10]));
    }
}

/// `cmd::execute` from one client on its own state: lookup, arity, handler, reply frame.
mod dispatch {
    use super::*;

    fn bench_cmd(bencher: Bencher, setup: &[&[&str]], args: &[&str]) {
        let shared = new_shared();
        let mut client = new_client(&shared);
        for s in setup {
            let mut ctx = Ctx::new(&shared, &mut client, NOW_MS);
            execute(&mut ctx, &argv(s));
        }
        let argv = argv(args);
        bencher.bench_local(|| {
            let mut ctx = Ctx::new(&shared, &mut client, NOW_MS);
            execute(&mut ctx, divan::black_box(&argv))
        });
    }

    #[divan::bench]
    fn ping(bencher: Bencher) {
        bench_cmd(bencher, &[], &["PING"]);
    }

    #[divan::bench]
    fn get_hit(bencher: Bencher) {
        bench_cmd(bencher, &[&["SET", "k", "xxxxxxxxxxxxxxxx"]], &["GET", "k"]);
    }

    #[divan::bench]
    fn get_miss(bencher: Bencher) {
        bench_cmd(bencher, &[], &["GET", "k"]);
    }

    /// Overwrites the same key (replaces the entry each time).
    #[divan::bench]
    fn set(bencher: Bencher) {
        bench_cmd(bencher, &[], &["SET", "k", "xxxxxxxxxxxxxxxx"]);
    }

    #[divan::bench]
    fn incr(bencher: Bencher) {
        bench_cmd(bencher, &[], &["INCR", "counter"]);
    }

    /// Grows one list (as redis-benchmark's LPUSH test does with its one key).
    #[divan::bench]
    fn lpush(bencher: Bencher) {
        bench_cmd(bencher, &[], &["LPUSH", "list", "xxx"]);
    }

    #[divan::bench]
    fn unknown_command(bencher: Bencher) {
        bench_cmd(bencher, &[], &["NOSUCHCOMMAND", "a"]);
    }
}

/// The keyspace through `execute`, from N threads at once, each its own client.
mod keyspace {
    use super::*;

    fn hot(name: &'static [u8]) -> Bytes {
        Bytes::from_static(name)
    }

    const GET: Bytes = Bytes::from_static(b"GET");
    const SET: Bytes = Bytes::from_static(b"SET");
    const INCR: Bytes = Bytes::from_static(b"INCR");
    const LPUSH: Bytes = Bytes::from_static(b"LPUSH");

    #[divan::bench(threads = THREADS)]
    fn get_hot(bencher: Bencher) {
        let argv = [GET, KEYS[42].clone()];
        LazyLock::force(&SHARED);
        bencher.bench(|| run(&argv));
    }

    #[divan::bench(threads = THREADS)]
    fn get_spread(bencher: Bencher) {
        LazyLock::force(&SHARED);
        bencher.bench(|| run(&[GET, random_key().clone()]));
    }

    #[divan::bench(threads = THREADS)]
    fn set_hot(bencher: Bencher) {
        let argv = [SET, hot(b"hot:set"), VALUE.clone()];
        LazyLock::force(&SHARED);
        bencher.bench(|| run(&argv));
    }

    #[divan::bench(threads = THREADS)]
    fn set_spread(bencher: Bencher) {
        LazyLock::force(&SHARED);
        bencher.bench(|| run(&[SET, random_key().clone(), VALUE.clone()]));
    }

    #[divan::bench(threads = THREADS)]
    fn incr_hot(bencher: Bencher) {
        let argv = [INCR, hot(b"hot:counter")];
        LazyLock::force(&SHARED);
        bencher.bench(|| run(&argv));
    }

    /// Spread INCRs go to `counter:*` keys (the `key:*` ones hold non-integers).
    #[divan::bench(threads = THREADS)]
    fn incr_spread(bencher: Bencher) {
        static COUNTERS: LazyLock<Vec<Bytes>> =
            LazyLock::new(|| KEYS.iter().map(|k| leak([b"counter:", &k[4..]].concat())).collect());
        LazyLock::force(&SHARED);
        LazyLock::force(&COUNTERS);
        bencher.bench(|| run(&[INCR, COUNTERS[random_index()].clone()]));
    }

    #[divan::bench(threads = THREADS)]
    fn lpush_hot(bencher: Bencher) {
        let argv = [LPUSH, hot(b"hot:list"), VALUE.clone()];
        LazyLock::force(&SHARED);
        bencher.bench(|| run(&argv));
    }

    #[divan::bench(threads = THREADS)]
    fn lpush_spread(bencher: Bencher) {
        static LISTS: LazyLock<Vec<Bytes>> =
            LazyLock::new(|| KEYS.iter().map(|k| leak([b"list:", &k[4..]].concat())).collect());
        LazyLock::force(&SHARED);
        LazyLock::force(&LISTS);
        bencher.bench(|| run(&[LPUSH, LISTS[random_index()].clone(), VALUE.clone()]));
    }
}

/// The AOF record append (encode, stamp, enqueue) with the writer thread draining to a file in a
/// temporary directory, appendfsync no (the producer side: what a connection pays per write).
mod aof {
    use super::*;
    use flurrydb::aof::{AofConfig, FsyncPolicy};

    #[divan::bench(threads = [1, 2])]
    fn append_set(bencher: Bencher) {
        let dir = std::env::temp_dir().join(format!("flurrydb-bench-aof-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cfg = AofConfig {
            dir: dir.clone(),
            filename: "appendonly.aof".into(),
            fsync: FsyncPolicy::No,
            prealloc_bytes: 64 * 1024 * 1024,
            load_truncated: true,
            load_corrupt_prefix: false,
        };
        let aof = match Aof::open(cfg) {
            Ok(aof) => aof,
            Err(e) => panic!("Aof::open in {}: {e}", dir.display()),
        };
        bencher.bench(|| {
            let key = random_key();
            aof.append(0, &[b"SET", key, &VALUE])
        });
        let _ = aof.shutdown();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// SET through `execute` with the AOF on: lookup, insert and the record under the stripe lock.
    #[divan::bench]
    fn execute_set_with_aof(bencher: Bencher) {
        let dir = std::env::temp_dir().join(format!("flurrydb-bench-aof-set-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cfg = AofConfig {
            dir: dir.clone(),
            filename: "appendonly.aof".into(),
            fsync: FsyncPolicy::No,
            prealloc_bytes: 64 * 1024 * 1024,
            load_truncated: true,
            load_corrupt_prefix: false,
        };
        let shared = Shared::new(Config::default());
        let aof = match Aof::open(cfg) {
            Ok(aof) => aof,
            Err(e) => panic!("Aof::open in {}: {e}", dir.display()),
        };
        shared.ks.set_aof(aof.clone());
        let mut client = new_client(&shared);
        bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
            let mut ctx = Ctx::new(&shared, &mut client, NOW_MS);
            execute(&mut ctx, &[SET_CMD, random_key().clone(), VALUE.clone()])
        });
        let _ = aof.shutdown();
        let _ = std::fs::remove_dir_all(&dir);
    }

    const SET_CMD: Bytes = Bytes::from_static(b"SET");
}
