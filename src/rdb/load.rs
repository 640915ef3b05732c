//! Reading RDB files and DUMP payloads: [`read_rdb`] walks a whole file and hands each key to a
//! sink; [`read_payload`] checks and decodes one DUMP payload; [`into_entry`] turns a loaded
//! value into a keyspace entry under the configured encodings.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;

use bytes::Bytes;

use super::listpack::{self, Item};
use super::{RDB_VERSION, RdbError, legacy, lzf, types};
use crate::db::stream::{Consumer, Group, Nack, Stream, StreamId};
use crate::db::zset::score::format_score;
use crate::db::{Entry, SnapshotValue};

/// One key read from a file.
#[derive(Debug)]
pub struct LoadedKey {
    pub db: usize,
    pub key: Bytes,
    pub value: SnapshotValue,
    /// Absolute expiry in ms since the epoch; 0 = none.
    pub expire_at_ms: u64,
    /// `IDLE` opcode (seconds) and `FREQ` opcode (LFU counter) when present.
    pub idle_s: Option<u64>,
    pub freq: Option<u8>,
}

/// What a file said besides its keys.
#[derive(Debug, Default)]
pub struct RdbInfo {
    pub version: u16,
    pub aux: Vec<(Bytes, Bytes)>,
    /// Function libraries' code, in file order.
    pub functions: Vec<Bytes>,
    /// Keys handed to the sink.
    pub keys: u64,
    /// Empty collections skipped (as Redis skips them).
    pub empty_skipped: u64,
    /// Keys [`load_into`] skipped as already expired.
    pub expired_skipped: u64,
    /// Those keys, with their database: a primary restoring its replication history sends them
    /// to its replicas as `DEL`s (they still hold them).
    pub expired_keys: Vec<(usize, Bytes)>,
}

impl RdbInfo {
    pub fn aux(&self, name: &str) -> Option<&[u8]> {
        self.aux.iter().rev().find(|(k, _)| &k[..] == name.as_bytes()).map(|(_, v)| &v[..])
    }
}

fn corrupt<T>(what: impl Into<String>) -> Result<T, RdbError> {
    Err(RdbError::Corrupt(what.into()))
}

/// The input, checksummed as it is read.
pub(crate) struct Src<'r, R: Read> {
    r: &'r mut R,
    crc: u64,
    /// Bytes read so far.
    pub pos: u64,
}

/// A length or a special string encoding.
enum Len {
    Plain(u64),
    Enc(u8),
}

