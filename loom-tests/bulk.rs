//! Family: the bulk loader (`KeyMap::put_batch`, `src/db/map/bulk.rs`) against lock-free readers.
//!
//! Nothing else WRITES the map while a batch is put (the keyspace is `loading`, so clients get
//! `-LOADING` for every write, and the loader holds every stripe of the database per batch), but
//! readers do run meanwhile: a replica's full sync loads into the live keyspace while its clients
//! stay connected, and the commands flagged `loading` (INFO's keyspace line, MEMORY USAGE/STATS,
//! an EXEC of a transaction queued before the sync began) and the snapshot and memory threads read
//! the map without a stripe. So a reader that meets a bucket while the batch rebuilds it, or while
//! the batch grows the part, must see every key that was there before the batch (old or new value),
//! never a torn or missing one.
//!
//! Under loom there are 2 parts; "a", "c" and "k" hash to part 0, and a part grows when it holds a
//! third key: the batch below both grows the part and rebuilds its buckets.

use flurrydb::db::{Batch, Entry, KeyMap};
use flurrydb::sync::fault::Fault;

use crate::harness::{builder, inject};

fn read(m: &KeyMap, key: &[u8]) -> Option<Vec<u8>> {
    m.get(key, |e| e.and_then(|e| e.string_bytes()).map(|b| b.to_vec()))
}

/// `a` and `c` are in the map; a batch replaces `a` and adds `k` (the part grows: its third key)
/// while another thread reads `a`, `c` and `k`: `a` is its old or new value, `c` is always there,
/// `k` is absent or new; after the batch the map holds exactly the three keys.
fn batch_vs_reader() {
    builder(2).check(|| {
        let m = loom::sync::Arc::new(KeyMap::new());
        m.insert(b"a", Entry::string_copied(b"1", 0));
        m.insert(b"c", Entry::string_copied(b"2", 0));
        let reader = {
            let m = loom::sync::Arc::clone(&m);
            loom::thread::spawn(move || {
                let a = read(&m, b"a");
                assert!(matches!(a.as_deref(), Some(b"1") | Some(b"9")), "a read {a:?} during the batch");
                let c = read(&m, b"c");
                assert_eq!(c.as_deref(), Some(&b"2"[..]), "c read {c:?} during the batch");
                let k = read(&m, b"k");
                assert!(matches!(k.as_deref(), None | Some(b"3")), "k read {k:?} during the batch");
            })
        };
        let mut batch = Batch::new();
        batch.push(b"a", Entry::string_copied(b"9", 0), None);
        batch.push(b"k", Entry::string_copied(b"3", 0), None);
        m.put_batch(&mut batch);
        reader.join().expect("the reader's reads are consistent");
        assert_eq!(m.len(), 3);
        assert_eq!(read(&m, b"a").as_deref(), Some(&b"9"[..]));
        assert_eq!(read(&m, b"c").as_deref(), Some(&b"2"[..]));
        assert_eq!(read(&m, b"k").as_deref(), Some(&b"3"[..]));
    });
}

#[test]
fn a_batch_put_keeps_every_key_readable() {
    batch_vs_reader();
}

/// Broken: the batch publishes a rebuilt bucket by removing its slot, then inserting a new one: a
/// reader in between finds no bucket and misses a key that is there before and after.
#[test]
#[should_panic(expected = "during the batch")]
fn broken_batch_removing_then_inserting_loses_a_read() {
    let _f = inject(Fault::BulkRemoveThenInsert);
    batch_vs_reader();
}
