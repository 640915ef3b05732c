//! Append-only file: the write side (crossbeam queue -> writer thread -> preallocated mmap region),
//! durability (fsync policies, group commit), loading (replay) and rewrite. Mirrors Redis's `aof.c`.
//!
//! # Layout
//! - `format.rs`: RESP encoding of records and the scanner that finds the valid end of a file.
//! - `file.rs`: the preallocated, memory-mapped file the writer appends to (an in-memory stand-in under loom).
//! - `queue.rs`: the producer -> writer queue (`SegQueue`; `Mutex<VecDeque>` under loom).
//! - `writer.rs`: the writer thread (batches, `SELECT`, msync, failure latch, rewrite switch).
//! - `durable.rs`: the durable watermark and the wakers of `wait_durable` (group commit).
//! - `load.rs`: replay at startup. `rewrite.rs`: the base of a rewrite and its commit.
//! - `park.rs`: waking the writer. `config.rs`, `error.rs`: the public configuration and error types.
//!
//! # Write path
//! A connection applies a write and, still holding the lock that orders writes on that key, calls
//! [`Aof::append`]: the command is encoded as a RESP array, stamped with a sequence number and pushed on
//! a FIFO queue. The writer thread pops records in queue order (that is the file order), adds a
//! `SELECT` record whenever the db differs from the previous record's, copies the batch into the mapped
//! file and, with `appendfsync always`, makes it durable with ONE msync for the whole batch before
//! publishing the watermark: the highest seq S such that all records with seq <= S are durable (seqs of
//! different keys may reach the writer out of order). `everysec` msyncs about once a second in the
//! background, `no` only at shutdown and rewrite; under both the watermark is published as soon as the
//! records are copied into the mapped file (the page cache: they survive the process being killed).
//!
//! Under `everysec` and `no` a connection that is about to wait for its records first tries to take
//! the writer's state ([`Aof::help_write`], a `try_lock`) and drains the queue into the file itself:
//! one thread instead of two hand-offs (wake the writer, be woken by it) per batch. Whoever drains,
//! the queue order is the file order. What needs more than a copy (extending the file, msync, a
//! rewrite commit, retrying a latched failure) is left to the writer thread.
//!
//! # What an acknowledgement means
//! The connection sends the replies of a batch of writes only once the watermark covers the batch's
//! last record ([`Aof::wait_durable`]), as Redis writes its AOF buffer before it replies: under
//! `always` the records are on disk, under `everysec` and `no` they are in the file (a SIGKILL right
//! after the reply loses nothing; a power loss may lose the last second, or what the OS had not
//! written back).
//!
//! # File format
//! - The file is a sequence of records exactly as Redis 7.0 writes its (single-file) AOF: each command
//!   is a RESP array of bulk strings, `*<argc>\r\n` then `$<len>\r\n<bytes>\r\n` per argument, and a
//!   `SELECT <db>` record precedes any record whose db differs from the previous one's (and the first).
//!   `MULTI` ... `EXEC` blocks appear as plain records.
//! - A line starting with `#` (through `\n`) is an annotation and is skipped by the loader, as Redis's
//!   loader and `redis-check-aof` do. This writer emits none.
//! - While the server runs, the file is longer than the log: it is extended ahead of the writer in
//!   chunks of `prealloc_bytes` with real blocks reserved (`posix_fallocate`, not a sparse `set_len`),
//!   and the unwritten region is zeros. A disk with less free space than a chunk gets smaller
//!   extensions (half the free space, at the end just the pages the pending records need: see
//!   `file.rs`), so writes are taken until the disk is really full; only reserved blocks are ever
//!   mapped. The valid end is the first zero byte where a record (or `#`)
//!   should begin, provided only zeros follow it to the end of the file.
//! - After a crash the last record may be torn: a partial record after which only zeros (or the end of
//!   the file) follow from the point where it breaks off. It is dropped with a warning in the server log when
//!   `load_truncated` is set (the default; otherwise loading fails with [`AofError::Truncated`]), and
//!   `open` cuts the file there. Anything else that does not parse, and a zero gap followed by non-zero
//!   bytes, is corruption: [`AofError::Corrupt`] names the offset of the first bad record, unless
//!   `load_corrupt_prefix` is set (then the records before it are loaded, a warning is printed, `open`
//!   saves a copy of the whole file as `<filename>.corrupt-<unix time>` and cuts it at that offset).
//! - A `MULTI` block that is not closed by `EXEC` before the valid end is dropped at load time.
//! - [`Aof::shutdown`] trims the file to the valid length, so a cleanly stopped server leaves a file
//!   that `redis-check-aof` accepts and `redis-server` 7.0 loads (with `aof-use-rdb-preamble no`).
//! - A rewrite writes the base (the snapshot, as commands) to `temp-rewriteaof-<pid>-<id>.aof` in the
//!   same directory, appends every record queued after the snapshot point, fsyncs it and renames it
//!   over the AOF (then fsyncs the directory). Until the rename the old file is complete, so a crash at
//!   any moment leaves a file that loads.
//!
//! # Durability caveat
//! A failed msync is latched (writes are refused with `-MISCONF` by the server, waiters fail) and
//! retried; when a retry succeeds the latch clears. On Linux a failed writeback may have dropped the
//! dirty pages it was about, so records whose waiters already failed are not guaranteed durable.

