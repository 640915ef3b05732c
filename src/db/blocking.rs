//! Clients blocked on list keys (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP). Mirrors Redis's
//! `blocked.c`, without its single thread: the ordering protocol below replaces it.
//!
//! # No lost wake-ups
//!
//! A blocking command that found nothing takes its keys' stripes **exclusively**, checks the keys
//! again and registers its [`Waiter`] on every key while still holding them. A pusher holds the
//! key's stripe (shared or exclusive) while it pushes and signals the key after its push, still
//! under the stripe. So either the push comes first (the check under the lock sees the element and
//! the command pops it) or the registration comes first (the pusher sees the waiter). The push path
//! costs one atomic load while nobody is blocked ([`Blocking::signal`]).
//!
//! # Who is served
//!
//! A signal on `(db, key)` wakes the **first not yet signalled** waiter of that key and takes it
//! out of that key's queue (it keeps its place in the queues of its other keys). The woken client
//! re-runs its command; when it finds nothing (another client took the element first, e.g. a
//! non-blocking LPOP) it registers again at the **front** of the queues it was taken out of. A pop
//! that leaves elements in a list signals that key again, so a push of several elements wakes the
//! waiters one after the other, in blocking order. A signalled client that goes away (timeout,
//! disconnect) or is served from another key passes the signal on to its keys.
//!
//! The guarantee: among clients blocked on the same key, wake-ups are handed out in blocking order
//! (the first to block is woken first and, when it finds nothing, stays first), and the elements
//! of one push go to them in that order. Two pushes from different connections in quick succession
//! may wake two clients at once, which then race for the elements. A woken client also
//! competes with non-blocking commands and with clients woken through another key, so unlike
//! Redis (which serves blocked clients before running the next command) an element may go to a
//! non-blocking pop that arrives between the push and the woken client's re-run.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;

/// One blocked client, as queued on each of its keys.
#[derive(Default)]
pub struct Waiter {
    notify: Notify,
    /// Set by the signal that took it out of a queue; cleared when it registers again.
    signalled: AtomicBool,
}

impl Waiter {
    /// Wait for a signal (a permit given before the wait is kept: nothing is missed).
    pub async fn wait(&self) {
        self.notify.notified().await
    }
}

type Queues = HashMap<(usize, Bytes), VecDeque<Arc<Waiter>>>;

/// The registry of blocked clients, by (logical db, key).
#[derive(Default)]
pub struct Blocking {
    /// Registrations alive: the pushers' one-load check.
    waiting: AtomicUsize,
    queues: Mutex<Queues>,
}

impl Blocking {
    fn queues(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether any client is blocked (one atomic load).
    pub fn anyone_waiting(&self) -> bool {
        // SeqCst pairs with the increment made under the stripe in `register`.
        self.waiting.load(Ordering::SeqCst) != 0
    }

    /// A key of `db` may have become a non-empty list: wake its first waiter not yet signalled.
    /// The caller holds the key's stripe (see the module doc); nothing to do when nobody waits.
    pub fn signal(&self, db: usize, key: &[u8]) {
        if !self.anyone_waiting() {
            return;
        }
        self.signal_now(db, key);
    }

    fn signal_now(&self, db: usize, key: &[u8]) {
        let mut queues = self.queues();
        let id = (db, Bytes::copy_from_slice(key));
        let Some(q) = queues.get_mut(&id) else { return };
        if let Some(i) = q.iter().position(|w| !w.signalled.load(Ordering::SeqCst))
            && let Some(w) = q.remove(i)
        {
            w.signalled.store(true, Ordering::SeqCst);
            w.notify.notify_one();
        }
        if q.is_empty() {
            queues.remove(&id);
        }
    }

    /// Wake every blocked client (SWAPDB changes what every key of two dbs holds): each re-runs
    /// its command and blocks again at the front of its queues when it finds nothing.
    pub fn signal_all(&self) {
        if !self.anyone_waiting() {
            return;
        }
        let mut queues = self.queues();
        for (_, q) in queues.drain() {
            for w in q {
                if !w.signalled.swap(true, Ordering::SeqCst) {
                    w.notify.notify_one();
                }
            }
        }
    }

    /// Block (or block again) `reg` on its keys. The caller holds every key's stripe exclusively
    /// and has just seen all of them empty. A first registration queues at the back; after a
    /// wake-up it goes back to the front of the queues it was taken out of.
    pub fn register(&self, reg: &Registration) {
        let again = reg.waiter.signalled.swap(false, Ordering::SeqCst);
        let mut queues = self.queues();
        for key in &reg.keys {
            let q = queues.entry((reg.db, key.clone())).or_default();
            if !q.iter().any(|w| Arc::ptr_eq(w, &reg.waiter)) {
                if again { q.push_front(reg.waiter.clone()) } else { q.push_back(reg.waiter.clone()) }
            }
        }
    }

    /// Waiters queued on `(db, key)` (tests).
    pub fn queued(&self, db: usize, key: &[u8]) -> usize {
        self.queues().get(&(db, Bytes::copy_from_slice(key))).map_or(0, |q| q.len())
    }
}

/// A client's registration on its keys, alive while it is blocked and between its re-runs.
/// Dropping it (served, timed out, disconnected) removes every trace and, when it had been
/// signalled, passes the signal on to its keys.
pub struct Registration {
    /// When the blocked command times out (None: never); kept across re-runs.
    pub deadline: Option<std::time::Instant>,
    blocking: Arc<Blocking>,
    db: usize,
    keys: Vec<Bytes>,
    waiter: Arc<Waiter>,
    /// Set once it has left its queues (served or dropped).
    left: bool,
}

impl Registration {
    /// A registration of `keys` in `db` (not queued yet: see [`Blocking::register`]).
    pub fn new(
        blocking: Arc<Blocking>,
        db: usize,
        keys: Vec<Bytes>,
        deadline: Option<std::time::Instant>,
    ) -> Registration {
        blocking.waiting.fetch_add(1, Ordering::SeqCst);
        Registration { deadline, blocking, db, keys, waiter: Arc::new(Waiter::default()), left: false }
    }

