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
