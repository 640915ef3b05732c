//! The compact encodings RDB files carry besides listpacks: intset (written and read), and the
//! older ziplist and zipmap blobs Redis still loads from files of earlier versions (read only).
//! Every reader validates bounds and returns None on malformed input.

use super::listpack::Item;

/// An intset blob (`intset.c`): encoding (2, 4 or 8, u32 LE: the smallest that holds every
/// value), length (u32 LE), the values sorted.
pub fn intset_blob(values: &[i64]) -> Vec<u8> {
    let (min, max) = values.iter().fold((0i64, 0i64), |(a, b), &v| (a.min(v), b.max(v)));
    let width: usize = if min >= i64::from(i16::MIN) && max <= i64::from(i16::MAX) {
        2
    } else if min >= i64::from(i32::MIN) && max <= i64::from(i32::MAX) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * values.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    for v in sorted {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

/// The values of an intset blob, checked sorted and unique.
pub fn parse_intset(b: &[u8]) -> Option<Vec<i64>> {
    let width = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?) as usize;
    let len = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?) as usize;
    if !matches!(width, 2 | 4 | 8) || b.len() != 8 + len.checked_mul(width)? || len == 0 {
        return None;
    }
    let mut out = Vec::with_capacity(len);
    for c in b[8..].chunks_exact(width) {
        let v = match width {
            2 => i64::from(i16::from_le_bytes([c[0], c[1]])),
            4 => i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            _ => i64::from_le_bytes(c.try_into().ok()?),
        };
        if out.last().is_some_and(|&p| p >= v) {
            return None;
        }
        out.push(v);
    }
    Some(out)
}

/// The elements of a ziplist (Redis <= 6.2's compact encoding).
pub fn parse_ziplist(z: &[u8]) -> Option<Vec<Item<'_>>> {
    if z.len() < 11 {
        return None;
    }
    let total = u32::from_le_bytes(z[0..4].try_into().ok()?) as usize;
    let count = u16::from_le_bytes(z[8..10].try_into().ok()?) as usize;
    if total != z.len() || z[total - 1] != 0xFF {
        return None;
    }
    let end = total - 1;
    let mut p = 10;
    let mut prev_size = 0usize;
    let mut out = Vec::new();
    while p < end {
        let start = p;
        // prevlen
        let prevlen = if z[p] < 254 {
            p += 1;
            usize::from(z[p - 1])
        } else if z[p] == 254 {
            let v = u32::from_le_bytes(z.get(p + 1..p + 5)?.try_into().ok()?) as usize;
            p += 5;
            v
        } else {
            return None;
        };
        if prevlen != prev_size {
            return None;
        }
        let b = *z.get(p)?;
        let item = match b >> 6 {
            0 => {
                let l = usize::from(b & 0x3f);
                p += 1;
                let s = z.get(p..p + l)?;
                p += l;
                Item::Str(s)
            }
            1 => {
                let l = (usize::from(b & 0x3f) << 8) | usize::from(*z.get(p + 1)?);
                p += 2;
                let s = z.get(p..p + l)?;
                p += l;
                Item::Str(s)
            }
            2 => {
                if b != 0x80 {
                    return None;
                }
                let l = u32::from_be_bytes(z.get(p + 1..p + 5)?.try_into().ok()?) as usize;
                p += 5;
                let s = z.get(p..p.checked_add(l)?)?;
                p += l;
                Item::Str(s)
            }
            _ => {
                p += 1;
                let v = match b {
                    0xC0 => {
                        let v = i16::from_le_bytes(z.get(p..p + 2)?.try_into().ok()?);
                        p += 2;
                        i64::from(v)
                    }
                    0xD0 => {
                        let v = i32::from_le_bytes(z.get(p..p + 4)?.try_into().ok()?);
                        p += 4;
                        i64::from(v)
                    }
                    0xE0 => {
                        let v = i64::from_le_bytes(z.get(p..p + 8)?.try_into().ok()?);
                        p += 8;
                        v
                    }
                    0xF0 => {
                        let s = z.get(p..p + 3)?;
                        p += 3;
                        i64::from(i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8)
                    }
                    0xFE => {
                        let v = *z.get(p)? as i8;
                        p += 1;
                        i64::from(v)
                    }
                    0xF1..=0xFD => i64::from(b & 0x0f) - 1,
                    _ => return None,
                };
                Item::Int(v)
            }
        };
        if p > end {
            return None;
        }
        prev_size = p - start;
        out.push(item);
    }
    if p != end || (count != 65535 && count != out.len()) {
        return None;
    }
    Some(out)
}

