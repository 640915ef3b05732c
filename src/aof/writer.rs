//! The writer thread: drains the queue in pop order, emits `SELECT` when the db changes, copies records
//! into the mapped file, makes them durable per the fsync policy (one msync per batch: group commit),
//! latches failures and retries them, and performs the switch at the end of a rewrite.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
#[cfg(not(feature = "loom"))]
use std::fs::{self, File, OpenOptions};
#[cfg(not(feature = "loom"))]
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::file::AofFile;
use super::format::{encode_command, encode_select};
use super::park::Parker;
use super::{AofError, FsyncPolicy, Shared};
use crate::sync::{Arc, Mutex, Ordering, lock};

/// A batch stops growing at this many bytes so that one msync never covers an unbounded range.
const MAX_BATCH_BYTES: usize = 8 << 20;
/// The largest group [`Writer::gather`] waits for, and the longest it waits (less when an msync
/// takes less: then waiting would cost more than the msync it saves).
const GATHER_MAX_GROUP: usize = 4096;
const GATHER_MAX_WAIT: Duration = Duration::from_micros(500);
/// How much longer [`Writer::gather`] waits before the msync of a group of `group` records, gathered
/// for `elapsed`, after a group of `last_group` whose msync took `last_sync_took`: `None` to sync now.
/// It waits for the last group's size, no longer than that msync took nor [`GATHER_MAX_WAIT`].
fn gather_wait(group: usize, last_group: usize, last_sync_took: Duration, elapsed: Duration) -> Option<Duration> {
    if group >= last_group.min(GATHER_MAX_GROUP) {
        return None;
    }
    last_sync_took.min(GATHER_MAX_WAIT).checked_sub(elapsed).filter(|left| !left.is_zero())
}

/// How often a latched failure is retried when no new record arrives.
const RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// `appendfsync everysec`.
const EVERYSEC_INTERVAL: Duration = Duration::from_secs(1);
/// Under everysec/no the writer is not woken per record (see `Aof::append`): when idle it still
/// looks at the queue this often, so a record nobody drains reaches the file within this time.
pub(super) const LAZY_DRAIN_INTERVAL: Duration = Duration::from_millis(10);

/// What producers put on the queue.
pub(super) enum Item {
    /// One command, already encoded as a RESP array.
    Record { seq: u64, db: usize, bytes: Vec<u8> },
    /// The snapshot point of rewrite `id`: every later record also goes to the new file's tail.
    RewriteStart { id: u64 },
    /// The base of rewrite `id` is complete in `temp_path`: append the tail and switch files.
    RewriteCommit(Box<Commit>),
    /// Rewrite `id` was abandoned: stop keeping a tail for it.
    RewriteAbort { id: u64 },
}

pub(super) struct Commit {
    pub(super) id: u64,
    pub(super) temp_path: PathBuf,
    pub(super) base_len: u64,
    pub(super) base_last_db: Option<usize>,
    /// Loom: the base itself (there is no temp file).
    #[cfg(feature = "loom")]
    pub(super) base: Vec<u8>,
}

/// Records after a rewrite's marker, kept for the new file.
struct RewriteTail {
    id: u64,
    bytes: Vec<u8>,
    last_db: Option<usize>,
}

/// The highest seq S such that every seq <= S has been seen; out-of-order seqs wait in a min-heap.
struct Contiguous {
    mark: u64,
    early: BinaryHeap<Reverse<u64>>,
}

impl Contiguous {
    fn add(&mut self, seq: u64) {
        self.early.push(Reverse(seq));
        while self.early.peek() == Some(&Reverse(self.mark + 1)) {
            self.early.pop();
            self.mark += 1;
        }
    }
}

pub(super) struct Writer {
    shared: Arc<Shared>,
    path: PathBuf,
    dir: PathBuf,
    chunk: u64,
    file: AofFile,
    /// The db of the last record in write order (`None`: the next record needs a `SELECT`).
    last_db: Option<usize>,
    /// Encoded records not yet in the file (normally one batch; more while a failure is latched).
    pending: Vec<u8>,
    pending_seqs: Vec<u64>,
    written: Contiguous,
    write_failure: Option<String>,
    sync_failure: Option<String>,
    latched: Option<String>,
    last_sync: Instant,
    rewrite: Option<RewriteTail>,
    /// A rewrite commit a helping connection popped: the writer thread runs it before anything else.
    deferred_commit: Option<Box<Commit>>,
    /// Under `always`: items drained since the last msync (the group it will cover), when the
    /// group's first one was drained, the size of the last group and how long its msync took.
    group: usize,
    group_started: Instant,
    last_group: usize,
    last_sync_took: Duration,
}

