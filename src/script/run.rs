//! One run of a script or function as one atomic unit: the stripes it holds (the locking rule is in
//! the module doc of `script`), the `redis.call` bridge into the command handlers, the instruction
//! hook (BUSY, SCRIPT KILL, SHUTDOWN), and its effects logged as one AOF block.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, MultiValue, Value, VmState};

use super::convert::{c_str, error_text, frame_to_lua, lua_to_frame, number_arg};
use super::{RunState, Scripting, Vm, flags, stop};
use crate::cmd::{Ctx, flag};
use crate::db::TxHold;
use crate::resp::Frame;
use crate::sync::fault::{self, Fault};

/// How many times a script that already wrote tries a stripe below those it holds before the
/// command fails (see the locking rule).
const EXTEND_TRIES: usize = if cfg!(feature = "loom") { 1 } else { 100_000 };

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

/// The Lua function behind `redis.call`/`redis.pcall`, built once per VM: it reaches the running
/// script's [`Caller`] through this thread's pointer, so that no function is created per run.
pub fn bridge(lua: &Lua, mv: MultiValue) -> mlua::Result<(Value, bool)> {
    // Taken out while in use: a reentrant call (none is possible: scripts cannot run scripts)
    // would find no caller rather than alias this one.
    let p = CALLER.with(|c| c.replace(std::ptr::null_mut()));
    if p.is_null() {
        return Err(mlua::Error::RuntimeError("redis.call outside of a script run".into()));
    }
    // SAFETY: `attempt` stores a pointer to its `Caller`, alive on its stack frame, on this thread
    // just before it calls into Lua and clears it right after, without touching the `Caller`
    // meanwhile; Lua calls this function only on that thread, inside that call. The lifetimes
    // are erased for the duration of this one call; nothing borrowed from it escapes `call`.
    let caller = unsafe { &mut *p.cast::<Caller<'static, 'static>>() };
    // Lua code is suspended while the command runs: its values are built unprotected (see
    // `Vm::limited`), and the limit is on again when the script goes on.
    super::vm::set_limit(lua, 0);
    let r = caller.call(lua, mv);
    super::vm::set_limit(lua, caller.memory_limit);
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
    vm: &mut Vm,
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
        // A script known to run long hands this worker's other connections to another thread.
        let (frame, rerun, ran_long) = crate::cmd::offload(if slow { usize::MAX } else { 0 }, attempt);
        if ran_long && let Target::Eval { slow, .. } = &target {
            slow.store(true, Ordering::Relaxed);
        }
        if !rerun {
            return frame;
        }
        all = true;
    }
}

/// The state `redis.call` works on during one run.
struct Caller<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
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
}

