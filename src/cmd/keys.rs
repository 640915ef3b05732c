//! Keyspace commands: DEL/UNLINK, EXISTS, TYPE, RENAME/RENAMENX, COPY, MOVE, RANDOMKEY, DBSIZE,
//! FLUSHDB/FLUSHALL, SWAPDB here; the expiry commands in [`expire`]; KEYS and SCAN in [`scan`].
//! Mirrors Redis's `db.c`.
//!
//! Writes lock the stripes of every key they touch exclusively and look keys up with
//! [`WriteLock::lookup`](crate::db::WriteLock::lookup), so an expired key is deleted (and `DEL`
//! logged) before the command sees it as missing. Reads take no lock and skip expired entries.
//! Cross-database writes (COPY ... DB, MOVE) lock by key only: stripes are per key, not per db, and
//! SWAPDB holds every stripe, so the db-to-map mapping cannot change under them.
//!
//! AOF records: DEL/UNLINK log one `DEL` of the keys actually removed, RENAME/RENAMENX log
//! `RENAME src dst`, COPY logs `COPY src dst DB n REPLACE` (exact whatever dst held), MOVE logs
//! `MOVE key n`, FLUSHDB/FLUSHALL/SWAPDB log themselves without options.

mod expire;
mod object;
mod scan;

use bytes::Bytes;

pub use expire::{expire, expireat, expiretime, persist, pexpire, pexpireat, pexpiretime, pttl, ttl};
pub(crate) use object::OBJECT_SUBS;
pub use object::object;
pub(crate) use scan::{ScanOpts, parse_cursor, parse_scan_options};
pub use scan::{keys, scan};

use super::{Ctx, arg_i64, is_opt};
use crate::error::{Error, Result};
use crate::pubsub::notify::class::{GENERIC, NEW};
use crate::resp::Frame;

/// `ERR source and destination objects are the same` (COPY to itself, MOVE to the same db).
fn same_object() -> Error {
    Error::err("source and destination objects are the same")
}

/// Count a read lookup of `key` (hits, misses, `keymiss` events): see [`Ctx::count_lookup`].
fn count_lookup(ctx: &Ctx, key: &[u8], hit: bool) {
    ctx.count_lookup(key, hit);
}

/// Parse a C `int` argument as Redis's `getIntFromObjectOrReply`: with `msg`, every failure replies
/// `ERR <msg>`; without, a non-integer is `ERR value is not an integer or out of range` and an
/// integer outside the `int` range gets Redis's range text.
fn arg_int(arg: &[u8], msg: Option<&str>) -> Result<i64> {
    let fail = |default: Error| msg.map(Error::err).unwrap_or(default);
    let n = arg_i64(arg).map_err(fail)?;
    if n < i32::MIN as i64 || n > i32::MAX as i64 {
        return Err(fail(Error::err("value is out of range, value must between -2147483648 and 2147483647")));
    }
    Ok(n)
}

/// A database index argument (MOVE, COPY ... DB, SWAPDB): `ERR DB index is out of range` when it is
/// an `int` but not an existing database.
fn arg_db(ctx: &Ctx, arg: &[u8]) -> Result<usize> {
    db_in_range(ctx, arg_int(arg, None)?)
}

fn db_in_range(ctx: &Ctx, n: i64) -> Result<usize> {
    usize::try_from(n).ok().filter(|&n| n < ctx.shared.ks.databases()).ok_or(Error::DbIndexOutOfRange)
}

/// `DEL key [key ...]` and `UNLINK key [key ...]`: the number of keys removed.
pub fn del(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let keys: Vec<&[u8]> = argv[1..].iter().map(|k| &k[..]).collect();
    let now = ctx.now_ms;
    let mut w = ctx.write(&keys);
    let mut record: Vec<&[u8]> = vec![b"DEL"];
    for &key in &keys {
        if w.lookup(key, now, |e| e.is_some()) {
            w.map().remove(key);
            w.notify(GENERIC, "del", key);
            record.push(key);
        }
    }
    if record.len() > 1 {
        // Redis counts the keys deleted.
        let n = record.len() as u64 - 1;
        w.log_n(&record, n);
    }
    Ok(Frame::Integer(record.len() as i64 - 1))
}

