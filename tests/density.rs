//! Where each byte of a key goes (see `db::block` and `db::map`), checked with the counting
//! allocator the server installs: inserting N keys adds what the design says.
//!
//! Per key, in its block: the access word (4), the tag (1), the key's length (1) and bytes, the
//! expiry (8) only when set, the value (an inline string: length (1) + bytes; an integer: an
//! 8-aligned cell), rounded up to 4; and in the block's header a fingerprint (1) and an offset (2).
//! Per block (~12-24 keys): its 16-byte header (the collector's link, size, count, flags) and
//! padding; and per bucket its entry in flurry's directory: the node (`Linked<BinEntry>`, 112
//! bytes), the value (`Linked<Slot>`: seize's link and the block pointer, 16) and flurry's table slot
//! (8 bytes at a load of at most 0.75).

use flurrydb::db::{Entry, KeyMap};
use flurrydb::memory::{CountingAllocator, allocated_bytes};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const N: usize = 200_000;

fn key(i: usize) -> Vec<u8> {
    format!("key:{i:010}").into_bytes()
}

/// Fill a map with N keys made by `entry`; (bytes allocated per key, blocks, block bytes).
fn fill(entry: impl Fn(usize) -> Entry) -> (f64, usize, usize) {
    let map = KeyMap::new();
    let before = allocated_bytes().expect("the counting allocator is installed");
    for i in 0..N {
        map.insert(&key(i), entry(i));
    }
    // Replaced blocks are retired to flurry's collector and freed in batches of 8: a few stay counted.
    let after = allocated_bytes().expect("installed");
    let (blocks, block_bytes) = map.block_stats();
    assert_eq!(map.len(), N);
    let per_key = (after as f64 - before as f64) / N as f64;
    drop(map);
    (per_key, blocks, block_bytes)
}

/// The bytes the design gives N keys whose entries each take `entry` bytes (multiples of 4: the
/// least and the most, when padding before an 8-aligned field depends on where the entry starts)
/// in `blocks` blocks: [least, most] (header padding varies with the count per block).
fn design((least_entry, most_entry): (usize, usize), blocks: usize) -> (usize, usize) {
    let least = N * (least_entry + 3) + blocks * 16;
    // Up to 1 byte to align the offsets, 3 to align the first entry, 7 to round the block to 8.
    (least, N * (most_entry + 3) + blocks * (16 + 11))
}

fn check(name: &str, entry: (usize, usize), make: impl Fn(usize) -> Entry) -> f64 {
    let (per_key, blocks, block_bytes) = fill(make);
    let (least, most) = design(entry, blocks);
    assert!((least..=most).contains(&block_bytes), "{name}: blocks hold {block_bytes} bytes, design {least}..={most}");
    let keys_per_block = N as f64 / blocks as f64;
    assert!((8.0..=32.0).contains(&keys_per_block), "{name}: {keys_per_block:.1} keys per block");
    // Everything else is the directory, per bucket (= per block): flurry's node (up to 112), the
    // slot value (`Linked<Slot>`: seize's link and the pointer, 16) and flurry's table (8 bytes a
    // bin at a load between 0.375 and 0.75: 11-21 per bucket), plus nodes and blocks retired by
    // growth and not yet reclaimed: under 192 bytes per block.
    let overhead = per_key - block_bytes as f64 / N as f64;
    let per_block = overhead * keys_per_block;
    assert!(per_block < 192.0, "{name}: {overhead:.1} bytes per key beyond the blocks ({per_block:.0} per block)");
    eprintln!(
        "{name}: {per_key:.1} B/key allocated ({:.1} in blocks, {keys_per_block:.1} keys per block, {per_block:.0} B \
         of directory per block)",
        block_bytes as f64 / N as f64
    );
    per_key
}

#[test]
fn inserting_keys_adds_the_bytes_the_design_says() {
    // 4 + 1 + (1 + 14) + (1 + 16) = 37 -> 40.
    let s16 = check("16-byte values", (40, 40), |_| Entry::string_copied(&[b'v'; 16], 0));
    assert!(s16 < 60.0, "{s16:.1} B/key");
    // ... + 8 (expiry) = 45 -> 48.
    let ttl = check("16-byte values with a TTL", (48, 48), |_| Entry::string_copied(&[b'v'; 16], 4_000_000_000_000));
    assert!(ttl < 68.0, "{ttl:.1} B/key");
    // 4 + 1 + (1 + 14) + (1 + 100) = 121 -> 124.
    let s100 = check("100-byte values", (124, 124), |_| Entry::string_copied(&[b'v'; 100], 0));
    assert!(s100 < 145.0, "{s100:.1} B/key");
    // 4 + 1 + (1 + 14) = 20, then the cell, 8-aligned in the block: 20 + 8 = 28 when the entry
    // starts at 4 mod 8, 24 + 8 = 32 when at 0 mod 8.
    let int = check("integers", (28, 32), |i| Entry::int(i as i64 * 7919, 0));
    assert!(int < 52.0, "{int:.1} B/key");
}
