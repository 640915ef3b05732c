//! Eviction at `maxmemory`, as Redis's `evict.c` approximates it, and the access word every entry
//! carries (Redis's 24-bit `robj.lru`).
//!
//! # The access word ([`EntryRef::access`](super::EntryRef::access): the first word of each entry
//! of a block, see `block`)
//!
//! * Under an LRU (or no LFU) policy: the LRU clock of the last access, `unix seconds & 2^24-1`
//!   (Redis's `LRU_CLOCK()` at its 1000 ms resolution). Idle time is the clock's distance to it,
//!   modulo the 24-bit wrap ([`idle_ms`]).
//! * Under an LFU policy: `minutes << 8 | counter`: the last decrement time in minutes (16 bits)
//!   and a Morris counter (8 bits) that a read increments with probability
//!   `1 / ((counter - 5) * lfu-log-factor + 1)` and that loses one per `lfu-decay-time` minutes
//!   elapsed (Redis's `LFULogIncr`/`LFUDecrAndReturn`); a new key starts at 5 (`LFU_INIT_VAL`).
//!
//! Lookups update it lock-free ([`touch`], from `Ctx::read` and `WriteLock::lookup`; OBJECT, TYPE,
//! EXISTS and the TTL family look without touching, as Redis's `LOOKUP_NOTOUCH`). The store is
//! skipped when the word would not change (the clock ticks once a second and LFU counters rarely
//! grow), so a hot key read by every core is not a cache line written by every core. The word is
//! a statistic: relaxed, ordering nothing; a lost race between two readers loses one touch.
//!
//! # Choosing victims ([`Evictor::perform`])
//!
//! Before a command that may grow memory runs over `maxmemory` (where Redis's `processCommand`
//! calls `performEvictions`), keys are evicted until the estimated bytes freed cover the excess:
//! the LRU/LFU/TTL policies keep Redis's eviction pool (16 best candidates, kept across calls)
//! filled by keys sampled from every non-empty database, and evict its best live one; the random
//! policies evict a sampled key. Redis samples `maxmemory-samples` keys per eviction, one dict
//! lookup each; here a sampling round takes whole buckets (every key of a random block,
//! [`KeyMap::sample_buckets`](super::KeyMap::sample_buckets): ~12-24 keys for one directory
//! lookup, every key equally likely) and earns the pool one eviction per `maxmemory-samples`
//! keys it looked at (its `credit`), so the samples per eviction stay Redis's for a fraction of
//! the lookups. Which databases hold keys is re-read every 100 ms, not per eviction (a count is
//! a sum over the map's parts). `volatile-*` only consider keys with an expiry; when there are none to be
//! found, or the policy is `noeviction`, the command gets Redis's OOM error. Evicting stops after
//! `maxmemory-eviction-tenacity`'s time limit (checked every 16 keys) and the command runs anyway,
//! the next one evicting on (Redis's `EVICT_RUNNING`).
//!
//! Each eviction is a delete through the one delete path: the key's exclusive stripe, the map's
//! removal, `DEL` logged under the stripe (so the AOF replays to the same keyspace), WATCH
//! dirtied, the `evicted` keyspace event (class `e`), INFO `evicted_keys`. One thread evicts at a
//! time (a lock) and a writer that finds another thread evicting waits for it, as Redis's writes wait
//! for the evictions of its one thread: writes cannot outrun evictions.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use super::Keyspace;
use super::block::{EntryRef, ValueRef};
use crate::config::Config;

/// `LRU_CLOCK_MAX`: the access word's 24 bits.
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// `LFU_INIT_VAL`: a new key's LFU counter.
pub const LFU_INIT_VAL: u8 = 5;
/// `EVPOOL_SIZE`.
const POOL_SIZE: usize = 16;

