//! The replication feed: the ordered records of every write, encoded as Redis propagates them, and
//! the backlog that replica connections are fed from.
//!
//! A write pushes its record on a lock-free FIFO ([`Feed::push`]) while it still holds the lock
//! that orders writes on its key (the same place and the same locks as its AOF record, see `db`),
//! so for every key the queue order is the order the writes took effect. Whoever drains
//! ([`Feed::drain`]: the feed thread when woken, WAIT, a full sync's snapshot point) pops
//! under the drain lock, adds `SELECT` when the db changes, and appends the batch to the
//! [`Backlog`] as one chunk: the backlog order is the pop order, and `master_repl_offset` is its
//! end. A write pays one relaxed load when no replica ever connected, one encode, one lock-free
//! push and one swap of the `pending` flag otherwise; no lock is taken on the hot path. A record
//! of up to [`INLINE`] bytes is encoded into the queue's slot itself (no allocation; a longer one,
//! or a `MULTI` block, is a `Vec` of its own).
//!
//! Waking the feed thread ([`Feed::wait`]): a push sets `pending` with a swap and unparks the
//! thread when it was clear; the thread clears it with a swap before it drains. The swaps are
//! read-modify-writes of one flag, so they are totally ordered and each reads the latest value: a
//! push whose swap comes after the clear finds it clear and unparks (or a later clear happens after
//! it); one whose swap comes before the clear is read by it, which synchronizes with the push, so
//! the drain after the clear pops that record. No record waits for a timeout.
//!
//! Sending: each chunk appended to the backlog is offered, under the backlog lock, to the attached
//! replicas' outlets (`outlet`): an idle sender's socket is written there and then, and the sender
//! is woken only when that leaves it bytes to send. The end is published ([`Feed::end`]) before the
//! offer, for the sender's check before it goes idle.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;

use crate::aof::{encode_command, encode_select};
use crate::repl::outlet::{Offer, Outlet};

/// Longest record kept inside the queue's slot (no allocation): a SET of a short key and value is
/// ~45 bytes.
const INLINE: usize = 110;

/// What writers push.
enum Item {
    /// One command (or a MULTI ... EXEC block) for database `db`, already encoded.
    Record { db: usize, bytes: Vec<u8> },
    /// One command of at most [`INLINE`] bytes, encoded in the slot itself: no allocation on the
    /// writer's side and no free (into another thread's arena) on the drainer's.
    Inline { db: u32, len: u8, bytes: [u8; INLINE] },
    /// Bytes sent as they are, without a `SELECT` (PING, REPLCONF GETACK).
    Raw(&'static [u8]),
}

/// `argv` as a RESP multibulk into `out` when it fits [`INLINE`] bytes: its length, else None
/// (nothing written that counts). The bytes are exactly [`encode_command`]'s.
fn encode_inline(out: &mut [u8; INLINE], argv: &[&[u8]]) -> Option<usize> {
    fn header(out: &mut [u8; INLINE], at: usize, kind: u8, n: usize) -> Option<usize> {
        let mut text = [0u8; 20];
        let digits = crate::util::u64_text(n as u64, &mut text);
        let end = at + 1 + digits.len() + 2;
        if end > INLINE {
            return None;
        }
        out[at] = kind;
        out[at + 1..end - 2].copy_from_slice(digits);
        out[end - 2..end].copy_from_slice(b"\r\n");
        Some(end)
    }
    let mut at = header(out, 0, b'*', argv.len())?;
    for arg in argv {
        at = header(out, at, b'$', arg.len())?;
        let end = at.checked_add(arg.len())?.checked_add(2)?;
        if end > INLINE {
            return None;
        }
        out[at..end - 2].copy_from_slice(arg);
        out[end - 2..end].copy_from_slice(b"\r\n");
        at = end;
    }
    Some(at)
}

#[cfg(not(feature = "loom"))]
type Queue = crossbeam::queue::SegQueue<Item>;
/// Under loom the feed is never active; a plain queue keeps crossbeam out of the models.
#[cfg(feature = "loom")]
struct Queue(Mutex<VecDeque<Item>>);
#[cfg(feature = "loom")]
impl Queue {
    fn new() -> Self {
        Queue(Mutex::new(VecDeque::new()))
    }
    fn push(&self, i: Item) {
        lock(&self.0).push_back(i)
    }
    fn pop(&self) -> Option<Item> {
        lock(&self.0).pop_front()
    }
}

/// Lock a std mutex of the feed (or of `flow`), ignoring poisoning.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The replication backlog: the last bytes of the stream, as contiguous chunks. Byte offsets
/// count from the first byte ever fed (`master_repl_offset` is [`Backlog::end`]). It keeps at
/// least `size` bytes (`repl-backlog-size`), and more while an online replica still has to be
/// sent them (as Redis 7's shared replication buffer), up to [`REPLICA_HARD_LIMIT`] behind.
pub struct Backlog {
    chunks: VecDeque<Bytes>,
    /// Offset of the first byte held.
    start: u64,
    end: u64,
    pub size: u64,
    /// Offsets the attached replicas were sent up to (by replica id).
    pub(crate) readers: Vec<(u64, u64)>,
}

/// A replica further behind than this is dropped (Redis's `client-output-buffer-limit replica`
/// hard limit, 256 MB).
pub const REPLICA_HARD_LIMIT: u64 = 256 << 20;

impl Backlog {
    fn new(size: u64) -> Backlog {
        Backlog { chunks: VecDeque::new(), start: 0, end: 0, size, readers: Vec::new() }
    }

