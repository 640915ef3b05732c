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

fn parse_double(b: &[u8]) -> f64 {
    match b {
        b"inf" | b"+inf" => f64::INFINITY,
        b"-inf" => f64::NEG_INFINITY,
        _ => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN),
    }
}

fn array(lua: &Lua, items: &[Frame], resp: u8) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
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
        // addReplyErrorFormat("-%s"): the text as is (no ERR added), trailing newlines trimmed,
        // inner ones made spaces.
        let trimmed = trim_end_newlines(&err);
        return Frame::Error(one_line(trimmed));
    }
    if let Some(ok) = raw_string(t, "ok") {
        return Frame::Simple(one_line(&ok));
    }
    if let Ok(Value::Number(x)) = t.raw_get::<Value>("double") {
        return Frame::Double(Bytes::from(crate::db::zset::score::format_score(x)));
    }
    if let Ok(Value::Integer(x)) = t.raw_get::<Value>("double") {
        return Frame::Double(Bytes::from(crate::db::zset::score::format_score(x as f64)));
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

/// A Lua number as a command argument: C's `%.17g` (Lua's own conversion loses precision).
pub fn number_arg(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e17 {
        return format!("{}", x as i64);
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

    #[test]
    fn numbers_as_arguments_are_printed_as_17g() {
        assert_eq!(number_arg(1.0), "1");
        assert_eq!(number_arg(-3.0), "-3");
        assert_eq!(number_arg(0.1), "0.10000000000000001");
        assert_eq!(number_arg(1e20), "1e+20");
        assert_eq!(number_arg(2.5), "2.5");
    }
}
