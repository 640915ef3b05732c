//! Redis's listpack byte format (`listpack.c`), built and walked here for the RDB: hashes,
//! sorted sets, list nodes and stream nodes are stored as listpack blobs.
//!
//! A listpack is `total bytes (u32 LE) | element count (u16 LE, 65535 = unknown) | entries | 0xFF`.
//! Each entry is its encoding and data followed by the encoding+data length written backwards
//! (1 to 5 bytes, 7 bits each). Strings that are the canonical text of an i64 are stored as
//! integers (7, 13, 16, 24, 32 or 64 bits), as `lpAppend` does.

/// One element of a listpack (or ziplist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Item<'_> {
    /// The element as bytes (an integer as its decimal text).
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Item::Int(n) => n.to_string().into_bytes(),
            Item::Str(s) => s.to_vec(),
        }
    }

    pub fn to_bytes(self) -> bytes::Bytes {
        match self {
            Item::Int(n) => bytes::Bytes::from(n.to_string()),
            Item::Str(s) => bytes::Bytes::copy_from_slice(s),
        }
    }
}

/// `s` as an i64 when it is exactly the canonical text of one (Redis's `string2ll`/`lpStringToInt64`).
pub fn canonical_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 { None } else { Some((v as i64).wrapping_neg()) }
    } else {
        i64::try_from(v).ok()
    }
}

/// A listpack being built.
pub struct Builder {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    pub fn new() -> Builder {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; 6]);
        Builder { buf, count: 0 }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the finished listpack so far (with the end byte).
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    /// Append a string (stored as an integer when it is one).
    pub fn push(&mut self, s: &[u8]) {
        match canonical_int(s) {
            Some(n) => self.push_int(n),
            None => {
                let start = self.buf.len();
                let l = s.len();
                if l < 64 {
                    self.buf.push(0x80 | l as u8);
                } else if l < 4096 {
                    self.buf.push(0xE0 | (l >> 8) as u8);
                    self.buf.push(l as u8);
                } else {
                    self.buf.push(0xF0);
                    self.buf.extend_from_slice(&(l as u32).to_le_bytes());
                }
                self.buf.extend_from_slice(s);
                self.backlen(start);
            }
        }
    }

    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        put_int(&mut self.buf, v);
        self.backlen(start);
    }

    fn backlen(&mut self, start: usize) {
        let l = self.buf.len() - start;
        put_backlen(&mut self.buf, l);
        self.count += 1;
    }

    /// The finished listpack.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xFF);
        let total = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let n = if self.count < 65535 { self.count as u16 } else { 65535 };
        self.buf[4..6].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

fn put_int(buf: &mut Vec<u8>, v: i64) {
    if (0..=127).contains(&v) {
        buf.push(v as u8);
    } else if (-4096..=4095).contains(&v) {
        let uv = if v < 0 { ((1 << 13) + v) as u64 } else { v as u64 };
        buf.push(((uv >> 8) as u8) | 0xC0);
        buf.push(uv as u8);
    } else if (-32768..=32767).contains(&v) {
        buf.push(0xF1);
        buf.extend_from_slice(&(v as i16).to_le_bytes());
    } else if (-8_388_608..=8_388_607).contains(&v) {
        buf.push(0xF2);
        buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
    } else if (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&v) {
        buf.push(0xF3);
        buf.extend_from_slice(&(v as i32).to_le_bytes());
    } else {
        buf.push(0xF4);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

fn put_backlen(buf: &mut Vec<u8>, l: usize) {
    if l <= 127 {
        buf.push(l as u8);
    } else if l < 16383 {
        buf.push((l >> 7) as u8);
        buf.push((l & 127) as u8 | 128);
    } else if l < 2_097_151 {
        buf.push((l >> 14) as u8);
        buf.push(((l >> 7) & 127) as u8 | 128);
        buf.push((l & 127) as u8 | 128);
    } else if l < 268_435_455 {
        buf.push((l >> 21) as u8);
        buf.push(((l >> 14) & 127) as u8 | 128);
        buf.push(((l >> 7) & 127) as u8 | 128);
        buf.push((l & 127) as u8 | 128);
    } else {
        buf.push((l >> 28) as u8);
        buf.push(((l >> 21) & 127) as u8 | 128);
        buf.push(((l >> 14) & 127) as u8 | 128);
        buf.push(((l >> 7) & 127) as u8 | 128);
        buf.push((l & 127) as u8 | 128);
    }
}

/// Bytes one entry holding `s` takes (encoding, data and back length), as `push` would write it.
pub fn entry_size(s: &[u8]) -> usize {
    let enc = match canonical_int(s) {
        Some(v) => int_size(v),
        None if s.len() < 64 => 1 + s.len(),
        None if s.len() < 4096 => 2 + s.len(),
        None => 5 + s.len(),
    };
    enc + backlen_size(enc)
}

/// Bytes one integer entry takes.
pub fn int_entry_size(v: i64) -> usize {
    let enc = int_size(v);
    enc + backlen_size(enc)
}

fn int_size(v: i64) -> usize {
    if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (-32768..=32767).contains(&v) {
        3
    } else if (-8_388_608..=8_388_607).contains(&v) {
        4
    } else if (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&v) {
        5
    } else {
        9
    }
}

fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..16383 => 2,
        16383..2_097_151 => 3,
        2_097_151..268_435_455 => 4,
        _ => 5,
    }
}

