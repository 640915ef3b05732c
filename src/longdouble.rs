//! Redis computes INCRBYFLOAT in C `long double` (x87 80-bit extended precision on x86-64), parses
//! with `strtold` and prints with `%.17Lf`. f64 gives different digits near 2^63 and for many
//! decimals, so this module emulates the 80-bit format exactly (LLVM's APFloat, via `rustc_apfloat`)
//! and formats its exact binary value the way glibc's printf does (round half to even).

use rustc_apfloat::ieee::X87DoubleExtended;
use rustc_apfloat::{Float, Round};

/// An x87 80-bit extended-precision value.
#[derive(Clone, Copy, Debug)]
pub struct LongDouble(X87DoubleExtended);

impl LongDouble {
    /// Parse as Redis's `string2ld` does: `strtold` syntax (decimal, hex `0x1p3`, `inf`,
    /// `infinity`), no leading space, nothing left over, no NaN.
    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() >= 5 * 1024 || s[0].is_ascii_whitespace() {
            return None;
        }
        let text = std::str::from_utf8(s).ok()?;
        let (neg, body) = match text.as_bytes()[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        if body.is_empty() || body.starts_with(['+', '-']) {
            return None;
        }
        let lower = body.to_ascii_lowercase();
        let abs = if lower == "inf" || lower == "infinity" {
            X87DoubleExtended::INFINITY
        } else if lower.starts_with("nan")
            || !body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'))
        {
            return None;
        } else {
            if !lower.starts_with("0x") && !decimal_exponent_ok(&lower) {
                return None;
            }
            // strtold takes hex without a binary exponent (`0x10` is 16); the parser needs one.
            let body = if lower.starts_with("0x") && !lower.contains('p') {
                std::borrow::Cow::Owned(format!("{body}p0"))
            } else {
                std::borrow::Cow::Borrowed(body)
            };
            let v = X87DoubleExtended::from_str_r(&body, Round::NearestTiesToEven).ok()?.value;
            // strtold reports ERANGE for overflow to infinity and underflow to zero: Redis rejects both.
            let mantissa = lower.split(['e', 'p']).next().unwrap_or("").trim_start_matches("0x");
            if v.is_infinite() || (v.is_zero() && mantissa.bytes().any(|b| b.is_ascii_alphanumeric() && b != b'0')) {
                return None;
            }
            v
        };
        let v = if neg { -abs } else { abs };
        if v.is_nan() { None } else { Some(LongDouble(v)) }
    }

    /// The exact extended value of a double (C's implicit `double` to `long double` conversion).
    pub fn from_f64(x: f64) -> LongDouble {
        use rustc_apfloat::FloatConvert;
        let d = rustc_apfloat::ieee::Double::from_bits(u128::from(x.to_bits()));
        let mut loses_info = false;
        LongDouble(d.convert(&mut loses_info).value)
    }

    /// `self + other`, rounded to nearest even as the x87 FPU does.
    pub fn plus(self, other: LongDouble) -> LongDouble {
        LongDouble(self.0.add_r(other.0, Round::NearestTiesToEven).value)
    }

    pub fn is_finite(self) -> bool {
        !self.0.is_nan() && !self.0.is_infinite()
    }

    /// `%.17Lf`, then trailing zeros and a trailing dot removed, and "-0" printed "0" (Redis's
    /// LD_STR_HUMAN).
    pub fn to_human_string(self) -> String {
        let bits = self.0.to_bits();
        let negative = (bits >> 79) & 1 == 1;
        let exp_field = ((bits >> 64) & 0x7fff) as i64;
        let mantissa = bits as u64;
        let sign = if negative { "-" } else { "" };
        if exp_field == 0x7fff {
            return format!("{sign}inf");
        }
        // value = mantissa * 2^e2 (denormals use the minimum exponent).
        let e2 = exp_field.max(1) - 16383 - 63;
        let text = if e2 >= 0 {
            big_shifted_decimal(mantissa, e2 as u32)
        } else {
            const SCALE: u128 = 100_000_000_000_000_000; // 10^17
            let n = mantissa as u128 * SCALE;
            let shift = (-e2) as u32;
            let q = if shift >= 128 {
                0
            } else {
                let q = n >> shift;
                let rem = n & ((1u128 << shift) - 1);
                let half = 1u128 << (shift - 1);
                if rem > half || (rem == half && q & 1 == 1) { q + 1 } else { q }
            };
            format!("{}.{:017}", q / SCALE, q % SCALE)
        };
        let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
        // Negative zero, or a negative value that rounds to zero at 17 decimals: Redis (since 7.0)
        // turns the "-0" it printed into "0".
        if text == "0" { "0".to_string() } else { format!("{sign}{text}") }
    }
}

