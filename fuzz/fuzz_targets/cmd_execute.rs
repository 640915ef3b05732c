//! Arbitrary command sequences (argument vectors) through `cmd::execute` on one keyspace.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| flurrydb_fuzz::cmd::run(data));
