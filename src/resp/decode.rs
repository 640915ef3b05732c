//! Request decoding: RESP multibulk arrays and inline commands, incrementally, exactly as Redis's
//! `processMultibulkBuffer` / `processInlineBuffer` accept and reject them.
//!
//! Nothing is allocated from a declared length: a bulk of 500 MB is only buffered as its bytes
//! arrive, and the argument vector grows with the arguments actually received.

use bytes::{Buf, Bytes, BytesMut};

use crate::util::parse_i64;

/// Longest inline request or count line accepted without a newline (Redis's PROTO_INLINE_MAX_SIZE).
pub const PROTO_INLINE_MAX_BYTES: usize = 64 * 1024;
/// Most argument slots reserved up front for a multibulk request, whatever count it declares.
const ARGV_PREALLOC_MAX: usize = 1024;

/// A protocol error: the connection gets `-ERR Protocol error: <text>` and is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

impl ProtocolError {
    /// The reply text, without the leading `-`.
    pub fn reply_text(&self) -> String {
        format!("ERR Protocol error: {}", self.0)
    }
}

/// What one decoding step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A complete command (never empty).
    Command(Vec<Bytes>),
    /// More bytes are needed.
    Incomplete,
}

/// Incremental request decoder; keeps the partial multibulk state between reads.
#[derive(Default, Debug)]
pub struct RequestDecoder {
    /// Arguments still expected by the multibulk request being read (0 = none in progress).
    remaining: usize,
    /// Length of the bulk whose `$len` line was consumed but whose body has not fully arrived.
    bulk_len: Option<usize>,
    args: Vec<Bytes>,
    /// The client must still authenticate: like Redis, accept at most
    /// [`UNAUTHENTICATED_MAX_ARGS`] arguments and bulks of at most [`UNAUTHENTICATED_MAX_BULK`].
    pub unauthenticated: bool,
}

/// Most arguments of a multibulk request from a client that has not authenticated.
pub const UNAUTHENTICATED_MAX_ARGS: i64 = 10;
/// Longest bulk accepted from a client that has not authenticated.
pub const UNAUTHENTICATED_MAX_BULK: i64 = 16384;

impl RequestDecoder {
    /// Bytes the decoder still needs for the bulk in progress (to size reads), if known.
    pub fn pending_bulk_len(&self) -> Option<usize> {
        self.bulk_len
    }

    /// No request is half decoded: the buffer starts at a request's first byte.
    pub fn at_boundary(&self) -> bool {
        self.remaining == 0
    }

    /// Give back the argument vector of a command that has run: the next command reuses its
    /// allocation (one allocation less per request). A large one is dropped.
    pub fn recycle(&mut self, mut argv: Vec<Bytes>) {
        if self.remaining == 0 && self.args.capacity() == 0 && argv.capacity() <= ARGV_PREALLOC_MAX {
            argv.clear();
            self.args = argv;
        }
    }

    /// Decode the next command from `buf`, consuming what it uses.
    pub fn decode(&mut self, buf: &mut BytesMut, max_bulk_len: usize) -> Result<Decoded, ProtocolError> {
        if self.remaining == 0
            && !self.unauthenticated
            && let Some(argv) = self.whole_request(buf, max_bulk_len)
        {
            return Ok(Decoded::Command(argv));
        }
        loop {
            if self.remaining == 0 {
                if buf.is_empty() {
                    return Ok(Decoded::Incomplete);
                }
                if buf[0] != b'*' {
                    match decode_inline(buf)? {
                        Some(args) if args.is_empty() => continue,
                        Some(args) => return Ok(Decoded::Command(args)),
                        None => return Ok(Decoded::Incomplete),
                    }
                }
                let Some(count) = take_header(buf, "too big mbulk count string")? else {
                    return Ok(Decoded::Incomplete);
                };
                let count = count.filter(|&n| n <= i32::MAX as i64);
                let Some(count) = count else {
                    return Err(ProtocolError("invalid multibulk length"));
                };
                if self.unauthenticated && count > UNAUTHENTICATED_MAX_ARGS {
                    return Err(ProtocolError("unauthenticated multibulk length"));
                }
                if count <= 0 {
                    continue;
                }
                self.remaining = count as usize;
                self.args.clear();
                self.args.reserve(self.remaining.min(ARGV_PREALLOC_MAX));
            }
            while self.remaining > 0 {
                let len = match self.bulk_len {
                    Some(len) => len,
                    None => {
                        if buf.is_empty() {
                            return Ok(Decoded::Incomplete);
                        }
                        if buf[0] != b'$' {
                            return Err(ProtocolError(expected_dollar(buf[0])));
                        }
                        let Some(len) = take_header(buf, "too big bulk count string")? else {
                            return Ok(Decoded::Incomplete);
                        };
                        let len = len.filter(|&n| n >= 0 && n as u64 <= max_bulk_len as u64);
                        let Some(len) = len else {
                            return Err(ProtocolError("invalid bulk length"));
                        };
                        if self.unauthenticated && len > UNAUTHENTICATED_MAX_BULK {
                            return Err(ProtocolError("unauthenticated bulk length"));
                        }
                        self.bulk_len = Some(len as usize);
                        len as usize
                    }
                };
                // Like Redis, the two bytes after the body are taken as the CRLF without checking them.
                if buf.len() < len + 2 {
                    return Ok(Decoded::Incomplete);
                }
                let arg = match self.args.is_empty().then(|| crate::cmd::static_name(&buf[..len])).flatten() {
                    Some(name) => {
                        buf.advance(len);
                        Bytes::from_static(name)
                    }
                    None => buf.split_to(len).freeze(),
                };
                buf.advance(2);
                self.args.push(arg);
                self.bulk_len = None;
                self.remaining -= 1;
            }
            return Ok(Decoded::Command(std::mem::take(&mut self.args)));
        }
    }
}

