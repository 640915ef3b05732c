//! The bytes of the log: encoding commands as RESP arrays, and scanning a file back into records while
//! telling a clean end, a torn tail and corruption apart (see the module doc of [`super`] for the rules).

use std::io::{self, BufRead, BufReader, Read};

use bytes::{Bytes, BytesMut};

/// Longest header line accepted (`*<count>\r\n` or `$<len>\r\n`).
const MAX_HEADER_LINE_BYTES: usize = 32;
/// Longest `#` annotation line accepted.
const MAX_ANNOTATION_BYTES: usize = 64 * 1024;
/// Largest argument count accepted in one record (Redis allows up to `INT_MAX`).
const MAX_ARGC: u64 = i32::MAX as u64;
/// Largest bulk argument accepted (Redis's `proto-max-bulk-len` upper bound is far below).
const MAX_BULK_BYTES: u64 = 1 << 36;
/// Bulk arguments are read in pieces of at most this size, so a garbage length cannot allocate much.
const BULK_READ_STEP_BYTES: usize = 1 << 20;

/// Appends `argv` as a RESP array of bulk strings: `*N\r\n$len\r\narg\r\n...`.
pub(super) fn encode_command(out: &mut Vec<u8>, argv: &[&[u8]]) {
    let payload: usize = argv.iter().map(|a| a.len() + 16).sum();
    out.reserve(payload + 16);
    push_header(out, b'*', argv.len());
    for arg in argv {
        push_header(out, b'$', arg.len());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends the `SELECT db` record that Redis emits when the database changes.
pub(super) fn encode_select(out: &mut Vec<u8>, db: usize) {
    let db = db.to_string();
    encode_command(out, &[b"SELECT", db.as_bytes()]);
}

fn push_header(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    out.extend_from_slice(n.to_string().as_bytes());
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

/// Why parsing one record stopped.
enum Broken {
    /// End of file inside the record.
    Eof,
    /// A zero byte where the record needed structure; the record was cut short if zeros run to the end.
    Zero,
    /// Non-zero bytes that are not a valid record.
    Malformed(String),
}

/// Reads records from `reader` until the valid end, calling `on_record(offset, argv)` for each RESP
/// array (annotations starting with `#` are skipped). Only I/O errors are returned as `Err`.
pub(super) fn scan<R: Read>(reader: R, mut on_record: impl FnMut(u64, Vec<Bytes>)) -> io::Result<Scan> {
    let mut r = Cursor { inner: BufReader::with_capacity(1 << 20, reader), pos: 0 };
    loop {
        let start = r.pos;
        let Some(first) = r.peek()? else {
            return Ok(Scan { valid_end: start, end: ScanEnd::Clean });
        };
        let outcome = match first {
            b'*' => parse_array(&mut r).map(|argv| on_record(start, argv)),
            b'#' => skip_annotation(&mut r),
            0 => Err(Ok(Broken::Zero)),
            other => Err(Ok(Broken::Malformed(format!("unexpected byte 0x{other:02x} where a record should begin")))),
        };
        let broken = match outcome {
            Ok(()) => continue,
            Err(Err(e)) => return Err(e),
            Err(Ok(b)) => b,
        };
        let broke_at = r.pos;
        let nonzero_after = r.skip_zeros()?;
        let end = match (broken, nonzero_after) {
            (Broken::Eof, _) => ScanEnd::TornTail,
            (Broken::Zero, None) if broke_at == start => ScanEnd::Clean,
            (Broken::Zero, None) => ScanEnd::TornTail,
            (Broken::Zero, Some(at)) => ScanEnd::Corrupt {
                detail: format!("zero bytes at offset {broke_at} are followed by non-zero data at offset {at}"),
            },
            (Broken::Malformed(why), _) => ScanEnd::Corrupt { detail: format!("{why} (near offset {broke_at})") },
        };
        return Ok(Scan { valid_end: start, end });
    }
}

/// `Err(Err(io))` for an I/O error, `Err(Ok(broken))` when the record is not valid.
type Parsed<T> = Result<T, Result<Broken, io::Error>>;

fn parse_array<R: Read>(r: &mut Cursor<R>) -> Parsed<Vec<Bytes>> {
    let argc = r.header(b'*', MAX_ARGC)?;
    if argc == 0 {
        return Err(Ok(Broken::Malformed("empty command array".into())));
    }
    let mut argv = Vec::with_capacity(argc.min(1024) as usize);
    for _ in 0..argc {
        let len = r.header(b'$', MAX_BULK_BYTES)?;
        let arg = r.bulk(len as usize)?;
        match r.take(2)?.as_slice() {
            b"\r\n" => {}
            [0, 0] => return Err(Ok(Broken::Zero)),
            _ => return Err(Ok(Broken::Malformed("bulk argument not followed by CRLF".into()))),
        }
        argv.push(arg);
    }
    Ok(argv)
}

fn skip_annotation<R: Read>(r: &mut Cursor<R>) -> Parsed<()> {
    r.line(MAX_ANNOTATION_BYTES).map(drop)
}

/// A buffered reader that counts the offset of every byte it hands out.
struct Cursor<R> {
    inner: BufReader<R>,
    pos: u64,
}

impl<R: Read> Cursor<R> {
    fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.inner.fill_buf()?.first().copied())
    }

    fn take(&mut self, n: usize) -> Parsed<Vec<u8>> {
        let mut out = vec![0; n];
        let mut filled = 0;
        while filled < n {
            let buf = self.inner.fill_buf().map_err(Err)?;
            if buf.is_empty() {
                return Err(Ok(Broken::Eof));
            }
            let k = buf.len().min(n - filled);
            out[filled..filled + k].copy_from_slice(&buf[..k]);
            self.inner.consume(k);
            self.pos += k as u64;
            filled += k;
        }
        Ok(out)
    }

    fn bulk(&mut self, len: usize) -> Parsed<Bytes> {
        let mut out = BytesMut::with_capacity(len.min(BULK_READ_STEP_BYTES));
        while out.len() < len {
            let piece = self.take((len - out.len()).min(BULK_READ_STEP_BYTES))?;
            out.extend_from_slice(&piece);
        }
        Ok(out.freeze())
    }

    /// Reads through the next `\n` (inclusive), at most `max` bytes. Stops *before* a zero byte
    /// (`Broken::Zero`), so the zero run that follows can be checked from its first byte.
    fn line(&mut self, max: usize) -> Parsed<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            let buf = self.inner.fill_buf().map_err(Err)?;
            if buf.is_empty() {
                return Err(Ok(Broken::Eof));
            }
            let stop = buf.iter().position(|&b| b == b'\n' || b == 0);
            let k = stop.map_or(buf.len(), |i| if buf[i] == 0 { i } else { i + 1 });
            let k = k.min(max + 1 - line.len());
            let hit_zero = stop.is_some_and(|i| buf[i] == 0 && i == k);
            line.extend_from_slice(&buf[..k]);
            self.inner.consume(k);
            self.pos += k as u64;
            if line.last() == Some(&b'\n') {
                return Ok(line);
            }
            if hit_zero {
                return Err(Ok(Broken::Zero));
            }
            if line.len() > max {
                return Err(Ok(Broken::Malformed("line too long".into())));
            }
        }
    }

    /// Reads `<kind><decimal>\r\n` and returns the number.
    fn header(&mut self, kind: u8, max: u64) -> Parsed<u64> {
        let line = self.line(MAX_HEADER_LINE_BYTES)?;
        let bad = || Err(Ok(Broken::Malformed(format!("bad '{}' header line", kind as char))));
        let Some(digits) = line.strip_prefix(&[kind]).and_then(|l| l.strip_suffix(b"\r\n")) else {
            return bad();
        };
        if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
            return bad();
        }
        let n = digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if n > max {
            return bad();
        }
        Ok(n)
    }

    /// Skips zero bytes to the end of the file; returns the offset of the first non-zero byte, if any.
    fn skip_zeros(&mut self) -> io::Result<Option<u64>> {
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            if let Some(i) = buf.iter().position(|&b| b != 0) {
                return Ok(Some(self.pos + i as u64));
            }
            let k = buf.len();
            self.inner.consume(k);
            self.pos += k as u64;
        }
    }
}
