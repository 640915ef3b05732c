//! `LATENCY LATEST | HISTORY event | RESET [event ...] | GRAPH event | DOCTOR | HISTOGRAM
//! [command ...] | HELP`: the latency monitor's events (see [`crate::monitor::latency`]) and the
//! per-command latency histograms. Mirrors Redis's `latency.c`.

use bytes::Bytes;

use super::{SubSpec, help_reply, run_subcommand};
use crate::cmd::{Ctx, slots};
use crate::error::{Error, Result};
use crate::monitor::latency::graph;
use crate::resp::Frame;

pub(crate) static LATENCY_SUBS: &[SubSpec] = &[
    SubSpec { name: "latency|doctor", arity: 2, handler: latency_doctor },
    SubSpec { name: "latency|graph", arity: 3, handler: latency_graph },
    SubSpec { name: "latency|histogram", arity: -2, handler: latency_histogram },
    SubSpec { name: "latency|history", arity: 3, handler: latency_history },
    SubSpec { name: "latency|latest", arity: 2, handler: latency_latest },
    SubSpec { name: "latency|reset", arity: -2, handler: latency_reset },
    SubSpec { name: "latency|help", arity: 2, handler: latency_help },
];

/// `LATENCY <subcommand> ...`.
pub fn latency(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    run_subcommand(ctx, argv, LATENCY_SUBS)
}

fn int(n: u64) -> Frame {
    Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn monitor<'a>(ctx: &Ctx<'a>) -> std::sync::MutexGuard<'a, crate::monitor::LatencyMonitor> {
    ctx.shared.monitor.latency.lock().unwrap_or_else(|e| e.into_inner())
}

/// `LATENCY LATEST`: per event, its name, the time and latency of its newest sample, its maximum.
fn latency_latest(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    let m = monitor(ctx);
    Ok(Frame::Array(
        m.events
            .iter()
            .map(|(name, s)| {
                let (time, ms) = s.latest();
                Frame::Array(vec![bulk(name), int(time), int(ms), int(s.max_ms)])
            })
            .collect(),
    ))
}

/// `LATENCY HISTORY event`: the event's (time, latency) samples, oldest first.
fn latency_history(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let m = monitor(ctx);
    let samples = m.events.get(&*String::from_utf8_lossy(&argv[2])).map(|s| s.samples()).unwrap_or_default();
    Ok(Frame::Array(samples.into_iter().map(|(t, ms)| Frame::Array(vec![int(t), int(ms)])).collect()))
}

/// `LATENCY RESET [event ...]`: how many events were dropped.
fn latency_reset(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let mut m = monitor(ctx);
    let n = if argv.len() == 2 {
        m.reset(None)
    } else {
        argv[2..].iter().map(|e| m.reset(Some(&String::from_utf8_lossy(e)))).sum()
    };
    Ok(Frame::Integer(n as i64))
}

/// `LATENCY GRAPH event`: an ASCII graph of the event's samples.
fn latency_graph(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let name = String::from_utf8_lossy(&argv[2]).into_owned();
    let m = monitor(ctx);
    let Some(series) = m.events.get(&name) else {
        return Err(Error::err(format!("No samples available for event '{name}'")));
    };
    Ok(Frame::Verbatim(Bytes::from(graph(&name, series, crate::state::unix_secs()))))
}

/// `LATENCY DOCTOR`: a report on the events, with advice.
fn latency_doctor(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    let (threshold, slowlog) = {
        let cfg = ctx.shared.config();
        (cfg.latency_monitor_threshold, (cfg.slowlog_log_slower_than, cfg.slowlog_max_len))
    };
    let report = monitor(ctx).doctor(crate::state::unix_secs(), threshold, slowlog);
    Ok(Frame::Verbatim(Bytes::from(report)))
}

/// One command's histogram entry: `calls` and the cumulative `histogram_usec` buckets.
fn histogram_entry(ctx: &Ctx, slot: usize) -> Option<Frame> {
    let h = ctx.shared.monitor.commands.histogram(slot)?;
    if h.total() == 0 {
        return None;
    }
    let buckets = h.log_buckets_usec().into_iter().map(|(us, n)| (int(us), int(n))).collect();
    Some(Frame::Map(vec![(bulk("calls"), int(h.total())), (bulk("histogram_usec"), Frame::Map(buckets))]))
}

