//! Starting on a directory that redis-server 7.0 persisted: its multi-part AOF (`appendonlydir/`,
//! a manifest naming a base file and incremental files, Redis's `aof.c` `aofLoadManifestFromFile`)
//! is converted into our single file before the normal load, so a user switching from Redis keeps
//! their data. Redis's files are only read, never changed.
//!
//! The conversion writes every file's valid records, in the manifest's order, each file preceded by
//! `SELECT 0` (Redis replays each file with a fresh client in db 0), into a temporary file that is
//! fsynced and renamed over our file's name: a crash before the rename leaves our file absent and the
//! import is redone; after it, our file is complete. Only the last file may end torn (as Redis:
//! `aof-load-truncated` applies to the last incremental file); a torn or corrupt file before it
//! stops startup. A base in RDB format (Redis's default `aof-use-rdb-preamble yes`) is read with the
//! RDB loader (`rdb::load`) and written as the commands that rebuild each key (those of our own AOF
//! rewrite, `SnapshotEntry::commands`), its function libraries as `FUNCTION LOAD REPLACE`; a
//! corrupt RDB base stops startup.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::AofError;
use super::format::{ScanEnd, encode_select, scan};

/// One file of a Redis 7 manifest, in load order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    pub name: String,
    pub seq: u64,
    /// `b` base, `i` incremental (`h` history files are not loaded, as in Redis).
    pub kind: char,
}

/// Parse a manifest: lines `file <name> seq <n> type <b|h|i>` (keys in any order, names possibly
/// quoted as `sdscatrepr` writes them). Returns the files to load: the base first, then the
/// incremental files by sequence number.
pub fn parse_manifest(text: &str) -> Result<Vec<ManifestFile>, String> {
    let mut base = None;
    let mut incr = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words = split_words(line).ok_or_else(|| format!("Invalid AOF manifest line {}: {line}", n + 1))?;
        let (mut name, mut seq, mut kind) = (None, None, None);
        for pair in words.chunks(2) {
            let [k, v] = pair else { return Err(format!("Invalid AOF manifest line {}: {line}", n + 1)) };
            match k.as_str() {
                "file" => name = Some(v.clone()),
                "seq" => seq = v.parse::<u64>().ok(),
                "type" => kind = v.chars().next().filter(|_| v.len() == 1),
                _ => {} // unknown keys are ignored, as Redis does
            }
        }
        let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
            return Err(format!("Invalid AOF manifest line {}: {line}", n + 1));
        };
        if name.contains('/') {
            return Err(format!("Invalid AOF file name in the manifest: {name}"));
        }
        let f = ManifestFile { name, seq, kind };
        match kind {
            'b' if base.is_some() => return Err("Found duplicate base file information in the AOF manifest".into()),
            'b' => base = Some(f),
            'i' => incr.push(f),
            'h' => {}
            _ => return Err(format!("Unknown AOF file type '{kind}' in the manifest")),
        }
    }
    incr.sort_by_key(|f| f.seq);
    Ok(base.into_iter().chain(incr).collect())
}

/// Split a manifest line into words; a word may be double-quoted with `\"`, `\\`, `\n`, `\r`, `\t`
/// and `\xHH` escapes. None for an unterminated quote.
fn split_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { return Some(words) };
        let mut w = String::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        'n' => w.push('\n'),
                        'r' => w.push('\r'),
                        't' => w.push('\t'),
                        'x' => {
                            let hex: String = [chars.next()?, chars.next()?].iter().collect();
                            w.push(u8::from_str_radix(&hex, 16).ok()? as char);
                        }
                        other => w.push(other),
                    },
                    other => w.push(other),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                chars.next();
            }
        }
        words.push(w);
    }
}

/// If `ours` does not exist and `redis_dir` holds a manifest for `filename`, convert Redis's files
/// into `ours`. Returns the number of files imported (0: nothing to do).
pub fn import_if_present(ours: &Path, redis_dir: &Path, filename: &str) -> Result<usize, AofError> {
    if ours.exists() {
        return Ok(0);
    }
    let manifest = redis_dir.join(format!("{filename}.manifest"));
    let text = match std::fs::read_to_string(&manifest) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let files = parse_manifest(&text).map_err(AofError::Import)?;
    let tmp = tmp_path(ours);
    let result = convert(&files, redis_dir, &tmp);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    std::fs::rename(&tmp, ours)?;
    if let Some(parent) = ours.parent() {
        File::open(parent)?.sync_all()?;
    }
    crate::notice!(
        "Imported redis-server's multi-part AOF ({} files listed in {}) into {}",
        files.len(),
        manifest.display(),
        ours.display()
    );
    Ok(files.len())
}

fn tmp_path(ours: &Path) -> PathBuf {
    let mut name = ours.file_name().unwrap_or_default().to_os_string();
    name.push(".import.tmp");
    ours.with_file_name(name)
}