impl<'r, R: Read> Src<'r, R> {
    pub(crate) fn new(r: &'r mut R) -> Self {
        Src { r, crc: 0, pos: 0 }
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RdbError> {
        self.r.read_exact(buf)?;
        self.crc = super::crc64::crc64(self.crc, buf);
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, RdbError> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        let mut b = [0u8; N];
        self.fill(&mut b)?;
        Ok(b)
    }

    /// `n` bytes, read in pieces so that a lying length costs no more memory than the input has.
    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, RdbError> {
        if n <= 1 << 16 {
            // Small (every key and most values): one exact allocation, one read.
            let mut out = vec![0u8; n as usize];
            self.fill(&mut out)?;
            return Ok(out);
        }
        let mut out = Vec::with_capacity(n.min(1 << 20) as usize);
        let got = (&mut *self.r).take(n).read_to_end(&mut out)?;
        if (got as u64) < n {
            return Err(RdbError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        self.crc = super::crc64::crc64(self.crc, &out);
        self.pos += n;
        Ok(out)
    }

    fn len_or_enc(&mut self) -> Result<Len, RdbError> {
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3f)),
            1 => Len::Plain((u64::from(b & 0x3f) << 8) | u64::from(self.u8()?)),
            2 if b == 0x80 => Len::Plain(u64::from(u32::from_be_bytes(self.array()?))),
            2 if b == 0x81 => Len::Plain(u64::from_be_bytes(self.array()?)),
            2 => return corrupt(format!("Unknown length encoding {b} in rdbLoadLen()")),
            _ => Len::Enc(b & 0x3f),
        })
    }

    fn len(&mut self) -> Result<u64, RdbError> {
        match self.len_or_enc()? {
            Len::Plain(n) => Ok(n),
            Len::Enc(_) => corrupt("unexpected string encoding where a length was expected"),
        }
    }

    /// A length used to count items (bounded by what fits in memory).
    fn count(&mut self) -> Result<u64, RdbError> {
        self.len()
    }

    fn string(&mut self) -> Result<Vec<u8>, RdbError> {
        match self.len_or_enc()? {
            Len::Plain(n) => self.bytes(n),
            Len::Enc(super::encode::ENC_INT8) => Ok((self.u8()? as i8).to_string().into_bytes()),
            Len::Enc(super::encode::ENC_INT16) => Ok(i16::from_le_bytes(self.array()?).to_string().into_bytes()),
            Len::Enc(super::encode::ENC_INT32) => Ok(i32::from_le_bytes(self.array()?).to_string().into_bytes()),
            Len::Enc(super::encode::ENC_LZF) => {
                let clen = self.len()?;
                let len = self.len()?;
                if len == 0 {
                    return corrupt("Invalid LZF compressed string");
                }
                let c = self.bytes(clen)?;
                if len > c.len() as u64 * 300 + 64 {
                    return corrupt("Invalid LZF compressed string");
                }
                lzf::decompress(&c, len as usize).map_or_else(|| corrupt("Invalid LZF compressed string"), Ok)
            }
            Len::Enc(e) => corrupt(format!("Unknown RDB string encoding type {e}")),
        }
    }

    fn bstring(&mut self) -> Result<Bytes, RdbError> {
        self.string().map(Bytes::from)
    }

    fn double_text(&mut self) -> Result<f64, RdbError> {
        let n = self.u8()?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                let b = self.bytes(u64::from(n))?;
                std::str::from_utf8(&b)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .map_or_else(|| corrupt("bad double value"), Ok)
            }
        }
    }

    fn double_bin(&mut self) -> Result<f64, RdbError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    fn ms(&mut self) -> Result<u64, RdbError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

/// Read a whole RDB file from `input` (from its `REDIS` magic to its checksum), handing every
/// key to `sink` in file order.
pub fn read_rdb(
    input: &mut impl Read,
    sink: impl FnMut(LoadedKey) -> Result<(), RdbError>,
) -> Result<RdbInfo, RdbError> {
    read_rdb_with(input, |_, _| {}, sink)
}

/// [`read_rdb`] that also hands each `RESIZEDB` hint (database, keys) to `on_resize` before the
/// database's keys, so that a loader can size its table once.
pub fn read_rdb_with(
    input: &mut impl Read,
    mut on_resize: impl FnMut(usize, u64),
    mut sink: impl FnMut(LoadedKey) -> Result<(), RdbError>,
) -> Result<RdbInfo, RdbError> {
    let mut src = Src::new(input);
    let magic: [u8; 9] = src.array()?;
    if &magic[..5] != b"REDIS" {
        return Err(RdbError::BadVersion("Wrong signature trying to load DB from file".into()));
    }
    let version = std::str::from_utf8(&magic[5..]).ok().and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
    if !(1..=RDB_VERSION).contains(&version) {
        return Err(RdbError::BadVersion(format!("Can't handle RDB format version {version}")));
    }
    let mut info = RdbInfo { version, ..Default::default() };
    read_body(&mut src, version, &mut info, &mut on_resize, &mut sink)?;
    Ok(info)
}

