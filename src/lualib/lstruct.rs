//! The `struct` library (Roberto Ierusalimschy, MIT) as Redis embeds it: `struct.pack(fmt, ...)`,
//! `struct.unpack(fmt, s [, pos])`, `struct.size(fmt)`.
//!
//! Formats: `>` big / `<` little endian, `![n]` maximum alignment (default 8), `x` a pad byte,
//! `b/B h/H l/L T i[n]/I[n]` integers (1, 2, 8, 8, n bytes; `i` defaults to 4), `f` float,
//! `d` double, `c[n]` fixed string (`c0`: the whole string / the previous result's length),
//! `s` zero-terminated string, ` ` ignored. Integers are C `long` (64 bits): larger sizes pad
//! with zeros when packing and keep only the low 64 bits when unpacking, as the C code does.

use super::{Args, LResult, Raise, c_double_to_i64, c_double_to_u64, many, one, set_fn, to_number};
use mlua::{Lua, MultiValue, Table, Value};

const MAXINTSIZE: i32 = 32;
/// `MAXALIGN`: the alignment of a double on x86-64.
const MAXALIGN: i32 = 8;
const NATIVE_LITTLE: bool = cfg!(target_endian = "little");

struct Header {
    little: bool,
    align: usize,
}

impl Header {
    fn new() -> Header {
        Header { little: NATIVE_LITTLE, align: 1 }
    }
}

/// A format string read up to its first NUL, as C reads it.
struct Fmt<'a> {
    s: &'a [u8],
    i: usize,
}

impl Fmt<'_> {
    fn peek(&self) -> u8 {
        self.s.get(self.i).copied().unwrap_or(0)
    }
    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        if c == 0 {
            None
        } else {
            self.i += 1;
            Some(c)
        }
    }
    /// `getnum`: an optional decimal number, else `df`.
    fn num(&mut self, df: i32) -> LResult<i32> {
        if !self.peek().is_ascii_digit() {
            return Ok(df);
        }
        let mut a: i32 = 0;
        while self.peek().is_ascii_digit() {
            let d = (self.peek() - b'0') as i32;
            if a > i32::MAX / 10 || a * 10 > i32::MAX - d {
                return Err(Raise::error("integral size overflow"));
            }
            a = a * 10 + d;
            self.i += 1;
        }
        Ok(a)
    }
}

/// `optsize`: the size of option `opt` (0 for options that need no alignment).
fn optsize(opt: u8, fmt: &mut Fmt) -> LResult<usize> {
    Ok(match opt {
        b'B' | b'b' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'x' => 1,
        b'c' => fmt.num(1)? as usize,
        b'i' | b'I' => {
            let sz = fmt.num(4)?;
            if sz > MAXINTSIZE {
                return Err(Raise::error(format!("integral size {sz} is larger than limit of {MAXINTSIZE}")));
            }
            sz as usize
        }
        _ => 0,
    })
}

/// `gettoalign`: padding before an item of `size` at offset `len`.
fn gettoalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size.wrapping_sub(len & (size - 1))) & (size - 1)
}

/// `controloptions`: endianness, alignment, spaces; anything else is an invalid option.
fn controloptions(opt: u8, fmt: &mut Fmt, h: &mut Header) -> LResult<()> {
    match opt {
        b' ' => {}
        b'>' => h.little = false,
        b'<' => h.little = true,
        b'!' => {
            let a = fmt.num(MAXALIGN)?;
            if !(a > 0 && a & (a - 1) == 0) {
                return Err(Raise::error(format!("alignment {a} is not a power of 2")));
            }
            h.align = a as usize;
        }
        _ => {
            let mut msg = b"invalid format option '".to_vec();
            msg.push(opt);
            msg.push(b'\'');
            return Err(Raise::Arg(1, msg));
        }
    }
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, native: &[u8], little: bool) {
    if little == NATIVE_LITTLE {
        out.extend_from_slice(native);
    } else {
        out.extend(native.iter().rev());
    }
}

fn pack(a: &mut Args) -> LResult<MultiValue> {
    let f = a.check_bytes(1)?;
    // The original pushes a nil after the arguments: a missing argument reads "got nil" once.
    a.v.push(Value::Nil);
    let mut fmt = Fmt { s: &f, i: 0 };
    let mut h = Header::new();
    let mut arg = 2;
    let mut out: Vec<u8> = Vec::new();
    let mut total: usize = 0;
    while let Some(opt) = fmt.next() {
        let mut size = optsize(opt, &mut fmt)?;
        let toalign = gettoalign(total, &h, opt, size);
        total += toalign;
        out.resize(out.len() + toalign, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = a.check_number(arg)?;
                arg += 1;
                let mut value = if n < 0.0 { c_double_to_i64(n) as u64 } else { c_double_to_u64(n) };
                let mut buf = vec![0u8; size];
                if h.little {
                    for b in buf.iter_mut() {
                        *b = value as u8;
                        value >>= 8;
                    }
                } else {
                    for b in buf.iter_mut().rev() {
                        *b = value as u8;
                        value >>= 8;
                    }
                }
                out.extend_from_slice(&buf);
            }
            b'x' => out.push(0),
            b'f' => {
                let v = a.check_number(arg)? as f32;
                arg += 1;
                put_bytes(&mut out, &v.to_ne_bytes(), h.little);
            }
            b'd' => {
                let v = a.check_number(arg)?;
                arg += 1;
                put_bytes(&mut out, &v.to_ne_bytes(), h.little);
            }
            b'c' | b's' => {
                let s = a.check_bytes(arg)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // The original reports the argument after the string (it has already
                    // advanced its counter).
                    return Err(Raise::arg(arg as i32, "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                    size += 1;
                }
            }
            _ => controloptions(opt, &mut fmt, &mut h)?,
        }
        total += size;
    }
    one(Value::String(a.lua.create_string(out)?))
}

