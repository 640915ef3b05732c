//! lua-cjson 2.1.0 (Mark Pulford, MIT) as Redis 7.0.15 embeds it (with `ENABLE_CJSON_GLOBAL`).
//!
//! `cjson.encode(v)`: strings escaped as the original (`/` as `\/`, DEL as `\u007f`), numbers
//! `%.14g` (`encode_number_precision`), NaN/Inf refused unless `encode_invalid_numbers`, a table
//! whose keys are all positive integers is an array (holes are `null`) unless it is excessively
//! sparse (`encode_sparse_array`), any other table an object (so `{}` is `{}`), nesting bounded by
//! `encode_max_depth` (1000) and the Lua C stack. `cjson.decode(s)`: the original's tokenizer
//! (it stops at a NUL byte, numbers go through `strtod` so hex, `inf` and `nan` pass while
//! `decode_invalid_numbers` is on), `null` is `cjson.null` (a NULL light userdata), nesting
//! bounded by `decode_max_depth` (1000). Error texts are the original's.
//! Each `cjson` table (and each from `cjson.new()`) has its own configuration, kept for the life
//! of the Lua state as in Redis.

use super::{Args, LResult, Nesting, Raise, c_double_to_i32, fmt_g, one, set_fn, stack_ok};
use mlua::{LightUserData, Lua, MultiValue, Table, Value};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
struct Config {
    sparse_convert: i32,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    /// 0 off, 1 on, 2 "null".
    encode_invalid_numbers: i32,
    decode_invalid_numbers: i32,
    encode_keep_buffer: i32,
    encode_number_precision: i32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: 0,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: 1,
            encode_keep_buffer: 1,
            encode_number_precision: 14,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

fn cfg(s: &Shared) -> std::sync::MutexGuard<'_, Config> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// `cjson.null`.
pub fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

// ===== Encoding =====

fn escape(c: u8) -> Option<&'static str> {
    const LOW: [&str; 32] = [
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007", "\\b", "\\t", "\\n",
        "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014",
        "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e",
        "\\u001f",
    ];
    match c {
        0..=31 => Some(LOW[c as usize]),
        b'"' => Some("\\\""),
        b'/' => Some("\\/"),
        b'\\' => Some("\\\\"),
        0x7f => Some("\\u007f"),
        _ => None,
    }
}

fn append_string(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    for &c in s {
        match escape(c) {
            Some(e) => out.extend_from_slice(e.as_bytes()),
            None => out.push(c),
        }
    }
    out.push(b'"');
}

fn exception(type_name: &str, reason: &str) -> Raise {
    Raise::error(format!("Cannot serialise {type_name}: {reason}"))
}

/// The longest JSON text we build (Redis's `proto-max-bulk-len`): beyond it an encode fails with
/// Lua's memory error instead of exhausting memory (redis-server itself aborts, e.g. on a
/// 2^31-element sparse array once `encode_sparse_array` allows it).
const MAX_OUTPUT: usize = 512 << 20;

fn out_of_memory() -> Raise {
    Raise::Raw(b"not enough memory".to_vec())
}

struct Encoder<'a> {
    cfg: &'a Config,
    out: Vec<u8>,
}