/// Everything after the magic: opcodes and keys up to EOF, then the checksum.
pub(crate) fn read_body<R: Read>(
    src: &mut Src<'_, R>,
    version: u16,
    info: &mut RdbInfo,
    on_resize: &mut dyn FnMut(usize, u64),
    sink: &mut dyn FnMut(LoadedKey) -> Result<(), RdbError>,
) -> Result<(), RdbError> {
    let mut db = 0usize;
    let mut expire = 0u64;
    let mut idle = None;
    let mut freq = None;
    loop {
        let t = src.u8()?;
        match t {
            types::OP_EXPIRETIME => {
                expire = u64::from(u32::from_le_bytes(src.array()?)) * 1000;
                continue;
            }
            types::OP_EXPIRETIME_MS => {
                expire = src.ms()?;
                continue;
            }
            types::OP_FREQ => {
                freq = Some(src.u8()?);
                continue;
            }
            types::OP_IDLE => {
                idle = Some(src.len()?);
                continue;
            }
            types::OP_EOF => break,
            types::OP_SELECTDB => {
                db = usize::try_from(src.len()?).map_err(|_| RdbError::Corrupt("bad db number".into()))?;
                continue;
            }
            types::OP_RESIZEDB => {
                let keys = src.len()?;
                src.len()?;
                on_resize(db, keys);
                continue;
            }
            types::OP_AUX => {
                let k = src.bstring()?;
                let v = src.bstring()?;
                if &k[..] == b"used-mem"
                    && let Some(n) = std::str::from_utf8(&v).ok().and_then(|v| v.parse().ok())
                {
                    // INFO's `loading_rdb_used_mem` (Redis's `rdbLoadRio` sets it however it loads).
                    super::loading::rdb_used_mem(n);
                }
                info.aux.push((k, v));
                continue;
            }
            types::OP_MODULE_AUX => return corrupt("The RDB file contains AUX module data I can't load"),
            types::OP_FUNCTION => {
                return corrupt("Pre-release function format not supported.");
            }
            types::OP_FUNCTION2 => {
                info.functions.push(src.bstring()?);
                continue;
            }
            _ => {}
        }
        let key = src.bstring()?;
        let value = read_object(src, t)?;
        let e = std::mem::take(&mut expire);
        let (i, f) = (idle.take(), freq.take());
        match value {
            Some(value) => {
                info.keys += 1;
                sink(LoadedKey { db, key, value, expire_at_ms: e, idle_s: i, freq: f })?;
            }
            None => info.empty_skipped += 1,
        }
    }
    if version >= 5 {
        let expected = src.crc;
        let mut b = [0u8; 8];
        src.r.read_exact(&mut b)?;
        let stored = u64::from_le_bytes(b);
        if stored != 0 && stored != expected {
            return Err(RdbError::BadChecksum);
        }
    }
    Ok(())
}

/// Check a DUMP payload's version and checksum (`verifyDumpPayload`) and decode its value. Errors
/// are RESTORE's: the version/checksum one or the bad-format one.
pub fn read_payload(p: &[u8]) -> Result<SnapshotValue, PayloadError> {
    if p.len() < 10 {
        return Err(PayloadError::VersionOrChecksum);
    }
    let (body, footer) = p.split_at(p.len() - 10);
    let ver = u16::from_le_bytes([footer[0], footer[1]]);
    if ver > RDB_VERSION {
        return Err(PayloadError::VersionOrChecksum);
    }
    let crc = super::crc64::crc64(0, &p[..p.len() - 8]);
    if crc.to_le_bytes() != footer[2..] {
        return Err(PayloadError::VersionOrChecksum);
    }
    let mut r: &[u8] = body;
    let mut src = Src::new(&mut r);
    let t = src.u8().map_err(|_| PayloadError::BadFormat)?;
    match read_object(&mut src, t) {
        Ok(Some(v)) => Ok(v),
        _ => Err(PayloadError::BadFormat),
    }
}

/// Why RESTORE refuses a payload.
#[derive(Debug, PartialEq, Eq)]
pub enum PayloadError {
    VersionOrChecksum,
    BadFormat,
}

