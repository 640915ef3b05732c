//! What a small collection object costs (the cell and its packed elements, not the keyspace
//! entry), checked with the counting allocator the server installs, for the data of
//! `benches/vs_redis.py --only collections`: built through the same calls HSET, SADD, ZADD and
//! RPUSH make on a new key.

use bytes::Bytes;
use flurrydb::db::compact::{HashLimits, SetLimits};
use flurrydb::db::zset::SortedSet;
use flurrydb::db::zset::{ZsetLimits, add::AddFlags};
use flurrydb::db::{Entry, Hash, List, Set};
use flurrydb::memory::{CountingAllocator, allocated_bytes};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const N: usize = 20_000;

/// Bytes per object that other threads of the test process (the harness) may allocate meanwhile:
/// under 1, far below a malloc size class (16).
const SLACK: f64 = 1.0;

/// Bytes allocated per object made by `make` (the entries themselves live in a pre-sized Vec).
fn per_object(make: impl Fn(usize) -> Entry) -> f64 {
    let mut held = Vec::with_capacity(N);
    let before = allocated_bytes().expect("the counting allocator is installed");
    for i in 0..N {
        held.push(make(i));
    }
    let after = allocated_bytes().expect("installed");
    drop(held);
    (after as f64 - before as f64) / N as f64
}

fn hash(i: usize) -> Entry {
    let mut h = Hash::new();
    for j in 0..10 {
        h.set(
            format!("field:{j}").as_bytes(),
            format!("value:{:06}", (i + j) % 1_000_000).as_bytes(),
            &HashLimits::default(),
        );
    }
    Entry::collection(h, 0)
}

fn int_set(i: usize) -> Entry {
    let members: Vec<String> = (0..10).map(|j| format!("{}", i * 10 + j)).collect();
    let mut s = Set::for_first(members[0].as_bytes());
    for m in &members {
        s.insert(m.as_bytes(), &SetLimits::default());
    }
    Entry::collection(s, 0)
}

fn zset(i: usize) -> Entry {
    let pairs: Vec<(f64, Bytes)> = (0..10).map(|j| ((i + j) as f64, Bytes::from(format!("member:{j}")))).collect();
    let limits = ZsetLimits::default();
    let mut z = SortedSet::for_new_key(pairs[0].1.len(), &limits);
    let pairs: Vec<(f64, &[u8])> = pairs.iter().map(|(s, m)| (*s, &m[..])).collect();
    z.zadd(&pairs, AddFlags::default(), &limits);
    Entry::collection(z, 0)
}

fn list(_: usize) -> Entry {
    let mut l = List::new(-2);
    for j in 0..10 {
        l.push_back(format!("item:{j}"));
    }
    l.shrink();
    Entry::collection(l, 0)
}

#[test]
fn small_collections_cost_what_the_design_says() {
    let h = per_object(hash);
    let s = per_object(int_set);
    let z = per_object(zset);
    let l = per_object(list);
    eprintln!("hash {h:.1} B, set of integers {s:.1} B, sorted set {z:.1} B, list {l:.1} B");
    // The cell (Arc counts, lock, `dead`, a 16-byte packed handle: 48 bytes, a 64-byte chunk)
    // and the exact buffer: 10 fields of 1 + 7 bytes and values of 1 + 12 (210, a 224-byte chunk).
    assert!(h < 288.0 + SLACK, "hash {h}");
    // One allocation: the cell with its 28-byte set, the 10 members delta-coded inline in 12
    // bytes (52 bytes, a 64-byte chunk), as Redis's robj (16) + intset (8 + 40).
    assert!(s < 64.0 + SLACK, "set of integers {s}");
    // 64 + 10 entries of 1 + 8 bytes of member and a score coded as the gap from the previous
    // one (3 bytes for the first, 1 after: 102 bytes, a 112-byte chunk).
    assert!(z < 176.0 + SLACK, "sorted set {z}");
    // The cell with its one node inline (80 bytes, a 96-byte chunk) and the node's 10 entries of
    // 1 + 6 + 1 bytes (80, a 96-byte chunk).
    assert!(l < 192.0 + SLACK, "list {l}");
}
