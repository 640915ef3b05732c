//! The log file as the writer thread sees it: a valid prefix followed by preallocated zeros, written
//! through a memory map. Growth reserves real blocks (`posix_fallocate`) before mapping them, so a store
//! into the map can never fault on an unbacked page (no SIGBUS on a full disk).
//!
//! Growth is by chunks (`aof-prealloc-bytes`) while the disk has room for one; when it has less
//! ([`extension_target`]), by half of the free space, and at the end by just what the pending records
//! need (whole pages): the server takes writes until the disk is really full, as Redis does, and an
//! extension that cannot get even that fails (the writer latches `-MISCONF` and retries).
//!
//! Under `feature = "loom"` the same interface is backed by an in-memory `Vec` (loom cannot see I/O).

use std::io;

use crate::sync::{AtomicBool, Ordering};

/// Copies `src` into `dst` (the mapped file) with stores in strictly increasing address order, so
/// that a process killed in the middle of a copy leaves a prefix of `src` followed by the file's
/// zeros: the loader then sees a torn last record, which it drops. `copy_from_slice` (glibc's
/// `memmove`) does not keep that order: for large sizes it stores the first and last vectors after
/// the loop, and a SIGKILL between them left zeros followed by data, which the loader must refuse
/// as corruption. Volatile stores are neither merged nor reordered by the compiler, and a killed
/// thread stops at an instruction boundary with every earlier store done.
#[cfg(not(feature = "loom"))]
fn copy_forward(dst: &mut [u8], src: &[u8]) {
    assert_eq!(dst.len(), src.len());
    let head = dst.as_ptr().align_offset(8).min(dst.len());
    let (d_head, d_rest) = dst.split_at_mut(head);
    let (s_head, s_rest) = src.split_at(head);
    let store = |d: &mut u8, b: u8| {
        // SAFETY: `d` comes from a `&mut u8`: valid, aligned and exclusively borrowed.
        unsafe { std::ptr::write_volatile(d, b) }
    };
    for (d, &b) in d_head.iter_mut().zip(s_head) {
        store(d, b);
    }
    let words = d_rest.len() / 8;
    let (d_words, d_tail) = d_rest.split_at_mut(words * 8);
    let (s_words, s_tail) = s_rest.split_at(words * 8);
    for (d, s) in d_words.chunks_exact_mut(8).zip(s_words.chunks_exact(8)) {
        let word = u64::from_ne_bytes(s.try_into().expect("8 bytes"));
        // SAFETY: `d` is 8 bytes of `dst`, exclusively borrowed, starting at an 8-aligned address
        // (the head above brought it there), so it is valid and aligned for one u64 store.
        unsafe { std::ptr::write_volatile(d.as_mut_ptr().cast::<u64>(), word) }
    }
    for (d, &b) in d_tail.iter_mut().zip(s_tail) {
        store(d, b);
    }
}

/// Failure injection for tests (of this crate and of the server built on it): when set, the next
/// extension or msync fails with an I/O error as if the disk were full or failing.
#[derive(Default)]
pub(super) struct Faults {
    pub(super) fail_extend: AtomicBool,
    pub(super) fail_sync: AtomicBool,
    /// When `limit_free` is set, extensions see at most `free_limit_bytes` of free space (a small disk
    /// without one; the reservation itself still uses the real disk).
    #[cfg(not(feature = "loom"))]
    pub(super) limit_free: std::sync::atomic::AtomicBool,
    #[cfg(not(feature = "loom"))]
    pub(super) free_limit_bytes: std::sync::atomic::AtomicU64,
}

