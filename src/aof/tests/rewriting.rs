//! Rewrite: the new file is the base plus every record queued after the marker, in order; aborts and
//! crashes at any point leave a file that loads.

use super::*;
use crate::aof::Aof;

fn base_names(dir: &TestDir) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn rewrite_keeps_records_after_marker() {
    let dir = TestDir::new("rewrite");
    let cfg = dir.cfg(FsyncPolicy::Always);
    let aof = Aof::open(cfg.clone()).unwrap();
    // Before the snapshot: superseded by the base.
    aof.append(0, &args(&["SET", "a", "old"]));
    aof.append(2, &args(&["SET", "b", "old"]));
    aof.append(0, &args(&["SET", "a", "1"]));

    let mut rw = aof.start_rewrite().unwrap();
    assert!(aof.info().aof_rewrite_in_progress);
    // After the marker: these must follow the base in the new file.
    aof.append(2, &args(&["SET", "c", "3"]));
    aof.append(0, &args(&["DEL", "a"]));
    // The snapshot taken at the marker, written while appends continue.
    rw.write_base(0, &args(&["SET", "a", "1"])).unwrap();
    let mid = aof.append(0, &args(&["SET", "d", "4"]));
    rw.write_base(2, &args(&["SET", "b", "old"])).unwrap();
    block_on(aof.wait_durable(mid)).unwrap();
    rw.commit().unwrap();

    let seq = aof.append(2, &args(&["SET", "e", "5"]));
    block_on(aof.wait_durable(seq)).unwrap();
    let info = aof.info();
    assert!(!info.aof_rewrite_in_progress);
    assert_eq!((info.aof_rewrites, info.aof_last_bgrewrite_status), (1, "ok"));
    assert!(info.aof_base_size > 0 && info.aof_current_size > info.aof_base_size);
    aof.shutdown().unwrap();

    let (cmds, report) = replay(&cfg).unwrap();
    assert_eq!(
        cmds,
        vec![
            cmd(0, &["SET", "a", "1"]),
            cmd(2, &["SET", "b", "old"]),
            cmd(2, &["SET", "c", "3"]),
            cmd(0, &["DEL", "a"]),
            cmd(0, &["SET", "d", "4"]),
            cmd(2, &["SET", "e", "5"]),
        ]
    );
    assert!(!report.truncated_tail);
    assert_eq!(base_names(&dir), ["appendonly.aof"], "no temp file is left behind");
}

#[test]
fn dropping_a_rewrite_aborts_it_and_keeps_the_old_file() {
    let dir = TestDir::new("rewrite-abort");
    let cfg = dir.cfg(FsyncPolicy::Always);
    let aof = Aof::open(cfg.clone()).unwrap();
    aof.append(0, &args(&["SET", "a", "1"]));
    let mut rw = aof.start_rewrite().unwrap();
    assert!(matches!(aof.start_rewrite(), Err(AofError::RewriteInProgress)));
    aof.append(0, &args(&["SET", "b", "2"]));
    rw.write_base(0, &args(&["SET", "a", "1"])).unwrap();
    drop(rw);
    assert!(!aof.info().aof_rewrite_in_progress);
    // A later rewrite works and does not see the aborted one's records as its tail.
    let mut rw = aof.start_rewrite().unwrap();
    rw.write_base(0, &args(&["SET", "a", "1"])).unwrap();
    rw.write_base(0, &args(&["SET", "b", "2"])).unwrap();
    rw.commit().unwrap();
    aof.shutdown().unwrap();
    let (cmds, _) = replay(&cfg).unwrap();
    assert_eq!(cmds, vec![cmd(0, &["SET", "a", "1"]), cmd(0, &["SET", "b", "2"])]);
    assert_eq!(base_names(&dir), ["appendonly.aof"]);
}