/// One try; returns the reply, whether to run again holding every stripe, and whether it ran long.
#[allow(clippy::too_many_arguments)]
fn attempt(
    ctx: &mut Ctx,
    scripting: &Scripting,
    vm: &mut Vm,
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
    let key_refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    // Inside an EXEC (MULTI ... EVAL ... EXEC) the transaction already holds every stripe.
    let hold = (!ks.in_exec()).then(|| {
        ks.hold(if all {
            None
        } else if fault::on(Fault::ScriptWithoutStripes) {
            Some(&[])
        } else {
            Some(&key_refs)
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
        hold,
        state: &state,
        learned: target.learned(),
        read_only: ro || (!compat && script_flags & flags::NO_WRITES != 0),
        allow_oom: !compat && script_flags & flags::ALLOW_OOM != 0,
        dirty: false,
        memory_limit: vm.memory_limit,
        keys,
    };
    let lua = &vm.lua;
    let is_eval = matches!(target, Target::Eval { .. });
    // `redis.call` reaches `caller` through this thread's pointer while the script runs (see
    // `bridge`); nothing else touches `caller` until the pointer is cleared.
    CALLER.with(|c| c.set((&raw mut caller).cast()));
    let outcome = (|| -> mlua::Result<_> {
        vm.internal.raw_set("call", vm.call_fn.clone())?;
        let keys_t =
            lua.create_sequence_from(keys.iter().map(|k| lua.create_string(k)).collect::<mlua::Result<Vec<_>>>()?)?;
        let args_t =
            lua.create_sequence_from(args.iter().map(|a| lua.create_string(a)).collect::<mlua::Result<Vec<_>>>()?)?;
        let r = if is_eval {
            vm.globals.raw_set("KEYS", keys_t)?;
            vm.globals.raw_set("ARGV", args_t)?;
            let r = vm.limited(|| vm.run.call::<(u8, bool, Value)>((func, Value::Nil, Value::Nil)));
            vm.globals.raw_set("KEYS", Value::Nil)?;
            vm.globals.raw_set("ARGV", Value::Nil)?;
            r
        } else {
            vm.limited(|| vm.run.call::<(u8, bool, Value)>((func, keys_t, args_t)))
        };
        vm.internal.raw_set("call", Value::Nil)?;
        let (resp, ok, v) = r?;
        Ok(if ok { Ok(lua_to_frame(&v, resp)) } else { Err(error_reply(&v, &target.name())) })
    })();
    CALLER.with(|c| c.set(std::ptr::null_mut()));
    let _ = vm.internal.raw_set("call", Value::Nil);
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
    vm.runs = vm.runs.wrapping_add(1);
    if vm.runs.is_multiple_of(50) {
        let _ = lua.gc_step();
    }
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

impl Caller<'_, '_> {
    fn fail(lua: &Lua, msg: &str, dashed: bool) -> mlua::Result<(Value, bool)> {
        let t = lua.create_table()?;
        t.raw_set("err", lua.create_string(error_text(msg.as_bytes(), dashed))?)?;
        Ok((Value::Table(t), true))
    }

    /// `redis.call`/`redis.pcall`: the arguments after the script's RESP version; returns the
    /// reply as Lua sees it and whether it is an error.
    fn call(&mut self, lua: &Lua, mv: MultiValue) -> mlua::Result<(Value, bool)> {
        if self.state.stop.load(Ordering::SeqCst) != stop::NONE {
            return Err(mlua::Error::RuntimeError("script stopped".into()));
        }
        let mut it = mv.into_iter();
        let resp = match it.next() {
            Some(Value::Number(3.0)) => 3,
            Some(Value::Integer(3)) => 3,
            _ => 2,
        };
        let rest: Vec<Value> = it.collect();
        if rest.is_empty() {
            return Self::fail(lua, "Please specify at least one argument for this redis lib call", false);
        }
        let mut argv = Vec::with_capacity(rest.len());
        for v in &rest {
            match v {
                Value::String(s) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
                Value::Number(x) => argv.push(Bytes::from(number_arg(*x))),
                Value::Integer(i) => argv.push(Bytes::from(number_arg(*i as f64))),
                _ => return Self::fail(lua, "Lua redis lib command arguments must be strings or integers", false),
            }
        }
        // As Redis's `lookupCommand`: a container's unknown subcommand is an unknown command, and
        // a known one's arity is its own.
        let Some((spec, arity)) = crate::cmd::slots::lookup_command(&argv[0], argv.get(1).map(|a| &a[..])) else {
            return self.rejected(lua, "Unknown Redis command called from script");
        };
        let argc = argv.len();
        if if arity >= 0 { argc != arity as usize } else { argc < arity.unsigned_abs() as usize } {
            return self.rejected(lua, "Wrong number of args calling Redis command from script");
        }
        if spec.is(flag::NOSCRIPT) || noscript_subcommand(&argv) {
            return self.rejected(lua, "This Redis command is not allowed from script");
        }
        let write = spec.is(flag::WRITE);
        if self.read_only && (write || spec.is(flag::MAY_REPLICATE)) {
            return self.rejected(lua, "Write commands are not allowed from read-only scripts.");
        }
        if write && !self.dirty {
            if self.ctx.now_ms != 0
                && let Some(aof) = self.ctx.shared.ks.aof()
                && let Some(reason) = aof.write_error()
            {
                let text = crate::error::Error::Misconf(reason).to_frame();
                if let Frame::Error(t) = text {
                    return self.rejected_dashed(lua, &String::from_utf8_lossy(&t));
                }
            }
            if !self.allow_oom && self.oom_at_start && spec.is(flag::DENYOOM) {
                return self.rejected_dashed(lua, "OOM command not allowed when used memory > 'maxmemory'.");
            }
        }
        if write {
            self.dirty = true;
            self.state.wrote.store(true, Ordering::SeqCst);
        }
        if let Some(hold) = self.hold.as_mut() {
            let every = crate::cmd::tx::needs_every_stripe(spec);
            let keys: Vec<&[u8]> =
                if every { Vec::new() } else { spec.key_indexes(argv.len()).map(|i| &argv[i][..]).collect() };
            let need = if every { None } else { Some(&keys[..]) };
            if (every || !keys.is_empty()) && !hold.covers(need) {
                // An undeclared key: hold every stripe on the next runs; take the missing ones now.
                self.learned.store(true, Ordering::Relaxed);
                let wrote = hold.wrote();
                if hold.extend(need, if wrote { EXTEND_TRIES } else { 1 }).is_err() {
                    if !wrote {
                        self.state.stop.store(stop::RERUN, Ordering::SeqCst);
                        return Err(mlua::Error::RuntimeError("script restarts holding every stripe".into()));
                    }
                    return self.rejected(
                        lua,
                        "Script attempted to access a key it did not declare while another client held it; \
                         declare every key the script uses in KEYS",
                    );
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
        let frame = crate::cmd::call(self.ctx, spec, &argv);
        IN_CALL.with(|c| c.set(false));
        self.ctx.client.resp = saved_resp;
        self.ctx.client.close_after_reply = false;
        self.ctx.client.skip_reply = false;
        let failed = matches!(frame, Frame::Error(_));
        if let Frame::Error(text) = &frame {
            self.ctx.shared.stats.record_error(text);
        }
        Ok((frame_to_lua(lua, &frame, resp)?, failed))
    }

    /// A command refused by the script checks (`scriptCall`'s errors).
    fn rejected(&self, lua: &Lua, msg: &str) -> mlua::Result<(Value, bool)> {
        let (v, _) = Self::fail(lua, msg, false)?;
        if let Value::Table(t) = &v {
            t.raw_set("ignore_error_stats_update", true)?;
        }
        Ok((v, true))
    }

    /// As [`rejected`](Self::rejected), for a text that carries its own code (`OOM ...`).
    fn rejected_dashed(&self, lua: &Lua, text: &str) -> mlua::Result<(Value, bool)> {
        let (v, _) = Self::fail(lua, text, true)?;
        if let Value::Table(t) = &v {
            t.raw_set("ignore_error_stats_update", true)?;
        }
        Ok((v, true))
    }
}