impl Faults {
    fn check(flag: &AtomicBool, what: &str) -> io::Result<()> {
        // Relaxed: a test knob; no data is published through it.
        if flag.load(Ordering::Relaxed) {
            return Err(io::Error::other(format!("injected {what} failure")));
        }
        Ok(())
    }
    pub(super) fn check_extend(&self) -> io::Result<()> {
        Self::check(&self.fail_extend, "extension (ENOSPC)")
    }
    pub(super) fn check_sync(&self) -> io::Result<()> {
        Self::check(&self.fail_sync, "msync")
    }
    /// The free space extensions see: the disk's, or less under `limit_free`.
    #[cfg(not(feature = "loom"))]
    fn free_bytes(&self, disk: Option<u64>) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed; // a test knob; no data is published through it
        if !self.limit_free.load(Relaxed) {
            return disk;
        }
        let limit = self.free_limit_bytes.load(Relaxed);
        Some(disk.map_or(limit, |d| d.min(limit)))
    }
}

/// Rounds `n` up to a multiple of `chunk` (at least one chunk above zero).
fn round_up(n: u64, chunk: u64) -> u64 {
    n.div_ceil(chunk).max(1) * chunk
}

/// The granularity of a reservation smaller than a chunk.
const PAGE_BYTES: u64 = 4096;

/// The file size to reserve up to so that `[0, needed)` is backed, given the current `capacity` (the
/// file's size, blocks already ours), the growth `chunk` and the free space of the disk (`None`:
/// unknown). A whole number of chunks when the disk has room for that extension; otherwise half of the
/// free space in whole pages (the extensions shrink as the disk fills, leaving room for other files
/// such as the log meanwhile), but never less than `needed` rounded up to a page. Never below
/// `capacity`.
pub(super) fn extension_target(needed: u64, capacity: u64, chunk: u64, free_bytes: Option<u64>) -> u64 {
    let full = round_up(needed.max(capacity), chunk);
    match free_bytes {
        Some(free) if full - capacity > free => {
            let floor = round_up(needed, PAGE_BYTES).max(capacity);
            let half = capacity + free / 2 / PAGE_BYTES * PAGE_BYTES;
            floor.max(half).min(full)
        }
        _ => full,
    }
}

#[cfg(not(feature = "loom"))]
pub(super) use mapped::AofFile;

#[cfg(not(feature = "loom"))]
mod mapped {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::fd::AsRawFd;
    use std::path::Path;

    use memmap2::{MmapMut, MmapOptions};

    use super::{Faults, copy_forward, extension_target};

    /// An append-only file written through a memory-mapped window over its preallocated tail.
    pub(in crate::aof) struct AofFile {
        file: File,
        /// Bytes of valid log (everything after is zeros).
        len: u64,
        /// Size of the file: blocks reserved up to here.
        capacity: u64,
        /// Log bytes known durable; `[synced, len)` is the dirty range the next msync covers.
        synced: u64,
        /// Maps file offsets `[map_base, capacity)`; `None` until the first successful extension.
        map: Option<MmapMut>,
        map_base: u64,
        chunk: u64,
    }

    impl AofFile {
        /// Opens `path`, whose first `len` bytes are the valid log and whose remaining bytes (if any)
        /// are zeros, and reserves the first chunk beyond `len`. An extension failure here is not fatal:
        /// the writer latches it and retries on the next append.
        pub(in crate::aof) fn open(
            path: &Path,
            len: u64,
            chunk: u64,
            faults: &Faults,
        ) -> io::Result<(Self, io::Result<()>)> {
            let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
            let capacity = file.metadata()?.len().max(len);
            let mut f = AofFile { file, len, capacity, synced: len, map: None, map_base: len, chunk: chunk.max(4096) };
            let first = f.ensure_capacity(len + 1, faults);
            Ok((f, first))
        }

        pub(in crate::aof) fn len(&self) -> u64 {
            self.len
        }

        pub(in crate::aof) fn is_dirty(&self) -> bool {
            self.synced < self.len
        }

        /// Whether `n` more bytes fit in the mapped window without extending the file.
        pub(in crate::aof) fn fits(&self, n: u64) -> bool {
            self.map.is_some() && self.len + n <= self.capacity
        }

