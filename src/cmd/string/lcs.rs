//! `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`: the longest common subsequence
//! of two strings. Mirrors `lcsCommand` in Redis's `t_string.c`: the same dynamic-programming table
//! (so the same memory guard against `proto-max-bulk-len`), the same backward walk, hence the same
//! ranges in the same order.

use bytes::Bytes;

use crate::cmd::{Ctx, arg_i64, is_opt};
use crate::error::{Error, Result};
use crate::resp::Frame;

/// What LCS was asked to reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct LcsOptions {
    len: bool,
    idx: bool,
    with_match_len: bool,
    /// Ranges shorter than this are left out of the IDX reply (0: none left out).
    min_match_len: i64,
}

/// Parse the options after the two keys, as `lcsCommand` does (a negative MINMATCHLEN is 0).
fn parse_options(args: &[Bytes]) -> Result<LcsOptions> {
    let mut o = LcsOptions::default();
    let mut j = 0;
    while j < args.len() {
        let opt = &args[j];
        if is_opt(opt, "idx") {
            o.idx = true;
        } else if is_opt(opt, "len") {
            o.len = true;
        } else if is_opt(opt, "withmatchlen") {
            o.with_match_len = true;
        } else if is_opt(opt, "minmatchlen") && j + 1 < args.len() {
            o.min_match_len = arg_i64(&args[j + 1])?.max(0);
            j += 1;
        } else {
            return Err(Error::Syntax);
        }
        j += 1;
    }
    if o.len && o.idx {
        return Err(Error::err("If you want both the length and indexes, please just use IDX."));
    }
    Ok(o)
}

