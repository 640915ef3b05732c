//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH, and the queueing of commands between MULTI
//! and EXEC. Mirrors Redis's `multi.c`; the keyspace side (held stripes, one AOF block, consistent
//! reads, the watch registry) is in `db::tx` and `db::watch`.
//!
//! EXEC takes the stripes of every key of every queued command exclusively, once (all stripes when
//! a command works on whole databases: FLUSHALL, FLUSHDB, SWAPDB, KEYS, SCAN, RANDOMKEY, DBSIZE),
//! checks the watched keys, runs the commands through their normal handlers (which lock nothing
//! meanwhile), pushes their AOF records as one `MULTI` ... `EXEC` block, and releases the stripes.
//! BGREWRITEAOF inside a transaction runs right after the stripes are released (its snapshot must
//! not see the transaction half-applied while its records are not queued yet).

use bytes::Bytes;

use super::{CommandSpec, Ctx, call, flag, out_of_memory};
use crate::db::WatchSet;
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::sync::fault::{self, Fault};

/// A client's transaction state: the commands queued since MULTI, and its watched keys.
#[derive(Default)]
pub struct TxState {
    multi: Option<Multi>,
    watch: Option<WatchSet>,
}

#[derive(Default)]
struct Multi {
    queued: Vec<Queued>,
    /// Bytes of the queued commands' arguments (CLIENT LIST `multi-mem=`), kept as they are queued.
    queued_bytes: usize,
    /// A command was refused while queueing: EXEC answers EXECABORT.
    failed: bool,
}

struct Queued {
    spec: &'static CommandSpec,
    argv: Vec<Bytes>,
    /// The client's db when it was queued: only the AOF loader uses it (the file's SELECTs are not
    /// passed to commands, so a block's records carry their db).
    db: usize,
}

impl TxState {
    /// Whether the client is between MULTI and EXEC/DISCARD.
    pub fn in_multi(&self) -> bool {
        self.multi.is_some()
    }

    /// Between MULTI and EXEC: the number of queued commands and the bytes of their arguments
    /// (CLIENT LIST `multi=` and `multi-mem=`).
    pub fn queued_sizes(&self) -> Option<(usize, usize)> {
        let m = self.multi.as_ref()?;
        Some((m.queued.len(), m.queued_bytes))
    }

    /// Whether a queued command satisfies `f` (EXEC under `CLIENT PAUSE WRITE`).
    pub fn queued_any(&self, f: impl Fn(&CommandSpec, &[Bytes]) -> bool) -> bool {
        self.multi.as_ref().is_some_and(|m| m.queued.iter().any(|q| f(q.spec, &q.argv)))
    }