/// `EXISTS key [key ...]`: how many of the keys exist; a key named twice counts twice. It does not
/// touch the keys' access words (Redis looks up with `LOOKUP_NOTOUCH`).
pub fn exists(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    count_existing(ctx, argv, false)
}

/// `TOUCH key [key ...]`: how many of the keys exist (expired ones do not; a key named twice counts
/// twice), updating their access words (LRU clock or LFU counter).
pub fn touch(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    count_existing(ctx, argv, true)
}

fn count_existing(ctx: &mut Ctx, argv: &[Bytes], touch: bool) -> Result<Frame> {
    let mut n = 0;
    for key in &argv[1..] {
        let hit = if touch { ctx.read(key, |e| e.is_some()) } else { ctx.peek(key, |e| e.is_some()) };
        count_lookup(ctx, key, hit);
        n += hit as i64;
    }
    Ok(Frame::Integer(n))
}

/// `TYPE key`: `string`, `list`, or `none`.
pub fn type_(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let kind = ctx.peek(&argv[1], |e| e.map(|e| e.kind()));
    count_lookup(ctx, &argv[1], kind.is_some());
    Ok(Frame::simple(kind.map_or("none", |k| k.name())))
}

/// The shared body of RENAME and RENAMENX (`renameGenericCommand`). The value keeps its TTL; lists
/// move by reference. Returns whether the rename happened.
fn rename_generic(ctx: &Ctx, src: &Bytes, dst: &Bytes, nx: bool) -> Result<bool> {
    let now = ctx.now_ms;
    let mut w = ctx.write(&[src, dst]);
    if !w.lookup(src, now, |e| e.is_some()) {
        return Err(Error::NoSuchKey);
    }
    if src == dst {
        return Ok(!nx);
    }
    let replaced = w.lookup(dst, now, |e| e.is_some());
    if replaced && nx {
        return Ok(false);
    }
    let Some(moved) = w.map().get(src, |e| e.map(|e| e.moved())) else {
        return Err(Error::NoSuchKey);
    };
    if replaced {
        // Redis deletes the old destination and adds the key anew (`new`, when announced).
        w.notify(NEW, "new", dst);
    }
    w.insert(dst.clone(), moved);
    w.map().remove(src);
    w.log(&[b"RENAME", src, dst]);
    w.notify(GENERIC, "rename_from", src);
    w.notify(GENERIC, "rename_to", dst);
    Ok(true)
}

/// `RENAME key newkey`: `ERR no such key` when `key` is missing; renaming a key to itself is OK.
pub fn rename(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    rename_generic(ctx, &argv[1], &argv[2], false)?;
    Ok(Frame::ok())
}

/// `RENAMENX key newkey`: 1 if renamed, 0 if `newkey` exists (or is `key`).
pub fn renamenx(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(Frame::Integer(rename_generic(ctx, &argv[1], &argv[2], true)? as i64))
}

/// `COPY source destination [DB destination-db] [REPLACE]`: 1 if copied. The copy is deep (a list
/// is duplicated) and keeps the TTL.
pub fn copy(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (src, dst) = (&argv[1], &argv[2]);
    let src_db = ctx.client.db;
    let mut dst_db = src_db;
    let mut replace = false;
    let mut j = 3;
    while j < argv.len() {
        if is_opt(&argv[j], "replace") {
            replace = true;
        } else if is_opt(&argv[j], "db") && j + 1 < argv.len() {
            dst_db = arg_db(ctx, &argv[j + 1])?;
            j += 1;
        } else {
            return Err(Error::Syntax);
        }
        j += 1;
    }
    if src_db == dst_db && src == dst {
        return Err(same_object());
    }
    let now = ctx.now_ms;
    let mut w = ctx.shared.ks.write(src_db, &[src, dst], &ctx.last_seq);
    let Some(dup) = w.lookup_in(src_db, src, now, |e| e.map(|e| e.duplicate())) else {
        count_lookup(ctx, src, false);
        return Ok(Frame::Integer(0));
    };
    count_lookup(ctx, src, true);
    let replaced = w.lookup_in(dst_db, dst, now, |e| e.is_some());
    if replaced && !replace {
        return Ok(Frame::Integer(0));
    }
    if replaced {
        w.notify_in(dst_db, NEW, "new", dst);
    }
    w.insert_in(dst_db, dst.clone(), dup);
    let db_text = Bytes::from(dst_db.to_string());
    w.log_in(src_db, &[b"COPY", src, dst, b"DB", &db_text, b"REPLACE"]);
    w.notify_in(dst_db, GENERIC, "copy_to", dst);
    Ok(Frame::Integer(1))
}

