//! What HRANDFIELD/SRANDMEMBER and HSCAN/SSCAN share: random picks with Redis's count rules, and
//! a cursor over a collection's elements. Mirrors the `*RandomWithCount` and `scanGenericCommand`
//! parts of Redis's `t_hash.c`/`t_set.c`/`db.c`.

use bytes::Bytes;

use super::keys::{ScanOpts, parse_cursor, parse_scan_options};
use crate::db::hash_key;
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::util::glob_match;

/// The most elements a negative-count random reply may hold. Redis streams any count up to
/// `LONG_MAX`; we build replies in memory, so a larger count is refused (see README).
pub const MAX_RANDOM_REPLY: u64 = 1 << 22;

/// A small xorshift generator seeded per call: picks need to be unpredictable, not secure.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from this thread's stream (seeded once per thread from the OS's
    /// randomness and the clock): one step of splitmix64, no clock read or hashing per command
    /// (SPOP and SRANDMEMBER make one per call).
    pub fn new() -> Rng {
        thread_local! {
            static STREAM: std::cell::Cell<u64> = std::cell::Cell::new({
                use std::hash::BuildHasher;
                std::collections::hash_map::RandomState::new().hash_one(crate::util::now_ms())
            });
        }
        let mut z = STREAM.with(|s| {
            let x = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            s.set(x);
            x
        });
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// A uniform index below `n` (> 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

/// Parse the count of HRANDFIELD/SRANDMEMBER: an integer in -LONG_MAX..=LONG_MAX
/// (`getRangeLongFromObjectOrReply`).
pub fn parse_random_count(arg: &[u8]) -> Result<i64> {
    let n = super::arg_i64(arg)?;
    if n == i64::MIN {
        return Err(Error::err(
            "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    Ok(n)
}

/// The indices (below `len`) a random-with-count reply holds: `count` >= 0 distinct ones (all of
/// them, in order, when `count` >= `len`), or `-count` picks with repetition.
pub fn random_indices(len: usize, count: i64) -> Result<Vec<usize>> {
    let mut rng = Rng::new();
    if count < 0 {
        let n = count.unsigned_abs();
        if n > MAX_RANDOM_REPLY {
            return Err(Error::err("value is out of range"));
        }
        return Ok((0..n).map(|_| rng.below(len)).collect());
    }
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let mut all: Vec<usize> = (0..len).collect();
    if count >= len {
        return Ok(all);
    }
    // A partial Fisher-Yates shuffle: the first `count` are a uniform distinct sample.
    for i in 0..count {
        let j = i + rng.below(len - i);
        all.swap(i, j);
    }
    all.truncate(count);
    Ok(all)
}

/// Parse HSCAN/SSCAN's cursor (before the key is looked up, as Redis does).
pub fn scan_cursor(arg: &[u8]) -> Result<u64> {
    parse_cursor(arg)
}

/// Parse HSCAN/SSCAN's options (after the key's type is checked): MATCH and COUNT; TYPE is a
/// syntax error on a collection.
pub fn scan_options(args: &[Bytes]) -> Result<ScanOpts> {
    parse_scan_options(args, false)
}

/// One page of a scan over a collection's elements (`names[i]` is element i's name: a field or a
/// member): the indices of the wanted elements among the `count` smallest positions at or after
/// the cursor's (every element of the last such position included), and the next cursor (0 at the
/// end). Positions are those of SCAN (see `keys::scan`), so the same guarantees hold.
pub fn scan_page<N: AsRef<[u8]>>(names: &[N], cursor: u64, opts: &ScanOpts) -> (u64, Vec<usize>) {
    let from = cursor.saturating_sub(1);
    let mut order: Vec<(u64, usize)> =
        names.iter().enumerate().map(|(i, n)| (hash_key(n.as_ref()) >> 1, i)).filter(|&(p, _)| p >= from).collect();
    order.sort_unstable();
    // As SCAN (see `keys::scan`): a full scan takes at most about 32 calls whatever COUNT says,
    // so that it stays O(n log n) overall instead of one sort of the collection per COUNT items.
    let count = opts.count.max(names.len() / 32).max(1);
    let mut end = count.min(order.len());
    while end > 0 && end < order.len() && order[end].0 == order[end - 1].0 {
        end += 1;
    }
    // Positions are < 2^63, so `last + 2` cannot overflow.
    let next = if end < order.len() { order[end - 1].0 + 2 } else { 0 };
    let wanted = order[..end]
        .iter()
        .map(|&(_, i)| i)
        .filter(|&i| opts.pattern.as_ref().is_none_or(|p| glob_match(p, names[i].as_ref(), false)))
        .collect();
    (next, wanted)
}

/// A scan of a collection in a small encoding (listpack, intset): Redis answers every element in one
/// call, in the collection's order, with cursor 0; only MATCH filters. The indices of the wanted
/// elements.
pub fn scan_all<N: AsRef<[u8]>>(names: &[N], opts: &ScanOpts) -> Vec<usize> {
    (0..names.len())
        .filter(|&i| opts.pattern.as_ref().is_none_or(|p| glob_match(p, names[i].as_ref(), false)))
        .collect()
}

/// A scan reply: the next cursor and the elements.
pub fn scan_reply(next: u64, items: Vec<Frame>) -> Frame {
    Frame::Array(vec![Frame::Bulk(Bytes::from(next.to_string())), Frame::Array(items)])
}