fn pairs_of<'a>(items: Vec<Item<'a>>, what: &str) -> Result<Vec<(Item<'a>, Item<'a>)>, RdbError> {
    if !items.len().is_multiple_of(2) {
        return corrupt(format!("{what}: odd number of elements"));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Ok(out)
}

fn item_score(i: Item<'_>) -> Result<f64, RdbError> {
    let x = match i {
        Item::Int(n) => n as f64,
        Item::Str(s) => std::str::from_utf8(s)
            .ok()
            .and_then(|t| crate::db::zset::score::parse_score(t.as_bytes()))
            .map_or_else(|| corrupt("bad sorted set score"), Ok)?,
    };
    if x.is_nan() {
        return corrupt("Zset with NAN score detected");
    }
    Ok(x)
}

fn unique_hash(pairs: Vec<(Bytes, Bytes)>) -> Result<SnapshotValue, RdbError> {
    let mut seen = HashSet::with_capacity(pairs.len());
    for (f, _) in &pairs {
        if !seen.insert(f.clone()) {
            return corrupt("Duplicate hash fields detected");
        }
    }
    Ok(SnapshotValue::Hash(pairs))
}

fn unique_zset(mut pairs: Vec<(Bytes, f64)>) -> Result<SnapshotValue, RdbError> {
    let mut seen = HashSet::with_capacity(pairs.len());
    for (m, s) in &pairs {
        if s.is_nan() {
            return corrupt("Zset with NAN score detected");
        }
        if !seen.insert(m.clone()) {
            return corrupt("Duplicate zset fields detected");
        }
    }
    pairs.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    Ok(SnapshotValue::Zset(pairs.into_iter().map(|(m, s)| (Bytes::from(format_score(s)), m)).collect()))
}

/// Read the value of type `t`; None for an empty collection (skipped as Redis skips them).
pub(crate) fn read_object<R: Read>(src: &mut Src<'_, R>, t: u8) -> Result<Option<SnapshotValue>, RdbError> {
    let cap = |n: u64| n.min(4096) as usize;
    let v = match t {
        types::STRING => SnapshotValue::Str(src.bstring()?),
        types::LIST => {
            let n = src.count()?;
            let mut items = Vec::with_capacity(cap(n));
            for _ in 0..n {
                items.push(src.bstring()?);
            }
            SnapshotValue::List(items)
        }
        types::SET => {
            let n = src.count()?;
            let mut items = Vec::with_capacity(cap(n));
            let mut seen = HashSet::with_capacity(cap(n));
            for _ in 0..n {
                let m = src.bstring()?;
                if !seen.insert(m.clone()) {
                    return corrupt("Duplicate set members detected");
                }
                items.push(m);
            }
            SnapshotValue::Set(items)
        }
        types::ZSET | types::ZSET_2 => {
            let n = src.count()?;
            let mut pairs = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let m = src.bstring()?;
                let s = if t == types::ZSET_2 { src.double_bin()? } else { src.double_text()? };
                pairs.push((m, s));
            }
            unique_zset(pairs)?
        }
        types::HASH => {
            let n = src.count()?;
            let mut pairs = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let f = src.bstring()?;
                let v = src.bstring()?;
                pairs.push((f, v));
            }
            unique_hash(pairs)?
        }
        types::HASH_ZIPMAP => {
            let blob = src.string()?;
            let pairs = legacy::parse_zipmap(&blob).map_or_else(|| corrupt("Zipmap integrity check failed."), Ok)?;
            unique_hash(
                pairs.into_iter().map(|(f, v)| (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v))).collect(),
            )?
        }
        types::LIST_ZIPLIST => {
            let blob = src.string()?;
            let items =
                legacy::parse_ziplist(&blob).map_or_else(|| corrupt("List ziplist integrity check failed."), Ok)?;
            SnapshotValue::List(items.into_iter().map(Item::to_bytes).collect())
        }
        types::SET_INTSET => {
            let blob = src.string()?;
            let ints = legacy::parse_intset(&blob).map_or_else(|| corrupt("Intset integrity check failed."), Ok)?;
            SnapshotValue::Set(ints.into_iter().map(|i| Bytes::from(i.to_string())).collect())
        }
        types::ZSET_ZIPLIST | types::ZSET_LISTPACK | types::HASH_ZIPLIST | types::HASH_LISTPACK => {
            let blob = src.string()?;
            let zip = t == types::ZSET_ZIPLIST || t == types::HASH_ZIPLIST;
            let items = if zip { legacy::parse_ziplist(&blob) } else { listpack::parse(&blob) };
            let items = items.map_or_else(|| corrupt("Listpack/ziplist integrity check failed."), Ok)?;
            let pairs = pairs_of(items, "hash or sorted set")?;
            if t == types::ZSET_ZIPLIST || t == types::ZSET_LISTPACK {
                let mut out = Vec::with_capacity(pairs.len());
                for (m, s) in pairs {
                    out.push((m.to_bytes(), item_score(s)?));
                }
                unique_zset(out)?
            } else {
                unique_hash(pairs.into_iter().map(|(f, v)| (f.to_bytes(), v.to_bytes())).collect())?
            }
        }
        types::LIST_QUICKLIST | types::LIST_QUICKLIST_2 => {
            let nodes = src.count()?;
            let mut items = Vec::new();
            for _ in 0..nodes {
                let container = if t == types::LIST_QUICKLIST_2 { src.len()? } else { 2 };
                let blob = src.string()?;
                match container {
                    1 => items.push(Bytes::from(blob)),
                    2 => {
                        let parsed = if t == types::LIST_QUICKLIST {
                            legacy::parse_ziplist(&blob)
                        } else {
                            listpack::parse(&blob)
                        };
                        let parsed = parsed.map_or_else(|| corrupt("Quicklist node integrity check failed."), Ok)?;
                        items.extend(parsed.into_iter().map(Item::to_bytes));
                    }
                    _ => return corrupt(format!("Quicklist integrity check failed: bad container {container}")),
                }
            }
            SnapshotValue::List(items)
        }
        types::STREAM_LISTPACKS | types::STREAM_LISTPACKS_2 => SnapshotValue::Stream(Box::new(read_stream(src, t)?)),
        types::MODULE | types::MODULE_2 => {
            return corrupt("The RDB file contains module data I can't load: no matching module type");
        }
        _ => return corrupt(format!("Unknown RDB encoding type {t}")),
    };
    let empty = match &v {
        SnapshotValue::List(x) => x.is_empty(),
        SnapshotValue::Set(x) => x.is_empty(),
        SnapshotValue::Hash(x) => x.is_empty(),
        SnapshotValue::Zset(x) => x.is_empty(),
        _ => false,
    };
    Ok((!empty).then_some(v))
}

