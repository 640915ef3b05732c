//! Clients blocked on list keys (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) and sorted-set keys
//! (BZPOPMIN, BZPOPMAX, BZMPOP). Mirrors Redis's
//! `blocked.c` (`serveClientsBlockedOnKey`), without its single thread: the protocol below
//! replaces it. Everything here is built on the `sync` facade, so the loom models
//! (`loom-tests/blocking.rs`) run this very code; the connection's tokio side only awaits
//! [`Waiter::wait`] next to its timer and calls [`Waiter::cancel`] when the timer fires.
//!
//! # No lost wake-up
//!
//! A blocking command that found nothing takes its keys' stripes **exclusively**, checks the keys
//! again and registers its [`Waiter`] on every key while still holding them. Whatever makes a key
//! hold elements (a push, LMOVE's destination, RENAME, SWAPDB ...) holds the key's stripe (shared
//! or exclusive) and serves the key's waiters before releasing it. So either the push comes first
//! (the check under the lock sees the element and the command pops it itself) or the registration
//! comes first (the pusher finds the waiter). A write pays one atomic load while nobody is blocked.
//!
//! # Who is served: a direct hand-off
//!
//! The writer that filled the key, still holding the key's stripe and the list's lock right after
//! its own record, pops for the key's waiters in blocking order (first blocked, first served), logs
//! each pop as the non-blocking `LPOP|RPOP key n` (so the ordering invariant of `db` holds and the
//! AOF never holds a blocking command), and hands the elements to the waiter through its slot. A
//! waiter is claimed by a compare-and-swap on its state (`WAITING -> CLAIMED`); a waiter whose
//! timer fires at the same moment tries `WAITING -> GONE`. Exactly one wins: either the pusher pops
//! for it and it replies with the elements, or it replies with a timeout and the pusher, having lost
//! the race, leaves the elements for the next waiter (or in the list). Nothing is popped for a
//! waiter before it is claimed, so an element is never lost or delivered twice.
//!
//! As in Redis, a push is thus served to blocked clients before any later command sees the list: a
//! non-blocking LPOP that arrives right after the push finds what the blocked clients left, and
//! pushes from different connections serve the waiters in blocking order. A push made inside EXEC
//! serves its waiters once the transaction's block is logged (`TxHold::finish`), still under its
//! stripes. A waiter registered on several keys is served by the first key that gets elements.
//!
//! Sorted sets are served the same way ([`Serve`]): the writer that filled the key pops for its
//! BZPOPMIN/BZPOPMAX/BZMPOP waiters in blocking order and logs each pop as `ZPOPMIN|ZPOPMAX key n`.
//! As in Redis, a key serves only the clients blocked for its type: the others keep their place.
//!
//! BLMOVE and BRPOPLPUSH are the exception: serving them needs the destination's stripe, which the
//! pusher may not take (stripes are taken in ascending order). Their waiter is woken instead
//! (`WAITING -> WOKEN`) and re-runs its command: serving stops at it, so the elements stay for it,
//! but a non-blocking pop arriving before its re-run can take them; it then blocks again at the
//! **front** of its queue. A woken mover that goes away without re-running passes the wake-up on
//! ([`Keyspace::pass_on`]).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use super::stream::{Stream, StreamWait};
use super::zset::SortedSet;
use super::zset::score::format_score;
use super::{Keyspace, ValueRef, WriteLock};
use crate::sync::fault::{self, Fault};
use crate::sync::{AtomicUsize, Mutex, MutexGuard, Ordering, lock};

/// What a blocked client is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Up to `count` elements from the head (`left`) or the tail, handed over by the pusher;
    /// `mpop` for BLMPOP (whose served pop Redis counts as changes since the last save, BLPOP's
    /// and BRPOP's not).
    Pop { left: bool, count: usize, mpop: bool },
    /// A wake-up: the client re-runs its command (BLMOVE, BRPOPLPUSH).
    Rerun,
    /// Up to `count` lowest (highest, `max`) members of a sorted set with their scores, handed
    /// over by the writer.
    ZPop { max: bool, count: usize },
    /// New stream entries (XREAD, XREADGROUP): what it reads is in its waiter's [`StreamWait`];
    /// the writer that added entries reads them for it (see `cmd::stream`).
    Stream,
}

