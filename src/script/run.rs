//! One run of a script or function as one atomic unit: the stripes it holds (the locking rule is in
//! the module doc of `script`), the `redis.call` bridge into the command handlers, the instruction
//! hook (BUSY, SCRIPT KILL, SHUTDOWN), and its effects logged as one AOF block.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use std::os::raw::c_int;

use mlua::{Function, HookTriggers, Lua, Value, VmState, ffi};

use super::convert::{c_str, lua_to_frame, number_arg, raw};
use super::{RunState, Scripting, Vm, flags, stop};
use crate::cmd::{Ctx, flag};
use crate::db::{TxHold, UndoLog};
use crate::resp::Frame;
use crate::sync::fault::{self, Fault};

/// How many times a script that already wrote tries a stripe below those it holds before its
/// changes are taken back and it runs again holding every stripe (see the locking rule).
const EXTEND_TRIES: usize = if cfg!(feature = "loom") { 1 } else { 100 };

/// A run still going after this long is a long one (see `hook`).
const SLOW_RUN: std::time::Duration = std::time::Duration::from_millis(2);

/// Instructions between two runs of the hook (Redis's count).
const HOOK_EVERY: u32 = 100_000;

std::thread_local! {
    /// The run in progress on this thread (the instruction hook reads it).
    static CURRENT: RefCell<Option<Arc<RunState>>> = const { RefCell::new(None) };
    /// The `Caller` of the run in progress on this thread, while its Lua code runs (see `bridge`).
    static CALLER: std::cell::Cell<*mut ()> = const { std::cell::Cell::new(std::ptr::null_mut()) };
    /// Set while a command called by `redis.call`/`redis.pcall` runs on this thread (Redis's
    /// `CLIENT_SCRIPT` flag on the caller): XREAD's BLOCK option checks it.
    static IN_CALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the command running on this thread was called by a script (`redis.call`/`redis.pcall`).
pub fn in_script_call() -> bool {
    IN_CALL.with(|c| c.get())
}

/// Subcommands of the containers this server has that Redis 7.0 flags `noscript` (its command
/// table checks the subcommand's flags, not the container's): a script gets "This Redis command is
/// not allowed from script" for them.
const NOSCRIPT_SUBCOMMANDS: &[(&str, &[&str])] = &[
    (
        "client",
        &[
            "caching",
            "getname",
            "getredir",
            "id",
            "info",
            "kill",
            "list",
            "no-evict",
            "pause",
            "reply",
            "setname",
            "tracking",
            "trackinginfo",
            "unblock",
            "unpause",
        ],
    ),
    ("function", &["delete", "dump", "flush", "kill", "list", "load", "restore", "stats"]),
    ("script", &["debug", "exists", "flush", "kill", "load"]),
    ("config", &["get", "resetstat", "rewrite", "set"]),
    ("latency", &["doctor", "graph", "histogram", "history", "latest", "reset"]),
];

/// Whether `argv` (its arity already checked) names a `noscript` subcommand.
fn noscript_subcommand(argv: &[Bytes]) -> bool {
    let Some(sub) = argv.get(1) else { return false };
    NOSCRIPT_SUBCOMMANDS.iter().any(|(container, subs)| {
        container.as_bytes().eq_ignore_ascii_case(&argv[0])
            && subs.iter().any(|s| s.as_bytes().eq_ignore_ascii_case(sub))
    })
}

/// Whether this thread is running a script's or function's Lua code (not a FUNCTION LOAD): what
/// Redis's `math.random` and friends check ("... can only be called inside a script invocation").
pub fn in_script_run() -> bool {
    CALLER.with(|c| !c.get().is_null())
}

/// Push a sequence table of `items` (KEYS, ARGV).
///
/// # Safety
/// `state` is a valid Lua state inside a protected call (an allocation failure raises to it);
/// `items` borrowed only (nothing here needs dropping if it does).
unsafe fn push_sequence(state: *mut ffi::lua_State, items: &[Bytes]) {
    // SAFETY: the caller's contract; one table and one string on the stack at a time.
    unsafe {
        ffi::luaL_checkstack(state, 2, c"KEYS/ARGV".as_ptr());
        ffi::lua_createtable(state, items.len().min(1 << 24) as c_int, 0);
        for (i, item) in items.iter().enumerate() {
            ffi::lua_pushlstring(state, item.as_ptr().cast(), item.len());
            ffi::lua_rawseti(state, -2, i as ffi::lua_Integer + 1);
        }
    }
}

/// Push EVAL's KEYS or ARGV: the VM's table in registry slot `id`, refilled with `items` (`prev`:
/// the length it was filled to last time), instead of a new table per run (two tables less to
/// allocate and collect per EVALSHA). No script can keep a reference to it from one run to the
/// next (EVAL scripts cannot create globals and have no upvalues that outlive a run), so the
/// only trace of a run is what it changed in the table itself: the refill sets items 1..n and
/// clears the rest of the last run's; a table that then still has other entries, or that was
/// given a metatable, is replaced by a fresh one.
///
/// # Safety
/// As [`push_sequence`]; `id` is a registry slot holding a table.
unsafe fn push_reused_sequence(state: *mut ffi::lua_State, id: c_int, prev: &std::cell::Cell<usize>, items: &[Bytes]) {
    // SAFETY: the caller's contract; at most the table, a key and a value on the stack at once.
    unsafe {
        ffi::luaL_checkstack(state, 4, c"KEYS/ARGV".as_ptr());
        ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, id as _);
        let mut clean = ffi::lua_type(state, -1) == ffi::LUA_TTABLE;
        if clean && ffi::lua_getmetatable(state, -1) != 0 {
            ffi::lua_pop(state, 1);
            clean = false;
        }
        if clean {
            for (i, item) in items.iter().enumerate() {
                ffi::lua_pushlstring(state, item.as_ptr().cast(), item.len());
                ffi::lua_rawseti(state, -2, i as ffi::lua_Integer + 1);
            }
            for i in items.len()..prev.get() {
                ffi::lua_pushnil(state);
                ffi::lua_rawseti(state, -2, i as ffi::lua_Integer + 1);
            }
            // Exactly the items now? (Counting stops past them.)
            let mut count = 0usize;
            ffi::lua_pushnil(state);
            while ffi::lua_next(state, -2) != 0 {
                ffi::lua_pop(state, 1);
                count += 1;
                if count > items.len() {
                    ffi::lua_pop(state, 1);
                    break;
                }
            }
            clean = count == items.len();
        }
        if !clean {
            ffi::lua_pop(state, 1);
            push_sequence(state, items);
            ffi::lua_pushvalue(state, -1);
            ffi::lua_rawseti(state, ffi::LUA_REGISTRYINDEX, id as _);
        }
        prev.set(items.len());
    }
}

