//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG. Mirrors Redis's `hyperloglog.c`
//! (the format and the estimator are in [`crate::db::hll`]).
//!
//! An HLL is an ordinary string value; PFADD, PFCOUNT's cache update and PFDEBUG change it in place
//! (`cmd::rawstr`); PFMERGE stores the union under its keys' exclusive stripes.
//!
//! # AOF records
//! PFADD, PFMERGE and PFDEBUG are logged as given (deterministic over the same values) when they
//! changed something. PFCOUNT of one key whose cached cardinality is stale stores the fresh one
//! in the value's header, as Redis does (GET then shows it): that is logged as `PFCOUNT key`,
//! which replays the same update.

use bytes::Bytes;
use smallvec::SmallVec;

use super::Ctx;
use super::bits::{count_lookup, lookup_string, store_string};
use super::collection::record;
use super::rawstr;
use crate::db::WriteLock;
use crate::db::hll::{self, Corrupt};
use crate::error::{Error, Result};
use crate::pubsub::notify::class;
use crate::resp::Frame;

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

/// `PFADD key [element ...]`: 1 when a register changed or the key was created. In place.
pub fn pfadd(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let key = &argv[1];
    // Each element's register and count, hashed once and before any lock: the hot key's cell lock
    // is held only for the register reads (and the writes) below.
    let patterns: SmallVec<[(usize, u8); 4]> = argv[2..].iter().map(|ele| hll::pattern(ele)).collect();
    // Fast path, no stripe: an existing HLL that no element raises is left as it is, and the reply
    // is 0 (registers only grow, so the no-op holds at the instant of this read).
    let mut found = true;
    if !patterns.is_empty() {
        let noop = rawstr::peek(ctx, key, |s| {
            hll::is_hll(s) && patterns.iter().all(|&(index, count)| hll::would_raise(s, index, count) == Some(false))
        });
        if noop == Some(true) {
            return Ok(Frame::Integer(0));
        }
        found = noop.is_some();
    }
    let max = sparse_max(ctx);
    // The elements added to `s`, the record logged when a register changed (or `created`). An
    // element that finds the HLL corrupt changes nothing, but those before it stay added (as in
    // Redis): the record then holds only them.
    let add = |s: &mut Vec<u8>, w: &WriteLock, created: bool| {
        let mut updated = created;
        // Redis counts each element that raised a register, and the creation.
        let mut changes = created as u64;
        let mut failed = None;
        for (i, &(index, count)) in patterns.iter().enumerate() {
            match hll::set_register(s, index, count, max) {
                Ok(u) => {
                    updated |= u;
                    changes += u as u64;
                }
                Err(c) => {
                    failed = Some((i + 2, c));
                    break;
                }
            }
        }
        if updated {
            hll::invalidate(s);
            if created {
                // The key exists before its `pfadd` event (Redis: `new`, then `pfadd`).
                rawstr::create(w, key, crate::db::raw_bytes(s.clone()), 0);
            }
            w.notify(class::STRING, "pfadd", key);
            w.log_n(&record(&argv[..failed.as_ref().map_or(argv.len(), |(end, _)| *end)]), changes);
        }
        match failed {
            Some((_, c)) => Err(corrupt(c)),
            None => Ok(Frame::Integer(updated as i64)),
        }
    };
    rawstr::write_seen(
        ctx,
        key,
        found,
        check_hll,
        |s, w| rawstr::as_vec(s, |s| add(s, w, false)),
        |w| {
            let mut s = hll::new_sparse();
            add(&mut s, w, true)
        },
    )
}

/// Redis's `isHLLObjectOrReply` on the bytes of a string.
fn check_hll(s: &[u8]) -> Result<()> {
    if hll::is_hll(s) { Ok(()) } else { Err(not_hll()) }
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
    // Fast path, no stripe: a valid cache.
    let cached = rawstr::read(ctx, key, |s| s.map(|s| check_hll(s).map(|()| hll::cached(s))).transpose())??;
    match cached {
        None => return Ok(Frame::Integer(0)),
        Some(Some(card)) => return Ok(Frame::Integer(card as i64)),
        Some(None) => {}
    }
    // The fresh cardinality goes into the header, in place, logged as `PFCOUNT key`.
    rawstr::write(
        ctx,
        key,
        check_hll,
        |s, w| {
            if let Some(card) = hll::cached(s) {
                return Ok(Frame::Integer(card as i64));
            }
            let card = hll::count(s).map_err(corrupt)?;
            hll::set_cache(s, card);
            w.log(&record(argv));
            Ok(Frame::Integer(card as i64))
        },
        |_| Ok(Frame::Integer(0)),
    )
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

/// `PFDEBUG GETREG|DECODE|ENCODING|TODENSE key`: as Redis, every subcommand looks the key up for
/// writing (it becomes `raw`); GETREG and TODENSE turn a sparse HLL dense, logged as given.
pub fn pfdebug(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let key = &argv[2];
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    let to_dense = |s: &mut Vec<u8>, w: &WriteLock| -> Result<bool> {
        if hll::is_dense(s) {
            return Ok(false);
        }
        hll::to_dense(s).map_err(corrupt)?;
        w.log(&record(argv));
        Ok(true)
    };
    rawstr::write(
        ctx,
        key,
        check_hll,
        |s, w| match sub.as_str() {
            "getreg" => {
                rawstr::as_vec(s, |s| to_dense(s, w))?;
                Ok(Frame::Array((0..hll::REGISTERS).map(|i| Frame::Integer(i64::from(hll::register(s, i)))).collect()))
            }
            "decode" if hll::is_dense(s) => Err(Error::err("HLL encoding is not sparse")),
            "decode" => Ok(Frame::Bulk(Bytes::from(hll::decode(s)))),
            "encoding" => Ok(Frame::Simple(if hll::is_dense(s) { "dense" } else { "sparse" }.into())),
            "todense" => Ok(Frame::Integer(rawstr::as_vec(s, |s| to_dense(s, w))? as i64)),
            _ => Err(Error::err(format!("Unknown PFDEBUG subcommand '{}'", String::from_utf8_lossy(&argv[1])))),
        },
        |_| Err(Error::err("The specified key does not exist")),
    )
}

/// `PFSELFTEST`: Redis's self test of the HLL code (about 10 million additions, a second or two),
/// run so that no other client waits for it (see `cmd::offload`).
pub fn pfselftest(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    let max = sparse_max(ctx);
    let seed = crate::util::now_ms() ^ (std::process::id() as u64) << 40;
    ctx.offload(usize::MAX, || hll::selftest(1000, 10_000_000, max, seed)).map_err(Error::err)?;
    Ok(Frame::ok())
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
        // More elements than PFADD hashes on the stack: all added, a repeat is a no-op, one new
        // element among repeats is an add.
        let ten = ["PFADD", "h2", "e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"];
        assert_eq!(h.run(&ten), int(1));
        assert_eq!(h.run(&["PFADD", "h2", "e9", "e8", "e7", "e6", "e5", "e4", "e3", "e2", "e1", "e0"]), int(0));
        assert_eq!(h.run(&["PFADD", "h2", "e9", "e8", "e7", "e6", "e5", "x4", "e3", "e2", "e1", "e0"]), int(1));
        assert_eq!(h.run(&["PFCOUNT", "h2"]), int(11));
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
