//! The libraries against replies recorded from a real redis-server 7.0.15.
//!
//! tests/lualib/expected.txt holds one case a line: a Lua function body and, after a tab, what
//! EVAL of tests/lualib/wrapper.lua around it returned on redis-server 7.0.15 (recorded by
//! `tests/clients/lualib_vs_redis.py PORT --record`). The wrapper turns the body's results or
//! error into one printable line with a Lua `dump`, so the same Lua code prints them here on a plain
//! mlua state with [`load_all`], and the lines must be equal byte for byte. The cases run in file
//! order on one state, as they ran on one Redis (the cjson settings persist between them).

use super::*;
use mlua::{Lua, StdLib};

const WRAPPER: &str = include_str!("../../tests/lualib/wrapper.lua");
const EXPECTED: &str = include_str!("../../tests/lualib/expected.txt");

/// A state with the standard libraries Redis opens and ours.
fn state() -> Lua {
    let lua = Lua::new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG, mlua::LuaOptions::default());
    let lua = match lua {
        Ok(l) => l,
        // SAFETY: only the debug library makes `new_with` refuse; tests need no sandbox.
        Err(_) => unsafe { Lua::unsafe_new() },
    };
    load_all(&lua).expect("load_all");
    lua
}

/// Runs one wrapped case as Redis runs a script (chunk `@user_script`), giving the reply text.
fn run(lua: &Lua, body: &str) -> String {
    let src = WRAPPER.trim().replace("BODY", body);
    match lua.load(&src).set_name("@user_script").eval::<mlua::LuaString>() {
        Ok(s) => s.as_bytes().iter().map(|&b| b as char).collect(),
        Err(e) => format!("EVALERROR {e}"),
    }
}

#[test]
fn recorded_redis_cases() {
    // On a small stack: deep and cyclic tables, and hostile nesting, must not exhaust it.
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(recorded_redis_cases_on_this_thread)
        .expect("spawn")
        .join()
        .expect("cases passed");
}

fn recorded_redis_cases_on_this_thread() {
    check_recorded(EXPECTED, 300);
}

/// Replays a file of extra recorded cases (e.g. from tests/clients/lualib_fuzz.py) named by the
/// LUALIB_EXTRA environment variable; nothing to do without it.
#[test]
fn extra_recorded_cases() {
    let Ok(path) = std::env::var("LUALIB_EXTRA") else { return };
    let text = std::fs::read(&path).expect("LUALIB_EXTRA file");
    // The recorder writes Latin-1: map bytes to chars one to one, as it does.
    let text: String = text.iter().map(|&b| b as char).collect();
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || check_recorded(&text, 1))
        .expect("spawn")
        .join()
        .expect("cases passed");
}

fn check_recorded(expected: &str, min: usize) {
    let lua = state();
    let mut bad = Vec::new();
    let mut n = 0;
    for line in expected.lines() {
        let (body, want) = line.split_once('\t').expect("case<TAB>reply");
        let got = run(&lua, body);
        n += 1;
        if got != want {
            bad.push(format!("{body}\n  want {want}\n  got  {got}"));
        }
    }
    assert!(n >= min, "only {n} cases");
    assert!(bad.is_empty(), "{} of {n} cases differ from Redis:\n{}", bad.len(), bad.join("\n"));
}

/// The first `math.random()` values of a fresh redis-server 7.0.15 (`EVAL "return
/// tostring(math.random())" 0` twice after start): the rand48 initial state, never reseeded.
#[test]
fn rand48_initial_state_matches_fresh_redis() {
    let mut r = random::Rand48::default();
    let mut next = || (r.next_value() % random::LRAND48_MAX) as f64 / random::LRAND48_MAX as f64;
    assert_eq!(fmt_g(next(), 14), "0.39646477363839");
    assert_eq!(fmt_g(next(), 14), "0.84048536971234");
    // `math.randomseed(1); return {math.random(100), math.random(100)}` gave 5, 46.
    let mut r = random::Rand48::seed(1);
    let mut pick = || ((r.next_value() % random::LRAND48_MAX) as f64 / 2147483647.0 * 100.0).floor() + 1.0;
    assert_eq!((pick(), pick()), (5.0, 46.0));
}

