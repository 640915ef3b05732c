//! The latency monitor: per event (`command`, `fast-command`), the worst latency (ms) of each of
//! the last 160 seconds in which it passed `latency-monitor-threshold`, and its all-time high; the
//! DOCTOR report and the GRAPH sparkline built from them. Mirrors Redis's `latency.c` and
//! `sparkline.c`. Only an event over the threshold takes the lock.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
pub const SERIES_LEN: usize = 160;

/// One event's samples: a ring of (unix time s, latency ms), oldest first from `idx`.
#[derive(Clone, Debug)]
pub struct Series {
    idx: usize,
    pub max_ms: u64,
    samples: [(u64, u64); SERIES_LEN],
}

impl Default for Series {
    fn default() -> Self {
        Series { idx: 0, max_ms: 0, samples: [(0, 0); SERIES_LEN] }
    }
}

impl Series {
    /// Record `ms` at `now` (s): one sample per second, the worst of that second.
    pub fn add(&mut self, now: u64, ms: u64) {
        self.max_ms = self.max_ms.max(ms);
        let prev = (self.idx + SERIES_LEN - 1) % SERIES_LEN;
        if self.samples[prev].0 == now {
            self.samples[prev].1 = self.samples[prev].1.max(ms);
            return;
        }
        self.samples[self.idx] = (now, ms);
        self.idx = (self.idx + 1) % SERIES_LEN;
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> Vec<(u64, u64)> {
        (0..SERIES_LEN).map(|j| self.samples[(self.idx + j) % SERIES_LEN]).filter(|s| s.0 != 0).collect()
    }

    /// The newest sample (LATENCY LATEST).
    pub fn latest(&self) -> (u64, u64) {
        self.samples[(self.idx + SERIES_LEN - 1) % SERIES_LEN]
    }
}

/// Every event's series, by name.
#[derive(Default)]
pub struct LatencyMonitor {
    pub events: BTreeMap<String, Series>,
}

impl LatencyMonitor {
    pub fn add(&mut self, event: &str, now: u64, ms: u64) {
        self.events.entry(event.to_string()).or_default().add(now, ms);
    }

    /// Drop the named event (any case), or every event when None; how many were dropped.
    pub fn reset(&mut self, event: Option<&str>) -> usize {
        let before = self.events.len();
        match event {
            None => self.events.clear(),
            Some(e) => self.events.retain(|name, _| !name.eq_ignore_ascii_case(e)),
        }
        before - self.events.len()
    }