    pub fn waiter(&self) -> Arc<Waiter> {
        self.waiter.clone()
    }

    /// Whether these are the keys (and db) it was made for.
    pub fn is_for(&self, db: usize, keys: &[Bytes]) -> bool {
        self.db == db && self.keys == keys
    }
}

impl Registration {
    /// The blocked command was served from `key`: leave, passing a signal it had received on to
    /// its other keys only (the pop that served it wakes the next waiter of `key` itself when it
    /// left elements there, so waiters of one key are woken one after the other, in order).
    pub fn served(mut self, key: &[u8]) {
        self.leave(Some(key));
    }

    fn leave(&mut self, served_from: Option<&[u8]>) {
        if std::mem::replace(&mut self.left, true) {
            return;
        }
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
        if self.waiter.signalled.load(Ordering::SeqCst) {
            for key in self.keys.iter().filter(|k| served_from != Some(&k[..])) {
                self.blocking.signal_now(self.db, key);
            }
        }
        self.blocking.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.leave(None);
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn reg(b: &Arc<Blocking>, keys: &[&str]) -> Registration {
        let r =
            Registration::new(b.clone(), 0, keys.iter().map(|k| Bytes::copy_from_slice(k.as_bytes())).collect(), None);
        b.register(&r);
        r
    }

    fn signalled(r: &Registration) -> bool {
        r.waiter.signalled.load(Ordering::SeqCst)
    }

    #[test]
    fn signals_go_to_waiters_in_blocking_order_one_each() {
        let b = Arc::new(Blocking::default());
        assert!(!b.anyone_waiting());
        let (r1, r2) = (reg(&b, &["k"]), reg(&b, &["k"]));
        assert!(b.anyone_waiting());
        b.signal(0, b"k");
        assert!(signalled(&r1) && !signalled(&r2));
        b.signal(0, b"k");
        assert!(signalled(&r2));
        b.signal(1, b"k"); // another db: nobody
        assert_eq!(b.queued(0, b"k"), 0);
    }

    #[test]
    fn a_woken_waiter_that_found_nothing_keeps_its_place_at_the_front() {
        let b = Arc::new(Blocking::default());
        let r1 = reg(&b, &["k"]);
        b.signal(0, b"k");
        let r2 = reg(&b, &["k"]);
        b.register(&r1); // r1 found nothing: back at the front, ahead of r2
        assert!(!signalled(&r1));
        b.signal(0, b"k");
        assert!(signalled(&r1) && !signalled(&r2));
    }

    #[test]
    fn dropping_leaves_no_trace_and_passes_a_received_signal_on() {
        let b = Arc::new(Blocking::default());
        let (r1, r2) = (reg(&b, &["a", "k"]), reg(&b, &["k"]));
        b.signal(0, b"a");
        assert!(signalled(&r1) && !signalled(&r2));
        drop(r1); // disconnected before taking its element: r2 gets the signal
        assert!(signalled(&r2));
        assert_eq!((b.queued(0, b"a"), b.queued(0, b"k")), (0, 0));
        drop(r2);
        assert!(!b.anyone_waiting());
    }

    #[test]
    fn a_waiter_served_from_one_key_passes_the_signal_only_to_its_other_keys() {
        let b = Arc::new(Blocking::default());
        let r1 = reg(&b, &["a", "k"]);
        let (ra, rk) = (reg(&b, &["a"]), reg(&b, &["k"]));
        b.signal(0, b"k");
        r1.served(b"a");
        assert!(!signalled(&ra) && signalled(&rk));
    }
}