impl Encoder<'_> {
    fn number(&mut self, n: f64) -> LResult<()> {
        match self.cfg.encode_invalid_numbers {
            0 if !n.is_finite() => return Err(exception("number", "must not be NaN or Inf")),
            1 if n.is_nan() => {
                self.out.extend_from_slice(b"nan");
                return Ok(());
            }
            0 | 1 => {}
            _ if !n.is_finite() => {
                self.out.extend_from_slice(b"null");
                return Ok(());
            }
            _ => {}
        }
        let s = fmt_g(n, self.cfg.encode_number_precision as usize);
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    /// `lua_array_length`: the array size, or -1 (or a negative C-overflowed size) for an object.
    fn array_length(&self, lua: &Lua, t: &Table) -> LResult<i32> {
        // One raw walk of the keys on the Lua stack (no reference per entry).
        // SAFETY: we check room for the 3 slots we use; lua_next over keys it returned itself
        // cannot raise, and nothing in the loop allocates (so no collection changes the table);
        // every path pops what it pushed.
        let walk = lua.exec_raw_lua(|raw| unsafe {
            use mlua::ffi;
            let state = raw.state();
            if ffi::lua_checkstack(state, 3) == 0 {
                return Err(Raise::stack_overflow("in function lua_array_length"));
            }
            raw.push_value(&Value::Table(t.clone()))?;
            ffi::lua_pushnil(state);
            let (mut max, mut items) = (0i32, 0i32);
            while ffi::lua_next(state, -2) != 0 {
                let k = ffi::lua_tonumber(state, -2);
                if ffi::lua_type(state, -2) == ffi::LUA_TNUMBER && k != 0.0 && k.floor() == k && k >= 1.0 {
                    if k > max as f64 {
                        max = c_double_to_i32(k);
                    }
                    items += 1;
                    ffi::lua_pop(state, 1);
                    continue;
                }
                ffi::lua_pop(state, 3);
                return Ok(None);
            }
            ffi::lua_pop(state, 1);
            Ok(Some((max, items)))
        })?;
        let Some((max, items)) = walk else { return Ok(-1) };
        let c = self.cfg;
        if c.sparse_ratio > 0 && max > items.wrapping_mul(c.sparse_ratio) && max > c.sparse_safe {
            if c.sparse_convert == 0 {
                return Err(exception("table", "excessively sparse array"));
            }
            return Ok(-1);
        }
        Ok(max)
    }

    /// An object key: a number (quoted, formatted as a number) or a string.
    fn key(&mut self, k: &Value) -> LResult<()> {
        match k {
            Value::Integer(_) | Value::Number(_) => {
                self.out.push(b'"');
                self.number(super::to_number_value(k))?;
                self.out.extend_from_slice(b"\":");
            }
            Value::String(s) => {
                append_string(&mut self.out, &s.as_bytes());
                self.out.push(b':');
            }
            other => {
                return Err(exception(super::type_name(Some(other)), "table key must be a number or string"));
            }
        }
        Ok(())
    }

    /// `json_append_data` of `root`, with nested tables on an explicit stack (a deep or cyclic
    /// table cannot exhaust the thread's stack). The C code's Lua stack, for its checks: the
    /// argument, then per open array the element, per open object the key and value.
    fn value(&mut self, lua: &Lua, root: &Value) -> LResult<()> {
        let mut nest = Nesting::new(lua)?;
        // Per open table: Some((last index written, length)) for an array, None for an object.
        let mut kinds: Vec<Option<(i32, i32)>> = Vec::new();
        let mut top = 1usize;
        let mut cur = root.clone();
        loop {
            match &cur {
                Value::String(s) => append_string(&mut self.out, &s.as_bytes()),
                Value::Integer(i) => self.number(*i as f64)?,
                Value::Number(n) => self.number(*n)?,
                Value::Boolean(b) => self.out.extend_from_slice(if *b { b"true" } else { b"false" }),
                Value::Nil => self.out.extend_from_slice(b"null"),
                Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
                Value::Table(t) => {
                    let depth = kinds.len() as i32 + 1;
                    if depth > self.cfg.encode_max_depth || !stack_ok(top, 3) {
                        return Err(Raise::error(format!("Cannot serialise, excessive nesting ({depth})")));
                    }
                    let len = self.array_length(lua, t)?;
                    if len > 0 {
                        // Each element takes at least two bytes.
                        if self.out.len() + 2 * len as usize > MAX_OUTPUT {
                            return Err(out_of_memory());
                        }
                        self.out.push(b'[');
                        let t = t.clone();
                        cur = t.raw_get(1)?;
                        nest.push(t, Value::Nil)?;
                        kinds.push(Some((1, len)));
                        top += 1;
                        continue;
                    }
                    self.out.push(b'{');
                    if let Some((k, v)) = next_entry(lua, t, Value::Nil)? {
                        self.key(&k)?;
                        nest.push(t.clone(), k)?;
                        kinds.push(None);
                        top += 2;
                        cur = v;
                        continue;
                    }
                    self.out.push(b'}');
                }
                other => {
                    return Err(exception(super::type_name(Some(other)), "type not supported"));
                }
            }
            if self.out.len() > MAX_OUTPUT {
                return Err(out_of_memory());
            }
            // The value is written: move to its next sibling, closing finished tables.
            loop {
                let Some(kind) = kinds.last_mut() else { return Ok(()) };
                let (t, key) = nest.top().expect("an open table");
                match kind {
                    Some((i, len)) => {
                        if *i < *len {
                            *i += 1;
                            self.out.push(b',');
                            cur = t.raw_get(*i)?;
                            break;
                        }
                        self.out.push(b']');
                        top -= 1;
                    }
                    None => {
                        if let Some((k, v)) = next_entry(lua, t, key.clone())? {
                            self.out.push(b',');
                            self.key(&k)?;
                            nest.set_key(k)?;
                            cur = v;
                            break;
                        }
                        self.out.push(b'}');
                        top -= 2;
                    }
                }
                kinds.pop();
                nest.pop()?;
            }
        }
    }
}

