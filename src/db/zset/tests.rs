//! [`SortedSet`] against a naive reference (a sorted `Vec`) over random operations, in both
//! encodings; the conversion thresholds; ZADD's flag rules; aggregation.

use bytes::Bytes;

use super::add::{AddFlags, AddOutcome};
use super::aggregate::{Aggregate, SetOp, combine, inter_card};
use super::range::cmp_entry;
use super::*;

/// xorshift64: deterministic, no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The reference: entries sorted by Redis's order.
#[derive(Default)]
struct Model(Vec<(f64, Vec<u8>)>);

impl Model {
    fn set(&mut self, m: &[u8], s: f64) {
        self.0.retain(|(_, x)| x != m);
        let at = self.0.partition_point(|(xs, xm)| cmp_entry(*xs, xm, s, m).is_lt());
        self.0.insert(at, (s, m.to_vec()));
    }
    fn entries(&self) -> Vec<(Bytes, f64)> {
        self.0.iter().map(|(s, m)| (Bytes::from(m.clone()), *s)).collect()
    }
    fn where_(&self, f: impl Fn(&[u8], f64) -> bool) -> Vec<(Bytes, f64)> {
        self.entries().into_iter().filter(|(m, s)| f(m, *s)).collect()
    }
}

fn limited(mut v: Vec<(Bytes, f64)>, rev: bool, limit: Limit) -> Vec<(Bytes, f64)> {
    if rev {
        v.reverse();
    }
    if limit.offset < 0 {
        return Vec::new();
    }
    let n = usize::try_from(limit.count).unwrap_or(usize::MAX);
    v.into_iter().skip(limit.offset as usize).take(n).collect()
}

fn random_score_range(rng: &mut Rng) -> ScoreRange {
    let mut bound = || match rng.below(12) {
        0 => f64::NEG_INFINITY,
        1 => f64::INFINITY,
        _ => rng.below(10) as f64 - 1.0,
    };
    let (min, max) = (bound(), bound());
    ScoreRange { min, max, min_exclusive: rng.below(2) == 0, max_exclusive: rng.below(2) == 0 }
}

fn random_lex_bound(rng: &mut Rng) -> LexBound {
    let m = Bytes::from(vec![b'a' + rng.below(6) as u8; 1 + rng.below(2) as usize]);
    match rng.below(6) {
        0 => LexBound::Min,
        1 => LexBound::Max,
        2 | 3 => LexBound::Inclusive(m),
        _ => LexBound::Exclusive(m),
    }
}

