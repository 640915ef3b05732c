//! The sorted-set core (`db::zset`, `cmd::zset_args`) against a real redis-server 7.0, below any
//! command handler: random ZADD/ZINCRBY/ZRANGE/ZCOUNT/ZLEXCOUNT/ZREM*/ZPOP*/ZRANK/ZSCORE/ZUNION/
//! ZINTER/ZDIFF requests are parsed and applied to a `SortedSet`, sent to redis-server, and the
//! replies (errors included), the whole set with scores and OBJECT ENCODING must be equal after each.
//! Three runs per seed: packed (lex walks over unequal scores, as listpack walks them), the tree past
//! 4 members, and the tree with equal scores (lex ranges). Skipped when redis-server is not
//! installed (CI runs it with one).
#![cfg(not(feature = "loom"))]

mod common;

use bytes::Bytes;
use flurrydb::cmd::zset_args::*;
use flurrydb::db::zset::aggregate::{SetOp, combine};
use flurrydb::db::zset::score::format_score;
use flurrydb::db::zset::{SortedSet, ZsetLimits};

use common::{RealRedis, Rng};

fn show(v: &redis::Value) -> String {
    match v {
        redis::Value::Nil => "(nil)".into(),
        redis::Value::Int(n) => n.to_string(),
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Okay => "OK".into(),
        redis::Value::Array(a) => a.iter().map(show).collect::<Vec<_>>().join(" "),
        other => format!("{other:?}"),
    }
}

/// The second key, `k2`, of set operations (its encoding is irrelevant to their results).
fn k2() -> SortedSet {
    let pairs = [("a", 1.0), ("b", 2.0), ("c", f64::INFINITY), ("d", f64::NEG_INFINITY), ("zz", 0.5), ("nx", 3.0)];
    SortedSet::from_entries(
        pairs.iter().map(|(m, s)| (Bytes::from_static(m.as_bytes()), *s)).collect(),
        &ZsetLimits::default(),
    )
}

