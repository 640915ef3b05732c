//! Type conversions between command replies and Lua values, both ways, exactly as Redis 7.0
//! documents them (`script_lua.c`: `redisProtocolToLuaType_*` and `luaReplyToRedisReply`), under
//! RESP2 and RESP3 (`redis.setresp(3)`).

use bytes::Bytes;
use mlua::{Lua, Table, Value};

use crate::resp::Frame;

/// Deeper than this, a returned table becomes an error (a cyclic table would never end). Redis
/// stops where its Lua stack ends (~8000 levels); the reply's conversion and encoding recurse on a
/// worker thread's stack here, so the limit is lower (the same error, earlier).
const MAX_DEPTH: usize = 200;

/// A command's reply as the script sees it, under the script's protocol `resp`. Error replies
/// become `{err = "CODE msg"}` tables (and the caller raises them for `redis.call`).
pub fn frame_to_lua(lua: &Lua, frame: &Frame, resp: u8) -> mlua::Result<Value> {
    let resp3 = resp == 3;
    Ok(match frame {
        Frame::Encoded(_) => return frame_to_lua(lua, &frame.clone().expand(), resp),
        Frame::Simple(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(s)?)?;
            Value::Table(t)
        }
        Frame::Error(s) => Value::Table(error_table(lua, s)?),
        Frame::Integer(n) => Value::Number(*n as f64),
        Frame::Bulk(b) => Value::String(lua.create_string(b)?),
        Frame::Null | Frame::NullArray => {
            if resp3 {
                Value::Nil
            } else {
                Value::Boolean(false)
            }
        }
        Frame::Array(items) => array(lua, items, resp)?,
        Frame::Set(items) if resp3 => {
            let inner = lua.create_table()?;
            for f in items {
                inner.raw_set(frame_to_lua(lua, f, resp)?, true)?;
            }
            wrap(lua, "set", Value::Table(inner))?
        }
        Frame::Set(items) => array(lua, items, resp)?,
        Frame::Map(pairs) if resp3 => {
            let inner = lua.create_table()?;
            for (k, v) in pairs {
                let k = frame_to_lua(lua, k, resp)?;
                if !k.is_nil() {
                    inner.raw_set(k, frame_to_lua(lua, v, resp)?)?;
                }
            }
            wrap(lua, "map", Value::Table(inner))?
        }
        Frame::Map(pairs) => {
            let t = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (k, v)) in pairs.iter().enumerate() {
                t.raw_set(2 * i + 1, frame_to_lua(lua, k, resp)?)?;
                t.raw_set(2 * i + 2, frame_to_lua(lua, v, resp)?)?;
            }
            Value::Table(t)
        }
        Frame::Verbatim(b) if resp3 => {
            let inner = lua.create_table()?;
            inner.raw_set("string", lua.create_string(b)?)?;
            inner.raw_set("format", "txt")?;
            wrap(lua, "verbatim_string", Value::Table(inner))?
        }
        Frame::Verbatim(b) => Value::String(lua.create_string(b)?),
        Frame::Double(b) if resp3 => {
            let x = parse_double(b);
            wrap(lua, "double", Value::Number(x))?
        }
        Frame::Double(b) => Value::String(lua.create_string(b)?),
        Frame::Boolean(b) if resp3 => Value::Boolean(*b),
        Frame::Boolean(b) => Value::Number(if *b { 1.0 } else { 0.0 }),
        Frame::BigNumber(b) if resp3 => wrap(lua, "big_number", Value::String(lua.create_string(b)?))?,
        Frame::BigNumber(b) => Value::String(lua.create_string(b)?),
        // Not replies of commands a script may call (SUBSCRIBE and its family are `noscript`).
        Frame::Push(items) | Frame::Seq(items) => array(lua, items, resp)?,
    })
}

