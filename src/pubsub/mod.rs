//! Pub/sub: the registry of channel, pattern and shard-channel subscriptions, and each subscriber's
//! outbox. Mirrors Redis's `pubsub.c` (and the keyspace events of `notify.c`, in [`notify`]).
//!
//! # Fan-out without a global lock
//!
//! Channels hash to one of [`SHARDS`] maps, each behind a crossbeam `ShardedLock`: a PUBLISH takes
//! its channel's map for reading, which touches only a per-thread lock shard (publishers on many
//! cores never fight over one cache line); only SUBSCRIBE/UNSUBSCRIBE take it for writing. Patterns
//! live in one such lock, skipped entirely (one atomic load) while nobody is pattern-subscribed.
//!
//! A message is encoded once per PUBLISH, then appended to each receiver's [`Subscriber`] outbox
//! (a short mutex per subscriber, never held across I/O), and the subscriber's task is woken. Its
//! connection moves the outbox into its next socket write, together with its replies (see
//! `connection`). A publisher appends to its receivers one after the other while holding its
//! channel's read lock, so per publisher and channel the messages arrive in publish order.
//!
//! # Slow subscribers
//!
//! An outbox never grows past `client-output-buffer-limit pubsub`: a delivery that would take it
//! over the hard limit, or keeps it over the soft limit for longer than its seconds, marks the
//! subscriber killed, frees its outbox and wakes its task, which closes the connection (as Redis's
//! `closeClientOnOutputBufferLimitReached`). The publisher never waits for a subscriber's socket.

pub mod notify;

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use crossbeam::sync::ShardedLock;
use crossbeam::utils::CachePadded;
use std::collections::HashSet;

use indexmap::IndexMap;

use crate::resp::Frame;
use crate::sync::{Mutex, fault};
use crate::util::FnvBuild;

/// Channel maps (per kind): enough that subscribing to 100k channels rarely waits on a publisher.
pub const SHARDS: usize = 64;

/// A channel or pattern name: one allocation (a 16-byte header and the bytes), shared by the
/// registry and the subscribing client's own set (Redis shares one robj the same way).
type Name = Arc<[u8]>;

/// The subscribers of one channel or pattern. Most channels have one subscriber: it is held
/// inline (no allocation); more go in a vector, which unsubscribing scans, as Redis's list. 24
/// bytes either way.
enum Subs {
    One(Arc<Subscriber>),
    Many(Vec<Arc<Subscriber>>),
}

impl Subs {
    fn as_slice(&self) -> &[Arc<Subscriber>] {
        match self {
            Subs::One(s) => std::slice::from_ref(s),
            Subs::Many(v) => v,
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn push(&mut self, sub: Arc<Subscriber>) {
        match self {
            Subs::One(first) => *self = Subs::Many(vec![first.clone(), sub]),
            Subs::Many(v) => v.push(sub),
        }
    }

    /// Remove subscriber `id`; true when none is left.
    fn remove(&mut self, id: u64) -> bool {
        match self {
            Subs::One(s) => s.id == id,
            Subs::Many(v) => {
                v.retain(|s| s.id != id);
                let empty = v.is_empty();
                if v.len() == 1 {
                    let last = v[0].clone();
                    *self = Subs::One(last);
                }
                empty
            }
        }
    }
}

type ChannelMap = HashMap<Name, Subs, FnvBuild>;

/// The three kinds of subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn subscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "subscribe",
            Kind::Pattern => "psubscribe",
            Kind::Shard => "ssubscribe",
        }
    }

    fn unsubscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
            Kind::Shard => "sunsubscribe",
        }
    }
}

/// One subscribing connection's end of the fan-out: where publishers append its messages.
pub struct Subscriber {
    pub id: u64,
    /// Whether the client speaks RESP3 (messages are `>` pushes) or RESP2 (`*` arrays).
    resp3: AtomicBool,
    out: Mutex<Outbox>,
    /// Bytes in the outbox (a lock-free check for the connection after each command).
    pending: AtomicUsize,
    /// Bytes taken from the outbox that the connection is still writing (count against the limit).
    inflight: AtomicUsize,
    /// Woken when messages are appended, or when the subscriber is killed.
    pub wake: tokio::sync::Notify,
    /// Woken (once) when the subscriber is killed: interrupts a stalled socket write.
    pub kill: tokio::sync::Notify,
    killed: AtomicBool,
    /// Whether it holds any subscription (the connection waits on [`Subscriber::kill`] only then).
    active: AtomicBool,
    /// Itself, to put on this thread's deferred wake-ups (see [`defer_wakes`]).
    me: std::sync::Weak<Subscriber>,
}

#[derive(Default)]
struct Outbox {
    buf: BytesMut,
    /// While [`Subscriber::hold_late`] is in force (a tracking or monitoring client runs a
    /// command): the invalidations and MONITOR lines that arrive, sent after the command's reply.
    late: BytesMut,
    holding: bool,
    /// Since when the output has been over the soft limit.
    soft_since: Option<Instant>,
    /// The connection's socket, while the connection waits with nothing of its own to write (see
    /// [`Subscriber::idle`]): a publisher ending its batch then writes the outbox there itself.
    direct: Option<RawFd>,
}

