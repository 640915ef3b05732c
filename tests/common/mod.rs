//! Starts the real server binary on an ephemeral port for integration tests, and speaks raw RESP.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod fixed;
pub mod hand_primary;
mod real_redis;
#[allow(unused_imports)] // only the tests that compare with redis-server use it
pub use real_redis::RealRedis;

/// The key-hash seed of the servers the tests start (`FLURRYDB_HASH_SEED`): a test can compute
/// which stripe a key takes with `flurrydb::db::hash_key_seeded`.
pub const HASH_SEED: u64 = 0x5eed_f1a7;

pub struct Server {
    pub child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    pub args: Vec<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("flurrydb-test-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

impl Server {
    /// Start the server with extra `--name value` arguments, in a fresh directory.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_in(temp_dir("srv"), extra)
    }

    /// Start the server in `dir` (e.g. to restart on an existing AOF).
    pub fn start_in(dir: PathBuf, extra: &[&str]) -> Server {
        let mut s = Server { child: None, port: 0, dir, args: extra.iter().map(|s| s.to_string()).collect() };
        s.launch();
        s
    }

    fn launch(&mut self) {
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_flurrydb-server"))
                .env("FLURRYDB_HASH_SEED", HASH_SEED.to_string())
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
                .arg(&self.dir)
                .args(["--save", ""])
                .args(&self.args)
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .spawn()
                .expect("spawn server");
            self.child = Some(child);
            self.port = port;
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
                    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    if c.write_all(b"PING\r\n").is_ok() {
                        let mut buf = [0u8; 64];
                        if let Ok(n) = c.read(&mut buf)
                            && buf[..n].starts_with(b"+PONG")
                        {
                            return;
                        }
                    }
                }
                if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.take().map(|mut c| c.kill());
        }
        panic!("server did not start; log: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// A redis-rs connection.
    pub fn client(&self) -> redis::Connection {
        let c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap();
        c.get_connection().unwrap()
    }

    /// A raw RESP connection to the server on `port`.
    pub fn raw_to(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Raw { s, buf: Vec::new() }
    }

    /// A raw RESP connection.
    pub fn raw(&self) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Raw { s, buf: Vec::new() }
    }

    /// Waits until no AOF rewrite is in progress and at least one has finished (INFO persistence),
    /// failing the test after 10 s.
    pub fn wait_for_rewrite(&self) {
        let mut c = self.raw();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info = String::from_utf8_lossy(&c.cmds(&["INFO", "persistence"])).to_string();
            if info.contains("aof_rewrite_in_progress:0") && !info.contains("aof_rewrites:0\r\n") {
                return;
            }
            assert!(Instant::now() < deadline, "the AOF rewrite did not finish: {info}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the server.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        unsafe_free_sigterm(self.child.as_ref()?.id());
        self.wait_exit(Duration::from_secs(20))
    }

    /// Wait at most `limit` for the process to exit by itself (SIGKILL after that); its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let mut c = self.child.take()?;
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        None
    }

    /// Start again on the same directory and arguments.
    pub fn restart(&mut self) {
        self.launch();
    }
}

/// Every key of every database of the server on `port` (ours or a real redis-server), read over a fresh
/// connection: (db, key) -> "type value ttl=yes|no". Keys and values are escaped byte for byte, so
/// binary data compares exactly. Used to check that AOF replay rebuilds exactly what memory held.
/// Strings, lists, hashes, sets and sorted sets; any other type panics rather than being compared as nothing.
pub fn dump_keyspace(port: u16) -> BTreeMap<(usize, String), String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut c = client.get_connection().unwrap();
    let (_, databases): (String, usize) = redis::cmd("CONFIG").arg("GET").arg("databases").query(&mut c).unwrap();
    let quote = |b: &[u8]| format!("\"{}\"", b.escape_ascii());
    let mut out = BTreeMap::new();
    for db in 0..databases {
        let _: () = redis::cmd("SELECT").arg(db).query(&mut c).unwrap();
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
        for k in keys {
            let kind: String = redis::cmd("TYPE").arg(&k).query(&mut c).unwrap();
            let items: Vec<Vec<u8>> = match kind.as_str() {
                "string" => vec![redis::cmd("GET").arg(&k).query(&mut c).unwrap()],
                "list" => redis::cmd("LRANGE").arg(&k).arg(0).arg(-1).query(&mut c).unwrap(),
                // Unordered types: sorted, so two servers holding the same value dump the same.
                "hash" => {
                    let flat: Vec<Vec<u8>> = redis::cmd("HGETALL").arg(&k).query(&mut c).unwrap();
                    let mut pairs: Vec<Vec<u8>> =
                        flat.chunks(2).map(|p| [&p[0][..], b"=", &p[1][..]].concat()).collect();
                    pairs.sort();
                    pairs
                }
                "set" => {
                    let mut members: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(&k).query(&mut c).unwrap();
                    members.sort();
                    members
                }
                // Ordered: member=score pairs in rank order, scores as the server prints them.
                "zset" => {
                    let flat: Vec<Vec<u8>> =
                        redis::cmd("ZRANGE").arg(&k).arg(0).arg(-1).arg("WITHSCORES").query(&mut c).unwrap();
                    flat.chunks(2).map(|p| [&p[0][..], b"=", &p[1][..]].concat()).collect()
                }
                // Entries, counters, groups, pending entries with their delivery times and counts,
                // consumers: everything but the consumers' seen-times (the clock of the reads).
                "stream" => {
                    let info: redis::Value = redis::cmd("XINFO")
                        .arg("STREAM")
                        .arg(&k)
                        .arg("FULL")
                        .arg("COUNT")
                        .arg(0)
                        .query(&mut c)
                        .unwrap();
                    vec![render_without_seen_time(&info).into_bytes()]
                }
                other => panic!("dump_keyspace: no reader for type '{other}' (key {})", k.escape_ascii()),
            };
            let ttl: i64 = redis::cmd("TTL").arg(&k).query(&mut c).unwrap();
            let value: Vec<String> = items.iter().map(|v| quote(v)).collect();
            let has_ttl = if ttl >= 0 { "yes" } else { "no" };
            out.insert((db, k.escape_ascii().to_string()), format!("{kind} [{}] ttl={has_ttl}", value.join(", ")));
        }
    }
    out
}

