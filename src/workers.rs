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
use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    let mut polls = epoll_fds();
    let mut drivers = Vec::new();
    let runtimes: Vec<Runtime> = (0..n.max(1))
        .map(|i| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(format!("worker-{i}"))
                // Every thread of runtime `i` (its worker, and a thread that `block_in_place` made
                // its worker for a while) knows it is on runtime `i`.
                .on_thread_start(move || HOME.with(|h| h.set(i)))
                .on_thread_park(move || before_park(i))
                .on_thread_unpark(after_unpark)
                .enable_all()
                .build()
                .expect("tokio runtime");
            // Its I/O driver's epoll instance: the one descriptor of an epoll instance that its
            // build opened (tokio opens one, and one duplicate of it for the driver's handle; the
            // lowest is the original).
            let now = epoll_fds();
            drivers.push(now.iter().copied().find(|fd| !polls.contains(fd)).unwrap_or(-1));
            polls = now;
            rt
        })
        .collect();
    if drivers.contains(&-1) {
        crate::verbose!("Worker spinning off: the runtimes' epoll descriptors were not found");
    }
    let _ = DRIVERS.set(drivers);
    let _ = CORES.set(default_count());
    let handles = runtimes.iter().map(|rt| rt.handle().clone()).collect();
    if WORKERS.set(Workers { handles, active: CachePadded::new(AtomicUsize::new(1)) }).is_ok() && runtimes.len() > 1 {
        let spawned = std::thread::Builder::new().name("balancer".into()).spawn(balance);
        if let Err(e) = spawned {
            crate::warning!("Starting the worker balancer (connections stay on one worker): {e}");
        }
    }
    runtimes
}

// Spinning before a worker parks.
//
// A worker that runs out of work blocks in `epoll_wait` until a socket of its own is ready; the
// client whose request then arrives pays for the wake-up (the kernel wakes the worker from the
// client's `send`, on the client's core) and the request waits for it (several µs). At pipeline 1
// with a few dozen clients a worker that is faster than the clients blocks and wakes about once a
// request (measured: 0.7 context switches a request at LRANGE_600 where Redis, busier per request,
// has 0.4). So before it parks, a worker whose last wait was short spins for a while: it polls its
// driver's epoll descriptor (without taking the events: `poll` on an epoll instance only reports
// whether one is ready) and its runtime's queue of tasks woken from other threads, and parks as soon
// as either has something, which then returns at once. The spin is bounded by `worker-spin-us`
// (default [`DEFAULT_SPIN_US`]; 0 turns it off), happens only while the last wait of this worker
// was no longer than that (so an idle or lightly loaded server does not spin: a wait longer than the
// budget turns spinning off until a short one turns it back on), and only while fewer runtimes are
// in use than there are cores (a spinning worker must not take the core that the clients or the
// other workers run on). The balancer counts spun time as idle (see [`balance`]).

/// The default of `worker-spin-us`.
pub const DEFAULT_SPIN_US: u64 = 50;
/// `worker-spin-us`: how long a worker spins before it parks, at most (0: never).
static SPIN_US: AtomicU64 = AtomicU64::new(DEFAULT_SPIN_US);
/// Nanoseconds the workers have spun, all together (the balancer counts them idle).
static SPUN_NS: AtomicU64 = AtomicU64::new(0);
/// Each runtime's I/O driver's epoll descriptor (-1: not found; none of them is then spun on).
static DRIVERS: OnceLock<Vec<RawFd>> = OnceLock::new();
/// The cores this process may run on.
static CORES: OnceLock<usize> = OnceLock::new();

thread_local! {
    static SPIN: std::cell::Cell<SpinRule> = const { std::cell::Cell::new(SpinRule::new()) };
}

/// `worker-spin-us` (startup and CONFIG SET).
pub fn set_spin_us(us: u64) {
    SPIN_US.store(us, Ordering::Relaxed);
}

/// Nanoseconds the workers have spun so far.
pub fn spun_ns() -> u64 {
    SPUN_NS.load(Ordering::Relaxed)
}

