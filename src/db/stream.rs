//! The stream type: entries in packed nodes keyed by their first ID, and consumer groups. Mirrors
//! Redis's `t_stream.c` data structure (a radix tree of listpacks) with a `BTreeMap` of packed
//! nodes: each node holds up to `stream-node-max-entries` entries (and about
//! `stream-node-max-bytes`), delta-encoded against the node's first ID, with the fields of the
//! node's first entry stored once (entries with the same fields store only their values), and
//! deleted entries kept as tombstones until the whole node is empty, as Redis does. The commands
//! are in `cmd::stream`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

/// A stream entry ID, `<ms>-<seq>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID (`streamIncrID`); None past the last possible one.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX { None } else { Some(StreamId::new(self.ms + 1, 0)) }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID (`streamDecrID`); None before 0-0.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 { None } else { Some(StreamId::new(self.ms - 1, u64::MAX)) }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// `<ms>-<seq>` as an owned string (one allocation of its exact size).
    pub fn to_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self.text(&mut [0u8; 41]))
    }
}

impl StreamId {
    /// `<ms>-<seq>` written into `buf`, without allocating.
    pub fn text(self, buf: &mut [u8; 41]) -> &[u8] {
        let mut at = buf.len();
        for (i, mut v) in [self.seq, self.ms].into_iter().enumerate() {
            loop {
                at -= 1;
                buf[at] = b'0' + (v % 10) as u8;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            if i == 0 {
                at -= 1;
                buf[at] = b'-';
            }
        }
        &buf[at..]
    }
}

/// `*<n>\r\n`: the header of an encoded array (see `Frame::Encoded`).
pub fn put_array_header(out: &mut bytes::BytesMut, n: usize) {
    put_header(out, b'*', n);
}

/// One entry as XRANGE and XREAD reply it, encoded (see `Frame::Encoded`): `[id, [field, value,
/// ...]]`, its `n` field and value strings from `strings`.
pub fn put_entry<'a>(out: &mut bytes::BytesMut, id: StreamId, n: usize, strings: impl Iterator<Item = &'a [u8]>) {
    out.extend_from_slice(b"*2\r\n");
    put_bulk(out, id.text(&mut [0u8; 41]));
    put_header(out, b'*', n);
    for s in strings {
        put_bulk(out, s);
    }
}

fn put_header(out: &mut bytes::BytesMut, kind: u8, n: usize) {
    out.extend_from_slice(&[kind]);
    out.extend_from_slice(crate::util::i64_text(n as i64, &mut [0u8; 20]));
    out.extend_from_slice(b"\r\n");
}

fn put_bulk(out: &mut bytes::BytesMut, data: &[u8]) {
    put_header(out, b'$', data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The digits written once into a stack buffer (`write!` formats each number separately).
        f.pad(std::str::from_utf8(self.text(&mut [0u8; 41])).unwrap_or_default())
    }
}

/// `stream-node-max-bytes` and `stream-node-max-entries`.
#[derive(Clone, Copy, Debug)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: usize,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits { max_bytes: 4096, max_entries: 100 }
    }
}

/// The most bytes a growing stream's new node reserves up front (see [`Stream::append`]).
const PREALLOC_MAX: usize = 8192;

/// Redis's STREAM_LISTPACK_MAX_SIZE: the most bytes of fields and values one entry may have.
pub const MAX_ENTRY_BYTES: usize = (1 << 30) - 1024;

const FLAG_DELETED: u8 = 1;
const FLAG_SAMEFIELDS: u8 = 2;

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

fn get_slice<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let len = get_varint(buf, pos) as usize;
    let s = &buf[*pos..*pos + len];
    *pos += len;
    s
}

/// A packed node: entries after the node's master ID, oldest first.
#[derive(Clone, Debug)]
struct Node {
    /// The fields of the node's first entry, length-prefixed one after the other (one allocation);
    /// entries with exactly these fields store only values.
    fields: Box<[u8]>,
    nfields: u32,
    /// Entries: `flags, ms delta, seq (delta when the ms is the master's), [nfields, field]...,
    /// values` with length-prefixed strings.
    buf: Vec<u8>,
    live: u32,
    deleted: u32,
    /// Where the last entry starts in `buf` (the stream's newest entry, for the last node).
    last: u32,
}

/// One entry decoded from a node.
struct Raw<'a> {
    id: StreamId,
    deleted: bool,
    /// Field, value pairs.
    pairs: Vec<(&'a [u8], &'a [u8])>,
}

impl Node {
    /// The master fields, in order.
    fn master_fields(&self) -> impl Iterator<Item = &[u8]> {
        let mut pos = 0;
        (0..self.nfields).map(move |_| get_slice(&self.fields, &mut pos))
    }

    /// An entry's flags and ID, leaving `pos` at its strings.
    fn head(&self, master: StreamId, pos: &mut usize) -> (u8, StreamId) {
        let buf = &self.buf[..];
        let flags = buf[*pos];
        *pos += 1;
        let ms_delta = get_varint(buf, pos);
        let seq = get_varint(buf, pos);
        let id = if ms_delta == 0 {
            StreamId::new(master.ms, master.seq.wrapping_add(seq))
        } else {
            StreamId::new(master.ms.wrapping_add(ms_delta), seq)
        };
        (flags, id)
    }

