//! The RDB's primitive encodings (`rdb.c`): lengths, strings (integer, LZF and raw forms), binary
//! doubles, millisecond times. Everything is appended to a byte buffer.

use super::lzf;

pub const ENC_INT8: u8 = 0;
pub const ENC_INT16: u8 = 1;
pub const ENC_INT32: u8 = 2;
pub const ENC_LZF: u8 = 3;

/// `rdbSaveLen`.
pub fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(((n >> 8) as u8) | 0x40);
        out.push(n as u8);
    } else if n <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// `rdbEncodeInteger`: the special-encoded form of `v` when it fits in 32 bits.
fn put_int_enc(out: &mut Vec<u8>, v: i64) -> bool {
    if (-(1 << 7)..(1 << 7)).contains(&v) {
        out.push(0xC0 | ENC_INT8);
        out.push(v as i8 as u8);
    } else if (-(1 << 15)..(1 << 15)).contains(&v) {
        out.push(0xC0 | ENC_INT16);
        out.extend_from_slice(&(v as i16).to_le_bytes());
    } else if (-(1i64 << 31)..(1i64 << 31)).contains(&v) {
        out.push(0xC0 | ENC_INT32);
        out.extend_from_slice(&(v as i32).to_le_bytes());
    } else {
        return false;
    }
    true
}

/// `rdbSaveRawString`: an integer encoding when `s` is a canonical integer of up to 11 bytes that
/// fits 32 bits, LZF when `compress` and longer than 20 bytes and it saves at least 4 bytes, else
/// the length and the bytes.
pub fn put_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11
        && let Some(v) = super::listpack::canonical_int(s)
        && put_int_enc(out, v)
    {
        return;
    }
    if compress && s.len() > 20 && put_lzf(out, s) {
        return;
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// `rdbSaveLongLongAsStringObject`: an integer string.
pub fn put_int_string(out: &mut Vec<u8>, v: i64) {
    if !put_int_enc(out, v) {
        let t = v.to_string();
        put_len(out, t.len() as u64);
        out.extend_from_slice(t.as_bytes());
    }
}

/// `rdbSaveLzfStringObject`: false when compression does not save 4 bytes.
fn put_lzf(out: &mut Vec<u8>, s: &[u8]) -> bool {
    if s.len() <= 4 {
        return false;
    }
    let Some(c) = lzf::compress(s, s.len() - 4) else { return false };
    out.push(0xC0 | ENC_LZF);
    put_len(out, c.len() as u64);
    put_len(out, s.len() as u64);
    out.extend_from_slice(&c);
    true
}

/// `rdbSaveBinaryDoubleValue`.
pub fn put_double(out: &mut Vec<u8>, x: f64) {
    out.extend_from_slice(&x.to_le_bytes());
}

/// `rdbSaveMillisecondTime`.
pub fn put_ms(out: &mut Vec<u8>, ms: u64) {
    out.extend_from_slice(&ms.to_le_bytes());
}

/// Redis's `d2string`: how a sorted set listpack stores a score (integers up to 2^62 exactly,
/// otherwise `%.17g`).
pub fn d2string(x: f64) -> String {
    const LIM: f64 = 4_611_686_018_427_387_904.0; // 2^62, LLONG_MAX/2 as a double
    if x.is_finite() && x != 0.0 && (-LIM..=LIM).contains(&x) && x.fract() == 0.0 {
        return (x as i64).to_string();
    }
    crate::db::zset::score::format_score(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        let mut o = Vec::new();
        put_len(&mut o, 63);
        put_len(&mut o, 64);
        put_len(&mut o, 16383);
        put_len(&mut o, 16384);
        put_len(&mut o, 1 << 33);
        assert_eq!(o, vec![63, 0x40, 64, 0x7f, 0xff, 0x80, 0, 0, 0x40, 0, 0x81, 0, 0, 0, 2, 0, 0, 0, 0]);
    }

    #[test]
    fn strings_pick_redis_encodings() {
        let enc = |s: &[u8]| {
            let mut o = Vec::new();
            put_string(&mut o, s, true);
            o
        };
        assert_eq!(enc(b"12"), vec![0xC0, 12]);
        assert_eq!(enc(b"-200"), vec![0xC1, 0x38, 0xff]);
        assert_eq!(enc(b"100000"), vec![0xC2, 0xa0, 0x86, 1, 0]);
        assert_eq!(enc(b"012"), vec![3, b'0', b'1', b'2']);
        assert_eq!(enc(b"4294967296"), [&[10u8][..], b"4294967296"].concat());
        assert_eq!(enc(&[b'a'; 30])[0], 0xC3);
        let mut o = Vec::new();
        put_string(&mut o, &[b'a'; 30], false);
        assert_eq!(o[0], 30);
        assert_eq!(d2string(3.0), "3");
        assert_eq!(d2string(1e17), "100000000000000000");
        assert_eq!(d2string(1e19), "1e+19");
        assert_eq!(d2string(1.5), "1.5");
    }
}