/// `redis.call`'s bridge into the command handlers (`internal.bridge`, a C function built once
/// per VM): `(resp, command, args...)` in, `(reply, failed)` out. It reaches the running script's
/// [`Caller`] through this thread's pointer, so that no function is created per run, reads the
/// arguments straight off the stack and pushes the reply straight onto it.
///
/// # Safety
/// Called by Lua only, with a valid state. Everything that owns memory lives in [`bridge_body`],
/// which has returned (its values dropped) before a Lua error is raised here; the error texts are
/// static.
pub unsafe extern "C-unwind" fn bridge(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: see above; `bridge_body`'s contract is this function's.
    let raise: &'static str =
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { bridge_body(state) })) {
            Ok(Ok(n)) => return n,
            Ok(Err(msg)) => msg,
            Err(_) => "redis.call failed (internal error)",
        };
    // SAFETY: a valid state with room for one value (Lua guarantees LUA_MINSTACK to C functions);
    // nothing on this frame needs dropping.
    unsafe {
        ffi::lua_pushlstring(state, raise.as_ptr().cast(), raise.len());
        ffi::lua_error(state)
    }
}

/// The body of [`bridge`]: the number of results pushed, or the text of an error to raise.
///
/// # Safety
/// `state` is the Lua state of the running script, inside its call into Lua.
unsafe fn bridge_body(state: *mut ffi::lua_State) -> Result<c_int, &'static str> {
    // Taken out while in use: a reentrant call (none is possible: scripts cannot run scripts)
    // would find no caller rather than alias this one.
    let p = CALLER.with(|c| c.replace(std::ptr::null_mut()));
    if p.is_null() {
        return Err("redis.call outside of a script run");
    }
    // SAFETY: `attempt` stores a pointer to its `Caller`, alive on its stack frame, on this thread
    // just before it calls into Lua and clears it right after, without touching the `Caller`
    // meanwhile; Lua calls this function only on that thread, inside that call. The lifetimes
    // are erased for the duration of this one call; nothing borrowed from it escapes `call`.
    let caller = unsafe { &mut *p.cast::<Caller<'static, 'static>>() };
    // Lua code is suspended while the command runs: the reply is pushed with the limit off (an
    // allocation can then not raise over this frame), and the limit is on again when the script
    // goes on.
    super::vm::set_limit(caller.lua, 0);
    // SAFETY: the caller's contract.
    let r = unsafe { caller.call(state) };
    super::vm::set_limit(caller.lua, caller.memory_limit);
    CALLER.with(|c| c.set(p));
    r
}