/// Raw pushes onto a Lua stack: what `redis.call` hands back to the script, built straight on the
/// stack (no mlua values, no registry references). Each mirrors [`frame_to_lua`] exactly.
///
/// The caller must hold the VM's memory limit off (allocations then cannot raise a Lua error:
/// none of these functions may longjmp over the Rust frames that call them) and make the stack
/// room each function's doc asks for.
pub mod raw {
    use super::{Frame, error_text, parse_double};
    use mlua::ffi;

    /// Push a byte string.
    ///
    /// # Safety
    /// `state` is a valid Lua state with one free stack slot, its memory limit off.
    pub unsafe fn push_bytes(state: *mut ffi::lua_State, b: &[u8]) {
        // The C API's own call (mlua's wrapper also reads the string back); an empty one from a
        // valid pointer, as the wrapper does.
        let p: &[u8] = if b.is_empty() { b"\0" } else { b };
        // SAFETY: the caller's contract; Lua copies the bytes.
        unsafe {
            ffi::lua_pushlstring_(state, p.as_ptr().cast(), b.len());
        }
    }

    /// `t[name] = <the value on top>` for the table just below the top; pops the value.
    ///
    /// # Safety
    /// As [`push_bytes`], the table at -2 and the value at -1.
    unsafe fn set_field(state: *mut ffi::lua_State, name: &str) {
        // SAFETY: the caller's contract; the key is a string (never nil or NaN: rawset cannot raise).
        unsafe {
            push_bytes(state, name.as_bytes());
            ffi::lua_insert(state, -2);
            ffi::lua_rawset(state, -3);
        }
    }

    /// Push `{err = error_text(text, dashed)}`, with `ignore_error_stats_update = true` when `ignore`
    /// (the table of [`super::error_table`] when `dashed` and `ignore`).
    ///
    /// # Safety
    /// As [`push_bytes`], with three free stack slots.
    pub unsafe fn push_error_table(state: *mut ffi::lua_State, text: &[u8], dashed: bool, ignore: bool) {
        // Held without a pending destructor while Lua allocates (see `Caller::call` in `run`).
        let err = std::mem::ManuallyDrop::new(error_text(text, dashed));
        // SAFETY: the caller's contract.
        unsafe {
            ffi::lua_createtable(state, 0, 2);
            push_bytes(state, &err);
            set_field(state, "err");
            if ignore {
                ffi::lua_pushboolean(state, 1);
                set_field(state, "ignore_error_stats_update");
            }
        }
        drop(std::mem::ManuallyDrop::into_inner(err));
    }

    /// Push a one-field table `{field = <the value on top>}` in place of that value.
    ///
    /// # Safety
    /// As [`push_bytes`], with two free stack slots.
    unsafe fn wrap(state: *mut ffi::lua_State, field: &str) {
        // SAFETY: the caller's contract.
        unsafe {
            ffi::lua_createtable(state, 0, 1);
            ffi::lua_insert(state, -2);
            set_field(state, field);
        }
    }

