//! The command table: every command's name, arity, flags, key positions and ACL categories, and its
//! handler. The dispatcher's arity check, `COMMAND`'s replies and write detection (AOF, MISCONF)
//! all come from these rows. Mirrors Redis's `commands.def`.

use super::{
    Handler, bits, dump, geo, hash, hll, keys, list, migrate, pubsub, save, server, set, sort, stream, string, tx, zset,
};
use crate::script::{eval, function};

/// One row of the command table.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lowercase name, as Redis reports it.
    pub name: &'static str,
    /// N = exactly N arguments (name included); -N = at least N.
    pub arity: i32,
    /// Redis's command flags (`write`, `readonly`, `denyoom`, `fast`, `loading`, `stale`, ...).
    pub flags: &'static [&'static str],
    /// First key position, last (-1 = last argument), step; 0 0 0 for none.
    pub keys: (i32, i32, i32),
    /// ACL categories, as COMMAND INFO reports them.
    pub acl: &'static [&'static str],
    pub handler: Handler,
    /// The flags the dispatcher checks on every command, as bits (see [`flag`]), computed from
    /// `flags` when the table is compiled: no string comparison per command.
    pub mask: u32,
    /// The handler takes its keys' stripes exclusively itself (multi-key reads that must be atomic
    /// against multi-key writers: SINTER, SUNION, SDIFF), so the dispatcher does not wrap it in
    /// `read_consistent`, whose fallback holds those stripes shared while the handler runs (the
    /// handler would then wait on itself). Exclusive stripes already exclude a running EXEC.
    pub locks_keys: bool,
}

/// Bits of [`CommandSpec::mask`].
pub mod flag {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const LOADING: u32 = 1 << 3;
    pub const NO_AUTH: u32 = 1 << 4;
    pub const NO_MULTI: u32 = 1 << 5;
    pub const MOVABLEKEYS: u32 = 1 << 6;
    pub const FAST: u32 = 1 << 7;
    pub const SKIP_SLOWLOG: u32 = 1 << 8;
    pub const NOSCRIPT: u32 = 1 << 9;
    pub const MAY_REPLICATE: u32 = 1 << 10;
    pub const ALLOW_BUSY: u32 = 1 << 11;

    /// The flag names that have a bit.
    pub(super) const NAMED: [(&str, u32); 12] = [
        ("write", WRITE),
        ("readonly", READONLY),
        ("denyoom", DENYOOM),
        ("loading", LOADING),
        ("no_auth", NO_AUTH),
        ("no_multi", NO_MULTI),
        ("movablekeys", MOVABLEKEYS),
        ("fast", FAST),
        ("skip_slowlog", SKIP_SLOWLOG),
        ("noscript", NOSCRIPT),
        ("may_replicate", MAY_REPLICATE),
        ("allow_busy", ALLOW_BUSY),
    ];
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The [`flag`] bits of a row's flag names (names without a bit are left out).
pub const fn mask_of(flags: &[&str]) -> u32 {
    let mut mask = 0;
    let mut i = 0;
    while i < flags.len() {
        let mut j = 0;
        while j < flag::NAMED.len() {
            if str_eq(flags[i], flag::NAMED[j].0) {
                mask |= flag::NAMED[j].1;
            }
            j += 1;
        }
        i += 1;
    }
    mask
}

impl CommandSpec {
    /// Whether the row has every bit of `bits` (a [`flag`] constant).
    pub fn is(&self, bits: u32) -> bool {
        self.mask & bits == bits
    }

    /// Whether the command may change the keyspace (and so is refused under MISCONF).
    pub fn is_write(&self) -> bool {
        self.is(flag::WRITE)
    }

    /// The argument indexes of the keys in a call with `argc` arguments (name included), from
    /// `keys` (first, last, step; a negative last counts from the end).
    pub fn key_indexes(&self, argc: usize) -> impl Iterator<Item = usize> + use<> {
        let (first, last, step) = self.keys;
        let last = if last < 0 { argc as i64 + last as i64 } else { last as i64 };
        let last = last.min(argc as i64 - 1);
        let (first, step) = (first as i64, step.max(1) as usize);
        let range = if first <= 0 || last < first { 0..0 } else { first as usize..last as usize + 1 };
        range.step_by(step)
    }

    /// Whether `argc` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 { argc == self.arity as usize } else { argc >= (-self.arity) as usize }
    }
}

macro_rules! row {
    ($name:literal, $arity:expr, [$($flag:literal),*], ($f:expr, $l:expr, $s:expr), [$($acl:literal),*], $h:path) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: &[$($flag),*],
            keys: ($f, $l, $s),
            acl: &[$($acl),*],
            handler: $h,
            mask: mask_of(&[$($flag),*]),
            locks_keys: false,
        }
    };
    // A row whose handler locks its keys itself (see `CommandSpec::locks_keys`).
    ($name:literal, $arity:expr, [$($flag:literal),*], ($f:expr, $l:expr, $s:expr), [$($acl:literal),*], $h:path, locks_keys) => {
        CommandSpec { locks_keys: true, ..row!($name, $arity, [$($flag),*], ($f, $l, $s), [$($acl),*], $h) }
    };
}

