//! Score text, exactly as Redis reads and writes it: `strtod` (decimal and hex floats, `inf`,
//! `infinity`), the two ways Redis checks what it parsed (`getDoubleFromObject` for ZADD/ZINCRBY
//! scores, `zslParseRange` for range bounds), and `%.17g` for replies and the AOF (Redis 7.0's
//! `addReplyDouble`; it reads back as the same double). Mirrors `util.c`/`object.c`/`t_zset.c`.

use crate::util::{c_sign_prefix, is_c_space};

/// What `strtod` made of a prefix of its input.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Strtod {
    value: f64,
    /// Bytes consumed (0: no conversion, as C's `endptr == nptr`).
    consumed: usize,
    /// C's `errno == ERANGE`: the value overflowed to infinity or underflowed to zero.
    range_error: bool,
}

/// Up to this many decimal digits an integer converts to a double exactly (10^15 < 2^53).
const EXACT_INT_DIGITS: usize = 15;

/// The value of ASCII `digits` (at most [`EXACT_INT_DIGITS`] of them).
fn digits_value(digits: &[u8]) -> u64 {
    digits.iter().fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'))
}

/// `s` as a double when it is an optional sign and 1 to [`EXACT_INT_DIGITS`] digits, nothing
/// else: what `strtod` reads from it, exactly, without its general walk.
fn exact_int(s: &[u8]) -> Option<f64> {
    let (negative, digits) = match s.split_first() {
        Some((b'-', d)) => (true, d),
        Some((b'+', d)) => (false, d),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > EXACT_INT_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits_value(digits) as f64;
    Some(if negative { -v } else { v })
}

/// glibc's `strtod` over `s` (stopping where C would: at the first byte that does not continue a
/// number, a NUL included).
fn strtod(s: &[u8]) -> Strtod {
    let none = Strtod { value: 0.0, consumed: 0, range_error: false };
    let (i, negative) = c_sign_prefix(s);
    let rest = &s[i..];
    let sign = |v: f64| if negative { -v } else { v };
    let starts = |word: &[u8]| rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word);
    if starts(b"inf") {
        let n = if starts(b"infinity") { 8 } else { 3 };
        return Strtod { value: sign(f64::INFINITY), consumed: i + n, range_error: false };
    }
    if starts(b"nan") {
        let mut n = 3;
        if rest.get(3) == Some(&b'(') {
            let inner = rest[4..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count();
            if rest.get(4 + inner) == Some(&b')') {
                n = 5 + inner;
            }
        }
        return Strtod { value: f64::NAN, consumed: i + n, range_error: false };
    }
    if starts(b"0x") {
        if let Some((value, n, range_error)) = hex_float(&rest[2..]) {
            return Strtod { value: sign(value), consumed: i + 2 + n, range_error };
        }
        // "0x" without a hex mantissa: C reads the "0" only.
        return Strtod { value: sign(0.0), consumed: i + 1, range_error: false };
    }
    let int_digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut n = int_digits;
    let mut frac_digits = 0;
    if rest.get(n) == Some(&b'.') {
        frac_digits = rest[n + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        n += 1 + frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return none;
    }
    if matches!(rest.get(n), Some(b'e' | b'E')) {
        let mut e = n + 1;
        if matches!(rest.get(e), Some(b'+' | b'-')) {
            e += 1;
        }
        let exp_digits = rest[e.min(rest.len())..].iter().take_while(|b| b.is_ascii_digit()).count();
        if exp_digits > 0 {
            n = e + exp_digits;
        }
    }
    if n == int_digits && n <= EXACT_INT_DIGITS {
        // Plain digits (no point, no exponent): an integer below 10^15 < 2^53 is a double
        // exactly, which is what strtod's correct rounding gives too (ZADD's usual scores,
        // redis-benchmark's among them), without the text round trip.
        return Strtod { value: sign(digits_value(&rest[..n]) as f64), consumed: i + n, range_error: false };
    }
    let text = std::str::from_utf8(&rest[..n]).expect("ASCII digits");
    let value: f64 = text.parse().expect("a decimal float in Rust's grammar");
    let frac = &rest[(int_digits + 1).min(rest.len())..][..frac_digits];
    let mantissa_nonzero = rest[..int_digits].iter().chain(frac).any(|&b| b != b'0');
    let range_error = value.is_infinite() || (value == 0.0 && mantissa_nonzero);
    Strtod { value: sign(value), consumed: i + n, range_error }
}

/// A C99 hex float mantissa and optional binary exponent (after "0x"), correctly rounded:
/// `(value, bytes consumed, range error)`, or None when no hex digit starts it.
fn hex_float(s: &[u8]) -> Option<(f64, usize, bool)> {
    let mut mantissa: u64 = 0;
    let mut exp2: i64 = 0;
    let mut sticky = false;
    let mut digits = 0;
    let mut i = 0;
    let mut seen_point = false;
    while i < s.len() {
        let b = s[i];
        if b == b'.' && !seen_point {
            seen_point = true;
            i += 1;
            continue;
        }
        let Some(d) = (b as char).to_digit(16) else { break };
        digits += 1;
        if mantissa >> 60 == 0 {
            mantissa = mantissa << 4 | u64::from(d);
            if seen_point {
                exp2 -= 4;
            }
        } else {
            sticky |= d != 0;
            if !seen_point {
                exp2 += 4;
            }
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if matches!(s.get(i), Some(b'p' | b'P')) {
        let mut e = i + 1;
        let negative = s.get(e) == Some(&b'-');
        if matches!(s.get(e), Some(b'+' | b'-')) {
            e += 1;
        }
        let n = s[e.min(s.len())..].iter().take_while(|b| b.is_ascii_digit()).count();
        if n > 0 {
            let v = s[e..e + n].iter().fold(0i64, |acc, b| (acc * 10 + i64::from(b - b'0')).min(1 << 20));
            exp2 += if negative { -v } else { v };
            i = e + n;
        }
    }
    if mantissa == 0 {
        return Some((0.0, i, false));
    }
    let bits = 64 - i64::from(mantissa.leading_zeros());
    let top = exp2 + bits - 1; // the value is in [2^top, 2^(top+1))
    if top > 1023 {
        return Some((f64::INFINITY, i, true));
    }
    let precision = if top >= -1022 { 53 } else { 53 - (-1022 - top) };
    let drop = bits - precision;
    let (kept, scale) = if drop <= 0 {
        (mantissa << -drop, exp2 + drop)
    } else if drop >= 64 {
        (0, exp2 + drop) // below half the smallest subnormal: rounds to zero
    } else {
        let rem = mantissa & ((1u64 << drop) - 1);
        let half = 1u64 << (drop - 1);
        let mut kept = mantissa >> drop;
        if rem > half || (rem == half && (sticky || kept & 1 == 1)) {
            kept += 1;
        }
        (kept, exp2 + drop)
    };
    let value = kept as f64 * pow2(scale);
    Some((value, i, value.is_infinite() || value == 0.0))
}

/// 2^k as a double, exact for every k a double can hold (0 below the subnormals).
fn pow2(k: i64) -> f64 {
    if k > 1023 {
        f64::INFINITY
    } else if k >= -1022 {
        f64::from_bits(((k + 1023) as u64) << 52)
    } else if k >= -1074 {
        f64::from_bits(1u64 << (k + 1074))
    } else {
        0.0
    }
}

/// A ZADD/ZINCRBY score (or WEIGHTS value) as Redis's `getDoubleFromObject` accepts it: the whole
/// argument is one `strtod` number with no leading space, not NaN, and neither overflowing nor
/// underflowing to zero. `None` means `ERR value is not a valid float`.
pub fn parse_score(s: &[u8]) -> Option<f64> {
    if let Some(v) = exact_int(s) {
        return Some(v);
    }
    if s.is_empty() || is_c_space(s[0]) {
        return None;
    }
    let r = strtod(s);
    let overflow = r.range_error && (r.value.is_infinite() || r.value == 0.0);
    (r.consumed == s.len() && !overflow && !r.value.is_nan()).then_some(r.value)
}

/// A SORT weight as `sortCommandGeneric` reads one: `strtod` over the whole text (leading spaces
/// and the empty string, 0, pass), no range error, not NaN. `None`: "One or more scores can't be
/// converted into double".
pub fn parse_sort_weight(s: &[u8]) -> Option<f64> {
    // C stops at a NUL: `eptr[0] == '\0'` there.
    let s = &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())];
    let r = strtod(s);
    (r.consumed == s.len() && !r.range_error && !r.value.is_nan()).then_some(r.value)
}

/// One bound of a score range as `zslParseRange` reads it: an optional `(` (exclusive), then
/// `strtod` up to the end or the first NUL; leading spaces, overflow and the empty string (0)
/// pass, NaN does not. `(value, exclusive)`, or None (`ERR min or max is not a float`).
pub fn parse_score_bound(s: &[u8]) -> Option<(f64, bool)> {
    let (exclusive, s) = match s.first() {
        Some(b'(') => (true, &s[1..]),
        _ => (false, s),
    };
    let s = &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())];
    let r = strtod(s);
    (r.consumed == s.len() && !r.value.is_nan()).then_some((r.value, exclusive))
}

