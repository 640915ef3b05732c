//! Abuse from many connections at once (random bytes, huge headers, unterminated requests, abrupt
//! disconnects) while well-behaved clients work: they are unaffected, and the server's memory comes
//! back down once the abusers are gone.
#![cfg(not(feature = "loom"))]
mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::Server;

fn used_memory(c: &mut common::Raw) -> u64 {
    let info = String::from_utf8_lossy(&c.cmds(&["INFO", "memory"])).to_string();
    info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).unwrap()
}

/// One abusive connection, chosen by `kind`, with a tiny xorshift for its random bytes.
fn abuse(port: u16, kind: u64, seed: &mut u64) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return };
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let mut rnd = || {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    };
    let payload: Vec<u8> = match kind % 6 {
        0 => (0..4096).map(|_| rnd() as u8).collect(),
        1 => b"*999999999\r\n".to_vec(),
        2 => b"*1\r\n$2000000000\r\n".to_vec(),
        // Half of a 4 MB bulk, then gone.
        3 => {
            let mut v = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4194304\r\n".to_vec();
            v.extend(std::iter::repeat_n(b'x', 2 << 20));
            v
        }
        // A long inline line without a newline.
        4 => vec![b'a'; 70_000],
        _ => b"*2\r\n$3\r\nGET\r\n$".to_vec(),
    };
    let _ = s.write_all(&payload);
    // Abrupt disconnect (drop), sometimes after a moment.
    if rnd() % 2 == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn abusive_connections_do_not_hurt_others_and_memory_comes_back_down() {
    let s = Server::start(&[]);
    let mut admin = s.raw();
    let baseline = used_memory(&mut admin);
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let good: Vec<_> = (0..2)
        .map(|t| {
            let mut c = s.raw();
            let (stop, served) = (stop.clone(), served.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("good{t}");
                    assert_eq!(c.cmds(&["SET", &key, &i.to_string()]), b"+OK\r\n");
                    let v = i.to_string();
                    assert_eq!(c.cmds(&["GET", &key]), format!("${}\r\n{v}\r\n", v.len()).into_bytes());
                    served.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    let port = s.port;
    let abusers: Vec<_> = (0..16u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut seed = t * 7919 + 1;
                for n in 0..30 {
                    abuse(port, t + n, &mut seed);
                }
            })
        })
        .collect();
    for a in abusers {
        a.join().unwrap();
    }
    let during = served.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for g in good {
        g.join().expect("a well-behaved client got a wrong reply");
    }
    assert!(during > 0, "well-behaved clients were served while the abuse went on");
    // Let the server notice the closed connections and free their buffers.
    let mut after = used_memory(&mut admin);
    for _ in 0..50 {
        if after < baseline + (4 << 20) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        after = used_memory(&mut admin);
    }
    eprintln!("used_memory: baseline {baseline} B, after the abuse {after} B; {during} good requests served");
    assert!(after < baseline + (4 << 20), "memory came back down: baseline {baseline}, after {after}");
    assert_eq!(admin.cmds(&["PING"]), b"+PONG\r\n");
}

// ---- client-side caching abuse -----------------------------------------------------------------

/// A RESP3-aware reader of one connection (pushes, maps, nulls), for the tracking abuse tests.
struct Resp3 {
    s: TcpStream,
    buf: Vec<u8>,
}

#[derive(Debug, PartialEq)]
enum V {
    Line(Vec<u8>),
    Bulk(Option<Vec<u8>>),
    Agg(u8, Vec<V>),
}

impl Resp3 {
    fn connect(port: u16) -> Resp3 {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        Resp3 { s, buf: Vec::new() }
    }

    fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.s.write_all(&out).unwrap();
    }

    fn cmd(&mut self, args: &[&str]) -> V {
        self.send(args);
        self.value()
    }

    fn fill(&mut self) {
        let mut tmp = [0u8; 65536];
        let n = std::io::Read::read(&mut self.s, &mut tmp).expect("read");
        assert!(n > 0, "connection closed");
        self.buf.extend_from_slice(&tmp[..n]);
    }

    fn line(&mut self) -> Vec<u8> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = self.buf[..p].to_vec();
                self.buf.drain(..p + 2);
                return l;
            }
            self.fill();
        }
    }

    fn value(&mut self) -> V {
        let l = self.line();
        let n: i64 = std::str::from_utf8(&l[1..]).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        match l[0] {
            b'$' if n < 0 => V::Bulk(None),
            b'_' => V::Bulk(None),
            b'$' => {
                while self.buf.len() < n as usize + 2 {
                    self.fill();
                }
                let v = self.buf[..n as usize].to_vec();
                self.buf.drain(..n as usize + 2);
                V::Bulk(Some(v))
            }
            kind @ (b'*' | b'>' | b'~') => V::Agg(kind, (0..n).map(|_| self.value()).collect()),
            b'%' => V::Agg(b'%', (0..2 * n).map(|_| self.value()).collect()),
            _ => V::Line(l),
        }
    }

    fn id(&mut self) -> String {
        match self.cmd(&["CLIENT", "ID"]) {
            V::Line(l) => String::from_utf8(l[1..].to_vec()).unwrap(),
            other => panic!("CLIENT ID: {other:?}"),
        }
    }
}