fn id_of(raw: &[u8]) -> StreamId {
    StreamId::new(
        u64::from_be_bytes(raw[..8].try_into().expect("8 bytes")),
        u64::from_be_bytes(raw[8..16].try_into().expect("8 bytes")),
    )
}

fn item_int(i: Option<&Item<'_>>) -> Result<i64, RdbError> {
    match i {
        Some(Item::Int(n)) => Ok(*n),
        Some(Item::Str(s)) => {
            listpack::canonical_int(s).map_or_else(|| corrupt("stream listpack: integer expected"), Ok)
        }
        None => corrupt("stream listpack: truncated entry"),
    }
}

fn read_stream<R: Read>(src: &mut Src<'_, R>, t: u8) -> Result<Stream, RdbError> {
    let mut s = Stream::default();
    let nodes = src.count()?;
    let mut last: Option<StreamId> = None;
    for _ in 0..nodes {
        let key = src.string()?;
        if key.len() != 16 {
            return corrupt("Stream node key entry is not the size of a stream ID");
        }
        let master = id_of(&key);
        let blob = src.string()?;
        let items = listpack::parse(&blob).map_or_else(|| corrupt("Stream listpack integrity check failed."), Ok)?;
        if items.is_empty() {
            return corrupt("Empty listpack inside stream");
        }
        let mut it = 0usize;
        let mut next = |items: &[Item<'_>]| -> Result<i64, RdbError> {
            let v = item_int(items.get(it));
            it += 1;
            v
        };
        let _count = next(&items)?;
        let _deleted = next(&items)?;
        let nmaster = next(&items)?;
        if nmaster < 0 || nmaster as usize > items.len() {
            return corrupt("stream listpack: bad master field count");
        }
        let start = it;
        let master_fields: Vec<Bytes> =
            items.get(start..start + nmaster as usize).unwrap_or(&[]).iter().map(|i| i.to_bytes()).collect();
        if master_fields.len() != nmaster as usize {
            return corrupt("stream listpack: truncated master entry");
        }
        let mut it = start + nmaster as usize;
        let mut take = |items: &[Item<'_>]| -> Result<i64, RdbError> {
            let v = item_int(items.get(it));
            it += 1;
            v
        };
        if take(&items)? != 0 {
            return corrupt("stream listpack: bad master entry terminator");
        }
        let mut entries: Vec<(StreamId, bool, Vec<Bytes>)> = Vec::new();
        while it < items.len() {
            let flags = item_int(items.get(it))?;
            let ms = item_int(items.get(it + 1))? as u64;
            let seq = item_int(items.get(it + 2))? as u64;
            it += 3;
            let id = StreamId::new(master.ms.wrapping_add(ms), master.seq.wrapping_add(seq));
            let mut pairs = Vec::new();
            if flags & 2 != 0 {
                for f in &master_fields {
                    let v = items.get(it).map_or_else(|| corrupt("stream listpack: truncated entry"), Ok)?;
                    pairs.push(f.clone());
                    pairs.push(v.to_bytes());
                    it += 1;
                }
            } else {
                let nf = item_int(items.get(it))?;
                it += 1;
                if nf < 0 || (nf as usize).saturating_mul(2) > items.len() - it.min(items.len()) {
                    return corrupt("stream listpack: bad field count");
                }
                for _ in 0..nf * 2 {
                    pairs.push(items[it].to_bytes());
                    it += 1;
                }
            }
            let _lp_count = item_int(items.get(it))?;
            it += 1;
            // Tombstones are kept in their node (see `Stream::push_loaded_node`), so every entry's
            // ID must grow, deleted or not.
            if last.is_some_and(|l| id <= l) || id < master {
                return corrupt("stream entries out of order");
            }
            last = Some(id);
            entries.push((id, flags & 1 != 0, pairs));
        }
        if entries.is_empty() {
            return corrupt("Empty listpack inside stream");
        }
        s.push_loaded_node(master, &master_fields, &entries);
    }
    let _length = src.len()?;
    s.last_id = StreamId::new(src.len()?, src.len()?);
    if last.is_some_and(|l| l > s.last_id) {
        return corrupt("stream last ID below an entry's ID");
    }
    let v2 = t == types::STREAM_LISTPACKS_2;
    if v2 {
        let _first = StreamId::new(src.len()?, src.len()?);
        s.max_deleted_id = StreamId::new(src.len()?, src.len()?);
        s.entries_added = src.len()?;
    } else {
        s.max_deleted_id = StreamId::MIN;
        s.entries_added = s.len();
    }
    let groups = src.count()?;
    let mut out_groups = BTreeMap::new();
    for _ in 0..groups {
        let name = src.bstring()?;
        let last_id = StreamId::new(src.len()?, src.len()?);
        let entries_read = if v2 { src.len()? as i64 } else { s.estimate_distance(last_id) };
        let mut g = Group::new(last_id, entries_read);
        let pel_n = src.count()?;
        let mut unowned: BTreeSet<StreamId> = BTreeSet::new();
        for _ in 0..pel_n {
            let id = id_of(&src.array::<16>()?);
            let delivery_time = src.ms()?;
            let delivery_count = src.len()?;
            if g.pel.insert(id, Nack { consumer: Bytes::new(), delivery_time, delivery_count }).is_some() {
                return corrupt("Duplicated global PEL entry loading stream consumer group");
            }
            unowned.insert(id);
        }
        let consumers = src.count()?;
        for _ in 0..consumers {
            let cname = src.bstring()?;
            if g.consumers.contains_key(&cname) {
                return corrupt("Duplicate stream consumer detected.");
            }
            let seen_time = src.ms()?;
            let n = src.count()?;
            let mut pel = BTreeSet::new();
            for _ in 0..n {
                let id = id_of(&src.array::<16>()?);
                match g.pel.get_mut(&id) {
                    Some(nack) if unowned.remove(&id) => nack.consumer = cname.clone(),
                    Some(_) => return corrupt("Duplicated consumer PEL entry loading a stream consumer group"),
                    None => return corrupt("Consumer entry not found in group global PEL"),
                }
                pel.insert(id);
            }
            g.consumers.insert(cname, Consumer { seen_time, pel });
        }
        if !unowned.is_empty() {
            return corrupt("Stream CG PEL entry without consumer");
        }
        if out_groups.insert(name, g).is_some() {
            return corrupt("Duplicated consumer group name");
        }
    }
    s.groups = out_groups;
    Ok(s)
}