/// A collection blocked clients are served from: lists and sorted sets.
pub trait Serve {
    /// Whether a client waiting for `want` is served from this type (others keep their place).
    fn serves(want: Want) -> bool;
    fn is_empty(&self) -> bool;
    /// Pop what `want` asks for (a `Pop` or `ZPop` this type serves): the items handed over (for
    /// sorted sets, member and score text alternately) and the record that logs the pop.
    fn pop_for(&mut self, want: Want, key: &[u8]) -> (Vec<Bytes>, [Vec<u8>; 3]);
}

impl Serve for super::List {
    fn serves(want: Want) -> bool {
        matches!(want, Want::Pop { .. } | Want::Rerun)
    }
    fn is_empty(&self) -> bool {
        super::List::is_empty(self)
    }
    fn pop_for(&mut self, want: Want, key: &[u8]) -> (Vec<Bytes>, [Vec<u8>; 3]) {
        let Want::Pop { left, count, .. } = want else { return (Vec::new(), Default::default()) };
        let popped: Vec<Bytes> =
            (0..count).map_while(|_| if left { self.pop_front() } else { self.pop_back() }).collect();
        let name: &[u8] = if left { b"LPOP" } else { b"RPOP" };
        let record = [name.to_vec(), key.to_vec(), popped.len().to_string().into_bytes()];
        (popped, record)
    }
}

impl Serve for SortedSet {
    fn serves(want: Want) -> bool {
        matches!(want, Want::ZPop { .. })
    }
    fn is_empty(&self) -> bool {
        SortedSet::is_empty(self)
    }
    fn pop_for(&mut self, want: Want, key: &[u8]) -> (Vec<Bytes>, [Vec<u8>; 3]) {
        let Want::ZPop { max, count } = want else { return (Vec::new(), Default::default()) };
        let popped = self.pop(count, max);
        let name: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
        let record = [name.to_vec(), key.to_vec(), popped.len().to_string().into_bytes()];
        let items = popped.into_iter().flat_map(|(m, s)| [m, Bytes::from(format_score(s))]).collect();
        (items, record)
    }
}

/// What a pusher handed to a blocked client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub key: Bytes,
    pub items: Vec<Bytes>,
    /// The AOF sequence number of the pop's record (the client's reply waits for it to be durable).
    pub seq: u64,
}

/// Waiting; a pusher or the timer may claim it.
const WAITING: usize = 0;
/// A pusher claimed it and is popping its elements (SERVED follows while the pusher holds the key).
const CLAIMED: usize = 1;
/// Its elements are in the slot.
const SERVED: usize = 2;
/// A mover woken to re-run its command.
const WOKEN: usize = 3;
/// Its timer won: nobody may serve it any more.
const GONE: usize = 4;

/// One blocked client, as queued on each of its keys.
#[derive(Debug)]
pub struct Waiter {
    want: Want,
    state: AtomicUsize,
    inner: Mutex<Slot>,
    /// What a stream reader waits for (`Want::Stream` only).
    stream: Option<Box<StreamWait>>,
}

#[derive(Debug, Default)]
struct Slot {
    served: Option<Served>,
    waker: Option<Waker>,
}

/// What a pusher's claim found.
enum Claim {
    /// Ours to serve (or wake).
    Got,
    /// A woken mover: it stays queued, and serving stops there (it takes the key's next element
    /// when it re-runs, or passes the wake-up on when it goes away).
    Keep,
    /// Served from elsewhere, claimed by another pusher, or gone: out of this queue.
    Drop,
}

impl Waiter {
    fn new(want: Want) -> Waiter {
        Waiter { want, state: AtomicUsize::new(WAITING), inner: Mutex::new(Slot::default()), stream: None }
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        lock(&self.inner)
    }

