//! RDB persistence of the server: SAVE, BGSAVE (and BGSAVE SCHEDULE), the `save` schedules, the
//! `stop-writes-on-bgsave-error` latch, the final save at shutdown, and loading `dump.rdb` at
//! startup. Mirrors the `rdbSave*`/`rdbLoad` parts of Redis's `rdb.c` and `serverCron`.
//!
//! # No stop-the-world
//!
//! A save copies the keyspace while holding every stripe (`Keyspace::snapshot` under
//! `write_all`: the same pause an AOF rewrite takes, and the bound Redis's fork is), then writes
//! the file from the copy without any lock: BGSAVE on a thread of its own, SAVE on the calling
//! connection's task (only that client waits for the file, as the others go on). The copy is a
//! consistent point in time: no write is half-applied while every stripe is held.
//!
//! A file is written to `temp-<pid>-<n>.rdb` in `dir`, fsynced, renamed over `dbfilename` and
//! the directory fsynced, so that a crash leaves the old file or the new one, never a torn one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::SeqCst};

use crate::config::Config;
use crate::state::Shared;
use crate::{notice, warning};

/// Redis's CONFIG_BGSAVE_RETRY_DELAY: seconds before a failed BGSAVE is retried by a schedule.
const BGSAVE_RETRY_DELAY_S: u64 = 5;

/// The state INFO persistence reports and the schedules read.
#[derive(Debug)]
pub struct RdbState {
    /// Unix seconds of the last successful save (LASTSAVE).
    pub last_save_unix: Arc<AtomicU64>,
    /// `dirty::total()` as of the last successful save.
    dirty_base: AtomicU64,
    /// `dirty::total()` when the running BGSAVE copied the keyspace.
    dirty_at_start: AtomicU64,
    pub in_progress: AtomicBool,
    /// The last BGSAVE succeeded (`rdb_last_bgsave_status`).
    pub last_bgsave_ok: AtomicBool,
    /// Seconds the last BGSAVE took (-1: none yet).
    pub last_bgsave_secs: AtomicI64,
    /// Start of the running BGSAVE, ms (0: none).
    started_ms: AtomicU64,
    /// Unix seconds of the last BGSAVE attempt.
    last_try_unix: AtomicU64,
    /// A BGSAVE SCHEDULE is waiting for the running AOF rewrite (or EXEC) to end.
    pub scheduled: AtomicBool,
    pub saves: AtomicU64,
    pub loaded_keys: AtomicU64,
    pub loaded_expired: AtomicU64,
    file_counter: AtomicU64,
    /// What SHUTDOWN asked about the final save (0 default, 1 SAVE, 2 NOSAVE).
    shutdown_mode: std::sync::atomic::AtomicU8,
}

impl RdbState {
    pub fn new(last_save_unix: Arc<AtomicU64>) -> RdbState {
        RdbState {
            last_save_unix,
            dirty_base: AtomicU64::new(super::dirty::total()),
            dirty_at_start: AtomicU64::new(0),
            in_progress: AtomicBool::new(false),
            last_bgsave_ok: AtomicBool::new(true),
            last_bgsave_secs: AtomicI64::new(-1),
            started_ms: AtomicU64::new(0),
            last_try_unix: AtomicU64::new(0),
            scheduled: AtomicBool::new(false),
            saves: AtomicU64::new(0),
            loaded_keys: AtomicU64::new(0),
            loaded_expired: AtomicU64::new(0),
            file_counter: AtomicU64::new(0),
            shutdown_mode: std::sync::atomic::AtomicU8::new(0),
        }
    }

    /// Changes since the last successful save (`rdb_changes_since_last_save`).
    pub fn changes(&self) -> u64 {
        super::dirty::total().saturating_sub(self.dirty_base.load(SeqCst))
    }

    /// Seconds the running BGSAVE has taken so far (-1: none running).
    pub fn current_secs(&self) -> i64 {
        match self.started_ms.load(SeqCst) {
            0 => -1,
            t => (crate::util::now_ms().saturating_sub(t) / 1000) as i64,
        }
    }

