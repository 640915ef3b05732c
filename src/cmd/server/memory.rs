//! `MEMORY USAGE key [SAMPLES n] | STATS | DOCTOR | PURGE | MALLOC-STATS | HELP`: Redis's memory
//! introspection (`object.c`'s `memoryCommand`), over this server's own figures: the counting
//! allocator's live bytes (glibc chunk sizes, see `memory`) and the per-entry estimate of
//! `db::evict::entry_bytes`.

use bytes::Bytes;

use super::{SubSpec, help_reply, run_subcommand};
use crate::cmd::{Ctx, arg_i64, is_opt};
use crate::error::{Error, Result};
use crate::resp::Frame;

pub(crate) static MEMORY_SUBS: &[SubSpec] = &[
    SubSpec { name: "memory|doctor", arity: 2, handler: memory_doctor },
    SubSpec { name: "memory|malloc-stats", arity: 2, handler: memory_malloc_stats },
    SubSpec { name: "memory|purge", arity: 2, handler: memory_purge },
    SubSpec { name: "memory|stats", arity: 2, handler: memory_stats },
    SubSpec { name: "memory|usage", arity: -3, handler: memory_usage },
    SubSpec { name: "memory|help", arity: 2, handler: memory_help },
];

/// `MEMORY <subcommand> ...`.
pub fn memory(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    run_subcommand(ctx, argv, MEMORY_SUBS)
}

