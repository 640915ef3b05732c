//! Redis's lua-cmsgpack 0.4.0 (Salvatore Sanfilippo, MIT): `cmsgpack.pack(...)`,
//! `cmsgpack.unpack(s)`, `cmsgpack.unpack_one(s [, offset])`,
//! `cmsgpack.unpack_limit(s, limit [, offset])`.
//!
//! Encoding: a number that a C `int64_t` holds exactly is an integer in its smallest MessagePack
//! form; other numbers are a float 32 when that loses nothing, else a float 64. A table whose keys
//! are exactly 1..n is an array (so `{}` is an empty array), else a map; tables nested 16 deep
//! (and nil, functions, userdata) are nil. Strings use fixstr/str8/str16/str32.
//! Decoding follows the original, including its quirks: uint 64 above 2^63-1 wraps to a negative
//! number, bin/ext types are a format error, and the Lua stack limit (`LUAI_MAXCSTACK`) bounds
//! how many values (and how deep a nesting) one call may produce.

use super::{Args, LResult, Nesting, Raise, c_double_to_i32, c_double_to_i64, many, set_fn, stack_ok, walk_keys};
use mlua::{Lua, MultiValue, Table, Value};

const MAX_NESTING: usize = 16;

fn is_int64_equivalent(n: f64) -> bool {
    !n.is_infinite() && c_double_to_i64(n) as f64 == n
}

