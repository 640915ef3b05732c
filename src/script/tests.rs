//! Scripting through the real dispatcher: replies asserted byte for byte as redis-server 7.0.15
//! gives them (each text below was checked against it).

use bytes::Bytes;

use crate::cmd::testing::{Harness, arr, bulk, err, int, ok};
use crate::resp::Frame;

fn eval(h: &mut Harness, script: &str, keys: &[&str], args: &[&str]) -> Frame {
    let n = keys.len().to_string();
    let mut argv = vec!["EVAL", script, &n];
    argv.extend_from_slice(keys);
    argv.extend_from_slice(args);
    h.run(&argv)
}

fn sha(s: &str) -> String {
    String::from_utf8(super::sha1::sha1_hex(s.as_bytes()).to_vec()).unwrap()
}

fn script_err(text: &str, script: &str, line: u32) -> Frame {
    err(&format!("{text} script: {}, on @user_script:{line}.", sha(script)))
}

#[test]
fn values_convert_from_lua_as_redis_documents() {
    let mut h = Harness::new();
    assert_eq!(eval(&mut h, "return 1", &[], &[]), int(1));
    assert_eq!(eval(&mut h, "return 3.99", &[], &[]), int(3));
    assert_eq!(eval(&mut h, "return -3.5", &[], &[]), int(-3));
    assert_eq!(eval(&mut h, "return 'x'", &[], &[]), bulk("x"));
    assert_eq!(eval(&mut h, "return true", &[], &[]), int(1));
    assert_eq!(eval(&mut h, "return false", &[], &[]), Frame::Null);
    assert_eq!(eval(&mut h, "return nil", &[], &[]), Frame::Null);
    assert_eq!(
        eval(&mut h, "return {1, 2.9, -3.5, 'x', nil, 'y'}", &[], &[]),
        arr(vec![int(1), int(2), int(-3), bulk("x")])
    );
    assert_eq!(eval(&mut h, "return {true, false, true}", &[], &[]), arr(vec![int(1), Frame::Null, int(1)]));
    assert_eq!(eval(&mut h, "return {ok = 'FINE'}", &[], &[]), Frame::simple("FINE"));
    assert_eq!(eval(&mut h, "return {err = 'MYERR custom failure'}", &[], &[]), err("MYERR custom failure"));
    assert_eq!(eval(&mut h, "return {err = 'oops'}", &[], &[]), err("oops"));
    assert_eq!(eval(&mut h, "return redis.error_reply('OOPS')", &[], &[]), err("ERR OOPS"));
    assert_eq!(eval(&mut h, "return redis.error_reply('MY fail')", &[], &[]), err("MY fail"));
    assert_eq!(eval(&mut h, "return redis.status_reply('ALLGOOD')", &[], &[]), Frame::simple("ALLGOOD"));
    assert_eq!(eval(&mut h, "return {double = 3.5}", &[], &[]), Frame::Double(Bytes::from_static(b"3.5")));
    assert_eq!(eval(&mut h, "return {1, {2, {3, 'deep'}}, {}}", &[], &[]).to_resp2(), {
        arr(vec![int(1), arr(vec![int(2), arr(vec![int(3), bulk("deep")])]), arr(vec![])])
    });
    assert_eq!(eval(&mut h, "return tonumber(ARGV[1])", &[], &["1e30"]), int(i64::MIN));
    assert_eq!(eval(&mut h, "return #KEYS * 100 + #ARGV", &["a", "b"], &["c"]), int(201));
}

#[test]
fn resp3_values_convert_both_ways_after_setresp_3() {
    let mut h = Harness::new();
    h.run(&["HSET", "h", "a", "1"]);
    assert_eq!(
        eval(&mut h, "redis.setresp(3) return redis.call('hgetall', KEYS[1])", &["h"], &[]),
        Frame::Map(vec![(bulk("a"), bulk("1"))])
    );
    assert_eq!(eval(&mut h, "redis.setresp(3) return redis.call('hgetall', KEYS[1]).map.a", &["h"], &[]), bulk("1"));
    assert_eq!(
        eval(&mut h, "redis.setresp(3) return redis.call('get', 'nokey') == nil", &[], &[]),
        Frame::Boolean(true)
    );
    assert_eq!(eval(&mut h, "return redis.call('get', 'nokey') == false", &[], &[]), int(1));
    assert_eq!(eval(&mut h, "redis.setresp(3) return false", &[], &[]), Frame::Boolean(false));
    assert_eq!(eval(&mut h, "return {big_number = '123'}", &[], &[]), Frame::BigNumber(Bytes::from_static(b"123")));
    assert_eq!(eval(&mut h, "return {set = {a = true}}", &[], &[]), Frame::Set(vec![bulk("a")]));
    assert_eq!(
        eval(&mut h, "return redis.setresp(4)", &[], &[]),
        script_err("ERR RESP version must be 2 or 3.", "return redis.setresp(4)", 1)
    );
}