    /// Push a command's reply as the script sees it under protocol `resp` ([`super::frame_to_lua`]).
    ///
    /// # Safety
    /// `state` is a valid Lua state with its memory limit off; the stack is grown here as needed.
    pub unsafe fn push_frame(state: *mut ffi::lua_State, frame: &Frame, resp: u8) {
        let resp3 = resp == 3;
        // SAFETY: the caller's contract; every push below has its room from this check.
        unsafe {
            if ffi::lua_checkstack(state, 6) == 0 {
                ffi::lua_pushnil(state);
                return;
            }
            match frame {
                Frame::Simple(s) => {
                    push_bytes(state, s);
                    wrap(state, "ok");
                }
                Frame::Error(s) => push_error_table(state, s, true, true),
                Frame::Encoded(_) => push_frame(state, &frame.clone().expand(), resp),
                Frame::Integer(n) => ffi::lua_pushnumber(state, *n as f64),
                Frame::Bulk(b) => push_bytes(state, b),
                Frame::Null | Frame::NullArray => {
                    if resp3 {
                        ffi::lua_pushnil(state)
                    } else {
                        ffi::lua_pushboolean(state, 0)
                    }
                }
                Frame::Array(items) | Frame::Push(items) | Frame::Seq(items) => push_array(state, items, resp),
                Frame::Set(items) if resp3 => {
                    ffi::lua_createtable(state, 0, items.len().min(1 << 20) as i32);
                    for f in items {
                        push_frame(state, f, resp);
                        set_true_unless_nil(state);
                    }
                    wrap(state, "set");
                }
                Frame::Set(items) => push_array(state, items, resp),
                Frame::Map(pairs) if resp3 => {
                    ffi::lua_createtable(state, 0, pairs.len().min(1 << 20) as i32);
                    for (k, v) in pairs {
                        push_frame(state, k, resp);
                        push_frame(state, v, resp);
                        rawset_unless_nil_key(state);
                    }
                    wrap(state, "map");
                }
                Frame::Map(pairs) => {
                    ffi::lua_createtable(state, (pairs.len() * 2).min(1 << 20) as i32, 0);
                    for (i, (k, v)) in pairs.iter().enumerate() {
                        push_frame(state, k, resp);
                        ffi::lua_rawseti(state, -2, 2 * i as ffi::lua_Integer + 1);
                        push_frame(state, v, resp);
                        ffi::lua_rawseti(state, -2, 2 * i as ffi::lua_Integer + 2);
                    }
                }
                Frame::Verbatim(b) if resp3 => {
                    ffi::lua_createtable(state, 0, 2);
                    push_bytes(state, b);
                    set_field(state, "string");
                    push_bytes(state, b"txt");
                    set_field(state, "format");
                    wrap(state, "verbatim_string");
                }
                Frame::Double(b) if resp3 => {
                    ffi::lua_pushnumber(state, parse_double(b));
                    wrap(state, "double");
                }
                Frame::BigNumber(b) if resp3 => {
                    push_bytes(state, b);
                    wrap(state, "big_number");
                }
                Frame::Verbatim(b) | Frame::Double(b) | Frame::BigNumber(b) => push_bytes(state, b),
                Frame::Boolean(b) if resp3 => ffi::lua_pushboolean(state, i32::from(*b)),
                Frame::Boolean(b) => ffi::lua_pushnumber(state, if *b { 1.0 } else { 0.0 }),
            }
        }
    }

    /// An array table of `items` (a nil item leaves its slot empty, as `raw_set` of nil does).
    ///
    /// # Safety
    /// As [`push_frame`], with two free stack slots.
    unsafe fn push_array(state: *mut ffi::lua_State, items: &[Frame], resp: u8) {
        // SAFETY: the caller's contract.
        unsafe {
            // With RESP3 nulls (nil elements) the table is laid out as Redis builds it (an empty
            // table, then t[i] = v for every i) or `#t` would differ (see `array`).
            let nils = resp == 3 && items.iter().any(|f| matches!(f, Frame::Null | Frame::NullArray));
            let room = if nils { 0 } else { items.len().min(1 << 20) as i32 };
            ffi::lua_createtable(state, room, 0);
            for (i, f) in items.iter().enumerate() {
                push_frame(state, f, resp);
                ffi::lua_rawseti(state, -2, i as ffi::lua_Integer + 1);
            }
        }
    }

    /// The key on top: `t[key] = true` for the table below it, unless the key is nil or NaN (which
    /// Lua refuses as keys; no command's set reply holds one); pops the key.
    ///
    /// # Safety
    /// As [`push_frame`], the table at -2 and the key at -1, one free slot.
    unsafe fn set_true_unless_nil(state: *mut ffi::lua_State) {
        // SAFETY: the caller's contract; rawset is reached only with a valid key.
        unsafe {
            if bad_key(state, -1) {
                ffi::lua_pop(state, 1);
                return;
            }
            ffi::lua_pushboolean(state, 1);
            ffi::lua_rawset(state, -3);
        }
    }

