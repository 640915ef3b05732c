//! Values stored in the keyspace: a string (bytes or an atomic integer cell), or a collection (list,
//! hash, set, sorted set) in a [`ValueCell`] guarded by its own lock. Mirrors Redis's `object.c`.

use bytes::Bytes;

use super::cell::{Collection, Hash, List, ListCell, RawBytes, RawCell, RawStr, Set, ValueCell};
use super::stream::Stream;
use super::zset::SortedSet;
use crate::sync::{Arc, AtomicI64, Ordering};

use crate::util::parse_i64;

/// A keyspace entry to store: its value and its absolute expiry time (ms since the epoch, 0 =
/// none). The map copies it into a block (`block`); what readers see there is an `EntryRef`.
#[derive(Debug)]
pub struct Entry {
    pub value: Value,
    expire_at_ms: u64,
}

/// The value of a key.
#[derive(Debug)]
pub enum Value {
    /// A short string (at most [`SMALL_MAX`] bytes) that is not the canonical text of an i64, held
    /// inline: no allocation of its own, no pointer to follow on GET.
    Small(SmallStr),
    /// A longer string that is not the canonical text of an i64.
    Str(Bytes),
    /// A string built in place by APPEND, SETRANGE, SETBIT, BITFIELD or PFADD (any text,
    /// integers' included): what Redis keeps `raw` whatever its length, until it is set anew. Its
    /// bytes are behind their own lock like a collection's, so that those writes change them in
    /// place (see `cmd::rawstr`) instead of copying the whole string.
    Raw(Arc<RawCell>),
    /// A string that is the canonical text of an i64: INCR/DECR CAS this cell in place.
    Int(AtomicI64),
    /// A list: pushes and pops lock it; the `Arc` lets RENAME/MOVE move it without copying.
    List(Arc<ListCell>),
    /// A hash: field -> value, behind its own lock like a list.
    Hash(Arc<ValueCell<Hash>>),
    /// A set of members, behind its own lock like a list.
    Set(Arc<ValueCell<Set>>),
    /// A sorted set, behind its own lock like a list.
    Zset(Arc<ValueCell<SortedSet>>),
    /// A stream (entries and consumer groups), behind its own lock like a list.
    Stream(Arc<ValueCell<Stream>>),
}

/// The longest string value held inline: what fits beside the enum's tag in the 40 bytes a
/// `Bytes` variant takes anyway (so `Value` stays 40 bytes and `Entry` 48).
pub const SMALL_MAX: usize = 38;

/// Up to [`SMALL_MAX`] bytes, inline.
#[derive(Clone, Copy)]
pub struct SmallStr {
    len: u8,
    bytes: [u8; SMALL_MAX],
}

impl SmallStr {
    /// `None` when `b` is longer than [`SMALL_MAX`].
    pub fn new(b: &[u8]) -> Option<SmallStr> {
        let mut bytes = [0u8; SMALL_MAX];
        bytes.get_mut(..b.len())?.copy_from_slice(b);
        Some(SmallStr { len: b.len() as u8, bytes })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for SmallStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_bytes()))
    }
}

/// A string value to read, taken out of the map without copying its bytes: the cell of a `raw`
/// string is locked only by [`StrRef::with`], outside the map's read.
pub enum StrRef {
    Small(SmallStr),
    Bytes(Bytes),
    Int(i64),
    Raw(Arc<RawCell>),
}

impl StrRef {
    /// Run `f` on the bytes (an integer as its text; a `raw` string under its cell lock).
    pub fn with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            StrRef::Small(s) => f(s.as_bytes()),
            StrRef::Bytes(b) => f(b),
            StrRef::Int(n) => f(crate::util::i64_text(*n, &mut [0u8; 20])),
            StrRef::Raw(c) => f(&c.lock().items.0),
        }
    }

    /// The bytes as an owned value (a `raw` string copied).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            StrRef::Bytes(b) => b.clone(),
            _ => self.with(Bytes::copy_from_slice),
        }
    }
}

/// The type name TYPE reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    List,
    Hash,
    Set,
    Zset,
    Stream,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::List => "list",
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::Zset => "zset",
            Kind::Stream => "stream",
        }
    }
}

impl Entry {
    /// A string entry; canonical integers are stored as an integer cell (Redis's int encoding).
    pub fn string(bytes: Bytes, expire_at_ms: u64) -> Entry {
        let value = Self::unboxed_string(&bytes).unwrap_or(Value::Str(bytes));
        Entry { value, expire_at_ms }
    }

    /// A string entry holding its own copy of `bytes` (never a slice of a connection's buffer).
    pub fn string_copied(bytes: &[u8], expire_at_ms: u64) -> Entry {
        let value = Self::unboxed_string(bytes).unwrap_or_else(|| Value::Str(Bytes::copy_from_slice(bytes)));
        Entry { value, expire_at_ms }
    }

    /// The value of a string that needs no bytes of its own: the canonical text of an i64 (a
    /// counter cell), or a short string (inline). `None`: it is a `Value::Str`.
    fn unboxed_string(bytes: &[u8]) -> Option<Value> {
        match parse_i64(bytes) {
            Some(n) => Some(Value::Int(AtomicI64::new(n))),
            None => SmallStr::new(bytes).map(Value::Small),
        }
    }

