//! One Lua 5.1 VM with Redis's sandbox and `redis` API (see `prelude.lua`), its cache of compiled
//! EVAL scripts (by SHA) and of loaded function libraries, and the pool that reuses VMs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use mlua::{Function, Lua, LuaOptions, StdLib, Table, Value};

use super::Sha;

/// Lua memory one VM may use by default: past it an allocation fails and the script gets an error
/// (see [`super::Scripting::vm_memory_limit`]).
pub const VM_MEMORY_LIMIT: usize = 1 << 30;

/// The hasher of a VM's compiled scripts: a SHA-1's first 16 hex digits are already uniform (a
/// byte-by-byte hash of all 40 cost ~50 ns per EVALSHA, twice). Only scripts of the shared cache get
/// in (a SHA someone sends is looked up, never inserted unknown), so no chosen names can collide.
#[derive(Default, Clone, Copy)]
pub struct ShaHasher(u64);

impl std::hash::Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        for chunk in bytes.chunks(8).take(2) {
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(word)).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        }
    }

    fn write_usize(&mut self, _: usize) {
        // The length prefix of the array: always 40.
    }
}

/// [`ShaHasher`] for `HashMap::default`.
pub type ShaBuild = std::hash::BuildHasherDefault<ShaHasher>;

/// One scripting VM. Used by one script at a time (taken from the pool, given back).
pub struct Vm {
    pub lua: Lua,
    /// The real globals (behind the read-only proxy): KEYS and ARGV are set here.
    pub globals: Table,
    /// The prelude's private table: `call` (set per run), `run`, `error_table`, `redis`.
    pub internal: Table,
    pub run: Function,
    /// Compiled EVAL scripts by SHA with their cache entry, valid for `scripts_epoch`.
    pub scripts: HashMap<Sha, Compiled, ShaBuild>,
    pub scripts_epoch: u64,
    /// Loaded function callbacks by name, valid for `libs_gen`.
    pub functions: HashMap<Bytes, Function>,
    pub libs_gen: u64,
    /// This VM's Lua memory, published for INFO after each use.
    pub memory: Arc<AtomicUsize>,
    /// Runs so far (a GC step every 50).
    pub runs: std::cell::Cell<u64>,
    /// Lua memory this VM may use while Lua code runs.
    pub memory_limit: usize,
    /// EVAL's KEYS and ARGV tables, refilled for each run (`run::push_reused_sequence`), and the
    /// lengths they were last filled to.
    pub seqs: [mlua::RegistryKey; 2],
    pub seq_lens: [std::cell::Cell<usize>; 2],
    /// What an EVAL run calls into without going through mlua (`run::raw_eval`): the main
    /// state, and the registry slots of the C entry function (`run::raw_entry`) and of a
    /// scratch value (a reply that is not a plain value waits there for its conversion; it always
    /// holds a value, so that storing one allocates nothing).
    pub main: *mut mlua::ffi::lua_State,
    /// The prelude's private table, the real globals and its error handler: what an EVAL run's
    /// entry sets up around the script (`run::raw_entry`).
    pub internal_key: mlua::RegistryKey,
    pub globals_key: mlua::RegistryKey,
    pub handler_key: mlua::RegistryKey,
    pub entry_key: mlua::RegistryKey,
    /// The strings "KEYS", "ARGV" and "call" the entry sets and clears on each run, kept here so
    /// that it fetches them from the registry instead of interning them again (six string
    /// hashes and string table walks per run).
    pub name_keys: [mlua::RegistryKey; 3],
    pub scratch_key: mlua::RegistryKey,
}

// SAFETY: `main` is the state of `lua`, which is `Send` (mlua's `send` feature); a `Vm` is used by
// one thread at a time (taken from the pool and given back), and `main` is only used by the
// thread that has the `Vm`.
unsafe impl Send for Vm {}

/// One EVAL script compiled in a VM: its function, the registry slot that holds it (the raw run
/// path pushes it from there), and its cache entry.
pub struct Compiled {
    pub func: Function,
    pub key: mlua::RegistryKey,
    pub script: Arc<super::Script>,
}

fn lua_log(level: i64, msg: &str) {
    use crate::log::Level;
    let level = match level {
        0 => Level::Debug,
        1 => Level::Verbose,
        2 => Level::Notice,
        _ => Level::Warning,
    };
    crate::log::log(level, msg);
}