/// Random operations on one set, every answer compared with the model. Members share few scores
/// so ties order by member bytes; lex ranges are checked when all scores are equal.
fn run_model(seed: u64, ops: usize, limits: ZsetLimits, equal_scores: bool) {
    let mut rng = Rng(seed);
    let (mut set, mut model) = (SortedSet::new(), Model::default());
    for _ in 0..ops {
        let member = format!("{}", char::from(b'a' + rng.below(6) as u8)).repeat(1 + rng.below(2) as usize)
            + &rng.below(40).to_string();
        let score = if equal_scores { 0.0 } else { rng.below(8) as f64 - 1.0 };
        match rng.below(12) {
            0..=3 => {
                set.insert(member.as_bytes(), score, &limits);
                model.set(member.as_bytes(), score);
            }
            4 => {
                let want = model.0.iter().position(|(_, m)| m == member.as_bytes());
                let want = want.map(|i| model.0.remove(i).0);
                assert_eq!(set.remove(member.as_bytes()), want);
            }
            5 => {
                let want = model.0.iter().position(|(_, m)| m == member.as_bytes());
                let rev = rng.below(2) == 0;
                let want = want.map(|i| (if rev { model.0.len() - 1 - i } else { i }, model.0[i].0));
                assert_eq!(set.rank(member.as_bytes(), rev), want);
            }
            6 => {
                let (start, end) = (rng.below(20) as i64 - 10, rng.below(20) as i64 - 10);
                let rev = rng.below(2) == 0;
                let mut all = model.entries();
                if rev {
                    all.reverse();
                }
                let want = rank_span(start, end, all.len()).map_or(Vec::new(), |(a, b)| all[a..=b].to_vec());
                assert_eq!(set.range_by_rank(start, end, rev), want, "rank {start} {end} rev={rev}");
            }
            7 => {
                let r = random_score_range(&mut rng);
                let (rev, limit) =
                    (rng.below(2) == 0, Limit { offset: rng.below(4) as i64 - 1, count: rng.below(5) as i64 - 1 });
                let inside = model.where_(|_, s| r.contains(s));
                assert_eq!(set.count_by_score(&r), inside.len(), "{r:?}");
                assert_eq!(set.range_by_score(&r, rev, limit), limited(inside, rev, limit), "{r:?} {limit:?}");
            }
            8 if equal_scores => {
                let r = LexRange { min: random_lex_bound(&mut rng), max: random_lex_bound(&mut rng) };
                let (rev, limit) =
                    (rng.below(2) == 0, Limit { offset: rng.below(4) as i64 - 1, count: rng.below(5) as i64 - 1 });
                let inside = model.where_(|m, _| r.gte_min(m) && r.lte_max(m));
                assert_eq!(set.count_by_lex(&r), inside.len(), "{r:?}");
                assert_eq!(set.range_by_lex(&r, rev, limit), limited(inside.clone(), rev, limit), "{r:?} {limit:?}");
                if rng.below(4) == 0 {
                    assert_eq!(set.remove_range_by_lex(&r), inside.len());
                    model.0.retain(|(_, m)| !(r.gte_min(m) && r.lte_max(m)));
                }
            }
            9 => {
                let r = random_score_range(&mut rng);
                let n = model.0.iter().filter(|(s, _)| r.contains(*s)).count();
                assert_eq!(set.remove_range_by_score(&r), n, "{r:?}");
                model.0.retain(|(s, _)| !r.contains(*s));
            }
            10 => {
                let (n, max) = (rng.below(3) as usize, rng.below(2) == 0);
                let mut want = model.entries();
                if max {
                    want.reverse();
                }
                want.truncate(n);
                assert_eq!(set.pop(n, max), want);
                model.0.retain(|(_, m)| !want.iter().any(|(w, _)| w == &m[..]));
            }
            _ => {
                let (start, end) = (rng.below(10) as i64 - 5, rng.below(10) as i64 - 5);
                let all = model.entries();
                let gone = rank_span(start, end, all.len()).map_or(Vec::new(), |(a, b)| all[a..=b].to_vec());
                assert_eq!(set.remove_range_by_rank(start, end), gone.len());
                model.0.retain(|(_, m)| !gone.iter().any(|(g, _)| g == &m[..]));
            }
        }
        assert_eq!(set.len(), model.0.len());
        assert_eq!(set.score(member.as_bytes()), model.0.iter().find(|(_, m)| m == member.as_bytes()).map(|e| e.0));
        if rng.below(50) == 0 {
            assert_eq!(set.entries(), model.entries());
            for (i, e) in model.entries().into_iter().enumerate() {
                assert_eq!(set.at(i), Some(e));
            }
        }
    }
    assert_eq!(set.entries(), model.entries());
}

#[test]
fn packed_form_matches_the_model() {
    let limits = ZsetLimits { max_listpack_entries: 1 << 20, max_listpack_value: 1 << 20 };
    for seed in 1..=8 {
        run_model(seed * 7919, 3000, limits, false);
        run_model(seed * 104_729, 3000, limits, true);
    }
}

#[test]
fn tree_form_matches_the_model() {
    let limits = ZsetLimits { max_listpack_entries: 0, max_listpack_value: 0 };
    for seed in 1..=8 {
        run_model(seed * 7919, 3000, limits, false);
        run_model(seed * 104_729, 3000, limits, true);
    }
}

