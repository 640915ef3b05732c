//! Where connections run: one tokio runtime per worker thread, and only as many of them in use as
//! the load needs and the machine has cores for.
//!
//! Each worker is the single worker of its own runtime (`new_multi_thread().worker_threads(1)`, so
//! that `block_in_place` still hands its other connections to a new thread: see `cmd::offload`),
//! with its own I/O driver and timer. The keyspace stays shared and lock-free; tasks of different
//! runtimes wake one another through tokio's wakers (a blocked client, a subscriber, CLIENT PAUSE,
//! the AOF writer).
//!
//! Connection `id` belongs on runtime `id % active`. [`place`] starts it there; at the end of each
//! batch the connection asks [`wanted`] and, when `active` has changed since, moves itself there
//! ([`move_to`]: the socket leaves one driver for the other, its state goes with it). `active` is
//! set by the balancer thread every [`WINDOW`] ([`Balancer`]; its CPU rules in [`next_active`]):
//! - up, while the runtimes in use are saturated (the process used at least [`UP_BUSY`] of a core
//!   per runtime) and the machine has at least [`UP_IDLE`] of a core idle: a core that would run the
//!   new worker rather than take turns with another process; kept only if the commands run per
//!   second rise by [`UP_GAIN`] (else undone, and not tried again for a while);
//! - down, when the work would fit in fewer runtimes ([`DOWN_BUSY`] of a core each), and on trial
//!   every [`PROBE_EVERY`] windows (kept if fewer run [`DOWN_KEEP`] as much).
//!
//! `worker-threads-in-use` (a hidden parameter, CONFIG SET too) fixes the count instead; INFO's
//! `io_threads_active` is 1 while more than one runtime is in use.
//!
//! Why not one multi-threaded runtime: its workers take turns at one I/O driver, and a worker that
//! comes back from it with more than one ready task wakes a parked one to steal them. With clients
//! on the same machine (a load generator, an application server, a sidecar) that second worker
//! takes turns on the core the clients run on: on 2 cores against single-threaded redis-benchmark
//! the light pipeline-16 commands ran at 0.88-0.98x Redis with two workers, at 1.0-1.2x with one,
//! while scripts need the second core (README, "Where the pipeline 1 and 16 rows stand"). Why not
//! all runtimes always (connections spread evenly): each `epoll_wait` then sees fewer ready sockets
//! and each worker blocks and wakes more often (README, "One runtime per worker thread").

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;
use tokio::net::TcpStream;
use tokio::runtime::{Handle, Runtime};

/// How often the balancer measures and decides.
pub const WINDOW: Duration = Duration::from_millis(200);
/// Runtimes in use count as saturated at this share of a core each (the process's CPU time).
pub const UP_BUSY: f64 = 0.9;
/// The machine's idle CPU (in cores) that adding a runtime needs.
pub const UP_IDLE: f64 = 0.3;
/// A runtime fewer is enough when the process used at most this share of a core per remaining one.
pub const DOWN_BUSY: f64 = 0.95;

struct Workers {
    handles: Vec<Handle>,
    /// How many runtimes are in use (1..=handles.len()): connection `id` belongs on `id % active`.
    active: CachePadded<AtomicUsize>,
}

static WORKERS: OnceLock<Workers> = OnceLock::new();

/// `worker-threads-in-use`: 0, the balancer chooses; `n`, always `n` runtimes (at most all).
static FIXED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The runtime this thread belongs to (`usize::MAX`: none of [`start`]'s).
    static HOME: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// Build `n` runtimes (at least one) of one worker each, named `worker-<i>`, make them the ones
/// [`place`] uses (only the first in use at first), and, with more than one, start the balancer.
/// The caller keeps the runtimes alive for the life of the process.
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
    let handles = runtimes.iter().map(|rt| rt.handle().clone()).collect();
    if WORKERS.set(Workers { handles, active: CachePadded::new(AtomicUsize::new(1)) }).is_ok() && runtimes.len() > 1 {
        let spawned = std::thread::Builder::new().name("balancer".into()).spawn(balance);
        if let Err(e) = spawned {
            crate::warning!("Starting the worker balancer (connections stay on one worker): {e}");
        }
    }
    runtimes
}