#[test]
fn fmt_g_is_printf() {
    let cases: &[(f64, usize, &str)] = &[
        (0.0, 14, "0"),
        (-0.0, 14, "-0"),
        (1.0, 14, "1"),
        (0.1, 14, "0.1"),
        (1.0 / 3.0, 14, "0.33333333333333"),
        (1e14, 14, "1e+14"),
        (123456789012345.0, 14, "1.2345678901234e+14"),
        (99999999999999.0, 14, "99999999999999"),
        (999999999999999.0, 14, "1e+15"),
        (0.0001, 14, "0.0001"),
        (0.00001, 14, "1e-05"),
        (1.5e-7, 14, "1.5e-07"),
        (1e100, 14, "1e+100"),
        (5e-324, 14, "4.9406564584125e-324"),
        (0.25, 1, "0.2"),
        (15.0, 1, "2e+01"),
        (12345.0, 3, "1.23e+04"),
        (f64::INFINITY, 14, "inf"),
        (f64::NEG_INFINITY, 14, "-inf"),
    ];
    for &(x, p, want) in cases {
        assert_eq!(fmt_g(x, p), want, "%.{p}g of {x:e}");
    }
}

#[test]
fn strtod_prefixes() {
    let t = |s: &str| cjson::strtod(s.as_bytes(), 0);
    assert_eq!(t("12abc"), Some((12.0, 2)));
    assert_eq!(t("-1.5e3,"), Some((-1500.0, 6)));
    assert_eq!(t("1.e"), Some((1.0, 2)));
    assert_eq!(t(".5"), Some((0.5, 2)));
    assert_eq!(t("0x1p4"), Some((16.0, 5)));
    assert_eq!(t("0x.8"), Some((0.5, 4)));
    assert_eq!(t("0xg"), Some((0.0, 1)));
    assert_eq!(t("Infinity"), Some((f64::INFINITY, 8)));
    assert_eq!(t("-inf"), Some((f64::NEG_INFINITY, 4)));
    assert_eq!(t("-"), None);
    assert_eq!(t("e5"), None);
    let (n, e) = t("nan(12)x").unwrap();
    assert!(n.is_nan() && e == 7);
    assert_eq!(t("0x1.fffffffffffff8p0").map(|x| x.0), Some(2.0));
}

#[test]
fn c_conversions_match_x86() {
    assert_eq!(c_double_to_i64(f64::NAN), i64::MIN);
    assert_eq!(c_double_to_i64(1e19), i64::MIN);
    assert_eq!(c_double_to_i64(-1.9), -1);
    assert_eq!(c_double_to_i32(2147483648.0), i32::MIN);
    assert_eq!(c_double_to_i32(-2147483648.9), i32::MIN);
    assert_eq!(c_double_to_u64(f64::NAN), 1 << 63);
    assert_eq!(c_double_to_u64(1e19), 10_000_000_000_000_000_000);
    assert_eq!(c_double_to_u64(f64::INFINITY), 0);
    assert_eq!(bit::tobit(4294967297.0), 1);
    assert_eq!(bit::tobit(-1.0), u32::MAX);
}