    /// Record SHUTDOWN's SAVE / NOSAVE for the final save.
    pub fn set_shutdown_mode(&self, m: ShutdownSave) {
        self.shutdown_mode.store(m as u8, SeqCst);
    }

    pub fn shutdown_mode(&self) -> ShutdownSave {
        match self.shutdown_mode.load(SeqCst) {
            1 => ShutdownSave::Save,
            2 => ShutdownSave::NoSave,
            _ => ShutdownSave::Default,
        }
    }

    /// Reset the change count (after a save or a load).
    fn saved(&self, dirty_at_copy: u64) {
        self.dirty_base.store(dirty_at_copy, SeqCst);
        self.last_save_unix.store(crate::state::unix_secs(), SeqCst);
    }
}

/// The `save` parameter as (seconds, changes) pairs.
pub fn save_params(cfg: &Config) -> Vec<(u64, u64)> {
    let nums: Vec<u64> = cfg.save.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    nums.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

fn flag(cfg: &Config, name: &str, default: bool) -> bool {
    cfg.get(name).map_or(default, |v| v == "yes")
}

/// Whether writes (and PING) are refused with `-MISCONF` for a failed BGSAVE
/// (`writeCommandsDeniedByDiskError`).
pub fn denies_writes(shared: &Shared) -> bool {
    if shared.rdb.last_bgsave_ok.load(SeqCst) {
        return false;
    }
    let cfg = shared.config();
    flag(&cfg, "stop-writes-on-bgsave-error", true) && !save_params(&cfg).is_empty()
}

/// The `-MISCONF` text for a failed BGSAVE.
pub const MISCONF_RDB: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// The file a save writes: `dir`/`dbfilename`.
pub fn rdb_path(cfg: &Config) -> PathBuf {
    cfg.dir.join(cfg.get("dbfilename").unwrap_or_else(|| "dump.rdb".into()))
}

/// The aux fields and encodings of a file written now.
pub fn aux_for(shared: &Shared, cfg: &Config) -> super::Aux {
    super::Aux {
        used_mem: shared.used_memory.load(SeqCst).max(crate::memory::used_bytes()),
        checksum: flag(cfg, "rdbchecksum", true),
        opts: super::EncodeOpts::from_config(cfg, flag(cfg, "rdbcompression", true)),
        key_save_delay_us: cfg.get("rdb-key-save-delay").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0).max(0) as u64,
        ..super::Aux::default()
    }
}

/// Start a background AOF rewrite (BGREWRITEAOF, the automatic rewrite, a replica's rewrite after
/// a full sync): its base is an RDB preamble under `aof-use-rdb-preamble yes` (Redis's default),
/// commands otherwise; the function libraries go with it either way.
pub fn start_aof_rewrite(shared: &Shared) -> Result<(), crate::aof::AofError> {
    let rdb = {
        let cfg = shared.config();
        flag(&cfg, "aof-use-rdb-preamble", true).then(|| aux_for(shared, &cfg))
    };
    shared.ks.start_rewrite_with(|| crate::script::function::rewrite_records(&shared.scripting), rdb)
}

/// A point-in-time snapshot of the keyspace ([`crate::db::Frozen`]: writers are kept out only
/// while it pins the blocks and copies what changes in place, not while it is written) and of the
/// function libraries, with the change count at that point and the replication state that goes
/// with it (`repl-id`, `repl-offset`; on a replica, `apply_lock` keeps its primary's stream out
/// between two batches, so that the offset recorded is the one the snapshot stands for). Taken
/// on the thread that writes it, without any lock.
#[allow(clippy::type_complexity)]
pub fn freeze(shared: &Shared) -> (crate::db::Frozen<'_>, Vec<bytes::Bytes>, u64, Option<super::ReplInfo>) {
    let _apply = shared.repl.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
    let seq = std::cell::Cell::new(0);
    let all = shared.ks.write_all(0, &seq);
    let frozen = shared.ks.freeze(crate::util::now_ms());
    let functions = crate::script::function::rewrite_records(&shared.scripting)
        .into_iter()
        .filter_map(|r| r.get(3).cloned())
        .collect();
    let repl = crate::repl::save_info(shared);
    let dirty = super::dirty::total();
    drop(all);
    (frozen, functions, dirty, repl)
}