impl Vm {
    /// A new VM: the libraries Redis loads, the sandbox, the `redis` table, then sealed.
    pub fn new(memory_limit: usize) -> mlua::Result<Vm> {
        // SAFETY: `unsafe_new_with` only because the debug library is among those loaded; the
        // prelude keeps it in a private local for its error handler and removes the global
        // before any user code runs. No C module loader (package) is opened.
        let lua = unsafe {
            Lua::unsafe_new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG, LuaOptions::new())
        };
        let globals = lua.globals();
        let internal = lua.create_table()?;
        internal.set("version", crate::cmd::server::REDIS_VERSION)?;
        internal.set("version_num", super::REDIS_VERSION_NUM)?;
        let log = lua.create_function(|_, (level, msg): (i64, mlua::LuaString)| {
            lua_log(level, &msg.to_string_lossy());
            Ok(())
        })?;
        let sha1hex = lua.create_function(|lua, s: mlua::LuaString| {
            let hex = super::sha1::sha1_hex(&s.as_bytes());
            lua.create_string(hex)
        })?;
        // Whether a command line (its name and first argument) names a command: `lookupCommand`.
        let cmd_exists = lua.create_function(|_, (name, sub): (mlua::LuaString, Option<mlua::LuaString>)| {
            let sub = sub.as_ref().map(|s| s.as_bytes());
            Ok(crate::cmd::slots::lookup_command(&name.as_bytes(), sub.as_deref()).is_some())
        })?;
        lua.load(include_str!("prelude.lua")).set_name("=[redis]").call::<()>((
            internal.clone(),
            globals.clone(),
            log,
            sha1hex,
            cmd_exists,
        ))?;
        trampolines::install(&lua, &internal)?;
        // The libraries scripts expect (cjson, cmsgpack, bit, struct, and Redis's math.random /
        // randomseed: one process-wide generator, as Redis's) go on the real globals (`lua.globals()`
        // is still the real table here), before the seal turns the tables named cjson, cmsgpack,
        // bit, struct, math, string, table into read-only proxies.
        crate::lualib::load_all(&lua)?;
        let seal: Function = internal.get("seal")?;
        let proxy: Table = seal.call(())?;
        lua.set_globals(proxy)?;
        // The limit is on only while Lua code runs (`Vm::limit`): with a limit set, mlua protects
        // every value it creates from Rust (a C closure and a pcall each), which made the KEYS/ARGV
        // tables and the replies of `redis.call` the bulk of a small script's cost.
        super::run::install_hook(&lua, 100_000)?;
        let run = internal.get("run")?;
        let seqs = [lua.create_registry_value(lua.create_table()?)?, lua.create_registry_value(lua.create_table()?)?];
        let mut main = std::ptr::null_mut();
        // SAFETY: the closure only records the state it is given (mlua's main state here: no
        // callback or coroutine is running).
        unsafe { lua.exec_raw::<()>((), |state| main = state)? };
        let internal_key = lua.create_registry_value(&internal)?;
        let globals_key = lua.create_registry_value(&globals)?;
        let handler_key = lua.create_registry_value(internal.get::<Function>("handler")?)?;
        // SAFETY: `raw_entry` is a valid `lua_CFunction` (see its contract).
        let entry_key = lua.create_registry_value(unsafe { lua.create_c_function(super::run::raw_entry)? })?;
        let name_keys = [
            lua.create_registry_value(lua.create_string("KEYS")?)?,
            lua.create_registry_value(lua.create_string("ARGV")?)?,
            lua.create_registry_value(lua.create_string("call")?)?,
        ];
        let scratch_key = lua.create_registry_value(false)?;
        let memory = Arc::new(AtomicUsize::new(lua.used_memory()));
        Ok(Vm {
            lua,
            globals,
            internal,
            run,
            scripts: HashMap::default(),
            scripts_epoch: 0,
            functions: HashMap::new(),
            libs_gen: 0,
            memory,
            runs: std::cell::Cell::new(0),
            memory_limit,
            seqs,
            seq_lens: Default::default(),
            main,
            internal_key,
            globals_key,
            handler_key,
            entry_key,
            name_keys,
            scratch_key,
        })
    }

    /// Compile a script body (its shebang line already blanked) as Redis does: chunk `@user_script`.
    pub fn compile(&self, body: &[u8]) -> Result<Function, String> {
        self.limited(|| {
            self.lua
                .load(body)
                .set_name("@user_script")
                .set_mode(mlua::chunk::ChunkMode::Text)
                .into_function()
                .map_err(|e| compile_error_text(&e))
        })
    }

    /// `f`, compiled from `script`, kept in a registry slot too (see [`Compiled`]).
    pub fn compiled(&self, func: Function, script: Arc<super::Script>) -> mlua::Result<Compiled> {
        Ok(Compiled { key: self.lua.create_registry_value(&func)?, func, script })
    }

    /// Run `f` (Lua code) with this VM's memory limit on: past it an allocation fails and the
    /// script gets an error. Off again after, so that Rust builds values unprotected (see `new`).
    pub fn limited<R>(&self, f: impl FnOnce() -> R) -> R {
        set_limit(&self.lua, self.memory_limit);
        let r = f();
        set_limit(&self.lua, 0);
        r
    }

    /// Publish this VM's memory for INFO.
    pub fn note_memory(&self) {
        self.memory.store(self.lua.used_memory(), Ordering::Relaxed);
    }

    /// Make a Lua string.
    pub fn string(&self, b: &[u8]) -> mlua::Result<Value> {
        Ok(Value::String(self.lua.create_string(b)?))
    }
}

