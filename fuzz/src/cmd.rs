//! `cmd_execute`: a sequence of argument vectors through `cmd::execute` on one keyspace, by three
//! clients (each with its own selected db, MULTI state, ...), with the clock moving and active expiry
//! running. A fourth client, never driven by the input, runs the invariant checks.
//!
//! Input layout, repeated: an op byte. `0xF0..=0xFB` is a harness step taking one more byte (advance
//! the clock, switch client, run an active-expiry cycle); `0xFC..=0xFF` runs one of
//! [`TRACKING_STEPS`] (chosen by one more byte) on the current client, so that inputs reach
//! client-side caching (HELLO 3, CLIENT TRACKING in its modes, CACHING, REDIRECT) often; anything
//! else is a command whose low nibble is its argument count, followed by a name byte (a table
//! command, upper- or lowercase, or an unknown/raw name) and one byte per argument (an entry of
//! [`POOL`], or raw bytes from the input). As a connection does, the BCAST broadcasts go out after
//! every step and the tracking key limit is enforced before a tracking client's command.
//!
//! Checked after every step: no panic; the reply encodes to well-formed RESP that parses back to
//! the same frame (no CR/LF inside simple or error lines); for every pool key of the client's db,
//! TYPE agrees with GET, STRLEN, LLEN, LRANGE, EXISTS and TTL; no empty or dead list is stored;
//! KEYS * names only live keys and DBSIZE is at least its count; no single allocation exceeds
//! [`ALLOCATION_LIMIT`] (no count or length from the request sizes an allocation); every client's
//! out-of-band output (pub/sub messages, invalidations) is well-formed RESP; and no client is left
//! with a stale cache: a RESP3 client in plain tracking mode (no BCAST/OPTIN/OPTOUT/NOLOOP/REDIRECT)
//! that GETs a key caches the reply, an invalidation of the key (or a flush's null) drops it, and
//! every value still cached must equal what GET answers now ([`CacheModel`]).

use bytes::{Bytes, BytesMut};
use flurrydb::aof::Aof;
use flurrydb::cmd::{COMMANDS, Client, Ctx, execute};
use flurrydb::config::Config;
use flurrydb::db::ValueRef;
use flurrydb::resp::Frame;
use flurrydb::state::Shared;
use flurrydb::tracking::flag;
use std::collections::HashMap;

use crate::track;

/// The clock the run starts at (ms since the epoch).
pub const START_MS: u64 = 1_700_000_000_000;
/// Most steps per input.
const MAX_STEPS: usize = 256;
/// No command may allocate more than this at once (the pool's values are tiny).
pub const ALLOCATION_LIMIT: usize = 16 << 20;

/// The keys invariants are checked on (all in the pool).
const KEYS: &[&str] = &["a", "b", "c", "{a}x", ""];

