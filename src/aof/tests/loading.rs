//! Loading: valid end, torn tails, corruption, annotations, MULTI blocks, apply errors.

use super::*;
use crate::aof::Aof;

fn write_file(dir: &TestDir, bytes: &[u8]) -> AofConfig {
    let cfg = dir.cfg(FsyncPolicy::Always);
    std::fs::write(cfg.path(), bytes).unwrap();
    cfg
}

fn two_records() -> Vec<u8> {
    [resp(&["SELECT", "0"]), resp(&["SET", "a", "1"]), resp(&["SET", "b", "2"])].concat()
}

#[test]
fn missing_file_loads_empty() {
    let dir = TestDir::new("missing");
    let (cmds, report) = replay(&dir.cfg(FsyncPolicy::No)).unwrap();
    assert!(cmds.is_empty());
    assert_eq!(report, LoadReport::default());
}

#[test]
fn select_records_set_the_db_and_are_not_applied() {
    let dir = TestDir::new("select-load");
    let bytes =
        [resp(&["SELECT", "2"]), resp(&["SET", "a", "1"]), resp(&["SELECT", "0"]), resp(&["DEL", "a"])].concat();
    let cfg = write_file(&dir, &bytes);
    let (cmds, report) = replay(&cfg).unwrap();
    assert_eq!(cmds, vec![cmd(2, &["SET", "a", "1"]), cmd(0, &["DEL", "a"])]);
    assert_eq!(report.commands, 2);
    assert_eq!(report.bytes, bytes.len() as u64);
    assert!(!report.truncated_tail);
}

#[test]
fn zeros_after_the_log_mark_its_valid_end() {
    let dir = TestDir::new("zeros");
    let mut bytes = two_records();
    let valid = bytes.len() as u64;
    bytes.resize(bytes.len() + 10_000, 0);
    let cfg = write_file(&dir, &bytes);
    let (cmds, report) = replay(&cfg).unwrap();
    assert_eq!(cmds.len(), 2);
    assert_eq!(report.bytes, valid);
    assert!(!report.truncated_tail, "preallocated zeros are not a torn record");
}

#[test]
fn torn_tail_is_dropped_with_warning() {
    let dir = TestDir::new("torn");
    let mut bytes = two_records();
    let valid = bytes.len() as u64;
    let torn = resp(&["SET", "c", "a-value-cut-short"]);
    bytes.extend_from_slice(&torn[..torn.len() - 7]);
    bytes.resize(bytes.len() + 4096, 0);
    let cfg = write_file(&dir, &bytes);

    let (cmds, report) = replay(&cfg).unwrap();
    assert_eq!(cmds, vec![cmd(0, &["SET", "a", "1"]), cmd(0, &["SET", "b", "2"])]);
    assert!(report.truncated_tail);
    assert_eq!(report.bytes, valid);

    // open() cuts the torn record and appends after the valid end.
    let aof = Aof::open(cfg.clone()).unwrap();
    let seq = aof.append(0, &args(&["SET", "d", "4"]));
    block_on(aof.wait_durable(seq)).unwrap();
    aof.shutdown().unwrap();
    let (cmds, report) = replay(&cfg).unwrap();
    assert_eq!(cmds.last(), Some(&cmd(0, &["SET", "d", "4"])));
    assert_eq!(cmds.len(), 3);
    assert!(!report.truncated_tail);
}

#[test]
fn torn_tail_at_end_of_file_is_dropped() {
    let dir = TestDir::new("torn-eof");
    let mut bytes = two_records();
    bytes.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\n");
    let cfg = write_file(&dir, &bytes);
    let (cmds, report) = replay(&cfg).unwrap();
    assert_eq!(cmds.len(), 2);
    assert!(report.truncated_tail);
}

#[test]
fn torn_tail_fails_when_load_truncated_is_off() {
    let dir = TestDir::new("torn-strict");
    let mut bytes = two_records();
    let valid = bytes.len() as u64;
    bytes.extend_from_slice(b"*2\r\n$3\r\nDEL");
    let mut cfg = write_file(&dir, &bytes);
    cfg.load_truncated = false;
    match replay(&cfg) {
        Err(AofError::Truncated { offset }) => assert_eq!(offset, valid),
        other => panic!("expected Truncated, got {other:?}"),
    }
    assert!(matches!(Aof::open(cfg), Err(AofError::Truncated { .. })));
}