    /// LATENCY DOCTOR's report for the events Redis here can log (`command`, `fast-command`).
    /// `slowlog` is (slowlog-log-slower-than, slowlog-max-len); `threshold_ms` is the monitor's.
    pub fn doctor(&self, now: u64, threshold_ms: u64, slowlog: (i64, u64)) -> String {
        let mut r = String::new();
        if self.events.is_empty() && threshold_ms == 0 {
            r.push_str(
                "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \
                 \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a \
                 deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n",
            );
            return r;
        }
        let (mut slowlog_enable, mut slowlog_tuning, mut slowlog_inspect, mut scheduler) = (false, false, false, false);
        for (n, (name, series)) in self.events.iter().enumerate() {
            if n == 0 {
                r.push_str(
                    "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, \
                     do you Dave?\n\n",
                );
            }
            let samples = series.samples();
            let count = samples.len() as u64;
            let avg = samples.iter().map(|s| s.1).sum::<u64>() / count.max(1);
            let mad = samples.iter().map(|s| s.1.abs_diff(avg)).sum::<u64>() / count.max(1);
            let oldest = samples.iter().map(|s| s.0).min().unwrap_or(now);
            let period = now.saturating_sub(oldest).max(1);
            let _ = write!(
                r,
                "{}. {name}: {count} latency spikes (average {avg}ms, mean deviation {mad}ms, period {:.2} sec). \
                 Worst all time event {}ms.",
                n + 1,
                period as f64 / count.max(1) as f64,
                series.max_ms
            );
            match name.as_str() {
                "command" => {
                    if slowlog.0 < 0 || slowlog.1 == 0 {
                        slowlog_enable = true;
                    } else if (slowlog.0 / 1000) as u64 > threshold_ms {
                        slowlog_tuning = true;
                    }
                    slowlog_inspect = true;
                }
                "fast-command" => scheduler = true,
                _ => {}
            }
            r.push('\n');
        }
        let advices = slowlog_enable || slowlog_tuning || slowlog_inspect || scheduler;
        if self.events.is_empty() {
            r.push_str(
                "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest \
                 bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n",
            );
            return r;
        }
        if !advices {
            r.push_str(
                "\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis \
                 community to get some help, providing this report in your help request.\n",
            );
            return r;
        }
        r.push_str("\nI have a few advices for you:\n\n");
        let suggested = threshold_ms * 1000;
        if slowlog_enable {
            let _ = writeln!(
                r,
                "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log \
                 Redis feature using the command 'CONFIG SET slowlog-log-slower-than {suggested}'. If the Slow log is \
                 disabled Redis is not able to log slow commands execution for you."
            );
        }
        if slowlog_tuning {
            let _ = writeln!(
                r,
                "- Your current Slow Log configuration only logs events that are slower than your configured latency \
                 monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {suggested}'."
            );
        }
        if slowlog_inspect {
            r.push_str(
                "- Check your Slow Log to understand what are the commands you are running which are too slow to \
                 execute. Please check https://redis.io/commands/slowlog for more information.\n",
            );
        }
        if scheduler {
            r.push_str(
                "- The system is slow to execute Redis code paths not containing system calls. This usually means the \
                 system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the \
                 system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same \
                 system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli \
                 --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is \
                 allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may \
                 create fragmentation problems.\n",
            );
        }
        if slowlog_inspect {
            r.push_str(
                "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. \
                 If you have very large objects that are often deleted, expired, or evicted, try to fragment those \
                 objects into multiple smaller objects.\n",
            );
        }
        r
    }
}

/// LATENCY GRAPH: a header, a rule, and the samples as a 4-row filled sparkline of 80 columns with
/// each sample's age (`12s`, `3m`, `2h`, `1d`) written vertically below it.
pub fn graph(event: &str, series: &Series, now: u64) -> String {
    let samples = series.samples();
    let min = samples.iter().map(|s| s.1).min().unwrap_or(0);
    let max = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let mut out = format!("{event} - high {max} ms, low {min} ms (all time high {} ms)\n", series.max_ms);
    out.push_str(&"-".repeat(80));
    out.push('\n');
    let labelled: Vec<(f64, String)> = samples
        .iter()
        .map(|&(t, ms)| {
            let age = now.saturating_sub(t);
            let label = match age {
                a if a < 60 => format!("{a}s"),
                a if a < 3600 => format!("{}m", a / 60),
                a if a < 86400 => format!("{}h", a / 3600),
                a => format!("{}d", a / 86400),
            };
            (ms as f64, label)
        })
        .collect();
    for (n, chunk) in labelled.chunks(80).enumerate() {
        if n > 0 {
            out.push('\n');
        }
        sparkline(&mut out, chunk, min as f64, max as f64, 4);
    }
    out
}

/// Redis's `sparklineRenderRange` with `SPARKLINE_FILL`, for samples that all carry a label.
fn sparkline(out: &mut String, samples: &[(f64, String)], min: f64, max: f64, rows: usize) {
    const FILL: [char; 3] = ['_', 'o', '#'];
    let steps = (FILL.len() * rows) as i64;
    let relmax = if max - min == 0.0 { 1.0 } else { max - min };
    let mut row = 0;
    loop {
        let mut any = false;
        let mut line = vec![' '; samples.len()];
        for (j, (value, label)) in samples.iter().enumerate() {
            let step = ((((value - min) * steps as f64) as i64) as f64 / relmax) as i64;
            let step = step.clamp(0, steps - 1);
            if row < rows {
                any = true;
                let idx = step - ((rows - row - 1) * FILL.len()) as i64;
                if (0..FILL.len() as i64).contains(&idx) {
                    line[j] = FILL[idx as usize];
                } else if idx >= FILL.len() as i64 {
                    line[j] = '|';
                }
            } else if row - rows < 1 {
                // The blank line between the graph and the labels.
                any = true;
                line.iter_mut().for_each(|c| *c = ' ');
                break;
            } else if let Some(c) = label.chars().nth(row - rows - 1) {
                any = true;
                line[j] = c;
            }
        }
        if !any {
            break;
        }
        row += 1;
        out.extend(line);
        out.push('\n');
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_keeps_the_worst_and_the_all_time_high() {
        let mut s = Series::default();
        s.add(100, 5);
        s.add(100, 9);
        s.add(100, 2);
        s.add(101, 3);
        assert_eq!(s.samples(), vec![(100, 9), (101, 3)]);
        assert_eq!(s.latest(), (101, 3));
        assert_eq!(s.max_ms, 9);
    }

    #[test]
    fn the_ring_keeps_the_last_160_seconds() {
        let mut s = Series::default();
        for t in 1..=200 {
            s.add(t, t);
        }
        let samples = s.samples();
        assert_eq!(samples.len(), SERIES_LEN);
        assert_eq!(samples[0], (41, 41));
        assert_eq!(s.latest(), (200, 200));
    }

    #[test]
    fn reset_counts_events_case_insensitively() {
        let mut m = LatencyMonitor::default();
        m.add("command", 1, 5);
        m.add("fast-command", 1, 5);
        assert_eq!(m.reset(Some("COMMAND")), 1);
        assert_eq!(m.reset(Some("nosuch")), 0);
        assert_eq!(m.reset(None), 1);
    }

    #[test]
    fn doctor_reports_as_redis() {
        let mut m = LatencyMonitor::default();
        assert!(m.doctor(10, 0, (10000, 128)).starts_with("I'm sorry, Dave, I can't do that."));
        m.add("command", 100, 1);
        m.add("command", 115, 33);
        let r = m.doctor(130, 1, (0, 128));
        assert!(r.contains(
            "1. command: 2 latency spikes (average 17ms, mean deviation 16ms, period 15.00 sec). Worst all time \
             event 33ms.\n"
        ));
        assert!(r.contains("- Check your Slow Log"), "{r}");
        assert!(!r.contains("slowlog-log-slower-than 1000'"), "{r}");
        assert!(m.doctor(130, 1, (-1, 128)).contains("'CONFIG SET slowlog-log-slower-than 1000'"));
    }

    #[test]
    fn graph_draws_a_filled_sparkline_with_age_labels() {
        let mut s = Series::default();
        s.add(1000, 1);
        s.add(1015, 33);
        let g = graph("command", &s, 1030);
        let want = "command - high 33 ms, low 1 ms (all time high 33 ms)\n".to_string()
            + &"-".repeat(80)
            + "\n #\n |\n |\n_|\n  \n31\n05\nss\n";
        assert_eq!(g, want);
    }
}