/// How often a spinning worker checks whether it waits for its core ([`SpinRule::contended`]).
pub const CONTENTION_WINDOW: Duration = Duration::from_millis(100);
/// A worker that was runnable but waiting for a core more than this share of a window takes a core
/// that other threads want: measured on 2 cores against redis-benchmark, a spinning worker waits
/// 2-4% of the time (it is preempted a few hundred times a second, briefly, by threads the
/// scheduler wakes on its core); with a second server and its clients on the machine, 33-35%.
pub const CONTENDED_WAIT: f64 = 0.10;
/// How long spinning stays off after a contended window, at first; doubled per contended window
/// in a row, up to [`CONTENDED_OFF_MAX`].
pub const CONTENDED_OFF: Duration = Duration::from_secs(1);
pub const CONTENDED_OFF_MAX: Duration = Duration::from_secs(8);

/// When a worker spins: after a wait no longer than the budget (one longer turns spinning off),
/// and not while its core is contended: a worker that spent more than [`CONTENDED_WAIT`] of a
/// [`CONTENTION_WINDOW`] of spinning runnable but not running (the kernel's run-queue wait) shares
/// its core with threads that want it (the clients, other servers on the machine), and stops
/// spinning for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpinRule {
    worth: bool,
    /// When the worker began to wait, while it waits.
    waiting_since: Option<Instant>,
    /// The current contention window: its start, and the run-queue wait (ns) counted then.
    window: Option<(Instant, u64)>,
    /// No spinning before this (after a contended window), and the next such pause.
    off_until: Option<Instant>,
    off_next: Duration,
}

impl SpinRule {
    pub const fn new() -> SpinRule {
        SpinRule { worth: false, waiting_since: None, window: None, off_until: None, off_next: CONTENDED_OFF }
    }

    /// Whether the worker spins at this park, at `now`.
    pub fn spins(&self, now: Instant) -> bool {
        self.worth && self.off_until.is_none_or(|t| now >= t)
    }

    /// The worker is about to spin at `now`, having waited `run_queue_wait()` ns for a core so far
    /// (read once per window; None where the system cannot tell: never contended): true if the
    /// window that just ended was contended (then spinning pauses).
    pub fn contended(&mut self, now: Instant, run_queue_wait: impl FnOnce() -> Option<u64>) -> bool {
        match self.window {
            Some((start, _)) if now < start + CONTENTION_WINDOW => false,
            Some((start, at_start)) => {
                let Some(waited) = run_queue_wait() else {
                    self.window = None;
                    return false;
                };
                self.window = Some((now, waited));
                let share = waited.saturating_sub(at_start) as f64 / now.duration_since(start).as_nanos().max(1) as f64;
                if share > CONTENDED_WAIT {
                    self.off_until = Some(now + self.off_next);
                    self.off_next = (self.off_next * 2).min(CONTENDED_OFF_MAX);
                    // A fresh window once spinning resumes.
                    self.window = None;
                    true
                } else {
                    self.off_next = CONTENDED_OFF;
                    false
                }
            }
            None => {
                self.window = run_queue_wait().map(|w| (now, w));
                false
            }
        }
    }

    /// The worker parks for real (without a spin, or after one that found nothing), having begun
    /// to wait at `since` (the spin's start, if it spun).
    pub fn sleeps(&mut self, since: Instant) {
        self.waiting_since = Some(since);
    }

    /// The worker is back at `now`: a wait of at most `budget` is one a spin would have caught.
    pub fn woke(&mut self, now: Instant, budget: Duration) {
        if let Some(since) = self.waiting_since.take() {
            self.worth = now.saturating_duration_since(since) <= budget;
        }
    }
}

impl Default for SpinRule {
    fn default() -> SpinRule {
        SpinRule::new()
    }
}

