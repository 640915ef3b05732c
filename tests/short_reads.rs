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
