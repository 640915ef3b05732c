//! INFO's instantaneous rates (`instantaneous_ops_per_sec`, `instantaneous_input_kbps`,
//! `instantaneous_output_kbps`): every 100 ms a sampler records each counter's rate since the last
//! sample; INFO prints the mean of the last 16 samples. Mirrors Redis's `trackInstantaneousMetric`
//! and `getInstantaneousMetric` in `server.c`.

use std::sync::Mutex;

/// Samples averaged (Redis's `STATS_METRIC_SAMPLES`).
const SAMPLES: usize = 16;

/// One counter's recent rates, per second.
#[derive(Default, Clone, Copy)]
struct Metric {
    last_ms: u64,
    last_value: u64,
    samples: [u64; SAMPLES],
    idx: usize,
}

impl Metric {
    fn track(&mut self, now_ms: u64, value: u64) {
        if self.last_ms != 0 && now_ms > self.last_ms {
            let per_sec = value.saturating_sub(self.last_value) * 1000 / (now_ms - self.last_ms);
            self.samples[self.idx] = per_sec;
            self.idx = (self.idx + 1) % SAMPLES;
        }
        self.last_ms = now_ms;
        self.last_value = value;
    }

    fn mean(&self) -> u64 {
        self.samples.iter().sum::<u64>() / SAMPLES as u64
    }
}

/// The rates, written by the sampler thread and read by INFO.
#[derive(Default)]
pub struct Rates {
    metrics: Mutex<[Metric; 3]>,
}

/// What INFO prints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatesNow {
    pub ops_per_sec: u64,
    pub input_kbps: f64,
    pub output_kbps: f64,
}

impl Rates {
    /// Record the counters' values at `now_ms`: commands processed, bytes read, bytes written.
    pub fn sample(&self, now_ms: u64, ops: u64, input_bytes: u64, output_bytes: u64) {
        let mut m = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        for (metric, value) in m.iter_mut().zip([ops, input_bytes, output_bytes]) {
            metric.track(now_ms, value);
        }
    }

    pub fn now(&self) -> RatesNow {
        let m = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        RatesNow {
            ops_per_sec: m[0].mean(),
            input_kbps: m[1].mean() as f64 / 1024.0,
            output_kbps: m[2].mean() as f64 / 1024.0,
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn rates_are_the_mean_of_the_last_16_samples() {
        let r = Rates::default();
        assert_eq!(r.now(), RatesNow { ops_per_sec: 0, input_kbps: 0.0, output_kbps: 0.0 });
        // 100 commands and 10 KiB in every 100 ms: 1000 ops/s, 100 KiB/s.
        for i in 0..=SAMPLES as u64 {
            r.sample(1_000 + i * 100, i * 100, i * 10 * 1024, 0);
        }
        assert_eq!(r.now(), RatesNow { ops_per_sec: 1000, input_kbps: 100.0, output_kbps: 0.0 });
        // Half the window idle: half the rate.
        for i in 1..=(SAMPLES as u64 / 2) {
            r.sample(2_600 + i * 100, 1600, 160 * 1024, 0);
        }
        assert_eq!(r.now().ops_per_sec, 500);
    }
}
