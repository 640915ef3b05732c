//! What every model shares: a server over the in-memory AOF, the REAL command dispatcher run on
//! loom threads, a dump of the keyspace, the replay of the log into a fresh keyspace, and the
//! serial outcomes a race must end in.

use std::collections::BTreeMap;
use std::sync::Arc as StdArc;

use bytes::Bytes;
use flurrydb::aof::{Aof, FsyncPolicy};
use flurrydb::cmd::{Client, Ctx, execute};
use flurrydb::config::Config;
use flurrydb::db::ValueRef;
use flurrydb::resp::Frame;
use flurrydb::state::Shared;
use flurrydb::sync::fault::{self, Fault};

/// Databases in a model's server (every one is dumped and compared).
const DATABASES: usize = 2;
/// The active-expiry budget of one `Op::ExpireCycle`.
const EXPIRE_BUDGET: usize = 16;

/// One step of a modeled client.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// A command in db 0, through `cmd::execute`.
    Cmd(&'static [&'static str]),
    /// One active-expiry step, `Keyspace::expire_cycle(now, budget)`; its "reply" is how many keys it removed.
    ExpireCycle,
    /// `Keyspace::start_rewrite` (BGREWRITEAOF): the marker and snapshot under every stripe, then the
    /// base and the commit on a spawned thread. "Replies" `+OK`; a no-op in the serial reference runs,
    /// where it changes nothing visible.
    StartRewrite,
    /// One eviction under `allkeys-lru` (`Evictor::perform` with the limit 1 byte under the use);
    /// its "reply" is 1 when it evicted a key, 0 when there was none.
    Evict,
}

/// A loom model builder with the suite's preemption bound (`LOOM_MAX_PREEMPTIONS` wins when set).
pub fn builder(preemptions: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(preemptions);
    }
    // Each modeled command is dozens of lock operations; replay and the serial runs add more.
    b.max_branches = 100_000;
    b
}

std::thread_local! {
    /// The fault this test injected (`fault::inject` has no getter): the reference executions
    /// (serial runs, replay) switch it off and back on.
    static INJECTED: std::cell::Cell<Option<Fault>> = const { std::cell::Cell::new(None) };
}

/// Switches a fault on for one test and off again when dropped (even when the model panics).
pub struct Injected;

pub fn inject(f: Fault) -> Injected {
    INJECTED.with(|i| i.set(Some(f)));
    fault::inject(Some(f));
    Injected
}

impl Drop for Injected {
    fn drop(&mut self) {
        INJECTED.with(|i| i.set(None));
        fault::inject(None);
    }
}

/// Runs `f` with the correct protocol (no fault): for the reference executions a model compares with.
fn without_fault<R>(f: impl FnOnce() -> R) -> R {
    fault::inject(None);
    let r = f();
    fault::inject(INJECTED.with(|i| i.get()));
    r
}

fn config() -> Config {
    Config { databases: DATABASES, ..Config::default() }
}

/// A server whose keyspace logs to an in-memory AOF.
pub fn server(fsync: FsyncPolicy) -> StdArc<Shared> {
    let shared = Shared::new(config());
    shared.ks.set_aof(Aof::open_in_memory(fsync));
    shared
}

/// A server with no AOF (serial reference runs, replay targets).
pub fn plain_server() -> StdArc<Shared> {
    Shared::new(config())
}

pub fn aof(shared: &Shared) -> &Aof {
    shared.ks.aof().expect("the model's server has an AOF")
}

/// Runs `op` as a client of `shared` at time `now_ms` (never 0: that means loading).
pub fn run(shared: &Shared, now_ms: u64, op: Op) -> Frame {
    run_in(shared, None, now_ms, op)
}

/// One modeled client connection, kept across a thread's ops by a race with
/// [`Race::sessions`] (MULTI/EXEC/WATCH state lives in the client).
pub struct Session(Option<Client>);

impl Session {
    pub fn new() -> Session {
        Session(None)
    }

    /// Unregisters the client (its watched keys with it).
    pub fn close(self, shared: &Shared) {
        if let Some(c) = self.0 {
            shared.clients.unregister(c.id);
        }
    }
}