fn ok() -> V {
    V::Line(b"+OK".to_vec())
}

fn bulk(s: &str) -> V {
    V::Bulk(Some(s.as_bytes().to_vec()))
}

/// `>2 invalidate [keys]`.
fn invalidate(keys: &[&str]) -> V {
    V::Agg(b'>', vec![bulk("invalidate"), V::Agg(b'*', keys.iter().map(|k| bulk(k)).collect())])
}

/// A well-behaved client's SET/GET loop on its own key until `stop`; every reply is checked.
fn good_client(
    port: u16,
    tag: &'static str,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    let mut c = Server::raw_to(port);
    std::thread::spawn(move || {
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let v = i.to_string();
            assert_eq!(c.cmds(&["SET", tag, &v]), b"+OK\r\n");
            assert_eq!(c.cmds(&["GET", tag]), format!("${}\r\n{v}\r\n", v.len()).into_bytes());
            served.fetch_add(1, Ordering::Relaxed);
            i += 1;
        }
    })
}

fn info_int(c: &mut common::Raw, section: &str, field: &str) -> i64 {
    let info = String::from_utf8_lossy(&c.cmds(&["INFO", section])).to_string();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
}

/// 10k BCAST prefixes on one client: accepted (Redis checks them pairwise too), broadcasts reach
/// it for the prefixes written, TRACKING OFF removes them all, and another client is served
/// meanwhile.
#[test]
fn tracking_with_ten_thousand_prefixes() {
    let s = Server::start(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let good = good_client(s.port, "good", stop.clone(), served.clone());
    let mut admin = s.raw();
    let mut c = Resp3::connect(s.port);
    assert!(matches!(c.cmd(&["HELLO", "3"]), V::Agg(b'%', _)));
    let prefixes: Vec<String> = (0..10_000).map(|i| format!("p{i:05}:")).collect();
    let mut argv = vec!["CLIENT", "TRACKING", "ON", "BCAST"];
    for p in &prefixes {
        argv.extend(["PREFIX", p]);
    }
    let before = served.load(Ordering::Relaxed);
    assert_eq!(c.cmd(&argv), ok());
    assert_eq!(info_int(&mut admin, "stats", "tracking_total_prefixes"), 10_000);
    let Some(V::Agg(_, items)) = Some(c.cmd(&["CLIENT", "TRACKINGINFO"])) else { unreachable!() };
    assert_eq!(items[5], V::Agg(b'*', prefixes.iter().map(|p| bulk(p)).collect()));
    // Writes under three of the prefixes and one outside them: one broadcast per prefix, in order.
    assert_eq!(admin.cmds(&["MSET", "p00007:a", "1", "p09999:b", "2", "p00007:c", "3", "q", "4"]), b"+OK\r\n");
    // (The expiry tick also sends pending broadcasts: one prefix's keys may come in two pushes.)
    let mut keys: Vec<Vec<u8>> = Vec::new();
    while keys.len() < 3 {
        let V::Agg(b'>', push) = c.value() else { panic!("not a push") };
        assert_eq!(push[0], bulk("invalidate"));
        let V::Agg(b'*', ks) = &push[1] else { panic!("no keys: {push:?}") };
        let ks: Vec<Vec<u8>> =
            ks.iter().map(|k| if let V::Bulk(Some(k)) = k { k.clone() } else { panic!("{k:?}") }).collect();
        assert!(ks.windows(2).all(|w| w[0][..7] == w[1][..7]), "one push per prefix: {ks:?}");
        keys.extend(ks);
    }
    keys.sort();
    assert_eq!(keys, [&b"p00007:a"[..], b"p00007:c", b"p09999:b"]);
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "OFF"]), ok());
    assert_eq!(info_int(&mut admin, "stats", "tracking_total_prefixes"), 0);
    // The prefixes' overlap check is the command's own work: other clients were served.
    assert!(served.load(Ordering::Relaxed) > before, "no other client was served");
    stop.store(true, Ordering::Relaxed);
    good.join().expect("the good client got a wrong reply");
}