/// A score as Redis 7.0 replies with it (and as we log it to the AOF): C's `%.17g`, `inf`,
/// `-inf`, `-0`. Reads back through [`parse_score`] as the very same double.
pub fn format_score(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Integers below 2^53 are exact and print as themselves under %.17g (fewer than 17 digits):
    // the common case (timestamps, counters), without the exact float formatter.
    if x.fract() == 0.0 && x.abs() < 9007199254740992.0 {
        return (x as i64).to_string();
    }
    // Rust's `{:e}` is exact and correctly rounded: 17 significant digits and the exponent.
    let sci = format!("{:.16e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let mut out = String::with_capacity(24);
    if x < 0.0 {
        out.push('-');
    }
    let trim = |d: &[u8]| -> String {
        let end = d.iter().rposition(|&b| b != b'0').map_or(0, |p| p + 1);
        String::from_utf8(d[..end].to_vec()).expect("ASCII")
    };
    if !(-4..17).contains(&exp) {
        out.push(digits[0] as char);
        let frac = trim(&digits[1..]);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(&frac);
        }
        out.push_str(&format!("e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs()));
    } else if exp >= 0 {
        let point = exp as usize + 1;
        out.push_str(std::str::from_utf8(&digits[..point]).expect("ASCII"));
        let frac = trim(&digits[point..]);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(&frac);
        }
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(&trim(&digits));
    }
    out
}

/// A score's text exactly as [`format_score`] writes it, in a stack buffer: integers below 2^53
/// (the common case: timestamps, counters, redis-benchmark's scores) without allocating or
/// going through `fmt`; other values through [`format_score`], copied.
pub struct ScoreText {
    buf: [u8; 32],
    len: u8,
}

impl ScoreText {
    pub fn new(x: f64) -> ScoreText {
        let mut t = ScoreText { buf: [0; 32], len: 0 };
        // -0.0 is "-0" (format_score's special case); every other integral value in range prints
        // as itself.
        if x.fract() == 0.0 && x.abs() < 9007199254740992.0 && !(x == 0.0 && x.is_sign_negative()) {
            let mut digits = [0u8; 20];
            let d = crate::util::i64_text(x as i64, &mut digits);
            t.buf[..d.len()].copy_from_slice(d);
            t.len = d.len() as u8;
        } else {
            let s = format_score(x);
            // %.17g is at most 24 bytes ("-1.2345678901234567e-308").
            t.buf[..s.len()].copy_from_slice(s.as_bytes());
            t.len = s.len() as u8;
        }
        t
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each checked against redis-server 7.0.15: `ZADD z <text> a` then `ZSCORE z a` (in the
    /// skiplist encoding for "-0"), or the error.
    #[test]
    fn zadd_scores_parse_and_print_as_redis() {
        let cases: &[(&str, Option<&str>)] = &[
            ("0.1", Some("0.10000000000000001")),
            ("1.5", Some("1.5")),
            ("1", Some("1")),
            ("-0", Some("-0")),
            ("0", Some("0")),
            ("1e20", Some("1e+20")),
            ("1e-5", Some("1.0000000000000001e-05")),
            ("0.0001", Some("0.0001")),
            ("123456789012345678", Some("1.2345678901234568e+17")),
            ("1e17", Some("1e+17")),
            ("1e16", Some("10000000000000000")),
            ("3.14159", Some("3.1415899999999999")),
            ("0x10", Some("16")),
            ("inf", Some("inf")),
            ("+inf", Some("inf")),
            ("-inf", Some("-inf")),
            ("infinity", Some("inf")),
            ("1e-310", Some("9.9999999999999694e-311")),
            ("1.0e3", Some("1000")),
            ("+5", Some("5")),
            (".5", Some("0.5")),
            ("5.", Some("5")),
            ("-1e300", Some("-1.0000000000000001e+300")),
            ("1e400", None),
            ("1e-400", None),
            (" 1", None),
            ("1 ", None),
            ("", None),
            ("nan", None),
            ("1e", None),
            ("0x", None),
            ("abc", None),
            ("1\0", None),
        ];
        for (text, want) in cases {
            let got = parse_score(text.as_bytes()).map(format_score);
            assert_eq!(got.as_deref(), *want, "score {text:?}");
        }
    }

    /// The plain-integer shortcut gives what the general parse gives, at and past its 15 digits,
    /// with signs, leading zeros and anything after the digits.
    #[test]
    fn integer_scores_match_the_general_parse() {
        let general = |t: &str| {
            let (i, neg) = c_sign_prefix(t.as_bytes());
            let digits = t[i..].bytes().take_while(u8::is_ascii_digit).count();
            let v: f64 = t[i..i + digits].parse().unwrap();
            (if neg { -v } else { v }, i + digits)
        };
        for t in [
            "0",
            "-0",
            "+0",
            "7",
            "-7",
            "000000012345",
            "999999999999999",
            "-999999999999999",
            "100000000000000",
            "9007199254740993",
            "1234567890123456789",
            "12abc",
            "-3 ",
            "00000000000000000000001",
        ] {
            let r = strtod(t.as_bytes());
            let (v, consumed) = general(t);
            assert_eq!((r.value.to_bits(), r.consumed, r.range_error), (v.to_bits(), consumed, false), "{t:?}");
        }
        assert_eq!(parse_score(b"-0").map(f64::to_bits), Some((-0.0f64).to_bits()));
        assert_eq!(parse_score(b"000000012345"), Some(12345.0));
        assert_eq!(parse_score(b"9007199254740993"), Some(9007199254740992.0));
        assert_eq!(parse_score(b"12 "), None);
        for t in ["0", "-0", "+12", "-999999999999999", "000000012345", "1234567890123456", "-", "+", "", "1-", "--1"] {
            let r = strtod(t.as_bytes());
            let general = (r.consumed == t.len() && r.consumed > 0).then_some(r.value.to_bits());
            assert_eq!(parse_score(t.as_bytes()).map(f64::to_bits), general, "{t:?}");
        }
    }

    #[test]
    fn hex_floats_round_like_strtod() {
        assert_eq!(parse_score(b"0x1p-1074"), Some(f64::from_bits(1)));
        assert_eq!(parse_score(b"0x1p-1075"), None); // underflows to zero: ERANGE
        assert_eq!(parse_score(b"0x1.8p1"), Some(3.0));
        assert_eq!(parse_score(b"-0x.8"), Some(-0.5));
        assert_eq!(parse_score(b"0x1.fffffffffffff8p0"), Some(2.0)); // tie rounds to even
        assert_eq!(parse_score(b"0x1.fffffffffffff7p0"), Some(f64::from_bits(0x3FFF_FFFF_FFFF_FFFF)));
        assert_eq!(parse_score(b"0x1p1024"), None);
        assert_eq!(parse_score(b"0x1fffffffffffff"), Some(9007199254740991.0));
        assert_eq!(parse_score(b"0x20000000000001"), Some(9007199254740992.0));
        assert_eq!(parse_score(b"0x20000000000003"), Some(9007199254740996.0));
    }

    /// Checked against redis-server 7.0.15 with `ZRANGEBYSCORE` over scores 0, 1, 2, 16.
    #[test]
    fn range_bounds_parse_as_zsl_parse_range() {
        assert_eq!(parse_score_bound(b""), Some((0.0, false)));
        assert_eq!(parse_score_bound(b"("), Some((0.0, true)));
        assert_eq!(parse_score_bound(b" 1"), Some((1.0, false)));
        assert_eq!(parse_score_bound(b"( 1"), Some((1.0, true)));
        assert_eq!(parse_score_bound(b"1 "), None);
        assert_eq!(parse_score_bound(b" (1"), None);
        assert_eq!(parse_score_bound(b"1e400"), Some((f64::INFINITY, false)));
        assert_eq!(parse_score_bound(b"(1e400"), Some((f64::INFINITY, true)));
        assert_eq!(parse_score_bound(b"1e-400"), Some((0.0, false)));
        assert_eq!(parse_score_bound(b"0x10"), Some((16.0, false)));
        assert_eq!(parse_score_bound(b"(0x1p0"), Some((1.0, true)));
        assert_eq!(parse_score_bound(b"1\0zz"), Some((1.0, false)));
        assert_eq!(parse_score_bound(b"-inf"), Some((f64::NEG_INFINITY, false)));
        assert_eq!(parse_score_bound(b"nan"), None);
        assert_eq!(parse_score_bound(b"((1"), None);
        assert_eq!(parse_score_bound(b"[1"), None);
        assert_eq!(parse_score_bound(b"  "), None);
        assert_eq!(parse_score_bound(b"+"), None);
    }

    /// Every short string over the number alphabet parses or is refused; none panics, and what
    /// parses agrees with Rust's own reading of plain decimals.
    #[test]
    fn number_like_garbage_never_panics() {
        let alphabet = b"019.eE+-xXpPaAfFiInN( \0";
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 9) as usize;
            let s: Vec<u8> =
                (0..len).map(|i| alphabet[((x >> (8 + 5 * i)) % alphabet.len() as u64) as usize]).collect();
            let (a, _) = (parse_score(&s), parse_score_bound(&s));
            if let (Some(v), Ok(text)) = (a, std::str::from_utf8(&s))
                && !text.bytes().any(|b| b.is_ascii_alphabetic())
            {
                assert_eq!(text.parse::<f64>().ok(), Some(v), "{text:?}");
            }
        }
    }

    /// The integer fast path prints what C's `%.17g` prints, on both sides of 2^53 and 1e17.
    #[test]
    fn integral_scores_print_as_c_does() {
        let c = |x: f64| {
            let mut buf = [0u8; 64];
            // SAFETY: `buf` has room for any %.17g output (at most 24 bytes plus the NUL), the
            // format string is NUL-terminated and takes exactly one double.
            let n = unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.17g".as_ptr(), x) };
            String::from_utf8(buf[..n as usize].to_vec()).unwrap()
        };
        let mut cases = vec![1.0, -1.0, 12345.0, 9007199254740991.0, 9007199254740992.0, 9007199254740993.0];
        cases.extend([1e15, 1e16, 99999999999999984.0, 1e17, -1e17, 1e18, 4503599627370496.5]);
        let mut x: u64 = 7;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push((x >> (x % 64)) as i64 as f64);
            cases.push(-((x % 1_000_000_000) as f64));
        }
        cases.extend([0.0, -0.0, 0.5, -2.5, 1e-300, -1.2345678901234567e-308, f64::INFINITY, f64::NEG_INFINITY]);
        cases.extend([f64::NAN, f64::MAX, f64::MIN, 1.0 / 3.0]);
        for d in cases {
            let text = format_score(d);
            assert_eq!(ScoreText::new(d).as_bytes(), text.as_bytes(), "ScoreText {d}");
            if d.is_finite() {
                assert_eq!(text, c(d), "{d}");
            }
        }
    }

    #[test]
    fn formatted_scores_read_back_exactly() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let d = f64::from_bits(x);
            if d.is_nan() {
                continue;
            }
            let text = format_score(d);
            let back = parse_score(text.as_bytes()).expect("reparses");
            assert_eq!(back.to_bits(), d.to_bits(), "{text}");
        }
    }
}