/// Runs `op` on `session`'s client (a fresh client per op when `None`).
fn run_in(shared: &Shared, session: Option<&mut Session>, now_ms: u64, op: Op) -> Frame {
    match op {
        Op::Cmd(argv) => {
            let argv: Vec<Bytes> = argv.iter().map(|a| Bytes::from_static(a.as_bytes())).collect();
            let new_client = || Client::new(shared.clients.register("loom".into(), String::new()));
            match session {
                Some(s) => {
                    let client = s.0.get_or_insert_with(new_client);
                    // Replies encoded in advance compare as the frames they stand for.
                    execute(&mut Ctx::new(shared, client, now_ms), &argv).expand()
                }
                None => {
                    let mut client = new_client();
                    let reply = execute(&mut Ctx::new(shared, &mut client, now_ms), &argv).expand();
                    shared.clients.unregister(client.id);
                    reply
                }
            }
        }
        Op::ExpireCycle => Frame::Integer(shared.ks.expire_cycle(now_ms, EXPIRE_BUDGET) as i64),
        Op::Evict => {
            let cfg = Config { maxmemory_policy: "allkeys-lru".into(), ..config() };
            let ev = shared.ks.evictor();
            ev.configure(&cfg);
            let before = ev.evicted_keys();
            ev.perform(&shared.ks, 1, || 2);
            Frame::Integer((ev.evicted_keys() - before) as i64)
        }
        Op::StartRewrite => {
            if shared.ks.aof().is_some() {
                shared.ks.start_rewrite().expect("the rewrite starts");
            }
            Frame::ok()
        }
    }
}

/// A key's state as the dump shows it: type and value, and its absolute expiry (0: none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dumped {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    /// Sorted field, value pairs.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// Sorted members.
    Set(Vec<Vec<u8>>),
    /// (member, score bits) in rank order.
    Zset(Vec<(Vec<u8>, u64)>),
    /// The commands an AOF rewrite writes for it (entries, counters, groups, pending entries).
    Stream(Vec<Vec<Vec<u8>>>),
}

pub type Dump = BTreeMap<(usize, Vec<u8>), (Dumped, u64)>;

/// Every key of every database, with its value and TTL, as stored (expired keys included).
pub fn dump(shared: &Shared) -> Dump {
    let mut out = Dump::new();
    for db in 0..shared.ks.databases() {
        shared.ks.db(db).for_each(|k, e| {
            let v = match e.value() {
                ValueRef::List(l) => {
                    let st = l.lock();
                    assert!(!st.dead, "a dead list is still in the keyspace: {k:?}");
                    Dumped::List(st.items.iter().map(|b| b.to_vec()).collect())
                }
                ValueRef::Hash(h) => {
                    let st = h.lock();
                    assert!(!st.dead && !st.items.is_empty(), "a dead or empty hash in the keyspace: {k:?}");
                    let mut pairs: Vec<_> = st.items.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
                    pairs.sort();
                    Dumped::Hash(pairs)
                }
                ValueRef::Set(m) => {
                    let st = m.lock();
                    assert!(!st.dead && !st.items.is_empty(), "a dead or empty set in the keyspace: {k:?}");
                    let mut members: Vec<_> = st.items.iter().map(|b| b.to_vec()).collect();
                    members.sort();
                    Dumped::Set(members)
                }
                ValueRef::Zset(z) => {
                    let st = z.lock();
                    assert!(!st.dead && !st.items.is_empty(), "a dead or empty zset in the keyspace: {k:?}");
                    Dumped::Zset(st.items.entries().into_iter().map(|(m, s)| (m.to_vec(), s.to_bits())).collect())
                }
                ValueRef::Stream(x) => {
                    let st = x.lock();
                    assert!(!st.dead, "a dead stream in the keyspace: {k:?}");
                    let mut cmds = Vec::new();
                    st.items.rewrite(k, &mut |argv| cmds.push(argv.iter().map(|a| a.to_vec()).collect()));
                    Dumped::Stream(cmds)
                }
                _ => Dumped::Str(e.string_bytes().expect("a string").to_vec()),
            };
            out.insert((db, k.to_vec()), (v, e.expire_at_ms()));
        });
    }
    out
}

