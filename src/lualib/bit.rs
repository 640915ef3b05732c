//! LuaBitOp 1.0.2 (Mike Pall, MIT) as Redis embeds it: 32-bit operations on Lua 5.1 doubles.
//!
//! An argument is made a 32-bit value the way LuaBitOp does it: add 2^52+2^51 to the double and
//! keep the low 32 bits of its representation (so 2^32+1 is 1, 1.5 rounds to even, -1 is
//! 0xffffffff). Results are signed 32-bit numbers.
//!
//! Scripts call these in hot loops (hashes written in Lua), so unlike the other libraries they
//! are plain C functions on the Lua C API, as in Redis: no allocation, no Rust value alive when
//! `luaL_typerror` raises (it longjmps out of the function).

use mlua::ffi::{self, lua_State};
use mlua::{Lua, Table};
use std::os::raw::c_int;

/// The LuaBitOp normalisation of a double to 32 bits.
pub fn tobit(n: f64) -> u32 {
    (n + 6755399441055744.0).to_bits() as u32
}

/// `barg`: argument `i` as 32 bits (strings convert as `lua_tonumber`; anything else is a type
/// error unless it converts to 0, as the original's check does).
///
/// # Safety
/// `l` is the state of a running C function.
unsafe fn barg(l: *mut lua_State, i: c_int) -> u32 {
    // SAFETY: reading argument slots of the running function; luaL_typerror raises a Lua error
    // from this frame, which holds only plain integers.
    unsafe {
        let b = tobit(ffi::lua_tonumber(l, i));
        if b == 0 && ffi::lua_isnumber(l, i) == 0 {
            ffi::luaL_typerror(l, i, c"number".as_ptr());
        }
        b
    }
}

/// Pushes a result as LuaBitOp does (a signed 32-bit number).
unsafe fn ret(l: *mut lua_State, b: u32) -> c_int {
    // SAFETY: a C function has LUA_MINSTACK free slots for its results.
    unsafe { ffi::lua_pushnumber(l, b as i32 as f64) };
    1
}

macro_rules! unary {
    ($name:ident, |$b:ident| $e:expr) => {
        unsafe extern "C-unwind" fn $name(l: *mut lua_State) -> c_int {
            // SAFETY: called by Lua as a C function (see `barg`, `ret`).
            unsafe {
                let $b = barg(l, 1);
                ret(l, $e)
            }
        }
    };
}

macro_rules! fold {
    ($name:ident, $op:tt) => {
        unsafe extern "C-unwind" fn $name(l: *mut lua_State) -> c_int {
            // SAFETY: called by Lua as a C function (see `barg`, `ret`).
            unsafe {
                let mut b = barg(l, 1);
                let mut i = ffi::lua_gettop(l);
                while i > 1 {
                    b $op barg(l, i);
                    i -= 1;
                }
                ret(l, b)
            }
        }
    };
}

macro_rules! shift {
    ($name:ident, |$b:ident, $n:ident| $e:expr) => {
        unsafe extern "C-unwind" fn $name(l: *mut lua_State) -> c_int {
            // SAFETY: called by Lua as a C function (see `barg`, `ret`).
            unsafe {
                let $b = barg(l, 1);
                let $n = barg(l, 2) & 31;
                ret(l, $e)
            }
        }
    };
}

unary!(bit_tobit, |b| b);
unary!(bit_bnot, |b| !b);
unary!(bit_bswap, |b| b.swap_bytes());
fold!(bit_band, &=);
fold!(bit_bor, |=);
fold!(bit_bxor, ^=);
shift!(bit_lshift, |b, n| b << n);
shift!(bit_rshift, |b, n| b >> n);
shift!(bit_arshift, |b, n| ((b as i32) >> n) as u32);
shift!(bit_rol, |b, n| b.rotate_left(n));
shift!(bit_ror, |b, n| b.rotate_right(n));

unsafe extern "C-unwind" fn bit_tohex(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua as a C function (see `barg`); the digits live in a local array.
    unsafe {
        let mut b = barg(l, 1);
        let n = if ffi::lua_isnone(l, 2) != 0 { 8 } else { barg(l, 2) as i32 };
        let digits: &[u8; 16] = if n < 0 { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
        // |n| at most 8 (Redis's build also gives 8 upper-case digits for -2^31).
        let n = n.unsigned_abs().min(8) as usize;
        let mut buf = [0u8; 8];
        for slot in buf[..n].iter_mut().rev() {
            *slot = digits[(b & 15) as usize];
            b >>= 4;
        }
        ffi::lua_pushlstring(l, buf.as_ptr().cast(), n);
        1
    }
}

/// The `bit` table.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let fns: [(&str, ffi::lua_CFunction); 12] = [
        ("tobit", bit_tobit),
        ("bnot", bit_bnot),
        ("band", bit_band),
        ("bor", bit_bor),
        ("bxor", bit_bxor),
        ("lshift", bit_lshift),
        ("rshift", bit_rshift),
        ("arshift", bit_arshift),
        ("rol", bit_rol),
        ("ror", bit_ror),
        ("bswap", bit_bswap),
        ("tohex", bit_tohex),
    ];
    for (name, f) in fns {
        // SAFETY: each is a lua_CFunction that only uses its own stack frame (see above).
        t.set(name, unsafe { lua.create_c_function(f)? })?;
    }
    Ok(t)
}
