//! The list value (Redis's `quicklist.c`, no commands): a deque of nodes, each a packed buffer of
//! elements, at most `list-max-listpack-size` per node (negative: 4 KiB << (-n - 1) bytes of
//! entries, default -2 = 8 KiB; positive: that many elements). Instead of an allocation per
//! element, a list costs its nodes.
//!
//! # Node format
//! Each element is `varint len`, its bytes, then `backlen`: the length of the two before it as a
//! varint written backwards (the byte nearest the element's end holds the low 7 bits, a set high
//! bit says another byte lies to its left), as listpack's, so a node is walked from either end.
//! A node's entries live at the end of its buffer after a gap (`start`): LPUSH writes into the gap
//! and LPOP widens it, RPUSH appends and RPOP truncates, so all four are O(1) amortised without
//! moving the node's other entries.

use bytes::{Bytes, BytesMut};

use super::lp::varint_len;
use super::nodes::Nodes;

/// One node: entries in `buf[start..]`.
#[derive(Clone, Default, Debug)]
struct Node {
    buf: Vec<u8>,
    start: usize,
    count: usize,
}

/// Bytes an element of `len` bytes takes in a node.
fn entry_size(len: usize) -> usize {
    let h = varint_len(len) + len;
    h + varint_len(h)
}

/// Encode an element into `out` (which has room for exactly [`entry_size`] bytes).
fn encode_into(out: &mut [u8], s: &[u8]) {
    let mut p = 0;
    let mut v = s.len();
    while v >= 0x80 {
        out[p] = v as u8 | 0x80;
        v >>= 7;
        p += 1;
    }
    out[p] = v as u8;
    p += 1;
    out[p..p + s.len()].copy_from_slice(s);
    p += s.len();
    // backlen: the groups of `h`, most significant first; all but the first carry 0x80.
    let h = p;
    let k = varint_len(h);
    for i in 0..k {
        let group = (h >> (7 * (k - 1 - i))) & 0x7f;
        out[p + i] = group as u8 | if i == 0 { 0 } else { 0x80 };
    }
}

/// The element starting at `pos`: (its bytes' range, where the next entry starts).
#[inline]
/// A RESP header: `kind` (`*`, `$`), the length, CRLF.
fn put_resp_len(out: &mut BytesMut, kind: u8, n: usize) {
    out.extend_from_slice(&[kind]);
    out.extend_from_slice(crate::util::i64_text(n as i64, &mut [0u8; 20]));
    out.extend_from_slice(b"\r\n");
}