mod config;
mod durable;
mod error;
mod file;
mod format;
pub mod import;
mod load;
mod park;
mod queue;
mod rewrite;
mod writer;

#[cfg(all(test, not(feature = "loom")))]
mod tests;

// The loom models of this module live in loom-tests/ (writer.rs, group_commit.rs, rewrite.rs).

use std::future::Future;
use std::io;

pub use config::{AOF_PREALLOC_BYTES, AofConfig, AofInfo, FsyncPolicy, FsyncSetting};
pub use error::AofError;
pub use format::{encode_block, encode_command, encode_select};
pub use load::{LoadReport, PlainSets, PreambleLoader};
pub use rewrite::RewriteHandle;

use durable::{Durability, DurableWait};
use file::{AofFile, Faults};
use park::{Parker, Unparker};
use queue::Queue;
use writer::{Item, Writer};

use crate::sync::{Arc, AtomicBool, AtomicU64, Condvar, Mutex, Ordering, lock, thread};

/// State shared by producers, the writer thread and rewrite handles.
pub(crate) struct Shared {
    queue: Queue<Item>,
    /// The next seq to hand out; seqs start at 1 (0 means "nothing to wait for").
    next_seq: AtomicU64,
    durability: Durability,
    shutdown: AtomicBool,
    fsync: FsyncSetting,
    faults: Faults,
    /// Test hook: the writer stops at once without flushing, as if the process were killed.
    crash: AtomicBool,
    current_size: AtomicU64,
    /// Successful msyncs of the log (group commit makes this far smaller than the record count).
    msyncs: AtomicU64,
    /// Under `always`, the lowest seq whose push wakes the writer: 0 (every record) unless the
    /// writer is gathering a group (see `writer::Writer::gather`).
    wake_at: AtomicU64,
    base_size: AtomicU64,
    rewrites: AtomicU64,
    rewrite_in_progress: AtomicBool,
    last_rewrite_ok: AtomicBool,
    next_rewrite_id: AtomicU64,
    /// The writer's answer to the last rewrite commit: (id, result).
    rewrite_done: Mutex<Option<(u64, Result<(), String>)>>,
    rewrite_cv: Condvar,
}

impl Shared {
    /// Writer: rewrite `id` is finished (committed or failed); wake the committing thread.
    fn rewrite_finished(&self, id: u64, result: Result<(), String>) {
        if id != 0 {
            // Relaxed: statistics for INFO.
            self.last_rewrite_ok.store(result.is_ok(), Ordering::Relaxed);
            if result.is_ok() {
                self.rewrites.fetch_add(1, Ordering::Relaxed);
            }
        }
        *lock(&self.rewrite_done) = Some((id, result));
        self.rewrite_cv.notify_all();
    }
}

struct Enabled {
    shared: Arc<Shared>,
    cfg: AofConfig,
    /// Wakes the writer thread.
    writer: Unparker,
    /// The writer's state, for connections that help it (`help_write`).
    cell: Arc<writer::WriterCell>,
    join: Mutex<Option<thread::JoinHandle<Result<(), AofError>>>>,
    /// The in-memory file the models read.
    #[cfg(feature = "loom")]
    memory: file::MemoryView,
}

