//! `OBJECT ENCODING | REFCOUNT | IDLETIME | FREQ | HELP key`: what Redis's `object.c` reports
//! about a value. Encodings follow the same rules and thresholds as Redis 7.0 (see
//! `Entry::encoding`); idle time and frequency come from the entry's access word (`db::evict`).

use bytes::Bytes;

use crate::cmd::Ctx;
use crate::cmd::server::{SubSpec, help_reply, run_subcommand};
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::sync::Ordering;

pub(crate) static OBJECT_SUBS: &[SubSpec] = &[
    SubSpec { name: "object|encoding", arity: 3, handler: object_encoding },
    SubSpec { name: "object|refcount", arity: 3, handler: object_refcount },
    SubSpec { name: "object|freq", arity: 3, handler: object_freq },
    SubSpec { name: "object|idletime", arity: 3, handler: object_idletime },
    SubSpec { name: "object|help", arity: 2, handler: object_help },
];

/// Integers 0..this are Redis's shared objects (OBJ_SHARED_INTEGERS), reported with refcount
/// INT_MAX (OBJ_SHARED_REFCOUNT) unless an LRU/LFU maxmemory policy turns sharing off.
const SHARED_INTEGERS: i64 = 10000;

/// `OBJECT <subcommand> ...`.
pub fn object(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    run_subcommand(ctx, argv, OBJECT_SUBS)
}

/// The entry at `key` through `f`, counting a keyspace hit or miss (Redis's lookup for OBJECT
/// counts one) without touching the access word; None when there is no key (OBJECT then
/// replies nil).
fn lookup<R>(ctx: &Ctx, key: &[u8], f: impl FnOnce(crate::db::EntryRef<'_>) -> R) -> Option<R> {
    let r = ctx.peek(key, |e| e.map(f));
    // Counted, but announced as no `keymiss` (Redis looks up with LOOKUP_NONOTIFY).
    let stats = &ctx.shared.stats;
    crate::state::Stats::add(if r.is_some() { &stats.keyspace_hits } else { &stats.keyspace_misses }, 1);
    r
}

/// Whether the maxmemory policy is an LRU or LFU one (MAXMEMORY_FLAG_NO_SHARED_INTEGERS), and
/// whether it is LFU.
fn policy_flags(ctx: &Ctx) -> (bool, bool) {
    let cfg = ctx.shared.config();
    let p = cfg.maxmemory_policy.as_str();
    (cfg.maxmemory != 0 && (p.ends_with("-lru") || p.ends_with("-lfu")), p.ends_with("-lfu"))
}

/// `OBJECT ENCODING key`.
fn object_encoding(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(lookup(ctx, &argv[2], |e| e.encoding()).map_or(Frame::Null, |s| Frame::Bulk(Bytes::from_static(s.as_bytes()))))
}

/// `OBJECT REFCOUNT key`: 1, or INT_MAX for the integers Redis shares.
fn object_refcount(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (no_sharing, _) = policy_flags(ctx);
    let n = lookup(ctx, &argv[2], |e| match e.value() {
        // Acquire: pairs with the AcqRel CAS of INCR.
        crate::db::ValueRef::Int(n) if !no_sharing && (0..SHARED_INTEGERS).contains(&n.load(Ordering::Acquire)) => {
            i64::from(i32::MAX)
        }
        _ => 1,
    });
    Ok(n.map_or(Frame::Null, Frame::Integer))
}

/// `OBJECT FREQ key`: the LFU counter (decayed to now), only under an LFU policy.
fn object_freq(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let Some(word) = lookup(ctx, &argv[2], |e| e.access()) else { return Ok(Frame::Null) };
    let (_, lfu) = policy_flags(ctx);
    if !lfu {
        return Err(Error::err(
            "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when \
             switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ));
    }
    Ok(Frame::Integer(i64::from(crate::db::evict::lfu_decr_and_return(word))))
}

/// `OBJECT IDLETIME key`: seconds since the last access, unless the policy is an LFU one.
fn object_idletime(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let Some(ms) = lookup(ctx, &argv[2], crate::db::evict::idle_ms) else { return Ok(Frame::Null) };
    let (_, lfu) = policy_flags(ctx);
    if lfu {
        return Err(Error::err(
            "An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching \
             between policies at runtime LRU and LFU data will take some time to adjust.",
        ));
    }
    Ok(Frame::Integer((ms / 1000) as i64))
}

/// `OBJECT HELP`.
fn object_help(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(help_reply(
        &argv[0],
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    ))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::{Harness, bulk, int};

    /// Strings the bitmap and HyperLogLog commands build in place are `raw` whatever their length,
    /// as Redis (createRawStringObject / dbUnshareStringValue); a plain SET of the same bytes is
    /// `embstr` (each reply checked against redis-server 7.0.15).
    #[test]
    fn bitmap_and_hll_strings_are_raw() {
        let mut h = Harness::new();
        let enc = |h: &mut Harness, k: &str| h.run(&["OBJECT", "ENCODING", k]);
        assert_eq!(h.run(&["SETBIT", "a", "0", "1"]), int(0));
        assert_eq!(enc(&mut h, "a"), bulk("raw"));
        h.run(&["SET", "b", "x"]);
        assert_eq!(enc(&mut h, "b"), bulk("embstr"));
        h.run(&["SETBIT", "b", "0", "1"]);
        assert_eq!(enc(&mut h, "b"), bulk("raw"));
        h.run(&["BITOP", "OR", "c", "a", "b"]);
        assert_eq!(enc(&mut h, "c"), bulk("raw"));
        h.run(&["BITFIELD", "d", "SET", "u8", "0", "1"]);
        assert_eq!(enc(&mut h, "d"), bulk("raw"));
        assert_eq!(h.run(&["PFADD", "h", "a"]), int(1));
        assert_eq!(enc(&mut h, "h"), bulk("raw"));
        h.run(&["PFADD", "h2"]);
        assert_eq!(enc(&mut h, "h2"), bulk("raw"));
        h.run(&["PFMERGE", "h3", "h", "h2"]);
        assert_eq!(enc(&mut h, "h3"), bulk("raw"));
        h.run(&["SET", "n", "12"]);
        assert_eq!(enc(&mut h, "n"), bulk("int"));
    }

    /// A SETBIT that changes no bit touches nothing (Redis 7.0.15 checks before signalling): a WATCH
    /// on the key survives it, and the value keeps its encoding; one that changes a bit aborts EXEC.
    #[test]
    fn setbit_that_changes_nothing_keeps_watch() {
        let mut h = Harness::new();
        h.run(&["SET", "k", "x"]);
        h.run(&["WATCH", "k"]);
        assert_eq!(h.run(&["SETBIT", "k", "1", "1"]), int(1));
        h.run(&["MULTI"]);
        h.run(&["GET", "k"]);
        assert_eq!(h.run(&["EXEC"]), crate::cmd::testing::arr(vec![bulk("x")]));
        assert_eq!(h.run(&["OBJECT", "ENCODING", "k"]), bulk("embstr"));
        h.run(&["WATCH", "k"]);
        assert_eq!(h.run(&["SETBIT", "k", "0", "1"]), int(0));
        h.run(&["MULTI"]);
        h.run(&["GET", "k"]);
        assert_eq!(h.run(&["EXEC"]), crate::resp::Frame::NullArray);
    }
}