/// A keyspace entry for a loaded value, in the encodings the configuration gives.
pub fn into_entry(v: SnapshotValue, expire_at_ms: u64, cfg: &crate::config::Config) -> Entry {
    use crate::db::compact::{Hash, HashLimits, List, Set, SetLimits};
    use crate::db::zset::{SortedSet, ZsetLimits};
    match v {
        SnapshotValue::Str(b) => Entry::string(b, expire_at_ms),
        SnapshotValue::Int(n) => Entry::int(n, expire_at_ms),
        SnapshotValue::List(items) => Entry::list(List::from_items(items, cfg.list_max_listpack_size), expire_at_ms),
        SnapshotValue::Hash(pairs) => {
            let limits = HashLimits {
                max_listpack_entries: cfg.hash_max_listpack_entries,
                max_listpack_value: cfg.hash_max_listpack_value,
            };
            let mut h = Hash::new();
            if pairs.len() > limits.max_listpack_entries {
                h.convert();
            }
            for (f, v) in &pairs {
                h.set(f, v, &limits);
            }
            Entry::collection(h, expire_at_ms)
        }
        SnapshotValue::Set(members) => {
            let limits = SetLimits { max_intset_entries: cfg.set_max_intset_entries };
            let mut s = Set::for_first(members.first().map_or(&b""[..], |m| &m[..]));
            for m in &members {
                s.insert(m, &limits);
            }
            Entry::collection(s, expire_at_ms)
        }
        SnapshotValue::Zset(pairs) => {
            let limits = ZsetLimits {
                max_listpack_entries: cfg.zset_max_listpack_entries,
                max_listpack_value: cfg.zset_max_listpack_value,
            };
            let entries =
                pairs.into_iter().map(|(s, m)| (m, crate::db::zset::score::parse_score(&s).unwrap_or(0.0))).collect();
            Entry::collection(SortedSet::from_entries(entries, &limits), expire_at_ms)
        }
        SnapshotValue::Stream(s) => Entry::collection(*s, expire_at_ms),
    }
}

