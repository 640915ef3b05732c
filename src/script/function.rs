//! FUNCTION LOAD/DELETE/FLUSH/LIST/STATS/KILL/HELP and FCALL/FCALL_RO. Mirrors `functions.c` and
//! `function_lua.c`.
//!
//! Libraries are shared ([`Scripting::libs`], versioned by `libs_gen`); each VM runs every
//! library's code again when it sees a newer generation, to get its own function objects. A change
//! (LOAD, DELETE, FLUSH) holds every stripe while it changes the libraries and logs its record, so
//! that an AOF rewrite, which snapshots the libraries under every stripe too, can never miss one.
//! The record of a LOAD is always `FUNCTION LOAD REPLACE code`: replaying it cannot fail on a
//! library loaded by an earlier record.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use mlua::{Function, Table, Value};

use super::run::{Target, prepare, run};
use super::{FunctionInfo, Libraries, Library, Scripting, Vm, flags};
use crate::cmd::server::{SubSpec, help_reply, run_subcommand};
use crate::cmd::{Ctx, is_opt};
use crate::error::{Error, Result};
use crate::resp::Frame;

/// A library's load may run this long (Redis's `LOAD_TIMEOUT_MS`).
const LOAD_TIMEOUT_MS: u64 = 500;

pub(crate) static FUNCTION_SUBS: &[SubSpec] = &[
    SubSpec { name: "function|delete", arity: 3, handler: function_delete },
    SubSpec { name: "function|dump", arity: 2, handler: function_dump },
    SubSpec { name: "function|flush", arity: -2, handler: function_flush },
    SubSpec { name: "function|help", arity: 2, handler: function_help },
    SubSpec { name: "function|kill", arity: 2, handler: function_kill },
    SubSpec { name: "function|list", arity: -2, handler: function_list },
    SubSpec { name: "function|load", arity: -3, handler: function_load },
    SubSpec { name: "function|restore", arity: -3, handler: function_restore },
    SubSpec { name: "function|stats", arity: 2, handler: function_stats },
];

/// `FUNCTION <subcommand> ...`.
pub fn function(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    run_subcommand(ctx, argv, FUNCTION_SUBS)
}

/// A library's name, engine and code from its `#!lua name=...` line (`functionExtractLibMetaData`).
fn metadata(code: &[u8]) -> std::result::Result<(Bytes, String), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    let line = String::from_utf8_lossy(&code[..end]).into_owned();
    let mut parts = line.split_ascii_whitespace();
    let Some(engine) = parts.next() else { return Err("ERR Invalid library metadata".into()) };
    let engine = engine[2..].to_string();
    let mut name = None;
    for part in parts {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case("name=") {
            if name.is_some() {
                return Err("ERR Invalid metadata value, name argument was given multiple times".into());
            }
            name = Some(Bytes::copy_from_slice(&part.as_bytes()[5..]));
            continue;
        }
        return Err(format!("ERR Invalid metadata value given: {part}"));
    }
    let Some(name) = name else { return Err("ERR Library name was not given".into()) };
    Ok((name, engine))
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One function a library's code registered.
struct Registered {
    name: Bytes,
    description: Option<Bytes>,
    flags: u32,
    callback: Function,
}

