//! Client-side caching: `CLIENT TRACKING`'s tables and the invalidation messages. Mirrors Redis
//! 7.0's `tracking.c`.
//!
//! # What is remembered
//! * Default mode: the keys each read-only command of a tracking client names (its key positions,
//!   as COMMAND GETKEYS finds them; a script's read commands remember the script's declared keys),
//!   in the tracking table: key -> ids of the clients that may cache it. Keys are global, as in
//!   Redis: a key of any database invalidates that name. A modified key's entry is removed and each
//!   client still tracking (and not in BCAST mode) gets one invalidation; clients that disabled
//!   tracking are dropped from entries lazily, when the key is next modified (Redis does the same).
//!   `tracking-table-max-keys` bounds the table: past it, keys are evicted with an invalidation.
//! * BCAST mode: the prefix table (prefix -> its clients and the keys matching it that were
//!   modified since the last broadcast). Broadcasts go out at the end of the writer's batch (Redis:
//!   `beforeSleep`) and at each active-expiry tick, one message per prefix with its keys in order.
//!
//! # Cost on the write path
//! Every effective write reaches `Keyspace::touch_record` with its record (the hook WATCH uses):
//! while no key is tracked and no prefix is registered that costs one relaxed load of
//! [`Tracking::armed`]. Otherwise each key's table shard is locked briefly (sharded by key hash),
//! and the prefix table is read under a [`ShardedLock`] (a read touches only this thread's shard).
//!
//! # Ordering: no stale cache
//! A tracking read registers its keys BEFORE it reads, while holding the keys' write stripes
//! exclusively for a moment (see `Keyspace::lock_stripes_for`). A writer holds its key's stripe
//! while it changes the map and while it reaches the hook. So either the writer finished before the
//! registration (the read then sees the new value), or its hook sees the registration and sends an
//! invalidation. A tracking client's connection writes the pushes that arrived while a command ran
//! AFTER that command's reply (Redis's `tracking_pending_keys` for its own writes), so a value read
//! before a concurrent write is always followed by that write's invalidation.
//!
//! # Delivery
//! Messages are appended to the receiving client's pub/sub outbox (`pubsub::Subscriber`) and go out
//! with its next socket write; an idle client is woken. The same output limits apply (`pubsub`'s
//! for a subscribed client, `normal`'s otherwise).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

use bytes::{Bytes, BytesMut};
use crossbeam::sync::ShardedLock;
use crossbeam::utils::CachePadded;

use crate::pubsub::Subscriber;
use crate::state::ClientInfo;
use crate::sync;
use crate::util::FnvBuild;

/// Table shards: tracked reads on many cores rarely meet on one lock.
#[cfg(not(feature = "loom"))]
const SHARDS: usize = 64;
/// Few shards under loom: each lock is a modeled object.
#[cfg(feature = "loom")]
const SHARDS: usize = 2;

/// The CLIENT TRACKING flags (Redis's `CLIENT_TRACKING*`).
pub mod flag {
    pub const ON: u32 = 1;
    pub const BCAST: u32 = 2;
    pub const OPTIN: u32 = 4;
    pub const OPTOUT: u32 = 8;
    pub const NOLOOP: u32 = 16;
    pub const BROKEN_REDIR: u32 = 32;
}