/// `client-output-buffer-limit pubsub`, mirrored in atomics: (hard, soft, soft seconds).
#[derive(Default)]
struct Limits {
    hard: AtomicU64,
    soft: AtomicU64,
    secs: AtomicU64,
}

impl Subscriber {
    pub fn new(id: u64) -> Arc<Subscriber> {
        Arc::new_cyclic(|me| Subscriber {
            id,
            resp3: AtomicBool::new(false),
            out: Mutex::new(Outbox::default()),
            pending: AtomicUsize::new(0),
            inflight: AtomicUsize::new(0),
            wake: tokio::sync::Notify::new(),
            kill: tokio::sync::Notify::new(),
            killed: AtomicBool::new(false),
            active: AtomicBool::new(false),
            me: me.clone(),
        })
    }

    /// Messages from now on are encoded for protocol `resp` (HELLO, subscribe).
    pub fn set_resp(&self, resp: u8) {
        self.resp3.store(resp == 3, Ordering::Relaxed);
    }

    /// Whether the subscriber was cut for its output buffer limit.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Whether it holds any subscription now.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Bytes waiting in the outbox (CLIENT LIST `omem`, and the connection's quick check).
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Move the outbox's bytes to the end of `out` (the connection's write buffer); while held
    /// (see [`Subscriber::hold_late`]), not the late part.
    pub fn drain_into(&self, out: &mut BytesMut) {
        if self.pending() == 0 {
            return;
        }
        let mut ob = crate::sync::lock(&self.out);
        if out.is_empty() {
            std::mem::swap(out, &mut ob.buf);
        } else {
            out.extend_from_slice(&ob.buf);
            ob.buf.clear();
        }
        if ob.late.is_empty() {
            ob.soft_since = None;
        }
        self.pending.store(ob.late.len(), Ordering::Relaxed);
    }

    /// From now until [`Subscriber::release_late`], client-side caching's invalidations and MONITOR
    /// lines are kept apart from pub/sub messages: the connection sends the messages published
    /// while a command runs before its reply (Redis adds them to the client's output as they are
    /// published) and the rest after it (Redis's `tracking_pending_keys` for a client's own writes;
    /// an invalidation that arrived while a read ran must follow the value read; a monitor's line
    /// for its own command follows its reply).
    pub fn hold_late(&self) {
        crate::sync::lock(&self.out).holding = true;
    }

    /// End [`Subscriber::hold_late`]: what was kept apart joins the outbox (after the rest).
    pub fn release_late(&self) {
        let mut ob = crate::sync::lock(&self.out);
        ob.holding = false;
        if !ob.late.is_empty() {
            let late = std::mem::take(&mut ob.late);
            if ob.buf.is_empty() {
                ob.buf = late;
            } else {
                ob.buf.extend_from_slice(&late);
            }
        }
    }

    /// The connection is writing `n` bytes that came (partly) from the outbox: they still count
    /// against the limits until written (0 when done).
    pub fn set_inflight(&self, n: usize) {
        self.inflight.store(n, Ordering::Relaxed);
    }

    /// The connection waits (for a request or a wake-up) on its open socket `fd`, every byte of its
    /// own written: until the returned guard is dropped, a publisher ending its batch may write this
    /// subscriber's messages to `fd` itself ([`wake_deferred`]). The connection drops the guard as
    /// soon as it wakes, before it runs a command or writes (its replies must follow the messages
    /// written meanwhile, and none may follow them unasked), and always before it closes `fd`.
    pub fn idle(&self, fd: RawFd) -> Idle<'_> {
        crate::sync::lock(&self.out).direct = Some(fd);
        Idle(self)
    }

    /// Write the outbox to the idle connection's socket from this thread: one non-blocking send,
    /// under the outbox lock (which the connection takes to stop being idle). Returns the bytes
    /// written and whether the outbox was emptied; when not (the connection is busy, or the socket
    /// took only part), the connection must be woken to write the rest itself.
    pub fn write_direct(&self) -> (usize, bool) {
        let mut guard = crate::sync::lock(&self.out);
        let ob = &mut *guard;
        let Some(fd) = ob.direct else { return (0, false) };
        if ob.holding || !ob.late.is_empty() || self.is_killed() {
            return (0, false);
        }
        if ob.buf.is_empty() {
            return (0, true);
        }
        if fault::on(fault::Fault::PubsubDirectWriteUnlocked) {
            // Broken: the send happens after the lock is released, so the connection may have
            // stopped being idle (and written its reply, or closed the socket) in between.
            let bytes = ob.buf.split().freeze();
            self.pending.store(0, Ordering::Relaxed);
            drop(guard);
            // Any time may pass here (a model switches threads).
            crate::sync::thread::yield_now();
            return (send_now(fd, &bytes).unwrap_or(0), true);
        }
        match send_now(fd, &ob.buf) {
            Ok(n) if n == ob.buf.len() => {
                ob.buf.clear();
                if ob.buf.capacity() > DIRECT_KEEP_BYTES {
                    ob.buf = BytesMut::new();
                }
                ob.soft_since = None;
                self.pending.store(0, Ordering::Relaxed);
                (n, true)
            }
            Ok(n) => {
                let _ = ob.buf.split_to(n);
                self.pending.store(ob.buf.len(), Ordering::Relaxed);
                (n, false)
            }
            Err(_) => (0, false),
        }
    }

    /// Append one encoded message (`*` first; a RESP3 subscriber gets `>` instead).
    fn deliver(&self, msg: &[u8], limits: &Limits) {
        let first = if self.resp3.load(Ordering::Relaxed) { b'>' } else { b'*' };
        let l = (
            limits.hard.load(Ordering::Relaxed),
            limits.soft.load(Ordering::Relaxed),
            limits.secs.load(Ordering::Relaxed),
        );
        self.append(Some(first), false, msg, l);
    }

    /// Append `msg` as it is (client-side caching's invalidations, see `tracking`), under output
    /// limits (hard, soft, soft seconds).
    pub fn deliver_raw(&self, msg: &[u8], limits: (u64, u64, u64)) {
        self.append(None, true, msg, limits);
    }

    /// Append one MONITOR line (`+...\r\n`, sent as it is) under the output limits `(hard, soft,
    /// soft seconds)` (see `monitor::feed`).
    pub fn deliver_line(&self, line: &[u8], limits: (u64, u64, u64)) {
        self.append(None, true, line, limits);
    }

    /// Append `msg` (its first byte replaced by `first` when given; to the late part when `late`
    /// and held); a delivery over the limits kills the subscriber.
    fn append(&self, first: Option<u8>, late: bool, msg: &[u8], (hard, soft, secs): (u64, u64, u64)) {
        if self.is_killed() {
            return;
        }
        let mut guard = crate::sync::lock(&self.out);
        let ob = &mut *guard;
        // Only an outbox going from empty to not empty wakes the connection: one that holds bytes
        // already has its wake-up pending (or is being drained, under this lock, after it), and
        // takes these with the others in the same write.
        let was_empty = ob.buf.is_empty() && ob.late.is_empty();
        let buf = if late && ob.holding { &mut ob.late } else { &mut ob.buf };
        match first {
            Some(b) => {
                buf.extend_from_slice(&[b]);
                buf.extend_from_slice(&msg[1..]);
            }
            None => buf.extend_from_slice(msg),
        }
        let len = ob.buf.len() + ob.late.len();
        let total = (len + self.inflight.load(Ordering::Relaxed)) as u64;
        let mut over = hard > 0 && total > hard;
        if soft > 0 && total > soft {
            match ob.soft_since {
                None => ob.soft_since = Some(Instant::now()),
                Some(t) => over |= t.elapsed().as_secs() >= secs,
            }
        } else {
            ob.soft_since = None;
        }
        if over {
            // Free what it held at once: a subscriber that never reads costs no more than the limit.
            ob.buf = BytesMut::new();
            ob.late = BytesMut::new();
            self.pending.store(0, Ordering::Relaxed);
            self.killed.store(true, Ordering::Release);
            drop(guard);
            self.kill.notify_one();
            self.wake.notify_one();
            return;
        }
        self.pending.store(len, Ordering::Relaxed);
        drop(guard);
        if was_empty && !defer_wake(self) {
            self.wake.notify_one();
        }
    }
}

