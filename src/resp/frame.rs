//! The reply value and its encoder, for both RESP2 and RESP3 (chosen per client with HELLO).

use bytes::{BufMut, Bytes, BytesMut};

/// One reply, in the types of RESP3; [`Frame::encode`] renders it for the client's protocol.
///
/// # Format
/// Both protocols: `+simple\r\n`, `-ERR text\r\n`, `:42\r\n`, `$3\r\nfoo\r\n`, `*N\r\n...`.
/// RESP2 only: `$-1\r\n`, `*-1\r\n`; maps and sets as flat arrays, verbatim strings as bulks.
/// RESP3 only: `_\r\n` (both nulls), `%N\r\n` + N key/value pairs, `~N\r\n` + N items,
/// `=len\r\ntxt:...\r\n`, `,double\r\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// `+text`: status replies such as `OK` or `PONG`.
    Simple(Bytes),
    /// `-CODE text`: the text includes the leading code (`ERR`, `WRONGTYPE`, ...).
    Error(Bytes),
    /// `:n`.
    Integer(i64),
    /// `$len\r\nbytes`.
    Bulk(Bytes),
    /// `$-1`: the null bulk string.
    Null,
    /// `*-1`: the null array.
    NullArray,
    /// `*N` followed by N frames.
    Array(Vec<Frame>),
    /// RESP3 `%N` followed by N key/value pairs; a flat `*2N` array under RESP2.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~N` followed by N frames; an array under RESP2.
    Set(Vec<Frame>),
    /// RESP3 verbatim text (`=len\r\ntxt:...`); a plain bulk string under RESP2.
    Verbatim(Bytes),
    /// RESP3 `,text` (a double as Redis formats it: `%.17g`, `inf`, `-inf`); a bulk string of the
    /// same text under RESP2 (Redis's `addReplyDouble`).
    Double(Bytes),
    /// RESP3 `#t`/`#f`; `:1`/`:0` under RESP2 (Redis's `addReplyBool`: a script's booleans under
    /// `redis.setresp(3)`).
    Boolean(bool),
    /// RESP3 `(digits`; a bulk string under RESP2 (Redis's `addReplyBigNum`).
    BigNumber(Bytes),
    /// RESP3 `>N` followed by N frames (an out-of-band push: pub/sub messages and subscription
    /// confirmations); a plain `*N` array under RESP2.
    Push(Vec<Frame>),
    /// Several replies of one command, one after the other (SUBSCRIBE a b: one confirmation per
    /// channel). Only ever the whole reply of a command.
    Seq(Vec<Frame>),
    /// One reply already encoded, written out as it is: only `*N` arrays, `$N` bulk strings,
    /// `:n` integers and `+text`, which read the same under RESP2 and RESP3. What a command that
    /// reads many small values under a lock (XREAD's entries) builds instead of a tree of frames:
    /// one buffer, no allocation per value. [`Frame::expand`] turns it into frames (scripts,
    /// tests).
    Encoded(Bytes),
}

impl Frame {
    /// `+OK`.
    pub fn ok() -> Frame {
        Frame::Simple(Bytes::from_static(b"OK"))
    }

    /// The reply of a command that wrote it into the connection's output itself (GET: see
    /// `cmd::Ctx::out`): an empty sequence, which encodes to nothing. No allocation.
    pub fn written() -> Frame {
        Frame::Seq(Vec::new())
    }

    /// A simple status reply from a static string.
    pub fn simple(s: &'static str) -> Frame {
        Frame::Simple(Bytes::from_static(s.as_bytes()))
    }

