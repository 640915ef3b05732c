//! A point-in-time copy of the keyspace for AOF rewrite, taken while every stripe is held
//! exclusively (no write in progress), and its rendering as the minimal commands that rebuild it.
//! Strings are shared by reference (`Bytes`), collections are copied under their cell lock.
//! Mirrors the rewrite part of Redis's `aof.c` (`rewriteAppendOnlyFileRio`).

use bytes::Bytes;

use super::zset::score::format_score;
use super::{Keyspace, ValueRef};
use crate::sync::Ordering;

/// One key of the snapshot.
#[derive(Debug)]
pub struct SnapshotEntry {
    pub db: usize,
    pub key: Bytes,
    pub value: SnapshotValue,
    pub expire_at_ms: u64,
}

#[derive(Debug)]
pub enum SnapshotValue {
    Str(Bytes),
    Int(i64),
    List(Vec<Bytes>),
    /// Field, value pairs.
    Hash(Vec<(Bytes, Bytes)>),
    Set(Vec<Bytes>),
    /// (Score as `format_score` writes it, member) pairs, lowest first.
    Zset(Vec<(Bytes, Bytes)>),
    /// A copy of a stream, entries and groups.
    Stream(Box<super::stream::Stream>),
}

/// Items per RPUSH/SADD (field-value pairs per HSET, score-member pairs per ZADD) in a rewritten file (Redis's
/// AOF_REWRITE_ITEMS_PER_CMD).
const ITEMS_PER_CMD: usize = 64;

impl SnapshotValue {
    /// A copy of `v` (collections copied under their cell lock).
    pub fn of(v: ValueRef<'_>) -> SnapshotValue {
        match v {
            ValueRef::Small(s) => SnapshotValue::Str(Bytes::copy_from_slice(s)),
            ValueRef::Str(b) => SnapshotValue::Str(b.clone()),
            ValueRef::Raw(c) => SnapshotValue::Str(Bytes::copy_from_slice(&c.lock().items.0)),
            // Acquire: pairs with the AcqRel CAS of INCR (none runs now, but be exact).
            ValueRef::Int(n) => SnapshotValue::Int(n.load(Ordering::Acquire)),
            ValueRef::List(l) => SnapshotValue::List(l.lock().items.to_vec()),
            ValueRef::Hash(h) => SnapshotValue::Hash(
                h.lock().items.iter().map(|(f, v)| (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v))).collect(),
            ),
            ValueRef::Set(m) => SnapshotValue::Set(m.lock().items.to_vec()),
            ValueRef::Stream(x) => SnapshotValue::Stream(Box::new(x.lock().items.clone())),
            ValueRef::Zset(z) => SnapshotValue::Zset(
                z.lock().items.entries().into_iter().map(|(m, s)| (Bytes::from(format_score(s)), m)).collect(),
            ),
        }
    }
}

impl Keyspace {
    /// Copy every live key. The caller holds every stripe exclusively (`write_all`).
    pub fn snapshot(&self, now_ms: u64) -> Vec<SnapshotEntry> {
        let mut out = Vec::new();
        for db in 0..self.databases() {
            self.db(db).for_each(|k, e| {
                if e.is_expired(now_ms) {
                    return;
                }
                let value = SnapshotValue::of(e.value());
                out.push(SnapshotEntry { db, key: Bytes::copy_from_slice(k), value, expire_at_ms: e.expire_at_ms() });
            });
        }
        out
    }
}

