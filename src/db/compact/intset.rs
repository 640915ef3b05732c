//! Sorted integers in the narrowest width that holds them all (Redis's `intset.c`): 2, 4 or 8
//! bytes per member, O(log n) lookup; inserts and removals move the tail (sets of at most
//! `set-max-intset-entries` members). The members are one exact-size buffer ([`ThinBuf`], the
//! width in its word), as Redis's intset is one allocation of its members and no slack.

use super::thin::{THIN_MAX, ThinBuf};

/// A sorted set of integers. Widens when a member needs it, never narrows (as Redis).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntSet {
    buf: ThinBuf,
}

impl Default for IntSet {
    fn default() -> Self {
        let mut buf = ThinBuf::new();
        buf.set_aux(2);
        IntSet { buf }
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
        self.buf.aux() as usize
    }

    pub fn len(&self) -> usize {
        self.buf.len() / self.width()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Whether one more member of any width still fits the buffer; the set converts before that.
    pub fn has_room(&self) -> bool {
        (self.len() + 1) * 8 <= THIN_MAX
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.buf.heap_bytes()
    }

    /// The `i`-th smallest member.
    pub fn get(&self, i: usize) -> Option<i64> {
        let w = self.width();
        let b = self.buf.as_slice().get(i * w..i * w + w)?;
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
                self.buf.splice(i * w, i * w, &bytes[..n]);
                true
            }
        }
    }

    /// Re-encode every member `w` bytes wide (one allocation).
    fn widen(&mut self, w: usize) {
        let mut v = Vec::with_capacity(self.len() * w);
        for x in self.iter() {
            let (bytes, n) = encode(x, w);
            v.extend_from_slice(&bytes[..n]);
        }
        self.buf = ThinBuf::from(v);
        self.buf.set_aux(w as u32);
    }

    /// Remove `x`; whether it was there.
    pub fn remove(&mut self, x: i64) -> bool {
        if width_of(x) > self.width() {
            return false;
        }
        match self.search(x) {
            Ok(i) => {
                let w = self.width();
                self.buf.splice(i * w, i * w + w, &[]);
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