/// Set (or clear) the run the instruction hook watches on this thread.
pub fn set_current(state: Option<Arc<RunState>>) {
    CURRENT.with(|c| *c.borrow_mut() = state);
}

/// Install the instruction hook on a new VM.
pub fn install_hook(lua: &Lua, every: u32) -> mlua::Result<()> {
    lua.set_hook(HookTriggers::new().every_nth_instruction(every), hook)
}

fn hook(lua: &Lua, debug: &mlua::debug::Debug) -> mlua::Result<VmState> {
    let state = CURRENT.with(|c| c.borrow().clone());
    let Some(state) = state else { return Ok(VmState::Continue) };
    // The hook counts instructions across runs: only a run that has lasted is a long one.
    if state.started.elapsed() >= SLOW_RUN {
        // A run found still running: hand this worker's other connections to another thread
        // (`cmd::offload`), so that they are not held for the rest of the script. The handoff
        // happens when `block_in_place` starts; the pause gives the new thread time to take the
        // worker's queue before this one could take it back. Once it has (this thread has no
        // worker queue any more), the later calls cost nothing; until then each hook tries again.
        let first = !state.slow.swap(true, Ordering::Relaxed);
        crate::cmd::offload(usize::MAX, || {
            if first { std::thread::sleep(std::time::Duration::from_millis(1)) } else { std::thread::yield_now() }
        });
    }
    state.note_elapsed();
    if state.stop.load(Ordering::SeqCst) != stop::NONE {
        // From now on every instruction of user code raises again, so that a pcall cannot swallow
        // the stop; the error handler and the runner ("[redis]") run on, to report it.
        let _ = install_hook(lua, 1);
        if debug.source().source.as_deref() == Some("=[redis]") {
            return Ok(VmState::Continue);
        }
        return Err(mlua::Error::RuntimeError("script stopped".into()));
    }
    Ok(VmState::Continue)
}

/// What is being run.
pub enum Target<'a> {
    Eval { sha: &'a [u8; 40], learned: &'a AtomicBool, slow: &'a AtomicBool },
    Function { name: &'a [u8], argv: &'a [Bytes], learned: &'a AtomicBool },
}

impl Target<'_> {
    fn learned(&self) -> &AtomicBool {
        match self {
            Target::Eval { learned, .. } | Target::Function { learned, .. } => learned,
        }
    }

    fn name(&self) -> String {
        match self {
            Target::Eval { sha, .. } => String::from_utf8_lossy(&sha[..]).into_owned(),
            Target::Function { name, .. } => String::from_utf8_lossy(name).into_owned(),
        }
    }
}

/// The checks Redis makes before a script with flags runs (`scriptPrepareForRun`).
pub fn prepare(ctx: &Ctx, script_flags: u32, ro: bool) -> Result<(), String> {
    if script_flags & flags::EVAL_COMPAT != 0 {
        return Ok(());
    }
    if script_flags & flags::NO_WRITES == 0 {
        if ctx.now_ms != 0
            && let Some(aof) = ctx.shared.ks.aof()
            && let Some(reason) = aof.write_error()
        {
            return Err(format!(
                "MISCONF Redis is configured to persist data to AOF, but it's currently unable to persist to disk. \
                 Writable scripts are blocked. Use 'no-writes' flag for read only scripts. AOF error: {reason}"
            ));
        }
        if ro {
            return Err("ERR Can not execute a script with write flag using *_ro command.".into());
        }
    }
    if ctx.now_ms != 0
        && script_flags & (flags::ALLOW_OOM | flags::NO_WRITES) == 0
        && crate::cmd::out_of_memory(ctx.shared)
    {
        return Err("OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'".into());
    }
    Ok(())
}

