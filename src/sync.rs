//! The one place that chooses between `std` and `loom` synchronization primitives.
//!
//! Every atomic, lock, `Arc` and thread that a concurrency protocol of this crate relies on is imported
//! from here, so that `cargo test --features loom` model-checks the very code that ships (the same
//! facade tokio keeps in `src/loom`). Code that must differ under loom (the flurry map, the crossbeam
//! queue, the mmap file) keeps a narrow interface with a loom stand-in behind it, in its own module.

#[cfg(not(feature = "loom"))]
pub use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(feature = "loom"))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
#[cfg(not(feature = "loom"))]
pub use std::thread;

#[cfg(feature = "loom")]
pub use loom::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
#[cfg(feature = "loom")]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
#[cfg(feature = "loom")]
pub use loom::thread;

/// Lock a mutex, ignoring poisoning: every critical section in this crate leaves its data consistent
/// before anything that can panic, and a poisoned lock must not take the server down with it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Shared lock on an `RwLock`, ignoring poisoning (see [`lock`]).
pub fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

/// Exclusive lock on an `RwLock`, ignoring poisoning (see [`lock`]).
pub fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
