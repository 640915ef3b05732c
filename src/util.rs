//! Integer parsing exactly as Redis's `util.c` does it (`string2ll`) and the clock (the glob matcher
//! is `crate::glob`). Floats (`string2ld`, `ld2string`) are in `longdouble`. Also
//! the small pieces the hot paths share: FNV-1a, integer text without allocation, and the
//! per-thread slot that shards counters.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// C's `isspace` in the "C" locale.
pub fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What C's `strto*` functions skip before the digits: leading `isspace` bytes and one optional
/// sign. Returns the index of the first digit (or other byte) and whether the sign was `-`.
pub fn c_sign_prefix(s: &[u8]) -> (usize, bool) {
    let mut i = s.iter().take_while(|&&b| is_c_space(b)).count();
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    (i, negative)
}

/// Parse a signed 64-bit integer the way Redis's `string2ll` does: no sign other than a leading `-`,
/// no leading zeros (except "0" itself), no spaces, no trailing bytes, no overflow.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 { None } else { Some((v as i64).wrapping_neg()) }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

pub use crate::glob::glob_match;

/// An I/O error worded as C's `strerror` words it (Redis's MISCONF reply and log lines): Rust's
/// " (os error N)" suffix removed.
pub fn os_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text.strip_suffix(&format!(" (os error {code})")).map_or(text.clone(), str::to_string),
        None => text,
    }
}

/// The current Unix time in milliseconds.
/// Wall-clock time in microseconds since the epoch (MONITOR lines).
pub fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// FNV-1a's offset basis: the hash of no bytes.
pub const FNV_OFFSET: u64 = 0xcbf29ce484222325;

/// FNV-1a: continue hash `h` over `bytes` (start from [`FNV_OFFSET`]).
pub fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// FNV-1a as a `Hasher`, for small tables that every request reads (the command index): short keys,
/// no adversary (the keys are fixed), so SipHash's per-call setup is wasted there.
#[derive(Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(FNV_OFFSET)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = fnv1a(self.0, bytes);
    }
}

/// [`Fnv`] for `HashMap::with_hasher`.
pub type FnvBuild = std::hash::BuildHasherDefault<Fnv>;

/// A small number of this thread's own, handed out round robin on first use: the shard index of
/// per-thread counters (take it modulo the shard count), so that each core writes its own cache
/// line. Never allocates (the allocator's counters use it): a const thread-local without a
/// destructor, read with `try_with` (a thread being torn down gets 0; any shard keeps a sum exact).
pub fn thread_slot() -> usize {
    own_thread_slot().unwrap_or(0)
}

/// This thread's slot, distinct from every other thread's (never handed out twice), or None for
/// a thread being torn down.
pub fn own_thread_slot() -> Option<usize> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::thread_local! {
        static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SLOT.try_with(|s| {
        if s.get() == usize::MAX {
            // Relaxed: only a distinct number is needed.
            s.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        s.get()
    })
    .ok()
}

/// `n` in decimal, in a stack buffer (no allocation): integer replies, INCR's record delta.
pub fn i64_text(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let i = digits(n.unsigned_abs(), buf);
    if n < 0 {
        buf[i - 1] = b'-';
        return &buf[i - 1..];
    }
    &buf[i..]
}

/// `n` in decimal, in a stack buffer (no allocation): stream delivery counts and times in records.
pub fn u64_text(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let i = digits(n, buf);
    &buf[i..]
}

/// The decimal digits of `v` at the end of `buf` (at least one byte left before them for a sign,
/// as 20 digits are only reached by values above i64's range); where they start.
fn digits(mut v: u64, buf: &mut [u8; 20]) -> usize {
    // Two digits per division, from a table (as Redis's `ull2string`): half the divisions.
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
                                2021222324252627282930313233343536373839\
                                4041424344454647484950515253545556575859\
                                6061626364656667686970717273747576777879\
                                8081828384858687888990919293949596979899";
    let mut i = buf.len();
    while v >= 100 {
        let d = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[d..d + 2]);
    }
    if v >= 10 {
        let d = v as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[d..d + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    i
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn parse_i64_rejects_what_string2ll_rejects() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-42"), Some(-42));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"+1", b"01", b"-0", b" 1", b"1 ", b"9223372036854775808", b"1.0", b"-", b"1e3"] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn i64_text_matches_to_string() {
        let mut buf = [0u8; 20];
        for n in [0, 1, -1, 9, 10, -10, 99, 100, -101, 12345, 123456, i64::MAX, i64::MIN, i64::MIN + 1] {
            assert_eq!(i64_text(n, &mut buf), n.to_string().as_bytes());
        }
        for n in (-100_000..100_000).step_by(7) {
            assert_eq!(i64_text(n, &mut buf), n.to_string().as_bytes());
        }
        for n in [0, 7, 10, 1_700_000_000_000, i64::MAX as u64 + 1, u64::MAX] {
            assert_eq!(u64_text(n, &mut buf), n.to_string().as_bytes());
        }
    }

    #[test]
    fn fnv_hasher_is_fnv1a_and_tells_names_apart() {
        use std::hash::{BuildHasher, Hasher};
        let mut h = Fnv::default();
        h.write(b"get");
        assert_eq!(h.finish(), fnv1a(FNV_OFFSET, b"get"));
        let b = FnvBuild::default();
        assert_ne!(b.hash_one("get"), b.hash_one("set"));
    }

    #[test]
    fn thread_slots_differ_between_threads_and_stay_put() {
        let mine = thread_slot();
        assert_eq!(thread_slot(), mine);
        let other = std::thread::spawn(thread_slot).join().unwrap();
        assert_ne!(other, mine);
    }
}

/// Redis's `sdscatrepr`: `arg` double-quoted, `\\` `\"` `\n` `\r` `\t` `\a` `\b` escaped, other
/// bytes outside printable ASCII as `\xNN` (MONITOR lines, config rewrites).
pub fn cat_repr(arg: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in arg {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'\\', b'x', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            }
        }
    }
    out.push(b'"');
}