fn convert(files: &[ManifestFile], dir: &Path, tmp: &Path) -> Result<(), AofError> {
    let mut out = BufWriter::new(File::create(tmp)?);
    for (i, f) in files.iter().enumerate() {
        let path = dir.join(&f.name);
        let mut file = File::open(&path).map_err(|e| AofError::Import(format!("{}: {e}", path.display())))?;
        let mut magic = [0u8; 5];
        let n = read_up_to(&mut file, &mut magic)?;
        if n == 5 && &magic == b"REDIS" {
            let mut r = std::io::BufReader::with_capacity(1 << 20, File::open(&path)?);
            rdb_as_commands(&mut r, &mut out).map_err(|e| AofError::Import(format!("{}: {e}", path.display())))?;
            continue;
        }
        let file = File::open(&path)?;
        let mut head = Vec::new();
        encode_select(&mut head, 0);
        out.write_all(&head)?;
        let mut failed = None;
        let result = scan(file, |_, argv| {
            if failed.is_some() {
                return;
            }
            let mut rec = Vec::new();
            let argv: Vec<&[u8]> = argv.iter().map(|a| &a[..]).collect();
            super::format::encode_command(&mut rec, &argv);
            if let Err(e) = out.write_all(&rec) {
                failed = Some(e);
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        let last = i + 1 == files.len();
        match result.end {
            ScanEnd::Clean => {}
            ScanEnd::TornTail if last => {
                crate::warning!("!!! Warning: short read while loading the AOF file {}!!!", path.display())
            }
            ScanEnd::TornTail => {
                return Err(AofError::Import(format!(
                    "{} ends with a torn record (not the last file)",
                    path.display()
                )));
            }
            ScanEnd::Corrupt { detail } => {
                return Err(AofError::Import(format!(
                    "Bad file format reading {} at offset {}: {detail}",
                    path.display(),
                    result.valid_end
                )));
            }
        }
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(())
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Write the keys of the RDB file `r` (from its magic) as the commands that rebuild them, each
/// database's after its `SELECT`, then its function libraries as `FUNCTION LOAD REPLACE`.
pub fn rdb_as_commands(r: &mut impl Read, out: &mut impl Write) -> Result<(), crate::rdb::RdbError> {
    use crate::rdb::RdbError;
    let mut buf = Vec::with_capacity(1 << 16);
    let mut db = usize::MAX;
    let info = crate::rdb::read_rdb(r, |k| {
        if k.db != db {
            encode_select(&mut buf, k.db);
            db = k.db;
        }
        let e = crate::db::SnapshotEntry { db: k.db, key: k.key, value: k.value, expire_at_ms: k.expire_at_ms };
        e.commands(|argv| super::format::encode_command(&mut buf, argv));
        if buf.len() >= 1 << 16 {
            out.write_all(&buf).map_err(RdbError::Io)?;
            buf.clear();
        }
        Ok(())
    })?;
    if !info.functions.is_empty() {
        encode_select(&mut buf, 0);
        for code in &info.functions {
            super::format::encode_command(&mut buf, &[b"FUNCTION", b"LOAD", b"REPLACE", code]);
        }
    }
    out.write_all(&buf).map_err(RdbError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lists_base_then_incremental_files_by_sequence() {
        let text = "file appendonly.aof.3.incr.aof seq 3 type i\n\
                    file appendonly.aof.1.base.rdb seq 1 type b\n\
                    file appendonly.aof.1.base.aof seq 1 type h\n\
                    type i seq 2 file \"appendonly aof.2.incr.aof\"\n";
        let files = parse_manifest(text).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["appendonly.aof.1.base.rdb", "appendonly aof.2.incr.aof", "appendonly.aof.3.incr.aof"]);
        assert!(parse_manifest("file a seq 1 type b\nfile b seq 2 type b\n").is_err());
        assert!(parse_manifest("file a seq x type i\n").is_err());
        assert!(parse_manifest("file \"unterminated seq 1 type i\n").is_err());
        assert!(parse_manifest("file ../etc/passwd seq 1 type i\n").is_err());
    }

    #[test]
    fn an_rdb_base_becomes_the_commands_that_rebuild_it() {
        use crate::db::{SnapshotEntry, SnapshotValue};
        let entries = vec![
            SnapshotEntry { db: 0, key: "k".into(), value: SnapshotValue::Str("v".into()), expire_at_ms: 0 },
            SnapshotEntry {
                db: 3,
                key: "l".into(),
                value: SnapshotValue::List(vec!["a".into(), "b".into()]),
                expire_at_ms: 99,
            },
        ];
        let mut rdb = Vec::new();
        let aux = crate::rdb::Aux { functions: vec!["#!lua name=x\n".into()], ..Default::default() };
        crate::rdb::write_rdb(&mut rdb, &entries, &aux).unwrap();
        let mut out = Vec::new();
        rdb_as_commands(&mut &rdb[..], &mut out).unwrap();
        let text = String::from_utf8_lossy(&out);
        for want in [
            "SET\r\n$1\r\nk\r\n$1\r\nv",
            "SELECT\r\n$1\r\n3",
            "RPUSH\r\n$1\r\nl\r\n$1\r\na\r\n$1\r\nb",
            "PEXPIREAT\r\n$1\r\nl\r\n$2\r\n99",
            "FUNCTION\r\n$4\r\nLOAD",
        ] {
            assert!(text.contains(want), "{want:?} in {text:?}");
        }
        // A damaged base is an error, not a partial import.
        let n = rdb.len();
        rdb[n - 1] ^= 1;
        assert!(rdb_as_commands(&mut &rdb[..], &mut Vec::new()).is_err());
        assert!(rdb_as_commands(&mut &rdb[..n / 2], &mut Vec::new()).is_err());
    }
}