/// Arguments: keys, values, numbers at the edges, options, subcommands, patterns, config names.
pub const POOL: &[&str] = &[
    // keys (twice: they matter most)
    "a",
    "b",
    "c",
    "{a}x",
    "",
    "a",
    "b",
    "c",
    // values and numbers
    "v",
    "hello",
    "0",
    "1",
    "-1",
    "2",
    "3",
    "5",
    "10",
    "-2",
    "-100",
    "100",
    "1000",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775806",
    "-9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "99999999999999999999",
    "4294967295",
    "4294967296",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "536870911",
    "536870912",
    "1048576",
    "1e400",
    "-1e400",
    "1e3",
    "3.5",
    "-0",
    "+1",
    " 1",
    "1 ",
    "01",
    "0x10",
    "inf",
    "-inf",
    "nan",
    "1700000000",
    "1700000001",
    "1700000000000",
    "1700000000500",
    "1700000100000",
    "17000000000000000",
    "15",
    "16",
    // options
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "NX",
    "XX",
    "GT",
    "LT",
    "KEEPTTL",
    "GET",
    "PERSIST",
    "LEFT",
    "RIGHT",
    "BEFORE",
    "AFTER",
    "RANK",
    "COUNT",
    "MAXLEN",
    "MATCH",
    "WITHVALUES",
    "LIMIT",
    "TYPE",
    "REPLACE",
    "DB",
    "ABSTTL",
    "ASYNC",
    "SYNC",
    "list",
    "string",
    "STRING",
    "none",
    "hash",
    "set",
    // subcommands and sections
    "SET",
    "ID",
    "INFO",
    "LIST",
    "SETNAME",
    "GETNAME",
    "HELP",
    "RESETSTAT",
    "REWRITE",
    "DOCS",
    "GETKEYS",
    "FILTERBY",
    "MODULE",
    "ACLCAT",
    "PATTERN",
    "server",
    "keyspace",
    "stats",
    "all",
    "default",
    "everything",
    "clients",
    "errorstats",
    // glob patterns
    "*",
    "a*",
    "?",
    "[",
    "[a-",
    "[^a]*",
    "\\",
    "a\\",
    "[]",
    "[a-c]",
    "*{a}*",
    "\\*",
    // config parameters
    "hz",
    "maxmemory",
    "timeout",
    "loglevel",
    "save",
    "appendfsync",
    "maxmemory-policy",
    "proto-max-bulk-len",
    "maxclients",
    "requirepass",
    "port",
    "databases",
    "everysec",
    "always",
    "noeviction",
    "notice",
    "1mb",
    "1gb",
    "-1gb",
    "yes",
    "no",
    // awkward bytes
    "a b",
    "a\r\nb",
    "\r\n",
    "\n",
    "'",
    "\"",
    "\x00",
    "\u{e9}",
    // client-side caching (appended: earlier entries keep their bytes)
    "TRACKING",
    "CACHING",
    "GETREDIR",
    "TRACKINGINFO",
    "ON",
    "OFF",
    "BCAST",
    "PREFIX",
    "OPTIN",
    "OPTOUT",
    "NOLOOP",
    "REDIRECT",
    "YES",
    "NO",
    "4",
    "__redis__:invalidate",
    "tracking-table-max-keys",
];

/// The steps `0xFC..=0xFF` choose from: what a client-side caching client sends (the fuzzed
/// clients are ids 1 to 3, the inspector 4).
pub const TRACKING_STEPS: &[&[&str]] = &[
    &["HELLO", "3"],
    &["HELLO", "3"],
    &["CLIENT", "TRACKING", "ON"],
    &["CLIENT", "TRACKING", "ON"],
    &["CLIENT", "TRACKING", "ON", "NOLOOP"],
    &["CLIENT", "TRACKING", "ON", "BCAST"],
    &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "b"],
    &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "{", "NOLOOP"],
    &["CLIENT", "TRACKING", "ON", "OPTIN"],
    &["CLIENT", "TRACKING", "ON", "OPTOUT"],
    &["CLIENT", "TRACKING", "ON", "REDIRECT", "1"],
    &["CLIENT", "TRACKING", "ON", "REDIRECT", "2"],
    &["CLIENT", "TRACKING", "ON", "REDIRECT", "3"],
    &["CLIENT", "TRACKING", "ON", "REDIRECT", "4"],
    &["CLIENT", "TRACKING", "OFF"],
    &["CLIENT", "CACHING", "YES"],
    &["CLIENT", "CACHING", "NO"],
    &["CLIENT", "GETREDIR"],
    &["CLIENT", "TRACKINGINFO"],
    &["SUBSCRIBE", "__redis__:invalidate"],
    &["HELLO", "2"],
    &["CONFIG", "SET", "tracking-table-max-keys", "2"],
    &["GET", "a"],
    &["GET", "b"],
    &["GET", "{a}x"],
    &["GET", "c"],
    &["MGET", "a", "b", "c"],
];

/// Commands never sent: they end the process or the connection, or touch files.
const EXCLUDED: &[&str] = &["shutdown", "quit", "bgrewriteaof", "debug", "monitor", "save", "bgsave"];
/// CONFIG SET parameters never set: they point the server at files.
const EXCLUDED_PARAMS: &[&str] = &["dir", "logfile", "appendonly", "appendfilename", "dbfilename"];

struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let end = self.pos.saturating_add(n).min(self.data.len());
        let s = &self.data[self.pos..end];
        self.pos = end;
        s
    }
}

/// Build one argument vector from the input.
fn argv_from(op: u8, input: &mut Input) -> Vec<Bytes> {
    let nargs = (op & 0x0F) as usize;
    let nb = input.byte().unwrap_or(0);
    let name: Bytes = if nb < 0xF0 {
        let n = COMMANDS[nb as usize % COMMANDS.len()].name;
        if op & 0x80 != 0 { Bytes::from(n.to_ascii_uppercase()) } else { Bytes::from_static(n.as_bytes()) }
    } else if nb < 0xF8 {
        let len = input.byte().unwrap_or(0) as usize % 40;
        Bytes::copy_from_slice(input.take(len))
    } else {
        Bytes::from_static(b"nosuchcommand")
    };
    let mut argv = vec![name];
    for _ in 0..nargs {
        let Some(ab) = input.byte() else { break };
        argv.push(if ab < 0xF8 {
            Bytes::from_static(POOL[ab as usize % POOL.len()].as_bytes())
        } else {
            let len = input.byte().unwrap_or(0) as usize % 32;
            Bytes::copy_from_slice(input.take(len))
        });
    }
    argv
}

/// Whether the harness refuses to send `argv` (see [`EXCLUDED`]), or it is a legitimate request for
/// a huge value (SETRANGE past 1 MB within the 512 MB limit allocates as it does in Redis).
fn excluded(argv: &[Bytes]) -> bool {
    let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
    if EXCLUDED.contains(&name.as_str()) {
        return true;
    }
    if name == "config" && argv.len() > 2 && argv[1].eq_ignore_ascii_case(b"set") {
        return argv[2..].iter().any(|a| EXCLUDED_PARAMS.iter().any(|p| a.eq_ignore_ascii_case(p.as_bytes())));
    }
    if name == "setrange" && argv.len() == 4 {
        let offset = std::str::from_utf8(&argv[2]).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        return offset > 1 << 20 && (offset as u64).saturating_add(argv[3].len() as u64) <= 512 << 20;
    }
    false
}

/// The fuzz target body.
pub fn run(data: &[u8]) {
    let shared = Shared::new(Config::default());
    shared.ks.set_aof(Aof::disabled());
    let mut clients: Vec<Client> = (0..3)
        .map(|i| Client::new(shared.clients.register(format!("127.0.0.1:{}", 1000 + i), "127.0.0.1:6379".into())))
        .collect();
    // The invariant checks run as their own client, so that they never join a MULTI queue.
    let mut inspector = Client::new(shared.clients.register("127.0.0.1:999".into(), "127.0.0.1:6379".into()));
    let mut cache = CacheModel::new(clients.len());
    let mut now = START_MS;
    let mut cur = 0;
    let mut input = Input { data, pos: 0 };
    for _ in 0..MAX_STEPS {
        let Some(op) = input.byte() else { break };
        if op >= 0xFC {
            let argv = TRACKING_STEPS[input.byte().unwrap_or(0) as usize % TRACKING_STEPS.len()];
            let argv: Vec<Bytes> = argv.iter().map(|a| Bytes::from_static(a.as_bytes())).collect();
            command(&shared, &mut clients[cur], now, &argv, &mut cache, cur);
        } else if op >= 0xF0 {
            let arg = input.byte().unwrap_or(0) as usize;
            match op % 4 {
                0 | 3 => now += [1, 10, 499, 500, 1000, 5_000, 100_000, 86_400_000][arg % 8],
                1 => cur = arg % clients.len(),
                _ => {
                    track::reset();
                    shared.ks.expire_cycle(now, 1 + arg % 64);
                    assert!(track::largest() <= ALLOCATION_LIMIT, "active expiry allocated {}", track::largest());
                }
            }
        } else {
            let argv = argv_from(op, &mut input);
            if excluded(&argv) {
                continue;
            }
            command(&shared, &mut clients[cur], now, &argv, &mut cache, cur);
        }
        // As a connection does after its batch: the BCAST invalidations of the keys it modified.
        shared.ks.tracking().broadcast();
        cache.drain(&clients, &inspector);
        inspector.db = clients[cur].db;
        check_invariants(&shared, &mut inspector, now);
        cache.drain(&clients, &inspector);
        cache.check(&shared, &mut inspector, &clients, now);
    }
}