/// `lua_next(t, key)`: the entry after `key` (the first for nil), `None` after the last.
pub(crate) fn next_entry(lua: &Lua, t: &Table, key: Value) -> LResult<Option<(Value, Value)>> {
    // The fast path calls lua_next unprotected, as mlua's own pairs() does: lua_next raises only
    // for a key that is no longer in the table (a weak table's entry collected meanwhile), so a
    // key that a raw get still finds is safe; any other key takes the protected path below.
    // SAFETY: we check room for the 4 slots we use; lua_rawget and lua_next (on a present key)
    // cannot raise; every path pops exactly what it pushed.
    let fast = lua.exec_raw_lua(|raw| unsafe {
        use mlua::ffi;
        let state = raw.state();
        if ffi::lua_checkstack(state, 4) == 0 {
            return Err(Raise::stack_overflow("in function next"));
        }
        raw.push_value(&Value::Table(t.clone()))?;
        raw.push_value(&key)?;
        if !key.is_nil() {
            ffi::lua_pushvalue(state, -1);
            ffi::lua_rawget(state, -3);
            let present = ffi::lua_isnil(state, -1) == 0;
            ffi::lua_pop(state, 1);
            if !present {
                ffi::lua_pop(state, 2);
                return Ok(None);
            }
        }
        if ffi::lua_next(state, -2) == 0 {
            ffi::lua_pop(state, 1);
            return Ok(Some(None));
        }
        let v = raw.pop_value();
        let k = raw.pop_value();
        ffi::lua_pop(state, 1);
        Ok(Some(Some((k, v))))
    })?;
    if let Some(r) = fast {
        return Ok(r);
    }
    // SAFETY: exec_raw runs the closure in a protected call whose stack holds exactly the two
    // arguments (table, key); lua_next pops the key and pushes key and value, or pushes nothing
    // at the end, and we leave exactly two values (the table removed).
    let (k, v): (Value, Value) = unsafe {
        lua.exec_raw((t, key), |state| {
            use mlua::ffi;
            if ffi::lua_next(state, -2) == 0 {
                ffi::lua_pushnil(state);
                ffi::lua_pushnil(state);
            }
            ffi::lua_remove(state, -3);
        })?
    };
    Ok(if k.is_nil() { None } else { Some((k, v)) })
}

fn encode(shared: &Shared, lua: &Lua, args: MultiValue) -> LResult<MultiValue> {
    let a = Args::new(lua, args);
    if a.top() != 1 {
        return Err(Raise::arg(1, "expected 1 argument"));
    }
    let c = cfg(shared).clone();
    let mut enc = Encoder { cfg: &c, out: Vec::new() };
    enc.value(lua, &a.v[0])?;
    one(Value::String(lua.create_string(&enc.out)?))
}

// ===== Decoding =====

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Number(f64),
    Boolean(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Tok {
    fn name(&self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Number(_) => "T_NUMBER",
            Tok::Boolean(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(e) => e,
        }
    }
}

struct Parser<'a> {
    lua: &'a Lua,
    cfg: &'a Config,
    data: &'a [u8],
    ptr: usize,
    depth: i32,
    /// The decoded bytes of the last string token.
    tmp: Vec<u8>,
}

