//! List commands against the real server: exact reply bytes, and the locking protocol under
//! concurrent pushes, pops and moves (nothing lost, nothing duplicated, FIFO order kept).
#![cfg(not(feature = "loom"))]
mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use common::Server;

#[test]
fn list_replies_match_redis_bytes() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    assert_eq!(c.cmds(&["RPUSH", "l", "a", "b", "c"]), b":3\r\n");
    assert_eq!(c.cmds(&["LPUSH", "l", "z"]), b":4\r\n");
    assert_eq!(c.cmds(&["LRANGE", "l", "0", "-1"]), b"*4\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
    assert_eq!(c.cmds(&["LPOP", "l", "0"]), b"*0\r\n");
    assert_eq!(c.cmds(&["LPOP", "missing", "0"]), b"*-1\r\n");
    assert_eq!(c.cmds(&["RPOP", "missing", "2"]), b"*-1\r\n");
    assert_eq!(c.cmds(&["LPOP", "missing"]), b"$-1\r\n");
    assert_eq!(c.cmds(&["LPOP", "l", "-1"]), b"-ERR value is out of range, must be positive\r\n");
    assert_eq!(c.cmds(&["LPOS", "l", "a", "COUNT", "0"]), b"*1\r\n:1\r\n");
    assert_eq!(c.cmds(&["LPOS", "missing", "a", "COUNT", "0"]), b"*0\r\n");
    assert_eq!(c.cmds(&["LPOS", "l", "zz"]), b"$-1\r\n");
    assert_eq!(
        c.cmds(&["LPOS", "l", "a", "RANK", "0"]),
        &b"-ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
           or use negative to start from the end of the list\r\n"[..]
    );
    assert_eq!(c.cmds(&["LSET", "missing", "0", "v"]), b"-ERR no such key\r\n");
    assert_eq!(c.cmds(&["LSET", "l", "9", "v"]), b"-ERR index out of range\r\n");
    assert_eq!(c.cmds(&["LINSERT", "l", "BEFORE", "zz", "v"]), b":-1\r\n");
    assert_eq!(c.cmds(&["LINSERT", "missing", "BEFORE", "a", "v"]), b":0\r\n");
    assert_eq!(c.cmds(&["SET", "s", "x"]), b"+OK\r\n");
    assert_eq!(
        c.cmds(&["LMOVE", "l", "s", "LEFT", "RIGHT"]),
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    assert_eq!(c.cmds(&["LMOVE", "l", "l", "LEFT", "RIGHT"]), b"$1\r\nz\r\n");
    assert_eq!(c.cmds(&["LPOP", "l", "10"]), b"*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nz\r\n");
    // The emptied list is gone: the key is free for a string.
    assert_eq!(c.cmds(&["GET", "l"]), b"$-1\r\n");
    assert_eq!(c.cmds(&["SET", "l", "v", "NX"]), b"+OK\r\n");
}

/// Every token `p{producer}:{n}` pushed in order by one producer.
fn token(p: usize, n: usize) -> String {
    format!("p{p}:{n}")
}

fn parse_token(t: &str) -> (usize, usize) {
    let (p, n) = t[1..].split_once(':').expect("token shape");
    (p.parse().unwrap(), n.parse().unwrap())
}

/// Checks that `seen` holds each pushed token exactly once.
fn assert_exactly_once(seen: &[String], producers: usize, per_producer: usize) {
    let mut set = HashSet::new();
    for t in seen {
        assert!(set.insert(t.clone()), "token {t} seen twice");
    }
    assert_eq!(set.len(), producers * per_producer, "tokens lost");
    for p in 0..producers {
        for n in 0..per_producer {
            assert!(set.contains(&token(p, n)), "token {} lost", token(p, n));
        }
    }
}

/// Checks that in `seq` the tokens of each producer come in the order it pushed them.
fn assert_fifo_per_producer(seq: &[String]) {
    let mut last: HashMap<usize, usize> = HashMap::new();
    for t in seq {
        let (p, n) = parse_token(t);
        if let Some(&prev) = last.get(&p) {
            assert!(n > prev, "producer {p}: {n} came after {prev}");
        }
        last.insert(p, n);
    }
}

/// Pop with `LPOP key count` until the producers are done and the list is drained.
fn consume(mut c: redis::Connection, key: &'static str, done: Arc<AtomicBool>, count: usize) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let finished = done.load(Ordering::SeqCst);
        let batch: Option<Vec<String>> = redis::cmd("LPOP").arg(key).arg(count).query(&mut c).unwrap();
        match batch {
            Some(b) => got.extend(b),
            None if finished => return got,
            None => thread::yield_now(),
        }
    }
}

