//! The Lua libraries that Redis 7.0.15 embeds in its scripting engine, written in Rust against
//! mlua so scripts see exactly what they see under redis-server:
//!
//! - [`cjson`]: lua-cjson 2.1.0 as patched by Redis (`cjson.encode`, `cjson.decode`, the
//!   configuration functions, `cjson.null`, `cjson.new`).
//! - [`cmsgpack`]: Redis's lua-cmsgpack 0.4.0 (`pack`, `unpack`, `unpack_one`, `unpack_limit`).
//! - [`bit`]: LuaBitOp 1.0.2 on Lua 5.1 doubles.
//! - [`lstruct`]: Roberto Ierusalimschy's `struct` library (`pack`, `unpack`, `size`).
//! - [`random`]: Redis's `math.random` / `math.randomseed` on its own `rand48` generator.
//!
//! [`load_all`] registers them in a Lua state. Error texts, argument checks and stack limits follow
//! the C originals (MIT licensed; we studied them and wrote our own code). Errors are raised as Lua
//! string errors exactly as `luaL_error` / `luaL_argerror` raise them (with the caller's
//! `chunk:line:` prefix and the function name as the caller spelled it), so `pcall` in a script
//! gets the same string that Redis gives: see [`Raise`] and the one C-ABI trampoline below
//! (`bit`, called in hot loops, is plain C functions on the Lua C API instead).
//!
//! Unsafe code is confined to: that trampoline, `bit`'s C functions, and short raw-stack
//! sections that walk table keys with `lua_next` without an mlua reference per entry
//! ([`walk_keys`], cjson's object walk). Nested data is walked with explicit stacks
//! ([`Nesting`]) and the Lua C stack limit (`LUAI_MAXCSTACK`) is emulated, so deep or cyclic
//! tables and hostile input give Redis's errors without exhausting the thread's stack.
//! tests.rs replays replies recorded from redis-server 7.0.15.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod lstruct;
pub mod random;

#[cfg(test)]
mod tests;

use mlua::{Function, Lua, MultiValue, Table, Value};
use std::ffi::c_void;
use std::os::raw::c_int;

/// Registers the globals `cjson`, `cmsgpack`, `bit` and `struct`, and replaces `math.random` and
/// `math.randomseed` with Redis's.
///
/// Call it as Redis's `luaRegisterRedisAPI` does: after opening the standard libraries Redis
/// opens (base, table, string, math, debug: `math` must exist) and before the sandbox (the
/// allow-list of globals, `Script attempted to create global variable`, read-only tables), which
/// in Redis 7.0.15 also makes these library tables read-only (`cjson.encode = nil` fails with
/// `Attempt to modify a readonly table`). One call per Lua state; each state's `cjson` keeps its
/// own settings for the state's life (as a Redis VM until SCRIPT FLUSH), while the random
/// generator is one per process, as in Redis. See [`random::set_outside_invocation`] for where
/// Redis refuses `math.random`.
pub fn load_all(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    g.set("cjson", cjson::create(lua)?)?;
    g.set("struct", lstruct::create(lua)?)?;
    g.set("cmsgpack", cmsgpack::create(lua)?)?;
    g.set("bit", bit::create(lua)?)?;
    random::install(lua)?;
    Ok(())
}

/// An error to raise in Lua, as the C libraries raise them.
#[derive(Debug, Clone, PartialEq)]
pub enum Raise {
    /// `luaL_error(L, msg)`: the caller's position (`user_script:1: `) is prepended.
    Error(Vec<u8>),
    /// `luaL_argerror(L, narg, extramsg)`: `bad argument #narg to 'name' (extramsg)`.
    Arg(i32, Vec<u8>),
    /// `lua_error` with this string as is (e.g. the VM's own `table index is nil`).
    Raw(Vec<u8>),
}

