//! The sorted set value (Redis's `t_zset.c` data structure, no commands): members (binary-safe)
//! with f64 scores, ordered by (score, member bytes) exactly as Redis orders them.
//!
//! Two encodings, as Redis: `packed` (its `listpack`: one byte buffer, linear walks) while the set
//! has at most `zset-max-listpack-entries` members of at most `zset-max-listpack-value` bytes, and
//! `tree` (its `skiplist`: an order-statistics B+tree plus a member index; the module says why a
//! B+tree) past them. A set converts when an insertion would break a limit and never converts back,
//! except [`SortedSet::from_entries`] (STORE results), which picks by size as
//! `zsetConvertToListpackIfNeeded` does.
//!
//! Ranks are 0-based and ascending unless `rev`. Ranges by lex follow Redis's walks exactly: find
//! the first (last) member at or above min (at or below max) in score order, then walk while the
//! other end holds; they are only meaningful over equal scores. In the packed form the first
//! member is found by a linear scan (as listpack); in the tree by a descent (as the skiplist's,
//! whose answer on non-monotone data depends on its random levels anyway).
//!
//! # Layout
//! This file: the value and its point operations. `query`: ranges by rank, score and lex.
//! [`add`]: ZADD/ZINCRBY's flag rules. [`aggregate`]: ZUNION/ZINTER/ZDIFF. [`score`]: score text
//! (parse, `%.17g`). [`range`]: range bounds and the order. The argument grammar is in
//! `cmd::zset_args`.

pub mod add;
pub mod aggregate;
mod packed;
mod query;
pub mod range;
pub mod score;
#[cfg(all(test, not(feature = "loom")))]
mod tests;
mod tree;

use crate::db::compact::PBox;
use bytes::Bytes;

use packed::Packed;
pub use query::{Limit, rank_span};
pub use range::{LexBound, LexRange, ScoreRange};
pub use tree::MemberBytes;
use tree::Tree;

/// Entries popped, in pop order (see [`SortedSet::pop_entries`]).
pub type Popped = smallvec::SmallVec<[(MemberBytes, f64); 1]>;

/// Entries borrowed from a set, copied out.
fn owned(entries: Vec<(&[u8], f64)>) -> Vec<(Bytes, f64)> {
    entries.into_iter().map(|(m, s)| (Bytes::copy_from_slice(m), s)).collect()
}

/// A member's bytes as a `Bytes`: a heap member's own allocation, an inline one copied.
pub fn member_bytes(m: MemberBytes) -> Bytes {
    if m.spilled() { Bytes::from(m.into_vec()) } else { Bytes::copy_from_slice(&m) }
}

/// The two conversion thresholds (`zset-max-listpack-entries`, `zset-max-listpack-value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZsetLimits {
    pub max_listpack_entries: usize,
    pub max_listpack_value: usize,
}

impl Default for ZsetLimits {
    /// Redis's defaults: 128 entries, 64 bytes.
    fn default() -> Self {
        ZsetLimits { max_listpack_entries: 128, max_listpack_value: 64 }
    }
}

/// The encoding OBJECT ENCODING names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Listpack,
    Skiplist,
}

impl Encoding {
    /// `listpack` or `skiplist`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Listpack => "listpack",
            Encoding::Skiplist => "skiplist",
        }
    }
}

#[derive(Debug, Clone)]
enum Repr {
    Packed(Packed),
    /// Boxed: a packed set (most keys) stays as small as its buffer's handle.
    Tree(PBox<Tree>),
}

/// A sorted set in either encoding.
#[derive(Debug, Clone)]
pub struct SortedSet {
    repr: Repr,
}

impl Default for SortedSet {
    fn default() -> Self {
        SortedSet::new()
    }
}

impl SortedSet {
    /// An empty set in the packed encoding.
    pub fn new() -> SortedSet {
        SortedSet { repr: Repr::Packed(Packed::default()) }
    }

    /// The set ZADD creates for a new key: the tree at once when the limits allow no packed set or
    /// the first member given is already too long (as `zaddGenericCommand`).
    pub fn for_new_key(first_member_len: usize, limits: &ZsetLimits) -> SortedSet {
        if limits.max_listpack_entries == 0 || first_member_len > limits.max_listpack_value {
            SortedSet { repr: Repr::Tree(PBox::new(Tree::default())) }
        } else {
            SortedSet::new()
        }
    }

    /// A set of distinct members (a STORE result), packed when it fits the limits.
    pub fn from_entries(mut entries: Vec<(Bytes, f64)>, limits: &ZsetLimits) -> SortedSet {
        let longest = entries.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
        entries.sort_by(|a, b| range::cmp_entry(a.1, &a.0, b.1, &b.0));
        let mut set = if entries.len() <= limits.max_listpack_entries && longest <= limits.max_listpack_value {
            SortedSet::new()
        } else {
            SortedSet { repr: Repr::Tree(PBox::new(Tree::with_capacity(entries.len()))) }
        };
        for (m, s) in &entries {
            match &mut set.repr {
                Repr::Packed(p) => p.insert(m, *s),
                Repr::Tree(t) => t.insert(m, *s),
            }
        }
        set
    }

