//! The RESP2 reply value and its encoder.

use bytes::{BufMut, Bytes, BytesMut};

/// One RESP2 reply.
///
/// # Format
/// `+simple\r\n`, `-ERR text\r\n`, `:42\r\n`, `$3\r\nfoo\r\n`, `$-1\r\n`, `*-1\r\n`, `*N\r\n...`.
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
}

impl Frame {
    /// `+OK`.
    pub fn ok() -> Frame {
        Frame::Simple(Bytes::from_static(b"OK"))
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

    /// Append the RESP2 encoding of this frame to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Frame::Simple(s) => {
                out.put_u8(b'+');
                out.extend_from_slice(s);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Error(s) => {
                out.put_u8(b'-');
                out.extend_from_slice(s);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Integer(n) => {
                out.put_u8(b':');
                put_decimal(out, *n);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Bulk(b) => {
                out.put_u8(b'$');
                put_decimal(out, b.len() as i64);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Null => out.extend_from_slice(b"$-1\r\n"),
            Frame::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Frame::Array(items) => {
                out.put_u8(b'*');
                put_decimal(out, items.len() as i64);
                out.extend_from_slice(b"\r\n");
                for f in items {
                    f.encode(out);
                }
            }
        }
    }
}

/// Write the decimal text of `n` without allocating.
pub fn put_decimal(out: &mut BytesMut, n: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        out.put_u8(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn enc(f: Frame) -> Vec<u8> {
        let mut b = BytesMut::new();
        f.encode(&mut b);
        b.to_vec()
    }

    #[test]
    fn encodes_every_resp2_type_as_redis_does() {
        assert_eq!(enc(Frame::ok()), b"+OK\r\n");
        assert_eq!(enc(Frame::Error(Bytes::from_static(b"ERR x"))), b"-ERR x\r\n");
        assert_eq!(enc(Frame::Integer(-42)), b":-42\r\n");
        assert_eq!(enc(Frame::Integer(i64::MIN)), b":-9223372036854775808\r\n");
        assert_eq!(enc(Frame::bulk(b"a\r\nb")), b"$4\r\na\r\nb\r\n");
        assert_eq!(enc(Frame::Null), b"$-1\r\n");
        assert_eq!(enc(Frame::NullArray), b"*-1\r\n");
        assert_eq!(enc(Frame::Array(vec![Frame::Integer(1), Frame::Null])), b"*2\r\n:1\r\n$-1\r\n");
        assert_eq!(enc(Frame::Array(vec![])), b"*0\r\n");
    }
}
