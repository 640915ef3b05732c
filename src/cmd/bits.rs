//! Bitmap commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD,
//! BITFIELD_RO. Mirrors Redis's `bitops.c`, byte for byte: bit 0 is the most significant bit of
//! the first byte, a string grows with zero bytes, integers are seen as their decimal text.
//!
//! A bitmap is an ordinary string value (GET, SETRANGE, APPEND see the same bytes). SETBIT and
//! BITFIELD change it in place (`cmd::rawstr`: the string becomes `raw`, its bytes behind their own
//! lock); BITOP stores a new `raw` string under its keys' exclusive stripes.
//!
//! # AOF records
//! SETBIT and BITFIELD are logged as given (deterministic over the same string), whenever they
//! changed the value or created or grew the key. Redis 7.0 does not propagate a BITFIELD whose
//! only writes failed with `OVERFLOW FAIL` even when it created or grew the key; we log it then,
//! so that replay rebuilds exactly what memory held. BITOP is logged as given when it stored or
//! deleted its destination (its sources' stripes are held, expired sources are deleted and logged
//! first).

use bytes::Bytes;

use super::rawstr::{self, grow_zero};
use super::{Ctx, arg_i64, is_opt};
use crate::db::{EntryRef, RawBytes, WriteLock};
use crate::error::{Error, Result};
use crate::pubsub::notify::class;
use crate::resp::Frame;

const OFFSET_ERR: &str = "bit offset is not an integer or out of range";
const BIT_ERR: &str = "bit is not an integer or out of range";
const TYPE_ERR: &str = "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// The bytes of a string entry (integers as text); WRONGTYPE for any other value.
pub(crate) fn string_value(e: EntryRef<'_>) -> Result<Bytes> {
    e.string_bytes().ok_or(Error::WrongType)
}

/// The string at `key` and its expiry, looked up for writing (expired keys deleted and logged).
pub(crate) fn lookup_string(w: &mut WriteLock, key: &[u8], now_ms: u64) -> Result<Option<(Bytes, u64)>> {
    w.lookup(key, now_ms, |e| e.map(|e| Ok::<_, Error>((string_value(e)?, e.expire_at_ms()))).transpose())
}

/// Count a keyspace hit or miss and announce a miss, as Redis's `lookupKeyRead` does for a key a
/// write reads (BITOP's and PFMERGE's sources, PFCOUNT of several keys, a geo search that stores).
pub(crate) fn count_lookup(ctx: &Ctx, key: &[u8], found: bool) {
    ctx.count_lookup(key, found);
}

/// Replace the string at `key` with `bytes` (`raw`), keeping expiry `ttl`.
pub(crate) fn store_string(w: &WriteLock, key: &Bytes, bytes: Vec<u8>, ttl: u64) {
    rawstr::create(w, key, crate::db::raw_bytes(bytes), ttl);
}

/// Whether limits on client input apply (not while the AOF is replayed: Redis's `mustObeyClient`).
fn obeys_limits(ctx: &Ctx) -> bool {
    ctx.now_ms != 0 && !ctx.shared.ks.is_loading()
}

/// A bit offset argument (`getBitOffsetFromArgument`): `#N` means N * `bits` when `hash` is set.
fn parse_offset(ctx: &Ctx, arg: &[u8], hash: bool, bits: u32) -> Result<u64> {
    let usehash = hash && bits > 0 && arg.first() == Some(&b'#');
    let digits = if usehash { &arg[1..] } else { arg };
    let mut off = crate::util::parse_i64(digits).ok_or_else(|| Error::err(OFFSET_ERR))?;
    if usehash {
        off = off.wrapping_mul(i64::from(bits));
    }
    let max = ctx.shared.conn_limits.load().max_bulk as u64;
    if off < 0 || (obeys_limits(ctx) && (off as u64 >> 3) >= max) {
        return Err(Error::err(OFFSET_ERR));
    }
    Ok(off as u64)
}

/// The bit at `offset` (0 past the end).
fn bit_at(s: &[u8], offset: u64) -> u64 {
    let byte = (offset >> 3) as usize;
    s.get(byte).map_or(0, |b| u64::from((b >> (7 - (offset & 7))) & 1))
}

