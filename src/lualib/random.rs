//! Redis's `math.random` / `math.randomseed`: Lua 5.1's algorithm with `rand()` replaced by
//! Redis's own `rand48` (src/rand.c), so every platform gives the same sequence for a seed.
//!
//! As in Redis 7.0.15 the generator state is one per process, shared by every script and never
//! reseeded by the server: it starts at the rand48 initial state, each call advances it, and only
//! `math.randomseed(n)` in a script resets it (scripts are replicated by their effects, so their
//! random values need not repeat). The state is a mutex-protected 48-bit value here because
//! scripts run on many threads.

use super::{Args, LResult, Raise, lib_function, one};
use mlua::{Lua, MultiValue, Table, Value};
use std::sync::Mutex;

/// The largest value `rand48_next` returns, plus one (`REDIS_LRAND48_MAX` is `INT32_MAX`).
pub const LRAND48_MAX: i32 = i32::MAX;

const A: u64 = 0x5_DEEC_E66D;
const C: u64 = 0xB;
const MASK48: u64 = (1 << 48) - 1;
/// `X0, X1, X2` of rand.c: the state before any seed.
const INITIAL: u64 = 0x1234_ABCD_330E;

/// A rand48 generator (x' = a·x + c mod 2^48).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rand48 {
    x: u64,
}

impl Default for Rand48 {
    fn default() -> Self {
        Rand48 { x: INITIAL }
    }
}

impl Rand48 {
    /// `redisSrand48(seed)`: high 32 bits from the seed, low 16 bits 0x330E.
    pub fn seed(seed: i32) -> Rand48 {
        Rand48 { x: ((seed as u32 as u64) << 16) | 0x330E }
    }
    /// `redisLrand48()`: the next value in 0..2^31.
    pub fn next_value(&mut self) -> i32 {
        self.x = (A.wrapping_mul(self.x).wrapping_add(C)) & MASK48;
        (self.x >> 17) as i32
    }
}

static STATE: Mutex<Rand48> = Mutex::new(Rand48 { x: INITIAL });

fn next_global() -> i32 {
    STATE.lock().unwrap_or_else(|e| e.into_inner()).next_value()
}

/// Resets the process-wide generator to `seed` (what `math.randomseed` does).
pub fn seed_global(seed: i32) {
    *STATE.lock().unwrap_or_else(|e| e.into_inner()) = Rand48::seed(seed);
}

/// One `math.random(...)` result from a uniform `r` in [0, 1), as Lua 5.1 maps it.
pub fn random_with(a: &Args, r: f64) -> LResult<MultiValue> {
    let v = match a.top() {
        0 => r,
        1 => {
            let u = a.check_int(1)?;
            if u < 1 {
                return Err(Raise::arg(1, "interval is empty"));
            }
            (r * u as f64).floor() + 1.0
        }
        2 => {
            let l = a.check_int(1)?;
            let u = a.check_int(2)?;
            if l > u {
                return Err(Raise::arg(2, "interval is empty"));
            }
            (r * u.wrapping_sub(l).wrapping_add(1) as f64).floor() + l as f64
        }
        _ => return Err(Raise::error("wrong number of arguments")),
    };
    one(Value::Number(v))
}

/// Marks a Lua state as outside a script invocation (Redis: no run context), where
/// `math.random` and `math.randomseed` fail as in Redis (e.g. while FUNCTION LOAD runs a library's
/// body). A state starts inside; the scripting core sets this around such loads.
pub fn set_outside_invocation(lua: &Lua, outside: bool) {
    if outside {
        lua.set_app_data(OutsideInvocation);
    } else {
        lua.remove_app_data::<OutsideInvocation>();
    }
}

struct OutsideInvocation;

fn check_invocation(lua: &Lua, name: &str) -> LResult<()> {
    if lua.app_data_ref::<OutsideInvocation>().is_some() {
        return Err(Raise::error(format!("{name} can only be called inside a script invocation")));
    }
    Ok(())
}

fn math_random(lua: &Lua, args: MultiValue) -> LResult<MultiValue> {
    check_invocation(lua, "math.random")?;
    let r = (next_global() % LRAND48_MAX) as f64 / LRAND48_MAX as f64;
    random_with(&Args::new(lua, args), r)
}

fn math_randomseed(lua: &Lua, args: MultiValue) -> LResult<MultiValue> {
    check_invocation(lua, "math.randomseed")?;
    let seed = Args::new(lua, args).check_int(1)?;
    seed_global(seed);
    Ok(MultiValue::new())
}

/// Replaces `math.random` and `math.randomseed` in the global `math` table.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let math: Table = lua.globals().get("math")?;
    math.set("random", lib_function(lua, math_random)?)?;
    math.set("randomseed", lib_function(lua, math_randomseed)?)?;
    Ok(())
}