/// An outbox left larger than this by a direct write is given back (a subscriber's batches are
/// usually far smaller: 16 messages of 512 bytes take 8.6 KB).
const DIRECT_KEEP_BYTES: usize = 64 * 1024;

/// While alive, the subscriber's connection is idle (see [`Subscriber::idle`]).
pub struct Idle<'a>(&'a Subscriber);

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        crate::sync::lock(&self.0.out).direct = None;
    }
}

/// One non-blocking send of `buf` on socket `fd` (never raises SIGPIPE).
fn send_now(fd: RawFd, buf: &[u8]) -> std::io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call, and the kernel only
    // reads it. `fd` is the connection's socket, still open: it is set by `Subscriber::idle` and
    // cleared, under the outbox lock that every caller holds across this call, before the
    // connection stops being idle, hence before it can close the socket (tested by
    // `direct_writes_reach_only_an_idle_connection` and the loom model `pubsub_direct`).
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 { Err(std::io::Error::last_os_error()) } else { Ok(n as usize) }
}

// ---- wake-ups deferred to the end of the publisher's batch ---------------------------------------
//
// Redis writes each client's output once per event-loop turn (`handleClientsWithPendingWrites`),
// so a pipeline of 16 PUBLISHes reaches each subscriber in one write. Here a connection running a
// batch of commands defers the wake-ups its deliveries cause until it flushes its own replies: each
// subscriber then takes the whole batch's messages in one write, instead of racing the publisher on
// another core and writing (and waking its reader) once per message.