    /// Key at -2, value at -1: `t[key] = value` for the table at -3 unless the key is nil or NaN
    /// (as `frame_to_lua` skips nil keys); pops both.
    ///
    /// # Safety
    /// As [`push_frame`].
    unsafe fn rawset_unless_nil_key(state: *mut ffi::lua_State) {
        // SAFETY: the caller's contract; rawset is reached only with a valid key.
        unsafe {
            if bad_key(state, -2) {
                ffi::lua_pop(state, 2);
                return;
            }
            ffi::lua_rawset(state, -3);
        }
    }

    /// Whether the value at `idx` cannot be a table key (nil, NaN).
    ///
    /// # Safety
    /// `idx` is a valid index of `state`.
    unsafe fn bad_key(state: *mut ffi::lua_State, idx: i32) -> bool {
        // SAFETY: the caller's contract.
        unsafe {
            match ffi::lua_type(state, idx) {
                ffi::LUA_TNIL => true,
                ffi::LUA_TNUMBER => ffi::lua_tonumber(state, idx).is_nan(),
                _ => false,
            }
        }
    }
}

fn parse_double(b: &[u8]) -> f64 {
    match b {
        b"inf" | b"+inf" => f64::INFINITY,
        b"-inf" => f64::NEG_INFINITY,
        _ => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN),
    }
}

fn array(lua: &Lua, items: &[Frame], resp: u8) -> mlua::Result<Value> {
    // With RESP3 nulls (nil elements), the table must be laid out as Redis builds it (an empty
    // table, then t[i] = v for every i, nil included) or `#t` would differ; without them any
    // layout gives the same `#t` and order, so the array part is sized at once.
    let nils = resp == 3 && items.iter().any(|f| matches!(f, Frame::Null | Frame::NullArray));
    let t = if nils { lua.create_table()? } else { lua.create_table_with_capacity(items.len(), 0)? };
    for (i, f) in items.iter().enumerate() {
        t.raw_set(i + 1, frame_to_lua(lua, f, resp)?)?;
    }
    Ok(Value::Table(t))
}

fn wrap(lua: &Lua, field: &str, v: Value) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, v)?;
    Ok(Value::Table(t))
}

/// `luaPushErrorBuff("-" + text)` for a command's error reply `text` (`CODE msg`): the table
/// `{err = "CODE msg", ignore_error_stats_update = true}`.
pub fn error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(error_text(text, true))?)?;
    t.raw_set("ignore_error_stats_update", true)?;
    Ok(t)
}

/// `luaPushErrorBuff`: `-CODE msg` keeps its code, `-msg` (no space) and plain `msg` get `ERR`;
/// newlines at either end are trimmed.
pub fn error_text(text: &[u8], dashed: bool) -> Vec<u8> {
    let (code, msg): (&[u8], &[u8]) = if dashed {
        match text.iter().position(|&b| b == b' ') {
            Some(sp) => (&text[..sp], &text[sp + 1..]),
            None => (b"ERR", text),
        }
    } else {
        (b"ERR", text)
    };
    let msg = trim_newlines(msg);
    let mut out = Vec::with_capacity(code.len() + 1 + msg.len());
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(msg);
    out
}

fn trim_newlines(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b'\r' && b != b'\n').map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

/// `\r` and `\n` as spaces (status, error and big number replies must stay on one line).
fn one_line(s: &[u8]) -> Bytes {
    Bytes::from(s.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }).collect::<Vec<u8>>())
}

/// A script's return value as the reply to its caller (`luaReplyToRedisReply`); `resp` is the
/// protocol the script chose with `redis.setresp`.
pub fn lua_to_frame(v: &Value, resp: u8) -> Frame {
    to_frame(v, resp, 0)
}