/// The writer's state, shared by the writer thread and the connections that help it (see
/// [`Writer::help`]); `None` once the writer stopped.
pub(super) type WriterCell = Mutex<Option<Writer>>;

/// The writer thread's body. Returns the outcome of the final flush and trim.
///
/// The queue is the file order, whoever drains it: the thread, or a connection in [`Writer::help`],
/// both under the cell's lock, so records are copied in the order they were pushed.
pub(super) fn run(cell: Arc<WriterCell>, shared: Arc<Shared>, parker: Parker) -> Result<(), AofError> {
    let _guard = StopOnExit(Arc::clone(&shared));
    loop {
        let mut guard = lock(&cell);
        let Some(w) = guard.as_mut() else { return Ok(()) };
        let drained = w.drain();
        if drained > 0 && shared.fsync.get() == FsyncPolicy::Always {
            if w.group == 0 {
                w.group_started = Instant::now();
            }
            w.group += drained;
            w.gather(&parker);
        }
        w.sync_if_due();
        // Relaxed: a test hook; the writer simply stops, as if the process had been killed.
        if shared.crash.load(Ordering::Relaxed) {
            guard.take();
            return Ok(());
        }
        if drained == 0 {
            // Acquire: pairs with the Release in `Aof::shutdown`; records pushed before the flag are
            // then visible to `is_empty`.
            if shared.shutdown.load(Ordering::Acquire) && shared.queue.is_empty() {
                let w = guard.take().expect("checked above");
                drop(guard);
                return w.finish();
            }
            let timeout = w.idle_timeout();
            let spin = shared.fsync.get() == FsyncPolicy::Always;
            drop(guard);
            idle(&shared, &parker, timeout, spin);
        }
    }
}

/// Nothing queued: spin briefly (`spin`: under `always`, where every record wakes the writer and a
/// reply waits for its msync), then park until a producer unparks us (or a timer is due). Under
/// `everysec` and `no` the connections drain the queue themselves ([`Writer::help`]) and the writer
/// is not woken per record: it parks at once, since its spin ended in `sched_yield` calls (context
/// switches that gave the core away, with nothing to pick up) on every wake-up.
fn idle(shared: &Shared, parker: &Parker, timeout: Option<Duration>, spin: bool) {
    #[cfg(feature = "loom")]
    let _ = spin;
    #[cfg(not(feature = "loom"))]
    if spin {
        let backoff = crossbeam::utils::Backoff::new();
        while !backoff.is_completed() {
            // Acquire: see `run`.
            if !shared.queue.is_empty() || shared.shutdown.load(Ordering::Acquire) {
                return;
            }
            backoff.snooze();
        }
    }
    // A producer's unpark after its push is never lost: it leaves a token that makes park return.
    #[cfg(feature = "loom")]
    if timeout.is_none() && crate::sync::fault::on(crate::sync::fault::Fault::WriterParkWithoutRecheck) {
        // Acquire: see `run`.
        return parker.park_losing_wakeup(|| shared.shutdown.load(Ordering::Acquire));
    }
    match timeout {
        None => parker.park(),
        Some(t) => parker.park_timeout(t),
    }
}

impl Writer {
    pub(super) fn new(
        shared: Arc<Shared>,
        path: PathBuf,
        dir: PathBuf,
        chunk: u64,
        file: AofFile,
        first_extension: std::io::Result<()>,
    ) -> Self {
        let mut w = Writer {
            shared,
            path,
            dir,
            chunk,
            file,
            last_db: None,
            pending: Vec::new(),
            pending_seqs: Vec::new(),
            written: Contiguous { mark: 0, early: BinaryHeap::new() },
            write_failure: None,
            sync_failure: None,
            latched: None,
            last_sync: Instant::now(),
            rewrite: None,
            deferred_commit: None,
            group: 0,
            group_started: Instant::now(),
            last_group: 0,
            last_sync_took: Duration::ZERO,
        };
        if let Err(e) = first_extension {
            w.fail_write(&e);
        }
        w
    }

