//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD/EXISTS/FLUSH/KILL/HELP. Mirrors `eval.c`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use super::run::{Target, prepare, run};
use super::{Scripting, Sha, Vm, parse_shebang, sha1::sha1_hex};
use crate::cmd::server::{SubSpec, help_reply, run_subcommand};
use crate::cmd::{Ctx, arg_i64, is_opt};
use crate::error::{Error, Result};
use crate::resp::Frame;

/// The shared scripting state.
fn scripting<'a>(ctx: &Ctx<'a>) -> &'a Scripting {
    &ctx.shared.scripting
}

fn noscript() -> Error {
    Error::Raw("NOSCRIPT No matching script. Please use EVAL.".into())
}

/// `EVAL script numkeys [key ...] [arg ...]`.
pub fn eval(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    eval_generic(ctx, argv, false, false)
}

/// `EVAL_RO script numkeys [key ...] [arg ...]`: the script may not write.
pub fn eval_ro(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    eval_generic(ctx, argv, false, true)
}

/// `EVALSHA sha1 numkeys [key ...] [arg ...]`.
pub fn evalsha(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    eval_generic(ctx, argv, true, false)
}

/// `EVALSHA_RO sha1 numkeys [key ...] [arg ...]`.
pub fn evalsha_ro(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    eval_generic(ctx, argv, true, true)
}

/// `numkeys` of EVAL and FCALL, checked against the arguments as Redis does.
pub fn numkeys(argv: &[Bytes]) -> Result<usize> {
    let n = arg_i64(&argv[2])?;
    if n > argv.len() as i64 - 3 {
        return Err(Error::err("Number of keys can't be greater than number of args"));
    }
    if n < 0 {
        return Err(Error::err("Number of keys can't be negative"));
    }
    Ok(n as usize)
}

fn lower_sha(s: &[u8]) -> Sha {
    let mut sha = [0u8; 40];
    for (d, b) in sha.iter_mut().zip(s) {
        *d = b.to_ascii_lowercase();
    }
    sha
}

fn eval_generic(ctx: &mut Ctx, argv: &[Bytes], by_sha: bool, ro: bool) -> Result<Frame> {
    if by_sha && argv[1].len() != 40 {
        return Err(noscript());
    }
    let n = numkeys(argv)?;
    let scripting = scripting(ctx);
    let sha = if by_sha { lower_sha(&argv[1]) } else { sha1_hex(&argv[1]) };
    let mut vm = scripting.take_vm().map_err(|e| Error::err(format!("Failed to create a Lua VM: {e}")))?;
    let result = (|| {
        sync_scripts(scripting, &mut vm);
        if !vm.scripts.contains_key(&sha) {
            let script = match scripting.script(&sha) {
                Some(s) => s,
                None if by_sha => return Err(noscript()),
                None => create(scripting, &mut vm, &argv[1], &sha).map_err(Error::Raw)?,
            };
            compile_into(&mut vm, &sha, script).map_err(Error::Raw)?;
        }
        // The VM's own cache answers a script it has run before: no shared lock, no clone.
        let vm = &vm;
        let compiled = &vm.scripts[&sha];
        let script = &compiled.script;
        prepare(ctx, script.flags, ro).map_err(Error::Raw)?;
        let target =
            Target::Eval { sha: &sha, learned: &script.all_stripes, slow: &script.slow, func_key: compiled.key.id() };
        Ok(run(ctx, scripting, vm, &compiled.func, target, &argv[3..3 + n], &argv[3 + n..], script.flags, ro))
    })();
    scripting.give_vm(vm);
    result
}

/// Drop the VM's compiled scripts if SCRIPT FLUSH ran since it last looked.
fn sync_scripts(scripting: &Scripting, vm: &mut Vm) {
    let epoch = scripting.scripts_epoch.load(Ordering::Acquire);
    if vm.scripts_epoch != epoch {
        vm.scripts.clear();
        vm.scripts_epoch = epoch;
    }
}

/// Compile a cached script in this VM (its first run here) and keep it by SHA.
fn compile_into(vm: &mut Vm, sha: &Sha, script: Arc<super::Script>) -> std::result::Result<(), String> {
    if vm.scripts.contains_key(sha) {
        return Ok(());
    }
    let f = vm.compile(&blank_shebang(&script.body, script.shebang_len)).map_err(|e| compile_error(&e))?;
    let compiled = vm.compiled(f, script).map_err(|e| compile_error(&super::vm::compile_error_text(&e)))?;
    vm.scripts.insert(*sha, compiled);
    Ok(())
}