/// `getinteger`: `size` bytes as a C `long`, keeping its low 64 bits; signed formats extend the
/// sign with the original's shifted mask (the shift count taken mod 64 as x86 does).
fn getinteger(buf: &[u8], little: bool, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let bytes: Box<dyn Iterator<Item = &u8>> = if little { Box::new(buf.iter().rev()) } else { Box::new(buf.iter()) };
    for &b in bytes {
        l = (l << 8) | b as u64;
    }
    if !signed {
        return l as f64;
    }
    let shift = ((buf.len() * 8).wrapping_sub(1) & 63) as u32;
    let mask = u64::MAX << shift;
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

fn unpack(a: &Args) -> LResult<MultiValue> {
    let f = a.check_bytes(1)?;
    let data = a.check_bytes(2)?;
    let ld = data.len();
    let pos = a.opt_integer(3, 1)? as u64 as usize;
    if pos == 0 {
        return Err(Raise::arg(3, "offset must be 1 or greater"));
    }
    let mut pos = pos - 1;
    let mut fmt = Fmt { s: &f, i: 0 };
    let mut h = Header::new();
    // Results go straight into a table (see `many`).
    let res = a.lua.create_table()?;
    let mut n = 0usize;
    let base = a.top();
    let short = || Raise::arg(2, "data string too short");
    while let Some(opt) = fmt.next() {
        let mut size = optsize(opt, &mut fmt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if !(size <= ld && pos <= ld - size) {
            return Err(short());
        }
        if !super::stack_ok(base + n, 2) {
            return Err(Raise::stack_overflow("too many results"));
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let signed = opt.is_ascii_lowercase();
                n += 1;
                res.raw_set(n, getinteger(&data[pos..pos + size], h.little, signed))?;
            }
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[pos..pos + 4]);
                if h.little != NATIVE_LITTLE {
                    b.reverse();
                }
                n += 1;
                res.raw_set(n, f32::from_ne_bytes(b) as f64)?;
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos..pos + 8]);
                if h.little != NATIVE_LITTLE {
                    b.reverse();
                }
                n += 1;
                res.raw_set(n, f64::from_ne_bytes(b))?;
            }
            b'c' => {
                if size == 0 {
                    let prev = if n == 0 { None } else { to_number(a.lua, &res.raw_get(n)?) };
                    let Some(len) = prev else {
                        return Err(Raise::error("format 'c0' needs a previous size"));
                    };
                    size = c_double_to_u64(len) as usize;
                    res.raw_set(n, Value::Nil)?;
                    n -= 1;
                    if !(size <= ld && pos <= ld - size) {
                        return Err(short());
                    }
                }
                n += 1;
                res.raw_set(n, a.lua.create_string(&data[pos..pos + size])?)?;
            }
            b's' => {
                let Some(e) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(Raise::error("unfinished string in data"));
                };
                size = e + 1;
                n += 1;
                res.raw_set(n, a.lua.create_string(&data[pos..pos + e])?)?;
            }
            _ => controloptions(opt, &mut fmt, &mut h)?,
        }
        pos = pos.wrapping_add(size);
    }
    n += 1;
    res.raw_set(n, pos.wrapping_add(1) as i64 as f64)?;
    many(res, n)
}

fn size(a: &Args) -> LResult<MultiValue> {
    let f = a.check_bytes(1)?;
    let mut fmt = Fmt { s: &f, i: 0 };
    let mut h = Header::new();
    let mut pos: usize = 0;
    while let Some(opt) = fmt.next() {
        let size = optsize(opt, &mut fmt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if opt == b's' {
            return Err(Raise::arg(1, "option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(Raise::arg(1, "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            controloptions(opt, &mut fmt, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    one(Value::Number(pos as i64 as f64))
}

/// The `struct` table.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    set_fn(lua, &t, "pack", |lua, args| pack(&mut Args::new(lua, args)))?;
    set_fn(lua, &t, "unpack", |lua, args| unpack(&Args::new(lua, args)))?;
    set_fn(lua, &t, "size", |lua, args| size(&Args::new(lua, args)))?;
    Ok(t)
}