impl Enabled {
    /// After a record is queued. Under `always` the writer thread is woken: its msync is what the
    /// record's waiter needs (while it gathers a group, only by the record that completes the
    /// group, see `writer::Writer::gather`). Under `everysec` and `no` it is not (a futex wake per record, and a
    /// writer that then holds the lock a helping connection wants): the connection that waits for
    /// the record copies it itself ([`Aof::help_write`], which wakes the writer when it cannot),
    /// background producers (active expiry) call `help_write` after their batch, and the idle writer
    /// looks at the queue every [`writer::LAZY_DRAIN_INTERVAL`] anyway. Loom models keep the wake
    /// per record, so that the writer thread races the producers in every model.
    fn wake_writer_for_record(&self, seq: u64) {
        if cfg!(feature = "loom") {
            self.writer.unpark();
        } else if self.shared.fsync.get() == FsyncPolicy::Always {
            // SeqCst (fence and load): with the writer's store and fence in `gather`, either this
            // load sees the writer's reset of `wake_at` to 0 (and wakes it), or the writer's look
            // at the queue after that reset sees this record (pushed before the fence).
            std::sync::atomic::fence(Ordering::SeqCst);
            if seq >= self.shared.wake_at.load(Ordering::SeqCst) {
                self.writer.unpark();
            }
        }
    }
}

/// How many times [`Aof::help_write`] looks at the queue and the writer's lock when another
/// thread holds the lock, before it wakes the writer thread instead (about a microsecond).
const HELP_LOOKS: usize = if cfg!(feature = "loom") { 1 } else { 64 };

/// The append-only file. `Send + Sync`; share it as `Arc<Aof>`.
pub struct Aof {
    inner: Option<Enabled>,
}

impl Aof {
    /// `appendonly no`: `append` returns 0 and does nothing, `wait_durable` is immediately `Ok`.
    pub fn disabled() -> Arc<Aof> {
        Arc::new(Aof { inner: None })
    }

    /// Creates or opens the AOF, finds its valid end (cutting a torn tail, or a corrupt suffix when
    /// `load_corrupt_prefix` is set), reserves the first chunk and starts the writer thread. Call
    /// [`Aof::load`] first to replay the file.
    pub fn open(cfg: AofConfig) -> Result<Arc<Aof>, AofError> {
        Self::open_with(cfg, None)
    }

    /// [`Aof::open`] right after [`Aof::load`] returned `report` for the same configuration: the
    /// valid end that loading found is used instead of scanning the file again (unless the file
    /// changed in between: another size, modification time or inode).
    pub fn open_loaded(cfg: AofConfig, report: &LoadReport) -> Result<Arc<Aof>, AofError> {
        let scanned = report.scanned.clone();
        Self::open_with(cfg, scanned.as_ref())
    }

    fn open_with(cfg: AofConfig, loaded: Option<&load::Scanned>) -> Result<Arc<Aof>, AofError> {
        std::fs::create_dir_all(&cfg.dir)?;
        let path = cfg.path();
        let existed = path.exists();
        let valid_len = if existed { load::prepare_for_append(&cfg, loaded)? } else { 0 };
        let faults = Faults::default();
        let (file, first_extension) = AofFile::open(&path, valid_len, cfg.prealloc_bytes, &faults)?;
        if !existed {
            std::fs::File::open(&cfg.dir)?.sync_all()?;
        }
        Self::start(cfg, faults, file, first_extension, valid_len)
    }

    /// Loom models: an AOF over the in-memory file stand-in, with no filesystem access at all.
    #[cfg(feature = "loom")]
    #[doc(hidden)]
    pub fn open_in_memory(fsync: FsyncPolicy) -> Arc<Aof> {
        let cfg = AofConfig { fsync, prealloc_bytes: 64, ..AofConfig::default() };
        let faults = Faults::default();
        let (file, first) = AofFile::open(&cfg.path(), 0, cfg.prealloc_bytes, &faults).expect("in memory");
        Self::start(cfg, faults, file, first, 0).expect("spawn the writer")
    }

    /// Loom models: the bytes the in-memory file holds now (the whole log).
    #[cfg(feature = "loom")]
    #[doc(hidden)]
    pub fn contents(&self) -> Vec<u8> {
        self.inner.as_ref().map_or_else(Vec::new, |e| e.memory.contents())
    }