thread_local! {
    /// The client whose command runs on this thread (Redis's `server.current_client`): NOLOOP
    /// skips it; 0 outside a command (active expiry).
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

/// Mark client `id` as running a command on this thread until the guard is dropped.
pub fn running(id: u64) -> CurrentGuard {
    CurrentGuard(CURRENT.with(|c| c.replace(id)))
}

/// Restores the previous current client (see [`running`]).
pub struct CurrentGuard(u64);

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

fn current() -> u64 {
    CURRENT.with(|c| c.get())
}

thread_local! {
    /// While this thread runs a connection's batch (see [`stage_batch`]): the keys its writes
    /// modified that BCAST prefixes may match, with the id of the client that wrote each.
    static STAGED: std::cell::RefCell<Option<Vec<(Bytes, u64)>>> = const { std::cell::RefCell::new(None) };
    /// This thread noted keys for a broadcast since its last [`Tracking::broadcast`]: that call
    /// must not return before they are delivered, by it or by whoever took them.
    static NOTED: Cell<bool> = const { Cell::new(false) };
}

/// The BCAST notes of the writes this thread makes from now on are kept until
/// [`Tracking::commit_staged`]: a broadcast (the expiry tick's, or another connection's batch end)
/// then never splits one batch's keys of a prefix into two pushes (Redis sends one per prefix per
/// event-loop turn). The caller (a connection running a batch) must commit before it next awaits.
pub fn stage_batch() {
    STAGED.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s = Some(Vec::new());
        }
    });
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One client's tracking state that other threads read: CLIENT LIST's `t`/`R`/`B` flags and
/// `redir=`, where its invalidations go. Lives in its [`ClientInfo`].
#[derive(Default)]
pub struct Peer {
    flags: AtomicU32,
    redirect: AtomicU64,
    /// The client it redirects to (weak: that client may go; then the redirect is broken).
    target: Mutex<Weak<ClientInfo>>,
    /// Its pub/sub outbox, where its pushes are appended.
    out: OnceLock<Arc<Subscriber>>,
    /// Reasons for its connection to wait for pushes while idle: tracking itself, and one per
    /// client redirecting to it.
    listeners: AtomicUsize,
    /// Set when its connection closed (a redirect to it is then broken).
    gone: AtomicBool,
}

impl Peer {
    /// Give the peer its outbox (once, when its connection's client state is created).
    pub fn attach(&self, out: Arc<Subscriber>) {
        let _ = self.out.set(out);
    }

    /// Its connection closed.
    pub fn mark_gone(&self) {
        self.gone.store(true, Ordering::Release);
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    pub fn is_on(&self) -> bool {
        self.flags() & flag::ON != 0
    }

    /// Whether its connection must wait for pushes while idle.
    pub fn wants_pushes(&self) -> bool {
        self.listeners.load(Ordering::Relaxed) > 0
    }

    /// CLIENT LIST's tracking flags: `t`, `R`, `B`, in Redis's order.
    pub fn list_flags(&self) -> &'static str {
        let f = self.flags();
        if f & flag::ON == 0 {
            return "";
        }
        match (f & flag::BROKEN_REDIR != 0, f & flag::BCAST != 0) {
            (false, false) => "t",
            (true, false) => "tR",
            (false, true) => "tB",
            (true, true) => "tRB",
        }
    }

    /// CLIENT GETREDIR / `redir=`: the redirect id while tracking (0 for none), else -1.
    pub fn redir(&self) -> i64 {
        if self.is_on() { self.redirect.load(Ordering::Relaxed) as i64 } else { -1 }
    }

    fn target(&self) -> Option<Arc<ClientInfo>> {
        lock(&self.target).upgrade().filter(|t| !t.tracking.gone.load(Ordering::Acquire))
    }
}

fn resp3(c: &ClientInfo) -> bool {
    c.resp.load(Ordering::Relaxed) == 3
}

/// Redis's CLIENT_PUBSUB: the client holds a subscription.
fn in_pubsub(c: &ClientInfo) -> bool {
    c.sub.load(Ordering::Relaxed) + c.psub.load(Ordering::Relaxed) + c.ssub.load(Ordering::Relaxed) > 0
}

