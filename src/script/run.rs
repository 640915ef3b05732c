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
    /// The registry of the run in progress on this thread, while it runs (see `Scripting::list`).
    static REGISTRY: std::cell::Cell<*const Scripting> = const { std::cell::Cell::new(std::ptr::null()) };
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
        ffi::lua_rawgeti_(state, ffi::LUA_REGISTRYINDEX, id);
        let mut clean = ffi::lua_type(state, -1) == ffi::LUA_TTABLE && items.len() < c_int::MAX as usize;
        if clean && ffi::lua_getmetatable(state, -1) != 0 {
            ffi::lua_pop(state, 1);
            clean = false;
        }
        if clean {
            // The C API's own calls (mlua's wrappers of these also read the pushed string back
            // and convert the index; `clean` bounds the indexes).
            for (i, item) in items.iter().enumerate() {
                let bytes: &[u8] = if item.is_empty() { b"\0" } else { item };
                ffi::lua_pushlstring_(state, bytes.as_ptr().cast(), item.len());
                ffi::lua_rawseti_(state, -2, i as c_int + 1);
            }
            for i in items.len()..prev.get() {
                ffi::lua_pushnil(state);
                ffi::lua_rawseti_(state, -2, (i as c_int).wrapping_add(1));
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

/// `redis.call` itself (a C function built once per VM, installed by `vm.rs`): the command's
/// arguments in, its reply out, an error reply raised as its error table. `redis.pcall` is
/// [`redis_pcall`]. Being C functions, a `return redis.call(...)` tail call does not replace the
/// script's frame (an error still names the script's line, as Redis's C functions do), and a call
/// goes straight from the script to here: no Lua wrapper, no varargs, no trampoline. Each reaches
/// the running script's [`Caller`] through this thread's pointer, so that no function is created
/// per run, reads the arguments straight off the stack and pushes the reply straight onto it.
///
/// # Safety
/// Called by Lua only, with a valid state. Everything that owns memory lives in [`bridge_body`],
/// which has returned (its values dropped) before a Lua error is raised here; the error texts are
/// static.
pub unsafe extern "C-unwind" fn redis_call(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: the contract above.
    unsafe { bridge(state, true) }
}

/// `redis.pcall`: as [`redis_call`], an error reply returned (its error table) rather than raised.
///
/// # Safety
/// As [`redis_call`].
pub unsafe extern "C-unwind" fn redis_pcall(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: the contract of `redis_call`.
    unsafe { bridge(state, false) }
}

/// `redis.setresp`'s record of the protocol for the next `redis.call`s of this run (`internal.set_resp`,
/// called by the prelude's `redis.setresp` once it has checked its argument, 2 or 3).
///
/// # Safety
/// As [`redis_call`].
pub unsafe extern "C-unwind" fn set_resp(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: a valid state (the contract above); index 1 read as a number (0 when absent).
    let v = unsafe { ffi::lua_tonumber(state, 1) };
    let p = CALLER.with(|c| c.get());
    if !p.is_null() {
        // SAFETY: as in `bridge_body`; only one byte field is written, on this thread, while the
        // run's Lua code runs (no other reference to the `Caller` is in use then).
        unsafe { (*p.cast::<Caller<'static, 'static>>()).resp = if v == 3.0 { 3 } else { 2 } };
    }
    0
}

/// The body of [`redis_call`] and [`redis_pcall`] (`raise`: an error reply is raised).
///
/// # Safety
/// As [`redis_call`].
unsafe fn bridge(state: *mut ffi::lua_State, raise: bool) -> c_int {
    // SAFETY: see above; `bridge_body`'s contract is this function's.
    let text: &'static str =
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { bridge_body(state) })) {
            Ok(Ok(true)) => {
                // SAFETY: the reply and its failed flag are the stack (see `Caller::call`).
                unsafe {
                    let failed = ffi::lua_toboolean(state, 2) != 0;
                    ffi::lua_settop(state, 1);
                    if raise && failed {
                        ffi::lua_error(state);
                    }
                }
                return 1;
            }
            Ok(Ok(false)) => {
                // Outside a run (the prelude's wrappers gave this error table before).
                // SAFETY: a valid state with LUA_MINSTACK free slots; nothing here needs dropping.
                unsafe {
                    raw::push_error_table(
                        state,
                        b"redis.call/pcall can only be called inside a script invocation",
                        false,
                        false,
                    );
                    ffi::lua_error(state)
                }
            }
            Ok(Err(msg)) => msg,
            Err(_) => "redis.call failed (internal error)",
        };
    // SAFETY: a valid state with room for one value (Lua guarantees LUA_MINSTACK to C functions);
    // nothing on this frame needs dropping.
    unsafe {
        ffi::lua_pushlstring(state, text.as_ptr().cast(), text.len());
        ffi::lua_error(state)
    }
}