impl Raise {
    pub fn error(msg: impl Into<Vec<u8>>) -> Raise {
        Raise::Error(msg.into())
    }
    pub fn arg(narg: i32, msg: impl Into<Vec<u8>>) -> Raise {
        Raise::Arg(narg, msg.into())
    }
    /// `luaL_typerror`: `bad argument #narg to 'f' (tname expected, got <type>)`.
    pub fn type_error(narg: i32, tname: &str, got: Option<&Value>) -> Raise {
        Raise::arg(narg, format!("{tname} expected, got {}", type_name(got)))
    }
    /// `luaL_checkstack` failing: `stack overflow (mes)`.
    pub fn stack_overflow(mes: &str) -> Raise {
        Raise::error(format!("stack overflow ({mes})"))
    }
}

impl From<mlua::Error> for Raise {
    fn from(e: mlua::Error) -> Raise {
        // Only memory errors reach here in practice (the libraries never call back into
        // scripts): raise them with Lua's own text.
        match e {
            mlua::Error::MemoryError(_) => Raise::Raw(b"not enough memory".to_vec()),
            mlua::Error::RuntimeError(m) => Raise::Raw(m.into_bytes()),
            e => Raise::Raw(e.to_string().into_bytes()),
        }
    }
}

pub type LResult<T> = std::result::Result<T, Raise>;

/// `LUAI_MAXCSTACK` of Redis's Lua: the most stack slots a C function may use (`lua_checkstack`).
pub const MAX_C_STACK: usize = 8000;

/// `lua_checkstack(L, n)` with `top` slots in use.
pub fn stack_ok(top: usize, n: usize) -> bool {
    top + n <= MAX_C_STACK
}

/// `luaL_typename`: the type name Lua prints in errors (`no value` for a missing argument).
pub fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::LightUserData(_)) | Some(Value::UserData(_)) | Some(Value::Error(_)) => "userdata",
        Some(Value::Integer(_)) | Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        Some(_) => "userdata",
    }
}

/// The arguments of a library call, with the Lua C API's checks (1-based indexes).
pub struct Args<'a> {
    pub lua: &'a Lua,
    pub v: Vec<Value>,
}

impl<'a> Args<'a> {
    pub fn new(lua: &'a Lua, args: MultiValue) -> Args<'a> {
        Args { lua, v: args.into_vec() }
    }
    /// `lua_gettop`.
    pub fn top(&self) -> usize {
        self.v.len()
    }
    pub fn get(&self, i: usize) -> Option<&Value> {
        self.v.get(i.wrapping_sub(1))
    }
    /// `lua_isnoneornil`.
    pub fn is_none_or_nil(&self, i: usize) -> bool {
        matches!(self.get(i), None | Some(Value::Nil))
    }
    /// `lua_tonumber` (`None` where Lua gives 0 and `lua_isnumber` is false).
    pub fn to_number(&self, i: usize) -> Option<f64> {
        self.get(i).and_then(|v| to_number(self.lua, v))
    }
    /// `luaL_checknumber`.
    pub fn check_number(&self, i: usize) -> LResult<f64> {
        self.to_number(i).ok_or_else(|| Raise::type_error(i as i32, "number", self.get(i)))
    }
    /// `luaL_checkinteger`: the number truncated as the C cast does.
    pub fn check_integer(&self, i: usize) -> LResult<i64> {
        self.check_number(i).map(c_double_to_i64)
    }
    /// `luaL_checkint`.
    pub fn check_int(&self, i: usize) -> LResult<i32> {
        self.check_integer(i).map(|n| n as i32)
    }
    /// `luaL_optinteger`.
    pub fn opt_integer(&self, i: usize, def: i64) -> LResult<i64> {
        if self.is_none_or_nil(i) { Ok(def) } else { self.check_integer(i) }
    }
    /// `luaL_checklstring` (numbers are converted as Lua does).
    pub fn check_bytes(&self, i: usize) -> LResult<Vec<u8>> {
        self.get(i)
            .and_then(|v| to_bytes(self.lua, v))
            .ok_or_else(|| Raise::type_error(i as i32, "string", self.get(i)))
    }
}

/// `lua_tonumber` semantics: numbers, and strings Lua converts.
pub fn to_number(lua: &Lua, v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(i) => Some(*i as f64),
        Value::String(_) => lua.coerce_number(v.clone()).ok().flatten(),
        _ => None,
    }
}

