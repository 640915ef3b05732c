#!/usr/bin/env python3
"""Issue 15 item 7: grammar fuzzer for EVAL. Random Lua programs built from the scripting API run on a
reference redis-server and on a candidate, the replies compared; the candidate must never crash or hang.

    eval_fuzz.py REF_PORT CAND_PORT [--seed N] [--seconds S | --scripts N] [--show N] [--strict] [--dump-every N]

A program is a few statements (locals, if/else, bounded for loops, pcall blocks, table inserts,
redis.setresp, redis.log, error()) over expressions from the API: redis.call / redis.pcall with random
commands of every family and random arguments (strings, numbers, booleans, nil, tables, KEYS/ARGV),
redis.error_reply / status_reply / sha1hex / acl_check_cmd, cjson, cmsgpack, struct and bit calls,
string and math operations, and table constructors (nested, with holes, {ok=}, {err=}, {double=},
{map=}, {set=}, {big_number=}); it returns one of them. Each runs by EVAL (sometimes EVAL_RO or a
`#!lua flags=no-writes` shebang) on a RESP2 or a RESP3 connection of each server; both hold the same data
(every script writes the same keys on both), so the replies must be equal. What is left out is what is
not deterministic: commands with a random or time-dependent result (SPOP, RANDOMKEY, TIME, TTL, ...), and
unordered replies (SMEMBERS, HGETALL, ...) are only called in RESP2 scripts that sort them.

Comparison: replies are parsed (RESP2/RESP3) and compared exactly; a mismatch where both are errors
with the same first word is "soft" (message text), any other is "hard". Every 250 scripts the keyspaces
are compared (sorted dumps) and SCRIPT FLUSH is sent. A crash (connection closed, no PONG) or a hang
(no reply within 20 s) exits 2 at once; --strict exits 1 on any hard mismatch.
The last line reads 'N scripts, H hard mismatches, S soft mismatches'. Python standard library only.
"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import Closed, Conn  # noqa: E402

# --- the grammar ------------------------------------------------------------------------------------

KEYS = ["fz:s0", "fz:s1", "fz:n0", "fz:l0", "fz:l1", "fz:h0", "fz:h1", "fz:t0", "fz:z0", "fz:z1", "fz:x0",
        "fz:b0", "fz:p0", "fz:none"]
FIELDS = ["'a'", "'b'", "'c'", "'f1'"]
MEMBERS = ["'m1'", "'m2'", "'m3'", "'x'"]


def lstr(r):
    return r.choice(["''", "'a'", "'abc'", "'hello world'", "'10'", "'-3'", "'2.5'", "'1e3'", "'inf'", "'-inf'",
                     "'nan'", "'0x10'", "' 7'", "'\\0bin\\255'", "'9223372036854775807'", "'9223372036854775808'",
                     "'{\"a\":[1,2]}'", "'ERR fake'", "'OK'", "'*'", "'k?'", "'\\r\\n'", "'\\195\\169'"])


def lnum(r):
    return r.choice(["0", "1", "-1", "2", "3", "7", "10", "100", "2.5", "-0.5", "1e3", "1e300", "0.1", "2^31",
                     "2^53", "2^63", "-2^63", "1/3", "(1/0)", "(-1/0)", "(0/0)", "4294967296", "-7", "255", "65536"])


class Gen:
    """One program: tracks its locals, loop variable and RESP mode."""

    def __init__(self, r, nkeys, nargs, resp3):
        self.r = r
        self.nkeys = nkeys
        self.nargs = nargs
        self.resp3 = resp3
        self.locals = []
        self.loop = []
        self.n = 0

    # keys, values and arguments ------------------------------------------------------------------

    def key(self):
        r = self.r
        if self.nkeys and r.random() < 0.8:
            return "KEYS[%d]" % r.randint(1, self.nkeys + (1 if r.random() < 0.05 else 0))
        return "'%s'" % r.choice(KEYS)

    def argv(self):
        return "ARGV[%d]" % self.r.randint(1, max(1, self.nargs) + (1 if self.r.random() < 0.05 else 0))

    def val(self):
        """A command argument: mostly strings and numbers; sometimes a value of another Lua type."""
        r = self.r
        k = r.random()
        if k < 0.35:
            return lstr(r)
        if k < 0.6:
            return lnum(r)
        if k < 0.7 and self.nargs:
            return self.argv()
        if k < 0.75 and self.loop:
            return r.choice(self.loop)
        if k < 0.8 and self.locals:
            return r.choice(self.locals)
        if k < 0.83:
            return r.choice(["true", "false", "nil", "{}", "{1}", "redis"])
        if k < 0.9:
            return "tostr(%s)" % self.expr(2)
        return "string.rep('x', %d)" % r.choice([0, 1, 5, 64, 300])

    def num(self):
        r = self.r
        k = r.random()
        if k < 0.6:
            return r.choice(["0", "1", "-1", "2", "3", "5", "10", "-2", "100"])
        if k < 0.8:
            return lnum(r)
        if k < 0.9 and self.loop:
            return r.choice(self.loop)
        return self.val()

    def score(self):
        return self.r.choice(["1", "2", "2.5", "-1", "0", "'inf'", "'-inf'", "'nan'", "'x'", "1e300", "'(1'", "3"])

    def fld(self):
        return self.r.choice(FIELDS + [self.val()])

    def mem(self):
        return self.r.choice(MEMBERS + [self.val()])

    def xid(self):
        return self.r.choice(["'1-1'", "'1-2'", "'2-0'", "'5'", "'0-1'", "'3-*'", "'bad'", "'18446744073709551615-1'"])

    # commands -------------------------------------------------------------------------------------

    def command(self):
        """A list of Lua expressions: the command name and its arguments."""
        r = self.r
        k, v, n, f, m = self.key, self.val, self.num, self.fld, self.mem
        ordered = [
            lambda: ["'set'", k(), v()] + r.choice([[], ["'EX'", "100"], ["'NX'"], ["'XX'"], ["'GET'"], ["'KEEPTTL'"],
                                                   ["'PX'", r.choice(["100000", "'x'", "-5", "0", "2^63"])], ["'EX'", "0"]]),
            lambda: ["'get'", k()],
            lambda: ["'getset'", k(), v()],
            lambda: ["'incr'", k()],
            lambda: ["'incrby'", k(), n()],
            lambda: ["'decrby'", k(), n()],
            lambda: ["'incrbyfloat'", k(), n()],
            lambda: ["'append'", k(), v()],
            lambda: ["'strlen'", k()],
            lambda: ["'getrange'", k(), n(), n()],
            lambda: ["'setrange'", k(), r.choice(["0", "1", "3", "-1", "x"]), v()],
            lambda: ["'mset'", k(), v(), k(), v()],
            lambda: ["'mget'", k(), k(), k()],
            lambda: ["'setnx'", k(), v()],
            lambda: ["'del'", k()] + ([k()] if r.random() < 0.3 else []),
            lambda: ["'exists'", k(), k()],
            lambda: ["'type'", k()],
            lambda: ["'expire'", k(), r.choice(["100", "1000", "-1", "x"])] + r.choice([[], ["'NX'"], ["'GT'"]]),
            lambda: ["'persist'", k()],
            # TTL itself is left out: seconds left depend on when each server reads its clock.
            lambda: ["'persist'", k()] if r.random() < 0.5 else ["'pexpire'", k(), "100000"],
            lambda: ["'rename'", k(), k()],
            lambda: ["'copy'", k(), k()] + r.choice([[], ["'REPLACE'"]]),
            lambda: ["'lpush'", k(), v()] + ([v()] if r.random() < 0.4 else []),
            lambda: ["'rpush'", k(), v()],
            lambda: ["'lpop'", k()] + ([n()] if r.random() < 0.3 else []),
            lambda: ["'rpop'", k()],
            lambda: ["'lrange'", k(), n(), n()],
            lambda: ["'llen'", k()],
            lambda: ["'lindex'", k(), n()],
            lambda: ["'lset'", k(), n(), v()],
            lambda: ["'lrem'", k(), n(), v()],
            lambda: ["'linsert'", k(), r.choice(["'BEFORE'", "'AFTER'", "'x'"]), v(), v()],
            lambda: ["'lpos'", k(), v()] + r.choice([[], ["'RANK'", n()], ["'COUNT'", n()]]),
            lambda: ["'lmove'", k(), k(), r.choice(["'LEFT'", "'RIGHT'"]), r.choice(["'LEFT'", "'RIGHT'"])],
            lambda: ["'ltrim'", k(), n(), n()],
            lambda: ["'blpop'", k(), "0"],
            lambda: ["'hset'", k(), f(), v()] + ([f(), v()] if r.random() < 0.3 else []),
            lambda: ["'hget'", k(), f()],
            lambda: ["'hdel'", k(), f()],
            lambda: ["'hlen'", k()],
            lambda: ["'hincrby'", k(), f(), n()],
            lambda: ["'hincrbyfloat'", k(), f(), n()],
            lambda: ["'hmget'", k(), f(), f()],
            lambda: ["'hexists'", k(), f()],
            lambda: ["'hsetnx'", k(), f(), v()],
            lambda: ["'hstrlen'", k(), f()],
            lambda: ["'sadd'", k(), m()] + ([m()] if r.random() < 0.4 else []),
            lambda: ["'srem'", k(), m()],
            lambda: ["'scard'", k()],
            lambda: ["'sismember'", k(), m()],
            lambda: ["'smismember'", k(), m(), m()],
            lambda: ["'smove'", k(), k(), m()],
            lambda: ["'zadd'", k()] + r.choice([[], [], ["'NX'"], ["'XX'"], ["'GT'"], ["'INCR'"], ["'CH'"]])
            + [self.score(), m()],
            lambda: ["'zincrby'", k(), self.score(), m()],
            lambda: ["'zscore'", k(), m()],
            lambda: ["'zrank'", k(), m()],
            lambda: ["'zcard'", k()],
            lambda: ["'zrem'", k(), m()],
            lambda: ["'zrange'", k(), n(), n()] + r.choice([[], ["'WITHSCORES'"], ["'REV'"]]),
            lambda: ["'zrangebyscore'", k(), self.score(), self.score()] + r.choice([[], ["'WITHSCORES'"],
                                                                                     ["'LIMIT'", n(), n()]]),
            lambda: ["'zpopmin'", k()] + ([n()] if r.random() < 0.3 else []),
            lambda: ["'zcount'", k(), self.score(), self.score()],
            lambda: ["'zmscore'", k(), m(), m()],
            lambda: ["'xadd'", k()] + r.choice([[], ["'MAXLEN'", n()], ["'NOMKSTREAM'"]]) + [self.xid(), f(), v()],
            lambda: ["'xlen'", k()],
            lambda: ["'xrange'", k(), "'-'", "'+'"] + r.choice([[], ["'COUNT'", n()]]),
            lambda: ["'xrevrange'", k(), "'+'", "'-'", "'COUNT'", "2"],
            lambda: ["'xdel'", k(), self.xid()],
            lambda: ["'xtrim'", k(), "'MAXLEN'", n()],
            lambda: ["'xread'", "'COUNT'", "2", "'STREAMS'", k(), "'0'"],
            lambda: ["'setbit'", k(), r.choice(["0", "7", "100", "-1", "x"]), r.choice(["0", "1", "2"])],
            lambda: ["'getbit'", k(), n()],
            lambda: ["'bitcount'", k()] + ([n(), n()] if r.random() < 0.3 else []),
            lambda: ["'bitpos'", k(), r.choice(["0", "1"])],
            lambda: ["'pfadd'", k(), m(), m()],
            lambda: ["'pfcount'", k()],
            lambda: ["'ping'"] + ([v()] if r.random() < 0.5 else []),
            lambda: ["'echo'", v()],
            lambda: ["'dbsize'"],
            lambda: ["'select'", r.choice(["0", "1", "16", "x"])],
            # (OBJECT ENCODING is left out: README lists a known difference.)
            lambda: ["'object'", "'freq'", k()] if r.random() < 0.1 else ["'exists'", k()],
            lambda: [r.choice(["'nosuchcommand'", "'multi'", "'exec'", "'eval'", "'subscribe'", "'watch'",
                               "'script'", "'function'", "'client'", "'config'", "'shutdown'",
                               "'SET'", "'GeT'", "''", "1", "nil", "{}"])] + [v() for _ in range(r.randint(0, 2))],
            lambda: [r.choice(["'get'", "'set'", "'hset'", "'zadd'", "'lpush'", "'incr'", "'xadd'"])],  # arity
        ]
        unordered = [
            lambda: ["'smembers'", k()],
            lambda: ["'hgetall'", k()],
            lambda: ["'hkeys'", k()],
            lambda: ["'hvals'", k()],
            lambda: ["'sinter'", k(), k()],
            lambda: ["'sunion'", k(), k()],
            lambda: ["'keys'", "'fz:*'"],
        ]
        if not self.resp3 and r.random() < 0.12:
            return r.choice(unordered)(), True
        return r.choice(ordered)(), False

    def call(self):
        cmd, unordered = self.command()
        fn = "redis.call" if self.r.random() < 0.55 else "redis.pcall"
        c = "%s(%s)" % (fn, ", ".join(cmd))
        if unordered:
            # Sorted in Lua so that the reply does not depend on the servers' iteration orders.
            return "sorted(%s)" % c
        return c

    # expressions ------------------------------------------------------------------------------------

    def table(self, depth):
        r = self.r
        k = r.random()
        if k < 0.45:
            return "{%s}" % ", ".join(self.expr(depth + 1) for _ in range(r.randint(0, 4)))
        if k < 0.55:
            return "{ok = %s}" % r.choice([lstr(r), self.expr(depth + 1)])
        if k < 0.65:
            return "{err = %s}" % r.choice([lstr(r), self.expr(depth + 1)])
        if k < 0.72:
            return "{double = %s}" % r.choice([lnum(r), lstr(r)])
        if k < 0.79:
            return "{map = {%s}}" % ", ".join("%s = %s" % (r.choice("abc"), self.expr(depth + 1))
                                              for _ in range(r.randint(0, 2)))
        if k < 0.85:
            return "{set = {%s}}" % ", ".join("%s = true" % c for c in r.sample("abcd", r.randint(0, 2)))
        if k < 0.9:
            return "{big_number = %s}" % r.choice(["'123'", "'-99999999999999999999'", "'x'", "12"])
        return "{%s, nil, %s}" % (self.expr(depth + 1), self.expr(depth + 1))

    def expr(self, depth=0):
        r = self.r
        if depth > 2:
            return r.choice([lstr(r), lnum(r)] + self.locals + self.loop)
        k = r.randrange(30)
        e = lambda: self.expr(depth + 1)  # noqa: E731
        if k < 6:
            return self.call()
        if k == 6:
            return self.table(depth)
        if k == 7:
            return r.choice([lstr(r), lnum(r), "true", "false", "nil"])
        if k == 8 and self.locals:
            return r.choice(self.locals)
        if k == 9:
            return r.choice(["redis.error_reply(%s)", "redis.status_reply(%s)", "redis.sha1hex(%s)",
                             "redis.acl_check_cmd(%s)", "redis.error_reply(%s)"]) % r.choice([lstr(r), e()])
        if k == 10:
            return "cjson.encode(%s)" % r.choice([self.table(depth), e()])
        if k == 11:
            return "cjson.decode(%s)" % r.choice(["'[1,2,{\"a\":null}]'", "'{\"x\":1.5}'", "'\"s\"'", "'{bad'",
                                                 "'[]'", "'1e400'", "cjson.encode(%s)" % self.table(depth)])
        if k == 12:
            return r.choice(["cmsgpack.pack(%s)", "cmsgpack.unpack(cmsgpack.pack(%s))"]) % ", ".join(
                e() for _ in range(r.randint(1, 2)))
        if k == 13:
            fmt = r.choice(["'>i4'", "'<h'", "'B'", "'>d'", "'i8'", "'s'", "'c3'", "'bad'"])
            if r.random() < 0.5:
                return "struct.pack(%s, %s)" % (fmt, r.choice([lnum(r), lstr(r), e()]))
            return "struct.unpack(%s, %s)" % (fmt, r.choice(["struct.pack('>i4', 258)", lstr(r), "'\\1\\2\\3\\4\\5\\6\\7\\8'"]))
        if k == 14:
            op = r.choice(["band", "bor", "bxor", "lshift", "rshift", "arshift", "tohex", "bnot", "tobit", "rol", "bswap"])
            return "bit.%s(%s)" % (op, ", ".join(self.num() for _ in range(r.randint(1, 2))))
        if k == 15:
            return r.choice(["string.rep(%s, %d)" % (lstr(r), r.randint(0, 5)), "string.upper(%s)" % e(),
                             "string.sub(%s, %s, %s)" % (e(), self.num(), self.num()), "string.len(%s)" % e(),
                             "string.reverse(%s)" % lstr(r), "string.format('%%s|%%d', %s, %s)" % (e(), self.num()),
                             "string.format('%%.3f', %s)" % self.num(), "string.byte(%s, 1)" % e(),
                             "string.char(%d, %d)" % (r.randint(0, 255), r.randint(65, 90)),
                             "string.find(%s, 'a', 1, true)" % e(), "(string.gsub(%s, 'l', 'L'))" % e(),
                             "(%s .. %s)" % (e(), e()), "#%s" % e(), "string.lower(%s)" % lstr(r)])
        if k == 16:
            return r.choice(["(%s + %s)", "(%s * %s)", "(%s - %s)", "(%s / %s)", "(%s %% %s)", "(%s ^ 2)"]).replace(
                "%s", "{}").format(*[self.num() for _ in range(2)])
        if k == 17:
            return r.choice(["math.floor(%s)", "math.abs(%s)", "math.max(%s, 3)", "math.sqrt(%s)", "math.fmod(%s, 3)",
                             "tonumber(%s)", "tostr(%s)", "type(%s)", "select('#', %s)"]) % e()
        if k == 18:
            return "(%s == %s)" % (e(), e())
        if k == 19:
            return "(%s and %s or %s)" % (e(), e(), e())
        if k == 20:
            cmd, unordered = self.command()
            while unordered:
                cmd, unordered = self.command()
            return "({pcall(%s)})" % r.choice(["redis.call, %s" % ", ".join(cmd),
                                               "error, %s" % r.choice([lstr(r), "{err='E1 t'}", "5"]),
                                               "function() return %s end" % e()])
        if k == 21:
            return self.argv() if self.nargs else "#ARGV"
        if k == 22:
            return "KEYS[%d]" % r.randint(1, self.nkeys + 1)
        if k == 23:
            return "redis.setresp(%s)" % r.choice(["2", "4", "'x'"])  # 3 only at the start (see Gen)
        if k == 24:
            return "math.random(%s)" % r.choice(["", "10", "5, 9"]) if self.seeded else "math.pi"
        if k == 25:
            return "redis.REDIS_VERSION"
        if k == 26:
            return "cjson.decode(cjson.encode(%s))" % self.table(depth)
        if k == 27 and self.loop:
            return r.choice(self.loop)
        return self.call()

    # statements ----------------------------------------------------------------------------------

    def new_local(self):
        self.n += 1
        name = "v%d" % self.n
        return name

    def stmt(self, depth):
        r = self.r
        k = r.randrange(16)
        if k < 4:
            rhs = self.expr()
            name = self.new_local()
            self.locals.append(name)
            return "local %s = %s" % (name, rhs)
        if k < 7:
            return self.call()
        if k == 7 and depth < 2:
            var = "i%d" % (len(self.loop) + 1)
            self.loop.append(var)
            body = self.block(depth + 1, 1, 2)
            self.loop.pop()
            return "for %s = 1, %d do %s end" % (var, r.randint(0, 4), body)
        if k == 8 and depth < 2:
            return "if %s then %s else %s end" % (self.expr(1), self.block(depth + 1, 1, 2), self.block(depth + 1, 0, 1))
        if k == 9 and depth < 2:
            return "local ok%d, e%d = pcall(function() %s end)" % (self.n, self.n, self.block(depth + 1, 1, 2))
        if k == 10 and self.locals:
            return "%s = %s" % (r.choice(self.locals), self.expr())
        if k == 11:
            return "redis.log(redis.LOG_DEBUG, tostr(%s))" % self.expr(1)
        if k == 12 and r.random() < 0.3:
            return "error(%s)" % r.choice([lstr(r), "{err = 'MYERR raised'}", "redis.error_reply('X y')", "nil", "7"])
        if k == 13:
            return "tbl[#tbl + 1] = %s" % self.expr()
        if k == 14:
            return "redis.setresp(%s)" % r.choice(["2", "4"]) if not self.resp3 else self.call()
        return self.call()

    def block(self, depth, lo, hi):
        saved = list(self.locals)
        out = " ".join(self.stmt(depth) for _ in range(self.r.randint(lo, hi)))
        self.locals = saved  # locals of a block end with it
        return out

    def program(self):
        r = self.r
        self.seeded = r.random() < 0.1
        head = []
        if self.resp3:
            head.append("redis.setresp(3)")
        if self.seeded:
            head.append("math.randomseed(%d)" % r.randint(0, 1000))
        head.append("local tbl = {}")
        stmts = [self.stmt(0) for _ in range(r.randint(1, 6))]
        ret = r.choice(["return %s" % self.expr(), "return tbl", "return {%s}" % ", ".join(
            self.expr(1) for _ in range(r.randint(1, 4))), "return %s" % self.table(0), ""])
        # Several lines, so error messages carry line numbers.
        lines = head + stmts + [ret]
        return "\n".join(lines)


PRELUDE = ("local function tostr(x) if type(x) == 'table' then return 'table' end return tostring(x) end\n"
           "local function sorted(t) if type(t) == 'table' and t.err == nil then table.sort(t, function(a, b)"
           " return tostring(a) < tostring(b) end) end return t end\n")


def gen_script(r):
    """(command and arguments, resp3)."""
    resp3 = r.random() < 0.3
    nkeys = r.randint(0, 3)
    nargs = r.randint(0, 3)
    g = Gen(r, nkeys, nargs, resp3)
    body = PRELUDE + g.program()
    cmd = "EVAL"
    if r.random() < 0.1:
        cmd = "EVAL_RO"
    elif r.random() < 0.05:
        body = "#!lua flags=no-writes\n" + body
    keys = [r.choice(KEYS) for _ in range(nkeys)]
    args = [r.choice(["a", "1", "2.5", "-3", "", "x y", "10", "OK", "fz:s0", "nan"]) for _ in range(nargs)]
    return [cmd, body, str(nkeys)] + keys + args, resp3


# --- state comparison ---------------------------------------------------------------------------------


def dump(c):
    """The fuzz keys of the server, every type read in an order-independent way."""
    out = []
    for k in KEYS:
        t = c.call("TYPE", k)[1]
        if t == b"string":
            v = c.call("GET", k)
        elif t == b"list":
            v = c.call("LRANGE", k, "0", "-1")
        elif t == b"hash":
            v = sorted(c.call("HGETALL", k))
        elif t == b"set":
            v = sorted(c.call("SMEMBERS", k))
        elif t == b"zset":
            v = c.call("ZRANGE", k, "0", "-1", "WITHSCORES")
        elif t == b"stream":
            v = c.call("XRANGE", k, "-", "+")
        else:
            v = None
        ttl = c.call("TTL", k)
        out.append((k, t, v, ttl >= 0 if isinstance(ttl, int) else ttl))
    return out


def show(x, limit=300):
    s = repr(x)
    return s if len(s) <= limit else s[:limit] + "..."


def main():
    argv = sys.argv[1:]
    if len(argv) < 2:
        raise SystemExit(__doc__)
    ref_port, cand_port = int(argv[0]), int(argv[1])
    opt = lambda name, d: type(d)(argv[argv.index(name) + 1]) if name in argv else d  # noqa: E731
    seed = opt("--seed", 1)
    seconds = opt("--seconds", 0.0)
    nscripts = opt("--scripts", 0 if seconds else 2000)
    nshow = opt("--show", 5)
    strict = "--strict" in argv
    every = opt("--dump-every", 250)
    r = random.Random(seed)

    ref = {False: Conn(ref_port, timeout=20), True: Conn(ref_port, resp3=True, timeout=20)}
    cand = {False: Conn(cand_port, timeout=20), True: Conn(cand_port, resp3=True, timeout=20)}
    for c in (ref[False], cand[False]):
        c.call("FLUSHALL")
        c.call("SCRIPT", "FLUSH")
    start = time.time()
    done = hard = soft = state_diffs = 0
    shown = 0
    try:
        while (seconds and time.time() - start < seconds) or (not seconds and done < nscripts):
            cmd, resp3 = gen_script(r)
            a = ref[resp3].call(*cmd)
            b = cand[resp3].call(*cmd)
            done += 1
            if a != b:
                both_err = isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "error"
                is_soft = both_err and a[1].split(b" ")[0] == b[1].split(b" ")[0]
                if is_soft:
                    soft += 1
                else:
                    hard += 1
                if shown < nshow:
                    shown += 1
                    print("--- %s mismatch (script %d, %s):\n%s\n  keys/args: %s\n  redis: %s\n  ours:  %s" % (
                        "soft" if is_soft else "HARD", done, "RESP3" if resp3 else "RESP2", cmd[1],
                        cmd[2:], show(a), show(b)))
            if done % every == 0:
                da, db = dump(ref[False]), dump(cand[False])
                if da != db:
                    state_diffs += 1
                    hard += 1
                    if shown < nshow:
                        shown += 1
                        diff = [(x, y) for x, y in zip(da, db) if x != y]
                        print("--- HARD keyspace differs after script %d: %s\n  last script (%s): %s\n  keys/args: %s"
                              % (done, show(diff, 600), "RESP3" if resp3 else "RESP2", cmd[1], cmd[2:]))
                    for c in (ref[False], cand[False]):
                        c.call("FLUSHALL")
                if done % 250 == 0:
                    for c in (ref[False], cand[False]):
                        c.call("SCRIPT", "FLUSH")
        if cand[False].call("PING") != ("status", b"PONG"):
            raise Closed("no PONG from the candidate at the end")
    except Closed as e:
        print("CRASH/HANG after %d scripts (seed %d): %s" % (done, seed, e))
        print("last script: %s" % show(cmd, 2000))
        sys.exit(2)
    print("%d scripts in %.0f s (seed %d): %d keyspace differences" % (done, time.time() - start, seed, state_diffs))
    print("%d scripts, %d hard mismatches, %d soft mismatches" % (done, hard, soft))
    if strict and hard:
        sys.exit(1)


if __name__ == "__main__":
    main()
