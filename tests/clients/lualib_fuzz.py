#!/usr/bin/env python3
"""Random Lua library cases (cjson, cmsgpack, struct, bit, math.random) recorded on a real
redis-server 7.0.15, for the Rust side to replay (python3 standard library only):

  lualib_fuzz.py PORT OUT [--seed N] [--n COUNT]
  LUALIB_EXTRA=OUT cargo test --lib lualib::tests::extra_recorded_cases

OUT has the format of tests/lualib/expected.txt (body TAB reply). Bodies create their own
cjson instance (cjson.new()) so no case depends on another's settings.
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lualib_vs_redis import Conn, run  # noqa: E402


def lstr(b):
    """A Lua string literal of bytes b (every byte outside [A-Za-z0-9 ] as \\ddd)."""
    out = []
    for c in b:
        ch = chr(c)
        if ch.isalnum() and c < 128 or ch == " ":
            out.append(ch)
        else:
            out.append("\\%03d" % c)
    return '"' + "".join(out) + '"'


NUMS = ["0", "-0.0", "1", "-1", "0.5", "0.1", "1/3", "-2/3", "1e15", "1e14", "123456789012345",
        "2^31", "2^31-1", "-2^31", "2^32", "2^32+1", "2^53", "2^53+1", "2^63", "-2^63", "2^64",
        "1e300", "1e-300", "5e-324", "3.4028234663852886e38", "1.5", "2.5", "-1.5", "255", "256",
        "65535", "65536", "127", "128", "-32", "-33", "-128", "-129", "-32768", "-32769",
        "4294967295", "4294967296", "0.30000000000000004", "1e21", "99999999999999.9"]
SPECIAL = ["1/0", "-1/0", "0/0"]


def rnum(r, special=False):
    if r.random() < 0.5:
        s = r.choice(NUMS + (SPECIAL if special else []))
    elif r.random() < 0.5:
        s = str(r.randint(-10**6, 10**6))
    else:
        s = repr(r.uniform(-1e6, 1e6) * 10 ** r.randint(-12, 12))
    return "(" + s + ")"


def rbytes(r, n):
    pool = b"abc \"\\/\x00\x01\x1f\x7f\x80\xff\xc3\xa9\t\n{}[]:,u0123456789"
    return bytes(r.choice(pool) for _ in range(n))


def rvalue(r, depth):
    k = r.random()
    if k < 0.25:
        return rnum(r)
    if k < 0.45:
        return lstr(rbytes(r, r.randint(0, 8)))
    if k < 0.5:
        return r.choice(["true", "false", "cjson.null"])
    if depth > 3:
        return "nil"
    return rtable(r, depth + 1)


def rtable(r, depth):
    n = r.randint(0, 6)
    parts = []
    style = r.random()
    for i in range(n):
        if style < 0.4:
            parts.append(rvalue(r, depth))
        elif style < 0.7:
            key = r.choice([str(r.randint(-2, 25)), rnum(r), lstr(rbytes(r, r.randint(0, 4))), "1.5", "2^31"])
            parts.append("[%s]=%s" % (key, rvalue(r, depth)))
        else:
            parts.append("%s=%s" % (r.choice("abcxyz"), rvalue(r, depth)))
    return "{" + ",".join(parts) + "}"


JSON_FRAGS = ["{", "}", "[", "]", ",", ":", '"a"', '"\\u00e9"', '"\\ud83d\\ude00"', '"\\ud83d"', '"\\n"',
              '"\\x"', "1", "-1", "0.5", "1e5", "1E-2", "-0", "007", "0x1F", "+1", "inf", "-Infinity",
              "nan", "NaN", "true", "false", "null", "nul", " ", "\t", "\n", "1.", ".5", "-", "e", "\\",
              '"', "\x00", "\x80", "1e400", "12345678901234567890"]


def rjson(r):
    if r.random() < 0.5:
        import json
        def gen(d):
            k = r.random()
            if k < 0.3 or d > 3:
                return r.choice([1, -2.5, 0, 1e20, "s", "\u00e9", True, False, None, 123456789])
            if k < 0.65:
                return [gen(d + 1) for _ in range(r.randint(0, 4))]
            return {r.choice("abcd"): gen(d + 1) for _ in range(r.randint(0, 4))}
        s = json.dumps(gen(0)).encode("utf-8")
        s = bytearray(s)
        for _ in range(r.randint(0, 2)):
            op = r.random()
            pos = r.randint(0, len(s))
            if op < 0.4 and s:
                del s[min(pos, len(s) - 1)]
            else:
                s[pos:pos] = r.choice(JSON_FRAGS).encode("latin-1")
        return bytes(s)
    return "".join(r.choice(JSON_FRAGS) for _ in range(r.randint(1, 8))).encode("latin-1")


def rmsgpack(r):
    pool = [0x00, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x91, 0x9f, 0xa0, 0xa1, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3,
            0xc4, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd9, 0xda, 0xdb,
            0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff, 0x01, 0x41, 0x00, 0x00]
    return bytes(r.choice(pool) if r.random() < 0.7 else r.randint(0, 255) for _ in range(r.randint(0, 12)))


def rstruct_fmt(r):
    opts = ["<", ">", "!", "!4", "!2", "!8", " ", "x", "b", "B", "h", "H", "l", "L", "T", "i", "I",
            "i3", "I5", "i8", "i9", "I16", "f", "d", "c2", "c0", "s", "i0", "?"]
    return "".join(r.choice(opts) for _ in range(r.randint(0, 5)))


def case(r):
    k = r.randrange(9)
    if k == 0:
        return "return cjson.new().decode(%s)" % lstr(rjson(r))
    if k == 1:
        prec = r.randint(1, 14)
        inv = r.choice(["false", "true", '"null"'])
        sparse = "%s, %d, %d" % (r.choice(["true", "false"]), r.randint(1, 3), r.randint(0, 12))
        return ("local c = cjson.new() c.encode_number_precision(%d) c.encode_invalid_numbers(%s) "
                "c.encode_sparse_array(%s) return c.encode(%s)" % (prec, inv, sparse, rvalue(r, 0)))
    if k == 2:
        return "return cjson.new().encode(%s)" % rtable(r, 0)
    if k == 3:
        return "return cmsgpack.unpack(%s)" % lstr(rmsgpack(r))
    if k == 4:
        args = ", ".join(rvalue(r, 0) for _ in range(r.randint(1, 3)))
        return "return cmsgpack.pack(%s)" % args
    if k == 5:
        args = ", ".join(rvalue(r, 0) for _ in range(r.randint(1, 3)))
        return "return cmsgpack.unpack(cmsgpack.pack(%s))" % args
    if k == 6:
        fmt = rstruct_fmt(r)
        if r.random() < 0.5:
            args = ", ".join(r.choice([rnum(r, True), lstr(rbytes(r, r.randint(0, 4)))]) for _ in range(r.randint(0, 4)))
            return "return struct.pack(%s%s)" % (lstr(fmt.encode()), ", " + args if args else "")
        if r.random() < 0.5:
            return "return struct.unpack(%s, %s, %s)" % (lstr(fmt.encode()), lstr(bytes(r.randint(0, 255) for _ in range(r.randint(0, 20)))), r.choice(["1", "2", "nil", "0", "-1", "30"]))
        return "return struct.size(%s)" % lstr(fmt.encode())
    if k == 7:
        op = r.choice(["tobit", "bnot", "band", "bor", "bxor", "lshift", "rshift", "arshift", "rol", "ror", "bswap", "tohex"])
        args = ", ".join(rnum(r, True) for _ in range(r.randint(1, 3)))
        return "return bit.%s(%s)" % (op, args)
    seed = r.choice([str(r.randint(-2**31, 2**31 - 1)), rnum(r)])
    calls = ", ".join(r.choice(["math.random()", "math.random(%d)" % r.randint(1, 10**6),
                                "math.random(%d, %d)" % (r.randint(-100, 0), r.randint(0, 100))]) for _ in range(3))
    return "math.randomseed(%s) return %s" % (seed, calls)


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    port, out = int(sys.argv[1]), sys.argv[2]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1
    n = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else 2000
    r = random.Random(seed)
    conn = Conn(port)
    with open(out, "w", encoding="latin-1", newline="\n") as f:
        for _ in range(n):
            body = case(r)
            f.write(body + "\t" + run(conn, body) + "\n")
    print("recorded %d random cases (seed %d) in %s" % (n, seed, out))


if __name__ == "__main__":
    main()