/// A number value as a double (0 for anything else).
pub fn to_number_value(v: &Value) -> f64 {
    match v {
        Value::Number(n) => *n,
        Value::Integer(i) => *i as f64,
        _ => 0.0,
    }
}

/// `lua_tolstring` semantics: strings, and numbers formatted `%.14g`.
pub fn to_bytes(lua: &Lua, v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Number(_) | Value::Integer(_) => {
            lua.coerce_string(v.clone()).ok().flatten().map(|s| s.as_bytes().to_vec())
        }
        _ => None,
    }
}

/// A double converted to a C integer type as x86-64 does (`cvttsd2si`): truncation, and the
/// "integer indefinite" value (the minimum) for NaN and out-of-range values.
pub fn c_double_to_i64(d: f64) -> i64 {
    if (-9223372036854775808.0..9223372036854775808.0).contains(&d) { d as i64 } else { i64::MIN }
}

/// `(int)d` on x86-64.
pub fn c_double_to_i32(d: f64) -> i32 {
    if d.is_nan() || d >= 2147483648.0 || d <= -2147483649.0 { i32::MIN } else { d as i32 }
}

/// `(unsigned long)d` on x86-64 (gcc: below 2^63 a signed conversion, else subtract 2^63 first).
pub fn c_double_to_u64(d: f64) -> u64 {
    // NaN compares unordered and takes the signed conversion, as gcc's code does.
    if d.is_nan() || d < 9223372036854775808.0 {
        c_double_to_i64(d) as u64
    } else {
        (c_double_to_i64(d - 9223372036854775808.0) as u64) ^ (1u64 << 63)
    }
}

