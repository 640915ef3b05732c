//! A packed run of strings in one buffer (Redis's listpack, simplified): each entry is its length
//! as a varint then its bytes. Walks are linear, as listpack's; it is only used below the
//! conversion thresholds. The buffer is always exactly its entries' size (no doubling slack), as
//! listpack reallocates per insert: these are the many small collections whose bytes matter. The
//! handle is 16 bytes ([`ThinBuf`], the entry count in its word).

use super::thin::{THIN_MAX, ThinBuf};

/// Entries (the buffer) and their count (its word).
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct Lp {
    buf: ThinBuf,
}

/// Bytes of the LEB128-style varint of `n` (also the list nodes' element header, see `list`).
pub(super) fn varint_len(n: usize) -> usize {
    let mut n = n;
    let mut k = 1;
    while n >= 0x80 {
        n >>= 7;
        k += 1;
    }
    k
}

fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The entry at `pos`: (start of its bytes, end of its bytes).
#[inline]
fn entry_at(buf: &[u8], pos: usize) -> (usize, usize) {
    let mut p = pos;
    let mut v = 0usize;
    let mut shift = 0;
    loop {
        let b = buf[p];
        p += 1;
        v |= usize::from(b & 0x7f) << shift;
        if b < 0x80 {
            return (p, p + v);
        }
        shift += 7;
    }
}

/// Bytes one entry of `len` bytes takes.
pub fn entry_bytes(len: usize) -> usize {
    varint_len(len) + len
}

/// The encoded form of one entry.
fn encoded(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(varint_len(s.len()) + s.len());
    put_varint(&mut out, s.len());
    out.extend_from_slice(s);
    out
}

/// Walks the entries; also gives each entry's byte offset.
#[derive(Clone)]
pub struct LpIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> LpIter<'a> {
    /// The offset of the entry `next` returns.
    pub fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for LpIter<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let (s, e) = entry_at(self.buf, self.pos);
        self.pos = e;
        Some(&self.buf[s..e])
    }
}

impl Lp {
    pub fn new() -> Lp {
        Lp::default()
    }

    pub fn len(&self) -> usize {
        self.buf.aux() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn set_len(&mut self, n: usize) {
        self.buf.set_aux(n as u32);
    }

    /// Bytes of the buffer (entries with their length headers).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Whether `add` more bytes of entries still fit the packed form (Redis's `lpSafeToAdd`); an
    /// owner converts to its large encoding before passing it.
    pub fn fits(&self, add: usize) -> bool {
        self.bytes().saturating_add(add) <= THIN_MAX
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.buf.heap_bytes()
    }

    pub fn iter(&self) -> LpIter<'_> {
        LpIter { buf: self.buf.as_slice(), pos: 0 }
    }

    /// An iterator starting at byte offset `pos` (an offset an iterator gave).
    pub fn iter_from(&self, pos: usize) -> LpIter<'_> {
        LpIter { buf: self.buf.as_slice(), pos }
    }

    /// Append an entry.
    pub fn push_back(&mut self, s: &[u8]) {
        self.buf.edit(|v| {
            v.reserve_exact(entry_bytes(s.len()));
            put_varint(v, s.len());
            v.extend_from_slice(s);
        });
        self.set_len(self.len() + 1);
    }

    /// Append several entries with one reallocation.
    pub fn extend<'a>(&mut self, items: impl IntoIterator<Item = &'a [u8]> + Clone) {
        let add: usize = items.clone().into_iter().map(|s| entry_bytes(s.len())).sum();
        let n = self.buf.edit(|v| {
            v.reserve_exact(add);
            let mut n = 0;
            for s in items {
                put_varint(v, s.len());
                v.extend_from_slice(s);
                n += 1;
            }
            n
        });
        self.set_len(self.len() + n);
    }

    /// Prepend an entry.
    pub fn push_front(&mut self, s: &[u8]) {
        self.insert_at(0, s);
    }

    /// Insert an entry at byte offset `pos` (an entry boundary).
    pub fn insert_at(&mut self, pos: usize, s: &[u8]) {
        self.buf.splice(pos, pos, &encoded(s));
        self.set_len(self.len() + 1);
    }

    /// Offset of the `i`-th entry (`len` gives the end).
    pub fn offset_of(&self, i: usize) -> usize {
        let mut it = self.iter();
        for _ in 0..i {
            if it.next().is_none() {
                break;
            }
        }
        it.pos
    }

    /// The entry at byte offset `pos` and the offset after it.
    pub fn at(&self, pos: usize) -> (&[u8], usize) {
        let buf = self.buf.as_slice();
        let (s, e) = entry_at(buf, pos);
        (&buf[s..e], e)
    }

    /// The `i`-th entry.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.iter().nth(i)
    }

    /// Remove `n` entries starting at byte offset `pos`.
    pub fn remove_at(&mut self, pos: usize, n: usize) {
        let mut end = pos;
        for _ in 0..n {
            end = entry_at(self.buf.as_slice(), end).1;
        }
        self.buf.splice(pos, end, &[]);
        self.set_len(self.len() - n);
    }

    /// Replace the entry at byte offset `pos` with `s`.
    pub fn replace_at(&mut self, pos: usize, s: &[u8]) {
        let (_, end) = entry_at(self.buf.as_slice(), pos);
        self.buf.splice(pos, end, &encoded(s));
    }

    /// The first entry, removed.
    pub fn pop_front(&mut self) -> Option<bytes::Bytes> {
        if self.is_empty() {
            return None;
        }
        let (s, e) = entry_at(self.buf.as_slice(), 0);
        let out = bytes::Bytes::copy_from_slice(&self.buf.as_slice()[s..e]);
        self.buf.splice(0, e, &[]);
        self.set_len(self.len() - 1);
        Some(out)
    }

    /// Take all the entries out (leaves it empty).
    pub fn clear(&mut self) {
        self.buf = ThinBuf::new();
    }

    /// Offset of the first entry equal to `s`, looking only at entries `step` apart from the first
    /// (2: a hash's fields), and its index.
    pub fn find(&self, s: &[u8], step: usize) -> Option<(usize, usize)> {
        let buf = self.buf.as_slice();
        let mut pos = 0;
        let mut i = 0;
        while pos < buf.len() {
            let (a, b) = entry_at(buf, pos);
            if b - a == s.len() && &buf[a..b] == s {
                return Some((pos, i));
            }
            pos = b;
            for _ in 1..step {
                pos = entry_at(buf, pos).1;
            }
            i += 1;
        }
        None
    }
}
