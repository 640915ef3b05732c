//! Writing RDB files and DUMP payloads: [`write_rdb`] (a whole file from a snapshot) and
//! [`write_object`] (one value's type byte and body, shared with DUMP), choosing the encodings
//! redis-server 7.0.15 writes for the same values under the same `*-max-listpack-*` limits.

use std::io::{self, Write};

use super::encode::{d2string, put_double, put_int_string, put_len, put_ms, put_string};
use super::listpack::{self, Builder};
use super::{Aux, EncodeOpts, types};
use crate::db::stream::{Stream, StreamId};
use crate::db::{Frozen, FrozenValue, SnapshotEntry, SnapshotValue};

/// Buffer this many bytes before checksumming and writing them.
const FLUSH_AT: usize = 1 << 16;

/// The output: bytes buffered, checksummed as they are written.
struct Out<'w, W: Write> {
    w: &'w mut W,
    buf: Vec<u8>,
    crc: u64,
    checksum: bool,
}

impl<W: Write> Out<'_, W> {
    fn flush_some(&mut self, force: bool) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT || force {
            if self.checksum {
                self.crc = super::crc64::crc64(self.crc, &self.buf);
            }
            self.w.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// What [`Keys::each`] hands each key to: key, expiry (0: none), value.
pub type KeySink<'f> = dyn FnMut(&[u8], u64, FrozenValue<'_>) -> io::Result<()> + 'f;

/// What an RDB file is written from: a copied snapshot (`[SnapshotEntry]`, grouped by database
/// in database order as `Keyspace::snapshot` gives them) or a frozen one ([`Frozen`]).
pub trait Keys {
    /// The databases with keys, in order: (db, keys, keys with an expiry).
    fn databases(&self) -> Vec<(usize, u64, u64)>;
    /// Every key of `db`: key, expiry (0: none), value.
    fn each(&self, db: usize, f: &mut KeySink<'_>) -> io::Result<()>;
}

impl Keys for [SnapshotEntry] {
    fn databases(&self) -> Vec<(usize, u64, u64)> {
        let mut out: Vec<(usize, u64, u64)> = Vec::new();
        for e in self {
            match out.last_mut() {
                Some(last) if last.0 == e.db => {}
                _ => out.push((e.db, 0, 0)),
            }
            let last = out.last_mut().expect("pushed");
            last.1 += 1;
            last.2 += u64::from(e.expire_at_ms != 0);
        }
        out
    }

    fn each(&self, db: usize, f: &mut KeySink<'_>) -> io::Result<()> {
        for e in self.iter().skip_while(|e| e.db != db).take_while(|e| e.db == db) {
            f(&e.key, e.expire_at_ms, FrozenValue::Copied(&e.value))?;
        }
        Ok(())
    }
}

impl Keys for Vec<SnapshotEntry> {
    fn databases(&self) -> Vec<(usize, u64, u64)> {
        self[..].databases()
    }

    fn each(&self, db: usize, f: &mut KeySink<'_>) -> io::Result<()> {
        self[..].each(db, f)
    }
}

impl Keys for Frozen<'_> {
    fn databases(&self) -> Vec<(usize, u64, u64)> {
        Frozen::databases(self)
    }

    fn each(&self, db: usize, f: &mut KeySink<'_>) -> io::Result<()> {
        self.for_each(db, f)
    }
}