/// Run one fuzzed command on `client` (number `i`) as its connection would, and check its reply.
fn command(shared: &Shared, client: &mut Client, now: u64, argv: &[Bytes], cache: &mut CacheModel, i: usize) {
    if client.info.tracking.is_on() {
        // Before a tracking client's command (connection.rs): keep the table within its limit.
        shared.ks.tracking().limit_keys();
    }
    track::reset();
    let reply = execute(&mut Ctx::new(shared, client, now), argv);
    let largest = track::largest();
    assert!(largest <= ALLOCATION_LIMIT, "{argv:?} allocated {largest} bytes at once");
    client.close_after_reply = false;
    client.skip_reply = false;
    check_encoding(argv, &reply);
    cache.after_command(i, client, argv, &reply);
}

/// What each fuzzed client may hold in a client-side cache, and the check that none of it is
/// stale. Modeled: a RESP3 client tracking in plain mode (flags exactly ON, no redirect) caches
/// each GET reply (per db and key; tracking is by key name). Its `invalidate` pushes drop the
/// key's entries (every db), a null drops all; a change of the client's tracking mode or protocol
/// drops its entries. SWAPDB changes values without invalidating (as Redis): it drops every entry.
struct CacheModel {
    entries: Vec<HashMap<(usize, Bytes), Frame>>,
    /// (tracking flags, redirect, protocol) each client's entries were cached under.
    mode: Vec<(u32, i64, usize)>,
    /// A client queued SWAPDB in its MULTI (its EXEC drops every entry).
    swap_queued: Vec<bool>,
    /// A function library that may call SWAPDB was loaded (then FCALL drops every entry).
    swapping_functions: bool,
}

fn mode_of(c: &Client) -> (u32, i64, usize) {
    (c.info.tracking.flags(), c.info.tracking.redir(), c.info.resp.load(std::sync::atomic::Ordering::Relaxed))
}

fn is(argv: &[Bytes], name: &str) -> bool {
    argv[0].eq_ignore_ascii_case(name.as_bytes())
}

fn mentions_swapdb(argv: &[Bytes]) -> bool {
    argv.iter().any(|a| a.to_ascii_lowercase().windows(6).any(|w| w == b"swapdb"))
}

impl CacheModel {
    fn new(n: usize) -> CacheModel {
        CacheModel {
            entries: vec![HashMap::new(); n],
            mode: vec![(0, -1, 2); n],
            swap_queued: vec![false; n],
            swapping_functions: false,
        }
    }

    fn clear(&mut self) {
        self.entries.iter_mut().for_each(HashMap::clear);
    }

    fn after_command(&mut self, i: usize, client: &Client, argv: &[Bytes], reply: &Frame) {
        let queued = matches!(reply, Frame::Simple(s) if &s[..] == b"QUEUED");
        if is(argv, "function") && mentions_swapdb(argv) {
            self.swapping_functions = true;
        }
        let script = ["eval", "evalsha", "eval_ro", "evalsha_ro"].iter().any(|n| is(argv, n)) && mentions_swapdb(argv);
        let function = (is(argv, "fcall") || is(argv, "fcall_ro")) && self.swapping_functions;
        let swaps = is(argv, "swapdb") || script || function;
        if queued && swaps {
            self.swap_queued[i] = true;
        }
        let ended = (is(argv, "exec") || is(argv, "discard")) && std::mem::take(&mut self.swap_queued[i]);
        if (swaps && !queued) || ended {
            self.clear();
        }
        if mode_of(client) != self.mode[i] {
            self.entries[i].clear();
            self.mode[i] = mode_of(client);
        }
        let plain = self.mode[i] == (flag::ON, 0, 3);
        if plain && argv.len() == 2 && is(argv, "get") && matches!(reply, Frame::Bulk(_) | Frame::Null) {
            self.entries[i].insert((client.db, argv[1].clone()), reply.clone());
        }
    }