/// `SETBIT key offset value`: the bit's old value.
pub fn setbit(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let key = &argv[1];
    let offset = parse_offset(ctx, &argv[2], false, 0)?;
    let on = crate::util::parse_i64(&argv[3]).ok_or_else(|| Error::err(BIT_ERR))?;
    if on & !1 != 0 {
        return Err(Error::err(BIT_ERR));
    }
    let byte = (offset >> 3) as usize;
    // Fast path, no stripe: the bit already holds the value inside the string (read under the
    // cell lock of a `raw` one). Nothing changes, as of this read.
    let noop = rawstr::peek(ctx, key, |s| Some(bit_at(s, offset)).filter(|&b| s.len() > byte && b == on as u64));
    if let Some(Some(bit)) = noop {
        return Ok(Frame::Integer(bit as i64));
    }
    let shift = 7 - (offset & 7);
    let set = |v: &mut RawBytes| {
        grow_zero(v, byte + 1);
        v[byte] = (v[byte] & !(1 << shift)) | ((on as u8) << shift);
    };
    let changed = |w: &WriteLock| {
        // Announced before the record, as Redis.
        w.notify(class::STRING, "setbit", key);
        super::collection::log_command(w, argv);
    };
    let old_bit = rawstr::write_or_create(
        ctx,
        key,
        noop.is_some(),
        byte < 4096,
        |v, w| {
            let old_bit = bit_at(v, offset);
            // As Redis 7.0.15: a bit that already has the value changes nothing (no WATCH touch,
            // no record).
            if v.len() > byte && old_bit == on as u64 {
                return Ok(old_bit);
            }
            set(v);
            changed(w);
            Ok(old_bit)
        },
        || {
            let mut v = RawBytes::new();
            set(&mut v);
            v
        },
        |w| {
            changed(w);
            Ok(0)
        },
    )?;
    Ok(Frame::Integer(old_bit as i64))
}

/// `GETBIT key offset`.
pub fn getbit(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let offset = parse_offset(ctx, &argv[2], false, 0)?;
    let bit = rawstr::read(ctx, &argv[1], |s| s.map_or(0, |s| bit_at(s, offset)))?;
    Ok(Frame::Integer(bit as i64))
}

/// A `start end [BYTE|BIT]` range resolved against a string of `len` bytes, as Redis's BITCOUNT
/// and BITPOS do: byte indexes and the masks of the bits outside the range in the edge bytes.
struct ByteRange {
    start: i64,
    end: i64,
    first_neg_mask: u8,
    last_neg_mask: u8,
}

fn resolve_range(mut start: i64, mut end: i64, isbit: bool, len: usize) -> ByteRange {
    let mut totlen = len as i64;
    if isbit {
        totlen <<= 3;
    }
    if start < 0 {
        start += totlen;
    }
    if end < 0 {
        end += totlen;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= totlen {
        end = totlen - 1;
    }
    let (mut first_neg_mask, mut last_neg_mask) = (0u8, 0u8);
    if isbit && start <= end {
        first_neg_mask = !((1u16 << (8 - (start & 7))) - 1) as u8;
        last_neg_mask = ((1u16 << (7 - (end & 7))) - 1) as u8;
        start >>= 3;
        end >>= 3;
    }
    ByteRange { start, end, first_neg_mask, last_neg_mask }
}

/// `BYTE` or `BIT` (case-insensitive), else a syntax error.
fn parse_unit(arg: &[u8]) -> Result<bool> {
    if is_opt(arg, "bit") {
        Ok(true)
    } else if is_opt(arg, "byte") {
        Ok(false)
    } else {
        Err(Error::Syntax)
    }
}

fn popcount(s: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if s.len() >= POPCNT_MIN && std::arch::is_x86_feature_detected!("popcnt") {
        // SAFETY: the CPU has POPCNT (checked just above), the one feature `popcount_popcnt`
        // is compiled for.
        return unsafe { popcount_popcnt(s) };
    }
    popcount_words(s)
}

/// Below this many bytes the portable count is as quick as the feature check.
#[cfg(target_arch = "x86_64")]
const POPCNT_MIN: usize = 64;

/// [`popcount_words`] compiled with the CPU's POPCNT instruction (the default x86-64 target
/// lacks it: `count_ones` is then a dozen shifts and masks per word).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn popcount_popcnt(s: &[u8]) -> u64 {
    popcount_words(s)
}

