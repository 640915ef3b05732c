//! LuaBitOp 1.0.2 (Mike Pall, MIT) as Redis embeds it: 32-bit operations on Lua 5.1 doubles.
//!
//! An argument is made a 32-bit value the way LuaBitOp does it: add 2^52+2^51 to the double and
//! keep the low 32 bits of its representation (so 2^32+1 is 1, 1.5 rounds to even, -1 is
//! 0xffffffff). Results are signed 32-bit numbers.

use super::{Args, LResult, Raise, one, set_fn};
use mlua::{Lua, MultiValue, Table, Value};

/// `barg`: argument `i` as 32 bits (strings convert as `lua_tonumber`; others are a type error
/// unless they convert to 0, as the original's check does).
fn barg(a: &Args, i: usize) -> LResult<u32> {
    let n = a.to_number(i);
    let b = tobit(n.unwrap_or(0.0));
    if b == 0 && n.is_none() {
        return Err(Raise::type_error(i as i32, "number", a.get(i)));
    }
    Ok(b)
}

/// The LuaBitOp normalisation of a double to 32 bits.
pub fn tobit(n: f64) -> u32 {
    (n + 6755399441055744.0).to_bits() as u32
}

fn ret(b: u32) -> LResult<MultiValue> {
    one(Value::Number(b as i32 as f64))
}

type Op = fn(&Args) -> LResult<u32>;

fn fold(a: &Args, f: fn(u32, u32) -> u32) -> LResult<u32> {
    let mut b = barg(a, 1)?;
    let mut i = a.top();
    while i > 1 {
        b = f(b, barg(a, i)?);
        i -= 1;
    }
    Ok(b)
}

fn shift(a: &Args, f: fn(u32, u32) -> u32) -> LResult<u32> {
    let b = barg(a, 1)?;
    let n = barg(a, 2)? & 31;
    Ok(f(b, n))
}

const OPS: &[(&str, Op)] = &[
    ("tobit", |a| barg(a, 1)),
    ("bnot", |a| Ok(!barg(a, 1)?)),
    ("band", |a| fold(a, |x, y| x & y)),
    ("bor", |a| fold(a, |x, y| x | y)),
    ("bxor", |a| fold(a, |x, y| x ^ y)),
    ("lshift", |a| shift(a, |b, n| b << n)),
    ("rshift", |a| shift(a, |b, n| b >> n)),
    ("arshift", |a| shift(a, |b, n| ((b as i32) >> n) as u32)),
    ("rol", |a| shift(a, |b, n| b.rotate_left(n))),
    ("ror", |a| shift(a, |b, n| b.rotate_right(n))),
    ("bswap", |a| Ok(barg(a, 1)?.swap_bytes())),
];

fn tohex(a: &Args) -> LResult<MultiValue> {
    let mut b = barg(a, 1)?;
    let n = if a.get(2).is_none() { 8 } else { barg(a, 2)? as i32 };
    let digits: &[u8; 16] = if n < 0 { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    // |n| at most 8 (Redis's build also gives 8 upper-case digits for -2^31).
    let n = n.unsigned_abs().min(8) as usize;
    let mut buf = vec![0u8; n];
    for slot in buf.iter_mut().rev() {
        *slot = digits[(b & 15) as usize];
        b >>= 4;
    }
    one(Value::String(a.lua.create_string(buf)?))
}

/// The `bit` table.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for &(name, op) in OPS {
        set_fn(lua, &t, name, move |lua, args| ret(op(&Args::new(lua, args))?))?;
    }
    set_fn(lua, &t, "tohex", |lua, args| tohex(&Args::new(lua, args)))?;
    Ok(t)
}