/// Most arguments of a request that [`RequestDecoder::whole_request`] takes.
const WHOLE_ARGS_MAX: usize = 16;

impl RequestDecoder {
    /// The common request in one pass: a multibulk request of at most [`WHOLE_ARGS_MAX`] arguments
    /// that has fully arrived, every header a plain number, is located in the buffer first (no
    /// buffer update per header: each was ~25 instructions), then taken with one split per
    /// argument (none for a command name, see `cmd::static_name`). None, with `buf` untouched, for
    /// anything else (incomplete, inline, an odd or a bad header: the general path decodes it and
    /// gives the error); what it accepts, the general path would decode the same.
    fn whole_request(&mut self, buf: &mut BytesMut, max_bulk_len: usize) -> Option<Vec<Bytes>> {
        let b = &buf[..];
        let (count, mut at) = header_at(b, 0, b'*')?;
        if count == 0 || count > WHOLE_ARGS_MAX {
            return None;
        }
        let mut spans = [(0usize, 0usize); WHOLE_ARGS_MAX];
        for span in &mut spans[..count] {
            let (len, body) = header_at(b, at, b'$')?;
            if len > max_bulk_len || b.len() < body + len + 2 {
                return None;
            }
            *span = (body, len);
            at = body + len + 2;
        }
        let mut args = std::mem::take(&mut self.args);
        args.clear();
        args.reserve(count);
        // The buffer advances only to split an argument off, and once past the request.
        let mut taken = 0;
        for (i, &(body, len)) in spans[..count].iter().enumerate() {
            if i == 0
                && let Some(name) = crate::cmd::static_name(&buf[body..body + len])
            {
                args.push(Bytes::from_static(name));
                continue;
            }
            buf.advance(body - taken);
            args.push(buf.split_to(len).freeze());
            taken = body + len;
        }
        // Like the general path, the two bytes after a body are its CRLF, unchecked.
        buf.advance(at - taken);
        Some(args)
    }
}

/// The header at `b[at..]`: `kind` then a number in canonical form (no sign, no leading zero) of
/// at most 9 digits, then CR and one more byte (taken as the LF, as the general path does).
/// Returns the number and where what follows the header starts; None for anything else.
#[inline]
fn header_at(b: &[u8], at: usize, kind: u8) -> Option<(usize, usize)> {
    if *b.get(at)? != kind {
        return None;
    }
    let mut i = at + 1;
    let mut n = 0usize;
    while let Some(&c) = b.get(i)
        && c.is_ascii_digit()
    {
        n = n * 10 + usize::from(c - b'0');
        i += 1;
    }
    let digits = i - at - 1;
    let canonical = digits == 1 || (digits > 1 && digits <= 9 && b[at + 1] != b'0');
    (canonical && *b.get(i)? == b'\r' && i + 1 < b.len()).then_some((n, i + 2))
}