/// Set `lua`'s memory limit (0: none).
pub fn set_limit(lua: &Lua, limit: usize) {
    let _ = lua.set_memory_limit(limit);
}

/// The message of a compile error, as Lua prints it (`user_script:1: unexpected symbol near '+'`).
pub fn compile_error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::MemoryError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// C trampolines in front of the API functions written in Lua (`redis.setresp`, `rawset`, ...).
///
/// Why: `return redis.setresp(...)` is a tail call. Were `redis.setresp` a Lua function, Lua 5.1 would
/// replace the script's frame with it, and an error it raises could no longer name the script's
/// line (Redis's `@user_script:N`). In Redis these are C functions, which a tail call does not
/// replace; so are these: each calls its Lua implementation (kept in the registry) with its
/// arguments, errors passing through.
mod trampolines {
    use mlua::ffi;
    use std::os::raw::c_int;

    macro_rules! trampoline {
        ($name:ident, $key:literal) => {
            /// SAFETY (for the whole body): called by Lua as a C function with a valid state; it
            /// only moves values on its own stack frame, and `lua_call` may unwind or longjmp out
            /// of it: this frame owns nothing that needs dropping.
            unsafe extern "C-unwind" fn $name(state: *mut ffi::lua_State) -> c_int {
                // SAFETY: see above.
                unsafe {
                    let n = ffi::lua_gettop(state);
                    ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, concat!($key, "\0").as_ptr().cast());
                    ffi::lua_insert(state, 1);
                    ffi::lua_call(state, n, ffi::LUA_MULTRET);
                    ffi::lua_gettop(state)
                }
            }
        };
    }

    trampoline!(setresp, "flurrydb.setresp");
    trampoline!(log, "flurrydb.log");
    trampoline!(sha1hex, "flurrydb.sha1hex");
    trampoline!(set_repl, "flurrydb.set_repl");
    trampoline!(acl_check_cmd, "flurrydb.acl_check_cmd");
    trampoline!(rawset, "flurrydb.rawset");

    /// Replace the Lua implementations by their trampolines (before the globals are sealed).
    pub fn install(lua: &mlua::Lua, internal: &mlua::Table) -> mlua::Result<()> {
        let redis: mlua::Table = internal.get("redis")?;
        let globals = lua.globals();
        // redis.call and redis.pcall are C functions themselves (`run::redis_call`); the prelude's
        // `run` sets `internal.call` (any value) while a script runs, which the other API
        // functions check.
        // SAFETY: both are valid `lua_CFunction`s (see their contract).
        let call_fn = unsafe { lua.create_c_function(crate::script::run::redis_call)? };
        redis.set("call", &call_fn)?;
        internal.raw_set("bridge", call_fn)?;
        // SAFETY: as above.
        redis.set("pcall", unsafe { lua.create_c_function(crate::script::run::redis_pcall)? })?;
        // SAFETY: as above.
        internal.raw_set("set_resp", unsafe { lua.create_c_function(crate::script::run::set_resp)? })?;
        let api: [(&str, ffi::lua_CFunction); 5] = [
            ("setresp", setresp),
            ("log", log),
            ("sha1hex", sha1hex),
            ("set_repl", set_repl),
            ("acl_check_cmd", acl_check_cmd),
        ];
        for (name, f) in api {
            let lua_impl: mlua::Function = redis.get(name)?;
            lua.set_named_registry_value(&format!("flurrydb.{name}"), lua_impl)?;
            // SAFETY: `f` is one of the trampolines above, a valid `lua_CFunction`.
            redis.set(name, unsafe { lua.create_c_function(f)? })?;
        }
        let lua_rawset: mlua::Function = globals.get("rawset")?;
        lua.set_named_registry_value("flurrydb.rawset", lua_rawset)?;
        // SAFETY: as above.
        globals.set("rawset", unsafe { lua.create_c_function(rawset)? })?;
        Ok(())
    }
}
