//! Append-only file: the write side (crossbeam queue -> writer thread -> preallocated mmap region),
//! durability (fsync policies, group commit), loading (replay) and rewrite. Mirrors Redis's `aof.c`.
//!
//! INTERFACE CONTRACT (used by the keyspace and connections; keep these signatures):
//!
//! ```ignore
//! pub enum FsyncPolicy { Always, EverySec, No }
//! pub struct AofConfig { dir, filename, fsync: FsyncPolicy, prealloc_bytes: u64, load_truncated: bool, ... }
//! impl Aof {
//!     pub fn disabled() -> Arc<Aof>;                        // appendonly no: append() is a no-op returning 0
//!     pub fn open(cfg: AofConfig) -> Result<Arc<Aof>, AofError>; // create/open, find valid end, start writer thread
//!     pub fn load(cfg: &AofConfig, apply: impl FnMut(usize, Vec<Bytes>) -> Result<(), String>) -> Result<LoadReport, AofError>;
//!     pub fn enabled(&self) -> bool;
//!     pub fn append(&self, db: usize, argv: &[&[u8]]) -> u64;   // encode as RESP, stamp seq, push; returns seq
//!     pub fn wait_durable(&self, seq: u64) -> impl Future<Output = Result<(), AofError>> + '_;
//!     pub fn write_error(&self) -> Option<String>;            // latched failure => -MISCONF for writes
//!     pub fn shutdown(&self) -> Result<(), AofError>;          // drain, make durable, trim to valid length
//!     pub fn start_rewrite(&self) -> Result<RewriteHandle, AofError>; // called with every key stripe held exclusive
//!     pub fn info(&self) -> AofInfo;                           // fields for INFO persistence
//! }
//! ```

// ---- temporary stand-in until the writer lands (replaced by the aof branch) ----

use std::future::Future;

use crate::sync::Arc;

/// When the AOF is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    Always,
    EverySec,
    No,
}

impl std::str::FromStr for FsyncPolicy {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Ok(FsyncPolicy::Always),
            "everysec" => Ok(FsyncPolicy::EverySec),
            "no" => Ok(FsyncPolicy::No),
            _ => Err(()),
        }
    }
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::EverySec => "everysec",
            FsyncPolicy::No => "no",
        })
    }
}

#[derive(Debug)]
pub enum AofError {
    Io(std::io::Error),
}

pub struct Aof {}

impl Aof {
    pub fn disabled() -> Arc<Aof> {
        Arc::new(Aof {})
    }
    pub fn enabled(&self) -> bool {
        false
    }
    pub fn append(&self, _db: usize, _argv: &[&[u8]]) -> u64 {
        0
    }
    pub fn wait_durable(&self, _seq: u64) -> impl Future<Output = Result<(), AofError>> + '_ {
        std::future::ready(Ok(()))
    }
    pub fn write_error(&self) -> Option<String> {
        None
    }
    pub fn shutdown(&self) -> Result<(), AofError> {
        Ok(())
    }
}

pub struct AofConfig {
    pub dir: std::path::PathBuf,
    pub filename: String,
    pub fsync: FsyncPolicy,
    pub prealloc_bytes: u64,
    pub load_truncated: bool,
    pub load_corrupt_prefix: bool,
}

pub struct LoadReport {
    pub commands: u64,
    pub bytes: u64,
    pub truncated_tail: bool,
    pub errors: u64,
}

impl Aof {
    pub fn open(_cfg: AofConfig) -> Result<Arc<Aof>, AofError> {
        Ok(Aof::disabled())
    }
    pub fn load(
        _cfg: &AofConfig,
        _apply: impl FnMut(usize, Vec<bytes::Bytes>) -> Result<(), String>,
    ) -> Result<LoadReport, AofError> {
        Ok(LoadReport { commands: 0, bytes: 0, truncated_tail: false, errors: 0 })
    }
}

impl std::fmt::Display for AofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
