//! ZADD and ZINCRBY on a [`SortedSet`]: the NX/XX/GT/LT/CH/INCR rules of Redis's `zsetAdd` and
//! `zaddGenericCommand` (`t_zset.c`), with their exact errors, and what the reply and the AOF
//! record need.

use smallvec::SmallVec;

use super::{Repr, SortedSet, ZsetLimits};
use crate::error::Error;

/// ZADD's options (ZINCRBY is `incr` alone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddFlags {
    /// Only add new members.
    pub nx: bool,
    /// Only update existing members.
    pub xx: bool,
    /// Only update when the new score is greater.
    pub gt: bool,
    /// Only update when the new score is less.
    pub lt: bool,
    /// Reply with added + changed rather than added.
    pub ch: bool,
    /// Add the score to the current one; reply with the result.
    pub incr: bool,
}

/// `ERR resulting score is not a number (NaN)`.
pub fn nan_error() -> Error {
    Error::err("resulting score is not a number (NaN)")
}

impl AddFlags {
    /// Redis's checks, in its order, once the number of score-member `pairs` is known (a
    /// non-zero even count of arguments is the caller's `ERR syntax error`).
    pub fn validate(&self, pairs: usize) -> Result<(), Error> {
        if self.nx && self.xx {
            return Err(Error::err("XX and NX options at the same time are not compatible"));
        }
        if [self.gt, self.lt, self.nx].iter().filter(|&&f| f).count() > 1 {
            return Err(Error::err("GT, LT, and/or NX options at the same time are not compatible"));
        }
        if self.incr && pairs > 1 {
            return Err(Error::err("INCR option supports a single increment-element pair"));
        }
        Ok(())
    }
}

/// What one `zsetAdd` did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AddOutcome {
    /// A new member, with its score.
    Added(f64),
    /// An existing member's score changed to this.
    Updated(f64),
    /// The member was processed but its score stays (same score; INCR by 0): the score.
    Unchanged(f64),
    /// NX on an existing member, XX on a missing one, or GT/LT refused the update.
    Skipped,
}

impl SortedSet {
    /// Redis's `zsetAdd`: one score-member pair under `flags`. Errors only with
    /// [`nan_error`] (a NaN score, or INCR reaching NaN from inf + -inf), leaving the set as it was.
    pub fn add(
        &mut self,
        member: &[u8],
        score: f64,
        flags: AddFlags,
        limits: &ZsetLimits,
    ) -> Result<AddOutcome, Error> {
        if score.is_nan() {
            return Err(nan_error());
        }
        // One member lookup: a large set keeps the slot it found for the update.
        let (current, slot) = match &self.repr {
            Repr::Tree(t) => t.slot(member).map_or((None, None), |(id, s)| (Some(s), Some(id))),
            Repr::Packed(p) => (p.find(member).map(|(_, s)| s), None),
        };
        let Some(current) = current else {
            if flags.xx {
                return Ok(AddOutcome::Skipped);
            }
            match &mut self.repr {
                Repr::Tree(t) => t.insert(member, score),
                Repr::Packed(_) => {
                    self.insert(member, score, limits);
                }
            }
            return Ok(AddOutcome::Added(score));
        };
        if flags.nx {
            return Ok(AddOutcome::Skipped);
        }
        let score = if flags.incr { current + score } else { score };
        if score.is_nan() {
            return Err(nan_error());
        }
        if (flags.lt && score >= current) || (flags.gt && score <= current) {
            return Ok(AddOutcome::Skipped);
        }
        if score == current {
            return Ok(AddOutcome::Unchanged(score));
        }
        match (&mut self.repr, slot) {
            (Repr::Tree(t), Some(slot)) => {
                t.rescore(slot, score);
            }
            _ => {
                self.insert(member, score, limits);
            }
        }
        Ok(AddOutcome::Updated(score))
    }

    /// ZADD / ZINCRBY over all pairs (already parsed and [`AddFlags::validate`]d), stopping at the
    /// first error as Redis does (earlier pairs stay applied; their changes are in the summary's
    /// `changed`, which the caller still logs).
    pub fn zadd<'a>(&mut self, pairs: &[(f64, &'a [u8])], flags: AddFlags, limits: &ZsetLimits) -> ZaddSummary<'a> {
        let mut sum = ZaddSummary::default();
        for (score, member) in pairs {
            let member: &'a [u8] = member;
            match self.add(member, *score, flags, limits) {
                Err(e) => {
                    sum.error = Some(e);
                    break;
                }
                Ok(AddOutcome::Added(s)) => {
                    sum.added += 1;
                    sum.score = Some(s);
                    sum.changed.push((member, s));
                }
                Ok(AddOutcome::Updated(s)) => {
                    sum.updated += 1;
                    sum.score = Some(s);
                    sum.changed.push((member, s));
                }
                Ok(AddOutcome::Unchanged(s)) => sum.score = Some(s),
                Ok(AddOutcome::Skipped) => {}
            }
        }
        sum
    }
}

/// What ZADD's reply and AOF record need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZaddSummary<'a> {
    /// New members.
    pub added: usize,
    /// Existing members whose score changed.
    pub updated: usize,
    /// With INCR: the resulting score, None when NX/XX/GT/LT skipped it (reply nil).
    pub score: Option<f64>,
    /// Every member added or changed with its new score, in order: log these as
    /// `ZADD key <format_score> <member> ...`, which replays to the same doubles whatever the flags.
    /// (Inline for up to two: a ZADD of one pair allocates nothing for it.)
    pub changed: SmallVec<[(&'a [u8], f64); 2]>,
    /// The NaN error that stopped it, to reply after logging `changed`.
    pub error: Option<Error>,
}

impl ZaddSummary<'_> {
    /// ZADD's integer reply: added, or added + updated with CH.
    pub fn reply_count(&self, ch: bool) -> usize {
        if ch { self.added + self.updated } else { self.added }
    }
}