/// The elements of the listpack `lp`, validated (header, every entry's bounds and back length,
/// the end byte, the count when known); None when it is malformed.
pub fn parse(lp: &[u8]) -> Option<Vec<Item<'_>>> {
    if lp.len() < 7 {
        return None;
    }
    let total = u32::from_le_bytes(lp[0..4].try_into().ok()?) as usize;
    let count = u16::from_le_bytes(lp[4..6].try_into().ok()?) as usize;
    if total != lp.len() || lp[total - 1] != 0xFF {
        return None;
    }
    let end = total - 1;
    let mut p = 6;
    let mut out = Vec::with_capacity(count.min(4096));
    while p < end {
        let start = p;
        let b = lp[p];
        let item = if b & 0x80 == 0 {
            p += 1;
            Item::Int(i64::from(b))
        } else if b & 0xC0 == 0x80 {
            let l = usize::from(b & 0x3f);
            p += 1;
            let s = lp.get(p..p + l)?;
            p += l;
            Item::Str(s)
        } else if b & 0xE0 == 0xC0 {
            let uv = (u64::from(b & 0x1f) << 8) | u64::from(*lp.get(p + 1)?);
            p += 2;
            let v = if uv >= 1 << 12 { uv as i64 - (1 << 13) } else { uv as i64 };
            Item::Int(v)
        } else if b & 0xF0 == 0xE0 {
            let l = (usize::from(b & 0x0f) << 8) | usize::from(*lp.get(p + 1)?);
            p += 2;
            let s = lp.get(p..p + l)?;
            p += l;
            Item::Str(s)
        } else {
            match b {
                0xF0 => {
                    let l = u32::from_le_bytes(lp.get(p + 1..p + 5)?.try_into().ok()?) as usize;
                    p += 5;
                    let s = lp.get(p..p.checked_add(l)?)?;
                    p += l;
                    Item::Str(s)
                }
                0xF1 => {
                    let v = i16::from_le_bytes(lp.get(p + 1..p + 3)?.try_into().ok()?);
                    p += 3;
                    Item::Int(i64::from(v))
                }
                0xF2 => {
                    let s = lp.get(p + 1..p + 4)?;
                    let v = (i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8) as i64;
                    p += 4;
                    Item::Int(v)
                }
                0xF3 => {
                    let v = i32::from_le_bytes(lp.get(p + 1..p + 5)?.try_into().ok()?);
                    p += 5;
                    Item::Int(i64::from(v))
                }
                0xF4 => {
                    let v = i64::from_le_bytes(lp.get(p + 1..p + 9)?.try_into().ok()?);
                    p += 9;
                    Item::Int(v)
                }
                _ => return None,
            }
        };
        let enc = p - start;
        let bl = backlen_size(enc);
        let mut tmp = Vec::with_capacity(5);
        put_backlen(&mut tmp, enc);
        if lp.get(p..p + bl)? != &tmp[..] {
            return None;
        }
        p += bl;
        if p > end {
            return None;
        }
        out.push(item);
    }
    if p != end || (count != 65535 && count != out.len()) {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ints_only() {
        assert_eq!(canonical_int(b"0"), Some(0));
        assert_eq!(canonical_int(b"-1"), Some(-1));
        assert_eq!(canonical_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(canonical_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"-0", b"01", b"+1", b" 1", b"1a", b"9223372036854775808", b"-"] {
            assert_eq!(canonical_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_encoding_round_trips() {
        let ints = [0i64, 127, 128, -1, -4096, 4095, 4096, -32768, 32767, 40000, -8388608, 8388607, 1 << 30, i64::MIN];
        let strs: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            vec![b'x'; 63],
            vec![b'y'; 64],
            vec![b'z'; 4095],
            vec![b'w'; 4096],
            vec![b'q'; 20000],
        ];
        let mut b = Builder::new();
        for &i in &ints {
            b.push_int(i);
        }
        for s in &strs {
            b.push(s);
        }
        let mut expect_size = 7;
        for &i in &ints {
            expect_size += int_entry_size(i);
        }
        for s in &strs {
            expect_size += entry_size(s);
        }
        let lp = b.finish();
        assert_eq!(lp.len(), expect_size);
        let items = parse(&lp).unwrap();
        assert_eq!(items.len(), ints.len() + strs.len());
        for (k, &i) in ints.iter().enumerate() {
            assert_eq!(items[k], Item::Int(i));
        }
        for (k, s) in strs.iter().enumerate() {
            match items[ints.len() + k] {
                Item::Str(x) => assert_eq!(x, &s[..]),
                Item::Int(_) => panic!("string read back as an integer"),
            }
        }
    }

    #[test]
    fn redis_bytes_for_a_small_hash() {
        // HSET h a 1 on redis-server 7.0.15: the listpack DUMP carries.
        let mut b = Builder::new();
        b.push(b"a");
        b.push(b"1");
        assert_eq!(b.finish(), vec![0x0c, 0, 0, 0, 2, 0, 0x81, b'a', 2, 1, 1, 0xff]);
    }

    #[test]
    fn malformed_listpacks_are_refused() {
        let mut b = Builder::new();
        b.push(b"hello");
        b.push_int(1000);
        let lp = b.finish();
        assert!(parse(&lp).is_some());
        for cut in 0..lp.len() {
            assert!(parse(&lp[..cut]).is_none());
        }
        let mut bad = lp.clone();
        bad[4] = 3; // wrong count
        assert!(parse(&bad).is_none());
        let mut bad = lp.clone();
        bad[6] = 0x8f; // string longer than the buffer
        assert!(parse(&bad).is_none());
    }
}