    /// The writer thread's pass: a deferred rewrite commit first, then the queue (one batch), into
    /// the file. Returns how many items it took.
    fn drain(&mut self) -> usize {
        let mut drained = 0usize;
        if let Some(commit) = self.deferred_commit.take() {
            drained += 1;
            self.handle(Item::RewriteCommit(commit));
        }
        drained += self.take_queued(false);
        self.write_pending();
        drained
    }

    /// Moves one batch of queued items into `pending` (rewrite markers take effect). A helper
    /// (`defer_commit`) stops at a rewrite commit and leaves it to the writer thread. Returns how
    /// many items it popped.
    fn take_queued(&mut self, defer_commit: bool) -> usize {
        let mut popped = 0usize;
        while let Some(item) = self.shared.queue.pop() {
            popped += 1;
            if defer_commit && let Item::RewriteCommit(commit) = item {
                self.deferred_commit = Some(commit);
                break;
            }
            self.handle(item);
            if self.pending.len() >= MAX_BATCH_BYTES {
                break;
            }
        }
        popped
    }

    /// A connection's help under `everysec` and `no`, before it waits for its records: copy what is
    /// queued into the file now, on this thread, instead of waking the writer thread and being woken
    /// by it (two thread hand-offs per batch). Only the cheap part: a rewrite commit, a record that
    /// needs the file extended, or a latched failure is left to the writer thread. Returns whether
    /// the writer thread has work left (the caller unparks it).
    pub(super) fn help(&mut self) -> bool {
        if self.deferred_commit.is_some() || self.write_failure.is_some() {
            return true;
        }
        self.take_queued(true);
        if !self.pending.is_empty() && self.file.fits(self.pending.len() as u64) {
            self.write_pending();
        }
        self.deferred_commit.is_some() || !self.pending.is_empty()
    }

    /// How long the writer thread may park: a latched failure is retried, an everysec msync is due
    /// within the second, and under everysec/no (not woken per record) the queue is looked at every
    /// [`LAZY_DRAIN_INTERVAL`]. Under `always` (and loom) a producer's unpark wakes it.
    fn idle_timeout(&self) -> Option<Duration> {
        if self.latched.is_some() {
            Some(RETRY_INTERVAL)
        } else if self.shared.fsync.get() == FsyncPolicy::EverySec && self.file.is_dirty() {
            Some(EVERYSEC_INTERVAL.saturating_sub(self.last_sync.elapsed()).min(LAZY_DRAIN_INTERVAL))
        } else if self.shared.fsync.get() == FsyncPolicy::Always || cfg!(feature = "loom") {
            None
        } else {
            Some(LAZY_DRAIN_INTERVAL)
        }
    }

    fn handle(&mut self, item: Item) {
        match item {
            Item::Record { seq, db, bytes } => {
                if self.last_db != Some(db) {
                    encode_select(&mut self.pending, db);
                    self.last_db = Some(db);
                }
                self.pending.extend_from_slice(&bytes);
                self.pending_seqs.push(seq);
                if let Some(tail) = &mut self.rewrite {
                    if tail.last_db != Some(db) {
                        encode_select(&mut tail.bytes, db);
                        tail.last_db = Some(db);
                    }
                    tail.bytes.extend_from_slice(&bytes);
                }
            }
            Item::RewriteStart { id } => self.rewrite = Some(RewriteTail { id, bytes: Vec::new(), last_db: None }),
            Item::RewriteAbort { id } => {
                if self.rewrite.as_ref().is_some_and(|t| t.id == id) {
                    self.rewrite = None;
                }
            }
            Item::RewriteCommit(commit) => {
                let id = commit.id;
                let result = self.commit_rewrite(*commit).map_err(|e| e.to_string());
                if let Err(e) = &result {
                    crate::warning!("Background AOF rewrite terminated with error: {e}");
                }
                self.shared.rewrite_finished(id, result);
            }
        }
    }