fn to_frame(v: &Value, resp: u8, depth: usize) -> Frame {
    if depth > MAX_DEPTH {
        return Frame::Error(Bytes::from_static(b"ERR reached lua stack limit"));
    }
    match v {
        Value::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if resp == 3 => Frame::Boolean(*b),
        Value::Boolean(true) => Frame::Integer(1),
        Value::Boolean(false) => Frame::Null,
        Value::Number(n) => Frame::Integer(c_long_long(*n)),
        Value::Integer(n) => Frame::Integer(*n),
        Value::Table(t) => table_to_frame(t, resp, depth),
        _ => Frame::Null,
    }
}

/// C's `(long long)` cast of a double as x86-64 performs it: out of range or NaN gives `i64::MIN`.
fn c_long_long(x: f64) -> i64 {
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&x) { x as i64 } else { i64::MIN }
}

fn raw_string(t: &Table, field: &str) -> Option<Vec<u8>> {
    match t.raw_get::<Value>(field).ok()? {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

fn table_to_frame(t: &Table, resp: u8, depth: usize) -> Frame {
    if let Some(err) = raw_string(t, "err") {
        // addReplyErrorFormat("-%s"): the text as is (no ERR added) up to a NUL (a C string),
        // trailing newlines trimmed, inner ones made spaces.
        let trimmed = trim_end_newlines(c_str(&err));
        return Frame::Error(one_line(trimmed));
    }
    if let Some(ok) = raw_string(t, "ok") {
        // sdsnew(lua_tostring()): up to a NUL too.
        return Frame::Simple(one_line(c_str(&ok)));
    }
    // addReplyDouble: %.17g, a NaN with its sign.
    if let Ok(Value::Number(x)) = t.raw_get::<Value>("double") {
        return Frame::Double(Bytes::from(number_arg(x)));
    }
    if let Ok(Value::Integer(x)) = t.raw_get::<Value>("double") {
        return Frame::Double(Bytes::from(number_arg(x as f64)));
    }
    if let Some(big) = raw_string(t, "big_number") {
        return Frame::BigNumber(one_line(&big));
    }
    if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string")
        && raw_string(&v, "format").is_some()
        && let Some(s) = raw_string(&v, "string")
    {
        return Frame::Verbatim(Bytes::from(s));
    }
    if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
        let mut pairs = Vec::new();
        for (k, v) in m.pairs::<Value, Value>().flatten() {
            pairs.push((to_frame(&k, resp, depth + 1), to_frame(&v, resp, depth + 1)));
        }
        return Frame::Map(pairs);
    }
    if let Ok(Value::Table(s)) = t.raw_get::<Value>("set") {
        let mut items = Vec::new();
        for (k, _) in s.pairs::<Value, Value>().flatten() {
            items.push(to_frame(&k, resp, depth + 1));
        }
        return Frame::Set(items);
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(to_frame(&v, resp, depth + 1)),
        }
    }
    Frame::Array(items)
}

fn trim_end_newlines(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|&b| b != b'\r' && b != b'\n').map_or(0, |e| e + 1);
    &s[..end]
}

/// A Lua string as C code reads it (`lua_tostring` into `%s` or `sdsnew`): up to its first NUL.
pub fn c_str(s: &[u8]) -> &[u8] {
    &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())]
}

