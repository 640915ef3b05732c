//! An exact-size byte buffer behind a 16-byte handle: the storage of every packed form (listpack,
//! intset, the small sorted set). What a `Vec<u8>` plus a count (32 bytes) held, in half: the
//! pointer, the length as a `u32`, and a `u32` the owner uses (a count of entries, an intset's
//! width). Capacity always equals length, as a listpack is reallocated to its exact size on every
//! change: these are the many small collections whose bytes matter, and a small collection's cell
//! is 16 bytes smaller with a 16-byte value in it (one malloc size class).
//!
//! The bytes are a `Box<[u8]>` taken apart (its raw pointer and length); every change puts them
//! back into a `Vec`, edits it with exact reservations, and takes the exact boxed slice apart again.

use std::ptr::NonNull;

/// The most bytes a packed form may hold (the length is a `u32`); a form converts to its large
/// encoding before it would pass this (Redis's listpack stops at 1 GiB, `LISTPACK_MAX_SAFETY_SIZE`).
pub const THIN_MAX: usize = 1 << 30;

/// An owned, exact-size run of bytes and one word for its owner. Aligned to 4 only (its fields
/// are only ever copied out, never referenced), so that a value holding one and a few bytes more
/// (a small set's inline intset, see `intset`) stays 4-aligned and its cell one malloc class down.
#[repr(C, packed(4))]
pub struct ThinBuf {
    /// A `Box<[u8]>` of `len` bytes, from `Box::into_raw` (dangling when `len` is 0, as an empty
    /// box's is).
    ptr: NonNull<u8>,
    len: u32,
    aux: u32,
}

// SAFETY: a ThinBuf owns its bytes exclusively, like the `Box<[u8]>` it was made from (which is
// Send and Sync); nothing is shared between handles.
unsafe impl Send for ThinBuf {}
// SAFETY: as above: `&ThinBuf` only gives `&[u8]`.
unsafe impl Sync for ThinBuf {}

impl ThinBuf {
    /// No bytes; `aux` 0.
    pub const fn new() -> ThinBuf {
        ThinBuf { ptr: NonNull::dangling(), len: 0, aux: 0 }
    }

    /// Take ownership of `b`. Callers keep it under [`THIN_MAX`].
    fn from_box(b: Box<[u8]>, aux: u32) -> ThinBuf {
        assert!(b.len() <= u32::MAX as usize, "packed form over 4 GiB");
        let len = b.len() as u32;
        let raw = Box::into_raw(b);
        // SAFETY: `Box::into_raw` never returns null.
        let ptr = unsafe { NonNull::new_unchecked(raw.cast::<u8>()) };
        ThinBuf { ptr, len, aux }
    }

    /// The bytes as their box again, leaving this empty (`aux` kept).
    fn take_box(&mut self) -> Box<[u8]> {
        let raw = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len as usize);
        self.ptr = NonNull::dangling();
        self.len = 0;
        // SAFETY: `ptr`/`len` are the parts of a `Box<[u8]>` from `from_box` (or an empty box's
        // dangling pointer and 0), and this handle no longer refers to them.
        unsafe { Box::from_raw(raw) }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The owner's word.
    pub fn aux(&self) -> u32 {
        self.aux
    }