/// `MOVE key db`: 1 if moved, 0 if `key` is missing or already exists in `db`.
pub fn move_(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let key = &argv[1];
    let src_db = ctx.client.db;
    let dst_db = arg_db(ctx, &argv[2])?;
    if dst_db == src_db {
        return Err(same_object());
    }
    let now = ctx.now_ms;
    let mut w = ctx.shared.ks.write(src_db, &[key], &ctx.last_seq);
    if !w.lookup_in(src_db, key, now, |e| e.is_some()) || w.lookup_in(dst_db, key, now, |e| e.is_some()) {
        return Ok(Frame::Integer(0));
    }
    let Some(moved) = w.map_of(src_db).get(key, |e| e.map(|e| e.moved())) else {
        return Ok(Frame::Integer(0));
    };
    w.insert_in(dst_db, key.clone(), moved);
    w.map_of(src_db).remove(key);
    w.log_in(src_db, &[b"MOVE", key, dst_db.to_string().as_bytes()]);
    w.notify_in(src_db, GENERIC, "move_from", key);
    w.notify_in(dst_db, GENERIC, "move_to", key);
    Ok(Frame::Integer(1))
}

/// `RANDOMKEY`: a random live key of the selected database, nil when there is none.
pub fn randomkey(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    let map = ctx.db();
    let len = map.len();
    if len == 0 {
        return Ok(Frame::Null);
    }
    let now = ctx.now_ms;
    // A random entry (random part, bucket, key), skipping expired ones a bounded number of times;
    // then the first live key of a walk (a database of expired keys not yet reclaimed).
    for _ in 0..RANDOMKEY_TRIES {
        let mut pick = None;
        map.sample(1, |k, e| pick = (!e.is_expired(now) && !e.is_dead()).then(|| Bytes::copy_from_slice(k)));
        if let Some(k) = pick {
            return Ok(Frame::Bulk(k));
        }
    }
    let pick = map.find_map(|k, e| (!e.is_expired(now) && !e.is_dead()).then(|| Bytes::copy_from_slice(k)));
    Ok(pick.map_or(Frame::Null, Frame::Bulk))
}

/// Random picks RANDOMKEY tries before it walks the database for a live key.
const RANDOMKEY_TRIES: usize = 100;

/// `DBSIZE`: the number of keys in the selected database, counting expired keys not yet reclaimed
/// (as Redis does; the active-expiry cycle removes them in the background).
pub fn dbsize(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Ok(Frame::Integer(ctx.db().len() as i64))
}

/// Parse the optional `ASYNC|SYNC` of FLUSHDB/FLUSHALL (`getFlushCommandFlags`). Both flush at
/// once here: the map drops its entries in the background of its own memory reclamation.
fn flush_flags(argv: &[Bytes]) -> Result<()> {
    match argv {
        [_] => Ok(()),
        [_, opt] if is_opt(opt, "sync") || is_opt(opt, "async") => Ok(()),
        _ => Err(Error::Syntax),
    }
}

/// `FLUSHDB [ASYNC|SYNC]`: empty the selected database.
pub fn flushdb(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    flush_flags(argv)?;
    flush(ctx, &[ctx.client.db], b"FLUSHDB");
    Ok(Frame::ok())
}

