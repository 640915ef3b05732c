//! INFO's figures the process measures of itself: the `memory` section (the counting allocator,
//! `/proc/self/status`, `/proc/meminfo`) and the `cpu` section (`/proc/self/stat` and the main
//! thread's). Mirrors the memory and CPU parts of `genRedisInfoString` in Redis's `server.c`.

use super::info::{Fields, s};
use crate::state::Shared;

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on every Linux target).
const CLOCK_TICKS_PER_SEC: u64 = 100;

pub(super) fn read_proc(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A `/proc/self/status` or `/proc/meminfo` amount given in kB, in bytes.
fn proc_kb(text: &str, field: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb.saturating_mul(1024))
}

/// Redis's `bytesToHuman`: `512B`, `2.19M`, `23.54G`.
pub fn bytes_to_human(n: u64) -> String {
    const UNITS: [(u64, &str); 5] = [(1 << 50, "P"), (1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for (size, unit) in UNITS {
        if n >= size {
            return format!("{:.2}{unit}", n as f64 / size as f64);
        }
    }
    format!("{n}B")
}

pub(super) fn memory_fields(shared: &Shared) -> Fields {
    let status = read_proc("/proc/self/status");
    let rss = proc_kb(&status, "VmRSS");
    let total = proc_kb(&read_proc("/proc/meminfo"), "MemTotal");
    let cfg = shared.config();
    // Allocator statistics (the server installs a counting allocator), else the resident set.
    let used = crate::memory::used_bytes();
    let peak = proc_kb(&status, "VmHWM").max(used);
    let startup = shared.used_memory_startup.min(used);
    let clients: u64 = shared.clients.all().iter().map(|c| super::client::buffer_sizes(c).total).sum();
    let overhead = startup + clients;
    let dataset = used.saturating_sub(overhead);
    let perc = |part: u64, whole: u64| if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 };
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let scripting = &shared.scripting;
    let lua = scripting.lua_memory() as u64;
    let scripts_eval = scripting.scripts_bytes.load(std::sync::atomic::Ordering::Relaxed) as u64;
    let (libraries, functions, functions_bytes) = {
        let libs = scripting.libs.read().unwrap_or_else(|e| e.into_inner());
        let f: usize = libs.libs.values().map(|l| l.functions.len()).sum();
        let b: usize = libs.libs.values().map(|l| l.code.len() + l.name.len()).sum();
        (libs.libs.len() as u64, f as u64, b as u64)
    };
    vec![
        ("used_memory".into(), s(used)),
        ("used_memory_human".into(), bytes_to_human(used)),
        ("used_memory_rss".into(), s(rss)),
        ("used_memory_rss_human".into(), bytes_to_human(rss)),
        ("used_memory_peak".into(), s(peak)),
        ("used_memory_peak_human".into(), bytes_to_human(peak)),
        ("used_memory_peak_perc".into(), format!("{:.2}%", perc(used, peak))),
        ("used_memory_overhead".into(), s(overhead)),
        ("used_memory_startup".into(), s(startup)),
        ("used_memory_dataset".into(), s(dataset)),
        ("used_memory_dataset_perc".into(), format!("{:.2}%", perc(dataset, used.saturating_sub(startup)))),
        ("allocator_allocated".into(), s(used)),
        ("allocator_active".into(), s(used)),
        ("allocator_resident".into(), s(rss)),
        ("total_system_memory".into(), s(total)),
        ("total_system_memory_human".into(), bytes_to_human(total)),
        // Every VM runs both EVAL scripts and functions: their memory is reported as the eval VMs'
        // (used_memory_lua), the functions' VM line stays 0.
        ("used_memory_lua".into(), s(lua)),
        ("used_memory_vm_eval".into(), s(lua)),
        ("used_memory_lua_human".into(), bytes_to_human(lua)),
        ("used_memory_scripts_eval".into(), s(scripts_eval)),
        ("number_of_cached_scripts".into(), s(scripting.script_count() as u64)),
        ("number_of_functions".into(), s(functions)),
        ("number_of_libraries".into(), s(libraries)),
        ("used_memory_vm_functions".into(), s(0)),
        ("used_memory_vm_total".into(), s(lua)),
        ("used_memory_vm_total_human".into(), bytes_to_human(lua)),
        ("used_memory_functions".into(), s(functions_bytes)),
        ("used_memory_scripts".into(), s(scripts_eval + functions_bytes)),
        ("used_memory_scripts_human".into(), bytes_to_human(scripts_eval + functions_bytes)),
        ("maxmemory".into(), s(cfg.maxmemory)),
        ("maxmemory_human".into(), bytes_to_human(cfg.maxmemory)),
        ("maxmemory_policy".into(), cfg.maxmemory_policy.clone()),
        ("allocator_frag_ratio".into(), s("1.00")),
        ("allocator_frag_bytes".into(), s(0)),
        ("allocator_rss_ratio".into(), format!("{:.2}", ratio(rss, used))),
        ("allocator_rss_bytes".into(), s(rss as i64 - used as i64)),
        ("rss_overhead_ratio".into(), s("1.00")),
        ("rss_overhead_bytes".into(), s(0)),
        ("mem_fragmentation_ratio".into(), format!("{:.2}", ratio(rss, used))),
        ("mem_fragmentation_bytes".into(), s(rss as i64 - used as i64)),
        ("mem_not_counted_for_evict".into(), s(0)),
        ("mem_replication_backlog".into(), s(0)),
        ("mem_total_replication_buffers".into(), s(0)),
        ("mem_clients_slaves".into(), s(0)),
        ("mem_clients_normal".into(), s(clients)),
        ("mem_cluster_links".into(), s(0)),
        ("mem_aof_buffer".into(), s(0)),
        ("mem_allocator".into(), s("libc")),
        ("active_defrag_running".into(), s(0)),
        ("lazyfree_pending_objects".into(), s(0)),
        ("lazyfreed_objects".into(), s(0)),
    ]
}

/// (user, system, children user, children system) CPU seconds of a `/proc/.../stat` text.
pub(crate) fn cpu_times(stat: &str) -> [f64; 4] {
    // Fields after the parenthesized command name: state is field 3; utime..cstime are 14..17.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().skip(11).take(4).map(|v| v.parse().unwrap_or(0)).collect();
    let secs = |i: usize| f.get(i).copied().unwrap_or(0) as f64 / CLOCK_TICKS_PER_SEC as f64;
    [secs(0), secs(1), secs(2), secs(3)]
}

pub(super) fn cpu_fields() -> Fields {
    let [user, sys, cuser, csys] = cpu_times(&read_proc("/proc/self/stat"));
    let [muser, msys, _, _] = cpu_times(&read_proc(&format!("/proc/self/task/{}/stat", std::process::id())));
    let f = |v: f64| format!("{v:.6}");
    vec![
        ("used_cpu_sys".into(), f(sys)),
        ("used_cpu_user".into(), f(user)),
        ("used_cpu_sys_children".into(), f(csys)),
        ("used_cpu_user_children".into(), f(cuser)),
        ("used_cpu_sys_main_thread".into(), f(msys)),
        ("used_cpu_user_main_thread".into(), f(muser)),
    ]
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn cpu_times_parse_proc_stat_after_the_command_name() {
        let stat = "42 (a b) c) S 1 2 3 4 5 6 7 8 9 10 250 75 3 4 20 0";
        assert_eq!(cpu_times(stat), [2.5, 0.75, 0.03, 0.04]);
        assert_eq!(cpu_times("garbage"), [0.0; 4]);
    }

    #[test]
    fn bytes_to_human_matches_redis() {
        assert_eq!(bytes_to_human(0), "0B");
        assert_eq!(bytes_to_human(1023), "1023B");
        assert_eq!(bytes_to_human(2301144), "2.19M");
        assert_eq!(bytes_to_human(25276514304), "23.54G");
    }
}