    /// An entry's field, value pairs (after [`Node::head`]) into `pairs` (cleared first).
    fn body<'a>(&'a self, flags: u8, pos: &mut usize, pairs: &mut Vec<(&'a [u8], &'a [u8])>) {
        let buf = &self.buf[..];
        pairs.clear();
        if flags & FLAG_SAMEFIELDS != 0 {
            for f in self.master_fields() {
                pairs.push((f, get_slice(buf, pos)));
            }
        } else {
            let n = get_varint(buf, pos) as usize;
            for _ in 0..n {
                let f = get_slice(buf, pos);
                let v = get_slice(buf, pos);
                pairs.push((f, v));
            }
        }
    }

    /// Step over an entry's strings (after [`Node::head`]).
    fn skip_body(&self, flags: u8, pos: &mut usize) {
        let buf = &self.buf[..];
        let strings =
            if flags & FLAG_SAMEFIELDS != 0 { self.nfields as usize } else { 2 * get_varint(buf, pos) as usize };
        for _ in 0..strings {
            let len = get_varint(buf, pos) as usize;
            *pos += len;
        }
    }

    fn decode(&self, master: StreamId, pos: &mut usize) -> Raw<'_> {
        let (flags, id) = self.head(master, pos);
        let mut pairs = Vec::new();
        self.body(flags, pos, &mut pairs);
        Raw { id, deleted: flags & FLAG_DELETED != 0, pairs }
    }

    /// Skip one entry, returning its ID, flags position and whether it is deleted.
    fn skip(&self, master: StreamId, pos: &mut usize) -> (StreamId, usize, bool) {
        let flags_at = *pos;
        let (flags, id) = self.head(master, pos);
        self.skip_body(flags, pos);
        (id, flags_at, flags & FLAG_DELETED != 0)
    }

    fn total(&self) -> usize {
        (self.live + self.deleted) as usize
    }

    /// About the bytes Redis's listpack for this node holds (for the node-size limit).
    fn approx_bytes(&self) -> usize {
        self.buf.len() + self.fields.len() + self.nfields as usize + 10
    }

    fn append(&mut self, master: StreamId, id: StreamId, pairs: &[Bytes]) {
        self.last = self.buf.len() as u32;
        let same = pairs.len() / 2 == self.nfields as usize
            && pairs.chunks(2).zip(self.master_fields()).all(|(p, f)| p[0] == f);
        self.buf.push(if same { FLAG_SAMEFIELDS } else { 0 });
        if id.ms == master.ms {
            put_varint(&mut self.buf, 0);
            put_varint(&mut self.buf, id.seq - master.seq);
        } else {
            put_varint(&mut self.buf, id.ms - master.ms);
            put_varint(&mut self.buf, id.seq);
        }
        if same {
            for p in pairs.chunks(2) {
                put_varint(&mut self.buf, p[1].len() as u64);
                self.buf.extend_from_slice(&p[1]);
            }
        } else {
            put_varint(&mut self.buf, (pairs.len() / 2) as u64);
            for s in pairs {
                put_varint(&mut self.buf, s.len() as u64);
                self.buf.extend_from_slice(s);
            }
        }
        self.live += 1;
    }
}

/// A pending entry of a consumer group (a NACK).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    pub consumer: Bytes,
    pub delivery_time: u64,
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Clone, Debug, Default)]
pub struct Consumer {
    pub seen_time: u64,
    pub pel: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub last_id: StreamId,
    /// The logical read counter; -1 when unknown (`SCG_INVALID_ENTRIES_READ`).
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group { last_id, entries_read, ..Default::default() }
    }

    /// Remove a pending entry from the group and its consumer; whether it was there.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(n) => {
                if let Some(c) = self.consumers.get_mut(&n.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Create `name` if missing (seen now); whether it was created.
    pub fn ensure_consumer(&mut self, name: &[u8], now: u64) -> bool {
        match self.consumers.get_mut(name) {
            Some(c) => {
                c.seen_time = now;
                false
            }
            None => {
                self.consumers.insert(Bytes::copy_from_slice(name), Consumer { seen_time: now, pel: BTreeSet::new() });
                true
            }
        }
    }

    /// Give the pending entry `id` to `consumer` (created beforehand) with these counters.
    pub fn assign(&mut self, id: StreamId, consumer: &[u8], delivery_time: u64, delivery_count: u64) {
        let name = match self.consumers.get_key_value(consumer) {
            Some((k, _)) => k.clone(),
            None => Bytes::copy_from_slice(consumer),
        };
        if let Some(old) = self.pel.insert(id, Nack { consumer: name.clone(), delivery_time, delivery_count })
            && old.consumer != name
            && let Some(c) = self.consumers.get_mut(&old.consumer)
        {
            c.pel.remove(&id);
        }
        self.consumers.entry(name).or_default().pel.insert(id);
    }

    /// Delete a consumer and its pending entries; how many it had.
    pub fn del_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }
}

/// What [`Stream::walk`] calls per entry: its ID and field, value pairs; false stops the walk.
type Visitor<'f> = dyn FnMut(StreamId, &[(&[u8], &[u8])]) -> bool + 'f;

/// A stream value.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Node>,
    length: u64,
    pub last_id: StreamId,
    pub entries_added: u64,
    pub max_deleted_id: StreamId,
    pub groups: BTreeMap<Bytes, Group>,
}

/// How XADD/XTRIM trim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// An entry as returned to clients: its ID and its field, value pairs (flattened).
pub type StreamEntry = (StreamId, Vec<Bytes>);

