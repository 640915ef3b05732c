//! The bytes of the log: encoding commands as RESP arrays, and scanning a file back into records while
//! telling a clean end, a torn tail and corruption apart (see the module doc of [`super`] for the rules).

use std::io::{self, Read};

use bytes::Bytes;

/// Longest header line accepted (`*<count>\r\n` or `$<len>\r\n`).
const MAX_HEADER_LINE_BYTES: usize = 32;
/// Longest `#` annotation line accepted.
const MAX_ANNOTATION_BYTES: usize = 64 * 1024;
/// Largest argument count accepted in one record (Redis allows up to `INT_MAX`).
const MAX_ARGC: u64 = i32::MAX as u64;
/// Largest bulk argument accepted (Redis's `proto-max-bulk-len` upper bound is far below).
const MAX_BULK_BYTES: u64 = 1 << 36;
/// The file is read in chunks of this size and its records are parsed in place: the arguments handed
/// out are slices of the chunk (no copy, no allocation per argument). A record that does not fit is
/// carried over into a larger chunk, so a garbage length can make the scan hold at most the file.
const READ_CHUNK_BYTES: usize = 1 << 20;

/// Appends `argv` as a RESP array of bulk strings: `*N\r\n$len\r\narg\r\n...`.
pub fn encode_command(out: &mut Vec<u8>, argv: &[&[u8]]) {
    encode_args(out, argv);
}

