//! The one error type of the AOF.

use std::fmt;
use std::io;

/// Everything that can go wrong with the AOF.
#[non_exhaustive]
#[derive(Debug)]
pub enum AofError {
    /// An I/O operation on the AOF, its directory or a rewrite file failed.
    Io(io::Error),
    /// The file is malformed at `offset` (the start of the first bad record) and non-zero data follows.
    Corrupt { offset: u64, detail: String },
    /// The last record is torn at `offset` and `load_truncated` is off.
    Truncated { offset: u64 },
    /// A write, extension or msync failure is latched: the record is not known to be durable.
    Poisoned(String),
    /// The writer has stopped (shutdown) before the record became durable.
    Closed,
    /// The operation needs the AOF, which is disabled (`appendonly no`).
    Disabled,
    /// A rewrite is already in progress.
    RewriteInProgress,
    /// The rewrite was abandoned or failed before its file replaced the AOF.
    RewriteAborted(String),
    /// A configuration value is invalid.
    Config(String),
    /// redis-server's multi-part AOF (appendonlydir) could not be imported.
    Import(String),
}

impl fmt::Display for AofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AofError::Io(e) => write!(f, "AOF I/O error: {e}"),
            AofError::Corrupt { offset, detail } => {
                write!(f, "Bad file format reading the append only file at offset {offset}: {detail}")
            }
            AofError::Truncated { offset } => write!(
                f,
                "Unexpected end of file reading the append only file at offset {offset} (set aof-load-truncated yes to load it)"
            ),
            AofError::Poisoned(e) => write!(f, "the AOF cannot be written: {e}"),
            AofError::Closed => f.write_str("the AOF writer has stopped"),
            AofError::Disabled => f.write_str("the AOF is disabled"),
            AofError::RewriteInProgress => f.write_str("Background append only file rewriting already in progress"),
            AofError::RewriteAborted(e) => write!(f, "AOF rewrite aborted: {e}"),
            AofError::Config(e) => f.write_str(e),
            AofError::Import(e) => write!(f, "Can't import redis-server's multi-part AOF: {e}"),
        }
    }
}

impl std::error::Error for AofError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AofError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for AofError {
    fn from(e: io::Error) -> Self {
        AofError::Io(e)
    }
}