        /// Copies `bytes` after the valid log, extending the file first if needed. All or nothing: on
        /// error nothing was written and the call can be retried.
        pub(in crate::aof) fn append(&mut self, bytes: &[u8], faults: &Faults) -> io::Result<()> {
            if bytes.is_empty() {
                return Ok(());
            }
            self.ensure_capacity(self.len + bytes.len() as u64, faults)?;
            let map = self.map.as_mut().expect("ensure_capacity maps the window");
            let at = (self.len - self.map_base) as usize;
            copy_forward(&mut map[at..at + bytes.len()], bytes);
            self.len += bytes.len() as u64;
            Ok(())
        }

        /// Retries the reservation of room after the log (after a failed extension, with nothing to write).
        pub(in crate::aof) fn reserve(&mut self, faults: &Faults) -> io::Result<()> {
            self.ensure_capacity(self.len + 1, faults)
        }

        /// Makes `[synced, len)` durable with one msync (MS_SYNC) over the dirty range.
        pub(in crate::aof) fn sync(&mut self, faults: &Faults) -> io::Result<()> {
            if !self.is_dirty() {
                return Ok(());
            }
            faults.check_sync()?;
            let map = self.map.as_ref().expect("dirty bytes were written through the map");
            let from = (self.synced - self.map_base) as usize;
            map.flush_range(from, (self.len - self.synced) as usize)?;
            self.synced = self.len;
            Ok(())
        }

        /// Makes everything durable, unmaps, trims the file to the valid length and fsyncs it.
        pub(in crate::aof) fn finish(mut self, faults: &Faults) -> io::Result<()> {
            self.sync(faults)?;
            self.map = None; // never shrink a file while it is mapped
            self.file.set_len(self.len)?;
            self.file.sync_all()
        }

        /// The space an unprivileged process may still take on the file's file system.
        fn free_bytes(&self) -> Option<u64> {
            let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
            // SAFETY: FFI on a file descriptor we own; `st` is a valid, writable `statvfs` buffer.
            let rc = unsafe { libc::fstatvfs(self.file.as_raw_fd(), st.as_mut_ptr()) };
            if rc != 0 {
                return None;
            }
            // SAFETY: fstatvfs returned 0, so it filled the whole struct.
            let st = unsafe { st.assume_init() };
            // Both are u64 on 64-bit Linux, narrower on some 32-bit targets.
            #[allow(clippy::useless_conversion)]
            let (blocks, block_bytes) = (u64::from(st.f_bavail), u64::from(st.f_frsize));
            Some(blocks.saturating_mul(block_bytes))
        }

        /// Makes sure `[0, needed)` is backed by reserved blocks and covered by the map (the new size
        /// is [`extension_target`]'s: whole chunks, or what fits on a disk that is nearly full).
        fn ensure_capacity(&mut self, needed: u64, faults: &Faults) -> io::Result<()> {
            if needed <= self.capacity && self.map.is_some() {
                return Ok(());
            }
            let free = faults.free_bytes(self.free_bytes());
            let new_capacity = extension_target(needed, self.capacity, self.chunk, free);
            faults.check_extend()?;
            // Before the first mapping, also reserve the zeros found past the log: an earlier process
            // preallocated them, but a copied or restored file may be sparse there.
            let reserved = if self.map.is_none() { self.len } else { self.capacity };
            if new_capacity > reserved {
                let (from, add) = (reserved as libc::off_t, (new_capacity - reserved) as libc::off_t);
                // SAFETY: plain FFI call on a file descriptor we own; it reads no memory of ours.
                let rc = unsafe { libc::posix_fallocate(self.file.as_raw_fd(), from, add) };
                if rc != 0 {
                    // A partial reservation may have grown the file; it lies past the map, so shrinking
                    // back is allowed. Best effort: the zeros it leaves are harmless anyway.
                    if self.file.metadata().map(|m| m.len() > self.capacity).unwrap_or(false) {
                        let _ = self.file.set_len(self.capacity);
                    }
                    return Err(io::Error::from_raw_os_error(rc));
                }
                // The new size is metadata: make it durable once per chunk rather than per msync.
                self.file.sync_all()?;
                self.capacity = new_capacity;
            }
            // Unmap first: if mapping fails, `map == None` makes the next call retry instead of writing
            // through a window that does not cover the new capacity.
            self.map = None;
            // The window starts at the first byte not yet durable so the dirty range stays mappable.
            let base = self.synced;
            // SAFETY: the file is opened read-write by us alone (the AOF directory belongs to this server)
            // and `[base, capacity)` lies inside the file, whose blocks were reserved by posix_fallocate
            // above (or are part of the file as found), so no access can fault with SIGBUS. The file is
            // never truncated while this map lives (`finish` drops the map first). Only the writer
            // thread touches the map (`AofFile` is owned by it), so there are no concurrent accesses.
            let map =
                unsafe { MmapOptions::new().offset(base).len((self.capacity - base) as usize).map_mut(&self.file)? };
            self.map = Some(map);
            self.map_base = base;
            Ok(())
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::{PAGE_BYTES, copy_forward, extension_target};

    const MB: u64 = 1 << 20;

    #[test]
    fn the_forward_copy_copies_every_length_at_every_alignment() {
        let src: Vec<u8> = (0..200u32).map(|i| (i * 7 + 1) as u8).collect();
        for offset in 0..16 {
            for len in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 150] {
                let mut dst = vec![0u8; 200];
                copy_forward(&mut dst[offset..offset + len], &src[..len]);
                assert_eq!(&dst[offset..offset + len], &src[..len], "offset {offset} len {len}");
                assert!(dst[..offset].iter().chain(&dst[offset + len..]).all(|&b| b == 0), "nothing else written");
            }
        }
    }

