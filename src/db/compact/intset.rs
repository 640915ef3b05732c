//! Sorted integers in the narrowest width that holds them all (Redis's `intset.c`): 2, 4 or 8
//! bytes per member, O(log n) lookup; inserts and removals move the tail (sets of at most
//! `set-max-intset-entries` members). Up to [`INLINE`] bytes of members live inside the value (so
//! a small set of integers is its cell alone, one allocation, as Redis's is one robj and one
//! intset); past that, one exact-size buffer ([`ThinBuf`], the width in its word), as Redis's
//! intset is one allocation of its members and no slack.

use super::thin::{THIN_MAX, ThinBuf};

/// Bytes of members held inline: what fits beside the set's tags in the 44 bytes that keep a
/// set's cell in an 80-byte malloc chunk (10 members of 32 bits, 20 of 16).
pub const INLINE: usize = 41;

/// A sorted set of integers. Widens when a member needs it, never narrows (as Redis).
#[derive(Clone, Debug)]
pub struct IntSet {
    repr: Repr,
}

/// Equal when the members and their width are (wherever they are held).
impl PartialEq for IntSet {
    fn eq(&self, other: &IntSet) -> bool {
        self.width() == other.width() && self.bytes() == other.bytes()
    }
}

impl Eq for IntSet {}

#[derive(Clone, Debug)]
enum Repr {
    /// `len` bytes of members `width` bytes wide.
    Inline { len: u8, width: u8, data: [u8; INLINE] },
    /// Past [`INLINE`] bytes (never moves back).
    Heap(ThinBuf),
}

impl Default for IntSet {
    fn default() -> Self {
        IntSet { repr: Repr::Inline { len: 0, width: 2, data: [0; INLINE] } }
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
            Repr::Inline { width, .. } => usize::from(*width),
            Repr::Heap(b) => b.aux() as usize,
        }
    }

    /// The members' bytes.
    fn bytes(&self) -> &[u8] {
        match &self.repr {
            Repr::Inline { len, data, .. } => &data[..usize::from(*len)],
            Repr::Heap(b) => b.as_slice(),
        }
    }

    /// Whether the members live inside the value (no allocation of their own).
    pub fn is_inline(&self) -> bool {
        matches!(self.repr, Repr::Inline { .. })
    }

    pub fn len(&self) -> usize {
        self.bytes().len() / self.width()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
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
        let w = self.width();
        let b = self.bytes().get(i * w..i * w + w)?;
        Some(match w {
            2 => i64::from(i16::from_ne_bytes([b[0], b[1]])),
            4 => i64::from(i32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
            _ => i64::from_ne_bytes(b.try_into().expect("8 bytes")),
        })
    }

    /// `Ok(index)` of `x`, or `Err(where it would go)`.
    fn search(&self, x: i64) -> Result<usize, usize> {
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

    /// Replace the bytes `at..end` by `with` (inline while the result fits, else on the heap).
    fn splice(&mut self, at: usize, end: usize, with: &[u8]) {
        let new_len = self.bytes().len() - (end - at) + with.len();
        match &mut self.repr {
            Repr::Inline { len, data, .. } if new_len <= INLINE => {
                data.copy_within(end..usize::from(*len), at + with.len());
                data[at..at + with.len()].copy_from_slice(with);
                *len = new_len as u8;
            }
            Repr::Heap(b) => b.splice(at, end, with),
            Repr::Inline { .. } => {
                let mut v = Vec::with_capacity(new_len);
                v.extend_from_slice(&self.bytes()[..at]);
                v.extend_from_slice(with);
                v.extend_from_slice(&self.bytes()[end..]);
                self.set_bytes(v, self.width());
            }
        }
    }

    /// Hold `v`, members `width` bytes wide (inline when they fit).
    fn set_bytes(&mut self, v: Vec<u8>, width: usize) {
        self.repr = if v.len() <= INLINE {
            let mut data = [0; INLINE];
            data[..v.len()].copy_from_slice(&v);
            Repr::Inline { len: v.len() as u8, width: width as u8, data }
        } else {
            let mut b = ThinBuf::from(v);
            b.set_aux(width as u32);
            Repr::Heap(b)
        };
    }

    /// Add `x`; whether it was new.
    pub fn insert(&mut self, x: i64) -> bool {
        if width_of(x) > self.width() {
            self.widen(width_of(x));
        }
        match self.search(x) {
            Ok(_) => false,
            Err(i) => {
                let w = self.width();
                let (bytes, n) = encode(x, w);
                // Exactly one more member: small sets pay no slack.
                self.splice(i * w, i * w, &bytes[..n]);
                true
            }
        }
    }

    /// Re-encode every member `w` bytes wide (one allocation at most).
    fn widen(&mut self, w: usize) {
        let mut v = Vec::with_capacity(self.len() * w);
        for x in self.iter() {
            let (bytes, n) = encode(x, w);
            v.extend_from_slice(&bytes[..n]);
        }
        self.set_bytes(v, w);
    }

    /// Remove `x`; whether it was there.
    pub fn remove(&mut self, x: i64) -> bool {
        if width_of(x) > self.width() {
            return false;
        }
        match self.search(x) {
            Ok(i) => {
                let w = self.width();
                self.splice(i * w, i * w + w, &[]);
                true
            }
            Err(_) => false,
        }
    }

    /// Remove and return the `i`-th smallest member.
    pub fn remove_index(&mut self, i: usize) -> Option<i64> {
        let x = self.get(i)?;
        self.remove(x);
        Some(x)
    }

    /// Members, smallest first.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(move |i| self.get(i).unwrap_or_default())
    }
}
