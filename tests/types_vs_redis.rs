//! HyperLogLogs, bitmaps and geo sets against a real redis-server 7.0: the same commands go to
//! both servers and every reply (errors included) and the bytes GET returns must be equal.
//! Skipped when redis-server is not installed (CI runs it with one).
#![cfg(not(feature = "loom"))]

mod common;

use std::process::{Child, Command, Stdio};

use common::Server;

/// A redis-server child, killed when dropped (also when the test panics).
struct RealRedis {
    child: Child,
    port: u16,
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// redis-server on a free port of 18500-18599, or None when it is not installed.
fn start_redis() -> Option<RealRedis> {
    // Each test of this file its own port (they run in parallel).
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(18599);
    let port = std::iter::from_fn(|| Some(NEXT.fetch_sub(1, std::sync::atomic::Ordering::SeqCst)))
        .take_while(|&p| p >= 18500)
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let server = RealRedis { child, port };
    for _ in 0..200 {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
        if client.get_connection().is_ok_and(|mut c| redis::cmd("PING").query::<String>(&mut c).is_ok()) {
            return Some(server);
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("redis-server did not answer on port {port}");
}

/// Both servers, or None (test skipped) without redis-server.
struct Pair {
    _real: RealRedis,
    _ours: Server,
    r: redis::Connection,
    o: redis::Connection,
}

impl Pair {
    fn new() -> Option<Pair> {
        let real = start_redis()?;
        let ours = Server::start(&["--appendonly", "no"]);
        let r = redis::Client::open(format!("redis://127.0.0.1:{}/", real.port)).unwrap().get_connection().unwrap();
        let o = ours.client();
        Some(Pair { _real: real, _ours: ours, r, o })
    }

    /// Send `args` to both; the replies (Debug-rendered, errors included) must be equal.
    fn same<A: redis::ToRedisArgs + Clone>(&mut self, args: &[A]) -> String {
        let mut c = redis::cmd(&String::from_utf8_lossy(&args[0].to_redis_args()[0]));
        for a in &args[1..] {
            c.arg(a.clone());
        }
        let show = |v: redis::RedisResult<redis::Value>| match v {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("error {e}"),
        };
        let (r, o) = (show(c.query(&mut self.r)), show(c.query(&mut self.o)));
        let shown: Vec<String> =
            args.iter().map(|a| String::from_utf8_lossy(&a.to_redis_args()[0]).chars().take(40).collect()).collect();
        if o != r {
            // Long values: where they first differ.
            let at = o.bytes().zip(r.bytes()).take_while(|(a, b)| a == b).count().saturating_sub(20);
            panic!("reply to {shown:?}: ours {:.300} / redis {:.300}", &o[at..], &r[at..]);
        }
        r
    }
}

#[test]
fn hll_counts_and_bytes_equal_redis() {
    let Some(mut p) = Pair::new() else { return };
    let mut seed = 7u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (key, max_bytes, total) in
        [("h1", "3000", 40), ("h2", "3000", 3000), ("h3", "200", 600), ("h4", "100000", 12000), ("h5", "3000", 60000)]
    {
        p.same(&["CONFIG", "SET", "hll-sparse-max-bytes", max_bytes]);
        p.same(&["PFADD", key]);
        p.same(&["GET", key]);
        let mut added = 0;
        let mut batch = 1;
        while added < total {
            let mut cmd = vec!["PFADD".to_string(), key.to_string()];
            for _ in 0..batch {
                // Repeats on purpose: some batches change nothing.
                cmd.push(format!("el:{}", next() % (total as u64 * 2)));
            }
            added += batch;
            batch = (batch * 2).min(500);
            p.same(&cmd);
            p.same(&["GET", key]);
            p.same(&["PFCOUNT", key]);
            p.same(&["GET", key]);
            p.same(&["PFDEBUG", "ENCODING", key]);
        }
    }
    p.same(&["CONFIG", "SET", "hll-sparse-max-bytes", "3000"]);
    // Unions: sparse with dense, into new and existing keys.
    p.same(&["PFCOUNT", "h1", "h2", "h3", "nokey"]);
    p.same(&["PFMERGE", "m1", "h1", "h3"]);
    p.same(&["GET", "m1"]);
    p.same(&["PFCOUNT", "m1"]);
    p.same(&["PFMERGE", "h1", "h2"]);
    p.same(&["GET", "h1"]);
    p.same(&["PFMERGE", "m2", "h4", "h5", "h2"]);
    p.same(&["PFCOUNT", "m2"]);
    p.same(&["GET", "m2"]);
    p.same(&["PFMERGE", "empty"]);
    p.same(&["GET", "empty"]);
    // A value copied from Redis works here and back.
    let bytes: Vec<u8> = redis::cmd("GET").arg("h3").query(&mut p.r).unwrap();
    redis::cmd("SET").arg("copy").arg(&bytes).query::<()>(&mut p.o).unwrap();
    redis::cmd("SET").arg("copy").arg(&bytes).query::<()>(&mut p.r).unwrap();
    p.same(&["PFADD", "copy", "x", "y", "z"]);
    p.same(&["PFCOUNT", "copy"]);
    p.same(&["GET", "copy"]);
    // Not an HLL, or a corrupted one.
    p.same(&["SET", "s", "hello"]);
    p.same(&["PFADD", "s", "a"]);
    p.same(&["PFCOUNT", "s"]);
    p.same(&["PFCOUNT", "s", "h1"]);
    p.same(&["RPUSH", "l", "a"]);
    p.same(&["PFADD", "l", "a"]);
    p.same(&["PFMERGE", "h1", "l"]);
    let mut bad = bytes.clone();
    bad.push(0x01);
    bad[15] |= 0x80;
    redis::cmd("SET").arg("bad").arg(&bad).query::<()>(&mut p.o).unwrap();
    redis::cmd("SET").arg("bad").arg(&bad).query::<()>(&mut p.r).unwrap();
    p.same(&["PFCOUNT", "bad"]);
    p.same(&["PFCOUNT", "bad", "h1"]);
    p.same(&["PFMERGE", "m3", "bad"]);
    p.same(&["PFDEBUG", "DECODE", "h3"]);
    p.same(&["PFDEBUG", "GETREG", "h3"]);
    p.same(&["GET", "h3"]);
    p.same(&["PFDEBUG", "NOPE", "h3"]);
}

#[test]
fn bitmaps_equal_redis() {
    let Some(mut p) = Pair::new() else { return };
    for cmd in [
        &["SETBIT", "b", "7", "1"][..],
        &["SETBIT", "b", "100", "1"],
        &["SET", "n", "-12345"],
        &["SETBIT", "n", "0", "1"],
        &["GET", "n"],
        &["BITFIELD", "f", "SET", "i64", "0", "-1", "INCRBY", "u63", "#1", "9223372036854775807", "GET", "i1", "#5"],
        &["BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "u2", "200", "5"],
        &["GET", "f"],
        &[
            "BITFIELD",
            "f",
            "OVERFLOW",
            "SAT",
            "INCRBY",
            "i64",
            "0",
            "-9223372036854775808",
            "INCRBY",
            "u7",
            "3",
            "-900",
        ],
        &["BITOP", "XOR", "x", "b", "n", "f"],
        &["GET", "x"],
        &["BITOP", "OR", "x", "nope"],
        &["EXISTS", "x"],
        &["BITCOUNT", "f", "-5", "-1", "BIT"],
        &["BITPOS", "f", "0", "2", "-1", "BIT"],
        &["BITPOS", "x", "1"],
        &["SETBIT", "b", "536870912000", "1"],
        &["GETBIT", "b", "-1"],
        &["BITFIELD", "b", "GET", "i8", "#-1"],
        &["BITFIELD", "b", "OVERFLOW", "nope"],
        &["BITFIELD", "b", "GET", "i8"],
    ] {
        p.same(cmd);
    }
}
