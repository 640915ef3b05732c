//! Family 4: group commit under `appendfsync always`. A `wait_durable` resolves only once its record
//! is in the durable prefix of the file, and every waiter is woken once it is.

use flurrydb::aof::{Aof, FsyncPolicy};
use flurrydb::sync::fault::Fault;
use flurrydb::sync::{Arc, thread};

use loom::future::block_on;

use crate::harness::{builder, expect_deadlock, in_deadlock_child, inject};

/// The RESP encoding of a record, as it appears in the file.
fn encoded(argv: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", argv.len()).into_bytes();
    for a in argv {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Appends `argv`, waits for it, and checks that it is durable by then. A waiter that is never
/// woken leaves its thread blocked forever: loom reports a deadlock.
pub fn append_and_wait(aof: &Aof, db: usize, argv: &[&[u8]]) {
    let seq = aof.append(db, argv);
    block_on(aof.wait_durable(seq)).expect("durable");
    assert!(contains(&aof.durable_contents(), &encoded(argv)), "wait_durable resolved before its record was durable");
}

/// `waiters` clients (1 or 2) write and wait concurrently.
pub fn waiters(waiters: usize) {
    builder(2).check(move || {
        let aof = Aof::open_in_memory(FsyncPolicy::Always);
        let other = Arc::clone(&aof);
        let t = (waiters > 1).then(|| thread::spawn(move || append_and_wait(&other, 0, &[b"SET", b"a", b"1"])));
        append_and_wait(&aof, 0, &[b"SET", b"b", b"2"]);
        if let Some(t) = t {
            t.join().unwrap();
        }
        aof.shutdown().unwrap();
    });
}

/// Two clients write and wait concurrently (one msync may cover both): neither resolves before its
/// record is durable, and neither is left waiting.
#[test]
fn no_waiter_resolves_before_its_record_is_durable() {
    waiters(2);
}

/// Broken: the writer publishes the durable watermark before its msync.
#[test]
#[should_panic(expected = "wait_durable resolved before its record was durable")]
fn broken_watermark_published_before_the_msync() {
    let _f = inject(Fault::DurableBeforeFlush);
    waiters(2);
}

/// Broken: a waiter checks the watermark, then registers its waker without re-checking under the
/// lock: a publish in between wakes nobody, and the waiter waits forever.
#[test]
#[should_panic(expected = "loom found a deadlock")]
fn broken_waiter_registers_without_recheck() {
    expect_deadlock("group_commit::child_waiter_registers_without_recheck");
}

#[test]
#[ignore = "run by broken_waiter_registers_without_recheck in a child process"]
fn child_waiter_registers_without_recheck() {
    if in_deadlock_child() {
        let _f = inject(Fault::WaiterCheckBeforeRegister);
        waiters(1);
    }
}

/// `everysec` and `no`: a `wait_durable` resolves only once its record is in the file (what a
/// killed process leaves behind), though not yet msync'd; clients that help the writer (copy the
/// queue into the file themselves) and the writer thread never lose, duplicate or reorder a record.
pub fn written_waiters(policy: FsyncPolicy) {
    builder(2).check(move || {
        let aof = Aof::open_in_memory(policy);
        let other = Arc::clone(&aof);
        let wait = |aof: &Aof, argv: &[&[u8]]| {
            let seq = aof.append(0, argv);
            // As a connection does: copy into the file itself when the writer is not at it.
            aof.help_write();
            block_on(aof.wait_durable(seq)).expect("written");
            assert!(contains(&aof.contents(), &encoded(argv)), "wait_durable resolved before its record was written");
        };
        let t = thread::spawn(move || wait(&other, &[b"SET", b"a", b"1"]));
        wait(&aof, &[b"SET", b"b", b"2"]);
        wait(&aof, &[b"SET", b"b", b"3"]);
        t.join().unwrap();
        aof.shutdown().unwrap();
        let file = aof.contents();
        for argv in [&[&b"SET"[..], b"a", b"1"], &[b"SET", b"b", b"2"], &[b"SET", b"b", b"3"]] {
            assert_eq!(
                file.windows(encoded(argv).len()).filter(|w| *w == encoded(argv)).count(),
                1,
                "each record once"
            );
        }
        let (b2, b3) = (encoded(&[b"SET", b"b", b"2"]), encoded(&[b"SET", b"b", b"3"]));
        let at = |r: &[u8]| file.windows(r.len()).position(|w| w == r);
        assert!(at(&b2) < at(&b3), "one producer's records in its order");
    });
}

/// Under everysec and no, an acknowledged record is in the file: a SIGKILL right after the reply
/// loses nothing (as Redis writes its AOF buffer before it replies).
#[test]
fn everysec_and_no_acknowledge_only_written_records() {
    written_waiters(FsyncPolicy::EverySec);
    written_waiters(FsyncPolicy::No);
}
