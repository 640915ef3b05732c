//! Durability: group commit under `always`, policies that do not wait, latched failures and recovery.

use super::*;
use crate::aof::Aof;

const SOON: Duration = Duration::from_secs(5);

#[test]
fn always_waits_for_msync() {
    let dir = TestDir::new("always");
    let cfg = dir.cfg(FsyncPolicy::Always);
    let aof = Aof::open(cfg.clone()).unwrap();

    // While msync fails, the record is written but never acknowledged.
    aof.inject_faults(false, true);
    let seq = aof.append(0, &args(&["SET", "a", "1"]));
    match resolve_within(SOON, aof.wait_durable(seq)) {
        Some(Err(AofError::Poisoned(_))) => {}
        other => panic!("a record that was not msync'd must not be acknowledged: {other:?}"),
    }
    assert!(aof.shared().durability.watermark() < seq);

    // Once msync works, the next wait resolves only after an msync covered the record.
    aof.inject_faults(false, false);
    assert!(eventually(SOON, || aof.write_error().is_none()), "the retry succeeds and clears the latch");
    let seq = aof.append(0, &args(&["SET", "b", "2"]));
    resolve_within(SOON, aof.wait_durable(seq)).expect("resolves").unwrap();
    assert!(aof.shared().durability.watermark() >= seq);
    assert!(aof.shared().msyncs.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    aof.shutdown().unwrap();
}

#[test]
fn always_group_commits_many_waiters_with_few_msyncs() {
    let dir = TestDir::new("group");
    let aof = Aof::open(dir.cfg(FsyncPolicy::Always)).unwrap();
    let seqs: Vec<u64> = (0..2000).map(|i| aof.append(0, &args(&["INCR", &format!("c{}", i % 7)]))).collect();
    block_on(async {
        for seq in &seqs {
            aof.wait_durable(*seq).await.unwrap();
        }
    });
    let msyncs = aof.shared().msyncs.load(std::sync::atomic::Ordering::Relaxed);
    assert!(msyncs < 2000, "batches share one msync ({msyncs} msyncs for 2000 records)");
    aof.shutdown().unwrap();
}

#[test]
fn always_after_a_big_group_a_lone_record_is_still_synced() {
    // The writer gathers the next group up to the last one's size, woken only by the push that
    // completes it: a lone record that never completes it is synced when the wait is up (a lost
    // wake-up there would leave it waiting for good). Then a lone client stays a group of one.
    let dir = TestDir::new("gather");
    let aof = Aof::open(dir.cfg(FsyncPolicy::Always)).unwrap();
    let seqs: Vec<u64> = (0..500).map(|i| aof.append(0, &args(&["SET", &format!("k{i}"), "v"]))).collect();
    resolve_within(SOON, async {
        for seq in &seqs {
            aof.wait_durable(*seq).await.unwrap();
        }
    })
    .expect("the big group is synced");
    for i in 0..20 {
        let seq = aof.append(0, &args(&["SET", "alone", &i.to_string()]));
        resolve_within(SOON, aof.wait_durable(seq)).expect("a lone record is synced").unwrap();
    }
    aof.shutdown().unwrap();
}

#[test]
fn everysec_and_no_acknowledge_once_the_record_is_in_the_file() {
    for policy in [FsyncPolicy::EverySec, FsyncPolicy::No] {
        let dir = TestDir::new("written");
        let cfg = dir.cfg(policy);
        let aof = Aof::open(cfg.clone()).unwrap();
        aof.inject_faults(false, true); // a failing msync does not hold these policies' writes
        let seq = aof.append(0, &args(&["SET", "a", "1"]));
        resolve_within(SOON, aof.wait_durable(seq)).expect("resolves").unwrap();
        // Killed right after the acknowledgement: the record is in the file all the same.
        aof.simulate_crash();
        drop(aof);
        let (cmds, _) = replay(&cfg).unwrap();
        assert_eq!(cmds, vec![cmd(0, &["SET", "a", "1"])], "{policy}");
    }
}

#[test]
fn everysec_and_no_write_records_that_nobody_waits_for() {
    // Not woken per record under these policies: the idle writer still drains the queue.
    for policy in [FsyncPolicy::EverySec, FsyncPolicy::No] {
        let dir = TestDir::new("lazy");
        let cfg = dir.cfg(policy);
        let aof = Aof::open(cfg.clone()).unwrap();
        let seq = aof.append(0, &args(&["SET", "bg", "1"]));
        assert!(eventually(SOON, || aof.durable_watermark() >= seq), "{policy}: the writer drains on its own");
        aof.simulate_crash();
        drop(aof);
        let (cmds, _) = replay(&cfg).unwrap();
        assert_eq!(cmds, vec![cmd(0, &["SET", "bg", "1"])], "{policy}");
    }
}

#[test]
fn a_client_that_helps_while_the_writer_is_busy_is_still_served() {
    // Many threads append and help at once: most try_locks fail, and each must still be served.
    for policy in [FsyncPolicy::EverySec, FsyncPolicy::No] {
        let dir = TestDir::new("helpers");
        let cfg = dir.cfg(policy);
        let aof = Aof::open(cfg.clone()).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let aof = &aof;
                s.spawn(move || {
                    for i in 0..300 {
                        let seq = aof.append(0, &args(&["RPUSH", &format!("l{t}"), &i.to_string()]));
                        aof.help_write();
                        resolve_within(SOON, aof.wait_durable(seq)).expect("served").unwrap();
                    }
                });
            }
        });
        aof.shutdown().unwrap();
        let (cmds, _) = replay(&cfg).unwrap();
        assert_eq!(cmds.len(), 1200, "{policy}");
        for t in 0..4 {
            let mine: Vec<String> =
                cmds.iter().filter(|(_, a)| a[1] == format!("l{t}")).map(|(_, a)| a[2].clone()).collect();
            assert_eq!(mine, (0..300).map(|i| i.to_string()).collect::<Vec<_>>(), "{policy}: producer order");
        }
    }
}