/// `LATENCY HISTOGRAM [command ...]`: the latency distribution of the named commands (a container
/// names its subcommands too; unknown names and commands never run are left out), of every
/// command without names.
fn latency_histogram(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let names: Vec<&'static str> = slots::slot_names().collect();
    let wanted: Vec<usize> = if argv.len() == 2 {
        (0..names.len()).collect()
    } else {
        let mut w = Vec::new();
        for a in &argv[2..] {
            let Some(slot) = slots::slot_of_name(a) else { continue };
            w.push(slot);
            let prefix = format!("{}|", names[slot]);
            w.extend((0..names.len()).filter(|&s| names[s].starts_with(&prefix)));
        }
        w
    };
    let out = wanted.into_iter().filter_map(|slot| Some((bulk(names[slot]), histogram_entry(ctx, slot)?))).collect();
    Ok(Frame::Map(out))
}

/// `LATENCY HELP`.
fn latency_help(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(help_reply(
        &argv[0],
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified \
             command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    ))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::{Harness, arr, bulk, err, int};
    use crate::resp::Frame;

    #[test]
    fn latest_history_graph_and_reset_read_the_monitor() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["LATENCY", "LATEST"]), arr(vec![]));
        assert_eq!(h.run(&["LATENCY", "HISTORY", "command"]), arr(vec![]));
        assert_eq!(h.run(&["LATENCY", "GRAPH", "command"]), err("ERR No samples available for event 'command'"));
        h.shared.monitor.latency.lock().unwrap().add("command", 1_700_000_000, 42);
        let Frame::Array(latest) = h.run(&["LATENCY", "LATEST"]) else { panic!() };
        assert_eq!(latest, vec![arr(vec![bulk("command"), int(1_700_000_000), int(42), int(42)])]);
        assert_eq!(h.run(&["LATENCY", "HISTORY", "command"]), arr(vec![arr(vec![int(1_700_000_000), int(42)])]));
        let Frame::Verbatim(g) = h.run(&["LATENCY", "GRAPH", "command"]) else { panic!() };
        assert!(g.starts_with(b"command - high 42 ms, low 42 ms (all time high 42 ms)\n"));
        assert_eq!(h.run(&["LATENCY", "RESET", "nosuch", "COMMAND"]), int(1));
        assert_eq!(h.run(&["LATENCY", "RESET"]), int(0));
    }

    #[test]
    fn histogram_names_commands_and_their_subcommands_that_ran() {
        let mut h = Harness::new();
        h.run(&["SET", "a", "1"]);
        h.run(&["SET", "a", "2"]);
        h.run(&["CONFIG", "GET", "hz"]);
        let Frame::Map(m) = h.run(&["LATENCY", "HISTOGRAM", "set", "nosuch", "get", "config"]) else { panic!() };
        let names: Vec<&Frame> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(names, vec![&bulk("set"), &bulk("config|get")]);
        let Frame::Map(set) = &m[0].1 else { panic!() };
        assert_eq!(set[0], (bulk("calls"), int(2)));
        let Frame::Map(buckets) = &set[1].1 else { panic!() };
        assert_eq!(buckets.last().map(|b| &b.1), Some(&int(2)), "cumulative");
        let Frame::Map(all) = h.run(&["LATENCY", "HISTOGRAM"]) else { panic!() };
        assert!(all.len() >= 3, "set, config|get and latency|histogram");
    }

    #[test]
    fn doctor_and_errors_as_redis() {
        let mut h = Harness::new();
        let Frame::Verbatim(r) = h.run(&["LATENCY", "DOCTOR"]) else { panic!() };
        assert!(r.starts_with(b"I'm sorry, Dave, I can't do that."));
        assert_eq!(h.run(&["LATENCY", "HISTORY"]), err("ERR wrong number of arguments for 'latency|history' command"));
        assert_eq!(h.run(&["LATENCY", "xyz"]), err("ERR unknown subcommand 'xyz'. Try LATENCY HELP."));
        let Frame::Array(help) = h.run(&["LATENCY", "HELP"]) else { panic!() };
        assert_eq!(help.len(), 17);
    }
}
