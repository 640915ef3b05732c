//! Operating-system limits the server adjusts at startup and on each connection: the open-files
//! limit (RLIMIT_NOFILE, sized for `maxclients` as Redis's `adjustOpenFilesLimit` does) and TCP
//! keepalive (Redis's `anetKeepAlive`). Neither has a safe API in `std` or tokio, so this module
//! holds the crate's only FFI calls, each a plain libc call on values it owns.

use std::io;
use std::os::fd::RawFd;

/// File descriptors Redis keeps for itself beyond one per client (CONFIG_MIN_RESERVED_FDS).
pub const RESERVED_FDS: u64 = 32;

/// The current (soft, hard) open-files limits.
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid, writable rlimit owned by this frame for the whole call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

fn set_nofile(soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: `lim` is a valid rlimit that lives for the whole call; setrlimit only reads it.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    if rc != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
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

fn setsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a live c_int for the whole call and the length passed is its size; the
    // kernel validates `fd` (an invalid one is an EBADF error, not undefined behaviour).
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Read an integer socket option.
pub fn getsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live, writable and correctly sized for the whole call.
    let rc = unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut libc::c_int).cast(), &mut len) };
    if rc != 0 { Err(io::Error::last_os_error()) } else { Ok(value) }
}

/// Redis's `anetKeepAlive(fd, interval)`: SO_KEEPALIVE on, first probe after `interval` seconds of
/// idleness, then probes every interval/3 seconds, the peer declared dead after 3 unanswered ones.
pub fn set_keepalive(fd: RawFd, interval_s: u64) -> io::Result<()> {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    let idle = interval_s.clamp(1, i32::MAX as u64) as libc::c_int;
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, idle)?;
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, (idle / 3).max(1))?;
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3)?;
    Ok(())
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use std::os::fd::AsRawFd;

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
        let fd = s.as_raw_fd();
        assert_eq!(getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE).unwrap(), 0);
        set_keepalive(fd, 300).unwrap();
        assert_eq!(getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE).unwrap(), 1);
        assert_eq!(getsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE).unwrap(), 300);
        assert_eq!(getsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL).unwrap(), 100);
        assert_eq!(getsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT).unwrap(), 3);
        assert!(set_keepalive(-1, 10).is_err());
    }
}
