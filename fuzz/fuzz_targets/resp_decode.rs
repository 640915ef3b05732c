//! Arbitrary bytes, split at arbitrary points, through `RequestDecoder::decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| flurrydb_fuzz::resp::run(data));