/// A reply as text, leaving out the values after `seen-time` and the radix-tree counts.
fn render_without_seen_time(v: &redis::Value) -> String {
    match v {
        redis::Value::Array(items) => {
            let mut out = Vec::new();
            let mut skip = false;
            for item in items {
                if skip {
                    skip = false;
                    continue;
                }
                // Also the node layout, which a rewrite packs anew.
                if matches!(item, redis::Value::BulkString(d) if d == b"seen-time" || d == b"radix-tree-keys" || d == b"radix-tree-nodes")
                {
                    skip = true;
                    continue;
                }
                out.push(render_without_seen_time(item));
            }
            format!("[{}]", out.join(" "))
        }
        redis::Value::BulkString(d) => format!("{}", d.escape_ascii()),
        other => format!("{other:?}"),
    }
}

/// Send SIGTERM with the `kill` command (no unsafe code in tests).
fn unsafe_free_sigterm(pid: u32) {
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
}

impl Drop for Server {
    /// Kill the server; remove its directory (its preallocated AOF is 64 MB) unless the test is
    /// failing, when it stays for a look at the log and the file.
    fn drop(&mut self) {
        self.kill9();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A raw connection: send bytes, read exact replies.
pub struct Raw {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Wrap a connected stream.
    pub fn new(s: TcpStream) -> Raw {
        Raw { s, buf: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// Send a command as a RESP array and return the raw bytes of its reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.send(&out);
        self.reply()
    }

    /// Like [`cmd`](Self::cmd) with string arguments.
    pub fn cmds(&mut self, args: &[&str]) -> Vec<u8> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.cmd(&a)
    }

    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 65536];
        match self.s.read(&mut tmp) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    fn line_end(&self, from: usize) -> Option<usize> {
        self.buf[from..].windows(2).position(|w| w == b"\r\n").map(|p| from + p)
    }

    /// Length of one complete reply starting at `from`, if buffered.
    fn reply_len(&self, from: usize) -> Option<usize> {
        let end = self.line_end(from)?;
        let head = &self.buf[from..end];
        let n: i64 = std::str::from_utf8(&head[1..]).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        match head.first()? {
            b'$' if n >= 0 => {
                let total = end + 2 + n as usize + 2;
                (self.buf.len() >= total).then(|| total - from)
            }
            b'*' if n > 0 => {
                let mut pos = end + 2;
                for _ in 0..n {
                    pos += self.reply_len(pos)?;
                }
                Some(pos - from)
            }
            _ => Some(end + 2 - from),
        }
    }

    /// Read one complete reply (raw bytes). Panics on timeout or close.
    pub fn reply(&mut self) -> Vec<u8> {
        loop {
            if !self.buf.is_empty()
                && let Some(n) = self.reply_len(0)
            {
                return self.buf.drain(..n).collect();
            }
            assert!(
                self.fill(),
                "connection closed or timed out; got so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Read until the peer closes; returns everything received.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        while self.fill() {}
        std::mem::take(&mut self.buf)
    }
}

/// Send a command without waiting for its reply.
pub fn send(c: &mut Raw, args: &[&str]) {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    c.send(&out);
}

/// A reply as text (lossy), for assertions.
pub fn s(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

/// A bulk string's RESP2 bytes, as text.
pub fn bulk(x: &str) -> String {
    format!("${}\r\n{x}\r\n", x.len())
}

/// Wait until exactly `n` clients are blocked (INFO's blocked_clients), at most 5 s.
pub fn wait_blocked(c: &mut Raw, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = s(c.cmds(&["INFO", "clients"]));
        if info.contains(&format!("blocked_clients:{n}\r\n")) {
            return;
        }
        assert!(Instant::now() < deadline, "{n} clients never blocked: {info}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A raw TCP connection to `port` with a 10 s read timeout.
pub fn connect(port: u16) -> TcpStream {
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

/// One command in RESP.
pub fn enc(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    flurrydb::aof::encode_command(&mut out, args);
    out
}

/// Read from `c` until what was read ends with `suffix`.
pub fn read_until(c: &mut TcpStream, suffix: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while !out.ends_with(suffix) {
        let n = c.read(&mut buf).unwrap_or_else(|e| panic!("{e}; read so far: {}", s(out.clone())));
        assert!(n > 0, "closed; read so far: {}", s(out.clone()));
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// The commands of a RESP file (an AOF), in order, as argument lists.
pub fn aof_commands(bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    let line = |i: &mut usize| {
        let end = *i + bytes[*i..].windows(2).position(|w| w == b"\r\n").expect("a line");
        let l = &bytes[*i..end];
        *i = end + 2;
        l
    };
    while i < bytes.len() && bytes[i] == b'*' {
        let n: usize = std::str::from_utf8(&line(&mut i)[1..]).unwrap().parse().unwrap();
        let mut argv = Vec::with_capacity(n);
        for _ in 0..n {
            let len: usize = std::str::from_utf8(&line(&mut i)[1..]).unwrap().parse().unwrap();
            argv.push(bytes[i..i + len].to_vec());
            i += len + 2;
        }
        out.push(argv);
    }
    out
}

/// A small xorshift generator for the tests' random command streams (seeded, reproducible).
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    pub fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }
}
