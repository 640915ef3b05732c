//! Range queries on a [`SortedSet`]: by rank, by score, by lex; counts and removals by range.
//! Redis's `zzlFirstInRange`/`zslFirstInRange`, `*LastIn*`, `genericZrangebyscoreCommand`,
//! `zslDeleteRangeBy*` (`t_zset.c`): find the first (last) entry in range, skip the offset, then
//! walk while the far end holds.

use bytes::Bytes;

use super::{LexRange, Repr, ScoreRange, SortedSet, owned};

/// LIMIT offset count of a range by score or lex: a negative offset gives nothing, a negative
/// count means no limit (Redis's defaults: offset 0, count -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub offset: i64,
    pub count: i64,
}

impl Limit {
    /// No LIMIT given.
    pub const NONE: Limit = Limit { offset: 0, count: -1 };
}

/// A range's two tests, shared by score and lex ranges.
trait Bounds {
    fn gte_min(&self, member: &[u8], score: f64) -> bool;
    fn lte_max(&self, member: &[u8], score: f64) -> bool;
    fn is_empty(&self) -> bool;
    /// Whether the bounds look at members (lex); score bounds never read a member's bytes.
    fn by_member(&self) -> bool;
}

impl Bounds for ScoreRange {
    fn gte_min(&self, _: &[u8], score: f64) -> bool {
        ScoreRange::gte_min(self, score)
    }
    fn lte_max(&self, _: &[u8], score: f64) -> bool {
        ScoreRange::lte_max(self, score)
    }
    fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.min_exclusive || self.max_exclusive))
    }
    fn by_member(&self) -> bool {
        false
    }
}

impl Bounds for LexRange {
    fn gte_min(&self, member: &[u8], _: f64) -> bool {
        LexRange::gte_min(self, member)
    }
    fn lte_max(&self, member: &[u8], _: f64) -> bool {
        LexRange::lte_max(self, member)
    }
    fn is_empty(&self) -> bool {
        LexRange::is_empty(self)
    }
    fn by_member(&self) -> bool {
        true
    }
}

/// Redis's rank normalisation (ZRANGE, ZREMRANGEBYRANK): negative from the end, clamped; None
/// when empty. Inclusive `(start, end)`.
pub fn rank_span(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}

impl SortedSet {
    /// Redis's `zslIsInRange`/`zzlIsInLexRange`: not always empty, the highest entry at or above
    /// min and the lowest at or below max.
    fn may_overlap(&self, r: &impl Bounds) -> bool {
        let len = self.len();
        len > 0
            && !r.is_empty()
            && self.with_at(len - 1, |m, s| r.gte_min(m, s)) == Some(true)
            && self.with_at(0, |m, s| r.lte_max(m, s)) == Some(true)
    }

    /// ZRANGE by rank, `start`/`end` as given (negative from the end; from the top when `rev`).
    pub fn range_by_rank(&self, start: i64, end: i64, rev: bool) -> Vec<(Bytes, f64)> {
        owned(self.range_by_rank_refs(start, end, rev))
    }

    /// [`SortedSet::range_by_rank`] with the members borrowed from the set.
    pub fn range_by_rank_refs(&self, start: i64, end: i64, rev: bool) -> Vec<(&[u8], f64)> {
        let Some((start, end)) = rank_span(start, end, self.len()) else { return Vec::new() };
        let first = if rev { self.len() - 1 - start } else { start };
        self.collect(first, rev, end - start + 1, |_, _| true)
    }

    /// ZREMRANGEBYRANK: the number removed.
    pub fn remove_range_by_rank(&mut self, start: i64, end: i64) -> usize {
        let Some((start, end)) = rank_span(start, end, self.len()) else { return 0 };
        self.remove_count(start, end - start + 1)
    }

    /// The first entry in range walking up (`zzlFirstInRange`/`zslFirstInLexRange`).
    fn first_in(&self, r: &impl Bounds) -> Option<usize> {
        if !self.may_overlap(r) {
            return None;
        }
        let first = match &self.repr {
            Repr::Packed(p) => p.iter().position(|e| r.gte_min(e.member, e.score))?,
            Repr::Tree(t) => t.count_before(|s, m| !r.gte_min(if r.by_member() { m.get() } else { &[] }, s)),
        };
        self.with_at(first, |m, s| r.lte_max(m, s))?.then_some(first)
    }