    /// `master_repl_offset`.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Offset of the first byte held (Redis reports this plus one: `repl_backlog_first_byte_offset`).
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Start over empty at `offset` (after a full sync from our master).
    pub fn reset(&mut self, offset: u64) {
        self.chunks.clear();
        self.start = offset;
        self.end = offset;
    }

    pub fn append(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        self.end += bytes.len() as u64;
        self.chunks.push_back(bytes);
        self.trim();
    }

    fn trim(&mut self) {
        let needed = self.readers.iter().map(|&(_, off)| off).min().unwrap_or(u64::MAX);
        while let Some(front) = self.chunks.front() {
            let front_end = self.start + front.len() as u64;
            let beyond_size = self.end - front_end >= self.size;
            let nobody_needs = front_end <= needed || self.end - front_end > REPLICA_HARD_LIMIT;
            if !(beyond_size && nobody_needs) {
                break;
            }
            self.start = front_end;
            self.chunks.pop_front();
        }
    }

    /// The bytes from `from` to the end (at most about `max` bytes, whole chunks but the first),
    /// or None when `from` is no longer held (or beyond the end).
    pub fn read_from(&self, from: u64, max: usize) -> Option<Vec<Bytes>> {
        if from < self.start || from > self.end {
            return None;
        }
        // The chunk holding `from`, looked for from the end: a sender reads from near the end (a
        // walk from the front would step over the whole backlog, hundreds of chunks, every wake).
        let mut first = self.chunks.len();
        let mut at = self.end;
        while at > from {
            first -= 1;
            at -= self.chunks[first].len() as u64;
        }
        let mut out = Vec::new();
        let mut taken = 0usize;
        for c in self.chunks.range(first..) {
            let skip = from.saturating_sub(at) as usize;
            at += c.len() as u64;
            let part = c.slice(skip..);
            taken += part.len();
            out.push(part);
            if taken >= max {
                break;
            }
        }
        Some(out)
    }

    /// Whether a replica sent up to `from` can go on from here.
    pub fn holds(&self, from: u64) -> bool {
        from >= self.start && from <= self.end
    }

    /// Offer the last chunk appended to every outlet (see `outlet`), and note how far the replicas
    /// written there were sent (only those already noted: one that is gone is never noted again).
    fn offer_last(&mut self, outlets: &[crate::sync::Arc<Outlet>]) {
        let Some(chunk) = self.chunks.back() else { return };
        let start = self.end - chunk.len() as u64;
        for o in outlets {
            if let Offer::Written(sent) = o.offer(start, chunk)
                && let Some(r) = self.readers.iter_mut().find(|r| r.0 == o.id)
            {
                r.1 = sent;
            }
        }
    }