/// Load a whole RDB file into `ks` (startup, full sync), without AOF records (the caller loads
/// before the AOF is open, or rewrites it after), the keyspace `loading` (clients refused). A key
/// whose expiry is before `drop_expired_before` (ms; 0 = keep all) is skipped, as a primary skips
/// them (`rdbLoad` on a master). A database number beyond the configured ones is an error. The
/// function libraries are in the returned info for the caller to load.
///
/// The keys go in by batches ([`crate::db::Batch`]: each bucket's block is built once per batch,
/// not copied once per key), each put under every stripe (nothing else writes meanwhile: the
/// keyspace is loading; the stripes also keep out a write that could run while it loads). A
/// duplicated key replaces the earlier one, as one insert per key did.
pub fn load_into(
    ks: &crate::db::Keyspace,
    cfg: &crate::config::Config,
    input: &mut impl Read,
    drop_expired_before: u64,
) -> Result<RdbInfo, RdbError> {
    let target = |db: usize, batch: &mut crate::db::Batch| {
        let seq = std::cell::Cell::new(0);
        ks.write_all(db, &seq).map().put_batch(batch);
    };
    load_with(ks.databases(), |db| ks.db(db), target, cfg, input, drop_expired_before)
}

/// [`load_into`] into maps that no client sees (one per database: `repl-diskless-load swapdb`'s
/// spares, see `Keyspace::take_spares`): no stripe is taken, every key is kept.
pub fn load_into_maps(
    maps: &[&crate::db::KeyMap],
    cfg: &crate::config::Config,
    input: &mut impl Read,
) -> Result<RdbInfo, RdbError> {
    let target = |db: usize, batch: &mut crate::db::Batch| maps[db].put_batch(batch);
    load_with(maps.len(), |db| maps[db], target, cfg, input, 0)
}