/// strtold stops before an exponent without digits ("1e", "1e+"), leaving bytes unparsed: invalid.
fn decimal_exponent_ok(lower: &str) -> bool {
    match lower.split_once('e') {
        None => true,
        Some((_, exp)) => {
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }
    }
}

/// Decimal text of `m * 2^shift` (an integer), with a small base-10^9 bignum.
fn big_shifted_decimal(m: u64, shift: u32) -> String {
    const BASE: u64 = 1_000_000_000;
    let mut limbs: Vec<u64> = vec![m % BASE, (m / BASE) % BASE, m / BASE / BASE]; // little-endian
    for _ in 0..shift {
        let mut carry = 0;
        for l in limbs.iter_mut() {
            let v = *l * 2 + carry;
            *l = v % BASE;
            carry = v / BASE;
        }
        if carry > 0 {
            limbs.push(carry);
        }
    }
    while limbs.len() > 1 && *limbs.last().unwrap_or(&1) == 0 {
        limbs.pop();
    }
    let mut s = limbs.last().map(|l| l.to_string()).unwrap_or_default();
    for l in limbs.iter().rev().skip(1) {
        s.push_str(&format!("{l:09}"));
    }
    s
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn incr(a: &str, b: &str) -> String {
        LongDouble::parse(a.as_bytes()).unwrap().plus(LongDouble::parse(b.as_bytes()).unwrap()).to_human_string()
    }

    #[test]
    fn sums_print_exactly_as_redis_long_double() {
        // Figures taken from redis-server 7.0.15 on x86-64.
        assert_eq!(incr("9223372036854775807", "-2"), "9223372036854775805");
        assert_eq!(incr("9223372036854775807", "1e2"), "9223372036854775907");
        assert_eq!(incr("-9223372036854775808", "-2"), "-9223372036854775810");
        assert_eq!(incr("-9223372036854775808", "1.5"), "-9223372036854775806.5");
        assert_eq!(incr("10.5", "0.1"), "10.6");
        assert_eq!(incr("0.1", "0.2"), "0.3");
        assert_eq!(incr("3.0", "-2"), "1");
        assert_eq!(incr("5", "0"), "5");
        assert_eq!(incr("1", "-1"), "0");
    }

    #[test]
    fn negative_zero_and_tiny_negatives_print_as_zero() {
        // redis-server 7.0.15: each of these replies and stores "0".
        assert_eq!(incr("-0.0", "0"), "0");
        assert_eq!(incr("0", "-0"), "0");
        assert_eq!(incr("-0", "-0"), "0");
        assert_eq!(incr("0", "-0.000000000000000001"), "0");
        assert_eq!(incr("0", "-0.0000000000000000049"), "0");
        assert_eq!(incr("1e-30", "-2e-30"), "0");
        // ... while a negative that survives 17 decimals keeps its sign.
        assert_eq!(incr("0", "-0.0000000000000000051"), "-0.00000000000000001");
    }

    #[test]
    fn parse_rejects_what_string2ld_rejects() {
        for bad in [
            &b""[..],
            b" 1",
            b"abc",
            b"nan",
            b"1x",
            b"--1",
            b"+-1",
            b"1 ",
            b"1e",
            b"1e+",
            b"1e2e3",
            b"1e5000",
            b"-1e5000",
            b"1e-5000",
        ] {
            assert!(LongDouble::parse(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
        for good in [
            &b"1e2"[..],
            b"1e-10",
            b"1E+3",
            b"+1.5",
            b"-2",
            b".5",
            b"1.",
            b"inf",
            b"-Infinity",
            b"0x1p3",
            b"0",
            b"0.000",
            b"1e-4000",
        ] {
            assert!(LongDouble::parse(good).is_some(), "{:?}", String::from_utf8_lossy(good));
        }
        assert!(!LongDouble::parse(b"inf").unwrap().is_finite());
    }

    #[test]
    fn hex_without_a_binary_exponent_parses_as_strtold_does() {
        // redis-server 7.0.15: INCRBYFLOAT k 0x10 -> "16", HINCRBYFLOAT h f 0x1.8 -> "1.5".
        assert_eq!(LongDouble::parse(b"0x10").unwrap().to_human_string(), "16");
        assert_eq!(LongDouble::parse(b"-0x1.8").unwrap().to_human_string(), "-1.5");
        assert!(LongDouble::parse(b"0x").is_none());
    }
}