#[test]
fn converting_mid_run_matches_the_model() {
    for seed in 1..=8 {
        run_model(seed * 31, 3000, ZsetLimits { max_listpack_entries: 20, max_listpack_value: 64 }, false);
    }
}

#[test]
fn converts_past_128_entries_or_64_bytes_and_never_back() {
    let limits = ZsetLimits::default();
    let mut z = SortedSet::new();
    for i in 0..128 {
        z.insert(format!("m{i}").as_bytes(), i as f64, &limits);
    }
    assert_eq!(z.encoding().as_str(), "listpack");
    z.insert(b"m0", 5.0, &limits); // an update is not an addition
    assert_eq!(z.encoding(), Encoding::Listpack);
    z.insert(b"one-more", 0.0, &limits);
    assert_eq!(z.encoding().as_str(), "skiplist");
    z.pop(120, false);
    assert_eq!(z.encoding(), Encoding::Skiplist);

    let mut z = SortedSet::new();
    z.insert(&[b'x'; 64], 1.0, &limits);
    assert_eq!(z.encoding(), Encoding::Listpack);
    z.insert(&[b'y'; 65], 1.0, &limits);
    assert_eq!(z.encoding(), Encoding::Skiplist);

    assert_eq!(SortedSet::for_new_key(65, &limits).encoding(), Encoding::Skiplist);
    assert_eq!(SortedSet::for_new_key(64, &limits).encoding(), Encoding::Listpack);
    let none = ZsetLimits { max_listpack_entries: 0, ..limits };
    assert_eq!(SortedSet::for_new_key(1, &none).encoding(), Encoding::Skiplist);
    let small = vec![(Bytes::from_static(b"a"), 1.0)];
    assert_eq!(SortedSet::from_entries(small, &limits).encoding(), Encoding::Listpack);
}

/// redis-server 7.0.15: `ZADD z -0 a` answers ZSCORE "0" while packed (listpack stores it as the
/// integer 0) and "-0" in the skiplist encoding.
#[test]
fn negative_zero_is_kept_only_by_the_tree() {
    let mut packed = SortedSet::new();
    packed.insert(b"a", -0.0, &ZsetLimits::default());
    assert!(packed.score(b"a").is_some_and(|s| s.is_sign_positive()));
    let none = ZsetLimits { max_listpack_entries: 0, max_listpack_value: 0 };
    let mut tree = SortedSet::for_new_key(1, &none);
    tree.insert(b"a", -0.0, &none);
    assert!(tree.score(b"a").is_some_and(|s| s.is_sign_negative()));
}

