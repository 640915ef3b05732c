//! Loading: replay of the file at startup (Redis's `loadSingleAppendOnlyFile`), and the preparation of
//! an existing file for appending (cutting a torn tail or, when allowed, a corrupt suffix).
//!
//! # Runs of plain SETs ([`PlainSets`])
//!
//! Replay applies the records in file order. One kind is applied in bulk: a plain `SET key value`
//! (exactly three arguments) outside a `MULTI` block. Its effect depends on nothing but the record
//! (the key becomes that string, no expiry, whatever it held: type, TTL, value), and it cannot
//! fail. So a run of consecutive plain SETs in one database is gathered into a
//! [`crate::db::Batch`] and put at once (each bucket's block built once, not copied per key; a
//! later SET of a key wins, as in order), and the run is put BEFORE the next record of any other
//! kind, another database's SET, or the end of the file is applied: every other record (which may
//! read those keys: INCR, APPEND, SET .. NX/GET/KEEPTTL, EXPIRE, MULTI, ...) sees exactly the
//! keyspace that one-by-one replay would have made. What one-by-one SETs did besides the map is
//! kept: each counts one change (`dirty`); nothing else applies while loading (no client watches,
//! tracks, subscribes or blocks yet; nothing is logged).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::format::{Scan, ScanEnd, scan};
use super::{AofConfig, AofError};
use crate::rdb::{RdbError, RdbInfo};

/// Files at least this large get progress lines in the server log.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// The clock is read for progress once every this many commands.
const PROGRESS_CHECK_COMMANDS: u64 = 4096;
/// INFO's loading progress is updated once every this many commands.
const PROGRESS_REPORT_COMMANDS: u64 = 1024;

/// What [`super::Aof::load`] replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Commands passed to `apply` (`SELECT` excluded; `MULTI`/`EXEC` included).
    pub commands: u64,
    /// Bytes of valid log read.
    pub bytes: u64,
    /// A torn last record (or an unterminated `MULTI` block) was dropped.
    pub truncated_tail: bool,
    /// Commands that `apply` rejected.
    pub errors: u64,
    /// What the scan found, for [`super::Aof::open_loaded`] (`None` for a missing file).
    pub(super) scanned: Option<Scanned>,
}

/// How a loaded file ends, and which file it was: enough to prepare it for appending without
/// scanning it again, as long as it has not changed since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Scanned {
    identity: FileIdentity,
    valid_end: u64,
    end: ScanEnd,
    /// Offset of a `MULTI` not closed by `EXEC` before the valid end (the loader dropped its block).
    open_multi: Option<u64>,
}

/// Device, inode, size and modification time of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: Option<SystemTime>,
}

impl FileIdentity {
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileIdentity { dev: meta.dev(), ino: meta.ino(), len: meta.len(), mtime: meta.modified().ok() }
    }
}

/// A run of plain `SET key value` records gathered while replaying (see the module doc): the
/// caller offers each record that is not inside a `MULTI` block, and puts the run before applying
/// anything else, and at the end.
pub struct PlainSets {
    batch: crate::db::Batch,
    db: usize,
}

impl Default for PlainSets {
    fn default() -> Self {
        PlainSets::new()
    }
}

impl PlainSets {
    pub fn new() -> PlainSets {
        PlainSets { batch: crate::db::Batch::new(), db: 0 }
    }

    /// Take `argv` (for database `db`) into the run when it is a plain SET; false: the caller
    /// must [`put`](Self::put) the run, then apply the record itself.
    pub fn offer(&mut self, ks: &crate::db::Keyspace, db: usize, argv: &[Bytes]) -> bool {
        if argv.len() != 3 || !argv[0].eq_ignore_ascii_case(b"set") || db >= ks.databases() {
            return false;
        }
        if db != self.db {
            self.put(ks);
            self.db = db;
        }
        self.batch.push(&argv[1], crate::db::Entry::string_copied(&argv[2], 0), None);
        // What the SET's record counted (`touch_record`).
        crate::rdb::dirty::incr();
        if self.batch.is_full() {
            self.put(ks);
        }
        true
    }