/// The nanoseconds this thread has spent runnable but waiting for a core (the second field of
/// `/proc/thread-self/schedstat`); None where the kernel does not say.
fn run_queue_wait() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// tokio's `on_thread_park` for runtime `i`'s worker (see above).
fn before_park(i: usize) {
    let us = SPIN_US.load(Ordering::Relaxed);
    if us == 0 {
        return;
    }
    let start = Instant::now();
    let mut rule = SPIN.with(|s| s.get());
    if rule.spins(start)
        && let (Some(w), Some(fd)) = (WORKERS.get(), DRIVERS.get().and_then(|d| d.get(i).copied()))
        && fd >= 0
        && i < w.active.load(Ordering::Relaxed)
        && w.active.load(Ordering::Relaxed) < CORES.get().copied().unwrap_or(1)
        && !rule.contended(start, run_queue_wait)
    {
        SPIN.with(|s| s.set(rule));
        let ready = spin(fd, &w.handles[i], start, Duration::from_micros(us));
        let spun = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        SPUN_NS.fetch_add(spun, Ordering::Relaxed);
        if ready {
            // The park that follows returns at once: no wait to measure.
            return;
        }
    }
    rule.sleeps(start);
    SPIN.with(|s| s.set(rule));
}

/// tokio's `on_thread_unpark`: how long the wait was decides the next park's spin.
fn after_unpark() {
    let us = SPIN_US.load(Ordering::Relaxed);
    SPIN.with(|s| {
        let mut rule = s.get();
        rule.woke(Instant::now(), Duration::from_micros(us));
        s.set(rule);
    });
}

/// Poll the driver's epoll instance `fd` and `rt`'s queue of tasks woken from other threads until
/// either has something (true) or `budget` has passed since `start` (false).
fn spin(fd: RawFd, rt: &Handle, start: Instant, budget: Duration) -> bool {
    let metrics = rt.metrics();
    loop {
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: `p` is one valid `pollfd` for the length of the call, and the count says one;
        // `poll` only reads the descriptor's readiness (a closed one reports POLLNVAL: the spin
        // ends, the park goes on as without it).
        let ready = unsafe { libc::poll(&mut p, 1, 0) };
        if ready != 0 || metrics.global_queue_depth() > 0 {
            return true;
        }
        if start.elapsed() >= budget {
            return false;
        }
        std::hint::spin_loop();
    }
}

