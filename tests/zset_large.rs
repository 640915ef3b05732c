//! Large sorted sets (the B+tree of `db::zset::tree`, several levels deep) answer as redis-server's
//! skiplist does: the same random stream of writes and reads over a few thousand members sent to both
//! servers, replies compared byte for byte. Skipped when redis-server is not installed.
#![cfg(not(feature = "loom"))]
mod common;

use common::{RealRedis, Rng, Server, enc};

fn stream(seed: u64, ops: usize) -> Vec<Vec<String>> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let mut push = |v: &[&str]| out.push(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    for _ in 0..ops {
        // Few distinct scores for many members: ties reach the member order on every path.
        let m = format!("member:{}", rng.below(6000));
        let s = format!("{}", rng.below(400) as i64 - 200);
        let (a, b) = (rng.below(9000) as i64 - 4500, rng.below(9000) as i64 - 4500);
        let (a, b) = (a.to_string(), b.to_string());
        let (lo, hi) = (rng.below(400) as i64 - 200, rng.below(60));
        let (lo, hi) = (lo.to_string(), format!("({}", lo + hi as i64));
        match rng.below(40) {
            0..=21 => push(&["ZADD", "big", &s, &m]),
            22 => push(&["ZINCRBY", "big", "1.5", &m]),
            23 => push(&["ZREM", "big", &m]),
            24 => push(&["ZPOPMIN", "big", &(rng.below(2) + 1).to_string()]),
            25 => push(&["ZPOPMAX", "big"]),
            26 if rng.below(4) == 0 => {
                push(&["ZREMRANGEBYRANK", "big", &a, &(a.parse::<i64>().unwrap_or(0) + 4).to_string()])
            }
            27 if rng.below(8) == 0 => push(&["ZREMRANGEBYSCORE", "big", &lo, &hi]),
            28 | 29 => push(&["ZRANK", "big", &m]),
            30 => push(&["ZREVRANK", "big", &m]),
            31 => push(&["ZSCORE", "big", &m]),
            32 | 33 => push(&["ZRANGE", "big", &a, &b, "WITHSCORES"]),
            34 => push(&["ZRANGE", "big", &lo, &hi, "BYSCORE", "LIMIT", "2", "25", "WITHSCORES"]),
            35 => push(&["ZRANGE", "big", &hi, &lo, "BYSCORE", "REV", "LIMIT", "0", "30"]),
            36 => push(&["ZCOUNT", "big", &lo, &hi]),
            37 => push(&["ZREVRANGE", "big", &a, &b]),
            38 => push(&["ZCARD", "big"]),
            _ => push(&["ZRANDMEMBER", "big", "0"]),
        }
    }
    out.push(vec!["ZRANGE".into(), "big".into(), "0".into(), "-1".into(), "WITHSCORES".into()]);
    out
}

fn replies(raw: &mut common::Raw, cmds: &[Vec<String>]) -> Vec<Vec<u8>> {
    let mut got = Vec::with_capacity(cmds.len());
    for chunk in cmds.chunks(500) {
        let mut bytes = Vec::new();
        for c in chunk {
            let a: Vec<&[u8]> = c.iter().map(|s| s.as_bytes()).collect();
            bytes.extend_from_slice(&enc(&a));
        }
        raw.send(&bytes);
        got.extend((0..chunk.len()).map(|_| raw.reply()));
    }
    got
}

#[test]
fn large_sorted_sets_answer_as_redis_server() {
    let Some(real) = RealRedis::start(&["--appendonly", "no"]) else {
        return; // redis-server not installed: CI runs this with it
    };
    let ours = Server::start(&[]);
    for seed in [3u64, 17, 29] {
        let cmds = stream(seed, 12000);
        let (mut a, mut b) = (ours.raw(), real.raw());
        let (x, y) = (replies(&mut a, &cmds), replies(&mut b, &cmds));
        for (i, (x, y)) in x.iter().zip(&y).enumerate() {
            assert_eq!(
                String::from_utf8_lossy(x),
                String::from_utf8_lossy(y),
                "seed {seed}, command {i}: {:?}",
                cmds[i]
            );
        }
        // Large enough for a tree of three levels (32 keys a node).
        let last = String::from_utf8_lossy(x.last().expect("replies"));
        let n: usize = last[1..last.find('\r').expect("an array")].parse().expect("a length");
        assert!(n / 2 > 1000, "seed {seed}: only {} members at the end", n / 2);
        assert_eq!(a.cmds(&["OBJECT", "ENCODING", "big"]), b.cmds(&["OBJECT", "ENCODING", "big"]));
        a.cmds(&["DEL", "big"]);
        b.cmds(&["DEL", "big"]);
    }
}
