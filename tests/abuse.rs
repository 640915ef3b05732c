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
