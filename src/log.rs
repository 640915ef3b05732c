//! Server log lines in Redis's format: `pid:M dd Mon yyyy hh:mm:ss.mmm <level> message`.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// Log levels, as redis.conf names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Verbose = 1,
    Notice = 2,
    Warning = 3,
    Nothing = 4,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Notice as u8);
static LOGFILE: OnceLock<Option<std::sync::Mutex<std::fs::File>>> = OnceLock::new();

/// Set the level and the destination ("" = standard output).
pub fn init(level: &str, logfile: &str) {
    let l = match level {
        "debug" => Level::Debug,
        "verbose" => Level::Verbose,
        "warning" => Level::Warning,
        "nothing" => Level::Nothing,
        _ => Level::Notice,
    };
    LEVEL.store(l as u8, Ordering::Relaxed);
    let file = if logfile.is_empty() {
        None
    } else {
        std::fs::OpenOptions::new().create(true).append(true).open(logfile).ok().map(std::sync::Mutex::new)
    };
    let _ = LOGFILE.set(file);
}

/// Write one log line at `level`.
pub fn log(level: Level, msg: &str) {
    // Loom models run the real code paths thousands of times (a rewrite that the writer's shutdown
    // aborts logs a warning in each interleaving): they assert on state, not on the log.
    if cfg!(feature = "loom") {
        return;
    }
    if (level as u8) < LEVEL.load(Ordering::Relaxed) || level == Level::Nothing {
        return;
    }
    let mark = match level {
        Level::Debug => '.',
        Level::Verbose => '-',
        Level::Notice => '*',
        _ => '#',
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let line = format!("{}:M {} {} {}\n", std::process::id(), format_time(now), mark, msg);
    match LOGFILE.get().and_then(|f| f.as_ref()) {
        Some(f) => {
            let _ = f.lock().unwrap_or_else(|e| e.into_inner()).write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stdout().write_all(line.as_bytes());
        }
    }
}

fn format_time(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, day) = civil_from_days(days as i64);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        day,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[macro_export]
macro_rules! notice { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Notice, &format!($($t)*)) } }
#[macro_export]
macro_rules! warning { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Warning, &format!($($t)*)) } }
#[macro_export]
macro_rules! verbose { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Verbose, &format!($($t)*)) } }
