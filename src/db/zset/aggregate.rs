//! ZUNION / ZINTER / ZDIFF (and their STORE forms, ZINTERCARD's count) over sorted sets and plain
//! sets, with WEIGHTS and AGGREGATE SUM|MIN|MAX as Redis's `zunionInterDiffGenericCommand`
//! (`t_zset.c`): weighted scores that are NaN (inf * 0) count as 0, SUM of inf and -inf is 0,
//! inputs are taken smallest first (a stable sort by size, as glibc's merge-sorting `qsort`) so
//! floating sums add in Redis's order.

use std::collections::HashMap;

use bytes::Bytes;

use super::SortedSet;
use super::range::cmp_entry;

/// AGGREGATE SUM | MIN | MAX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregate {
    #[default]
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// `sum`, `min`, `max` in any case; None is `ERR syntax error`.
    pub fn parse(arg: &[u8]) -> Option<Aggregate> {
        [(&b"sum"[..], Aggregate::Sum), (b"min", Aggregate::Min), (b"max", Aggregate::Max)]
            .into_iter()
            .find(|(w, _)| arg.eq_ignore_ascii_case(w))
            .map(|(_, a)| a)
    }

    /// `zunionInterAggregate`: fold `value` into `acc`.
    pub fn combine(self, acc: f64, value: f64) -> f64 {
        match self {
            Aggregate::Sum => {
                let s = acc + value;
                if s.is_nan() { 0.0 } else { s }
            }
            Aggregate::Min => {
                if value < acc {
                    value
                } else {
                    acc
                }
            }
            Aggregate::Max => {
                if value > acc {
                    value
                } else {
                    acc
                }
            }
        }
    }
}

/// A score weighted as Redis does before aggregating: NaN (inf * 0) becomes 0.
pub fn weighted(score: f64, weight: f64) -> f64 {
    let s = score * weight;
    if s.is_nan() { 0.0 } else { s }
}

/// One input of a set operation: a sorted set, or a plain set whose members all score 1 (the
/// integrator implements this for its set type). A missing key is an empty input.
pub trait ScoredInput {
    /// Members held.
    fn input_len(&self) -> usize;
    /// The member's score, or None when absent.
    fn input_score(&self, member: &[u8]) -> Option<f64>;
    /// Every member with its score.
    fn input_for_each(&self, f: &mut dyn FnMut(&[u8], f64));
}

impl ScoredInput for SortedSet {
    fn input_len(&self) -> usize {
        self.len()
    }
    fn input_score(&self, member: &[u8]) -> Option<f64> {
        self.score(member)
    }
    fn input_for_each(&self, f: &mut dyn FnMut(&[u8], f64)) {
        self.walk(0, false, |m, s| {
            f(m, s);
            true
        });
    }
}

/// Which operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    Union,
    Inter,
    Diff,
}

/// The result of `op` over `inputs` with one weight per input (`weights` empty = all 1; ignored by
/// Diff, which keeps the first input's scores), in Redis's order: the reply of ZUNION/ZINTER/ZDIFF
/// as it is (Redis builds it as a skiplist, so a `-0` stays `-0`), or the STORE forms' new value
/// through [`SortedSet::from_entries`] (packed when small, which turns `-0` into `0` as Redis).
pub fn combine(op: SetOp, inputs: &[&dyn ScoredInput], weights: &[f64], aggregate: Aggregate) -> Vec<(Bytes, f64)> {
    let weight = |i: usize| weights.get(i).copied().unwrap_or(1.0);
    let mut out: Vec<(Bytes, f64)> = Vec::new();
    match op {
        SetOp::Diff => {
            let Some((first, rest)) = inputs.split_first() else { return Vec::new() };
            first.input_for_each(&mut |m, s| {
                if !rest.iter().any(|other| other.input_score(m).is_some()) {
                    out.push((Bytes::copy_from_slice(m), s));
                }
            });
        }
        SetOp::Inter => {
            let mut order: Vec<usize> = (0..inputs.len()).collect();
            order.sort_by_key(|&i| inputs[i].input_len());
            let Some((&first, rest)) = order.split_first() else { return Vec::new() };
            inputs[first].input_for_each(&mut |m, s| {
                let mut acc = weighted(s, weight(first));
                for &j in rest {
                    match inputs[j].input_score(m) {
                        Some(v) => acc = aggregate.combine(acc, v * weight(j)),
                        None => return,
                    }
                }
                out.push((Bytes::copy_from_slice(m), acc));
            });
        }
        SetOp::Union => {
            let mut order: Vec<usize> = (0..inputs.len()).collect();
            order.sort_by_key(|&i| inputs[i].input_len());
            let mut at: HashMap<Bytes, usize> = HashMap::new();
            for &i in &order {
                inputs[i].input_for_each(&mut |m, s| {
                    let v = weighted(s, weight(i));
                    match at.get(m) {
                        Some(&k) => out[k].1 = aggregate.combine(out[k].1, v),
                        None => {
                            let m = Bytes::copy_from_slice(m);
                            at.insert(m.clone(), out.len());
                            out.push((m, v));
                        }
                    }
                });
            }
        }
    }
    out.sort_by(|a, b| cmp_entry(a.1, &a.0, b.1, &b.0));
    out
}

/// ZINTERCARD: the size of the intersection, counting stops at `limit` (0 = no limit).
pub fn inter_card(inputs: &[&dyn ScoredInput], limit: usize) -> usize {
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by_key(|&i| inputs[i].input_len());
    let Some((&first, rest)) = order.split_first() else { return 0 };
    let mut n = 0;
    inputs[first].input_for_each(&mut |m, _| {
        if (limit == 0 || n < limit) && rest.iter().all(|&j| inputs[j].input_score(m).is_some()) {
            n += 1;
        }
    });
    n
}