/// `maxmemory-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    NoEviction,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    pub fn parse(name: &str) -> Policy {
        match name {
            "allkeys-lru" => Policy::AllkeysLru,
            "allkeys-lfu" => Policy::AllkeysLfu,
            "allkeys-random" => Policy::AllkeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }

    const ALL: [Policy; 8] = [
        Policy::NoEviction,
        Policy::AllkeysLru,
        Policy::AllkeysLfu,
        Policy::AllkeysRandom,
        Policy::VolatileLru,
        Policy::VolatileLfu,
        Policy::VolatileRandom,
        Policy::VolatileTtl,
    ];

    fn from_u8(n: u8) -> Policy {
        Policy::ALL.get(usize::from(n)).copied().unwrap_or(Policy::NoEviction)
    }

    /// MAXMEMORY_FLAG_LFU.
    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllkeysLfu | Policy::VolatileLfu)
    }

    /// MAXMEMORY_FLAG_ALLKEYS.
    fn all_keys(self) -> bool {
        matches!(self, Policy::AllkeysLru | Policy::AllkeysLfu | Policy::AllkeysRandom)
    }
}

// ---- the access word ----------------------------------------------------------------------------

/// Unix seconds, refreshed by [`tick`] (the server's 100 ms sampler: Redis's cached `lruclock`).
static NOW_SECS: AtomicU64 = AtomicU64::new(0);
/// Whether the access words hold LFU data (the last configured policy is an LFU one).
static LFU: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static LFU_LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
static LFU_DECAY_TIME: AtomicU32 = AtomicU32::new(1);

fn unix_secs_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Refresh the clock the access words are stamped with.
pub fn tick() {
    NOW_SECS.store(unix_secs_now(), Relaxed);
}

fn now_secs() -> u64 {
    match NOW_SECS.load(Relaxed) {
        0 => {
            tick();
            NOW_SECS.load(Relaxed)
        }
        s => s,
    }
}

/// `LRU_CLOCK()`.
pub fn lru_clock() -> u32 {
    (now_secs() & u64::from(LRU_CLOCK_MAX)) as u32
}

/// `LFUGetTimeInMinutes()`.
fn lfu_minutes() -> u32 {
    ((now_secs() / 60) & 0xffff) as u32
}

/// `LFUTimeElapsed(ldt)`: minutes since `ldt`, modulo the 16-bit wrap.
fn lfu_elapsed(ldt: u32) -> u32 {
    let now = lfu_minutes();
    if now >= ldt { now - ldt } else { 65535 - ldt + now }
}

/// The access word of a new object (Redis's `createObject`).
pub fn new_access() -> u32 {
    if LFU.load(Relaxed) { (lfu_minutes() << 8) | u32::from(LFU_INIT_VAL) } else { lru_clock() }
}

/// Update `e`'s access word for a lookup (Redis's `lookupKey` without `LOOKUP_NOTOUCH`).
#[inline]
pub fn touch(e: EntryRef<'_>) {
    let old = e.access();
    let new = if LFU.load(Relaxed) {
        let counter = lfu_log_incr(lfu_decr_and_return(old));
        (lfu_minutes() << 8) | u32::from(counter)
    } else {
        lru_clock()
    };
    if new != old {
        e.set_access(new);
    }
}

/// `LFUDecrAndReturn`: the word's counter, less one per `lfu-decay-time` minutes elapsed.
pub fn lfu_decr_and_return(word: u32) -> u8 {
    let ldt = word >> 8;
    let counter = word & 255;
    let decay = LFU_DECAY_TIME.load(Relaxed);
    let periods = lfu_elapsed(ldt).checked_div(decay).unwrap_or(0);
    counter.saturating_sub(periods) as u8
}

/// `LFULogIncr`: a logarithmic (Morris) increment.
fn lfu_log_incr(counter: u8) -> u8 {
    if counter == 255 {
        return 255;
    }
    let r = (random() >> 11) as f64 / (1u64 << 53) as f64;
    let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
    let p = 1.0 / (base * f64::from(LFU_LOG_FACTOR.load(Relaxed)) + 1.0);
    if r < p { counter + 1 } else { counter }
}

