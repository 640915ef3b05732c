//! Arbitrary bytes through the RDB reader (DUMP payloads and files).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| flurrydb_fuzz::rdb::run(data));