/// The log's records as (db, argv), `SELECT` resolved (as the loader sees them).
pub fn records(log: &[u8]) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    Aof::replay_in_memory(log, |db, argv| {
        out.push((db, argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect()));
        Ok(())
    })
    .expect("the log scans cleanly");
    out
}

/// Replays `log` into a fresh keyspace exactly as startup does (loading, clock 0) and dumps it.
pub fn replay(log: &[u8]) -> Dump {
    without_fault(|| replay_with_current_protocol(log))
}

fn replay_with_current_protocol(log: &[u8]) -> Dump {
    let fresh = plain_server();
    fresh.ks.set_loading(true);
    let info = fresh.clients.register("loader".into(), String::new());
    let mut client = Client::new(info);
    let report = Aof::replay_in_memory(log, |db, argv| {
        client.db = db;
        let mut ctx = Ctx::new(&fresh, &mut client, 0);
        match execute(&mut ctx, argv) {
            Frame::Error(e) => Err(String::from_utf8_lossy(&e).into_owned()),
            _ => Ok(()),
        }
    })
    .expect("the log replays");
    assert_eq!(report.errors, 0, "a record failed to replay:\n{}", show(log));
    fresh.ks.set_loading(false);
    dump(&fresh)
}

/// The log as text, for failure messages.
pub fn show(log: &[u8]) -> String {
    records(log).iter().map(|(db, argv)| format!("  [{db}] {}\n", argv.join(" "))).collect()
}

/// Every interleaving of the threads' op sequences that keeps each thread's own order.
fn interleavings(threads: &[&[Op]]) -> Vec<Vec<(usize, Op)>> {
    if threads.iter().all(|t| t.is_empty()) {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for (i, t) in threads.iter().enumerate() {
        if let Some((first, rest)) = t.split_first() {
            let mut next = threads.to_vec();
            next[i] = rest;
            for mut tail in interleavings(&next) {
                tail.insert(0, (i, *first));
                out.push(tail);
            }
        }
    }
    out
}

/// What one serial execution gives: each thread's replies, and the final keyspace.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub replies: Vec<Vec<Frame>>,
    pub state: Dump,
}

/// A keyspace race: `setup` runs first, single-threaded, at `setup_ms`; then one loom thread per
/// entry of `threads` runs its ops at `now_ms` (the last entry on the model's main thread).
#[derive(Clone, Copy)]
pub struct Race {
    pub setup: &'static [Op],
    pub threads: &'static [&'static [Op]],
    pub setup_ms: u64,
    pub now_ms: u64,
    pub fsync: FsyncPolicy,
    pub preemptions: usize,
    /// Each thread runs all its ops on one client (a [`Session`]) instead of a fresh one per op.
    pub sessions: bool,
}