impl Stream {
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Nodes (XINFO's radix-tree-keys).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Append an entry with `id` (greater than `last_id`, checked by the caller) and the field,
    /// value pairs `pairs` (flattened, even length).
    pub fn append(&mut self, id: StreamId, pairs: &[Bytes], limits: NodeLimits) {
        let elen: usize = pairs.iter().map(|p| p.len()).sum();
        let max_bytes = if limits.max_bytes == 0 || limits.max_bytes > MAX_ENTRY_BYTES {
            MAX_ENTRY_BYTES
        } else {
            limits.max_bytes
        };
        let use_tail = match self.nodes.last_key_value() {
            None => false,
            Some((_, n)) => {
                !(n.approx_bytes() + elen >= max_bytes || (limits.max_entries != 0 && n.total() >= limits.max_entries))
            }
        };
        if use_tail {
            let mut last = self.nodes.last_entry().expect("a tail node");
            let master = *last.key();
            last.get_mut().append(master, id, pairs);
        } else {
            // A stream that filled a node is likely to fill this one too: its buffer is sized
            // once for as many entries like this one as a node takes (at most a few KB), so the
            // appends to it do not reallocate. A stream's first node grows as needed (a stream of
            // one entry costs what it holds).
            let growing = self.nodes.last_entry().map(|mut last| last.get_mut().buf.shrink_to_fit()).is_some();
            let mut fields = Vec::new();
            for p in pairs.chunks(2) {
                put_varint(&mut fields, p[0].len() as u64);
                fields.extend_from_slice(&p[0]);
            }
            let nfields = (pairs.len() / 2) as u32;
            let mut node = Node {
                fields: fields.into_boxed_slice(),
                nfields,
                buf: Vec::with_capacity(64),
                live: 0,
                deleted: 0,
                last: 0,
            };
            node.append(id, id, pairs);
            if growing {
                let per_node = if limits.max_entries == 0 { usize::MAX } else { limits.max_entries };
                let want = node.buf.len().saturating_mul(per_node).min(max_bytes).min(PREALLOC_MAX);
                node.buf.reserve_exact(want.saturating_sub(node.buf.len()));
            }
            self.nodes.insert(id, node);
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
    }

    /// Append a whole node as an RDB holds it (`rdb::load`): its master ID, its master fields and
    /// its entries, tombstones included, oldest first. The node is kept exactly as given, as
    /// Redis's `rdbLoadObject` inserts each listpack into the radix tree unchanged: a node whose
    /// entries were all trimmed away stays (it still counts in XINFO's radix-tree-keys and its
    /// last tombstone still decides a later MINID trim). The caller checks that IDs grow and that
    /// the node has at least one entry; `last_id` and `entries_added` are the caller's to set.
    pub fn push_loaded_node(&mut self, master: StreamId, fields: &[Bytes], entries: &[(StreamId, bool, Vec<Bytes>)]) {
        let mut packed = Vec::new();
        for f in fields {
            put_varint(&mut packed, f.len() as u64);
            packed.extend_from_slice(f);
        }
        let mut node = Node {
            fields: packed.into_boxed_slice(),
            nfields: fields.len() as u32,
            buf: Vec::new(),
            live: 0,
            deleted: 0,
            last: 0,
        };
        for (id, deleted, pairs) in entries {
            node.append(master, *id, pairs);
            if *deleted {
                node.buf[node.last as usize] |= FLAG_DELETED;
                node.live -= 1;
                node.deleted += 1;
            }
        }
        node.buf.shrink_to_fit();
        self.length += u64::from(node.live);
        self.nodes.insert(master, node);
    }

    /// Entries with IDs in `start..=end`, oldest first (newest first when `rev`), at most `count`
    /// (0: all).
    pub fn range(&self, start: StreamId, end: StreamId, count: usize, rev: bool) -> Vec<StreamEntry> {
        if start > end {
            return Vec::new();
        }
        // Every field and value is copied into one buffer, and the replies' strings are slices of
        // it: one allocation for the strings of the whole range, not two per pair.
        let mut data = bytes::BytesMut::new();
        let mut spans: Vec<usize> = Vec::new();
        let mut ids: Vec<(StreamId, usize)> = Vec::new();
        self.walk(start, end, rev, |id, pairs| {
            for (f, v) in pairs {
                data.extend_from_slice(f);
                spans.push(data.len());
                data.extend_from_slice(v);
                spans.push(data.len());
            }
            ids.push((id, pairs.len() * 2));
            count == 0 || ids.len() < count
        });
        let data = data.freeze();
        let (mut at, mut from) = (0, 0);
        ids.into_iter()
            .map(|(id, n)| {
                let strings = spans[at..at + n]
                    .iter()
                    .map(|&to| {
                        let b = data.slice(from..to);
                        from = to;
                        b
                    })
                    .collect();
                at += n;
                (id, strings)
            })
            .collect()
    }

    /// The entries [`range`](Self::range) would return, encoded as XRANGE and XREAD reply them (an
    /// array of `[id, [field, value, ...]]`), straight into one buffer (see `Frame::Encoded`): no
    /// allocation per entry or string. None when there is none.
    pub fn encode_range(&self, start: StreamId, end: StreamId, count: usize, rev: bool) -> Option<Bytes> {
        if start > end {
            return None;
        }
        /// Room for the array's header, written in front once the entries are counted.
        const HEAD: usize = 24;
        let mut out = bytes::BytesMut::with_capacity(512);
        out.extend_from_slice(&[0u8; HEAD]);
        let mut n = 0usize;
        self.walk(start, end, rev, |id, pairs| {
            put_entry(&mut out, id, pairs.len() * 2, pairs.iter().flat_map(|(f, v)| [*f, *v]));
            n += 1;
            count == 0 || n < count
        });
        if n == 0 {
            return None;
        }
        let mut head = bytes::BytesMut::with_capacity(HEAD);
        put_array_header(&mut head, n);
        let at = HEAD - head.len();
        out[at..HEAD].copy_from_slice(&head);
        Some(out.freeze().slice(at..))
    }

    /// Visit the live entries in `start..=end` in order (reversed when `rev`) until `f` says stop.
    fn walk(&self, start: StreamId, end: StreamId, rev: bool, mut f: impl FnMut(StreamId, &[(&[u8], &[u8])]) -> bool) {
        // The node holding `start` begins at or before it.
        let from = self.nodes.range(..=start).next_back().map(|(k, _)| *k).unwrap_or(start);
        let nodes = self.nodes.range(from..=end);
        // Entries outside the range and tombstones are stepped over without decoding their
        // strings; the visited ones are decoded into one reused vector of pairs.
        let visit = |master: StreamId, node: &Node, f: &mut Visitor<'_>| {
            let mut pairs = Vec::new();
            let mut pos = 0;
            if rev {
                let mut positions = Vec::with_capacity(node.total());
                while pos < node.buf.len() {
                    positions.push(pos);
                    node.skip(master, &mut pos);
                }
                for p in positions.into_iter().rev() {
                    let mut q = p;
                    let (flags, id) = node.head(master, &mut q);
                    if flags & FLAG_DELETED != 0 || id > end {
                        continue;
                    }
                    if id < start {
                        return false;
                    }
                    node.body(flags, &mut q, &mut pairs);
                    if !f(id, &pairs) {
                        return false;
                    }
                }
            } else {
                while pos < node.buf.len() {
                    let (flags, id) = node.head(master, &mut pos);
                    if flags & FLAG_DELETED != 0 || id < start {
                        node.skip_body(flags, &mut pos);
                        continue;
                    }
                    if id > end {
                        return false;
                    }
                    node.body(flags, &mut pos, &mut pairs);
                    if !f(id, &pairs) {
                        return false;
                    }
                }
            }
            true
        };
        if rev {
            for (m, n) in nodes.rev() {
                if !visit(*m, n, &mut f) {
                    return;
                }
            }
        } else {
            for (m, n) in nodes {
                if !visit(*m, n, &mut f) {
                    return;
                }
            }
        }
    }

    /// The entry `id`, if it is live.
    pub fn get(&self, id: StreamId) -> Option<StreamEntry> {
        self.range(id, id, 1, false).pop()
    }

    pub fn exists(&self, id: StreamId) -> bool {
        let mut found = false;
        self.walk(id, id, false, |_, _| {
            found = true;
            false
        });
        found
    }

    /// Every node as the RDB stores it (`rdb::save`): its master ID, its master fields, and each
    /// of its entries, deleted ones included, as (ID, deleted, field/value pairs), oldest first.
    pub fn raw_nodes<'a>(
        &'a self,
        mut f: impl FnMut(StreamId, Vec<&'a [u8]>, Vec<(StreamId, bool, Vec<(&'a [u8], &'a [u8])>)>),
    ) {
        for (&master, node) in &self.nodes {
            let mut pos = 0;
            let mut entries = Vec::with_capacity(node.total());
            while pos < node.buf.len() {
                let raw = node.decode(master, &mut pos);
                entries.push((raw.id, raw.deleted, raw.pairs));
            }
            f(master, node.master_fields().collect(), entries);
        }
    }

    /// The first live entry's ID (0-0 when empty): Redis's `first_id`.
    pub fn first_id(&self) -> StreamId {
        let mut first = StreamId::MIN;
        self.walk(StreamId::MIN, StreamId::MAX, false, |id, _| {
            first = id;
            false
        });
        first
    }

    /// The last live entry's ID (0-0 when empty): `streamLastValidID`.
    pub fn last_valid_id(&self) -> StreamId {
        // Fast path: the newest entry is live (a node whose entries are all deleted is gone).
        if let Some((&master, node)) = self.nodes.last_key_value() {
            let mut pos = node.last as usize;
            let (id, _, deleted) = node.skip(master, &mut pos);
            if !deleted {
                return id;
            }
        }
        let mut last = StreamId::MIN;
        self.walk(StreamId::MIN, StreamId::MAX, true, |id, _| {
            last = id;
            false
        });
        last
    }

    /// Mark `id` deleted (XDEL); whether it was live. A node left without live entries goes.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, _)) = self.nodes.range(..=id).next_back() else { return false };
        let node = self.nodes.get_mut(&master).expect("the node");
        let mut pos = 0;
        while pos < node.buf.len() {
            let (eid, flags_at, deleted) = node.skip(master, &mut pos);
            if eid == id {
                if deleted {
                    return false;
                }
                node.buf[flags_at] |= FLAG_DELETED;
                node.live -= 1;
                node.deleted += 1;
                if node.live == 0 {
                    self.nodes.remove(&master);
                }
                self.length -= 1;
                if id > self.max_deleted_id {
                    self.max_deleted_id = id;
                }
                return true;
            }
            if eid > id {
                return false;
            }
        }
        false
    }

