//! LZF as Redis embeds it (`lzf_c.c` with HLOG 16, VERY_FAST, `lzf_d.c`): RDB strings longer than
//! 20 bytes are stored compressed when `rdbcompression` is on and compression saves at least 4
//! bytes. The compressor follows the C code's choices (hash, match rules, literal runs) so that
//! our files and DUMP payloads are byte-identical to redis-server's (Redis leaves its hash table
//! uninitialised; ours starts empty, which finds the same matches unless stale slots happened to
//! point into the same buffer).
//!
//! Format: `000LLLLL` + L+1 literal bytes; `LLLooooo oooooooo` back reference of L+2 bytes at
//! offset o+1; `111ooooo LLLLLLLL oooooooo` a back reference of L+9 bytes.

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

#[inline]
fn idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// One byte onto the current literal run (lzf_c.c's literal copy): a full run of [`MAX_LIT`]
/// bytes gets its length byte and a new run starts after it.
fn push_literal(out: &mut [u8], op: &mut usize, lit: &mut usize, byte: u8) {
    *lit += 1;
    out[*op] = byte;
    *op += 1;
    if *lit == MAX_LIT {
        out[*op - *lit - 1] = (*lit - 1) as u8;
        *lit = 0;
        *op += 1;
    }
}

/// Compress `input` into at most `out_len` bytes; None when it does not fit (as `lzf_compress`
/// returning 0).
pub fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let in_len = input.len();
    if in_len == 0 || out_len == 0 {
        return None;
    }
    // Slots hold position + 1 (0 = empty).
    let mut htab = vec![0u32; HSIZE];
    let mut out = vec![0u8; out_len];
    let mut op: usize = 0;
    let mut ip: usize = 0;
    let mut lit: usize = 0;
    op += 1; // start run

    let frst = |p: usize| (u32::from(input[p]) << 8) | u32::from(input[p + 1]);
    let next = |v: u32, p: usize| (v << 8) | u32::from(input[p + 2]);

    let mut hval = if in_len >= 2 { frst(ip) } else { 0 };
    while in_len >= 3 && ip < in_len - 2 {
        hval = next(hval, ip);
        let slot = idx(hval);
        let r = htab[slot];
        htab[slot] = ip as u32 + 1;
        let matched = r != 0 && {
            let rf = (r - 1) as usize;
            rf < ip
                && ip - rf - 1 < MAX_OFF
                && rf > 0
                && input[rf + 2] == input[ip + 2]
                && input[rf] == input[ip]
                && input[rf + 1] == input[ip + 1]
        };
        if matched {
            let rf = (r - 1) as usize;
            let off = ip - rf - 1;
            let mut len: usize = 2;
            let maxlen = (in_len - ip - len).min(MAX_REF);
            if op + 3 + 1 >= out_len && op - usize::from(lit == 0) + 3 + 1 >= out_len {
                return None;
            }
            out[op - lit - 1] = (lit as u8).wrapping_sub(1); // stop run
            op -= usize::from(lit == 0); // undo run if length is zero
            'scan: {
                if maxlen > 16 {
                    // lzf_c.c's unrolled 16 steps, which do not test maxlen.
                    for _ in 0..16 {
                        len += 1;
                        if input[rf + len] != input[ip + len] {
                            break 'scan;
                        }
                    }
                }
                loop {
                    len += 1;
                    if !(len < maxlen && input[rf + len] == input[ip + len]) {
                        break;
                    }
                }
            }
            len -= 2;
            ip += 1;
            if len < 7 {
                out[op] = ((off >> 8) + (len << 5)) as u8;
                op += 1;
            } else {
                out[op] = ((off >> 8) + (7 << 5)) as u8;
                out[op + 1] = (len - 7) as u8;
                op += 2;
            }
            out[op] = off as u8;
            op += 1;
            lit = 0;
            op += 1; // start run
            ip += len + 1;
            if ip >= in_len - 2 {
                break;
            }
            ip -= 2;
            hval = frst(ip);
            hval = next(hval, ip);
            htab[idx(hval)] = ip as u32 + 1;
            ip += 1;
            hval = next(hval, ip);
            htab[idx(hval)] = ip as u32 + 1;
            ip += 1;
        } else {
            if op >= out_len {
                return None;
            }
            push_literal(&mut out, &mut op, &mut lit, input[ip]);
            ip += 1;
        }
    }
    if op + 3 > out_len {
        return None;
    }
    while ip < in_len {
        push_literal(&mut out, &mut op, &mut lit, input[ip]);
        ip += 1;
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1);
    op -= usize::from(lit == 0);
    out.truncate(op);
    Some(out)
}

/// Decompress `input` into exactly `out_len` bytes; None when the data is corrupt or does not
/// produce exactly that many bytes.
pub fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len.min(input.len().saturating_mul(300)).min(1 << 26));
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < (1 << 5) {
            let n = ctrl + 1;
            if out.len() + n > out_len || ip + n > input.len() {
                return None;
            }
            out.extend_from_slice(&input[ip..ip + n]);
            ip += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*input.get(ip)?);
                ip += 1;
            }
            let off = ((ctrl & 0x1f) << 8) + usize::from(*input.get(ip)?) + 1;
            ip += 1;
            len += 2;
            if out.len() + len > out_len || off > out.len() {
                return None;
            }
            let start = out.len() - off;
            for i in 0..len {
                let b = out[start + i];
                out.push(b);
            }
        }
    }
    (out.len() == out_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(data: &[u8]) {
        if let Some(c) = compress(data, data.len() + 64) {
            assert_eq!(decompress(&c, data.len()).as_deref(), Some(data));
        }
    }

    #[test]
    fn round_trips() {
        round(b"");
        round(b"a");
        round(b"abc");
        round(&[b'a'; 1000]);
        round(b"hello hello hello hello hello world world world");
        let pseudo: Vec<u8> = (0..20000u32).map(|i| (i.wrapping_mul(2654435761u32) >> 24) as u8).collect();
        round(&pseudo);
        let text: Vec<u8> = (0..5000).flat_map(|i: u32| format!("key:{i} ").into_bytes()).collect();
        round(&text);
        let c = compress(&[b'x'; 100], 96).unwrap();
        assert!(c.len() < 10);
    }

    #[test]
    fn corrupt_input_is_refused() {
        assert_eq!(decompress(&[0x20, 0x00], 10), None); // back reference before the start
        assert_eq!(decompress(&[0x05, b'a'], 6), None); // literal run past the input
        assert_eq!(decompress(&[0x00, b'a'], 2), None); // wrong length
    }
}