#[test]
fn corrupt_middle_names_byte_offset() {
    let dir = TestDir::new("corrupt");
    let mut bytes = two_records();
    let bad_at = bytes.len() as u64;
    bytes.extend_from_slice(b"*2\r\n$3\r\nDEL\r\n$1\r\nkXX"); // bulk not followed by CRLF
    bytes.extend_from_slice(&resp(&["SET", "z", "26"]));
    let cfg = write_file(&dir, &bytes);
    let err = replay(&cfg).unwrap_err();
    match &err {
        AofError::Corrupt { offset, .. } => assert_eq!(*offset, bad_at),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(err.to_string().contains(&format!("offset {bad_at}")), "{err}");
    assert!(matches!(Aof::open(cfg.clone()), Err(AofError::Corrupt { .. })));
    assert_eq!(std::fs::read(cfg.path()).unwrap(), bytes, "a refused file is left untouched");
}

#[test]
fn garbage_where_a_record_should_begin_is_corrupt() {
    let dir = TestDir::new("garbage");
    let mut bytes = two_records();
    let bad_at = bytes.len() as u64;
    bytes.extend_from_slice(b"hello\r\n");
    let cfg = write_file(&dir, &bytes);
    assert!(matches!(replay(&cfg), Err(AofError::Corrupt { offset, .. }) if offset == bad_at));
}

#[test]
fn zero_gap_followed_by_data_is_corrupt_not_a_clean_end() {
    let dir = TestDir::new("zero-gap");
    let mut bytes = two_records();
    let gap_at = bytes.len() as u64;
    bytes.resize(bytes.len() + 4096, 0);
    bytes.extend_from_slice(&resp(&["SET", "lost", "1"]));
    let cfg = write_file(&dir, &bytes);
    assert!(matches!(replay(&cfg), Err(AofError::Corrupt { offset, .. }) if offset == gap_at));
}

#[test]
fn corrupt_prefix_is_loaded_when_allowed_and_the_file_is_saved_then_cut() {
    let dir = TestDir::new("corrupt-prefix");
    let mut bytes = two_records();
    let bad_at = bytes.len() as u64;
    bytes.extend_from_slice(b"*1\r\n$4\r\nPIN");
    bytes.extend_from_slice(&resp(&["SET", "z", "26"]));
    let mut cfg = write_file(&dir, &bytes);
    cfg.load_corrupt_prefix = true;
    let (cmds, report) = replay(&cfg).unwrap();
    assert_eq!(cmds.len(), 2);
    assert!(report.truncated_tail);
    assert_eq!(report.bytes, bad_at);

    let aof = Aof::open(cfg.clone()).unwrap();
    aof.shutdown().unwrap();
    assert_eq!(std::fs::metadata(cfg.path()).unwrap().len(), bad_at);
    let saved: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("appendonly.aof.corrupt-"))
        .collect();
    assert_eq!(saved.len(), 1);
    assert_eq!(std::fs::read(saved[0].path()).unwrap(), bytes);
}

#[test]
fn annotations_are_skipped() {
    let dir = TestDir::new("annotations");
    let bytes = [b"#TS:1700000000\r\n".to_vec(), two_records(), b"#checksum whatever\n".to_vec()].concat();
    let cfg = write_file(&dir, &bytes);
    let (cmds, report) = replay(&cfg).unwrap();
    assert_eq!(cmds.len(), 2);
    assert_eq!(report.bytes, bytes.len() as u64);
}

#[test]
fn multi_exec_blocks_pass_through_and_a_block_torn_at_the_tail_is_dropped() {
    let dir = TestDir::new("multi");
    let bytes = [
        resp(&["SELECT", "1"]),
        resp(&["MULTI"]),
        resp(&["SET", "a", "1"]),
        resp(&["INCR", "a"]),
        resp(&["EXEC"]),
        resp(&["SET", "b", "2"]),
        resp(&["MULTI"]),
        resp(&["SET", "c", "3"]),
    ]
    .concat();
    let cfg = write_file(&dir, &bytes);
    let (cmds, report) = replay(&cfg).unwrap();
    assert_eq!(
        cmds,
        vec![
            cmd(1, &["MULTI"]),
            cmd(1, &["SET", "a", "1"]),
            cmd(1, &["INCR", "a"]),
            cmd(1, &["EXEC"]),
            cmd(1, &["SET", "b", "2"])
        ]
    );
    assert!(report.truncated_tail);
}