/// Run `func` (an EVAL script's function, or a registered function with `keys` and `args` as its
/// two arguments) atomically and return its reply.
#[allow(clippy::too_many_arguments)]
pub fn run(
    ctx: &mut Ctx,
    scripting: &Scripting,
    vm: &Vm,
    func: &Function,
    target: Target,
    keys: &[Bytes],
    args: &[Bytes],
    script_flags: u32,
    ro: bool,
) -> Frame {
    let slow = matches!(&target, Target::Eval { slow, .. } if slow.load(Ordering::Relaxed));
    let mut all = target.learned().load(Ordering::Relaxed);
    loop {
        let attempt = || attempt(ctx, scripting, vm, func, &target, keys, args, script_flags, ro, all);
        // A script whose last run was long hands this worker's other connections to another
        // thread from the start. What the last run did decides, both ways: a run found long only
        // because its thread was preempted (a loaded machine) must not make every later run of a
        // quick script pay a thread handoff.
        let (frame, rerun, ran_long) = crate::cmd::offload(if slow { usize::MAX } else { 0 }, attempt);
        if ran_long != slow
            && let Target::Eval { slow, .. } = &target
        {
            slow.store(ran_long, Ordering::Relaxed);
        }
        if !rerun {
            return frame;
        }
        all = true;
    }
}

/// Key names for a stripe check: up to four in place (no allocation: the common case), more in a
/// vector.
#[derive(Default)]
struct KeyList<'k> {
    few: [&'k [u8]; 4],
    len: usize,
    more: Vec<&'k [u8]>,
}

impl<'k> KeyList<'k> {
    fn push(&mut self, key: &'k [u8]) {
        if self.len < self.few.len() {
            self.few[self.len] = key;
        } else {
            if self.more.is_empty() {
                self.more.extend_from_slice(&self.few);
            }
            self.more.push(key);
        }
        self.len += 1;
    }

    fn as_slice(&self) -> &[&'k [u8]] {
        if self.len <= self.few.len() { &self.few[..self.len] } else { &self.more }
    }
}

/// The state `redis.call` works on during one run.
struct Caller<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    lua: &'c Lua,
    hold: Option<TxHold<'a>>,
    state: &'c RunState,
    learned: &'c AtomicBool,
    read_only: bool,
    allow_oom: bool,
    oom_at_start: bool,
    dirty: bool,
    /// The VM's memory limit, on while the script's Lua code runs.
    memory_limit: usize,
    /// The script's declared keys: what a tracking caller's cache may hold once the script reads.
    keys: &'c [Bytes],
    /// The previous values of the keys written while not every stripe is held (`db::undo`).
    undo: UndoLog,
}

