//! Flow control between a flurrydb primary and its flurrydb replicas (`src/repl/flow.rs`): a
//! replica says `capa flow` and acknowledges as it applies; the primary's writers wait while such a
//! replica is far behind, go on at once when it catches up, and stop waiting for one that stops
//! acknowledging (stopped, cut off: as Redis, which never waits for a replica).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Server;
use common::fixed::{conn, field, wait_for};
use common::hand_primary::{HandPrimary, read_command, resp};

/// flow.rs's bounds, as the tests rely on them.
const HIGH: usize = 192 << 10;
const WAIT_MAX: Duration = Duration::from_millis(20);
const FRESH: Duration = Duration::from_millis(200);

fn repl_offset(port: u16) -> u64 {
    let i = redis::cmd("INFO").arg("replication").query::<String>(&mut conn(port)).unwrap();
    field(&i, "master_repl_offset").unwrap().parse().unwrap()
}

/// A replica played by hand: the handshake with `capa flow`, a full sync read and dropped, the
/// stream drained in the background. Returns the socket to write ACKs to and the sync's offset.
fn hand_replica(port: u16) -> (TcpStream, u64) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    w.write_all(&resp(&["REPLCONF", "capa", "psync2", "capa", "flow"])).unwrap();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "+OK\r\n");
    w.write_all(&resp(&["PSYNC", "?", "-1"])).unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    let offset: u64 = line.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(line.starts_with("+FULLRESYNC "), "{line}");
    line.clear();
    r.read_line(&mut line).unwrap();
    let len: usize = line.trim_end().strip_prefix('$').unwrap().parse().unwrap();
    let mut rdb = vec![0u8; len];
    r.read_exact(&mut rdb).unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while matches!(r.read(&mut buf), Ok(n) if n > 0) {}
    });
    (w, offset)
}

/// `n` SETs of 64 KB, one request at a time: how long they took.
fn write_64k(c: &mut redis::Connection, n: usize, tag: &str) -> Duration {
    let value = vec![b'v'; 64 << 10];
    let t = Instant::now();
    for i in 0..n {
        let _: () = redis::cmd("SET").arg(format!("{tag}{i}")).arg(&value).query(c).unwrap();
    }
    t.elapsed()
}

/// Sends `REPLCONF ACK` every `every` until stopped: the offset in `acked`, or the primary's
/// current end when `follow` is set (a replica that keeps up).
fn acker(mut to: TcpStream, port: u16, acked: Arc<AtomicU64>, follow: bool, every: Duration) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            if follow {
                acked.store(repl_offset(port), Ordering::Relaxed);
            }
            let off = acked.load(Ordering::Relaxed).to_string();
            if to.write_all(&resp(&["REPLCONF", "ACK", &off])).is_err() {
                return;
            }
            std::thread::sleep(every);
        }
    });
    stop
}

#[test]
fn writers_wait_for_a_flow_replica_far_behind_and_not_for_one_that_keeps_up_or_stopped() {
    let primary = Server::start(&["--appendonly", "no"]);
    let (to_primary, offset) = hand_replica(primary.port);
    let mut c = conn(primary.port);
    let n = 30;
    // 1. The replica acknowledges often, but never past where it started: after the first
    // HIGH bytes of writes, each of the client's requests waits (WAIT_MAX each at most).
    let acked = Arc::new(AtomicU64::new(offset));
    let stop = acker(to_primary.try_clone().unwrap(), primary.port, acked.clone(), false, Duration::from_millis(20));
    let behind = write_64k(&mut c, n, "a");
    stop.store(true, Ordering::Relaxed);
    let waited = n - HIGH / (64 << 10) - 2;
    assert!(behind >= WAIT_MAX * waited as u32 * 3 / 4, "{n} writes took {behind:?} with the replica behind");
    // 2. The replica keeps up (acknowledges the end every 2 ms): the same writes barely wait.
    std::thread::sleep(Duration::from_millis(50));
    let stop = acker(to_primary.try_clone().unwrap(), primary.port, acked.clone(), true, Duration::from_millis(2));
    wait_for("the ACK of the end", Duration::from_secs(10), || {
        acked.load(Ordering::Relaxed) == repl_offset(primary.port)
    });
    let keeping_up = write_64k(&mut c, n, "b");
    stop.store(true, Ordering::Relaxed);
    assert!(keeping_up * 2 < behind, "{keeping_up:?} with the replica keeping up, {behind:?} behind");
    // 3. The replica stops acknowledging, far behind: once its last ACK is stale, nobody waits.
    acked.store(offset, Ordering::Relaxed);
    let mut to = to_primary.try_clone().unwrap();
    to.write_all(&resp(&["REPLCONF", "ACK", &offset.to_string()])).unwrap();
    std::thread::sleep(FRESH + Duration::from_millis(100));
    let stopped = write_64k(&mut c, n, "c");
    assert!(stopped * 2 < behind, "{stopped:?} with the replica stopped, {behind:?} behind");
    // Every write landed.
    let got: u64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(got, 3 * n as u64);
}

