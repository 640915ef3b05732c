//! The sorted-set commands' argument grammar, with Redis's error texts and in Redis's order of
//! checks (`zaddGenericCommand`, `zrangeGenericCommand`, `zunionInterDiffGenericCommand`,
//! `zmpopGenericCommand`, `zrandmemberCommand` in `t_zset.c`). Pure functions over `argv` (the
//! command name at index 0): the handlers look keys up only after these succeed, as Redis does,
//! except set operations, whose keys Redis type-checks before it reads the options
//! ([`parse_setop_keys`] then [`parse_setop_options`]).

use bytes::Bytes;
use smallvec::SmallVec;

use super::{arg_i64, is_opt};
use crate::db::zset::add::AddFlags;
use crate::db::zset::aggregate::{Aggregate, SetOp};
use crate::db::zset::score::{parse_score, parse_score_bound};
use crate::db::zset::{LexBound, LexRange, Limit, ScoreRange};
use crate::error::{Error, Result};

/// ZADD / ZINCRBY, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ZaddArgs<'a> {
    pub flags: AddFlags,
    /// (score or increment, member), in argument order (inline for up to two pairs: the usual
    /// one-pair ZADD allocates nothing for them); the members borrowed from the arguments.
    pub pairs: SmallVec<[(f64, &'a [u8]); 2]>,
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]` (arity -4 checked by
/// the table). ZINCRBY is `parse_zadd` of `["ZINCRBY", key, incr, member]` with `incr` forced.
pub fn parse_zadd(argv: &[Bytes], incr: bool) -> Result<ZaddArgs<'_>> {
    let mut flags = AddFlags { incr, ..AddFlags::default() };
    let mut i = 2;
    while i < argv.len() {
        let a = &argv[i];
        match () {
            _ if is_opt(a, "nx") => flags.nx = true,
            _ if is_opt(a, "xx") => flags.xx = true,
            _ if is_opt(a, "ch") => flags.ch = true,
            _ if is_opt(a, "incr") => flags.incr = true,
            _ if is_opt(a, "gt") => flags.gt = true,
            _ if is_opt(a, "lt") => flags.lt = true,
            _ => break,
        }
        i += 1;
    }
    let rest = &argv[i..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(Error::Syntax);
    }
    flags.validate(rest.len() / 2)?;
    // A plain loop: collecting `Result`s into the SmallVec went through an adapter and a push
    // per pair with its capacity checks (~300 instructions of a one-pair ZADD).
    let mut pairs = SmallVec::with_capacity(rest.len() / 2);
    for p in rest.chunks_exact(2) {
        pairs.push((parse_score(&p[0]).ok_or(Error::NotFloat)?, &p[1][..]));
    }
    Ok(ZaddArgs { flags, pairs })
}

/// `min max` of a score range (`ERR min or max is not a float`).
pub fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange> {
    let bad = || Error::err("min or max is not a float");
    let (min, min_exclusive) = parse_score_bound(min).ok_or_else(bad)?;
    let (max, max_exclusive) = parse_score_bound(max).ok_or_else(bad)?;
    Ok(ScoreRange { min, min_exclusive, max, max_exclusive })
}

/// `min max` of a lex range (`ERR min or max not valid string range item`).
pub fn parse_lex_range(min: &Bytes, max: &Bytes) -> Result<LexRange> {
    let bad = || Error::err("min or max not valid string range item");
    Ok(LexRange { min: LexBound::parse(min).ok_or_else(bad)?, max: LexBound::parse(max).ok_or_else(bad)? })
}

/// What a ZRANGE selects by.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeBy {
    /// `start stop` ranks, as given (see [`crate::db::zset::rank_span`]).
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// Which kind of range a command fixes in advance (ZRANGEBYSCORE: `Score`; ZRANGE: `Auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeKind {
    Auto,
    Rank,
    Score,
    Lex,
}

/// A ZRANGE-family request, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeArgs {
    pub by: RangeBy,
    pub rev: bool,
    pub withscores: bool,
    pub limit: Limit,
}

