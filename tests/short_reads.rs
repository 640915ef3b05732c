//! The connection's reads: a read that returns fewer bytes than it had room for clears the
//! socket's read readiness without the `recvfrom` that would find nothing (see
//! `connection::try_read_short`). These tests send requests in every shape that makes reads
//! short, split or full and check that nothing waits forever: a lost wake-up would leave a
//! request unanswered (the raw client's read times out after 5 s and the test fails).
#![cfg(not(feature = "loom"))]
mod common;

use std::time::Duration;

use common::{Server, enc};

/// Batches of 1 to 300 INCRs (24 bytes to 7 KB: within, across and past the read buffer's
/// room, which starts at 1 KB), each sent whole or cut in two with a pause between the halves
/// (the first half is a short read; only the second's arrival can wake the connection again).
#[test]
fn batches_of_every_size_whole_or_cut_are_all_answered() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    let one = enc(&[b"INCR", b"n"]);
    let mut expect = 0i64;
    for n in (1..=60).chain([100, 171, 200, 300]) {
        let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * n).collect();
        for cut in [None, Some(1), Some(batch.len() / 2), Some(batch.len() - 1)] {
            match cut {
                None => c.send(&batch),
                Some(at) => {
                    c.send(&batch[..at]);
                    std::thread::sleep(Duration::from_millis(5));
                    c.send(&batch[at..]);
                }
            }
            for _ in 0..n {
                expect += 1;
                assert_eq!(c.reply(), format!(":{expect}\r\n").into_bytes());
            }
        }
    }
}

/// Requests trickled a few bytes at a time (every read short), and a big value (a read that fills
/// the buffer, then reads on) after them, on one connection; then the connection is still served.
#[test]
fn trickled_and_big_requests_are_answered() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    let req = enc(&[b"RPUSH", b"l", b"a-value-of-some-length"]);
    for piece in req.chunks(3) {
        c.send(piece);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(c.reply(), b":1\r\n");
    let big = vec![b'x'; 200_000];
    let mut two = enc(&[b"SET", b"big", &big]);
    two.extend_from_slice(&enc(&[b"STRLEN", b"big"]));
    c.send(&two);
    assert_eq!(c.reply(), b"+OK\r\n");
    assert_eq!(c.reply(), b":200000\r\n");
    // A pause long enough for the connection to wait on epoll again, then one more request.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(c.cmds(&["LLEN", "l"]), b":1\r\n");
}

/// Many connections at once, each sending small pipelined batches as soon as the previous
/// replies arrive (redis-benchmark's pattern, where most reads are short): every reply arrives.
#[test]
fn many_pipelining_clients_are_all_answered() {
    let s = Server::start(&[]);
    let port = s.port;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Server::raw_to(port);
                let key = format!("k{t}");
                let one = enc(&[b"INCR", key.as_bytes()]);
                let mut expect = 0i64;
                for round in 0..300 {
                    let n = 1 + round % 17;
                    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * n).collect();
                    c.send(&batch);
                    for _ in 0..n {
                        expect += 1;
                        assert_eq!(c.reply(), format!(":{expect}\r\n").into_bytes());
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Pipelined batches whose first request has a key, none (PING), a script's key, or is malformed
/// (EVAL without its arguments), on distinct keys, each sent whole or with its last request cut
/// in two: the batch's keys are prefetched once its first request is decoded (a hint only), and
/// every reply is the one of running the requests one by one.
#[test]
fn mixed_pipelines_with_a_cut_tail_are_all_answered() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    let script: &[u8] = b"return redis.call('incr', KEYS[1])";
    for n in 1..=40usize {
        for cut in [false, true] {
            let mut batch = Vec::new();
            let mut want: Vec<Vec<u8>> = Vec::new();
            match n % 4 {
                0 => {
                    batch.extend(enc(&[b"PING"]));
                    want.push(b"+PONG\r\n".to_vec());
                }
                1 => {
                    batch.extend(enc(&[b"EVAL", script, b"1", format!("ev{n}{cut}").as_bytes()]));
                    want.push(b":1\r\n".to_vec());
                }
                2 => {
                    batch.extend(enc(&[b"EVAL"]));
                    want.push(b"-ERR wrong number of arguments for 'eval' command\r\n".to_vec());
                }
                _ => {}
            }
            for i in 0..n {
                let key = format!("k{n}-{i}-{cut}");
                batch.extend(enc(&[b"SET", key.as_bytes(), format!("v{i}").as_bytes()]));
                batch.extend(enc(&[b"GET", key.as_bytes()]));
                want.push(b"+OK\r\n".to_vec());
                want.push(format!("${}\r\nv{i}\r\n", format!("v{i}").len()).into_bytes());
            }
            if cut {
                let at = batch.len() - 5;
                c.send(&batch[..at]);
                std::thread::sleep(Duration::from_millis(5));
                c.send(&batch[at..]);
            } else {
                c.send(&batch);
            }
            for w in &want {
                assert_eq!(String::from_utf8_lossy(&c.reply()), String::from_utf8_lossy(w), "batch of {n}, cut {cut}");
            }
        }
    }
}

/// A client that never stops sending (its socket readable whenever the connection looks) is still
/// closed by CLIENT KILL: the read loop's `select!` is biased (no random start) and looks at the
/// connection's close signal before its socket. (With the socket first the kill still lands, a
/// little later: tokio's cooperative budget makes a read return Pending after 128 operations.)
#[test]
fn a_client_that_keeps_sending_is_still_killed() {
    use std::io::{Read, Write};
    let s = Server::start(&[]);
    let mut flooder = s.raw();
    let id = String::from_utf8(flooder.cmds(&["CLIENT", "ID"])).unwrap();
    let id = id.trim_start_matches(':').trim_end().to_string();
    let mut writer = flooder.s.try_clone().unwrap();
    let mut reader = flooder.s.try_clone().unwrap();
    reader.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let pings: Vec<u8> = enc(&[b"PING"]).iter().copied().cycle().take(14 * 2000).collect();
    let sending = std::thread::spawn(move || while writer.write_all(&pings).is_ok() {});
    let reading = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0usize;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(got),
                Ok(n) => got += n,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return Err(format!("still open 10 s after the kill ({got} bytes of replies read)"));
                }
                Err(_) => return Ok(got),
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut admin = s.raw();
    assert_eq!(admin.cmds(&["CLIENT", "KILL", "ID", &id]), b":1\r\n");
    let got = reading.join().unwrap().unwrap();
    assert!(got > 0, "the flooder was answered before the kill");
    sending.join().unwrap();
    assert_eq!(admin.cmds(&["PING"]), b"+PONG\r\n");
}