/// Write a complete RDB v10 file holding `entries` and the aux fields and function libraries
/// of `aux`.
pub fn write_rdb(out: &mut impl Write, entries: &(impl Keys + ?Sized), aux: &Aux) -> io::Result<()> {
    let mut o = Out { w: out, buf: Vec::with_capacity(FLUSH_AT + 1024), crc: 0, checksum: aux.checksum };
    o.buf.extend_from_slice(b"REDIS0010");
    let put_aux = |b: &mut Vec<u8>, k: &str, v: &[u8]| {
        b.push(types::OP_AUX);
        put_string(b, k.as_bytes(), aux.opts.compress);
        put_string(b, v, aux.opts.compress);
    };
    put_aux(&mut o.buf, "redis-ver", aux.redis_ver.as_bytes());
    put_aux(&mut o.buf, "redis-bits", b"64");
    put_aux(&mut o.buf, "ctime", aux.ctime.to_string().as_bytes());
    put_aux(&mut o.buf, "used-mem", aux.used_mem.to_string().as_bytes());
    if let Some(r) = &aux.repl {
        put_aux(&mut o.buf, "repl-stream-db", r.stream_db.to_string().as_bytes());
        put_aux(&mut o.buf, "repl-id", r.id.as_bytes());
        put_aux(&mut o.buf, "repl-offset", r.offset.to_string().as_bytes());
    }
    put_aux(&mut o.buf, "aof-base", if aux.aof_base { b"1" } else { b"0" });
    for code in &aux.functions {
        o.buf.push(types::OP_FUNCTION2);
        put_string(&mut o.buf, code, aux.opts.compress);
    }
    for (db, keys, expires) in entries.databases() {
        o.buf.push(types::OP_SELECTDB);
        put_len(&mut o.buf, db as u64);
        o.buf.push(types::OP_RESIZEDB);
        put_len(&mut o.buf, keys);
        put_len(&mut o.buf, expires);
        entries.each(db, &mut |key, expire_at_ms, value| {
            if expire_at_ms != 0 {
                o.buf.push(types::OP_EXPIRETIME_MS);
                put_ms(&mut o.buf, expire_at_ms);
            }
            match value {
                FrozenValue::Copied(v) => write_key_value(&mut o.buf, key, v, &aux.opts),
                FrozenValue::Str(s) => {
                    o.buf.push(types::STRING);
                    put_string(&mut o.buf, key, aux.opts.compress);
                    put_string(&mut o.buf, s, aux.opts.compress);
                }
            }
            o.flush_some(false)?;
            if aux.key_save_delay_us > 0 {
                std::thread::sleep(std::time::Duration::from_micros(aux.key_save_delay_us));
            }
            Ok(())
        })?;
    }
    o.buf.push(types::OP_EOF);
    o.flush_some(true)?;
    let crc = if aux.checksum { o.crc } else { 0 };
    o.w.write_all(&crc.to_le_bytes())?;
    o.w.flush()
}

/// Type byte, key and value, as `rdbSaveKeyValuePair` after its opcodes.
pub fn write_key_value(buf: &mut Vec<u8>, key: &[u8], v: &SnapshotValue, opts: &EncodeOpts) {
    let at = buf.len();
    buf.push(0);
    put_string(buf, key, opts.compress);
    let t = write_object(buf, v, opts);
    buf[at] = t;
}

/// Append the body of `v` as `rdbSaveObject` writes it; returns its type byte.
pub fn write_object(buf: &mut Vec<u8>, v: &SnapshotValue, opts: &EncodeOpts) -> u8 {
    let c = opts.compress;
    match v {
        SnapshotValue::Str(s) => {
            put_string(buf, s, c);
            types::STRING
        }
        SnapshotValue::Int(n) => {
            put_int_string(buf, *n);
            types::STRING
        }
        SnapshotValue::List(items) => {
            write_quicklist(buf, items.iter().map(|b| &b[..]), items.len(), opts);
            types::LIST_QUICKLIST_2
        }
        SnapshotValue::Hash(pairs) => {
            let packed = pairs.len() <= opts.hash_max_listpack_entries
                && pairs
                    .iter()
                    .all(|(f, v)| f.len() <= opts.hash_max_listpack_value && v.len() <= opts.hash_max_listpack_value);
            if packed {
                let mut lp = Builder::new();
                for (f, v) in pairs {
                    lp.push(f);
                    lp.push(v);
                }
                put_string(buf, &lp.finish(), c);
                types::HASH_LISTPACK
            } else {
                put_len(buf, pairs.len() as u64);
                for (f, v) in pairs {
                    put_string(buf, f, c);
                    put_string(buf, v, c);
                }
                types::HASH
            }
        }
        SnapshotValue::Set(members) => {
            let ints: Option<Vec<i64>> = if members.len() <= opts.set_max_intset_entries {
                members.iter().map(|m| listpack::canonical_int(m)).collect()
            } else {
                None
            };
            match ints {
                Some(ints) => {
                    put_string(buf, &super::legacy::intset_blob(&ints), c);
                    types::SET_INTSET
                }
                None => {
                    put_len(buf, members.len() as u64);
                    for m in members {
                        put_string(buf, m, c);
                    }
                    types::SET
                }
            }
        }
        SnapshotValue::Zset(pairs) => {
            let scores: Vec<f64> =
                pairs.iter().map(|(s, _)| crate::db::zset::score::parse_score(s).unwrap_or(0.0)).collect();
            let packed = pairs.len() <= opts.zset_max_listpack_entries
                && pairs.iter().all(|(_, m)| m.len() <= opts.zset_max_listpack_value);
            if packed {
                let mut lp = Builder::new();
                for ((_, m), s) in pairs.iter().zip(&scores) {
                    lp.push(m);
                    lp.push(d2string(*s).as_bytes());
                }
                put_string(buf, &lp.finish(), c);
                types::ZSET_LISTPACK
            } else {
                put_len(buf, pairs.len() as u64);
                for ((_, m), s) in pairs.iter().zip(&scores).rev() {
                    put_string(buf, m, c);
                    put_double(buf, *s);
                }
                types::ZSET_2
            }
        }
        SnapshotValue::Stream(s) => {
            write_stream(buf, s, opts);
            types::STREAM_LISTPACKS_2
        }
    }
}

