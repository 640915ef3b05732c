//! The undo log of a script that has not yet taken every stripe (see `script::run` for the whole
//! locking rule): before each of its writes, the previous value of every key the command may
//! change is copied here, so that when the script later needs a stripe it cannot take (a lower
//! stripe held by a client that may be waiting for one of the script's), its changes so far can
//! be taken back, its stripes released, and the script run again holding every stripe.
//!
//! Why taking back is invisible: the script's records are only buffered (held mode: nothing is
//! logged or replicated before the end), and its stripes have odd epochs, so every read of one of
//! its keys waits for the stripes and then sees the restored value (`tx`'s reader rule). Only the
//! keyless reads (KEYS, SCAN, DBSIZE, RANDOMKEY), which may see any EXEC half-applied, and side
//! channels (keyspace notifications, client-side-caching invalidations, WATCH dirtiness: each at
//! most a spurious extra message, as if the script had written twice) can tell.
//!
//! Copies are bounded: a value whose copy would cost more than [`UNDO_BUDGET`] elements in all
//! is not copied; the script takes every stripe before that write instead (nothing to undo then).

use super::{Entry, EntryRef, Keyspace, ValueRef};

/// Elements (collection members, 64-byte units of a raw string) a run may copy into its log.
pub const UNDO_BUDGET: usize = 4096;

/// One key's value before the script first wrote it (`None`: absent), with its access word
/// (OBJECT IDLETIME/FREQ, kept in the key's block). The key's name is `keys[start..end]` of its log.
struct Saved {
    db: usize,
    start: usize,
    end: usize,
    prev: Option<(Entry, u32)>,
}

/// The previous values of the keys a script has written, first write of each key only.
///
/// The names are copied into one buffer that the log keeps from run to run (the thread's log is
/// reused): no allocation per write once it has grown, and no reference kept to the request's or
/// `redis.call`'s argument buffers (a `Bytes` clone would pin `redis.call`'s reused argument
/// buffer until the run ends, so that each further call allocated a new one).
#[derive(Default)]
pub struct UndoLog {
    saved: Vec<Saved>,
    keys: Vec<u8>,
    cost: usize,
}

/// [`Keyspace::undo_note`] could not copy a value within the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooCostly;

/// What copying `e` costs, in elements.
fn copy_cost(e: &EntryRef<'_>) -> usize {
    match e.value() {
        ValueRef::Small(_) | ValueRef::Str(_) | ValueRef::Int(_) => 1,
        ValueRef::Raw(c) => 1 + c.lock().items.0.len() / 64,
        ValueRef::List(c) => 1 + c.lock().items.len(),
        ValueRef::Hash(c) => 1 + c.lock().items.len(),
        ValueRef::Set(c) => 1 + c.lock().items.len(),
        ValueRef::Zset(c) => 1 + c.lock().items.len(),
        // Entries, plus their groups' pending entries in the copy: a rough count is enough.
        ValueRef::Stream(c) => 1 + 2 * usize::try_from(c.lock().items.len()).unwrap_or(usize::MAX / 4),
    }
}

impl UndoLog {
    /// Whether nothing is saved.
    pub fn is_empty(&self) -> bool {
        self.saved.is_empty()
    }

    /// Forget everything (the run ended: its changes stay).
    pub fn clear(&mut self) {
        self.saved.clear();
        self.keys.clear();
        self.cost = 0;
    }

    /// The name of a saved key.
    fn key(&self, s: &Saved) -> &[u8] {
        &self.keys[s.start..s.end]
    }
}

impl Keyspace {
    /// Before a write of `key` in `db` by a script: save its value unless already saved. The
    /// caller holds the key's stripe exclusively. `TooCostly`: the copy would exceed the budget
    /// (nothing saved; the caller must hold every stripe before the write).
    pub fn undo_note(&self, log: &mut UndoLog, db: usize, key: &[u8]) -> Result<(), TooCostly> {
        if log.saved.iter().any(|s| s.db == db && log.key(s) == key) {
            return Ok(());
        }
        let map = self.db(db);
        let copied = map.get(key, |e| match e {
            None => Ok(None),
            Some(e) => {
                let cost = copy_cost(&e);
                if log.cost + cost > UNDO_BUDGET {
                    return Err(TooCostly);
                }
                log.cost += cost;
                Ok(Some((e.duplicate(), e.access())))
            }
        })?;
        let start = log.keys.len();
        log.keys.extend_from_slice(key);
        log.saved.push(Saved { db, start, end: log.keys.len(), prev: copied });
        Ok(())
    }

    /// Put every saved key back as it was (the script's stripes still held, its records about to
    /// be discarded), and empty the log.
    pub fn undo_restore(&self, log: &mut UndoLog) {
        for Saved { db, start, end, prev } in log.saved.drain(..) {
            let key = &log.keys[start..end];
            let map = self.db(db);
            match prev {
                None => {
                    map.remove(key);
                }
                Some((e, access)) => {
                    // The expiry is part of the entry in its block: active expiry finds it there.
                    map.insert(key, e);
                    map.get(key, |e| e.map(|e| e.set_access(access)));
                }
            }
        }
        log.keys.clear();
        log.cost = 0;
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::{TooCostly, UNDO_BUDGET, UndoLog};
    use crate::cmd::testing::{Harness, arr, bulk, int};

    #[test]
    fn restore_puts_back_values_ttls_and_absence() {
        let mut h = Harness::new();
        h.run(&["RPUSH", "l", "a", "b", "c"]);
        h.run(&["SET", "s", "v", "PX", "100000"]);
        h.run(&["SET", "n", "10"]);
        let ks = &h.shared.ks;
        let mut log = UndoLog::default();
        for k in ["l", "s", "n", "absent", "l"] {
            ks.undo_note(&mut log, 0, k.as_bytes()).unwrap();
        }
        assert_eq!(log.saved.len(), 4, "a key is saved once");
        h.run(&["RPUSH", "l", "d"]);
        h.run(&["LPOP", "l"]);
        h.run(&["SET", "s", "w"]);
        h.run(&["INCRBY", "n", "5"]);
        h.run(&["SET", "absent", "x"]);
        h.shared.ks.undo_restore(&mut log);
        assert!(log.is_empty());
        assert_eq!(h.run(&["LRANGE", "l", "0", "-1"]), arr(vec![bulk("a"), bulk("b"), bulk("c")]));
        assert_eq!(h.run(&["GET", "s"]), bulk("v"));
        assert!(matches!(h.run(&["PTTL", "s"]), crate::resp::Frame::Integer(t) if t > 90_000));
        assert_eq!(h.run(&["GET", "n"]), bulk("10"));
        assert_eq!(h.run(&["INCR", "n"]), int(11));
        assert_eq!(h.run(&["EXISTS", "absent"]), int(0));
    }

    #[test]
    fn copies_beyond_the_budget_are_refused() {
        let mut h = Harness::new();
        let mut argv = vec!["RPUSH".to_string(), "big".to_string()];
        argv.extend((0..UNDO_BUDGET).map(|i| i.to_string()));
        let argv: Vec<&str> = argv.iter().map(|s| s.as_str()).collect();
        h.run(&argv);
        let mut log = UndoLog::default();
        assert_eq!(h.shared.ks.undo_note(&mut log, 0, b"big"), Err(TooCostly));
        assert!(log.is_empty());
    }
}