    /// Take every client's out-of-band output: it must be well-formed RESP; apply the invalidations.
    fn drain(&mut self, clients: &[Client], inspector: &Client) {
        for (i, c) in clients.iter().chain([inspector]).enumerate() {
            let mut out = BytesMut::new();
            c.subs.sub.drain_into(&mut out);
            let mut pos = 0;
            while pos < out.len() {
                let frame = parse_reply(&out, &mut pos);
                let Some(frame) = frame else { panic!("client {i}: malformed pushes {out:?}") };
                let Frame::Push(items) = frame else { continue };
                let (Some(Frame::Bulk(kind)), Some(body), Some(e)) =
                    (items.first(), items.get(1), self.entries.get_mut(i))
                else {
                    continue;
                };
                if &kind[..] != b"invalidate" {
                    continue;
                }
                match body {
                    Frame::Null => e.clear(),
                    Frame::Array(keys) => {
                        for k in keys {
                            let Frame::Bulk(k) = k else { panic!("client {i}: invalidate of {k:?}") };
                            e.retain(|(_, key), _| key != k);
                        }
                    }
                    other => panic!("client {i}: invalidate with {other:?}"),
                }
            }
        }
    }

    /// Every value still cached equals what GET answers now, unless an invalidation is on its way
    /// (the probe's own lazy expiry of the key sends one).
    fn check(&mut self, shared: &Shared, inspector: &mut Client, clients: &[Client], now: u64) {
        let mut seen = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            for ((db, key), cached) in e {
                inspector.db = *db;
                let get = execute(&mut Ctx::new(shared, inspector, now), &[Bytes::from_static(b"GET"), key.clone()]);
                seen.push((i, *db, key.clone(), cached.clone(), get));
            }
        }
        self.drain(clients, inspector);
        for (i, db, key, cached, get) in seen {
            if self.entries[i].contains_key(&(db, key.clone())) {
                assert_eq!(
                    cached, get,
                    "client {i} caches {key:?} (db {db}) as {cached:?} but GET answers {get:?}, and no invalidation came"
                );
            }
        }
    }
}

/// Run a read command for the checks.
fn probe(shared: &Shared, client: &mut Client, now: u64, args: &[&str]) -> Frame {
    let argv: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
    execute(&mut Ctx::new(shared, client, now), &argv)
}

/// The reply encodes, is well-formed RESP, and parses back to itself.
fn check_encoding(argv: &[Bytes], reply: &Frame) {
    // SUBSCRIBE a b: one reply per channel, each well-formed on its own.
    if let Frame::Seq(replies) = reply {
        return replies.iter().for_each(|r| check_encoding(argv, r));
    }
    let mut out = BytesMut::new();
    reply.encode(&mut out, 2);
    let mut pos = 0;
    let parsed = parse_reply(&out, &mut pos);
    assert_eq!(parsed, Some(reply.to_resp2()), "{argv:?}: reply {reply:?} encodes to unparsable {out:?}");
    assert_eq!(pos, out.len(), "{argv:?}: reply {reply:?} encodes with trailing bytes {out:?}");
}