/// The body to compile: the shebang line is skipped, its line feed kept (Redis keeps the line
/// numbers).
fn blank_shebang(body: &[u8], len: usize) -> Vec<u8> {
    body[len..].to_vec()
}

fn compile_error(msg: &str) -> String {
    format!("ERR Error compiling script (new function): {msg}")
}

/// Check and cache a new script (EVAL of an unknown body, SCRIPT LOAD).
fn create(
    scripting: &Scripting,
    vm: &mut Vm,
    body: &Bytes,
    sha: &Sha,
) -> std::result::Result<Arc<super::Script>, String> {
    let (flags, shebang_len) = parse_shebang(body)?;
    let f = vm.compile(&blank_shebang(body, shebang_len)).map_err(|e| compile_error(&e))?;
    let script = Arc::new(super::Script {
        body: body.clone(),
        flags,
        shebang_len,
        all_stripes: AtomicBool::new(false),
        slow: AtomicBool::new(false),
    });
    let mut scripts = scripting.scripts.write().unwrap_or_else(|e| e.into_inner());
    let script = match scripts.get(sha) {
        Some(s) => Arc::clone(s),
        None => {
            scripts.insert(*sha, Arc::clone(&script));
            scripting.scripts_bytes.fetch_add(body.len() + 40, Ordering::Relaxed);
            script
        }
    };
    drop(scripts);
    sync_scripts(scripting, vm);
    let compiled =
        vm.compiled(f, Arc::clone(&script)).map_err(|e| compile_error(&super::vm::compile_error_text(&e)))?;
    vm.scripts.insert(*sha, compiled);
    Ok(script)
}

pub(crate) static SCRIPT_SUBS: &[SubSpec] = &[
    SubSpec { name: "script|exists", arity: -3, handler: script_exists },
    SubSpec { name: "script|flush", arity: -2, handler: script_flush },
    SubSpec { name: "script|help", arity: 2, handler: script_help },
    SubSpec { name: "script|kill", arity: 2, handler: script_kill },
    SubSpec { name: "script|load", arity: 3, handler: script_load },
];

/// `SCRIPT <subcommand> ...`.
pub fn script(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    run_subcommand(ctx, argv, SCRIPT_SUBS)
}

fn script_help(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(help_reply(
        &argv[0],
        &[
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    ))
}

/// `SCRIPT LOAD script`: cache it, reply its SHA.
fn script_load(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let scripting = scripting(ctx);
    let sha = sha1_hex(&argv[2]);
    if scripting.script(&sha).is_none() {
        let mut vm = scripting.take_vm().map_err(|e| Error::err(format!("Failed to create a Lua VM: {e}")))?;
        let r = create(scripting, &mut vm, &argv[2], &sha);
        scripting.give_vm(vm);
        r.map_err(Error::Raw)?;
    }
    Ok(Frame::Bulk(Bytes::copy_from_slice(&sha)))
}

/// `SCRIPT EXISTS sha1 [sha1 ...]`: 1 or 0 for each.
fn script_exists(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let scripting = scripting(ctx);
    Ok(Frame::Array(
        argv[2..]
            .iter()
            .map(|s| Frame::Integer(i64::from(s.len() == 40 && scripting.script(&lower_sha(s)).is_some())))
            .collect(),
    ))
}

/// `SCRIPT FLUSH [ASYNC|SYNC]`.
fn script_flush(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let ok = match argv.len() {
        2 => true,
        3 => is_opt(&argv[2], "SYNC") || is_opt(&argv[2], "ASYNC"),
        _ => false,
    };
    if !ok {
        return Err(Error::err("SCRIPT FLUSH only support SYNC|ASYNC option"));
    }
    scripting(ctx).flush_scripts();
    Ok(Frame::ok())
}

/// `SCRIPT KILL`: stop the busy EVAL script that has not written.
fn script_kill(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    scripting(ctx).kill(true).map_err(Error::Raw)?;
    Ok(Frame::ok())
}
