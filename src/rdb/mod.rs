//! The RDB format of Redis 7.0 (version 10), read and written: `SAVE`/`BGSAVE` files, the RDB
//! base of a Redis `appendonlydir`, DUMP/RESTORE payloads and (for replication) full-sync
//! transfers. Mirrors `rdb.c`, `listpack.c`, `intset.c`, `ziplist.c`, `zipmap.c`, `lzf_*.c`,
//! `crc64.c`; our own code.
//!
//! # The file
//!
//! `REDIS0010`, then opcodes: `AUX` (0xFA) name/value strings (redis-ver, redis-bits, ctime,
//! used-mem, repl-stream-db/repl-id/repl-offset when a replication state is given, aof-base),
//! `FUNCTION2` (0xF5) a library's code, per database `SELECTDB` (0xFE) n and `RESIZEDB` (0xFB)
//! keys expires, then per key optional `EXPIRETIME_MS` (0xFC, 8 bytes LE), `IDLE` (0xF8) /
//! `FREQ` (0xF9), the type byte, the key string and the value; `EOF` (0xFF) and the CRC64 of
//! everything before it (8 bytes LE; 0 when `rdbchecksum no`, which readers then skip).
//!
//! Lengths are 6, 14, 32 or 64 bits (`encode::put_len`); strings are a length and bytes, or a
//! special form: an 8/16/32-bit integer, or LZF (`encode::put_string`).
//!
//! # Values
//!
//! What 7.0.15 writes, chosen here by the same limits Redis converts by (so a file of ours loads
//! in Redis into the encodings Redis itself would hold): strings (integer encodings, LZF over 20
//! bytes), lists as QUICKLIST_2 (listpack nodes cut as `quicklistPushTail` cuts them), hashes as
//! HASH_LISTPACK or HASH, sets as SET_INTSET or SET, sorted sets as ZSET_LISTPACK or ZSET_2
//! (binary doubles, highest first), streams as STREAM_LISTPACKS_2 (nodes cut as
//! `streamAppendItem` cuts them, with the groups, their PELs and consumers). The reader also takes
//! every older form Redis 7.0 loads: ZSET (text scores), zipmap and ziplist hashes, ziplist lists
//! and sorted sets, QUICKLIST (v1, ziplist nodes), STREAM_LISTPACKS v1, the seconds EXPIRETIME.
//! Modules are refused.
//!
//! # Invariants
//!
//! * Reading never panics and never allocates by an untrusted length up front: corrupt input is
//!   an [`RdbError`] (strings grow as bytes arrive; collections reserve at most a few thousand).
//! * A written file is a pure function of the snapshot and [`Aux`]: the same keyspace gives the
//!   same bytes (besides ctime and used-mem), and a DUMP payload is byte-identical to what
//!   redis-server 7.0.15 produces for a value in the encoding these limits give.

pub mod crc64;
pub mod dirty;
pub mod encode;
pub mod legacy;
pub mod listpack;
pub mod load;
pub mod loading;
pub mod lzf;
pub mod persist;
pub mod save;
#[cfg(test)]
mod tests;

pub use load::{LoadedKey, RdbInfo, read_rdb};
pub use save::write_rdb;

/// The RDB version written (and the highest read).
pub const RDB_VERSION: u16 = 10;

/// Type bytes and opcodes (`rdb.h`).
pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const STREAM_LISTPACKS_3: u8 = 21;

    pub const OP_FUNCTION2: u8 = 245;
    pub const OP_FUNCTION: u8 = 246;
    pub const OP_MODULE_AUX: u8 = 247;
    pub const OP_IDLE: u8 = 248;
    pub const OP_FREQ: u8 = 249;
    pub const OP_AUX: u8 = 250;
    pub const OP_RESIZEDB: u8 = 251;
    pub const OP_EXPIRETIME_MS: u8 = 252;
    pub const OP_EXPIRETIME: u8 = 253;
    pub const OP_SELECTDB: u8 = 254;
    pub const OP_EOF: u8 = 255;
}

/// How values are encoded: `rdbcompression` and the conversion limits of the configuration.
#[derive(Debug, Clone)]
pub struct EncodeOpts {
    pub compress: bool,
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub list_max_listpack_size: i64,
    pub stream_node_max_bytes: usize,
    pub stream_node_max_entries: usize,
}

impl Default for EncodeOpts {
    fn default() -> Self {
        EncodeOpts::from_config(&crate::config::Config::default(), true)
    }
}

impl EncodeOpts {
    pub fn from_config(c: &crate::config::Config, compress: bool) -> EncodeOpts {
        EncodeOpts {
            compress,
            hash_max_listpack_entries: c.hash_max_listpack_entries,
            hash_max_listpack_value: c.hash_max_listpack_value,
            zset_max_listpack_entries: c.zset_max_listpack_entries,
            zset_max_listpack_value: c.zset_max_listpack_value,
            set_max_intset_entries: c.set_max_intset_entries,
            list_max_listpack_size: c.list_max_listpack_size,
            stream_node_max_bytes: c.stream_node_max_bytes,
            stream_node_max_entries: c.stream_node_max_entries,
        }
    }
}

/// The replication state a file records (`rdbSaveInfo`).
#[derive(Debug, Clone)]
pub struct ReplInfo {
    pub stream_db: i64,
    pub id: String,
    pub offset: i64,
}

/// What a file carries besides the keys.
#[derive(Debug, Clone)]
pub struct Aux {
    pub redis_ver: String,
    /// Seconds since the epoch.
    pub ctime: u64,
    pub used_mem: u64,
    pub repl: Option<ReplInfo>,
    /// Written as the base of an AOF (`aof-base 1`).
    pub aof_base: bool,
    /// Function libraries' code (`FUNCTION2` records).
    pub functions: Vec<bytes::Bytes>,
    /// `rdbchecksum`: false writes a zero checksum.
    pub checksum: bool,
    pub opts: EncodeOpts,
    /// `rdb-key-save-delay` (microseconds slept per key written; a testing knob of Redis's).
    pub key_save_delay_us: u64,
}

impl Default for Aux {
    fn default() -> Self {
        Aux {
            redis_ver: "7.0.15".into(),
            ctime: crate::util::now_ms() / 1000,
            used_mem: 0,
            repl: None,
            aof_base: false,
            functions: Vec::new(),
            checksum: true,
            opts: EncodeOpts::default(),
            key_save_delay_us: 0,
        }
    }
}

/// Why a file or payload could not be read.
#[derive(Debug)]
pub enum RdbError {
    Io(std::io::Error),
    /// Not an RDB file, or a version newer than 10.
    BadVersion(String),
    /// The CRC64 at the end does not match.
    BadChecksum,
    /// Malformed content (what and where).
    Corrupt(String),
    /// The sink refused a key (e.g. a duplicate).
    Sink(String),
}

impl std::fmt::Display for RdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RdbError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                f.write_str("Short read or OOM loading DB. Unrecoverable error, aborting now.")
            }
            RdbError::Io(e) => write!(f, "I/O error reading the RDB: {e}"),
            RdbError::BadVersion(s) => f.write_str(s),
            RdbError::BadChecksum => f.write_str("Wrong RDB checksum. Aborting now."),
            RdbError::Corrupt(s) => write!(f, "Internal error in RDB reading: {s}"),
            RdbError::Sink(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for RdbError {}

impl From<std::io::Error> for RdbError {
    fn from(e: std::io::Error) -> Self {
        RdbError::Io(e)
    }
}
