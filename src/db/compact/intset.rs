//! Sorted integers in the narrowest width that holds them all (Redis's `intset.c`): 2, 4 or 8
//! bytes per member, O(log n) lookup; inserts and removals move the tail (sets of at most
//! `set-max-intset-entries` members). Up to [`INLINE`] bytes of members live inside the value (so
//! a small set of integers is its cell alone, one allocation, as Redis's is one robj and one
//! intset); past that, one exact-size buffer ([`ThinBuf`], the width in its word), as Redis's
//! intset is one allocation of its members and no slack.

use super::thin::{THIN_MAX, ThinBuf};

/// Bytes of members held inline: what fits beside the set's tags in the 28 bytes that keep a
/// set's cell in a 64-byte malloc chunk. Inline members are delta-coded (the first as a zigzag
/// varint, then each gap to the next as a varint), so 10 members 1 apart take 12 bytes whatever
/// their magnitude; at most [`INLINE`] members.
pub const INLINE: usize = 25;

/// Bytes per member, as Redis's intset encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Width {
    W2 = 2,
    W4 = 4,
    W8 = 8,
}

impl Width {
    fn of(w: usize) -> Width {
        match w {
            2 => Width::W2,
            4 => Width::W4,
            _ => Width::W8,
        }
    }
}

/// A sorted set of integers. Widens when a member needs it, never narrows (as Redis).
#[derive(Clone, Debug)]
pub struct IntSet {
    repr: Repr,
}

/// Equal when the members and their width are (wherever they are held).
impl PartialEq for IntSet {
    fn eq(&self, other: &IntSet) -> bool {
        self.width() == other.width() && self.iter().eq(other.iter())
    }
}

impl Eq for IntSet {}

#[derive(Clone, Debug)]
enum Repr {
    /// `count` members delta-coded in `data[..len]`; `width` is the encoding Redis would have
    /// (and the heap form takes).
    Inline { width: Width, count: u8, len: u8, data: [u8; INLINE] },
    /// Past [`INLINE`] bytes or members (never moves back): fixed-width members, the width in the
    /// buffer's word.
    Heap(ThinBuf),
}

impl Default for IntSet {
    fn default() -> Self {
        IntSet { repr: Repr::Inline { width: Width::W2, count: 0, len: 0, data: [0; INLINE] } }
    }
}

fn put_varint(out: &mut [u8], at: &mut usize, mut v: u64) -> Option<()> {
    loop {
        let b = out.get_mut(*at)?;
        *at += 1;
        if v < 0x80 {
            *b = v as u8;
            return Some(());
        }
        *b = v as u8 | 0x80;
        v >>= 7;
    }
}

fn get_varint(data: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = data.get(*at) {
        *at += 1;
        v |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    v
}

/// Delta-code ascending `members` into `out`: the bytes used, None when they do not fit.
fn encode_inline(members: &[i64], out: &mut [u8; INLINE]) -> Option<usize> {
    let mut at = 0;
    let mut prev = 0i64;
    for (i, &x) in members.iter().enumerate() {
        let v = if i == 0 { ((x << 1) ^ (x >> 63)) as u64 } else { (x as u64).wrapping_sub(prev as u64) };
        put_varint(out, &mut at, v)?;
        prev = x;
    }
    Some(at)
}

/// Walks delta-coded members.
#[derive(Clone)]
struct InlineIter<'a> {
    data: &'a [u8],
    at: usize,
    prev: i64,
    left: usize,
    first: bool,
}

impl Iterator for InlineIter<'_> {
    type Item = i64;
    fn next(&mut self) -> Option<i64> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let v = get_varint(self.data, &mut self.at);
        self.prev = if self.first {
            self.first = false;
            ((v >> 1) as i64) ^ -((v & 1) as i64)
        } else {
            (self.prev as u64).wrapping_add(v) as i64
        };
        Some(self.prev)
    }
}

/// Members, smallest first.
pub enum IntSetIter<'a> {
    Inline(InlineIterPub<'a>),
    Heap(&'a IntSet, usize),
}

/// The inline walk (opaque).
pub struct InlineIterPub<'a>(InlineIter<'a>);

impl Iterator for IntSetIter<'_> {
    type Item = i64;
    fn next(&mut self) -> Option<i64> {
        match self {
            IntSetIter::Inline(it) => it.0.next(),
            IntSetIter::Heap(s, i) => {
                let x = s.get(*i)?;
                *i += 1;
                Some(x)
            }
        }
    }
}

/// The narrowest width (bytes) that holds `x`.
fn width_of(x: i64) -> usize {
    if i16::try_from(x).is_ok() {
        2
    } else if i32::try_from(x).is_ok() {
        4
    } else {
        8
    }
}

/// `x` in `w` bytes (native order; `x` fits).
fn encode(x: i64, w: usize) -> ([u8; 8], usize) {
    let mut out = [0u8; 8];
    match w {
        2 => out[..2].copy_from_slice(&(x as i16).to_ne_bytes()),
        4 => out[..4].copy_from_slice(&(x as i32).to_ne_bytes()),
        _ => out.copy_from_slice(&x.to_ne_bytes()),
    }
    (out, w)
}

impl IntSet {
    /// Bytes per member: 2, 4 or 8.
    pub fn width(&self) -> usize {
        match &self.repr {
            Repr::Inline { width, .. } => *width as usize,
            Repr::Heap(b) => b.aux() as usize,
        }
    }