/// Set bits of `s`, a 64-bit word at a time (four sums, so that the counts overlap).
#[inline(always)]
fn popcount_words(s: &[u8]) -> u64 {
    let word = |c: &[u8]| u64::from(u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])).count_ones());
    let mut blocks = s.chunks_exact(32);
    let mut sums = [0u64; 4];
    for b in blocks.by_ref() {
        for (i, sum) in sums.iter_mut().enumerate() {
            *sum += word(&b[i * 8..i * 8 + 8]);
        }
    }
    let mut chunks = blocks.remainder().chunks_exact(8);
    let mut n: u64 = sums.iter().sum::<u64>() + chunks.by_ref().map(word).sum::<u64>();
    n += chunks.remainder().iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
    n
}

/// `BITCOUNT key [start end [BYTE|BIT]]`.
pub fn bitcount(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    // As Redis: a missing key is 0 whatever the arguments.
    rawstr::read(ctx, &argv[1], |s| s.map_or(Ok(Frame::Integer(0)), |s| bitcount_of(s, argv)))?
}

/// BITCOUNT of the string `s`.
fn bitcount_of(s: &[u8], argv: &[Bytes]) -> Result<Frame> {
    let r = match argv.len() {
        2 => ByteRange { start: 0, end: s.len() as i64 - 1, first_neg_mask: 0, last_neg_mask: 0 },
        4 | 5 => {
            let (start, end) = (arg_i64(&argv[2])?, arg_i64(&argv[3])?);
            if start < 0 && end < 0 && start > end {
                return Ok(Frame::Integer(0));
            }
            let isbit = if argv.len() == 5 { parse_unit(&argv[4])? } else { false };
            resolve_range(start, end, isbit, s.len())
        }
        _ => return Err(Error::Syntax),
    };
    if r.start > r.end {
        return Ok(Frame::Integer(0));
    }
    let (start, end) = (r.start as usize, r.end as usize);
    let mut count = popcount(&s[start..=end]);
    count -= u64::from((s[start] & r.first_neg_mask).count_ones());
    count -= u64::from((s[end] & r.last_neg_mask).count_ones());
    Ok(Frame::Integer(count as i64))
}

/// Redis's `redisBitpos`: the first bit equal to `bit` in `s`; for 0 with none, the bit just past
/// the end (`s.len() * 8`); for 1 with none, -1.
fn first_bit(s: &[u8], bit: bool) -> i64 {
    let skip = if bit { 0u8 } else { 0xff };
    match s.iter().position(|&b| b != skip) {
        Some(i) => {
            let b = if bit { s[i] } else { !s[i] };
            (i as i64) * 8 + i64::from(b.leading_zeros())
        }
        None if bit => -1,
        None => s.len() as i64 * 8,
    }
}

/// `BITPOS key bit [start [end [BYTE|BIT]]]`.
pub fn bitpos(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let bit = arg_i64(&argv[2])?;
    if bit != 0 && bit != 1 {
        return Err(Error::err("The bit argument must be 1 or 0."));
    }
    let bit = bit == 1;
    let none = Frame::Integer(if bit { -1 } else { 0 });
    rawstr::read(ctx, &argv[1], |s| s.map_or(Ok(none), |s| bitpos_of(s, bit, argv)))?
}