#[test]
fn zadd_flags_follow_redis() {
    let l = ZsetLimits::default();
    let f = |s: &str| AddFlags {
        nx: s.contains("nx"),
        xx: s.contains("xx"),
        gt: s.contains("gt"),
        lt: s.contains("lt"),
        ch: s.contains("ch"),
        incr: s.contains("incr"),
    };
    let text = |r: Result<(), crate::error::Error>| r.err().map(|e| e.text());
    assert_eq!(
        text(f("nx xx").validate(1)).as_deref(),
        Some("ERR XX and NX options at the same time are not compatible")
    );
    let gtlt = Some("ERR GT, LT, and/or NX options at the same time are not compatible");
    assert_eq!(text(f("gt lt").validate(1)).as_deref(), gtlt);
    assert_eq!(text(f("nx gt").validate(1)).as_deref(), gtlt);
    assert_eq!(
        text(f("incr").validate(2)).as_deref(),
        Some("ERR INCR option supports a single increment-element pair")
    );
    assert_eq!(text(f("xx gt ch").validate(3)), None);

    let mut z = SortedSet::new();
    assert_eq!(z.add(b"a", 1.0, f(""), &l), Ok(AddOutcome::Added(1.0)));
    assert_eq!(z.add(b"a", 2.0, f("nx"), &l), Ok(AddOutcome::Skipped));
    assert_eq!(z.add(b"b", 2.0, f("xx"), &l), Ok(AddOutcome::Skipped));
    assert_eq!(z.add(b"a", 0.5, f("gt"), &l), Ok(AddOutcome::Skipped));
    assert_eq!(z.add(b"a", 3.0, f("gt"), &l), Ok(AddOutcome::Updated(3.0)));
    assert_eq!(z.add(b"a", 3.0, f("lt"), &l), Ok(AddOutcome::Skipped));
    assert_eq!(z.add(b"a", 3.0, f(""), &l), Ok(AddOutcome::Unchanged(3.0)));
    assert_eq!(z.add(b"a", -1.0, f("incr lt"), &l), Ok(AddOutcome::Updated(2.0)));
    assert_eq!(z.add(b"a", 1.0, f("incr lt"), &l), Ok(AddOutcome::Skipped));
    assert_eq!(z.add(b"c", 1.0, f("gt"), &l), Ok(AddOutcome::Added(1.0))); // GT still adds
    assert_eq!(z.add(b"a", f64::INFINITY, f(""), &l), Ok(AddOutcome::Updated(f64::INFINITY)));
    let nan = z.add(b"a", f64::NEG_INFINITY, f("incr"), &l).map_err(|e| e.text());
    assert_eq!(nan, Err("ERR resulting score is not a number (NaN)".into()));
    assert_eq!(z.score(b"a"), Some(f64::INFINITY));

    let pairs = [(5.0, &b"a"[..]), (1.0, &b"c"[..]), (7.0, &b"d"[..])];
    let sum = z.zadd(&pairs, f("ch"), &l);
    assert_eq!((sum.added, sum.updated, sum.reply_count(false), sum.reply_count(true)), (1, 1, 1, 2));
    assert_eq!(sum.changed[..], [(&b"a"[..], 5.0), (&b"d"[..], 7.0)]);
    let sum = z.zadd(&[(1.0, &b"a"[..])], f("incr nx"), &l);
    assert_eq!((sum.score, sum.changed.len()), (None, 0));
}