/// The byte at `i`, or 0 past the end (the C code reads the string's NUL terminator).
fn at(d: &[u8], i: usize) -> u8 {
    d.get(i).copied().unwrap_or(0)
}

fn hexval(c: u8) -> Option<u32> {
    (c as char).to_digit(16)
}

fn decode_hex4(d: &[u8], i: usize) -> Option<u32> {
    (0..4).try_fold(0u32, |acc, k| hexval(at(d, i + k)).map(|v| (acc << 4) | v))
}

fn push_utf8(out: &mut Vec<u8>, cp: u32) {
    if cp <= 0x7f {
        out.push(cp as u8);
    } else if cp <= 0x7ff {
        out.extend_from_slice(&[(cp >> 6) as u8 | 0xc0, (cp & 0x3f) as u8 | 0x80]);
    } else if cp <= 0xffff {
        out.extend_from_slice(&[(cp >> 12) as u8 | 0xe0, ((cp >> 6) & 0x3f) as u8 | 0x80, (cp & 0x3f) as u8 | 0x80]);
    } else {
        out.extend_from_slice(&[
            (cp >> 18) as u8 | 0xf0,
            ((cp >> 12) & 0x3f) as u8 | 0x80,
            ((cp >> 6) & 0x3f) as u8 | 0x80,
            (cp & 0x3f) as u8 | 0x80,
        ]);
    }
}