/// BITPOS of `bit` in the string `s`.
fn bitpos_of(s: &[u8], bit: bool, argv: &[Bytes]) -> Result<Frame> {
    let mut end_given = false;
    let r = match argv.len() {
        3 => ByteRange { start: 0, end: s.len() as i64 - 1, first_neg_mask: 0, last_neg_mask: 0 },
        4..=6 => {
            let start = arg_i64(&argv[3])?;
            let isbit = if argv.len() == 6 { parse_unit(&argv[5])? } else { false };
            let end = if argv.len() >= 5 {
                end_given = true;
                arg_i64(&argv[4])?
            } else if isbit {
                ((s.len() as i64) << 3) + 7
            } else {
                s.len() as i64 - 1
            };
            resolve_range(start, end, isbit, s.len())
        }
        _ => return Err(Error::Syntax),
    };
    if r.start > r.end {
        return Ok(Frame::Integer(-1));
    }
    let (mut start, end) = (r.start as usize, r.end as usize);
    let mut bytes = end - start + 1;
    let (first, last) = (r.first_neg_mask, r.last_neg_mask);
    let edge = |b: u8, mask: u8| if bit { b & !mask } else { b | mask };
    let pos = 'found: {
        if first != 0 {
            let mut c = edge(s[start], first);
            if last != 0 && bytes == 1 {
                c = edge(c, last);
            }
            let pos = first_bit(&[c], bit);
            if bytes == 1 || (pos != -1 && pos != 8) {
                break 'found pos;
            }
            start += 1;
            bytes -= 1;
        }
        let cur = bytes - usize::from(last != 0);
        if cur > 0 {
            let pos = first_bit(&s[start..start + cur], bit);
            if bytes == cur || (pos != -1 && pos != (cur as i64) << 3) {
                break 'found pos;
            }
            start += cur;
            bytes -= cur;
        }
        first_bit(&[edge(s[end], last)], bit)
    };
    if end_given && !bit && pos == (bytes as i64) << 3 {
        return Ok(Frame::Integer(-1));
    }
    Ok(Frame::Integer(if pos != -1 { pos + ((start as i64) << 3) } else { pos }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// `BITOP AND|OR|XOR|NOT destkey key [key ...]`: the length of the result.
pub fn bitop(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let op = match &argv[1] {
        o if is_opt(o, "and") => BitOp::And,
        o if is_opt(o, "or") => BitOp::Or,
        o if is_opt(o, "xor") => BitOp::Xor,
        o if is_opt(o, "not") => BitOp::Not,
        _ => return Err(Error::Syntax),
    };
    if op == BitOp::Not && argv.len() != 4 {
        return Err(Error::err("BITOP NOT must be called with a single source key."));
    }
    let dest = &argv[2];
    let keys: Vec<&[u8]> = argv[2..].iter().map(|k| &k[..]).collect();
    let now = ctx.now_ms;
    let mut w = ctx.write(&keys);
    let mut srcs = Vec::with_capacity(argv.len() - 3);
    for k in &argv[3..] {
        let found = lookup_string(&mut w, k, now);
        count_lookup(ctx, k, !matches!(found, Ok(None)));
        srcs.push(found?.map(|(b, _)| b).unwrap_or_default());
    }
    let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
    if maxlen == 0 {
        let existed = w.lookup(dest, now, |e| e.is_some());
        if existed {
            w.map().remove(dest);
            w.log(&super::collection::record(argv));
            w.notify(class::GENERIC, "del", dest);
        }
        return Ok(Frame::Integer(0));
    }
    let res = ctx.offload(maxlen / 64, || {
        let byte = |s: &Bytes, j: usize| s.get(j).copied().unwrap_or(0);
        (0..maxlen)
            .map(|j| {
                let first = byte(&srcs[0], j);
                match op {
                    BitOp::Not => !first,
                    BitOp::And => srcs[1..].iter().fold(first, |acc, s| acc & byte(s, j)),
                    BitOp::Or => srcs[1..].iter().fold(first, |acc, s| acc | byte(s, j)),
                    BitOp::Xor => srcs[1..].iter().fold(first, |acc, s| acc ^ byte(s, j)),
                }
            })
            .collect::<Vec<u8>>()
    });
    store_string(&w, dest, res, 0);
    w.log(&super::collection::record(argv));
    w.notify(class::STRING, "set", dest);
    Ok(Frame::Integer(maxlen as i64))
}

// ---- BITFIELD ----------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set,
    IncrBy,
}

#[derive(Clone, Copy)]
struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    overflow: Overflow,
}

/// `i1`..`i64` or `u1`..`u63` (`getBitfieldTypeFromArgument`).
fn parse_type(arg: &[u8]) -> Result<(bool, u32)> {
    let err = || Error::err(TYPE_ERR);
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err()),
    };
    // Redis reads the rest with strlen: a NUL ends it.
    let rest = &arg[1..];
    let rest = &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())];
    let bits = crate::util::parse_i64(rest).ok_or_else(err)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(err());
    }
    Ok((signed, bits as u32))
}

fn get_unsigned(s: &[u8], offset: u64, bits: u32) -> u64 {
    (0..u64::from(bits)).fold(0u64, |v, i| (v << 1) | bit_at(s, offset + i))
}

fn get_signed(s: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_unsigned(s, offset, bits);
    if bits < 64 && v & (1 << (bits - 1)) != 0 { (v | (u64::MAX << bits)) as i64 } else { v as i64 }
}