    /// A bulk reply copied from a byte slice.
    pub fn bulk(b: &[u8]) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(b))
    }

    /// A bulk reply holding the decimal text of `n`.
    pub fn bulk_int(n: i64) -> Frame {
        Frame::Bulk(Bytes::from(n.to_string()))
    }

    /// An array of bulk strings.
    pub fn bulk_array<I: IntoIterator<Item = Bytes>>(items: I) -> Frame {
        Frame::Array(items.into_iter().map(Frame::Bulk).collect())
    }

    /// The frame as a RESP2 client sees it: maps as flat key/value arrays, sets as arrays, verbatim
    /// text as bulk strings (what [`Frame::encode`] writes under RESP2, as a frame).
    pub fn to_resp2(&self) -> Frame {
        match self {
            Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
                Frame::Array(items.iter().map(Frame::to_resp2).collect())
            }
            Frame::Seq(items) => Frame::Seq(items.iter().map(Frame::to_resp2).collect()),
            Frame::Map(pairs) => Frame::Array(pairs.iter().flat_map(|(k, v)| [k.to_resp2(), v.to_resp2()]).collect()),
            Frame::Verbatim(b) | Frame::Double(b) | Frame::BigNumber(b) => Frame::Bulk(b.clone()),
            Frame::Boolean(b) => Frame::Integer(i64::from(*b)),
            other => other.clone(),
        }
    }

    /// Append the encoding of this frame under protocol `proto` (2 or 3; anything but 3 is RESP2).
    pub fn encode(&self, out: &mut BytesMut, proto: u8) {
        let resp3 = proto == 3;
        match self {
            Frame::Simple(s) => put_line(out, b'+', s),
            Frame::Error(s) => put_line(out, b'-', s),
            Frame::Integer(n) => put_header(out, b':', *n),
            Frame::Bulk(b) => put_bulk(out, b),
            Frame::Null if resp3 => out.extend_from_slice(b"_\r\n"),
            Frame::Null => out.extend_from_slice(b"$-1\r\n"),
            Frame::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
            Frame::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Frame::Array(items) => put_items(out, b'*', items, proto),
            Frame::Set(items) => put_items(out, if resp3 { b'~' } else { b'*' }, items, proto),
            Frame::Map(pairs) => {
                if resp3 {
                    put_header(out, b'%', pairs.len() as i64);
                } else {
                    put_header(out, b'*', pairs.len() as i64 * 2);
                }
                for (k, v) in pairs {
                    k.encode(out, proto);
                    v.encode(out, proto);
                }
            }
            Frame::Verbatim(b) if resp3 => {
                out.put_u8(b'=');
                put_decimal(out, b.len() as i64 + 4);
                out.extend_from_slice(b"\r\ntxt:");
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Verbatim(b) => put_bulk(out, b),
            Frame::Double(b) if resp3 => put_line(out, b',', b),
            Frame::Double(b) => put_bulk(out, b),
            Frame::Boolean(b) if resp3 => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::Boolean(b) => out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
            Frame::BigNumber(b) if resp3 => put_line(out, b'(', b),
            Frame::BigNumber(b) => put_bulk(out, b),
            Frame::Push(items) => put_items(out, if resp3 { b'>' } else { b'*' }, items, proto),
            Frame::Seq(items) => items.iter().for_each(|f| f.encode(out, proto)),
            Frame::Encoded(b) => out.extend_from_slice(b),
        }
    }

    /// This frame with every [`Frame::Encoded`] in it (at any depth) parsed into frames.
    pub fn expand(self) -> Frame {
        let all = |items: Vec<Frame>| items.into_iter().map(Frame::expand).collect();
        match self {
            Frame::Encoded(b) => {
                let mut pos = 0;
                parse_encoded(&b, &mut pos)
                    .unwrap_or_else(|| Frame::Error(Bytes::from_static(b"ERR bad encoded reply")))
            }
            Frame::Array(items) => Frame::Array(all(items)),
            Frame::Set(items) => Frame::Set(all(items)),
            Frame::Push(items) => Frame::Push(all(items)),
            Frame::Seq(items) => Frame::Seq(all(items)),
            Frame::Map(pairs) => Frame::Map(pairs.into_iter().map(|(k, v)| (k.expand(), v.expand())).collect()),
            other => other,
        }
    }
}

/// One value of a [`Frame::Encoded`] buffer at `pos` (None: not the subset it may hold).
fn parse_encoded(b: &[u8], pos: &mut usize) -> Option<Frame> {
    let line_end = *pos + b.get(*pos..)?.windows(2).position(|w| w == b"\r\n")?;
    let kind = b[*pos];
    let text = &b[*pos + 1..line_end];
    *pos = line_end + 2;
    let num = || std::str::from_utf8(text).ok()?.parse::<i64>().ok();
    Some(match kind {
        b'+' => Frame::Simple(Bytes::copy_from_slice(text)),
        b':' => Frame::Integer(num()?),
        b'$' => {
            let n = usize::try_from(num()?).ok()?;
            let data = b.get(*pos..*pos + n)?;
            *pos += n + 2;
            Frame::Bulk(Bytes::copy_from_slice(data))
        }
        b'*' => {
            let n = usize::try_from(num()?).ok()?;
            Frame::Array((0..n).map(|_| parse_encoded(b, pos)).collect::<Option<_>>()?)
        }
        _ => return None,
    })
}

/// `<kind><text>\r\n`.
fn put_line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    out.put_u8(kind);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// `<kind><n>\r\n`.
fn put_header(out: &mut BytesMut, kind: u8, n: i64) {
    // Built on the stack and copied once (one capacity check, not three): every integer reply.
    let mut line = [0u8; 23];
    let mut digits = [0u8; 20];
    let d = crate::util::i64_text(n, &mut digits);
    line[0] = kind;
    line[1..=d.len()].copy_from_slice(d);
    line[d.len() + 1..d.len() + 3].copy_from_slice(b"\r\n");
    out.extend_from_slice(&line[..d.len() + 3]);
}

