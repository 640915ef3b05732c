//! Specification tests for the AOF: one scenario each (open, write, stop or crash, reload, assert).

mod durability;
mod loading;
mod rewriting;
mod writing;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{AofConfig, AofError, FsyncPolicy, LoadReport};

/// A unique directory under the system temp dir, removed on drop.
pub(super) struct TestDir(PathBuf);

impl TestDir {
    pub(super) fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("flurrydb-aof-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }

    pub(super) fn cfg(&self, fsync: FsyncPolicy) -> AofConfig {
        AofConfig { dir: self.0.clone(), fsync, prealloc_bytes: 64 << 10, ..AofConfig::default() }
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A replayed command: (db, argv as text).
pub(super) type Replayed = (usize, Vec<String>);

pub(super) fn replay(cfg: &AofConfig) -> Result<(Vec<Replayed>, LoadReport), AofError> {
    let mut out = Vec::new();
    let report = super::Aof::load(cfg, |db, argv: &[Bytes]| {
        out.push((db, argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect()));
        Ok(())
    })?;
    Ok((out, report))
}

pub(super) fn cmd(db: usize, argv: &[&str]) -> Replayed {
    (db, argv.iter().map(|s| s.to_string()).collect())
}

pub(super) fn args<'a>(argv: &'a [&'a str]) -> Vec<&'a [u8]> {
    argv.iter().map(|s| s.as_bytes()).collect()
}

/// Encodes commands the way the writer does (RESP arrays).
pub(super) fn resp(argv: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    super::format::encode_command(&mut out, &args(argv));
    out
}

pub(super) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
}

/// Waits for a durable wait to resolve, failing the test if it takes longer than `limit`.
pub(super) fn resolve_within<F: std::future::Future>(limit: Duration, f: F) -> Option<F::Output> {
    block_on(async { tokio::time::timeout(limit, f).await.ok() })
}

/// Polls `cond` until true or the deadline passes.
pub(super) fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}
