//! Configuration of the AOF (`appendonly`, `appendfsync`, `dir`, `appendfilename`, `aof-load-truncated`)
//! and the `INFO persistence` fields it reports.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::AofError;

/// Default `prealloc_bytes`: the file is extended in 64 MiB chunks.
pub const AOF_PREALLOC_BYTES: u64 = 64 << 20;

/// `appendfsync`: when the writer makes records durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Every write waits for its record to be msync'd (group commit: one msync per batch).
    Always,
    /// msync about once a second in the background; writes do not wait.
    #[default]
    EverySec,
    /// Never msync explicitly (the kernel writes back); only at shutdown and rewrite.
    No,
}

/// The `appendfsync` of a running AOF, changed by CONFIG SET. A setting, not part of the write
/// protocol: a std atomic (invisible to loom), read Relaxed wherever the policy decides something.
/// A record queued after CONFIG SET answered is handled under the new policy; records in flight at
/// the switch are acknowledged under either (waiting for an msync is never weaker).
#[derive(Debug)]
pub struct FsyncSetting(std::sync::atomic::AtomicU8);

impl FsyncSetting {
    pub fn new(p: FsyncPolicy) -> FsyncSetting {
        FsyncSetting(std::sync::atomic::AtomicU8::new(p as u8))
    }

    pub fn get(&self) -> FsyncPolicy {
        match self.0.load(std::sync::atomic::Ordering::Relaxed) {
            x if x == FsyncPolicy::Always as u8 => FsyncPolicy::Always,
            x if x == FsyncPolicy::No as u8 => FsyncPolicy::No,
            _ => FsyncPolicy::EverySec,
        }
    }

    pub fn set(&self, p: FsyncPolicy) {
        self.0.store(p as u8, std::sync::atomic::Ordering::Relaxed);
    }
}

impl FromStr for FsyncPolicy {
    type Err = AofError;

    fn from_str(s: &str) -> Result<Self, AofError> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Ok(FsyncPolicy::Always),
            "everysec" => Ok(FsyncPolicy::EverySec),
            "no" => Ok(FsyncPolicy::No),
            _ => Err(AofError::Config(format!("invalid appendfsync value '{s}' (always|everysec|no)"))),
        }
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::EverySec => "everysec",
            FsyncPolicy::No => "no",
        })
    }
}

/// Where the AOF lives and how it behaves.
#[derive(Debug, Clone)]
pub struct AofConfig {
    pub dir: PathBuf,
    /// Default `appendonly.aof`.
    pub filename: String,
    pub fsync: FsyncPolicy,
    /// The file is extended ahead of the writer in chunks of this size (default [`AOF_PREALLOC_BYTES`]);
    /// in smaller steps when the disk has less room than that (see `file.rs`).
    pub prealloc_bytes: u64,
    /// `aof-load-truncated`: drop a torn last record with a warning instead of failing (default true).
    pub load_truncated: bool,
    /// Load the records before a corruption in the middle instead of failing (default false).
    pub load_corrupt_prefix: bool,
}

impl Default for AofConfig {
    fn default() -> Self {
        AofConfig {
            dir: PathBuf::from("."),
            filename: "appendonly.aof".into(),
            fsync: FsyncPolicy::EverySec,
            prealloc_bytes: AOF_PREALLOC_BYTES,
            load_truncated: true,
            load_corrupt_prefix: false,
        }
    }
}

impl AofConfig {
    /// The AOF's path: `dir/filename`.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.filename)
    }
}

/// The `INFO persistence` fields this module knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AofInfo {
    pub aof_enabled: bool,
    pub aof_rewrite_in_progress: bool,
    /// "ok" or "err".
    pub aof_last_bgrewrite_status: &'static str,
    /// Bytes of valid log in the current file.
    pub aof_current_size: u64,
    /// Size of the file when it was opened or last rewritten (Redis's `aof_base_size`).
    pub aof_base_size: u64,
    /// "ok" or "err" (a write/extend/msync failure is latched).
    pub aof_last_write_status: &'static str,
    /// Completed rewrites since open.
    pub aof_rewrites: u64,
}