thread_local! {
    /// Set while this thread runs a connection's batch (see [`defer_wakes`]).
    static DEFER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The subscribers whose wake-up is deferred.
    static DEFERRED: std::cell::RefCell<Vec<Arc<Subscriber>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Deliveries on this thread from now on wake their subscribers only at [`wake_deferred`]. The
/// caller (a connection running a batch) must call it before it next awaits: the deferred list is
/// this thread's, and the task may resume elsewhere.
pub fn defer_wakes() {
    DEFER.with(|d| d.set(true));
}

/// Send the messages of the subscribers whose wake-up was deferred on this thread, and stop
/// deferring: an idle subscriber's are written to its socket from here (one send, as Redis writes
/// each client's output at the end of its event-loop turn: no task switch, no wake-up of another
/// thread); the others are woken to write theirs. Returns the writes made and their bytes (INFO).
pub fn wake_deferred() -> (u64, u64) {
    wake_deferred_around(|| {})
}

/// A batch reaching more subscribers than this writes to the first ones itself and wakes the rest
/// (their connections write on the other cores meanwhile).
pub const DIRECT_WRITES_PER_BATCH: usize = 16;

/// [`wake_deferred`], running `own` (the publisher's own reply write) once the subscribers it
/// will not write itself are woken and before it writes to the others: the publisher has its
/// reply, and can send its next batch, while this thread writes its messages out.
pub fn wake_deferred_around(own: impl FnOnce()) -> (u64, u64) {
    if !DEFER.with(|d| d.replace(false)) {
        own();
        return (0, 0);
    }
    let subs = DEFERRED.with(|l| std::mem::take(&mut *l.borrow_mut()));
    let direct = subs.len().min(DIRECT_WRITES_PER_BATCH);
    for s in &subs[direct..] {
        s.wake.notify_one();
    }
    own();
    let (mut writes, mut bytes) = (0, 0);
    for s in &subs[..direct] {
        let (n, whole) = s.write_direct();
        if n > 0 {
            writes += 1;
            bytes += n as u64;
        }
        if !whole {
            s.wake.notify_one();
        }
    }
    // Keep the list's allocation for the next batch.
    let mut subs = subs;
    subs.clear();
    DEFERRED.with(|l| {
        let mut l = l.borrow_mut();
        if l.capacity() < subs.capacity() {
            *l = subs;
        }
    });
    (writes, bytes)
}

/// Defer `s`'s wake-up when this thread defers; false when it does not (wake it now).
fn defer_wake(s: &Subscriber) -> bool {
    if !DEFER.with(|d| d.get()) {
        return false;
    }
    // The outbox went from empty to not empty under its lock: at most once per drain, so the
    // list holds each subscriber at most once per batch (unless the subscriber drains meanwhile).
    let Some(arc) = s.me.upgrade() else { return false };
    DEFERRED.with(|l| l.borrow_mut().push(arc));
    true
}

/// Every subscription on the server.
pub struct Hub {
    channels: Box<[CachePadded<ShardedLock<ChannelMap>>]>,
    shard_channels: Box<[CachePadded<ShardedLock<ChannelMap>>]>,
    patterns: ShardedLock<IndexMap<Name, Subs, FnvBuild>>,
    /// Distinct patterns (PUBSUB NUMPAT; PUBLISH skips the pattern scan at 0).
    pattern_count: AtomicUsize,
    /// Distinct channels of each kind (INFO pubsub_channels).
    channel_count: AtomicUsize,
    shard_channel_count: AtomicUsize,
    limits: Limits,
}

impl Default for Hub {
    fn default() -> Hub {
        let maps = || (0..SHARDS).map(|_| CachePadded::new(ShardedLock::new(ChannelMap::default()))).collect();
        Hub {
            channels: maps(),
            shard_channels: maps(),
            patterns: ShardedLock::new(IndexMap::default()),
            pattern_count: AtomicUsize::new(0),
            channel_count: AtomicUsize::new(0),
            shard_channel_count: AtomicUsize::new(0),
            limits: Limits::default(),
        }
    }
}

fn shard_of(channel: &[u8]) -> usize {
    (crate::util::fnv1a(crate::util::FNV_OFFSET, channel) % SHARDS as u64) as usize
}

fn read<T>(l: &ShardedLock<T>) -> crossbeam::sync::ShardedLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &ShardedLock<T>) -> crossbeam::sync::ShardedLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// Where this thread encodes the message it is delivering (no allocation per PUBLISH).
    static SCRATCH: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
}

/// Run `f` on the encoding of `parts` (see [`encode`]), built in this thread's scratch buffer.
fn with_encoded<R>(parts: &[&[u8]], f: impl FnOnce(&[u8]) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            encode_into(&mut buf, parts);
            let r = f(&buf);
            if buf.capacity() > DIRECT_KEEP_BYTES {
                *buf = BytesMut::new();
            }
            r
        }
        // Not expected (a delivery never publishes), but never a panic.
        Err(_) => f(&encode(parts)),
    })
}

/// `*N` + bulk strings: a message as RESP2 encodes it (a RESP3 push differs in its first byte).
fn encode(parts: &[&[u8]]) -> BytesMut {
    let mut out = BytesMut::with_capacity(16 + parts.iter().map(|p| p.len() + 16).sum::<usize>());
    encode_into(&mut out, parts);
    out
}