/// One try; returns the reply, whether to run again holding every stripe, and whether it ran long.
#[allow(clippy::too_many_arguments)]
fn attempt(
    ctx: &mut Ctx,
    scripting: &Scripting,
    vm: &Vm,
    func: &Function,
    target: &Target,
    keys: &[Bytes],
    args: &[Bytes],
    script_flags: u32,
    ro: bool,
    all: bool,
) -> (Frame, bool, bool) {
    let shared = ctx.shared;
    let ks = &shared.ks;
    let mut key_refs = KeyList::default();
    for k in keys {
        key_refs.push(k);
    }
    let key_refs = key_refs.as_slice();
    // Inside an EXEC (MULTI ... EVAL ... EXEC) the transaction already holds every stripe.
    let hold = (!ks.in_exec()).then(|| {
        ks.hold(if all {
            None
        } else if fault::on(Fault::ScriptWithoutStripes) {
            Some(&[])
        } else {
            Some(key_refs)
        })
    });
    let function = match target {
        Target::Function { name, argv, .. } => Some((Bytes::copy_from_slice(name), argv.to_vec())),
        Target::Eval { .. } => None,
    };
    let state = scripting.begin_run(matches!(target, Target::Eval { .. }), function);
    CURRENT.with(|c| *c.borrow_mut() = Some(Arc::clone(&state)));
    let (saved_db, saved_resp) = (ctx.client.db, ctx.client.resp);
    let compat = script_flags & flags::EVAL_COMPAT != 0;
    let mut caller = Caller {
        oom_at_start: ctx.now_ms != 0 && crate::cmd::over_maxmemory(shared),
        ctx,
        lua: &vm.lua,
        hold,
        state: &state,
        learned: target.learned(),
        read_only: ro || (!compat && script_flags & flags::NO_WRITES != 0),
        allow_oom: !compat && script_flags & flags::ALLOW_OOM != 0,
        dirty: false,
        memory_limit: vm.memory_limit,
        keys,
        undo: UNDO.with(|u| std::mem::take(&mut *u.borrow_mut())),
    };
    let lua = &vm.lua;
    let is_eval = matches!(target, Target::Eval { .. });
    // `redis.call` reaches `caller` through this thread's pointer while the script runs (see
    // `bridge`); nothing else touches `caller` until the pointer is cleared.
    CALLER.with(|c| c.set((&raw mut caller).cast()));
    let outcome = (|| -> mlua::Result<_> {
        // KEYS and ARGV are built straight on the stack (one table each, the strings pushed from
        // the request's buffers), then `internal.run` is called with them: no mlua value per
        // argument, no global set from Rust.
        // SAFETY: the closure only pushes onto the stack mlua hands it, inside mlua's protected
        // call (a Lua error there unwinds to it; the closure owns nothing that needs dropping);
        // `run` and `func` are the two values mlua pushed first; `lua_call` leaves the three
        // results `R` reads.
        let r = vm.limited(|| unsafe {
            lua.exec_raw::<(u8, bool, Value)>((&vm.run, func), |state| {
                if is_eval {
                    push_reused_sequence(state, vm.seqs[0].id(), &vm.seq_lens[0], keys);
                    push_reused_sequence(state, vm.seqs[1].id(), &vm.seq_lens[1], args);
                } else {
                    // A function may keep its arguments (its library's upvalues live on).
                    push_sequence(state, keys);
                    push_sequence(state, args);
                }
                mlua::ffi::lua_pushboolean(state, i32::from(is_eval));
                mlua::ffi::lua_call(state, 4, 3);
            })
        });
        let (resp, ok, v) = r?;
        Ok(if ok { Ok(lua_to_frame(&v, resp)) } else { Err(error_reply(&v, &target.name())) })
    })();
    CALLER.with(|c| c.set(std::ptr::null_mut()));
    if outcome.is_err() {
        // `run` raised outside its xpcall (out of memory): leave no bridge or KEYS behind.
        let _ = vm.internal.raw_set("call", Value::Nil);
        let _ = vm.globals.raw_set("KEYS", Value::Nil);
        let _ = vm.globals.raw_set("ARGV", Value::Nil);
    }
    let ctx = caller.ctx;
    ctx.client.db = saved_db;
    ctx.client.resp = saved_resp;
    CURRENT.with(|c| *c.borrow_mut() = None);
    scripting.end_run(&state);
    let stopped = state.stop.load(Ordering::SeqCst);
    let ran_long = state.slow.load(Ordering::Relaxed);
    if stopped != stop::NONE {
        let _ = install_hook(lua, HOOK_EVERY);
    }
    // A GC step every 50 runs, as Redis (LUA_GC_CYCLE_PERIOD): one per run costs too much CPU.
    vm.runs.set(vm.runs.get().wrapping_add(1));
    if vm.runs.get().is_multiple_of(50) {
        let _ = lua.gc_step();
    }
    let mut undo = std::mem::take(&mut caller.undo);
    if stopped == stop::RERUN && !fault::on(Fault::ScriptSkipsUndo) {
        // Take the changes so far back while the stripes are still held (`db::undo`).
        ks.undo_restore(&mut undo);
    }
    undo.clear();
    UNDO.with(|u| *u.borrow_mut() = undo);
    let frame = match (stopped, outcome) {
        (stop::RERUN, _) => {
            if let Some(h) = caller.hold.take() {
                h.discard_records();
            }
            return (Frame::Null, true, ran_long);
        }
        (stop::SHUTDOWN, _) => {
            if let Some(h) = caller.hold.take() {
                h.discard_records();
            }
            return (Frame::Error(Bytes::from_static(b"ERR Script killed by a shutdown")), false, ran_long);
        }
        (stop::KILLED, Ok(Err(Frame::Error(text)))) => {
            // The message Redis raises, with the position the handler found.
            let text = String::from_utf8_lossy(&text).into_owned();
            let pos = text.find(" script: ").map(|i| &text[i..]).unwrap_or("");
            Frame::Error(Bytes::from(format!("ERR Script killed by user with SCRIPT KILL...{pos}")))
        }
        (stop::KILLED, _) => Frame::Error(Bytes::from_static(b"ERR Script killed by user with SCRIPT KILL...")),
        (_, Ok(Ok(f))) | (_, Ok(Err(f))) => f,
        (_, Err(e)) => Frame::Error(Bytes::from(format!(
            "ERR Error running script {}, {}",
            target.name(),
            super::vm::compile_error_text(&e).chars().take(100).collect::<String>()
        ))),
    };
    if let Some(h) = caller.hold.take() {
        h.finish_script(&ctx.last_seq);
    }
    (frame, false, ran_long)
}

