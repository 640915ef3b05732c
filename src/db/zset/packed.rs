//! The small sorted set: every (score, member) pair in one byte buffer, in Redis's order, like
//! Redis's listpack encoding (`zzl*` in `t_zset.c`). Every operation is a linear walk, as there;
//! it is used only below `zset-max-listpack-entries` / `-value`.
//!
//! # Entry format
//! `score varint` then, only when that varint is 1, 8 bytes of little-endian f64; otherwise the
//! varint is an integral score `s` (|s| < 2^53) as `zigzag(s) << 1`. Then `len varint` and the
//! member bytes. An integral score 0..=63 and a short member cost 2 bytes besides the member.
//! Like listpack (which stores an integral score as an integer), `-0` is stored as `0`.

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
}

use crate::db::compact::{THIN_MAX, ThinBuf};

/// Scores at or above this magnitude are stored as f64 bytes.
const MAX_INT_SCORE: f64 = 9_007_199_254_740_992.0; // 2^53

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
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

fn encode(out: &mut Vec<u8>, member: &[u8], score: f64) {
    if score == score.trunc() && score.abs() < MAX_INT_SCORE {
        let s = score as i64;
        put_varint(out, (((s << 1) ^ (s >> 63)) as u64) << 1);
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
                ((z >> 1) as i64 ^ -((z & 1) as i64)) as f64
            };
            let n = get_varint(buf, &mut pos) as usize;
            let member = &buf[pos..pos + n];
            pos += n;
            Some(PackedEntry { member, score, start, end: pos })
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
        let at = self
            .iter()
            .find(|e| super::range::cmp_entry(e.score, e.member, score, member).is_gt())
            .map_or(self.buf.len(), |e| e.start);
        let mut enc = Vec::with_capacity(member.len() + 12);
        encode(&mut enc, member, score);
        self.buf.splice(at, at, &enc);
        self.set_len(self.len() + 1);
    }

    /// Remove a member: its score, or None when absent.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let e = self.iter().find(|e| e.member == member)?;
        let (score, span) = (e.score, e.start..e.end);
        self.buf.splice(span.start, span.end, &[]);
        self.set_len(self.len() - 1);
        Some(score)
    }

    /// Remove `count` entries from `rank` on.
    pub fn remove_ranks(&mut self, rank: usize, count: usize) {
        if count == 0 {
            return;
        }
        let mut entries = self.iter().skip(rank).take(count);
        let start = entries.next().map(|e| e.start);
        let Some(start) = start else { return };
        let end = entries.last().map_or_else(|| self.at(rank).expect("entry").end, |e| e.end);
        self.buf.splice(start, end, &[]);
        self.set_len(self.len() - count.min(self.len() - rank));
    }
}
