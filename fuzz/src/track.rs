//! A global allocator that remembers the largest single allocation made on this thread since the
//! last [`reset`]: the harnesses assert that no declared length or count sizes an allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// `System`, plus the per-thread high-water mark of single allocation sizes.
pub struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // try_with: the allocator also runs while thread-locals are torn down.
    let _ = LARGEST.try_with(|l| {
        if size > l.get() {
            l.set(size);
        }
    });
}

/// Forget the high-water mark.
pub fn reset() {
    let _ = LARGEST.try_with(|l| l.set(0));
}

/// The largest single allocation (bytes) on this thread since [`reset`].
pub fn largest() -> usize {
    LARGEST.try_with(|l| l.get()).unwrap_or(0)
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; `note` neither
// allocates nor unwinds.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}
