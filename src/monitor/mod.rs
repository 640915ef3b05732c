//! What monitoring reads about commands: per-command counters and latency histograms
//! ([`cmdstats`], [`histogram`]), the slow log ([`slowlog`]) and the latency monitor's events
//! ([`latency`]), and INFO's instantaneous rates ([`rates`]). The dispatcher reports each call once through [`Monitor::after_call`]; INFO,
//! SLOWLOG and LATENCY read it. Mirrors the bookkeeping of Redis's `call()` in `server.c`.
//!
//! The settings checked on every call (`slowlog-log-slower-than`, `latency-monitor-threshold`,
//! `latency-tracking`) are mirrored in atomics; the slow log and the latency events take a lock
//! only for a call over their threshold.

pub mod cmdstats;
pub mod feed;
pub mod histogram;
pub mod latency;
pub mod rates;
pub mod slowlog;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;

use crate::config::Config;
pub use cmdstats::CommandStats;
pub use latency::LatencyMonitor;
pub use slowlog::SlowLog;

/// Monitoring state shared by every connection.
pub struct Monitor {
    pub commands: CommandStats,
    pub slowlog: Mutex<SlowLog>,
    pub latency: Mutex<LatencyMonitor>,
    /// INFO's instantaneous rates, sampled every 100 ms (see `memory::spawn_sampler`).
    pub rates: rates::Rates,
    slowlog_slower_than_us: AtomicI64,
    slowlog_max_len: AtomicU64,
    latency_threshold_ms: AtomicU64,
    latency_tracking: AtomicBool,
}

impl Default for Monitor {
    fn default() -> Self {
        let m = Monitor {
            commands: CommandStats::default(),
            slowlog: Mutex::default(),
            latency: Mutex::default(),
            rates: rates::Rates::default(),
            slowlog_slower_than_us: AtomicI64::new(0),
            slowlog_max_len: AtomicU64::new(0),
            latency_threshold_ms: AtomicU64::new(0),
            latency_tracking: AtomicBool::new(false),
        };
        m.sync_config(&Config::default());
        m
    }
}

/// One finished call, as the dispatcher reports it.
pub struct Call<'a> {
    /// The command's statistics slot (see `cmdstats`).
    pub slot: usize,
    pub ns: u64,
    /// The reply was an error.
    pub failed: bool,
    /// The command has the `fast` flag (its latency event is `fast-command`).
    pub fast: bool,
    /// None when the command is never slow-logged (`skip_slowlog`).
    pub argv: Option<&'a [Bytes]>,
    /// Who ran it: its address and name (read only when the call goes to the slow log).
    pub peer: &'a str,
    pub name: &'a Mutex<Option<Bytes>>,
}

impl Monitor {
    /// Copy the monitoring settings into their mirrors (startup and CONFIG SET). Relaxed: a call
    /// that sees a change one command late is fine.
    pub fn sync_config(&self, cfg: &Config) {
        self.slowlog_slower_than_us.store(cfg.slowlog_log_slower_than, Ordering::Relaxed);
        self.slowlog_max_len.store(cfg.slowlog_max_len, Ordering::Relaxed);
        self.latency_threshold_ms.store(cfg.latency_monitor_threshold, Ordering::Relaxed);
        self.latency_tracking.store(cfg.latency_tracking, Ordering::Relaxed);
    }

    /// Count a call, and log it where it passed the slow log's or the latency monitor's threshold.
    pub fn after_call(&self, call: Call) {
        self.after_call_in(None, call)
    }

    /// [`after_call`](Self::after_call), its counts summed in `pending` when given (a
    /// connection's batch: see [`CommandStats::record_pending`]).
    pub fn after_call_in(&self, pending: Option<&mut Option<cmdstats::Pending>>, call: Call) {
        let track = self.latency_tracking.load(Ordering::Relaxed);
        match pending {
            Some(p) => self.commands.record_pending(p, call.slot, call.ns, call.failed, track),
            None => self.commands.record_call(call.slot, call.ns, call.failed, track),
        }
        let us = call.ns / 1000;
        let slower_than = self.slowlog_slower_than_us.load(Ordering::Relaxed);
        if let Some(argv) = call.argv
            && slower_than >= 0
            && us >= slower_than as u64
        {
            let entry = slowlog::Entry {
                id: 0,
                time: crate::util::now_ms() / 1000,
                duration_us: us,
                argv: slowlog::trim_argv(argv),
                peer: call.peer.to_string(),
                name: call.name.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default(),
            };
            let max_len = self.slowlog_max_len.load(Ordering::Relaxed);
            self.slowlog.lock().unwrap_or_else(|e| e.into_inner()).push(entry, max_len as usize);
        }
        let ms = call.ns / 1_000_000;
        let threshold = self.latency_threshold_ms.load(Ordering::Relaxed);
        if threshold > 0 && ms >= threshold {
            let event = if call.fast { "fast-command" } else { "command" };
            self.latency.lock().unwrap_or_else(|e| e.into_inner()).add(event, crate::util::now_ms() / 1000, ms);
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    static NO_NAME: Mutex<Option<Bytes>> = Mutex::new(None);

    fn call(ns: u64, argv: Option<&[Bytes]>) -> Call<'_> {
        Call { slot: 3, ns, failed: false, fast: false, argv, peer: "127.0.0.1:5", name: &NO_NAME }
    }

    #[test]
    fn slow_calls_are_logged_from_the_threshold_and_negative_disables() {
        let m = Monitor::default();
        let argv = [Bytes::from_static(b"get"), Bytes::from_static(b"k")];
        m.after_call(call(9_999_000, Some(&argv)));
        assert!(m.slowlog.lock().unwrap().is_empty(), "under the default 10000 µs");
        m.after_call(call(10_000_000, Some(&argv)));
        m.after_call(call(50_000_000, None));
        let log = m.slowlog.lock().unwrap().newest(None);
        assert_eq!(log.len(), 1, "skip_slowlog commands are never logged");
        assert_eq!(
            (log[0].duration_us, log[0].argv.as_slice(), log[0].peer.as_str()),
            (10_000, &argv[..], "127.0.0.1:5")
        );
        let mut cfg = Config { slowlog_log_slower_than: -1, ..Config::default() };
        m.sync_config(&cfg);
        m.after_call(call(u64::MAX / 2, Some(&argv)));
        assert_eq!(m.slowlog.lock().unwrap().len(), 1);
        cfg.slowlog_log_slower_than = 0;
        cfg.slowlog_max_len = 2;
        m.sync_config(&cfg);
        for _ in 0..3 {
            m.after_call(call(1, Some(&argv)));
        }
        assert_eq!(m.slowlog.lock().unwrap().len(), 2);
        assert_eq!(m.commands.totals(3).calls, 7);
    }

    #[test]
    fn latency_events_need_a_threshold_and_name_fast_commands() {
        let m = Monitor::default();
        m.after_call(call(500_000_000, None));
        assert!(m.latency.lock().unwrap().events.is_empty(), "threshold 0 is off");
        m.sync_config(&Config { latency_monitor_threshold: 100, ..Config::default() });
        m.after_call(call(99_000_000, None));
        m.after_call(call(150_000_000, None));
        m.after_call(Call { fast: true, ..call(100_000_000, None) });
        let lat = m.latency.lock().unwrap();
        assert_eq!(lat.events.keys().collect::<Vec<_>>(), ["command", "fast-command"]);
        assert_eq!(lat.events["command"].latest().1, 150);
    }
}