/// A tracking client redirecting to itself gets its invalidations as a plain tracking client does
/// (after the reply of the command that caused them, as redis-server 7.0.15); two clients
/// redirecting to each other each get the other's; when one goes, the other's redirect is broken
/// (`tracking-redir-broken`, flag R), and nothing loops.
#[test]
fn tracking_redirect_loops() {
    let s = Server::start(&[]);
    let mut me = Resp3::connect(s.port);
    me.cmd(&["HELLO", "3"]);
    let id = me.id();
    assert_eq!(me.cmd(&["CLIENT", "TRACKING", "ON", "REDIRECT", &id]), ok());
    assert_eq!(me.cmd(&["CLIENT", "GETREDIR"]), V::Line(format!(":{id}").into_bytes()));
    assert_eq!(me.cmd(&["GET", "k"]), V::Bulk(None));
    assert_eq!(me.cmd(&["SET", "k", "v"]), ok());
    assert_eq!(me.value(), invalidate(&["k"]));
    // Each tracked read is invalidated once, however often the key changes.
    assert_eq!(me.cmd(&["GET", "k"]), bulk("v"));
    let mut other = s.raw();
    for i in 0..100 {
        assert_eq!(other.cmds(&["SET", "k", &i.to_string()]), b"+OK\r\n");
    }
    assert_eq!(me.value(), invalidate(&["k"]));
    assert_eq!(me.cmd(&["PING"]), V::Line(b"+PONG".to_vec()));

    let mut a = Resp3::connect(s.port);
    let mut b = Resp3::connect(s.port);
    a.cmd(&["HELLO", "3"]);
    b.cmd(&["HELLO", "3"]);
    let (ida, idb) = (a.id(), b.id());
    assert_eq!(a.cmd(&["CLIENT", "TRACKING", "ON", "REDIRECT", &idb]), ok());
    assert_eq!(b.cmd(&["CLIENT", "TRACKING", "ON", "REDIRECT", &ida]), ok());
    assert_eq!(a.cmd(&["GET", "x"]), V::Bulk(None));
    assert_eq!(b.cmd(&["GET", "y"]), V::Bulk(None));
    assert_eq!(other.cmds(&["MSET", "x", "1", "y", "2"]), b"+OK\r\n");
    assert_eq!(b.value(), invalidate(&["x"]));
    assert_eq!(a.value(), invalidate(&["y"]));
    // a goes: b's next invalidation finds its target gone.
    drop(a);
    assert_eq!(b.cmd(&["GET", "y"]), bulk("2"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&other.cmds(&["CLIENT", "LIST"])).lines().all(|l| !l.contains(&format!("id={ida} ")))
    {
        assert!(std::time::Instant::now() < deadline, "the closed client is still listed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(other.cmds(&["SET", "y", "3"]), b"+OK\r\n");
    assert_eq!(b.value(), V::Agg(b'>', vec![bulk("tracking-redir-broken"), V::Line(format!(":{ida}").into_bytes())]));
    let list = String::from_utf8_lossy(&other.cmds(&["CLIENT", "LIST"])).to_string();
    let line = list.lines().find(|l| l.contains(&format!("id={idb} "))).unwrap().to_string();
    assert!(line.contains(" flags=tR "), "{line}");
    assert_eq!(b.cmd(&["PING"]), V::Line(b"+PONG".to_vec()));
}

/// 100k tracked keys, clients that never read, a writer that modifies every key three times:
/// a RESP2 client subscribed to `__redis__:invalidate` receives a BCAST client's and a default
/// client's invalidations without reading them, and the pub/sub output limit closes it; a RESP3
/// tracking client that never reads is sent each tracked key's invalidation once (the table
/// forgets a key once invalidated, as Redis: its backlog is bounded by what it read), which it
/// finds waiting when it reads at last; memory stays bounded and a well-behaved client is served
/// throughout.
#[test]
fn tracking_clients_that_never_read_are_bounded() {
    const KEYS: usize = 100_000;
    const CHUNK: usize = 1000;
    let s = Server::start(&["--client-output-buffer-limit", "pubsub 1mb 512kb 60"]);
    let port = s.port;
    let mut admin = s.raw();
    let key = |i: usize| format!("k{i:06}");
    let chunks: Vec<Vec<String>> = (0..KEYS / CHUNK).map(|c| (c * CHUNK..(c + 1) * CHUNK).map(key).collect()).collect();
    let mset = |c: &mut common::Raw, chunk: &[String], round: usize| {
        let mut argv = vec!["MSET".to_string()];
        for k in chunk {
            argv.push(k.clone());
            argv.push(round.to_string());
        }
        let a: Vec<&str> = argv.iter().map(String::as_str).collect();
        assert_eq!(c.cmds(&a), b"+OK\r\n");
    };
    for chunk in &chunks {
        mset(&mut admin, chunk, 0);
    }
    // The subscriber that never reads after subscribing.
    let mut sink = Resp3::connect(port);
    let sink_id = sink.id();
    sink.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
    // A BCAST client (every key) and a default-mode client that tracks every key, both
    // redirecting to the sink.
    let mut bcast = Resp3::connect(port);
    assert_eq!(bcast.cmd(&["CLIENT", "TRACKING", "ON", "BCAST", "REDIRECT", &sink_id]), ok());
    let bcast_id = bcast.id();
    let mut redirected = s.raw();
    assert_eq!(redirected.cmds(&["CLIENT", "TRACKING", "ON", "REDIRECT", &sink_id]), b"+OK\r\n");
    // The RESP3 client tracks every key, then stops reading.
    let mut lazy = Resp3::connect(port);
    lazy.cmd(&["HELLO", "3"]);
    assert_eq!(lazy.cmd(&["CLIENT", "TRACKING", "ON"]), ok());
    for chunk in &chunks {
        let mut argv = vec!["MGET"];
        argv.extend(chunk.iter().map(String::as_str));
        let V::Agg(b'*', values) = lazy.cmd(&argv) else { panic!("MGET") };
        assert_eq!(values.len(), CHUNK);
        let _ = redirected.cmd(&argv.iter().map(|a| a.as_bytes()).collect::<Vec<_>>());
    }
    assert_eq!(info_int(&mut admin, "stats", "tracking_total_keys"), KEYS as i64);
    let baseline = info_int(&mut admin, "memory", "used_memory");

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let good = good_client(port, "good", stop.clone(), served.clone());
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        let mut c = Server::raw_to(port);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(info_int(&mut c, "memory", "used_memory") as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut writer = s.raw();
    for round in 1..=3 {
        for chunk in &chunks {
            mset(&mut writer, chunk, round);
        }
    }
    let during = served.load(Ordering::Relaxed);
    // The sink went over its pub/sub limit and was closed; the BCAST client's next broadcast
    // finds its redirect broken.
    mset(&mut writer, &chunks[0], 4);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list = String::from_utf8_lossy(&admin.cmds(&["CLIENT", "LIST"])).to_string();
        let gone = !list.lines().any(|l| l.contains(&format!("id={sink_id} ")));
        let broken = list.lines().any(|l| l.contains(&format!("id={bcast_id} ")) && l.contains(" flags=tRB "));
        if gone && broken {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the sink was not cut off:\n{list}");
        mset(&mut writer, &chunks[1], 5);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(s.log().contains("scheduled to be closed ASAP for overcoming of output buffer limits"), "{}", s.log());
    stop.store(true, Ordering::Relaxed);
    good.join().expect("the good client got a wrong reply");
    sampler.join().unwrap();
    assert!(during > 0, "the well-behaved client was served while the keys were written");
    let peak = peak.load(Ordering::Relaxed);
    eprintln!("used_memory: baseline {baseline} B, peak {peak} B; {during} good requests served during the writes");
    assert!(peak < baseline as u64 + (64 << 20), "memory stayed bounded: baseline {baseline}, peak {peak}");
    // The lazy client reads at last: one invalidation per key it read, then its PING's reply.
    lazy.send(&["PING"]);
    let mut invalidated = std::collections::HashSet::new();
    loop {
        match lazy.value() {
            V::Agg(b'>', items) => {
                let V::Agg(_, keys) = &items[1] else { panic!("{items:?}") };
                for k in keys {
                    let V::Bulk(Some(k)) = k else { panic!("{k:?}") };
                    assert!(invalidated.insert(k.clone()), "{:?} invalidated twice", String::from_utf8_lossy(k));
                }
            }
            V::Line(l) if l == b"+PONG" => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(invalidated.len(), KEYS);
}