fn encode_into(out: &mut BytesMut, parts: &[&[u8]]) {
    out.reserve(16 + parts.iter().map(|p| p.len() + 16).sum::<usize>());
    out.extend_from_slice(b"*");
    crate::resp::put_decimal(out, parts.len() as i64);
    out.extend_from_slice(b"\r\n");
    for p in parts {
        out.extend_from_slice(b"$");
        crate::resp::put_decimal(out, p.len() as i64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
}

impl Hub {
    /// Mirror `client-output-buffer-limit pubsub` (after startup and each CONFIG SET).
    pub fn set_limits(&self, (hard, soft, secs): (u64, u64, u64)) {
        self.limits.hard.store(hard, Ordering::Relaxed);
        self.limits.soft.store(soft, Ordering::Relaxed);
        self.limits.secs.store(secs, Ordering::Relaxed);
    }

    fn maps(&self, kind: Kind) -> &[CachePadded<ShardedLock<ChannelMap>>] {
        if kind == Kind::Shard { &self.shard_channels } else { &self.channels }
    }

    fn count(&self, kind: Kind) -> &AtomicUsize {
        match kind {
            Kind::Channel => &self.channel_count,
            Kind::Pattern => &self.pattern_count,
            Kind::Shard => &self.shard_channel_count,
        }
    }

    /// Whether anybody is subscribed to anything (keyspace events skip building their channel
    /// names otherwise).
    pub fn is_empty(&self) -> bool {
        self.channel_count.load(Ordering::Relaxed) == 0 && self.pattern_count.load(Ordering::Relaxed) == 0
    }

    fn add(&self, kind: Kind, name: &Name, sub: &Arc<Subscriber>) {
        let added_name = if kind == Kind::Pattern {
            add_to(&mut *write(&self.patterns), name, sub)
        } else {
            add_to(&mut *write(&self.maps(kind)[shard_of(name)]), name, sub)
        };
        if added_name {
            self.count(kind).fetch_add(1, Ordering::Relaxed);
        }
    }

    fn remove(&self, kind: Kind, name: &[u8], id: u64) {
        let removed_name = if kind == Kind::Pattern {
            let mut pats = write(&self.patterns);
            pats.get_mut(name).is_some_and(|subs| subs.remove(id)) && pats.swap_remove(name).is_some()
        } else {
            let mut map = write(&self.maps(kind)[shard_of(name)]);
            map.get_mut(name).is_some_and(|subs| subs.remove(id)) && map.remove(name).is_some()
        };
        if removed_name {
            self.count(kind).fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// PUBLISH: deliver `message` to the subscribers of `channel` and of every matching pattern;
    /// returns how many deliveries were made (a client subscribed both ways counts twice).
    pub fn publish(&self, channel: &[u8], message: &[u8]) -> usize {
        let mut n = 0;
        {
            let map = read(&self.channels[shard_of(channel)]);
            if let Some(subs) = map.get(channel) {
                with_encoded(&[b"message", channel, message], |msg| {
                    for s in subs.as_slice() {
                        s.deliver(msg, &self.limits);
                    }
                });
                n += subs.len();
            }
        }
        if self.pattern_count.load(Ordering::Relaxed) > 0 {
            let pats = read(&self.patterns);
            for (pat, subs) in pats.iter() {
                if crate::glob::glob_match(pat, channel, false) {
                    with_encoded(&[b"pmessage", pat, channel, message], |msg| {
                        for s in subs.as_slice() {
                            s.deliver(msg, &self.limits);
                        }
                    });
                    n += subs.len();
                }
            }
        }
        n
    }

    /// SPUBLISH: deliver to the subscribers of shard channel `channel`.
    pub fn spublish(&self, channel: &[u8], message: &[u8]) -> usize {
        let map = read(&self.shard_channels[shard_of(channel)]);
        let Some(subs) = map.get(channel) else { return 0 };
        with_encoded(&[b"smessage", channel, message], |msg| {
            for s in subs.as_slice() {
                s.deliver(msg, &self.limits);
            }
        });
        subs.len()
    }

    /// Subscribers of `channel` (of a shard channel when `kind` is Shard): PUBSUB NUMSUB.
    pub fn numsub(&self, kind: Kind, channel: &[u8]) -> usize {
        read(&self.maps(kind)[shard_of(channel)]).get(channel).map_or(0, |s| s.len())
    }

    /// Distinct patterns: PUBSUB NUMPAT.
    pub fn numpat(&self) -> usize {
        self.pattern_count.load(Ordering::Relaxed)
    }

    /// Distinct channels (of the shard kind when `kind` is Shard): INFO `pubsub_channels`.
    pub fn channel_count(&self, kind: Kind) -> usize {
        self.count(kind).load(Ordering::Relaxed)
    }

    /// Active channels matching `pattern` (all when None): PUBSUB CHANNELS / SHARDCHANNELS.
    pub fn channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let mut out = Vec::new();
        for shard in self.maps(kind) {
            let map = read(shard);
            out.extend(
                map.keys()
                    .filter(|c| pattern.is_none_or(|p| crate::glob::glob_match(p, c, false)))
                    .map(|c| Bytes::copy_from_slice(c)),
            );
        }
        out
    }
}

/// One connection's subscriptions (Redis's `c->pubsub_channels`, `pubsub_patterns`,
/// `pubsub_shard_channels`), and its outbox. Dropping it (the connection closed) unsubscribes all.
pub struct ClientSubs {
    pub sub: Arc<Subscriber>,
    hub: Option<Arc<Hub>>,
    channels: HashSet<Name, FnvBuild>,
    patterns: HashSet<Name, FnvBuild>,
    shard: HashSet<Name, FnvBuild>,
}

impl ClientSubs {
    pub fn new(id: u64) -> ClientSubs {
        ClientSubs {
            sub: Subscriber::new(id),
            hub: None,
            channels: Default::default(),
            patterns: Default::default(),
            shard: Default::default(),
        }
    }

    fn set(&mut self, kind: Kind) -> &mut HashSet<Name, FnvBuild> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// Channels + patterns (the count SUBSCRIBE and friends report; Redis's
    /// `clientSubscriptionsCount`).
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Every subscription, shard channels included: in RESP2 the client is in subscribed mode.
    pub fn total(&self) -> usize {
        self.count() + self.shard.len()
    }

    /// (sub, psub, ssub) for CLIENT LIST.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.channels.len(), self.patterns.len(), self.shard.len())
    }

    fn reported(&self, kind: Kind) -> i64 {
        (if kind == Kind::Shard { self.shard.len() } else { self.count() }) as i64
    }

    /// (P|S)SUBSCRIBE: one confirmation push per name.
    pub fn subscribe(&mut self, hub: &Arc<Hub>, kind: Kind, names: &[Bytes], resp: u8) -> Frame {
        self.hub.get_or_insert_with(|| hub.clone());
        self.sub.set_resp(resp);
        let mut replies = Confirmations::new(names, resp);
        for name in names {
            if !self.set(kind).contains(&name[..]) {
                let shared: Name = Arc::from(&name[..]);
                self.set(kind).insert(shared.clone());
                hub.add(kind, &shared, &self.sub);
            }
            replies.push(kind.subscribe_word(), Some(name), self.reported(kind));
        }
        self.sub.active.store(self.total() > 0, Ordering::Relaxed);
        replies.into_frame()
    }

    /// (P|S)UNSUBSCRIBE: the names given, or every subscription of the kind; one push each (one
    /// with a null name when there was none).
    pub fn unsubscribe(&mut self, hub: &Arc<Hub>, kind: Kind, names: &[Bytes], resp: u8) -> Frame {
        let names: Vec<Bytes> = if names.is_empty() {
            self.set(kind).iter().map(|n| Bytes::copy_from_slice(n)).collect()
        } else {
            names.to_vec()
        };
        if names.is_empty() {
            return Frame::Seq(vec![confirmation(kind.unsubscribe_word(), Frame::Null, self.reported(kind))]);
        }
        let mut replies = Confirmations::new(&names, resp);
        for name in &names {
            if self.set(kind).remove(&name[..]) {
                hub.remove(kind, name, self.sub.id);
            }
            replies.push(kind.unsubscribe_word(), Some(name), self.reported(kind));
        }
        self.sub.active.store(self.total() > 0, Ordering::Relaxed);
        replies.into_frame()
    }

    /// Drop every subscription without replies (RESET, disconnection).
    pub fn clear(&mut self) {
        let Some(hub) = self.hub.clone() else { return };
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for name in std::mem::take(self.set(kind)) {
                hub.remove(kind, &name, self.sub.id);
            }
        }
        self.sub.active.store(false, Ordering::Relaxed);
    }
}

impl Drop for ClientSubs {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Add `sub` under `name` (a channel map or the pattern map); true when the name is new.
fn add_to<M: NameMap>(map: &mut M, name: &Name, sub: &Arc<Subscriber>) -> bool {
    match map.subs_mut(name) {
        Some(subs) => {
            subs.push(sub.clone());
            false
        }
        None => {
            map.insert_new(name.clone(), Subs::One(sub.clone()));
            true
        }
    }
}

/// The two maps' common part (a channel shard's `HashMap`, the patterns' `IndexMap`).
trait NameMap {
    fn subs_mut(&mut self, name: &[u8]) -> Option<&mut Subs>;
    fn insert_new(&mut self, name: Name, subs: Subs);
}

impl NameMap for ChannelMap {
    fn subs_mut(&mut self, name: &[u8]) -> Option<&mut Subs> {
        self.get_mut(name)
    }
    fn insert_new(&mut self, name: Name, subs: Subs) {
        self.insert(name, subs);
    }
}

impl NameMap for IndexMap<Name, Subs, FnvBuild> {
    fn subs_mut(&mut self, name: &[u8]) -> Option<&mut Subs> {
        self.get_mut(name)
    }
    fn insert_new(&mut self, name: Name, subs: Subs) {
        self.insert(name, subs);
    }
}

/// The confirmations of one (P|S)(UN)SUBSCRIBE: frames for a few names; for many (one SUBSCRIBE of
/// 100k channels), encoded as they come into one buffer, for the client's protocol (a tree of 100k
/// small frames, freed between the long-lived subscriptions, would leave the heap full of holes:
/// twice the subscriptions' own memory in RSS).
enum Confirmations {
    Frames(Vec<Frame>),
    Encoded(BytesMut, u8),
}

/// From this many names on, confirmations are encoded at once (see [`Confirmations`]).
const ENCODE_MIN_NAMES: usize = 64;

impl Confirmations {
    fn new(names: &[Bytes], resp: u8) -> Confirmations {
        if names.len() < ENCODE_MIN_NAMES {
            return Confirmations::Frames(Vec::with_capacity(names.len()));
        }
        let bytes: usize = names.iter().map(|n| n.len() + 48).sum();
        Confirmations::Encoded(BytesMut::with_capacity(bytes), resp)
    }

    fn push(&mut self, word: &'static str, name: Option<&Bytes>, count: i64) {
        let name = name.map_or(Frame::Null, |n| Frame::Bulk(n.clone()));
        match self {
            Confirmations::Frames(v) => v.push(confirmation(word, name, count)),
            Confirmations::Encoded(out, resp) => {
                out.extend_from_slice(if *resp == 3 { b">3\r\n" } else { b"*3\r\n" });
                Frame::Bulk(Bytes::from_static(word.as_bytes())).encode(out, *resp);
                name.encode(out, *resp);
                Frame::Integer(count).encode(out, *resp);
            }
        }
    }

    fn into_frame(self) -> Frame {
        match self {
            Confirmations::Frames(v) => Frame::Seq(v),
            // Already in the client's protocol (a RESP3 push starts with `>`).
            Confirmations::Encoded(out, _) => Frame::Encoded(out.freeze()),
        }
    }
}

fn confirmation(word: &'static str, name: Frame, count: i64) -> Frame {
    Frame::Push(vec![Frame::Bulk(Bytes::from_static(word.as_bytes())), name, Frame::Integer(count)])
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn drained(s: &Subscriber) -> Vec<u8> {
        let mut out = BytesMut::new();
        s.drain_into(&mut out);
        out.to_vec()
    }

    #[test]
    fn publish_reaches_channel_and_pattern_subscribers_once_each() {
        let hub = Arc::new(Hub::default());
        let mut a = ClientSubs::new(1);
        let mut b = ClientSubs::new(2);
        a.subscribe(&hub, Kind::Channel, &[Bytes::from_static(b"news")], 2);
        b.subscribe(&hub, Kind::Pattern, &[Bytes::from_static(b"n*")], 3);
        b.subscribe(&hub, Kind::Channel, &[Bytes::from_static(b"news")], 3);
        assert_eq!(hub.publish(b"news", b"hi"), 3);
        assert_eq!(drained(&a.sub), b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
        assert_eq!(
            drained(&b.sub),
            b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n>4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
                .to_vec()
        );
        assert_eq!((hub.numsub(Kind::Channel, b"news"), hub.numpat()), (2, 1));
        drop(b);
        assert_eq!((hub.numsub(Kind::Channel, b"news"), hub.numpat()), (1, 0));
        assert_eq!(hub.publish(b"other", b"x"), 0);
        a.unsubscribe(&hub, Kind::Channel, &[], 2);
        assert!(hub.is_empty() && hub.channels(Kind::Channel, None).is_empty());
    }

    #[test]
    fn many_confirmations_are_encoded_as_their_frames_would_be() {
        let enc = |f: Frame, resp: u8| {
            let mut out = BytesMut::new();
            f.encode(&mut out, resp);
            out.to_vec()
        };
        for resp in [2, 3] {
            let hub = Arc::new(Hub::default());
            let names: Vec<Bytes> = (0..100).map(|i| Bytes::from(format!("c{i}"))).collect();
            let mut a = ClientSubs::new(1);
            let got = a.subscribe(&hub, Kind::Channel, &names, resp);
            assert!(matches!(got, Frame::Encoded(_)));
            let want: Vec<u8> = (0..100)
                .flat_map(|i| enc(confirmation("subscribe", Frame::Bulk(names[i].clone()), i as i64 + 1), resp))
                .collect();
            assert_eq!(enc(got, resp), want);
            let mut back = names.clone();
            back.reverse();
            let got = a.unsubscribe(&hub, Kind::Channel, &back, resp);
            let want: Vec<u8> = (0..100)
                .flat_map(|i| enc(confirmation("unsubscribe", Frame::Bulk(back[i].clone()), 99 - i as i64), resp))
                .collect();
            assert_eq!(enc(got, resp), want);
            assert!(hub.is_empty());
        }
    }

    /// Whether `s` has a wake-up pending (takes it).
    fn woken(s: &Subscriber) -> bool {
        let n = s.wake.notified();
        let mut n = std::pin::pin!(n);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        n.as_mut().poll(&mut cx).is_ready()
    }

    #[test]
    fn a_batch_wakes_each_subscriber_once_when_it_flushes() {
        let hub = Arc::new(Hub::default());
        let mut a = ClientSubs::new(1);
        a.subscribe(&hub, Kind::Channel, &[Bytes::from_static(b"c")], 2);
        // Not deferring: the first delivery wakes at once.
        hub.publish(b"c", b"1");
        assert!(woken(&a.sub));
        drained(&a.sub);
        defer_wakes();
        for i in 0..16 {
            hub.publish(b"c", format!("{i}").as_bytes());
        }
        assert!(!woken(&a.sub), "woken before the batch's flush");
        assert_eq!(DEFERRED.with(|l| l.borrow().len()), 1, "one deferred wake-up for 16 messages");
        wake_deferred();
        assert!(woken(&a.sub));
        assert_eq!(drained(&a.sub).iter().filter(|&&b| b == b'*').count(), 16);
        // Deferring ended with the flush.
        hub.publish(b"c", b"2");
        assert!(woken(&a.sub));
    }

    /// Everything the peer of a non-blocking socket can read now.
    fn read_now(peer: &mut std::os::unix::net::UnixStream) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = peer.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    #[test]
    fn direct_writes_reach_only_an_idle_connection() {
        use std::os::fd::AsRawFd;
        let (mut peer, conn) = std::os::unix::net::UnixStream::pair().unwrap();
        peer.set_nonblocking(true).unwrap();
        let hub = Arc::new(Hub::default());
        let mut a = ClientSubs::new(1);
        a.subscribe(&hub, Kind::Channel, &[Bytes::from_static(b"c")], 2);
        let msg = |m: &str| format!("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n${}\r\n{m}\r\n", m.len()).into_bytes();
        // Idle: the batch's end writes both messages in one send, and wakes nobody.
        let idle = a.sub.idle(conn.as_raw_fd());
        defer_wakes();
        hub.publish(b"c", b"1");
        hub.publish(b"c", b"2");
        let both = [msg("1"), msg("2")].concat();
        assert_eq!(wake_deferred(), (1, both.len() as u64));
        assert!(!woken(&a.sub), "an idle subscriber written directly was woken");
        assert_eq!(a.sub.pending(), 0);
        assert_eq!(read_now(&mut peer), both);
        // Busy (the guard dropped as the connection wakes): kept for the connection, woken.
        drop(idle);
        defer_wakes();
        hub.publish(b"c", b"3");
        assert_eq!(wake_deferred(), (0, 0));
        assert!(woken(&a.sub));
        assert!(read_now(&mut peer).is_empty(), "written to a busy connection's socket");
        assert_eq!(drained(&a.sub), msg("3"));
    }

    #[test]
    fn a_direct_write_the_socket_takes_in_part_leaves_the_rest_to_the_connection() {
        use std::os::fd::AsRawFd;
        let (mut peer, conn) = std::os::unix::net::UnixStream::pair().unwrap();
        peer.set_nonblocking(true).unwrap();
        let hub = Arc::new(Hub::default());
        let mut a = ClientSubs::new(1);
        a.subscribe(&hub, Kind::Channel, &[Bytes::from_static(b"c")], 2);
        let big = vec![b'x'; 8 << 20];
        let _idle = a.sub.idle(conn.as_raw_fd());
        defer_wakes();
        hub.publish(b"c", &big);
        let (writes, sent) = wake_deferred();
        assert_eq!(writes, 1);
        let total = a.sub.pending() + sent as usize;
        assert!(sent > 0 && a.sub.pending() > 0, "an 8 MB message fit a socket buffer: {sent}");
        assert!(woken(&a.sub), "the rest was left without waking the connection");
        let mut got = read_now(&mut peer);
        assert_eq!(got.len(), sent as usize);
        got.extend(drained(&a.sub));
        assert_eq!(got.len(), total);
        assert!(got.starts_with(b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$8388608\r\nxxx"));
        assert!(got.ends_with(b"xxx\r\n"));
    }

    #[test]
    fn a_subscriber_over_the_hard_limit_is_killed_and_its_outbox_freed() {
        let hub = Arc::new(Hub::default());
        hub.set_limits((1000, 0, 0));
        let mut a = ClientSubs::new(1);
        a.subscribe(&hub, Kind::Channel, &[Bytes::from_static(b"c")], 2);
        for _ in 0..100 {
            hub.publish(b"c", &[b'x'; 100]);
        }
        assert!(a.sub.is_killed());
        assert_eq!(a.sub.pending(), 0);
        assert!(drained(&a.sub).is_empty());
    }

    #[test]
    fn the_soft_limit_kills_only_after_its_seconds() {
        let hub = Arc::new(Hub::default());
        hub.set_limits((0, 100, 3600));
        let mut a = ClientSubs::new(1);
        a.subscribe(&hub, Kind::Channel, &[Bytes::from_static(b"c")], 2);
        for _ in 0..10 {
            hub.publish(b"c", &[b'x'; 100]);
        }
        assert!(!a.sub.is_killed());
        hub.set_limits((0, 100, 0));
        hub.publish(b"c", b"y");
        assert!(a.sub.is_killed());
    }
}