/// A list as QUICKLIST_2: nodes cut where Redis's `quicklistPushTail` would cut them for
/// `list-max-listpack-size` (`_quicklistNodeAllowInsert`), each a PACKED listpack, or a PLAIN
/// node for an element of 1 GiB or more.
fn write_quicklist<'a>(buf: &mut Vec<u8>, items: impl Iterator<Item = &'a [u8]>, _n: usize, opts: &EncodeOpts) {
    const PLAIN: u64 = 1;
    const PACKED: u64 = 2;
    const LARGE: usize = 1 << 30;
    let fill = opts.list_max_listpack_size;
    let levels = [4096usize, 8192, 16384, 32768, 65536];
    let allow = |node_sz: usize, count: usize, sz: usize| -> bool {
        if sz >= LARGE {
            return false;
        }
        let new_sz = node_sz + sz + 8;
        if fill < 0 {
            let off = (-fill - 1) as usize;
            if off < levels.len() && new_sz <= levels[off] {
                return true;
            }
        }
        if new_sz > 8192 {
            return false;
        }
        (count as i64) < fill
    };
    let mut nodes: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut cur: Option<Builder> = None;
    for it in items {
        if let Some(b) = &cur
            && allow(b.bytes(), b.len(), it.len())
        {
            cur.as_mut().expect("node").push(it);
            continue;
        }
        if let Some(b) = cur.take() {
            nodes.push((PACKED, b.finish()));
        }
        if it.len() >= LARGE {
            nodes.push((PLAIN, it.to_vec()));
        } else {
            let mut b = Builder::new();
            b.push(it);
            cur = Some(b);
        }
    }
    if let Some(b) = cur.take() {
        nodes.push((PACKED, b.finish()));
    }
    put_len(buf, nodes.len() as u64);
    for (container, data) in nodes {
        put_len(buf, container);
        put_string(buf, &data, opts.compress);
    }
}