/// The reply for a script that raised `err` (`luaCallFunction`'s error path). Redis reads the
/// texts as C strings (`lua_tostring` into `%s`/`sdsnew`): bytes as they are, up to a first NUL.
fn error_reply(err: &Value, funcname: &str) -> Frame {
    let text = |v: &Value| -> Option<Vec<u8>> {
        match v {
            Value::String(s) => Some(c_str(&s.as_bytes()).to_vec()),
            Value::Number(n) => Some(lua_number_text(*n).into_bytes()),
            Value::Integer(n) => Some(n.to_string().into_bytes()),
            _ => None,
        }
    };
    let Value::Table(t) = err else {
        // "Error running script %s, %.100s\n"
        let mut msg = text(err).unwrap_or_else(|| b"execution failure".to_vec());
        msg.truncate(100);
        let mut out = format!("ERR Error running script {funcname}, ").into_bytes();
        out.extend_from_slice(&msg);
        return Frame::Error(one_line(&out));
    };
    let field = |name: &str| t.get::<Value>(name).ok().as_ref().and_then(text);
    let mut out = field("err").unwrap_or_else(|| b"ERR unknown error".to_vec());
    if let (Some(source), Some(line)) = (field("source"), field("line")) {
        out.extend_from_slice(format!(" script: {funcname}, on ").as_bytes());
        out.extend_from_slice(&source);
        out.push(b':');
        out.extend_from_slice(&line);
        out.push(b'.');
    }
    Frame::Error(one_line(&out))
}

/// A number as Lua's `tostring` prints it (`%.14g`).
fn lua_number_text(n: f64) -> String {
    if n == n.trunc() && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

/// Trailing newlines trimmed, inner ones made spaces (an error reply stays on one line).
fn one_line(s: &[u8]) -> Bytes {
    let end = s.iter().rposition(|&b| b != b'\r' && b != b'\n').map_or(0, |e| e + 1);
    Bytes::from(s[..end].iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }).collect::<Vec<u8>>())
}

/// What one `redis.call` hands back to the script.
enum Outcome {
    /// The command's reply (an error reply makes `redis.call` raise it), under this protocol.
    Reply(Frame, u8),
    /// Refused before it ran: `{err = ...}`, raised by `redis.call`. `dashed`: the text carries
    /// its own code; `ignore`: not counted in the error stats (`scriptCall`'s errors).
    Refused { text: std::borrow::Cow<'static, str>, dashed: bool, ignore: bool },
}

impl Outcome {
    fn rejected(text: &'static str) -> Outcome {
        Outcome::Refused { text: text.into(), dashed: false, ignore: true }
    }
}

/// Whether `hold` holds every stripe (or there is none: inside an EXEC, which does).
fn hold_covers_all(hold: &Option<TxHold>) -> bool {
    hold.as_ref().is_none_or(|h| h.covers(None))
}

impl Caller<'_, '_> {
    /// Take the stripes of `keys` (`None`: every stripe) that the run lacks. When one below those
    /// held stays out of reach, the run stops: its changes are taken back (`attempt`) and it runs
    /// again holding every stripe.
    fn extend(&mut self, keys: Option<&[&[u8]]>) -> Result<(), &'static str> {
        let Some(hold) = self.hold.as_mut() else { return Ok(()) };
        let tries = if hold.wrote() || !self.undo.is_empty() { EXTEND_TRIES } else { 1 };
        if hold.extend(keys, tries).is_err() {
            self.state.stop.store(stop::RERUN, Ordering::SeqCst);
            return Err("script restarts holding every stripe");
        }
        Ok(())
    }

