//! Operating-system limits the server adjusts at startup and on each connection: the open-files
//! limit (RLIMIT_NOFILE, sized for `maxclients` as Redis's `adjustOpenFilesLimit` does) and TCP
//! keepalive (Redis's `anetKeepAlive`), through the safe APIs of `rlimit` and `socket2` (std and
//! tokio have none): no `unsafe` here.

use std::io;
use std::time::Duration;

use rlimit::Resource;

/// File descriptors Redis keeps for itself beyond one per client (CONFIG_MIN_RESERVED_FDS).
pub const RESERVED_FDS: u64 = 32;

/// The current (soft, hard) open-files limits.
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    Resource::NOFILE.get()
}

fn set_nofile(soft: u64, hard: u64) -> io::Result<()> {
    Resource::NOFILE.set(soft, hard)
}

/// Raise the soft open-files limit to at least `wanted` if it is lower: first to `wanted` (soft and
/// hard, which needs privileges when above the hard limit), else as far as the hard limit allows.
/// Returns the soft limit in force afterwards; it may be below `wanted`.
pub fn raise_nofile(wanted: u64) -> io::Result<u64> {
    let (soft, hard) = nofile_limit()?;
    if soft >= wanted {
        return Ok(soft);
    }
    if set_nofile(wanted, wanted.max(hard)).is_ok() {
        return Ok(wanted);
    }
    let best = wanted.min(hard);
    if best > soft && set_nofile(best, hard).is_ok() {
        return Ok(best);
    }
    Ok(soft)
}

/// Redis's `adjustOpenFilesLimit`: make room for `maxclients` clients plus the reserved
/// descriptors. Returns the maxclients the limit allows (lower than asked when it could not be
/// raised enough) and the warnings to log.
pub fn adjust_open_files_limit(maxclients: usize) -> (usize, Vec<String>) {
    let wanted = maxclients as u64 + RESERVED_FDS;
    let mut warnings = Vec::new();
    let got = match raise_nofile(wanted) {
        Ok(n) => n,
        Err(e) => {
            warnings.push(format!(
                "Unable to obtain the current NOFILE limit ({e}), assuming 1024 and setting the max clients \
                 configuration accordingly."
            ));
            1024
        }
    };
    if got >= wanted {
        return (maxclients, warnings);
    }
    let allowed = got.saturating_sub(RESERVED_FDS).max(1) as usize;
    warnings
        .push(format!("You requested maxclients of {maxclients} requiring at least {wanted} max file descriptors."));
    warnings
        .push(format!("Server can't set maximum open files to {wanted} because of OS error: Operation not permitted."));
    warnings.push(format!(
        "Current maximum open files is {got}. maxclients has been reduced to {allowed} to compensate for low \
         ulimit. If you need higher maxclients increase 'ulimit -n'."
    ));
    (allowed, warnings)
}

/// Redis's `anetKeepAlive(fd, interval)`: SO_KEEPALIVE on, first probe after `interval` seconds of
/// idleness, then probes every interval/3 seconds, the peer declared dead after 3 unanswered ones.
pub fn set_keepalive(stream: &impl std::os::fd::AsFd, interval_s: u64) -> io::Result<()> {
    let idle = Duration::from_secs(interval_s.clamp(1, i32::MAX as u64));
    let params = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval((idle / 3).max(Duration::from_secs(1)))
        .with_retries(3);
    socket2::SockRef::from(stream).set_tcp_keepalive(&params)
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn raise_nofile_reaches_the_request_or_the_hard_limit() {
        let (soft, hard) = nofile_limit().unwrap();
        assert!(soft <= hard);
        let want = (soft + 64).min(hard);
        let got = raise_nofile(want).unwrap();
        assert!(got >= want, "asked {want}, got {got}");
        assert_eq!(nofile_limit().unwrap().0, got);
        // Asking for less never lowers it.
        assert_eq!(raise_nofile(16).unwrap(), got);
    }

    #[test]
    fn adjust_reduces_maxclients_only_when_the_limit_cannot_be_raised() {
        let (_, hard) = nofile_limit().unwrap();
        let (n, warnings) = adjust_open_files_limit(100);
        assert_eq!((n, warnings.len()), (100, 0));
        if hard < u64::MAX / 2 {
            // Unprivileged: the hard limit caps it and the warning says by how much.
            let ask = (hard * 2) as usize;
            let (n, warnings) = adjust_open_files_limit(ask);
            if n < ask {
                assert_eq!(n as u64, nofile_limit().unwrap().0 - RESERVED_FDS);
                assert!(warnings[2].contains("maxclients has been reduced to"), "{warnings:?}");
            }
        }
    }

    #[test]
    fn keepalive_sets_the_probe_timing_redis_uses() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let sock = socket2::SockRef::from(&s);
        assert!(!sock.keepalive().unwrap());
        set_keepalive(&s, 300).unwrap();
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(300));
        assert_eq!(sock.tcp_keepalive_interval().unwrap(), Duration::from_secs(100));
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), 3);
    }
}