/// printf's `%.{prec}g` (prec 1..=17), as glibc prints it: shortest of `%e`/`%f` by the C rules,
/// trailing zeros removed.
pub fn fmt_g(x: f64, prec: usize) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf".into() } else { "inf".into() };
    }
    let p = prec.max(1);
    // Integers with at most `p` digits print as themselves.
    if x == x.trunc()
        && x.abs()
            < [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17]
                [p.min(17)]
    {
        if x == 0.0 {
            return if x.is_sign_negative() { "-0".into() } else { "0".into() };
        }
        return (x as i64).to_string();
    }
    let e = format!("{:.*e}", p - 1, x);
    let (mant, exp) = e.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    if exp < -4 || exp >= p as i32 {
        let mant = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let f = format!("{:.*}", (p as i32 - 1 - exp) as usize, x);
        strip_zeros(&f).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

/// The address whose light userdata marks "raise this error" in a callback's results.
static RAISE_MARK: u8 = 0;

fn raise_mark() -> *mut c_void {
    &RAISE_MARK as *const u8 as *mut c_void
}

/// A library function: Rust code that reads its arguments and returns its results or a [`Raise`].
pub trait LibFn: Fn(&Lua, MultiValue) -> LResult<MultiValue> + Send + 'static {}
impl<F: Fn(&Lua, MultiValue) -> LResult<MultiValue> + Send + 'static> LibFn for F {}

/// Makes a Lua function of `f` whose errors are raised as Lua strings, as the C function would
/// raise them (see [`Raise`]).
pub fn lib_function(lua: &Lua, f: impl LibFn) -> mlua::Result<Function> {
    let inner = lua.create_function(move |lua, args: MultiValue| match f(lua, args) {
        Ok(v) => Ok(v),
        Err(r) => {
            let mark = Value::LightUserData(mlua::LightUserData(raise_mark()));
            let (kind, msg, narg) = match r {
                Raise::Error(m) => (1, m, 0),
                Raise::Arg(n, m) => (2, m, n),
                Raise::Raw(m) => (3, m, 0),
            };
            Ok(MultiValue::from_vec(vec![
                mark,
                Value::Integer(kind),
                Value::String(lua.create_string(msg)?),
                Value::Integer(narg as i64),
            ]))
        }
    })?;
    // SAFETY: `raise_trampoline` is a valid lua_CFunction that only uses the Lua C API on its own
    // stack frame; exec_raw pushed `inner` and we consume it as the closure's one upvalue, leaving
    // exactly the closure on the stack as the result.
    unsafe {
        lua.exec_raw::<Function>(inner, |state| {
            mlua::ffi::lua_pushcclosure(state, raise_trampoline, 1);
        })
    }
}

/// The C function scripts call: it calls the Rust callback (its upvalue) and, if that asked for an
/// error, raises it with `luaL_error`'s position prefix or `luaL_argerror`'s message, from this C
/// frame, so the function name and caller position are the ones Lua itself would report.
unsafe extern "C-unwind" fn raise_trampoline(l: *mut mlua::ffi::lua_State) -> c_int {
    use mlua::ffi;
    // SAFETY: called by Lua as a C closure with one upvalue (set in `lib_function`); every call
    // below is on this frame's own stack slots. `lua_error`/`luaL_argerror` longjmp out of this
    // frame, which holds no Rust values needing drop.
    unsafe {
        let nargs = ffi::lua_gettop(l);
        // A C function starts with LUA_MINSTACK free slots: room for the callee.
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_insert(l, 1);
        ffi::lua_call(l, nargs, ffi::LUA_MULTRET);
        let nres = ffi::lua_gettop(l);
        if nres == 4 && ffi::lua_type(l, 1) == ffi::LUA_TLIGHTUSERDATA && ffi::lua_touserdata(l, 1) == raise_mark() {
            match ffi::lua_tointeger(l, 2) {
                1 => {
                    ffi::luaL_where(l, 1);
                    ffi::lua_pushvalue(l, 3);
                    ffi::lua_concat(l, 2);
                    ffi::lua_error(l);
                }
                4 => {
                    // Many results, packed in a table (see `many`): unpack them here, on the
                    // stack Lua returns from.
                    let n = ffi::lua_tointeger(l, 4) as c_int;
                    ffi::lua_settop(l, 3);
                    ffi::lua_replace(l, 1);
                    ffi::lua_settop(l, 1);
                    if ffi::lua_checkstack(l, n) == 0 {
                        ffi::lua_pushstring(l, c"stack overflow".as_ptr());
                        ffi::lua_error(l);
                    }
                    for i in 1..=n {
                        ffi::lua_rawgeti(l, 1, i as _);
                    }
                    n
                }
                2 => {
                    let narg = ffi::lua_tointeger(l, 4) as c_int;
                    ffi::luaL_argerror(l, narg, ffi::lua_tostring(l, 3));
                    0
                }
                _ => {
                    ffi::lua_pushvalue(l, 3);
                    ffi::lua_error(l);
                }
            }
        } else {
            nres
        }
    }
}

/// Registers `f` as `t[name]`.
pub fn set_fn(lua: &Lua, t: &Table, name: &str, f: impl LibFn) -> mlua::Result<()> {
    t.set(name, lib_function(lua, f)?)
}

/// A stack of (table, key) pairs for the iterative encoders and decoders. The first
/// [`Nesting::INLINE`] levels are held directly; deeper ones are kept inside one Lua table, so
/// hostile nesting holds a bounded number of mlua references (mlua keeps its references on an
/// auxiliary Lua stack, itself limited to `LUAI_MAXCSTACK` slots).
pub struct Nesting<'a> {
    lua: &'a Lua,
    inline: Vec<(Table, Value)>,
    /// Levels beyond `INLINE`: `anchor[2k-1]` is the table of level `INLINE + k`, `anchor[2k]`
    /// its key; `deep_top` holds the innermost of them.
    anchor: Option<Table>,
    deep: usize,
    deep_top: Option<(Table, Value)>,
}

impl<'a> Nesting<'a> {
    pub const INLINE: usize = 64;