/// The body of [`bridge`]: true once the reply and whether it is an error are the stack, false
/// outside a run, or the text of an error to raise.
///
/// # Safety
/// `state` is the Lua state of the running script, inside its call into Lua.
unsafe fn bridge_body(state: *mut ffi::lua_State) -> Result<bool, &'static str> {
    // Taken out while in use: a reentrant call (none is possible: scripts cannot run scripts)
    // would find no caller rather than alias this one.
    let p = CALLER.with(|c| c.replace(std::ptr::null_mut()));
    if p.is_null() {
        return Ok(false);
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
    r.map(|_| true)
}

/// Set (or clear) the run the instruction hook watches on this thread.
pub fn set_current(state: Option<Arc<RunState>>) {
    CURRENT.with(|c| *c.borrow_mut() = state);
}

/// Install the instruction hook on a new VM.
pub fn install_hook(lua: &Lua, every: u32) -> mlua::Result<()> {
    lua.set_hook(HookTriggers::new().every_nth_instruction(every), hook)
}

/// A run found still running after [`SLOW_RUN`]: hand this worker's other connections to another
/// thread (`cmd::offload`), so that they are not held for the rest of the script. The handoff
/// happens when `block_in_place` starts; the pause gives the new thread time to take the worker's
/// queue before this one could take it back. Once it has (this thread has no worker queue any
/// more), the later calls cost nothing; until then each hook tries again. Called by the
/// instruction hook and by `redis.call` (a script that loops on calls runs few Lua instructions
/// per second: the hook alone could leave the worker's connections waiting for seconds).
fn offload_slow(state: &RunState) {
    let first = !state.slow.swap(true, Ordering::Relaxed);
    crate::cmd::offload(usize::MAX, || {
        if first { std::thread::sleep(std::time::Duration::from_millis(1)) } else { std::thread::yield_now() }
    });
}