    /// Trim as `streamTrim`: whole nodes first; inside the first remaining node only when not
    /// `approx`; at most `limit` entries when not 0. The number of entries removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        loop {
            if let Trim::MaxLen(max) = how
                && self.length <= max
            {
                break;
            }
            let Some(mut first) = self.nodes.first_entry() else { break };
            let master = *first.key();
            let entries = u64::from(first.get().live);
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let remove_node = match how {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => {
                    // The node's last entry, tombstones included.
                    let node = first.get();
                    let mut pos = 0;
                    let mut last = master;
                    while pos < node.buf.len() {
                        last = node.skip(master, &mut pos).0;
                    }
                    last < min
                }
            };
            if remove_node {
                first.remove();
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            let node = first.get_mut();
            let mut pos = 0;
            let mut removed = 0u32;
            while pos < node.buf.len() {
                let (id, flags_at, was_deleted) = node.skip(master, &mut pos);
                let stop = match how {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                if !was_deleted {
                    node.buf[flags_at] |= FLAG_DELETED;
                    removed += 1;
                    self.length -= 1;
                }
            }
            node.live -= removed;
            node.deleted += removed;
            deleted += u64::from(removed);
            // A node emptied entry by entry stays (as in Redis's `streamTrim`: only XDEL frees a
            // node whose last live entry it deletes): it still counts in XINFO's radix-tree-keys,
            // and its last ID (a tombstone) still decides whether a later MINID trim removes it.
            break;
        }
        deleted
    }

