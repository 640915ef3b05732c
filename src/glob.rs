//! Redis's glob-style pattern matcher (`util.c` `stringmatchlen`), the one matcher behind KEYS,
//! SCAN MATCH, CONFIG GET, COMMAND LIST FILTERBY PATTERN (and later PSUBSCRIBE and CLIENT KILL).
//!
//! # Syntax and results
//! `*` any run of bytes, `?` one byte, `[abc]` `[^abc]` `[a-z]` a class (a reversed range is
//! swapped; `\x` inside a class is `x`; an unterminated class ends at the end of the pattern), `\x`
//! the byte `x` (a trailing `\` is itself). Every quirk of Redis 7.0's matcher is kept, so both
//! servers answer alike on any pattern: an empty string matches only the empty pattern (callers
//! special-case a lone `*`, as Redis's KEYS and SCAN do), range bounds compare as C's signed
//! `char`, an escape inside a class compares case-sensitively even without case, and a pattern
//! that needs more than 1000 nested stars matches nothing (Redis's guard against abusive patterns).
//!
//! # Bounded time
//! Redis's matcher recurses at every `*`; since CVE-2022-36021 it gives up as soon as the rest of
//! the pattern failed at every position after one star (a longer match for an earlier star would
//! only start the rest later). That is the classic two-pointer match: remember the last star only,
//! and on a mismatch let it swallow one more byte. Each pattern token is compared at most once per
//! (star restart, byte) pair: O(pattern × string) time, no recursion, whatever the pattern.

/// Stars nested deeper than this match nothing (Redis's `nesting > 1000` guard).
const MAX_STAR_NESTING: usize = 1000;

/// Whether `string` matches the glob `pattern` (ASCII case folded when `nocase`).
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    if string.is_empty() {
        return pattern.is_empty();
    }
    let (p, s) = (pattern, string);
    let (mut pi, mut si) = (0, 0);
    // The last star seen: where the pattern resumes after it, where in the string its match ends
    // (the rest was last tried from there), and how many stars lead to it (its nesting in Redis's
    // recursion).
    let mut star: Option<(usize, usize, usize)> = None;
    loop {
        // `si < s.len()` holds here: the string ran out only after a token (checked below).
        if pi == p.len() {
            // Pattern done, string left: try a longer match for the last star.
        } else if p[pi] == b'*' {
            while pi + 1 < p.len() && p[pi + 1] == b'*' {
                pi += 1;
            }
            if pi + 1 == p.len() {
                return true;
            }
            let nesting = star.map_or(0, |(_, _, n)| n) + 1;
            if nesting > MAX_STAR_NESTING {
                return false;
            }
            pi += 1;
            star = Some((pi, si, nesting));
            continue;
        } else if let Some(len) = token_matches(&p[pi..], s[si], nocase) {
            pi += len;
            si += 1;
            if si < s.len() {
                continue;
            }
            while pi < p.len() && p[pi] == b'*' {
                pi += 1;
            }
            if pi == p.len() {
                return true;
            }
        }
        // Mismatch: the last star takes one more byte and the rest starts after it; once that
        // would leave nothing, no earlier star can help either (Redis's `skipLongerMatches`).
        match star {
            Some((after_star, end, nesting)) if end + 1 < s.len() => {
                star = Some((after_star, end + 1, nesting));
                pi = after_star;
                si = end + 1;
            }
            _ => return false,
        }
    }
}

/// Compare the one token at the start of `p` (not a star) with the byte `c`: its length in the
/// pattern if it matches, None if not.
fn token_matches(p: &[u8], c: u8, nocase: bool) -> Option<usize> {
    let eq = |a: u8, b: u8| if nocase { a.eq_ignore_ascii_case(&b) } else { a == b };
    match p[0] {
        b'?' => Some(1),
        b'[' => {
            let (matched, len) = class_matches(p, c, nocase);
            matched.then_some(len)
        }
        b'\\' if p.len() >= 2 => eq(p[1], c).then_some(2),
        b => eq(b, c).then_some(1),
    }
}