/// Every command the server knows.
pub static COMMANDS: &[CommandSpec] = &[
    // strings
    row!("set", -3, ["write", "denyoom"], (1, 1, 1), ["@write", "@string", "@slow"], string::set),
    row!("get", 2, ["readonly", "fast"], (1, 1, 1), ["@read", "@string", "@fast"], string::get),
    row!("getset", 3, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@string", "@fast"], string::getset),
    row!("getdel", 2, ["write", "fast"], (1, 1, 1), ["@write", "@string", "@fast"], string::getdel),
    row!("getex", -2, ["write", "fast"], (1, 1, 1), ["@write", "@string", "@fast"], string::getex),
    row!("setnx", 3, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@string", "@fast"], string::setnx),
    row!("setex", 4, ["write", "denyoom"], (1, 1, 1), ["@write", "@string", "@slow"], string::setex),
    row!("psetex", 4, ["write", "denyoom"], (1, 1, 1), ["@write", "@string", "@slow"], string::psetex),
    row!("mset", -3, ["write", "denyoom"], (1, -1, 2), ["@write", "@string", "@slow"], string::mset),
    row!("msetnx", -3, ["write", "denyoom"], (1, -1, 2), ["@write", "@string", "@slow"], string::msetnx),
    row!("mget", -2, ["readonly", "fast"], (1, -1, 1), ["@read", "@string", "@fast"], string::mget),
    row!("append", 3, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@string", "@fast"], string::append),
    row!("strlen", 2, ["readonly", "fast"], (1, 1, 1), ["@read", "@string", "@fast"], string::strlen),
    row!("getrange", 4, ["readonly"], (1, 1, 1), ["@read", "@string", "@slow"], string::getrange),
    row!("substr", 4, ["readonly"], (1, 1, 1), ["@read", "@string", "@slow"], string::getrange),
    row!("setrange", 4, ["write", "denyoom"], (1, 1, 1), ["@write", "@string", "@slow"], string::setrange),
    row!("incr", 2, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@string", "@fast"], string::incr),
    row!("decr", 2, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@string", "@fast"], string::decr),
    row!("incrby", 3, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@string", "@fast"], string::incrby),
    row!("decrby", 3, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@string", "@fast"], string::decrby),
    row!(
        "incrbyfloat",
        3,
        ["write", "denyoom", "fast"],
        (1, 1, 1),
        ["@write", "@string", "@fast"],
        string::incrbyfloat
    ),
    row!("lcs", -3, ["readonly"], (1, 2, 1), ["@read", "@string", "@slow"], string::lcs),
    // bitmaps
    row!("setbit", 4, ["write", "denyoom"], (1, 1, 1), ["@write", "@bitmap", "@slow"], bits::setbit),
    row!("getbit", 3, ["readonly", "fast"], (1, 1, 1), ["@read", "@bitmap", "@fast"], bits::getbit),
    row!("bitcount", -2, ["readonly"], (1, 1, 1), ["@read", "@bitmap", "@slow"], bits::bitcount),
    row!("bitpos", -3, ["readonly"], (1, 1, 1), ["@read", "@bitmap", "@slow"], bits::bitpos),
    row!("bitop", -4, ["write", "denyoom"], (2, -1, 1), ["@write", "@bitmap", "@slow"], bits::bitop),
    row!("bitfield", -2, ["write", "denyoom"], (1, 1, 1), ["@write", "@bitmap", "@slow"], bits::bitfield),
    row!("bitfield_ro", -2, ["readonly", "fast"], (1, 1, 1), ["@read", "@bitmap", "@fast"], bits::bitfield_ro),
    // HyperLogLog
    row!("pfadd", -2, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@hyperloglog", "@fast"], hll::pfadd),
    row!(
        "pfcount",
        -2,
        ["readonly", "may_replicate"],
        (1, -1, 1),
        ["@read", "@hyperloglog", "@slow"],
        hll::pfcount,
        locks_keys
    ),
    row!("pfmerge", -2, ["write", "denyoom"], (1, -1, 1), ["@write", "@hyperloglog", "@slow"], hll::pfmerge),
    row!(
        "pfdebug",
        3,
        ["write", "denyoom", "admin"],
        (2, 2, 1),
        ["@write", "@hyperloglog", "@admin", "@slow", "@dangerous"],
        hll::pfdebug
    ),
    row!("pfselftest", 1, ["admin"], (0, 0, 0), ["@hyperloglog", "@admin", "@slow", "@dangerous"], hll::pfselftest),
    // hashes
    row!("hset", -4, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@hash", "@fast"], hash::hset),
    row!("hsetnx", 4, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@hash", "@fast"], hash::hsetnx),
    row!("hmset", -4, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@hash", "@fast"], hash::hmset),
    row!("hget", 3, ["readonly", "fast"], (1, 1, 1), ["@read", "@hash", "@fast"], hash::hget),
    row!("hmget", -3, ["readonly", "fast"], (1, 1, 1), ["@read", "@hash", "@fast"], hash::hmget),
    row!("hdel", -3, ["write", "fast"], (1, 1, 1), ["@write", "@hash", "@fast"], hash::hdel),
    row!("hlen", 2, ["readonly", "fast"], (1, 1, 1), ["@read", "@hash", "@fast"], hash::hlen),
    row!("hstrlen", 3, ["readonly", "fast"], (1, 1, 1), ["@read", "@hash", "@fast"], hash::hstrlen),
    row!("hexists", 3, ["readonly", "fast"], (1, 1, 1), ["@read", "@hash", "@fast"], hash::hexists),
    row!("hkeys", 2, ["readonly"], (1, 1, 1), ["@read", "@hash", "@slow"], hash::hkeys),
    row!("hvals", 2, ["readonly"], (1, 1, 1), ["@read", "@hash", "@slow"], hash::hvals),
    row!("hgetall", 2, ["readonly"], (1, 1, 1), ["@read", "@hash", "@slow"], hash::hgetall),
    row!("hincrby", 4, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@hash", "@fast"], hash::hincrby),
    row!("hincrbyfloat", 4, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@hash", "@fast"], hash::hincrbyfloat),
    row!("hrandfield", -2, ["readonly"], (1, 1, 1), ["@read", "@hash", "@slow"], hash::hrandfield),
    row!("hscan", -3, ["readonly"], (1, 1, 1), ["@read", "@hash", "@slow"], hash::hscan),
    // sets
    row!("sadd", -3, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@set", "@fast"], set::sadd),
    row!("srem", -3, ["write", "fast"], (1, 1, 1), ["@write", "@set", "@fast"], set::srem),
    row!("smembers", 2, ["readonly"], (1, 1, 1), ["@read", "@set", "@slow"], set::smembers),
    row!("sismember", 3, ["readonly", "fast"], (1, 1, 1), ["@read", "@set", "@fast"], set::sismember),
    row!("smismember", -3, ["readonly", "fast"], (1, 1, 1), ["@read", "@set", "@fast"], set::smismember),
    row!("scard", 2, ["readonly", "fast"], (1, 1, 1), ["@read", "@set", "@fast"], set::scard),
    row!("smove", 4, ["write", "fast"], (1, 2, 1), ["@write", "@set", "@fast"], set::smove),
    row!("spop", -2, ["write", "fast"], (1, 1, 1), ["@write", "@set", "@fast"], set::spop),
    row!("srandmember", -2, ["readonly"], (1, 1, 1), ["@read", "@set", "@slow"], set::srandmember),
    row!("sinter", -2, ["readonly"], (1, -1, 1), ["@read", "@set", "@slow"], set::sinter, locks_keys),
    row!("sintercard", -3, ["readonly", "movablekeys"], (0, 0, 0), ["@read", "@set", "@slow"], set::sintercard),
    row!("sinterstore", -3, ["write", "denyoom"], (1, -1, 1), ["@write", "@set", "@slow"], set::sinterstore),
    row!("sunion", -2, ["readonly"], (1, -1, 1), ["@read", "@set", "@slow"], set::sunion, locks_keys),
    row!("sunionstore", -3, ["write", "denyoom"], (1, -1, 1), ["@write", "@set", "@slow"], set::sunionstore),
    row!("sdiff", -2, ["readonly"], (1, -1, 1), ["@read", "@set", "@slow"], set::sdiff, locks_keys),
    row!("sdiffstore", -3, ["write", "denyoom"], (1, -1, 1), ["@write", "@set", "@slow"], set::sdiffstore),
    row!("sscan", -3, ["readonly"], (1, 1, 1), ["@read", "@set", "@slow"], set::sscan),
    // sorted sets
    row!("zadd", -4, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@sortedset", "@fast"], zset::zadd),
    row!("zincrby", 4, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@sortedset", "@fast"], zset::zincrby),
    row!("zrem", -3, ["write", "fast"], (1, 1, 1), ["@write", "@sortedset", "@fast"], zset::zrem),
    row!("zcard", 2, ["readonly", "fast"], (1, 1, 1), ["@read", "@sortedset", "@fast"], zset::zcard),
    row!("zscore", 3, ["readonly", "fast"], (1, 1, 1), ["@read", "@sortedset", "@fast"], zset::zscore),
    row!("zmscore", -3, ["readonly", "fast"], (1, 1, 1), ["@read", "@sortedset", "@fast"], zset::zmscore),
    row!("zrank", 3, ["readonly", "fast"], (1, 1, 1), ["@read", "@sortedset", "@fast"], zset::zrank),
    row!("zrevrank", 3, ["readonly", "fast"], (1, 1, 1), ["@read", "@sortedset", "@fast"], zset::zrevrank),
    row!("zcount", 4, ["readonly", "fast"], (1, 1, 1), ["@read", "@sortedset", "@fast"], zset::zcount),
    row!("zlexcount", 4, ["readonly", "fast"], (1, 1, 1), ["@read", "@sortedset", "@fast"], zset::zlexcount),
    row!("zrange", -4, ["readonly"], (1, 1, 1), ["@read", "@sortedset", "@slow"], zset::zrange),
    row!("zrangebyscore", -4, ["readonly"], (1, 1, 1), ["@read", "@sortedset", "@slow"], zset::zrangebyscore),
    row!("zrevrangebyscore", -4, ["readonly"], (1, 1, 1), ["@read", "@sortedset", "@slow"], zset::zrevrangebyscore),
    row!("zrangebylex", -4, ["readonly"], (1, 1, 1), ["@read", "@sortedset", "@slow"], zset::zrangebylex),
    row!("zrevrangebylex", -4, ["readonly"], (1, 1, 1), ["@read", "@sortedset", "@slow"], zset::zrevrangebylex),
    row!("zrevrange", -4, ["readonly"], (1, 1, 1), ["@read", "@sortedset", "@slow"], zset::zrevrange),
    row!("zrangestore", -5, ["write", "denyoom"], (1, 2, 1), ["@write", "@sortedset", "@slow"], zset::zrangestore),
    row!("zremrangebyrank", 4, ["write"], (1, 1, 1), ["@write", "@sortedset", "@slow"], zset::zremrangebyrank),
    row!("zremrangebyscore", 4, ["write"], (1, 1, 1), ["@write", "@sortedset", "@slow"], zset::zremrangebyscore),
    row!("zremrangebylex", 4, ["write"], (1, 1, 1), ["@write", "@sortedset", "@slow"], zset::zremrangebylex),
    row!("zpopmin", -2, ["write", "fast"], (1, 1, 1), ["@write", "@sortedset", "@fast"], zset::zpopmin),
    row!("zpopmax", -2, ["write", "fast"], (1, 1, 1), ["@write", "@sortedset", "@fast"], zset::zpopmax),
    row!("zmpop", -4, ["write", "movablekeys"], (0, 0, 0), ["@write", "@sortedset", "@slow"], zset::zmpop),
    row!(
        "bzpopmin",
        -3,
        ["write", "noscript", "blocking", "fast"],
        (1, -2, 1),
        ["@write", "@sortedset", "@fast", "@blocking"],
        zset::bzpopmin
    ),
    row!(
        "bzpopmax",
        -3,
        ["write", "noscript", "blocking", "fast"],
        (1, -2, 1),
        ["@write", "@sortedset", "@fast", "@blocking"],
        zset::bzpopmax
    ),
    row!(
        "bzmpop",
        -5,
        ["write", "blocking", "movablekeys"],
        (0, 0, 0),
        ["@write", "@sortedset", "@slow", "@blocking"],
        zset::bzmpop
    ),
    row!("zrandmember", -2, ["readonly"], (1, 1, 1), ["@read", "@sortedset", "@slow"], zset::zrandmember),
    row!("zscan", -3, ["readonly"], (1, 1, 1), ["@read", "@sortedset", "@slow"], zset::zscan),
    row!("zunion", -3, ["readonly", "movablekeys"], (0, 0, 0), ["@read", "@sortedset", "@slow"], zset::zunion),
    row!("zinter", -3, ["readonly", "movablekeys"], (0, 0, 0), ["@read", "@sortedset", "@slow"], zset::zinter),
    row!("zdiff", -3, ["readonly", "movablekeys"], (0, 0, 0), ["@read", "@sortedset", "@slow"], zset::zdiff),
    row!(
        "zunionstore",
        -4,
        ["write", "denyoom", "movablekeys"],
        (1, 1, 1),
        ["@write", "@sortedset", "@slow"],
        zset::zunionstore
    ),
    row!(
        "zinterstore",
        -4,
        ["write", "denyoom", "movablekeys"],
        (1, 1, 1),
        ["@write", "@sortedset", "@slow"],
        zset::zinterstore
    ),
    row!(
        "zdiffstore",
        -4,
        ["write", "denyoom", "movablekeys"],
        (1, 1, 1),
        ["@write", "@sortedset", "@slow"],
        zset::zdiffstore
    ),
    row!("zintercard", -3, ["readonly", "movablekeys"], (0, 0, 0), ["@read", "@sortedset", "@slow"], zset::zintercard),
    // geo (on sorted sets)
    row!("geoadd", -5, ["write", "denyoom"], (1, 1, 1), ["@write", "@geo", "@slow"], geo::geoadd),
    row!("geodist", -4, ["readonly"], (1, 1, 1), ["@read", "@geo", "@slow"], geo::geodist),
    row!("geohash", -2, ["readonly"], (1, 1, 1), ["@read", "@geo", "@slow"], geo::geohash),
    row!("geopos", -2, ["readonly"], (1, 1, 1), ["@read", "@geo", "@slow"], geo::geopos),
    row!("geosearch", -7, ["readonly"], (1, 1, 1), ["@read", "@geo", "@slow"], geo::geosearch),
    row!("geosearchstore", -8, ["write", "denyoom"], (1, 2, 1), ["@write", "@geo", "@slow"], geo::geosearchstore),
    row!("georadius", -6, ["write", "denyoom", "movablekeys"], (1, 1, 1), ["@write", "@geo", "@slow"], geo::georadius),
    row!("georadius_ro", -6, ["readonly"], (1, 1, 1), ["@read", "@geo", "@slow"], geo::georadius_ro),
    row!(
        "georadiusbymember",
        -5,
        ["write", "denyoom", "movablekeys"],
        (1, 1, 1),
        ["@write", "@geo", "@slow"],
        geo::georadiusbymember
    ),
    row!("georadiusbymember_ro", -5, ["readonly"], (1, 1, 1), ["@read", "@geo", "@slow"], geo::georadiusbymember_ro),
    // sorting
    row!(
        "sort",
        -2,
        ["write", "denyoom", "movablekeys"],
        (1, 1, 1),
        ["@write", "@set", "@sortedset", "@list", "@slow", "@dangerous"],
        sort::sort
    ),
    row!(
        "sort_ro",
        -2,
        ["readonly", "movablekeys"],
        (1, 1, 1),
        ["@read", "@set", "@sortedset", "@list", "@slow", "@dangerous"],
        sort::sort_ro
    ),
    // lists
    row!("lpush", -3, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@list", "@fast"], list::lpush),
    row!("rpush", -3, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@list", "@fast"], list::rpush),
    row!("lpushx", -3, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@list", "@fast"], list::lpushx),
    row!("rpushx", -3, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@list", "@fast"], list::rpushx),
    row!("lpop", -2, ["write", "fast"], (1, 1, 1), ["@write", "@list", "@fast"], list::lpop),
    row!("rpop", -2, ["write", "fast"], (1, 1, 1), ["@write", "@list", "@fast"], list::rpop),
    row!("llen", 2, ["readonly", "fast"], (1, 1, 1), ["@read", "@list", "@fast"], list::llen),
    row!("lrange", 4, ["readonly"], (1, 1, 1), ["@read", "@list", "@slow"], list::lrange),
    row!("lindex", 3, ["readonly"], (1, 1, 1), ["@read", "@list", "@slow"], list::lindex),
    row!("lset", 4, ["write", "denyoom"], (1, 1, 1), ["@write", "@list", "@slow"], list::lset),
    row!("linsert", 5, ["write", "denyoom"], (1, 1, 1), ["@write", "@list", "@slow"], list::linsert),
    row!("lrem", 4, ["write"], (1, 1, 1), ["@write", "@list", "@slow"], list::lrem),
    row!("ltrim", 4, ["write"], (1, 1, 1), ["@write", "@list", "@slow"], list::ltrim),
    row!("lpos", -3, ["readonly"], (1, 1, 1), ["@read", "@list", "@slow"], list::lpos),
    row!("lmove", 5, ["write", "denyoom"], (1, 2, 1), ["@write", "@list", "@slow"], list::lmove),
    row!("rpoplpush", 3, ["write", "denyoom"], (1, 2, 1), ["@write", "@list", "@slow"], list::rpoplpush),
    row!(
        "blpop",
        -3,
        ["write", "noscript", "blocking"],
        (1, -2, 1),
        ["@write", "@list", "@slow", "@blocking"],
        list::blpop
    ),
    row!(
        "brpop",
        -3,
        ["write", "noscript", "blocking"],
        (1, -2, 1),
        ["@write", "@list", "@slow", "@blocking"],
        list::brpop
    ),
    row!(
        "blmove",
        6,
        ["write", "denyoom", "noscript", "blocking"],
        (1, 2, 1),
        ["@write", "@list", "@slow", "@blocking"],
        list::blmove
    ),
    row!(
        "brpoplpush",
        4,
        ["write", "denyoom", "noscript", "blocking"],
        (1, 2, 1),
        ["@write", "@list", "@slow", "@blocking"],
        list::brpoplpush
    ),
    row!(
        "blmpop",
        -5,
        ["write", "blocking", "movablekeys"],
        (0, 0, 0),
        ["@write", "@list", "@slow", "@blocking"],
        list::blmpop
    ),
    row!("lmpop", -4, ["write", "movablekeys"], (0, 0, 0), ["@write", "@list", "@slow"], list::lmpop),
    // keys
    row!("del", -2, ["write"], (1, -1, 1), ["@keyspace", "@write", "@slow"], keys::del),
    row!("unlink", -2, ["write", "fast"], (1, -1, 1), ["@keyspace", "@write", "@fast"], keys::del),
    row!("exists", -2, ["readonly", "fast"], (1, -1, 1), ["@keyspace", "@read", "@fast"], keys::exists),
    row!("touch", -2, ["readonly", "fast"], (1, -1, 1), ["@keyspace", "@read", "@fast"], keys::touch),
    row!("object", -2, [], (0, 0, 0), ["@slow"], keys::object),
    row!("type", 2, ["readonly", "fast"], (1, 1, 1), ["@keyspace", "@read", "@fast"], keys::type_),
    row!("rename", 3, ["write"], (1, 2, 1), ["@keyspace", "@write", "@slow"], keys::rename),
    row!("renamenx", 3, ["write", "fast"], (1, 2, 1), ["@keyspace", "@write", "@fast"], keys::renamenx),
    row!("copy", -3, ["write", "denyoom"], (1, 2, 1), ["@keyspace", "@write", "@slow"], keys::copy),
    row!("dump", 2, ["readonly"], (1, 1, 1), ["@keyspace", "@read", "@slow"], dump::dump),
    row!("restore", -4, ["write", "denyoom"], (1, 1, 1), ["@keyspace", "@write", "@slow", "@dangerous"], dump::restore),
    row!(
        "migrate",
        -6,
        ["write", "movablekeys"],
        (3, 3, 1),
        ["@keyspace", "@write", "@slow", "@dangerous"],
        migrate::migrate
    ),
    row!("move", 3, ["write", "fast"], (1, 1, 1), ["@keyspace", "@write", "@fast"], keys::move_),
    row!("keys", 2, ["readonly"], (0, 0, 0), ["@keyspace", "@read", "@slow", "@dangerous"], keys::keys),
    row!("scan", -2, ["readonly"], (0, 0, 0), ["@keyspace", "@read", "@slow"], keys::scan),
    row!("randomkey", 1, ["readonly"], (0, 0, 0), ["@keyspace", "@read", "@slow"], keys::randomkey),
    row!("dbsize", 1, ["readonly", "fast"], (0, 0, 0), ["@keyspace", "@read", "@fast"], keys::dbsize),
    row!("flushdb", -1, ["write"], (0, 0, 0), ["@keyspace", "@write", "@slow", "@dangerous"], keys::flushdb),
    row!("flushall", -1, ["write"], (0, 0, 0), ["@keyspace", "@write", "@slow", "@dangerous"], keys::flushall),
    row!("swapdb", 3, ["write", "fast"], (0, 0, 0), ["@keyspace", "@write", "@fast", "@dangerous"], keys::swapdb),
    // expiry
    row!("expire", -3, ["write", "fast"], (1, 1, 1), ["@keyspace", "@write", "@fast"], keys::expire),
    row!("pexpire", -3, ["write", "fast"], (1, 1, 1), ["@keyspace", "@write", "@fast"], keys::pexpire),
    row!("expireat", -3, ["write", "fast"], (1, 1, 1), ["@keyspace", "@write", "@fast"], keys::expireat),
    row!("pexpireat", -3, ["write", "fast"], (1, 1, 1), ["@keyspace", "@write", "@fast"], keys::pexpireat),
    row!("ttl", 2, ["readonly", "fast"], (1, 1, 1), ["@keyspace", "@read", "@fast"], keys::ttl),
    row!("pttl", 2, ["readonly", "fast"], (1, 1, 1), ["@keyspace", "@read", "@fast"], keys::pttl),
    row!("expiretime", 2, ["readonly", "fast"], (1, 1, 1), ["@keyspace", "@read", "@fast"], keys::expiretime),
    row!("pexpiretime", 2, ["readonly", "fast"], (1, 1, 1), ["@keyspace", "@read", "@fast"], keys::pexpiretime),
    row!("persist", 2, ["write", "fast"], (1, 1, 1), ["@keyspace", "@write", "@fast"], keys::persist),
    // transactions
    row!(
        "multi",
        1,
        ["noscript", "loading", "stale", "fast", "allow_busy"],
        (0, 0, 0),
        ["@fast", "@transaction"],
        tx::multi
    ),
    row!("exec", 1, ["noscript", "loading", "stale", "skip_slowlog"], (0, 0, 0), ["@slow", "@transaction"], tx::exec),
    row!(
        "discard",
        1,
        ["noscript", "loading", "stale", "fast", "allow_busy"],
        (0, 0, 0),
        ["@fast", "@transaction"],
        tx::discard
    ),
    row!(
        "watch",
        -2,
        ["noscript", "loading", "stale", "fast", "allow_busy"],
        (1, -1, 1),
        ["@fast", "@transaction"],
        tx::watch
    ),
    row!(
        "unwatch",
        1,
        ["noscript", "loading", "stale", "fast", "allow_busy"],
        (0, 0, 0),
        ["@fast", "@transaction"],
        tx::unwatch
    ),
    // pub/sub
    row!(
        "subscribe",
        -2,
        ["pubsub", "noscript", "loading", "stale"],
        (0, 0, 0),
        ["@pubsub", "@slow"],
        pubsub::subscribe
    ),
    row!(
        "unsubscribe",
        -1,
        ["pubsub", "noscript", "loading", "stale"],
        (0, 0, 0),
        ["@pubsub", "@slow"],
        pubsub::unsubscribe
    ),
    row!(
        "psubscribe",
        -2,
        ["pubsub", "noscript", "loading", "stale"],
        (0, 0, 0),
        ["@pubsub", "@slow"],
        pubsub::psubscribe
    ),
    row!(
        "punsubscribe",
        -1,
        ["pubsub", "noscript", "loading", "stale"],
        (0, 0, 0),
        ["@pubsub", "@slow"],
        pubsub::punsubscribe
    ),
    row!(
        "ssubscribe",
        -2,
        ["pubsub", "noscript", "loading", "stale"],
        (1, -1, 1),
        ["@pubsub", "@slow"],
        pubsub::ssubscribe
    ),
    row!(
        "sunsubscribe",
        -1,
        ["pubsub", "noscript", "loading", "stale"],
        (1, -1, 1),
        ["@pubsub", "@slow"],
        pubsub::sunsubscribe
    ),
    row!(
        "publish",
        3,
        ["pubsub", "loading", "stale", "fast", "may_replicate"],
        (0, 0, 0),
        ["@pubsub", "@fast"],
        pubsub::publish
    ),
    row!(
        "spublish",
        3,
        ["pubsub", "loading", "stale", "fast", "may_replicate"],
        (1, 1, 1),
        ["@pubsub", "@fast"],
        pubsub::spublish
    ),
    row!("pubsub", -2, [], (0, 0, 0), ["@slow"], pubsub::pubsub),
    // connection and server
    row!("ping", -1, ["fast"], (0, 0, 0), ["@fast", "@connection"], server::ping),
    row!("echo", 2, ["loading", "stale", "fast"], (0, 0, 0), ["@fast", "@connection"], server::echo),
    row!(
        "quit",
        -1,
        ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        (0, 0, 0),
        ["@fast", "@connection"],
        server::quit
    ),
    row!(
        "auth",
        -2,
        ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        (0, 0, 0),
        ["@fast", "@connection"],
        server::auth
    ),
    row!("select", 2, ["loading", "stale", "fast"], (0, 0, 0), ["@fast", "@connection"], server::select),
    row!(
        "hello",
        -1,
        ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        (0, 0, 0),
        ["@fast", "@connection"],
        server::hello
    ),
    row!(
        "reset",
        1,
        ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        (0, 0, 0),
        ["@fast", "@connection"],
        server::reset
    ),
    // streams
    row!("xadd", -5, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@stream", "@fast"], stream::xadd),
    row!("xlen", 2, ["readonly", "fast"], (1, 1, 1), ["@read", "@stream", "@fast"], stream::xlen),
    row!("xrange", -4, ["readonly"], (1, 1, 1), ["@read", "@stream", "@slow"], stream::xrange),
    row!("xrevrange", -4, ["readonly"], (1, 1, 1), ["@read", "@stream", "@slow"], stream::xrevrange),
    row!("xdel", -3, ["write", "fast"], (1, 1, 1), ["@write", "@stream", "@fast"], stream::xdel),
    row!("xtrim", -4, ["write"], (1, 1, 1), ["@write", "@stream", "@slow"], stream::xtrim),
    row!("xsetid", -3, ["write", "denyoom", "fast"], (1, 1, 1), ["@write", "@stream", "@fast"], stream::xsetid),
    row!(
        "xread",
        -4,
        ["readonly", "blocking", "movablekeys"],
        (0, 0, 0),
        ["@read", "@stream", "@slow", "@blocking"],
        stream::xread,
        locks_keys
    ),
    row!(
        "xreadgroup",
        -7,
        ["write", "blocking", "movablekeys"],
        (0, 0, 0),
        ["@write", "@stream", "@slow", "@blocking"],
        stream::xreadgroup,
        locks_keys
    ),
    row!("xgroup", -2, [], (0, 0, 0), ["@slow"], stream::xgroup),
    row!("xack", -4, ["write", "fast"], (1, 1, 1), ["@write", "@stream", "@fast"], stream::xack),
    row!("xpending", -3, ["readonly"], (1, 1, 1), ["@read", "@stream", "@slow"], stream::xpending),
    row!("xclaim", -6, ["write", "fast"], (1, 1, 1), ["@write", "@stream", "@fast"], stream::xclaim),
    row!("xautoclaim", -6, ["write", "fast"], (1, 1, 1), ["@write", "@stream", "@fast"], stream::xautoclaim),
    row!("xinfo", -2, [], (0, 0, 0), ["@slow"], stream::xinfo),
    row!("client", -2, [], (0, 0, 0), ["@slow"], server::client),
    row!(
        "monitor",
        1,
        ["admin", "noscript", "loading", "stale"],
        (0, 0, 0),
        ["@admin", "@slow", "@dangerous"],
        server::client_ctl::monitor
    ),
    row!("command", -1, ["loading", "stale"], (0, 0, 0), ["@slow", "@connection"], server::command),
    row!("config", -2, [], (0, 0, 0), ["@slow"], server::config),
    row!("info", -1, ["loading", "stale"], (0, 0, 0), ["@slow", "@dangerous"], server::info),
    row!("slowlog", -2, [], (0, 0, 0), ["@slow"], server::slowlog),
    row!("latency", -2, [], (0, 0, 0), ["@slow"], server::latency),
    row!("memory", -2, [], (0, 0, 0), ["@slow"], server::memory),
    row!("time", 1, ["loading", "stale", "fast"], (0, 0, 0), ["@fast"], server::time),
    row!("lastsave", 1, ["loading", "stale", "fast"], (0, 0, 0), ["@admin", "@fast", "@dangerous"], server::lastsave),
    row!(
        "save",
        1,
        ["admin", "noscript", "no_async_loading", "no_multi"],
        (0, 0, 0),
        ["@admin", "@slow", "@dangerous"],
        save::save
    ),
    row!(
        "bgsave",
        -1,
        ["admin", "noscript", "no_async_loading"],
        (0, 0, 0),
        ["@admin", "@slow", "@dangerous"],
        save::bgsave
    ),
    row!(
        "bgrewriteaof",
        1,
        ["admin", "noscript", "no_async_loading"],
        (0, 0, 0),
        ["@admin", "@slow", "@dangerous"],
        server::bgrewriteaof
    ),
    row!(
        "shutdown",
        -1,
        ["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"],
        (0, 0, 0),
        ["@admin", "@slow", "@dangerous"],
        server::shutdown
    ),
    // scripting
    row!(
        "eval",
        -3,
        ["noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"],
        (0, 0, 0),
        ["@slow", "@scripting"],
        eval::eval
    ),
    row!(
        "evalsha",
        -3,
        ["noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"],
        (0, 0, 0),
        ["@slow", "@scripting"],
        eval::evalsha
    ),
    row!(
        "eval_ro",
        -3,
        ["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"],
        (0, 0, 0),
        ["@slow", "@scripting"],
        eval::eval_ro
    ),
    row!(
        "evalsha_ro",
        -3,
        ["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"],
        (0, 0, 0),
        ["@slow", "@scripting"],
        eval::evalsha_ro
    ),
    row!("script", -2, [], (0, 0, 0), ["@slow"], eval::script),
    row!(
        "fcall",
        -3,
        ["noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"],
        (0, 0, 0),
        ["@slow", "@scripting"],
        function::fcall
    ),
    row!(
        "fcall_ro",
        -3,
        ["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"],
        (0, 0, 0),
        ["@slow", "@scripting"],
        function::fcall_ro
    ),
    row!("function", -2, [], (0, 0, 0), ["@slow"], function::function),
    row!(
        "replconf",
        -1,
        ["admin", "noscript", "loading", "stale", "allow_busy"],
        (0, 0, 0),
        ["@admin", "@slow", "@dangerous"],
        crate::repl::replconf
    ),
    row!(
        "psync",
        -3,
        ["admin", "noscript", "no_async_loading", "no_multi"],
        (0, 0, 0),
        ["@admin", "@slow", "@dangerous"],
        crate::repl::psync
    ),
    row!(
        "sync",
        1,
        ["admin", "noscript", "no_async_loading", "no_multi"],
        (0, 0, 0),
        ["@admin", "@slow", "@dangerous"],
        crate::repl::sync
    ),
    row!("wait", 3, ["noscript"], (0, 0, 0), ["@slow", "@connection"], crate::repl::wait),
    row!(
        "role",
        1,
        ["noscript", "loading", "stale", "fast"],
        (0, 0, 0),
        ["@admin", "@fast", "@dangerous"],
        crate::repl::role
    ),
    row!(
        "replicaof",
        3,
        ["admin", "noscript", "stale", "no_async_loading"],
        (0, 0, 0),
        ["@admin", "@slow", "@dangerous"],
        crate::repl::replicaof
    ),
    row!(
        "slaveof",
        3,
        ["admin", "noscript", "stale", "no_async_loading"],
        (0, 0, 0),
        ["@admin", "@slow", "@dangerous"],
        crate::repl::replicaof
    ),
    row!(
        "failover",
        -1,
        ["admin", "noscript", "stale"],
        (0, 0, 0),
        ["@admin", "@slow", "@dangerous"],
        crate::repl::failover::failover
    ),
];

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn every_row_mask_matches_its_flag_names() {
        for spec in COMMANDS {
            for (name, bit) in flag::NAMED {
                assert_eq!(spec.is(bit), spec.flags.contains(&name), "{} {name}", spec.name);
            }
        }
        let get = COMMANDS.iter().find(|c| c.name == "get").unwrap();
        assert!(get.is(flag::READONLY) && !get.is_write());
        let set = COMMANDS.iter().find(|c| c.name == "set").unwrap();
        assert!(set.is(flag::WRITE | flag::DENYOOM) && !set.is(flag::READONLY));
    }
}