#[test]
fn aggregation_follows_redis() {
    let l = ZsetLimits::default();
    let set = |v: &[(&'static str, f64)]| {
        SortedSet::from_entries(v.iter().map(|(m, s)| (Bytes::from_static(m.as_bytes()), *s)).collect(), &l)
    };
    let a = set(&[("x", f64::INFINITY), ("y", 1.0), ("z", 2.0)]);
    let b = set(&[("x", f64::NEG_INFINITY), ("y", 3.0)]);
    let u = combine(SetOp::Union, &[&a, &b], &[], Aggregate::Sum);
    assert_eq!(u, set(&[("x", 0.0), ("z", 2.0), ("y", 4.0)]).entries());
    let i = combine(SetOp::Inter, &[&a, &b], &[2.0, 0.0], Aggregate::Max);
    assert_eq!(i, set(&[("y", 2.0), ("x", f64::INFINITY)]).entries()); // inf*0 = NaN -> 0 < inf
    let i = combine(SetOp::Inter, &[&a, &b], &[1.0, 1.0], Aggregate::Min);
    assert_eq!(i, set(&[("x", f64::NEG_INFINITY), ("y", 1.0)]).entries());
    let d = combine(SetOp::Diff, &[&a, &b], &[], Aggregate::Sum);
    assert_eq!(d, set(&[("z", 2.0)]).entries());
    // A -0 stays in the reply (Redis's skiplist result) and becomes 0 once stored packed.
    let neg = combine(SetOp::Union, &[&set(&[("n", -1.0)])], &[0.0], Aggregate::Sum);
    assert!(neg[0].1 == 0.0 && neg[0].1.is_sign_negative());
    assert!(SortedSet::from_entries(neg, &l).score(b"n").is_some_and(|s| s.is_sign_positive()));
    assert_eq!(inter_card(&[&a, &b], 0), 2);
    assert_eq!(inter_card(&[&a, &b], 1), 1);
    assert_eq!(Aggregate::parse(b"MaX"), Some(Aggregate::Max));
    assert_eq!(Aggregate::parse(b"avg"), None);
}

/// Lex ranges over unequal scores walk the score order as listpack's `zzl*LexRange` do. Each line
/// checked against redis-server 7.0.15 after `ZADD q 1 c 2 a 3 d 4 b 5 cc` (listpack).
#[test]
fn lex_ranges_over_unequal_scores_walk_as_listpack() {
    let l = ZsetLimits::default();
    let fresh = || {
        let pairs = [(1.0, "c"), (2.0, "a"), (3.0, "d"), (4.0, "b"), (5.0, "cc")];
        let mut z = SortedSet::new();
        for (s, m) in pairs {
            z.insert(m.as_bytes(), s, &l);
        }
        z
    };
    let lex = |min: &'static str, max: &'static str| LexRange {
        min: LexBound::parse(&Bytes::from_static(min.as_bytes())).expect("min"),
        max: LexBound::parse(&Bytes::from_static(max.as_bytes())).expect("max"),
    };
    let names = |v: Vec<(Bytes, f64)>| {
        v.iter().map(|(m, _)| String::from_utf8_lossy(m).into_owned()).collect::<Vec<_>>().join(" ")
    };
    let z = fresh();
    let lim = |offset, count| Limit { offset, count };
    assert_eq!(names(z.range_by_lex(&lex("-", "+"), false, Limit::NONE)), "c a d b cc");
    assert_eq!(names(z.range_by_lex(&lex("[b", "[c"), false, Limit::NONE)), "c a");
    assert_eq!(names(z.range_by_lex(&lex("[a", "[c"), false, Limit::NONE)), "c a");
    assert_eq!(names(z.range_by_lex(&lex("(a", "+"), false, Limit::NONE)), "c a d b cc");
    assert_eq!(names(z.range_by_lex(&lex("[b", "+"), false, lim(1, 5))), "a d b cc");
    assert_eq!(names(z.range_by_lex(&lex("[a", "[d"), false, lim(1, 5))), "a d b cc");
    assert_eq!(names(z.range_by_lex(&lex("-", "+"), true, Limit::NONE)), "cc b d a c");
    assert_eq!(names(z.range_by_lex(&lex("[a", "[c"), true, Limit::NONE)), "b d a c");
    assert_eq!(names(z.range_by_lex(&lex("[b", "[d"), true, Limit::NONE)), "cc b d");
    assert_eq!(names(z.range_by_lex(&lex("-", "[c"), true, lim(1, 3))), "d a c");
    assert_eq!(z.count_by_lex(&lex("[a", "[c")), 2);
    assert_eq!(z.count_by_lex(&lex("[b", "[d")), 5);
    assert_eq!(z.count_by_lex(&lex("-", "[c")), 2);
    let mut z = fresh();
    assert_eq!(z.remove_range_by_lex(&lex("[a", "[c")), 2);
    assert_eq!(names(z.entries()), "d b cc");
}

/// A large tree: ranks, ranges and scores stay right through inserts, updates and a mass removal
/// (which compacts the node storage).
#[test]
fn large_tree_survives_mass_removal_and_compaction() {
    let l = ZsetLimits::default();
    let mut rng = Rng(42);
    let (mut z, mut model) = (SortedSet::new(), Model::default());
    for i in 0..3000 {
        let (m, s) = (format!("member:{}", rng.below(2500)), (rng.below(100) as f64) / 4.0);
        z.insert(m.as_bytes(), s, &l);
        if i % 7 == 0 {
            model.0.retain(|(_, x)| x != m.as_bytes());
        }
        model.set(m.as_bytes(), s);
        if i % 7 == 0 {
            assert_eq!(z.rank(m.as_bytes(), false).map(|r| r.0), model.0.iter().position(|(_, x)| x == m.as_bytes()));
        }
    }
    assert_eq!(z.encoding(), Encoding::Skiplist);
    assert_eq!(z.entries(), model.entries());
    let before = z.memory_bytes();
    let n = model.0.len();
    assert_eq!(z.remove_range_by_rank(0, (n - 100) as i64), n - 99);
    model.0.drain(..n - 99);
    assert!(z.memory_bytes() * 4 < before, "{} vs {before}", z.memory_bytes());
    assert_eq!(z.entries(), model.entries());
    for (i, (m, s)) in model.entries().into_iter().enumerate() {
        assert_eq!(z.rank(&m, true), Some((model.0.len() - 1 - i, s)));
    }
    let r = ScoreRange { min: 20.0, min_exclusive: true, max: f64::INFINITY, max_exclusive: false };
    assert_eq!(z.range_by_score(&r, true, Limit::NONE), limited(model.where_(|_, s| r.contains(s)), true, Limit::NONE));
}

/// ZPOPMIN's and ZPOPMAX's pattern on a three-level tree: one entry at a time from either end
/// (`Tree::remove_at`'s leftmost and rightmost descents, the parents' last keys and the merges
/// they cause), every invariant checked after each pop, until the tree is empty.
#[test]
fn btree_pops_from_both_ends_keep_its_invariants() {
    let mut t = tree::Tree::default();
    let mut model = Model::default();
    let mut rng = Rng(0x5EED_1234_5678_9ABD);
    for i in 0..5000u64 {
        let (m, s) = (format!("e{i}"), rng.below(3000) as f64);
        t.insert(m.as_bytes(), s);
        model.set(m.as_bytes(), s);
    }
    t.check();
    let mut step = 0;
    while !model.0.is_empty() {
        let (front, count) = (step % 3 != 2, 1 + usize::from(step % 7 == 0));
        let n = model.0.len();
        let count = count.min(n);
        let rank = if front { 0 } else { n - count };
        let mut got = Vec::new();
        t.remove_ranks(rank, count, |m, s| got.push((Bytes::from(m.to_vec()), s)));
        let want: Vec<_> = model.0.drain(rank..rank + count).map(|(s, m)| (Bytes::from(m), s)).collect();
        assert_eq!(got, want, "step {step}");
        assert_eq!(t.len(), model.0.len());
        t.check();
        step += 1;
    }
}

/// The B+tree alone, against the model, checking every structural invariant after each step:
/// splits, merges and refills (many members, few distinct scores so ties reach the member order),
/// rank removals by unlinking and by rebuilding, walks both ways from every kind of position.
#[test]
fn btree_keeps_its_invariants_through_random_operations() {
    for seed in [1u64, 7, 99] {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let (mut t, mut model) = (tree::Tree::default(), Model::default());
        for step in 0..6000 {
            let m = format!("m{}", rng.below(1500));
            match rng.below(10) {
                0..=4 => {
                    let s = rng.below(40) as f64 - 20.0;
                    let old = model.0.iter().find(|(_, x)| x == m.as_bytes()).map(|e| e.0);
                    assert_eq!(t.set_score(m.as_bytes(), s), old);
                    model.set(m.as_bytes(), s);
                }
                5..=6 => {
                    let old = model.0.iter().position(|(_, x)| x == m.as_bytes());
                    let old = old.map(|i| model.0.remove(i).0);
                    assert_eq!(t.remove(m.as_bytes()), old);
                }
                7 if !model.0.is_empty() => {
                    let n = model.0.len();
                    let (rank, count) = (
                        rng.below(n as u64) as usize,
                        1 + rng.below(if step % 50 == 0 { n as u64 } else { 4 }) as usize,
                    );
                    let mut got = Vec::new();
                    t.remove_ranks(rank, count, |m, s| got.push((Bytes::from(m.to_vec()), s)));
                    let want: Vec<_> =
                        model.0.drain(rank..(rank + count).min(n)).map(|(s, m)| (Bytes::from(m), s)).collect();
                    assert_eq!(got, want);
                }
                _ if !model.0.is_empty() => {
                    let n = model.0.len();
                    let start = rng.below(n as u64) as usize;
                    let rev = rng.below(2) == 0;
                    let mut got = Vec::new();
                    t.walk(start, rev, |m, s| {
                        got.push((Bytes::from(m.to_vec()), s));
                        got.len() < 70
                    });
                    let all = model.entries();
                    let want: Vec<_> = if rev {
                        all[..=start].iter().rev().take(70).cloned().collect()
                    } else {
                        all[start..].iter().take(70).cloned().collect()
                    };
                    assert_eq!(got, want);
                    let (m, s) = &all[start];
                    assert_eq!(t.at(start), Some((&m[..], *s)));
                    assert_eq!(t.find(m), Some((start, *s)));
                    assert_eq!(t.count_before(|x, _| x < *s), model.0.partition_point(|(x, _)| x < s));
                }
                _ => {}
            }
            assert_eq!(t.len(), model.0.len());
            if step % 10 == 0 {
                t.check();
            }
        }
        t.check();
        assert_eq!(t.at(t.len()), None);
    }
}

/// The packed form codes integral scores as gaps from the previous entry's: inserts, removals and
/// pops in the middle re-code the entry after them. Scores of every kind (small and near-2^53
/// integers, fractions, infinities, huge doubles) against a sorted model.
#[test]
fn packed_score_gaps_survive_edits_anywhere() {
    let limits = ZsetLimits { max_listpack_entries: 1 << 20, max_listpack_value: 1 << 20 };
    let big = 9_007_199_254_740_991.0; // 2^53 - 1, the largest gap-coded magnitude
    let scores = [
        0.0,
        1.0,
        2.0,
        -1.0,
        100_009.0,
        big,
        -big,
        big + 1.0,
        -big - 1.0,
        0.5,
        -2.25,
        1e300,
        -1e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
        4_503_599_627_370_496.5,
        3.0,
        1_000_000.0,
    ];
    for seed in 1..=6u64 {
        let mut rng = Rng(seed * 31_337);
        let (mut set, mut model) = (SortedSet::new(), Model::default());
        for _ in 0..2000 {
            let member = format!("m{}", rng.below(24));
            match rng.below(8) {
                0..=3 => {
                    let score = scores[rng.below(scores.len() as u64) as usize];
                    set.insert(member.as_bytes(), score, &limits);
                    model.set(member.as_bytes(), score);
                }
                4 => {
                    let want = model.0.iter().position(|(_, m)| m == member.as_bytes());
                    assert_eq!(set.remove(member.as_bytes()), want.map(|i| model.0.remove(i).0));
                }
                5 => {
                    let n = rng.below(3) as usize;
                    let max = rng.below(2) == 0;
                    let mut want = model.entries();
                    let popped: Vec<_> = if max {
                        want.split_off(want.len().saturating_sub(n)).into_iter().rev().collect()
                    } else {
                        let rest = want.split_off(n.min(want.len()));
                        std::mem::replace(&mut want, rest)
                    };
                    assert_eq!(set.pop(n, max), popped);
                    model.0 = want.iter().map(|(m, s)| (*s, m.to_vec())).collect();
                }
                _ => {
                    let (a, b) = (rng.below(6) as i64, rng.below(6) as i64 + 3);
                    let removed = set.remove_range_by_rank(a, b);
                    let n = model.0.len();
                    let want = rank_span(a, b, n).map_or(0, |(x, y)| {
                        model.0.drain(x..=y);
                        y + 1 - x
                    });
                    assert_eq!(removed, want);
                }
            }
            assert!(set.encoding() == super::Encoding::Listpack);
            assert_eq!(set.range_by_rank(0, -1, false), model.entries(), "seed {seed}");
        }
    }
}