/// The loader of [`load_into`] and [`load_into_maps`]: `dbs` databases, `map(db)` sized from the
/// RESIZEDB hints, each full batch handed to `put(db, batch)`.
fn load_with<'m>(
    dbs: usize,
    map: impl Fn(usize) -> &'m crate::db::KeyMap,
    put: impl Fn(usize, &mut crate::db::Batch),
    cfg: &crate::config::Config,
    input: &mut impl Read,
    drop_expired_before: u64,
) -> Result<RdbInfo, RdbError> {
    let mut expired_keys = Vec::new();
    // The table is sized once per database from the RESIZEDB hint (no split of every block
    // while loading); a corrupt hint reserves at most 16M slots.
    let on_resize = |db: usize, keys: u64| {
        if db < dbs {
            map(db).reserve(keys.min(1 << 24) as usize);
        }
    };
    let mut batch = crate::db::Batch::new();
    let mut batch_db = 0;
    let put = |batch: &mut crate::db::Batch, db: usize| {
        if !batch.is_empty() {
            put(db, batch);
        }
    };
    // `key-load-delay` (Redis's testing knob, `debugDelay` per key loaded): microseconds slept per
    // key; negative, 1 µs once every |n| keys.
    let delay = cfg.get("key-load-delay").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let mut loaded = 0i64;
    let mut info = read_rdb_with(input, on_resize, |k| {
        if delay != 0 {
            loaded += 1;
            let us = if delay > 0 { delay } else { i64::from(loaded % delay == 0) };
            if us > 0 {
                std::thread::sleep(std::time::Duration::from_micros(us as u64));
            }
        }
        if k.db >= dbs {
            return Err(RdbError::Corrupt(format!(
                "FATAL: Data file was created with a Redis server configured to handle more than {dbs} databases. Exiting"
            )));
        }
        if k.expire_at_ms != 0 && k.expire_at_ms < drop_expired_before {
            expired_keys.push((k.db, k.key));
            return Ok(());
        }
        if k.db != batch_db {
            put(&mut batch, batch_db);
            batch_db = k.db;
        }
        let access = crate::db::evict::access_from(k.idle_s, k.freq);
        batch.push(&k.key, into_entry(k.value, k.expire_at_ms, cfg), access);
        if batch.is_full() {
            put(&mut batch, batch_db);
        }
        Ok(())
    })?;
    put(&mut batch, batch_db);
    info.keys -= expired_keys.len() as u64;
    info.expired_skipped = expired_keys.len() as u64;
    info.expired_keys = expired_keys;
    Ok(info)
}
