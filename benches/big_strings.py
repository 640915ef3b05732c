#!/usr/bin/env python3
"""Writes to one large string, flurrydb against redis-server, side by side (python3 stdlib only).

    python3 benches/big_strings.py [--n N] [--conns C] [--pipeline P] [--rounds R] [--size BYTES]
                                   [--flurry PATH] [--port BASE]

Each test first builds its key (a string of --size bytes, 1 MB by default: SETBIT at its last bit;
for PFADD a dense HyperLogLog, 12 KB, the largest an HLL gets), then C connections (one process
each) send N commands in all, P at a time (a window of P pipelined commands, then their replies),
to that ONE key:
  setbit    SETBIT big <off> 1 / SETBIT big <off> 0 in pairs at spread offsets: every one changes a bit
  bitfield  BITFIELD big INCRBY u8 <off> 1 at spread offsets: every one changes a byte
  append    APPEND big x (the string grows by N bytes)
  pfadd     PFADD hll <new element>: the registers an element raises (most, early on, change nothing)
redis-benchmark cannot send these (its __rand_int__ is zero-padded, which bit offsets refuse), hence
this driver; it costs the same on both servers. The servers are started here (--save '' --appendonly
no), alternate test by test (the order flips every round) and are killed on exit; per test the best
of the rounds is kept. Prints ops/s of each and the ratio flurrydb/redis.
"""
import argparse
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def enc(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def commands(test, worker, n, size):
    bits = size * 8
    out = []
    for j in range(n):
        k = worker * 1_000_003 + j
        if test == "setbit":
            off = (k // 2 * 2654435761) % bits
            out.append((enc("SETBIT", "big", off, 1 - (k & 1)), 1))
        elif test == "bitfield":
            off = (k * 2654435761) % (bits - 8)
            out.append((enc("BITFIELD", "big", "INCRBY", "u8", off, 1), 2))
        elif test == "append":
            out.append((enc("APPEND", "big", "x"), 1))
        else:
            out.append((enc("PFADD", "hll", "w%d-%d" % (worker, j)), 1))
    return out


def worker(args):
    port, test, w, n, size, pipeline = args
    cmds = commands(test, w, n, size)
    batches = []
    for i in range(0, len(cmds), pipeline):
        chunk = cmds[i:i + pipeline]
        batches.append((b"".join(c for c, _ in chunk), sum(lines for _, lines in chunk)))
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start = time.perf_counter()
    for data, lines in batches:
        s.sendall(data)
        seen = 0
        while seen < lines:
            buf = s.recv(65536)
            if not buf:
                raise SystemExit("connection closed")
            if b"-" in buf[:1]:
                raise SystemExit("error reply: %r" % buf[:200])
            seen += buf.count(b"\r\n")
    s.close()
    return time.perf_counter() - start


def call(port, *args):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(enc(*args))
    data = s.recv(65536)
    s.close()
    return data


def setup(port, test, size):
    call(port, "FLUSHALL")
    if test == "pfadd":
        call(port, "PFADD", "hll", "seed")
        call(port, "PFDEBUG", "TODENSE", "hll")
        assert call(port, "STRLEN", "hll").startswith(b":12304"), "a dense HLL"
    else:
        call(port, "SETBIT", "big", size * 8 - 1, 1)
        assert call(port, "STRLEN", "big") == b":%d\r\n" % size


def run(port, test, n, conns, pipeline, size):
    setup(port, test, size)
    with mp.Pool(conns) as pool:
        start = time.perf_counter()
        pool.map(worker, [(port, test, w, n // conns, size, pipeline) for w in range(conns)])
        elapsed = time.perf_counter() - start
    return (n // conns) * conns / elapsed


def start(cmd, port):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            if call(port, "PING").startswith(b"+PONG"):
                return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise SystemExit("server on %d did not start" % port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--size", type=int, default=1 << 20)
    ap.add_argument("--tests", default="setbit,bitfield,append,pfadd")
    ap.add_argument("--flurry", default=os.path.join(REPO, "target/release/flurrydb-server"))
    ap.add_argument("--port", type=int, default=25100)
    a = ap.parse_args()
    dirs = [tempfile.mkdtemp(prefix="bigstr-") for _ in range(2)]
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    servers = {
        "redis": (a.port, ["redis-server", "--port", str(a.port), "--dir", dirs[0]] + common),
        "flurrydb": (a.port + 1, [a.flurry, "--port", str(a.port + 1), "--dir", dirs[1]] + common),
    }
    procs = {name: start(cmd, port) for name, (port, cmd) in servers.items()}
    best = {}
    try:
        for r in range(a.rounds):
            for test in a.tests.split(","):
                order = ["redis", "flurrydb"] if (r % 2 == 0) else ["flurrydb", "redis"]
                for name in order:
                    ops = run(servers[name][0], test, a.n, a.conns, a.pipeline, a.size)
                    best[(test, name)] = max(best.get((test, name), 0), ops)
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
    print("| test (one %d-byte string, %d conns, pipeline %d) | redis ops/s | flurrydb ops/s | ratio |" % (
        a.size, a.conns, a.pipeline))
    print("|---|---:|---:|---:|")
    for test in a.tests.split(","):
        r, f = best[(test, "redis")], best[(test, "flurrydb")]
        print("| %s | %.0f | %.0f | %.2f |" % (test, r, f, f / r))


if __name__ == "__main__":
    sys.exit(main())