impl Keyspace {
    /// Start an AOF rewrite (BGREWRITEAOF, automatic rewrite): with every stripe held (no write in
    /// progress anywhere) push the rewrite marker into the AOF queue and copy the keyspace; then, on a
    /// background thread, write the copy as the new file's base and commit. Every record pushed after
    /// the marker lands in the new file after the base, so no write is lost or applied twice.
    /// Close the AOF (shutdown) while every stripe is held: no write is in progress, and none can
    /// start until the returned lock is dropped. The server never drops it (it exits), so a write
    /// that was waiting for a stripe is never applied nor acknowledged after the final flush.
    pub fn close_aof<'a>(
        &'a self,
        last_seq: &'a std::cell::Cell<u64>,
    ) -> (super::WriteLock<'a>, Result<(), crate::aof::AofError>) {
        let mut all = self.write_all(0, last_seq);
        if crate::sync::fault::on(crate::sync::fault::Fault::AofCloseWithoutStripes) {
            all.release();
        }
        let result = self.aof().map_or(Ok(()), |a| a.shutdown());
        (all, result)
    }

    pub fn start_rewrite(&self) -> Result<(), crate::aof::AofError> {
        self.start_rewrite_with(Vec::new, None)
    }

    /// [`start_rewrite`](Self::start_rewrite) whose base starts with `prelude`'s records (the
    /// function libraries: `FUNCTION LOAD`), taken under every stripe with the snapshot, as every
    /// change of them is made and logged under every stripe. With `rdb` (`aof-use-rdb-preamble`)
    /// the base is an RDB file of the snapshot with those aux fields, the libraries as its
    /// `FUNCTION2` records, instead of commands.
    pub fn start_rewrite_with(
        &self,
        prelude: impl FnOnce() -> Vec<Vec<Bytes>>,
        rdb: Option<crate::rdb::Aux>,
    ) -> Result<(), crate::aof::AofError> {
        let aof = self.aof().filter(|a| a.enabled()).cloned().ok_or(crate::aof::AofError::Disabled)?;
        let now = crate::util::now_ms();
        let seq = std::cell::Cell::new(0);
        let (handle, snapshot, prelude) = {
            let all = self.write_all(0, &seq);
            if crate::sync::fault::on(crate::sync::fault::Fault::RewriteMarkerOutsideLock) {
                let snapshot = self.snapshot(now);
                let prelude = prelude();
                drop(all);
                (aof.start_rewrite()?, snapshot, prelude)
            } else {
                let handle = aof.start_rewrite()?;
                (handle, self.snapshot(now), prelude())
            }
        };
        crate::sync::thread::spawn(move || {
            let mut handle = handle;
            let result = match rdb {
                Some(mut aux) => {
                    aux.aof_base = true;
                    aux.functions = prelude.iter().filter_map(|r| r.get(3).cloned()).collect();
                    write_rdb_base(&mut handle, &snapshot, &aux)
                }
                None => write_command_base(&mut handle, &prelude, &snapshot),
            };
            match result.and_then(|_| handle.commit()) {
                Ok(()) => crate::notice!("Background AOF rewrite finished successfully"),
                Err(e) => crate::warning!("Background AOF rewrite failed: {e}"),
            }
        });
        Ok(())
    }
}

/// The base of a rewrite as commands: `prelude`'s, then those that rebuild each key.
fn write_command_base(
    handle: &mut crate::aof::RewriteHandle,
    prelude: &[Vec<Bytes>],
    snapshot: &[SnapshotEntry],
) -> Result<(), crate::aof::AofError> {
    for r in prelude {
        let argv: Vec<&[u8]> = r.iter().map(|a| &a[..]).collect();
        handle.write_base(0, &argv)?;
    }
    let mut result = Ok(());
    for e in snapshot {
        e.commands(|argv| {
            if result.is_ok() {
                result = handle.write_base(e.db, argv);
            }
        });
        if result.is_err() {
            break;
        }
    }
    result
}

/// The RDB preamble of a rewrite: the file [`crate::rdb::write_rdb`] writes, into the base.
fn write_rdb_base(
    handle: &mut crate::aof::RewriteHandle,
    snapshot: &[SnapshotEntry],
    aux: &crate::rdb::Aux,
) -> Result<(), crate::aof::AofError> {
    struct Base<'a>(&'a mut crate::aof::RewriteHandle);
    impl std::io::Write for Base<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write_base_bytes(buf).map_err(std::io::Error::other)?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    crate::rdb::write_rdb(&mut Base(handle), snapshot, aux).map_err(crate::aof::AofError::from)
}