    /// Whether `start..=end` may hold a tombstone (`streamRangeHasTombstones`).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.length == 0 || self.max_deleted_id.is_zero() {
            return false;
        }
        if self.first_id() > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id && self.max_deleted_id <= end
    }

    /// `streamEstimateDistanceFromFirstEverEntry`: the read counter of `id`, or -1 when unknown.
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        if self.length == 0 && id <= self.last_id {
            return self.entries_added as i64;
        }
        if id == self.last_id {
            return self.entries_added as i64;
        } else if id > self.last_id {
            return -1;
        }
        let first = self.first_id();
        if self.max_deleted_id.is_zero() || self.max_deleted_id < first {
            if id < first {
                return (self.entries_added - self.length) as i64;
            } else if id == first {
                return (self.entries_added - self.length + 1) as i64;
            }
        }
        -1
    }

    /// A group's lag (`streamReplyWithCGLag`); None when it cannot be known.
    pub fn lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != -1 && !self.range_has_tombstones(g.last_id, StreamId::MAX) {
            return Some(self.entries_added as i64 - g.entries_read);
        }
        let read = self.estimate_distance(g.last_id);
        (read != -1).then(|| self.entries_added as i64 - read)
    }

    /// Advance a group past `id` as a delivery does (`streamReplyWithRange` with a group).
    pub fn advance_group(&self, g: &mut Group, id: StreamId) {
        if id > g.last_id {
            if g.entries_read != -1 && !self.range_has_tombstones(id, StreamId::MAX) {
                g.entries_read += 1;
            } else if self.entries_added != 0 {
                g.entries_read = self.estimate_distance(id);
            }
            g.last_id = id;
        }
    }

    /// Approximate heap bytes (MEMORY USAGE, tests).
    pub fn heap_bytes(&self) -> usize {
        self.nodes.values().map(|n| n.buf.capacity() + n.fields.len() + 96).sum()
    }
}