/// The number of worker threads by default: one per core, as tokio's own default.
pub fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How many runtimes are in use now (1 without [`start`]).
pub fn active() -> usize {
    WORKERS.get().map_or(1, |w| w.active.load(Ordering::Relaxed))
}

/// `worker-threads-in-use` (startup and CONFIG SET): 0 lets the balancer choose how many runtimes
/// are in use, `n` fixes it at `n` (at most all of them). Connections move at their next batch.
pub fn set_in_use(n: usize) {
    FIXED.store(n, Ordering::Relaxed);
    if let Some(w) = WORKERS.get()
        && n > 0
    {
        w.active.store(n.min(w.handles.len()), Ordering::Relaxed);
    }
}

/// Run `serve(stream)` as a task of the runtime connection `id` belongs on; the socket moves to
/// that runtime's I/O driver (`serve` gets the error if it cannot). Without [`start`] (the library
/// used on its own), on the current runtime.
pub fn place<F, Fut>(id: u64, stream: TcpStream, serve: F)
where
    F: FnOnce(std::io::Result<TcpStream>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    match WORKERS.get() {
        Some(w) => move_to(belongs_on(id, w.active.load(Ordering::Relaxed)), stream, serve),
        None => drop(tokio::spawn(serve(Ok(stream)))),
    }
}

/// Where connection `id` belongs with `active` runtimes in use.
fn belongs_on(id: u64, active: usize) -> usize {
    (id % active.max(1) as u64) as usize
}

/// The runtime connection `id` should move to, when that is not the one running this thread (one
/// relaxed load and a division per batch).
pub fn wanted(id: u64) -> Option<usize> {
    let w = WORKERS.get()?;
    let target = belongs_on(id, w.active.load(Ordering::Relaxed));
    (HOME.with(|h| h.get()) != target).then_some(target)
}

/// Run `serve(stream)` as a task of runtime `i` (on the current runtime when it is runtime `i`,
/// or without [`start`]), the socket registered with that runtime's driver. A socket that cannot
/// move reaches `serve` as the error (on this runtime, or on runtime `i` if it could not register
/// there): the connection ends there as if the client had gone.
pub fn move_to<F, Fut>(i: usize, stream: TcpStream, serve: F)
where
    F: FnOnce(std::io::Result<TcpStream>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(w) = WORKERS.get() else {
        tokio::spawn(serve(Ok(stream)));
        return;
    };
    if HOME.with(|h| h.get()) == i {
        // Already on that runtime's driver.
        tokio::spawn(serve(Ok(stream)));
        return;
    }
    // Off this runtime's driver, onto runtime `i`'s.
    match stream.into_std() {
        Ok(std_stream) => drop(w.handles[i].spawn(async move { serve(TcpStream::from_std(std_stream)).await })),
        Err(e) => drop(tokio::spawn(serve(Err(e)))),
    }
}

/// How many runtimes the CPU figures alone ask for, of `n`, with `active` in use during a window in
/// which the process used `busy` cores and the machine left `idle` cores idle (see the module's
/// rules); [`Balancer`] tries a change before it keeps it.
pub fn next_active(active: usize, n: usize, busy: f64, idle: f64) -> usize {
    let active = active.clamp(1, n.max(1));
    if busy >= UP_BUSY * active as f64 && idle >= UP_IDLE {
        // Every idle core is one more worker that runs rather than waits (at least one).
        let more = (idle.floor() as usize).max(1);
        return (active + more).min(n.max(1));
    }
    if active > 1 && busy <= DOWN_BUSY * (active - 1) as f64 {
        return ((busy / DOWN_BUSY).ceil() as usize).clamp(1, active - 1);
    }
    active
}

/// A change of the count on trial: kept when the commands run per second reach `keep_at` times
/// what they were before it.
#[derive(Debug, Clone, Copy)]
struct Trial {
    from: usize,
    rate_before: f64,
    keep_at: f64,
    /// Windows left before the judgement (the first one after a change is the connections moving).
    settle: u32,
}