/// Our replica says `capa flow` and acknowledges each ~64 KB it applies, not only each second.
#[test]
fn a_replica_acknowledges_as_it_applies() {
    let p = HandPrimary::bind();
    let replica = Server::start(&["--appendonly", "no", "--replicaof", "127.0.0.1", &p.port.to_string()]);
    let (stream, _) = p.listener.accept().unwrap();
    let mut to = stream.try_clone().unwrap();
    let mut from = BufReader::new(stream);
    let mut capas = Vec::new();
    loop {
        let argv = read_command(&mut from).expect("the replica's handshake");
        match argv[0].to_ascii_uppercase().as_str() {
            "PING" => to.write_all(b"+PONG\r\n").unwrap(),
            "PSYNC" => break,
            "REPLCONF" => {
                capas.extend(argv[1..].chunks(2).filter(|kv| kv[0] == "capa").map(|kv| kv[1].clone()));
                to.write_all(b"+OK\r\n").unwrap();
            }
            _ => to.write_all(b"+OK\r\n").unwrap(),
        }
    }
    assert!(capas.iter().any(|c| c == "flow"), "capabilities said: {capas:?}");
    let mut rdb = Vec::new();
    let nothing: &[flurrydb::db::SnapshotEntry] = &[];
    flurrydb::rdb::write_rdb(&mut rdb, nothing, &flurrydb::rdb::Aux::default()).unwrap();
    to.write_all(format!("+FULLRESYNC {} 0\r\n${}\r\n", "a".repeat(40), rdb.len()).as_bytes()).unwrap();
    to.write_all(&rdb).unwrap();
    // 1 MB of stream at once: 1000 SETs of 1000 bytes.
    let mut stream = resp(&["SELECT", "0"]);
    let value = "x".repeat(1000);
    for i in 0..1000 {
        stream.extend(resp(&["SET", &format!("k{i}"), &value]));
    }
    to.write_all(&stream).unwrap();
    let total = stream.len() as u64;
    let mut acks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let argv = read_command(&mut from).expect("the replica's ACKs");
        if argv.len() == 3 && argv[1].eq_ignore_ascii_case("ack") {
            let off: u64 = argv[2].parse().unwrap();
            if acks.last() != Some(&off) {
                acks.push(off);
            }
            if off == total {
                break;
            }
        }
    }
    assert_eq!(acks.last(), Some(&total), "ACKs {acks:?}");
    let between = acks.iter().filter(|&&o| o > 0 && o < total).count();
    assert!(between >= 4, "ACKs while applying 1 MB: {acks:?}");
    assert!(acks.windows(2).all(|w| w[0] < w[1]), "{acks:?}");
    wait_for("the replica's keys", Duration::from_secs(10), || {
        redis::cmd("DBSIZE").query::<u64>(&mut conn(replica.port)).unwrap() == 1000
    });
}