/// `FLUSHALL [ASYNC|SYNC]`: empty every database.
pub fn flushall(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    flush_flags(argv)?;
    let dbs: Vec<usize> = (0..ctx.shared.ks.databases()).collect();
    flush(ctx, &dbs, b"FLUSHALL");
    // Only as a client's own command: not while a file loads or a replica's sync replaces its data
    // (`now_ms` 0; Redis's `emptyData` does not save either), nor inside EXEC or a script (whose
    // held stripes the snapshot would wait for) or the primary's stream (whose apply lock it takes),
    // where Redis would save too.
    if ctx.now_ms != 0 && !ctx.shared.ks.holds_here() && !crate::repl::replica::applying() {
        crate::rdb::persist::save_after_flushall(ctx.shared);
    }
    Ok(Frame::ok())
}

/// Empty `dbs` and log `record` under every stripe, then clear the old maps with no stripe held
/// (the reply still waits for it, as Redis's synchronous flush).
fn flush(ctx: &Ctx, dbs: &[usize], record: &[u8]) {
    let w = ctx.write_all();
    // Redis counts the keys removed (`emptyData`), expired ones not yet reclaimed among them.
    let removed: usize = dbs.iter().map(|&db| ctx.shared.ks.db(db).len()).sum();
    let old: Vec<usize> = dbs.iter().filter_map(|&db| w.empty_db(db)).collect();
    w.log_n(&[record], removed as u64);
    // Every tracking client drops its whole cache (a null invalidation), under every stripe.
    ctx.shared.ks.tracking().flushed();
    drop(w);
    let ks = &ctx.shared.ks;
    let keys = old.iter().map(|&p| ks.physical_len(p)).sum();
    ctx.offload(keys, || old.into_iter().for_each(|p| ks.recycle(p)));
}