impl SnapshotEntry {
    /// The commands that rebuild this key: SET, or RPUSH/HSET/SADD/ZADD batches, then PEXPIREAT if it
    /// has a TTL.
    pub fn commands(&self, mut emit: impl FnMut(&[&[u8]])) {
        let mut batches = |cmd: &'static [u8], items: &mut dyn Iterator<Item = Vec<&[u8]>>| {
            let mut argv: Vec<&[u8]> = vec![cmd, &self.key];
            let mut n = 0;
            for item in items {
                argv.extend(item);
                n += 1;
                if n == ITEMS_PER_CMD {
                    emit(&argv);
                    argv.truncate(2);
                    n = 0;
                }
            }
            if n > 0 {
                emit(&argv);
            }
        };
        match &self.value {
            SnapshotValue::Str(b) => emit(&[b"SET", &self.key, b]),
            SnapshotValue::Int(n) => emit(&[b"SET", &self.key, n.to_string().as_bytes()]),
            SnapshotValue::List(items) => batches(b"RPUSH", &mut items.iter().map(|b| vec![&b[..]])),
            SnapshotValue::Hash(pairs) => batches(b"HSET", &mut pairs.iter().map(|(f, v)| vec![&f[..], &v[..]])),
            SnapshotValue::Set(members) => batches(b"SADD", &mut members.iter().map(|b| vec![&b[..]])),
            SnapshotValue::Zset(pairs) => batches(b"ZADD", &mut pairs.iter().map(|(s, m)| vec![&s[..], &m[..]])),
            SnapshotValue::Stream(s) => s.rewrite(&self.key, &mut emit),
        }
        if self.expire_at_ms != 0 {
            emit(&[b"PEXPIREAT", &self.key, self.expire_at_ms.to_string().as_bytes()]);
        }
    }
}

/// A point-in-time snapshot that keeps writers out only while it is taken, not while it is
/// written (BGSAVE; Redis gets the same from `fork`'s copy-on-write). At the snapshot point,
/// with every stripe held exclusively, it pins every bucket's block ([`KeyMap::pin`]: the blocks
/// are immutable, a write after the point builds a new one and the pinned one stays alive) and
/// copies what changes in place: integer cells (INCR CASes them under the shared stripe) and
/// the contents of cells (collections, raw strings: changed under the cell lock). Inline and
/// long strings are read from the pinned blocks when encoding. The blocks without an object
/// ([`Block::may_hold_objects`](super::block::Block::may_hold_objects)) are not even walked at
/// the point: for a keyspace of short strings the pause is one walk over the directory.
///
/// It lives on the thread that took it (its guards are that thread's): take it on the thread
/// that encodes it.
pub struct Frozen<'k> {
    now_ms: u64,
    dbs: Vec<FrozenDb<'k>>,
}

struct FrozenDb<'k> {
    db: usize,
    pinned: super::map::Pinned<'k>,
    /// The values copied at the point, in the walk's order (entries not expired at `now_ms`).
    copies: Vec<SnapshotValue>,
}

/// A frozen entry's value: a string read from its pinned block, or a copy made at the point.
pub enum FrozenValue<'a> {
    Str(&'a [u8]),
    Copied(&'a SnapshotValue),
}

/// Whether `v` changes in place (so it is copied at the point): integer cells and cells.
fn changes_in_place(v: &ValueRef<'_>) -> bool {
    !matches!(v, ValueRef::Small(_) | ValueRef::Str(_))
}

impl Keyspace {
    /// Freeze the keyspace (see [`Frozen`]). The caller holds every stripe exclusively
    /// (`write_all`) and releases them once this returns.
    pub fn freeze(&self, now_ms: u64) -> Frozen<'_> {
        let by_reference = crate::sync::fault::on(crate::sync::fault::Fault::SnapshotCellsByReference);
        let mut dbs = Vec::new();
        for db in 0..self.databases() {
            let map = self.db(db);
            if map.is_empty() {
                continue;
            }
            let pinned = map.pin();
            let mut copies = Vec::new();
            if !by_reference {
                pinned.for_each_block(|b| {
                    if !b.may_hold_objects() {
                        return;
                    }
                    for e in b.entries() {
                        let v = e.value();
                        if changes_in_place(&v) && !e.is_expired(now_ms) {
                            copies.push(SnapshotValue::of(v));
                        }
                    }
                });
            }
            dbs.push(FrozenDb { db, pinned, copies });
        }
        Frozen { now_ms, dbs }
    }
}