impl Stream {
    /// The commands that rebuild this stream, as Redis's AOF rewrite writes them
    /// (`rewriteStreamObject`): an XADD per entry (an empty stream: `XADD key MAXLEN 0 0-1 x y`),
    /// XSETID with the counters, then per group XGROUP CREATE ... ENTRIESREAD, an XCLAIM ... FORCE
    /// per pending entry and XGROUP CREATECONSUMER for consumers with nothing pending.
    ///
    /// Unlike Redis's, it keeps pending entries whose stream entry is gone (XDEL, trimming): such
    /// IDs are added as placeholder entries (`x y`), claimed, then removed again (XTRIM MINID for
    /// those before the first entry, XDEL for the others), before XSETID restores the counters.
    pub fn rewrite(&self, key: &[u8], emit: &mut dyn FnMut(&[&[u8]])) {
        let mut ghosts: BTreeSet<StreamId> = BTreeSet::new();
        for g in self.groups.values() {
            ghosts.extend(g.pel.keys().filter(|id| !self.exists(**id)));
        }
        let mut live: Vec<(StreamId, Vec<Bytes>)> = Vec::new();
        self.walk(StreamId::MIN, StreamId::MAX, false, |id, pairs| {
            live.push((
                id,
                pairs.iter().flat_map(|(f, v)| [Bytes::copy_from_slice(f), Bytes::copy_from_slice(v)]).collect(),
            ));
            true
        });
        let mut all: Vec<(StreamId, Option<&Vec<Bytes>>)> = live.iter().map(|(id, p)| (*id, Some(p))).collect();
        all.extend(ghosts.iter().map(|id| (*id, None)));
        all.sort_by_key(|e| e.0);
        if all.is_empty() {
            emit(&[b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]);
        }
        for (id, pairs) in &all {
            let id = id.to_string();
            let mut argv: Vec<&[u8]> = vec![b"XADD", key, id.as_bytes()];
            match pairs {
                Some(p) => argv.extend(p.iter().map(|b| &b[..])),
                None => argv.extend([&b"x"[..], b"y"]),
            }
            emit(&argv);
        }
        for (name, g) in &self.groups {
            let (last, read) = (g.last_id.to_string(), g.entries_read.to_string());
            emit(&[b"XGROUP", b"CREATE", key, name, last.as_bytes(), b"ENTRIESREAD", read.as_bytes()]);
            for (cname, c) in &g.consumers {
                if c.pel.is_empty() {
                    emit(&[b"XGROUP", b"CREATECONSUMER", key, name, cname]);
                    continue;
                }
                for id in &c.pel {
                    let n = &g.pel[id];
                    let (id, t, cnt) = (id.to_string(), n.delivery_time.to_string(), n.delivery_count.to_string());
                    emit(&[
                        b"XCLAIM",
                        key,
                        name,
                        cname,
                        b"0",
                        id.as_bytes(),
                        b"TIME",
                        t.as_bytes(),
                        b"RETRYCOUNT",
                        cnt.as_bytes(),
                        b"JUSTID",
                        b"FORCE",
                    ]);
                }
            }
        }
        let first_live = live.first().map(|e| e.0);
        let below: Vec<&StreamId> = ghosts.iter().filter(|id| first_live.is_none_or(|f| **id < f)).collect();
        if !below.is_empty() {
            let min = match first_live {
                Some(f) => f.to_string(),
                None => StreamId::MAX.to_string(),
            };
            emit(&[b"XTRIM", key, b"MINID", b"=", min.as_bytes()]);
        }
        let inside: Vec<String> =
            ghosts.iter().filter(|id| first_live.is_some_and(|f| **id > f)).map(|id| id.to_string()).collect();
        if !inside.is_empty() {
            let mut argv: Vec<&[u8]> = vec![b"XDEL", key];
            argv.extend(inside.iter().map(|s| s.as_bytes()));
            emit(&argv);
        }
        let (last, added, maxdel) =
            (self.last_id.to_string(), self.entries_added.to_string(), self.max_deleted_id.to_string());
        emit(&[b"XSETID", key, last.as_bytes(), b"ENTRIESADDED", added.as_bytes(), b"MAXDELETEDID", maxdel.as_bytes()]);
    }
}

/// What a blocked XREAD/XREADGROUP reads (kept in its waiter, see `db::blocking`).
#[derive(Clone, Debug)]
pub struct StreamWait {
    pub keys: Vec<Bytes>,
    /// Per key: entries after this ID (XREAD; `$` resolved when it blocked).
    pub ids: Vec<StreamId>,
    /// XREADGROUP's group, consumer and NOACK; it always reads `>`.
    pub group: Option<GroupWait>,
    /// COUNT (0 when not given: 1000, as Redis's XREAD_BLOCKED_DEFAULT_COUNT).
    pub count: usize,
}

#[derive(Clone, Debug)]
pub struct GroupWait {
    pub group: Bytes,
    pub consumer: Bytes,
    pub noack: bool,
}

/// An entry a group read returned: None for the fields of a pending entry no longer in the stream.
pub type ReadEntry = (StreamId, Option<Vec<Bytes>>);

/// Where a group read starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupStart {
    /// `>`: entries never delivered to the group.
    New,
    /// The consumer's own pending entries after this ID.
    History(StreamId),
}

/// How a record is pushed: returns its AOF sequence number.
pub type LogFn<'a> = dyn FnMut(&[&[u8]]) -> u64 + 'a;