/// The process's descriptors that are epoll instances, in ascending order.
fn epoll_fds() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    let mut fds: Vec<RawFd> = dir
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:[eventpoll]"))
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
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
    let mut last = (Instant::now(), cpu_seconds(), commands(), spun_ns());
    loop {
        std::thread::sleep(WINDOW);
        let now = (Instant::now(), cpu_seconds(), commands(), spun_ns());
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
        // Spinning is waiting: what the workers spun is the process's idle time, not its work.
        let spun = now.3.wrapping_sub(last.3) as f64 / 1e9;
        let busy = (b1 - b0 - spun).max(0.0) / wall;
        let idle = (i1 - i0 + spun).max(0.0) / wall;
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
    fn a_worker_spins_only_after_a_wait_that_a_spin_would_have_caught() {
        let budget = Duration::from_micros(50);
        let t0 = Instant::now();
        let us = |n| t0 + Duration::from_micros(n);
        let mut r = SpinRule::new();
        assert!(!r.spins(t0), "no spin before a wait was measured");
        r.sleeps(t0);
        r.woke(us(20), budget);
        assert!(r.spins(t0), "a 20 µs wait: the next park spins");
        // A spin that found work parks without waiting: nothing measured, the rule stays.
        r.woke(us(5000), budget);
        assert!(r.spins(t0));
        // A spin that found nothing, then the wait went on: off.
        r.sleeps(t0);
        r.woke(us(51), budget);
        assert!(!r.spins(t0), "a wait longer than the budget turns spinning off");
        r.sleeps(t0);
        r.woke(t0 + Duration::from_secs(1), budget);
        assert!(!r.spins(t0), "idle: stays off");
        r.sleeps(t0);
        r.woke(us(50), budget);
        assert!(r.spins(t0), "a wait of the budget exactly: on again");
    }

    #[test]
    fn a_worker_that_waits_for_its_core_while_it_spins_stops_spinning_for_a_while() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut r = SpinRule::new();
        r.sleeps(t0);
        r.woke(t0, Duration::from_micros(50));
        assert!(r.spins(t0));
        // The first spin opens a window; within it nothing is read.
        assert!(!r.contended(t0, || Some(1_000)));
        assert!(!r.contended(ms(50), || panic!("read within the window")));
        // 4% of a window waiting for the core (the odd preemption): spinning goes on.
        assert!(!r.contended(ms(100), || Some(1_000 + 4_000_000)));
        // 20% of the next window: off for CONTENDED_OFF.
        assert!(r.contended(ms(200), || Some(5_000_000 + 20_000_000)));
        assert!(!r.spins(ms(200)) && !r.spins(ms(1199)));
        assert!(r.spins(ms(1200)));
        // Contended again at once: off twice as long.
        assert!(!r.contended(ms(1200), || Some(0)));
        assert!(r.contended(ms(1300), || Some(50_000_000)));
        assert!(!r.spins(ms(3299)) && r.spins(ms(3300)));
        // A quiet window resets the pause.
        assert!(!r.contended(ms(3300), || Some(0)));
        assert!(!r.contended(ms(3400), || Some(1_000_000)));
        assert!(r.contended(ms(3500), || Some(1_000_000 + 11_000_000)));
        assert!(r.spins(ms(4500)));
        // Where the kernel does not say, never contended.
        let mut r = SpinRule::new();
        assert!(!r.contended(t0, || None));
        assert!(!r.contended(ms(500), || None));
        // This thread's own figure reads.
        assert!(run_queue_wait().is_some(), "/proc/thread-self/schedstat");
    }

    /// An epoll instance (closed on drop) and an eventfd registered with it.
    struct Epoll(RawFd, RawFd);

    impl Epoll {
        fn new() -> Epoll {
            // SAFETY: plain system calls on descriptors this test owns; `ev` outlives the call.
            unsafe {
                let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
                let efd = libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC);
                assert!(ep >= 0 && efd >= 0);
                let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 1 };
                assert_eq!(libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, efd, &mut ev), 0);
                Epoll(ep, efd)
            }
        }

        fn signal(&self) {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live buffer to this test's eventfd.
            assert_eq!(unsafe { libc::write(self.1, one.as_ptr().cast(), 8) }, 8);
        }
    }

    impl Drop for Epoll {
        fn drop(&mut self) {
            // SAFETY: the descriptors are this test's and closed once.
            unsafe {
                libc::close(self.1);
                libc::close(self.0);
            }
        }
    }

    #[test]
    fn a_spin_ends_when_the_driver_has_an_event_or_another_thread_woke_a_task() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        let ep = Epoll::new();
        // Nothing ready: the spin runs out.
        assert!(!spin(ep.0, rt.handle(), Instant::now(), Duration::from_millis(2)));
        // An event ready in the epoll instance: it ends at once (a long budget, so only the
        // event can end it), and the event is still there for the driver.
        ep.signal();
        assert!(spin(ep.0, rt.handle(), Instant::now(), Duration::from_secs(30)));
        assert!(spin(ep.0, rt.handle(), Instant::now(), Duration::from_secs(30)), "the event was not taken");

        // A task woken from another thread while the worker is busy waits in the runtime's
        // global queue: that ends the spin too.
        let quiet = Epoll::new();
        let (hold, held) = std::sync::mpsc::channel::<()>();
        let (started, busy) = std::sync::mpsc::channel::<()>();
        rt.spawn(async move {
            started.send(()).unwrap();
            held.recv().unwrap();
        });
        busy.recv().unwrap();
        let (done, ran) = std::sync::mpsc::channel::<()>();
        rt.spawn(async move { done.send(()).unwrap() });
        assert!(spin(quiet.0, rt.handle(), Instant::now(), Duration::from_secs(30)));
        hold.send(()).unwrap();
        ran.recv().unwrap();
    }

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