/// Match `c` against the class that starts `p` (at its `[`): whether it matches, and how many
/// pattern bytes the class takes (to its `]`, or to the end of an unterminated class).
fn class_matches(p: &[u8], c: u8, nocase: bool) -> (bool, usize) {
    let mut i = 1;
    let not = p.get(i) == Some(&b'^');
    if not {
        i += 1;
    }
    let mut matched = false;
    loop {
        let rest = p.len() - i.min(p.len());
        if rest >= 2 && p[i] == b'\\' {
            // Redis compares an escaped class byte exactly, even when folding case.
            i += 1;
            matched |= p[i] == c;
        } else if rest >= 1 && p[i] == b']' {
            break;
        } else if rest == 0 {
            // Unterminated: the class ends with the pattern.
            return (matched != not, p.len());
        } else if rest >= 3 && p[i + 1] == b'-' {
            // C's signed `char` bounds, as Redis compares them.
            let (mut lo, mut hi, mut x) = (p[i] as i8 as i32, p[i + 2] as i8 as i32, c as i8 as i32);
            if lo > hi {
                std::mem::swap(&mut lo, &mut hi);
            }
            if nocase {
                (lo, hi, x) = (lower(lo), lower(hi), lower(x));
            }
            i += 2;
            matched |= lo <= x && x <= hi;
        } else {
            matched |= if nocase { p[i].eq_ignore_ascii_case(&c) } else { p[i] == c };
        }
        i += 1;
    }
    (matched != not, i + 1)
}