#[test]
fn crash_before_commit_leaves_the_old_file_loadable() {
    let dir = TestDir::new("rewrite-crash");
    let cfg = dir.cfg(FsyncPolicy::Always);
    let aof = Aof::open(cfg.clone()).unwrap();
    aof.append(0, &args(&["SET", "a", "1"]));
    let mut rw = aof.start_rewrite().unwrap();
    let seq = aof.append(1, &args(&["SET", "b", "2"]));
    rw.write_base(0, &args(&["SET", "a", "1"])).unwrap();
    block_on(aof.wait_durable(seq)).unwrap();
    aof.simulate_crash();
    std::mem::forget(rw); // the process is gone: nobody removes the temp file
    let (cmds, report) = replay(&cfg).unwrap();
    assert_eq!(cmds, vec![cmd(0, &["SET", "a", "1"]), cmd(1, &["SET", "b", "2"])]);
    assert!(!report.truncated_tail);
}

#[test]
fn crash_after_commit_loads_the_new_file() {
    let dir = TestDir::new("rewrite-crash-after");
    let cfg = dir.cfg(FsyncPolicy::Always);
    let aof = Aof::open(cfg.clone()).unwrap();
    for i in 0..50 {
        aof.append(0, &args(&["INCR", "n", &i.to_string()]));
    }
    let mut rw = aof.start_rewrite().unwrap();
    rw.write_base(0, &args(&["SET", "n", "50"])).unwrap();
    rw.commit().unwrap();
    let seq = aof.append(0, &args(&["INCR", "n"]));
    block_on(aof.wait_durable(seq)).unwrap();
    aof.simulate_crash(); // the new file keeps its preallocated zeros
    assert!(std::fs::metadata(cfg.path()).unwrap().len() >= cfg.prealloc_bytes);
    let (cmds, _) = replay(&cfg).unwrap();
    assert_eq!(cmds, vec![cmd(0, &["SET", "n", "50"]), cmd(0, &["INCR", "n"])]);
}

#[test]
fn rewrite_holds_records_waiting_for_a_failed_extension() {
    let dir = TestDir::new("rewrite-enospc");
    let mut cfg = dir.cfg(FsyncPolicy::Always);
    cfg.prealloc_bytes = 4096;
    let aof = Aof::open(cfg.clone()).unwrap();
    aof.inject_faults(true, false);
    let big = "v".repeat(8000);
    aof.append(0, &args(&["SET", "before", &big]));
    let mut rw = aof.start_rewrite().unwrap();
    aof.append(0, &args(&["SET", "after", "1"]));
    rw.write_base(0, &args(&["SET", "before", &big])).unwrap();
    aof.inject_faults(false, false);
    rw.commit().unwrap();
    let seq = aof.append(0, &args(&["SET", "last", "1"]));
    block_on(aof.wait_durable(seq)).unwrap();
    aof.shutdown().unwrap();
    let (cmds, _) = replay(&cfg).unwrap();
    let keys: Vec<&str> = cmds.iter().map(|(_, a)| a[1].as_str()).collect();
    assert_eq!(keys, ["before", "after", "last"]);
}

#[test]
fn failed_extension_of_the_new_file_is_retried_without_new_records() {
    let dir = TestDir::new("rewrite-new-enospc");
    let cfg = dir.cfg(FsyncPolicy::Always);
    let aof = Aof::open(cfg.clone()).unwrap();
    aof.append(0, &args(&["SET", "a", "1"]));
    let mut rw = aof.start_rewrite().unwrap();
    rw.write_base(0, &args(&["SET", "a", "1"])).unwrap();
    aof.inject_faults(true, false);
    rw.commit().unwrap(); // the switch happened; only the new file's first chunk is missing
    assert!(aof.write_error().is_some());
    aof.inject_faults(false, false);
    assert!(eventually(Duration::from_secs(5), || aof.write_error().is_none()));
    assert_eq!(std::fs::metadata(cfg.path()).unwrap().len(), cfg.prealloc_bytes);
    let seq = aof.append(0, &args(&["SET", "b", "2"]));
    block_on(aof.wait_durable(seq)).unwrap();
    aof.shutdown().unwrap();
    let (cmds, _) = replay(&cfg).unwrap();
    assert_eq!(cmds, vec![cmd(0, &["SET", "a", "1"]), cmd(0, &["SET", "b", "2"])]);
}
