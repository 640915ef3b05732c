//! Rewrite (Redis's `BGREWRITEAOF`): the snapshot is written as commands, or as an RDB preamble
//! (`aof-use-rdb-preamble`, see `load.rs` for how it is read back), to a temp file (the base) by
//! whoever holds the [`RewriteHandle`]; the writer thread keeps every record queued after the marker and,
//! at commit, appends them to the base and renames the result over the AOF.

#[cfg(not(feature = "loom"))]
use std::fs::{File, OpenOptions};
#[cfg(not(feature = "loom"))]
use std::io::BufWriter;
use std::io::Write;
use std::path::PathBuf;

use super::format::{encode_command, encode_select};
use super::park::Unparker;
use super::writer::{Commit, Item, wait_rewrite};
use super::{AofConfig, AofError, Shared};
use crate::sync::{Arc, Ordering};

/// An AOF rewrite in progress. Feed it the snapshot with [`RewriteHandle::write_base`], then
/// [`RewriteHandle::commit`]. Dropping it without commit aborts: the temp file is removed and the
/// writer stops keeping records for it.
pub struct RewriteHandle {
    shared: Arc<Shared>,
    writer: Unparker,
    id: u64,
    temp_path: PathBuf,
    out: Option<BaseOut>,
    base_len: u64,
    last_db: Option<usize>,
    encoded: Vec<u8>,
}

/// Where the base goes: the temp file (an in-memory buffer under loom, handed to the writer at commit).
#[cfg(not(feature = "loom"))]
type BaseOut = BufWriter<File>;
#[cfg(feature = "loom")]
type BaseOut = Vec<u8>;

pub(super) fn start(shared: &Arc<Shared>, cfg: &AofConfig, writer: Unparker) -> Result<RewriteHandle, AofError> {
    if shared.durability.is_stopped() {
        return Err(AofError::Closed);
    }
    // AcqRel: only one rewrite at a time; the flag is cleared by the handle when it finishes.
    if shared.rewrite_in_progress.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Err(AofError::RewriteInProgress);
    }
    // Relaxed: a unique id is all that is needed.
    let id = shared.next_rewrite_id.fetch_add(1, Ordering::Relaxed);
    let temp_path = cfg.dir.join(format!("temp-rewriteaof-{}-{id}.aof", std::process::id()));
    #[cfg(not(feature = "loom"))]
    let out = match OpenOptions::new().write(true).create(true).truncate(true).open(&temp_path) {
        Ok(f) => BufWriter::with_capacity(1 << 20, f),
        Err(e) => {
            shared.rewrite_in_progress.store(false, Ordering::Release);
            return Err(e.into());
        }
    };
    #[cfg(feature = "loom")]
    let out = BaseOut::new();
    // The marker: every record pushed after this (by writers that could not run while the caller held
    // every key lock) belongs to the tail of the new file.
    shared.queue.push(Item::RewriteStart { id });
    writer.unpark();
    Ok(RewriteHandle {
        shared: Arc::clone(shared),
        writer,
        id,
        temp_path,
        out: Some(out),
        base_len: 0,
        last_db: None,
        encoded: Vec::new(),
    })
}

impl RewriteHandle {
    /// Appends one command of the snapshot (for `db`) to the new base.
    pub fn write_base(&mut self, db: usize, argv: &[&[u8]]) -> Result<(), AofError> {
        self.encoded.clear();
        if self.last_db != Some(db) {
            encode_select(&mut self.encoded, db);
            self.last_db = Some(db);
        }
        encode_command(&mut self.encoded, argv);
        let out = self.out.as_mut().ok_or(AofError::RewriteAborted("the base is already finished".into()))?;
        out.write_all(&self.encoded)?;
        self.base_len += self.encoded.len() as u64;
        Ok(())
    }

    /// Appends bytes that are not commands to the new base: an RDB preamble (`aof-use-rdb-preamble`),
    /// written before any command. The db the base leaves the stream in is then unknown, so the first
    /// record of the tail gets its `SELECT`.
    pub fn write_base_bytes(&mut self, bytes: &[u8]) -> Result<(), AofError> {
        let out = self.out.as_mut().ok_or(AofError::RewriteAborted("the base is already finished".into()))?;
        out.write_all(bytes)?;
        self.base_len += bytes.len() as u64;
        self.last_db = None;
        Ok(())
    }

    /// Finishes the base and hands it to the writer thread, which appends every record queued since
    /// the marker, fsyncs, renames the file over the AOF, fsyncs the directory and continues in the
    /// new file. Blocks until that is done (call it from a background thread, not a tokio worker).
    pub fn commit(mut self) -> Result<(), AofError> {
        let result = self.finish_and_commit();
        #[cfg(not(feature = "loom"))]
        if result.is_err() {
            let _ = std::fs::remove_file(&self.temp_path);
        }
        result
    }

    fn finish_and_commit(&mut self) -> Result<(), AofError> {
        let out = self.out.take().ok_or(AofError::RewriteAborted("the base is already finished".into()))?;
        #[cfg(not(feature = "loom"))]
        {
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
        }
        if self.shared.durability.is_stopped() {
            return Err(AofError::RewriteAborted("the AOF writer stopped".into()));
        }
        self.shared.queue.push(Item::RewriteCommit(Box::new(Commit {
            id: self.id,
            temp_path: self.temp_path.clone(),
            base_len: self.base_len,
            base_last_db: self.last_db,
            #[cfg(feature = "loom")]
            base: out,
        })));
        self.writer.unpark();
        let result = wait_rewrite(&self.shared, self.id);
        self.id = 0; // committed or failed in the writer: nothing left to abort
        result
    }
}

impl Drop for RewriteHandle {
    fn drop(&mut self) {
        if self.id != 0 {
            self.out = None;
            #[cfg(not(feature = "loom"))]
            let _ = std::fs::remove_file(&self.temp_path);
            self.shared.queue.push(Item::RewriteAbort { id: self.id });
            self.writer.unpark();
        }
        // Release: a later start_rewrite may begin (its CAS acquires).
        self.shared.rewrite_in_progress.store(false, Ordering::Release);
    }
}