/// C's `strtod` (glibc) on `d[start..]`: the value and the end of the longest number prefix, or
/// `None` when no conversion happens. Decimal, hexadecimal (`0x1.8p3`), `inf`/`infinity`,
/// `nan`/`nan(chars)`, case-insensitive, with an optional sign.
pub fn strtod(d: &[u8], start: usize) -> Option<(f64, usize)> {
    let mut i = start;
    while matches!(at(d, i), b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = at(d, i) == b'-';
    if matches!(at(d, i), b'+' | b'-') {
        i += 1;
    }
    let sign = |v: f64| if neg { -v } else { v };
    let lower = |k: usize| at(d, k).to_ascii_lowercase();
    let word = |k: usize, w: &[u8]| w.iter().enumerate().all(|(j, &c)| lower(k + j) == c);
    if word(i, b"inf") {
        let end = if word(i + 3, b"inity") { i + 8 } else { i + 3 };
        return Some((sign(f64::INFINITY), end));
    }
    if word(i, b"nan") {
        let mut end = i + 3;
        if at(d, end) == b'(' {
            let mut k = end + 1;
            while at(d, k).is_ascii_alphanumeric() || at(d, k) == b'_' {
                k += 1;
            }
            if at(d, k) == b')' {
                end = k + 1;
            }
        }
        return Some((sign(f64::NAN), end));
    }
    if at(d, i) == b'0' && lower(i + 1) == b'x' {
        let h = i + 2;
        let (mut k, mut mant, mut exp, mut sticky, mut any) = (h, 0u128, 0i64, false, false);
        let mut digit = |v: u32, frac: bool, mant: &mut u128, exp: &mut i64| {
            if *mant >> 120 == 0 {
                *mant = (*mant << 4) | v as u128;
                if frac {
                    *exp -= 4;
                }
            } else {
                sticky |= v != 0;
                if !frac {
                    *exp += 4;
                }
            }
        };
        while let Some(v) = hexval(at(d, k)) {
            digit(v, false, &mut mant, &mut exp);
            any = true;
            k += 1;
        }
        if at(d, k) == b'.' {
            let mut f = k + 1;
            while let Some(v) = hexval(at(d, f)) {
                digit(v, true, &mut mant, &mut exp);
                any = true;
                f += 1;
            }
            if any {
                k = f;
            }
        }
        if !any {
            // "0x" without digits: strtod reads the "0".
            return Some((sign(0.0), i + 1));
        }
        if lower(k) == b'p' {
            let mut e = k + 1;
            let eneg = at(d, e) == b'-';
            if matches!(at(d, e), b'+' | b'-') {
                e += 1;
            }
            if at(d, e).is_ascii_digit() {
                let mut pe: i64 = 0;
                while at(d, e).is_ascii_digit() {
                    pe = (pe * 10 + (at(d, e) - b'0') as i64).min(1 << 40);
                    e += 1;
                }
                exp += if eneg { -pe } else { pe };
                k = e;
            }
        }
        if sticky {
            mant |= 1;
        }
        return Some((sign(hex_value(mant, exp)), k));
    }
    // Decimal.
    let mut k = i;
    let mut digits = 0;
    while at(d, k).is_ascii_digit() {
        k += 1;
        digits += 1;
    }
    if at(d, k) == b'.' {
        let mut f = k + 1;
        while at(d, f).is_ascii_digit() {
            f += 1;
            digits += 1;
        }
        if digits > 0 {
            k = f;
        }
    }
    if digits == 0 {
        return None;
    }
    if lower(k) == b'e' {
        let mut e = k + 1;
        if matches!(at(d, e), b'+' | b'-') {
            e += 1;
        }
        if at(d, e).is_ascii_digit() {
            while at(d, e).is_ascii_digit() {
                e += 1;
            }
            k = e;
        }
    }
    let text = std::str::from_utf8(&d[i..k]).ok()?;
    let text = if text.starts_with('.') { format!("0{text}") } else { text.to_string() };
    let v: f64 = text.parse().ok()?;
    Some((sign(v), k))
}

/// `mant * 2^exp`, correctly rounded (mant carries a sticky bit in its lowest bit if it was cut).
fn hex_value(mant: u128, exp: i64) -> f64 {
    if mant == 0 {
        return 0.0;
    }
    // Normalise to at most 64 significant bits with a sticky bit, then let the u64 -> f64
    // conversion round, then scale (exact unless the result is subnormal or overflows).
    let bits = 128 - mant.leading_zeros() as i64;
    let (m, e) = if bits > 64 {
        let sh = bits - 64;
        let lost = mant & ((1u128 << sh) - 1) != 0;
        (((mant >> sh) as u64) | lost as u64, exp + sh)
    } else {
        (mant as u64, exp)
    };
    let v = m as f64;
    let e = e.clamp(-2000, 2000) as i32;
    // Scale in steps that stay within the exponent range.
    let mut v = v;
    let mut e = e;
    while e > 0 {
        let s = e.min(1000);
        v *= 2f64.powi(s);
        e -= s;
    }
    while e < 0 {
        let s = (-e).min(1000);
        v *= 2f64.powi(-s);
        e += s;
    }
    v
}

impl Parser<'_> {
    /// `json_is_invalid_number` at the current position.
    fn is_invalid_number(&self) -> bool {
        let d = self.data;
        let mut p = self.ptr;
        if at(d, p) == b'+' {
            return true;
        }
        if at(d, p) == b'-' {
            p += 1;
        }
        let c = at(d, p);
        if c == b'0' {
            let c2 = at(d, p + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        } else if c <= b'9' {
            return false;
        }
        let w = |s: &[u8]| (0..3).all(|j| at(d, p + j).to_ascii_lowercase() == s[j]);
        w(b"inf") || w(b"nan")
    }

    fn number_token(&mut self) -> (Tok, usize) {
        let index = self.ptr;
        match strtod(self.data, self.ptr) {
            Some((v, end)) if end != self.ptr => {
                self.ptr = end;
                (Tok::Number(v), index)
            }
            _ => (Tok::Error("invalid number"), self.ptr),
        }
    }

    fn string_token(&mut self) -> (Tok, usize) {
        let d = self.data;
        self.ptr += 1;
        self.tmp.clear();
        loop {
            let ch = at(d, self.ptr);
            if ch == b'"' {
                break;
            }
            if ch == 0 {
                return (Tok::Error("unexpected end of string"), self.ptr);
            }
            let mut out = ch;
            if ch == b'\\' {
                out = match at(d, self.ptr + 1) {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 8,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'f' => 12,
                    b'r' => b'\r',
                    b'u' => {
                        if self.unicode_escape() {
                            continue;
                        }
                        return (Tok::Error("invalid unicode escape code"), self.ptr);
                    }
                    _ => return (Tok::Error("invalid escape code"), self.ptr),
                };
                self.ptr += 1;
            }
            self.tmp.push(out);
            self.ptr += 1;
        }
        self.ptr += 1;
        (Tok::Str, 0)
    }

    /// `json_append_unicode_escape` at `\uXXXX` (with a following low surrogate if needed).
    fn unicode_escape(&mut self) -> bool {
        let d = self.data;
        let Some(mut cp) = decode_hex4(d, self.ptr + 2) else { return false };
        let mut len = 6;
        if cp & 0xf800 == 0xd800 {
            if cp & 0x400 != 0 {
                return false;
            }
            if at(d, self.ptr + 6) != b'\\' || at(d, self.ptr + 7) != b'u' {
                return false;
            }
            let Some(low) = decode_hex4(d, self.ptr + 8) else { return false };
            if low & 0xfc00 != 0xdc00 {
                return false;
            }
            cp = (((cp & 0x3ff) << 10) | (low & 0x3ff)) + 0x10000;
            len = 12;
        }
        push_utf8(&mut self.tmp, cp);
        self.ptr += len;
        true
    }

    /// `json_next_token`: the token and its 0-based index.
    fn next(&mut self) -> (Tok, usize) {
        let d = self.data;
        while matches!(at(d, self.ptr), b' ' | b'\t' | b'\n' | b'\r') {
            self.ptr += 1;
        }
        let index = self.ptr;
        let ch = at(d, self.ptr);
        let single = match ch {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            _ => None,
        };
        if let Some(t) = single {
            self.ptr += 1;
            return (t, index);
        }
        if ch == 0 {
            return (Tok::End, index);
        }
        if ch == b'"' {
            let (t, i) = self.string_token();
            return (t, if t == Tok::Str { index } else { i });
        }
        if ch == b'-' || ch.is_ascii_digit() {
            if self.cfg.decode_invalid_numbers == 0 && self.is_invalid_number() {
                return (Tok::Error("invalid number"), self.ptr);
            }
            return self.number_token();
        }
        if !matches!(ch, b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+') {
            return (Tok::Error("invalid token"), index);
        }
        let rest = &d[self.ptr.min(d.len())..];
        if rest.starts_with(b"true") {
            self.ptr += 4;
            return (Tok::Boolean(true), index);
        }
        if rest.starts_with(b"false") {
            self.ptr += 5;
            return (Tok::Boolean(false), index);
        }
        if rest.starts_with(b"null") {
            self.ptr += 4;
            return (Tok::Null, index);
        }
        if self.cfg.decode_invalid_numbers != 0 && self.is_invalid_number() {
            return self.number_token();
        }
        (Tok::Error("invalid token"), index)
    }

    fn parse_error(&self, exp: &str, tok: (Tok, usize)) -> Raise {
        Raise::error(format!("Expected {exp} but found {} at character {}", tok.0.name(), tok.1 + 1))
    }

    /// `json_decode_descend`: `top` is the C code's Lua stack before the new table.
    fn descend(&mut self, top: usize, slots: usize) -> LResult<()> {
        self.depth += 1;
        if self.depth <= self.cfg.decode_max_depth && stack_ok(top, slots) {
            return Ok(());
        }
        Err(Raise::error(format!("Found too many nested data structures ({}) at character {}", self.depth, self.ptr)))
    }

    /// `json_process_value` for the value starting with `tok`, with the nesting on an explicit
    /// stack (hostile input cannot exhaust the thread's stack). The C code's Lua stack for
    /// its checks: the argument, then per open array its table, per open object its table and
    /// key.
    fn value(&mut self, mut tok: (Tok, usize)) -> LResult<Value> {
        let mut nest = Nesting::new(self.lua)?;
        // Per open container: the next array index, or None for an object.
        let mut kinds: Vec<Option<i64>> = Vec::new();
        let mut top = 1usize;
        loop {
            let mut v = match tok.0 {
                Tok::Str => Value::String(self.lua.create_string(&self.tmp)?),
                Tok::Number(n) => Value::Number(n),
                Tok::Boolean(b) => Value::Boolean(b),
                Tok::Null => null(),
                Tok::ObjBegin => {
                    self.descend(top, 3)?;
                    let t = self.lua.create_table()?;
                    tok = self.next();
                    if tok.0 == Tok::ObjEnd {
                        self.depth -= 1;
                        Value::Table(t)
                    } else {
                        let key = self.key(tok)?;
                        tok = self.next();
                        nest.push(t, Value::String(key))?;
                        kinds.push(None);
                        top += 2;
                        continue;
                    }
                }
                Tok::ArrBegin => {
                    self.descend(top, 2)?;
                    let t = self.lua.create_table()?;
                    tok = self.next();
                    if tok.0 == Tok::ArrEnd {
                        self.depth -= 1;
                        Value::Table(t)
                    } else {
                        nest.push(t, Value::Nil)?;
                        kinds.push(Some(1));
                        top += 1;
                        continue;
                    }
                }
                _ => return Err(self.parse_error("value", tok)),
            };
            // Store the finished value in its container, closing containers that end here.
            loop {
                let Some(kind) = kinds.last_mut() else { return Ok(v) };
                {
                    let (t, key) = nest.top().expect("an open container");
                    match kind {
                        Some(i) => t.raw_set(*i, v)?,
                        None => t.raw_set(key, v)?,
                    }
                }
                tok = self.next();
                if let Some(i) = kind {
                    *i += 1;
                    if tok.0 == Tok::Comma {
                        tok = self.next();
                        break;
                    }
                    if tok.0 != Tok::ArrEnd {
                        return Err(self.parse_error("comma or array end", tok));
                    }
                    top -= 1;
                } else {
                    if tok.0 == Tok::Comma {
                        tok = self.next();
                        let key = self.key(tok)?;
                        nest.set_key(Value::String(key))?;
                        tok = self.next();
                        break;
                    }
                    if tok.0 != Tok::ObjEnd {
                        return Err(self.parse_error("comma or object end", tok));
                    }
                    top -= 2;
                }
                self.depth -= 1;
                kinds.pop();
                v = Value::Table(nest.pop()?.expect("an open container"));
            }
        }
    }

    /// An object key (`tok`) and the colon after it; leaves the parser at the value.
    fn key(&mut self, tok: (Tok, usize)) -> LResult<mlua::LuaString> {
        if tok.0 != Tok::Str {
            return Err(self.parse_error("object key string", tok));
        }
        let key = self.lua.create_string(&self.tmp)?;
        let colon = self.next();
        if colon.0 != Tok::Colon {
            return Err(self.parse_error("colon", colon));
        }
        Ok(key)
    }
}

fn decode(shared: &Shared, lua: &Lua, args: MultiValue) -> LResult<MultiValue> {
    let a = Args::new(lua, args);
    if a.top() != 1 {
        return Err(Raise::arg(1, "expected 1 argument"));
    }
    let data = a.check_bytes(1)?;
    if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
        return Err(Raise::error("JSON parser does not support UTF-16 or UTF-32"));
    }
    let c = cfg(shared).clone();
    let mut p = Parser { lua, cfg: &c, data: &data, ptr: 0, depth: 0, tmp: Vec::new() };
    let tok = p.next();
    let v = p.value(tok)?;
    let tok = p.next();
    if tok.0 != Tok::End {
        return Err(p.parse_error("the end", tok));
    }
    one(v)
}