/// Run a library's code in `vm` (library API only) and collect what it registered.
fn load_in(scripting: &Scripting, vm: &Vm, code: &[u8]) -> std::result::Result<Vec<Registered>, String> {
    let body = &code[code.iter().position(|&b| b == b'\n').unwrap_or(code.len())..];
    let fenv: Table = vm.internal.get("fenv").map_err(|e| e.to_string())?;
    let chunk = vm
        .limited(|| {
            vm.lua
                .load(body)
                .set_name("@user_function")
                .set_mode(mlua::chunk::ChunkMode::Text)
                .set_environment(fenv)
                .into_function()
        })
        .map_err(|e| format!("ERR Error compiling function: {}", super::vm::compile_error_text(&e)))?;
    let load: Function = vm.internal.get("load").map_err(|e| e.to_string())?;
    let state = scripting.begin_load(LOAD_TIMEOUT_MS);
    super::run::set_current(Some(Arc::clone(&state)));
    let r = vm.limited(|| load.call::<(bool, Value, Table)>(chunk));
    super::run::set_current(None);
    scripting.end_run(&state);
    if state.stop.load(Ordering::SeqCst) != super::stop::NONE {
        let _ = super::run::install_hook(&vm.lua, 100_000);
        return Err("ERR Error registering functions: ERR FUNCTION LOAD timeout".into());
    }
    let (ok, err, list) = r.map_err(|e| format!("ERR Error registering functions: {e}"))?;
    if !ok {
        let msg = match &err {
            Value::String(s) => format!("ERR {}", s.to_string_lossy()),
            Value::Table(t) => match t.get::<Value>("err") {
                Ok(Value::String(s)) => s.to_string_lossy(),
                _ => "ERR unknown error".into(),
            },
            other => format!("ERR {other:?}"),
        };
        return Err(format!("ERR Error registering functions: {msg}"));
    }
    let mut out = Vec::new();
    for entry in list.sequence_values::<Table>() {
        let t = entry.map_err(|e| e.to_string())?;
        let name: mlua::LuaString = t.get("name").map_err(|e| e.to_string())?;
        let description: Option<mlua::LuaString> = t.get("desc").map_err(|e| e.to_string())?;
        let fl: Table = t.get("flags").map_err(|e| e.to_string())?;
        let mut bits = 0;
        for f in fl.sequence_values::<String>().flatten() {
            if let Some((_, b)) = flags::NAMES.iter().find(|(n, _)| *n == f) {
                bits |= b;
            }
        }
        out.push(Registered {
            name: Bytes::copy_from_slice(&name.as_bytes()),
            description: description.map(|d| Bytes::copy_from_slice(&d.as_bytes())),
            flags: bits,
            callback: t.get("callback").map_err(|e| e.to_string())?,
        });
    }
    Ok(out)
}

/// Make `vm`'s functions those of the current libraries.
pub fn sync_vm(scripting: &Scripting, vm: &mut Vm) -> std::result::Result<(), String> {
    let libs = scripting.libs.read().unwrap_or_else(|e| e.into_inner());
    let generation = scripting.libs_gen.load(Ordering::Acquire);
    if vm.libs_gen == generation {
        return Ok(());
    }
    vm.functions.clear();
    for lib in libs.libs.values() {
        for r in load_in(scripting, vm, &lib.code)? {
            vm.functions.insert(r.name, r.callback);
        }
    }
    vm.libs_gen = generation;
    Ok(())
}

