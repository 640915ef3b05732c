//! Loom models of flurrydb's concurrency core: `cargo test --release --features loom --test loom`.
//!
//! Every model drives the real code: the command handlers through `cmd::execute`, the striped
//! keyspace locks, the AOF queue, writer thread, group commit and rewrite, with loom's stand-ins
//! for what it cannot see (a `Mutex<HashMap>` for the flurry map, a `Mutex<VecDeque>` for the
//! crossbeam queue, an in-memory file for the mmap). Each model is named after the race it checks;
//! each family keeps `should_panic` variants that switch on a deliberate protocol breakage
//! (`flurrydb::sync::fault`) to show that the model catches it.
#![cfg(feature = "loom")]

mod bits;
mod blocking;
mod blocks;
mod bulk;
mod collections;
mod evict;
mod expiry;
mod group_commit;
mod harness;
mod incr;
mod lists;
mod pubsub;
mod repl;
mod rewrite;
mod scripts;
mod streams;
mod tracking;
mod tx;
mod writer;