// ===== Configuration =====

/// `json_arg_init`: at most `n` arguments; missing ones read as nil.
fn arg_init(a: &mut Args, n: usize) -> LResult<()> {
    if a.top() > n {
        return Err(Raise::arg(n as i32 + 1, "found too many arguments"));
    }
    a.v.resize(n, Value::Nil);
    Ok(())
}

/// `json_integer_option`.
fn integer_option(a: &Args, i: usize, setting: &mut i32, min: i32, max: i32) -> LResult<Value> {
    if !matches!(a.get(i), Some(Value::Nil) | None) {
        let v = a.check_integer(i)? as i32;
        if !(min <= v && v <= max) {
            return Err(Raise::arg(1, format!("expected integer between {min} and {max}")));
        }
        *setting = v;
    }
    Ok(Value::Number(*setting as f64))
}

/// `json_enum_option` (`options` None: the booleans off/on).
fn enum_option(a: &Args, i: usize, setting: &mut i32, options: &[&str]) -> LResult<Value> {
    if !matches!(a.get(i), Some(Value::Nil) | None) {
        if let Some(Value::Boolean(b)) = a.get(i) {
            *setting = *b as i32;
        } else {
            let name = a.check_bytes(i)?;
            let name = name.split(|&c| c == 0).next().unwrap_or_default();
            match options.iter().position(|o| o.as_bytes() == name) {
                Some(k) => *setting = k as i32,
                None => {
                    let mut msg = b"invalid option '".to_vec();
                    msg.extend_from_slice(name);
                    msg.push(b'\'');
                    return Err(Raise::Arg(i as i32, msg));
                }
            }
        }
    }
    Ok(if *setting == 0 || *setting == 1 {
        Value::Boolean(*setting == 1)
    } else {
        Value::String(a.lua.create_string(options[*setting as usize])?)
    })
}