/// `zrangeGenericCommand`'s grammar: the source key at `argv[key_index]`, then min and max, then
/// `[BYSCORE|BYLEX] [REV] [WITHSCORES] [LIMIT offset count]` (BYSCORE/BYLEX only when `kind` is
/// `Auto`, REV only when `rev` is not preset, WITHSCORES not when `store`). With REV, a score or
/// lex range is given max first.
///
/// ZRANGE: `(argv, 1, false, Auto, false)`; ZREVRANGE: `(.., Rank, true)`; ZRANGEBYSCORE:
/// `(.., Score, false)`; ZREVRANGEBYLEX: `(.., Lex, true)`; ZRANGESTORE: `(argv, 2, true, Auto, false)`.
pub fn parse_range(argv: &[Bytes], key_index: usize, store: bool, kind: RangeKind, rev: bool) -> Result<RangeArgs> {
    let (mut kind, mut rev_given, mut withscores) = (kind, rev, false);
    let mut limit = Limit::NONE;
    let mut j = key_index + 3;
    while j < argv.len() {
        let a = &argv[j];
        let left = argv.len() - j - 1;
        if !store && is_opt(a, "withscores") {
            withscores = true;
        } else if is_opt(a, "limit") && left >= 2 {
            limit = Limit { offset: arg_i64(&argv[j + 1])?, count: arg_i64(&argv[j + 2])? };
            j += 2;
        } else if !rev_given && is_opt(a, "rev") {
            rev_given = true;
        } else if kind == RangeKind::Auto && is_opt(a, "bylex") {
            kind = RangeKind::Lex;
        } else if kind == RangeKind::Auto && is_opt(a, "byscore") {
            kind = RangeKind::Score;
        } else {
            return Err(Error::Syntax);
        }
        j += 1;
    }
    if kind == RangeKind::Auto {
        kind = RangeKind::Rank;
    }
    if limit.count != -1 && kind == RangeKind::Rank {
        return Err(Error::err("syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if withscores && kind == RangeKind::Lex {
        return Err(Error::err("syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    let (mut min, mut max) = (&argv[key_index + 1], &argv[key_index + 2]);
    if rev_given && kind != RangeKind::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    let by = match kind {
        RangeKind::Score => RangeBy::Score(parse_score_range(min, max)?),
        RangeKind::Lex => RangeBy::Lex(parse_lex_range(min, max)?),
        _ => RangeBy::Rank(arg_i64(min)?, arg_i64(max)?),
    };
    Ok(RangeArgs { by, rev: rev_given, withscores, limit })
}

/// `numkeys key [key ...]` at `argv[numkeys_index]` of ZUNION/ZINTER/ZDIFF(STORE)/ZINTERCARD:
/// the keys, and the index of the first argument after them. `name` is the command's lowercase
/// name for `ERR at least 1 input key is needed for '<name>' command`.
pub fn parse_setop_keys<'a>(argv: &'a [Bytes], numkeys_index: usize, name: &str) -> Result<(&'a [Bytes], usize)> {
    let n = arg_i64(&argv[numkeys_index])?;
    if n < 1 {
        return Err(Error::err(format!("at least 1 input key is needed for '{name}' command")));
    }
    let first = numkeys_index + 1;
    if n > (argv.len() - first) as i64 {
        return Err(Error::Syntax);
    }
    let end = first + n as usize;
    Ok((&argv[first..end], end))
}

/// The options after a set operation's keys.
#[derive(Debug, Clone, PartialEq)]
pub struct SetOpOptions {
    /// One per key; empty when not given (all 1).
    pub weights: Vec<f64>,
    pub aggregate: Aggregate,
    pub withscores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    pub card_limit: usize,
}

/// `[WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]` (no WEIGHTS/AGGREGATE for Diff, no
/// WITHSCORES for STORE forms), or ZINTERCARD's `[LIMIT n]` when `card`.
pub fn parse_setop_options(
    argv: &[Bytes],
    from: usize,
    keys: usize,
    op: SetOp,
    store: bool,
    card: bool,
) -> Result<SetOpOptions> {
    let mut o = SetOpOptions { weights: Vec::new(), aggregate: Aggregate::Sum, withscores: false, card_limit: 0 };
    let mut j = from;
    while j < argv.len() {
        let left = argv.len() - j;
        let a = &argv[j];
        if op != SetOp::Diff && !card && left > keys && is_opt(a, "weights") {
            o.weights = argv[j + 1..=j + keys]
                .iter()
                .map(|w| parse_score(w).ok_or_else(|| Error::err("weight value is not a float")))
                .collect::<Result<_>>()?;
            j += 1 + keys;
        } else if op != SetOp::Diff && !card && left >= 2 && is_opt(a, "aggregate") {
            o.aggregate = Aggregate::parse(&argv[j + 1]).ok_or(Error::Syntax)?;
            j += 2;
        } else if !store && !card && is_opt(a, "withscores") {
            o.withscores = true;
            j += 1;
        } else if card && left >= 2 && is_opt(a, "limit") {
            let n = crate::util::parse_i64(&argv[j + 1]).filter(|&n| n >= 0);
            o.card_limit = n.ok_or_else(|| Error::err("LIMIT can't be negative"))? as usize;
            j += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok(o)
}

/// ZPOPMIN/ZPOPMAX `key [count]`: None without a count (a single pop, flat reply).
pub fn parse_pop_count(argv: &[Bytes]) -> Result<Option<usize>> {
    match argv.len() {
        0..=2 => Ok(None),
        3 => {
            let n = crate::util::parse_i64(&argv[2]).filter(|&n| n >= 0);
            Ok(Some(n.ok_or(Error::MustBePositive)? as usize))
        }
        _ => Err(Error::Syntax),
    }
}

/// ZMPOP / BZMPOP: `numkeys key [key ...] MIN|MAX [COUNT count]` from `argv[numkeys_index]`:
/// (keys, pop the max, count (1 by default)).
pub fn parse_mpop(argv: &[Bytes], numkeys_index: usize) -> Result<(&[Bytes], bool, usize)> {
    let positive = |a: &[u8], msg: &str| {
        crate::util::parse_i64(a).filter(|&n| n >= 1).map(|n| n as usize).ok_or_else(|| Error::err(msg))
    };
    let n = positive(&argv[numkeys_index], "numkeys should be greater than 0")?;
    let where_index = (numkeys_index + 1).saturating_add(n);
    let Some(w) = argv.get(where_index) else { return Err(Error::Syntax) };
    let max = match () {
        _ if is_opt(w, "min") => false,
        _ if is_opt(w, "max") => true,
        _ => return Err(Error::Syntax),
    };
    let mut count = None;
    let mut j = where_index + 1;
    while j < argv.len() {
        if count.is_none() && is_opt(&argv[j], "count") && j + 1 < argv.len() {
            count = Some(positive(&argv[j + 1], "count should be greater than 0")?);
            j += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok((&argv[numkeys_index + 1..where_index], max, count.unwrap_or(1)))
}

/// ZRANDMEMBER `key [count [WITHSCORES]]`: None without a count, else (count, withscores). A
/// negative count allows repeats; its size is the caller's to bound.
pub fn parse_randmember(argv: &[Bytes]) -> Result<Option<(i64, bool)>> {
    if argv.len() < 3 {
        return Ok(None);
    }
    let n = arg_i64(&argv[2])?;
    if n == i64::MIN {
        return Err(Error::err(
            "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    if argv.len() > 4 || (argv.len() == 4 && !is_opt(&argv[3], "withscores")) {
        return Err(Error::Syntax);
    }
    let withscores = argv.len() == 4;
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
        return Err(Error::err("value is out of range"));
    }
    Ok(Some((n, withscores)))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests;
