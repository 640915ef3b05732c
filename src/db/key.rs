//! How the map stores a key: short keys (the common case: `user:1000`, `session:ab12...`) inline in
//! the map's node, longer ones in a box of their own.
//!
//! Inline keys save an allocation per key (memory per key), and a lookup compares the key where
//! it already is, in the node it just loaded, instead of following a pointer to a heap block (one
//! cache miss less per GET on a large keyspace). Hash, equality and order are those of the bytes,
//! so the map is looked up with a plain `&[u8]` (`Borrow<[u8]>`).

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU8;

/// The longest key stored inline.
pub const INLINE_MAX: usize = 23;

/// A key of the keyspace map: binary safe, immutable, 24 bytes.
#[derive(Clone)]
pub enum Key {
    Inline(InlineKey),
    Heap(Box<[u8]>),
}

/// `len_plus_one` is the length + 1: never 0, and last (`repr(C)`), so a 0 in the last byte is
/// free to mark the `Heap` variant, whose box lies in the first 16 bytes: the enum is 24 bytes.
#[derive(Clone)]
#[repr(C)]
pub struct InlineKey {
    bytes: [u8; INLINE_MAX],
    len_plus_one: NonZeroU8,
}

impl Key {
    pub fn new(bytes: &[u8]) -> Key {
        if bytes.len() <= INLINE_MAX {
            let mut inline = [0u8; INLINE_MAX];
            inline[..bytes.len()].copy_from_slice(bytes);
            // INLINE_MAX + 1 fits in a u8 and is never 0.
            let len_plus_one = NonZeroU8::new(bytes.len() as u8 + 1).unwrap_or(NonZeroU8::MIN);
            Key::Inline(InlineKey { bytes: inline, len_plus_one })
        } else {
            Key::Heap(bytes.into())
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline(k) => &k.bytes[..usize::from(k.len_plus_one.get() - 1)],
            Key::Heap(b) => b,
        }
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Exactly `<[u8] as Hash>`: lookups hash a `&[u8]`.
        self.as_bytes().hash(state)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", bytes::Bytes::copy_from_slice(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;

    #[test]
    fn a_key_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
    }

    #[test]
    fn short_keys_are_inline_and_long_ones_boxed_with_the_same_bytes() {
        for len in [0, 1, 9, INLINE_MAX, INLINE_MAX + 1, 100, 4096] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
            let key = Key::new(&bytes);
            assert_eq!(key.as_bytes(), &bytes[..], "len {len}");
            assert_eq!(matches!(key, Key::Inline(_)), len <= INLINE_MAX, "len {len}");
        }
        assert_eq!(Key::new(b"\0\r\n\xff").as_bytes(), b"\0\r\n\xff");
    }

    #[test]
    fn hash_eq_and_order_are_those_of_the_bytes() {
        let s = RandomState::new();
        for k in [&b""[..], b"a", b"user:1000", &[b'x'; 40]] {
            assert_eq!(s.hash_one(Key::new(k)), s.hash_one(k), "a map looked up by &[u8] must find it");
        }
        assert_eq!(Key::new(b"abc"), Key::new(b"abc"));
        assert_ne!(Key::new(b"abc"), Key::new(b"abc\0"));
        assert!(Key::new(b"ab") < Key::new(b"abc"));
        assert!(Key::new(&[b'z'; 30]) > Key::new(b"a"));
    }
}
