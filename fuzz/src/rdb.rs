//! `rdb_load`: arbitrary bytes through the RDB reader, as a DUMP payload body (re-sealed with a
//! valid version and CRC64, so that the decoder and not the checksum sees the damage) and as a
//! file after `REDIS0010`. Checked: no panic; a value that decodes re-encodes to a payload that
//! decodes to the same value (the writer accepts whatever the reader produces).

use flurrydb::db::SnapshotValue;
use flurrydb::rdb::{EncodeOpts, crc64, load, save};

fn seal(body: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&flurrydb::rdb::RDB_VERSION.to_le_bytes());
    let crc = crc64::crc64(0, &p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

pub fn run(data: &[u8]) {
    if let Ok(v) = load::read_payload(&seal(data)) {
        let again = save::dump_payload(&v, &EncodeOpts::default());
        let back = load::read_payload(&again).expect("our own payload decodes");
        if !matches!(v, SnapshotValue::Stream(_)) {
            assert_eq!(save::dump_payload(&back, &EncodeOpts::default()), again, "re-encoding is stable");
        }
    }
    let mut file = b"REDIS0010".to_vec();
    file.extend_from_slice(data);
    let _ = flurrydb::rdb::read_rdb(&mut &file[..], |_| Ok(()));
}