/// `$<len>\r\n<data>\r\n` (the same under RESP2 and RESP3).
pub fn put_bulk(out: &mut BytesMut, data: &[u8]) {
    put_header(out, b'$', data.len() as i64);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// `<kind><N>\r\n` followed by the N frames.
fn put_items(out: &mut BytesMut, kind: u8, items: &[Frame], proto: u8) {
    put_header(out, kind, items.len() as i64);
    for f in items {
        f.encode(out, proto);
    }
}

/// Write the decimal text of `n` without allocating.
pub fn put_decimal(out: &mut BytesMut, n: i64) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(crate::util::i64_text(n, &mut buf));
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn enc(f: Frame) -> Vec<u8> {
        enc_as(f, 2)
    }

    fn enc_as(f: Frame, proto: u8) -> Vec<u8> {
        let mut b = BytesMut::new();
        f.encode(&mut b, proto);
        b.to_vec()
    }

    fn s(t: &'static str) -> Frame {
        Frame::Bulk(Bytes::from_static(t.as_bytes()))
    }

    #[test]
    fn encodes_every_resp2_type_as_redis_does() {
        assert_eq!(enc(Frame::ok()), b"+OK\r\n");
        assert_eq!(enc(Frame::Error(Bytes::from_static(b"ERR x"))), b"-ERR x\r\n");
        assert_eq!(enc(Frame::Integer(-42)), b":-42\r\n");
        assert_eq!(enc(Frame::Integer(i64::MIN)), b":-9223372036854775808\r\n");
        assert_eq!(enc(Frame::Integer(i64::MAX)), b":9223372036854775807\r\n");
        assert_eq!(enc(Frame::Integer(0)), b":0\r\n");
        assert_eq!(enc(Frame::bulk(b"a\r\nb")), b"$4\r\na\r\nb\r\n");
        assert_eq!(enc(Frame::Null), b"$-1\r\n");
        assert_eq!(enc(Frame::NullArray), b"*-1\r\n");
        assert_eq!(enc(Frame::Array(vec![Frame::Integer(1), Frame::Null])), b"*2\r\n:1\r\n$-1\r\n");
        assert_eq!(enc(Frame::Array(vec![])), b"*0\r\n");
    }

    #[test]
    fn resp3_types_render_natively_under_resp3() {
        assert_eq!(enc_as(Frame::Null, 3), b"_\r\n");
        assert_eq!(enc_as(Frame::NullArray, 3), b"_\r\n");
        assert_eq!(enc_as(Frame::Map(vec![(s("a"), Frame::Integer(1))]), 3), b"%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc_as(Frame::Set(vec![Frame::simple("x")]), 3), b"~1\r\n+x\r\n");
        assert_eq!(enc_as(Frame::Verbatim(Bytes::from_static(b"a\r\nb")), 3), b"=8\r\ntxt:a\r\nb\r\n");
        assert_eq!(enc_as(Frame::Double(Bytes::from_static(b"1.5")), 3), b",1.5\r\n");
        assert_eq!(enc(Frame::Double(Bytes::from_static(b"-inf"))), b"$4\r\n-inf\r\n");
        assert_eq!(enc_as(Frame::Boolean(true), 3), b"#t\r\n");
        assert_eq!(enc(Frame::Boolean(false)), b":0\r\n");
        assert_eq!(enc_as(Frame::BigNumber(Bytes::from_static(b"123")), 3), b"(123\r\n");
        assert_eq!(enc(Frame::BigNumber(Bytes::from_static(b"123"))), b"$3\r\n123\r\n");
        // Nested frames follow the same protocol; the RESP2 types render as under RESP2.
        assert_eq!(enc_as(Frame::Array(vec![Frame::Null, Frame::Integer(-1)]), 3), b"*2\r\n_\r\n:-1\r\n");
        assert_eq!(enc_as(Frame::bulk(b"ab"), 3), b"$2\r\nab\r\n");
        assert_eq!(enc_as(Frame::Error(Bytes::from_static(b"ERR x")), 3), b"-ERR x\r\n");
        let push = Frame::Push(vec![s("message"), s("c"), Frame::Null]);
        assert_eq!(enc_as(push.clone(), 3), b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n_\r\n");
        assert_eq!(enc(push), b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$-1\r\n");
        assert_eq!(enc_as(Frame::Seq(vec![Frame::Integer(1), Frame::ok()]), 3), b":1\r\n+OK\r\n");
    }

    #[test]
    fn resp3_types_degrade_to_resp2_shapes_under_resp2() {
        let map = Frame::Map(vec![(s("a"), Frame::Null), (s("b"), Frame::Set(vec![Frame::Integer(2)]))]);
        assert_eq!(enc(map), b"*4\r\n$1\r\na\r\n$-1\r\n$1\r\nb\r\n*1\r\n:2\r\n");
        assert_eq!(enc(Frame::Map(vec![])), b"*0\r\n");
        assert_eq!(enc(Frame::Set(vec![])), b"*0\r\n");
        assert_eq!(enc(Frame::Verbatim(Bytes::from_static(b"x\n"))), b"$2\r\nx\n\r\n");
        let nested = Frame::Array(vec![Frame::Map(vec![(s("k"), Frame::Verbatim(Bytes::from_static(b"t")))])]);
        assert_eq!(nested.to_resp2(), Frame::Array(vec![Frame::Array(vec![s("k"), s("t")])]));
        assert_eq!(enc(nested.clone()), enc(nested.to_resp2()), "to_resp2 is what RESP2 encodes");
    }
}