    /// Copies the pending records into the file, or latches the failure and keeps them for a retry.
    fn write_pending(&mut self) {
        let result = if !self.pending.is_empty() {
            self.file.append(&self.pending, &self.shared.faults)
        } else if self.write_failure.is_some() {
            // Nothing held, but the room after the log could not be reserved: retry that alone.
            self.file.reserve(&self.shared.faults)
        } else {
            return;
        };
        match result {
            Ok(()) => {
                self.pending.clear();
                for seq in self.pending_seqs.drain(..) {
                    self.written.add(seq);
                }
                if self.shared.fsync.get() != FsyncPolicy::Always {
                    // In the file: acknowledgeable under everysec and no (see the module doc of `aof`).
                    self.shared.durability.publish(self.written.mark);
                }
                // Relaxed: statistics for INFO.
                self.shared.current_size.store(self.file.len(), Ordering::Relaxed);
                if self.write_failure.take().is_some() {
                    crate::warning!("AOF write error looks solved, Redis can write again.");
                    self.update_latch();
                }
            }
            Err(e) => self.fail_write(&e),
        }
    }

    /// Latch a failed extension or copy: writes get `-MISCONF <reason>` until a retry succeeds.
    fn fail_write(&mut self, e: &std::io::Error) {
        let reason = crate::util::os_error_text(e);
        if self.write_failure.is_none() {
            crate::warning!("Error writing to the AOF file: {reason} (will retry)");
        }
        self.write_failure = Some(reason);
        self.update_latch();
    }

    fn sync_if_due(&mut self) {
        let due = match self.shared.fsync.get() {
            FsyncPolicy::Always => self.file.is_dirty() || self.sync_failure.is_some(),
            FsyncPolicy::EverySec => self.file.is_dirty() && self.last_sync.elapsed() >= EVERYSEC_INTERVAL,
            FsyncPolicy::No => false,
        };
        if due {
            self.sync();
        }
    }