/// `objectSetLRUOrLFU`: the access word for a key loaded or restored with an LFU counter or an
/// idle time in seconds (RDB `FREQ`/`IDLE`, RESTORE's FREQ/IDLETIME), whichever the policy keeps;
/// None when the one it keeps was not given.
pub fn access_from(idle_s: Option<u64>, freq: Option<u8>) -> Option<u32> {
    if LFU.load(Relaxed) {
        freq.map(|f| (lfu_minutes() << 8) | u32::from(f))
    } else {
        idle_s.map(|idle| {
            let clock = i64::from(lru_clock());
            let idle = i64::try_from(idle % u64::from(LRU_CLOCK_MAX)).unwrap_or(0);
            let abs = clock - idle;
            (if abs < 0 { abs + i64::from(LRU_CLOCK_MAX) } else { abs }) as u32
        })
    }
}

/// `estimateObjectIdleTime`: ms since the entry's last access (at the clock's 1 s resolution).
pub fn idle_ms(e: EntryRef<'_>) -> u64 {
    let clock = u64::from(lru_clock());
    let lru = u64::from(e.access() & LRU_CLOCK_MAX);
    let secs = if clock >= lru { clock - lru } else { clock + (u64::from(LRU_CLOCK_MAX) - lru) };
    secs * 1000
}

