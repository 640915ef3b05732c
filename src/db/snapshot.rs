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