    pub fn set_aux(&mut self, aux: u32) {
        self.aux = aux;
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` points at `len` initialised bytes owned by this handle (or is dangling with
        // `len` 0, which a slice allows); `&self` keeps them alive and unchanged.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len as usize) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len as usize) }
    }

    /// Edit the bytes as a `Vec` (whose spare capacity is dropped after): `f` should reserve
    /// exactly what it adds, so that nothing is reallocated twice.
    pub fn edit<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let mut v = self.take_box().into_vec();
        let r = f(&mut v);
        *self = ThinBuf::from_box(v.into_boxed_slice(), self.aux);
        r
    }

    /// Replace the bytes in `at..end` by `with`, reallocating to the exact new size.
    pub fn splice(&mut self, at: usize, end: usize, with: &[u8]) {
        self.edit(|v| {
            if with.len() > end - at {
                v.reserve_exact(with.len() - (end - at));
            }
            v.splice(at..end, with.iter().copied());
        });
    }

    /// Append `bytes`.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.edit(|v| {
            v.reserve_exact(bytes.len());
            v.extend_from_slice(bytes);
        });
    }

    /// Heap bytes held (exact: capacity equals length).
    pub fn heap_bytes(&self) -> usize {
        self.len()
    }
}

impl Default for ThinBuf {
    fn default() -> Self {
        ThinBuf::new()
    }
}

impl Drop for ThinBuf {
    fn drop(&mut self) {
        drop(self.take_box());
    }
}

impl Clone for ThinBuf {
    fn clone(&self) -> Self {
        ThinBuf::from_box(self.as_slice().into(), self.aux)
    }
}

impl PartialEq for ThinBuf {
    fn eq(&self, other: &ThinBuf) -> bool {
        self.aux == other.aux && self.as_slice() == other.as_slice()
    }
}

impl Eq for ThinBuf {}

impl std::fmt::Debug for ThinBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThinBuf").field("bytes", &self.as_slice()).field("aux", &self.aux).finish()
    }
}

impl From<Vec<u8>> for ThinBuf {
    fn from(v: Vec<u8>) -> ThinBuf {
        ThinBuf::from_box(v.into_boxed_slice(), 0)
    }
}

/// A `Box<T>` aligned to 4 (see [`ThinBuf`]): the large form of a value whose small form is
/// 4-aligned, so that the value's enum stays 4-aligned.
#[repr(C, packed(4))]
pub struct PBox<T> {
    /// From `Box::into_raw`; owned.
    ptr: NonNull<T>,
}

// SAFETY: a PBox owns its `T` exclusively, as the `Box<T>` it was made from.
unsafe impl<T: Send> Send for PBox<T> {}
// SAFETY: `&PBox<T>` only gives `&T`, as `&Box<T>` does.
unsafe impl<T: Sync> Sync for PBox<T> {}

impl<T> PBox<T> {
    pub fn new(v: T) -> PBox<T> {
        PBox { ptr: NonNull::from(Box::leak(Box::new(v))) }
    }
}

impl<T> std::ops::Deref for PBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        let p = self.ptr;
        // SAFETY: `p` is the live, owned allocation from `Box::into_raw`; `&self` keeps it alive and
        // no `&mut` to it exists meanwhile.
        unsafe { &*p.as_ptr() }
    }
}

impl<T> std::ops::DerefMut for PBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        let p = self.ptr;
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { &mut *p.as_ptr() }
    }
}

impl<T> Drop for PBox<T> {
    fn drop(&mut self) {
        let p = self.ptr;
        // SAFETY: `p` came from `Box::leak` and is dropped exactly once, here.
        drop(unsafe { Box::from_raw(p.as_ptr()) });
    }
}

impl<T: Clone> Clone for PBox<T> {
    fn clone(&self) -> Self {
        PBox::new(T::clone(self))
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for PBox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        T::fmt(self, f)
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn edits_keep_the_bytes_exact_and_the_word() {
        let mut t = ThinBuf::new();
        assert!(t.is_empty() && t.as_slice().is_empty());
        t.set_aux(7);
        t.extend(b"hello");
        t.splice(0, 0, b">> ");
        t.splice(3, 8, b"bye");
        assert_eq!(t.as_slice(), b">> bye");
        t.as_mut_slice()[0] = b'<';
        let c = t.clone();
        assert_eq!(c, t);
        assert_eq!((c.as_slice(), c.aux(), c.heap_bytes()), (&b"<> bye"[..], 7, 6));
        t.splice(0, 6, b"");
        assert!(t.is_empty());
        assert_eq!(t.aux(), 7);
        assert_eq!(ThinBuf::from(vec![1, 2]).as_slice(), [1, 2]);
        // A panic inside an edit leaves an empty buffer, nothing freed twice.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            c.clone().edit(|v| {
                v.push(1);
                panic!("inside");
            })
        }));
        assert!(r.is_err());
    }

    #[test]
    fn the_handle_is_sixteen_bytes_four_aligned_and_leaves_a_niche() {
        assert_eq!((std::mem::size_of::<ThinBuf>(), std::mem::align_of::<ThinBuf>()), (16, 4));
        assert_eq!(std::mem::size_of::<Option<ThinBuf>>(), 16);
        assert_eq!((std::mem::size_of::<PBox<u64>>(), std::mem::align_of::<PBox<u64>>()), (8, 4));
    }

    #[test]
    fn pbox_owns_reads_writes_clones_and_drops_its_value() {
        let mut b = PBox::new(vec![1u32, 2]);
        b.push(3);
        let c = b.clone();
        b.clear();
        assert_eq!((b.len(), &c[..]), (0, &[1, 2, 3][..]));
        let counted = std::rc::Rc::new(());
        let held = PBox::new(counted.clone());
        assert_eq!(std::rc::Rc::strong_count(&counted), 2);
        drop(held);
        assert_eq!(std::rc::Rc::strong_count(&counted), 1);
    }
}