    /// Whether the members live inside the value (no allocation of their own).
    pub fn is_inline(&self) -> bool {
        matches!(self.repr, Repr::Inline { .. })
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Inline { count, .. } => usize::from(*count),
            Repr::Heap(b) => b.len() / b.aux() as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether one more member of any width still fits the buffer; the set converts before that.
    pub fn has_room(&self) -> bool {
        (self.len() + 1) * 8 <= THIN_MAX
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Inline { .. } => 0,
            Repr::Heap(b) => b.heap_bytes(),
        }
    }

    /// The `i`-th smallest member.
    pub fn get(&self, i: usize) -> Option<i64> {
        match &self.repr {
            Repr::Inline { .. } => self.iter().nth(i),
            Repr::Heap(buf) => {
                let w = buf.aux() as usize;
                let b = buf.as_slice().get(i * w..i * w + w)?;
                Some(match w {
                    2 => i64::from(i16::from_ne_bytes([b[0], b[1]])),
                    4 => i64::from(i32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
                    _ => i64::from_ne_bytes(b.try_into().expect("8 bytes")),
                })
            }
        }
    }

    /// `Ok(index)` of `x`, or `Err(where it would go)`.
    fn search(&self, x: i64) -> Result<usize, usize> {
        if self.is_inline() {
            let mut i = 0;
            for m in self.iter() {
                match m.cmp(&x) {
                    std::cmp::Ordering::Less => i += 1,
                    std::cmp::Ordering::Equal => return Ok(i),
                    std::cmp::Ordering::Greater => break,
                }
            }
            return Err(i);
        }
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid).unwrap_or_default().cmp(&x) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    pub fn contains(&self, x: i64) -> bool {
        width_of(x) <= self.width() && self.search(x).is_ok()
    }

    /// Hold `members` (ascending) `width` bytes wide: inline when they fit, else on the heap.
    fn store(&mut self, members: &[i64], width: usize) {
        let mut data = [0u8; INLINE];
        if members.len() <= INLINE
            && let Some(len) = encode_inline(members, &mut data)
        {
            self.repr = Repr::Inline { width: Width::of(width), count: members.len() as u8, len: len as u8, data };
            return;
        }
        let mut v = Vec::with_capacity(members.len() * width);
        for &x in members {
            let (bytes, n) = encode(x, width);
            v.extend_from_slice(&bytes[..n]);
        }
        let mut b = ThinBuf::from(v);
        b.set_aux(width as u32);
        self.repr = Repr::Heap(b);
    }

    /// The inline members, decoded (None on the heap).
    fn inline_members(&self) -> Option<([i64; INLINE], usize)> {
        if !self.is_inline() {
            return None;
        }
        let mut out = [0i64; INLINE];
        let mut n = 0;
        for x in self.iter() {
            out[n] = x;
            n += 1;
        }
        Some((out, n))
    }

    /// Add `x`; whether it was new.
    pub fn insert(&mut self, x: i64) -> bool {
        let width = self.width().max(width_of(x));
        if let Some((mut m, n)) = self.inline_members() {
            let i = match m[..n].binary_search(&x) {
                Ok(_) => return false,
                Err(i) => i,
            };
            if n < INLINE {
                m.copy_within(i..n, i + 1);
                m[i] = x;
                self.store(&m[..n + 1], width);
            } else {
                let mut v = m[..n].to_vec();
                v.insert(i, x);
                self.store(&v, width);
            }
            return true;
        }
        if width > self.width() {
            // Widening: `x` is outside every member's range, so new.
            let mut v: Vec<i64> = self.iter().collect();
            let i = v.partition_point(|&m| m < x);
            v.insert(i, x);
            self.store(&v, width);
            return true;
        }
        match self.search(x) {
            Ok(_) => false,
            Err(i) => {
                let w = self.width();
                let (bytes, n) = encode(x, w);
                if let Repr::Heap(b) = &mut self.repr {
                    // Exactly one more member: no slack.
                    b.splice(i * w, i * w, &bytes[..n]);
                }
                true
            }
        }
    }

    /// Remove `x`; whether it was there.
    pub fn remove(&mut self, x: i64) -> bool {
        if width_of(x) > self.width() {
            return false;
        }
        let Ok(i) = self.search(x) else { return false };
        if let Some((mut m, n)) = self.inline_members() {
            m.copy_within(i + 1..n, i);
            self.store(&m[..n - 1], self.width());
        } else if let Repr::Heap(b) = &mut self.repr {
            let w = b.aux() as usize;
            b.splice(i * w, i * w + w, &[]);
        }
        true
    }

    /// Remove and return the `i`-th smallest member.
    pub fn remove_index(&mut self, i: usize) -> Option<i64> {
        let x = self.get(i)?;
        self.remove(x);
        Some(x)
    }

    /// Members, smallest first.
    pub fn iter(&self) -> IntSetIter<'_> {
        match &self.repr {
            Repr::Inline { count, len, data, .. } => IntSetIter::Inline(InlineIterPub(InlineIter {
                data: &data[..usize::from(*len)],
                at: 0,
                prev: 0,
                left: usize::from(*count),
                first: true,
            })),
            Repr::Heap(_) => IntSetIter::Heap(self, 0),
        }
    }
}