fn encode_int(buf: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            buf.push(n as u8);
        } else if n <= 0xff {
            buf.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            buf.push(0xcd);
            buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            buf.push(0xce);
            buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            buf.push(0xcf);
            buf.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        buf.push(n as i8 as u8);
    } else if n >= -128 {
        buf.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        buf.push(0xd1);
        buf.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2147483648 {
        buf.push(0xd2);
        buf.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        buf.push(0xd3);
        buf.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_number(buf: &mut Vec<u8>, n: f64) {
    if is_int64_equivalent(n) {
        encode_int(buf, c_double_to_i64(n));
    } else if n == n as f32 as f64 {
        buf.push(0xca);
        buf.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        buf.push(0xcb);
        buf.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_bytes(buf: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        buf.push(0xa0 | len as u8);
    } else if len <= 0xff {
        buf.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        buf.push(0xda);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.push(0xdb);
        buf.extend_from_slice(&(len as u32).to_be_bytes());
    }
    buf.extend_from_slice(s);
}

fn encode_header(buf: &mut Vec<u8>, n: usize, fix: u8, b16: u8) {
    if n <= 15 {
        buf.push(fix | n as u8);
    } else if n <= 65535 {
        buf.push(b16);
        buf.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        buf.push(b16 + 1);
        buf.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// The encoder: `top` counts the Lua stack slots the C code would hold, for its stack checks.
struct Enc<'a> {
    lua: &'a Lua,
    buf: Vec<u8>,
    top: usize,
}

impl Enc<'_> {
    fn check(&self, n: usize, what: &str) -> LResult<()> {
        if stack_ok(self.top, n) { Ok(()) } else { Err(Raise::stack_overflow(what)) }
    }

    /// `mp_encode_lua_type` of a value the C code has pushed (counted in `top`).
    fn value(&mut self, v: &Value, level: usize) -> LResult<()> {
        match v {
            Value::String(s) => encode_bytes(&mut self.buf, &s.as_bytes()),
            Value::Boolean(b) => self.buf.push(if *b { 0xc3 } else { 0xc2 }),
            Value::Integer(i) => encode_number(&mut self.buf, *i as f64),
            Value::Number(n) => encode_number(&mut self.buf, *n),
            Value::Table(t) if level < MAX_NESTING => self.table(t, level)?,
            _ => self.buf.push(0xc0),
        }
        Ok(())
    }

    /// `table_is_an_array` (keys exactly 1..n, each a positive number that is a C int), and
    /// the number of keys.
    fn is_array(&self, t: &Table) -> LResult<(bool, usize)> {
        self.check(2, "in function table_is_an_array")?;
        let (mut count, mut max, mut array) = (0usize, 0i32, true);
        walk_keys(self.lua, t, |ty, n| {
            count += 1;
            if array && (ty != mlua::ffi::LUA_TNUMBER || n <= 0.0 || c_double_to_i32(n) as f64 != n) {
                array = false;
            }
            if array {
                max = max.max(n as i32);
            }
            true
        })?;
        Ok((array && max as usize == count, count))
    }

    fn table(&mut self, t: &Table, level: usize) -> LResult<()> {
        let (array, count) = self.is_array(t)?;
        if array {
            let len = t.raw_len();
            encode_header(&mut self.buf, len, 0x90, 0xdc);
            self.check(1, "in function mp_encode_lua_table_as_array")?;
            for j in 1..=len {
                let v: Value = t.get(j)?;
                self.top += 1;
                self.value(&v, level + 1)?;
                self.top -= 1;
            }
        } else {
            self.check(3, "in function mp_encode_lua_table_as_map")?;
            encode_header(&mut self.buf, count, 0x80, 0xde);
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                self.top += 3;
                self.value(&k, level + 1)?;
                self.top -= 1;
                self.value(&v, level + 1)?;
                self.top -= 2;
            }
        }
        Ok(())
    }
}

fn pack(lua: &Lua, args: MultiValue) -> LResult<MultiValue> {
    let a = Args::new(lua, args);
    let nargs = a.top();
    if nargs == 0 {
        return Err(Raise::arg(0, "MessagePack pack needs input."));
    }
    if !stack_ok(nargs, nargs) {
        return Err(Raise::arg(0, "Too many arguments for MessagePack pack."));
    }
    let mut enc = Enc { lua, buf: Vec::new(), top: nargs };
    for v in &a.v {
        enc.check(1, "in function mp_check")?;
        // The value is pushed, then popped and its encoding pushed as a string for the final
        // concat: one more slot per argument.
        enc.top += 1;
        enc.value(v, 0)?;
    }
    Ok(MultiValue::from_vec(vec![Value::String(lua.create_string(&enc.buf)?)]))
}

enum DecErr {
    Eof,
    BadFmt,
    Raise(Raise),
}

impl From<Raise> for DecErr {
    fn from(r: Raise) -> DecErr {
        DecErr::Raise(r)
    }
}

impl From<mlua::Error> for DecErr {
    fn from(e: mlua::Error) -> DecErr {
        DecErr::Raise(e.into())
    }
}

/// The decoder over `s[p..]`; `top` counts the C code's Lua stack slots, as in [`Enc`].
struct Dec<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    p: usize,
    top: usize,
}

impl Dec<'_> {
    fn need(&self, n: usize) -> Result<(), DecErr> {
        if self.s.len() - self.p < n { Err(DecErr::Eof) } else { Ok(()) }
    }
    fn be(&self, at: usize, n: usize) -> u64 {
        self.s[at..at + n].iter().fold(0u64, |acc, &b| (acc << 8) | b as u64)
    }
    fn string(&mut self, hdr: usize, len: usize) -> Result<Value, DecErr> {
        self.need(hdr)?;
        let len = if hdr == 1 { len } else { self.be(self.p + 1, hdr - 1) as usize };
        if hdr == 5 {
            // str32 consumes its header before checking for the body.
            self.p += 5;
            self.need(len)?;
            self.p += len;
        } else {
            self.need(hdr + len)?;
            self.p += hdr + len;
        }
        let start = self.p - len;
        Ok(Value::String(self.lua.create_string(&self.s[start..self.p])?))
    }

    /// `mp_decode_to_lua_type`: one top-level value (nested arrays and maps are decoded with an
    /// explicit stack, so hostile nesting cannot exhaust the thread's stack).
    fn value(&mut self) -> Result<Value, DecErr> {
        let mut nest = Nesting::new(self.lua)?;
        let mut frames: Vec<Frame> = Vec::new();
        // Lua stack slots the C code holds for the open frames.
        let mut slots = 0usize;
        loop {
            let mut v = match self.scalar_or_open(self.top + slots)? {
                Item::Value(v) => v,
                Item::Open(t, f) => {
                    slots += f.slots();
                    nest.push(t, Value::Nil)?;
                    frames.push(f);
                    continue;
                }
            };
            loop {
                let Some(f) = frames.last_mut() else { return Ok(v) };
                slots -= f.slots();
                let (t, key) = nest.top().expect("an open container");
                let done = match f {
                    Frame::Arr { i, left } => {
                        t.raw_set(*i, v)?;
                        *i += 1;
                        *left -= 1;
                        *left == 0
                    }
                    Frame::Map { has_key: has_key @ false, .. } => {
                        *has_key = true;
                        nest.set_key(v)?;
                        false
                    }
                    Frame::Map { left, has_key } => {
                        match key {
                            Value::Nil => {
                                return Err(Raise::Raw(b"table index is nil".to_vec()).into());
                            }
                            Value::Number(n) if n.is_nan() => {
                                return Err(Raise::Raw(b"table index is NaN".to_vec()).into());
                            }
                            _ => {}
                        }
                        t.raw_set(key, v)?;
                        *has_key = false;
                        *left -= 1;
                        *left == 0
                    }
                };
                if !done {
                    slots += f.slots();
                    break;
                }
                frames.pop();
                v = Value::Table(nest.pop()?.expect("an open container"));
            }
        }
    }

    /// Reads one item header: a complete scalar (or empty container) or a container to fill.
    /// `top` is the C code's Lua stack before the item is pushed.
    fn scalar_or_open(&mut self, top: usize) -> Result<Item, DecErr> {
        self.need(1)?;
        if !stack_ok(top, 1) {
            return Err(Raise::stack_overflow(
                "too many return values at once; use unpack_one or unpack_limit instead.",
            )
            .into());
        }
        let c = self.s[self.p];
        let fixed = |d: &mut Self, n: usize| -> Result<u64, DecErr> {
            d.need(n)?;
            let v = d.be(d.p + 1, n - 1);
            d.p += n;
            Ok(v)
        };
        let num = |n: f64| Ok(Item::Value(Value::Number(n)));
        match c {
            0xcc => num(fixed(self, 2)? as f64),
            0xcd => num(fixed(self, 3)? as f64),
            0xce => num(fixed(self, 5)? as f64),
            0xcf => num(fixed(self, 9)? as i64 as f64),
            0xd0 => num(fixed(self, 2)? as u8 as i8 as f64),
            0xd1 => num(fixed(self, 3)? as u16 as i16 as f64),
            0xd2 => num(fixed(self, 5)? as u32 as i32 as f64),
            0xd3 => num(fixed(self, 9)? as i64 as f64),
            0xc0 => {
                self.p += 1;
                Ok(Item::Value(Value::Nil))
            }
            0xc3 | 0xc2 => {
                self.p += 1;
                Ok(Item::Value(Value::Boolean(c == 0xc3)))
            }
            0xca => num(f32::from_bits(fixed(self, 5)? as u32) as f64),
            0xcb => num(f64::from_bits(fixed(self, 9)?)),
            0xd9 => Ok(Item::Value(self.string(2, 0)?)),
            0xda => Ok(Item::Value(self.string(3, 0)?)),
            0xdb => Ok(Item::Value(self.string(5, 0)?)),
            0xdc..=0xdf => {
                let n = if c == 0xdc || c == 0xde { 3 } else { 5 };
                let len = fixed(self, n)? as usize;
                self.open(c <= 0xdd, len, top)
            }
            _ if c & 0x80 == 0 => {
                self.p += 1;
                num(c as f64)
            }
            _ if c & 0xe0 == 0xe0 => {
                self.p += 1;
                num(c as i8 as f64)
            }
            _ if c & 0xe0 == 0xa0 => Ok(Item::Value(self.string(1, (c & 0x1f) as usize)?)),
            _ if c & 0xf0 == 0x90 => {
                self.p += 1;
                self.open(true, (c & 0xf) as usize, top)
            }
            _ if c & 0xf0 == 0x80 => {
                self.p += 1;
                self.open(false, (c & 0xf) as usize, top)
            }
            _ => Err(DecErr::BadFmt),
        }
    }

    fn open(&mut self, array: bool, len: usize, top: usize) -> Result<Item, DecErr> {
        let t = self.lua.create_table()?;
        if array && !stack_ok(top + 1, 1) {
            return Err(Raise::stack_overflow("in function mp_decode_to_lua_array").into());
        }
        Ok(if len == 0 {
            Item::Value(Value::Table(t))
        } else if array {
            Item::Open(t, Frame::Arr { i: 1, left: len })
        } else {
            Item::Open(t, Frame::Map { left: len, has_key: false })
        })
    }
}