    /// Put the run into the keyspace (under every stripe; nothing else writes while it loads).
    pub fn put(&mut self, ks: &crate::db::Keyspace) {
        if !self.batch.is_empty() {
            let seq = std::cell::Cell::new(0);
            ks.write_all(self.db, &seq).map().put_batch(&mut self.batch);
        }
    }
}

/// The commands of a `MULTI` block read so far, with their db.
type Block = Vec<(usize, Vec<Bytes>)>;

/// How a caller loads an RDB preamble itself (see [`super::Aof::load_with_preamble`]): it reads the
/// RDB from the reader it is given, from the `REDIS` magic through the checksum and no further, and
/// returns what the file said besides its keys.
pub type PreambleLoader<'a> = &'a mut dyn FnMut(&mut dyn Read) -> Result<RdbInfo, RdbError>;

pub(super) fn load(
    cfg: &AofConfig,
    preamble: Option<PreambleLoader<'_>>,
    apply: impl FnMut(usize, &[Bytes]) -> Result<(), String>,
) -> Result<LoadReport, AofError> {
    let path = cfg.path();
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LoadReport::default()),
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    let mut report = replay(file, meta.len(), cfg, preamble, apply)?;
    if let Some(s) = &mut report.scanned {
        s.identity = FileIdentity::of(&meta);
    }
    Ok(report)
}

