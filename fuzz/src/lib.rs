//! The fuzz harnesses. Each is a plain `run(&[u8])` so that `tests/fuzz_regressions.rs` in the main
//! crate replays saved crash inputs through exactly the code the fuzz targets run (it includes
//! these files with `#[path]`).

pub mod cmd;
pub mod rdb;
pub mod resp;
pub mod track;

#[global_allocator]
static ALLOC: track::Tracking = track::Tracking;