/// More runtimes are kept only if they run at least this much more (a local client's core taken
/// gains nothing: the trial fails).
pub const UP_GAIN: f64 = 1.05;
/// Fewer runtimes are kept if they run at least this share of what more ran.
pub const DOWN_KEEP: f64 = 0.97;
/// With more than one runtime in use and nothing changing, fewer are tried this often (windows).
pub const PROBE_EVERY: u64 = 25;
/// After a failed trial, none upward for this many windows, doubled per failure up to the maximum.
pub const BACKOFF_FIRST: u64 = 5;
pub const BACKOFF_MAX: u64 = 80;

/// The balancer's decisions, one per window: the CPU rules ([`next_active`]) propose, the commands
/// run per second decide. A step up is kept only if it runs [`UP_GAIN`] more (else upward steps
/// back off); with several runtimes in use, one fewer is tried every [`PROBE_EVERY`] windows and
/// kept if it runs [`DOWN_KEEP`] as much; a step down that the CPU rules ask for (the work fits
/// in fewer) is taken at once. Without a command count, CPU rules only.
#[derive(Debug)]
pub struct Balancer {
    n: usize,
    active: usize,
    window: u64,
    trial: Option<Trial>,
    no_up_before: u64,
    backoff: u64,
    last_change: u64,
}

impl Balancer {
    pub fn new(n: usize, active: usize) -> Balancer {
        let n = n.max(1);
        Balancer {
            n,
            active: active.clamp(1, n),
            window: 0,
            trial: None,
            no_up_before: 0,
            backoff: BACKOFF_FIRST,
            last_change: 0,
        }
    }

    pub fn active(&self) -> usize {
        self.active
    }

    /// The count after a window in which the process used `busy` cores, the machine left `idle`
    /// idle and `rate` commands a second ran (`None`: unknown), with `active` in use (what
    /// `worker-threads-in-use` may have set meanwhile).
    pub fn step(&mut self, active: usize, busy: f64, idle: f64, rate: Option<f64>) -> usize {
        self.window += 1;
        if active != self.active {
            // Set from outside: start over from there.
            self.active = active.clamp(1, self.n);
            self.trial = None;
            self.last_change = self.window;
        }
        if let Some(t) = self.trial.as_mut() {
            if t.settle > 0 {
                t.settle -= 1;
                return self.active;
            }
            let t = self.trial.take().unwrap();
            let kept = rate.is_none_or(|r| r >= t.rate_before * t.keep_at);
            if !kept {
                if t.from < self.active {
                    self.no_up_before = self.window + self.backoff;
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                }
                self.set(t.from);
            } else if t.from < self.active {
                self.backoff = BACKOFF_FIRST;
            } else {
                // Fewer were enough: do not climb straight back.
                self.no_up_before = self.window + self.backoff;
            }
            return self.active;
        }
        let proposed = next_active(self.active, self.n, busy, idle);
        if proposed < self.active {
            // The work fits in fewer: no trial needed.
            self.set(proposed);
        } else if proposed > self.active && self.window >= self.no_up_before {
            self.try_change(proposed, rate, UP_GAIN);
        } else if self.active > 1 && rate.is_some() && self.window - self.last_change >= PROBE_EVERY {
            self.try_change(self.active - 1, rate, DOWN_KEEP);
        }
        self.active
    }

    fn set(&mut self, active: usize) {
        self.active = active;
        self.last_change = self.window;
    }

    fn try_change(&mut self, to: usize, rate: Option<f64>, keep_at: f64) {
        if let Some(rate) = rate {
            self.trial = Some(Trial { from: self.active, rate_before: rate, keep_at, settle: 1 });
        }
        self.set(to);
    }
}

/// CPU seconds so far: the process's own (user + system, as INFO's `used_cpu_*`) and the machine's
/// idle (idle + iowait, all CPUs). `None` where `/proc` cannot tell.
fn cpu_seconds() -> Option<(f64, f64)> {
    let [user, sys, _, _] =
        crate::cmd::server::info_process::cpu_times(&std::fs::read_to_string("/proc/self/stat").ok()?);
    Some((user + sys, idle_seconds(&std::fs::read_to_string("/proc/stat").ok()?)?))
}