    /// A string entry as Redis's APPEND/SETRANGE leave it (OBJECT ENCODING `raw`): its bytes in a
    /// cell of their own, to be changed in place.
    pub fn raw_string(bytes: RawBytes, expire_at_ms: u64) -> Entry {
        Entry::collection(RawStr(bytes), expire_at_ms)
    }

    /// A string entry kept as text even when it is an integer's (INCRBYFLOAT's result, which Redis
    /// stores `embstr`).
    pub fn text_string(bytes: Bytes, expire_at_ms: u64) -> Entry {
        let value = match SmallStr::new(&bytes) {
            Some(s) => Value::Small(s),
            None => Value::Str(bytes),
        };
        Entry { value, expire_at_ms }
    }

    /// An integer entry.
    pub fn int(n: i64, expire_at_ms: u64) -> Entry {
        Entry { value: Value::Int(AtomicI64::new(n)), expire_at_ms }
    }

    /// A list entry holding `items` (never empty: Redis has no empty lists).
    pub fn list(items: List, expire_at_ms: u64) -> Entry {
        Entry::collection(items, expire_at_ms)
    }

    /// A collection entry holding `items` (never empty: Redis keeps no empty collection).
    pub fn collection<T: Collection>(items: T, expire_at_ms: u64) -> Entry {
        Entry::from_cell(Arc::new(ValueCell::new(items)), expire_at_ms)
    }

    /// A collection entry around an existing cell (RENAME, MOVE).
    pub fn from_cell<T: Collection>(cell: Arc<ValueCell<T>>, expire_at_ms: u64) -> Entry {
        Entry { value: T::into_value(cell), expire_at_ms }
    }

    pub fn kind(&self) -> Kind {
        match self.value {
            Value::Small(_) | Value::Str(_) | Value::Raw(_) | Value::Int(_) => Kind::String,
            Value::List(_) => Kind::List,
            Value::Hash(_) => Kind::Hash,
            Value::Set(_) => Kind::Set,
            Value::Zset(_) => Kind::Zset,
            Value::Stream(_) => Kind::Stream,
        }
    }

    /// An entry of `value` expiring at `expire_at_ms` (0: never).
    pub fn with_value(value: Value, expire_at_ms: u64) -> Entry {
        Entry { value, expire_at_ms }
    }

    /// Expiry time in ms, 0 when the key is persistent.
    pub fn expire_at_ms(&self) -> u64 {
        self.expire_at_ms
    }

    /// The string value as bytes (integers formatted), None for a collection.
    pub fn value_string_bytes(&self) -> Option<Bytes> {
        match &self.value {
            Value::Small(s) => Some(Bytes::copy_from_slice(s.as_bytes())),
            Value::Str(b) => Some(b.clone()),
            Value::Raw(c) => Some(Bytes::copy_from_slice(&c.lock().items.0)),
            Value::Int(n) => Some(Bytes::from(n.load(Ordering::Acquire).to_string())),
            Value::List(_) | Value::Hash(_) | Value::Set(_) | Value::Zset(_) | Value::Stream(_) => None,
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn small_strings_live_inline_without_growing_the_entry() {
        assert_eq!(std::mem::size_of::<Value>(), 40);
        // 40 bytes of value and the expiry (the access word lives in the block).
        assert_eq!(std::mem::size_of::<Entry>(), 48);
        for len in [0, 1, 16, SMALL_MAX, SMALL_MAX + 1, 1000] {
            let bytes: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            for e in [Entry::string_copied(&bytes, 0), Entry::string(Bytes::from(bytes.clone()), 0)] {
                assert_eq!(matches!(e.value, Value::Small(_)), len <= SMALL_MAX, "len {len}");
                assert_eq!(e.value_string_bytes().as_deref(), Some(&bytes[..]));
                assert_eq!(e.kind(), Kind::String);
            }
        }
    }

    /// A raw string's bytes take 32 bytes in their cell, up to 22 of them inline.
    #[test]
    fn raw_strings_keep_short_bytes_inline() {
        assert!(std::mem::size_of::<RawBytes>() <= 32);
        for len in [0, 13, super::super::cell::RAW_INLINE, 23, 5000] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let e = Entry::raw_string(super::super::raw_bytes(bytes.clone()), 0);
            let Value::Raw(c) = &e.value else { panic!("raw") };
            assert_eq!(c.lock().items.0.spilled(), len > super::super::cell::RAW_INLINE);
            assert_eq!(e.value_string_bytes().as_deref(), Some(&bytes[..]));
        }
    }

    #[test]
    fn integer_text_becomes_a_counter_cell_and_other_text_stays_bytes() {
        assert!(matches!(Entry::string_copied(b"-42", 0).value, Value::Int(_)));
        assert!(matches!(Entry::string_copied(b"042", 0).value, Value::Small(_)));
        assert_eq!(Entry::string_copied(b"\0\r\n", 7).value_string_bytes().as_deref(), Some(&b"\0\r\n"[..]));
        assert_eq!(Entry::string_copied(b"x", 7).expire_at_ms(), 7);
    }
}
