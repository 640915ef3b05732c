//! Lua scripting: EVAL/EVALSHA (`eval`), FUNCTION/FCALL (`function`), the VMs (`vm`), the type
//! conversions (`convert`) and the run of one script as one atomic unit (`run`). Mirrors Redis 7.0's
//! `eval.c`, `function_lua.c`, `functions.c`, `script.c` and `script_lua.c`.
//!
//! # VMs
//! A Lua VM runs one script at a time, so scripts on many cores need many VMs. They live in a pool
//! ([`Scripting::take_vm`] / [`Scripting::give_vm`]): a run takes one (creating it when every VM is
//! busy) and gives it back, so there are as many VMs as scripts ever ran at once, each built once
//! and reused for every later call. What every VM must agree on is shared here, and each VM catches
//! up lazily when it is taken:
//! - the EVAL script cache: SHA -> body and flags ([`Scripting::scripts`]). A VM compiles a body the
//!   first time it runs it and keeps the function by SHA. SCRIPT FLUSH empties the shared cache and
//!   bumps `scripts_epoch`; a VM that sees a newer epoch drops its compiled functions first. So
//!   SCRIPT LOAD/FLUSH reach every VM without visiting them.
//! - the function libraries ([`Scripting::libs`]), versioned by `libs_gen`: a VM whose generation
//!   is older reloads every library before it calls a function.
//!
//! # Atomicity (the locking rule; `run` implements it)
//! A script runs in EXEC's held mode (`db::tx`): before its first instruction it holds its declared
//! keys' stripes (KEYS; every stripe once the script is known to touch undeclared keys), the
//! commands it calls run through their normal handlers, which lock nothing more, and their AOF
//! records are buffered and pushed as one block, still under the stripes. Before each command, the
//! stripes of that command's keys must be held:
//! 1. all held: run it.
//! 2. some missing (an undeclared key): the script is marked to hold every stripe on its next runs,
//!    and the missing stripes are taken now ([`crate::db::TxHold::extend`]): those above every stripe
//!    held are waited for (ascending order, as every writer takes them: no deadlock); those below
//!    are only tried.
//! 3. a try failed (after a few more tries when the script has written): the script is stopped, its
//!    changes so far taken back ([`crate::db::UndoLog`]), its stripes released, and it runs again
//!    from the start holding every stripe. Taking back is complete: until it holds every stripe, a
//!    script saves each key's previous value before its first write of it (`run`'s `dispatch`); a
//!    write whose keys are too large to copy, or that reaches another database (MOVE, COPY), first
//!    takes every stripe (the same try, the same stop), after which no try can fail. Nobody saw
//!    the changes: the records are only buffered, and reads of the keys wait for odd-epoch stripes.
//!
//! A script that touches only its declared keys holds only their stripes: writers of other keys go on.

pub mod convert;
pub mod dump;
pub mod eval;
pub mod function;
pub mod run;
pub mod sha1;
pub mod vm;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bytes::Bytes;
use crossbeam::utils::CachePadded;

pub use vm::Vm;

/// A script's SHA-1 as 40 lowercase hex digits.
pub type Sha = [u8; 40];

/// `REDIS_VERSION_NUM` of 7.0.15.
pub const REDIS_VERSION_NUM: i64 = 0x07000f;

/// Script flags (`#!lua flags=...` and `redis.register_function{flags=...}`).
pub mod flags {
    pub const NO_WRITES: u32 = 1;
    pub const ALLOW_OOM: u32 = 1 << 1;
    pub const ALLOW_STALE: u32 = 1 << 2;
    pub const NO_CLUSTER: u32 = 1 << 3;
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 4;
    /// An EVAL script without a shebang (Redis's `SCRIPT_FLAG_EVAL_COMPAT_MODE`).
    pub const EVAL_COMPAT: u32 = 1 << 5;

