//! Flow control: writers on a primary wait while a replica of ours applies the stream far behind.
//!
//! A primary runs its clients' writes on every core; a replica applies the stream on one task,
//! in order. Where the two share the machine's cores (or the replica's are slower), the primary
//! can produce the stream faster than a replica applies it, and the replica falls behind by as
//! much as the socket buffers and the backlog hold: seconds of writes that a client reading from
//! the replica does not see, however small each write. Redis's primary, one thread like its
//! replica's, rarely outruns it.
//!
//! So a flurrydb replica says `REPLCONF capa flow` before its PSYNC (Redis ignores a capability
//! it does not know) and acknowledges its offset every [`ACK_BYTES`] it applies, besides Redis's
//! ACK each second. On the primary, a replica that said it is [`Flow::attach`]ed; the offsets
//! it acknowledges are noted ([`FlowLink::acked`]), and after each chunk appended to the backlog
//! and each ACK, [`Flow::update`] compares the stream's end with them. When one replica is more
//! than [`HIGH`] bytes behind, the primary is `congested` until every one is less than [`LOW`]
//! behind. A client whose last batch wrote waits before its next batch while the primary is
//! congested ([`Flow::wait`]), until the replicas' ACKs clear it, or [`WAIT_MAX`] at most per
//! batch: the primary's writes go at the pace its replicas apply them, and a read on a replica
//! lags by at most about [`HIGH`] bytes of writes.
//!
//! A replica that stops acknowledging (stopped, cut off, busy with one long command) stops
//! counting after [`FRESH`]: the primary goes on without it, as Redis, and keeps the stream for
//! it in the backlog (up to the output buffer's hard limit). Flow control never stops the
//! primary for longer than that. Redis replicas (no `capa flow`) are never waited for.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// Plain std locks, as the feed's (which holds this state). No loom model: a waiter that missed a
// clear still wakes after WAIT_MAX, so no interleaving can stop a client, only delay it.
use super::feed::lock;

/// A replica this far behind the stream's end makes the primary congested...
pub const HIGH: u64 = 192 << 10;
/// ... until every replica is less than this behind.
pub const LOW: u64 = 96 << 10;
/// A replica that said `capa flow` acknowledges its offset after applying this many bytes.
pub const ACK_BYTES: usize = 32 << 10;
/// An acknowledgement older than this does not hold the primary back (the replica is stopped, or
/// busy with one long command, or acknowledges only each second as Redis's).
pub const FRESH: Duration = Duration::from_millis(200);
/// The longest a client waits before one batch while the primary is congested.
pub const WAIT_MAX: Duration = Duration::from_millis(20);

/// One replica under flow control, as the primary knows it.
pub struct FlowLink {
    /// The offset it acknowledged last.
    acked: AtomicU64,
    /// When (milliseconds since [`Flow`]'s epoch; [`NEVER`] before its first ACK: a replica
    /// still loading its full sync's snapshot holds nobody back).
    acked_at: AtomicU64,
}

const NEVER: u64 = u64::MAX;

/// The primary's flow control state (see the module doc).
pub struct Flow {
    congested: AtomicBool,
    /// Woken when the primary stops being congested.
    clear: tokio::sync::Notify,
    /// The replicas that said `capa flow`.
    links: Mutex<Vec<Arc<FlowLink>>>,
    /// `links.len()`, read without the lock by every chunk appended.
    count: AtomicUsize,
    epoch: Instant,
}

impl Default for Flow {
    fn default() -> Self {
        Flow {
            congested: AtomicBool::new(false),
            clear: tokio::sync::Notify::new(),
            links: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
            epoch: Instant::now(),
        }
    }
}

impl Flow {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether clients that write should wait (see [`Flow::wait`]).
    #[inline]
    pub fn congested(&self) -> bool {
        self.congested.load(Ordering::Relaxed)
    }

    /// Put a replica under flow control, from offset `from` (it holds everything before it), until
    /// the returned guard is dropped.
    pub fn attach(&self, from: u64) -> FlowGuard<'_> {
        let link = Arc::new(FlowLink { acked: AtomicU64::new(from), acked_at: AtomicU64::new(NEVER) });
        let mut links = lock(&self.links);
        links.push(link.clone());
        self.count.store(links.len(), Ordering::Relaxed);
        FlowGuard { flow: self, link }
    }

    /// A replica acknowledged `offset`; `end` is the stream's end now.
    pub fn acked(&self, link: &FlowLink, offset: u64, end: u64) {
        link.acked.fetch_max(offset, Ordering::Relaxed);
        link.acked_at.store(self.now(), Ordering::Relaxed);
        if self.congested() {
            self.update(end);
        }
    }

    /// The stream now ends at `end` (a chunk was appended): set or clear `congested`.
    pub fn update(&self, end: u64) {
        if self.count.load(Ordering::Relaxed) == 0 && !self.congested() {
            return;
        }
        let now = self.now();
        let links = lock(&self.links);
        let behind = links
            .iter()
            .filter(|l| {
                let at = l.acked_at.load(Ordering::Relaxed);
                at != NEVER && now.saturating_sub(at) < FRESH.as_millis() as u64
            })
            .map(|l| end.saturating_sub(l.acked.load(Ordering::Relaxed)))
            .max()
            .unwrap_or(0);
        if self.congested() {
            if behind < LOW {
                self.congested.store(false, Ordering::Relaxed);
                drop(links);
                self.clear.notify_waiters();
            }
        } else if behind > HIGH {
            self.congested.store(true, Ordering::Relaxed);
        }
    }

    /// Wait until the primary is no longer congested, or [`WAIT_MAX`].
    pub async fn wait(&self) {
        let cleared = self.clear.notified();
        tokio::pin!(cleared);
        // Registered before the check: a clear after it wakes this waiter.
        cleared.as_mut().enable();
        if !self.congested() {
            return;
        }
        let _ = tokio::time::timeout(WAIT_MAX, cleared).await;
    }
}

