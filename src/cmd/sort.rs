//! SORT and SORT_RO. Mirrors Redis's `sort.c`.
//!
//! The elements of a list, set or sorted set are copied out under their cell lock, then weighed
//! (numerically, or ALPHA: by bytes), ordered, cut to LIMIT and expanded through GET patterns.
//! BY and GET patterns read other keys (`*` replaced by the element; `key->field` reads a hash
//! field) lock-free, one at a time, as Redis's cluster-less mode reads them unlocked.
//!
//! `SORT ... STORE dst` holds the stripes of the source and `dst` exclusively, taken in the one
//! global order like every multi-key write. It is logged as what it did, independent of the keys
//! BY and GET read: `DEL dst` when `dst` existed, then `RPUSH dst` of the result (nothing more when
//! the result is empty), so replay rebuilds exactly what memory holds.

use std::cmp::Ordering;

use bytes::Bytes;

use super::{Ctx, arg_i64, is_opt};
use crate::db::zset::SortedSet;
use crate::db::zset::score::parse_sort_weight;
use crate::db::{Entry, EntryRef, List, ListCell, Set, ValueCell, ValueRef};
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::sync::Arc;

/// The options of one SORT call, as `sortCommandGeneric` parses them.
struct Options {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    store: Option<Bytes>,
    by: Option<Bytes>,
    /// BY a pattern without `*`: nothing to weigh, keep the natural order.
    dont_sort: bool,
    gets: Vec<Bytes>,
}