    /// Members held.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.len(),
            Repr::Tree(t) => t.len(),
        }
    }

    /// No members (the key is then removed by the caller).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current encoding.
    pub fn encoding(&self) -> Encoding {
        match &self.repr {
            Repr::Packed(_) => Encoding::Listpack,
            Repr::Tree(_) => Encoding::Skiplist,
        }
    }

    /// Estimated bytes held, the value itself included (INFO, maxmemory).
    pub fn memory_bytes(&self) -> usize {
        size_of::<SortedSet>()
            + match &self.repr {
                Repr::Packed(p) => p.heap_bytes(),
                Repr::Tree(t) => t.heap_bytes(),
            }
    }

    /// The member's score (O(1) in the tree).
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Packed(p) => p.find(member).map(|(_, s)| s),
            Repr::Tree(t) => t.score(member),
        }
    }

    /// The member's rank (from the top when `rev`) and score (ZRANK, ZREVRANK).
    pub fn rank(&self, member: &[u8], rev: bool) -> Option<(usize, f64)> {
        let (rank, score) = match &self.repr {
            Repr::Packed(p) => p.find(member)?,
            Repr::Tree(t) => t.find(member)?,
        };
        Some((if rev { self.len() - 1 - rank } else { rank }, score))
    }

    /// The entry at ascending `rank`.
    pub fn at(&self, rank: usize) -> Option<(Bytes, f64)> {
        match &self.repr {
            Repr::Packed(p) => p.at(rank).map(|e| (Bytes::copy_from_slice(e.member), e.score)),
            Repr::Tree(t) => t.at(rank).map(|(m, s)| (Bytes::copy_from_slice(m), s)),
        }
    }

    /// `f` of the entry at ascending `rank`, without copying it.
    fn with_at<R>(&self, rank: usize, f: impl FnOnce(&[u8], f64) -> R) -> Option<R> {
        match &self.repr {
            Repr::Packed(p) => p.at(rank).map(|e| f(e.member, e.score)),
            Repr::Tree(t) => t.at(rank).map(|(m, s)| f(m, s)),
        }
    }

    /// Visit entries from ascending rank `start`, upward or (`rev`) downward, while `f` says so.
    pub fn walk<'s>(&'s self, start: usize, rev: bool, mut f: impl FnMut(&'s [u8], f64) -> bool) {
        match &self.repr {
            Repr::Packed(p) if rev => {
                let entries: Vec<_> = p.iter().take(start + 1).collect();
                for e in entries.iter().rev() {
                    if !f(e.member, e.score) {
                        return;
                    }
                }
            }
            Repr::Packed(p) => {
                for e in p.iter().skip(start) {
                    if !f(e.member, e.score) {
                        return;
                    }
                }
            }
            Repr::Tree(t) => t.walk(start, rev, f),
        }
    }

    /// Every entry, lowest first.
    pub fn entries(&self) -> Vec<(Bytes, f64)> {
        owned(self.collect(0, false, usize::MAX, |_, _| true))
    }

    fn collect(&self, start: usize, rev: bool, n: usize, keep: impl Fn(&[u8], f64) -> bool) -> Vec<(&[u8], f64)> {
        let mut out = Vec::with_capacity(n.min(self.len()).min(1024));
        if n > 0 {
            self.walk(start, rev, |m, s| {
                if !keep(m, s) {
                    return false;
                }
                out.push((m, s));
                out.len() < n
            });
        }
        out
    }

    /// Set a member's score whatever it was, converting to the tree first when adding it would
    /// break a limit. The previous score, if any.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: &ZsetLimits) -> Option<f64> {
        if let Repr::Tree(t) = &mut self.repr {
            return t.set_score(member, score);
        }
        let old = self.remove(member);
        if let Repr::Packed(p) = &self.repr
            && old.is_none()
            && (p.len() + 1 > limits.max_listpack_entries
                || member.len() > limits.max_listpack_value
                || !p.fits(member.len()))
        {
            let mut tree = Tree::with_capacity(p.len() + 1);
            for e in p.iter() {
                tree.insert(e.member, e.score);
            }
            self.repr = Repr::Tree(PBox::new(tree));
        }
        match &mut self.repr {
            Repr::Packed(p) => p.insert(member, score),
            Repr::Tree(t) => t.insert(member, score),
        }
        old
    }

    /// Remove a member: its score, or None when absent.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Packed(p) => p.remove(member),
            Repr::Tree(t) => t.remove(member),
        }
    }

    /// Remove `count` entries from ascending `rank` on: how many went.
    fn remove_count(&mut self, rank: usize, count: usize) -> usize {
        let mut n = 0;
        self.remove_ranks_with(rank, count, |_, _| n += 1);
        n
    }

    /// Remove `count` entries from ascending `rank` on, handing each to `removed` in ascending
    /// order (its bytes: moved out of the tree, copied out of the packed form).
    fn remove_ranks_with(&mut self, rank: usize, count: usize, mut removed: impl FnMut(MemberBytes, f64)) {
        match &mut self.repr {
            Repr::Packed(p) => {
                p.iter().skip(rank).take(count).for_each(|e| removed(MemberBytes::from_slice(e.member), e.score));
                p.remove_ranks(rank, count);
            }
            Repr::Tree(t) => t.remove_ranks(rank, count, removed),
        }
    }

    /// ZPOPMIN / ZPOPMAX: up to `count` lowest (highest, `max`) entries, in pop order.
    pub fn pop(&mut self, count: usize, max: bool) -> Vec<(Bytes, f64)> {
        self.pop_entries(count, max).into_iter().map(|(m, s)| (member_bytes(m), s)).collect()
    }

    /// [`SortedSet::pop`] without an allocation for a pop of one short member: the entries as the
    /// set held them (a member of up to 22 bytes inline).
    pub fn pop_entries(&mut self, count: usize, max: bool) -> Popped {
        let n = count.min(self.len());
        let mut out = Popped::with_capacity(n);
        if max {
            self.remove_ranks_with(self.len() - n, n, |m, s| out.push((m, s)));
            out.reverse();
        } else {
            self.remove_ranks_with(0, n, |m, s| out.push((m, s)));
        }
        out
    }
}
