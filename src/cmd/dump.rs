//! `DUMP` and `RESTORE`: a key's value as Redis's serialized payload (its RDB encoding, the RDB
//! version, a CRC64), and back. Payloads are byte-compatible with redis-server 7.0.15 both ways
//! (see `rdb`). Mirrors `dumpCommand`/`restoreCommand` of Redis's `cluster.c`.

use bytes::Bytes;

use super::{Ctx, arg_i64, is_opt};
use crate::db::SnapshotValue;
use crate::error::{Error, Result};
use crate::pubsub::notify::class::GENERIC;
use crate::rdb::load::{PayloadError, into_entry, read_payload};
use crate::rdb::save::dump_payload;
use crate::resp::Frame;

/// The encoding options of the current configuration (`rdbcompression`, the listpack limits).
pub fn encode_opts(ctx: &Ctx) -> crate::rdb::EncodeOpts {
    let cfg = ctx.shared.config();
    let compress = cfg.get("rdbcompression").is_none_or(|v| v == "yes");
    crate::rdb::EncodeOpts::from_config(&cfg, compress)
}

/// The payload of `key`'s value; None when there is no such key.
pub fn dump_of(ctx: &Ctx, key: &[u8]) -> Option<Vec<u8>> {
    let value = ctx.read(key, |e| e.map(|e| SnapshotValue::of(e.value())))?;
    let opts = encode_opts(ctx);
    Some(ctx.offload(4096, || dump_payload(&value, &opts)))
}

/// `DUMP key`: the serialized value, nil when the key does not exist.
pub fn dump(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let p = dump_of(ctx, &argv[1]);
    ctx.count_lookup(&argv[1], p.is_some());
    Ok(p.map_or(Frame::Null, |p| Frame::Bulk(Bytes::from(p))))
}

/// `RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]`.
/// The record logged (AOF, replicas) carries the absolute expiry and ABSTTL, as Redis propagates
/// it; a key restored already expired is not created (a replaced one is deleted, logged as DEL).
pub fn restore(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let key = &argv[1];
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<u64>, Option<u8>) = (None, None);
    let mut j = 4;
    while j < argv.len() {
        let more = argv.len() - j - 1;
        if is_opt(&argv[j], "replace") {
            replace = true;
        } else if is_opt(&argv[j], "absttl") {
            absttl = true;
        } else if is_opt(&argv[j], "idletime") && more >= 1 && freq.is_none() {
            let v = arg_i64(&argv[j + 1])?;
            if v < 0 {
                return Err(Error::err("Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(v as u64);
            j += 1;
        } else if is_opt(&argv[j], "freq") && more >= 1 && idle.is_none() {
            let v = arg_i64(&argv[j + 1])?;
            if !(0..=255).contains(&v) {
                return Err(Error::err("Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = Some(v as u8);
            j += 1;
        } else {
            return Err(Error::Syntax);
        }
        j += 1;
    }
    let now = ctx.now_ms;
    let loading = ctx.shared.ks.is_loading();
    let mut w = ctx.write(&[key]);
    if !replace && w.lookup(key, now, |e| e.is_some()) {
        return Err(Error::Raw("BUSYKEY Target key name already exists.".into()));
    }
    let ttl = arg_i64(&argv[2])?;
    if ttl < 0 {
        return Err(Error::err("Invalid TTL value, must be >= 0"));
    }
    let value = match read_payload(&argv[3]) {
        Ok(v) => v,
        Err(PayloadError::VersionOrChecksum) => return Err(Error::err("DUMP payload version or checksum are wrong")),
        Err(PayloadError::BadFormat) => return Err(Error::err("Bad data format")),
    };
    let existed = replace && w.lookup(key, now, |e| e.is_some());
    let at = match ttl {
        0 => 0,
        t if absttl => t as u64,
        t => (t as u64).saturating_add(crate::util::now_ms()),
    };
    if at != 0 && !loading && at <= crate::util::now_ms() {
        if existed {
            w.map().remove(key);
            w.log(&[b"DEL", key]);
            w.notify(GENERIC, "del", key);
        }
        return Ok(Frame::ok());
    }
    let entry = {
        let cfg = ctx.shared.config();
        into_entry(value, at, &cfg)
    };
    w.insert(key.clone(), entry);
    if let Some(a) = crate::db::evict::access_from(idle, freq) {
        // The access word lives in the key's block entry: set it once the entry is there.
        ctx.db().get(key, |e| e.map(|e| e.set_access(a)));
    }
    let at_text = Bytes::from(at.to_string());
    w.log(&[b"RESTORE", key, &at_text, &argv[3], b"REPLACE", b"ABSTTL"]);
    w.notify(GENERIC, "restore", key);
    Ok(Frame::ok())
}
