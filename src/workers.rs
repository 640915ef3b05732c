//! One tokio runtime per worker thread: where connections run.
//!
//! Why: with one multi-threaded runtime, the workers take turns at its one I/O driver, so each
//! `epoll_wait` returns fewer ready sockets, and a worker that comes back from the driver with more
//! than one task wakes a parked one (a futex) to steal them: at pipeline 1 that cost a context
//! switch every ~10 requests above Redis's (README, "Pipeline 1: the per-request wake-up path").
//! Here each worker is the single worker of its own runtime (`new_multi_thread().worker_threads(1)`,
//! so that `block_in_place` still hands its other connections to a new thread: see
//! `cmd::offload`), with its own driver and timer: each `epoll_wait` serves only its own sockets,
//! nothing is stolen and no worker wakes another. The keyspace stays shared and lock-free; tasks of
//! different runtimes wake one another through tokio's wakers as before (a blocked client, a
//! subscriber, CLIENT PAUSE).
//!
//! The price: a connection stays on the runtime it was placed on. [`place`] gives a new connection
//! to the runtime with the fewest live connections (the first of those after the last one chosen),
//! so long-lived clients spread evenly; but two busy clients on one runtime share its core while
//! another runtime idles.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam::utils::CachePadded;
use tokio::net::TcpStream;
use tokio::runtime::{Handle, Runtime};

/// One runtime's handle and how many connections live on it (changed at connect and close only).
struct Slot {
    handle: Handle,
    conns: CachePadded<AtomicUsize>,
}

struct Workers {
    slots: Vec<Slot>,
    /// The last runtime chosen: ties go to the next one after it (round-robin among equals).
    last: AtomicUsize,
}

static WORKERS: OnceLock<Workers> = OnceLock::new();

thread_local! {
    /// The runtime this thread belongs to (`usize::MAX`: none of [`start`]'s).
    static HOME: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// Build `n` runtimes (at least one) of one worker each, named `worker-<i>`, and make them the
/// ones [`place`] uses. The caller keeps the runtimes alive for the life of the process.
pub fn start(n: usize) -> Vec<Runtime> {
    let runtimes: Vec<Runtime> = (0..n.max(1))
        .map(|i| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(format!("worker-{i}"))
                // Every thread of runtime `i` (its worker, and a thread that `block_in_place` made
                // its worker for a while) knows it is on runtime `i`.
                .on_thread_start(move || HOME.with(|h| h.set(i)))
                .enable_all()
                .build()
                .expect("tokio runtime")
        })
        .collect();
    let slots =
        runtimes.iter().map(|rt| Slot { handle: rt.handle().clone(), conns: CachePadded::new(AtomicUsize::new(0)) });
    let _ = WORKERS.set(Workers { slots: slots.collect(), last: AtomicUsize::new(usize::MAX) });
    runtimes
}

/// The number of worker threads by default: one per core, as tokio's own default.
pub fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Decrements its runtime's connection count when the connection's task ends (or is dropped).
struct Placed(&'static CachePadded<AtomicUsize>);

impl Drop for Placed {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Which runtime gets the next connection: the fewest live connections, ties broken round-robin.
fn choose(workers: &Workers) -> usize {
    let n = workers.slots.len();
    let start = workers.last.load(Ordering::Relaxed).wrapping_add(1) % n;
    let mut best = start;
    let mut best_conns = usize::MAX;
    for k in 0..n {
        let i = (start + k) % n;
        let c = workers.slots[i].conns.load(Ordering::Relaxed);
        if c < best_conns {
            best = i;
            best_conns = c;
        }
    }
    workers.last.store(best, Ordering::Relaxed);
    best
}

/// Run `serve(stream)` as a task of one of the runtimes [`start`] built (see [`choose`]); the
/// socket moves to that runtime's I/O driver. Without [`start`] (the library used on its own), on
/// the current runtime.
pub fn place<F, Fut>(stream: TcpStream, serve: F)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(workers) = WORKERS.get() else {
        tokio::spawn(serve(stream));
        return;
    };
    let i = choose(workers);
    let slot = &workers.slots[i];
    if HOME.with(|h| h.get()) == i {
        // Already on that runtime's driver.
        slot.conns.fetch_add(1, Ordering::Relaxed);
        let placed = Placed(&slot.conns);
        tokio::spawn(async move {
            let _placed = placed;
            serve(stream).await
        });
        return;
    }
    // Off the accepting runtime's driver, onto the chosen one's.
    let std_stream = match stream.into_std() {
        Ok(s) => s,
        Err(e) => {
            crate::warning!("Moving a client connection to its worker: {e}");
            return;
        }
    };
    slot.conns.fetch_add(1, Ordering::Relaxed);
    let placed = Placed(&slot.conns);
    slot.handle.spawn(async move {
        let _placed = placed;
        match TcpStream::from_std(std_stream) {
            Ok(stream) => serve(stream).await,
            Err(e) => crate::warning!("Registering a client connection: {e}"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workers(conns: &[usize]) -> (Vec<Runtime>, Workers) {
        let rts: Vec<Runtime> =
            conns.iter().map(|_| tokio::runtime::Builder::new_current_thread().build().unwrap()).collect();
        let slots = rts
            .iter()
            .zip(conns)
            .map(|(rt, &c)| Slot { handle: rt.handle().clone(), conns: CachePadded::new(AtomicUsize::new(c)) })
            .collect();
        (rts, Workers { slots, last: AtomicUsize::new(usize::MAX) })
    }

    #[test]
    fn fewest_connections_first_ties_round_robin() {
        let (_rts, w) = workers(&[0, 0, 0]);
        assert_eq!((choose(&w), choose(&w), choose(&w), choose(&w)), (0, 1, 2, 0));
        let (_rts, w) = workers(&[3, 1, 2]);
        assert_eq!(choose(&w), 1);
        w.slots[1].conns.store(5, Ordering::Relaxed);
        assert_eq!(choose(&w), 2);
        w.slots[2].conns.store(5, Ordering::Relaxed);
        assert_eq!(choose(&w), 0);
    }

    #[test]
    fn a_placed_connection_is_counted_until_its_task_ends() {
        // Without `start` (as in these unit tests) `place` spawns on the current runtime and counts
        // nothing; the counting guard is checked on its own.
        let c: &'static CachePadded<AtomicUsize> = Box::leak(Box::new(CachePadded::new(AtomicUsize::new(1))));
        drop(Placed(c));
        assert_eq!(c.load(Ordering::Relaxed), 0);
    }
}