/// A Lua number as a command argument: C's `%.17g` (Lua's own conversion loses precision).
pub fn number_arg(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e17 {
        // %.17g keeps the sign of a negative zero.
        return if x == 0.0 && x.is_sign_negative() { "-0".to_string() } else { format!("{}", x as i64) };
    }
    if x.is_nan() {
        // glibc prints the sign of a NaN: 0/0 computed on x86 is negative ("-nan").
        return if x.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    crate::db::zset::score::format_score(x)
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn error_texts_keep_or_add_their_code() {
        assert_eq!(error_text(b"WRONGTYPE Operation", true), b"WRONGTYPE Operation");
        assert_eq!(error_text(b"OOPS", true), b"ERR OOPS");
        assert_eq!(error_text(b"plain message\r\n", false), b"ERR plain message");
    }

    /// Map and set items in a fixed order (Lua's `pairs` order depends on how a table grew).
    fn norm(f: Frame) -> Frame {
        let key = |f: &Frame| format!("{f:?}");
        match f {
            Frame::Array(items) => Frame::Array(items.into_iter().map(norm).collect()),
            Frame::Set(items) => {
                let mut items: Vec<Frame> = items.into_iter().map(norm).collect();
                items.sort_by_key(key);
                Frame::Set(items)
            }
            Frame::Map(pairs) => {
                let mut pairs: Vec<(Frame, Frame)> = pairs.into_iter().map(|(k, v)| (norm(k), norm(v))).collect();
                pairs.sort_by_key(|(k, _)| key(k));
                Frame::Map(pairs)
            }
            other => other,
        }
    }

    #[test]
    fn raw_pushes_build_what_frame_to_lua_builds() {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let frames = vec![
            Frame::Simple(b("OK")),
            Frame::Error(b("WRONGTYPE Operation against a key")),
            Frame::Error(b("oops\r\n")),
            Frame::Integer(-5),
            Frame::Integer(1 << 40),
            Frame::Bulk(b("")),
            Frame::Bulk(Bytes::from_static(b"bin\0ary")),
            Frame::Null,
            Frame::NullArray,
            Frame::Array(vec![]),
            Frame::Array(vec![Frame::Bulk(b("a")), Frame::Null, Frame::Array(vec![Frame::Integer(1)])]),
            Frame::Set(vec![Frame::Bulk(b("x")), Frame::Bulk(b("y")), Frame::Integer(3)]),
            Frame::Map(vec![(Frame::Bulk(b("f")), Frame::Integer(1)), (Frame::Bulk(b("g")), Frame::Null)]),
            Frame::Verbatim(b("some text")),
            Frame::Double(b("1.5")),
            Frame::Double(b("-inf")),
            Frame::Boolean(true),
            Frame::Boolean(false),
            Frame::BigNumber(b("12345678901234567890")),
            Frame::Push(vec![Frame::Bulk(b("message"))]),
        ];
        let lua = Lua::new();
        for resp in [2u8, 3] {
            for f in &frames {
                let want = frame_to_lua(&lua, f, resp).unwrap();
                // SAFETY: one push onto the stack mlua hands the closure, inside its protected call.
                let got: Value = unsafe { lua.exec_raw((), |state| raw::push_frame(state, f, resp)) }.unwrap();
                assert_eq!(norm(lua_to_frame(&got, 3)), norm(lua_to_frame(&want, 3)), "{f:?} under RESP{resp}");
                if let (Value::Table(g), Value::Table(w)) = (&got, &want) {
                    let flag = |t: &Table| t.raw_get::<Value>("ignore_error_stats_update").unwrap();
                    assert_eq!(flag(g), flag(w), "{f:?}");
                }
            }
        }
    }

    #[test]
    fn numbers_as_arguments_are_printed_as_17g() {
        assert_eq!(number_arg(1.0), "1");
        assert_eq!(number_arg(-3.0), "-3");
        assert_eq!(number_arg(0.1), "0.10000000000000001");
        assert_eq!(number_arg(1e20), "1e+20");
        assert_eq!(number_arg(2.5), "2.5");
        assert_eq!(number_arg(f64::INFINITY), "inf");
        assert_eq!(number_arg(-f64::INFINITY), "-inf");
        assert_eq!(number_arg(-f64::NAN), "-nan");
        assert_eq!(number_arg(f64::NAN), "nan");
        assert_eq!(number_arg(-0.0), "-0");
        assert_eq!(number_arg(0.0), "0");
    }
}
