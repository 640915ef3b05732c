//! Group commit, the waiting side: the durable watermark, the latched write error, and the wakers of
//! callers waiting for their record to become durable. The writer publishes, callers poll.
//!
//! No lost wake-up: a caller registers its waker and re-checks the watermark and the latch while holding
//! the `waiters` lock; the writer stores the watermark (or latch) *before* taking that lock to wake. So
//! either the caller's check sees the new value, or the writer's wake pass sees the waker.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::AofError;
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering, lock};

pub(super) struct Durability {
    /// Highest seq S such that every record with seq <= S is durable.
    watermark: AtomicU64,
    /// Set while a write/extend/msync failure is latched (the text is in `waiters.error`).
    latched: AtomicBool,
    /// Set once the writer thread has exited: nothing will become durable any more.
    stopped: AtomicBool,
    waiters: Mutex<Waiters>,
}

#[derive(Default)]
struct Waiters {
    /// (seq, waiter id) -> waker; ordered by seq so the writer wakes a prefix.
    wakers: BTreeMap<(u64, u64), Waker>,
    next_id: u64,
    error: Option<String>,
}

impl Durability {
    pub(super) fn new() -> Self {
        Durability {
            watermark: AtomicU64::new(0),
            latched: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            waiters: Mutex::new(Waiters::default()),
        }
    }

    pub(super) fn watermark(&self) -> u64 {
        // Acquire: pairs with the Release in `publish`, so a caller that sees its seq covered also sees
        // everything the writer did before (the msync).
        self.watermark.load(Ordering::Acquire)
    }

    /// Writer: every record with seq <= `watermark` is durable. Wakes the callers it covers.
    pub(super) fn publish(&self, watermark: u64) {
        // Release: pairs with the Acquire in `watermark()`; stored before the lock (see module doc).
        self.watermark.store(watermark, Ordering::Release);
        let woken = {
            let mut w = lock(&self.waiters);
            let rest = w.wakers.split_off(&(watermark + 1, 0));
            std::mem::replace(&mut w.wakers, rest)
        };
        woken.into_values().for_each(Waker::wake);
    }

    /// Writer: latch a failure (`Some`) or clear it (`None`). Latching wakes every waiter so that those
    /// not covered by the watermark fail.
    pub(super) fn set_error(&self, error: Option<String>) {
        let latched = error.is_some();
        let woken = {
            let mut w = lock(&self.waiters);
            w.error = error;
            // Release/Acquire with `poll_wait`/`error`: the flag is read before taking the lock.
            self.latched.store(latched, Ordering::Release);
            if latched { std::mem::take(&mut w.wakers) } else { BTreeMap::new() }
        };
        woken.into_values().for_each(Waker::wake);
    }

    pub(super) fn error(&self) -> Option<String> {
        // Acquire: pairs with the Release in `set_error`; the common case (no error) takes no lock.
        if !self.latched.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.waiters).error.clone()
    }

    /// Writer: it has exited. Wakes everyone; waiters not covered fail with `Closed`.
    pub(super) fn stop(&self) {
        let woken = {
            let mut w = lock(&self.waiters);
            // Release: pairs with the Acquire in `check`.
            self.stopped.store(true, Ordering::Release);
            std::mem::take(&mut w.wakers)
        };
        woken.into_values().for_each(Waker::wake);
    }

    pub(super) fn is_stopped(&self) -> bool {
        // Acquire: pairs with the Release in `stop`.
        self.stopped.load(Ordering::Acquire)
    }

    #[cfg(all(test, not(feature = "loom")))]
    pub(super) fn waiter_count(&self) -> usize {
        lock(&self.waiters).wakers.len()
    }

    /// Ready result for `seq` if there is one: covered, failed, or the writer is gone.
    fn check(&self, seq: u64, error: Option<&String>) -> Option<Result<(), AofError>> {
        if self.watermark() >= seq {
            Some(Ok(()))
        } else if let Some(e) = error {
            Some(Err(AofError::Poisoned(e.clone())))
        } else if self.is_stopped() {
            Some(Err(AofError::Closed))
        } else {
            None
        }
    }
}

/// The future returned by [`super::Aof::wait_durable`]. Dropping it deregisters its waker.
pub(super) struct DurableWait<'a> {
    durability: Option<&'a Durability>,
    seq: u64,
    id: Option<u64>,
}

impl<'a> DurableWait<'a> {
    /// A wait that resolves `Ok` at once (AOF disabled, or a policy that does not wait).
    pub(super) fn ready() -> Self {
        DurableWait { durability: None, seq: 0, id: None }
    }

    pub(super) fn new(durability: &'a Durability, seq: u64) -> Self {
        DurableWait { durability: Some(durability), seq, id: None }
    }
}

impl Future for DurableWait<'_> {
    type Output = Result<(), AofError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(d) = this.durability else { return Poll::Ready(Ok(())) };
        if d.watermark() >= this.seq {
            return Poll::Ready(Ok(()));
        }
        let mut w = lock(&d.waiters);
        // Re-check under the lock (see module doc).
        let recheck = !crate::sync::fault::on(crate::sync::fault::Fault::WaiterCheckBeforeRegister);
        if let Some(ready) = d.check(this.seq, w.error.as_ref()).filter(|_| recheck) {
            if let Some(id) = this.id.take() {
                w.wakers.remove(&(this.seq, id));
            }
            return Poll::Ready(ready);
        }
        let id = *this.id.get_or_insert_with(|| {
            w.next_id += 1;
            w.next_id
        });
        match w.wakers.get_mut(&(this.seq, id)) {
            Some(old) if old.will_wake(cx.waker()) => {}
            Some(old) => *old = cx.waker().clone(),
            None => {
                w.wakers.insert((this.seq, id), cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

impl Drop for DurableWait<'_> {
    fn drop(&mut self) {
        if let (Some(d), Some(id)) = (self.durability, self.id) {
            lock(&d.waiters).wakers.remove(&(self.seq, id));
        }
    }
}
