//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG. Mirrors Redis's `hyperloglog.c`
//! (the format and the estimator are in [`crate::db::hll`]).
//!
//! An HLL is an ordinary string value; a write takes the key's stripe exclusively, edits a copy of
//! the bytes and replaces the entry (its TTL kept).
//!
//! # AOF records
//! PFADD, PFMERGE and PFDEBUG are logged as given (deterministic over the same values) when they
//! changed something. PFCOUNT of one key whose cached cardinality is stale stores the fresh one
//! in the value's header, as Redis does (GET then shows it): that is logged as `PFCOUNT key`,
//! which replays the same update.

use bytes::Bytes;

use super::Ctx;
use super::bits::{count_lookup, lookup_string, read_string, store_string};
use super::collection::record;
use crate::db::WriteLock;
use crate::db::hll::{self, Corrupt};
use crate::error::{Error, Result};
use crate::pubsub::notify::class;
use crate::resp::Frame;
use crate::sync::fault::Fault;

fn not_hll() -> Error {
    Error::Raw("WRONGTYPE Key is not a valid HyperLogLog string value.".into())
}

fn corrupt(_: Corrupt) -> Error {
    Error::Raw("INVALIDOBJ Corrupted HLL object detected".into())
}

/// `s` if it is an HLL, else Redis's WRONGTYPE reply.
fn checked(s: Bytes) -> Result<Bytes> {
    if hll::is_hll(&s) { Ok(s) } else { Err(not_hll()) }
}

/// The HLL at `key` for writing (None: missing), with its expiry.
fn lookup_hll(w: &mut WriteLock, key: &[u8], now: u64) -> Result<Option<(Bytes, u64)>> {
    match lookup_string(w, key, now)? {
        Some((s, ttl)) => Ok(Some((checked(s)?, ttl))),
        None => Ok(None),
    }
}

fn sparse_max(ctx: &Ctx) -> usize {
    ctx.shared.config().hll_sparse_max_bytes
}

/// `PFADD key [element ...]`: 1 when a register changed or the key was created.
pub fn pfadd(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let key = &argv[1];
    // Fast path, no lock: an existing HLL that no element raises is left as it is, and the reply
    // is 0 (registers only grow, so the no-op holds at the instant of this read).
    if argv.len() > 2 {
        let noop = ctx.read(key, |e| {
            e.and_then(|e| e.string_bytes()).is_some_and(|s| {
                hll::is_hll(&s)
                    && argv[2..].iter().all(|ele| {
                        let (index, count) = hll::pattern(ele);
                        hll::would_raise(&s, index, count) == Some(false)
                    })
            })
        });
        if noop {
            return Ok(Frame::Integer(0));
        }
    }
    let max = sparse_max(ctx);
    let now = ctx.now_ms;
    let mut w = ctx.write(&[key]);
    let cur = lookup_hll(&mut w, key, now)?;
    let mut updated = cur.is_none();
    let (mut s, ttl) = match cur {
        Some((s, ttl)) => (s.to_vec(), ttl),
        None => (hll::new_sparse(), 0),
    };
    for ele in &argv[2..] {
        updated |= hll::add(&mut s, ele, max).map_err(corrupt)?;
    }
    if updated {
        hll::invalidate(&mut s);
        store_string(&w, key, s, ttl);
        // Announced before the record: logging it gives the lock up.
        w.notify(class::STRING, "pfadd", key);
        w.log_or_fault(Fault::BitLogOutsideLock, &record(argv));
    }
    Ok(Frame::Integer(updated as i64))
}

/// `PFCOUNT key [key ...]`: the estimated cardinality (of the union, for several keys).
pub fn pfcount(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let now = ctx.now_ms;
    if argv.len() > 2 {
        let keys: Vec<&[u8]> = argv[1..].iter().map(|k| &k[..]).collect();
        let mut w = ctx.write(&keys);
        let mut max = vec![0u8; hll::REGISTERS];
        for k in &argv[1..] {
            let found = lookup_hll(&mut w, k, now);
            count_lookup(ctx, k, !matches!(found, Ok(None)));
            if let Some((s, _)) = found? {
                hll::merge_into(&mut max, &s).map_err(corrupt)?;
            }
        }
        return Ok(Frame::Integer(hll::count_raw(&max) as i64));
    }
    let key = &argv[1];
    // Fast path: a valid cache is read without any lock.
    match read_string(ctx, key)?.map(checked).transpose()? {
        None => return Ok(Frame::Integer(0)),
        Some(s) => {
            if let Some(card) = hll::cached(&s) {
                return Ok(Frame::Integer(card as i64));
            }
        }
    }
    let mut w = ctx.write(&[key]);
    let Some((s, ttl)) = lookup_hll(&mut w, key, now)? else { return Ok(Frame::Integer(0)) };
    if let Some(card) = hll::cached(&s) {
        return Ok(Frame::Integer(card as i64));
    }
    let card = hll::count(&s).map_err(corrupt)?;
    let mut s = s.to_vec();
    hll::set_cache(&mut s, card);
    store_string(&w, key, s, ttl);
    w.log(&record(argv));
    Ok(Frame::Integer(card as i64))
}

