//! Micro-benchmarks of the sorted set core ([`flurrydb::db::zset`]), below the commands: ZADD
//! (a new member, a score update), ZRANGE by rank and by score, ZRANK and ZSCORE on sets of 1k,
//! 10k and 100k members, to show the O(log n) growth; then the bytes one member costs.
//!
//! Run: `cargo bench --bench zset` (the memory table is printed first). Harness: divan, as
//! `benches/micro.rs`. Members are `member:<12 digits>`, scores random integers below 10^6 (as
//! `redis-benchmark`'s ZADD test), so the set is in the tree (`skiplist`) form from 129 members on.

use std::cell::Cell;
use std::time::Duration;

use divan::Bencher;
use flurrydb::db::zset::{Limit, ScoreRange, SortedSet, ZsetLimits};

/// Counts live heap bytes, for the memory table.
#[global_allocator]
static ALLOC: flurrydb::memory::CountingAllocator = flurrydb::memory::CountingAllocator;

const SIZES: &[usize] = &[1_000, 10_000, 100_000];

fn main() {
    print_memory();
    divan::Divan::default().min_time(Duration::from_millis(300)).config_with_args().main();
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) };
}

fn random() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    })
}

fn member(i: usize) -> Vec<u8> {
    format!("member:{i:012}").into_bytes()
}

/// A set of `n` members `member:0..n` with random scores.
fn build(n: usize) -> SortedSet {
    let limits = ZsetLimits::default();
    let mut z = SortedSet::new();
    for i in 0..n {
        z.insert(&member(i), (random() % 1_000_000) as f64, &limits);
    }
    z
}

/// ZADD of a member not yet in the set (removed again outside the timing's mean: the pair is
/// timed, halve it for one insert).
#[divan::bench(args = SIZES)]
fn zadd_new_then_zrem(bencher: Bencher, n: usize) {
    let (mut z, limits) = (build(n), ZsetLimits::default());
    let fresh = member(n + 1);
    bencher.bench_local(|| {
        z.insert(&fresh, (random() % 1_000_000) as f64, &limits);
        z.remove(&fresh)
    });
}

/// ZADD changing an existing member's score (delete and reinsert in the order).
#[divan::bench(args = SIZES)]
fn zadd_update_score(bencher: Bencher, n: usize) {
    let (mut z, limits) = (build(n), ZsetLimits::default());
    let members: Vec<Vec<u8>> = (0..n).map(member).collect();
    bencher.bench_local(|| {
        let m = &members[random() as usize % n];
        z.insert(m, (random() % 1_000_000) as f64, &limits)
    });
}

/// ZRANGE key start start+9 WITHSCORES at a random rank.
#[divan::bench(args = SIZES)]
fn zrange_rank_10(bencher: Bencher, n: usize) {
    let z = build(n);
    bencher.bench_local(|| {
        let start = (random() as usize % (n - 10)) as i64;
        z.range_by_rank(start, start + 9, false)
    });
}

/// ZRANGE key min +inf BYSCORE LIMIT 0 10 from a random score.
#[divan::bench(args = SIZES)]
fn zrange_score_limit_10(bencher: Bencher, n: usize) {
    let z = build(n);
    bencher.bench_local(|| {
        let min = (random() % 1_000_000) as f64;
        let r = ScoreRange { min, ..ScoreRange::ALL };
        z.range_by_score(&r, false, Limit { offset: 0, count: 10 })
    });
}

/// ZRANK of a random member.
#[divan::bench(args = SIZES)]
fn zrank(bencher: Bencher, n: usize) {
    let z = build(n);
    let members: Vec<Vec<u8>> = (0..n).map(member).collect();
    bencher.bench_local(|| z.rank(&members[random() as usize % n], false));
}

/// ZSCORE of a random member (the hash index: flat in n).
#[divan::bench(args = SIZES)]
fn zscore(bencher: Bencher, n: usize) {
    let z = build(n);
    let members: Vec<Vec<u8>> = (0..n).map(member).collect();
    bencher.bench_local(|| z.score(&members[random() as usize % n]));
}

/// Live heap bytes per member: one 100k-member set, and 10k sets of 10 (the packed form).
fn print_memory() {
    let live = || flurrydb::memory::allocated_bytes().unwrap_or(0);
    let base = live();
    let z = build(100_000);
    let big = live() - base;
    println!("memory: 100k-member set: {} B/member (estimate {} B/member)", big / 100_000, z.memory_bytes() / 100_000);
    drop(z);
    let base = live();
    let sets: Vec<SortedSet> = (0..10_000).map(|_| build(10)).collect();
    let small = live() - base;
    let estimate: usize = sets.iter().map(SortedSet::memory_bytes).sum();
    println!("memory: 10-member sets: {} B/set (estimate {} B/set)", small / 10_000, estimate / 10_000);
}