/// Write `entries` as the RDB file `path`: a temporary file in the same directory, fsynced, then
/// renamed over `path`, and the directory fsynced.
pub fn write_file(
    path: &Path,
    entries: &(impl super::save::Keys + ?Sized),
    aux: &super::Aux,
    unique: u64,
) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!("temp-{}-{unique}.rdb", std::process::id()));
    let result = (|| {
        let f = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        super::write_rdb(&mut w, entries, aux)?;
        w.flush()?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `SAVE`: copy, then write the file on this thread. Err(()) is Redis's bare `-ERR`.
pub fn save(shared: &Shared) -> Result<(), String> {
    if shared.rdb.in_progress.load(SeqCst) {
        return Err("ERR Background save already in progress".into());
    }
    shared.rdb.saves.fetch_add(1, SeqCst);
    save_now(shared)
}

/// FLUSHALL with save points set saves the (empty) dataset at once, as Redis's
/// `flushAllDataAndResetRDB` (`rdbSave`: the changes since the last save back to 0, LASTSAVE now;
/// not counted in `rdb_saves`, which counts SAVE and BGSAVE). Redis kills a running BGSAVE first;
/// here one that runs is left to finish, and this save is skipped.
pub fn save_after_flushall(shared: &Shared) {
    if save_params(&shared.config()).is_empty() || shared.rdb.in_progress.load(SeqCst) {
        return;
    }
    let _ = save_now(shared);
}

/// Copy, then write the file on this thread.
fn save_now(shared: &Shared) -> Result<(), String> {
    let (frozen, functions, dirty, repl) = freeze(shared);
    let (path, aux) = {
        let cfg = shared.config();
        (rdb_path(&cfg), super::Aux { functions, repl, ..aux_for(shared, &cfg) })
    };
    let n = shared.rdb.file_counter.fetch_add(1, SeqCst);
    let keys: usize = (0..shared.ks.databases()).map(|d| shared.ks.db(d).len()).sum();
    let result = crate::cmd::offload(keys, || write_file(&path, &frozen, &aux, n));
    drop(frozen);
    match result {
        Ok(()) => {
            notice!("DB saved on disk");
            shared.rdb.saved(dirty);
            Ok(())
        }
        Err(e) => {
            warning!(
                "Failed opening the temp RDB file temp-{}.rdb (in server root dir {}) for saving: {e}",
                std::process::id(),
                path.parent().map_or(String::new(), |p| p.display().to_string())
            );
            Err("ERR".into())
        }
    }
}

/// What BGSAVE answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Bgsave {
    Started,
    Scheduled,
}

/// `BGSAVE [SCHEDULE]`: copy the keyspace now, write the file on a background thread.
pub fn bgsave(shared: &Shared, schedule: bool) -> Result<Bgsave, String> {
    if shared.rdb.in_progress.load(SeqCst) {
        return Err("ERR Background save already in progress".into());
    }
    let rewriting = shared.ks.aof().is_some_and(|a| a.info().aof_rewrite_in_progress);
    if rewriting || shared.ks.in_exec() {
        if schedule || shared.ks.in_exec() {
            shared.rdb.scheduled.store(true, SeqCst);
            return Ok(Bgsave::Scheduled);
        }
        return Err("ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.".into());
    }
    start_bgsave(shared).map(|_| Bgsave::Started)
}

/// Start a background save now (the caller checked that none runs).
pub fn start_bgsave(shared: &Shared) -> Result<(), String> {
    if shared.rdb.in_progress.compare_exchange(false, true, SeqCst, SeqCst).is_err() {
        return Err("ERR Background save already in progress".into());
    }
    let st = &shared.rdb;
    st.scheduled.store(false, SeqCst);
    st.last_try_unix.store(crate::state::unix_secs(), SeqCst);
    st.started_ms.store(crate::util::now_ms(), SeqCst);
    let Some(me) = shared.repl.me() else {
        st.in_progress.store(false, SeqCst);
        return Err("ERR".into());
    };
    let n = st.file_counter.fetch_add(1, SeqCst);
    // The thread that writes the file takes the snapshot (its guards keep the pinned blocks
    // alive, and they are that thread's); BGSAVE answers once the point is taken.
    let (taken_tx, taken_rx) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new().name("bgsave".into()).spawn(move || {
        let shared = &*me;
        let state = &shared.rdb;
        let (frozen, functions, dirty, repl) = freeze(shared);
        state.dirty_at_start.store(dirty, SeqCst);
        let (path, aux) = {
            let cfg = shared.config();
            (rdb_path(&cfg), super::Aux { functions, repl, ..aux_for(shared, &cfg) })
        };
        notice!("Background saving started by pid {}", std::process::id());
        let _ = taken_tx.send(());
        let result = write_file(&path, &frozen, &aux, n);
        drop(frozen);
        let started = state.started_ms.swap(0, SeqCst);
        state.last_bgsave_secs.store((crate::util::now_ms().saturating_sub(started) / 1000) as i64, SeqCst);
        match result {
            Ok(()) => {
                notice!("Background saving terminated with success");
                state.saved(state.dirty_at_start.load(SeqCst));
                state.last_bgsave_ok.store(true, SeqCst);
                state.saves.fetch_add(1, SeqCst);
            }
            Err(e) => {
                warning!("Background saving error: {e}");
                state.last_bgsave_ok.store(false, SeqCst);
            }
        }
        state.in_progress.store(false, SeqCst);
    });
    if spawned.is_ok() {
        let _ = crate::cmd::offload(usize::MAX, || taken_rx.recv());
    }
    if let Err(e) = spawned {
        shared.rdb.started_ms.store(0, SeqCst);
        shared.rdb.in_progress.store(false, SeqCst);
        shared.rdb.last_bgsave_ok.store(false, SeqCst);
        warning!("Can't save in background: {e}");
        return Err("ERR".into());
    }
    Ok(())
}

/// The cron's part (once a second): a scheduled BGSAVE whose obstacle is gone, or a `save` point
/// reached (`serverCron`).
pub fn cron(shared: &Shared) {
    let st = &shared.rdb;
    if st.in_progress.load(SeqCst) {
        return;
    }
    let rewriting = shared.ks.aof().is_some_and(|a| a.info().aof_rewrite_in_progress);
    if rewriting {
        return;
    }
    if st.scheduled.load(SeqCst) {
        let _ = start_bgsave(shared);
        return;
    }
    let params = save_params(&shared.config());
    let now = crate::state::unix_secs();
    let changes = st.changes();
    let since = now.saturating_sub(st.last_save_unix.load(SeqCst));
    let retry_ok =
        st.last_bgsave_ok.load(SeqCst) || now.saturating_sub(st.last_try_unix.load(SeqCst)) > BGSAVE_RETRY_DELAY_S;
    if let Some((secs, n)) = params.iter().find(|(secs, n)| changes >= *n && since >= *secs)
        && retry_ok
    {
        notice!("{n} changes in {secs} seconds. Saving...");
        let _ = start_bgsave(shared);
    }
}

/// The final save at shutdown (SIGTERM, SHUTDOWN): with `save` points configured or `SHUTDOWN
/// SAVE`, unless `SHUTDOWN NOSAVE`. The caller holds `apply_lock` and every stripe (no write
/// runs; a replica's offset is the one its data stands for). Returns
/// whether it is fine to exit.
pub fn shutdown_save(shared: &Shared, mode: ShutdownSave) -> bool {
    let cfg = shared.config().clone();
    let wanted = match mode {
        ShutdownSave::Save => true,
        ShutdownSave::NoSave => false,
        ShutdownSave::Default => !save_params(&cfg).is_empty(),
    };
    if !wanted {
        return true;
    }
    notice!("Saving the final RDB snapshot before exiting.");
    let entries = shared.ks.snapshot(crate::util::now_ms());
    let functions = crate::script::function::rewrite_records(&shared.scripting)
        .into_iter()
        .filter_map(|r| r.get(3).cloned())
        .collect();
    let repl = crate::repl::save_info(shared);
    let aux = super::Aux { functions, repl, ..aux_for(shared, &cfg) };
    match write_file(&rdb_path(&cfg), &entries, &aux, u64::MAX) {
        Ok(()) => {
            notice!("DB saved on disk");
            true
        }
        Err(e) => {
            warning!("Error trying to save the DB, can't exit: {e}");
            false
        }
    }
}

/// What SHUTDOWN asked about saving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownSave {
    Default = 0,
    Save = 1,
    NoSave = 2,
}

