//! Values stored in the keyspace: a string (bytes or an atomic integer cell), or a list guarded by
//! its own lock. Mirrors Redis's `object.c`.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::sync::{Arc, AtomicI64, AtomicU64, Mutex, MutexGuard, Ordering};
use crate::util::parse_i64;

/// A keyspace entry: its value and its absolute expiry time (ms since the epoch, 0 = none).
#[derive(Debug)]
pub struct Entry {
    pub value: Value,
    expire_at_ms: AtomicU64,
}

/// The value of a key.
#[derive(Debug)]
pub enum Value {
    /// A string that is not the canonical text of an i64.
    Str(Bytes),
    /// A string that is the canonical text of an i64: INCR/DECR CAS this cell in place.
    Int(AtomicI64),
    /// A list: pushes and pops lock it; the `Arc` lets RENAME/MOVE move it without copying.
    List(Arc<ListCell>),
}

/// The type name TYPE reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    List,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::List => "list",
        }
    }
}

impl Entry {
    /// A string entry; canonical integers are stored as an integer cell (Redis's int encoding).
    pub fn string(bytes: Bytes, expire_at_ms: u64) -> Entry {
        let value = match parse_i64(&bytes) {
            Some(n) => Value::Int(AtomicI64::new(n)),
            None => Value::Str(bytes),
        };
        Entry { value, expire_at_ms: AtomicU64::new(expire_at_ms) }
    }

    /// An integer entry.
    pub fn int(n: i64, expire_at_ms: u64) -> Entry {
        Entry { value: Value::Int(AtomicI64::new(n)), expire_at_ms: AtomicU64::new(expire_at_ms) }
    }

    /// A list entry holding `items` (never empty: Redis has no empty lists).
    pub fn list(items: VecDeque<Bytes>, expire_at_ms: u64) -> Entry {
        Entry::from_list_cell(Arc::new(ListCell::new(items)), expire_at_ms)
    }

    /// A list entry around an existing cell (RENAME, MOVE).
    pub fn from_list_cell(cell: Arc<ListCell>, expire_at_ms: u64) -> Entry {
        Entry { value: Value::List(cell), expire_at_ms: AtomicU64::new(expire_at_ms) }
    }

    pub fn kind(&self) -> Kind {
        match self.value {
            Value::Str(_) | Value::Int(_) => Kind::String,
            Value::List(_) => Kind::List,
        }
    }

    /// Expiry time in ms, 0 when the key is persistent.
    pub fn expire_at_ms(&self) -> u64 {
        // Acquire: pairs with the Release in `set_expire_at_ms` (EXPIRE on a live entry).
        self.expire_at_ms.load(Ordering::Acquire)
    }

    /// Change the expiry in place. Only under the key's exclusive stripe lock.
    pub fn set_expire_at_ms(&self, at: u64) {
        // Release: readers that see the new time also see everything written before it.
        self.expire_at_ms.store(at, Ordering::Release)
    }

    /// Whether the key is logically gone at `now_ms` (now 0 = loading: nothing expires).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        let at = self.expire_at_ms();
        at != 0 && now_ms != 0 && at <= now_ms
    }

    /// The string value as bytes (integers formatted), None for a list.
    pub fn string_bytes(&self) -> Option<Bytes> {
        match &self.value {
            Value::Str(b) => Some(b.clone()),
            // Acquire: pairs with the AcqRel CAS of INCR.
            Value::Int(n) => Some(Bytes::from(n.load(Ordering::Acquire).to_string())),
            Value::List(_) => None,
        }
    }

    /// A deep copy (COPY): lists are duplicated, not shared.
    pub fn duplicate(&self) -> Entry {
        let value = match &self.value {
            Value::Str(b) => Value::Str(b.clone()),
            Value::Int(n) => Value::Int(AtomicI64::new(n.load(Ordering::Acquire))),
            Value::List(l) => Value::List(Arc::new(ListCell::new(l.lock().items.clone()))),
        };
        Entry { value, expire_at_ms: AtomicU64::new(self.expire_at_ms()) }
    }

    /// The same value under a new entry (RENAME, MOVE): lists move by reference.
    pub fn moved(&self) -> Entry {
        match &self.value {
            Value::List(l) => Entry::from_list_cell(l.clone(), self.expire_at_ms()),
            _ => self.duplicate(),
        }
    }
}

/// A list and its per-key lock.
#[derive(Debug)]
pub struct ListCell {
    state: Mutex<ListState>,
}

/// The locked part of a list.
#[derive(Debug, Default)]
pub struct ListState {
    pub items: VecDeque<Bytes>,
    /// Set (under this lock) when the list was removed from the keyspace after being emptied: a
    /// writer that looked the cell up before the removal must not push into it, and retries.
    pub dead: bool,
}

impl ListCell {
    pub fn new(items: VecDeque<Bytes>) -> ListCell {
        ListCell { state: Mutex::new(ListState { items, dead: false }) }
    }

    /// Take the per-key list lock.
    pub fn lock(&self) -> MutexGuard<'_, ListState> {
        crate::sync::lock(&self.state)
    }
}