/// `SWAPDB index1 index2`: exchange two databases (clients see the other one's data at once).
pub fn swapdb(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let a = arg_int(&argv[1], Some("invalid first DB index"))?;
    let b = arg_int(&argv[2], Some("invalid second DB index"))?;
    let (a, b) = (db_in_range(ctx, a)?, db_in_range(ctx, b)?);
    let w = ctx.write_all();
    w.swap_dbs(a, b);
    w.log(&[b"SWAPDB", a.to_string().as_bytes(), b.to_string().as_bytes()]);
    Ok(Frame::ok())
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {

    use bytes::Bytes;

    use crate::cmd::testing::{Harness, arr, bulk, err, int, ok};
    use crate::db::Entry;
    use crate::resp::Frame;

    fn put_list(h: &Harness, db: usize, key: &str, items: &[&str]) {
        let items = crate::db::List::from_items(items.iter().map(|s| s.as_bytes()), -2);
        h.shared.ks.db(db).insert(key.as_bytes(), Entry::list(items, 0));
    }

    fn list_items(h: &Harness, db: usize, key: &str) -> Option<Vec<String>> {
        h.shared.ks.db(db).get(key.as_bytes(), |e| match e?.value() {
            crate::db::ValueRef::List(l) => {
                Some(l.lock().items.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect())
            }
            _ => None,
        })
    }

    #[test]
    fn del_counts_removed_keys_once_each() {
        let mut h = Harness::new();
        h.run(&["SET", "a", "1"]);
        h.run(&["SET", "b", "2"]);
        assert_eq!(h.run(&["DEL", "a", "a", "b", "missing"]), int(2));
        assert_eq!(h.run(&["EXISTS", "a", "b"]), int(0));
        assert_eq!(h.run(&["DEL", "a"]), int(0));
        h.run(&["SET", "c", "3"]);
        assert_eq!(h.run(&["UNLINK", "c"]), int(1));
        assert_eq!(h.run(&["DEL"]), err("ERR wrong number of arguments for 'del' command"));
    }

    #[test]
    fn del_of_an_expired_key_counts_zero() {
        let mut h = Harness::new();
        h.run(&["SET", "a", "1", "PX", "100"]);
        h.now_ms += 100;
        assert_eq!(h.run(&["DEL", "a"]), int(0));
        assert_eq!(h.run(&["DBSIZE"]), int(0));
    }

    #[test]
    fn exists_counts_repeats_and_hides_expired_keys() {
        let mut h = Harness::new();
        h.run(&["SET", "a", "1"]);
        h.run(&["SET", "t", "1", "PX", "10"]);
        assert_eq!(h.run(&["EXISTS", "a", "a", "a", "nokey", "t"]), int(4));
        h.now_ms += 10;
        assert_eq!(h.run(&["EXISTS", "t"]), int(0));
    }

    #[test]
    fn touch_counts_live_keys_of_any_type_and_repeats() {
        // redis-server 7.0.15: `TOUCH x x ex nokey` with ex expired replies 2.
        let mut h = Harness::new();
        h.run(&["SET", "x", "1"]);
        put_list(&h, 0, "l", &["a"]);
        h.run(&["SET", "ex", "1", "PX", "10"]);
        assert_eq!(h.run(&["TOUCH", "x", "l", "ex", "nokey"]), int(3));
        h.now_ms += 10;
        assert_eq!(h.run(&["TOUCH", "x", "x", "ex", "nokey"]), int(2));
        assert_eq!(h.run(&["TOUCH"]), err("ERR wrong number of arguments for 'touch' command"));
    }

    #[test]
    fn type_names_string_list_and_none() {
        let mut h = Harness::new();
        h.run(&["SET", "s", "x"]);
        h.run(&["SET", "n", "12"]);
        put_list(&h, 0, "l", &["a"]);
        assert_eq!(h.run(&["TYPE", "s"]), Frame::simple("string"));
        assert_eq!(h.run(&["TYPE", "n"]), Frame::simple("string"));
        assert_eq!(h.run(&["TYPE", "l"]), Frame::simple("list"));
        assert_eq!(h.run(&["TYPE", "nokey"]), Frame::simple("none"));
    }

    #[test]
    fn rename_moves_the_value_and_keeps_its_ttl() {
        let mut h = Harness::new();
        h.run(&["SET", "a", "v", "PX", "5000"]);
        h.run(&["SET", "b", "old"]);
        assert_eq!(h.run(&["RENAME", "a", "b"]), ok());
        assert_eq!(h.run(&["GET", "b"]), bulk("v"));
        assert_eq!(h.run(&["EXISTS", "a"]), int(0));
        assert_eq!(h.run(&["PTTL", "b"]), int(5000));
    }

    #[test]
    fn rename_of_a_missing_or_expired_key_is_an_error() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["RENAME", "nokey", "b"]), err("ERR no such key"));
        assert_eq!(h.run(&["RENAMENX", "nokey", "b"]), err("ERR no such key"));
        assert_eq!(h.run(&["RENAME", "nokey", "nokey"]), err("ERR no such key"));
        h.run(&["SET", "t", "1", "PX", "1"]);
        h.now_ms += 1;
        assert_eq!(h.run(&["RENAME", "t", "u"]), err("ERR no such key"));
    }

    #[test]
    fn rename_to_itself_is_ok_and_renamenx_to_itself_is_zero() {
        let mut h = Harness::new();
        h.run(&["SET", "a", "1"]);
        assert_eq!(h.run(&["RENAME", "a", "a"]), ok());
        assert_eq!(h.run(&["RENAMENX", "a", "a"]), int(0));
        assert_eq!(h.run(&["GET", "a"]), bulk("1"));
    }

    #[test]
    fn renamenx_refuses_an_existing_destination() {
        let mut h = Harness::new();
        h.run(&["SET", "a", "1"]);
        h.run(&["SET", "b", "2"]);
        assert_eq!(h.run(&["RENAMENX", "a", "b"]), int(0));
        assert_eq!(h.run(&["GET", "b"]), bulk("2"));
        assert_eq!(h.run(&["RENAMENX", "a", "c"]), int(1));
        assert_eq!(h.run(&["GET", "c"]), bulk("1"));
        // An expired destination does not count as existing.
        h.run(&["SET", "d", "x", "PX", "1"]);
        h.now_ms += 1;
        assert_eq!(h.run(&["RENAMENX", "c", "d"]), int(1));
    }

    #[test]
    fn rename_moves_a_list_without_copying_it() {
        let mut h = Harness::new();
        put_list(&h, 0, "l", &["x", "y"]);
        let cell = |h: &Harness, k: &str| {
            h.shared.ks.db(0).get(k.as_bytes(), |e| match e.unwrap().value() {
                crate::db::ValueRef::List(l) => std::sync::Arc::as_ptr(l) as usize,
                _ => 0,
            })
        };
        let before = cell(&h, "l");
        assert_eq!(h.run(&["RENAME", "l", "m"]), ok());
        assert_eq!(cell(&h, "m"), before);
        assert_eq!(list_items(&h, 0, "m"), Some(vec!["x".into(), "y".into()]));
    }

    #[test]
    fn copy_duplicates_strings_and_lists_deeply() {
        let mut h = Harness::new();
        h.run(&["SET", "s", "v", "PX", "3000"]);
        assert_eq!(h.run(&["COPY", "s", "t"]), int(1));
        assert_eq!(h.run(&["GET", "t"]), bulk("v"));
        assert_eq!(h.run(&["PTTL", "t"]), int(3000));
        put_list(&h, 0, "l", &["a", "b"]);
        assert_eq!(h.run(&["COPY", "l", "l2"]), int(1));
        h.shared.ks.db(0).get(b"l", |e| match e.unwrap().value() {
            crate::db::ValueRef::List(l) => l.lock().items.push_back(b"c"),
            _ => unreachable!(),
        });
        assert_eq!(list_items(&h, 0, "l2"), Some(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn copy_needs_replace_to_overwrite() {
        let mut h = Harness::new();
        h.run(&["SET", "a", "1"]);
        h.run(&["SET", "b", "2"]);
        assert_eq!(h.run(&["COPY", "a", "b"]), int(0));
        assert_eq!(h.run(&["GET", "b"]), bulk("2"));
        assert_eq!(h.run(&["COPY", "a", "b", "REPLACE"]), int(1));
        assert_eq!(h.run(&["GET", "b"]), bulk("1"));
        assert_eq!(h.run(&["COPY", "nokey", "b", "REPLACE"]), int(0));
    }

    #[test]
    fn copy_to_another_db() {
        let mut h = Harness::new();
        h.run(&["SET", "a", "1"]);
        assert_eq!(h.run(&["COPY", "a", "a", "DB", "3"]), int(1));
        assert_eq!(h.run(&["COPY", "a", "a", "db", "3"]), int(0));
        assert_eq!(h.run(&["COPY", "a", "a", "REPLACE", "DB", "3"]), int(1));
        h.client.db = 3;
        assert_eq!(h.run(&["GET", "a"]), bulk("1"));
    }

    #[test]
    fn copy_argument_errors_match_redis() {
        let mut h = Harness::new();
        h.run(&["SET", "a", "1"]);
        assert_eq!(h.run(&["COPY", "a", "a"]), err("ERR source and destination objects are the same"));
        assert_eq!(h.run(&["COPY", "a", "a", "DB", "0"]), err("ERR source and destination objects are the same"));
        assert_eq!(h.run(&["COPY", "a", "b", "DB", "16"]), err("ERR DB index is out of range"));
        assert_eq!(h.run(&["COPY", "a", "b", "DB", "-1"]), err("ERR DB index is out of range"));
        assert_eq!(h.run(&["COPY", "a", "b", "DB", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(
            h.run(&["COPY", "a", "b", "DB", "2147483648"]),
            err("ERR value is out of range, value must between -2147483648 and 2147483647")
        );
        assert_eq!(h.run(&["COPY", "a", "b", "DB"]), err("ERR syntax error"));
        assert_eq!(h.run(&["COPY", "a", "b", "REPLACE", "x"]), err("ERR syntax error"));
    }

    #[test]
    fn move_transfers_a_key_with_its_ttl() {
        let mut h = Harness::new();
        h.run(&["SET", "k", "v", "PX", "2000"]);
        assert_eq!(h.run(&["MOVE", "k", "5"]), int(1));
        assert_eq!(h.run(&["EXISTS", "k"]), int(0));
        h.client.db = 5;
        assert_eq!(h.run(&["GET", "k"]), bulk("v"));
        assert_eq!(h.run(&["PTTL", "k"]), int(2000));
    }

    #[test]
    fn move_refuses_missing_keys_and_occupied_destinations() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["MOVE", "nokey", "1"]), int(0));
        h.run(&["SET", "k", "here"]);
        h.client.db = 1;
        h.run(&["SET", "k", "there"]);
        h.client.db = 0;
        assert_eq!(h.run(&["MOVE", "k", "1"]), int(0));
        assert_eq!(h.run(&["GET", "k"]), bulk("here"));
    }

    #[test]
    fn move_argument_errors_match_redis() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["MOVE", "nokey", "0"]), err("ERR source and destination objects are the same"));
        assert_eq!(h.run(&["MOVE", "k", "16"]), err("ERR DB index is out of range"));
        assert_eq!(h.run(&["MOVE", "k", "-1"]), err("ERR DB index is out of range"));
        assert_eq!(h.run(&["MOVE", "k", "x"]), err("ERR value is not an integer or out of range"));
    }

    #[test]
    fn move_of_a_list_moves_the_same_cell() {
        let mut h = Harness::new();
        put_list(&h, 0, "l", &["a"]);
        assert_eq!(h.run(&["MOVE", "l", "2"]), int(1));
        assert_eq!(list_items(&h, 2, "l"), Some(vec!["a".into()]));
        assert_eq!(list_items(&h, 0, "l"), None);
    }

    #[test]
    fn randomkey_returns_a_live_key_or_nil() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["RANDOMKEY"]), Frame::Null);
        h.run(&["SET", "gone", "1", "PX", "5"]);
        h.now_ms += 5;
        assert_eq!(h.run(&["RANDOMKEY"]), Frame::Null);
        for k in ["a", "b", "c"] {
            h.run(&["SET", k, "1"]);
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            match h.run(&["RANDOMKEY"]) {
                Frame::Bulk(k) => seen.insert(k),
                other => panic!("{other:?}"),
            };
        }
        let want: std::collections::HashSet<Bytes> =
            ["a", "b", "c"].iter().map(|s| Bytes::from_static(s.as_bytes())).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn dbsize_counts_keys_of_the_selected_db_including_unreclaimed_expired_ones() {
        let mut h = Harness::new();
        h.run(&["SET", "a", "1"]);
        h.run(&["SET", "b", "1", "PX", "5"]);
        assert_eq!(h.run(&["DBSIZE"]), int(2));
        h.now_ms += 5;
        assert_eq!(h.run(&["DBSIZE"]), int(2));
        assert_eq!(h.shared.ks.expire_cycle(h.now_ms, 100), 1);
        assert_eq!(h.run(&["DBSIZE"]), int(1));
        h.client.db = 1;
        assert_eq!(h.run(&["DBSIZE"]), int(0));
    }

    #[test]
    fn flushdb_empties_only_the_selected_db() {
        let mut h = Harness::new();
        h.run(&["SET", "a", "1"]);
        h.client.db = 1;
        h.run(&["SET", "b", "1"]);
        assert_eq!(h.run(&["FLUSHDB"]), ok());
        assert_eq!(h.run(&["DBSIZE"]), int(0));
        h.client.db = 0;
        assert_eq!(h.run(&["DBSIZE"]), int(1));
        assert_eq!(h.run(&["FLUSHDB", "ASYNC"]), ok());
        assert_eq!(h.run(&["FLUSHDB", "sync"]), ok());
        assert_eq!(h.run(&["DBSIZE"]), int(0));
        assert_eq!(h.run(&["FLUSHDB", "foo"]), err("ERR syntax error"));
        assert_eq!(h.run(&["FLUSHDB", "SYNC", "ASYNC"]), err("ERR syntax error"));
    }

    #[test]
    fn flushall_empties_every_db_and_drops_expiry_hints() {
        let mut h = Harness::new();
        for db in 0..16 {
            h.client.db = db;
            h.run(&["SET", "k", "v", "EX", "1000"]);
        }
        assert!(h.shared.ks.expiry_hints() >= 16);
        assert_eq!(h.run(&["FLUSHALL", "ASYNC", "x"]), err("ERR syntax error"));
        assert_eq!(h.run(&["FLUSHALL"]), ok());
        assert_eq!(h.shared.ks.expiry_hints(), 0);
        for db in 0..16 {
            h.client.db = db;
            assert_eq!(h.run(&["DBSIZE"]), int(0));
        }
    }

    #[test]
    fn flushes_recycle_spare_maps_and_keep_databases_apart() {
        let mut h = Harness::new();
        // More flushes than there are spares, mixed with SWAPDB (which moves maps between dbs).
        for round in 0..40 {
            for db in [0, 1, 15] {
                h.client.db = db;
                h.run(&["SET", &format!("k{db}"), &round.to_string()]);
            }
            h.client.db = if round % 3 == 0 { 1 } else { 0 };
            assert_eq!(h.run(&["FLUSHDB"]), ok());
            if round % 5 == 0 {
                assert_eq!(h.run(&["SWAPDB", "0", "15"]), ok());
            }
            if round % 7 == 0 {
                assert_eq!(h.run(&["FLUSHALL"]), ok());
            }
        }
        let mut total = 0;
        for db in 0..16 {
            h.client.db = db;
            let Frame::Integer(n) = h.run(&["DBSIZE"]) else { panic!() };
            let Frame::Array(keys) = h.run(&["KEYS", "*"]) else { panic!() };
            assert_eq!(keys.len() as i64, n);
            // Every key still lives in the db it was written to.
            for k in keys {
                let Frame::Bulk(k) = k else { panic!() };
                assert!(
                    k == format!("k{db}").as_bytes() || (db == 0 && &k[..] == b"k15") || (db == 15 && &k[..] == b"k0")
                );
            }
            total += n;
        }
        assert!(total > 0);
    }

    #[test]
    fn a_flush_without_a_spare_map_clears_in_place() {
        let h = Harness::new();
        let ks = &h.shared.ks;
        ks.db(3).insert(b"x", Entry::string_copied(b"1", 0));
        let seq = std::cell::Cell::new(0);
        let w = ks.write_all(0, &seq);
        // 16 databases, 16 spares: emptying 17 times without recycling runs out of spares.
        let swapped: Vec<Option<usize>> = (0..16).map(|db| w.empty_db(db)).collect();
        assert!(swapped.iter().all(|s| s.is_some()));
        ks.db(3).insert(b"y", Entry::string_copied(b"1", 0));
        assert_eq!(w.empty_db(3), None, "no spare left");
        assert!(ks.db(3).is_empty(), "cleared in place");
        drop(w);
        for p in swapped.into_iter().flatten() {
            ks.recycle(p);
        }
        assert_eq!(ks.db(3).len(), 0);
    }

    #[test]
    fn swapdb_exchanges_contents() {
        let mut h = Harness::new();
        h.run(&["SET", "in0", "1"]);
        h.client.db = 7;
        h.run(&["SET", "in7", "1"]);
        assert_eq!(h.run(&["SWAPDB", "0", "7"]), ok());
        assert_eq!(h.run(&["KEYS", "*"]), arr(vec![bulk("in0")]));
        h.client.db = 0;
        assert_eq!(h.run(&["KEYS", "*"]), arr(vec![bulk("in7")]));
        assert_eq!(h.run(&["SWAPDB", "3", "3"]), ok());
    }

    #[test]
    fn swapdb_errors_match_redis() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["SWAPDB", "x", "0"]), err("ERR invalid first DB index"));
        assert_eq!(h.run(&["SWAPDB", "0", "x"]), err("ERR invalid second DB index"));
        assert_eq!(h.run(&["SWAPDB", "2147483648", "0"]), err("ERR invalid first DB index"));
        assert_eq!(h.run(&["SWAPDB", "99", "x"]), err("ERR invalid second DB index"));
        assert_eq!(h.run(&["SWAPDB", "0", "16"]), err("ERR DB index is out of range"));
        assert_eq!(h.run(&["SWAPDB", "-1", "0"]), err("ERR DB index is out of range"));
    }

    #[test]
    fn swapdb_keeps_ttls_reclaimable_by_the_active_cycle() {
        let mut h = Harness::new();
        h.run(&["SET", "t", "1", "PX", "10"]);
        h.run(&["SWAPDB", "0", "1"]);
        h.now_ms += 10;
        assert_eq!(h.shared.ks.expire_cycle(h.now_ms, 100), 1);
        h.client.db = 1;
        assert_eq!(h.run(&["DBSIZE"]), int(0));
    }
}