fn parse(argv: &[Bytes], readonly: bool) -> Result<Options> {
    let mut o = Options {
        desc: false,
        alpha: false,
        limit_start: 0,
        limit_count: -1,
        store: None,
        by: None,
        dont_sort: false,
        gets: Vec::new(),
    };
    let mut j = 2;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        let a = &argv[j];
        if is_opt(a, "asc") {
            o.desc = false;
        } else if is_opt(a, "desc") {
            o.desc = true;
        } else if is_opt(a, "alpha") {
            o.alpha = true;
        } else if is_opt(a, "limit") && left >= 2 {
            o.limit_start = arg_i64(&argv[j + 1])?;
            o.limit_count = arg_i64(&argv[j + 2])?;
            j += 2;
        } else if !readonly && is_opt(a, "store") && left >= 1 {
            o.store = Some(argv[j + 1].clone());
            j += 1;
        } else if is_opt(a, "by") && left >= 1 {
            o.by = Some(argv[j + 1].clone());
            o.dont_sort = !argv[j + 1].contains(&b'*');
            j += 1;
        } else if is_opt(a, "get") && left >= 1 {
            o.gets.push(argv[j + 1].clone());
            j += 1;
        } else {
            return Err(Error::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// The value SORT reads: a list, set or sorted set (other types are WRONGTYPE).
enum Source {
    List(Arc<ListCell>),
    Set(Arc<ValueCell<Set>>),
    Zset(Arc<ValueCell<SortedSet>>),
}

/// A keyspace hit or miss, as each of Redis's `lookupKeyRead` calls counts one (the sorted key and
/// every key a BY or GET pattern names; a key of another type is a hit).
fn count_lookup(ctx: &Ctx, key: &[u8], found: bool) {
    ctx.count_lookup(key, found);
}

fn source_of(e: Option<EntryRef<'_>>) -> Result<Option<Source>> {
    match e.map(|e| e.value()) {
        None => Ok(None),
        Some(ValueRef::List(c)) => Ok(Some(Source::List(c.clone()))),
        Some(ValueRef::Set(c)) => Ok(Some(Source::Set(c.clone()))),
        Some(ValueRef::Zset(c)) => Ok(Some(Source::Zset(c.clone()))),
        Some(_) => Err(Error::WrongType),
    }
}

/// The elements in the source's own order (a sorted set's: by score), and whether that order is
/// a sequence SORT keeps (lists and sorted sets; a set's is not). A dead cell reads as missing.
fn elements(src: Option<Source>) -> (Vec<Bytes>, bool) {
    match src {
        None => (Vec::new(), true),
        Some(Source::List(c)) => {
            let st = c.lock();
            (if st.dead { Vec::new() } else { st.items.to_vec() }, true)
        }
        Some(Source::Set(c)) => {
            let st = c.lock();
            (if st.dead { Vec::new() } else { st.items.to_vec() }, false)
        }
        Some(Source::Zset(c)) => {
            let st = c.lock();
            (if st.dead { Vec::new() } else { st.items.entries().into_iter().map(|(m, _)| m).collect() }, true)
        }
    }
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the first `*` is replaced by
/// the element and the key read as a string, or, with `->field` after the `*`, as a hash field.
/// None for a pattern without `*`, a missing key or field, or a key of another type.
fn lookup_by_pattern(ctx: &Ctx, pattern: &[u8], elem: &Bytes) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(elem.clone());
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let after = &pattern[star + 1..];
    let arrow = after.windows(2).position(|w| w == b"->").filter(|&f| f + 2 < after.len());
    let (postfix, field) = match arrow {
        Some(f) => (&after[..f], Some(&after[f + 2..])),
        None => (after, None),
    };
    let mut key = Vec::with_capacity(star + elem.len() + postfix.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(postfix);
    let found = ctx.read(&key, |e| {
        count_lookup(ctx, &key, e.is_some());
        let e = e?;
        match field {
            None => e.string_bytes().map(Err),
            Some(_) => match e.value() {
                ValueRef::Hash(c) => Some(Ok(c.clone())),
                _ => None,
            },
        }
    })?;
    match (found, field) {
        (Err(s), _) => Some(s),
        (Ok(hash), Some(field)) => {
            let st = hash.lock();
            if st.dead { None } else { st.items.get(field).map(Bytes::copy_from_slice) }
        }
        (Ok(_), None) => None,
    }
}

/// One element to order and what it is weighed by.
struct Weighed {
    elem: Bytes,
    score: f64,
    /// ALPHA BY: the pattern's value (None: missing, before every present one).
    by: Option<Bytes>,
}

/// The sorted, LIMIT-cut elements (before GET), as `sortCommandGeneric` orders them.
fn sorted(ctx: &Ctx, o: &mut Options, elems: Vec<Bytes>, ordered: bool) -> Result<Vec<Bytes>> {
    if o.dont_sort && !ordered && o.store.is_some() {
        // A set's order is not stable across replicas: STORE sorts it ALPHA.
        o.dont_sort = false;
        o.alpha = true;
        o.by = None;
    }
    let n = elems.len() as i64;
    let mut start = o.limit_start.max(0).min(n);
    let count = o.limit_count.max(-1).min(n);
    let mut end = if count < 0 { n - 1 } else { start + count - 1 };
    if start >= n {
        start = n - 1;
        end = n - 2;
    }
    end = end.min(n - 1);
    let range = |v: Vec<Bytes>| -> Vec<Bytes> {
        if end < start {
            Vec::new()
        } else {
            v.into_iter().skip(start as usize).take((end - start + 1) as usize).collect()
        }
    };
    if o.dont_sort {
        let mut elems = elems;
        if ordered && o.desc {
            elems.reverse();
        }
        return Ok(range(elems));
    }
    let mut bad_score = false;
    let mut v: Vec<Weighed> = Vec::with_capacity(elems.len());
    for elem in elems {
        let mut w = Weighed { elem, score: 0.0, by: None };
        let by = match &o.by {
            Some(p) => lookup_by_pattern(ctx, p, &w.elem),
            None => Some(w.elem.clone()),
        };
        if let Some(by) = by {
            if o.alpha {
                if o.by.is_some() {
                    w.by = Some(by);
                }
            } else {
                match parse_sort_weight(&by) {
                    Some(s) => w.score = s,
                    None => bad_score = true,
                }
            }
        }
        v.push(w);
    }
    if bad_score {
        return Err(Error::err("One or more scores can't be converted into double"));
    }
    let (alpha, by_pattern, desc) = (o.alpha, o.by.is_some(), o.desc);
    v.sort_by(|a, b| {
        let cmp = if !alpha {
            a.score.partial_cmp(&b.score).unwrap_or(Ordering::Equal).then_with(|| a.elem.cmp(&b.elem))
        } else if by_pattern {
            match (&a.by, &b.by) {
                (Some(x), Some(y)) => x.cmp(y),
                (x, y) => x.is_some().cmp(&y.is_some()),
            }
        } else {
            a.elem.cmp(&b.elem)
        };
        if desc { cmp.reverse() } else { cmp }
    });
    Ok(range(v.into_iter().map(|w| w.elem).collect()))
}

/// The output for each element: the element itself, or one value per GET pattern (None: missing).
fn expand(ctx: &Ctx, gets: &[Bytes], elems: Vec<Bytes>) -> Vec<Option<Bytes>> {
    if gets.is_empty() {
        return elems.into_iter().map(Some).collect();
    }
    let mut out = Vec::with_capacity(elems.len() * gets.len());
    for e in &elems {
        out.extend(gets.iter().map(|g| lookup_by_pattern(ctx, g, e)));
    }
    out
}

fn sort_generic(ctx: &mut Ctx, argv: &[Bytes], readonly: bool) -> Result<Frame> {
    let mut o = parse(argv, readonly)?;
    let key = &argv[1][..];
    let Some(dst) = o.store.clone() else {
        let src = ctx.read(key, |e| {
            count_lookup(ctx, key, e.is_some());
            source_of(e)
        })?;
        let (elems, ordered) = elements(src);
        let elems = sorted(ctx, &mut o, elems, ordered)?;
        let out = expand(ctx, &o.gets, elems);
        return Ok(Frame::Array(out.into_iter().map(|v| v.map_or(Frame::Null, Frame::Bulk)).collect()));
    };
    let now = ctx.now_ms;
    let mut w = ctx.write(&[key, &dst[..]]);
    let src = w.lookup(key, now, |e| {
        count_lookup(ctx, key, e.is_some());
        source_of(e)
    })?;
    let (elems, ordered) = elements(src);
    let elems = sorted(ctx, &mut o, elems, ordered)?;
    let out = List::from_items(
        expand(ctx, &o.gets, elems).into_iter().map(Option::unwrap_or_default),
        super::list::fill(ctx),
    );
    let existed = w.lookup(&dst, now, |e| e.is_some());
    let mut records: Vec<Vec<&[u8]>> = Vec::with_capacity(2);
    if existed {
        // A non-empty result replaces the value below (no `new` event: the key was there).
        if out.is_empty() {
            w.map().remove(&dst[..]);
        }
        records.push(vec![b"DEL", &dst[..]]);
    }
    let n = out.len() as i64;
    if !out.is_empty() {
        let mut record: Vec<&[u8]> = Vec::with_capacity(out.len() + 2);
        record.push(b"RPUSH");
        record.push(&dst[..]);
        record.extend(out.iter());
        records.push(record);
    }
    // DEL and RPUSH as one block: replay never sees the destination deleted but not refilled.
    // Redis counts the elements stored, or one for the deletion.
    w.log_all_n(&records, (n as u64).max(1));
    if !out.is_empty() {
        w.insert(dst.clone(), Entry::collection(out, 0));
        w.serve_after(&dst);
        w.notify(crate::pubsub::notify::class::LIST, "sortstore", &dst);
    } else if existed {
        w.notify(crate::pubsub::notify::class::GENERIC, "del", &dst);
    }
    Ok(Frame::Integer(n))
}

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE dst]`:
/// the sorted elements, or with STORE the length of the list stored at `dst`.
pub fn sort(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    sort_generic(ctx, argv, false)
}

/// `SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]`.
pub fn sort_ro(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    sort_generic(ctx, argv, true)
}

#[cfg(all(test, not(feature = "loom")))]
mod tests;