/// Parse one RESP2 reply (or RESP3 push) from `b[*pos..]`; None if it is malformed.
pub fn parse_reply(b: &[u8], pos: &mut usize) -> Option<Frame> {
    let line_end =
        |from: usize| -> Option<usize> { b.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|p| from + p) };
    let kind = *b.get(*pos)?;
    let end = line_end(*pos + 1)?;
    let line = &b[*pos + 1..end];
    *pos = end + 2;
    if line.contains(&b'\r') || line.contains(&b'\n') {
        return None;
    }
    let int = || std::str::from_utf8(line).ok()?.parse::<i64>().ok();
    match kind {
        b'+' => Some(Frame::Simple(Bytes::copy_from_slice(line))),
        b'-' => Some(Frame::Error(Bytes::copy_from_slice(line))),
        b':' => int().map(Frame::Integer),
        b'$' => match int()? {
            -1 => Some(Frame::Null),
            n if n >= 0 => {
                let n = n as usize;
                let body = b.get(*pos..*pos + n)?;
                if b.get(*pos + n..*pos + n + 2)? != b"\r\n" {
                    return None;
                }
                *pos += n + 2;
                Some(Frame::Bulk(Bytes::copy_from_slice(body)))
            }
            _ => None,
        },
        b'*' => match int()? {
            -1 => Some(Frame::NullArray),
            n if n >= 0 => (0..n).map(|_| parse_reply(b, pos)).collect::<Option<Vec<_>>>().map(Frame::Array),
            _ => None,
        },
        // RESP3, in the pushes a RESP3 client receives.
        b'>' => match int()? {
            n if n >= 0 => (0..n).map(|_| parse_reply(b, pos)).collect::<Option<Vec<_>>>().map(Frame::Push),
            _ => None,
        },
        b'_' if line.is_empty() => Some(Frame::Null),
        _ => None,
    }
}

/// (empty, dead) of a locked collection cell.
trait EmptyOrDead<T> {
    fn map_or_dead(&self, empty: impl Fn(&T) -> bool) -> (bool, bool);
}

impl<T> EmptyOrDead<T> for flurrydb::db::CellState<T> {
    fn map_or_dead(&self, empty: impl Fn(&T) -> bool) -> (bool, bool) {
        (empty(&self.items), self.dead)
    }
}