    /// Note how far replica `id` was sent (None: it is gone).
    pub fn set_reader(&mut self, id: u64, off: Option<u64>) {
        self.readers.retain(|&(r, _)| r != id);
        if let Some(off) = off {
            self.readers.push((id, off));
        }
    }
}

/// The replication feed (see the module doc). Lives in the keyspace, which pushes into it.
pub struct Feed {
    /// A backlog exists and this server is a primary: writes push their records.
    active: AtomicBool,
    /// This server replicates another: no active expiry (the primary sends DELs).
    replica: AtomicBool,
    queue: Queue,
    /// The db of the last record drained (`None`: the next record gets a `SELECT`).
    drain: Mutex<Option<usize>>,
    backlog: Mutex<Backlog>,
    /// The backlog's end, published (under the backlog lock) before the chunk is offered to the
    /// outlets: a sender about to go idle reads it (see `outlet`).
    end: AtomicU64,
    /// The replicas' senders (see `outlet`): each chunk appended is offered to them.
    outlets: Mutex<Vec<crate::sync::Arc<Outlet>>>,
    /// Something was pushed since the feed thread last looked (see the module doc).
    pending: AtomicBool,
    /// The feed thread, unparked by a push that finds `pending` clear.
    drainer: OnceLock<std::thread::Thread>,
    /// Writers wait while a replica applies far behind (see `flow`).
    pub flow: crate::repl::flow::Flow,
}

std::thread_local! {
    /// Records this thread pushed (a connection tells whether its batch wrote: see
    /// [`pushed_here`]).
    static PUSHED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many records the calling thread has pushed: a connection compares it before and after a
/// batch to know whether the batch wrote (for flow control; a task moved to another thread
/// mid-batch only makes that guess wrong for one batch).
#[inline]
pub fn pushed_here() -> u64 {
    PUSHED.with(|c| c.get())
}

#[inline]
fn note_push() {
    PUSHED.with(|c| c.set(c.get().wrapping_add(1)));
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            active: AtomicBool::new(false),
            replica: AtomicBool::new(false),
            queue: Queue::new(),
            drain: Mutex::new(None),
            backlog: Mutex::new(Backlog::new(1 << 20)),
            end: AtomicU64::new(0),
            outlets: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            drainer: OnceLock::new(),
            flow: Default::default(),
        }
    }
}