    /// `redis.call`/`redis.pcall` on `state`'s stack (the script's RESP version, then the
    /// command's arguments): pushes the reply as Lua sees it and whether it is an error.
    ///
    /// # Safety
    /// `state` is the running script's, its memory limit off.
    unsafe fn call(&mut self, state: *mut ffi::lua_State) -> Result<c_int, &'static str> {
        if self.state.stop.load(Ordering::SeqCst) != stop::NONE {
            return Err("script stopped");
        }
        // SAFETY: the caller's contract; indexes up to `lua_gettop`.
        let outcome = unsafe {
            let top = ffi::lua_gettop(state);
            let resp =
                if ffi::lua_type(state, 1) == ffi::LUA_TNUMBER && ffi::lua_tonumber(state, 1) == 3.0 { 3 } else { 2 };
            let (mut buf, mut argv) = ARGS.with(|a| std::mem::take(&mut *a.borrow_mut()));
            let outcome = match stack_args(state, top, &mut buf, &mut argv) {
                Err(text) => Ok(Outcome::Refused { text: text.into(), dashed: false, ignore: false }),
                Ok(()) => self.dispatch(&argv, resp),
            };
            argv.clear();
            ARGS.with(|a| *a.borrow_mut() = (buf, argv));
            outcome?
        };
        // The pushes below allocate Lua memory; with the limit off only a real out-of-memory can
        // fail, which raises a Lua error (a longjmp over this frame): the reply is held without
        // a pending destructor meanwhile (leaked then, dropped below otherwise).
        let outcome = std::mem::ManuallyDrop::new(outcome);
        // SAFETY: the caller's contract; the reply's pushes grow the stack as they need.
        unsafe {
            ffi::lua_settop(state, 0);
            match &*outcome {
                Outcome::Reply(frame, resp) => {
                    raw::push_frame(state, frame, *resp);
                    ffi::lua_pushboolean(state, i32::from(matches!(frame, Frame::Error(_))));
                }
                Outcome::Refused { text, dashed, ignore } => {
                    raw::push_error_table(state, text.as_bytes(), *dashed, *ignore);
                    ffi::lua_pushboolean(state, 1);
                }
            }
        }
        drop(std::mem::ManuallyDrop::into_inner(outcome));
        Ok(2)
    }

    /// Run one command for the script: its reply, or why it was refused; Err to raise (the run
    /// is stopping).
    fn dispatch(&mut self, argv: &[Bytes], resp: u8) -> Result<Outcome, &'static str> {
        // As Redis's `lookupCommand`: a container's unknown subcommand is an unknown command, and
        // a known one's arity is its own.
        let Some((spec, arity)) = crate::cmd::slots::lookup_command(&argv[0], argv.get(1).map(|a| &a[..])) else {
            return Ok(Outcome::rejected("Unknown Redis command called from script"));
        };
        let argc = argv.len();
        if if arity >= 0 { argc != arity as usize } else { argc < arity.unsigned_abs() as usize } {
            return Ok(Outcome::rejected("Wrong number of args calling Redis command from script"));
        }
        if spec.is(flag::NOSCRIPT) || noscript_subcommand(argv) {
            return Ok(Outcome::rejected("This Redis command is not allowed from script"));
        }
        let write = spec.is(flag::WRITE);
        if self.read_only && (write || spec.is(flag::MAY_REPLICATE)) {
            return Ok(Outcome::rejected("Write commands are not allowed from read-only scripts."));
        }
        if write && !self.dirty {
            if self.ctx.now_ms != 0
                && let Some(aof) = self.ctx.shared.ks.aof()
                && let Some(reason) = aof.write_error()
            {
                let text = crate::error::Error::Misconf(reason).to_frame();
                if let Frame::Error(t) = text {
                    let text = String::from_utf8_lossy(&t).into_owned();
                    return Ok(Outcome::Refused { text: text.into(), dashed: true, ignore: true });
                }
            }
            if !self.allow_oom && self.oom_at_start && spec.is(flag::DENYOOM) {
                return Ok(Outcome::Refused {
                    text: "OOM command not allowed when used memory > 'maxmemory'.".into(),
                    dashed: true,
                    ignore: true,
                });
            }
        }
        if write {
            self.dirty = true;
            self.state.wrote.store(true, Ordering::SeqCst);
        }
        if self.hold.is_some() {
            let every = crate::cmd::tx::needs_every_stripe(spec);
            let mut few = KeyList::default();
            if !every {
                for i in spec.key_indexes(argv.len()) {
                    few.push(&argv[i]);
                }
            }
            let keys = few.as_slice();
            let need = if every { None } else { Some(keys) };
            // MOVE and COPY also write the key in another database: the undo log (by this
            // database's keys) could not take that back, so they hold every stripe first.
            let other_db = write && (argv[0].eq_ignore_ascii_case(b"move") || argv[0].eq_ignore_ascii_case(b"copy"));
            let need = if other_db { None } else { need };
            if (other_db || every || !keys.is_empty()) && !self.hold.as_ref().is_some_and(|h| h.covers(need)) {
                // An undeclared key: hold every stripe on the next runs; take the missing ones now.
                self.learned.store(true, Ordering::Relaxed);
                self.extend(need)?;
            }
            if write && !hold_covers_all(&self.hold) {
                // Save what this write may change, to take it back should a later stripe be out
                // of reach; a value too large to copy: hold every stripe now instead.
                let db = self.ctx.client.db;
                let ks = &self.ctx.shared.ks;
                let too_costly =
                    spec.key_indexes(argv.len()).any(|i| ks.undo_note(&mut self.undo, db, &argv[i]).is_err());
                if too_costly {
                    self.extend(None)?;
                }
            }
        }
        if spec.is(flag::READONLY) && self.ctx.client.tracking.remembers(&self.ctx.client.info) {
            // Redis: a script's read command makes a tracking caller remember the script's keys.
            let keys: Vec<&[u8]> = self.keys.iter().map(|k| &k[..]).collect();
            self.ctx.shared.ks.track_reads(self.ctx.client.id, &keys);
        }
        let saved_resp = self.ctx.client.resp;
        self.ctx.client.resp = resp;
        IN_CALL.with(|c| c.set(true));
        let frame = crate::cmd::call(self.ctx, spec, argv);
        IN_CALL.with(|c| c.set(false));
        self.ctx.client.resp = saved_resp;
        self.ctx.client.close_after_reply = false;
        self.ctx.client.skip_reply = false;
        if let Frame::Error(text) = &frame {
            self.ctx.shared.stats.record_error(text);
        }
        Ok(Outcome::Reply(frame, resp))
    }
}

