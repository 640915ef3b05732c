//! A string element stored inline when short ([`Elem`]) and a borrowed-or-formatted member
//! ([`Member`]: a slice of a packed buffer, or an intset integer as text).

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::Bytes;

/// The longest element held inline: what fits beside the length and the tag in the 24 bytes the
/// boxed form takes anyway.
const INLINE_MAX: usize = 22;

/// A string element of a large hash or set: inline up to [`INLINE_MAX`] bytes (most fields,
/// values and members), else one boxed slice. Hashes and compares as its bytes (so a table of
/// them is looked up by `&[u8]`).
#[derive(Clone)]
pub enum Elem {
    Inline { len: u8, data: [u8; INLINE_MAX] },
    Heap(Box<[u8]>),
}

impl Elem {
    pub fn new(b: &[u8]) -> Elem {
        if b.len() <= INLINE_MAX {
            let mut data = [0u8; INLINE_MAX];
            data[..b.len()].copy_from_slice(b);
            Elem::Inline { len: b.len() as u8, data }
        } else {
            Elem::Heap(b.into())
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Elem::Inline { len, data } => &data[..usize::from(*len)],
            Elem::Heap(b) => b,
        }
    }

    /// Heap bytes held besides the element itself.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Elem::Inline { .. } => 0,
            Elem::Heap(b) => b.len(),
        }
    }
}

impl Deref for Elem {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for Elem {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for Elem {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Exactly as `[u8]` hashes: required by `Borrow<[u8]>`.
        self.as_bytes().hash(state)
    }
}

impl PartialEq for Elem {
    fn eq(&self, other: &Elem) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Elem {}

impl std::fmt::Debug for Elem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_bytes()))
    }
}

/// A member as the iterators give it: a slice of the collection, or an integer of an intset as
/// its text. Derefs to the bytes.
#[derive(Clone, Copy)]
pub enum Member<'a> {
    Slice(&'a [u8]),
    Int { len: u8, text: [u8; 20] },
}

impl Member<'_> {
    pub fn int(n: i64) -> Member<'static> {
        let mut buf = [0u8; 20];
        let digits = crate::util::i64_text(n, &mut buf);
        let len = digits.len();
        let mut text = [0u8; 20];
        text[..len].copy_from_slice(digits);
        Member::Int { len: len as u8, text }
    }

    /// An owned copy.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl Deref for Member<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Member::Slice(s) => s,
            Member::Int { len, text } => &text[..usize::from(*len)],
        }
    }
}

impl std::fmt::Debug for Member<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_bytes())
    }
}