    /// Loom models: the prefix of the in-memory file that is durable (what a crash would keep).
    #[cfg(feature = "loom")]
    #[doc(hidden)]
    pub fn durable_contents(&self) -> Vec<u8> {
        self.inner.as_ref().map_or_else(Vec::new, |e| e.memory.durable_contents())
    }

    /// Loom models: replays `bytes` (a log, e.g. [`Aof::contents`]) as [`Aof::load`] replays a file,
    /// except that a torn or corrupt tail is an error.
    #[cfg(feature = "loom")]
    #[doc(hidden)]
    pub fn replay_in_memory(
        bytes: &[u8],
        apply: impl FnMut(usize, &[bytes::Bytes]) -> Result<(), String>,
    ) -> Result<LoadReport, AofError> {
        let cfg = AofConfig { load_truncated: false, ..AofConfig::default() };
        load::replay(bytes, bytes.len() as u64, &cfg, None, apply)
    }

    /// Starts the writer thread over an opened file whose first `valid_len` bytes are the log.
    fn start(
        cfg: AofConfig,
        faults: Faults,
        file: AofFile,
        first_extension: io::Result<()>,
        valid_len: u64,
    ) -> Result<Arc<Aof>, AofError> {
        let shared = Arc::new(Shared {
            queue: Queue::new(),
            next_seq: AtomicU64::new(1),
            durability: Durability::new(),
            shutdown: AtomicBool::new(false),
            fsync: FsyncSetting::new(cfg.fsync),
            faults,
            crash: AtomicBool::new(false),
            current_size: AtomicU64::new(valid_len),
            msyncs: AtomicU64::new(0),
            wake_at: AtomicU64::new(0),
            base_size: AtomicU64::new(valid_len),
            rewrites: AtomicU64::new(0),
            rewrite_in_progress: AtomicBool::new(false),
            last_rewrite_ok: AtomicBool::new(true),
            next_rewrite_id: AtomicU64::new(1),
            rewrite_done: Mutex::new(None),
            rewrite_cv: Condvar::new(),
        });
        #[cfg(feature = "loom")]
        let memory = file.view();
        let (path, dir) = (cfg.path(), cfg.dir.clone());
        let writer = Writer::new(Arc::clone(&shared), path, dir, cfg.prealloc_bytes, file, first_extension);
        let cell = Arc::new(Mutex::new(Some(writer)));
        let parker = Parker::new();
        let link = parker.link();
        let (thread_cell, thread_shared) = (Arc::clone(&cell), Arc::clone(&shared));
        let join = thread::Builder::new()
            .name("aof-writer".into())
            .spawn(move || writer::run(thread_cell, thread_shared, parker))?;
        let writer = link.unparker(join.thread());
        Ok(Arc::new(Aof {
            inner: Some(Enabled {
                shared,
                cfg,
                writer,
                cell,
                join: Mutex::new(Some(join)),
                #[cfg(feature = "loom")]
                memory,
            }),
        }))
    }

    /// The highest seq S such that every record with seq <= S is durable (0 when disabled).
    #[doc(hidden)]
    pub fn durable_watermark(&self) -> u64 {
        self.inner.as_ref().map_or(0, |e| e.shared.durability.watermark())
    }

    /// Replays the file at `cfg.path()`: calls `apply(db, argv)` for every command record in order
    /// (`argv` borrows the buffer the file is parsed in; copy what must outlive the call),
    /// tracking `SELECT` itself (not passed on). `MULTI`/`EXEC` blocks are passed through as they are;
    /// a block torn at the end is dropped. `apply` errors are counted and logged, not fatal. A missing
    /// file gives an empty report. Progress is logged (server log) for large files.
    /// An RDB preamble (`aof-use-rdb-preamble`) is replayed as the commands that rebuild its keys,
    /// then its function libraries as `FUNCTION LOAD REPLACE`.
    pub fn load(
        cfg: &AofConfig,
        apply: impl FnMut(usize, &[bytes::Bytes]) -> Result<(), String>,
    ) -> Result<LoadReport, AofError> {
        load::load(cfg, None, apply)
    }

