//! The small sorted set: every (score, member) pair in one byte buffer, in Redis's order, like
//! Redis's listpack encoding (`zzl*` in `t_zset.c`). Every operation is a linear walk, as there;
//! it is used only below `zset-max-listpack-entries` / `-value`.
//!
//! # Entry format
//! `score varint` then, only when that varint is 1, 8 bytes of little-endian f64; otherwise the
//! varint is an integral score `s` (|s| < 2^53) as `zigzag(d) << 1`, where `d` is `s` minus the
//! previous entry's score when that one is integral too (entries are in score order, so the
//! gaps are small: 10 scores 1 apart cost 1 byte each after the first, whatever their size),
//! else `s` itself. Then `len varint` and the member bytes. Like listpack (which stores an
//! integral score as an integer), `-0` is stored as `0`. An edit re-encodes the entry after the
//! one it inserts or removes, whose predecessor changed.

/// The encoded entries (exact size, as a listpack) and their count (the buffer's word).
#[derive(Debug, Clone, Default)]
pub struct Packed {
    buf: ThinBuf,
}

/// One decoded entry and where it lies in the buffer.
#[derive(Debug, Clone, Copy)]
pub struct PackedEntry<'a> {
    pub member: &'a [u8],
    pub score: f64,
    start: usize,
    end: usize,
    /// The previous entry's score (what this one's is coded against).
    prev: Option<f64>,
}

use crate::db::compact::{THIN_MAX, ThinBuf};

/// Scores at or above this magnitude are stored as f64 bytes.
const MAX_INT_SCORE: f64 = 9_007_199_254_740_992.0; // 2^53

/// An edit's encoded entries: on the stack for members up to about 100 bytes (the packed form's
/// default limit is 64), so that an insert allocates nothing besides the buffer's reallocation.
type Enc = smallvec::SmallVec<[u8; 128]>;

fn put_varint(out: &mut Enc, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// The score as an integer when it is coded as one.
fn int_score(score: f64) -> Option<i64> {
    (score == score.trunc() && score.abs() < MAX_INT_SCORE).then_some(score as i64)
}

/// Encode an entry whose predecessor's score is `prev`.
fn encode(out: &mut Enc, member: &[u8], score: f64, prev: Option<f64>) {
    if let Some(s) = int_score(score) {
        let d = s - prev.and_then(int_score).unwrap_or(0);
        put_varint(out, (((d << 1) ^ (d >> 63)) as u64) << 1);
    } else {
        put_varint(out, 1);
        out.extend_from_slice(&score.to_le_bytes());
    }
    put_varint(out, member.len() as u64);
    out.extend_from_slice(member);
}

impl Packed {
    /// Entries in order.
    pub fn len(&self) -> usize {
        self.buf.aux() as usize
    }

    fn set_len(&mut self, n: usize) {
        self.buf.set_aux(n as u32);
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.buf.heap_bytes()
    }

    /// Whether an entry of a `member_len`-byte member still fits; the set converts before that.
    pub fn fits(&self, member_len: usize) -> bool {
        self.buf.len().saturating_add(member_len).saturating_add(32) <= THIN_MAX
    }

    /// Every entry, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = PackedEntry<'_>> + '_ {
        let buf = self.buf.as_slice();
        let mut pos = 0;
        let mut prev: Option<f64> = None;
        std::iter::from_fn(move || {
            if pos == buf.len() {
                return None;
            }
            let start = pos;
            let tag = get_varint(buf, &mut pos);
            let score = if tag == 1 {
                let bytes: [u8; 8] = buf[pos..pos + 8].try_into().expect("8 score bytes");
                pos += 8;
                f64::from_le_bytes(bytes)
            } else {
                let z = tag >> 1;
                let d = (z >> 1) as i64 ^ -((z & 1) as i64);
                (prev.and_then(int_score).unwrap_or(0) + d) as f64
            };
            let n = get_varint(buf, &mut pos) as usize;
            let member = &buf[pos..pos + n];
            pos += n;
            let e = PackedEntry { member, score, start, end: pos, prev };
            prev = Some(score);
            Some(e)
        })
    }

    /// The member's rank and score.
    pub fn find(&self, member: &[u8]) -> Option<(usize, f64)> {
        self.iter().enumerate().find(|(_, e)| e.member == member).map(|(i, e)| (i, e.score))
    }

    /// The entry at `rank`.
    pub fn at(&self, rank: usize) -> Option<PackedEntry<'_>> {
        self.iter().nth(rank)
    }

    /// Add a member that is not present, at its place in the order.
    pub fn insert(&mut self, member: &[u8], score: f64) {
        let score = if score == 0.0 { 0.0 } else { score };
        let mut enc = Enc::new();
        let (mut at, mut end, mut prev) = (self.buf.len(), self.buf.len(), None);
        for e in self.iter() {
            if super::range::cmp_entry(e.score, e.member, score, member).is_gt() {
                // The new entry goes before `e`, which is then coded against it.
                (at, end) = (e.start, e.end);
                encode(&mut enc, member, score, e.prev);
                encode(&mut enc, e.member, e.score, Some(score));
                break;
            }
            prev = Some(e.score);
        }
        if enc.is_empty() {
            encode(&mut enc, member, score, prev);
        }
        self.buf.splice(at, end, &enc);
        self.set_len(self.len() + 1);
    }

    /// Remove the entries in bytes `start..end` (whole entries, the first coded against `prev`),
    /// re-encoding the one after them against `prev`.
    fn cut(&mut self, start: usize, end: usize, prev: Option<f64>, removed: usize) {
        let mut enc = Enc::new();
        let mut to = end;
        // Decoded in the old buffer, against the last removed entry.
        if let Some(next) = self.iter().find(|e| e.start == end) {
            encode(&mut enc, next.member, next.score, prev);
            to = next.end;
        }
        self.buf.splice(start, to, &enc);
        self.set_len(self.len() - removed);
    }

    /// Remove a member: its score, or None when absent.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let e = self.iter().find(|e| e.member == member)?;
        let (score, start, end, prev) = (e.score, e.start, e.end, e.prev);
        self.cut(start, end, prev, 1);
        Some(score)
    }

    /// Remove `count` entries from `rank` on.
    pub fn remove_ranks(&mut self, rank: usize, count: usize) {
        if count == 0 {
            return;
        }
        let mut entries = self.iter().skip(rank).take(count);
        let Some(first) = entries.next() else { return };
        let (start, prev, mut end, mut n) = (first.start, first.prev, first.end, 1);
        for e in entries {
            end = e.end;
            n += 1;
        }
        self.cut(start, end, prev, n);
    }
}