#[test]
fn concurrent_rpush_and_lpop_lose_nothing_duplicate_nothing_and_keep_each_producers_order() {
    const PRODUCERS: usize = 8;
    const PER_PRODUCER: usize = 400;
    let s = Server::start(&[]);
    let done = Arc::new(AtomicBool::new(false));
    let consumers: Vec<_> = (0..3)
        .map(|i| {
            let (c, done) = (s.client(), done.clone());
            thread::spawn(move || consume(c, "q", done, 1 + i * 3))
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let mut c = s.client();
            thread::spawn(move || {
                let mut n = 0;
                while n < PER_PRODUCER {
                    // Mix single and variadic pushes.
                    if n % 5 == 0 && n + 1 < PER_PRODUCER {
                        let _: i64 =
                            redis::cmd("RPUSH").arg("q").arg(token(p, n)).arg(token(p, n + 1)).query(&mut c).unwrap();
                        n += 2;
                    } else {
                        let _: i64 = redis::cmd("RPUSH").arg("q").arg(token(p, n)).query(&mut c).unwrap();
                        n += 1;
                    }
                }
            })
        })
        .collect();
    for t in producers {
        t.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    for t in consumers {
        let got = t.join().unwrap();
        // One consumer pops from the head in the list's order: each producer's tokens in order.
        assert_fifo_per_producer(&got);
        all.extend(got);
    }
    let mut c = s.client();
    let rest: Vec<String> = redis::cmd("LRANGE").arg("q").arg(0).arg(-1).query(&mut c).unwrap();
    assert!(rest.is_empty(), "consumers drained the list");
    assert_exactly_once(&all, PRODUCERS, PER_PRODUCER);
}

#[test]
fn pops_that_empty_the_list_racing_with_pushes_never_lose_a_pushed_element() {
    const PRODUCERS: usize = 4;
    const PER_PRODUCER: usize = 500;
    let s = Server::start(&[]);
    let done = Arc::new(AtomicBool::new(false));
    // Greedy poppers keep the list at zero or one element, so the key is removed and re-created
    // constantly: pushes race with the pop that removes the key (the cell is then dead).
    let poppers: Vec<_> = (0..4)
        .map(|i| {
            let (mut c, done) = (s.client(), done.clone());
            thread::spawn(move || {
                let mut got: Vec<String> = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    if i % 2 == 0 {
                        let b: Option<Vec<String>> = redis::cmd("RPOP").arg("k").arg(100).query(&mut c).unwrap();
                        got.extend(b.unwrap_or_default());
                    } else {
                        let v: Option<String> = redis::cmd("LPOP").arg("k").query(&mut c).unwrap();
                        got.extend(v);
                    }
                }
                got
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let mut c = s.client();
            thread::spawn(move || {
                for n in 0..PER_PRODUCER {
                    let cmd = if n % 2 == 0 { "RPUSH" } else { "LPUSH" };
                    let len: i64 = redis::cmd(cmd).arg("k").arg(token(p, n)).query(&mut c).unwrap();
                    assert!(len >= 1);
                }
            })
        })
        .collect();
    for t in producers {
        t.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let mut seen: Vec<String> = poppers.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let mut c = s.client();
    let rest: Vec<String> = redis::cmd("LRANGE").arg("k").arg(0).arg(-1).query(&mut c).unwrap();
    seen.extend(rest);
    assert_exactly_once(&seen, PRODUCERS, PER_PRODUCER);
}

#[test]
fn concurrent_moves_between_lists_conserve_every_element() {
    const PRODUCERS: usize = 3;
    const PER_PRODUCER: usize = 300;
    let s = Server::start(&[]);
    let done = Arc::new(AtomicBool::new(false));
    // Movers shuttle elements a -> b -> a (and rotate each list) while producers push onto `a`
    // and a popper drains `b`: every token ends up popped or in exactly one of the lists.
    let movers: Vec<_> = (0..3)
        .map(|i| {
            let (mut c, done) = (s.client(), done.clone());
            thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    let _: Option<String> = match i {
                        0 => redis::cmd("LMOVE").arg("a").arg("b").arg("LEFT").arg("RIGHT").query(&mut c).unwrap(),
                        1 => redis::cmd("RPOPLPUSH").arg("b").arg("a").query(&mut c).unwrap(),
                        _ => redis::cmd("LMOVE").arg("a").arg("a").arg("RIGHT").arg("LEFT").query(&mut c).unwrap(),
                    };
                }
            })
        })
        .collect();
    let popper = {
        let (mut c, done) = (s.client(), done.clone());
        thread::spawn(move || {
            let mut got: Vec<String> = Vec::new();
            while !done.load(Ordering::SeqCst) {
                let v: Option<String> = redis::cmd("RPOP").arg("b").query(&mut c).unwrap();
                got.extend(v);
            }
            got
        })
    };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let mut c = s.client();
            thread::spawn(move || {
                for n in 0..PER_PRODUCER {
                    let _: i64 = redis::cmd("RPUSH").arg("a").arg(token(p, n)).query(&mut c).unwrap();
                }
            })
        })
        .collect();
    for t in producers {
        t.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    for t in movers {
        t.join().unwrap();
    }
    let mut seen = popper.join().unwrap();
    let mut c = s.client();
    for key in ["a", "b"] {
        let rest: Vec<String> = redis::cmd("LRANGE").arg(key).arg(0).arg(-1).query(&mut c).unwrap();
        seen.extend(rest);
    }
    assert_exactly_once(&seen, PRODUCERS, PER_PRODUCER);
}