    /// The flag names, as Redis spells them.
    pub const NAMES: [(&str, u32); 5] = [
        ("no-writes", NO_WRITES),
        ("allow-oom", ALLOW_OOM),
        ("allow-stale", ALLOW_STALE),
        ("no-cluster", NO_CLUSTER),
        ("allow-cross-slot-keys", ALLOW_CROSS_SLOT),
    ];
}

/// One cached EVAL script.
pub struct Script {
    pub body: Bytes,
    pub flags: u32,
    /// Bytes of the shebang line (blanked before compiling: line numbers stay).
    pub shebang_len: usize,
    /// Learned: this script touched keys it did not declare, so it runs holding every stripe.
    pub all_stripes: AtomicBool,
    /// Learned: a run of it lasted long enough for the instruction hook to fire, so its runs are
    /// offloaded (`cmd::offload`).
    pub slow: AtomicBool,
}

/// One function library.
pub struct Library {
    pub name: Bytes,
    pub code: Bytes,
    pub functions: Vec<FunctionInfo>,
}

/// One registered function.
pub struct FunctionInfo {
    pub name: Bytes,
    pub description: Option<Bytes>,
    pub flags: u32,
    pub all_stripes: AtomicBool,
}

/// The function libraries, by name, and their functions' index.
#[derive(Default)]
pub struct Libraries {
    pub libs: std::collections::BTreeMap<Bytes, Arc<Library>>,
    /// Function name -> library name.
    pub funcs: HashMap<Bytes, Bytes>,
}

impl Libraries {
    pub fn function(&self, name: &[u8]) -> Option<(Arc<Library>, usize)> {
        let lib = self.libs.get(self.funcs.get(name)?)?;
        let i = lib.functions.iter().position(|f| f.name == name)?;
        Some((Arc::clone(lib), i))
    }
}

/// Why a running script must stop.
pub mod stop {
    pub const NONE: u8 = 0;
    /// SCRIPT KILL / FUNCTION KILL.
    pub const KILLED: u8 = 1;
    /// SHUTDOWN NOSAVE.
    pub const SHUTDOWN: u8 = 2;
    /// It needs a stripe it could not take before writing anything: run again holding every stripe.
    pub const RERUN: u8 = 3;
}

/// A script in progress (for BUSY, SCRIPT KILL, FUNCTION KILL).
pub struct RunState {
    /// When it started (the TSC clock: a read costs a few ns where `clock_gettime` costs ~20).
    pub started: quanta::Instant,
    pub is_eval: bool,
    /// It has run a write command (SCRIPT KILL then refuses: UNKILLABLE).
    pub wrote: AtomicBool,
    pub stop: AtomicU8,
    /// Counted in `busy_counter` (the [`Scripting::busy`] count).
    pub busy: AtomicBool,
    busy_counter: Arc<AtomicUsize>,
    threshold_ms: u64,
    /// It ran long enough for the instruction hook to fire: later runs of the same script are
    /// offloaded (`cmd::offload`).
    pub slow: AtomicBool,
    /// When `redis.call` next tries to hand the worker's connections over, in nanoseconds since
    /// `started` (see `run::offload_slow`: a handoff the new thread was too slow to take is taken
    /// back, so a slow run tries again every millisecond).
    pub next_handoff_ns: std::sync::atomic::AtomicU64,
    /// A FUNCTION LOAD's deadline (its code may only register functions).
    deadline: Option<Instant>,
    /// A function's name and the FCALL that runs it (FUNCTION STATS).
    pub function: Option<(Bytes, Vec<Bytes>)>,
    /// Its shard of [`Scripting`]'s registry of runs.
    shard: usize,
    /// In the registry (see [`Scripting::list`]).
    listed: AtomicBool,
}