/// [`encode_command`] of any argument type (borrowed slices, `Bytes`, vectors).
fn encode_args<A: AsRef<[u8]>>(out: &mut Vec<u8>, argv: &[A]) {
    let payload: usize = argv.iter().map(|a| a.as_ref().len() + 16).sum();
    out.reserve(payload + 16);
    push_header(out, b'*', argv.len());
    for arg in argv {
        let arg = arg.as_ref();
        push_header(out, b'$', arg.len());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends the `SELECT db` record that Redis emits when the database changes.
pub fn encode_select(out: &mut Vec<u8>, db: usize) {
    let mut text = [0u8; 20];
    encode_command(out, &[b"SELECT", crate::util::i64_text(db as i64, &mut text)]);
}

/// One transaction (or one command's several records, or a script's effects) as a single
/// `MULTI` ... `EXEC` block, the one encoding the AOF and the replication stream both take, so
/// that no other record can land inside it: `records` are `(db, argv)` in order; a `SELECT`
/// precedes each record whose db differs from the previous one's, and one switches back to the
/// first record's db before `EXEC`, so a reader that believes the stream is in that db after the
/// block (the AOF writer, the replication feed) stays right. Returns that db and the bytes, or
/// `None` for no records.
pub fn encode_block<'a, A: AsRef<[u8]> + 'a>(
    records: impl IntoIterator<Item = (usize, &'a [A])>,
) -> Option<(usize, Vec<u8>)> {
    let mut records = records.into_iter().peekable();
    let first_db = records.peek()?.0;
    let mut bytes = Vec::new();
    encode_command(&mut bytes, &[b"MULTI"]);
    let mut db = first_db;
    for (rdb, argv) in records {
        if rdb != db {
            encode_select(&mut bytes, rdb);
            db = rdb;
        }
        encode_args(&mut bytes, argv);
    }
    if db != first_db {
        encode_select(&mut bytes, first_db);
    }
    encode_command(&mut bytes, &[b"EXEC"]);
    Some((first_db, bytes))
}

fn push_header(out: &mut Vec<u8>, kind: u8, n: usize) {
    // No `to_string`: a record's headers are encoded on every write's path (AOF and replication).
    let mut text = [0u8; 20];
    out.push(kind);
    out.extend_from_slice(crate::util::i64_text(n as i64, &mut text));
    out.extend_from_slice(b"\r\n");
}

/// How a scan of the log ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ScanEnd {
    /// End of file, or a zero byte where a record should begin with only zeros after it.
    Clean,
    /// The last record is incomplete and only zeros (or nothing) follow the point where it broke off.
    TornTail,
    /// A malformed record (or a zero gap) with non-zero data after it.
    Corrupt { detail: String },
}

/// The outcome of [`scan`].
#[derive(Debug)]
pub(super) struct Scan {
    /// Offset just past the last complete record (or annotation): where the valid log ends.
    pub(super) valid_end: u64,
    pub(super) end: ScanEnd,
}

/// Reads records from `reader` until the valid end, calling `on_record(offset, argv)` for each RESP
/// array (annotations starting with `#` are skipped). `argv` borrows slices of the chunk being parsed.
/// Only I/O errors are returned as `Err`.
pub(super) fn scan<R: Read>(reader: R, on_record: impl FnMut(u64, &[Bytes])) -> io::Result<Scan> {
    scan_chunked(reader, READ_CHUNK_BYTES, on_record)
}

/// [`scan`] with the chunk size as a parameter (the tests use tiny chunks to cut records anywhere).
fn scan_chunked<R: Read>(
    mut reader: R,
    chunk_bytes: usize,
    mut on_record: impl FnMut(u64, &[Bytes]),
) -> io::Result<Scan> {
    let mut chunk = Bytes::new();
    // Parse position in `chunk`, and the file offset of `chunk[0]`.
    let (mut pos, mut base) = (0usize, 0u64);
    let mut eof = false;
    let mut argv: Vec<Bytes> = Vec::new();
    loop {
        let start = base + pos as u64;
        if pos == chunk.len() && eof {
            return Ok(Scan { valid_end: start, end: ScanEnd::Clean });
        }
        argv.clear();
        let stop = match parse_one(&chunk, pos, &mut argv) {
            Ok(Parsed::Record(end)) => {
                on_record(start, &argv);
                pos = end;
                continue;
            }
            Ok(Parsed::Annotation(end)) => {
                pos = end;
                continue;
            }
            Err(Stop::Incomplete) if !eof => {
                // Carry the unparsed rest over into a fresh chunk, at least twice its size.
                let rest = &chunk[pos..];
                let want = chunk_bytes.max(2 * rest.len());
                let mut buf = Vec::with_capacity(want);
                buf.extend_from_slice(rest);
                let read = (&mut reader).take((want - rest.len()) as u64).read_to_end(&mut buf)?;
                eof = read < want - rest.len();
                base = start;
                pos = 0;
                chunk = Bytes::from(buf);
                continue;
            }
            Err(stop) => stop,
        };
        let end = match stop {
            Stop::Incomplete => ScanEnd::TornTail,
            Stop::Malformed { why, at } => {
                ScanEnd::Corrupt { detail: format!("{why} (near offset {})", base + at as u64) }
            }
            Stop::Zero { at } => {
                let broke_at = base + at as u64;
                match skip_zeros(&chunk[at..], broke_at, &mut reader)? {
                    None if broke_at == start => ScanEnd::Clean,
                    None => ScanEnd::TornTail,
                    Some(nonzero) => ScanEnd::Corrupt {
                        detail: format!(
                            "zero bytes at offset {broke_at} are followed by non-zero data at offset {nonzero}"
                        ),
                    },
                }
            }
        };
        return Ok(Scan { valid_end: start, end });
    }
}

/// One complete item parsed at the start of the input: where it ends.
enum Parsed {
    /// A RESP array (its arguments were pushed to `argv`).
    Record(usize),
    /// A `#` line.
    Annotation(usize),
}

/// Why parsing one record stopped; positions are indexes into the chunk.
enum Stop {
    /// The input ends inside the record (more may follow; at the end of the file the record is torn).
    Incomplete,
    /// A zero byte at `at` where the record needed structure: the record was cut short if zeros run
    /// to the end of the file.
    Zero { at: usize },
    /// Non-zero bytes that are not a valid record.
    Malformed { why: String, at: usize },
}

/// Parses the record or annotation that starts at `chunk[at]`, pushing a record's arguments (slices
/// of `chunk`) to `argv`.
fn parse_one(chunk: &Bytes, at: usize, argv: &mut Vec<Bytes>) -> Result<Parsed, Stop> {
    let buf = &chunk[..];
    match buf.get(at) {
        None => Err(Stop::Incomplete),
        Some(b'*') => {
            let (argc, mut p) = header(buf, at, b'*', MAX_ARGC)?;
            if argc == 0 {
                return Err(Stop::Malformed { why: "empty command array".into(), at: p });
            }
            argv.reserve(argc.min(1024) as usize);
            for _ in 0..argc {
                let (len, from) = header(buf, p, b'$', MAX_BULK_BYTES)?;
                let len = len as usize;
                if buf.len() - from < len + 2 {
                    return Err(Stop::Incomplete);
                }
                match &buf[from + len..from + len + 2] {
                    b"\r\n" => {}
                    [0, 0] => return Err(Stop::Zero { at: from + len }),
                    _ => {
                        let why = "bulk argument not followed by CRLF".into();
                        return Err(Stop::Malformed { why, at: from + len + 2 });
                    }
                }
                argv.push(chunk.slice(from..from + len));
                p = from + len + 2;
            }
            Ok(Parsed::Record(p))
        }
        Some(b'#') => line(buf, at, MAX_ANNOTATION_BYTES).map(Parsed::Annotation),
        Some(0) => Err(Stop::Zero { at }),
        Some(other) => {
            Err(Stop::Malformed { why: format!("unexpected byte 0x{other:02x} where a record should begin"), at })
        }
    }
}

/// Finds the end (just past the `\n`) of the line starting at `buf[at]`, at most `max` bytes before
/// its `\n`. A zero byte ends the search first: it is reported where it is.
fn line(buf: &[u8], at: usize, max: usize) -> Result<usize, Stop> {
    let window = &buf[at..buf.len().min(at + max + 1)];
    match window.iter().position(|&b| b == b'\n' || b == 0) {
        Some(i) if window[i] == 0 => Err(Stop::Zero { at: at + i }),
        Some(i) => Ok(at + i + 1),
        None if window.len() > max => Err(Stop::Malformed { why: "line too long".into(), at: at + window.len() }),
        None => Err(Stop::Incomplete),
    }
}

/// Reads the line `<kind><decimal>\r\n` at `buf[at]`: the number and where the line ends.
fn header(buf: &[u8], at: usize, kind: u8, max: u64) -> Result<(u64, usize), Stop> {
    let end = line(buf, at, MAX_HEADER_LINE_BYTES)?;
    let bad = || Err(Stop::Malformed { why: format!("bad '{}' header line", kind as char), at: end });
    let Some(digits) = buf[at..end].strip_prefix(&[kind]).and_then(|l| l.strip_suffix(b"\r\n")) else {
        return bad();
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return bad();
    }
    let n = digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    if n > max {
        return bad();
    }
    Ok((n, end))
}

/// Skips zero bytes (first those of `rest`, which starts at file offset `offset`, then the reader's)
/// to the end of the file; returns the offset of the first non-zero byte, if any.
fn skip_zeros(rest: &[u8], offset: u64, reader: &mut impl Read) -> io::Result<Option<u64>> {
    if let Some(i) = rest.iter().position(|&b| b != 0) {
        return Ok(Some(offset + i as u64));
    }
    let mut offset = offset + rest.len() as u64;
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            return Ok(Some(offset + i as u64));
        }
        offset += n as u64;
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn record(argv: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_command(&mut out, argv);
        out
    }

    type Outcome = (Vec<(u64, Vec<Vec<u8>>)>, u64, ScanEnd);

    #[test]
    fn a_block_selects_each_db_change_and_switches_back_before_exec() {
        let (a, b): (&[&[u8]], &[&[u8]]) = (&[b"SET", b"k", b"1"], &[b"DEL", b"k"]);
        let (db, bytes) = encode_block([(2, a), (2, b), (5, a), (2, b)]).unwrap();
        assert_eq!(db, 2);
        let want: Vec<u8> = [
            record(&[b"MULTI"]),
            record(a),
            record(b),
            record(&[b"SELECT", b"5"]),
            record(a),
            record(&[b"SELECT", b"2"]),
            record(b),
            record(&[b"EXEC"]),
        ]
        .concat();
        assert_eq!(bytes, want);
        // Ending in another db than the first: one SELECT back before EXEC.
        let (db, bytes) = encode_block([(0, a), (1, b)]).unwrap();
        assert_eq!(db, 0);
        let want = [
            record(&[b"MULTI"]),
            record(a),
            record(&[b"SELECT", b"1"]),
            record(b),
            record(&[b"SELECT", b"0"]),
            record(&[b"EXEC"]),
        ]
        .concat();
        assert_eq!(bytes, want);
        // Owned arguments encode the same; no records, no block.
        let owned = vec![(2, vec![Bytes::from_static(b"SET"), Bytes::from_static(b"k"), Bytes::from_static(b"1")])];
        assert_eq!(
            encode_block(owned.iter().map(|(d, v)| (*d, &v[..]))).unwrap().1,
            [record(&[b"MULTI"]), record(a), record(&[b"EXEC"])].concat()
        );
        assert!(encode_block::<&[u8]>([]).is_none());
    }

    fn scan_with(bytes: &[u8], chunk: usize) -> Outcome {
        let mut records = Vec::new();
        let s = scan_chunked(bytes, chunk, |offset, argv| {
            records.push((offset, argv.iter().map(|a| a.to_vec()).collect()));
        })
        .unwrap();
        (records, s.valid_end, s.end)
    }

    #[test]
    fn records_cut_by_chunk_boundaries_anywhere_scan_the_same() {
        let log = [
            record(&[b"SELECT", b"0"]),
            b"#annotation\r\n".to_vec(),
            record(&[b"SET", b"k\0", b"\0\r\n*1\r\n$0\r\n\0\0"]),
            record(&[b"SET", b"long", &[b'x'; 300]]),
            record(&[b"DEL", b""]),
        ]
        .concat();
        let files: Vec<Vec<u8>> = vec![
            log.clone(),
            [log.clone(), vec![0; 100]].concat(),
            [log.clone(), b"*3\r\n$3\r\nSET\r\n$1\r\n".to_vec()].concat(),
            [log.clone(), b"*3\r\n$3\r\nSET\r\n$1\r\nk".to_vec(), vec![0; 50]].concat(),
            [log.clone(), vec![0; 40], record(&[b"SET", b"lost", b"1"])].concat(),
            [log.clone(), b"*2\r\n$3\r\nDEL\r\n$1\r\nkXX".to_vec(), record(&[b"PING"])].concat(),
            [log.clone(), b"hello\r\n".to_vec()].concat(),
            [log.clone(), b"*0\r\n".to_vec()].concat(),
            [log.clone(), b"*1\r\n$99999999999999999999\r\n".to_vec()].concat(),
            [log.clone(), b"*1\r\n$5\r\nab".to_vec()].concat(),
            [log.clone(), b"*1\r\n$2\r\nab\0\0".to_vec(), vec![0; 10]].concat(),
        ];
        for file in &files {
            let whole = scan_with(file, READ_CHUNK_BYTES);
            for chunk in 1..=70 {
                assert_eq!(scan_with(file, chunk), whole, "chunk size {chunk}");
            }
        }
        let (records, valid_end, end) = scan_with(&files[0], READ_CHUNK_BYTES);
        assert_eq!((records.len(), valid_end, end), (4, log.len() as u64, ScanEnd::Clean));
        assert_eq!(scan_with(&files[1], 3).2, ScanEnd::Clean);
        assert_eq!(scan_with(&files[2], 3).2, ScanEnd::TornTail);
        assert_eq!(scan_with(&files[3], 3).2, ScanEnd::TornTail);
        for corrupt in &files[4..9] {
            assert!(matches!(scan_with(corrupt, 5).2, ScanEnd::Corrupt { .. }));
        }
        assert_eq!(scan_with(&files[9], 5).2, ScanEnd::TornTail);
        assert_eq!(scan_with(&files[10], 5).2, ScanEnd::TornTail);
    }
}