#[test]
fn everysec_and_no_do_not_acknowledge_what_could_not_be_written() {
    for policy in [FsyncPolicy::EverySec, FsyncPolicy::No] {
        let dir = TestDir::new("unwritten");
        let mut cfg = dir.cfg(policy);
        cfg.prealloc_bytes = 4096;
        let aof = Aof::open(cfg.clone()).unwrap();
        aof.inject_faults(true, false);
        let seq = aof.append(0, &args(&["SET", "big", &"v".repeat(10_000)]));
        assert!(matches!(resolve_within(SOON, aof.wait_durable(seq)), Some(Err(_))), "{policy}");
        aof.inject_faults(false, false);
        aof.shutdown().unwrap();
    }
}

#[test]
fn everysec_msyncs_in_the_background() {
    let dir = TestDir::new("everysec");
    let aof = Aof::open(dir.cfg(FsyncPolicy::EverySec)).unwrap();
    let seq = aof.append(0, &args(&["SET", "a", "1"]));
    assert!(
        eventually(Duration::from_secs(3), || aof.shared().durability.watermark() >= seq),
        "msync'd within about a second"
    );
    aof.shutdown().unwrap();
}

#[test]
fn extension_failure_latches_error_and_clears_after() {
    let dir = TestDir::new("enospc");
    let mut cfg = dir.cfg(FsyncPolicy::Always);
    cfg.prealloc_bytes = 4096;
    let aof = Aof::open(cfg.clone()).unwrap();
    aof.inject_faults(true, false);

    // A record that needs a new chunk cannot be written: the error is latched, the record not acked.
    let big = "v".repeat(10_000);
    let seq = aof.append(0, &args(&["SET", "big", &big]));
    match resolve_within(SOON, aof.wait_durable(seq)) {
        Some(Err(AofError::Poisoned(e))) => assert!(e.contains("injected"), "{e}"),
        other => panic!("expected a latched error, got {other:?}"),
    }
    let text = aof.write_error().expect("latched while the disk is full");
    assert!(text.contains("injected"), "{text}");
    assert_eq!(aof.info().aof_last_write_status, "err");
    let later = aof.append(0, &args(&["SET", "after", "1"]));
    assert!(matches!(resolve_within(SOON, aof.wait_durable(later)), Some(Err(_))));

    // Space comes back: the writer retries on its own, writes the held records and clears the latch.
    aof.inject_faults(false, false);
    assert!(eventually(SOON, || aof.write_error().is_none()), "the latch clears after a successful retry");
    assert_eq!(aof.info().aof_last_write_status, "ok");
    let seq = aof.append(0, &args(&["SET", "c", "3"]));
    resolve_within(SOON, aof.wait_durable(seq)).expect("resolves").unwrap();
    aof.shutdown().unwrap();

    let (cmds, _) = replay(&cfg).unwrap();
    let keys: Vec<&str> = cmds.iter().map(|(_, a)| a[1].as_str()).collect();
    assert_eq!(keys, ["big", "after", "c"], "held records were written, in order, once");
}