/// C's `tolower` on a `char` value.
fn lower(c: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) { c + 32 } else { c }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    /// Redis 7.0.15's `stringmatchlen_impl`, transcribed statement by statement (recursive, with
    /// `skipLongerMatches` and the nesting guard), as the reference the fast matcher must agree
    /// with. Out-of-range reads of the C string see its NUL terminator.
    fn reference(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
        let mut skip = false;
        reference_impl(pattern, string, nocase, &mut skip, 0)
    }

    fn reference_impl(pat: &[u8], s: &[u8], nocase: bool, skip: &mut bool, nesting: usize) -> bool {
        if nesting > 1000 {
            return false;
        }
        let at = |v: &[u8], i: usize| v.get(i).copied().unwrap_or(0);
        let low = |c: u8| c.to_ascii_lowercase();
        let (mut p, mut pl, mut st, mut sl) = (0usize, pat.len() as isize, 0usize, s.len() as isize);
        while pl > 0 && sl > 0 {
            match at(pat, p) {
                b'*' => {
                    while pl > 0 && at(pat, p + 1) == b'*' {
                        p += 1;
                        pl -= 1;
                    }
                    if pl == 1 {
                        return true;
                    }
                    while sl > 0 {
                        if reference_impl(&pat[p + 1..], &s[st..], nocase, skip, nesting + 1) {
                            return true;
                        }
                        if *skip {
                            return false;
                        }
                        st += 1;
                        sl -= 1;
                    }
                    *skip = true;
                    return false;
                }
                b'?' => {
                    st += 1;
                    sl -= 1;
                }
                b'[' => {
                    p += 1;
                    pl -= 1;
                    let not = at(pat, p) == b'^';
                    if not {
                        p += 1;
                        pl -= 1;
                    }
                    let mut m = false;
                    loop {
                        if at(pat, p) == b'\\' && pl >= 2 {
                            p += 1;
                            pl -= 1;
                            m |= at(pat, p) == s[st];
                        } else if at(pat, p) == b']' {
                            break;
                        } else if pl == 0 {
                            p -= 1;
                            pl += 1;
                            break;
                        } else if pl >= 3 && at(pat, p + 1) == b'-' {
                            let (mut a, mut b) = (at(pat, p) as i8 as i32, at(pat, p + 2) as i8 as i32);
                            let mut c = s[st] as i8 as i32;
                            if a > b {
                                std::mem::swap(&mut a, &mut b);
                            }
                            if nocase {
                                (a, b, c) = (lower(a), lower(b), lower(c));
                            }
                            p += 2;
                            pl -= 2;
                            m |= c >= a && c <= b;
                        } else if nocase {
                            m |= low(at(pat, p)) == low(s[st]);
                        } else {
                            m |= at(pat, p) == s[st];
                        }
                        p += 1;
                        pl -= 1;
                    }
                    if not {
                        m = !m;
                    }
                    if !m {
                        return false;
                    }
                    st += 1;
                    sl -= 1;
                }
                c => {
                    let c = if c == b'\\' && pl >= 2 {
                        p += 1;
                        pl -= 1;
                        at(pat, p)
                    } else {
                        c
                    };
                    let same = if nocase { low(c) == low(s[st]) } else { c == s[st] };
                    if !same {
                        return false;
                    }
                    st += 1;
                    sl -= 1;
                }
            }
            p += 1;
            pl -= 1;
            if sl == 0 {
                while at(pat, p) == b'*' {
                    p += 1;
                    pl -= 1;
                }
                break;
            }
        }
        pl == 0 && sl == 0
    }

    #[test]
    fn glob_matches_redis_syntax() {
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"h[b-a]llo", b"hbllo", false), "a reversed range is swapped");
        assert!(glob_match(b"k\\*", b"k*", false));
        assert!(!glob_match(b"k\\*", b"kx", false));
        assert!(glob_match(b"a*b*c", b"axxbyyc", false));
        assert!(!glob_match(b"a*b", b"ac", false));
        assert!(glob_match(b"", b"", false));
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(!glob_match(b"HELLO", b"hello", false));
        assert!(glob_match(b"ab[cd", b"abd", false), "an unterminated class ends with the pattern");
        assert!(glob_match(b"a\\", b"a\\", false), "a trailing backslash is itself");
    }

    #[test]
    fn glob_keeps_redis_quirks() {
        // An empty string matches only the empty pattern: KEYS/SCAN special-case a lone `*`.
        assert!(!glob_match(b"*", b"", false));
        assert!(!glob_match(b"**", b"", false));
        // An escape inside a class compares exactly, even without case.
        assert!(!glob_match(b"[\\A]", b"a", true));
        assert!(glob_match(b"[A]", b"a", true));
        // Range bounds are C's signed chars: 0xff (-1) lies between 0x80 (-128) and 'a'.
        assert!(glob_match(b"[\x80-a]", b"\xff", false));
        assert!(glob_match(b"[\x80-a]", b"0", false));
        // More than 1000 nested stars match nothing.
        let many: Vec<u8> = b"*a".repeat(1001);
        assert!(!glob_match(&many, &b"a".repeat(1001), false));
        let enough: Vec<u8> = b"*a".repeat(1000);
        assert!(glob_match(&enough, &b"a".repeat(1000), false));
        for (p, s) in [(&many, b"a".repeat(1001)), (&enough, b"a".repeat(1000))] {
            assert_eq!(glob_match(p, &s, false), reference(p, &s, false));
        }
    }

    #[test]
    fn abusive_pattern_answers_at_once() {
        // The denial of service: exponential with naive backtracking; here O(p * s). Each
        // comparison step is bounded, so a hang would show as this test never finishing.
        let key = vec![b'a'; 40];
        let pattern = format!("{}b", "a*".repeat(20));
        assert!(!glob_match(pattern.as_bytes(), &key, false));
        let long_key = vec![b'a'; 100_000];
        let long_pattern = format!("{}b", "*a".repeat(500));
        assert!(!glob_match(long_pattern.as_bytes(), &long_key, false));
    }

    /// A deterministic generator (no dependency): xorshift64*.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn pick<'a>(&mut self, from: &'a [u8]) -> u8 {
            from[(self.next() % from.len() as u64) as usize]
        }
    }

    #[test]
    fn fuzzed_patterns_agree_with_redis_reference() {
        let pattern_bytes = b"ab*?[]^-\\cA\x80\xff";
        let string_bytes = b"abcA-]^\\*?\x80\xff";
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..200_000 {
            let plen = (rng.next() % 9) as usize;
            let slen = (rng.next() % 8) as usize;
            let p: Vec<u8> = (0..plen).map(|_| rng.pick(pattern_bytes)).collect();
            let s: Vec<u8> = (0..slen).map(|_| rng.pick(string_bytes)).collect();
            let nocase = round % 3 == 0;
            assert_eq!(
                glob_match(&p, &s, nocase),
                reference(&p, &s, nocase),
                "pattern {:?} string {:?} nocase {nocase}",
                String::from_utf8_lossy(&p),
                String::from_utf8_lossy(&s)
            );
        }
    }
}