impl Stream {
    /// XREADGROUP on group `gname` (which exists) for `consumer`: reads and records deliveries as
    /// `streamReplyWithRange` does, logging each as Redis propagates it (`XCLAIM ... FORCE JUSTID
    /// LASTID`, `XGROUP SETID ... ENTRIESREAD` under NOACK, `XGROUP CREATECONSUMER`). Returns the
    /// entries and the sequence number of the last record (0 when none).
    #[allow(clippy::too_many_arguments)]
    pub fn read_group(
        &mut self,
        key: &[u8],
        gname: &[u8],
        consumer: &[u8],
        start: GroupStart,
        count: usize,
        noack: bool,
        now: u64,
        log: &mut LogFn<'_>,
    ) -> (Vec<ReadEntry>, u64) {
        let mut seq = 0u64;
        // The group is taken out while the stream is read (and put back under its own key: no
        // copy of the name per call).
        let (gkey, mut group) = self.groups.remove_entry(gname).expect("the group exists");
        let created = group.ensure_consumer(consumer, now);
        let mut out: Vec<ReadEntry> = Vec::new();
        let xclaim = |id: StreamId, n: &Nack, last: StreamId, log: &mut LogFn<'_>| {
            xclaim_record(key, gname, id, n, last, |record| log(record))
        };
        match start {
            GroupStart::New => {
                let from = group.last_id.incr();
                let entries = match from {
                    Some(from) => self.range(from, StreamId::MAX, count, false),
                    None => Vec::new(),
                };
                let before = group.last_id;
                for (id, pairs) in entries {
                    self.advance_group(&mut group, id);
                    if !noack {
                        group.assign(id, consumer, now, 1);
                        let n = group.pel.get(&id).expect("just assigned").clone();
                        seq = seq.max(xclaim(id, &n, group.last_id, log));
                    }
                    out.push((id, Some(pairs)));
                }
                // Under NOACK as Redis; otherwise too, so that replay restores `entries_read`
                // (XCLAIM's LASTID moves only the last ID).
                if group.last_id != before {
                    let (mut lastb, mut readb) = ([0u8; 41], [0u8; 20]);
                    seq = seq.max(log(&[
                        b"XGROUP",
                        b"SETID",
                        key,
                        gname,
                        group.last_id.text(&mut lastb),
                        b"ENTRIESREAD",
                        crate::util::i64_text(group.entries_read, &mut readb),
                    ]));
                }
            }
            GroupStart::History(after) => {
                let ids: Vec<StreamId> = match after.incr() {
                    Some(from) => {
                        let c = group.consumers.get(consumer).expect("ensured");
                        c.pel.range(from..).take(if count == 0 { usize::MAX } else { count }).copied().collect()
                    }
                    None => Vec::new(),
                };
                for id in ids {
                    match self.get(id) {
                        Some((_, pairs)) => {
                            let n = group.pel.get_mut(&id).expect("a consumer's pending entry is the group's");
                            n.delivery_time = now;
                            n.delivery_count += 1;
                            let n = n.clone();
                            // Redis does not propagate this; logging it keeps replay exact.
                            seq = seq.max(xclaim(id, &n, group.last_id, log));
                            out.push((id, Some(pairs)));
                        }
                        None => out.push((id, None)),
                    }
                }
            }
        }
        if created && (noack || seq == 0) {
            seq = seq.max(log(&[b"XGROUP", b"CREATECONSUMER", key, gname, consumer]));
        }
        self.groups.insert(gkey, group);
        (out, seq)
    }

    /// A blocked reader of `key` (see [`StreamWait`]): `take` false asks whether it can be served
    /// now (Redis serves when the stream's last ID is past what it waits after, or its group is
    /// gone); `take` true reads for it and returns the items to hand over (see [`encode_served`]).
    pub fn serve_reader(
        &mut self,
        key: &[u8],
        wait: &StreamWait,
        take: bool,
        now: u64,
        log: &mut LogFn<'_>,
    ) -> Option<(Vec<Bytes>, u64)> {
        let idx = wait.keys.iter().position(|k| k[..] == *key)?;
        let count = if wait.count == 0 { 1000 } else { wait.count };
        match &wait.group {
            None => {
                let after = wait.ids[idx];
                if self.last_id <= after {
                    return None;
                }
                if !take {
                    return Some(Default::default());
                }
                let entries = match after.incr() {
                    Some(from) => self.range(from, StreamId::MAX, count, false),
                    None => Vec::new(),
                };
                Some((encode_served(entries.into_iter().map(|(id, p)| (id, Some(p)))), 0))
            }
            Some(g) => {
                let Some(group) = self.groups.get(&g.group) else {
                    if !take {
                        return Some(Default::default());
                    }
                    let text = "NOGROUP the consumer group this client was blocked on no longer exists";
                    return Some((vec![Bytes::from_static(b"E"), Bytes::from_static(text.as_bytes())], 0));
                };
                if self.last_id <= group.last_id {
                    return None;
                }
                if !take {
                    return Some(Default::default());
                }
                let (entries, seq) =
                    self.read_group(key, &g.group, &g.consumer, GroupStart::New, count, g.noack, now, log);
                Some((encode_served(entries), seq))
            }
        }
    }
}

/// Entries as handed to a blocked reader: `R`, then per entry its ID, the number of field and
/// value strings (`-1`: none, a deleted entry) and the strings. An error is `E` and its text.
pub fn encode_served(entries: impl IntoIterator<Item = ReadEntry>) -> Vec<Bytes> {
    let mut out = vec![Bytes::from_static(b"R")];
    for (id, pairs) in entries {
        out.push(id.to_bytes());
        match pairs {
            Some(p) => {
                out.push(Bytes::from(p.len().to_string()));
                out.extend(p);
            }
            None => out.push(Bytes::from_static(b"-1")),
        }
    }
    out
}

/// The inverse of [`encode_served`]: the entries, or the error text.
pub fn decode_served(items: Vec<Bytes>) -> Result<Vec<ReadEntry>, Bytes> {
    let mut it = items.into_iter();
    match it.next().as_deref() {
        Some(b"E") => return Err(it.next().unwrap_or_default()),
        Some(b"R") => {}
        _ => return Ok(Vec::new()),
    }
    let mut out = Vec::new();
    while let Some(id) = it.next() {
        let id = parse_plain_id(&id).unwrap_or_default();
        let n: i64 = it.next().and_then(|n| std::str::from_utf8(&n).ok()?.parse().ok()).unwrap_or(-1);
        if n < 0 {
            out.push((id, None));
        } else {
            out.push((id, Some(it.by_ref().take(n as usize).collect())));
        }
    }
    Ok(out)
}