#[test]
fn msync_failure_latches_error_and_clears_after() {
    let dir = TestDir::new("eio");
    let aof = Aof::open(dir.cfg(FsyncPolicy::Always)).unwrap();
    aof.inject_faults(false, true);
    let seq = aof.append(0, &args(&["SET", "a", "1"]));
    assert!(matches!(resolve_within(SOON, aof.wait_durable(seq)), Some(Err(AofError::Poisoned(_)))));
    assert!(aof.write_error().is_some());
    aof.inject_faults(false, false);
    assert!(eventually(SOON, || aof.write_error().is_none()));
    assert!(aof.shared().durability.watermark() >= seq, "the retried msync covers the held record");
    aof.shutdown().unwrap();
}

#[test]
fn waits_after_shutdown_fail_instead_of_hanging() {
    let dir = TestDir::new("closed");
    let aof = Aof::open(dir.cfg(FsyncPolicy::Always)).unwrap();
    let before = aof.append(0, &args(&["SET", "a", "1"]));
    aof.shutdown().unwrap();
    resolve_within(SOON, aof.wait_durable(before)).expect("resolves").unwrap();
    let after = aof.append(0, &args(&["SET", "b", "2"]));
    assert!(matches!(resolve_within(SOON, aof.wait_durable(after)), Some(Err(AofError::Closed))));
}

#[test]
fn dropped_waits_deregister_their_wakers() {
    let dir = TestDir::new("drop-wait");
    let aof = Aof::open(dir.cfg(FsyncPolicy::Always)).unwrap();
    let seq = aof.append(0, &args(&["SET", "a", "1"]));
    // A wait that cannot resolve (no such record yet) registers its waker, then is dropped.
    assert!(resolve_within(Duration::from_millis(20), aof.wait_durable(seq + 100)).is_none());
    assert_eq!(aof.shared().durability.waiter_count(), 0);
    resolve_within(SOON, aof.wait_durable(seq)).expect("resolves").unwrap();
    aof.shutdown().unwrap();
}

#[test]
fn config_set_appendfsync_reaches_the_running_file() {
    let dir = TestDir::new("switch");
    let aof = Aof::open(dir.cfg(FsyncPolicy::No)).unwrap();
    aof.inject_faults(false, true);
    // Under `no` a record in the file is acknowledged without any msync (they all fail here).
    let seq = aof.append(0, &args(&["SET", "a", "1"]));
    resolve_within(SOON, aof.wait_durable(seq)).expect("resolves").unwrap();
    // CONFIG SET appendfsync always: the next record waits for an msync, which fails.
    aof.set_fsync(FsyncPolicy::Always);
    let seq = aof.append(0, &args(&["SET", "b", "2"]));
    match resolve_within(SOON, aof.wait_durable(seq)) {
        Some(Err(AofError::Poisoned(_))) => {}
        other => panic!("under always, a record that was not msync'd must not be acknowledged: {other:?}"),
    }
    aof.inject_faults(false, false);
    assert!(eventually(SOON, || aof.write_error().is_none()), "the retry succeeds");
    aof.shutdown().unwrap();
}