#[test]
fn errors_carry_their_line_and_script_as_redis_formats_them() {
    let mut h = Harness::new();
    let s = "x = 5";
    assert_eq!(eval(&mut h, s, &[], &[]), script_err("ERR user_script:1: Attempt to modify a readonly table", s, 1));
    let s = "return undefined_global_var";
    assert_eq!(
        eval(&mut h, s, &[], &[]),
        script_err(
            "ERR user_script:1: Script attempted to access nonexistent global variable 'undefined_global_var'",
            s,
            1
        )
    );
    let s = "local a = 1\nerror('boom')";
    assert_eq!(eval(&mut h, s, &[], &[]), script_err("ERR user_script:2: boom", s, 2));
    let s = "return redis.call('nosuchcommand', 'x')";
    assert_eq!(eval(&mut h, s, &[], &[]), script_err("ERR Unknown Redis command called from script", s, 1));
    let s = "return redis.call('get')";
    assert_eq!(
        eval(&mut h, s, &[], &[]),
        script_err("ERR Wrong number of args calling Redis command from script", s, 1)
    );
    let s = "return redis.call()";
    assert_eq!(
        eval(&mut h, s, &[], &[]),
        script_err("ERR Please specify at least one argument for this redis lib call", s, 1)
    );
    let s = "return redis.call('exec')";
    assert_eq!(eval(&mut h, s, &[], &[]), script_err("ERR This Redis command is not allowed from script", s, 1));
    let s = "return rawset(_G, 'x', 1)";
    assert_eq!(eval(&mut h, s, &[], &[]), script_err("ERR Attempt to modify a readonly table", s, 1));
    let s = "error({err='X y'})";
    assert_eq!(eval(&mut h, s, &[], &[]), script_err("X y", s, 1));
    h.run(&["SET", "s", "abc"]);
    let s = "return redis.call('incr', 's')";
    assert_eq!(eval(&mut h, s, &[], &[]), script_err("ERR value is not an integer or out of range", s, 1));
    assert_eq!(
        eval(&mut h, "return redis.pcall('incr', 's')", &[], &[]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        eval(&mut h, "return {pcall(redis.call, 'incr', 's')}", &[], &[]),
        arr(vec![Frame::Null, bulk("ERR value is not an integer or out of range")])
    );
    assert_eq!(
        eval(&mut h, "return +", &[], &[]),
        err("ERR Error compiling script (new function): user_script:1: unexpected symbol near '+'")
    );
}

#[test]
fn the_sandbox_has_what_redis_has() {
    let mut h = Harness::new();
    for absent in ["os", "io", "print", "dofile", "loadfile", "debug", "require", "module", "setfenv", "getfenv"] {
        let s = format!("return type({absent})");
        assert_eq!(
            eval(&mut h, &s, &[], &[]),
            script_err(
                &format!("ERR user_script:1: Script attempted to access nonexistent global variable '{absent}'"),
                &s,
                1
            ),
            "{absent}"
        );
    }
    for present in ["loadstring", "pcall", "unpack", "tonumber", "gcinfo", "collectgarbage"] {
        assert_eq!(eval(&mut h, &format!("return type({present})"), &[], &[]), bulk("function"), "{present}");
    }
    assert_eq!(eval(&mut h, "return _VERSION", &[], &[]), bulk("Lua 5.1"));
    assert_eq!(
        eval(
            &mut h,
            "return {redis.REDIS_VERSION, redis.REDIS_VERSION_NUM, redis.LOG_WARNING, redis.REPL_ALL}",
            &[],
            &[]
        ),
        arr(vec![bulk("7.0.15"), int(458767), int(3), int(3)])
    );
    let s = "redis.call = nil";
    assert_eq!(eval(&mut h, s, &[], &[]), script_err("ERR user_script:1: Attempt to modify a readonly table", s, 1));
    let s = "string.x = 1";
    assert_eq!(eval(&mut h, s, &[], &[]), script_err("ERR user_script:1: Attempt to modify a readonly table", s, 1));
    assert_eq!(eval(&mut h, "return loadstring(string.dump(function() end))", &[], &[]), Frame::Null);
    assert_eq!(eval(&mut h, "return redis.sha1hex('')", &[], &[]), bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709"));
    // Deep recursion and a cyclic table end in errors, not crashes.
    assert!(matches!(eval(&mut h, "local function f() return f() + 1 end return f()", &[], &[]), Frame::Error(_)));
    assert!(matches!(eval(&mut h, "local t = {} t[1] = t return t", &[], &[]).to_resp2(), Frame::Array(_)));
}

#[test]
fn numkeys_and_evalsha_are_checked_as_redis_does() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["EVAL", "return 1", "3", "a"]), err("ERR Number of keys can't be greater than number of args"));
    assert_eq!(h.run(&["EVAL", "return 1", "-1"]), err("ERR Number of keys can't be negative"));
    assert_eq!(h.run(&["EVAL", "return 1", "x"]), err("ERR value is not an integer or out of range"));
    assert_eq!(h.run(&["EVALSHA", "abc", "0"]), err("NOSCRIPT No matching script. Please use EVAL."));
    let s = "return 'loaded'";
    assert_eq!(h.run(&["SCRIPT", "LOAD", s]), bulk(&sha(s)));
    assert_eq!(h.run(&["EVALSHA", &sha(s).to_uppercase(), "0"]), bulk("loaded"));
    assert_eq!(h.run(&["SCRIPT", "EXISTS", &sha(s), &"0".repeat(40)]), arr(vec![int(1), int(0)]));
    assert_eq!(h.run(&["SCRIPT", "FLUSH", "BOGUS"]), err("ERR SCRIPT FLUSH only support SYNC|ASYNC option"));
    assert_eq!(h.run(&["SCRIPT", "FLUSH", "ASYNC"]), ok());
    assert_eq!(h.run(&["EVALSHA", &sha(s), "0"]), err("NOSCRIPT No matching script. Please use EVAL."));
    assert_eq!(h.run(&["SCRIPT", "KILL"]), err("NOTBUSY No scripts in execution right now."));
    assert_eq!(
        h.run(&["SCRIPT", "LOAD", "return +"]),
        err("ERR Error compiling script (new function): user_script:1: unexpected symbol near '+'")
    );
}

