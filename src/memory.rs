//! Used memory for `maxmemory`: the process's resident set size, sampled by a background thread
//! every [`SAMPLE_INTERVAL`] into an atomic, so that commands check the limit without a system
//! call. The allocator is not instrumented; the RSS is the real figure the kernel charges.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::state::Shared;

/// How often the resident set size is sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// The process's resident set size in bytes, from `VmRSS` in `/proc/self/status` (0 if unreadable).
pub fn rss_bytes() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb.saturating_mul(1024))
}

/// Take one sample now.
pub fn sample(shared: &Shared) {
    shared.used_memory.store(rss_bytes(), Ordering::Relaxed);
}

/// Start the sampling thread.
pub fn spawn_sampler(shared: Arc<Shared>) {
    sample(&shared);
    std::thread::Builder::new()
        .name("mem-sampler".into())
        .spawn(move || {
            loop {
                std::thread::sleep(SAMPLE_INTERVAL);
                sample(&shared);
            }
        })
        .expect("spawn memory sampler thread");
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn rss_is_measured_and_grows_with_touched_memory() {
        let before = rss_bytes();
        assert!(before > 1 << 20, "rss {before}");
        let v = vec![1u8; 64 << 20];
        let after = rss_bytes();
        assert!(after >= before + (32 << 20), "before {before} after {after}");
        drop(v);
    }
}