    #[test]
    fn a_disk_with_room_gets_whole_chunks() {
        assert_eq!(extension_target(1, 0, 64 * MB, Some(u64::MAX)), 64 * MB);
        assert_eq!(extension_target(64 * MB + 1, 64 * MB, 64 * MB, Some(64 * MB)), 128 * MB);
        assert_eq!(extension_target(100, 0, 64 * MB, None), 64 * MB, "free space unknown");
    }

    #[test]
    fn a_small_disk_gets_half_its_free_space_in_pages() {
        // The 3 MB file system of the issue: the first SET must not need 64 MB.
        assert_eq!(extension_target(1, 0, 64 * MB, Some(3 * MB)), 3 * MB / 2);
        assert_eq!(extension_target(1, 0, 64 * MB, Some(3 * MB + 100)), 3 * MB / 2);
        assert_eq!(extension_target(10 * MB + 1, 10 * MB, 64 * MB, Some(9 * PAGE_BYTES)), 10 * MB + 4 * PAGE_BYTES);
    }

    #[test]
    fn a_nearly_full_disk_gets_just_what_the_records_need() {
        // Half the free space is less than the pending records: ask for them alone (whole pages).
        assert_eq!(extension_target(5 * PAGE_BYTES + 1, 5 * PAGE_BYTES, 64 * MB, Some(PAGE_BYTES)), 6 * PAGE_BYTES);
        assert_eq!(extension_target(3 * PAGE_BYTES, 0, 64 * MB, Some(0)), 3 * PAGE_BYTES);
        // Big records on a nearly full disk: no more than the chunked size, never below capacity.
        assert_eq!(extension_target(70 * MB, 0, 64 * MB, Some(MB)), 70 * MB);
        assert_eq!(extension_target(10, 8 * PAGE_BYTES, 64 * MB, Some(0)), 8 * PAGE_BYTES);
    }
}

#[cfg(feature = "loom")]
pub(super) use memory::{AofFile, MemoryView};

/// The loom stand-in: the same interface over a `Vec`, no I/O. The bytes live in a [`MemoryView`]
/// that the models read from outside the writer (what the "disk" holds, and how much of it is durable).
#[cfg(feature = "loom")]
mod memory {
    use std::io;
    use std::path::Path;
    use std::sync::Mutex;

    use super::{Faults, extension_target, round_up};
    use crate::sync::{Arc, AtomicU64, Ordering};