/// The command's arguments, stack slots 2..=`top`, copied into this thread's scratch buffer
/// (reused from call to call: no allocation once it is large enough and the previous call's
/// arguments are dropped) and pushed on `argv`; or the error text for a call without any or with
/// a value that is not a string or a number.
///
/// # Safety
/// `top` is `state`'s stack top.
unsafe fn stack_args(
    state: *mut ffi::lua_State,
    top: c_int,
    buf: &mut bytes::BytesMut,
    argv: &mut Vec<Bytes>,
) -> Result<(), &'static str> {
    if top < 2 {
        return Err("Please specify at least one argument for this redis lib call");
    }
    // SAFETY: the caller's contract; `lua_tolstring` is reached for strings only (no conversion
    // in place), and its bytes are copied before anything else touches the stack.
    unsafe {
        let arg = |i: c_int| -> &[u8] {
            let mut len = 0usize;
            let p = ffi::lua_tolstring(state, i, &mut len);
            if p.is_null() { &[] } else { std::slice::from_raw_parts(p.cast::<u8>(), len) }
        };
        let mut total = 0;
        for i in 2..=top {
            match ffi::lua_type(state, i) {
                ffi::LUA_TSTRING => total += arg(i).len(),
                ffi::LUA_TNUMBER => total += 32,
                _ => return Err("Lua redis lib command arguments must be strings or integers"),
            }
        }
        // Reclaims the buffer in place when the last call's arguments are all gone.
        buf.reserve(total);
        for i in 2..=top {
            if ffi::lua_type(state, i) == ffi::LUA_TSTRING {
                buf.extend_from_slice(arg(i));
            } else {
                buf.extend_from_slice(number_arg(ffi::lua_tonumber(state, i)).as_bytes());
            }
            argv.push(buf.split().freeze());
        }
    }
    Ok(())
}

std::thread_local! {
    /// The undo log, kept between runs (no allocation per run once it has grown).
    static UNDO: RefCell<UndoLog> = RefCell::new(UndoLog::default());
    /// `redis.call`'s argument buffer and vector, kept between calls (see `stack_args`).
    static ARGS: RefCell<(bytes::BytesMut, Vec<Bytes>)> = RefCell::new((bytes::BytesMut::new(), Vec::new()));
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::KeyList;

    #[test]
    fn key_lists_keep_every_key_in_order_in_place_or_spilled() {
        let names: Vec<Vec<u8>> = (0..7).map(|i| format!("k{i}").into_bytes()).collect();
        for n in 0..names.len() {
            let mut list = KeyList::default();
            for k in &names[..n] {
                list.push(k);
            }
            let want: Vec<&[u8]> = names[..n].iter().map(|k| &k[..]).collect();
            assert_eq!(list.as_slice(), &want[..], "{n} keys");
        }
    }
}