    pub fn new(lua: &'a Lua) -> mlua::Result<Nesting<'a>> {
        Ok(Nesting { lua, inline: Vec::new(), anchor: None, deep: 0, deep_top: None })
    }
    /// The innermost table and its current key.
    pub fn top(&self) -> Option<&(Table, Value)> {
        if self.deep > 0 { self.deep_top.as_ref() } else { self.inline.last() }
    }
    fn anchor(&mut self) -> mlua::Result<&Table> {
        if self.anchor.is_none() {
            self.anchor = Some(self.lua.create_table()?);
        }
        Ok(self.anchor.as_ref().expect("just created"))
    }
    pub fn push(&mut self, t: Table, key: Value) -> mlua::Result<()> {
        if self.inline.len() < Self::INLINE {
            self.inline.push((t, key));
            return Ok(());
        }
        let k = self.deep + 1;
        let anchor = self.anchor()?;
        anchor.raw_set(2 * k - 1, &t)?;
        anchor.raw_set(2 * k, &key)?;
        self.deep = k;
        self.deep_top = Some((t, key));
        Ok(())
    }
    /// Replaces the innermost table's key.
    pub fn set_key(&mut self, key: Value) -> mlua::Result<()> {
        if self.deep == 0 {
            if let Some(top) = self.inline.last_mut() {
                top.1 = key;
            }
            return Ok(());
        }
        let k = self.deep;
        self.anchor()?.raw_set(2 * k, &key)?;
        if let Some(top) = self.deep_top.as_mut() {
            top.1 = key;
        }
        Ok(())
    }
    /// Removes the innermost table, returning it.
    pub fn pop(&mut self) -> mlua::Result<Option<Table>> {
        if self.deep == 0 {
            return Ok(self.inline.pop().map(|(t, _)| t));
        }
        let Some((t, _)) = self.deep_top.take() else { return Ok(None) };
        let k = self.deep;
        let anchor = self.anchor()?.clone();
        anchor.raw_set(2 * k - 1, Value::Nil)?;
        anchor.raw_set(2 * k, Value::Nil)?;
        self.deep -= 1;
        if self.deep > 0 {
            let t: Table = anchor.raw_get(2 * self.deep - 1)?;
            let key: Value = anchor.raw_get(2 * self.deep)?;
            self.deep_top = Some((t, key));
        }
        Ok(Some(t))
    }
}

/// Walks the keys of `t` on the Lua stack (no mlua reference per entry), calling `f` with each
/// key's Lua type and its number value (0 for non-numbers); stops early when `f` returns false.
pub fn walk_keys(lua: &Lua, t: &Table, mut f: impl FnMut(c_int, f64) -> bool) -> LResult<()> {
    // SAFETY: we check room for the 3 slots we use; lua_next over keys it returned itself cannot
    // raise, and nothing in the loop allocates (so no collection changes the table; `f` only
    // sees numbers); every path pops what it pushed.
    lua.exec_raw_lua(|raw| unsafe {
        use mlua::ffi;
        let state = raw.state();
        if ffi::lua_checkstack(state, 3) == 0 {
            return Err(Raise::stack_overflow("in function next"));
        }
        raw.push_value(&Value::Table(t.clone()))?;
        ffi::lua_pushnil(state);
        while ffi::lua_next(state, -2) != 0 {
            let go = f(ffi::lua_type(state, -2), ffi::lua_tonumber(state, -2));
            ffi::lua_pop(state, 1);
            if !go {
                ffi::lua_pop(state, 2);
                return Ok(());
            }
        }
        ffi::lua_pop(state, 1);
        Ok(())
    })
}

/// Results helper: the `n` values `t[1..=n]` (nils included). A library that returns many values
/// (up to `LUAI_MAXCSTACK`) builds them in a table: mlua's own stacks could not hold them all
/// at once, the C function's stack can.
pub fn many(t: Table, n: usize) -> LResult<MultiValue> {
    let mark = Value::LightUserData(mlua::LightUserData(raise_mark()));
    Ok(MultiValue::from_vec(vec![mark, Value::Integer(4), Value::Table(t), Value::Integer(n as i64)]))
}

/// Results helper: one value.
pub fn one(v: Value) -> LResult<MultiValue> {
    Ok(MultiValue::from_vec(vec![v]))
}