fn forward(buf: &[u8], pos: usize) -> (usize, usize, usize) {
    let b0 = buf[pos];
    if b0 < 0x80 {
        // Elements under 126 bytes: one header byte and one backlen byte.
        let end = pos + 1 + usize::from(b0);
        let h = end - pos;
        return (pos + 1, end, end + if h < 0x80 { 1 } else { 2 });
    }
    let mut p = pos;
    let mut v = 0usize;
    let mut shift = 0;
    loop {
        let b = buf[p];
        p += 1;
        v |= usize::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    let end = p + v;
    (p, end, end + varint_len(end - pos))
}

/// The element ending at `end` (exclusive): where its entry starts.
#[inline]
fn backward(buf: &[u8], end: usize) -> usize {
    let last = buf[end - 1];
    if last < 0x80 {
        return end - 1 - usize::from(last);
    }
    let mut p = end;
    let mut h = 0usize;
    let mut shift = 0;
    loop {
        p -= 1;
        let b = buf[p];
        h |= usize::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    p - h
}

impl Node {
    fn bytes(&self) -> usize {
        self.buf.len() - self.start
    }

    fn push_back(&mut self, s: &[u8]) {
        let n = entry_size(s.len());
        if self.buf.capacity() - self.buf.len() < n {
            // Grow by half again (amortised O(1)) but no more than the node may hold.
            let extra = n.max(self.buf.len() / 2).min(n.max(16 * 1024));
            self.buf.reserve_exact(extra);
        }
        let at = self.buf.len();
        self.buf.resize(at + n, 0);
        encode_into(&mut self.buf[at..], s);
        self.count += 1;
    }

    fn push_front(&mut self, s: &[u8]) {
        let n = entry_size(s.len());
        if self.start < n {
            // A new buffer with a gap in front proportional to what the node holds.
            let gap = n.max(self.bytes() / 2).max(32).min(n.max(16 * 1024));
            let mut buf = Vec::with_capacity(gap + self.bytes());
            buf.resize(gap, 0);
            buf.extend_from_slice(&self.buf[self.start..]);
            self.buf = buf;
            self.start = gap;
        }
        self.start -= n;
        encode_into(&mut self.buf[self.start..self.start + n], s);
        self.count += 1;
    }

    fn front(&self) -> &[u8] {
        let (a, b, _) = forward(&self.buf, self.start);
        &self.buf[a..b]
    }

    fn back(&self) -> &[u8] {
        let (a, b, _) = forward(&self.buf, backward(&self.buf, self.buf.len()));
        &self.buf[a..b]
    }

    fn pop_front(&mut self) -> Bytes {
        let (a, b, next) = forward(&self.buf, self.start);
        let out = Bytes::copy_from_slice(&self.buf[a..b]);
        self.start = next;
        self.count -= 1;
        out
    }

    fn pop_back(&mut self) -> Bytes {
        let pos = backward(&self.buf, self.buf.len());
        let (a, b, _) = forward(&self.buf, pos);
        let out = Bytes::copy_from_slice(&self.buf[a..b]);
        self.buf.truncate(pos);
        self.count -= 1;
        out
    }

    /// Offset of the `i`-th entry.
    fn offset_of(&self, i: usize) -> usize {
        if i <= self.count / 2 {
            let mut p = self.start;
            for _ in 0..i {
                p = forward(&self.buf, p).2;
            }
            p
        } else {
            let mut p = self.buf.len();
            for _ in i..self.count {
                p = backward(&self.buf, p);
            }
            p
        }
    }

    /// Replace the entries in `range` (byte offsets) by the encoded `elems`.
    fn splice(&mut self, from: usize, to: usize, elems: &[&[u8]]) {
        let mut enc = vec![0u8; elems.iter().map(|e| entry_size(e.len())).sum()];
        let mut p = 0;
        for e in elems {
            let n = entry_size(e.len());
            encode_into(&mut enc[p..p + n], e);
            p += n;
        }
        self.buf.splice(from..to, enc);
    }

    /// The node's entries as a fresh node with no gap and no spare room.
    fn compacted(&self) -> Node {
        Node { buf: self.buf[self.start..].to_vec(), start: 0, count: self.count }
    }
}

/// A list.
#[derive(Clone, Debug)]
pub struct List {
    nodes: Nodes<Node>,
    /// The element count in the low 48 bits ([`LEN_MASK`]); in the top 16, the
    /// `list-max-listpack-size` the list was created with (as a quicklist keeps its fill), as an
    /// i16 (Redis clamps the fill to at most 32767; any fill of 4096 or more, or -5 or less, already
    /// acts alike). One word, so that a small list's cell is one malloc class smaller.
    meta: u64,
}

/// The element count's bits of `List::meta`.
const LEN_MASK: u64 = (1 << 48) - 1;

impl Default for List {
    fn default() -> Self {
        List::new(-2)
    }
}

/// Forward or backward walk over a list's elements.
#[derive(Clone)]
pub struct ListIter<'a> {
    list: &'a List,
    node: usize,
    pos: usize,
    left: usize,
    rev: bool,
}

impl<'a> Iterator for ListIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if self.rev {
            loop {
                let n = &self.list.nodes[self.node];
                if self.pos > n.start {
                    let p = backward(&n.buf, self.pos);
                    let (a, b, _) = forward(&n.buf, p);
                    self.pos = p;
                    return Some(&n.buf[a..b]);
                }
                self.node -= 1;
                self.pos = self.list.nodes[self.node].buf.len();
            }
        }
        loop {
            let n = &self.list.nodes[self.node];
            if self.pos < n.buf.len() {
                let (a, b, next) = forward(&n.buf, self.pos);
                self.pos = next;
                return Some(&n.buf[a..b]);
            }
            self.node += 1;
            self.pos = self.list.nodes[self.node].start;
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl List {
    /// An empty list whose nodes follow `fill` (`list-max-listpack-size`).
    pub fn new(fill: i64) -> List {
        let fill = fill.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16;
        List { nodes: Nodes::default(), meta: u64::from(fill as u16) << 48 }
    }

    /// A list of `items`, in order.
    pub fn from_items<I: IntoIterator<Item = T>, T: AsRef<[u8]>>(items: I, fill: i64) -> List {
        let mut l = List::new(fill);
        for i in items {
            l.push_back(i);
        }
        l.shrink();
        l
    }

    pub fn len(&self) -> usize {
        (self.meta & LEN_MASK) as usize
    }

    /// The fill the list was created with.
    fn fill(&self) -> i32 {
        i32::from((self.meta >> 48) as u16 as i16)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Nodes held.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>() + self.nodes.iter().map(|n| n.buf.capacity()).sum::<usize>()
    }

    /// Whether a node holding `count` entries in `bytes` bytes takes one more of `add` bytes
    /// (`_quicklistNodeAllowInsert`; an empty node takes any element).
    fn allows(&self, n: &Node, add: usize) -> bool {
        if n.count == 0 {
            return true;
        }
        if self.fill() >= 0 {
            // Positive fill counts elements; Redis also keeps such nodes under 8 KiB.
            n.count < (self.fill().max(1) as usize) && n.bytes() + add <= 8192
        } else {
            let level = (-(self.fill() as i64) - 1).min(4) as u32;
            n.bytes() + add <= 4096usize << level
        }
    }

    /// The buffer size of a node started after a full one: the byte limit, or (a limit by count)
    /// that many entries like `add`, at most 8 KiB; at least `add`.
    fn node_room(&self, add: usize) -> usize {
        let room = if self.fill() >= 0 {
            (self.fill().max(1) as usize).saturating_mul(add).min(8192)
        } else {
            4096usize << (-(self.fill() as i64) - 1).min(4)
        };
        room.max(add)
    }

    pub fn push_back(&mut self, s: impl AsRef<[u8]>) {
        let s = s.as_ref();
        let add = entry_size(s.len());
        if !self.nodes.back().is_some_and(|n| self.allows(n, add)) {
            // The first node grows with its list (small lists stay exact); once a list fills a node,
            // its next ones are allocated whole: no regrowth, no slack but the last entry's.
            let node = match self.nodes.back_mut() {
                Some(full) => {
                    if full.buf.capacity() - full.buf.len() > full.bytes() / 8 {
                        full.buf.shrink_to_fit();
                    }
                    Node { buf: Vec::with_capacity(self.node_room(add)), start: 0, count: 0 }
                }
                None => Node::default(),
            };
            self.nodes.push_back(node);
        }
        if let Some(n) = self.nodes.back_mut() {
            n.push_back(s);
        }
        self.meta += 1;
    }

    pub fn push_front(&mut self, s: impl AsRef<[u8]>) {
        let s = s.as_ref();
        let add = entry_size(s.len());
        if !self.nodes.front().is_some_and(|n| self.allows(n, add)) {
            let node = match self.nodes.front_mut() {
                Some(full) => {
                    if full.start > full.bytes() / 8 {
                        *full = full.compacted();
                    }
                    // A whole node of gap: LPUSHes fill it from its end.
                    let room = self.node_room(add);
                    Node { buf: vec![0; room], start: room, count: 0 }
                }
                None => Node::default(),
            };
            self.nodes.push_front(node);
        }
        if let Some(n) = self.nodes.front_mut() {
            n.push_front(s);
        }
        self.meta += 1;
    }

    pub fn pop_front(&mut self) -> Option<Bytes> {
        let n = self.nodes.front_mut()?;
        let v = n.pop_front();
        if n.count == 0 {
            self.nodes.pop_front();
        }
        self.meta -= 1;
        Some(v)
    }

    pub fn pop_back(&mut self) -> Option<Bytes> {
        let n = self.nodes.back_mut()?;
        let v = n.pop_back();
        if n.count == 0 {
            self.nodes.pop_back();
        }
        self.meta -= 1;
        Some(v)
    }

    pub fn front(&self) -> Option<&[u8]> {
        self.nodes.front().map(Node::front)
    }

    pub fn back(&self) -> Option<&[u8]> {
        self.nodes.back().map(Node::back)
    }

    /// Drop spare room after a bulk build (a small list ends in one exact buffer).
    pub fn shrink(&mut self) {
        if self.nodes.len() == 1 {
            let n = &mut self.nodes[0];
            if n.start > 0 || n.buf.capacity() > n.buf.len() + n.buf.len() / 4 {
                *n = n.compacted();
            }
            self.nodes.shrink_to_fit();
        }
    }

    /// The node holding element `i` and `i`'s index within it.
    fn locate(&self, i: usize) -> Option<(usize, usize)> {
        if i >= self.len() {
            return None;
        }
        if i < self.len() / 2 {
            let mut i = i;
            for (k, n) in self.nodes.iter().enumerate() {
                if i < n.count {
                    return Some((k, i));
                }
                i -= n.count;
            }
        } else {
            let mut from_end = self.len() - 1 - i;
            for (k, n) in self.nodes.iter().enumerate().rev() {
                if from_end < n.count {
                    return Some((k, n.count - 1 - from_end));
                }
                from_end -= n.count;
            }
        }
        None
    }

    /// Element `i` (from the nearer end of the list and of its node).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let (k, j) = self.locate(i)?;
        let n = &self.nodes[k];
        let (a, b, _) = forward(&n.buf, n.offset_of(j));
        Some(&n.buf[a..b])
    }

    /// Elements from the head.
    pub fn iter(&self) -> ListIter<'_> {
        ListIter { list: self, node: 0, pos: self.nodes.front().map_or(0, |n| n.start), left: self.len(), rev: false }
    }

    /// Elements from the tail.
    pub fn iter_rev(&self) -> ListIter<'_> {
        let last = self.nodes.len().saturating_sub(1);
        ListIter {
            list: self,
            node: last,
            pos: self.nodes.back().map_or(0, |n| n.buf.len()),
            left: self.len(),
            rev: true,
        }
    }

    /// Elements `from..=to` (in range) from the head.
    pub fn range(&self, from: usize, to: usize) -> ListIter<'_> {
        let Some((k, j)) = self.locate(from) else { return ListIter { left: 0, ..self.iter() } };
        let n = &self.nodes[k];
        ListIter { list: self, node: k, pos: n.offset_of(j), left: to.min(self.len() - 1) + 1 - from, rev: false }
    }

    /// Elements `from..=to` as owned bytes sharing one buffer (LRANGE: one allocation, not one per
    /// element), each passed through `f`.
    pub fn range_map<R>(&self, from: usize, to: usize, mut f: impl FnMut(Bytes) -> R) -> Vec<R> {
        let Some((mut k, j)) = self.locate(from) else { return Vec::new() };
        let want = to.min(self.len() - 1) + 1 - from;
        // One buffer as large as the nodes the range touches; each element is copied once.
        let mut room = self.nodes[k].bytes();
        let mut seen = self.nodes[k].count - j;
        for n in self.nodes.iter().skip(k + 1) {
            if seen >= want {
                break;
            }
            room += n.bytes();
            seen += n.count;
        }
        let mut buf = BytesMut::with_capacity(room);
        let mut lens: Vec<usize> = Vec::with_capacity(want);
        let mut node = &self.nodes[k];
        let mut pos = node.offset_of(j);
        while lens.len() < want {
            if pos >= node.buf.len() {
                k += 1;
                node = &self.nodes[k];
                pos = node.start;
            }
            let (a, b, next) = forward(&node.buf, pos);
            buf.extend_from_slice(&node.buf[a..b]);
            lens.push(b - a);
            pos = next;
        }
        let buf = buf.freeze();
        let mut at = 0;
        lens.iter()
            .map(|&n| {
                at += n;
                f(buf.slice(at - n..at))
            })
            .collect()
    }

    /// Elements `from..=to` (in range) as LRANGE replies them, already encoded (see
    /// `Frame::Encoded`): `*n` and one bulk string per element, in one buffer (no allocation and
    /// no frame per element; the same bytes under RESP2 and RESP3).
    pub fn range_encoded(&self, from: usize, to: usize) -> Bytes {
        let Some((mut k, j)) = self.locate(from) else { return Bytes::from_static(b"*0\r\n") };
        let want = to.min(self.len() - 1) + 1 - from;
        let mut room = self.nodes[k].bytes();
        let mut seen = self.nodes[k].count - j;
        for n in self.nodes.iter().skip(k + 1) {
            if seen >= want {
                break;
            }
            room += n.bytes();
            seen += n.count;
        }
        // Each element's `$len\r\n` and `\r\n`: 8 bytes for most (shorter than 1000 bytes).
        let mut out = BytesMut::with_capacity(room + want * 8 + 24);
        put_resp_len(&mut out, b'*', want);
        let mut node = &self.nodes[k];
        let mut pos = node.offset_of(j);
        for _ in 0..want {
            if pos >= node.buf.len() {
                k += 1;
                node = &self.nodes[k];
                pos = node.start;
            }
            let (a, b, next) = forward(&node.buf, pos);
            put_resp_len(&mut out, b'$', b - a);
            out.extend_from_slice(&node.buf[a..b]);
            out.extend_from_slice(b"\r\n");
            pos = next;
        }
        out.freeze()
    }

    /// Elements `from..=to` as owned bytes sharing one buffer.
    pub fn range_bytes(&self, from: usize, to: usize) -> Vec<Bytes> {
        self.range_map(from, to, |b| b)
    }

    /// Replace element `i` (LSET); false when out of range.
    pub fn set(&mut self, i: usize, s: &[u8]) -> bool {
        let Some((k, j)) = self.locate(i) else { return false };
        let n = &mut self.nodes[k];
        let from = n.offset_of(j);
        let to = forward(&n.buf, from).2;
        n.splice(from, to, &[s]);
        self.split_if_oversized(k);
        true
    }

    /// Insert `s` so that it becomes element `i` (`i == len` appends).
    pub fn insert(&mut self, i: usize, s: &[u8]) {
        if i == 0 {
            return self.push_front(s);
        }
        if i >= self.len() {
            return self.push_back(s);
        }
        let Some((k, j)) = self.locate(i) else { return };
        let n = &mut self.nodes[k];
        let at = n.offset_of(j);
        n.splice(at, at, &[s]);
        n.count += 1;
        self.meta += 1;
        self.split_if_oversized(k);
    }

    /// Split node `k` in two halves when an in-place edit left it well past the node limit.
    fn split_if_oversized(&mut self, k: usize) {
        let n = &self.nodes[k];
        if n.count < 2 || self.allows(&Node { buf: Vec::new(), start: 0, count: n.count - 1 }, n.bytes()) {
            return;
        }
        let half = n.count / 2;
        let cut = n.offset_of(half);
        let right = Node { buf: n.buf[cut..].to_vec(), start: 0, count: n.count - half };
        let left = Node { buf: n.buf[n.start..cut].to_vec(), start: 0, count: half };
        self.nodes[k] = left;
        self.nodes.insert(k + 1, right);
    }

    /// Keep only the elements for which `keep(index, element)` holds (LREM), in order.
    pub fn retain_indexed(&mut self, mut keep: impl FnMut(usize, &[u8]) -> bool) {
        let kept = List::from_items(
            self.iter().enumerate().filter(|(i, e)| keep(*i, e)).map(|(_, e)| e),
            i64::from(self.fill()),
        );
        *self = kept;
    }

    /// Remove the first `n` elements (LTRIM), whole nodes at a time where possible.
    pub fn drop_front(&mut self, mut n: usize) {
        while n > 0 {
            let Some(node) = self.nodes.front_mut() else { return };
            if node.count <= n {
                n -= node.count;
                self.meta -= node.count as u64;
                self.nodes.pop_front();
            } else {
                let cut = node.offset_of(n);
                node.start = cut;
                node.count -= n;
                self.meta -= n as u64;
                *node = node.compacted();
                n = 0;
            }
        }
    }

    /// Remove the last `n` elements (LTRIM), whole nodes at a time where possible.
    pub fn drop_back(&mut self, mut n: usize) {
        while n > 0 {
            let Some(node) = self.nodes.back_mut() else { return };
            if node.count <= n {
                n -= node.count;
                self.meta -= node.count as u64;
                self.nodes.pop_back();
            } else {
                let cut = node.offset_of(node.count - n);
                node.buf.truncate(cut);
                node.buf.shrink_to_fit();
                node.count -= n;
                self.meta -= n as u64;
                n = 0;
            }
        }
    }

    pub fn clear(&mut self) {
        self.nodes.clear();
        self.meta &= !LEN_MASK;
    }

    /// Every element as owned bytes, head first.
    pub fn to_vec(&self) -> Vec<Bytes> {
        self.iter().map(Bytes::copy_from_slice).collect()
    }
}

impl PartialEq for List {
    fn eq(&self, other: &List) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl From<List> for Vec<Bytes> {
    fn from(l: List) -> Vec<Bytes> {
        l.to_vec()
    }
}