    /// Resolves once the client was served, woken or unblocked (then the command runs again).
    pub fn wait(&self) -> WaitFuture<'_> {
        WaitFuture { waiter: self }
    }

    /// The client's timer fired: give up unless a pusher got there first. True when it gave up
    /// (the command replies as timed out); false when it was claimed, served or woken (wait on: it
    /// resolves at once or as soon as the claiming pusher has handed the elements over).
    pub fn cancel(&self) -> bool {
        if fault::on(Fault::TimeoutDropsHandedOver) {
            // Broken: the timer ignores a hand-off in progress, and the handed-over elements with it.
            let _ = self.state.compare_exchange(WAITING, GONE, Ordering::AcqRel, Ordering::Acquire);
            return true;
        }
        // AcqRel/Acquire: the claim is a CAS on the same variable; exactly one of the two wins.
        self.state.compare_exchange(WAITING, GONE, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// CLIENT UNBLOCK: end the wait unless a pusher got there first, as the timer does
    /// ([`Waiter::cancel`], the same compare-and-swap), and wake the waiting client. True when it
    /// ended the wait (nothing is or will be handed over); false when the client was claimed,
    /// served, woken, or already gone.
    pub fn unblock(&self) -> bool {
        if fault::on(Fault::UnblockIgnoresClaim) {
            // Broken: a load, then a store: a pusher's claim in between is overridden.
            if matches!(self.state.load(Ordering::Acquire), WAITING | CLAIMED) {
                crate::sync::thread::yield_now();
                self.state.store(GONE, Ordering::Release);
                if let Some(w) = self.slot().waker.take() {
                    w.wake();
                }
                return true;
            }
            return false;
        }
        // AcqRel/Acquire: as `cancel`; exactly one of a claim, a timeout and an unblock wins.
        if self.state.compare_exchange(WAITING, GONE, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return false;
        }
        // The state is set before the slot lock is taken: a poll that registered its waker
        // before is woken here, a later poll sees GONE (see `WaitFuture`).
        let waker = self.slot().waker.take();
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Wake a client that waits for something other than a key (WAIT: an ACK arrived) to re-run
    /// its command; the same compare-and-swap as a claim, so a timeout or an unblock at the same
    /// moment wins or loses cleanly. False when it was not waiting any more.
    pub fn wake_rerun(&self) -> bool {
        // AcqRel/Acquire: as `claim`; the state is set before the slot lock is taken to wake.
        if self.state.compare_exchange(WAITING, WOKEN, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return false;
        }
        self.wake();
        true
    }

    /// Take what a pusher handed over (once).
    pub fn take_served(&self) -> Option<Served> {
        // Acquire: pairs with the Release store of SERVED in `hand_over`.
        if self.state.load(Ordering::Acquire) != SERVED {
            return None;
        }
        self.slot().served.take()
    }

    fn woken(&self) -> bool {
        self.state.load(Ordering::Acquire) == WOKEN
    }

    /// A pusher's claim (called with the registry's lock held, by a pusher holding the key).
    fn claim(&self) -> Claim {
        let to = if self.want == Want::Rerun { WOKEN } else { CLAIMED };
        if fault::on(Fault::ClaimWithoutCas) {
            // Broken: check, then claim, as two steps: the timer can win in between.
            if self.state.load(Ordering::Acquire) == WAITING {
                crate::sync::thread::yield_now();
                self.state.store(to, Ordering::Release);
                return Claim::Got;
            }
        }
        // AcqRel: the winner of the race with `cancel` (or another key's pusher) is unique.
        match self.state.compare_exchange(WAITING, to, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Claim::Got,
            Err(WOKEN) => Claim::Keep,
            Err(_) => Claim::Drop,
        }
    }

    /// The claiming pusher puts the elements in the slot and wakes the client.
    fn hand_over(&self, served: Served) {
        let waker = {
            let mut slot = self.slot();
            slot.served = Some(served);
            // Release: pairs with the Acquire loads in `take_served` and `WaitFuture::poll`; stored
            // under the slot lock, so a poll that registered its waker before is woken below.
            self.state.store(SERVED, Ordering::Release);
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Wake a mover (its state is already WOKEN: the claim set it).
    fn wake(&self) {
        if let Some(w) = self.slot().waker.take() {
            w.wake();
        }
    }

    fn ready(&self) -> bool {
        // Acquire: pairs with the Release in `hand_over` (and the claim's CAS for WOKEN). GONE:
        // unblocked (or timed out: then nobody waits any more).
        matches!(self.state.load(Ordering::Acquire), SERVED | WOKEN | GONE)
    }
}

/// See [`Waiter::wait`]. No lost wake-up: the poll registers its waker and re-checks the state under
/// the slot lock, and a pusher sets the state before taking that lock to wake.
pub struct WaitFuture<'a> {
    waiter: &'a Waiter,
}

impl Future for WaitFuture<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let w = self.waiter;
        if w.ready() {
            return Poll::Ready(());
        }
        let mut slot = w.slot();
        if w.ready() {
            return Poll::Ready(());
        }
        match &mut slot.waker {
            Some(old) if old.will_wake(cx.waker()) => {}
            other => *other = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

type Queues = HashMap<(usize, Bytes), VecDeque<Arc<Waiter>>>;

/// The registry of blocked clients, by (logical db, key).
#[derive(Default)]
pub struct Blocking {
    /// Registrations alive: the pushers' one-load check, and INFO's `blocked_clients`.
    waiting: AtomicUsize,
    /// Registrations with a deadline (INFO `clients_in_timeout_table`).
    timed: AtomicUsize,
    /// XREADGROUP registrations: while there are some, writes look at their keys afterwards (a
    /// deleted stream fails its group readers).
    group_readers: AtomicUsize,
    queues: Mutex<Queues>,
}

impl std::fmt::Debug for Blocking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocking").field("waiting", &self.waiting.load(Ordering::Relaxed)).finish()
    }
}

impl Blocking {
    fn queues(&self) -> MutexGuard<'_, Queues> {
        lock(&self.queues)
    }

    /// Whether any client is blocked (one atomic load).
    pub fn anyone_waiting(&self) -> bool {
        // SeqCst: the increment is made before the registration, under the key's exclusive stripe,
        // which every pusher of the key holds too.
        self.waiting.load(Ordering::SeqCst) != 0
    }

    /// Clients blocked now (INFO `blocked_clients`).
    pub fn blocked_clients(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Blocked clients with a timeout (INFO `clients_in_timeout_table`).
    pub fn with_timeout(&self) -> usize {
        self.timed.load(Ordering::Relaxed)
    }

    /// Block (or block again) `reg` on its keys. The caller holds every key's stripe exclusively
    /// and has just seen all of them empty. A first registration queues at the back; a woken mover
    /// that found nothing goes back to the front of its queues.
    pub fn register(&self, reg: &Registration) {
        // SeqCst/Release: the state is read by claims made under the registry lock taken below.
        let again = reg.waiter.state.swap(WAITING, Ordering::SeqCst) == WOKEN;
        let mut queues = self.queues();
        for key in &reg.keys {
            let q = queues.entry((reg.db, key.clone())).or_default();
            if !q.iter().any(|w| Arc::ptr_eq(w, &reg.waiter)) {
                if again { q.push_front(reg.waiter.clone()) } else { q.push_back(reg.waiter.clone()) }
            }
        }
    }

    /// The first waiter of `(db, key)` that `serves` accepts, claimed and taken out of that queue;
    /// None when there is none or a woken mover comes first.
    fn next_waiter(&self, db: usize, key: &[u8], serves: fn(Want) -> bool) -> Option<Arc<Waiter>> {
        let mut queues = self.queues();
        let id = (db, Bytes::copy_from_slice(key));
        let q = queues.get_mut(&id)?;
        let mut found = None;
        let mut i = if fault::on(Fault::HandOffToNewestWaiter) { q.len().saturating_sub(1) } else { 0 };
        while i < q.len() {
            if !serves(q[i].want) {
                // Blocked for another type: it keeps its place.
                i += 1;
                continue;
            }
            match q[i].claim() {
                // A woken mover keeps its place until it re-runs (see `Claim::Keep`).
                Claim::Got if q[i].want == Want::Rerun => {
                    found = Some(q[i].clone());
                    break;
                }
                Claim::Got => {
                    found = q.remove(i);
                    break;
                }
                // Nobody passes a woken mover: the key's next element is its own.
                Claim::Keep => break,
                Claim::Drop => {
                    q.remove(i);
                }
            }
        }
        if q.is_empty() {
            queues.remove(&id);
        }
        found
    }

    /// Hand elements of the list or sorted set `items` at `(db, key)` to its blocked clients, first blocked
    /// first (see the module doc). The caller holds the key's stripe and the list's lock, and has
    /// logged its own record; `log` pushes a record and returns its sequence number.
    pub(super) fn serve<T: Serve>(&self, db: usize, key: &[u8], items: &mut T, log: impl Fn(&[&[u8]]) -> u64) {
        if !self.anyone_waiting() {
            return;
        }
        while !items.is_empty() {
            let Some(w) = self.next_waiter(db, key, T::serves) else { return };
            if w.want == Want::Rerun {
                // A mover re-runs its command: the elements wait for it.
                w.wake();
                return;
            }
            let (popped, record) = items.pop_for(w.want, key);
            // Changes since the last save, as Redis counts a served pop: the elements BLMPOP,
            // BZPOPMIN/MAX and BZMPOP took; nothing for BLPOP/BRPOP (`serveClientBlockedOnList`).
            let changes = match w.want {
                Want::Pop { mpop: false, .. } => 0,
                _ => std::str::from_utf8(&record[2]).ok().and_then(|n| n.parse().ok()).unwrap_or(1),
            };
            crate::rdb::dirty::next_record_counts(changes);
            let seq = log(&[&record[0][..], &record[1], &record[2]]);
            w.hand_over(Served { key: Bytes::copy_from_slice(key), items: popped, seq });
        }
    }

    /// Serve the stream readers blocked on `(db, key)`, first blocked first: each that `f` finds
    /// ready (`f(wait, false)` is Some) is claimed, then `f(wait, true)` reads (and logs) for it
    /// and returns what it hands over and the sequence number of its last record. Readers that
    /// are not ready keep their place. The caller holds the key's stripe and the stream's lock.
    pub(super) fn serve_streams(
        &self,
        db: usize,
        key: &[u8],
        mut f: impl FnMut(&StreamWait, bool) -> Option<(Vec<Bytes>, u64)>,
    ) {
        if !self.anyone_waiting() {
            return;
        }
        let id = (db, Bytes::copy_from_slice(key));
        let waiters: Vec<Arc<Waiter>> = match self.queues().get(&id) {
            Some(q) => q.iter().filter(|w| w.want == Want::Stream).cloned().collect(),
            None => return,
        };
        for w in waiters {
            let Some(wait) = w.stream.as_deref() else { continue };
            if f(wait, false).is_none() {
                continue;
            }
            let got = matches!(w.claim(), Claim::Got);
            if got {
                let (items, seq) = f(wait, true).unwrap_or_default();
                w.hand_over(Served { key: id.1.clone(), items, seq });
            }
            let mut queues = self.queues();
            if let Some(q) = queues.get_mut(&id) {
                q.retain(|x| !Arc::ptr_eq(x, &w));
                if q.is_empty() {
                    queues.remove(&id);
                }
            }
        }
    }

    /// Whether an XREADGROUP client is blocked (one atomic load).
    pub fn group_readers_waiting(&self) -> bool {
        // SeqCst: as `anyone_waiting` (incremented before registering, under the key's stripe).
        self.group_readers.load(Ordering::SeqCst) != 0
    }

    /// The keys (with their db) that XREADGROUP clients block on.
    pub(super) fn group_reader_keys(&self) -> Vec<(usize, Bytes)> {
        let is_group = |w: &Arc<Waiter>| w.stream.as_ref().is_some_and(|s| s.group.is_some());
        self.queues().iter().filter(|(_, q)| q.iter().any(is_group)).map(|(id, _)| id.clone()).collect()
    }

    /// Answer the XREADGROUP clients blocked on `(db, key)` with the error `text`: the key no
    /// longer holds a stream (Redis's `unblockDeletedStreamReadgroupClients`), their group is gone
    /// with it. Each is claimed as a pusher claims it (a client timing out at that moment gets
    /// one reply or the other). The caller holds the key's stripe.
    pub(super) fn fail_group_readers(&self, db: usize, key: &[u8], text: &'static str) {
        if !self.group_readers_waiting() {
            return;
        }
        let id = (db, Bytes::copy_from_slice(key));
        let mut failed = Vec::new();
        {
            let mut queues = self.queues();
            let Some(q) = queues.get_mut(&id) else { return };
            q.retain(|w| {
                if w.stream.as_ref().is_none_or(|s| s.group.is_none()) {
                    return true;
                }
                if matches!(w.claim(), Claim::Got) {
                    failed.push(w.clone());
                }
                false
            });
            if q.is_empty() {
                queues.remove(&id);
            }
        }
        for w in failed {
            let items = vec![Bytes::from_static(b"E"), Bytes::from_static(text.as_bytes())];
            w.hand_over(Served { key: id.1.clone(), items, seq: 0 });
        }
    }

    /// Every key of `db` that a client is blocked on (SWAPDB serves them all).
    pub(super) fn keys_of(&self, db: usize) -> Vec<Bytes> {
        self.queues().keys().filter(|(d, _)| *d == db).map(|(_, k)| k.clone()).collect()
    }

    /// Waiters queued on `(db, key)` (tests).
    pub fn queued(&self, db: usize, key: &[u8]) -> usize {
        self.queues().get(&(db, Bytes::copy_from_slice(key))).map_or(0, |q| q.len())
    }
}

/// A client's registration on its keys, alive while it is blocked and between its re-runs.
/// Dropping it (served, timed out, disconnected) removes every trace.
pub struct Registration {
    /// When the blocked command times out (None: never); kept across re-runs.
    pub deadline: Option<std::time::Instant>,
    blocking: Arc<Blocking>,
    db: usize,
    keys: Vec<Bytes>,
    waiter: Arc<Waiter>,
    /// An XREADGROUP registration (counted in `Blocking::group_readers`).
    group: bool,
}

impl Registration {
    /// A registration of `keys` in `db` (not queued yet: see [`Blocking::register`]).
    pub fn new(
        blocking: Arc<Blocking>,
        db: usize,
        keys: Vec<Bytes>,
        deadline: Option<std::time::Instant>,
        want: Want,
    ) -> Registration {
        // SeqCst: see `anyone_waiting`.
        blocking.waiting.fetch_add(1, Ordering::SeqCst);
        if deadline.is_some() {
            // Relaxed: a statistic.
            blocking.timed.fetch_add(1, Ordering::Relaxed);
        }
        Registration { deadline, blocking, db, keys, waiter: Arc::new(Waiter::new(want)), group: false }
    }

    /// A stream reader's registration (XREAD, XREADGROUP with BLOCK): `wait` says what it reads.
    pub fn new_stream(
        blocking: Arc<Blocking>,
        db: usize,
        deadline: Option<std::time::Instant>,
        wait: StreamWait,
    ) -> Registration {
        let group = wait.group.is_some();
        if group {
            // SeqCst: see `group_readers_waiting`; before the registration is queued.
            blocking.group_readers.fetch_add(1, Ordering::SeqCst);
        }
        let mut reg = Registration::new(blocking, db, wait.keys.clone(), deadline, Want::Stream);
        reg.group = group;
        let waiter = Arc::get_mut(&mut reg.waiter).expect("a new waiter is not shared");
        waiter.stream = Some(Box::new(wait));
        reg
    }

    pub fn waiter(&self) -> Arc<Waiter> {
        self.waiter.clone()
    }

    /// Whether these are the keys (and db) it was made for.
    pub fn is_for(&self, db: usize, keys: &[Bytes]) -> bool {
        self.db == db && self.keys == keys
    }

    /// What a pusher handed over, if anything.
    pub fn take_served(&self) -> Option<Served> {
        self.waiter.take_served()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        {
            let mut queues = self.blocking.queues();
            for key in &self.keys {
                let id = (self.db, key.clone());
                if let Some(q) = queues.get_mut(&id) {
                    q.retain(|w| !Arc::ptr_eq(w, &self.waiter));
                    if q.is_empty() {
                        queues.remove(&id);
                    }
                }
            }
        }
        self.blocking.waiting.fetch_sub(1, Ordering::SeqCst);
        if self.group {
            self.blocking.group_readers.fetch_sub(1, Ordering::SeqCst);
        }
        if self.deadline.is_some() {
            self.blocking.timed.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Keyspace {
    /// A blocked client goes away for good (disconnected, or its re-run failed). A mover that had
    /// been woken and did not take its element passes the wake-up on: its keys are served again.
    pub fn pass_on(&self, reg: Registration) {
        if !reg.waiter.woken() {
            return;
        }
        let (db, keys) = (reg.db, reg.keys.clone());
        drop(reg);
        let seq = std::cell::Cell::new(0);
        let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        let w = self.write(db, &refs, &seq);
        for key in &keys {
            w.serve_later(db, key);
        }
    }
}

impl WriteLock<'_> {
    /// Serve the blocked clients of `key` (this write's db) from `items` now: the items of its list
    /// or sorted set, under the value's lock and this write's stripe, or those of a list about to be created, under
    /// the exclusive stripe (so that no reader sees what the clients take). Inside EXEC: once the
    /// transaction is logged.
    pub fn serve_waiters<T: Serve>(&self, key: &[u8], items: &mut T) {
        let blocking = &self.ks.blocking;
        if !blocking.anyone_waiting() || self.ks.defer_serve(self.db, key) {
            return;
        }
        blocking.serve(self.db, key, items, |argv| self.log_served(self.db, argv));
    }

    /// Log the pop that served a blocked client (`LPOP|RPOP|ZPOPMIN|ZPOPMAX key n`) and announce
    /// it as Redis does when it serves one (`lpop`, `zpopmin`, ... on the key).
    fn log_served(&self, db: usize, argv: &[&[u8]]) -> u64 {
        // What it counts as changes since the last save was declared by `Blocking::serve`.
        let seq = self.log_in(db, argv);
        use crate::pubsub::notify::class::{LIST, ZSET};
        let event = match argv[0] {
            b"LPOP" => "lpop",
            b"RPOP" => "rpop",
            b"ZPOPMIN" => "zpopmin",
            _ => "zpopmax",
        };
        self.notify_in(db, if argv[0][0] == b'Z' { ZSET } else { LIST }, event, argv[1]);
        seq
    }

    /// Serve the stream readers blocked on `key` (this write's db) from the stream `s`, which this
    /// write just added entries to (or whose group it destroyed), under the stream's lock and this
    /// write's stripe. Inside EXEC: once the transaction is logged.
    pub fn serve_stream_waiters(&self, key: &[u8], s: &mut Stream) {
        let blocking = &self.ks.blocking;
        if !blocking.anyone_waiting() || self.ks.defer_serve(self.db, key) {
            return;
        }
        self.serve_stream_in(self.db, key, s);
    }

    fn serve_stream_in(&self, db: usize, key: &[u8], s: &mut Stream) {
        let now = crate::util::now_ms();
        self.ks.blocking.serve_streams(db, key, |wait, take| {
            // A group reader served under a consumer name its group lacks creates it: announced
            // as Redis does (`xgroup-createconsumer`).
            let has_consumer = |s: &Stream| {
                wait.group
                    .as_ref()
                    .and_then(|g| s.groups.get(&g.group[..]).map(|gr| gr.consumers.contains_key(&g.consumer[..])))
            };
            let before = if take { has_consumer(s) } else { None };
            // The served reader's records as one block (see `WriteLock::log_records`).
            let mut records = self.records();
            let r = s.serve_reader(key, wait, take, now, &mut |argv| records.push(argv));
            let created = before == Some(false) && has_consumer(s) == Some(true);
            // Redis counts only the consumer a served reader created (its entries' records not).
            records.set_changes(created as u64);
            let seq = self.log_records(db, &records);
            let r = r.map(|(items, _)| (items, seq));
            if created {
                self.notify_in(db, crate::pubsub::notify::class::STREAM, "xgroup-createconsumer", key);
            }
            r
        });
    }

    /// `key` (this write's db, whose stripe this lock holds exclusively) may hold a list or sorted set now: serve
    /// its blocked clients when this lock is released, after the records logged under it.
    pub fn serve_after(&self, key: &[u8]) {
        self.serve_later(self.db, key);
    }

    /// `key` of `db` may hold a list now: serve its blocked clients when this lock is released.
    pub(super) fn serve_later(&self, db: usize, key: &[u8]) {
        if self.ks.blocking.anyone_waiting() {
            self.serve.borrow_mut().push((db, Bytes::copy_from_slice(key)));
        }
    }

    /// Serve the keys noted by [`serve_later`](Self::serve_later), stripes still held (the drop).
    pub(super) fn serve_noted(&self) {
        let noted = std::mem::take(&mut *self.serve.borrow_mut());
        for (db, key) in noted {
            if !self.ks.defer_serve(db, &key) {
                self.serve_key(db, &key);
            }
        }
    }

    /// Serve the blocked clients of the list or sorted set at `key` in `db`, if it holds one. The
    /// key's stripe is held exclusively (or by the EXEC this thread runs).
    pub(super) fn serve_key(&self, db: usize, key: &[u8]) {
        let map = self.ks.db(db);
        if let Some(cell) = map.get(key, |e| match e.map(|e| e.value()) {
            Some(ValueRef::Stream(cell)) => Some(cell.clone()),
            _ => None,
        }) {
            let mut st = cell.lock();
            if !st.dead {
                self.serve_stream_in(db, key, &mut st.items);
            }
            return;
        }
        // Not a stream (any more): its XREADGROUP clients get Redis 7.0's error.
        self.ks.blocking.fail_group_readers(db, key, "UNBLOCKED the stream key no longer exists");
        let value = map.get(key, |e| match e.map(|e| e.value()) {
            Some(ValueRef::List(cell)) => Some(Ok(cell.clone())),
            Some(ValueRef::Zset(cell)) => Some(Err(cell.clone())),
            _ => None,
        });
        match value {
            Some(Ok(cell)) => self.serve_cell(db, key, &cell),
            Some(Err(cell)) => self.serve_cell(db, key, &cell),
            None => {}
        }
    }

    /// [`serve_key`](Self::serve_key) on the cell found there; an emptied value is removed.
    fn serve_cell<T: Serve>(&self, db: usize, key: &[u8], cell: &super::ValueCell<T>) {
        let mut st = cell.lock();
        if st.dead {
            return;
        }
        self.ks.blocking.serve(db, key, &mut st.items, |argv| self.log_served(db, argv));
        if st.items.is_empty() {
            cell.mark_dead(&mut st);
            self.ks.db(db).remove(key);
            self.notify_in(db, crate::pubsub::notify::class::GENERIC, "del", key);
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn reg(b: &Arc<Blocking>, keys: &[&str], want: Want) -> Registration {
        let keys = keys.iter().map(|k| Bytes::copy_from_slice(k.as_bytes())).collect();
        let r = Registration::new(b.clone(), 0, keys, None, want);
        b.register(&r);
        r
    }

    const POP: Want = Want::Pop { left: true, count: 1, mpop: false };

    fn items(v: &[&str]) -> crate::db::List {
        crate::db::List::from_items(v.iter().map(|s| s.as_bytes()), -2)
    }

    fn got(r: &Registration) -> Option<Vec<Bytes>> {
        r.take_served().map(|s| s.items)
    }

    #[test]
    fn elements_go_to_waiters_in_blocking_order_one_each() {
        let b = Arc::new(Blocking::default());
        assert!(!b.anyone_waiting());
        let (r1, r2, r3) = (reg(&b, &["k"], POP), reg(&b, &["k"], POP), reg(&b, &["k"], POP));
        let mut list = items(&["a", "b"]);
        b.serve(0, b"k", &mut list, |_| 7);
        assert!(list.is_empty());
        assert_eq!(got(&r1), Some(items(&["a"]).into()));
        assert_eq!(got(&r2), Some(items(&["b"]).into()));
        assert_eq!(got(&r3), None);
        assert_eq!(b.queued(0, b"k"), 1);
        b.serve(1, b"k", &mut items(&["x"]), |_| 0); // another db: nobody
        assert_eq!(got(&r3), None);
    }

    #[test]
    fn a_waiter_that_gave_up_is_passed_over() {
        let b = Arc::new(Blocking::default());
        let (r1, r2) = (reg(&b, &["k"], POP), reg(&b, &["k"], POP));
        assert!(r1.waiter.cancel());
        let mut list = items(&["a"]);
        b.serve(0, b"k", &mut list, |_| 0);
        assert_eq!((got(&r1), got(&r2)), (None, Some(items(&["a"]).into())));
        assert!(!r2.waiter.cancel(), "a served waiter cannot time out any more");
    }

    #[test]
    fn a_waiter_served_from_one_key_is_not_served_again_from_another() {
        let b = Arc::new(Blocking::default());
        let r1 = reg(&b, &["a", "k"], Want::Pop { left: false, count: 2, mpop: true });
        let rk = reg(&b, &["k"], POP);
        let mut a = items(&["1", "2", "3"]);
        b.serve(0, b"a", &mut a, |_| 0);
        assert_eq!(a, items(&["1"]));
        let mut k = items(&["x"]);
        b.serve(0, b"k", &mut k, |_| 0);
        assert_eq!(got(&r1), Some(items(&["3", "2"]).into()));
        assert_eq!(got(&rk), Some(items(&["x"]).into()));
    }

    #[test]
    fn a_mover_is_woken_and_serving_stops_at_it_until_it_blocks_again_in_front() {
        let b = Arc::new(Blocking::default());
        let (m, p) = (reg(&b, &["k"], Want::Rerun), reg(&b, &["k"], POP));
        let mut list = items(&["a"]);
        b.serve(0, b"k", &mut list, |_| 0);
        assert_eq!(list.len(), 1);
        assert!(m.waiter.woken() && got(&p).is_none());
        b.register(&m); // found nothing on its re-run: back in front
        b.serve(0, b"k", &mut list, |_| 0);
        assert!(m.waiter.woken() && got(&p).is_none());
    }

    #[test]
    fn dropping_leaves_no_trace() {
        let b = Arc::new(Blocking::default());
        let r = reg(&b, &["a", "k"], POP);
        assert_eq!(b.blocked_clients(), 1);
        drop(r);
        assert_eq!((b.queued(0, b"a"), b.queued(0, b"k")), (0, 0));
        assert!(!b.anyone_waiting());
    }
}