impl RunState {
    /// Called from the VM's instruction hook: mark the run busy once past the threshold.
    pub fn note_elapsed(&self) {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = self.stop.compare_exchange(stop::NONE, stop::KILLED, Ordering::SeqCst, Ordering::SeqCst);
        }
        if self.threshold_ms > 0
            && !self.busy.load(Ordering::Relaxed)
            && self.started.elapsed().as_millis() as u64 >= self.threshold_ms
            && !self.busy.swap(true, Ordering::SeqCst)
        {
            self.busy_counter.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Everything scripting shares between connections and VMs.
pub struct Scripting {
    pub scripts: RwLock<HashMap<Sha, Arc<Script>>>,
    pub scripts_epoch: AtomicU64,
    /// Bytes of the cached scripts' bodies (INFO `used_memory_scripts_eval`).
    pub scripts_bytes: AtomicUsize,
    pub libs: RwLock<Libraries>,
    pub libs_gen: AtomicU64,
    /// Idle VMs, one pool per shard of threads: a run takes and gives back on its thread's own
    /// (no lock that other cores keep taking), and looks in the others only when its own is empty.
    pool: [CachePadded<Mutex<Vec<Vm>>>; POOL_SHARDS],
    vm_memory: Mutex<Vec<Arc<AtomicUsize>>>,
    /// The runs in progress, sharded by thread as the pool.
    running: [CachePadded<Mutex<Vec<Arc<RunState>>>>; POOL_SHARDS],
    /// Scripts running past `busy-reply-threshold`: other clients get `-BUSY` meanwhile.
    pub busy: Arc<AtomicUsize>,
    /// `busy-reply-threshold` in ms (mirror of the configuration; 0: never busy).
    pub busy_threshold_ms: AtomicU64,
    /// Set by SHUTDOWN: every running script stops.
    pub shutting_down: AtomicBool,
    /// Lua memory each new VM may use (bytes).
    pub vm_memory_limit: AtomicUsize,
}

impl Default for Scripting {
    fn default() -> Scripting {
        Scripting {
            scripts: RwLock::new(HashMap::new()),
            scripts_epoch: AtomicU64::new(1),
            scripts_bytes: AtomicUsize::new(0),
            libs: RwLock::new(Libraries::default()),
            libs_gen: AtomicU64::new(1),
            pool: std::array::from_fn(|_| CachePadded::new(Mutex::new(Vec::new()))),
            vm_memory: Mutex::new(Vec::new()),
            running: std::array::from_fn(|_| CachePadded::new(Mutex::new(Vec::new()))),
            busy: Arc::new(AtomicUsize::new(0)),
            busy_threshold_ms: AtomicU64::new(5000),
            shutting_down: AtomicBool::new(false),
            vm_memory_limit: AtomicUsize::new(vm::VM_MEMORY_LIMIT),
        }
    }
}

std::thread_local! {
    /// The state of this thread's last run, for its next (see `Scripting::register`).
    static SPARE_RUN: std::cell::Cell<Option<Arc<RunState>>> = const { std::cell::Cell::new(None) };
}

/// Shards of the VM pool and of the registry of runs.
const POOL_SHARDS: usize = 8;

/// This thread's shard of the pool and of the registry.
fn own_shard() -> usize {
    crate::util::thread_slot() % POOL_SHARDS
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Scripting {
    /// A VM for one run: an idle one, or a new one.
    pub fn take_vm(&self) -> mlua::Result<Vm> {
        let own = own_shard();
        for i in 0..POOL_SHARDS {
            if let Some(vm) = lock(&self.pool[(own + i) % POOL_SHARDS]).pop() {
                return Ok(vm);
            }
        }
        let vm = Vm::new(self.vm_memory_limit.load(Ordering::Relaxed))?;
        lock(&self.vm_memory).push(Arc::clone(&vm.memory));
        Ok(vm)
    }

    /// Give a VM back for later runs.
    pub fn give_vm(&self, vm: Vm) {
        vm.note_memory();
        lock(&self.pool[own_shard()]).push(vm);
    }

    /// Every run in progress (a snapshot).
    fn runs(&self) -> Vec<Arc<RunState>> {
        self.running.iter().flat_map(|shard| lock(shard).clone()).collect()
    }

    /// Lua memory of every VM (INFO `used_memory_lua`).
    pub fn lua_memory(&self) -> usize {
        lock(&self.vm_memory).iter().map(|m| m.load(Ordering::Relaxed)).sum()
    }

    /// VMs built so far.
    pub fn vm_count(&self) -> usize {
        lock(&self.vm_memory).len()
    }

    pub fn script(&self, sha: &Sha) -> Option<Arc<Script>> {
        self.scripts.read().unwrap_or_else(|e| e.into_inner()).get(sha).cloned()
    }

    pub fn script_count(&self) -> usize {
        self.scripts.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// SCRIPT FLUSH: forget every script; VMs drop their compiled functions when next taken.
    pub fn flush_scripts(&self) {
        let mut s = self.scripts.write().unwrap_or_else(|e| e.into_inner());
        s.clear();
        self.scripts_bytes.store(0, Ordering::Relaxed);
        self.scripts_epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether a script has run past the threshold (other clients get `-BUSY`); Relaxed: a
    /// command that sees it one call late is fine.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed) > 0
    }

    /// The BUSY error for the busy scripts (an EVAL's, or a function's).
    pub fn busy_error(&self) -> String {
        let eval = self.runs().iter().any(|r| r.busy.load(Ordering::Relaxed) && r.is_eval);
        if eval {
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.".into()
        } else {
            "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.".into()
        }
    }

    /// SHUTDOWN: stop every running script.
    pub fn stop_all(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for r in self.runs() {
            r.stop.store(stop::SHUTDOWN, Ordering::SeqCst);
        }
    }

    /// SCRIPT KILL (`eval`) / FUNCTION KILL: stop the busy scripts of that kind that wrote nothing.
    pub fn kill(&self, eval: bool) -> Result<(), String> {
        let running = self.runs();
        let busy: Vec<&Arc<RunState>> = running.iter().filter(|r| r.busy.load(Ordering::Relaxed)).collect();
        if busy.is_empty() {
            return Err("NOTBUSY No scripts in execution right now.".into());
        }
        if busy.iter().all(|r| r.wrote.load(Ordering::SeqCst)) {
            return Err("UNKILLABLE Sorry the script already executed write commands against the dataset. You can \
                        either wait the script termination or kill the server in a hard way using the SHUTDOWN \
                        NOSAVE command."
                .into());
        }
        let of_kind: Vec<&&Arc<RunState>> =
            busy.iter().filter(|r| r.is_eval == eval && !r.wrote.load(Ordering::SeqCst)).collect();
        if of_kind.is_empty() {
            return Err(if eval {
                "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.".into()
            } else {
                "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.".into()
            });
        }
        for r in of_kind {
            let _ = r.stop.compare_exchange(stop::NONE, stop::KILLED, Ordering::SeqCst, Ordering::SeqCst);
        }
        Ok(())
    }

    /// The state of a new run, not yet in the registry: the instruction hook lists it
    /// ([`Scripting::list`]) the first time it fires, so that a quick run (most EVALSHAs: far fewer
    /// instructions than the hook's period) never takes the registry's lock. Only a run the hook
    /// has seen can be busy, so SCRIPT KILL, FUNCTION KILL, FUNCTION STATS and the BUSY reply, which
    /// look at busy runs, miss nothing (a quick run is over before anyone could see it, as in
    /// single-threaded Redis); SHUTDOWN stops an unlisted run when the hook lists it (`list` checks
    /// the flag after joining the registry, `stop_all` sets it before looking there). The state
    /// leaves the registry with [`Scripting::end_run`].
    pub fn begin_run(&self, is_eval: bool, function: Option<(Bytes, Vec<Bytes>)>) -> Arc<RunState> {
        self.register(is_eval, function, None)
    }

    /// Register a FUNCTION LOAD's run of library code, stopped after `timeout_ms` (listed now).
    pub fn begin_load(&self, timeout_ms: u64) -> Arc<RunState> {
        let state = self.register(false, None, Some(Instant::now() + std::time::Duration::from_millis(timeout_ms)));
        self.list(&state);
        state
    }

    /// Put `state` in the registry of runs, once (see [`begin_run`](Self::begin_run)).
    pub fn list(&self, state: &Arc<RunState>) {
        if state.listed.swap(true, Ordering::Relaxed) {
            return;
        }
        lock(&self.running[state.shard]).push(Arc::clone(state));
        // SeqCst, after joining: pairs with `stop_all`, which sets the flag before it looks.
        if self.shutting_down.load(Ordering::SeqCst) {
            state.stop.store(stop::SHUTDOWN, Ordering::SeqCst);
        }
    }

    fn register(
        &self,
        is_eval: bool,
        function: Option<(Bytes, Vec<Bytes>)>,
        deadline: Option<Instant>,
    ) -> Arc<RunState> {
        let fresh = RunState {
            started: quanta::Instant::now(),
            is_eval,
            wrote: AtomicBool::new(false),
            stop: AtomicU8::new(stop::NONE),
            busy: AtomicBool::new(false),
            busy_counter: Arc::clone(&self.busy),
            threshold_ms: self.busy_threshold_ms.load(Ordering::Relaxed),
            slow: AtomicBool::new(false),
            next_handoff_ns: std::sync::atomic::AtomicU64::new(0),
            deadline,
            function,
            shard: own_shard(),
            listed: AtomicBool::new(false),
        };
        // This thread's last run's state, when nobody else holds it any more (no allocation).
        let state = match SPARE_RUN.with(|s| s.take()) {
            Some(mut spare) => match Arc::get_mut(&mut spare) {
                Some(s) => {
                    *s = fresh;
                    spare
                }
                None => Arc::new(fresh),
            },
            None => Arc::new(fresh),
        };
        if self.shutting_down.load(Ordering::SeqCst) {
            state.stop.store(stop::SHUTDOWN, Ordering::SeqCst);
        }
        state
    }

    /// The first running function: its name, its FCALL, and how long it has run in ms.
    pub fn running_function(&self) -> Option<(Bytes, Vec<Bytes>, u64)> {
        self.runs().iter().find_map(|r| {
            let (name, argv) = r.function.clone()?;
            Some((name, argv, r.started.elapsed().as_millis() as u64))
        })
    }

    /// Keep a finished run's state (ended by [`end_run`](Self::end_run)) for this thread's next run:
    /// it is reused then if nothing else holds it any more (see `register`).
    pub fn recycle_run(state: Arc<RunState>) {
        SPARE_RUN.with(|s| s.set(Some(state)));
    }

    pub fn end_run(&self, state: &Arc<RunState>) {
        if state.listed.load(Ordering::Relaxed) {
            let mut running = lock(&self.running[state.shard]);
            if let Some(i) = running.iter().position(|r| Arc::ptr_eq(r, state)) {
                running.remove(i);
            }
        }
        if state.busy.swap(false, Ordering::SeqCst) {
            self.busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Parse an EVAL body's shebang (`#!lua flags=no-writes,allow-oom`): its flags and the length of
/// the line, or Redis's error text.
pub fn parse_shebang(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((flags::EVAL_COMPAT, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_ascii_whitespace();
    let Some(engine) = parts.next() else { return Err("ERR Invalid engine in script shebang".into()) };
    if engine != "#!lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    let mut f = 0;
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {part}"));
        };
        if list.is_empty() {
            continue;
        }
        for name in list.split(',') {
            match flags::NAMES.iter().find(|(n, _)| *n == name) {
                Some((_, bit)) => f |= bit,
                None => return Err(format!("ERR Unexpected flag in script shebang: {name}")),
            }
        }
    }
    Ok((f, end))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn shebangs_parse_as_redis_does() {
        assert_eq!(parse_shebang(b"return 1"), Ok((flags::EVAL_COMPAT, 0)));
        assert_eq!(parse_shebang(b"#!lua\nreturn 1"), Ok((0, 5)));
        assert_eq!(parse_shebang(b"#!lua flags=no-writes,allow-oom\nx"), Ok((flags::NO_WRITES | flags::ALLOW_OOM, 31)));
        assert_eq!(parse_shebang(b"#!lua"), Err("ERR Invalid script shebang".into()));
        assert_eq!(parse_shebang(b"#!js\n"), Err("ERR Unexpected engine in script shebang: #!js".into()));
        assert_eq!(parse_shebang(b"#!lua flags=bogus\n"), Err("ERR Unexpected flag in script shebang: bogus".into()));
        assert_eq!(parse_shebang(b"#!lua name=x\n"), Err("ERR Unknown lua shebang option: name=x".into()));
    }

    #[test]
    fn runs_join_the_registry_only_when_listed_and_a_late_listing_still_sees_shutdown() {
        let s = Scripting::default();
        let quick = s.begin_run(true, None);
        assert!(s.runs().is_empty(), "a run is not listed before the hook fires");
        s.end_run(&quick);
        let long = s.begin_run(true, None);
        s.list(&long);
        s.list(&long);
        assert_eq!(s.runs().len(), 1, "listed once");
        s.end_run(&long);
        assert!(s.runs().is_empty());
        // SHUTDOWN while a run is unlisted: the listing finds the flag and stops it.
        let late = s.begin_run(false, None);
        assert_eq!(late.stop.load(Ordering::SeqCst), stop::NONE);
        s.stop_all();
        s.list(&late);
        assert_eq!(late.stop.load(Ordering::SeqCst), stop::SHUTDOWN);
        s.end_run(&late);
        // A run started after SHUTDOWN is stopped from the start; FUNCTION LOAD's runs are listed.
        assert_eq!(s.begin_run(true, None).stop.load(Ordering::SeqCst), stop::SHUTDOWN);
        let load = s.begin_load(1000);
        assert!(s.runs().iter().any(|r| Arc::ptr_eq(r, &load)));
        s.end_run(&load);
    }

    #[test]
    fn a_run_state_is_reused_only_when_nothing_else_holds_it() {
        let s = Scripting::default();
        let a = s.begin_run(true, None);
        a.wrote.store(true, Ordering::SeqCst);
        a.stop.store(stop::KILLED, Ordering::SeqCst);
        s.end_run(&a);
        let pa = Arc::as_ptr(&a);
        Scripting::recycle_run(a);
        let b = s.begin_run(false, None);
        assert_eq!(Arc::as_ptr(&b), pa, "reused");
        assert!(!b.wrote.load(Ordering::SeqCst) && !b.is_eval && b.stop.load(Ordering::SeqCst) == stop::NONE);
        let held = Arc::clone(&b);
        s.end_run(&b);
        Scripting::recycle_run(b);
        let c = s.begin_run(true, None);
        assert_ne!(Arc::as_ptr(&c), Arc::as_ptr(&held), "another holder keeps it: a fresh state");
        s.end_run(&c);
    }

    #[test]
    fn compiled_scripts_are_found_by_sha_whatever_their_shared_prefix() {
        let mut m: HashMap<Sha, u32, vm::ShaBuild> = HashMap::default();
        let mut shas = Vec::new();
        for i in 0..64u32 {
            let mut sha = super::sha1::sha1_hex(&i.to_le_bytes());
            if i % 2 == 0 {
                // Same first 16 digits as the previous odd one's: only the bucket is shared.
                sha[..16].copy_from_slice(b"0123456789abcdef");
            }
            shas.push(sha);
            m.insert(sha, i);
        }
        for (i, sha) in shas.iter().enumerate() {
            assert_eq!(m.get(sha), Some(&(i as u32)));
        }
        let mut other = shas[0];
        other[39] ^= 1;
        assert_eq!(m.get(&other), None);
    }
}

#[cfg(all(test, not(feature = "loom")))]
#[path = "tests.rs"]
mod dispatch_tests;