/// Apply one request to our set (None: the key does not exist) and render the reply as `show` does.
fn ours(z: &mut Option<SortedSet>, argv: &[Bytes], l: &ZsetLimits) -> Result<String, String> {
    let name = String::from_utf8_lossy(&argv[0]).to_uppercase();
    let join = |v: Vec<(Bytes, f64)>, ws: bool| {
        v.iter()
            .flat_map(|(m, s)| {
                let mut o = vec![String::from_utf8_lossy(m).into_owned()];
                if ws {
                    o.push(format_score(*s))
                }
                o
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let e = |e: flurrydb::error::Error| e.text();
    let out = match name.as_str() {
        "ZADD" | "ZINCRBY" => {
            let a = parse_zadd(argv, name == "ZINCRBY").map_err(e)?;
            if z.is_none() {
                if a.flags.xx {
                    return Ok(if a.flags.incr { "(nil)".into() } else { "0".into() });
                }
                *z = Some(SortedSet::for_new_key(a.pairs[0].1.len(), l));
            }
            let s = z.as_mut().unwrap().zadd(&a.pairs, a.flags, l);
            if let Some(err) = s.error {
                return Err(err.text());
            }
            if a.flags.incr {
                s.score.map_or("(nil)".into(), format_score)
            } else {
                s.reply_count(a.flags.ch).to_string()
            }
        }
        "ZRANGE" => {
            let a = parse_range(argv, 1, false, RangeKind::Auto, false).map_err(e)?;
            let Some(z) = z else { return Ok(String::new()) };
            let v = match &a.by {
                RangeBy::Rank(s, t) => z.range_by_rank(*s, *t, a.rev),
                RangeBy::Score(r) => z.range_by_score(r, a.rev, a.limit),
                RangeBy::Lex(r) => z.range_by_lex(r, a.rev, a.limit),
            };
            join(v, a.withscores)
        }
        "ZCOUNT" => {
            let r = parse_score_range(&argv[2], &argv[3]).map_err(e)?;
            z.as_ref().map_or(0, |z| z.count_by_score(&r)).to_string()
        }
        "ZLEXCOUNT" => {
            let r = parse_lex_range(&argv[2], &argv[3]).map_err(e)?;
            z.as_ref().map_or(0, |z| z.count_by_lex(&r)).to_string()
        }
        "ZREMRANGEBYSCORE" => {
            let r = parse_score_range(&argv[2], &argv[3]).map_err(e)?;
            z.as_mut().map_or(0, |z| z.remove_range_by_score(&r)).to_string()
        }
        "ZREMRANGEBYLEX" => {
            let r = parse_lex_range(&argv[2], &argv[3]).map_err(e)?;
            z.as_mut().map_or(0, |z| z.remove_range_by_lex(&r)).to_string()
        }
        "ZREMRANGEBYRANK" => {
            let (s, t) = (flurrydb::cmd::arg_i64(&argv[2]).map_err(e)?, flurrydb::cmd::arg_i64(&argv[3]).map_err(e)?);
            z.as_mut().map_or(0, |z| z.remove_range_by_rank(s, t)).to_string()
        }
        "ZPOPMIN" | "ZPOPMAX" => {
            let c = parse_pop_count(argv).map_err(e)?;
            let Some(zz) = z else { return Ok(String::new()) };
            join(zz.pop(c.unwrap_or(1), name == "ZPOPMAX"), true)
        }
        "ZRANK" | "ZREVRANK" => {
            z.as_ref().and_then(|z| z.rank(&argv[2], name == "ZREVRANK")).map_or("(nil)".into(), |r| r.0.to_string())
        }
        "ZSCORE" => z.as_ref().and_then(|z| z.score(&argv[2])).map_or("(nil)".into(), format_score),
        "ZUNION" | "ZINTER" | "ZDIFF" => {
            let op = match name.as_str() {
                "ZUNION" => SetOp::Union,
                "ZINTER" => SetOp::Inter,
                _ => SetOp::Diff,
            };
            let (keys, next) = parse_setop_keys(argv, 1, &name.to_lowercase()).map_err(e)?;
            let o = parse_setop_options(argv, next, keys.len(), op, false, false).map_err(e)?;
            let (empty, other) = (SortedSet::new(), k2());
            let first = z.as_ref().unwrap_or(&empty);
            join(combine(op, &[first, &other], &o.weights, o.aggregate), o.withscores)
        }
        "ZREM" => z.as_mut().map_or(0, |z| argv[2..].iter().filter(|m| z.remove(m).is_some()).count()).to_string(),
        _ => unreachable!(),
    };
    if z.as_ref().is_some_and(|z| z.is_empty()) {
        *z = None;
    }
    Ok(out)
}

fn run(port: u16, seed: u64, ops: usize, entries: usize, scores: &[&str], lex: bool) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut con = client.get_connection().unwrap();
    redis::cmd("CONFIG").arg("SET").arg("zset-max-listpack-entries").arg(entries).query::<()>(&mut con).unwrap();
    redis::cmd("DEL").arg("k").query::<()>(&mut con).unwrap();
    let k2_args = ["1", "a", "2", "b", "inf", "c", "-inf", "d", "0.5", "zz", "3", "nx"];
    redis::cmd("ZADD").arg("k2").arg(&k2_args).query::<()>(&mut con).unwrap();
    let l = ZsetLimits { max_listpack_entries: entries, max_listpack_value: 64 };
    let mut rng = Rng(seed);
    let mut z: Option<SortedSet> = None;
    // With `lex` off, a 65-byte member (past zset-max-listpack-value) and one with a NUL join in.
    let long = "m".repeat(65);
    let mut members = vec!["a", "b", "c", "aa", "ab", "ba", "bb", "cc", "d", "e", "f", "g", "h", "zz", "nx"];
    if !lex {
        members.extend([long.as_str(), "a\0b"]);
    }
    let sb = ["-inf", "(-inf", "+inf", "(1", "1", "2.5", "(2.5", "0", "-1", "(0", "x", "", "(3", "10", "0x2"];
    let lb = ["-", "+", "[a", "(a", "[b", "(bb", "[cc", "(d", "[zz", "x", "[", "("];
    let flags = ["NX", "XX", "GT", "LT", "CH", "INCR"];
    for i in 0..ops {
        let mut argv: Vec<String> = Vec::new();
        match rng.below(17) {
            0..=4 => {
                argv.push("ZADD".into());
                argv.push("k".into());
                for f in flags {
                    if rng.below(6) == 0 {
                        argv.push(f.into());
                    }
                }
                let k = if rng.below(3) == 0 { 3 } else { 1 };
                for _ in 0..1 + rng.below(k) {
                    argv.push(rng.pick(scores).into());
                    argv.push(rng.pick(&members).into());
                }
            }
            5 => argv.extend(["ZINCRBY".into(), "k".into(), rng.pick(scores).into(), rng.pick(&members).into()]),
            6..=8 => {
                argv.extend(["ZRANGE".into(), "k".into()]);
                let kind = rng.below(3);
                let b = |rng: &mut Rng| -> String {
                    match kind {
                        0 => (rng.below(12) as i64 - 6).to_string(),
                        1 => rng.pick(&sb).into(),
                        _ => rng.pick(&lb).into(),
                    }
                };
                argv.push(b(&mut rng));
                argv.push(b(&mut rng));
                if kind == 1 {
                    argv.push("BYSCORE".into())
                }
                if kind == 2 {
                    if !lex {
                        continue;
                    }
                    argv.push("BYLEX".into())
                }
                if rng.below(2) == 0 {
                    argv.push("REV".into())
                }
                if kind != 2 && rng.below(2) == 0 {
                    argv.push("WITHSCORES".into())
                }
                if kind != 0 && rng.below(2) == 0 {
                    argv.extend([
                        "LIMIT".into(),
                        (rng.below(4) as i64 - 1).to_string(),
                        (rng.below(5) as i64 - 1).to_string(),
                    ]);
                }
            }
            9 => argv.extend(["ZCOUNT".into(), "k".into(), rng.pick(&sb).into(), rng.pick(&sb).into()]),
            10 => {
                if !lex {
                    continue;
                }
                let c = if rng.below(4) == 0 { "ZREMRANGEBYLEX" } else { "ZLEXCOUNT" };
                argv.extend([c.into(), "k".into(), rng.pick(&lb).into(), rng.pick(&lb).into()])
            }
            11 => argv.extend(["ZREMRANGEBYSCORE".into(), "k".into(), rng.pick(&sb).into(), rng.pick(&sb).into()]),
            12 => argv.extend([
                "ZREMRANGEBYRANK".into(),
                "k".into(),
                (rng.below(8) as i64 - 4).to_string(),
                (rng.below(8) as i64 - 4).to_string(),
            ]),
            13 => {
                argv.extend([if rng.below(2) == 0 { "ZPOPMIN" } else { "ZPOPMAX" }.into(), "k".into()]);
                if rng.below(2) == 0 {
                    argv.push(rng.below(3).to_string())
                }
            }
            14 => {
                argv.extend([rng.pick(&["ZRANK", "ZREVRANK", "ZSCORE"]).into(), "k".into(), rng.pick(&members).into()])
            }
            15 if rng.below(2) == 0 => {
                let op = rng.pick(&["ZUNION", "ZINTER", "ZDIFF"]);
                argv.extend([op.into(), "2".into(), "k".into(), "k2".into()]);
                let weights = ["1", "2", "0", "-1", "inf", "0.5", "x"];
                if op != "ZDIFF" && rng.below(2) == 0 {
                    argv.extend(["WEIGHTS".into(), rng.pick(&weights).into(), rng.pick(&weights).into()]);
                }
                if op != "ZDIFF" && rng.below(2) == 0 {
                    argv.extend(["AGGREGATE".into(), rng.pick(&["sum", "MIN", "max", "avg"]).into()]);
                }
                argv.push("WITHSCORES".into());
            }
            _ => argv.extend(["ZREM".into(), "k".into(), rng.pick(&members).into(), rng.pick(&members).into()]),
        }
        let bytes: Vec<Bytes> = argv.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        let mine = ours(&mut z, &bytes, &l);
        let mut c = redis::cmd(&argv[0]);
        for a in &argv[1..] {
            c.arg(a);
        }
        let theirs = c
            .query::<redis::Value>(&mut con)
            .map(|v| show(&v))
            .map_err(|e| format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or("")));
        assert_eq!(mine, theirs, "op {i}: {argv:?}");
        let all: redis::Value = redis::cmd("ZRANGE").arg("k").arg(0).arg(-1).arg("WITHSCORES").query(&mut con).unwrap();
        let mine_all = z.as_ref().map_or(String::new(), |z| {
            z.entries()
                .iter()
                .flat_map(|(m, s)| [String::from_utf8_lossy(m).into_owned(), format_score(*s)])
                .collect::<Vec<_>>()
                .join(" ")
        });
        assert_eq!(mine_all, show(&all), "after op {i}: {argv:?}");
        if let Some(z) = &z {
            let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("k").query(&mut con).unwrap();
            assert_eq!(z.encoding().as_str(), enc, "after op {i}: {argv:?}");
        }
    }
}

#[test]
fn sorted_set_core_answers_as_redis_server() {
    let Some(redis) = RealRedis::start(&["--appendonly", "no"]) else {
        return; // redis-server not installed: CI runs this with it
    };
    let many = ["1", "2", "2.5", "-1", "0", "-0", "inf", "-inf", "0.1", "1e-5", "3", "x", "nan", "1e400", "0x1p-2"];
    for seed in 1..=8 {
        run(redis.port, seed * 977, 1500, 128, &many, true); // listpack: lex walks over unequal scores
        run(redis.port, seed * 131, 1500, 4, &many, false); // skiplist past 4 members, no lex
        run(redis.port, seed * 13, 1500, 128, &many, false); // converted by a long member
        run(redis.port, seed * 71, 1500, 4, &["0", "-0", "x"], true); // equal scores: lex in the tree too
    }
}