/// The 16-byte big-endian form of a stream ID (radix-tree keys, PEL entries).
fn raw_id(id: StreamId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

/// A stream as STREAM_LISTPACKS_2: its nodes with their tombstones (deleted entries stay in a
/// node until all of it is deleted, as Redis keeps them), a node cut further where
/// `streamAppendItem` would have started a new one (`stream-node-max-bytes`,
/// `stream-node-max-entries`), then the metadata and the consumer groups with their PELs and
/// consumers.
fn write_stream(buf: &mut Vec<u8>, s: &Stream, opts: &EncodeOpts) {
    let c = opts.compress;
    let max_bytes =
        if opts.stream_node_max_bytes == 0 || opts.stream_node_max_bytes > crate::db::stream::MAX_ENTRY_BYTES {
            crate::db::stream::MAX_ENTRY_BYTES
        } else {
            opts.stream_node_max_bytes
        };
    type Entry<'a> = (StreamId, bool, Vec<(&'a [u8], &'a [u8])>);
    // (master ID, master fields, entries, bytes of the listpack so far)
    struct Node<'a> {
        master: StreamId,
        fields: Vec<&'a [u8]>,
        entries: Vec<Entry<'a>>,
        bytes: usize,
        /// Cut from a node that holds no live entry (one that trimming emptied and Redis keeps).
        emptied: bool,
    }
    fn same_fields(e: &Entry<'_>, fields: &[&[u8]]) -> bool {
        e.2.len() == fields.len() && e.2.iter().zip(fields).all(|(p, f)| p.0 == *f)
    }
    fn entry_bytes(n: &Node<'_>, e: &Entry<'_>) -> usize {
        let same = same_fields(e, &n.fields);
        let nf = e.2.len() as i64;
        let mut size = listpack::int_entry_size(i64::from(same) * 2 + i64::from(e.1));
        size += listpack::int_entry_size(e.0.ms.wrapping_sub(n.master.ms) as i64);
        size += listpack::int_entry_size(e.0.seq.wrapping_sub(n.master.seq) as i64);
        if !same {
            size += listpack::int_entry_size(nf);
        }
        for (f, v) in &e.2 {
            if !same {
                size += listpack::entry_size(f);
            }
            size += listpack::entry_size(v);
        }
        size + listpack::int_entry_size(if same { nf + 3 } else { 2 * nf + 4 })
    }
    let mut nodes: Vec<Node> = Vec::new();
    s.raw_nodes(|master, fields, entries| {
        let mut first = true;
        let emptied = entries.iter().all(|e| e.1);
        for e in entries {
            let totelelen: usize = e.2.iter().map(|(f, v)| f.len() + v.len()).sum();
            let split = !first
                && nodes.last().is_some_and(|n| {
                    n.bytes + totelelen >= max_bytes
                        || (opts.stream_node_max_entries != 0 && n.entries.len() >= opts.stream_node_max_entries)
                });
            if first || split {
                let (m, f): (StreamId, Vec<&[u8]>) =
                    if first { (master, fields.clone()) } else { (e.0, e.2.iter().map(|p| p.0).collect()) };
                let mut bytes = 6 + 1 + 2 * listpack::int_entry_size(0) + listpack::int_entry_size(f.len() as i64);
                bytes += f.iter().map(|x| listpack::entry_size(x)).sum::<usize>() + listpack::int_entry_size(0);
                nodes.push(Node { master: m, fields: f, entries: Vec::new(), bytes, emptied });
                first = false;
            }
            let n = nodes.last_mut().expect("a node");
            let (live, dead) =
                n.entries.iter().fold((0i64, 0i64), |(l, d), x| if x.1 { (l, d + 1) } else { (l + 1, d) });
            n.bytes -= listpack::int_entry_size(live) + listpack::int_entry_size(dead);
            let (live, dead) = if e.1 { (live, dead + 1) } else { (live + 1, dead) };
            n.bytes += listpack::int_entry_size(live) + listpack::int_entry_size(dead);
            n.bytes += entry_bytes(n, &e);
            n.entries.push(e);
        }
    });
    // A node of ours that trimming emptied is written as it is (Redis keeps such a node too); a
    // node that only our cut at Redis's limits left without live entries is one that Redis's
    // XDEL would have freed, so it is not written.
    nodes.retain(|n| n.emptied || n.entries.iter().any(|e| !e.1));
    put_len(buf, nodes.len() as u64);
    for n in &nodes {
        put_string(buf, &raw_id(n.master), c);
        let mut lp = Builder::new();
        let dead = n.entries.iter().filter(|e| e.1).count() as i64;
        lp.push_int(n.entries.len() as i64 - dead);
        lp.push_int(dead);
        lp.push_int(n.fields.len() as i64);
        for f in &n.fields {
            lp.push(f);
        }
        lp.push_int(0);
        for e in &n.entries {
            let same = same_fields(e, &n.fields);
            let nf = e.2.len() as i64;
            lp.push_int(i64::from(same) * 2 + i64::from(e.1));
            lp.push_int(e.0.ms.wrapping_sub(n.master.ms) as i64);
            lp.push_int(e.0.seq.wrapping_sub(n.master.seq) as i64);
            if !same {
                lp.push_int(nf);
            }
            for (f, v) in &e.2 {
                if !same {
                    lp.push(f);
                }
                lp.push(v);
            }
            lp.push_int(if same { nf + 3 } else { 2 * nf + 4 });
        }
        put_string(buf, &lp.finish(), c);
    }
    let first = s.first_id();
    put_len(buf, s.len());
    put_len(buf, s.last_id.ms);
    put_len(buf, s.last_id.seq);
    put_len(buf, first.ms);
    put_len(buf, first.seq);
    put_len(buf, s.max_deleted_id.ms);
    put_len(buf, s.max_deleted_id.seq);
    put_len(buf, s.entries_added);
    put_len(buf, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_string(buf, name, c);
        put_len(buf, g.last_id.ms);
        put_len(buf, g.last_id.seq);
        put_len(buf, g.entries_read as u64);
        put_len(buf, g.pel.len() as u64);
        for (id, nack) in &g.pel {
            buf.extend_from_slice(&raw_id(*id));
            put_ms(buf, nack.delivery_time);
            put_len(buf, nack.delivery_count);
        }
        put_len(buf, g.consumers.len() as u64);
        for (cname, cons) in &g.consumers {
            put_string(buf, cname, c);
            put_ms(buf, cons.seen_time);
            put_len(buf, cons.pel.len() as u64);
            for id in &cons.pel {
                buf.extend_from_slice(&raw_id(*id));
            }
        }
    }
}

/// A DUMP payload: the value's type and body, the RDB version (2 bytes LE) and the CRC64 of all
/// that (8 bytes LE).
pub fn dump_payload(v: &SnapshotValue, opts: &EncodeOpts) -> Vec<u8> {
    let mut buf = vec![0u8];
    let t = write_object(&mut buf, v, opts);
    buf[0] = t;
    buf.extend_from_slice(&super::RDB_VERSION.to_le_bytes());
    let crc = super::crc64::crc64(0, &buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}
