//! Client-side caching over the socket: the exact bytes of a scripted CLIENT TRACKING session
//! (RESP3 invalidation pushes, RESP2 redirection to a `__redis__:invalidate` subscriber, BCAST
//! prefixes with NOLOOP, OPTIN with CLIENT CACHING, keys modified by scripts, EXEC, FLUSHALL and
//! expiry) against redis-server 7.0.15's (recorded below, and compared live when redis-server is
//! installed); INFO and CLIENT LIST fields; the key table's limit; no stale cache under
//! concurrent writes.
#![cfg(not(feature = "loom"))]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, s};

fn connect(port: u16) -> TcpStream {
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

fn enc(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Read from `c` until what was read ends with `suffix`.
fn read_until(c: &mut TcpStream, suffix: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while !out.ends_with(suffix) {
        let n = c.read(&mut buf).unwrap_or_else(|e| panic!("{e}; read so far: {}", s(out.clone())));
        assert!(n > 0, "closed; read so far: {}", s(out.clone()));
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// Send one command (or several, separated by `&&` arguments: one pipelined write) and read until
/// the reply to a marker PING sent right after it: every reply and push that arrived for this
/// connection up to then, in order.
fn step(c: &mut TcpStream, args: &[&[u8]], marker: &str) -> Vec<u8> {
    let mut req: Vec<u8> = args.split(|a| *a == b"&&").flat_map(enc).collect();
    req.extend_from_slice(&enc(&[b"PING", marker.as_bytes()]));
    c.write_all(&req).unwrap();
    read_until(c, format!("{marker}\r\n").as_bytes())
}

/// A command whose reply is not compared (it names a connection id): read its one line or map.
fn setup(c: &mut TcpStream, args: &[&[u8]], until: &[u8]) -> Vec<u8> {
    c.write_all(&enc(args)).unwrap();
    read_until(c, until)
}

fn client_id(c: &mut TcpStream) -> String {
    let r = setup(c, &[b"CLIENT", b"ID"], b"\r\n");
    String::from_utf8(r[1..r.len() - 2].to_vec()).unwrap()
}

const NAMES: [&str; 6] = ["r", "t", "t2", "b", "o", "w"];

/// The scripted session. Connections: `r` RESP2 subscribed to `__redis__:invalidate`; `t` RESP3
/// default mode; `t2` RESP2 redirecting to `r`; `b` RESP3 BCAST on `user:` and `cfg` with NOLOOP;
/// `o` RESP3 OPTIN; `w` the RESP2 writer. Returns each connection's byte stream.
fn session(port: u16) -> Vec<Vec<u8>> {
    let mut c: Vec<TcpStream> = NAMES.iter().map(|_| connect(port)).collect();
    for i in [1, 3, 4] {
        setup(&mut c[i], &[b"HELLO", b"3"], b"modules\r\n*0\r\n");
    }
    let rid = client_id(&mut c[0]);
    let mut out: Vec<Vec<u8>> = NAMES.iter().map(|_| Vec::new()).collect();
    let script: Vec<(usize, Vec<&[u8]>)> = vec![
        (0, vec![b"SUBSCRIBE", b"__redis__:invalidate"]),
        (1, vec![b"CLIENT", b"TRACKING", b"on"]),
        (2, vec![b"CLIENT", b"TRACKING", b"on", b"REDIRECT", rid.as_bytes()]),
        (3, vec![b"CLIENT", b"TRACKING", b"on", b"BCAST", b"PREFIX", b"user:", b"PREFIX", b"cfg", b"NOLOOP"]),
        (4, vec![b"CLIENT", b"TRACKING", b"on", b"OPTIN"]),
        (3, vec![b"CLIENT", b"TRACKINGINFO"]),
        (4, vec![b"CLIENT", b"TRACKINGINFO"]),
        (1, vec![b"GET", b"user:1"]),
        (1, vec![b"MGET", b"a", b"b"]),
        (2, vec![b"GET", b"a"]),
        (2, vec![b"GET", b"user:1"]),
        (4, vec![b"GET", b"a"]),
        (4, vec![b"CLIENT", b"CACHING", b"yes", b"&&", b"GET", b"b"]),
        // A command between CLIENT CACHING and the read (the marker PING here) uses it up.
        (4, vec![b"CLIENT", b"CACHING", b"yes"]),
        (4, vec![b"GET", b"c"]),
        (4, vec![b"GET", b"c"]),
        (5, vec![b"SET", b"a", b"1"]),
        (5, vec![b"MSET", b"user:1", b"x", b"user:2", b"y", b"cfgx", b"z", b"other", b"1"]),
        (5, vec![b"SET", b"b", b"2"]),
        (5, vec![b"SET", b"c", b"2"]),
        // A key modified by a script.
        (1, vec![b"GET", b"s1"]),
        (
            5,
            vec![
                b"EVAL",
                b"redis.call('set', KEYS[1], 'v') redis.call('set', KEYS[2], 'v') return 1",
                b"2",
                b"s1",
                b"user:3",
            ],
        ),
        // Keys modified by EXEC: one invalidation each, in order.
        (1, vec![b"MGET", b"a", b"b"]),
        (
            5,
            vec![
                b"MULTI", b"&&", b"SET", b"a", b"2", b"&&", b"SET", b"user:1", b"z", b"&&", b"DEL", b"b", b"&&",
                b"EXEC",
            ],
        ),
        // NOLOOP: not its own writes.
        (3, vec![b"SET", b"user:9", b"mine"]),
        (3, vec![b"MSET", b"user:10", b"mine", b"cfg1", b"mine"]),
        (5, vec![b"SET", b"user:9", b"theirs"]),
        // The tracking client's own write: the invalidation follows the reply.
        (1, vec![b"GET", b"self"]),
        (1, vec![b"SET", b"self", b"1"]),
        // Reads by scripts remember the script's keys (EVAL and EVAL_RO).
        (1, vec![b"EVAL", b"return redis.call('get', KEYS[1])", b"1", b"sk"]),
        (1, vec![b"EVAL_RO", b"return redis.call('get', KEYS[1])", b"1", b"sk2"]),
        (5, vec![b"MSET", b"sk", b"1", b"sk2", b"2"]),
        // Keys are tracked by name, whatever the database.
        (1, vec![b"SELECT", b"1"]),
        (1, vec![b"GET", b"g"]),
        (1, vec![b"SELECT", b"0"]),
        (5, vec![b"SET", b"g", b"1"]),
        // OPTIN: CACHING yes covers the whole next transaction.
        (
            4,
            vec![
                b"CLIENT", b"CACHING", b"yes", b"&&", b"MULTI", b"&&", b"GET", b"m1", b"&&", b"GET", b"m2", b"&&",
                b"EXEC",
            ],
        ),
        (4, vec![b"GET", b"m3"]),
        (5, vec![b"MSET", b"m1", b"1", b"m2", b"2", b"m3", b"3"]),
        // Expiry (active or lazy) invalidates.
        (5, vec![b"SET", b"e", b"1", b"PX", b"100"]),
        (1, vec![b"GET", b"e"]),
        (1, vec![b"PING"]),
        (5, vec![b"@sleep"]),
        (5, vec![b"GET", b"e"]),
        // FLUSHALL: a null to every tracking client (RESP2 redirected: `$-1`).
        (1, vec![b"GET", b"f"]),
        (5, vec![b"FLUSHALL"]),
        (5, vec![b"SET", b"f", b"1"]),
        (1, vec![b"CLIENT", b"TRACKING", b"off"]),
        (1, vec![b"CLIENT", b"TRACKINGINFO"]),
        (1, vec![b"CLIENT", b"GETREDIR"]),
        (3, vec![b"CLIENT", b"GETREDIR"]),
    ];
    for (i, (who, args)) in script.iter().enumerate() {
        if args[0] == b"@sleep" {
            std::thread::sleep(Duration::from_millis(300));
            continue;
        }
        let marker = format!("@m{i}");
        out[*who].extend(step(&mut c[*who], args, &marker));
        // What every other connection got meanwhile (its marker follows the pushes, as in Redis).
        for (j, conn) in c.iter_mut().enumerate() {
            if j != *who {
                out[j].extend(step(conn, &[b"PING"], &marker));
            }
        }
    }
    out
}

/// redis-server on a free port, when it is installed.
struct Redis(Child, u16);

impl Redis {
    fn start() -> Option<Redis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Redis(child, port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const FIXTURE: &str = "tests/fixtures/tracking_session.bin";

/// The streams as one file: each connection's name, length and bytes.
fn pack(streams: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, st) in NAMES.iter().zip(streams) {
        out.extend_from_slice(format!("{name} {}\n", st.len()).as_bytes());
        out.extend_from_slice(st);
        out.push(b'\n');
    }
    out
}

/// Fail with the first difference and what precedes it (the streams are long).
fn same(ours: &[u8], theirs: &[u8], what: &str) {
    if ours == theirs {
        return;
    }
    let at = ours.iter().zip(theirs).take_while(|(a, b)| a == b).count();
    let from = at.saturating_sub(300);
    panic!(
        "{what}: differ at byte {at}\n--- ours:\n{}\n--- redis:\n{}",
        s(ours[from..(at + 200).min(ours.len())].to_vec()),
        s(theirs[from..(at + 200).min(theirs.len())].to_vec())
    );
}

#[test]
fn tracking_session_bytes_are_redis_bytes() {
    let srv = Server::start(&[]);
    let ours = pack(&session(srv.port));
    let recorded = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)).unwrap();
    same(&ours, &recorded, "vs the streams recorded from redis-server 7.0.15");
    if let Some(redis) = Redis::start() {
        same(&ours, &pack(&session(redis.1)), "vs live redis-server");
    }
}

/// Re-record the fixture from a running redis-server:
/// `TRACKING_RECORD_PORT=6379 cargo test --test tracking record -- --ignored`.
#[test]
#[ignore]
fn record() {
    let port: u16 = std::env::var("TRACKING_RECORD_PORT").unwrap().parse().unwrap();
    std::fs::write(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE), pack(&session(port))).unwrap();
}
