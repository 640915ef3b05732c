//! flurrydb: a Redis 7.0 compatible server whose connection tasks read and write a lock-free flurry
//! keyspace directly, with an append-only file fed by a crossbeam queue to a writer thread.
//!
//! # Layout
//! Layers import downward only:
//! - [`resp`]: the reply value, its encoder, the request decoder (multibulk and inline).
//! - [`cmd`]: the command table, the dispatcher, one file per command family.
//! - [`db`]: the keyspace (flurry maps), striped write locks that order writes against the AOF,
//!   values, expiry. [`aof`]: queue, writer thread, mmap file, replay, rewrite.
//! - [`connection`] / [`server`]: sockets to commands; startup and shutdown. [`workers`]: one tokio
//!   runtime per worker thread, where connections run.
//! - [`sync`]: the only module that chooses between `std` and `loom`.
//! - [`script`]: Lua scripting (EVAL, FUNCTION) on pooled Lua 5.1 VMs, atomic in EXEC's held mode.
//! - [`repl`]: replication (Redis's protocol, both directions): the feed, the backlog, PSYNC.
//! - [`pubsub`]: channel/pattern subscriptions, subscriber outboxes, keyspace notifications.
//! - [`tracking`]: client-side caching (CLIENT TRACKING): tracked keys, prefixes, invalidations.
//! - [`monitor`]: per-command statistics and latency histograms, SLOWLOG, LATENCY events.
//! - [`limits`] (open-files limit, TCP keepalive: the only FFI), [`memory`] (RSS sampling for
//!   maxmemory).
//! - [`lualib`]: the Lua libraries Redis embeds for scripts (cjson, cmsgpack, bit, struct,
//!   Redis's math.random), on mlua.
//! - [`config`], [`state`], [`error`], [`util`], [`glob`], [`log`]: configuration, shared state, the
//!   error type, Redis-exact number parsing, the glob matcher, logging.

pub mod aof;
pub mod cmd;
pub mod config;
pub mod connection;
pub mod db;
pub mod error;
pub mod glob;
pub mod limits;
pub mod log;
pub mod longdouble;
pub mod lualib;
pub mod memory;
pub mod monitor;
pub mod pause;
pub mod pubsub;
pub mod rdb;
pub mod repl;
pub mod resp;
pub mod script;
pub mod server;
pub mod state;
pub mod sync;
pub mod tracking;
pub mod util;
pub mod workers;
