//! Loading: replay of the file at startup (Redis's `loadSingleAppendOnlyFile`), and the preparation of
//! an existing file for appending (cutting a torn tail or, when allowed, a corrupt suffix).

use std::fs::{File, OpenOptions};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::format::{Scan, ScanEnd, scan};
use super::{AofConfig, AofError};

/// Files at least this large get progress lines on stderr.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

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
}

pub(super) fn load(
    cfg: &AofConfig,
    apply: impl FnMut(usize, Vec<Bytes>) -> Result<(), String>,
) -> Result<LoadReport, AofError> {
    let path = cfg.path();
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LoadReport::default()),
        Err(e) => return Err(e.into()),
    };
    let size = file.metadata()?.len();
    replay(file, size, cfg, apply)
}

/// Replays the log read from `reader` (`size` bytes long), as [`load`] does for the file.
pub(super) fn replay(
    reader: impl std::io::Read,
    size: u64,
    cfg: &AofConfig,
    mut apply: impl FnMut(usize, Vec<Bytes>) -> Result<(), String>,
) -> Result<LoadReport, AofError> {
    let started = Instant::now();
    let mut last_progress = started;
    let mut report = LoadReport::default();
    let mut db = 0usize;
    // Commands of an open MULTI block, with their db; applied at EXEC.
    let mut multi: Option<Vec<(usize, Vec<Bytes>)>> = None;
    let mut apply_one = |report: &mut LoadReport, db: usize, argv: Vec<Bytes>, offset: u64| {
        report.commands += 1;
        if let Err(e) = apply(db, argv) {
            report.errors += 1;
            eprintln!("flurrydb aof: error replaying the command at offset {offset}: {e}");
        }
    };
    let result = scan(reader, |offset, argv| {
        let name = argv[0].to_ascii_lowercase();
        if name == b"select" {
            match argv.get(1).and_then(|a| std::str::from_utf8(a).ok()).and_then(|s| s.parse().ok()) {
                Some(n) => db = n,
                None => {
                    report.errors += 1;
                    eprintln!("flurrydb aof: invalid SELECT at offset {offset} ignored");
                }
            }
            return;
        }
        match (name.as_slice(), &mut multi) {
            (b"multi", None) => multi = Some(vec![(db, argv)]),
            (b"exec", Some(_)) => {
                let mut block = multi.take().unwrap_or_default();
                block.push((db, argv));
                for (db, argv) in block {
                    apply_one(&mut report, db, argv, offset);
                }
            }
            (_, Some(block)) => block.push((db, argv)),
            (_, None) => apply_one(&mut report, db, argv, offset),
        }
        if size >= PROGRESS_MIN_BYTES && last_progress.elapsed() >= PROGRESS_INTERVAL {
            last_progress = Instant::now();
            log_progress(offset, size, report.commands, started);
        }
    })?;
    report.bytes = result.valid_end;
    match classify(cfg, &result, true)? {
        Tail::Clean => {}
        Tail::Cut => report.truncated_tail = true,
    }
    if multi.is_some() {
        eprintln!("flurrydb aof: !!! Warning: the AOF ends inside a MULTI block; reverting the incomplete transaction");
        report.truncated_tail = true;
    }
    if size >= PROGRESS_MIN_BYTES {
        log_progress(report.bytes, size, report.commands, started);
    }
    Ok(report)
}

fn log_progress(offset: u64, size: u64, commands: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    eprintln!(
        "flurrydb aof: loading {:.1}/{:.1} MiB, {commands} commands, {:.1} MiB/s",
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
                eprintln!(
                    "flurrydb aof: !!! Warning: short read while loading the AOF {}: the last record (at offset {}) is incomplete and is dropped",
                    cfg.path().display(),
                    s.valid_end
                );
            }
            Ok(Tail::Cut)
        }
        ScanEnd::TornTail => Err(AofError::Truncated { offset: s.valid_end }),
        ScanEnd::Corrupt { detail } if cfg.load_corrupt_prefix => {
            if warn {
                eprintln!(
                    "flurrydb aof: !!! Warning: the AOF {} is corrupt at offset {} ({detail}); loading the {} bytes before it",
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
pub(super) fn prepare_for_append(cfg: &AofConfig) -> Result<u64, AofError> {
    let path = cfg.path();
    // Offset of a MULTI not closed by EXEC: load dropped that block, so it is cut too (as Redis
    // does), or records appended later would be read as part of it.
    let mut open_multi = None;
    let s = scan(File::open(&path)?, |offset, argv| {
        if argv[0].eq_ignore_ascii_case(b"multi") {
            open_multi = Some(offset);
        } else if argv[0].eq_ignore_ascii_case(b"exec") {
            open_multi = None;
        }
    })?;
    let cut = match (classify(cfg, &s, false)?, open_multi) {
        (_, Some(at)) => at,
        (Tail::Clean, None) => return Ok(s.valid_end),
        (Tail::Cut, None) => s.valid_end,
    };
    if matches!(s.end, ScanEnd::Corrupt { .. }) {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let backup = path.with_file_name(format!("{}.corrupt-{secs}", cfg.filename));
        std::fs::copy(&path, &backup)?;
        eprintln!("flurrydb aof: saved a copy of the corrupt AOF as {}", backup.display());
    }
    eprintln!("flurrydb aof: cutting {} at offset {cut} before appending", path.display());
    // Not mapped yet, so shrinking is safe; the writer re-extends with reserved zeros.
    let file = OpenOptions::new().write(true).open(&path)?;
    file.set_len(cut)?;
    file.sync_all()?;
    Ok(cut)
}
