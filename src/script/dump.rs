//! The FUNCTION DUMP payload, as Redis 7.0 writes and reads it: for each library the RDB opcode
//! `FUNCTION2` (245) and its code as an RDB string, then the RDB version (2 bytes, little endian)
//! and the CRC-64 (Jones) of everything before (8 bytes, little endian). Strings are written plain;
//! reading also takes LZF-compressed ones (what redis-server writes). Mirrors `rdbSaveFunctions`,
//! `verifyDumpPayload` and `rdbFunctionLoad`.

/// Redis 7.0's RDB version.
pub const RDB_VERSION: u16 = 10;
const OPCODE_FUNCTION: u8 = 246;
const OPCODE_FUNCTION2: u8 = 245;

/// The payload of FUNCTION DUMP for these library codes.
pub fn dump<'a>(codes: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION2);
        put_len(&mut out, code.len() as u64);
        out.extend_from_slice(code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn put_len(out: &mut Vec<u8>, len: u64) {
    if len < 64 {
        out.push(len as u8);
    } else if len < 16384 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// The library codes in a payload, or Redis's error text.
pub fn restore(payload: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let bad = || "ERR DUMP payload version or checksum are wrong".to_string();
    if payload.len() < 10 {
        return Err(bad());
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_VERSION {
        return Err(bad());
    }
    let crc = u64::from_le_bytes(footer[2..10].try_into().map_err(|_| bad())?);
    if crc64(0, &payload[..payload.len() - 8]) != crc {
        return Err(bad());
    }
    let mut codes = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let opcode = body[pos];
        pos += 1;
        if opcode != OPCODE_FUNCTION2 && opcode != OPCODE_FUNCTION {
            return Err("ERR given type is not a function".into());
        }
        if opcode == OPCODE_FUNCTION {
            // The 7.0 release candidates' format (name, engine, description, code): not written by 7.0.
            return Err("ERR failed loading the given functions payload".into());
        }
        let code =
            read_string(body, &mut pos).ok_or_else(|| "ERR failed loading the given functions payload".to_string())?;
        codes.push(code);
    }
    Ok(codes)
}

/// An RDB length, or the encoding byte of a special string (`Err(kind)`).
fn read_len(b: &[u8], pos: &mut usize) -> Option<Result<u64, u8>> {
    let first = *b.get(*pos)?;
    *pos += 1;
    Some(match first >> 6 {
        0 => Ok(u64::from(first & 0x3f)),
        1 => {
            let second = *b.get(*pos)?;
            *pos += 1;
            Ok((u64::from(first & 0x3f) << 8) | u64::from(second))
        }
        2 if first == 0x80 => {
            let v = b.get(*pos..*pos + 4)?;
            *pos += 4;
            Ok(u64::from(u32::from_be_bytes(v.try_into().ok()?)))
        }
        2 if first == 0x81 => {
            let v = b.get(*pos..*pos + 8)?;
            *pos += 8;
            Ok(u64::from_be_bytes(v.try_into().ok()?))
        }
        2 => return None,
        _ => Err(first & 0x3f),
    })
}

fn read_string(b: &[u8], pos: &mut usize) -> Option<Vec<u8>> {
    match read_len(b, pos)? {
        Ok(len) => {
            let len = usize::try_from(len).ok()?;
            let s = b.get(*pos..pos.checked_add(len)?)?.to_vec();
            *pos += len;
            Some(s)
        }
        // Integers stored as strings: 8, 16, 32 bits.
        Err(kind @ 0..=2) => {
            let n = 1usize << kind;
            let v = b.get(*pos..*pos + n)?;
            *pos += n;
            let x: i64 = match kind {
                0 => i64::from(v[0] as i8),
                1 => i64::from(i16::from_le_bytes([v[0], v[1]])),
                _ => i64::from(i32::from_le_bytes([v[0], v[1], v[2], v[3]])),
            };
            Some(x.to_string().into_bytes())
        }
        Err(3) => {
            let clen = usize::try_from(read_len(b, pos)?.ok()?).ok()?;
            let len = usize::try_from(read_len(b, pos)?.ok()?).ok()?;
            let input = b.get(*pos..pos.checked_add(clen)?)?;
            *pos += clen;
            lzf_decompress(input, len)
        }
        Err(_) => None,
    }
}

/// liblzf's decompression into exactly `len` bytes (None when the input does not give that).
fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(len.min(1 << 30));
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            out.extend_from_slice(input.get(ip..ip + run)?);
            ip += run;
        } else {
            let mut n = ctrl >> 5;
            if n == 7 {
                n += *input.get(ip)? as usize;
                ip += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(ip)? as usize + 1;
            ip += 1;
            let start = out.len().checked_sub(back)?;
            for i in 0..n + 2 {
                let byte = out[start + i];
                out.push(byte);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

/// CRC-64/Jones as Redis computes it (`crc64.c`: reflected, polynomial 0xad93d23594c935a9).
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5; // 0xad93d23594c935a9 bit-reversed
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY } else { crc >> 1 };
        }
    }
    crc
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn crc64_is_redis_s() {
        assert_eq!(crc64(0, b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn dump_and_restore_round_trip() {
        let long = vec![b'x'; 20000];
        let codes: Vec<&[u8]> = vec![b"#!lua name=a\nx", &long];
        let payload = dump(codes.iter().copied());
        assert_eq!(restore(&payload).unwrap(), vec![b"#!lua name=a\nx".to_vec(), long]);
        let mut bad = payload.clone();
        bad[3] ^= 1;
        assert_eq!(restore(&bad), Err("ERR DUMP payload version or checksum are wrong".into()));
    }

    #[test]
    fn lzf_back_references_repeat() {
        // "abc" literal, then a back reference of length 3+2... as liblzf writes "abcabcabc".
        let input = [2, b'a', b'b', b'c', 0x80, 2];
        assert_eq!(lzf_decompress(&input, 9).as_deref(), Some(&b"abcabcabc"[..]));
    }
}