/// The string at `key` ("" when missing), or Redis's LCS type error.
fn string_or_empty(ctx: &Ctx, key: &[u8]) -> Result<Bytes> {
    let v = ctx.read(key, |e| e.map(|e| e.string_bytes()));
    ctx.count_lookup(key, v.is_some());
    match v {
        None => Ok(Bytes::new()),
        Some(Some(s)) => Ok(s),
        Some(None) => Err(Error::err("The specified keys must contain string values")),
    }
}

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`
pub fn lcs(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    // Redis checks both types before it reads any option.
    let a = string_or_empty(ctx, &argv[1]);
    let b = string_or_empty(ctx, &argv[2]);
    let (a, b) = (a?, b?);
    let o = parse_options(&argv[3..])?;
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        return Err(Error::err("String too long for LCS"));
    }
    let table = LcsTable::build(&a, &b, ctx.shared.conn_limits.load().max_bulk)?;
    let total = table.len_at(a.len(), b.len()) as i64;
    if o.len && !o.idx {
        return Ok(Frame::Integer(total));
    }
    let (text, ranges) = table.walk(&a, &b, o);
    Ok(if o.idx {
        Frame::Map(vec![(Frame::bulk(b"matches"), Frame::Array(ranges)), (Frame::bulk(b"len"), Frame::Integer(total))])
    } else {
        Frame::Bulk(Bytes::from(text))
    })
}

/// `LCS[i, j]`: the length of the LCS of `a[..i]` and `b[..j]`, row-major over `(alen+1)*(blen+1)`.
struct LcsTable {
    cells: Vec<u32>,
    width: usize,
}

impl LcsTable {
    /// Fill the table, refusing (as Redis) one whose bytes would exceed `max_bytes`
    /// (`proto-max-bulk-len`), or that cannot be allocated.
    fn build(a: &[u8], b: &[u8], max_bytes: usize) -> Result<LcsTable> {
        let width = b.len() + 1;
        let cells_n = (a.len() as u128 + 1) * width as u128;
        let bytes = cells_n * size_of::<u32>() as u128;
        if bytes > max_bytes as u128 {
            return Err(Error::err("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"));
        }
        let cells_n = cells_n as usize;
        let mut cells = Vec::new();
        if cells.try_reserve_exact(cells_n).is_err() {
            return Err(Error::err("Insufficient memory, failed allocating transient memory for LCS"));
        }
        cells.resize(cells_n, 0u32);
        for i in 1..=a.len() {
            let (prev, row) = cells[(i - 1) * width..(i + 1) * width].split_at_mut(width);
            for j in 1..=b.len() {
                row[j] = if a[i - 1] == b[j - 1] { prev[j - 1] + 1 } else { prev[j].max(row[j - 1]) };
            }
        }
        Ok(LcsTable { cells, width })
    }

    fn len_at(&self, i: usize, j: usize) -> u32 {
        self.cells[j + i * self.width]
    }

    /// Walk back from the bottom-right corner as Redis does: the LCS text and, when `o.idx`, the
    /// IDX ranges (`[[a_start, a_end], [b_start, b_end]]` plus the length with WITHMATCHLEN), from
    /// the end of the strings toward their start.
    fn walk(&self, a: &[u8], b: &[u8], o: LcsOptions) -> (Vec<u8>, Vec<Frame>) {
        let unset = a.len(); // `arange_start == alen` means "no range open".
        let mut idx = self.len_at(a.len(), b.len()) as usize;
        let mut text = vec![0u8; idx];
        let mut ranges = Vec::new();
        let (mut a_start, mut a_end, mut b_start, mut b_end) = (unset, 0, 0, 0);
        let (mut i, mut j) = (a.len(), b.len());
        while i > 0 && j > 0 {
            let mut emit = false;
            if a[i - 1] == b[j - 1] {
                text[idx - 1] = a[i - 1];
                if a_start == unset {
                    (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
                } else if a_start == i && b_start == j {
                    // Contiguous: extend the open range backward.
                    a_start -= 1;
                    b_start -= 1;
                } else {
                    emit = true;
                }
                // A range that reached the first byte of either string is complete.
                emit |= a_start == 0 || b_start == 0;
                idx -= 1;
                i -= 1;
                j -= 1;
            } else {
                if self.len_at(i - 1, j) > self.len_at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                emit = a_start != unset;
            }
            if emit {
                let match_len = a_end.wrapping_sub(a_start).wrapping_add(1);
                if o.idx && (o.min_match_len == 0 || match_len as i64 >= o.min_match_len) {
                    let pair =
                        |s: usize, e: usize| Frame::Array(vec![Frame::Integer(s as i64), Frame::Integer(e as i64)]);
                    let mut range = vec![pair(a_start, a_end), pair(b_start, b_end)];
                    if o.with_match_len {
                        range.push(Frame::Integer(match_len as i64));
                    }
                    ranges.push(Frame::Array(range));
                }
                a_start = unset;
            }
        }
        (text, ranges)
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::{Harness, arr, bulk, err, int};
    use crate::resp::Frame;

    fn range(a: (i64, i64), b: (i64, i64), len: Option<i64>) -> Frame {
        let mut v = vec![arr(vec![int(a.0), int(a.1)]), arr(vec![int(b.0), int(b.1)])];
        v.extend(len.map(int));
        arr(v)
    }

    fn idx_reply(matches: Vec<Frame>, len: i64) -> Frame {
        Frame::Map(vec![(bulk("matches"), arr(matches)), (bulk("len"), int(len))])
    }

    fn harness() -> Harness {
        let mut h = Harness::new();
        h.run(&["MSET", "a", "ohmytext", "b", "mynewtext"]);
        h
    }

    #[test]
    fn lcs_replies_the_string_or_its_length() {
        let mut h = harness();
        assert_eq!(h.run(&["LCS", "a", "b"]), bulk("mytext"));
        assert_eq!(h.run(&["LCS", "a", "b", "LEN"]), int(6));
        assert_eq!(h.run(&["lcs", "a", "b", "len", "minmatchlen", "3", "withmatchlen"]), int(6));
        assert_eq!(h.run(&["LCS", "a", "a"]), bulk("ohmytext"));
    }

    #[test]
    fn lcs_missing_keys_are_empty_strings() {
        let mut h = harness();
        assert_eq!(h.run(&["LCS", "a", "nokey"]), bulk(""));
        assert_eq!(h.run(&["LCS", "x", "y", "LEN"]), int(0));
        assert_eq!(h.run(&["LCS", "x", "y", "IDX"]), idx_reply(vec![], 0));
    }

    #[test]
    fn lcs_idx_gives_ranges_from_the_end_as_redis() {
        // Figures from redis-server 7.0.15.
        let mut h = harness();
        assert_eq!(
            h.run(&["LCS", "a", "b", "IDX", "WITHMATCHLEN"]),
            idx_reply(vec![range((4, 7), (5, 8), Some(4)), range((2, 3), (0, 1), Some(2))], 6)
        );
        assert_eq!(
            h.run(&["LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"]),
            idx_reply(vec![range((4, 7), (5, 8), Some(4))], 6)
        );
        assert_eq!(
            h.run(&["LCS", "a", "b", "MINMATCHLEN", "-5", "IDX"]),
            idx_reply(vec![range((4, 7), (5, 8), None), range((2, 3), (0, 1), None)], 6)
        );
    }

    #[test]
    fn lcs_option_errors_follow_redis() {
        let mut h = harness();
        let both = "ERR If you want both the length and indexes, please just use IDX.";
        assert_eq!(h.run(&["LCS", "a", "b", "IDX", "LEN"]), err(both));
        assert_eq!(h.run(&["LCS", "a", "b", "LEN", "IDX"]), err(both));
        assert_eq!(h.run(&["LCS", "a", "b", "MINMATCHLEN"]), err("ERR syntax error"));
        assert_eq!(h.run(&["LCS", "a", "b", "foo"]), err("ERR syntax error"));
        assert_eq!(h.run(&["LCS", "a", "b", "MINMATCHLEN", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(h.run(&["LCS", "a"]), err("ERR wrong number of arguments for 'lcs' command"));
    }

    #[test]
    fn lcs_type_error_comes_before_option_errors() {
        let mut h = harness();
        h.run(&["RPUSH", "l", "x"]);
        let text = "ERR The specified keys must contain string values";
        assert_eq!(h.run(&["LCS", "l", "a", "foo"]), err(text));
        assert_eq!(h.run(&["LCS", "a", "l"]), err(text));
    }

    #[test]
    fn lcs_refuses_a_table_larger_than_proto_max_bulk_len() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]), Frame::ok());
        let long = "x".repeat(1000);
        h.run(&["MSET", "p", &long, "q", &long]);
        // 1001 * 1001 * 4 bytes > 1 MiB.
        assert_eq!(
            h.run(&["LCS", "p", "q", "LEN"]),
            err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
        );
        // 1001 * 201 * 4 bytes fits.
        h.run(&["SET", "q", &long[..200]]);
        assert_eq!(h.run(&["LCS", "p", "q", "LEN"]), int(200));
    }

    #[test]
    fn lcs_of_interleaved_strings() {
        let mut h = Harness::new();
        h.run(&["MSET", "x", "AGGTAB", "y", "GXTXAYB"]);
        assert_eq!(h.run(&["LCS", "x", "y"]), bulk("GTAB"));
        assert_eq!(h.run(&["LCS", "y", "x", "LEN"]), int(4));
    }
}