#[test]
fn read_only_scripts_refuse_writes() {
    let mut h = Harness::new();
    let s = "#!lua flags=no-writes\nreturn redis.call('del', KEYS[1])";
    assert_eq!(
        eval(&mut h, s, &["k"], &[]),
        script_err("ERR Write commands are not allowed from read-only scripts.", s, 2)
    );
    let s = "return redis.call('del', KEYS[1])";
    let r = h.run(&["EVAL_RO", s, "1", "k"]);
    assert_eq!(r, script_err("ERR Write commands are not allowed from read-only scripts.", s, 1));
    let s = "#!lua\nreturn redis.call('del', KEYS[1])";
    assert_eq!(
        h.run(&["EVAL_RO", s, "1", "k"]),
        err("ERR Can not execute a script with write flag using *_ro command.")
    );
    assert_eq!(
        h.run(&["EVAL", "#!lua flags=bogus\nreturn 1", "0"]),
        err("ERR Unexpected flag in script shebang: bogus")
    );
    assert_eq!(h.run(&["EVAL", "#!lua", "0"]), err("ERR Invalid script shebang"));
    assert_eq!(h.run(&["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "k"]), Frame::Null);
}

#[test]
fn scripts_write_and_their_writes_stay_after_an_error() {
    let mut h = Harness::new();
    let s = "redis.call('set', KEYS[1], 'written') error('after write')";
    assert_eq!(eval(&mut h, s, &["k"], &[]), script_err("ERR user_script:1: after write", s, 1));
    assert_eq!(h.run(&["GET", "k"]), bulk("written"));
    // Numbers as arguments are printed with %.17g.
    assert_eq!(eval(&mut h, "return redis.call('set', KEYS[1], 0.1)", &["x"], &[]), ok());
    assert_eq!(h.run(&["GET", "x"]), bulk("0.10000000000000001"));
    // An undeclared key works too (the script then holds every stripe).
    assert_eq!(eval(&mut h, "redis.call('incr', 'other') return redis.call('incr', KEYS[1])", &["n"], &[]), int(1));
    assert_eq!(h.run(&["GET", "other"]), bulk("1"));
    // SELECT inside a script changes only the script's database.
    assert_eq!(eval(&mut h, "redis.call('select', 1) return redis.call('set', 'in1', 'v')", &[], &[]), ok());
    assert_eq!(h.run(&["EXISTS", "in1"]), int(0));
    h.run(&["SELECT", "1"]);
    assert_eq!(h.run(&["GET", "in1"]), bulk("v"));
}

#[test]
fn scripts_run_inside_multi_exec() {
    let mut h = Harness::new();
    h.run(&["MULTI"]);
    h.run(&["EVAL", "return redis.call('incr', KEYS[1])", "1", "c"]);
    h.run(&["INCR", "c"]);
    assert_eq!(h.run(&["EXEC"]), arr(vec![int(1), int(2)]));
    // A library loaded and called in one transaction (EXEC holds every stripe for both).
    h.run(&["MULTI"]);
    h.run(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=t\nredis.register_function('tf', function(k) return redis.call('incr', k[1]) end)",
    ]);
    h.run(&["FCALL", "tf", "1", "c"]);
    assert_eq!(h.run(&["EXEC"]), arr(vec![bulk("t"), int(3)]));
}

#[test]
fn only_a_running_script_is_in_a_script_run() {
    assert!(!super::run::in_script_run());
    let mut h = Harness::new();
    assert_eq!(eval(&mut h, "return 1", &[], &[]), int(1));
    assert!(!super::run::in_script_run());
}

#[test]
fn vms_are_reused_and_every_vm_sees_script_flush() {
    let mut h = Harness::new();
    for _ in 0..20 {
        assert_eq!(eval(&mut h, "return 1", &[], &[]), int(1));
    }
    assert_eq!(h.shared.scripting.vm_count(), 1, "one client, one VM, reused");
    assert!(h.shared.scripting.lua_memory() > 0);
    assert_eq!(h.shared.scripting.script_count(), 1);
    let Frame::Verbatim(info) = h.run(&["INFO", "memory"]) else { panic!() };
    let info = String::from_utf8_lossy(&info).into_owned();
    assert!(info.contains("number_of_cached_scripts:1\r\n"), "{info}");
    assert!(!info.contains("used_memory_lua:0\r\n"), "{info}");
    h.run(&["SCRIPT", "FLUSH"]);
    assert_eq!(h.shared.scripting.script_count(), 0);
}

#[test]
fn functions_load_list_call_and_delete_as_redis_does() {
    let mut h = Harness::new();
    let lib = "#!lua name=lib1\nredis.register_function('f1', function(keys, args) return redis.call('set', keys[1], args[1]) end)\nredis.register_function{function_name='f2', callback=function(keys, args) error('bad') end, flags={'no-writes'}, description='d'}";
    assert_eq!(h.run(&["FUNCTION", "LOAD", lib]), bulk("lib1"));
    assert_eq!(h.run(&["FUNCTION", "LOAD", lib]), err("ERR Library 'lib1' already exists"));
    assert_eq!(h.run(&["FCALL", "f1", "1", "k", "v"]), ok());
    assert_eq!(h.run(&["GET", "k"]), bulk("v"));
    assert_eq!(h.run(&["FCALL", "f2", "0"]), err("ERR user_function:3: bad script: f2, on @user_function:3."));
    assert_eq!(
        h.run(&["FCALL_RO", "f1", "1", "k", "v"]),
        err("ERR Can not execute a script with write flag using *_ro command.")
    );
    assert_eq!(h.run(&["FCALL", "nosuch", "0"]), err("ERR Function not found"));
    assert_eq!(h.run(&["FCALL", "f1", "x"]), err("ERR Bad number of keys provided"));
    assert_eq!(h.run(&["FCALL", "f1", "5", "k"]), err("ERR Number of keys can't be greater than number of args"));
    let Frame::Array(list) = h.run(&["FUNCTION", "LIST"]) else { panic!() };
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0].to_resp2(),
        arr(vec![
            bulk("library_name"),
            bulk("lib1"),
            bulk("engine"),
            bulk("LUA"),
            bulk("functions"),
            arr(vec![
                arr(vec![bulk("name"), bulk("f1"), bulk("description"), Frame::Null, bulk("flags"), arr(vec![])]),
                arr(vec![
                    bulk("name"),
                    bulk("f2"),
                    bulk("description"),
                    bulk("d"),
                    bulk("flags"),
                    arr(vec![Frame::simple("no-writes")])
                ]),
            ])
        ])
    );
    assert_eq!(
        h.run(&["FUNCTION", "LOAD", "#!lua name=x\nreturn string.len('a')"]),
        err(
            "ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'string'"
        )
    );
    assert_eq!(h.run(&["FUNCTION", "LOAD", "#!lua name=x\nlocal x = 1"]), err("ERR No functions registered"));
    assert_eq!(h.run(&["FUNCTION", "LOAD", "return 1"]), err("ERR Missing library metadata"));
    assert_eq!(
        h.run(&["FUNCTION", "LOAD", "#!lua name=y\nredis.register_function('f1', function() end)"]),
        err("ERR Function f1 already exists")
    );
    assert_eq!(
        h.run(&["FUNCTION", "LOAD", "#!lua name=z\nwhile true do end"]),
        err("ERR Error registering functions: ERR FUNCTION LOAD timeout")
    );
    let v2 = "#!lua name=lib1\nredis.register_function('f1', function() return 'v2' end)";
    assert_eq!(h.run(&["FUNCTION", "LOAD", "REPLACE", v2]), bulk("lib1"));
    assert_eq!(h.run(&["FCALL", "f1", "0"]), bulk("v2"));
    assert_eq!(h.run(&["FCALL", "f2", "0"]), err("ERR Function not found"));
    assert_eq!(h.run(&["FUNCTION", "DELETE", "nosuch"]), err("ERR Library not found"));
    assert_eq!(h.run(&["FUNCTION", "DELETE", "lib1"]), ok());
    assert_eq!(h.run(&["FCALL", "f1", "0"]), err("ERR Function not found"));
    assert_eq!(h.run(&["FUNCTION", "FLUSH", "BOGUS"]), err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"));
    assert_eq!(
        h.run(&["FUNCTION", "FLUSH", "SYNC", "extra"]),
        err("ERR unknown subcommand or wrong number of arguments for 'FLUSH'. Try FUNCTION HELP.")
    );
    assert_eq!(h.run(&["FUNCTION", "KILL"]), err("NOTBUSY No scripts in execution right now."));
}

#[test]
fn lua_memory_is_bounded_and_an_endless_allocation_is_an_error() {
    let mut h = Harness::new();
    h.shared.scripting.vm_memory_limit.store(16 << 20, std::sync::atomic::Ordering::Relaxed);
    let s = "return #string.rep('x', 100000000)";
    assert_eq!(eval(&mut h, s, &[], &[]), err(&format!("ERR Error running script {}, not enough memory", sha(s))));
    let s = "local t = {} for i = 1, 1e9 do t[i] = i end return #t";
    assert_eq!(eval(&mut h, s, &[], &[]), err(&format!("ERR Error running script {}, not enough memory", sha(s))));
    // The VM is still usable afterwards.
    assert_eq!(eval(&mut h, "return 1", &[], &[]), int(1));
}

/// Random scripts from a small grammar of the API (calls with good and bad arguments, RESP3, error
/// and status tables, nested and cyclic returns, pcall, errors, loops): every one gets a reply,
/// nothing panics, and the server keeps answering.
#[test]
fn random_scripts_from_the_api_grammar_never_crash() {
    let mut h = Harness::new();
    h.shared.scripting.vm_memory_limit.store(32 << 20, std::sync::atomic::Ordering::Relaxed);
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let cmds = [
        "'get'",
        "'set'",
        "'incr'",
        "'hset'",
        "'sadd'",
        "'lpush'",
        "'zadd'",
        "'del'",
        "'spop'",
        "'nosuch'",
        "'ping'",
        "'select'",
        "'keys'",
        "'exec'",
        "'time'",
        "'flushall'",
        "'hgetall'",
        "'zrange'",
        "'type'",
    ];
    let args = ["KEYS[1]", "'k'", "ARGV[1]", "1", "2.5", "-1", "''", "nil", "{}", "true", "'x'", "'*'", "0", "1e300"];
    let values = [
        "1",
        "'s'",
        "{1, 2, nil, 3}",
        "{ok='OK'}",
        "{err='E x'}",
        "{double=1.5}",
        "{map={a=1}}",
        "{set={b=true}}",
        "true",
        "false",
        "nil",
        "{big_number='9'}",
        "redis.error_reply('x')",
        "redis.status_reply('y')",
        "(function() local t = {} t[1] = t return t end)()",
        "0/0",
        "1/0",
    ];
    for _ in 0..1500 {
        let mut body = String::new();
        for _ in 0..1 + next(4) {
            let call = if next(2) == 0 { "redis.call" } else { "redis.pcall" };
            let mut argv = vec![cmds[next(cmds.len())].to_string()];
            for _ in 0..next(5) {
                argv.push(args[next(args.len())].to_string());
            }
            let stmt = match next(8) {
                0 => format!("local r = {call}({})", argv.join(", ")),
                1 => "redis.setresp(3)".to_string(),
                2 => format!("pcall({call}, {})", argv.join(", ")),
                3 => format!("for i = 1, {} do redis.pcall('incr', 'n') end", next(50)),
                4 => "if math.huge then error('e') end".to_string(),
                5 => format!("local t = {{{}}}", values[next(values.len())]),
                6 => "redis.setresp(2)".to_string(),
                _ => format!("{call}({})", argv.join(", ")),
            };
            body.push_str(&stmt);
            body.push('\n');
        }
        body.push_str(&format!("return {}", values[next(values.len())]));
        let f = h.run(&["EVAL", &body, "1", "key", "arg"]);
        let mut out = bytes::BytesMut::new();
        f.encode(&mut out, 2);
        f.encode(&mut out, 3);
    }
    assert_eq!(h.run(&["PING"]), Frame::simple("PONG"));
    assert_eq!(eval(&mut h, "return 1", &[], &[]), int(1));
}

/// FUNCTION DUMP of redis-server 7.0.15 (its code LZF-compressed) restores here, and our DUMP
/// restores back; the policies and errors are Redis's.
#[test]
fn function_dump_and_restore_interoperate_with_redis() {
    const REDIS_DUMP: &str = "f5c340cb41111f23216c7561206e616d653d6c6962410a72656469732e72656769737465725f660d756e6374696f6e28276661272c20e0000e1a6b6579732c2061726773292072657475726e2027412720656e6429e00f42007bc03c005f606d0227666220500863616c6c6261636b3dc01c0028e0014f0042604f20741a6c6167733d7b276e6f2d777269746573277d2c2064657363726970409b063d277468652062e0009c0b20776974682061206c6f6e67e003271320746f206d616b65206c7a66206b69636b20696ee0070701277d0a00c433e07e0fdc8650";
    let payload: Vec<u8> =
        (0..REDIS_DUMP.len()).step_by(2).map(|i| u8::from_str_radix(&REDIS_DUMP[i..i + 2], 16).unwrap()).collect();
    let mut h = Harness::new();
    let restore = |h: &mut Harness, p: &[u8], policy: Option<&str>| {
        let mut argv = vec![Bytes::from_static(b"FUNCTION"), Bytes::from_static(b"RESTORE"), Bytes::copy_from_slice(p)];
        argv.extend(policy.map(|s| Bytes::copy_from_slice(s.as_bytes())));
        let mut ctx = crate::cmd::Ctx::new(&h.shared, &mut h.client, h.now_ms);
        crate::cmd::execute(&mut ctx, &argv)
    };
    assert_eq!(restore(&mut h, &payload, None), ok());
    assert_eq!(h.run(&["FCALL", "fb", "0"]), bulk("B"));
    assert_eq!(h.run(&["FCALL_RO", "fb", "0"]), bulk("B"));
    assert_eq!(restore(&mut h, &payload, None), err("ERR Library libA already exists"));
    assert_eq!(restore(&mut h, &payload, Some("REPLACE")), ok());
    assert_eq!(
        restore(&mut h, &payload, Some("BOGUS")),
        err("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
    );
    assert_eq!(restore(&mut h, b"xxxxxxxxxxxxxx", None), err("ERR DUMP payload version or checksum are wrong"));
    let Frame::Bulk(ours) = h.run(&["FUNCTION", "DUMP"]) else { panic!() };
    h.run(&["FUNCTION", "FLUSH"]);
    assert_eq!(h.run(&["FUNCTION", "DUMP"]), Frame::Bulk(Bytes::from_static(b"\n\x00]\x9b\\@\x0f\x7f\xa2\xda")));
    assert_eq!(restore(&mut h, &ours, Some("FLUSH")), ok());
    assert_eq!(h.run(&["FCALL", "fa", "0"]), bulk("A"));
}

/// Redis checks a container's subcommand flags: CLIENT ID, SCRIPT FLUSH, FUNCTION LIST, CONFIG GET
/// and LATENCY LATEST are `noscript` (CLIENT HELP is not). Texts from redis-server 7.0.15.
#[test]
fn noscript_subcommands_are_refused_in_scripts() {
    let mut h = Harness::new();
    for s in [
        "return redis.call('client', 'id')",
        "return redis.call('CLIENT', 'SetName', 'x')",
        "return redis.call('script', 'flush')",
        "return redis.call('script', 'load', 'return 1')",
        "return redis.call('function', 'list')",
        "return redis.call('config', 'get', 'maxmemory')",
        "return redis.call('latency', 'latest')",
    ] {
        assert_eq!(eval(&mut h, s, &[], &[]), script_err("ERR This Redis command is not allowed from script", s, 1));
    }
    assert_eq!(eval(&mut h, "return type(redis.call('client', 'help'))", &[], &[]), bulk("table"));
    assert_eq!(eval(&mut h, "return redis.call('pubsub', 'numpat')", &[], &[]), int(0));
}

/// XREAD and XREADGROUP refuse BLOCK from a script (even BLOCK 0 on a stream with entries), at the
/// option, before its timeout is parsed; outside scripts they are unchanged.
#[test]
fn xread_block_is_refused_in_scripts() {
    let mut h = Harness::new();
    h.run(&["XADD", "st", "1-1", "a", "b"]);
    h.run(&["XGROUP", "CREATE", "st", "g", "0"]);
    let s = "return redis.call('xread', 'block', '0', 'streams', KEYS[1], '0')";
    assert_eq!(
        eval(&mut h, s, &["st"], &[]),
        script_err("ERR xread command is not allowed with BLOCK option from scripts", s, 1)
    );
    let s = "return redis.call('XREADGROUP', 'group', 'g', 'c', 'BLOCK', 'x', 'streams', KEYS[1], '>')";
    assert_eq!(
        eval(&mut h, s, &["st"], &[]),
        script_err("ERR XREADGROUP command is not allowed with BLOCK option from scripts", s, 1)
    );
    let s = "return redis.pcall('xread', 'count', '1', 'block', '10', 'streams', KEYS[1], '0')['err']";
    assert_eq!(eval(&mut h, s, &["st"], &[]), bulk("ERR xread command is not allowed with BLOCK option from scripts"));
    // Without BLOCK a script reads; outside a script BLOCK with data answers at once.
    let s = "return #redis.call('xread', 'streams', KEYS[1], '0')";
    assert_eq!(eval(&mut h, s, &["st"], &[]), int(1));
    assert!(matches!(h.run(&["XREAD", "BLOCK", "0", "STREAMS", "st", "0"]), Frame::Array(_)));
}

/// Found by tests/clients/eval_fuzz.py: scripts resolve a command line as Redis's `lookupCommand`
/// does (a container's unknown subcommand is an unknown command, a subcommand's arity is its own),
/// and `redis.acl_check_cmd` converts its arguments first (a boolean or nil is refused as in
/// `redis.call`). Every text checked against redis-server 7.0.15.
#[test]
fn subcommands_resolve_in_scripts_and_acl_check_cmd_as_redis_looks_them_up() {
    let mut h = Harness::new();
    for (s, text) in [
        ("return redis.call('config', 'get')", "ERR Wrong number of args calling Redis command from script"),
        ("return redis.call('config', 'bogus')", "ERR Unknown Redis command called from script"),
        ("return redis.call('SCRIPT', 65536, 255)", "ERR Unknown Redis command called from script"),
        ("return redis.call('config')", "ERR Wrong number of args calling Redis command from script"),
        ("return redis.acl_check_cmd(false)", "ERR Lua redis lib command arguments must be strings or integers"),
        (
            "return redis.acl_check_cmd('get', 'k', nil)",
            "ERR Lua redis lib command arguments must be strings or integers",
        ),
        ("return redis.acl_check_cmd('nosuch', {})", "ERR Lua redis lib command arguments must be strings or integers"),
        ("return redis.acl_check_cmd('config', 'bogus')", "ERR Invalid command passed to redis.acl_check_cmd()"),
    ] {
        assert_eq!(eval(&mut h, s, &[], &[]), script_err(text, s, 1), "{s}");
    }
    // A pcall'd refusal is the bare message (no script suffix), as Redis's.
    assert_eq!(
        eval(&mut h, "return redis.pcall('script', 65536, 255)", &[], &[]),
        err("ERR Unknown Redis command called from script")
    );
    assert_eq!(eval(&mut h, "return redis.acl_check_cmd('config', 'get')", &[], &[]), int(1));
    assert_eq!(eval(&mut h, "return redis.acl_check_cmd('get', 'k')", &[], &[]), int(1));
    assert_eq!(eval(&mut h, "return redis.call('object', 'freq', 'nokey')", &[], &[]), Frame::Null);
    for (s, text) in [
        ("return redis.call('object', 'encodingx', 'k')", "ERR Unknown Redis command called from script"),
        ("return redis.call('xinfo', 'stream')", "ERR Wrong number of args calling Redis command from script"),
    ] {
        assert_eq!(eval(&mut h, s, &[], &[]), script_err(text, s, 1), "{s}");
    }
}

/// Found by tests/clients/eval_fuzz.py: Redis reads a script's status and error texts as C strings
/// (up to a NUL), error texts byte for byte (no UTF-8 replacement), and passes a NaN argument with
/// its sign as glibc's `%.17g` prints it; PFCOUNT and PUBLISH may replicate, so read-only scripts
/// refuse them. Every reply checked against redis-server 7.0.15.
#[test]
fn c_string_texts_nan_arguments_and_may_replicate_commands_as_redis() {
    let mut h = Harness::new();
    assert_eq!(eval(&mut h, "return {ok='a\\0b'}", &[], &[]), Frame::simple("a"));
    assert_eq!(eval(&mut h, "return redis.status_reply('a\\0b')", &[], &[]), Frame::simple("a"));
    assert_eq!(eval(&mut h, "return redis.error_reply('a\\0b')", &[], &[]), err("ERR a"));
    assert_eq!(eval(&mut h, "return redis.error_reply('x\\0y').err", &[], &[]), bulk("ERR x"));
    assert_eq!(eval(&mut h, "return {err='\\0bin'}", &[], &[]), err(""));
    let s = "error('a\\0b')";
    assert_eq!(eval(&mut h, s, &[], &[]), script_err("ERR user_script:1: a", s, 1));
    let s = "error('\\255\\254')";
    let mut want = b"ERR user_script:1: \xff\xfe".to_vec();
    want.extend_from_slice(format!(" script: {}, on @user_script:1.", sha(s)).as_bytes());
    assert_eq!(eval(&mut h, s, &[], &[]), Frame::Error(Bytes::from(want)));
    let s = "redis.call('set', KEYS[1], 0/0) redis.call('append', KEYS[1], -(0/0)) \
             redis.call('append', KEYS[1], 1/0) return redis.call('get', KEYS[1])";
    assert_eq!(eval(&mut h, s, &["k"], &[]), bulk("-nannaninf"));
    let s = "redis.call('set', KEYS[1], 0 * -0.5) return redis.call('get', KEYS[1])";
    assert_eq!(eval(&mut h, s, &["k"], &[]), bulk("-0"));
    assert_eq!(eval(&mut h, "return {double = 0/0}", &[], &[]).to_resp2(), bulk("-nan"));
    assert_eq!(eval(&mut h, "return {double = -(0/0)}", &[], &[]), Frame::Double(Bytes::from_static(b"nan")));
    assert_eq!(eval(&mut h, "return {double = 1e300 * 1e10}", &[], &[]).to_resp2(), bulk("inf"));
    assert_eq!(eval(&mut h, "return {double = 0.1}", &[], &[]).to_resp2(), bulk("0.10000000000000001"));
    assert_eq!(eval(&mut h, "return redis.pcall('pfcount', KEYS[1])", &["h"], &[]), int(0));
    for s in ["return redis.pcall('pfcount', KEYS[1])", "return redis.pcall('publish', 'c', 'm')"] {
        assert_eq!(h.run(&["EVAL_RO", s, "1", "h"]), err("ERR Write commands are not allowed from read-only scripts."));
    }
    let s = "#!lua flags=no-writes\nreturn redis.call('publish', 'c', 'm')";
    assert_eq!(
        eval(&mut h, s, &[], &[]),
        script_err("ERR Write commands are not allowed from read-only scripts.", s, 2)
    );
}

/// Found by tests/clients/eval_fuzz.py: a RESP3 array reply with nulls becomes a Lua table laid
/// out as Redis builds it, so that `#t` (a border, layout-dependent with nils) is Redis's. The
/// lengths below are redis-server 7.0.15's for MGET over keys q:b, q:d, q:e (set) and q:a, q:c (not).
#[test]
fn resp3_arrays_with_nulls_have_redis_lengths() {
    let mut h = Harness::new();
    h.run(&["MSET", "q:b", "1", "q:d", "1", "q:e", "1"]);
    let s = "redis.setresp(3) local out = {} for _, ks in ipairs({{'q:a','q:b','q:c'}, {'q:b','q:c','q:d'}, \
             {'q:a','q:a','q:b'}, {'q:b','q:c','q:c','q:c','q:d','q:e'}, {'q:a','q:b','q:c','q:d','q:e'}, \
             {'q:b','q:d','q:a','q:a','q:a','q:a','q:e'}}) do out[#out+1] = #redis.call('mget', unpack(ks)) end \
             return out";
    let lens = eval(&mut h, s, &[], &[]);
    assert_eq!(lens.to_resp2(), arr(vec![int(0), int(1), int(0), int(1), int(0), int(2)]));
}

/// KEYS and ARGV are tables refilled for each run (not built anew): what one run did to them never
/// shows in the next (shorter sequences, extra entries, a metatable), as with Redis's new tables.
#[test]
fn each_run_sees_only_its_own_keys_and_argv() {
    let mut h = Harness::new();
    let count = "local n, m = 0, 0 for _ in pairs(KEYS) do n = n + 1 end for _ in pairs(ARGV) do m = m + 1 end \
                 return {n, m, KEYS[1] or 'none', ARGV[1] or 'none', KEYS[3] or 'none'}";
    assert_eq!(
        eval(&mut h, count, &["a", "b", "c"], &["x", "y"]),
        arr(vec![int(3), int(2), bulk("a"), bulk("x"), bulk("c")])
    );
    // Shorter: the last run's third key is gone.
    assert_eq!(eval(&mut h, count, &["d"], &[]), arr(vec![int(1), int(0), bulk("d"), bulk("none"), bulk("none")]));
    // A run that adds entries and a metatable to them.
    let meddle = "KEYS[7] = 'stale' KEYS.extra = 1 ARGV[2] = 'more' \
                  setmetatable(ARGV, {__index = function() return 'meta' end}) return 1";
    assert_eq!(eval(&mut h, meddle, &["k"], &["v"]), int(1));
    assert_eq!(eval(&mut h, count, &["e", "f"], &["z"]), arr(vec![int(2), int(1), bulk("e"), bulk("z"), bulk("none")]));
    assert_eq!(eval(&mut h, "return ARGV[5] == nil and getmetatable(ARGV) == nil and 1 or 0", &[], &["w"]), int(1));
    // Entries changed in place are refilled.
    assert_eq!(eval(&mut h, "KEYS[1] = 'changed' ARGV[1] = nil return 1", &["k"], &["v"]), int(1));
    assert_eq!(eval(&mut h, count, &["g"], &["u"]), arr(vec![int(1), int(1), bulk("g"), bulk("u"), bulk("none")]));
}

/// Writes that the undo log does not copy (a value past its budget; MOVE and COPY, which reach
/// another database) make the script take every stripe first; the script goes on as usual.
#[test]
fn writes_too_large_to_save_or_to_another_database_take_every_stripe_first() {
    let mut h = Harness::new();
    let mut argv = vec!["RPUSH".to_string(), "big".to_string()];
    argv.extend((0..crate::db::UNDO_BUDGET + 10).map(|i| i.to_string()));
    let argv: Vec<&str> = argv.iter().map(|s| s.as_str()).collect();
    h.run(&argv);
    let script = "redis.call('set', KEYS[2], 'x') redis.call('rpush', KEYS[1], 'tail') \
                  redis.call('set', 'undeclared', 'y') return redis.call('llen', KEYS[1])";
    let n = crate::db::UNDO_BUDGET as i64 + 11;
    assert_eq!(eval(&mut h, script, &["big", "small"], &[]), int(n));
    assert_eq!(h.run(&["GET", "undeclared"]), bulk("y"));
    let script = "redis.call('set', KEYS[1], 'v') redis.call('move', KEYS[1], 3) \
                  redis.call('copy', KEYS[2], KEYS[3], 'DB', 4) return 1";
    h.run(&["SET", "src", "s"]);
    assert_eq!(eval(&mut h, script, &["moved", "src", "copied"], &[]), int(1));
    assert_eq!(h.run(&["EXISTS", "moved"]), int(0));
    h.run(&["SELECT", "3"]);
    assert_eq!(h.run(&["GET", "moved"]), bulk("v"));
    h.run(&["SELECT", "4"]);
    assert_eq!(h.run(&["GET", "copied"]), bulk("s"));
}

/// An EVAL run's setup and teardown (done in C by `run::raw_entry`): each run sees its own KEYS
/// and ARGV and RESP 2, errors point at the user's line through the prelude's handler, and after a
/// run (ended by a reply, an error or a runtime error) its KEYS and ARGV are gone (a function that
/// reads them raises).
#[test]
fn each_eval_run_is_set_up_and_taken_down_whole() {
    let mut h = Harness::new();
    h.run(&["HSET", "h", "a", "1"]);
    let shape = "return type(redis.call('hgetall', KEYS[1])['map'])";
    assert_eq!(eval(&mut h, &format!("redis.setresp(3) {shape}"), &["h"], &[]), bulk("table"));
    // The next run is back to RESP 2 (HGETALL is a flat array there).
    assert_eq!(eval(&mut h, shape, &["h"], &[]), bulk("nil"));
    let failing = "local x = KEYS[1]\nerror({err = 'MINE ' .. x})";
    assert_eq!(eval(&mut h, failing, &["k1"], &[]), script_err("MINE k1", failing, 2));
    let raising = "local a = ARGV[1]\nlocal b = nil\nreturn b.c";
    let r = eval(&mut h, raising, &[], &["v"]);
    assert!(matches!(&r, Frame::Error(t) if t.starts_with(b"ERR user_script:3: attempt to index local 'b'")), "{r:?}");
    assert_eq!(eval(&mut h, "return {#KEYS, #ARGV, KEYS[1], ARGV[2]}", &["a"], &["x", "y"]), {
        arr(vec![int(1), int(2), bulk("a"), bulk("y")])
    });
    // A function sees no KEYS or ARGV global left by the EVAL runs (a missing global raises).
    let lib = "#!lua name=l\nredis.register_function('k', function() return KEYS end)\n\
               redis.register_function('a', function() return ARGV end)";
    assert_eq!(h.run(&["FUNCTION", "LOAD", lib]), bulk("l"));
    for f in ["k", "a"] {
        let r = h.run(&["FCALL", f, "0"]);
        assert!(matches!(&r, Frame::Error(t) if t.windows(19).any(|w| w == b"nonexistent global ")), "{r:?}");
    }
}

#[test]
fn empty_strings_and_long_mixed_argument_lists_pass_through_as_redis() {
    // Checked against redis-server 7.0.15. Empty KEYS/ARGV items, an empty argument and an empty
    // reply (pushed from a valid pointer), and a redis.call with more arguments than the first
    // pass keeps (strings and numbers mixed past the eighth).
    let mut h = Harness::new();
    assert_eq!(
        eval(&mut h, "return {KEYS[1], ARGV[1], #KEYS[1], #ARGV[1]}", &[""], &[""]),
        arr(vec![bulk(""), bulk(""), int(0), int(0)])
    );
    assert_eq!(
        eval(&mut h, "redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])", &[""], &[""]),
        bulk("")
    );
    let script = "redis.call('rpush', KEYS[1], 'a', 1, '', 2.5, 'b', 3, 'c', 4, 'd', '', 5) \
                  return redis.call('lrange', KEYS[1], 0, -1)";
    let want = ["a", "1", "", "2.5", "b", "3", "c", "4", "d", "", "5"];
    assert_eq!(eval(&mut h, script, &["l"], &[]), arr(want.iter().map(|s| bulk(s)).collect()));
}