/// The message for a bulk header that does not start with `$`.
fn expected_dollar(got: u8) -> &'static str {
    // Protocol error texts are static; the offending byte is one of 256, so intern them.
    static TEXTS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    // Like Redis's error replies, CR and LF show as spaces: the reply must stay one line.
    TEXTS.get_or_init(|| {
        (0..=255u8)
            .map(|b| if matches!(b, b'\r' | b'\n') { ' ' } else { b as char })
            .map(|c| &*Box::leak(format!("expected '$', got '{c}'").into_boxed_str()))
            .collect()
    })[got as usize]
}

/// Take one `\r\n`-terminated header line (`*N`, `$N`) and parse the number after its first byte
/// (the inner `None` when it is not a number), or None when the line has not fully arrived. The
/// buffer only advances: no split, so no reference count is touched per header.
fn take_header(buf: &mut BytesMut, too_big: &'static str) -> Result<Option<Option<i64>>, ProtocolError> {
    match memchr(b'\r', buf) {
        Some(pos) if pos + 1 < buf.len() => {
            let n = buf.get(1..pos).and_then(parse_i64);
            buf.advance(pos + 2);
            Ok(Some(n))
        }
        Some(_) => Ok(None),
        None if buf.len() > PROTO_INLINE_MAX_BYTES => Err(ProtocolError(too_big)),
        None => Ok(None),
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// An inline command: one line split as `sdssplitargs` does. `Some(vec![])` is an empty line.
fn decode_inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > PROTO_INLINE_MAX_BYTES {
            return Err(ProtocolError("too big inline request"));
        }
        return Ok(None);
    };
    let mut line = buf.split_to(nl + 1);
    line.truncate(nl);
    if line.last() == Some(&b'\r') {
        line.truncate(nl - 1);
    }
    match split_inline_args(&line) {
        Some(args) => Ok(Some(args.into_iter().map(Bytes::from).collect())),
        None => Err(ProtocolError("unbalanced quotes in request")),
    }
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn hex_val(b: u8) -> u8 {
    (b as char).to_digit(16).unwrap_or(0) as u8
}

/// Split a line into arguments like Redis's `sdssplitargs`: spaces separate, `"..."` takes escapes
/// (`\n \r \t \b \a \\ \" \xHH`), `'...'` takes `\'`; a closing quote must be followed by a space or the
/// end. Returns None on unbalanced quotes.
pub fn split_inline_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut cur = Vec::new();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            if in_dq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 3 < n && line[i + 1] == b'x' && is_hex(line[i + 2]) && is_hex(line[i + 3]) {
                    cur.push(hex_val(line[i + 2]) * 16 + hex_val(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if in_sq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

/// Decode one complete request from a byte slice (convenience for tests and the AOF loader).
pub fn decode_request(bytes: &[u8]) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let mut buf = BytesMut::from(bytes);
    match RequestDecoder::default().decode(&mut buf, usize::MAX)? {
        Decoded::Command(args) => Ok(Some(args)),
        Decoded::Incomplete => Ok(None),
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    const MAX: usize = 512 * 1024 * 1024;

    #[test]
    fn a_recycled_argument_vector_is_reused_and_holds_only_the_next_command() {
        let mut d = RequestDecoder::default();
        let mut buf = BytesMut::from(&b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n"[..]);
        let Ok(Decoded::Command(first)) = d.decode(&mut buf, MAX) else { panic!("first") };
        assert_eq!(first, ["SET", "a", "b"]);
        let ptr = first.as_ptr();
        d.recycle(first);
        let Ok(Decoded::Command(second)) = d.decode(&mut buf, MAX) else { panic!("second") };
        assert_eq!(second, ["GET", "x"]);
        assert_eq!(second.as_ptr(), ptr, "the allocation was reused");
        // A header split over two reads is still parsed whole.
        let mut buf = BytesMut::from(&b"*1\r\n$1"[..]);
        assert!(matches!(d.decode(&mut buf, MAX), Ok(Decoded::Incomplete)));
        buf.extend_from_slice(b"2\r\nPINGPINGPING\r\n");
        let Ok(Decoded::Command(third)) = d.decode(&mut buf, MAX) else { panic!("third") };
        assert_eq!(third, ["PINGPINGPING"]);
    }

    fn all(input: &[u8]) -> (Vec<Vec<Bytes>>, Option<ProtocolError>) {
        let mut d = RequestDecoder::default();
        let mut buf = BytesMut::from(input);
        let mut cmds = Vec::new();
        loop {
            match d.decode(&mut buf, MAX) {
                Ok(Decoded::Command(c)) => cmds.push(c),
                Ok(Decoded::Incomplete) => return (cmds, None),
                Err(e) => return (cmds, Some(e)),
            }
        }
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn pipelined_multibulk_and_inline_commands_decode_in_order() {
        let (cmds, err) = all(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n\r\nSET a  b\n");
        assert_eq!(err, None);
        assert_eq!(cmds, vec![vec![b("ECHO"), b("hi")], vec![b("PING")], vec![b("SET"), b("a"), b("b")]]);
    }

    #[test]
    fn partial_request_waits_then_completes_across_reads() {
        let mut d = RequestDecoder::default();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$5\r\nhel"[..]);
        assert_eq!(d.decode(&mut buf, MAX), Ok(Decoded::Incomplete));
        buf.extend_from_slice(b"lo\r\n");
        assert_eq!(d.decode(&mut buf, MAX), Ok(Decoded::Command(vec![b("GET"), b("hello")])));
    }

    #[test]
    fn protocol_errors_match_redis_texts() {
        assert_eq!(all(b"*a\r\n").1, Some(ProtocolError("invalid multibulk length")));
        assert_eq!(all(b"*01\r\n").1, Some(ProtocolError("invalid multibulk length")));
        assert_eq!(all(b"*2147483648\r\n").1, Some(ProtocolError("invalid multibulk length")));
        assert_eq!(all(b"*1\r\n$-1\r\n").1, Some(ProtocolError("invalid bulk length")));
        assert_eq!(all(b"*1\r\n$536870913\r\n").1, Some(ProtocolError("invalid bulk length")));
        assert_eq!(all(b"*1\r\nx\r\n").1.unwrap().reply_text(), "ERR Protocol error: expected '$', got 'x'");
        assert_eq!(all(b"SET \"a b\r\n").1, Some(ProtocolError("unbalanced quotes in request")));
        assert_eq!(all(b"ECHO \"a\"b\r\n").1, Some(ProtocolError("unbalanced quotes in request")));
    }

    #[test]
    fn huge_declared_sizes_allocate_nothing_up_front() {
        let mut d = RequestDecoder::default();
        let mut buf = BytesMut::from(&b"*999999999\r\n$400000000\r\nab"[..]);
        assert_eq!(d.decode(&mut buf, MAX), Ok(Decoded::Incomplete));
        assert!(d.args.capacity() <= ARGV_PREALLOC_MAX);
        assert_eq!(d.pending_bulk_len(), Some(400_000_000));
    }

    #[test]
    fn empty_and_negative_multibulk_counts_are_skipped() {
        let (cmds, err) = all(b"*0\r\n*-5\r\nPING\r\n");
        assert_eq!(err, None);
        assert_eq!(cmds, vec![vec![b("PING")]]);
    }

    #[test]
    fn inline_quotes_and_escapes_follow_sdssplitargs() {
        let args = split_inline_args(br#"SET "a\x41\n" 'it\'s' plain"#).unwrap();
        assert_eq!(args, vec![b"SET".to_vec(), b"aA\n".to_vec(), b"it's".to_vec(), b"plain".to_vec()]);
        assert_eq!(split_inline_args(b"'open"), None);
    }

    #[test]
    fn too_long_inline_request_without_newline_is_refused() {
        let big = vec![b'a'; PROTO_INLINE_MAX_BYTES + 1];
        assert_eq!(all(&big).1, Some(ProtocolError("too big inline request")));
    }

    #[test]
    fn unauthenticated_clients_get_redis_small_request_limits() {
        let mut d = RequestDecoder { unauthenticated: true, ..Default::default() };
        let mut buf = BytesMut::from(&b"*10\r\n"[..]);
        assert_eq!(d.decode(&mut buf, MAX), Ok(Decoded::Incomplete));
        let mut d = RequestDecoder { unauthenticated: true, ..Default::default() };
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(d.decode(&mut buf, MAX), Err(ProtocolError("unauthenticated multibulk length")));
        let mut d = RequestDecoder { unauthenticated: true, ..Default::default() };
        let mut buf = BytesMut::from(&b"*2\r\n$16384\r\n"[..]);
        assert_eq!(d.decode(&mut buf, MAX), Ok(Decoded::Incomplete));
        let mut d = RequestDecoder { unauthenticated: true, ..Default::default() };
        let mut buf = BytesMut::from(&b"*2\r\n$16385\r\n"[..]);
        assert_eq!(d.decode(&mut buf, MAX), Err(ProtocolError("unauthenticated bulk length")));
        let mut d = RequestDecoder::default();
        let mut buf = BytesMut::from(&b"*11\r\n$16385\r\n"[..]);
        assert_eq!(d.decode(&mut buf, MAX), Ok(Decoded::Incomplete));
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod whole_request_tests {
    use super::*;

    /// Every request decoded from `input` fed in two reads split at each position: the one-pass
    /// path takes the complete ones, the general path what it leaves (incomplete, odd headers).
    fn decoded_split_everywhere(input: &[u8], max_bulk: usize) -> Vec<(Vec<Vec<Bytes>>, Option<ProtocolError>)> {
        (0..=input.len())
            .map(|k| {
                let mut d = RequestDecoder::default();
                let mut buf = BytesMut::from(&input[..k]);
                let mut cmds = Vec::new();
                let mut fed = false;
                loop {
                    match d.decode(&mut buf, max_bulk) {
                        Ok(Decoded::Command(c)) => cmds.push(c),
                        Ok(Decoded::Incomplete) if !fed => {
                            buf.extend_from_slice(&input[k..]);
                            fed = true;
                        }
                        Ok(Decoded::Incomplete) => return (cmds, None),
                        Err(e) => return (cmds, Some(e)),
                    }
                }
            })
            .collect()
    }

    fn argv(args: &[&str]) -> Vec<Bytes> {
        args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
    }

    #[test]
    fn requests_decode_the_same_wherever_the_reads_split_them() {
        let mut input = Vec::new();
        let mut want = Vec::new();
        let mut push = |args: &[&str]| {
            input.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for a in args {
                input.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
            }
            want.push(argv(args));
        };
        push(&["GET", "key:000000012345"]);
        push(&["get", ""]);
        push(&["gEt", "k"]);
        push(&["SET", "k", &"v".repeat(1000)]);
        push(&["nosuchcommand", "a", "b"]);
        let many: Vec<String> = (0..17).map(|i| i.to_string()).collect();
        let many: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
        push(&many[..16]);
        push(&many[..17]);
        push(&["LPUSH", "list", "a", "b", "c"]);
        // An inline request between them.
        input.extend_from_slice(b"PING\r\n");
        want.push(argv(&["PING"]));
        for (k, (cmds, err)) in decoded_split_everywhere(&input, 512 * 1024 * 1024).into_iter().enumerate() {
            assert_eq!(err, None, "split at {k}");
            assert_eq!(cmds, want, "split at {k}");
        }
    }

    #[test]
    fn odd_and_bad_headers_get_the_general_paths_reply() {
        // A leading zero, a sign, a bulk over the limit, a missing '$', a huge count: the same
        // commands before the error, the same error, wherever the reads split.
        let cases: [(&[u8], usize, Option<&str>); 6] = [
            (b"*1\r\n$01\r\nx\r\n", 100, Some("invalid bulk length")),
            (b"*1\r\n$+1\r\nx\r\n", 100, Some("invalid bulk length")),
            (b"*2\r\n$3\r\nGET\r\n$5\r\nabcde\r\n", 4, Some("invalid bulk length")),
            (b"*1\r\n$4\r\nPING\r\n*1\r\n:4\r\nPING\r\n", 100, Some("expected '$', got ':'")),
            (b"*0\r\n*1\r\n$4\r\nPING\r\n", 100, None),
            (b"*01\r\n$4\r\nPING\r\n", 100, Some("invalid multibulk length")),
        ];
        for (input, max_bulk, err) in cases {
            for (k, (cmds, got)) in decoded_split_everywhere(input, max_bulk).into_iter().enumerate() {
                assert_eq!(got.map(|e| e.0), err, "{input:?} split at {k}");
                let pings = cmds.iter().all(|c| c == &argv(&["PING"]));
                assert!(pings, "{input:?} split at {k}: {cmds:?}");
            }
        }
    }

    #[test]
    fn a_command_name_is_a_static_string_and_the_key_shares_the_buffer() {
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n*2\r\n$3\r\nGeT\r\n$1\r\nk\r\n"[..]);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let mut d = RequestDecoder::default();
        let Ok(Decoded::Command(first)) = d.decode(&mut buf, 100) else { panic!("first") };
        assert_eq!(first, argv(&["GET", "key"]));
        assert!(!range.contains(&(first[0].as_ptr() as usize)), "GET: static");
        assert!(range.contains(&(first[1].as_ptr() as usize)), "the key: a view of the buffer");
        let Ok(Decoded::Command(second)) = d.decode(&mut buf, 100) else { panic!("second") };
        assert_eq!(second, argv(&["GeT", "k"]));
        assert!(range.contains(&(second[0].as_ptr() as usize)), "a mixed-case name is taken as sent");
    }
}