    /// [`load`](Self::load), with an RDB preamble read by `preamble` instead (the keyspace's RDB
    /// loader, which puts keys in bulk), before the commands after it.
    pub fn load_with_preamble(
        cfg: &AofConfig,
        preamble: PreambleLoader<'_>,
        apply: impl FnMut(usize, &[bytes::Bytes]) -> Result<(), String>,
    ) -> Result<LoadReport, AofError> {
        load::load(cfg, Some(preamble), apply)
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Logs one command for `db`. Call it while holding the lock that orders writes on the command's
    /// key(s), so per-key order in the file is the order the writes were applied. Returns the record's
    /// seq for [`Aof::wait_durable`] (0 when disabled). Never blocks.
    pub fn append(&self, db: usize, argv: &[&[u8]]) -> u64 {
        if self.inner.is_none() {
            return 0;
        }
        self.append_encoded(db, writer::encode_record(argv))
    }

    /// [`append`](Self::append) of a record already encoded, e.g. a whole `MULTI` ... `EXEC` block
    /// from [`encode_block`] (one queue item, one seq: no other record can land inside it) that
    /// leaves the stream in `db`. Call it holding the locks of every key of its records.
    pub fn append_encoded(&self, db: usize, bytes: Vec<u8>) -> u64 {
        let Some(e) = &self.inner else { return 0 };
        // Relaxed: the seq only has to be unique; the queue push publishes the record.
        let seq = e.shared.next_seq.fetch_add(1, Ordering::Relaxed);
        if e.shared.durability.is_stopped() {
            return seq; // after shutdown nothing is written; its wait fails with `Closed`
        }
        e.shared.queue.push(Item::Record { seq, db, bytes });
        e.wake_writer_for_record(seq);
        seq
    }

    /// Under `everysec` and `no`: copy what is queued into the file on the calling thread, if the
    /// writer is not busy (a `try_lock`), so that a following [`Aof::wait_durable`] usually finds its
    /// records written without a round trip through the writer thread. Call it before waiting, never
    /// while holding a key's lock. Never blocks (beyond the copy). No-op under `always` (the writer
    /// thread's msync is what the wait is for) and when disabled.
    pub fn help_write(&self) {
        let Some(e) = &self.inner else { return };
        if e.shared.fsync.get() == FsyncPolicy::Always {
            return;
        }
        let left = match e.cell.try_lock() {
            Ok(mut guard) => guard.as_mut().is_some_and(|w| w.help()),
            // The writer (or another helper) is at it, and may have drained the queue before our
            // records arrived. Look a few times (a helper's copy is short): once the queue is
            // empty, whoever popped our records (pushed before this call) writes them in its pass
            // or wakes the writer thread for what it cannot; once the lock is free, help. Else
            // make sure the writer thread looks again (it is not woken per record under
            // everysec/no, see `wake_writer_for_record`). Waking it when there is no need cost a
            // futex wake and two context switches per collision of two helping connections.
            Err(_) => {
                let mut left = true;
                for _ in 0..HELP_LOOKS {
                    if e.shared.queue.is_empty() {
                        left = false;
                        break;
                    }
                    if let Ok(mut guard) = e.cell.try_lock() {
                        left = guard.as_mut().is_some_and(|w| w.help());
                        break;
                    }
                    std::hint::spin_loop();
                }
                left
            }
        };
        if left {
            e.writer.unpark();
        }
    }

    /// Resolves once the record `seq` and every lower one are acknowledgeable (see the module doc:
    /// durable under `always`, in the file under `everysec` and `no`), or fails if a write/msync
    /// failure is latched (or the writer stopped) before that. Immediately `Ok` when disabled or for
    /// seq 0. Never blocks the calling thread.
    pub fn wait_durable(&self, seq: u64) -> impl Future<Output = Result<(), AofError>> + '_ {
        match &self.inner {
            Some(e) if seq > 0 => DurableWait::new(&e.shared.durability, seq),
            _ => DurableWait::ready(),
        }
    }

    /// CONFIG SET appendfsync on the running file (see [`FsyncSetting`]).
    pub fn set_fsync(&self, policy: FsyncPolicy) {
        if let Some(e) = &self.inner {
            e.shared.fsync.set(policy);
            // A writer parked for a lazy interval picks the new policy's schedule up at once.
            e.writer.unpark();
        }
    }

    /// `Some(text)` while a write/extend/msync failure is latched (the server answers writes with
    /// `-MISCONF`); `None` again once a retry succeeded.
    pub fn write_error(&self) -> Option<String> {
        self.inner.as_ref().and_then(|e| e.shared.durability.error())
    }