fn hook(lua: &Lua, debug: &mlua::debug::Debug) -> mlua::Result<VmState> {
    let state = CURRENT.with(|c| c.borrow().clone());
    let Some(state) = state else { return Ok(VmState::Continue) };
    let registry = REGISTRY.with(|r| r.get());
    if !registry.is_null() {
        // SAFETY: `attempt` sets the pointer to the `Scripting` it borrows for the whole run, on
        // this thread, and clears it before that borrow ends; the hook runs inside the run.
        unsafe { (*registry).list(&state) };
    }
    // The hook counts instructions across runs: only a run that has lasted is a long one.
    if state.started.elapsed() >= SLOW_RUN {
        offload_slow(&state);
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
    /// `func_key`: the registry slot of the compiled script (see `vm::Compiled`).
    Eval {
        sha: &'a [u8; 40],
        learned: &'a AtomicBool,
        slow: &'a AtomicBool,
        func_key: c_int,
    },
    Function {
        name: &'a [u8],
        argv: &'a [Bytes],
        learned: &'a AtomicBool,
    },
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

/// What [`raw_eval`] got: the reply; or a reply that is not a plain value (a table, or the value
/// of an error), left in the VM's scratch slot for mlua to convert, with the RESP version the
/// script chose and whether it ran without error; or why the run failed outside its `xpcall`.
enum RawOut {
    Done(Result<Frame, Frame>),
    Stashed { resp: u8, ok: bool },
    Failed(mlua::Error),
}

/// What [`raw_entry`] runs: the script in registry slot `func_key` with these KEYS and ARGV.
struct RawRun<'a> {
    vm: &'a Vm,
    func_key: c_int,
    keys: &'a [Bytes],
    args: &'a [Bytes],
}

/// The C function an EVAL run is called through (one per VM, in its registry), under
/// `lua_pcall`: what the prelude's `internal.run` does for a function, in C (no Lua function, no
/// `xpcall` and four `rawset` calls from Lua per run): marks the run (`internal.call`, which the
/// API functions check), sets the refilled KEYS and ARGV tables on the real globals, calls the
/// script under the prelude's error handler, takes the marks back, and leaves the RESP version
/// the script chose (`redis.setresp`, recorded on the run's `Caller`), whether it ran without
/// error and its first result (or the handler's error value).
///
/// # Safety
/// Called by `raw_eval`'s `lua_pcall` only, with a light userdata pointing to a live [`RawRun`]
/// as its one argument. It owns nothing that needs dropping (an error longjmps to the pcall).
pub unsafe extern "C-unwind" fn raw_entry(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: the contract above; every push has its room from the check. Slots: 1 `internal`,
    // 2 the real globals, 3 the handler, 4-6 the names "KEYS", "ARGV" and "call" (from the
    // registry: no string interned per run), 7 the script, then its result. The registry
    // slots hold what `Vm::new` put there for the VM's life.
    unsafe {
        let p = &*(ffi::lua_touserdata(state, 1) as *const RawRun);
        ffi::lua_settop(state, 0);
        ffi::luaL_checkstack(state, 10, c"run".as_ptr());
        for key in [&p.vm.internal_key, &p.vm.globals_key, &p.vm.handler_key] {
            ffi::lua_rawgeti_(state, ffi::LUA_REGISTRYINDEX, key.id());
        }
        for key in &p.vm.name_keys {
            ffi::lua_rawgeti_(state, ffi::LUA_REGISTRYINDEX, key.id());
        }
        let (keys_name, argv_name, call_name) = (4, 5, 6);
        ffi::lua_pushvalue(state, call_name);
        ffi::lua_pushboolean(state, 1);
        ffi::lua_rawset(state, 1);
        ffi::lua_pushvalue(state, keys_name);
        push_reused_sequence(state, p.vm.seqs[0].id(), &p.vm.seq_lens[0], p.keys);
        ffi::lua_rawset(state, 2);
        ffi::lua_pushvalue(state, argv_name);
        push_reused_sequence(state, p.vm.seqs[1].id(), &p.vm.seq_lens[1], p.args);
        ffi::lua_rawset(state, 2);
        ffi::lua_rawgeti_(state, ffi::LUA_REGISTRYINDEX, p.func_key);
        // As `xpcall(f, handler)`: the first result, or the handler's value (an out-of-memory
        // error skips the handler, as in xpcall).
        let status = ffi::lua_pcall(state, 0, 1, 3);
        for (t, name) in [(2, keys_name), (2, argv_name), (1, call_name)] {
            ffi::lua_pushvalue(state, name);
            ffi::lua_pushnil(state);
            ffi::lua_rawset(state, t);
        }
        // The run's `Caller` (`set_resp`'s record): read here on its thread while the run is
        // in progress, as `set_resp` writes it (no other reference to it is in use meanwhile).
        let caller = CALLER.with(|c| c.get());
        let resp = if caller.is_null() { 2 } else { (*caller.cast::<Caller<'static, 'static>>()).resp };
        ffi::lua_pushnumber(state, ffi::lua_Number::from(resp));
        ffi::lua_pushboolean(state, c_int::from(status == 0));
        ffi::lua_pushvalue(state, 7);
        3
    }
}

/// Run an EVAL script on `vm` (its memory limit on meanwhile) straight through the C API: one
/// `lua_pcall` of the VM's entry function, no closure created, no mlua lock or value per run
/// (mlua's `exec_raw` creates two C closures per call, garbage for every EVALSHA). A plain reply
/// (a string, number, boolean or nil) is converted here; anything else goes through mlua.
///
/// # Safety
/// `vm.main` is `vm.lua`'s main state, used by this thread only; `func_key` is the registry slot
/// of one of its functions.
unsafe fn raw_eval(vm: &Vm, func_key: c_int, keys: &[Bytes], args: &[Bytes]) -> RawOut {
    let state = vm.main;
    let run = RawRun { vm, func_key, keys, args };
    // SAFETY: the contract above. The room for the entry function and its argument is made with
    // the memory limit off (a Lua error outside a pcall would abort); the pcall catches the rest.
    unsafe {
        let base = ffi::lua_gettop(state);
        if ffi::lua_checkstack(state, 4) == 0 {
            return RawOut::Failed(mlua::Error::StackError);
        }
        let status = vm.limited(|| {
            ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, vm.entry_key.id() as _);
            ffi::lua_pushlightuserdata(state, (&raw const run).cast_mut().cast());
            ffi::lua_pcall(state, 1, 3, 0)
        });
        let out = if status != 0 {
            let mut len = 0usize;
            let p = ffi::lua_tolstring(state, -1, &mut len);
            let msg = if p.is_null() {
                "unknown error".to_string()
            } else {
                String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), len)).into_owned()
            };
            RawOut::Failed(if status == ffi::LUA_ERRMEM {
                mlua::Error::MemoryError(msg)
            } else {
                mlua::Error::RuntimeError(msg)
            })
        } else {
            let resp = if ffi::lua_tonumber(state, base + 1) == 3.0 { 3 } else { 2 };
            let ok = ffi::lua_toboolean(state, base + 2) != 0;
            let v = base + 3;
            match ffi::lua_type(state, v) {
                ffi::LUA_TSTRING if ok => {
                    let mut len = 0usize;
                    let p = ffi::lua_tolstring(state, v, &mut len);
                    let bytes = std::slice::from_raw_parts(p.cast::<u8>(), len);
                    RawOut::Done(Ok(Frame::Bulk(Bytes::copy_from_slice(bytes))))
                }
                ffi::LUA_TNUMBER if ok => {
                    RawOut::Done(Ok(lua_to_frame(&Value::Number(ffi::lua_tonumber(state, v)), resp)))
                }
                ffi::LUA_TBOOLEAN if ok => {
                    RawOut::Done(Ok(lua_to_frame(&Value::Boolean(ffi::lua_toboolean(state, v) != 0), resp)))
                }
                ffi::LUA_TNIL if ok => RawOut::Done(Ok(lua_to_frame(&Value::Nil, resp))),
                _ => {
                    // The slot exists (it always holds a value): storing allocates nothing.
                    ffi::lua_pushvalue(state, v);
                    ffi::lua_rawseti(state, ffi::LUA_REGISTRYINDEX, vm.scratch_key.id() as _);
                    RawOut::Stashed { resp, ok }
                }
            }
        };
        ffi::lua_settop(state, base);
        out
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
    /// The protocol of `redis.call`'s replies: 2, or 3 after `redis.setresp(3)` (see [`set_resp`]).
    resp: u8,
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
    REGISTRY.with(|r| r.set(scripting));
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
        resp: 2,
        keys,
        undo: UNDO.with(|u| std::mem::take(&mut *u.borrow_mut())),
    };
    let lua = &vm.lua;
    // `redis.call` reaches `caller` through this thread's pointer while the script runs (see
    // `bridge`); nothing else touches `caller` until the pointer is cleared.
    CALLER.with(|c| c.set((&raw mut caller).cast()));
    let outcome = match target {
        // SAFETY: `vm.main` is `vm.lua`'s main state, used by this thread only (it has the VM);
        // `func_key` holds the compiled script in its registry.
        Target::Eval { func_key, .. } => match unsafe { raw_eval(vm, *func_key, keys, args) } {
            RawOut::Done(r) => Ok(r),
            RawOut::Stashed { resp, ok } => vm.lua.registry_value::<Value>(&vm.scratch_key).map(|v| {
                // SAFETY: as above; the scratch slot exists (it always holds a value): no allocation.
                unsafe {
                    ffi::lua_pushboolean(vm.main, 0);
                    ffi::lua_rawseti(vm.main, ffi::LUA_REGISTRYINDEX, vm.scratch_key.id() as _);
                }
                if ok { Ok(lua_to_frame(&v, resp)) } else { Err(error_reply(&v, &target.name())) }
            }),
            RawOut::Failed(e) => Err(e),
        },
        Target::Function { .. } => (|| -> mlua::Result<_> {
            // KEYS and ARGV are built straight on the stack (one table each, the strings pushed
            // from the request's buffers), then `internal.run` is called with them: no mlua value
            // per argument, no global set from Rust.
            // SAFETY: the closure only pushes onto the stack mlua hands it, inside mlua's
            // protected call (a Lua error there unwinds to it; the closure owns nothing that needs
            // dropping); `run` and `func` are the two values mlua pushed first; `lua_call` leaves
            // the three results `R` reads.
            let r = vm.limited(|| unsafe {
                lua.exec_raw::<(u8, bool, Value)>((&vm.run, func), |state| {
                    // A function may keep its arguments (its library's upvalues live on).
                    push_sequence(state, keys);
                    push_sequence(state, args);
                    mlua::ffi::lua_pushboolean(state, 0);
                    mlua::ffi::lua_call(state, 4, 3);
                })
            });
            let (resp, ok, v) = r?;
            Ok(if ok { Ok(lua_to_frame(&v, resp)) } else { Err(error_reply(&v, &target.name())) })
        })(),
    };
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
    REGISTRY.with(|r| r.set(std::ptr::null()));
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
    Scripting::recycle_run(state);
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

    /// `redis.call`/`redis.pcall` on `state`'s stack (the command's arguments), under the RESP
    /// version the script chose: leaves the reply as Lua sees it and whether it is an error as
    /// the stack.
    ///
    /// # Safety
    /// `state` is the running script's, its memory limit off.
    unsafe fn call(&mut self, state: *mut ffi::lua_State) -> Result<c_int, &'static str> {
        if self.state.stop.load(Ordering::SeqCst) != stop::NONE {
            return Err("script stopped");
        }
        let ran = self.state.started.elapsed();
        if ran >= SLOW_RUN {
            let ns = ran.as_nanos() as u64;
            if ns >= self.state.next_handoff_ns.load(Ordering::Relaxed) {
                // Again every millisecond: tokio takes a handoff back when the new thread did not
                // take the worker's queue in time (a loaded machine); once it has, a try costs a
                // yield.
                self.state.next_handoff_ns.store(ns + 1_000_000, Ordering::Relaxed);
                offload_slow(self.state);
            }
        }
        // SAFETY: the caller's contract; indexes up to `lua_gettop`.
        let outcome = unsafe {
            let top = ffi::lua_gettop(state);
            let resp = self.resp;
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
        let Some((spec, arity)) = lookup_cached(&argv[0], argv.get(1).map(|a| &a[..])) else {
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

/// Longest command name [`lookup_cached`] keeps.
const CACHED_NAME: usize = 24;

/// The commands scripts called last on this thread, by the name as the script spelled it, with
/// what `lookup_command` found for it: commands that are not containers only (a container's
/// answer depends on its subcommand too). Replaced in turn.
#[derive(Default)]
struct CommandCache {
    entries: [Option<CachedCommand>; 8],
    next: usize,
}

/// A name (its bytes and length) and what it resolved to (the command's row, its arity).
type CachedCommand = ([u8; CACHED_NAME], usize, &'static crate::cmd::CommandSpec, i32);

/// Redis's `lookupCommand` for `redis.call` (`slots::lookup_command`), answered from this
/// thread's [`CommandCache`] when the script called the same command name before: a byte compare
/// instead of a lowered copy, a hash and a walk of the subcommand tables per call.
fn lookup_cached(name: &[u8], sub: Option<&[u8]>) -> Option<(&'static crate::cmd::CommandSpec, i32)> {
    if name.len() > CACHED_NAME {
        return crate::cmd::slots::lookup_command(name, sub);
    }
    let hit = COMMANDS.with(|c| {
        c.borrow()
            .entries
            .iter()
            .flatten()
            .find(|(n, len, ..)| &n[..*len] == name)
            .map(|&(_, _, spec, arity)| (spec, arity))
    });
    if hit.is_some() {
        return hit;
    }
    let (spec, arity) = crate::cmd::slots::lookup_command(name, sub)?;
    let container = crate::cmd::slots::sub_tables()
        .iter()
        .any(|t| t.first().and_then(|s| s.name.split_once('|')).is_some_and(|(c, _)| c == spec.name));
    if !container {
        COMMANDS.with(|c| {
            let mut c = c.borrow_mut();
            let mut n = [0u8; CACHED_NAME];
            n[..name.len()].copy_from_slice(name);
            let i = c.next;
            c.entries[i] = Some((n, name.len(), spec, arity));
            c.next = (i + 1) % c.entries.len();
        });
    }
    Some((spec, arity))
}

/// The command's arguments, stack slots 1..=`top`, copied into this thread's scratch buffer
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
    if top < 1 {
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
        // The first arguments' strings as found by the first pass (`None`: a number), so that
        // the second reads them again only past these (the stack is not touched in between).
        let mut seen: [Option<&[u8]>; 8] = [None; 8];
        let mut total = 0;
        for i in 1..=top {
            match ffi::lua_type(state, i) {
                ffi::LUA_TSTRING => {
                    let a = arg(i);
                    if let Some(slot) = seen.get_mut(i as usize - 1) {
                        *slot = Some(a);
                    }
                    total += a.len();
                }
                ffi::LUA_TNUMBER => total += 32,
                _ => return Err("Lua redis lib command arguments must be strings or integers"),
            }
        }
        // Reclaims the buffer in place when the last call's arguments are all gone.
        buf.reserve(total);
        for i in 1..=top {
            let string = match seen.get(i as usize - 1) {
                Some(s) => *s,
                None if ffi::lua_type(state, i) == ffi::LUA_TSTRING => Some(arg(i)),
                None => None,
            };
            match string {
                Some(a) => buf.extend_from_slice(a),
                None => buf.extend_from_slice(number_arg(ffi::lua_tonumber(state, i)).as_bytes()),
            }
            argv.push(buf.split().freeze());
        }
    }
    Ok(())
}

std::thread_local! {
    /// The undo log, kept between runs (no allocation per run once it has grown).
    static UNDO: RefCell<UndoLog> = RefCell::new(UndoLog::default());
    /// The commands `redis.call` resolved last (see `lookup_cached`).
    static COMMANDS: RefCell<CommandCache> = RefCell::new(CommandCache::default());
    /// `redis.call`'s argument buffer and vector, kept between calls (see `stack_args`).
    static ARGS: RefCell<(bytes::BytesMut, Vec<Bytes>)> = RefCell::new((bytes::BytesMut::new(), Vec::new()));
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::{KeyList, lookup_cached};

    #[test]
    fn cached_command_lookups_answer_as_lookup_command_for_every_spelling_and_container() {
        use crate::cmd::slots::lookup_command;
        let lines: &[(&str, Option<&str>)] = &[
            ("incr", Some("k")),
            ("INCR", Some("k")),
            ("InCr", None),
            ("get", Some("k")),
            ("config", Some("get")),
            ("config", Some("nosuch")),
            ("CONFIG", Some("set")),
            ("client", Some("id")),
            ("client", Some("bogus")),
            ("nosuchcommand", None),
            ("a-command-name-longer-than-the-cache-keeps", Some("x")),
            ("pexpire", Some("k")),
            ("del", Some("k")),
            ("set", Some("k")),
            ("hset", Some("k")),
            ("lpush", Some("k")),
            ("zadd", Some("k")),
            ("sadd", Some("k")),
            ("xadd", Some("k")),
        ];
        // Twice over (the second time from the cache where it keeps them), more names than it
        // holds, so entries are replaced too.
        for _ in 0..3 {
            for (name, sub) in lines {
                let sub = sub.map(str::as_bytes);
                let want = lookup_command(name.as_bytes(), sub).map(|(s, a)| (s.name, a));
                let got = lookup_cached(name.as_bytes(), sub).map(|(s, a)| (s.name, a));
                assert_eq!(got, want, "{name} {sub:?}");
            }
        }
    }

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