/// `<ms>-<seq>` as this module writes it.
fn parse_plain_id(b: &[u8]) -> Option<StreamId> {
    let s = std::str::from_utf8(b).ok()?;
    let (ms, seq) = s.split_once('-')?;
    Some(StreamId::new(ms.parse().ok()?, seq.parse().ok()?))
}
/// The record Redis propagates for a claimed (or dropped) pending entry, handed to `emit`:
/// `XCLAIM key group consumer 0 id TIME t RETRYCOUNT n FORCE JUSTID LASTID last`.
pub fn xclaim_record<R>(
    key: &[u8],
    gname: &[u8],
    id: StreamId,
    n: &Nack,
    last: StreamId,
    emit: impl FnOnce(&[&[u8]]) -> R,
) -> R {
    let (mut idb, mut tb, mut cb, mut lastb) = ([0u8; 41], [0u8; 20], [0u8; 20], [0u8; 41]);
    emit(&[
        b"XCLAIM",
        key,
        gname,
        &n.consumer,
        b"0",
        id.text(&mut idb),
        b"TIME",
        crate::util::u64_text(n.delivery_time, &mut tb),
        b"RETRYCOUNT",
        crate::util::u64_text(n.delivery_count, &mut cb),
        b"FORCE",
        b"JUSTID",
        b"LASTID",
        last.text(&mut lastb),
    ])
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn id_text_is_its_display() {
        let mut buf = [0u8; 41];
        for id in [StreamId::MIN, StreamId::MAX, StreamId::new(1, 0), StreamId::new(0, 1), StreamId::new(1234567, 89)] {
            assert_eq!(id.text(&mut buf), id.to_string().as_bytes());
        }
    }

    #[test]
    fn encoded_range_is_the_range_as_frames() {
        let mut s = Stream::default();
        for i in 1..=5u64 {
            let v = i.to_string();
            let pairs = if i == 3 { vec![b("a"), b(""), b("bb"), b(&v)] } else { vec![b("f"), b(&v)] };
            s.append(StreamId::new(i, i), &pairs, NodeLimits { max_bytes: 4096, max_entries: 2 });
        }
        let frames = |entries: Vec<StreamEntry>| {
            crate::resp::Frame::Array(
                entries
                    .into_iter()
                    .map(|(id, p)| {
                        crate::resp::Frame::Array(vec![
                            crate::resp::Frame::Bulk(id.to_bytes()),
                            crate::resp::Frame::bulk_array(p),
                        ])
                    })
                    .collect(),
            )
        };
        for (start, end, count, rev) in [(1, 5, 0, false), (2, 4, 2, false), (1, 5, 3, true), (2, 2, 0, false)] {
            let (start, end) = (StreamId::new(start, 0), StreamId::new(end, u64::MAX));
            let enc = s.encode_range(start, end, count, rev).unwrap();
            assert_eq!(crate::resp::Frame::Encoded(enc).expand(), frames(s.range(start, end, count, rev)));
        }
        assert_eq!(s.encode_range(StreamId::new(9, 0), StreamId::MAX, 0, false), None);
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn add(s: &mut Stream, ms: u64, seq: u64, kv: &[&str]) {
        let pairs: Vec<Bytes> = kv.iter().map(|x| b(x)).collect();
        s.append(StreamId::new(ms, seq), &pairs, NodeLimits { max_bytes: 4096, max_entries: 3 });
    }

    #[test]
    fn entries_round_trip_across_nodes_with_deletes_and_trims() {
        let mut s = Stream::default();
        for i in 1..=10 {
            if i % 3 == 0 {
                add(&mut s, i, 0, &["other", &i.to_string()]);
            } else {
                add(&mut s, i, i, &["a", &i.to_string(), "b", "x"]);
            }
        }
        assert_eq!(s.len(), 10);
        assert_eq!(s.node_count(), 4);
        assert_eq!(s.last_valid_id(), StreamId::new(10, 10));
        assert!(s.delete(StreamId::new(10, 10)));
        assert_eq!(s.last_valid_id(), StreamId::new(9, 0));
        add(&mut s, 10, 11, &["a", "10", "b", "x"]);
        assert_eq!(s.last_valid_id(), StreamId::new(10, 11));
        let all = s.range(StreamId::MIN, StreamId::MAX, 0, false);
        assert_eq!(all.len(), 10);
        assert_eq!(all[2], (StreamId::new(3, 0), vec![b("other"), b("3")]));
        assert_eq!(all[3], (StreamId::new(4, 4), vec![b("a"), b("4"), b("b"), b("x")]));
        let rev = s.range(StreamId::new(2, 0), StreamId::new(5, 0), 2, true);
        assert_eq!(rev.iter().map(|e| e.0).collect::<Vec<_>>(), vec![StreamId::new(4, 4), StreamId::new(3, 0)]);
        assert!(s.delete(StreamId::new(1, 1)));
        assert!(!s.delete(StreamId::new(1, 1)));
        assert_eq!(s.first_id(), StreamId::new(2, 2));
        assert_eq!(s.max_deleted_id, StreamId::new(10, 10));
        // MAXLEN ~ 7 removes only whole nodes: the first (2 live) leaves 7.
        assert_eq!(s.trim(Trim::MaxLen(7), true, 0), 2);
        assert_eq!(s.len(), 7);
        assert_eq!(s.trim(Trim::MinId(StreamId::new(6, 0)), false, 0), 2);
        assert_eq!(s.first_id(), StreamId::new(6, 0));
        assert_eq!(s.last_valid_id(), StreamId::new(10, 11));
        assert_eq!(s.trim(Trim::MaxLen(0), false, 0), 5);
        assert!(s.is_empty() && s.node_count() == 0);
        assert_eq!(s.last_id, StreamId::new(10, 11));
        assert_eq!(s.entries_added, 11);
    }

    #[test]
    fn ids_step_and_wrap_like_redis() {
        assert_eq!(StreamId::new(1, u64::MAX).incr(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.incr(), None);
        assert_eq!(StreamId::new(2, 0).decr(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::MIN.decr(), None);
        assert_eq!(StreamId::new(5, 7).to_string(), "5-7");
    }
}