    /// Drains the queue, writes and msyncs everything, trims the file to its valid length, fsyncs it and
    /// stops the writer thread. Idempotent (later calls return `Ok`).
    pub fn shutdown(&self) -> Result<(), AofError> {
        let Some(e) = &self.inner else { return Ok(()) };
        let Some(join) = lock(&e.join).take() else { return Ok(()) };
        // Release: pairs with the writer's Acquire; every record pushed before is seen by its final drain.
        e.shared.shutdown.store(true, Ordering::Release);
        e.writer.unpark();
        join.join().unwrap_or_else(|_| Err(AofError::Poisoned("the AOF writer thread panicked".into())))
    }

    /// Starts a rewrite. Call it while no write is in progress (every key stripe held exclusively): it
    /// marks the snapshot point in the queue, after which the writer also keeps every record for the
    /// new file. Then snapshot the keyspace, release the locks, and feed the snapshot to
    /// [`RewriteHandle::write_base`] and [`RewriteHandle::commit`] (from any thread).
    pub fn start_rewrite(&self) -> Result<RewriteHandle, AofError> {
        let Some(e) = &self.inner else { return Err(AofError::Disabled) };
        rewrite::start(&e.shared, &e.cfg, e.writer.clone())
    }

    /// The `INFO persistence` fields.
    pub fn info(&self) -> AofInfo {
        let Some(e) = &self.inner else {
            return AofInfo {
                aof_enabled: false,
                aof_rewrite_in_progress: false,
                aof_last_bgrewrite_status: "ok",
                aof_current_size: 0,
                aof_base_size: 0,
                aof_last_write_status: "ok",
                aof_rewrites: 0,
            };
        };
        let s = &e.shared;
        // Relaxed: statistics, no data is read through them.
        AofInfo {
            aof_enabled: true,
            aof_rewrite_in_progress: s.rewrite_in_progress.load(Ordering::Relaxed),
            aof_last_bgrewrite_status: if s.last_rewrite_ok.load(Ordering::Relaxed) { "ok" } else { "err" },
            aof_current_size: s.current_size.load(Ordering::Relaxed),
            aof_base_size: s.base_size.load(Ordering::Relaxed),
            aof_last_write_status: if s.durability.error().is_some() { "err" } else { "ok" },
            aof_rewrites: s.rewrites.load(Ordering::Relaxed),
        }
    }

    #[cfg(all(test, not(feature = "loom")))]
    fn shared(&self) -> &Shared {
        &self.inner.as_ref().expect("enabled").shared
    }

    /// Test hook (for this crate's and the server's tests): make the next file extensions and/or
    /// msyncs fail as if the disk were full or failing, until switched off.
    #[doc(hidden)]
    pub fn inject_faults(&self, fail_extend: bool, fail_sync: bool) {
        if let Some(e) = &self.inner {
            // Relaxed: a test knob; the writer is unparked to retry at once.
            e.shared.faults.fail_extend.store(fail_extend, Ordering::Relaxed);
            e.shared.faults.fail_sync.store(fail_sync, Ordering::Relaxed);
            e.writer.unpark();
        }
    }

    /// Test hook: make file extensions see at most `bytes` of free space (`None`: the disk's own).
    #[doc(hidden)]
    #[cfg(not(feature = "loom"))]
    pub fn limit_free_space(&self, bytes: Option<u64>) {
        if let Some(e) = &self.inner {
            // Relaxed: a test knob, read by the writer at its next extension.
            e.shared.faults.free_limit_bytes.store(bytes.unwrap_or(0), Ordering::Relaxed);
            e.shared.faults.limit_free.store(bytes.is_some(), Ordering::Relaxed);
        }
    }

    /// Test hook: stop the writer as if the process had been killed (no flush, no trim).
    #[doc(hidden)]
    pub fn simulate_crash(&self) {
        let Some(e) = &self.inner else { return };
        let Some(join) = lock(&e.join).take() else { return };
        // Relaxed: the join below synchronizes.
        e.shared.crash.store(true, Ordering::Relaxed);
        e.writer.unpark();
        let _ = join.join();
    }
}

impl Drop for Aof {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            crate::warning!("Error flushing the AOF when it was dropped: {e}");
        }
    }
}