/// Replays the log read from `reader` (`size` bytes long), as [`load`] does for the file.
pub(super) fn replay(
    reader: impl std::io::Read,
    size: u64,
    cfg: &AofConfig,
    preamble: Option<PreambleLoader<'_>>,
    mut apply: impl FnMut(usize, &[Bytes]) -> Result<(), String>,
) -> Result<LoadReport, AofError> {
    let started = Instant::now();
    let mut last_progress = started;
    let mut report = LoadReport::default();
    let mut db = 0usize;
    // The offset of an open MULTI block, and its commands with their db; applied at EXEC.
    let mut multi: Option<(u64, Block)> = None;
    let mut apply_one = |report: &mut LoadReport, db: usize, argv: &[Bytes], offset: u64| {
        report.commands += 1;
        if let Err(e) = apply(db, argv) {
            report.errors += 1;
            crate::warning!("Error replaying the AOF command at offset {offset}: {e}");
        }
    };
    // An RDB preamble first (`aof-use-rdb-preamble`): read by the caller's loader, or else its keys
    // are applied as the commands that rebuild them (`PEXPIREAT` of a time passed drops a key, as
    // replay of a command file would), then its function libraries.
    let (reader, pre) = match preamble {
        Some(load) => {
            let (reader, pre, _) = read_preamble(reader, load)?;
            (reader, pre)
        }
        None => {
            let mut as_commands = |r: &mut dyn Read| {
                crate::rdb::read_rdb(&mut &mut *r, |k| {
                    let e =
                        crate::db::SnapshotEntry { db: k.db, key: k.key, value: k.value, expire_at_ms: k.expire_at_ms };
                    e.commands(|argv| {
                        let argv: Vec<Bytes> = argv.iter().map(|a| Bytes::copy_from_slice(a)).collect();
                        apply_one(&mut report, e.db, &argv, 0);
                    });
                    Ok(())
                })
            };
            let (reader, pre, info) = read_preamble(reader, &mut as_commands)?;
            for code in info.map(|i| i.functions).unwrap_or_default() {
                let argv = [
                    Bytes::from_static(b"FUNCTION"),
                    Bytes::from_static(b"LOAD"),
                    Bytes::from_static(b"REPLACE"),
                    code,
                ];
                apply_one(&mut report, 0, &argv, 0);
            }
            (reader, pre)
        }
    };
    let result = scan(reader, |offset, argv| {
        let offset = offset + pre;
        let name = &argv[0];
        if name.eq_ignore_ascii_case(b"select") {
            match argv.get(1).and_then(|a| std::str::from_utf8(a).ok()).and_then(|s| s.parse().ok()) {
                Some(n) => db = n,
                None => {
                    report.errors += 1;
                    crate::warning!("Invalid SELECT in the AOF at offset {offset} ignored");
                }
            }
            return;
        }
        match &mut multi {
            None if name.eq_ignore_ascii_case(b"multi") => multi = Some((offset, vec![(db, argv.to_vec())])),
            Some(_) if name.eq_ignore_ascii_case(b"exec") => {
                let (_, mut block) = multi.take().unwrap_or_default();
                block.push((db, argv.to_vec()));
                for (db, argv) in block {
                    apply_one(&mut report, db, &argv, offset);
                }
            }
            Some((_, block)) => block.push((db, argv.to_vec())),
            None => apply_one(&mut report, db, argv, offset),
        }
        if report.commands % PROGRESS_REPORT_COMMANDS == 0 {
            // INFO's loading_loaded_bytes (Redis's `loadingAbsProgress`, every 1024 commands).
            crate::rdb::loading::at(offset);
        }
        if size >= PROGRESS_MIN_BYTES
            && report.commands % PROGRESS_CHECK_COMMANDS == 0
            && last_progress.elapsed() >= PROGRESS_INTERVAL
        {
            last_progress = Instant::now();
            log_progress(offset, size, report.commands, started);
        }
    })?;
    let result = Scan { valid_end: result.valid_end + pre, end: result.end };
    report.bytes = result.valid_end;
    crate::rdb::loading::at(report.bytes);
    match classify(cfg, &result, true)? {
        Tail::Clean => {}
        Tail::Cut => report.truncated_tail = true,
    }
    let open_multi = multi.map(|(offset, _)| offset);
    if open_multi.is_some() {
        crate::warning!("Revert incomplete MULTI/EXEC transaction in AOF file {}", cfg.path().display());
        report.truncated_tail = true;
    }
    if size >= PROGRESS_MIN_BYTES {
        log_progress(report.bytes, size, report.commands, started);
    }
    let identity = FileIdentity { dev: 0, ino: 0, len: size, mtime: None };
    report.scanned = Some(Scanned { identity, valid_end: result.valid_end, end: result.end, open_multi });
    Ok(report)
}

/// Reads the RDB preamble at the start of `reader`, if the file starts with one (the `REDIS`
/// magic: written by our rewrite under `aof-use-rdb-preamble`, or by Redis's), with `load`. Returns
/// the reader positioned just after the preamble (its RDB checksum), the preamble's length (0, and
/// no info, when there is none), and what the RDB said besides its keys. A preamble that does not
/// read to its end is corruption at offset 0: the commands after it cannot be found.
fn read_preamble<R: Read>(
    reader: R,
    load: PreambleLoader<'_>,
) -> Result<(BufReader<R>, u64, Option<RdbInfo>), AofError> {
    /// Counts what the RDB reader takes (it reads exactly, never ahead).
    struct Counted<'a, R> {
        inner: &'a mut R,
        n: u64,
    }
    impl<R: Read> Read for Counted<'_, R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let k = self.inner.read(buf)?;
            self.n += k as u64;
            Ok(k)
        }
    }
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    if !reader.fill_buf()?.starts_with(b"REDIS") {
        return Ok((reader, 0, None));
    }
    let mut counted = Counted { inner: &mut reader, n: 0 };
    let info =
        load(&mut counted).map_err(|e| AofError::Corrupt { offset: 0, detail: format!("in the RDB preamble: {e}") })?;
    let n = counted.n;
    Ok((reader, n, Some(info)))
}