    /// The last entry in range walking down (`zzlLastInRange`/`zslLastInLexRange`).
    fn last_in(&self, r: &impl Bounds) -> Option<usize> {
        if !self.may_overlap(r) {
            return None;
        }
        let last = match &self.repr {
            Repr::Packed(p) => p.iter().enumerate().filter(|(_, e)| r.lte_max(e.member, e.score)).last()?.0,
            Repr::Tree(t) => {
                t.count_before(|s, m| r.lte_max(if r.by_member() { m.get() } else { &[] }, s)).checked_sub(1)?
            }
        };
        self.with_at(last, |m, s| r.gte_min(m, s))?.then_some(last)
    }

    fn range_generic(&self, r: &impl Bounds, rev: bool, limit: Limit) -> Vec<(&[u8], f64)> {
        let start = if rev { self.last_in(r) } else { self.first_in(r) };
        let (Some(start), Ok(offset)) = (start, usize::try_from(limit.offset)) else { return Vec::new() };
        let n = usize::try_from(limit.count).unwrap_or(usize::MAX);
        let start = if rev { start.checked_sub(offset) } else { Some(start + offset) };
        let Some(start) = start else { return Vec::new() };
        if rev {
            self.collect(start, true, n, |m, s| r.gte_min(m, s))
        } else {
            self.collect(start, false, n, |m, s| r.lte_max(m, s))
        }
    }

    /// ZRANGE BYSCORE (walking down from the max when `rev`).
    pub fn range_by_score(&self, r: &ScoreRange, rev: bool, limit: Limit) -> Vec<(Bytes, f64)> {
        owned(self.range_generic(r, rev, limit))
    }

    /// [`SortedSet::range_by_score`] with the members borrowed from the set.
    pub fn range_by_score_refs(&self, r: &ScoreRange, rev: bool, limit: Limit) -> Vec<(&[u8], f64)> {
        self.range_generic(r, rev, limit)
    }

    /// ZRANGE BYLEX (walking down from the max when `rev`).
    pub fn range_by_lex(&self, r: &LexRange, rev: bool, limit: Limit) -> Vec<(Bytes, f64)> {
        owned(self.range_generic(r, rev, limit))
    }

    /// [`SortedSet::range_by_lex`] with the members borrowed from the set.
    pub fn range_by_lex_refs(&self, r: &LexRange, rev: bool, limit: Limit) -> Vec<(&[u8], f64)> {
        self.range_generic(r, rev, limit)
    }

    fn count_generic(&self, r: &impl Bounds) -> usize {
        let Some(first) = self.first_in(r) else { return 0 };
        match &self.repr {
            Repr::Packed(p) => p.iter().skip(first).take_while(|e| r.lte_max(e.member, e.score)).count(),
            Repr::Tree(_) => self.last_in(r).map_or(self.len() - first, |last| last + 1 - first),
        }
    }

    /// ZCOUNT.
    pub fn count_by_score(&self, r: &ScoreRange) -> usize {
        self.count_generic(r)
    }

    /// ZLEXCOUNT.
    pub fn count_by_lex(&self, r: &LexRange) -> usize {
        self.count_generic(r)
    }

    fn remove_generic(&mut self, r: &impl Bounds) -> usize {
        let Some(first) = self.first_in(r) else { return 0 };
        let mut n = 0;
        self.walk(first, false, |m, s| {
            n += usize::from(r.lte_max(m, s));
            r.lte_max(m, s)
        });
        self.remove_count(first, n)
    }

    /// ZREMRANGEBYSCORE: the number removed.
    pub fn remove_range_by_score(&mut self, r: &ScoreRange) -> usize {
        self.remove_generic(r)
    }

    /// ZREMRANGEBYLEX: the number removed.
    pub fn remove_range_by_lex(&mut self, r: &LexRange) -> usize {
        self.remove_generic(r)
    }
}