impl Frozen<'_> {
    /// The databases with keys, in order, with their live keys and the keys with an expiry.
    pub fn databases(&self) -> Vec<(usize, u64, u64)> {
        let mut out = Vec::new();
        for d in &self.dbs {
            let (mut keys, mut expires) = (0u64, 0u64);
            d.pinned.for_each(|_, e| {
                if !e.is_expired(self.now_ms) {
                    keys += 1;
                    expires += u64::from(e.expire_at_ms() != 0);
                }
            });
            if keys > 0 {
                out.push((d.db, keys, expires));
            }
        }
        out
    }

    /// Visit the live keys of `db`: key, expiry (0: none), value.
    pub fn for_each<E>(
        &self,
        db: usize,
        mut f: impl FnMut(&[u8], u64, FrozenValue<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let Some(d) = self.dbs.iter().find(|d| d.db == db) else { return Ok(()) };
        let mut copies = d.copies.iter();
        let mut result = Ok(());
        d.pinned.for_each(|k, e| {
            if result.is_err() || e.is_expired(self.now_ms) {
                return;
            }
            let v = e.value();
            let by_reference;
            let value = match v {
                ValueRef::Small(s) => FrozenValue::Str(s),
                ValueRef::Str(b) => FrozenValue::Str(b),
                _ => match copies.next() {
                    Some(c) => FrozenValue::Copied(c),
                    // Only with the fault on: the value as it is now.
                    None => {
                        by_reference = SnapshotValue::of(v);
                        FrozenValue::Copied(&by_reference)
                    }
                },
            };
            result = f(k, e.expire_at_ms(), value);
        });
        result
    }

    /// Its keys as owned entries (tests and models compare them with `Keyspace::snapshot`'s).
    pub fn to_entries(&self) -> Vec<SnapshotEntry> {
        let mut out = Vec::new();
        for (db, _, _) in self.databases() {
            let _ = self.for_each::<()>(db, |k, expire_at_ms, v| {
                let value = match v {
                    FrozenValue::Str(s) => SnapshotValue::Str(Bytes::copy_from_slice(s)),
                    FrozenValue::Copied(c) => c.clone_value(),
                };
                out.push(SnapshotEntry { db, key: Bytes::copy_from_slice(k), value, expire_at_ms });
                Ok(())
            });
        }
        out
    }
}

