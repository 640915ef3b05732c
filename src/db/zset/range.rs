//! Score and lex ranges as Redis's `zrangespec` / `zlexrangespec` and their tests
//! (`zslValueGteMin`, `zslLexValueLteMax`, `sdscmplex`, ...), and the (score, member) order.
//! Mirrors the range half of `t_zset.c`.

use std::cmp::Ordering;

use bytes::Bytes;

/// Redis's element order: by score, then by member bytes (`memcmp`, shorter first on a tie).
pub fn cmp_entry(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> Ordering {
    match a_score.partial_cmp(&b_score) {
        Some(Ordering::Equal) | None => a_member.cmp(b_member),
        Some(o) => o,
    }
}

/// `[min, max]` of scores, either end exclusive (`(1.5`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub min_exclusive: bool,
    pub max: f64,
    pub max_exclusive: bool,
}

impl ScoreRange {
    /// Everything: `-inf +inf`.
    pub const ALL: ScoreRange =
        ScoreRange { min: f64::NEG_INFINITY, min_exclusive: false, max: f64::INFINITY, max_exclusive: false };

    /// `zslValueGteMin`: the score is at or above the lower end.
    pub fn gte_min(&self, score: f64) -> bool {
        if self.min_exclusive { score > self.min } else { score >= self.min }
    }

    /// `zslValueLteMax`: the score is at or below the upper end.
    pub fn lte_max(&self, score: f64) -> bool {
        if self.max_exclusive { score < self.max } else { score <= self.max }
    }

    /// Both ends hold.
    pub fn contains(&self, score: f64) -> bool {
        self.gte_min(score) && self.lte_max(score)
    }
}

/// One end of a lex range: `-`, `+`, `[member` or `(member`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    /// `[member`.
    Inclusive(Bytes),
    /// `(member`.
    Exclusive(Bytes),
}

impl LexBound {
    /// `zslParseLexRangeItem`: None is `ERR min or max not valid string range item`. As Redis,
    /// `+`/`-` are only checked up to a NUL (C strings).
    pub fn parse(arg: &Bytes) -> Option<LexBound> {
        match arg.first()? {
            b'+' if arg.get(1).is_none_or(|&b| b == 0) => Some(LexBound::Max),
            b'-' if arg.get(1).is_none_or(|&b| b == 0) => Some(LexBound::Min),
            b'(' => Some(LexBound::Exclusive(arg.slice(1..))),
            b'[' => Some(LexBound::Inclusive(arg.slice(1..))),
            _ => None,
        }
    }

    fn exclusive(&self) -> bool {
        !matches!(self, LexBound::Inclusive(_))
    }

    /// `sdscmplex(value, bound)` for a member.
    fn cmp_member(&self, member: &[u8]) -> Ordering {
        match self {
            LexBound::Min => Ordering::Greater,
            LexBound::Max => Ordering::Less,
            LexBound::Inclusive(b) | LexBound::Exclusive(b) => member.cmp(b),
        }
    }
}

/// A lex range `min max` (ZRANGEBYLEX and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    /// `zslLexValueGteMin`.
    pub fn gte_min(&self, member: &[u8]) -> bool {
        let c = self.min.cmp_member(member);
        if self.min.exclusive() { c == Ordering::Greater } else { c != Ordering::Less }
    }

    /// `zslLexValueLteMax`.
    pub fn lte_max(&self, member: &[u8]) -> bool {
        let c = self.max.cmp_member(member);
        if self.max.exclusive() { c == Ordering::Less } else { c != Ordering::Greater }
    }

    /// Redis's "ranges that will always be empty" test: `sdscmplex(min, max)` above zero, or zero
    /// with either end exclusive.
    pub fn is_empty(&self) -> bool {
        use LexBound::*;
        let cmp = match (&self.min, &self.max) {
            (Min, Min) | (Max, Max) => Ordering::Equal,
            (Min, _) | (_, Max) => Ordering::Less,
            (Max, _) | (_, Min) => Ordering::Greater,
            (Inclusive(a) | Exclusive(a), Inclusive(b) | Exclusive(b)) => a.cmp(b),
        };
        cmp == Ordering::Greater || (cmp == Ordering::Equal && (self.min.exclusive() || self.max.exclusive()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(min: &'static str, max: &'static str) -> Option<LexRange> {
        Some(LexRange {
            min: LexBound::parse(&Bytes::from_static(min.as_bytes()))?,
            max: LexBound::parse(&Bytes::from_static(max.as_bytes()))?,
        })
    }

    #[test]
    fn lex_items_parse_as_redis() {
        assert_eq!(lex("a", "b"), None);
        assert_eq!(lex("", "+"), None);
        assert_eq!(lex("-x", "+"), None);
        let r = lex("+\0x", "+").expect("a NUL ends the C string");
        assert!(r.is_empty());
        assert!(lex("-", "+").is_some_and(|r| !r.is_empty() && r.gte_min(b"") && r.lte_max(b"\xff")));
        assert!(lex("+", "-").is_some_and(|r| r.is_empty()));
        assert!(lex("[a", "(a").is_some_and(|r| r.is_empty()));
        assert!(lex("[b", "[b").is_some_and(|r| !r.is_empty() && r.gte_min(b"b") && r.lte_max(b"b")));
        assert!(lex("(b", "[c").is_some_and(|r| !r.gte_min(b"b") && r.gte_min(b"ba") && !r.lte_max(b"ca")));
    }

    #[test]
    fn score_ranges_honour_exclusive_ends() {
        let r = ScoreRange { min: 1.0, min_exclusive: true, max: 2.0, max_exclusive: false };
        assert!(!r.contains(1.0) && r.contains(1.5) && r.contains(2.0) && !r.contains(2.5));
        assert!(ScoreRange::ALL.contains(f64::INFINITY) && ScoreRange::ALL.contains(f64::NEG_INFINITY));
    }
}