/// The machine's idle CPU seconds (idle + iowait, all CPUs) of a `/proc/stat` text.
fn idle_seconds(all: &str) -> Option<f64> {
    let cpu = all.lines().next()?.strip_prefix("cpu ")?;
    // user nice system idle iowait ..., in USER_HZ: 100 a second on Linux whatever the kernel's tick.
    let mut f = cpu.split_whitespace().skip(3);
    let idle = f.next()?.parse::<u64>().ok()? + f.next()?.parse::<u64>().ok()?;
    Some(idle as f64 / 100.0)
}

/// What the balancer counts commands with (see [`count_with`]).
static COMMANDS: OnceLock<Box<dyn Fn() -> u64 + Send + Sync>> = OnceLock::new();

/// Give the balancer the server's count of commands run so far (INFO's total_commands_processed),
/// which judges its trials (see [`Balancer`]).
pub fn count_with(commands: Box<dyn Fn() -> u64 + Send + Sync>) {
    let _ = COMMANDS.set(commands);
}

/// The balancer thread: measures every [`WINDOW`] and sets `active` ([`Balancer`]).
fn balance() {
    let Some(w) = WORKERS.get() else { return };
    let n = w.handles.len();
    let commands = || COMMANDS.get().map(|f| f());
    let mut balancer = Balancer::new(n, w.active.load(Ordering::Relaxed));
    let mut last = (Instant::now(), cpu_seconds(), commands());
    loop {
        std::thread::sleep(WINDOW);
        let now = (Instant::now(), cpu_seconds(), commands());
        let wall = now.0.duration_since(last.0).as_secs_f64().max(1e-3);
        let active = w.active.load(Ordering::Relaxed);
        let (Some((b0, i0)), Some((b1, i1))) = (last.1, now.1) else {
            // Without /proc: every runtime (tokio's own default of one worker per core).
            if FIXED.load(Ordering::Relaxed) == 0 {
                let _ = w.active.compare_exchange(active, n, Ordering::Relaxed, Ordering::Relaxed);
            }
            last = now;
            continue;
        };
        let busy = (b1 - b0).max(0.0) / wall;
        let idle = (i1 - i0).max(0.0) / wall;
        let rate = match (last.2, now.2) {
            (Some(c0), Some(c1)) => Some(c1.wrapping_sub(c0) as f64 / wall),
            _ => None,
        };
        last = now;
        if FIXED.load(Ordering::Relaxed) != 0 {
            continue;
        }
        let next = balancer.step(active, busy, idle, rate);
        // A count fixed by `worker-threads-in-use` since `active` was read stays.
        if next != active && w.active.compare_exchange(active, next, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            crate::verbose!(
                "Worker runtimes in use: {active} -> {next} (busy {busy:.2}, idle {idle:.2} cores, {:.0} commands/s)",
                rate.unwrap_or(0.0)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_is_added_only_when_those_in_use_are_saturated_and_a_core_is_idle() {
        // Saturated, a core idle: the second runtime.
        assert_eq!(next_active(1, 2, 1.0, 0.55), 2);
        // Saturated but the other core is busy (the clients run there): stay.
        assert_eq!(next_active(1, 2, 0.97, 0.12), 1);
        // Not saturated (pipeline 1: round trips bound it): stay.
        assert_eq!(next_active(1, 2, 0.71, 0.9), 1);
        // Never past the runtimes there are.
        assert_eq!(next_active(2, 2, 2.0, 1.0), 2);
        // Many idle cores: as many runtimes at once.
        assert_eq!(next_active(1, 16, 1.0, 14.2), 15);
        assert_eq!(next_active(1, 1, 1.0, 1.0), 1);
    }

    #[test]
    fn runtimes_are_given_back_when_the_work_fits_in_fewer() {
        // Two in use, less than a core's work: one.
        assert_eq!(next_active(2, 2, 0.88, 0.36), 1);
        assert_eq!(next_active(2, 2, 0.0, 2.0), 1);
        // Two in use and more than a core's work: stay.
        assert_eq!(next_active(2, 2, 1.35, 0.19), 2);
        // Fifteen in use, twelve cores' work: thirteen.
        assert_eq!(next_active(15, 16, 12.0, 3.0), 13);
    }

    /// Steps of `b` with `(busy, idle, rate)` per window, the count after each.
    fn run(b: &mut Balancer, windows: &[(f64, f64, f64)]) -> Vec<usize> {
        windows.iter().map(|&(busy, idle, rate)| b.step(b.active(), busy, idle, Some(rate))).collect()
    }

    #[test]
    fn a_step_up_that_runs_no_more_is_undone_and_not_retried_at_once() {
        let mut b = Balancer::new(2, 1);
        // Saturated with a core idle: tried; the window after is the move; then judged: no gain.
        assert_eq!(run(&mut b, &[(1.0, 0.6, 100.0), (1.2, 0.1, 90.0), (1.1, 0.1, 101.0)]), [2, 2, 1]);
        // The same figures again: no new trial for BACKOFF_FIRST windows.
        let again = run(&mut b, &[(1.0, 0.6, 100.0); BACKOFF_FIRST as usize]);
        assert_eq!(again[..BACKOFF_FIRST as usize - 1], vec![1; BACKOFF_FIRST as usize - 1][..]);
        assert_eq!(again[BACKOFF_FIRST as usize - 1], 2, "{again:?}");
    }

    #[test]
    fn a_step_up_that_runs_more_is_kept_and_fewer_are_probed_now_and_then() {
        let mut b = Balancer::new(2, 1);
        assert_eq!(run(&mut b, &[(1.0, 0.6, 300.0), (1.3, 0.1, 400.0), (1.4, 0.1, 520.0)]), [2, 2, 2]);
        // Steady: PROBE_EVERY windows after the change one fewer is tried, and undone since it
        // runs less.
        let steady = run(&mut b, &[(1.4, 0.1, 520.0); PROBE_EVERY as usize - 3]);
        assert_eq!(steady, vec![2; PROBE_EVERY as usize - 3]);
        assert_eq!(run(&mut b, &[(1.4, 0.1, 520.0), (1.0, 0.1, 350.0), (1.0, 0.5, 350.0)]), [1, 1, 2]);
        // A load that one runtime serves as well (a pipeline-1 script after a pipeline-16 one):
        // the probe keeps one.
        let mut b = Balancer::new(2, 2);
        let steady = run(&mut b, &[(1.0, 0.1, 80.0); PROBE_EVERY as usize]);
        assert_eq!(*steady.last().unwrap(), 1);
        assert_eq!(run(&mut b, &[(0.95, 0.1, 95.0), (0.95, 0.1, 95.0), (0.95, 0.1, 95.0)]), [1, 1, 1]);
    }

    #[test]
    fn work_that_fits_in_fewer_gives_runtimes_back_at_once_and_a_fixed_count_restarts_it() {
        let mut b = Balancer::new(4, 4);
        assert_eq!(b.step(4, 1.5, 2.0, Some(10.0)), 2);
        // Set from outside (worker-threads-in-use, then back to 0): from there.
        assert_eq!(b.step(3, 2.9, 0.0, Some(10.0)), 3);
        // Without a command count: the CPU rules alone.
        let mut b = Balancer::new(2, 1);
        assert_eq!(b.step(1, 1.0, 0.6, None), 2);
        assert_eq!(b.step(2, 1.3, 0.1, None), 2);
    }

    #[test]
    fn connections_belong_on_their_id_modulo_the_runtimes_in_use() {
        assert_eq!((0..4).map(|id| belongs_on(id, 1)).collect::<Vec<_>>(), [0, 0, 0, 0]);
        assert_eq!((0..4).map(|id| belongs_on(id, 2)).collect::<Vec<_>>(), [0, 1, 0, 1]);
        assert_eq!(belongs_on(7, 0), 0);
    }

    #[test]
    fn proc_stat_gives_the_idle_seconds_and_this_process_its_own() {
        let all = "cpu  100 5 50 7000 30 0 2 0 0 0\ncpu0 50 2 25 3500 15 0 1 0 0 0\n";
        assert_eq!(idle_seconds(all), Some(70.3));
        assert_eq!(idle_seconds("intr 1 2 3\n"), None);
        assert_eq!(idle_seconds("cpu  1 2 3\n"), None);
        // This machine's own files parse.
        assert!(cpu_seconds().is_some());
    }
}