impl Feed {
    /// Whether writes push records. Relaxed: it only changes while every key stripe is held
    /// exclusively (see [`Feed::activate`]), and writers read it under their stripe.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Relaxed)
    }

    pub fn set_replica(&self, on: bool) {
        self.replica.store(on, Ordering::Relaxed);
    }

    /// Start (or stop) pushing records. Call it holding every key stripe exclusively.
    pub fn set_active(&self, on: bool) {
        self.active.store(on, Ordering::Relaxed);
    }

    /// Push one command for `db`. Call it under the lock that orders the write (as the AOF record).
    pub fn push(&self, db: usize, argv: &[&[u8]]) {
        let mut inline = [0u8; INLINE];
        let item = match (u32::try_from(db), encode_inline(&mut inline, argv)) {
            (Ok(db), Some(len)) => Item::Inline { db, len: len as u8, bytes: inline },
            _ => {
                let mut bytes = Vec::with_capacity(16 + argv.iter().map(|a| a.len() + 16).sum::<usize>());
                encode_command(&mut bytes, argv);
                Item::Record { db, bytes }
            }
        };
        self.queue.push(item);
        note_push();
        self.wake();
    }

    /// Push records already encoded that leave the stream in database `db` (a `MULTI` ... `EXEC`
    /// block from [`crate::aof::encode_block`]).
    pub fn push_encoded(&self, db: usize, bytes: Vec<u8>) {
        self.queue.push(Item::Record { db, bytes });
        note_push();
        self.wake();
    }

    /// Push bytes that need no `SELECT` (PING, REPLCONF GETACK), in order with the records.
    pub fn push_raw(&self, bytes: &'static [u8]) {
        self.queue.push(Item::Raw(bytes));
        self.wake();
    }

    /// After a push: wake the feed thread unless a wake is already pending.
    fn wake(&self) {
        if !self.pending.swap(true, Ordering::SeqCst)
            && let Some(t) = self.drainer.get()
        {
            t.unpark();
        }
    }

    /// The feed thread: register the calling thread as the one pushes wake.
    pub fn set_drainer(&self) {
        let _ = self.drainer.set(std::thread::current());
    }

    /// The feed thread: return when something may have been pushed since the last call, or after
    /// `timeout`. Drain after it returns (see the module doc for why nothing is missed).
    pub fn wait(&self, timeout: Duration) {
        if !self.pending.swap(false, Ordering::SeqCst) {
            std::thread::park_timeout(timeout);
            self.pending.swap(false, Ordering::SeqCst);
        }
    }

    /// Move everything queued into the backlog; returns its end (`master_repl_offset`).
    pub fn drain(&self) -> u64 {
        let mut last_db = lock(&self.drain);
        self.drain_locked(&mut last_db)
    }

    fn drain_locked(&self, last_db: &mut Option<usize>) -> u64 {
        loop {
            let (end, more) = self.drain_batch(last_db);
            if !more {
                return end;
            }
        }
    }

    /// One chunk's worth (about 1 MB); returns the end and whether the queue may hold more.
    fn drain_batch(&self, last_db: &mut Option<usize>) -> (u64, bool) {
        let mut batch = Vec::new();
        let mut more = false;
        while let Some(item) = self.queue.pop() {
            let (db, bytes) = match &item {
                Item::Record { db, bytes } => (Some(*db), &bytes[..]),
                Item::Inline { db, len, bytes } => (Some(*db as usize), &bytes[..*len as usize]),
                Item::Raw(bytes) => (None, *bytes),
            };
            if let Some(db) = db
                && *last_db != Some(db)
            {
                encode_select(&mut batch, db);
                *last_db = Some(db);
            }
            batch.extend_from_slice(bytes);
            if batch.len() >= 1 << 20 {
                more = true;
                break;
            }
        }
        let mut b = lock(&self.backlog);
        if !batch.is_empty() {
            b.append(Bytes::from(batch));
            self.appended(&mut b);
        }
        (b.end(), more)
    }

    /// A full sync's snapshot point: drain what is queued, and make the next record start with a
    /// `SELECT` (as Redis's `slaveseldb = -1`). Call it holding every key stripe exclusively.
    /// Returns the offset the snapshot stands for.
    pub fn snapshot_point(&self) -> u64 {
        let mut last_db = lock(&self.drain);
        let end = self.drain_locked(&mut last_db);
        *last_db = None;
        end
    }

    /// The next record starts with a `SELECT` (a new history begins: promotion).
    pub fn force_select(&self) {
        *lock(&self.drain) = None;
    }

    /// Append bytes received from our own primary (a replica proxies its primary's stream to its
    /// own replicas byte for byte, so offsets agree along the chain).
    pub fn append_proxied(&self, bytes: Bytes) {
        let mut b = lock(&self.backlog);
        if !bytes.is_empty() {
            b.append(bytes);
            self.appended(&mut b);
        }
    }

    /// After an append (under the backlog lock): publish the end, then offer the chunk to the
    /// replicas' outlets, writing it to the idle ones' sockets (see `outlet`).
    fn appended(&self, b: &mut Backlog) {
        self.end.store(b.end(), Ordering::SeqCst);
        let outlets = lock(&self.outlets);
        if !outlets.is_empty() {
            b.offer_last(&outlets);
        }
        drop(outlets);
        self.flow.update(b.end());
    }

    /// `master_repl_offset`, without the backlog lock (a sender going idle reads it).
    pub fn end(&self) -> u64 {
        self.end.load(Ordering::SeqCst)
    }

    /// Offer every chunk appended from now on to `outlet`, until the returned guard is dropped.
    pub fn attach(&self, outlet: crate::sync::Arc<Outlet>) -> Attached<'_> {
        lock(&self.outlets).push(outlet.clone());
        Attached { feed: self, outlet }
    }

    pub fn backlog(&self) -> MutexGuard<'_, Backlog> {
        lock(&self.backlog)
    }

    /// Reset the backlog to start empty at `offset`; the next record starts with a `SELECT`.
    pub fn reset(&self, offset: u64) {
        let mut last_db = lock(&self.drain);
        while self.queue.pop().is_some() {}
        *last_db = None;
        let mut b = lock(&self.backlog);
        b.reset(offset);
        self.end.store(offset, Ordering::SeqCst);
        for o in lock(&self.outlets).iter() {
            o.hand_back();
        }
    }
}

