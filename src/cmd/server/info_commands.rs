//! INFO's per-command sections: `commandstats` (calls, time, rejected and failed calls) and
//! `latencystats` (the `latency-tracking-info-percentiles` of each command's latency histogram),
//! one line per command or subcommand that has any, named as Redis names them (`config|set`).
//! Mirrors `genRedisInfoString`'s command sections in Redis's `server.c`.

use std::borrow::Cow;

use crate::cmd::slots::slot_names;
use crate::state::Shared;

/// A section's `name:value` lines.
type Fields = Vec<(Cow<'static, str>, String)>;

/// `cmdstat_<name>:calls=..,usec=..,usec_per_call=..,rejected_calls=..,failed_calls=..`.
pub fn commandstats_fields(shared: &Shared) -> Fields {
    slot_names()
        .enumerate()
        .filter_map(|(slot, name)| {
            let t = shared.monitor.commands.totals(slot);
            if t.calls == 0 && t.rejected == 0 && t.failed == 0 {
                return None;
            }
            let per_call = if t.calls == 0 { 0.0 } else { t.usec as f64 / t.calls as f64 };
            Some((
                format!("cmdstat_{name}").into(),
                format!(
                    "calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}",
                    t.calls, t.usec, t.rejected, t.failed
                ),
            ))
        })
        .collect()
}

/// `latency_percentiles_usec_<name>:p50=..,p99=..,p99.9=..` (values in µs with 3 decimals).
pub fn latencystats_fields(shared: &Shared) -> Fields {
    let percentiles = shared.config().latency_tracking_info_percentiles.clone();
    slot_names()
        .enumerate()
        .filter_map(|(slot, name)| {
            let h = shared.monitor.commands.histogram(slot).filter(|h| h.total() > 0)?;
            let value = percentiles
                .iter()
                .map(|&p| format!("p{p}={:.3}", h.value_at_percentile(p) as f64 / 1000.0))
                .collect::<Vec<_>>()
                .join(",");
            Some((format!("latency_percentiles_usec_{name}").into(), value))
        })
        .collect()
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::Harness;
    use crate::resp::Frame;

    fn info(h: &mut Harness, section: &str) -> String {
        match h.run(&["INFO", section]) {
            Frame::Verbatim(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    fn line<'a>(text: &'a str, key: &str) -> Option<&'a str> {
        text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
    }

    #[test]
    fn commandstats_count_calls_rejections_and_failures_per_command_and_subcommand() {
        let mut h = Harness::new();
        h.run(&["SET", "k", "v"]);
        h.run(&["INCR", "k"]);
        h.run(&["INCR", "n"]);
        h.run(&["GET"]);
        h.run(&["CONFIG", "GET", "hz"]);
        h.run(&["CONFIG", "GET"]);
        h.run(&["CONFIG", "NOSUCH"]);
        let text = info(&mut h, "commandstats");
        assert!(text.starts_with("# Commandstats\r\n"), "{text}");
        let incr = line(&text, "cmdstat_incr").unwrap();
        assert!(incr.starts_with("calls=2,usec=") && incr.ends_with(",rejected_calls=0,failed_calls=1"), "{incr}");
        assert_eq!(
            line(&text, "cmdstat_get"),
            Some("calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0")
        );
        assert!(line(&text, "cmdstat_config|get").unwrap().starts_with("calls=1,"), "{text}");
        assert!(line(&text, "cmdstat_config|get").unwrap().ends_with("rejected_calls=1,failed_calls=0"));
        assert_eq!(line(&text, "cmdstat_config"), None, "a container's runs are its subcommands'");
        assert_eq!(line(&text, "cmdstat_ping"), None, "commands never called are left out");
        h.run(&["CONFIG", "RESETSTAT"]);
        let text = info(&mut h, "commandstats");
        assert_eq!(line(&text, "cmdstat_incr"), None);
        assert!(line(&text, "cmdstat_config|resetstat").is_some(), "RESETSTAT counts itself after the reset");
    }

    #[test]
    fn latencystats_print_the_configured_percentiles() {
        let mut h = Harness::new();
        h.run(&["SET", "k", "v"]);
        let text = info(&mut h, "latencystats");
        let set = line(&text, "latency_percentiles_usec_set").unwrap();
        let keys: Vec<&str> = set.split(',').map(|kv| kv.split_once('=').unwrap().0).collect();
        assert_eq!(keys, ["p50", "p99", "p99.9"]);
        let p50: f64 = set.split(',').next().unwrap()[4..].parse().unwrap();
        assert!(p50 >= 1.0, "at least the histogram's floor: {set}");
        h.run(&["CONFIG", "SET", "latency-tracking-info-percentiles", "0 100"]);
        let text = info(&mut h, "latencystats");
        assert!(line(&text, "latency_percentiles_usec_set").unwrap().starts_with("p0="), "{text}");
        h.run(&["CONFIG", "SET", "latency-tracking", "no"]);
        h.run(&["CONFIG", "RESETSTAT"]);
        h.run(&["GET", "k"]);
        assert_eq!(line(&info(&mut h, "latencystats"), "latency_percentiles_usec_get"), None);
        assert!(line(&info(&mut h, "commandstats"), "cmdstat_get").is_some());
    }
}