impl SnapshotValue {
    fn clone_value(&self) -> SnapshotValue {
        match self {
            SnapshotValue::Str(b) => SnapshotValue::Str(b.clone()),
            SnapshotValue::Int(n) => SnapshotValue::Int(*n),
            SnapshotValue::List(v) => SnapshotValue::List(v.clone()),
            SnapshotValue::Hash(v) => SnapshotValue::Hash(v.clone()),
            SnapshotValue::Set(v) => SnapshotValue::Set(v.clone()),
            SnapshotValue::Zset(v) => SnapshotValue::Zset(v.clone()),
            SnapshotValue::Stream(s) => SnapshotValue::Stream(s.clone()),
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::Harness;

    /// Sorted (db, key, expiry, value) texts: comparable whatever the walk order.
    fn texts(entries: &[super::SnapshotEntry]) -> Vec<String> {
        let mut v: Vec<String> = entries
            .iter()
            .map(|e| {
                let value = match &e.value {
                    super::SnapshotValue::Hash(p) => {
                        let mut p = p.clone();
                        p.sort();
                        format!("{p:?}")
                    }
                    super::SnapshotValue::Set(m) => {
                        let mut m = m.clone();
                        m.sort();
                        format!("{m:?}")
                    }
                    super::SnapshotValue::Int(n) => format!("{:?}", bytes::Bytes::from(n.to_string())),
                    super::SnapshotValue::Str(s) => format!("{s:?}"),
                    other => format!("{other:?}"),
                };
                format!("{} {:?} {} {value}", e.db, e.key, e.expire_at_ms)
            })
            .collect();
        v.sort();
        v
    }

    /// A frozen snapshot holds what memory held at its point, every type (inline, long and
    /// integer strings, raw strings changed in place, collections, streams, expiries), whatever
    /// is written after it: in place (INCR, APPEND, RPUSH, HSET, SADD, ZADD, XADD) or by a new
    /// block (SET, DEL, EXPIRE). The same as the copy `Keyspace::snapshot` makes, and its RDB
    /// loads back to it.
    #[test]
    fn a_frozen_snapshot_is_the_keyspace_at_its_point() {
        let mut h = Harness::new();
        let long = "x".repeat(300);
        for i in 0..3000 {
            h.run(&["SET", &format!("s{i}"), &format!("v{i}")]);
            if i % 3 == 0 {
                h.run(&["SET", &format!("n{i}"), &i.to_string()]);
            }
            if i % 50 == 0 {
                h.run(&["SET", &format!("long{i}"), &long]);
                h.run(&["RPUSH", &format!("l{i}"), "a", "b"]);
                h.run(&["HSET", &format!("h{i}"), "f", "v"]);
                h.run(&["SADD", &format!("t{i}"), "m", "1"]);
                h.run(&["ZADD", &format!("z{i}"), "1", "m"]);
                h.run(&["XADD", &format!("x{i}"), "1-1", "f", "v"]);
                h.run(&["SET", &format!("r{i}"), "raw"]);
                h.run(&["APPEND", &format!("r{i}"), "-appended"]);
                h.run(&["PEXPIRE", &format!("s{i}"), "100000"]);
            }
        }
        h.run(&["SET", "gone", "soon", "PX", "10"]);
        h.run(&["SELECT", "3"]);
        h.run(&["SET", "in3", "x"]);
        h.run(&["SELECT", "0"]);
        let now = h.now_ms + 20;
        let shared = std::sync::Arc::clone(&h.shared);
        let ks = &shared.ks;
        let seq = std::cell::Cell::new(0);
        let all = ks.write_all(0, &seq);
        let frozen = ks.freeze(now);
        let want = texts(&ks.snapshot(now));
        drop(all);
        assert!(want.len() > 4000, "{}", want.len());
        for i in 0..3000 {
            if i % 3 == 0 {
                h.run(&["INCR", &format!("n{i}")]);
            }
            if i % 7 == 0 {
                h.run(&["SET", &format!("s{i}"), "changed"]);
            }
            if i % 11 == 0 {
                h.run(&["DEL", &format!("s{i}")]);
            }
            if i % 50 == 0 {
                h.run(&["APPEND", &format!("r{i}"), "-more"]);
                h.run(&["RPUSH", &format!("l{i}"), "c"]);
                h.run(&["HSET", &format!("h{i}"), "g", "w"]);
                h.run(&["SADD", &format!("t{i}"), "n"]);
                h.run(&["ZADD", &format!("z{i}"), "2", "n"]);
                h.run(&["XADD", &format!("x{i}"), "2-1", "f", "v"]);
                h.run(&["EXPIRE", &format!("long{i}"), "1000"]);
            }
            h.run(&["SET", &format!("new{i}"), "v"]);
        }
        let got = frozen.to_entries();
        assert_eq!(texts(&got), want);
        let mut file = Vec::new();
        crate::rdb::write_rdb(&mut file, &frozen, &crate::rdb::Aux::default()).unwrap();
        let mut loaded = Vec::new();
        crate::rdb::load::read_rdb(&mut &file[..], |k| {
            loaded.push(super::SnapshotEntry { db: k.db, key: k.key, value: k.value, expire_at_ms: k.expire_at_ms });
            Ok(())
        })
        .unwrap();
        assert_eq!(texts(&loaded), want);
    }
}