/// `FUNCTION LOAD [REPLACE] code`: the library's name.
fn function_load(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let mut replace = false;
    let mut pos = 2;
    while pos < argv.len() - 1 {
        if is_opt(&argv[pos], "REPLACE") {
            replace = true;
            pos += 1;
            continue;
        }
        return Err(Error::err(format!("Unknown option given: {}", String::from_utf8_lossy(&argv[pos]))));
    }
    let code = &argv[pos];
    let (name, engine) = metadata(code).map_err(Error::Raw)?;
    if !valid_name(&name) {
        return Err(Error::err(
            "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ));
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(Error::err(format!("Engine '{engine}' not found")));
    }
    let scripting = &ctx.shared.scripting;
    let exists = |libs: &Libraries| libs.libs.contains_key(&name) && !replace;
    let already = || Error::err(format!("Library '{}' already exists", String::from_utf8_lossy(&name)));
    if exists(&scripting.libs.read().unwrap_or_else(|e| e.into_inner())) {
        return Err(already());
    }
    // The library's code runs (up to 500 ms) before any lock is taken; the change itself is made
    // and logged under every stripe (see the module doc), checked again there.
    let registered = register_in_pooled_vm(scripting, code)?;
    let w = ctx.write_all();
    let mut libs = scripting.libs.write().unwrap_or_else(|e| e.into_inner());
    if exists(&libs) {
        return Err(already());
    }
    for (fname, _, _) in &registered {
        if let Some(lib) = libs.funcs.get(fname)
            && *lib != name
        {
            return Err(Error::err(format!("Function {} already exists", String::from_utf8_lossy(fname))));
        }
    }
    if let Some(old) = libs.libs.remove(&name) {
        for f in &old.functions {
            libs.funcs.remove(&f.name);
        }
    }
    let functions = registered
        .into_iter()
        .map(|(name, description, flags)| FunctionInfo {
            name,
            description,
            flags,
            all_stripes: AtomicBool::new(false),
        })
        .collect::<Vec<_>>();
    for f in &functions {
        libs.funcs.insert(f.name.clone(), name.clone());
    }
    libs.libs.insert(name.clone(), Arc::new(Library { name: name.clone(), code: code.clone(), functions }));
    scripting.libs_gen.fetch_add(1, Ordering::AcqRel);
    w.log(&[b"FUNCTION", b"LOAD", b"REPLACE", code]);
    Ok(Frame::Bulk(name))
}

/// A library's name and what its code registers (names, descriptions, flags), checked as FUNCTION
/// LOAD checks it; the function objects are dropped before the VM goes back to the pool.
type Registrations = Vec<(Bytes, Option<Bytes>, u32)>;
type Compiled = (Bytes, Registrations);

/// Run a library's code on a VM of the pool and return what it registered (an error when nothing).
/// Only names, descriptions and flags leave: the function objects are dropped while this thread
/// still owns the VM (dropping a Lua value takes its VM's lock).
fn register_in_pooled_vm(scripting: &Scripting, code: &[u8]) -> Result<Registrations> {
    let mut vm = scripting.take_vm().map_err(|e| Error::err(format!("Failed to create a Lua VM: {e}")))?;
    let loaded = load_in(scripting, &vm, code)
        .map(|list| list.into_iter().map(|r| (r.name, r.description, r.flags)).collect::<Vec<_>>());
    // This VM's function objects no longer match any generation: it reloads when next used.
    vm.libs_gen = 0;
    scripting.give_vm(vm);
    let registered = loaded.map_err(Error::Raw)?;
    if registered.is_empty() {
        return Err(Error::err("No functions registered"));
    }
    Ok(registered)
}

fn compile_library(scripting: &Scripting, code: &[u8]) -> Result<Compiled> {
    let (name, engine) = metadata(code).map_err(Error::Raw)?;
    if !valid_name(&name) {
        return Err(Error::err(
            "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ));
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(Error::err(format!("Engine '{engine}' not found")));
    }
    let registered = register_in_pooled_vm(scripting, code)?;
    Ok((name, registered))
}

/// `FUNCTION DUMP`: every library, as Redis's payload (see `dump`).
fn function_dump(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    let libs = ctx.shared.scripting.libs.read().unwrap_or_else(|e| e.into_inner());
    Ok(Frame::Bulk(Bytes::from(super::dump::dump(libs.libs.values().map(|l| &l.code[..])))))
}

/// `FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]` (`libraryJoin`'s rules).
fn function_restore(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    if argv.len() > 4 {
        return Err(crate::cmd::server::slowlog::subcommand_syntax_error(argv));
    }
    #[derive(PartialEq)]
    enum Policy {
        Append,
        Replace,
        Flush,
    }
    let policy = match argv.get(3) {
        None => Policy::Append,
        Some(p) if is_opt(p, "APPEND") => Policy::Append,
        Some(p) if is_opt(p, "REPLACE") => Policy::Replace,
        Some(p) if is_opt(p, "FLUSH") => Policy::Flush,
        Some(_) => {
            return Err(Error::err("Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."));
        }
    };
    let codes = super::dump::restore(&argv[2]).map_err(Error::Raw)?;
    let scripting = &ctx.shared.scripting;
    let mut restored: Vec<(Bytes, Bytes, Registrations)> = Vec::new();
    for code in codes {
        let (name, registered) = compile_library(scripting, &code)?;
        if restored.iter().any(|(n, _, _)| *n == name) {
            return Err(Error::err(format!("Library '{}' already exists", String::from_utf8_lossy(&name))));
        }
        for (f, _, _) in &registered {
            if restored.iter().any(|(_, _, r)| r.iter().any(|(g, _, _)| g == f)) {
                return Err(Error::err(format!("Function {} already exists", String::from_utf8_lossy(f))));
            }
        }
        restored.push((name, Bytes::from(code), registered));
    }
    let w = ctx.write_all();
    let mut libs = scripting.libs.write().unwrap_or_else(|e| e.into_inner());
    let mut next = if policy == Policy::Flush { Libraries::default() } else { std::mem::take(&mut *libs) };
    let before = Libraries { libs: next.libs.clone(), funcs: next.funcs.clone() };
    for (name, _, _) in &restored {
        if next.libs.contains_key(name) {
            if policy == Policy::Append {
                *libs = before;
                return Err(Error::err(format!("Library {} already exists", String::from_utf8_lossy(name))));
            }
            if let Some(old) = next.libs.remove(name) {
                for f in &old.functions {
                    next.funcs.remove(&f.name);
                }
            }
        }
    }
    for (_, _, registered) in &restored {
        for (f, _, _) in registered {
            if next.funcs.contains_key(f) {
                *libs = if policy == Policy::Flush { std::mem::take(&mut *libs) } else { before };
                return Err(Error::err(format!("Function {} already exists", String::from_utf8_lossy(f))));
            }
        }
    }
    let mut records: Vec<Vec<&[u8]>> = Vec::new();
    if policy == Policy::Flush {
        records.push(vec![b"FUNCTION", b"FLUSH"]);
    }
    for (name, code, registered) in &restored {
        let functions = registered
            .iter()
            .map(|(f, description, flags)| FunctionInfo {
                name: f.clone(),
                description: description.clone(),
                flags: *flags,
                all_stripes: AtomicBool::new(false),
            })
            .collect::<Vec<_>>();
        for f in &functions {
            next.funcs.insert(f.name.clone(), name.clone());
        }
        next.libs.insert(name.clone(), Arc::new(Library { name: name.clone(), code: code.clone(), functions }));
        records.push(vec![b"FUNCTION", b"LOAD", b"REPLACE", code]);
    }
    *libs = next;
    scripting.libs_gen.fetch_add(1, Ordering::AcqRel);
    w.log_all(&records);
    Ok(Frame::ok())
}

/// `FUNCTION DELETE library`.
fn function_delete(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let scripting = &ctx.shared.scripting;
    let w = ctx.write_all();
    let mut libs = scripting.libs.write().unwrap_or_else(|e| e.into_inner());
    let Some(old) = libs.libs.remove(&argv[2]) else { return Err(Error::err("Library not found")) };
    for f in &old.functions {
        libs.funcs.remove(&f.name);
    }
    scripting.libs_gen.fetch_add(1, Ordering::AcqRel);
    w.log(&[b"FUNCTION", b"DELETE", &argv[2]]);
    Ok(Frame::ok())
}

/// `FUNCTION FLUSH [ASYNC|SYNC]`.
fn function_flush(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    if argv.len() > 3 {
        return Err(crate::cmd::server::slowlog::subcommand_syntax_error(argv));
    }
    let ok = match argv.len() {
        2 => true,
        3 => is_opt(&argv[2], "SYNC") || is_opt(&argv[2], "ASYNC"),
        _ => false,
    };
    if !ok {
        return Err(Error::err("FUNCTION FLUSH only supports SYNC|ASYNC option"));
    }
    let scripting = &ctx.shared.scripting;
    let w = ctx.write_all();
    *scripting.libs.write().unwrap_or_else(|e| e.into_inner()) = Libraries::default();
    scripting.libs_gen.fetch_add(1, Ordering::AcqRel);
    w.log(&[b"FUNCTION", b"FLUSH"]);
    Ok(Frame::ok())
}

fn flag_set(f: u32) -> Frame {
    Frame::Set(
        flags::NAMES
            .iter()
            .filter(|(_, b)| f & b != 0)
            .map(|(n, _)| Frame::Simple(Bytes::from_static(n.as_bytes())))
            .collect(),
    )
}

fn key(s: &'static str) -> Frame {
    Frame::Bulk(Bytes::from_static(s.as_bytes()))
}

/// `FUNCTION LIST [WITHCODE] [LIBRARYNAME pattern]`.
fn function_list(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let mut with_code = false;
    let mut pattern: Option<&Bytes> = None;
    let mut i = 2;
    while i < argv.len() {
        if !with_code && is_opt(&argv[i], "WITHCODE") {
            with_code = true;
        } else if pattern.is_none() && is_opt(&argv[i], "LIBRARYNAME") {
            if i >= argv.len() - 1 {
                return Err(Error::err("library name argument was not given"));
            }
            i += 1;
            pattern = Some(&argv[i]);
        } else {
            return Err(Error::err(format!("Unknown argument {}", String::from_utf8_lossy(&argv[i]))));
        }
        i += 1;
    }
    let libs = ctx.shared.scripting.libs.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    for lib in libs.libs.values() {
        if let Some(p) = pattern
            && !crate::glob::glob_match(p, &lib.name, true)
        {
            continue;
        }
        let functions = lib
            .functions
            .iter()
            .map(|f| {
                Frame::Map(vec![
                    (key("name"), Frame::Bulk(f.name.clone())),
                    (key("description"), f.description.clone().map_or(Frame::Null, Frame::Bulk)),
                    (key("flags"), flag_set(f.flags)),
                ])
            })
            .collect();
        let mut m = vec![
            (key("library_name"), Frame::Bulk(lib.name.clone())),
            (key("engine"), key("LUA")),
            (key("functions"), Frame::Array(functions)),
        ];
        if with_code {
            m.push((key("library_code"), Frame::Bulk(lib.code.clone())));
        }
        out.push(Frame::Map(m));
    }
    Ok(Frame::Array(out))
}

/// `FUNCTION STATS`: the running function, and the engine's counts.
fn function_stats(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    let scripting = &ctx.shared.scripting;
    let running = scripting.running_function().map_or(Frame::Null, |(name, argv, ms)| {
        Frame::Map(vec![
            (key("name"), Frame::Bulk(name)),
            (key("command"), Frame::Array(argv.into_iter().map(Frame::Bulk).collect())),
            (key("duration_ms"), Frame::Integer(ms as i64)),
        ])
    });
    let libs = scripting.libs.read().unwrap_or_else(|e| e.into_inner());
    let functions: usize = libs.libs.values().map(|l| l.functions.len()).sum();
    Ok(Frame::Map(vec![
        (key("running_script"), running),
        (
            key("engines"),
            Frame::Map(vec![(
                key("LUA"),
                Frame::Map(vec![
                    (key("libraries_count"), Frame::Integer(libs.libs.len() as i64)),
                    (key("functions_count"), Frame::Integer(functions as i64)),
                ]),
            )]),
        ),
    ]))
}

/// `FUNCTION KILL`: stop the busy function that has not written.
fn function_kill(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    ctx.shared.scripting.kill(false).map_err(Error::Raw)?;
    Ok(Frame::ok())
}

fn function_help(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(help_reply(
        &argv[0],
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    ))
}

/// `FCALL function numkeys [key ...] [arg ...]`.
pub fn fcall(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    fcall_generic(ctx, argv, false)
}

/// `FCALL_RO function numkeys [key ...] [arg ...]`.
pub fn fcall_ro(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    fcall_generic(ctx, argv, true)
}

fn fcall_generic(ctx: &mut Ctx, argv: &[Bytes], ro: bool) -> Result<Frame> {
    let scripting = &ctx.shared.scripting;
    let Some((lib, i)) = scripting.libs.read().unwrap_or_else(|e| e.into_inner()).function(&argv[1]) else {
        return Err(Error::err("Function not found"));
    };
    let info = &lib.functions[i];
    let n = crate::util::parse_i64(&argv[2]).ok_or_else(|| Error::err("Bad number of keys provided"))?;
    if n > argv.len() as i64 - 3 {
        return Err(Error::err("Number of keys can't be greater than number of args"));
    }
    if n < 0 {
        return Err(Error::err("Number of keys can't be negative"));
    }
    let n = n as usize;
    prepare(ctx, info.flags, ro).map_err(Error::Raw)?;
    let mut vm = scripting.take_vm().map_err(|e| Error::err(format!("Failed to create a Lua VM: {e}")))?;
    let result = (|| {
        sync_vm(scripting, &mut vm).map_err(Error::Raw)?;
        let Some(func) = vm.functions.get(&argv[1]).cloned() else {
            return Err(Error::err("Function not found"));
        };
        let target = Target::Function { name: &argv[1], argv, learned: &info.all_stripes };
        Ok(run(ctx, scripting, &vm, &func, target, &argv[3..3 + n], &argv[3 + n..], info.flags, ro))
    })();
    scripting.give_vm(vm);
    result
}

/// The records that rebuild the libraries (an AOF rewrite's first commands).
pub fn rewrite_records(scripting: &Scripting) -> Vec<Vec<Bytes>> {
    let libs = scripting.libs.read().unwrap_or_else(|e| e.into_inner());
    libs.libs
        .values()
        .map(|l| {
            vec![
                Bytes::from_static(b"FUNCTION"),
                Bytes::from_static(b"LOAD"),
                Bytes::from_static(b"REPLACE"),
                l.code.clone(),
            ]
        })
        .collect()
}