const BOOL_OPTIONS: &[&str] = &["off", "on"];

type CfgFn = fn(&mut Args, &mut Config) -> LResult<Vec<Value>>;

const CONFIG_FNS: &[(&str, CfgFn)] = &[
    ("encode_sparse_array", |a, c| {
        arg_init(a, 3)?;
        Ok(vec![
            enum_option(a, 1, &mut c.sparse_convert, BOOL_OPTIONS)?,
            integer_option(a, 2, &mut c.sparse_ratio, 0, i32::MAX)?,
            integer_option(a, 3, &mut c.sparse_safe, 0, i32::MAX)?,
        ])
    }),
    ("encode_max_depth", |a, c| {
        arg_init(a, 1)?;
        Ok(vec![integer_option(a, 1, &mut c.encode_max_depth, 1, i32::MAX)?])
    }),
    ("decode_max_depth", |a, c| {
        arg_init(a, 1)?;
        Ok(vec![integer_option(a, 1, &mut c.decode_max_depth, 1, i32::MAX)?])
    }),
    ("encode_number_precision", |a, c| {
        arg_init(a, 1)?;
        Ok(vec![integer_option(a, 1, &mut c.encode_number_precision, 1, 14)?])
    }),
    ("encode_keep_buffer", |a, c| {
        arg_init(a, 1)?;
        Ok(vec![enum_option(a, 1, &mut c.encode_keep_buffer, BOOL_OPTIONS)?])
    }),
    ("encode_invalid_numbers", |a, c| {
        arg_init(a, 1)?;
        Ok(vec![enum_option(a, 1, &mut c.encode_invalid_numbers, &["off", "on", "null"])?])
    }),
    ("decode_invalid_numbers", |a, c| {
        arg_init(a, 1)?;
        Ok(vec![enum_option(a, 1, &mut c.decode_invalid_numbers, BOOL_OPTIONS)?])
    }),
];

/// A `cjson` table with its own configuration (what `cjson.new()` returns).
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let shared: Shared = Arc::new(Mutex::new(Config::default()));
    let t = lua.create_table()?;
    let s = shared.clone();
    set_fn(lua, &t, "encode", move |lua, args| encode(&s, lua, args))?;
    let s = shared.clone();
    set_fn(lua, &t, "decode", move |lua, args| decode(&s, lua, args))?;
    for &(name, f) in CONFIG_FNS {
        let s = shared.clone();
        set_fn(lua, &t, name, move |lua, args| {
            let mut a = Args::new(lua, args);
            // Work on a copy so a failed call changes settings only as far as the C code does
            // (each option is stored as soon as it is checked).
            let mut c = cfg(&s).clone();
            let r = f(&mut a, &mut c);
            *cfg(&s) = c;
            Ok(MultiValue::from_vec(r?))
        })?;
    }
    set_fn(lua, &t, "new", |lua, _| one(Value::Table(create(lua)?)))?;
    t.set("null", null())?;
    t.set("_NAME", "cjson")?;
    t.set("_VERSION", "2.1.0")?;
    Ok(t)
}