    /// Whether `spec` is queued rather than run now (every command but these, inside MULTI).
    pub fn queues(&self, spec: &CommandSpec) -> bool {
        self.in_multi() && !matches!(spec.name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset")
    }
}

/// A command refused before it ran (unknown, arity, NOAUTH, OOM, ...): inside MULTI it also makes
/// EXEC fail with EXECABORT. A refused EXEC itself discards the transaction at once and says why
/// (Redis's `execCommandAbort`: a generic `ERR` code is dropped from the reason).
pub fn reject(ctx: &mut Ctx, exec: bool, e: Error) -> Frame {
    let Some(m) = &mut ctx.client.tx.multi else { return e.to_frame() };
    if !exec {
        m.failed = true;
        return e.to_frame();
    }
    abort_exec(ctx, e)
}

fn abort_exec(ctx: &mut Ctx, e: Error) -> Frame {
    ctx.client.tx.multi = None;
    ctx.client.tx.watch = None;
    let Frame::Error(text) = e.to_frame() else { return e.to_frame() };
    let why = String::from_utf8_lossy(text.strip_prefix(b"ERR ").unwrap_or(&text)).into_owned();
    Error::Raw(format!("EXECABORT Transaction discarded because of: {why}")).to_frame()
}

/// Queue a command inside MULTI: `+QUEUED`.
pub fn queue(ctx: &mut Ctx, spec: &'static CommandSpec, argv: &[Bytes]) -> Frame {
    let db = ctx.client.db;
    if let Some(m) = &mut ctx.client.tx.multi {
        m.queued_bytes += argv.iter().map(|a| a.len()).sum::<usize>();
        m.queued.push(Queued { spec, argv: argv.to_vec(), db });
    }
    Frame::simple("QUEUED")
}

/// `MULTI`: start queueing commands.
pub fn multi(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    if ctx.client.tx.in_multi() {
        return Err(Error::err("MULTI calls can not be nested"));
    }
    ctx.client.tx.multi = Some(Multi::default());
    Ok(Frame::ok())
}

/// `DISCARD`: drop the queued commands and unwatch every key.
pub fn discard(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    if ctx.client.tx.multi.take().is_none() {
        return Err(Error::err("DISCARD without MULTI"));
    }
    ctx.client.tx.watch = None;
    Ok(Frame::ok())
}

/// `WATCH key [key ...]`: make the next EXEC fail if one of the keys changes (or expires) first.
pub fn watch(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    if ctx.client.tx.in_multi() {
        return Err(Error::err("WATCH inside MULTI is not allowed"));
    }
    // As in Redis: once a watched key changed, watching more cannot change the outcome.
    if ctx.client.tx.watch.as_ref().is_some_and(WatchSet::is_dirty) {
        return Ok(Frame::ok());
    }
    let keys: Vec<&[u8]> = argv[1..].iter().map(|k| &k[..]).collect();
    let (id, db, now) = (ctx.client.id, ctx.client.db, ctx.now_ms);
    ctx.shared.ks.watch(&mut ctx.client.tx.watch, id, db, &keys, now);
    Ok(Frame::ok())
}

/// `UNWATCH`: forget every watched key.
pub fn unwatch(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    ctx.client.tx.watch = None;
    Ok(Frame::ok())
}

/// `EXEC`: run the queued commands atomically and reply with their replies; the null array when a
/// watched key changed; EXECABORT when a command was refused while queueing.
pub fn exec(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    let Some(multi) = ctx.client.tx.multi.take() else {
        return Err(Error::err("EXEC without MULTI"));
    };
    let watch = ctx.client.tx.watch.take();
    if multi.failed {
        return Err(Error::Raw("EXECABORT Transaction discarded because of previous errors.".into()));
    }
    if let Err(e) = refuse_exec(ctx, &multi) {
        return Ok(abort_exec(ctx, e));
    }
    let shared = ctx.shared;
    let all = multi.queued.iter().any(|q| needs_every_stripe(q.spec));
    let keys: Vec<&[u8]> = if all {
        Vec::new()
    } else {
        multi.queued.iter().flat_map(|q| q.spec.key_indexes(q.argv.len()).map(|i| &q.argv[i][..])).collect()
    };
    if fault::on(Fault::WatchCheckBeforeHold) && watch.as_ref().is_some_and(|w| shared.ks.watch_failed(w, ctx.now_ms)) {
        return Ok(Frame::NullArray);
    }
    let hold = shared.ks.hold(if all {
        None
    } else if fault::on(Fault::ExecWithoutStripes) {
        Some(&[])
    } else {
        Some(&keys)
    });
    if let Some(w) = &watch
        && !fault::on(Fault::WatchCheckBeforeHold)
        && shared.ks.watch_failed(w, ctx.now_ms)
    {
        return Ok(Frame::NullArray);
    }
    drop(watch);
    let loading = ctx.now_ms == 0;
    let mut replies = Vec::with_capacity(multi.queued.len());
    let mut after_release = Vec::new();
    for (i, q) in multi.queued.iter().enumerate() {
        if q.spec.name == "bgrewriteaof" {
            after_release.push(i);
            replies.push(Frame::Null);
            continue;
        }
        if loading {
            ctx.client.db = q.db;
        }
        replies.push(run_queued(ctx, q));
    }
    hold.finish(&ctx.last_seq);
    for i in after_release {
        replies[i] = run_queued(ctx, &multi.queued[i]);
    }
    Ok(Frame::Array(replies))
}

/// Run one queued command (counted, timed and slow-logged by `call` as any other run).
fn run_queued(ctx: &mut Ctx, q: &Queued) -> Frame {
    let frame = call(ctx, q.spec, &q.argv);
    if let Frame::Error(text) = &frame {
        ctx.shared.stats.record_error(text);
    }
    frame
}

/// The refusals that depend on what EXEC would run: writes while the AOF is failing (MISCONF), and
/// commands that may grow memory over `maxmemory` (OOM). The transaction is discarded.
fn refuse_exec(ctx: &Ctx, multi: &Multi) -> Result<()> {
    if ctx.now_ms == 0 {
        return Ok(());
    }
    if multi.queued.iter().any(|q| q.spec.is_write())
        && let Some(aof) = ctx.shared.ks.aof()
        && let Some(reason) = aof.write_error()
    {
        return Err(Error::Misconf(reason));
    }
    if multi.queued.iter().any(|q| q.spec.is(flag::DENYOOM)) && out_of_memory(ctx.shared) {
        return Err(Error::Raw("OOM command not allowed when used memory > 'maxmemory'.".into()));
    }
    Ok(())
}

/// Commands without key positions that read or write whole databases, and those whose keys the
/// table cannot locate (`movablekeys`: LMPOP, ZUNIONSTORE's sources after numkeys, SORT's STORE
/// destination), and FUNCTION (a library change is made and logged under every stripe, see
/// `script::function`): inside EXEC a handler takes no stripe of its own, so EXEC must hold them all.
pub(crate) fn needs_every_stripe(spec: &CommandSpec) -> bool {
    spec.is(flag::MOVABLEKEYS)
        || spec.keys.0 == 0 && spec.acl.contains(&"@keyspace")
        // FUNCTION, and containers whose subcommands name a stream key (XGROUP CREATE key ...).
        || matches!(spec.name, "function" | "xgroup" | "xinfo")
}

/// The keys an AOF record changes, with their db (for WATCH): the table's key positions, except
/// `MOVE key db` (the key in both dbs), `COPY src dst [DB n] ...` (only `dst`, in db `n`) and
/// `ZRANGESTORE dst src ...` (only `dst`).
/// FLUSHALL/FLUSHDB/SWAPDB have none here: the keyspace dirties their watchers itself.
pub fn record_keys(argv: &[&[u8]], db: usize, mut f: impl FnMut(usize, &[u8])) {
    let Some(spec) = argv.first().and_then(|n| super::lookup(n)) else { return };
    let parse_db = |a: &[u8]| std::str::from_utf8(a).ok().and_then(|s| s.parse::<usize>().ok());
    match (spec.name, argv) {
        ("move", [_, key, dst, ..]) => {
            f(db, key);
            if let Some(dst) = parse_db(dst) {
                f(dst, key);
            }
        }
        ("copy", [_, _, dst, opts @ ..]) => {
            let to =
                opts.windows(2).find(|w| w[0].eq_ignore_ascii_case(b"db")).and_then(|w| parse_db(w[1])).unwrap_or(db);
            f(to, dst);
        }
        ("xgroup", [_, _, key, ..]) => f(db, key),
        // The source is only read (Redis's WATCH on it stays clean).
        ("zrangestore", [_, dst, ..]) => f(db, dst),
        _ => spec.key_indexes(argv.len()).for_each(|i| f(db, argv[i])),
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests;