/// A thread's xorshift64* generator (LFU increments, sampling).
pub fn random() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            (t as u64 ^ (crate::util::thread_slot() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

// ---- what an entry costs ------------------------------------------------------------------------

use crate::memory::chunk_bytes as chunk;

/// A block's share of its bucket's directory entry (flurry's node, the slot and flurry's table bin:
/// ~177 bytes, `tests/density.rs`) and of the block's 16-byte header, per entry, at the ~15 entries
/// a bucket averages.
pub const BLOCK_SHARE: usize = 13;
/// Per element of a collection: a rough average of the compact and the large encodings.
const ELEMENT_BYTES: usize = 40;

/// What `key` and its entry cost in memory (MEMORY USAGE, and the bytes an eviction frees),
/// estimated from the block layout: the entry's bytes in its block (access word, tag, key, expiry,
/// inline value or pointer, padding) with its fingerprint and offset, its share of the block's
/// directory node, out-of-line parts (a long key's or long string's bytes), and for a cell (raw
/// string, collection) the cell and its elements: estimated from their count, a fixed cost each.
pub fn entry_bytes(_key: &[u8], e: EntryRef<'_>) -> usize {
    let value = match e.value() {
        ValueRef::Small(_) | ValueRef::Int(_) | ValueRef::Str(_) => 0,
        ValueRef::Raw(c) => {
            let len = c.lock().items.0.len();
            chunk(96) + if len > crate::db::cell::RAW_INLINE { chunk(len) } else { 0 }
        }
        ValueRef::List(c) => chunk(96) + c.lock().items.len() * ELEMENT_BYTES,
        ValueRef::Hash(c) => chunk(96) + c.lock().items.len() * 2 * ELEMENT_BYTES,
        ValueRef::Set(c) => chunk(96) + c.lock().items.len() * ELEMENT_BYTES,
        ValueRef::Zset(c) => chunk(96) + c.lock().items.len() * 2 * ELEMENT_BYTES,
        ValueRef::Stream(c) => chunk(256) + c.lock().items.len() as usize * 2 * ELEMENT_BYTES,
    };
    e.footprint(chunk) + BLOCK_SHARE + value
}

// ---- the evictor --------------------------------------------------------------------------------

/// What [`Evictor::perform`] achieved (Redis's `EVICT_OK`, `EVICT_RUNNING`, `EVICT_FAIL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Under the limit (or brought under it).
    Ok,
    /// Still over, but evicting goes on (time limit reached, or another thread evicting).
    Running,
    /// Over the limit and nothing may be evicted: refuse the command (OOM).
    Fail,
}

/// One candidate of the eviction pool: higher `score` goes first.
struct Candidate {
    score: u64,
    db: usize,
    /// The key's bytes, in a buffer the pool reuses (Redis's pool keeps a cached sds per entry):
    /// a sampled key entering the pool costs no allocation once the pool has warmed up.
    key: Vec<u8>,
}

/// A keyspace's eviction settings, pool and counter.
pub struct Evictor {
    policy: AtomicU8,
    samples: AtomicUsize,
    tenacity: AtomicU32,
    /// The eviction pool (kept across calls, as Redis's); its lock is also "one evictor at a time".
    pool: Mutex<Pool>,
    evicted: AtomicUsize,
    /// Microseconds spent over the limit (INFO `total_eviction_exceeded_time`).
    exceeded_us: AtomicU64,
}

#[derive(Default)]
struct Pool {
    candidates: Vec<Candidate>,
    next_db: usize,
    /// Victims the pool may give before the next sampling round: each round adds one per
    /// `maxmemory-samples` keys it looked at (Redis's ratio of samples to evictions).
    credit: usize,
    /// The databases that held keys at `dbs_at` (re-read every [`DBS_TTL`]: a database's key count
    /// is a sum over all its parts, too dear for every eviction).
    dbs: Vec<usize>,
    dbs_at: Option<Instant>,
    /// Key buffers of candidates that left the pool, for the next ones.
    spare: Vec<Vec<u8>>,
}

/// How long [`Pool::dbs`] is trusted. A database that gets its first keys meanwhile is sampled
/// from when it is re-read; one that empties only costs a sample that finds nothing.
const DBS_TTL: std::time::Duration = std::time::Duration::from_millis(100);

impl Pool {
    /// The databases with keys, re-read when stale or when `refresh`.
    fn live_dbs(&mut self, ks: &Keyspace, refresh: bool) -> &[usize] {
        // Under loom, every time: a model's operations must not depend on the clock.
        if refresh || cfg!(feature = "loom") || self.dbs_at.is_none_or(|t| t.elapsed() > DBS_TTL) {
            self.dbs = (0..ks.databases()).filter(|&db| !ks.db(db).is_empty()).collect();
            self.dbs_at = Some(Instant::now());
        }
        &self.dbs
    }
}

impl Default for Evictor {
    fn default() -> Self {
        Evictor {
            policy: AtomicU8::new(0),
            samples: AtomicUsize::new(5),
            tenacity: AtomicU32::new(10),
            pool: Mutex::new(Pool::default()),
            evicted: AtomicUsize::new(0),
            exceeded_us: AtomicU64::new(0),
        }
    }
}

fn param(cfg: &Config, name: &str, default: u64) -> u64 {
    cfg.get(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

impl Evictor {
    /// Take the eviction settings of `cfg` (startup, CONFIG SET).
    pub fn configure(&self, cfg: &Config) {
        let policy = Policy::parse(&cfg.maxmemory_policy);
        let idx = Policy::ALL.iter().position(|p| *p == policy).unwrap_or(0) as u8;
        if self.policy.swap(idx, Relaxed) != idx {
            // The pool's scores belong to the old policy.
            self.pool.lock().unwrap_or_else(|e| e.into_inner()).candidates.clear();
        }
        self.samples.store(param(cfg, "maxmemory-samples", 5).max(1) as usize, Relaxed);
        self.tenacity.store(param(cfg, "maxmemory-eviction-tenacity", 10).min(100) as u32, Relaxed);
        LFU.store(policy.is_lfu(), Relaxed);
        LFU_LOG_FACTOR.store(param(cfg, "lfu-log-factor", 10).min(u64::from(u32::MAX)) as u32, Relaxed);
        LFU_DECAY_TIME.store(param(cfg, "lfu-decay-time", 1).min(u64::from(u32::MAX)) as u32, Relaxed);
    }

    pub fn policy(&self) -> Policy {
        Policy::from_u8(self.policy.load(Relaxed))
    }

    /// Keys evicted so far (INFO `evicted_keys`).
    pub fn evicted_keys(&self) -> usize {
        self.evicted.load(Relaxed)
    }

    /// Milliseconds spent over the limit while evicting (INFO `total_eviction_exceeded_time`).
    pub fn exceeded_ms(&self) -> u64 {
        self.exceeded_us.load(Relaxed) / 1000
    }

    /// `evictionTimeLimitUs`.
    fn time_limit_us(&self) -> u64 {
        match self.tenacity.load(Relaxed) {
            t @ 0..=10 => 50 * u64::from(t),
            t @ 11..=99 => (500.0 * 1.15f64.powi(t as i32 - 10)) as u64,
            _ => u64::MAX,
        }
    }

    /// Evict until `used() <= maxmemory`'s excess is covered (see the module doc). `used` is
    /// the memory figure the limit applies to.
    pub fn perform(&self, ks: &Keyspace, maxmemory: u64, used: impl Fn() -> u64) -> Outcome {
        let over = |u: u64| maxmemory != 0 && u > maxmemory;
        let start_used = used();
        if !over(start_used) {
            return Outcome::Ok;
        }
        let policy = self.policy();
        if policy == Policy::NoEviction {
            return Outcome::Fail;
        }
        // One evictor at a time; a writer that finds one at work waits for it (Redis evicts on its
        // one thread before each command: writes cannot outrun evictions). Loom runs its threads
        // on one OS thread: there a busy pool is left to its holder.
        #[cfg(not(feature = "loom"))]
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        #[cfg(feature = "loom")]
        let Ok(mut pool) = self.pool.try_lock() else { return Outcome::Running };
        // Re-read under the lock: another thread may have just evicted.
        let used_now = used();
        if !over(used_now) {
            return Outcome::Ok;
        }
        let to_free = (used_now - maxmemory) as usize;
        let limit = self.time_limit_us();
        let started = Instant::now();
        let (mut freed, mut tries) = (0usize, 0usize);
        let mut outcome = Outcome::Ok;
        while freed < to_free {
            let Some((db, key)) = self.choose(ks, policy, &mut pool) else {
                outcome = Outcome::Fail;
                break;
            };
            if let Some(bytes) = self.evict(ks, db, &key, policy) {
                freed += bytes;
            }
            pool.recycle(key);
            // Every 16 keys (ghosts included), as Redis: past the time limit the command runs anyway.
            tries += 1;
            if tries.is_multiple_of(16) && started.elapsed().as_micros() as u64 > limit {
                outcome = Outcome::Running;
                break;
            }
        }
        self.exceeded_us.fetch_add(started.elapsed().as_micros() as u64, Relaxed);
        outcome
    }

    /// The next victim: `(logical db, key)`, None when nothing may be evicted.
    fn choose(&self, ks: &Keyspace, policy: Policy, pool: &mut Pool) -> Option<(usize, Vec<u8>)> {
        let samples = self.samples.load(Relaxed);
        if matches!(policy, Policy::AllkeysRandom | Policy::VolatileRandom) {
            for refresh in [false, true] {
                let dbs = pool.live_dbs(ks, refresh).to_vec();
                for _ in 0..dbs.len() {
                    pool.next_db = (pool.next_db + 1) % dbs.len();
                    let db = dbs[pool.next_db];
                    // One of the keys looked at, each as likely (reservoir sampling).
                    let (mut pick, mut seen) = (None, 0u64);
                    candidates(ks, db, policy, 1, |k, _| {
                        seen += 1;
                        if random().is_multiple_of(seen) {
                            pick = Some(k.to_vec());
                        }
                    });
                    if let Some(k) = pick {
                        return Some((db, k));
                    }
                }
            }
            return None;
        }
        // Up to a few rounds: the pool's candidates may all be ghosts (deleted since).
        for round in 0..8 {
            if pool.credit > 0
                && let Some(c) = pool.candidates.pop()
            {
                pool.credit -= 1;
                return Some((c.db, c.key));
            }
            let mut examined = 0;
            let live = pool.live_dbs(ks, round > 0).len();
            for d in 0..live {
                let db = pool.dbs[d];
                let mut n = 0;
                candidates(ks, db, policy, samples, |k, e| {
                    n += 1;
                    let score = match policy {
                        Policy::AllkeysLfu | Policy::VolatileLfu => 255 - u64::from(lfu_decr_and_return(e.access())),
                        Policy::VolatileTtl => u64::MAX - e.expire_at_ms(),
                        _ => idle_ms(e),
                    };
                    pool.insert(score, db, k);
                });
                examined += n;
            }
            if examined == 0 {
                if round == 0 {
                    continue; // the databases with keys are re-read
                }
                return None;
            }
            pool.credit = (pool.credit + (examined / samples).max(1)).min(POOL_SIZE);
        }
        None
    }

    /// Delete `key` of `db` for eviction if it is still there (and still eligible); the bytes it
    /// is estimated to free.
    fn evict(&self, ks: &Keyspace, db: usize, key: &[u8], policy: Policy) -> Option<usize> {
        let seq = Cell::new(0);
        let w = ks.write(db, &[key], &seq);
        let bytes = if policy.all_keys() {
            // One lookup: the removal reports what it removed.
            w.map().remove_with(key, |e| e.map(|e| entry_bytes(key, e)))?
        } else {
            let bytes = w.map().get(key, |e| e.filter(|e| e.expire_at_ms() != 0).map(|e| entry_bytes(key, e)))?;
            w.map().remove(key);
            bytes
        };
        self.evicted.fetch_add(1, Relaxed);
        w.notify(crate::pubsub::notify::class::EVICTED, "evicted", key);
        // The record under the stripe (a loom model's broken variant pushes it after releasing it).
        // Redis's eviction propagates the DEL but counts no change since the last save.
        crate::rdb::dirty::next_record_counts(0);
        w.log_or_fault(crate::sync::fault::Fault::EvictLogOutsideLock, &[b"DEL", key]);
        Some(bytes)
    }
}

/// Run `f` on about `samples` keys of logical db `db` that `policy` may evict (Redis samples the
/// main dict for `allkeys-*`, the expires dict for `volatile-*`), drawn from the map's blocks
/// ([`KeyMap::sample`](super::KeyMap::sample)). A volatile policy keeps the keys with an expiry,
/// drawing more (in proportion to how few keys have one, bounded) until `samples` are found.
/// Whether any key was found.
fn candidates(
    ks: &Keyspace,
    db: usize,
    policy: Policy,
    samples: usize,
    mut f: impl FnMut(&[u8], EntryRef<'_>),
) -> bool {
    let map = ks.db(db);
    if policy.all_keys() {
        return map.sample_buckets(samples, random, f) > 0;
    }
    let len = map.len();
    if len == 0 {
        return false;
    }
    let expires = map.expires();
    if expires == 0 {
        return false;
    }
    // Draws per key with an expiry found, at most 64 rounds of `samples`.
    let draws = samples.saturating_mul(len.div_ceil(expires)).min(samples.saturating_mul(64));
    let mut found = 0;
    map.sample(draws, |k, e| {
        if found < samples && e.expire_at_ms() != 0 {
            found += 1;
            f(k, e);
        }
    });
    if found > 0 {
        return true;
    }
    // Keys with an expiry are too rare to draw (the map keeps no index of them, as Redis's
    // expires dict): walk the buckets from a random part until some are found.
    let start = random() % super::PARTS as u64;
    let mut cursor = start;
    loop {
        cursor = map.scan(cursor, samples.max(16), |k, e| {
            if found < samples && e.expire_at_ms() != 0 {
                found += 1;
                f(k, e);
            }
        });
        if found > 0 || cursor == 0 {
            break;
        }
    }
    if found == 0 && start != 0 {
        // The parts before the starting one.
        let mut cursor = 0;
        loop {
            cursor = map.scan(cursor, samples.max(16), |k, e| {
                if found < samples && e.expire_at_ms() != 0 {
                    found += 1;
                    f(k, e);
                }
            });
            if found > 0 || cursor == 0 || cursor % super::PARTS as u64 >= start {
                break;
            }
        }
    }
    found > 0
}

impl Pool {
    /// Redis's `evictionPoolPopulate` step for one sampled key: keep the [`POOL_SIZE`] best,
    /// ascending by score (the best last).
    fn insert(&mut self, score: u64, db: usize, key: &[u8]) {
        let c = &mut self.candidates;
        let buf = if let Some(i) = c.iter().position(|x| x.db == db && x.key[..] == *key) {
            c.remove(i).key
        } else if c.len() == POOL_SIZE && c.first().is_some_and(|x| x.score >= score) {
            return;
        } else {
            let mut buf = self.spare.pop().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(key);
            buf
        };
        let at = c.partition_point(|x| x.score < score);
        c.insert(at, Candidate { score, db, key: buf });
        if c.len() > POOL_SIZE {
            let gone = c.remove(0).key;
            self.recycle(gone);
        }
    }

    /// Keep `key`'s buffer for a later candidate (as many as the pool holds; a long key's
    /// buffer is let go, so the pool never keeps more than small buffers).
    fn recycle(&mut self, key: Vec<u8>) {
        if self.spare.len() <= POOL_SIZE && key.capacity() <= 256 {
            self.spare.push(key);
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::db::Entry;
    use bytes::Bytes;

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        LFU_LOG_FACTOR.store(10, Relaxed);
        let mut c = LFU_INIT_VAL;
        for _ in 0..1000 {
            c = lfu_log_incr(c);
        }
        // Redis's table for factor 10: about 18 after 100 hits, 10 after 1000 from 0.
        assert!((8..=40).contains(&c), "counter {c}");
        LFU_DECAY_TIME.store(1, Relaxed);
        let now = lfu_minutes();
        let word = ((now.wrapping_sub(3) & 0xffff) << 8) | 20;
        assert_eq!(lfu_decr_and_return(word), 17);
        assert_eq!(lfu_decr_and_return((now << 8) | 20), 20);
    }

    #[test]
    fn pool_keeps_the_best_sixteen_ascending() {
        let mut p = Pool::default();
        for i in 0..40u64 {
            p.insert(i * 7 % 41, 0, format!("k{i}").as_bytes());
        }
        assert_eq!(p.candidates.len(), POOL_SIZE);
        assert!(p.candidates.windows(2).all(|w| w[0].score <= w[1].score));
        assert_eq!(p.candidates.last().unwrap().score, 40);
        p.insert(1000, 0, b"k3");
        assert_eq!(p.candidates.iter().filter(|c| &c.key[..] == b"k3").count(), 1);
        assert_eq!(p.candidates.pop().unwrap().key, b"k3");
        assert!(!p.spare.is_empty(), "the candidates pushed out left their buffers");
        let spare = p.spare.len();
        p.insert(2000, 0, b"new");
        assert_eq!(p.spare.len(), spare - 1, "a new candidate reuses a buffer");
    }

    /// allkeys-random frees what was asked, each key at its estimate from the block layout;
    /// volatile-random finds the few keys that have an expiry among many without.
    #[test]
    fn random_policies_evict_by_block_estimates() {
        let ks = Keyspace::new(1, 16);
        let mut cfg = Config { maxmemory_policy: "allkeys-random".into(), ..Config::default() };
        cfg.apply("maxmemory-eviction-tenacity", &["100".into()]).unwrap();
        ks.evictor().configure(&cfg);
        let seq = Cell::new(0);
        let far = crate::util::now_ms() + 3_600_000;
        for i in 0..3000 {
            let k = format!("k{i:05}");
            let w = ks.write(0, &[k.as_bytes()], &seq);
            w.insert(Bytes::from(k), Entry::string_copied(b"v", far));
        }
        let per_key = ks.db(0).get(b"k01000", |e| entry_bytes(b"k01000", e.unwrap()));
        assert!((16..128).contains(&per_key), "{per_key} bytes per key");
        assert_eq!(ks.evictor().perform(&ks, 1, || 1 + 2100 * per_key as u64), Outcome::Ok);
        assert_eq!(ks.evictor().evicted_keys(), 2100);
        assert_eq!(ks.db(0).len(), 900);

        cfg.maxmemory_policy = "volatile-random".into();
        ks.evictor().configure(&cfg);
        for i in 0..3000 {
            let k = format!("p{i:05}");
            let w = ks.write(0, &[k.as_bytes()], &seq);
            w.insert(Bytes::from(k), Entry::string_copied(b"v", 0));
        }
        assert_eq!(ks.evictor().perform(&ks, 1, || 1 + 900 * per_key as u64), Outcome::Ok);
        assert_eq!(ks.db(0).len(), 3000);
        assert_eq!(ks.db(0).expires(), 0);
    }

    #[test]
    fn tenacity_time_limits_follow_redis() {
        let e = Evictor::default();
        for (t, us) in [(0, 0), (10, 500), (11, 575), (100, u64::MAX)] {
            e.tenacity.store(t, Relaxed);
            assert_eq!(e.time_limit_us(), us, "tenacity {t}");
        }
    }
}
