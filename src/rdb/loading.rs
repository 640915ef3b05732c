//! The progress of the load under way, for INFO persistence's `loading_*` fields (Redis's
//! `server.loading_start_time`, `loading_total_bytes`, `loading_rdb_used_mem` and
//! `loading_loaded_bytes`, set by `startLoading` and `loadingAbsProgress`): shown while the
//! keyspace is loading or a replica loads asynchronously (`Keyspace::is_loading`,
//! `repl.async_loading`), as Redis's `genRedisInfoString` shows them while `server.loading`.
//!
//! Every load calls [`start`] with the bytes it expects (a file's size; 0 for a payload read from a
//! socket, as Redis) and reads its input through [`reader`], which counts the bytes read, or
//! reports its offset ([`at`]: the AOF's commands); the RDB loader reports the `used-mem` aux
//! field ([`rdb_used_mem`]). Like Redis's, these are process
//! globals: a server runs one load at a time (startup's AOF or RDB, then a replica's syncs, one
//! after another under the replica's link).

use std::io::Read;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

static START_TIME: AtomicI64 = AtomicI64::new(0);
static TOTAL_BYTES: AtomicU64 = AtomicU64::new(0);
static RDB_USED_MEM: AtomicU64 = AtomicU64::new(0);
static LOADED_BYTES: AtomicU64 = AtomicU64::new(0);

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// A load of `total_bytes` (0 when unknown) starts now (Redis's `startLoading`).
pub fn start(total_bytes: u64) {
    START_TIME.store(unix_now(), Relaxed);
    TOTAL_BYTES.store(total_bytes, Relaxed);
    RDB_USED_MEM.store(0, Relaxed);
    LOADED_BYTES.store(0, Relaxed);
}

/// The RDB being loaded says the server that wrote it used `bytes` (its `used-mem` aux field):
/// the estimate of a payload of unknown length.
pub fn rdb_used_mem(bytes: u64) {
    RDB_USED_MEM.store(bytes, Relaxed);
}

/// `pos` bytes of the input are loaded (Redis's `loadingAbsProgress`: the AOF loader's offset).
pub fn at(pos: u64) {
    LOADED_BYTES.store(pos, Relaxed);
}

/// `inner`, every byte read from it counted as loaded. Wrap what the loader reads from (above its
/// buffering): what counts is what was parsed, as Redis counts its rio's processed bytes.
pub fn reader<R: Read>(inner: R) -> Counted<R> {
    Counted { inner, pending: 0 }
}

/// Bytes read but not yet added to the shared count: published every this many (a loader reads
/// a few bytes at a time; one atomic add per read would cost more than the read).
const PUBLISH_BYTES: u64 = 64 << 10;

/// See [`reader`].
pub struct Counted<R> {
    inner: R,
    pending: u64,
}

impl<R> Counted<R> {
    fn publish(&mut self) {
        if self.pending > 0 {
            LOADED_BYTES.fetch_add(self.pending, Relaxed);
            self.pending = 0;
        }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending += n as u64;
        if self.pending >= PUBLISH_BYTES || n == 0 {
            self.publish();
        }
        Ok(n)
    }
}

impl<R> Drop for Counted<R> {
    fn drop(&mut self) {
        self.publish();
    }
}

/// The `loading_*` fields as Redis 7.0's `genRedisInfoString` computes them: the percentage of
/// the total (or of `used-mem` when the total is unknown, then at most 99.99) and the ETA from
/// the rate so far (a fake 1 s in the first second).
pub fn fields() -> Vec<(String, String)> {
    let (start, total, used_mem, loaded) =
        (START_TIME.load(Relaxed), TOTAL_BYTES.load(Relaxed), RDB_USED_MEM.load(Relaxed), LOADED_BYTES.load(Relaxed));
    let mut perc = 0.0;
    let mut remaining: i64 = 1;
    if total != 0 {
        perc = loaded as f64 / total as f64 * 100.0;
        remaining = total as i64 - loaded as i64;
    } else if used_mem != 0 {
        perc = (loaded as f64 / used_mem as f64 * 100.0).min(99.99);
        remaining = (used_mem as i64 - loaded as i64).max(1);
    }
    let elapsed = unix_now() - start;
    let eta = if elapsed == 0 { 1 } else { elapsed.saturating_mul(remaining) / (loaded as i64 + 1) };
    vec![
        ("loading_start_time".into(), start.to_string()),
        ("loading_total_bytes".into(), total.to_string()),
        ("loading_rdb_used_mem".into(), used_mem.to_string()),
        ("loading_loaded_bytes".into(), loaded.to_string()),
        ("loading_loaded_perc".into(), format!("{perc:.2}")),
        ("loading_eta_seconds".into(), eta.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(f: &[(String, String)], name: &str) -> String {
        f.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap()
    }

    // One test: the state is global.
    #[test]
    fn progress_is_counted_and_reported_as_redis() {
        start(1000);
        let mut r = reader(&[7u8; 250][..]);
        let mut buf = [0u8; 100];
        while r.read(&mut buf).unwrap() > 0 {}
        drop(r);
        let f = fields();
        assert_eq!(get(&f, "loading_total_bytes"), "1000");
        assert_eq!(get(&f, "loading_loaded_bytes"), "250");
        assert_eq!(get(&f, "loading_loaded_perc"), "25.00");
        assert!((get(&f, "loading_start_time").parse::<i64>().unwrap() - unix_now()).abs() <= 1);
        // An unknown total: the used-mem estimate, capped below 100%.
        start(0);
        rdb_used_mem(200);
        let mut r = reader(&[7u8; 250][..]);
        while r.read(&mut buf).unwrap() > 0 {}
        let f = fields();
        assert_eq!(get(&f, "loading_rdb_used_mem"), "200");
        assert_eq!(get(&f, "loading_loaded_perc"), "99.99");
        // Nothing known: 0% (and a fake ETA while under a second).
        start(0);
        assert_eq!(get(&fields(), "loading_loaded_perc"), "0.00");
        assert_eq!(fields().len(), 6);
    }
}
