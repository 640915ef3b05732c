#!/usr/bin/env python3
"""Runs the Lua library cases of tests/lualib/cases.txt through EVAL on a server and records or
checks the replies (python3 standard library only).

  lualib_vs_redis.py PORT --record   # on a real redis-server 7.0.15: write tests/lualib/expected.txt
  lualib_vs_redis.py PORT            # on any server: compare its replies with expected.txt

Each case is one line of Lua (a function body). It runs wrapped in WRAPPER (also used by the Rust
unit tests in src/lualib/tests.rs, which carry the recorded replies to a plain mlua state): the
body's results, or its error, are turned into one printable line by a Lua `dump`, so the reply is
the same bytes whichever server computes it. Everything is on one line, so errors read
`user_script:1: ...` as in Redis.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CASES = os.path.join(ROOT, "tests", "lualib", "cases.txt")
EXPECTED = os.path.join(ROOT, "tests", "lualib", "expected.txt")
WRAPPER = os.path.join(ROOT, "tests", "lualib", "wrapper.lua")

sys.path.insert(0, HERE)
from compare import Conn  # noqa: E402,F401 (lualib_fuzz.py imports Conn from here too)


def cases():
    with open(CASES, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.strip() and not line.startswith("#"):
                if "\t" in line:
                    raise SystemExit("tab in case: " + line)
                yield line


def script(body):
    with open(WRAPPER, encoding="utf-8") as f:
        w = f.read().strip()
    return w.replace("BODY", body)


def run(conn, body):
    r = conn.call("EVAL", script(body), "0")
    if isinstance(r, tuple):
        if r[0] != "error":
            raise ValueError("not a bulk reply: %r" % (r,))
        return "EVALERROR " + r[1].decode("latin-1")
    return r.decode("latin-1")


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    port = int(sys.argv[1])
    record = "--record" in sys.argv
    conn = Conn(port)
    if record:
        info = conn.call("INFO", "server").decode()
        if "redis_version:7.0.15" not in info:
            raise SystemExit("--record needs redis-server 7.0.15")
        with open(EXPECTED, "w", encoding="latin-1", newline="\n") as f:
            n = 0
            for body in cases():
                f.write(body + "\t" + run(conn, body) + "\n")
                n += 1
        print("recorded %d cases" % n)
        return
    bad = 0
    n = 0
    with open(EXPECTED, encoding="latin-1") as f:
        for line in f:
            body, want = line.rstrip("\n").split("\t", 1)
            got = run(conn, body)
            n += 1
            if got != want:
                bad += 1
                print("MISMATCH %s\n  want %s\n  got  %s" % (body, want, got))
    print("%d cases, %d mismatches" % (n, bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