    /// Under `always`, before the msync: wait (parked) for the group to reach the last one's size,
    /// at most about as long as the last msync took. Gathering is what redis-server's event loop
    /// does by itself (one fsync per loop turn covers every client it read), and an msync costs
    /// about as much for one record as for fifty: where the last group's clients answer and send
    /// their next write within that time (pipeline 1 under load), the next msync covers them all
    /// instead of the few that came first; one client alone never waits (its group was one).
    ///
    /// Producers under `always` unpark the writer for every record (`Aof::wake_writer_for_record`)
    /// except while it gathers: then only the push whose seq completes the group wakes it, and the
    /// park's deadline bounds the wait whatever happens to that push. A record never waits longer
    /// than the deadline for its msync to start, and the durability rule (no reply before its
    /// record's msync) is `sync`'s, untouched. Not under loom (its park has no clock); the
    /// wake-up protocol's two fences are explained at `wake_at`'s reset below.
    fn gather(&mut self, parker: &Parker) {
        if cfg!(feature = "loom") {
            return;
        }
        while let Some(left) =
            gather_wait(self.group, self.last_group, self.last_sync_took, self.group_started.elapsed())
        {
            // Woken by the push that completes the group (seqs are handed out in push order,
            // give or take the ones in flight), or by the deadline.
            let missing = (self.last_group - self.group) as u64;
            // Relaxed: a hint; the fences order it (see `Aof::wake_writer_for_record`).
            let next = self.shared.next_seq.load(Ordering::Relaxed);
            self.shared.wake_at.store(next + missing - 1, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.shared.queue.is_empty() {
                parker.park_timeout(left);
            }
            // Every record again wakes a parked writer from here on. SeqCst store and fence, paired
            // with the producer's fence before its load of `wake_at`: a producer that still read
            // the gathering value (and did not unpark) pushed before its fence, so the drain
            // below, after ours, finds its record; any later producer reads 0 and unparks.
            self.shared.wake_at.store(0, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            let more = self.drain();
            self.group += more;
        }
    }

    /// One msync over the dirty range, then publish the watermark it covers.
    fn sync(&mut self) {
        let started = Instant::now();
        let group = std::mem::take(&mut self.group);
        let covered = self.written.mark;
        if crate::sync::fault::on(crate::sync::fault::Fault::DurableBeforeFlush) {
            self.shared.durability.publish(covered);
        }
        match self.file.sync(&self.shared.faults) {
            Ok(()) => {
                self.last_sync = Instant::now();
                self.last_sync_took = self.last_sync - started;
                self.last_group = group;
                // Relaxed: statistics.
                self.shared.msyncs.fetch_add(1, Ordering::Relaxed);
                self.shared.durability.publish(covered);
                if self.sync_failure.take().is_some() {
                    crate::warning!("AOF fsync error looks solved, Redis can write again.");
                    self.update_latch();
                }
            }
            Err(e) => {
                let reason = crate::util::os_error_text(&e);
                if self.sync_failure.is_none() {
                    crate::warning!("Error syncing the AOF file: {reason} (will retry)");
                }
                self.sync_failure = Some(reason);
                self.update_latch();
            }
        }
    }

    fn update_latch(&mut self) {
        let now = self.write_failure.clone().or_else(|| self.sync_failure.clone());
        if now != self.latched {
            self.latched = now.clone();
            self.shared.durability.set_error(now);
        }
    }

    /// Shutdown: write what is left, make it durable, trim the file (`StopOnExit` then stops waiters).
    fn finish(mut self) -> Result<(), AofError> {
        self.rewrite = None;
        self.write_pending();
        let unwritten = self.pending_seqs.len();
        let covered = self.written.mark;
        let shared = Arc::clone(&self.shared);
        let result = self.file.finish(&shared.faults);
        if result.is_ok() {
            shared.durability.publish(covered);
        }
        result.map_err(AofError::Io)?;
        if unwritten > 0 {
            return Err(AofError::Poisoned(format!("{unwritten} records could not be written at shutdown")));
        }
        Ok(())
    }

    /// The end of a rewrite: base + tail into the temp file, fsync, rename over the AOF, fsync the
    /// directory, continue in the new file. Before the rename the old file is untouched, so a crash at
    /// any point leaves a file that loads (old or new).
    fn commit_rewrite(&mut self, c: Commit) -> Result<(), AofError> {
        let tail = match self.rewrite.take() {
            Some(t) if t.id == c.id => t,
            other => {
                self.rewrite = other;
                return Err(AofError::RewriteAborted("the rewrite is no longer in progress".into()));
            }
        };
        // Records waiting for a failed extension are in the new file too (in the base if they came
        // before the marker, in the tail otherwise).
        self.write_pending();
        let new_len = c.base_len + tail.bytes.len() as u64;
        let (file, first_extension, dir_synced) = self.install_rewritten(&c, &tail.bytes, new_len)?;
        drop(std::mem::replace(&mut self.file, file));
        self.last_db = tail.last_db.or(c.base_last_db);
        self.pending.clear();
        for seq in self.pending_seqs.drain(..) {
            self.written.add(seq);
        }
        self.write_failure = None;
        self.sync_failure = None;
        if let Err(e) = first_extension {
            self.fail_write(&e);
        }
        self.update_latch();
        self.last_sync = Instant::now();
        // The whole new file was fsynced before the rename.
        self.shared.durability.publish(self.written.mark);
        // Relaxed: statistics for INFO.
        self.shared.current_size.store(new_len, Ordering::Relaxed);
        self.shared.base_size.store(c.base_len, Ordering::Relaxed);
        dir_synced?;
        Ok(())
    }
}

impl Writer {
    /// Appends the tail to the temp file holding the base, fsyncs it, renames it over the AOF and
    /// opens it for appending. Returns the new file, its first extension and the directory fsync.
    #[cfg(not(feature = "loom"))]
    fn install_rewritten(
        &self,
        c: &Commit,
        tail: &[u8],
        new_len: u64,
    ) -> Result<(AofFile, std::io::Result<()>, std::io::Result<()>), AofError> {
        let mut temp = OpenOptions::new().append(true).open(&c.temp_path)?;
        temp.write_all(tail)?;
        temp.sync_all()?;
        drop(temp);
        fs::rename(&c.temp_path, &self.path)?;
        let dir_synced = File::open(&self.dir).and_then(|d| d.sync_all());
        // From here the new file is the AOF: switch to it whatever happens next.
        let (file, first_extension) = AofFile::open(&self.path, new_len, self.chunk, &self.shared.faults)?;
        Ok((file, first_extension, dir_synced))
    }

    /// Loom: the in-memory file now holds the base and the tail (no file system).
    #[cfg(feature = "loom")]
    fn install_rewritten(
        &self,
        c: &Commit,
        tail: &[u8],
        new_len: u64,
    ) -> Result<(AofFile, std::io::Result<()>, std::io::Result<()>), AofError> {
        let _ = (&c.temp_path, &self.path, &self.dir, self.chunk); // the real switch's file names
        let mut bytes = c.base.clone();
        bytes.extend_from_slice(tail);
        debug_assert_eq!(bytes.len() as u64, new_len);
        let (file, first_extension) = self.file.replaced_by(bytes);
        Ok((file, first_extension, Ok(())))
    }
}

/// Makes sure nobody waits forever on a writer that is gone, even if it panicked: waiters fail, the
/// failure is latched (writes get `-MISCONF`), a committing rewrite is told.
struct StopOnExit(Arc<Shared>);

impl Drop for StopOnExit {
    fn drop(&mut self) {
        if std::thread::panicking() {
            crate::warning!("The AOF writer thread panicked");
            self.0.durability.set_error(Some("the AOF writer thread panicked".into()));
        }
        self.0.durability.stop();
        self.0.rewrite_finished(0, Err("the AOF writer stopped".into()));
    }
}

/// Encodes a record for the queue (used by `Aof::append`; here so that all encoding of the write path
/// lives next to the writer).
pub(super) fn encode_record(argv: &[&[u8]]) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_command(&mut bytes, argv);
    bytes
}

/// Used by the rewrite handle to wait for the writer's answer.
pub(super) fn wait_rewrite(shared: &Shared, id: u64) -> Result<(), AofError> {
    let mut slot = lock(&shared.rewrite_done);
    loop {
        if let Some((done, result)) = slot.take()
            && done == id
        {
            return result.map_err(AofError::RewriteAborted);
        }
        if shared.durability.is_stopped() {
            return Err(AofError::RewriteAborted("the AOF writer stopped".into()));
        }
        slot = shared.rewrite_cv.wait(slot).unwrap_or_else(|e| e.into_inner());
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use std::time::Duration;

    use super::{Contiguous, GATHER_MAX_WAIT, gather_wait};
    use crate::util::os_error_text;

    #[test]
    fn group_commit_gathers_the_last_groups_size_for_at_most_its_msync() {
        let us = Duration::from_micros;
        // One client alone: its group was one record, so the next one is synced at once.
        assert_eq!(gather_wait(1, 1, us(300), us(0)), None);
        assert_eq!(gather_wait(1, 0, us(300), us(0)), None);
        // Fifty clients, whose last msync took 300 µs: ten back after 100 µs wait out the rest of
        // those 300 µs for the others; all fifty back (or more) sync at once.
        assert_eq!(gather_wait(10, 50, us(300), us(100)), Some(us(200)));
        assert_eq!(gather_wait(50, 50, us(300), us(100)), None);
        assert_eq!(gather_wait(60, 50, us(300), us(10)), None);
        // The wait ends when the last msync's time is up, and never exceeds the cap (a slow disk).
        assert_eq!(gather_wait(10, 50, us(300), us(300)), None);
        assert_eq!(gather_wait(10, 50, us(300), us(900)), None);
        assert_eq!(gather_wait(10, 50, Duration::from_millis(20), us(0)), Some(GATHER_MAX_WAIT));
        // A fast msync (tmpfs, a battery-backed cache) is not worth waiting for.
        assert_eq!(gather_wait(1, 50, us(0), us(0)), None);
    }

    #[test]
    fn io_errors_are_worded_as_strerror() {
        assert_eq!(os_error_text(&std::io::Error::from_raw_os_error(libc::ENOSPC)), "No space left on device");
        assert_eq!(os_error_text(&std::io::Error::from_raw_os_error(libc::EFBIG)), "File too large");
        assert_eq!(os_error_text(&std::io::Error::other("injected msync failure")), "injected msync failure");
    }

    #[test]
    fn out_of_order_seqs_hold_the_watermark_until_the_gap_fills() {
        let mut c = Contiguous { mark: 0, early: Default::default() };
        c.add(2);
        c.add(3);
        assert_eq!(c.mark, 0, "seq 1 is still missing");
        c.add(1);
        assert_eq!(c.mark, 3);
        c.add(5);
        assert_eq!(c.mark, 3);
        c.add(4);
        assert_eq!(c.mark, 5);
        assert!(c.early.is_empty());
    }
}