/// An array or map being filled, as the C code's recursion holds it (its table and the map's
/// key are kept in a [`Nesting`]).
enum Frame {
    Arr { i: i64, left: usize },
    Map { left: usize, has_key: bool },
}

impl Frame {
    /// The Lua stack slots the C code holds while decoding this frame's next item: the table
    /// and the array index, or the table and the decoded key.
    fn slots(&self) -> usize {
        match self {
            Frame::Arr { .. } => 2,
            Frame::Map { has_key, .. } => 1 + *has_key as usize,
        }
    }
}

enum Item {
    Value(Value),
    Open(Table, Frame),
}

/// `mp_unpack_full`: `limit` values from `offset` (0, 0: all of them, no offset returned).
fn unpack_full(a: &Args, limit: i64, offset: i64) -> LResult<MultiValue> {
    let s = a.check_bytes(1)?;
    let len = s.len();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return Err(Raise::error(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        )));
    } else if offset as u64 > len as u64 {
        return Err(Raise::error(format!("Start offset {} greater than input length {}.", offset as i32, len as i32)));
    }
    let limit = if decode_all { i32::MAX as i64 } else { limit };
    let mut d = Dec { lua: a.lua, s: &s, p: offset as usize, top: 1 };
    // Results go straight into a table (see `many`): an offset first when one is returned.
    let out = a.lua.create_table()?;
    let first = if decode_all { 1 } else { 2 };
    let mut cnt: i64 = 0;
    while d.p < len && cnt < limit {
        match d.value() {
            Ok(v) => out.raw_set(first + cnt, v)?,
            Err(DecErr::Eof) => return Err(Raise::error("Missing bytes in input.")),
            Err(DecErr::BadFmt) => return Err(Raise::error("Bad data format in input.")),
            Err(DecErr::Raise(r)) => return Err(r),
        }
        d.top += 1;
        cnt += 1;
    }
    if !decode_all {
        if !stack_ok(d.top, 1) {
            return Err(Raise::stack_overflow("in function mp_unpack_full"));
        }
        let next = if d.p == len { -1 } else { d.p as i64 };
        out.raw_set(1, next)?;
        cnt += 1;
    }
    many(out, cnt as usize)
}

/// The `cmsgpack` table.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    set_fn(lua, &t, "pack", pack)?;
    set_fn(lua, &t, "unpack", |lua, args| unpack_full(&Args::new(lua, args), 0, 0))?;
    set_fn(lua, &t, "unpack_one", |lua, args| {
        let a = Args::new(lua, args);
        let offset = a.opt_integer(2, 0)?;
        unpack_full(&a, 1, offset)
    })?;
    set_fn(lua, &t, "unpack_limit", |lua, args| {
        let a = Args::new(lua, args);
        let limit = a.check_integer(2)?;
        let offset = a.opt_integer(3, 0)?;
        unpack_full(&a, limit, offset)
    })?;
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}