fn log_progress(offset: u64, size: u64, commands: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    crate::notice!(
        "Loading the AOF: {:.1}/{:.1} MiB, {commands} commands, {:.1} MiB/s",
        offset as f64 / 1048576.0,
        size as f64 / 1048576.0,
        offset as f64 / 1048576.0 / secs
    );
}

enum Tail {
    /// The log ends cleanly; nothing after `valid_end` but zeros.
    Clean,
    /// Bytes after `valid_end` must be dropped (torn tail, or a corrupt suffix the config accepts).
    Cut,
}

/// Applies the config to how a scan ended: accept (with a warning when `warn`), or fail.
fn classify(cfg: &AofConfig, s: &Scan, warn: bool) -> Result<Tail, AofError> {
    match &s.end {
        ScanEnd::Clean => Ok(Tail::Clean),
        ScanEnd::TornTail if cfg.load_truncated => {
            if warn {
                crate::warning!(
                    "!!! Warning: short read while loading the AOF {}: the last record (at offset {}) is incomplete and is dropped",
                    cfg.path().display(),
                    s.valid_end
                );
            }
            Ok(Tail::Cut)
        }
        ScanEnd::TornTail => Err(AofError::Truncated { offset: s.valid_end }),
        ScanEnd::Corrupt { detail } if cfg.load_corrupt_prefix => {
            if warn {
                crate::warning!(
                    "!!! Warning: the AOF {} is corrupt at offset {} ({detail}); loading the {} bytes before it",
                    cfg.path().display(),
                    s.valid_end,
                    s.valid_end
                );
            }
            Ok(Tail::Cut)
        }
        ScanEnd::Corrupt { detail } => Err(AofError::Corrupt { offset: s.valid_end, detail: detail.clone() }),
    }
}

/// Finds the valid end of an existing file and cuts whatever lies after it that is not zeros, so the
/// writer can append there. A corrupt suffix (only with `load_corrupt_prefix`) is saved first.
/// `loaded` is what [`load`] found; when the file is still the one it scanned, it is not scanned again.
pub(super) fn prepare_for_append(cfg: &AofConfig, loaded: Option<&Scanned>) -> Result<u64, AofError> {
    let path = cfg.path();
    let file = File::open(&path)?;
    let identity = FileIdentity::of(&file.metadata()?);
    let s = match loaded {
        Some(s) if s.identity == identity => s.clone(),
        _ => {
            // Offset of a MULTI not closed by EXEC: load dropped that block, so it is cut too (as
            // Redis does), or records appended later would be read as part of it.
            let mut open_multi = None;
            let (file, pre, _) = read_preamble(file, &mut |r| crate::rdb::read_rdb(&mut &mut *r, |_| Ok(())))?;
            let s = scan(file, |offset, argv| {
                if argv[0].eq_ignore_ascii_case(b"multi") {
                    open_multi.get_or_insert(offset + pre);
                } else if argv[0].eq_ignore_ascii_case(b"exec") {
                    open_multi = None;
                }
            })?;
            Scanned { identity, valid_end: s.valid_end + pre, end: s.end, open_multi }
        }
    };
    let cut = match (classify(cfg, &Scan { valid_end: s.valid_end, end: s.end.clone() }, false)?, s.open_multi) {
        (_, Some(at)) => at,
        (Tail::Clean, None) => return Ok(s.valid_end),
        (Tail::Cut, None) => s.valid_end,
    };
    if matches!(s.end, ScanEnd::Corrupt { .. }) {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let backup = path.with_file_name(format!("{}.corrupt-{secs}", cfg.filename));
        std::fs::copy(&path, &backup)?;
        crate::warning!("Saved a copy of the corrupt AOF as {}", backup.display());
    }
    crate::warning!("Cutting the AOF {} at offset {cut} before appending", path.display());
    // Not mapped yet, so shrinking is safe; the writer re-extends with reserved zeros.
    let file = OpenOptions::new().write(true).open(&path)?;
    file.set_len(cut)?;
    file.sync_all()?;
    Ok(cut)
}