/// Load `dir`/`dbfilename` at startup (appendonly no), when it exists. Keys already expired are
/// skipped, as a primary does; the function libraries are loaded. Errors are fatal at startup.
pub fn load_at_startup(shared: &Shared) -> Result<(), String> {
    let cfg = shared.config().clone();
    let path = rdb_path(&cfg);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // (Gone since `server::loads_at_start` saw it.)
            shared.ks.set_loading(false);
            return Ok(());
        }
        Err(e) => return Err(format!("Fatal error loading the DB: {e}. Exiting.")),
    };
    let started = std::time::Instant::now();
    super::loading::start(file.metadata().map_or(0, |m| m.len()));
    shared.ks.set_loading(true);
    let mut r = super::loading::reader(std::io::BufReader::with_capacity(1 << 20, file));
    let now = crate::util::now_ms();
    let result = super::load::load_into(&shared.ks, &cfg, &mut r, now);
    let info = match result {
        Ok(info) => info,
        Err(e) => {
            shared.ks.set_loading(false);
            return Err(format!("Short read or OOM loading DB. Unrecoverable error, aborting now. ({e})"));
        }
    };
    load_functions(shared, &info.functions)?;
    crate::repl::restore_after_load(shared, |name| info.aux(name).map(<[u8]>::to_vec), &info.expired_keys);
    shared.rdb.loaded_keys.store(info.keys, SeqCst);
    shared.rdb.loaded_expired.store(info.expired_skipped, SeqCst);
    shared.ks.set_loading(false);
    shared.rdb.saved(super::dirty::total());
    notice!("Done loading RDB, keys loaded: {}, keys expired: {}.", info.keys, info.expired_skipped);
    notice!("DB loaded from disk: {:.3} seconds", started.elapsed().as_secs_f64());
    Ok(())
}

/// Load function libraries read from an RDB (FUNCTION LOAD REPLACE each, as a loader client).
pub fn load_functions(shared: &Shared, codes: &[bytes::Bytes]) -> Result<(), String> {
    if codes.is_empty() {
        return Ok(());
    }
    let info = shared.clients.register("loader".into(), String::new());
    let mut client = crate::cmd::Client::new(info);
    let mut out = Ok(());
    for code in codes {
        let argv = [
            bytes::Bytes::from_static(b"FUNCTION"),
            bytes::Bytes::from_static(b"LOAD"),
            bytes::Bytes::from_static(b"REPLACE"),
            code.clone(),
        ];
        let mut ctx = crate::cmd::Ctx::new(shared, &mut client, 0);
        if let crate::resp::Frame::Error(e) = crate::cmd::execute(&mut ctx, &argv) {
            out = Err(format!("Failed loading library from the RDB: {}", String::from_utf8_lossy(&e)));
            break;
        }
    }
    shared.clients.unregister(client.id);
    out
}