fn int(n: u64) -> Frame {
    Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn double(x: f64) -> Frame {
    Frame::Double(Bytes::from(crate::db::zset::score::format_score(x)))
}

/// `MEMORY USAGE key [SAMPLES count]`: the bytes the key and its value take here. As in Redis the
/// key is found without an expiry check, and SAMPLES (0: all) is parsed and checked; the estimate
/// of a collection here does not sample (see `db::evict::entry_bytes`).
fn memory_usage(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let mut j = 3;
    while j < argv.len() {
        if is_opt(&argv[j], "samples") && j + 1 < argv.len() {
            if arg_i64(&argv[j + 1])? < 0 {
                return Err(Error::Syntax);
            }
            j += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    let key = &argv[2];
    let n = ctx.db().get(key, |e| e.map(|e| crate::db::evict::entry_bytes(key, e)));
    Ok(n.map_or(Frame::Null, |n| int(n as u64)))
}

/// The figures MEMORY STATS and DOCTOR report.
struct Overhead {
    peak: u64,
    total: u64,
    startup: u64,
    clients: u64,
    aof_buffer: u64,
    lua: u64,
    functions: u64,
    /// Per non-empty db: (index, keys, keys with an expiry).
    dbs: Vec<(usize, u64, u64)>,
    rss: u64,
}

impl Overhead {
    fn of(ctx: &Ctx) -> Overhead {
        let shared = ctx.shared;
        let total = crate::memory::used_bytes();
        let rss = crate::memory::rss_bytes();
        let peak = crate::memory::peak_bytes().max(total);
        let clients: u64 = shared.clients.all().iter().map(|c| super::client::buffer_sizes(c).total).sum();
        let dbs = (0..shared.ks.databases())
            .filter(|&db| !shared.ks.db(db).is_empty())
            .map(|db| {
                let (keys, expires) = shared.ks.key_counts(db);
                (db, keys as u64, expires as u64)
            })
            .collect();
        Overhead {
            peak,
            total,
            startup: shared.used_memory_startup.min(total),
            clients,
            aof_buffer: 0,
            lua: shared.scripting.lua_memory() as u64,
            functions: 0,
            dbs,
            rss,
        }
    }

    /// The hash table bytes of a db: per key, its share of its bucket's directory entry and block
    /// header (`evict::BLOCK_SHARE`; its entry in the block counts as data, as Redis's robj does).
    fn db_overhead(keys: u64) -> u64 {
        keys * crate::db::evict::BLOCK_SHARE as u64
    }

    fn overhead_total(&self) -> u64 {
        self.startup
            + self.clients
            + self.aof_buffer
            + self.lua
            + self.functions
            + self.dbs.iter().map(|d| Self::db_overhead(d.1)).sum::<u64>()
    }
}

/// `MEMORY STATS`: Redis's fields, in its order, with this server's figures (no replication
/// backlog, cluster links or allocator arenas here: 0, or the process-wide figure).
fn memory_stats(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    let o = Overhead::of(ctx);
    let overhead = o.overhead_total();
    let keys: u64 = o.dbs.iter().map(|d| d.1).sum();
    let net = o.total.saturating_sub(o.startup).max(1);
    let dataset = o.total.saturating_sub(overhead);
    let frag = if o.total == 0 { 0.0 } else { o.rss as f64 / o.total as f64 };
    let mut out = vec![
        (bulk("peak.allocated"), int(o.peak)),
        (bulk("total.allocated"), int(o.total)),
        (bulk("startup.allocated"), int(o.startup)),
        (bulk("replication.backlog"), int(0)),
        (bulk("clients.slaves"), int(0)),
        (bulk("clients.normal"), int(o.clients)),
        (bulk("cluster.links"), int(0)),
        (bulk("aof.buffer"), int(o.aof_buffer)),
        (bulk("lua.caches"), int(o.lua)),
        (bulk("functions.caches"), int(o.functions)),
    ];
    for &(db, keys, expires) in &o.dbs {
        out.push((
            bulk(&format!("db.{db}")),
            Frame::Map(vec![
                (bulk("overhead.hashtable.main"), int(Overhead::db_overhead(keys))),
                (bulk("overhead.hashtable.expires"), int(expires * 32)),
                (bulk("overhead.hashtable.slot-to-keys"), int(0)),
            ]),
        ));
    }
    out.extend([
        (bulk("overhead.total"), int(overhead)),
        (bulk("keys.count"), int(keys)),
        (bulk("keys.bytes-per-key"), int(net.checked_div(keys).unwrap_or(0))),
        (bulk("dataset.bytes"), int(dataset)),
        (bulk("dataset.percentage"), double(dataset as f64 * 100.0 / net as f64)),
        (bulk("peak.percentage"), double(if o.peak == 0 { 0.0 } else { o.total as f64 * 100.0 / o.peak as f64 })),
        (bulk("allocator.allocated"), int(o.total)),
        (bulk("allocator.active"), int(o.total)),
        (bulk("allocator.resident"), int(o.rss)),
        (bulk("allocator-fragmentation.ratio"), double(1.0)),
        (bulk("allocator-fragmentation.bytes"), int(0)),
        (bulk("allocator-rss.ratio"), double(frag)),
        (bulk("allocator-rss.bytes"), int(o.rss.saturating_sub(o.total))),
        (bulk("rss-overhead.ratio"), double(1.0)),
        (bulk("rss-overhead.bytes"), int(0)),
        (bulk("fragmentation"), double(frag)),
        (bulk("fragmentation.bytes"), int(o.rss.saturating_sub(o.total))),
    ]);
    Ok(Frame::Map(out))
}

/// `MEMORY DOCTOR`: Redis's report, from the same thresholds.
fn memory_doctor(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Ok(Frame::Verbatim(Bytes::from(doctor_report(&Overhead::of(ctx), ctx.shared.clients.all().len().max(1) as u64))))
}

fn doctor_report(o: &Overhead, clients: u64) -> String {
    if o.total < 5 << 20 {
        return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in \
                these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and \
                I will be back to our programming as soon as I finished rebooting.\n"
            .into();
    }
    let mut issues = Vec::new();
    if o.peak as f64 / o.total as f64 > 1.5 {
        issues.push(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n".to_string());
    }
    let frag = o.rss as f64 / o.total as f64;
    if frag > 1.4 && o.rss.saturating_sub(o.total) > 10 << 20 {
        issues.push(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"libc\".\n\n".to_string());
    }
    if o.clients / clients > 1024 * 200 {
        issues.push(" * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data piles on the Redis instance output buffer, or clients sending commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand better why certain clients are using a big amount of memory.\n\n".to_string());
    }
    if issues.is_empty() {
        return "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"
            .into();
    }
    let mut s = String::from("Sam, I detected a few issues in this Redis instance memory implants:\n\n");
    issues.iter().for_each(|i| s.push_str(i));
    s.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
    s
}

/// `MEMORY PURGE`: give free heap pages back to the system (glibc's `malloc_trim`; Redis purges
/// jemalloc's dirty pages).
fn memory_purge(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    crate::memory::purge();
    Ok(Frame::ok())
}

/// `MEMORY MALLOC-STATS`: as Redis built without jemalloc.
fn memory_malloc_stats(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Ok(bulk("Stats not supported for the current allocator"))
}

/// `MEMORY HELP`.
fn memory_help(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(help_reply(
        &argv[0],
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    ))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::{Harness, err};
    use crate::resp::Frame;

    #[test]
    fn usage_answers_bytes_nil_and_redis_errors() {
        let mut h = Harness::new();
        h.run(&["SET", "k", "v"]);
        let Frame::Integer(small) = h.run(&["MEMORY", "USAGE", "k"]) else { panic!() };
        h.run(&["SET", "big", &"x".repeat(1000)]);
        let Frame::Integer(big) = h.run(&["MEMORY", "USAGE", "big", "SAMPLES", "0"]) else { panic!() };
        // A small key costs its bytes in its bucket's block (tens of bytes, see `db::block`).
        assert!(small >= 16 && big >= small + 1000, "{small} {big}");
        assert_eq!(h.run(&["MEMORY", "USAGE", "nokey"]), Frame::Null);
        assert_eq!(h.run(&["MEMORY", "USAGE", "k", "SAMPLES", "-1"]), err("ERR syntax error"));
        assert_eq!(
            h.run(&["MEMORY", "USAGE", "k", "SAMPLES", "x"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(h.run(&["MEMORY", "USAGE", "k", "SAMPLES"]), err("ERR syntax error"));
        assert_eq!(h.run(&["MEMORY", "USAGE", "k", "FOO", "1"]), err("ERR syntax error"));
    }

    #[test]
    fn doctor_says_empty_below_five_megabytes() {
        let o = super::Overhead {
            peak: 1 << 20,
            total: 1 << 20,
            startup: 0,
            clients: 0,
            aof_buffer: 0,
            lua: 0,
            functions: 0,
            dbs: vec![],
            rss: 1 << 20,
        };
        assert!(super::doctor_report(&o, 1).starts_with("Hi Sam, this instance is empty"));
        let o = super::Overhead { total: 100 << 20, peak: 400 << 20, rss: 100 << 20, ..o };
        assert!(super::doctor_report(&o, 1).contains("Peak memory"));
    }
}