    /// What the in-memory file holds. The bytes sit behind a plain `std` mutex, invisible to loom (it
    /// stands for the kernel's page cache, which every thread sees at once; no loom operation runs
    /// while it is held). The durable length is a loom atomic, so that an msync is a point where loom
    /// may switch threads (a model can then catch a watermark published before the msync).
    #[derive(Clone)]
    pub(in crate::aof) struct MemoryView {
        data: std::sync::Arc<Mutex<Vec<u8>>>,
        durable: Arc<AtomicU64>,
    }

    impl MemoryView {
        fn data(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
            self.data.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// Everything written so far.
        pub(in crate::aof) fn contents(&self) -> Vec<u8> {
            self.data().clone()
        }

        /// The durable prefix (what a crash would keep).
        pub(in crate::aof) fn durable_contents(&self) -> Vec<u8> {
            // SeqCst: a model's observation point; no protocol relies on it.
            let n = self.durable.load(Ordering::SeqCst) as usize;
            let data = self.data();
            data[..n.min(data.len())].to_vec()
        }

        fn len(&self) -> u64 {
            self.data().len() as u64
        }

        fn set_durable(&self, len: u64) {
            // SeqCst: see `durable_contents`.
            self.durable.store(len, Ordering::SeqCst);
        }

        fn durable(&self) -> u64 {
            // SeqCst: see `durable_contents`.
            self.durable.load(Ordering::SeqCst)
        }
    }

    pub(in crate::aof) struct AofFile {
        view: MemoryView,
        capacity: u64,
        chunk: u64,
    }

    impl AofFile {
        pub(in crate::aof) fn open(
            _path: &Path,
            len: u64,
            chunk: u64,
            _faults: &Faults,
        ) -> io::Result<(Self, io::Result<()>)> {
            let view = MemoryView {
                data: std::sync::Arc::new(Mutex::new(vec![0; len as usize])),
                durable: Arc::new(AtomicU64::new(len)),
            };
            let chunk = chunk.max(1);
            Ok((AofFile { view, capacity: round_up(len + 1, chunk), chunk }, Ok(())))
        }
        /// The view the models read.
        pub(in crate::aof) fn view(&self) -> MemoryView {
            self.view.clone()
        }
        /// The end of a rewrite: the file now holds `bytes` (base + tail), all durable (the real
        /// writer fsyncs the temp file before the rename). Returns the file to continue in.
        pub(in crate::aof) fn replaced_by(&self, bytes: Vec<u8>) -> (Self, io::Result<()>) {
            let len = bytes.len() as u64;
            *self.view.data() = bytes;
            self.view.set_durable(len);
            let file = AofFile { view: self.view.clone(), capacity: round_up(len + 1, self.chunk), chunk: self.chunk };
            (file, Ok(()))
        }
        pub(in crate::aof) fn len(&self) -> u64 {
            self.view.len()
        }
        pub(in crate::aof) fn is_dirty(&self) -> bool {
            self.view.durable() < self.len()
        }
        pub(in crate::aof) fn fits(&self, n: u64) -> bool {
            self.len() + n <= self.capacity
        }
        pub(in crate::aof) fn append(&mut self, bytes: &[u8], faults: &Faults) -> io::Result<()> {
            let needed = self.len() + bytes.len() as u64;
            if needed > self.capacity {
                faults.check_extend()?;
                self.capacity = extension_target(needed, self.capacity, self.chunk, None);
            }
            self.view.data().extend_from_slice(bytes);
            Ok(())
        }
        pub(in crate::aof) fn reserve(&mut self, faults: &Faults) -> io::Result<()> {
            if self.len() + 1 > self.capacity {
                faults.check_extend()?;
                self.capacity = extension_target(self.len() + 1, self.capacity, self.chunk, None);
            }
            Ok(())
        }
        pub(in crate::aof) fn sync(&mut self, faults: &Faults) -> io::Result<()> {
            if self.is_dirty() {
                faults.check_sync()?;
                self.view.set_durable(self.len());
            }
            Ok(())
        }
        pub(in crate::aof) fn finish(mut self, faults: &Faults) -> io::Result<()> {
            self.sync(faults)
        }
    }
}