/// A replica under flow control (see [`Flow::attach`]).
pub struct FlowGuard<'a> {
    flow: &'a Flow,
    pub link: Arc<FlowLink>,
}

impl Drop for FlowGuard<'_> {
    fn drop(&mut self) {
        let mut links = lock(&self.flow.links);
        links.retain(|l| !Arc::ptr_eq(l, &self.link));
        self.flow.count.store(links.len(), Ordering::Relaxed);
        if links.is_empty() && self.flow.congested() {
            self.flow.congested.store(false, Ordering::Relaxed);
            drop(links);
            self.flow.clear.notify_waiters();
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn congested_past_high_until_every_fresh_replica_is_below_low() {
        let flow = Flow::default();
        flow.update(10 << 20);
        assert!(!flow.congested(), "no replica under flow control: never congested");
        let a = flow.attach(0);
        let b = flow.attach(0);
        flow.update(4 * HIGH);
        assert!(!flow.congested(), "replicas that never acknowledged (loading a snapshot) do not count");
        flow.acked(&a.link, 0, 0);
        flow.acked(&b.link, 0, 0);
        flow.update(HIGH);
        assert!(!flow.congested(), "HIGH behind is not yet past it");
        flow.update(HIGH + 1);
        assert!(flow.congested());
        // One replica catches up; the other is still behind.
        flow.acked(&a.link, HIGH, HIGH + 1);
        assert!(flow.congested());
        // Hysteresis: below HIGH is not enough, below LOW clears.
        flow.acked(&b.link, HIGH + 1 - LOW, HIGH + 1);
        assert!(flow.congested(), "exactly LOW behind keeps it congested");
        flow.acked(&b.link, HIGH + 2 - LOW, HIGH + 1);
        assert!(!flow.congested());
        // An ACK never moves a replica backwards.
        flow.acked(&b.link, 0, HIGH + 1);
        flow.update(HIGH + 1);
        assert!(!flow.congested());
        drop(a);
        drop(b);
    }

    #[test]
    fn a_replica_that_stops_acknowledging_stops_holding_the_primary_back() {
        let flow = Flow::default();
        let a = flow.attach(0);
        flow.acked(&a.link, 0, 0);
        flow.update(HIGH + 1);
        assert!(flow.congested());
        // Its last ACK grows stale: the next chunk appended clears the state.
        std::thread::sleep(FRESH + Duration::from_millis(20));
        flow.update(HIGH + 2);
        assert!(!flow.congested(), "a stale replica does not count");
        flow.acked(&a.link, 0, 4 * HIGH);
        flow.update(4 * HIGH);
        assert!(flow.congested(), "acknowledging again, it counts again");
        drop(a);
        assert!(!flow.congested(), "the last replica gone: nothing to wait for");
    }

    #[tokio::test]
    async fn a_waiter_is_woken_by_the_clear_and_never_waits_past_wait_max() {
        let flow = Arc::new(Flow::default());
        let guard_flow = flow.clone();
        let link = {
            let g = guard_flow.attach(0);
            let l = g.link.clone();
            std::mem::forget(g);
            l
        };
        flow.acked(&link, 0, 0);
        // Not congested: returns (no clear will come).
        flow.wait().await;
        // Congested, cleared by an ACK from another task: the waiter wakes.
        flow.update(HIGH + 1);
        let f2 = flow.clone();
        let l2 = link.clone();
        let acker = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            f2.acked(&l2, HIGH + 1, HIGH + 1);
        });
        flow.wait().await;
        acker.await.unwrap();
        assert!(!flow.congested());
        // Congested and nobody clears it: the wait ends by itself.
        flow.acked(&link, 0, 0);
        flow.update(2 * HIGH + 2);
        assert!(flow.congested());
        let t = Instant::now();
        flow.wait().await;
        assert!(flow.congested());
        assert!(t.elapsed() >= WAIT_MAX, "waited its bound");
    }
}