/// The value part of an invalidation message.
enum Body<'a> {
    /// One key: `*1 $len key`.
    Key(&'a [u8]),
    /// Already encoded (a broadcast's array of keys).
    Proto(&'a [u8]),
    /// Every key (a flush): RESP's null, as the tracking client's protocol writes it.
    Null,
}

/// The prefixes of BCAST clients.
#[derive(Default)]
struct Bcast {
    clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    /// Keys matching the prefix modified since the last broadcast, with the id of the client that
    /// modified each last (0: none; NOLOOP leaves a client's own out).
    keys: Mutex<BTreeMap<Bytes, u64>>,
}

type Table = HashMap<Bytes, Vec<u64>, FnvBuild>;
type Peers = HashMap<u64, Arc<ClientInfo>, FnvBuild>;

/// Every tracked key and prefix on the server.
///
/// The two parts the no-stale ordering rests on, [`Tracking::armed`] and the key table's shard
/// locks, come from the `sync` facade, so the loom model (`loom-tests/tracking.rs`) checks them as
/// they ship; the rest (statistics, peers, prefixes, flags) is not part of that argument.
pub struct Tracking {
    /// Keys in the table + prefixes: 0 makes the write path's hook one load.
    armed: sync::AtomicUsize,
    /// Clients with tracking on (INFO `tracking_clients`).
    clients: AtomicUsize,
    keys: AtomicUsize,
    items: AtomicUsize,
    table: Box<[CachePadded<sync::Mutex<Table>>]>,
    /// Tracking clients by id, sharded: a table entry's ids are resolved here.
    peers: Box<[CachePadded<RwLock<Peers>>]>,
    prefixes: ShardedLock<BTreeMap<Bytes, Arc<Bcast>>>,
    prefix_count: AtomicUsize,
    /// Some prefix has modified keys waiting for a broadcast.
    bcast_pending: AtomicBool,
    /// Held for a whole broadcast: a writer whose keys another thread took (the expiry tick) waits
    /// here until they are delivered, so its reply never goes out before its invalidations (as in
    /// Redis, where both leave in the same event-loop turn).
    broadcasting: Mutex<()>,
    /// `tracking-table-max-keys` (0: no limit).
    max_keys: AtomicU64,
    /// How many times the last evictions stayed over the limit (Redis's `timeout_counter`).
    evict_rounds: AtomicU32,
    /// `client-output-buffer-limit` normal and pubsub: (hard, soft, seconds).
    normal_limits: [AtomicU64; 3],
    pubsub_limits: [AtomicU64; 3],
}

impl Default for Tracking {
    fn default() -> Tracking {
        Tracking {
            armed: sync::AtomicUsize::new(0),
            clients: AtomicUsize::new(0),
            keys: AtomicUsize::new(0),
            items: AtomicUsize::new(0),
            table: (0..SHARDS).map(|_| CachePadded::new(sync::Mutex::new(Table::default()))).collect(),
            peers: (0..SHARDS).map(|_| CachePadded::new(RwLock::new(HashMap::default()))).collect(),
            prefixes: ShardedLock::new(BTreeMap::new()),
            prefix_count: AtomicUsize::new(0),
            bcast_pending: AtomicBool::new(false),
            broadcasting: Mutex::new(()),
            max_keys: AtomicU64::new(1_000_000),
            evict_rounds: AtomicU32::new(0),
            normal_limits: Default::default(),
            pubsub_limits: Default::default(),
        }
    }
}

fn shard_of(key: &[u8]) -> usize {
    (crate::util::fnv1a(crate::util::FNV_OFFSET, key) % SHARDS as u64) as usize
}

fn peer_shard(id: u64) -> usize {
    (id % SHARDS as u64) as usize
}

fn push_bulk(out: &mut BytesMut, b: &[u8]) {
    out.extend_from_slice(b"$");
    crate::resp::put_decimal(out, b.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

fn push_len(out: &mut BytesMut, kind: u8, n: usize) {
    out.extend_from_slice(&[kind]);
    crate::resp::put_decimal(out, n as i64);
    out.extend_from_slice(b"\r\n");
}

/// How CLIENT TRACKING ON was asked for (parsed and checked by the command).
pub struct Options {
    pub redirect: Option<Arc<ClientInfo>>,
    pub redirect_id: u64,
    /// [`flag`] bits among BCAST, OPTIN, OPTOUT, NOLOOP.
    pub flags: u32,
    pub prefixes: Vec<Bytes>,
}

impl Tracking {
    /// Mirror `tracking-table-max-keys` and the output buffer limits (startup, CONFIG SET).
    pub fn set_config(&self, max_keys: u64, normal: (u64, u64, u64), pubsub: (u64, u64, u64)) {
        self.max_keys.store(max_keys, Ordering::Relaxed);
        for (a, v) in self.normal_limits.iter().zip([normal.0, normal.1, normal.2]) {
            a.store(v, Ordering::Relaxed);
        }
        for (a, v) in self.pubsub_limits.iter().zip([pubsub.0, pubsub.1, pubsub.2]) {
            a.store(v, Ordering::Relaxed);
        }
    }

    /// Whether any key or prefix is tracked (the write path's one check). Relaxed: a tracking read
    /// registers under its keys' stripes, which every writer of those keys holds (module doc).
    #[inline]
    pub fn is_armed(&self) -> bool {
        self.armed.load(sync::Ordering::Relaxed) != 0
    }

    /// INFO: tracking_clients, tracking_total_keys, tracking_total_items, tracking_total_prefixes.
    pub fn stats(&self) -> (usize, usize, usize, usize) {
        (
            self.clients.load(Ordering::Relaxed),
            self.keys.load(Ordering::Relaxed),
            self.items.load(Ordering::Relaxed),
            self.prefix_count.load(Ordering::Relaxed),
        )
    }

    // ---- enabling and disabling ---------------------------------------------------------------

    /// CLIENT TRACKING ON for `c` (options already checked against its state): Redis's
    /// `enableTracking`. `own` holds the client's prefixes.
    pub fn enable(&self, c: &Arc<ClientInfo>, own: &mut BTreeSet<Bytes>, opts: Options) {
        let p = &c.tracking;
        let was_on = p.is_on();
        if !was_on {
            self.clients.fetch_add(1, Ordering::Relaxed);
            p.listeners.fetch_add(1, Ordering::Relaxed);
            self.peers[peer_shard(c.id)].write().unwrap_or_else(|e| e.into_inner()).insert(c.id, c.clone());
        }
        // The old redirect target no longer hears from this client.
        self.set_target(c, opts.redirect.as_ref());
        p.redirect.store(opts.redirect_id, Ordering::Relaxed);
        // ON, the new options; BROKEN_REDIR and the old options are cleared.
        p.flags.store(flag::ON | opts.flags, Ordering::Relaxed);
        if opts.flags & flag::BCAST != 0 {
            let prefixes = if opts.prefixes.is_empty() { vec![Bytes::new()] } else { opts.prefixes };
            for prefix in prefixes {
                self.add_prefix(c, own, prefix);
            }
        }
    }

    fn set_target(&self, c: &ClientInfo, to: Option<&Arc<ClientInfo>>) {
        let mut t = lock(&c.tracking.target);
        if let Some(old) = t.upgrade() {
            old.tracking.listeners.fetch_sub(1, Ordering::Relaxed);
        }
        *t = match to {
            Some(to) => {
                to.tracking.listeners.fetch_add(1, Ordering::Relaxed);
                // An idle target must now listen: wake it to re-check.
                if let Some(out) = to.tracking.out.get() {
                    out.wake.notify_one();
                }
                Arc::downgrade(to)
            }
            None => Weak::new(),
        };
    }

    fn add_prefix(&self, c: &Arc<ClientInfo>, own: &mut BTreeSet<Bytes>, prefix: Bytes) {
        let created = {
            let mut table = self.prefixes.write().unwrap_or_else(|e| e.into_inner());
            let mut created = false;
            let bs = table.entry(prefix.clone()).or_insert_with(|| {
                self.prefix_count.fetch_add(1, Ordering::Relaxed);
                created = true;
                Arc::default()
            });
            // Joined under the table's lock: a last client leaving removes an emptied entry under
            // it, which must not take this client's registration with it.
            if lock(&bs.clients).insert(c.id, c.clone()).is_none() {
                own.insert(prefix);
            }
            created
        };
        // Outside the (non-loom) table lock: a modeled atomic is a loom switch point.
        if created {
            self.armed.fetch_add(1, sync::Ordering::Relaxed);
        }
    }

    /// CLIENT TRACKING OFF, RESET, disconnection: Redis's `disableTracking`. The client's ids in
    /// the key table are left to be dropped lazily.
    pub fn disable(&self, c: &ClientInfo, own: &mut BTreeSet<Bytes>) {
        let p = &c.tracking;
        if !own.is_empty() {
            let mut removed = 0;
            let mut table = self.prefixes.write().unwrap_or_else(|e| e.into_inner());
            for prefix in std::mem::take(own) {
                let Some(bs) = table.get(&prefix) else { continue };
                let empty = {
                    let mut clients = lock(&bs.clients);
                    clients.remove(&c.id);
                    clients.is_empty()
                };
                if empty {
                    table.remove(&prefix);
                    self.prefix_count.fetch_sub(1, Ordering::Relaxed);
                    removed += 1;
                }
            }
            drop(table);
            if removed > 0 {
                self.armed.fetch_sub(removed, sync::Ordering::Relaxed);
            }
        }
        if p.is_on() {
            self.clients.fetch_sub(1, Ordering::Relaxed);
            p.listeners.fetch_sub(1, Ordering::Relaxed);
            self.peers[peer_shard(c.id)].write().unwrap_or_else(|e| e.into_inner()).remove(&c.id);
            self.set_target(c, None);
            p.flags.store(0, Ordering::Relaxed);
        }
    }

    /// Whether `prefixes` overlap each other or `own` (Redis's `checkPrefixCollisionsOrReply`):
    /// the first overlap found, as (index of the prefix, whether with one of `own`, error text).
    pub fn prefix_collision(own: &BTreeSet<Bytes>, prefixes: &[Bytes]) -> Option<(usize, bool, String)> {
        let overlap = |a: &[u8], b: &[u8]| {
            let n = a.len().min(b.len());
            a[..n] == b[..n]
        };
        // Most calls find no overlap: sorted, any two overlapping prefixes have an overlapping
        // adjacent pair (all between a prefix and a string it begins share that prefix), so
        // O(n log n) rules it out; Redis's pairwise scan then only names the overlap it finds.
        let mut all: Vec<&[u8]> = own.iter().chain(prefixes).map(|b| &b[..]).collect();
        all.sort_unstable();
        if all.windows(2).all(|w| !overlap(w[0], w[1])) {
            return None;
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(old) = own.iter().find(|o| overlap(o, p)) {
                return Some((
                    i,
                    true,
                    format!(
                        "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not \
                         overlap.",
                        text(p),
                        text(old)
                    ),
                ));
            }
            if let Some(other) = prefixes[i + 1..].iter().find(|o| overlap(p, o)) {
                return Some((
                    i,
                    false,
                    format!(
                        "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must \
                         not overlap.",
                        text(p),
                        text(other)
                    ),
                ));
            }
        }
        None
    }

    // ---- reads ---------------------------------------------------------------------------------

    /// Remember that client `id` may cache `keys` (Redis's `trackingRememberKeys`). The caller
    /// holds the keys' stripes exclusively (module doc).
    pub fn remember<'k>(&self, id: u64, keys: impl IntoIterator<Item = &'k [u8]>) {
        for key in keys {
            let mut shard = sync::lock(&self.table[shard_of(key)]);
            match shard.get_mut(key) {
                Some(ids) => {
                    if !ids.contains(&id) {
                        ids.push(id);
                        self.items.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => {
                    shard.insert(Bytes::copy_from_slice(key), vec![id]);
                    self.items.fetch_add(1, Ordering::Relaxed);
                    self.keys.fetch_add(1, Ordering::Relaxed);
                    self.armed.fetch_add(1, sync::Ordering::Relaxed);
                }
            }
        }
    }

    /// Keep the table within `tracking-table-max-keys`: evict keys (each with an invalidation, as
    /// if modified) until under it, trying harder each time it stays over (Redis's
    /// `trackingLimitUsedSlots`, run before each command).
    pub fn limit_keys(&self) {
        let max = self.max_keys.load(Ordering::Relaxed) as usize;
        if max == 0 || self.keys.load(Ordering::Relaxed) <= max {
            self.evict_rounds.store(0, Ordering::Relaxed);
            return;
        }
        let mut effort = 100 * (self.evict_rounds.load(Ordering::Relaxed) as usize + 1);
        let start = (crate::util::fnv1a(crate::util::FNV_OFFSET, &crate::util::now_ms().to_le_bytes())) as usize;
        let mut i = 0;
        while effort > 0 && i < 4 * SHARDS {
            let victim = {
                let shard = sync::lock(&self.table[(start + i) % SHARDS]);
                shard.keys().next().cloned()
            };
            let Some(key) = victim else {
                i += 1;
                continue;
            };
            effort -= 1;
            self.invalidate_key(&key, false);
            if self.keys.load(Ordering::Relaxed) <= max {
                self.evict_rounds.store(0, Ordering::Relaxed);
                return;
            }
        }
        self.evict_rounds.fetch_add(1, Ordering::Relaxed);
    }

    // ---- writes --------------------------------------------------------------------------------

    /// `key` was modified (its stripe is held): Redis's `trackingInvalidateKey(c, key, 1)`.
    pub fn key_modified(&self, key: &[u8]) {
        self.invalidate_key(key, true);
    }

    fn invalidate_key(&self, key: &[u8], bcast: bool) {
        if bcast && self.prefix_count.load(Ordering::Relaxed) > 0 {
            self.note_for_broadcast(key);
        }
        let ids = {
            let mut shard = sync::lock(&self.table[shard_of(key)]);
            let Some(ids) = shard.remove(key) else { return };
            ids
        };
        self.keys.fetch_sub(1, Ordering::Relaxed);
        self.items.fetch_sub(ids.len(), Ordering::Relaxed);
        self.armed.fetch_sub(1, sync::Ordering::Relaxed);
        let me = if bcast { current() } else { 0 };
        for id in ids {
            let Some(target) = self.peer(id) else { continue };
            let f = target.tracking.flags();
            if f & flag::ON == 0 || f & flag::BCAST != 0 {
                continue;
            }
            if f & flag::NOLOOP != 0 && id == me {
                continue;
            }
            self.send(&target, Body::Key(key));
        }
    }

    fn peer(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.peers[peer_shard(id)].read().unwrap_or_else(|e| e.into_inner()).get(&id).cloned()
    }

    fn note_for_broadcast(&self, key: &[u8]) {
        let me = current();
        let staged = STAGED.with(|s| match &mut *s.borrow_mut() {
            Some(v) => {
                v.push((Bytes::copy_from_slice(key), me));
                true
            }
            None => false,
        });
        if !staged {
            self.note_keys_for_broadcast(&[(key, me)]);
        }
    }

    /// End [`stage_batch`] on this thread: its writes' keys join the prefixes' pending keys, for
    /// the next broadcast.
    pub fn commit_staged(&self) {
        let Some(keys) = STAGED.with(|s| s.borrow_mut().take()) else { return };
        if !keys.is_empty() {
            let keys: Vec<(&[u8], u64)> = keys.iter().map(|(k, me)| (&k[..], *me)).collect();
            self.note_keys_for_broadcast(&keys);
        }
    }

    fn note_keys_for_broadcast(&self, keys: &[(&[u8], u64)]) {
        let table = self.prefixes.read().unwrap_or_else(|e| e.into_inner());
        for (prefix, bs) in table.iter() {
            let mut pending = None;
            for &(key, me) in keys {
                if key.starts_with(prefix) {
                    pending.get_or_insert_with(|| lock(&bs.keys)).insert(Bytes::copy_from_slice(key), me);
                }
            }
            if pending.is_some() {
                self.bcast_pending.store(true, Ordering::Release);
                NOTED.with(|n| n.set(true));
            }
        }
    }

    /// FLUSHALL, FLUSHDB, SWAPDB: every tracking client is told that every key is invalid (a
    /// null), and the key table is emptied (Redis's `trackingInvalidateKeysOnFlush`).
    pub fn flushed(&self) {
        if self.clients.load(Ordering::Relaxed) > 0 {
            let all: Vec<Arc<ClientInfo>> = self
                .peers
                .iter()
                .flat_map(|s| s.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect::<Vec<_>>())
                .collect();
            for c in all {
                if c.tracking.is_on() {
                    self.send(&c, Body::Null);
                }
            }
        }
        for shard in self.table.iter() {
            let old = std::mem::take(&mut *sync::lock(shard));
            let n = old.len();
            if n > 0 {
                self.keys.fetch_sub(n, Ordering::Relaxed);
                self.items.fetch_sub(old.values().map(Vec::len).sum(), Ordering::Relaxed);
                self.armed.fetch_sub(n, sync::Ordering::Relaxed);
            }
        }
    }

    /// Send the broadcasts waiting for BCAST clients (Redis's
    /// `trackingBroadcastInvalidationMessages`): per prefix, its modified keys in order, to each
    /// of its clients (a NOLOOP client without the keys it modified itself).
    ///
    /// Returns once what this thread noted is delivered: a caller that finds its keys taken by a
    /// broadcast in progress on another thread waits for that one to end.
    pub fn broadcast(&self) {
        let noted = NOTED.with(|n| n.replace(false));
        if !noted && !self.bcast_pending.load(Ordering::Acquire) {
            return;
        }
        let _one_at_a_time = self.broadcasting.lock().unwrap_or_else(|e| e.into_inner());
        if !self.bcast_pending.swap(false, Ordering::AcqRel) {
            return;
        }
        let table = self.prefixes.read().unwrap_or_else(|e| e.into_inner());
        for bs in table.values() {
            let keys = std::mem::take(&mut *lock(&bs.keys));
            if keys.is_empty() {
                continue;
            }
            let proto = |skip: u64| {
                let n = keys.values().filter(|&&by| skip == 0 || by != skip).count();
                let mut out = BytesMut::with_capacity(16 + keys.keys().map(|k| k.len() + 16).sum::<usize>());
                push_len(&mut out, b'*', n);
                for (k, &by) in &keys {
                    if skip == 0 || by != skip {
                        push_bulk(&mut out, k);
                    }
                }
                (n, out)
            };
            let (_, all) = proto(0);
            let clients: Vec<Arc<ClientInfo>> = lock(&bs.clients).values().cloned().collect();
            for c in clients {
                if c.tracking.flags() & flag::NOLOOP != 0 {
                    let (n, own) = proto(c.id);
                    if n > 0 {
                        self.send(&c, Body::Proto(&own));
                    }
                } else {
                    self.send(&c, Body::Proto(&all));
                }
            }
        }
    }

    /// Deliver one invalidation for tracking client `c` (Redis's `sendTrackingMessage`): a RESP3
    /// push to it, or to its redirect target; to a RESP2 target in pub/sub mode a message on
    /// `__redis__:invalidate`; nothing to a RESP2 client otherwise. A redirect to a client that is
    /// gone marks `c` broken and tells it (RESP3).
    fn send(&self, c: &ClientInfo, body: Body) {
        let p = &c.tracking;
        let redirecting = p.redirect.load(Ordering::Relaxed) != 0;
        let held;
        let dest: &ClientInfo = if redirecting {
            match p.target() {
                Some(t) => {
                    held = t;
                    &held
                }
                None => {
                    p.flags.fetch_or(flag::BROKEN_REDIR, Ordering::Relaxed);
                    if resp3(c) {
                        let mut out = BytesMut::new();
                        push_len(&mut out, b'>', 2);
                        push_bulk(&mut out, b"tracking-redir-broken");
                        out.extend_from_slice(b":");
                        crate::resp::put_decimal(&mut out, p.redirect.load(Ordering::Relaxed) as i64);
                        out.extend_from_slice(b"\r\n");
                        self.deliver(c, &out);
                    }
                    return;
                }
            }
        } else {
            c
        };
        let mut out = BytesMut::new();
        if resp3(dest) {
            push_len(&mut out, b'>', 2);
            push_bulk(&mut out, b"invalidate");
        } else if redirecting && in_pubsub(dest) {
            push_len(&mut out, b'*', 3);
            push_bulk(&mut out, b"message");
            push_bulk(&mut out, b"__redis__:invalidate");
        } else {
            return;
        }
        match body {
            Body::Key(k) => {
                out.extend_from_slice(b"*1\r\n");
                push_bulk(&mut out, k);
            }
            Body::Proto(p) => out.extend_from_slice(p),
            // The null of the TRACKING client's protocol, even when redirected (as Redis).
            Body::Null => out.extend_from_slice(if resp3(c) { b"_\r\n" } else { b"$-1\r\n" }),
        }
        self.deliver(dest, &out);
    }

    fn deliver(&self, to: &ClientInfo, msg: &[u8]) {
        let Some(out) = to.tracking.out.get() else { return };
        let limits = if in_pubsub(to) { &self.pubsub_limits } else { &self.normal_limits };
        let l = |i: usize| limits[i].load(Ordering::Relaxed);
        out.deliver_raw(msg, (l(0), l(1), l(2)));
    }
}

/// A connection's own tracking state: its BCAST prefixes and CLIENT CACHING's one-command flag.
/// Dropping it (the connection closed) disables tracking.
#[derive(Default)]
pub struct ClientTracking {
    /// Set while tracking is on, to disable it on drop.
    registry: Option<(Arc<Tracking>, Arc<ClientInfo>)>,
    pub prefixes: BTreeSet<Bytes>,
    /// CLIENT CACHING YES/NO was given for the next command (or transaction).
    pub caching: bool,
}

impl ClientTracking {
    /// Turn tracking on (see [`Tracking::enable`]).
    pub fn enable(&mut self, reg: &Arc<Tracking>, info: &Arc<ClientInfo>, opts: Options) {
        reg.enable(info, &mut self.prefixes, opts);
        self.registry = Some((reg.clone(), info.clone()));
    }

    /// Turn tracking off (CLIENT TRACKING OFF, RESET).
    pub fn disable(&mut self) {
        if let Some((reg, info)) = self.registry.take() {
            reg.disable(&info, &mut self.prefixes);
        }
        self.caching = false;
    }

    /// Whether a read-only command's keys are to be remembered now: tracking on, not BCAST, and
    /// OPTIN with CACHING YES / OPTOUT without CACHING NO.
    pub fn remembers(&self, info: &ClientInfo) -> bool {
        let f = info.tracking.flags();
        if f & flag::ON == 0 || f & flag::BCAST != 0 {
            return false;
        }
        !((f & flag::OPTIN != 0 && !self.caching) || (f & flag::OPTOUT != 0 && self.caching))
    }
}

impl Drop for ClientTracking {
    fn drop(&mut self) {
        self.disable();
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn prefix_collisions_are_reported_as_redis_words_them() {
        let own: BTreeSet<Bytes> = [Bytes::from_static(b"user:")].into_iter().collect();
        assert_eq!(
            Tracking::prefix_collision(&own, &[Bytes::from_static(b"us")]).unwrap(),
            (
                0,
                true,
                "Prefix 'us' overlaps with an existing prefix 'user:'. Prefixes for a single client must not overlap."
                    .to_string()
            )
        );
        assert_eq!(
            Tracking::prefix_collision(&BTreeSet::new(), &[Bytes::from_static(b"ab"), Bytes::from_static(b"a")])
                .unwrap()
                .2,
            "Prefix 'ab' overlaps with another provided prefix 'a'. Prefixes for a single client must not overlap."
        );
        assert!(Tracking::prefix_collision(&own, &[Bytes::from_static(b"a"), Bytes::from_static(b"b")]).is_none());
        // Many prefixes: none overlap, then the first overlap in Redis's order is named.
        let many: Vec<Bytes> = (0..10_000).map(|i| Bytes::from(format!("p{i:05}:"))).collect();
        assert!(Tracking::prefix_collision(&own, &many).is_none());
        let mut clash = many.clone();
        clash.push(Bytes::from_static(b"p09999"));
        clash.push(Bytes::from_static(b"p0"));
        let (at, existing, text) = Tracking::prefix_collision(&own, &clash).unwrap();
        assert_eq!((at, existing), (0, false));
        assert!(text.starts_with("Prefix 'p00000:' overlaps with another provided prefix 'p0'."), "{text}");
        // Overlaps among the client's own prefixes alone are not the new ones' concern.
        let own_overlap: BTreeSet<Bytes> = [Bytes::from_static(b"a"), Bytes::from_static(b"ab")].into_iter().collect();
        assert!(Tracking::prefix_collision(&own_overlap, &[Bytes::from_static(b"b")]).is_none());
    }

    #[test]
    fn the_table_counts_keys_and_items_and_a_modification_empties_an_entry() {
        let t = Tracking::default();
        assert!(!t.is_armed());
        t.remember(1, [&b"a"[..], b"b"]);
        t.remember(2, [&b"a"[..]]);
        t.remember(2, [&b"a"[..]]);
        assert_eq!(t.stats(), (0, 2, 3, 0));
        assert!(t.is_armed());
        t.key_modified(b"a");
        assert_eq!(t.stats(), (0, 1, 1, 0));
        t.flushed();
        assert_eq!(t.stats(), (0, 0, 0, 0));
        assert!(!t.is_armed());
    }

    #[test]
    fn the_key_limit_evicts_down_to_it() {
        let t = Tracking::default();
        t.set_config(10, (0, 0, 0), (0, 0, 0));
        let keys: Vec<Vec<u8>> = (0..100).map(|i| format!("k{i}").into_bytes()).collect();
        t.remember(1, keys.iter().map(|k| &k[..]));
        t.limit_keys();
        assert_eq!(t.stats().1, 10);
        assert_eq!(t.stats().2, 10);
    }
}