/// The keyspace invariants of `client`'s db, seen through commands and through the map itself.
fn check_invariants(shared: &Shared, client: &mut Client, now: u64) {
    for &key in KEYS {
        let ty = probe(shared, client, now, &["TYPE", key]);
        let get = probe(shared, client, now, &["GET", key]);
        let llen = probe(shared, client, now, &["LLEN", key]);
        let exists = probe(shared, client, now, &["EXISTS", key]);
        let ttl = probe(shared, client, now, &["PTTL", key]);
        let ctx = format!("key {key:?} db {}", client.db);
        match ty {
            Frame::Simple(t) if &t[..] == b"none" => {
                assert_eq!(get, Frame::Null, "{ctx}: TYPE none but GET {get:?}");
                assert_eq!(llen, Frame::Integer(0), "{ctx}: TYPE none but LLEN {llen:?}");
                assert_eq!(exists, Frame::Integer(0), "{ctx}: TYPE none but EXISTS {exists:?}");
                assert_eq!(ttl, Frame::Integer(-2), "{ctx}: TYPE none but PTTL {ttl:?}");
            }
            Frame::Simple(t) if &t[..] == b"string" => {
                let Frame::Bulk(v) = &get else { panic!("{ctx}: TYPE string but GET {get:?}") };
                assert!(
                    matches!(&llen, Frame::Error(e) if e.starts_with(b"WRONGTYPE")),
                    "{ctx}: string, LLEN {llen:?}"
                );
                let strlen = probe(shared, client, now, &["STRLEN", key]);
                assert_eq!(strlen, Frame::Integer(v.len() as i64), "{ctx}: GET {v:?} but STRLEN {strlen:?}");
                assert_eq!(exists, Frame::Integer(1), "{ctx}: TYPE string but EXISTS {exists:?}");
                assert!(matches!(ttl, Frame::Integer(t) if t == -1 || t > 0), "{ctx}: live string, PTTL {ttl:?}");
            }
            Frame::Simple(t) if &t[..] == b"list" => {
                assert!(matches!(&get, Frame::Error(e) if e.starts_with(b"WRONGTYPE")), "{ctx}: list, GET {get:?}");
                let Frame::Integer(n) = llen else { panic!("{ctx}: TYPE list but LLEN {llen:?}") };
                assert!(n > 0, "{ctx}: an empty list is visible (LLEN {n})");
                let range = probe(shared, client, now, &["LRANGE", key, "0", "-1"]);
                let got = match &range {
                    Frame::Array(items) => items.len() as i64,
                    // LRANGE answers with its reply already encoded: count from the `*N` header.
                    Frame::Encoded(b) => std::str::from_utf8(&b[1..b.iter().position(|&c| c == b'\r').unwrap()])
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .unwrap_or_else(|| panic!("{ctx}: LRANGE {range:?}")),
                    _ => panic!("{ctx}: LRANGE {range:?}"),
                };
                assert_eq!(got, n, "{ctx}: LLEN {n} but LRANGE has {got}");
                assert_eq!(exists, Frame::Integer(1), "{ctx}: TYPE list but EXISTS {exists:?}");
                assert!(matches!(ttl, Frame::Integer(t) if t == -1 || t > 0), "{ctx}: live list, PTTL {ttl:?}");
            }
            Frame::Simple(t) if &t[..] == b"hash" || &t[..] == b"set" || &t[..] == b"zset" => {
                let hash = &t[..] == b"hash";
                let (len_cmd, all_cmd): (&[&str], &[&str]) = match &t[..] {
                    b"hash" => (&["HLEN", key], &["HGETALL", key]),
                    b"set" => (&["SCARD", key], &["SMEMBERS", key]),
                    _ => (&["ZCARD", key], &["ZRANGE", key, "0", "-1"]),
                };
                assert!(matches!(&get, Frame::Error(e) if e.starts_with(b"WRONGTYPE")), "{ctx}: {t:?}, GET {get:?}");
                let len = probe(shared, client, now, len_cmd);
                let Frame::Integer(n) = len else { panic!("{ctx}: TYPE {t:?} but length {len:?}") };
                assert!(n > 0, "{ctx}: an empty {t:?} is visible ({n})");
                let all = probe(shared, client, now, all_cmd);
                let items = match &all {
                    Frame::Array(v) | Frame::Set(v) => v.len() as i64,
                    Frame::Map(v) => 2 * v.len() as i64,
                    other => panic!("{ctx}: {t:?} contents {other:?}"),
                };
                assert_eq!(items, if hash { 2 * n } else { n }, "{ctx}: length {n} but {all:?}");
                assert_eq!(exists, Frame::Integer(1), "{ctx}: TYPE {t:?} but EXISTS {exists:?}");
                assert!(matches!(ttl, Frame::Integer(t) if t == -1 || t > 0), "{ctx}: live {t:?}, PTTL {ttl:?}");
            }
            other => panic!("{ctx}: TYPE replied {other:?}"),
        }
    }
    // The stored map: no empty or dead collection, expired or not (Redis keeps no empty one).
    let db = shared.ks.db(client.db);
    db.for_each(|k, e| {
        let (empty, dead) = match e.value() {
            ValueRef::List(cell) => cell.lock().map_or_dead(|l| l.is_empty()),
            ValueRef::Hash(cell) => cell.lock().map_or_dead(|h| h.is_empty()),
            ValueRef::Set(cell) => cell.lock().map_or_dead(|m| m.is_empty()),
            ValueRef::Zset(cell) => cell.lock().map_or_dead(|z| z.is_empty()),
            _ => (false, false),
        };
        assert!(!empty && !dead, "key {k:?}: stored collection empty={empty} dead={dead}");
    });
    let keys = probe(shared, client, now, &["KEYS", "*"]);
    let Frame::Array(keys) = keys else { panic!("KEYS * replied {keys:?}") };
    for k in &keys {
        let Frame::Bulk(k) = k else { panic!("KEYS * item {k:?}") };
        let ty = execute(&mut Ctx::new(shared, client, now), &[Bytes::from_static(b"TYPE"), k.clone()]);
        assert_ne!(ty, Frame::simple("none"), "KEYS * names {k:?}, which TYPE says does not exist");
    }
    let dbsize = probe(shared, client, now, &["DBSIZE"]);
    assert!(
        matches!(dbsize, Frame::Integer(n) if n >= keys.len() as i64),
        "DBSIZE {dbsize:?} < {} keys from KEYS *",
        keys.len()
    );
}