/// redis-server aborts encoding a 2^31-element sparse array once the sparse check is off; we
/// refuse it with Lua's memory error before allocating anything.
#[test]
fn cjson_refuses_output_beyond_proto_max_bulk_len() {
    let lua = state();
    let r = run(&lua, "local c = cjson.new() c.encode_sparse_array(false, 0) return c.encode({[2^31-1]=1})");
    assert_eq!(r, r#"boolean:false "not enough memory""#);
    let r = run(&lua, "local c = cjson.new() c.encode_sparse_array(false, 0) return #c.encode({[1000]=1})");
    assert_eq!(r, "boolean:true 4998");
}

/// Outside a script invocation (FUNCTION LOAD's library body) Redis refuses the generator.
#[test]
fn random_outside_an_invocation_is_refused() {
    let lua = state();
    random::set_outside_invocation(&lua, true);
    assert_eq!(
        run(&lua, "return math.random()"),
        r#"boolean:false "user_script:1: math.random can only be called inside a script invocation""#
    );
    assert_eq!(
        run(&lua, "math.randomseed(1)"),
        r#"boolean:false "user_script:1: math.randomseed can only be called inside a script invocation""#
    );
    random::set_outside_invocation(&lua, false);
    assert_eq!(run(&lua, "return type(math.random())"), r#"boolean:true "number""#);
}

/// Under a Lua memory limit (the scripting core may set one) the libraries fail with Lua's
/// memory error, and the state stays usable.
#[test]
fn memory_limit_gives_lua_memory_error() {
    let lua = state();
    let before = lua.used_memory();
    lua.set_memory_limit(before + (256 << 10)).expect("limit");
    let r = run(&lua, "return #cjson.decode('[' .. string.rep('\"abcdefghij\",', 100000) .. '1]')");
    assert!(r.contains("not enough memory"), "{r}");
    let r = run(&lua, "return #cmsgpack.unpack(cmsgpack.pack(string.rep('x', 1000000)))");
    assert!(r.contains("not enough memory"), "{r}");
    lua.set_memory_limit(0).expect("no limit");
    assert_eq!(run(&lua, "return cjson.encode({1})"), r#"boolean:true "[1]""#);
}

/// Rough speed of the libraries on typical payloads (run in release with `--ignored
/// --nocapture`; compare with the same script under redis-server's EVAL, e.g. `redis-cli EVAL`
/// of PERF_SETUP .. one phase, 20 times). Asserts nothing about time.
#[test]
#[ignore]
fn perf_report() {
    let lua = state();
    const SETUP: &str = "local t = {} for i = 1, 1000 do t['key' .. i] = {id = i, name = 'item' .. i, \
                         tags = {'a', 'b', 'c'}, price = i * 1.25, ok = true} end \
                         local s = cjson.encode(t) local m = cmsgpack.pack(t) local n = 0 ";
    for (name, body) in [
        ("setup only", ""),
        ("cjson.encode", "for i = 1, 20 do n = n + #cjson.encode(t) end"),
        ("cjson.decode", "for i = 1, 20 do n = n + #cjson.decode(s) end"),
        ("cmsgpack.pack", "for i = 1, 20 do n = n + #cmsgpack.pack(t) end"),
        ("cmsgpack.unpack", "for i = 1, 20 do n = n + #cmsgpack.unpack(m) end"),
        ("struct+bit", "for i = 1, 200000 do n = n + struct.unpack('>I', struct.pack('>I', i)) + bit.band(i, 7) end"),
    ] {
        let f = lua.load(format!("{SETUP} {body} return n")).into_function().expect("load");
        let t = std::time::Instant::now();
        let _: f64 = f.call(()).expect("run");
        eprintln!("perf_report: {name}: {:?}", t.elapsed());
    }
}

/// cjson's `lua_next`: a whole walk equals pairs(); a key no longer in the table takes the
/// protected path, where Lua's "invalid key to 'next'" is an error, not a crash.
#[test]
fn next_entry_walks_like_pairs_and_survives_a_missing_key() {
    let lua = state();
    let t: mlua::Table = lua.load("return {1, 2, 3, a = 'x', b = {}, [2.5] = true}").eval().unwrap();
    let mut walked = Vec::new();
    let mut key = mlua::Value::Nil;
    while let Some((k, v)) = cjson::next_entry(&lua, &t, key).unwrap() {
        walked.push((format!("{k:?}"), format!("{v:?}")));
        key = k;
    }
    let pairs: Vec<_> = t
        .pairs::<mlua::Value, mlua::Value>()
        .map(|p| p.unwrap())
        .map(|(k, v)| (format!("{k:?}"), format!("{v:?}")))
        .collect();
    assert_eq!(walked, pairs);
    let missing = mlua::Value::String(lua.create_string("nope").unwrap());
    assert!(cjson::next_entry(&lua, &t, missing).is_err());
}