/// A sender's outlet attached to the feed (see [`Feed::attach`]).
pub struct Attached<'a> {
    feed: &'a Feed,
    outlet: crate::sync::Arc<Outlet>,
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        lock(&self.feed.outlets).retain(|o| !crate::sync::Arc::ptr_eq(o, &self.outlet));
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn select_is_emitted_when_the_db_changes_and_after_a_snapshot_point() {
        let f = Feed::default();
        f.push(0, &[b"SET", b"a", b"1"]);
        f.push(0, &[b"INCR", b"b"]);
        f.push(3, &[b"DEL", b"c"]);
        f.push_raw(b"*1\r\n$4\r\nPING\r\n");
        let end = f.drain();
        let got = f.backlog().read_from(0, usize::MAX).unwrap().concat();
        let want = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$4\r\nINCR\r\n$1\r\nb\r\n\
*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*2\r\n$3\r\nDEL\r\n$1\r\nc\r\n*1\r\n$4\r\nPING\r\n";
        assert_eq!(got, want.to_vec());
        assert_eq!(end, want.len() as u64);
        f.push(3, &[b"DEL", b"d"]);
        let point = f.snapshot_point();
        assert_eq!(point, end + b"*2\r\n$3\r\nDEL\r\n$1\r\nd\r\n".len() as u64);
        f.push(3, &[b"DEL", b"e"]);
        f.drain();
        let tail = f.backlog().read_from(point, usize::MAX).unwrap().concat();
        assert!(tail.starts_with(b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"), "a SELECT after the snapshot point");
    }

    #[test]
    fn records_in_the_slot_and_on_the_heap_are_the_same_bytes_in_order() {
        // Records around the inline limit, in both kinds of slot, interleaved with db changes.
        let f = Feed::default();
        let mut want = Vec::new();
        let mut last_db = None;
        for (i, size) in (0..=2 * INLINE).step_by(7).chain([INLINE - 40, INLINE - 39, INLINE - 38]).enumerate() {
            let value = vec![b'a' + (i % 26) as u8; size];
            let key = format!("k{i}");
            let argv: [&[u8]; 3] = [b"SET", key.as_bytes(), &value];
            let db = i % 3;
            f.push(db, &argv);
            if last_db != Some(db) {
                encode_select(&mut want, db);
                last_db = Some(db);
            }
            encode_command(&mut want, &argv);
        }
        f.push(0, &[]);
        encode_select(&mut want, 0);
        encode_command(&mut want, &[]);
        let end = f.drain();
        assert_eq!(end, want.len() as u64);
        assert_eq!(f.backlog().read_from(0, usize::MAX).unwrap().concat(), want);
        // Up to the limit inline, above it on the heap; the same bytes either way.
        for v in 0..2 * INLINE {
            let value = vec![b'x'; v];
            let mut heap = Vec::new();
            encode_command(&mut heap, &[b"SET", b"k", &value]);
            let mut slot = [0u8; INLINE];
            match encode_inline(&mut slot, &[b"SET", b"k", &value]) {
                Some(len) => assert_eq!(&slot[..len], &heap[..], "{v}-byte value"),
                None => assert!(heap.len() > INLINE, "{} bytes did not fit the slot", heap.len()),
            }
        }
    }

    #[test]
    fn a_push_wakes_the_parked_feed_thread_and_its_drain_sees_the_record() {
        for round in 0..20u32 {
            let f = std::sync::Arc::new(Feed::default());
            let (tx, rx) = std::sync::mpsc::channel();
            let drainer = {
                let f = f.clone();
                std::thread::spawn(move || {
                    f.set_drainer();
                    tx.send(()).unwrap();
                    let t0 = std::time::Instant::now();
                    // Woken by the push, not by this hour-long timeout.
                    f.wait(Duration::from_secs(3600));
                    (t0.elapsed(), f.drain())
                })
            };
            rx.recv().unwrap();
            if round % 2 == 0 {
                std::thread::sleep(Duration::from_millis(2)); // the drainer is parked by now
            }
            f.push(0, &[b"INCR", b"n"]);
            let (waited, end) = drainer.join().unwrap();
            assert!(waited < Duration::from_secs(600), "round {round}: the push did not wake the drainer");
            assert!(end > 0, "round {round}: the drain after the wake missed the record");
        }
    }

    /// The commands of a stream, with the db each is in (from its `SELECT`s).
    fn parse(mut s: &[u8]) -> Vec<(Option<usize>, Vec<Vec<u8>>)> {
        fn line<'a>(s: &mut &'a [u8]) -> &'a [u8] {
            let at = s.windows(2).position(|w| w == b"\r\n").unwrap();
            let l = &s[..at];
            *s = &s[at + 2..];
            l
        }
        let num = |l: &[u8]| std::str::from_utf8(&l[1..]).unwrap().parse::<usize>().unwrap();
        let (mut db, mut out) = (None, Vec::new());
        while !s.is_empty() {
            let n = num(line(&mut s));
            let argv: Vec<Vec<u8>> = (0..n)
                .map(|_| {
                    let len = num(line(&mut s));
                    let a = s[..len].to_vec();
                    s = &s[len + 2..];
                    a
                })
                .collect();
            if argv[0] == b"SELECT" {
                db = Some(std::str::from_utf8(&argv[1]).unwrap().parse().unwrap());
            } else {
                out.push((db, argv));
            }
        }
        out
    }

    #[test]
    fn concurrent_pushes_and_drains_keep_every_writers_order_and_db() {
        const THREADS: usize = 4;
        const EACH: usize = 3000;
        let f = std::sync::Arc::new(Feed::default());
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let drainer = {
            let (f, stop) = (f.clone(), stop.clone());
            std::thread::spawn(move || {
                f.set_drainer();
                while !stop.load(Ordering::SeqCst) {
                    f.wait(Duration::from_millis(1));
                    f.drain();
                }
            })
        };
        let writers: Vec<_> = (0..THREADS)
            .map(|t| {
                let f = f.clone();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        let (k, v) = (format!("k{t}"), i.to_string());
                        if i % 7 == 3 {
                            // A block, as a transaction pushes it, in the writer's db.
                            let (db, bytes) =
                                crate::aof::encode_block([(t % 3, &[&b"SET"[..], k.as_bytes(), v.as_bytes()][..])])
                                    .unwrap();
                            f.push_encoded(db, bytes);
                        } else {
                            f.push(t % 3, &[b"SET", k.as_bytes(), v.as_bytes()]);
                        }
                        if i % 500 == 0 {
                            // WAIT and a full sync drain from other threads too.
                            f.drain();
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::SeqCst);
        drainer.join().unwrap();
        let end = f.drain();
        let stream = f.backlog().read_from(0, usize::MAX).unwrap().concat();
        assert_eq!(stream.len() as u64, end);
        let mut next = [0usize; THREADS];
        for (db, argv) in parse(&stream) {
            if argv[0] == b"MULTI" || argv[0] == b"EXEC" {
                continue;
            }
            let t: usize = std::str::from_utf8(&argv[1][1..]).unwrap().parse().unwrap();
            assert_eq!(db, Some(t % 3), "the SET of writer {t} in its db");
            assert_eq!(argv[2], next[t].to_string().into_bytes(), "writer {t}'s records in its order");
            next[t] += 1;
        }
        assert_eq!(next, [EACH; THREADS], "every record drained once");
    }

    #[test]
    fn a_drain_writes_the_chunk_to_idle_replicas_and_moves_their_backlog_readers() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let f = Feed::default();
        f.backlog().size = 16;
        let counter = std::sync::Arc::new(crate::state::Counter::default());
        let (a, b) = (Outlet::new(1, counter.clone()), Outlet::new(2, counter.clone()));
        let (_ga, _gb) = (f.attach(a.clone()), f.attach(b.clone()));
        let (mut peer, conn) = std::os::unix::net::UnixStream::pair().unwrap();
        peer.set_nonblocking(true).unwrap();
        f.backlog().set_reader(1, Some(0));
        f.backlog().set_reader(2, Some(0));
        // `a` idle at the end, `b` busy (its sender reads the backlog itself).
        let idle = a.idle(conn.as_raw_fd(), 0, || f.end()).unwrap();
        f.push(0, &[b"SET", b"k", b"v"]);
        let end = f.drain();
        let mut got = vec![0u8; 256];
        let n = peer.read(&mut got).unwrap();
        assert_eq!(&got[..n], &f.backlog().read_from(0, usize::MAX).unwrap().concat()[..]);
        assert_eq!(n as u64, end);
        assert_eq!(counter.get(), end);
        let readers = f.backlog().readers.clone();
        assert!(readers.contains(&(1, end)) && readers.contains(&(2, 0)), "{readers:?}");
        // The stream's end, as a sender about to go idle reads it.
        assert_eq!(f.end(), end);
        assert!(b.idle(conn.as_raw_fd(), 0, || f.end()).is_none(), "behind the end: not idle");
        // A reset hands the idle sender back.
        f.reset(end + 100);
        assert_eq!(idle.resume(), end);
        assert_eq!(f.end(), end + 100);
    }

    #[test]
    fn read_from_gives_the_bytes_from_any_held_offset() {
        let mut b = Backlog::new(40);
        let mut all = Vec::new();
        for i in 0..30u8 {
            let chunk = vec![b'a' + (i % 26); 1 + (i as usize % 4)];
            all.extend_from_slice(&chunk);
            b.append(Bytes::from(chunk));
        }
        let (start, end) = (b.start(), b.end());
        assert!(start > 0, "trimmed");
        for from in start..=end {
            let got = b.read_from(from, usize::MAX).unwrap().concat();
            assert_eq!(got, &all[from as usize..], "from {from}");
            let first = b.read_from(from, 1).unwrap();
            assert!(first.len() <= 1, "one chunk when max is 1");
            assert!(all[from as usize..].starts_with(&first.concat()), "from {from}");
        }
        assert!(b.read_from(start - 1, usize::MAX).is_none());
        assert!(b.read_from(end + 1, usize::MAX).is_none());
    }

    #[test]
    fn the_backlog_keeps_its_size_and_what_a_replica_still_needs() {
        let mut b = Backlog::new(10);
        for _ in 0..10 {
            b.append(Bytes::from_static(b"abcd"));
        }
        assert_eq!(b.end(), 40);
        assert!(b.end() - b.start() >= 10 && b.end() - b.start() < 14, "{}", b.start());
        assert!(b.read_from(0, usize::MAX).is_none(), "trimmed");
        assert!(b.read_from(41, usize::MAX).is_none(), "beyond the end");
        assert_eq!(b.read_from(40, usize::MAX).unwrap().concat(), b"");
        b.set_reader(7, Some(b.start()));
        let held_from = b.start();
        for _ in 0..10 {
            b.append(Bytes::from_static(b"efgh"));
        }
        assert_eq!(b.start(), held_from, "a replica still needs these bytes");
        let got = b.read_from(held_from + 1, usize::MAX).unwrap().concat();
        assert_eq!(got.len() as u64, b.end() - held_from - 1);
        b.set_reader(7, None);
        b.append(Bytes::from_static(b"ijkl"));
        assert!(b.end() - b.start() < 14);
    }
}