/// `PFMERGE destkey [sourcekey ...]`: the union (the destination's own registers included) into
/// the destination, dense when any input was.
pub fn pfmerge(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let keys: Vec<&[u8]> = argv[1..].iter().map(|k| &k[..]).collect();
    let now = ctx.now_ms;
    let max_bytes = sparse_max(ctx);
    let mut w = ctx.write(&keys);
    let mut max = vec![0u8; hll::REGISTERS];
    let mut use_dense = false;
    let mut dest = None;
    for (j, k) in argv[1..].iter().enumerate() {
        let found = lookup_hll(&mut w, k, now);
        count_lookup(ctx, k, !matches!(found, Ok(None)));
        let Some((s, ttl)) = found? else { continue };
        use_dense |= hll::is_dense(&s);
        hll::merge_into(&mut max, &s).map_err(corrupt)?;
        if j == 0 {
            dest = Some((s, ttl));
        }
    }
    let (mut s, ttl) = match dest {
        Some((s, ttl)) => (s.to_vec(), ttl),
        None => (hll::new_sparse(), 0),
    };
    if use_dense {
        hll::to_dense(&mut s).map_err(corrupt)?;
    }
    for (i, &m) in max.iter().enumerate() {
        if m != 0 {
            // As Redis, a corrupt destination is not reported here (the merge above checked it).
            let _ = hll::set_register(&mut s, i, m, max_bytes);
        }
    }
    hll::invalidate(&mut s);
    store_string(&w, &argv[1], s, ttl);
    // As Redis, a `pfadd` event: a merge is a mass-add.
    w.log_notify(&record(argv), class::STRING, "pfadd");
    Ok(Frame::ok())
}

/// `PFDEBUG GETREG|DECODE|ENCODING|TODENSE key`.
pub fn pfdebug(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let key = &argv[2];
    let now = ctx.now_ms;
    let mut w = ctx.write(&[key]);
    let Some((s, ttl)) = lookup_hll(&mut w, key, now)? else {
        return Err(Error::err("The specified key does not exist"));
    };
    let sub = String::from_utf8_lossy(&argv[1]).into_owned();
    let to_dense = |w: &WriteLock| -> Result<Option<Vec<u8>>> {
        if hll::is_dense(&s) {
            return Ok(None);
        }
        let mut d = s.to_vec();
        hll::to_dense(&mut d).map_err(corrupt)?;
        store_string(w, key, d.clone(), ttl);
        w.log(&record(argv));
        Ok(Some(d))
    };
    match sub.to_ascii_lowercase().as_str() {
        "getreg" => {
            let d = to_dense(&w)?.unwrap_or_else(|| s.to_vec());
            Ok(Frame::Array((0..hll::REGISTERS).map(|i| Frame::Integer(i64::from(hll::register(&d, i)))).collect()))
        }
        "decode" => {
            if hll::is_dense(&s) {
                return Err(Error::err("HLL encoding is not sparse"));
            }
            Ok(Frame::Bulk(Bytes::from(hll::decode(&s))))
        }
        "encoding" => Ok(Frame::Simple(if hll::is_dense(&s) { "dense" } else { "sparse" }.into())),
        "todense" => Ok(Frame::Integer(to_dense(&w)?.is_some() as i64)),
        _ => Err(Error::err(format!("Unknown PFDEBUG subcommand '{sub}'"))),
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::{Harness, bulk, err, int, ok};
    use crate::resp::Frame;

    #[test]
    fn pf_commands_reply_as_redis() {
        // Recorded from redis-server 7.0.15.
        let mut h = Harness::new();
        assert_eq!(h.run(&["PFADD", "h"]), int(1));
        assert_eq!(h.run(&["PFADD", "h"]), int(0));
        assert_eq!(h.run(&["PFADD", "h", "a", "b", "c"]), int(1));
        assert_eq!(h.run(&["PFCOUNT", "h"]), int(3));
        assert_eq!(h.run(&["PFCOUNT", "h", "nope"]), int(3));
        h.run(&["SET", "s", "x"]);
        assert_eq!(h.run(&["PFADD", "s", "a"]), err("WRONGTYPE Key is not a valid HyperLogLog string value."));
        assert_eq!(h.run(&["PFMERGE", "m", "h", "h"]), ok());
        assert_eq!(h.run(&["PFCOUNT", "m"]), int(3));
        assert_eq!(h.run(&["PFDEBUG", "ENCODING", "m"]), Frame::Simple("sparse".into()));
        assert_eq!(h.run(&["PFDEBUG", "TODENSE", "m"]), int(1));
        assert_eq!(h.run(&["PFDEBUG", "ENCODING", "m"]), Frame::Simple("dense".into()));
        assert_eq!(h.run(&["PFDEBUG", "DECODE", "missing"]), err("ERR The specified key does not exist"));
        h.run(&["PFADD", "bad", "a"]);
        h.run(&["APPEND", "bad", "\x01"]);
        assert_eq!(h.run(&["PFCOUNT", "bad"]), err("INVALIDOBJ Corrupted HLL object detected"));
        let _ = bulk;
    }
}