impl Race {
    /// A race at a fixed clock, preemption bound 2, `appendfsync no` (`everysec` would read the real
    /// clock in the writer, and a loom model must be deterministic).
    pub const fn new(setup: &'static [Op], threads: &'static [&'static [Op]]) -> Race {
        Race { setup, threads, setup_ms: 1_000, now_ms: 1_000, fsync: FsyncPolicy::No, preemptions: 2, sessions: false }
    }

    /// The same race with one client per thread, kept across its ops (transactions, WATCH).
    pub const fn sessions(self) -> Race {
        Race { sessions: true, ..self }
    }

    /// Runs one thread's ops, on one session when the race has sessions.
    fn run_thread(&self, shared: &Shared, ops: &[Op]) -> Vec<Frame> {
        let mut session = Session::new();
        let replies =
            ops.iter().map(|op| run_in(shared, self.sessions.then_some(&mut session), self.now_ms, *op)).collect();
        session.close(shared);
        replies
    }

    /// The outcomes of running the setup and then the threads' ops one at a time, in every order.
    pub fn serial_outcomes(&self) -> Vec<Outcome> {
        without_fault(|| self.serial_outcomes_with_current_protocol())
    }

    fn serial_outcomes_with_current_protocol(&self) -> Vec<Outcome> {
        interleavings(self.threads)
            .into_iter()
            .map(|order| {
                let s = plain_server();
                for op in self.setup {
                    run(&s, self.setup_ms, *op);
                }
                let mut replies = vec![Vec::new(); self.threads.len()];
                let mut sessions: Vec<Session> = self.threads.iter().map(|_| Session::new()).collect();
                for (t, op) in order {
                    replies[t].push(run_in(&s, self.sessions.then_some(&mut sessions[t]), self.now_ms, op));
                }
                sessions.into_iter().for_each(|x| x.close(&s));
                Outcome { replies, state: dump(&s) }
            })
            .collect()
    }

    /// The check every keyspace model ends with, once its threads are joined: the replies and the
    /// final state equal those of SOME serial order, and the log (drained by the writer at shutdown)
    /// replays to exactly the state in memory.
    pub fn check(&self, shared: &Shared, replies: Vec<Vec<Frame>>) -> Vec<u8> {
        let aof = aof(shared);
        aof.shutdown().expect("clean shutdown");
        let memory = dump(shared);
        let log = aof.contents();
        let seen = Outcome { replies, state: memory.clone() };
        let serial = self.serial_outcomes();
        assert!(
            serial.contains(&seen),
            "not linearizable: {seen:?}\nserial outcomes: {serial:?}\nlog:\n{}",
            show(&log)
        );
        let replayed = replay(&log);
        assert_eq!(replayed, memory, "replay differs from memory; log:\n{}", show(&log));
        log
    }

    /// Runs the race under loom; `extra` sees the final log (after [`Race::check`]).
    ///
    /// A race with [`Op::StartRewrite`] does not wait for the rewrite's detached thread: the commit
    /// also races the shutdown (a rewrite that loses is aborted and the old file stays; both files
    /// must replay to memory). The race asserts that some executions did switch files.
    pub fn model_with(self, extra: fn(&[u8])) {
        let rewrites = self.threads.iter().any(|t| t.iter().any(|op| matches!(op, Op::StartRewrite)));
        let switched = StdArc::new(std::sync::atomic::AtomicUsize::new(0));
        let switched_in_model = StdArc::clone(&switched);
        builder(self.preemptions).check(move || {
            let shared = server(self.fsync);
            for op in self.setup {
                run(&shared, self.setup_ms, *op);
            }
            let (last, spawned) = self.threads.split_last().expect("at least one thread");
            let handles: Vec<_> = spawned
                .iter()
                .map(|ops| {
                    let shared = StdArc::clone(&shared);
                    loom::thread::spawn(move || self.run_thread(&shared, ops))
                })
                .collect();
            let mine: Vec<Frame> = self.run_thread(&shared, last);
            let mut replies: Vec<Vec<Frame>> = handles.into_iter().map(|h| h.join().expect("no panic")).collect();
            replies.push(mine);
            let log = self.check(&shared, replies);
            // The base writes strings as SET: the setup's APPEND record is gone once the new file is in place.
            if !records(&log).iter().any(|(_, argv)| argv[0] == "APPEND") {
                switched_in_model.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            extra(&log);
        });
        if rewrites {
            assert!(switched.load(std::sync::atomic::Ordering::Relaxed) > 0, "no execution committed the rewrite");
        }
    }

    /// Runs the race under loom.
    pub fn model(self) {
        self.model_with(|_| {})
    }
}

/// Set in the child process of [`expect_deadlock`].
const CHILD_ENV: &str = "FLURRYDB_LOOM_DEADLOCK_CHILD";

/// Whether this process is the child of [`expect_deadlock`] (its `#[ignore]`d model runs only there).
pub fn in_deadlock_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Runs the `#[ignore]`d test `child` (a model whose broken variant leaves a thread blocked forever)
/// in a child process and panics with "deadlock" when loom reported one there. A loom deadlock
/// cannot be caught in-process: unwinding drops loom objects, which panic again and abort.
pub fn expect_deadlock(child: &str) {
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args([child, "--exact", "--ignored", "--test-threads=1", "--nocapture"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the child model");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the broken model {child} passed:\n{text}");
    if text.contains("deadlock; threads") {
        panic!("loom found a deadlock in {child}: a thread waits forever");
    }
    panic!("the broken model {child} failed, but not with a deadlock:\n{text}");
}

/// Everything the peer of a non-blocking socket can read now.
pub fn read_now(peer: &mut std::os::unix::net::UnixStream) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = peer.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}
