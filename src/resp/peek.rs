//! A look ahead at the requests already read: the first key of each complete multibulk request at
//! the start of a buffer, without consuming or copying anything. The connection hands these keys
//! to [`KeyMap::prefetch`](crate::db::KeyMap::prefetch) before it runs a pipelined batch, so that
//! the batch's lookups find their cache lines loaded (their misses overlap instead of following
//! one another). A hint only: what it finds never changes what a command does.

/// Walk the complete multibulk requests at the start of `buf` (which must start at a request's
/// first byte), at most `max` of them, and call `key` with the first key of each request that has
/// one: the second argument of most commands; of EVAL, EVALSHA, FCALL and their `_RO` forms the
/// fourth, when their `numkeys` (the third) is at least 1 (the second is the script or its name).
/// Returns how many requests were walked; stops at the first one that has not fully arrived or is
/// not a well-formed multibulk request (the decoder judges it, later), or after the request whose
/// key `key` answered false to (that request counted).
pub fn peek_keys<'a>(buf: &'a [u8], max: usize, mut key: impl FnMut(&'a [u8]) -> bool) -> usize {
    let mut pos = 0;
    let mut walked = 0;
    'requests: while walked < max {
        let Some((count, at)) = header(buf, pos, b'*') else { break };
        if count <= 0 {
            break;
        }
        pos = at;
        let mut script = false;
        let mut first: Option<&'a [u8]> = None;
        for i in 0..count {
            let Some((len, at)) = header(buf, pos, b'$') else { break 'requests };
            let Ok(len) = usize::try_from(len) else { break 'requests };
            let Some(end) = at.checked_add(len).filter(|&end| end.checked_add(2).is_some_and(|e| e <= buf.len()))
            else {
                break 'requests;
            };
            let arg = &buf[at..end];
            match i {
                0 => script = takes_numkeys(arg),
                1 if !script => first = Some(arg),
                2 if script => script = arg.first().is_some_and(|&c| (b'1'..=b'9').contains(&c)),
                3 if script => first = Some(arg),
                _ => {}
            }
            pos = end + 2;
        }
        walked += 1;
        if let Some(k) = first
            && !key(k)
        {
            break;
        }
    }
    walked
}

/// The key [`peek_keys`] finds in a request already decoded into its arguments: the second
/// argument, or of a script or function call the fourth when `numkeys` is at least 1.
pub fn first_key<A: AsRef<[u8]>>(argv: &[A]) -> Option<&[u8]> {
    let name = argv.first()?.as_ref();
    if takes_numkeys(name) {
        let numkeys = argv.get(2)?.as_ref();
        if numkeys.first().is_some_and(|&c| (b'1'..=b'9').contains(&c)) {
            return argv.get(3).map(AsRef::as_ref);
        }
        return None;
    }
    argv.get(1).map(AsRef::as_ref)
}

/// Whether `name` is a command whose keys follow a `numkeys` third argument (scripts, functions).
fn takes_numkeys(name: &[u8]) -> bool {
    // Most requests are not scripts: their first letter says so (one compare per request, not six
    // case-insensitive ones).
    if !matches!(name.first(), Some(b'e' | b'E' | b'f' | b'F')) {
        return false;
    }
    ["evalsha", "eval", "fcall", "evalsha_ro", "eval_ro", "fcall_ro"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
}

/// A `<kind><decimal>\r\n` line at `pos`: its number and the position after it. At most 18
/// digits (no overflow), no sign: a negative count or length stops the walk.
fn header(buf: &[u8], pos: usize, kind: u8) -> Option<(i64, usize)> {
    if buf.get(pos) != Some(&kind) {
        return None;
    }
    let mut n: i64 = 0;
    let mut p = pos + 1;
    while let Some(&c) = buf.get(p) {
        match c {
            b'0'..=b'9' if p - pos <= 18 => n = n * 10 + i64::from(c - b'0'),
            b'\r' if p > pos + 1 && buf.get(p + 1) == Some(&b'\n') => return Some((n, p + 2)),
            _ => return None,
        }
        p += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(buf: &[u8], max: usize) -> (usize, Vec<Vec<u8>>) {
        let mut out = Vec::new();
        let n = peek_keys(buf, max, |k| {
            out.push(k.to_vec());
            true
        });
        (n, out)
    }

    #[test]
    fn first_key_agrees_with_the_walk() {
        let buf = b"*5\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$2\r\nk1\r\n$1\r\nv\r\n\
                    *3\r\n$4\r\neval\r\n$6\r\nreturn\r\n$1\r\n0\r\n\
                    *4\r\n$5\r\nfcall\r\n$1\r\nf\r\n$2\r\n12\r\n$2\r\nk2\r\n\
                    *1\r\n$4\r\nPING\r\n\
                    *2\r\n$3\r\nGET\r\n$2\r\nk3\r\n\
                    *3\r\n$3\r\nSET\r\n$0\r\n\r\n$1\r\nv\r\n";
        let mut rest = bytes::BytesMut::from(&buf[..]);
        let mut decoder = crate::resp::RequestDecoder::default();
        let mut found = Vec::new();
        while !rest.is_empty() {
            let mut walked = Vec::new();
            assert_eq!(
                peek_keys(&rest, 1, |k| {
                    walked.push(k.to_vec());
                    true
                }),
                1
            );
            let Ok(crate::resp::Decoded::Command(argv)) = decoder.decode(&mut rest, usize::MAX) else {
                panic!("a complete request")
            };
            assert_eq!(first_key(&argv).map(<[u8]>::to_vec), walked.pop());
            found.push(first_key(&argv).map(<[u8]>::to_vec));
        }
        let k = |s: &str| Some(s.as_bytes().to_vec());
        assert_eq!(found, [k("k1"), None, k("k2"), None, k("k3"), k("")]);
    }

    #[test]
    fn scripts_give_their_first_declared_key() {
        let buf = b"*5\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$2\r\nk1\r\n$1\r\nv\r\n\
                    *3\r\n$4\r\neval\r\n$6\r\nreturn\r\n$1\r\n0\r\n\
                    *4\r\n$5\r\nfcall\r\n$1\r\nf\r\n$2\r\n12\r\n$2\r\nk2\r\n\
                    *3\r\n$5\r\nFCALL\r\n$1\r\nf\r\n$1\r\n1\r\n\
                    *2\r\n$3\r\nGET\r\n$2\r\nk3\r\n";
        let (n, k) = keys(buf, 16);
        assert_eq!(n, 5);
        assert_eq!(k, [b"k1".to_vec(), b"k2".to_vec(), b"k3".to_vec()]);
    }

    #[test]
    fn the_second_argument_of_each_complete_request_up_to_max() {
        let buf = b"*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$1\r\nv\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n";
        let (n, k) = keys(buf, 16);
        assert_eq!(n, 3);
        assert_eq!(k, [b"k1".to_vec(), b"".to_vec()]);
        let (n, k) = keys(buf, 1);
        assert_eq!((n, k), (1, vec![b"k1".to_vec()]));
    }

    #[test]
    fn stops_after_the_request_whose_key_answers_false() {
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n\
                    *2\r\n$3\r\nGET\r\n$1\r\nc\r\n";
        let mut seen = Vec::new();
        let n = peek_keys(buf, 16, |k| {
            seen.push(k.to_vec());
            k != b"b"
        });
        assert_eq!(n, 3, "the request of the false answer is counted, the next is not walked");
        assert_eq!(seen, [b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn stops_at_a_partial_or_malformed_request() {
        let whole = b"*2\r\n$3\r\nGET\r\n$2\r\nab\r\n";
        for cut in 0..whole.len() {
            let mut buf = whole.to_vec();
            buf.extend_from_slice(&whole[..cut]);
            let (n, k) = keys(&buf, 16);
            assert_eq!(n, 1, "cut at {cut}");
            assert_eq!(k, [b"ab".to_vec()]);
        }
        // Inline requests, bad headers, negative or huge lengths, an empty multibulk: no walk.
        for bad in [
            &b"GET ab\r\n"[..],
            b"*x\r\n",
            b"*2\r\n$-1\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*\r\n",
            b"*2\r\n$3\rGET\r\n",
            b"*2\r\n$99999999999999999999\r\n",
            b"*1\r\n$18446744073709551615\r\nx\r\n",
        ] {
            assert_eq!(keys(bad, 16), (0, vec![]), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
