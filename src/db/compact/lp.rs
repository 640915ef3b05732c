//! A packed run of strings in one buffer (Redis's listpack, simplified): each entry is its length
//! as a varint then its bytes. Walks are linear, as listpack's; it is only used below the
//! conversion thresholds. The buffer grows by exactly what an entry needs (no doubling slack), as
//! listpack reallocates per insert: these are the many small collections whose bytes matter.

/// Entries and their count.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct Lp {
    buf: Vec<u8>,
    len: usize,
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
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the buffer (entries with their length headers).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }

    pub fn iter(&self) -> LpIter<'_> {
        LpIter { buf: &self.buf, pos: 0 }
    }

    /// An iterator starting at byte offset `pos` (an offset an iterator gave).
    pub fn iter_from(&self, pos: usize) -> LpIter<'_> {
        LpIter { buf: &self.buf, pos }
    }

    /// Append an entry.
    pub fn push_back(&mut self, s: &[u8]) {
        self.buf.reserve_exact(varint_len(s.len()) + s.len());
        put_varint(&mut self.buf, s.len());
        self.buf.extend_from_slice(s);
        self.len += 1;
    }

    /// Prepend an entry.
    pub fn push_front(&mut self, s: &[u8]) {
        self.insert_at(0, s);
    }

    /// Insert an entry at byte offset `pos` (an entry boundary).
    pub fn insert_at(&mut self, pos: usize, s: &[u8]) {
        let e = encoded(s);
        self.buf.reserve_exact(e.len());
        self.buf.splice(pos..pos, e);
        self.len += 1;
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
        let (s, e) = entry_at(&self.buf, pos);
        (&self.buf[s..e], e)
    }

    /// The `i`-th entry.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.iter().nth(i)
    }

    /// Remove `n` entries starting at byte offset `pos`.
    pub fn remove_at(&mut self, pos: usize, n: usize) {
        let mut end = pos;
        for _ in 0..n {
            end = entry_at(&self.buf, end).1;
        }
        self.buf.drain(pos..end);
        self.len -= n;
        self.shrink();
    }

    /// Replace the entry at byte offset `pos` with `s`.
    pub fn replace_at(&mut self, pos: usize, s: &[u8]) {
        let (_, end) = entry_at(&self.buf, pos);
        let e = encoded(s);
        if e.len() > end - pos {
            self.buf.reserve_exact(e.len() - (end - pos));
        }
        self.buf.splice(pos..end, e);
        self.shrink();
    }

    /// The first entry, removed.
    pub fn pop_front(&mut self) -> Option<bytes::Bytes> {
        if self.len == 0 {
            return None;
        }
        let (s, e) = entry_at(&self.buf, 0);
        let out = bytes::Bytes::copy_from_slice(&self.buf[s..e]);
        self.buf.drain(..e);
        self.len -= 1;
        Some(out)
    }

    /// Drop spare capacity once it is large (deletions), keeping small slack.
    fn shrink(&mut self) {
        if self.buf.capacity() > 64 && self.buf.capacity() > self.buf.len() * 2 {
            self.buf.shrink_to_fit();
        }
    }

    /// Take all the entries out (leaves it empty).
    pub fn clear(&mut self) {
        self.buf = Vec::new();
        self.len = 0;
    }

    /// Offset of the first entry equal to `s`, looking only at entries `step` apart from the first
    /// (2: a hash's fields), and its index.
    pub fn find(&self, s: &[u8], step: usize) -> Option<(usize, usize)> {
        let buf = &self.buf[..];
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
