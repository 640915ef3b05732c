//! Loom models of the write path's protocols (`cargo test --features loom --release --lib aof`), over
//! the in-memory file and the `Mutex<VecDeque>` queue. Each model is named after the race it checks.

use loom::future::block_on;

use super::{Aof, FsyncPolicy};
use crate::sync::{Arc, thread};

/// Producer unpark vs writer park, watermark publish vs waker registration: a waiter is always woken.
#[test]
fn always_waiter_is_woken_after_the_writer_parks() {
    loom::model(|| {
        let aof = Aof::open_in_memory(FsyncPolicy::Always);
        let seq = aof.append(0, &[b"SET", b"k", b"v"]);
        block_on(aof.wait_durable(seq)).unwrap();
        assert!(aof.durable_watermark() >= seq);
        aof.shutdown().unwrap();
    });
}

/// Two producers whose seqs may reach the writer out of order: each waiter resolves only once its
/// record and every lower one are durable.
#[test]
fn out_of_order_seqs_resolve_both_waiters() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let aof = Aof::open_in_memory(FsyncPolicy::Always);
        let other = Arc::clone(&aof);
        let t = thread::spawn(move || {
            let seq = other.append(1, &[b"DEL", b"a"]);
            block_on(other.wait_durable(seq)).unwrap();
            assert!(other.durable_watermark() >= seq);
        });
        let seq = aof.append(0, &[b"DEL", b"b"]);
        block_on(aof.wait_durable(seq)).unwrap();
        assert!(aof.durable_watermark() >= seq);
        t.join().unwrap();
        aof.shutdown().unwrap();
    });
}

/// Shutdown racing an append: the writer's final drain sees every record pushed before the flag.
#[test]
fn shutdown_drains_records_pushed_before_it() {
    loom::model(|| {
        let aof = Aof::open_in_memory(FsyncPolicy::No);
        let seq = aof.append(0, &[b"SET", b"k", b"v"]);
        aof.shutdown().unwrap();
        assert!(aof.durable_watermark() >= seq);
    });
}
