//! A latency histogram bucketed as Redis's HDR histogram (`hdr_histogram.c` with 2 significant
//! figures, 1 ns lowest discernible value): values below 256 ns have their own bucket; above, each
//! power of two `[128·2^b, 256·2^b)` is cut into 128 equal sub-buckets of `2^b` ns. Recorded values
//! are clamped to Redis's range, 1024 ns .. 1 s (`CONFIG_LATENCY_HISTOGRAM_MIN/MAX_VALUE`), so the
//! counts start at the bucket of 1024 ns. Counting is one relaxed atomic add; readers sum shards.

use std::sync::atomic::{AtomicU64, Ordering};

/// The smallest value recorded (ns); shorter commands count as this long.
pub const MIN_VALUE_NS: u64 = 1024;
/// The largest value recorded (ns); longer commands count as this long.
pub const MAX_VALUE_NS: u64 = 1_000_000_000;

const SUB_HALF: u64 = 128;

/// The flat HDR index of `v` (2 significant figures, unit 1 ns).
const fn hdr_index(v: u64) -> usize {
    if v < 2 * SUB_HALF {
        return v as usize;
    }
    let b = (63 - v.leading_zeros()) as u64 - 7;
    (2 * SUB_HALF + (b - 1) * SUB_HALF + ((v >> b) - SUB_HALF)) as usize
}

/// The lowest value of a flat HDR index, and the width of its bucket.
const fn hdr_bucket(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < 2 * SUB_HALF {
        return (i, 1);
    }
    let b = (i - 2 * SUB_HALF) / SUB_HALF + 1;
    let sub = (i - 2 * SUB_HALF) % SUB_HALF + SUB_HALF;
    (sub << b, 1 << b)
}

const FIRST: usize = hdr_index(MIN_VALUE_NS);
/// Number of buckets between the smallest and the largest recorded value.
pub const BUCKETS: usize = hdr_index(MAX_VALUE_NS) - FIRST + 1;

/// One histogram's counts (one per thread shard; see `cmdstats`).
pub struct Histogram {
    counts: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }
}

/// The bucket a duration of `ns` falls in.
pub fn bucket(ns: u64) -> usize {
    hdr_index(ns.clamp(MIN_VALUE_NS, MAX_VALUE_NS)) - FIRST
}

impl Histogram {
    /// Count one duration. Relaxed: counts order nothing.
    pub fn record(&self, ns: u64) {
        self.record_n(bucket(ns), 1);
    }

    /// Count `n` durations that fall in bucket `i` (see [`bucket`]).
    pub fn record_n(&self, i: usize, n: u64) {
        self.counts[i % BUCKETS].fetch_add(n, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        for c in self.counts.iter() {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Add this histogram's counts into `sum` (a [`Snapshot`] being gathered from shards).
    pub fn add_to(&self, sum: &mut Snapshot) {
        for (s, c) in sum.counts.iter_mut().zip(self.counts.iter()) {
            *s += c.load(Ordering::Relaxed);
        }
    }
}

/// Plain counts summed from the shards of one command: what INFO and LATENCY HISTOGRAM read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    counts: Vec<u64>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot { counts: vec![0; BUCKETS] }
    }
}

impl Snapshot {
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The highest value (ns) equivalent to the one at `percentile` (0..=100), as
    /// `hdr_value_at_percentile`: 0 when empty.
    pub fn value_at_percentile(&self, percentile: f64) -> u64 {
        let total = self.total();
        if total == 0 {
            return 0;
        }
        let want = ((percentile.clamp(0.0, 100.0) / 100.0) * total as f64 + 0.5) as u64;
        let want = want.max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                let (low, width) = hdr_bucket(i + FIRST);
                return low + width - 1;
            }
        }
        0
    }

    /// Redis's `LATENCY HISTOGRAM` buckets: for each power of two from 1024 ns (a log iterator of
    /// base 2), the bucket's highest equivalent value in µs and the cumulative count, kept only where
    /// the count grew.
    pub fn log_buckets_usec(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let (mut seen, mut last, mut i) = (0u64, 0u64, 0usize);
        let mut step = MIN_VALUE_NS;
        while i < self.counts.len() {
            let end = hdr_index(step) - FIRST;
            while i <= end && i < self.counts.len() {
                seen += self.counts[i];
                i += 1;
            }
            if seen > last {
                let (low, width) = hdr_bucket(end + FIRST);
                out.push(((low + width - 1) / 1000, seen));
            }
            last = seen;
            step *= 2;
        }
        out
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn snapshot(values_ns: &[u64]) -> Snapshot {
        let h = Histogram::default();
        for &v in values_ns {
            h.record(v);
        }
        let mut s = Snapshot::default();
        h.add_to(&mut s);
        s
    }

    #[test]
    fn buckets_have_two_significant_figures_as_hdr() {
        assert_eq!(hdr_bucket(hdr_index(255)), (255, 1));
        assert_eq!(hdr_bucket(hdr_index(22_000)), (21_888, 128));
        assert_eq!(hdr_bucket(hdr_index(32_768)), (32_768, 256));
        for v in [1024u64, 5000, 77_777, 1 << 20, 999_999_999] {
            let (low, width) = hdr_bucket(hdr_index(v));
            assert!(low <= v && v < low + width && width * 128 <= v.next_power_of_two(), "{v}");
        }
    }

    #[test]
    fn percentiles_report_the_highest_equivalent_value_as_redis() {
        // Redis prints p50=22.015 for one 22 µs call.
        assert_eq!(snapshot(&[22_000]).value_at_percentile(50.0), 22_015);
        let s = snapshot(&[1_000, 2_000, 3_000, 4_000, 100_000]);
        assert_eq!(s.value_at_percentile(50.0), 3_007);
        assert_eq!(s.value_at_percentile(99.9), 100_351);
        assert_eq!(Snapshot::default().value_at_percentile(50.0), 0);
    }

    #[test]
    fn values_are_clamped_to_redis_range() {
        let s = snapshot(&[1, 5_000_000_000]);
        assert_eq!(s.total(), 2);
        assert_eq!(s.value_at_percentile(0.0), 1031);
        assert!(s.value_at_percentile(100.0) >= MAX_VALUE_NS);
    }

    #[test]
    fn log_buckets_are_cumulative_powers_of_two_in_usec() {
        // Redis: SET twice (8 and ~15 µs) gives 8 => 1, 16 => 2; 32 µs reads 33, 1 ms reads 1056.
        assert_eq!(snapshot(&[8_000, 15_000]).log_buckets_usec(), vec![(8, 1), (16, 2)]);
        assert_eq!(snapshot(&[30_000, 1_000_000]).log_buckets_usec(), vec![(33, 1), (1056, 2)]);
        assert_eq!(snapshot(&[10]).log_buckets_usec(), vec![(1, 1)]);
        assert!(Snapshot::default().log_buckets_usec().is_empty());
    }
}