fn set_bits(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    for i in 0..u64::from(bits) {
        let bit = (value >> (u64::from(bits) - 1 - i)) & 1;
        let o = offset + i;
        let byte = (o >> 3) as usize;
        let shift = 7 - (o & 7);
        s[byte] = (s[byte] & !(1 << shift)) | ((bit as u8) << shift);
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: 0 or the overflow's direction, and the value to store
/// instead (wrapped or saturated) when the policy gives one.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (bool, u64) {
    let max = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
    if value > max || (incr > 0 && incr > maxincr) {
        (true, if ow == Overflow::Wrap { wrap() } else { max })
    } else if incr < 0 && incr < minincr {
        (true, if ow == Overflow::Wrap { wrap() } else { 0 })
    } else {
        (false, 0)
    }
}

/// Redis's `checkSignedBitfieldOverflow`.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (bool, i64) {
    let max = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let msb = 1u64 << (bits - 1);
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & msb != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        (true, if ow == Overflow::Wrap { wrap() } else { max })
    } else if value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
        (true, if ow == Overflow::Wrap { wrap() } else { min })
    } else {
        (false, 0)
    }
}

/// Parse BITFIELD's operations (`bitfieldGeneric`'s first loop).
fn parse_fields(ctx: &Ctx, argv: &[Bytes]) -> Result<Vec<Field>> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < argv.len() {
        let rem = argv.len() - j - 1;
        let sub = &argv[j];
        let op = if is_opt(sub, "get") && rem >= 2 {
            FieldOp::Get
        } else if is_opt(sub, "set") && rem >= 3 {
            FieldOp::Set
        } else if is_opt(sub, "incrby") && rem >= 3 {
            FieldOp::IncrBy
        } else if is_opt(sub, "overflow") && rem >= 1 {
            let t = &argv[j + 1];
            overflow = if is_opt(t, "wrap") {
                Overflow::Wrap
            } else if is_opt(t, "sat") {
                Overflow::Sat
            } else if is_opt(t, "fail") {
                Overflow::Fail
            } else {
                return Err(Error::err("Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(Error::Syntax);
        };
        let (signed, bits) = parse_type(&argv[j + 1])?;
        let offset = parse_offset(ctx, &argv[j + 2], true, bits)?;
        let value = if op == FieldOp::Get { 0 } else { arg_i64(&argv[j + 3])? };
        ops.push(Field { op, signed, bits, offset, value, overflow });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    Ok(ops)
}

/// One GET on `s` (zero past the end).
fn field_get(s: &[u8], f: &Field) -> Frame {
    Frame::Integer(if f.signed { get_signed(s, f.offset, f.bits) } else { get_unsigned(s, f.offset, f.bits) as i64 })
}

fn bitfield_generic(ctx: &mut Ctx, argv: &[Bytes], ro: bool) -> Result<Frame> {
    let ops = parse_fields(ctx, argv)?;
    let key = &argv[1];
    if ops.iter().all(|f| f.op == FieldOp::Get) {
        let s = rawstr::read(ctx, key, |s| ops.iter().map(|f| field_get(s.unwrap_or_default(), f)).collect())?;
        return Ok(Frame::Array(s));
    }
    if ro {
        return Err(Error::err("BITFIELD_RO only supports the GET subcommand"));
    }
    let highest = ops.iter().filter(|f| f.op != FieldOp::Get).map(|f| f.offset + u64::from(f.bits) - 1).max();
    let need = (highest.unwrap_or(0) >> 3) as usize + 1;
    // The record, when the fields changed something or the string was created or grown.
    let logged = |w: &WriteLock, changes: usize, dirty: bool| {
        if changes > 0 || dirty {
            // Redis counts the fields set or incremented.
            w.log_n(&super::collection::record(argv), changes as u64);
            if changes > 0 {
                w.notify(class::STRING, "setbit", key);
            }
        }
    };
    let reply = rawstr::write(
        ctx,
        key,
        |_| Ok(()),
        |v, w| {
            let dirty = v.len() < need;
            grow_zero(v, need);
            let (reply, changes) = apply_fields(v, &ops, dirty);
            logged(w, changes, dirty);
            Ok(reply)
        },
        |w| {
            let mut v = RawBytes::from_elem(0, need);
            let (reply, changes) = apply_fields(&mut v, &ops, true);
            rawstr::create(w, key, v, 0);
            logged(w, changes, true);
            Ok(reply)
        },
    )?;
    Ok(Frame::Array(reply))
}

/// BITFIELD's writes (and GETs) on `v`, in order: the replies and how many changed bits.
/// `dirty`: the string was created or grown (every write counts as a change then).
fn apply_fields(v: &mut [u8], ops: &[Field], dirty: bool) -> (Vec<Frame>, usize) {
    let mut changes = 0;
    let mut reply = Vec::with_capacity(ops.len());
    for f in ops {
        if f.op == FieldOp::Get {
            reply.push(field_get(v, f));
            continue;
        }
        let (failed, old_raw, new_raw, ret) = if f.signed {
            let old = get_signed(v, f.offset, f.bits);
            let (new, ret, of) = if f.op == FieldOp::IncrBy {
                let (of, lim) = signed_overflow(old, f.value, f.bits, f.overflow);
                let new = if of { lim } else { old.wrapping_add(f.value) };
                (new, new, of)
            } else {
                let (of, lim) = signed_overflow(f.value, 0, f.bits, f.overflow);
                (if of { lim } else { f.value }, old, of)
            };
            (of && f.overflow == Overflow::Fail, old as u64, new as u64, ret)
        } else {
            let old = get_unsigned(v, f.offset, f.bits);
            let (new, ret, of) = if f.op == FieldOp::IncrBy {
                let (of, lim) = unsigned_overflow(old, f.value, f.bits, f.overflow);
                let new = if of { lim } else { old.wrapping_add(f.value as u64) };
                (new, new, of)
            } else {
                let (of, lim) = unsigned_overflow(f.value as u64, 0, f.bits, f.overflow);
                (if of { lim } else { f.value as u64 }, old, of)
            };
            (of && f.overflow == Overflow::Fail, old, new, ret as i64)
        };
        if failed {
            reply.push(Frame::Null);
            continue;
        }
        reply.push(Frame::Integer(ret));
        set_bits(v, f.offset, f.bits, new_raw);
        if dirty || old_raw != new_raw {
            changes += 1;
        }
    }
    (reply, changes)
}

/// `BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
/// [OVERFLOW WRAP|SAT|FAIL] ...`.
pub fn bitfield(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    bitfield_generic(ctx, argv, false)
}

/// `BITFIELD_RO key [GET type offset ...]`.
pub fn bitfield_ro(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    bitfield_generic(ctx, argv, true)
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::{Harness, arr, bulk, err, int, ok};
    use crate::resp::Frame;

    // Every expected reply below was recorded from redis-server 7.0.15.

    #[test]
    fn bitfield_ops_and_overflow_policies_match_redis() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["SETBIT", "k", "100", "1"]), int(0));
        assert_eq!(
            h.run(&[
                "BITFIELD", "k", "incrby", "i5", "100", "1", "get", "u4", "0", "overflow", "sat", "incrby", "u8", "#3",
                "300", "overflow", "fail", "incrby", "i8", "0", "200"
            ]),
            arr(vec![int(-15), int(0), int(255), Frame::Null])
        );
        assert_eq!(h.run(&["BITCOUNT", "k", "0", "-1", "bit"]), int(10));
        assert_eq!(h.run(&["BITPOS", "k", "1", "3", "-1", "bit"]), int(24));
        assert_eq!(h.run(&["BITPOS", "k", "0", "1"]), int(8));
        assert_eq!(h.run(&["GET", "k"]), Frame::Bulk(bytes::Bytes::from_static(b"\0\0\0\xff\0\0\0\0\0\0\0\0\x08\x80")));
        assert_eq!(
            h.run(&["BITFIELD_RO", "k", "set", "u8", "0", "1"]),
            err("ERR BITFIELD_RO only supports the GET subcommand")
        );
        assert_eq!(
            h.run(&["BITFIELD", "k", "get", "u64", "0"]),
            err("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")
        );
        assert_eq!(h.run(&["SETBIT", "k", "4294967296", "1"]), err("ERR bit offset is not an integer or out of range"));
        assert_eq!(h.run(&["SETBIT", "k", "1", "2"]), err("ERR bit is not an integer or out of range"));
    }

    #[test]
    fn popcount_counts_every_length_and_alignment_alike() {
        // Every length around the word, block and POPCNT thresholds, at every start offset: the
        // hardware path (when the CPU has it), the portable one and a bit-by-bit count agree.
        let data: Vec<u8> = (0..700u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for start in 0..8 {
            for len in (0..200).chain([255, 256, 257, 511, 600, 692]) {
                let s = &data[start..start + len];
                let naive: u64 = s.iter().map(|b| (0..8).filter(|i| b >> i & 1 == 1).count() as u64).sum();
                assert_eq!(super::popcount(s), naive, "start {start} len {len}");
                assert_eq!(super::popcount_words(s), naive, "start {start} len {len}");
            }
        }
        assert_eq!(super::popcount(&[0xff; 1000]), 8000);
    }

    #[test]
    fn setbit_creates_missing_and_expired_keys_and_refuses_other_types() {
        let mut h = Harness::new();
        let expired = |h: &mut Harness| match h.run(&["INFO", "stats"]) {
            Frame::Bulk(b) | Frame::Verbatim(b) => String::from_utf8_lossy(&b)
                .lines()
                .find_map(|l| l.strip_prefix("expired_keys:").map(|n| n.trim().parse::<u64>().unwrap()))
                .unwrap(),
            other => panic!("{other:?}"),
        };
        // A new key (created by one insert that finds its bucket without the key).
        assert_eq!(h.run(&["SETBIT", "k", "7", "1"]), int(0));
        assert_eq!(h.run(&["GET", "k"]), bulk("\x01"));
        assert_eq!(h.run(&["SETBIT", "k", "7", "1"]), int(1));
        // An expired string is removed (counted as expired, as Redis's lookupKeyWrite does) and
        // the key created anew, without the old TTL.
        assert_eq!(h.run(&["SET", "e", "abc", "PX", "10"]), ok());
        h.now_ms += 20;
        assert_eq!(expired(&mut h), 0);
        assert_eq!(h.run(&["SETBIT", "e", "6", "1"]), int(0));
        assert_eq!(expired(&mut h), 1);
        assert_eq!(h.run(&["GET", "e"]), bulk("\x02"));
        assert_eq!(h.run(&["PTTL", "e"]), int(-1));
        // Another type: WRONGTYPE at small and large offsets, nothing created or changed.
        assert_eq!(h.run(&["HSET", "h", "f", "v"]), int(1));
        let wrongtype = err("WRONGTYPE Operation against a key holding the wrong kind of value");
        assert_eq!(h.run(&["SETBIT", "h", "7", "1"]), wrongtype);
        assert_eq!(h.run(&["SETBIT", "h", "800000", "1"]), wrongtype);
        assert_eq!(h.run(&["HGET", "h", "f"]), bulk("v"));
        assert_eq!(h.run(&["HLEN", "h"]), int(1));
        // A new key past the bytes built ahead of the lock (the general path).
        assert_eq!(h.run(&["SETBIT", "big", "800000", "1"]), int(0));
        assert_eq!(h.run(&["STRLEN", "big"]), int(100001));
        assert_eq!(h.run(&["GETBIT", "big", "800000"]), int(1));
        assert_eq!(h.run(&["DBSIZE"]), int(4));
    }

    #[test]
    fn bit_commands_see_integers_as_their_text() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["SET", "n", "12345"]), ok());
        assert_eq!(h.run(&["SETBIT", "n", "3", "1"]), int(1));
        assert_eq!(h.run(&["GET", "n"]), bulk("12345"));
        assert_eq!(h.run(&["SETBIT", "n", "6", "0"]), int(0));
        assert_eq!(h.run(&["GET", "n"]), bulk("12345"));
        assert_eq!(h.run(&["SETBIT", "n", "7", "0"]), int(1));
        assert_eq!(h.run(&["GET", "n"]), bulk("02345"));
        assert_eq!(h.run(&["BITOP", "NOT", "d", "n"]), int(5));
        assert_eq!(
            h.run(&["BITOP", "NOT", "d", "n", "n"]),
            err("ERR BITOP NOT must be called with a single source key.")
        );
        assert_eq!(h.run(&["BITOP", "AND", "d", "missing"]), int(0));
        assert_eq!(h.run(&["EXISTS", "d"]), int(0));
        h.run(&["RPUSH", "l", "a"]);
        assert_eq!(h.run(&["BITCOUNT", "l"]), err("WRONGTYPE Operation against a key holding the wrong kind of value"));
        assert_eq!(h.run(&["BITCOUNT", "missing", "x"]), int(0));
    }
}