#[test]
fn apply_errors_are_counted_not_fatal() {
    let dir = TestDir::new("apply-errors");
    let bytes = [resp(&["SET", "a", "1"]), resp(&["BOGUS"]), resp(&["SET", "b", "2"])].concat();
    let cfg = write_file(&dir, &bytes);
    let mut applied = 0;
    let report = Aof::load(&cfg, |_, argv| {
        if argv[0].as_ref() == b"BOGUS" {
            return Err("ERR unknown command".into());
        }
        applied += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!((report.commands, report.errors, applied), (3, 1, 2));
}

#[test]
fn binary_arguments_round_trip() {
    let dir = TestDir::new("binary");
    let cfg = dir.cfg(FsyncPolicy::Always);
    let aof = Aof::open(cfg.clone()).unwrap();
    let value: &[u8] = b"\0\r\n*1\r\n$0\r\n\0\0";
    let seq = aof.append(0, &[b"SET", b"k\0", value]);
    block_on(aof.wait_durable(seq)).unwrap();
    aof.shutdown().unwrap();
    let mut got = Vec::new();
    Aof::load(&cfg, |_, argv| {
        got.push(argv.to_vec());
        Ok(())
    })
    .unwrap();
    assert_eq!(got, vec![vec![Bytes::from_static(b"SET"), Bytes::from_static(b"k\0"), Bytes::copy_from_slice(value)]]);
}

#[test]
fn open_loaded_cuts_where_loading_stopped_without_scanning_again() {
    let dir = TestDir::new("open-loaded");
    let mut bytes = [two_records(), resp(&["MULTI"]), resp(&["SET", "x", "1"])].concat();
    let multi_at = two_records().len() as u64;
    bytes.extend_from_slice(b"*3\r\n$3\r\nSET");
    bytes.resize(bytes.len() + 100, 0);
    let cfg = write_file(&dir, &bytes);
    let report = Aof::load(&cfg, |_, _| Ok(())).unwrap();
    assert!(report.truncated_tail);
    let aof = Aof::open_loaded(cfg.clone(), &report).unwrap();
    assert_eq!(aof.info().aof_current_size, multi_at, "cut at the unterminated MULTI");
    let seq = aof.append(0, &args(&["SET", "d", "4"]));
    block_on(aof.wait_durable(seq)).unwrap();
    aof.shutdown().unwrap();
    let (cmds, report) = replay(&cfg).unwrap();
    assert_eq!(cmds, vec![cmd(0, &["SET", "a", "1"]), cmd(0, &["SET", "b", "2"]), cmd(0, &["SET", "d", "4"])]);
    assert!(!report.truncated_tail);
}

#[test]
fn open_loaded_scans_again_when_the_file_changed_after_loading() {
    let dir = TestDir::new("open-loaded-changed");
    let cfg = write_file(&dir, &two_records());
    let report = Aof::load(&cfg, |_, _| Ok(())).unwrap();
    // Another record arrives (and a torn one) between loading and opening.
    let changed = [two_records(), resp(&["SET", "c", "3"]), b"*1\r\n$4\r\nPI".to_vec()].concat();
    std::fs::write(cfg.path(), &changed).unwrap();
    let aof = Aof::open_loaded(cfg.clone(), &report).unwrap();
    assert_eq!(aof.info().aof_current_size, (changed.len() - 10) as u64);
    aof.shutdown().unwrap();
    assert_eq!(replay(&cfg).unwrap().0.len(), 3);
}

/// A file that starts with an RDB (the preamble of a rewrite under `aof-use-rdb-preamble`): its
/// keys are replayed as the commands that rebuild them, then its libraries, then the commands after
/// it, with the valid end (and zeros after it) found past the preamble; a preamble cut short is
/// corruption at offset 0.
#[test]
fn an_rdb_preamble_replays_as_commands_before_the_records_after_it() {
    use crate::db::{SnapshotEntry, SnapshotValue};
    let dir = TestDir::new("preamble");
    let entries = vec![
        SnapshotEntry {
            db: 0,
            key: Bytes::from_static(b"s"),
            value: SnapshotValue::Str(Bytes::from_static(b"v")),
            expire_at_ms: 0,
        },
        SnapshotEntry {
            db: 2,
            key: Bytes::from_static(b"l"),
            value: SnapshotValue::List(vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]),
            expire_at_ms: 4_000_000_000_000,
        },
    ];
    let aux = crate::rdb::Aux {
        aof_base: true,
        functions: vec![Bytes::from_static(b"#!lua name=x\n")],
        ..Default::default()
    };
    let mut rdb = Vec::new();
    crate::rdb::write_rdb(&mut rdb, &entries, &aux).unwrap();
    let mut bytes = [rdb.clone(), resp(&["SELECT", "2"]), resp(&["RPUSH", "l", "c"])].concat();
    let valid = bytes.len() as u64;
    bytes.resize(bytes.len() + 4096, 0);
    let cfg = write_file(&dir, &bytes);
    let (cmds, report) = replay(&cfg).unwrap();
    assert_eq!(
        cmds,
        vec![
            cmd(0, &["SET", "s", "v"]),
            cmd(2, &["RPUSH", "l", "a", "b"]),
            cmd(2, &["PEXPIREAT", "l", "4000000000000"]),
            cmd(0, &["FUNCTION", "LOAD", "REPLACE", "#!lua name=x\n"]),
            cmd(2, &["RPUSH", "l", "c"]),
        ]
    );
    assert_eq!(report.bytes, valid);
    assert!(!report.truncated_tail);
    // Opened for appending, the file keeps its preamble and records; new ones go after them.
    let aof = Aof::open_loaded(cfg.clone(), &report).unwrap();
    aof.append(0, &args(&["SET", "t", "1"]));
    aof.shutdown().unwrap();
    let (cmds, _) = replay(&cfg).unwrap();
    assert_eq!(cmds.len(), 6);
    assert_eq!(cmds[5], cmd(0, &["SET", "t", "1"]));
    // A preamble cut in the middle: nothing after it can be found.
    let cut_dir = TestDir::new("preamble-cut");
    let cut = write_file(&cut_dir, &rdb[..rdb.len() - 3]);
    match replay(&cut) {
        Err(AofError::Corrupt { offset: 0, detail }) => assert!(detail.contains("RDB preamble"), "{detail}"),
        other => panic!("{other:?}"),
    }
}