/// The field, value pairs of a zipmap (Redis <= 2.6's small hash encoding).
pub fn parse_zipmap(z: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let mut p = 1;
    let mut out = Vec::new();
    let len_at = |p: &mut usize| -> Option<usize> {
        let b = *z.get(*p)?;
        if b < 254 {
            *p += 1;
            Some(usize::from(b))
        } else if b == 254 {
            let v = u32::from_le_bytes(z.get(*p + 1..*p + 5)?.try_into().ok()?) as usize;
            *p += 5;
            Some(v)
        } else {
            None
        }
    };
    loop {
        if *z.get(p)? == 0xFF {
            if p + 1 != z.len() {
                return None;
            }
            return Some(out);
        }
        let kl = len_at(&mut p)?;
        let k = z.get(p..p.checked_add(kl)?)?;
        p += kl;
        let vl = len_at(&mut p)?;
        let free = usize::from(*z.get(p)?);
        p += 1;
        let v = z.get(p..p.checked_add(vl)?)?;
        p += vl + free;
        out.push((k, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intset_round_trip_and_widths() {
        let b = intset_blob(&[3, 1, 2]);
        assert_eq!(&b[..8], &[2, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(parse_intset(&b).unwrap(), vec![1, 2, 3]);
        let b = intset_blob(&[1, 100000]);
        assert_eq!(b[0], 4);
        assert_eq!(parse_intset(&b).unwrap(), vec![1, 100000]);
        let b = intset_blob(&[i64::MIN, 5]);
        assert_eq!(b[0], 8);
        assert_eq!(parse_intset(&b).unwrap(), vec![i64::MIN, 5]);
        assert!(parse_intset(&b[..b.len() - 1]).is_none());
        let mut unsorted = intset_blob(&[1, 2]);
        unsorted.swap(8, 10);
        assert!(parse_intset(&unsorted).is_none());
    }

    #[test]
    fn ziplist_of_each_encoding() {
        // A ziplist of "a", 5 (immediate), 300 (int16), "bb" as Redis 6 wrote it.
        let mut z = vec![0u8; 10];
        let entries: Vec<Vec<u8>> = vec![vec![0x01, b'a'], vec![0xF6], vec![0xC0, 0x2c, 0x01], vec![0x02, b'b', b'b']];
        let mut prev = 0usize;
        for e in &entries {
            z.push(prev as u8);
            z.extend_from_slice(e);
            prev = e.len() + 1;
        }
        z.push(0xFF);
        let n = z.len() as u32;
        z[0..4].copy_from_slice(&n.to_le_bytes());
        z[8..10].copy_from_slice(&4u16.to_le_bytes());
        let items = parse_ziplist(&z).unwrap();
        assert_eq!(items, vec![Item::Str(b"a"), Item::Int(5), Item::Int(300), Item::Str(b"bb")]);
        for cut in 0..z.len() {
            assert!(parse_ziplist(&z[..cut]).is_none());
        }
    }

    #[test]
    fn zipmap_pairs() {
        let z = [2u8, 1, b'a', 2, 0, b'x', b'y', 1, b'b', 1, 1, b'z', 0, 0xFF];
        assert_eq!(parse_zipmap(&z).unwrap(), vec![(&b"a"[..], &b"xy"[..]), (&b"b"[..], &b"z"[..])]);
        assert!(parse_zipmap(&z[..z.len() - 1]).is_none());
    }
}
