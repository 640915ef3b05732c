#!/usr/bin/env python3
"""Redis and several flurrydb binaries side by side in one run (an A/B of a change, with Redis as the ruler).

    python3 benches/ab_vs_redis.py TESTS N ROUNDS NAME=BINARY [NAME=BINARY ...]
    e.g. python3 benches/ab_vs_redis.py zadd,hset,lrange_100 60000 2 before=/tmp/old-server after=target/release/flurrydb-server

Method of vs_redis.py's throughput section, for more than one flurrydb: every server started once on
127.0.0.1 (ports from $AB_PORT_BASE, default 26100; `--save ''`, Redis with appendonly no), then per round,
per test of redis-benchmark's -t names or vs_redis.py's CUSTOM command lines (SETBIT, PFADD, XADD, ...) and per pipeline (1 and 16, or $PIPES), each server in turn (the
order flips every round; the tests `ratelimit` and `unlock` are EVALSHA of vs_redis.py's SCRIPTS): FLUSHALL, a fill where the test pops (SPOP after SADD, ZPOPMIN after ZADD,
LPOP/RPOP after LPUSH, XADD before XREAD/XREADGROUP/XACK; not measured), then `redis-benchmark -c 50 -r 100000 -n N*P -P P` (N*P/10 for
LRANGE_300/600). $AB_ARGS (e.g. "--appendonly yes --appendfsync everysec") is given to every server, Redis included, in place of
Redis's --appendonly no. Kept per test: the best throughput of the rounds and the lowest server CPU per request
(utime+stime from /proc/PID/stat around the call, over the requests sent) and the fewest context switches
per request (voluntary + involuntary, summed over the server's threads from /proc/PID/task/*/status).
With more than one round it also prints, per test, the median over the rounds of each round's ratio to
the Redis call of the same round (and how many rounds reached Redis); $AB_CSV names a file for every call. $AB_PIN=1: every server on the first half of the CPUs,
redis-benchmark on the rest (see vs_redis.py --pin).
Prints rps, the ratio to Redis, CPU us/request and context switches per request for each server. On a
loaded machine trust the CPU and switch columns more than the throughput.
"""
import csv
import hashlib
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

FILL = {"spop": "sadd", "zpopmin": "zadd", "lpop": "lpush", "rpop": "lpush",
        # The stream readers read the stream an XADD run fills (after vs_redis.py's setup: the group).
        "xread": "xadd", "xreadgroup": "xadd", "xack": "xadd"}
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vs_redis import CUSTOM, SETUP, SCRIPTS, SCRIPT_ARGS, split_cpus  # noqa: E402  the command lines of the tests with no -t name

# vs_redis.py's scripts as tests too: `ratelimit` and `unlock` are EVALSHA of its SCRIPTS (loaded
# with SCRIPT LOAD before each measured call; FLUSHALL keeps the script cache).
for _name, _body in SCRIPTS.items():
    SETUP[_name] = ["SCRIPT", "LOAD", _body]
    CUSTOM[_name] = ["EVALSHA", hashlib.sha1(_body.encode()).hexdigest(), "1"] + SCRIPT_ARGS[_name]


def cpu_seconds(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def switches(pid):
    total = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            for line in open("/proc/%d/task/%s/status" % (pid, t)):
                if "ctxt_switches:" in line:
                    total += int(line.split()[-1])
        except OSError:
            pass  # a thread that ended meanwhile
    return total


# With $AB_PIN set: (servers' CPUs, load generator's CPUs), as vs_redis.py --pin splits them.
PIN = split_cpus() if os.environ.get("AB_PIN") else None


def start(binary, port, d, redis):
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", ""]
    if os.environ.get("AB_ARGS"):
        args += os.environ["AB_ARGS"].split()
    elif redis:
        args += ["--appendonly", "no"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         preexec_fn=(lambda: os.sched_setaffinity(0, PIN[0])) if PIN else None)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise SystemExit("%s did not start" % binary)


def bench(port, test, n, p):
    if test in SETUP:
        subprocess.run(["redis-cli", "-p", str(port)] + SETUP[test], capture_output=True)
    what = CUSTOM.get(test) or ["-t", test]
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-c", "50", "-r", "100000", "-n", str(n), "-P", str(p),
                          "--csv"] + what, capture_output=True, text=True).stdout
    rows = [r for r in csv.reader(io.StringIO(out)) if r and r[0] != "test"]
    return float(rows[-1][1]) if rows else 0.0


def main():
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    tests, n_base, rounds = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
    servers = [("redis", "redis-server")] + [tuple(a.split("=", 1)) for a in sys.argv[4:]]
    pipes = [int(p) for p in os.environ.get("PIPES", "1,16").split(",")]
    port0 = int(os.environ.get("AB_PORT_BASE", "26100"))
    tmp = tempfile.mkdtemp(prefix="ab_vs_redis.")
    if PIN:
        # This script and its redis-benchmark and redis-cli children on the other CPUs.
        os.sched_setaffinity(0, PIN[1])
        print("servers pinned to CPU %s, redis-benchmark to CPU %s" % (sorted(PIN[0]), sorted(PIN[1])))
    procs = {}
    best = {}
    rounds_seen = []  # (round, test, p, name, rps, cpu us/req, cs/req): every call, for the paired medians
    try:
        for i, (name, binary) in enumerate(servers):
            d = os.path.join(tmp, str(i))
            os.makedirs(d)
            procs[name] = (start(binary, port0 + i, d, name == "redis"), port0 + i)
        for r in range(rounds):
            for test in tests:
                for p in pipes:
                    for name, _ in (servers if r % 2 == 0 else servers[::-1]):
                        proc, port = procs[name]
                        subprocess.run(["redis-cli", "-p", str(port), "FLUSHALL"], capture_output=True)
                        n = n_base * p // (10 if test in ("lrange_300", "lrange_600") else 1)
                        if test in FILL:
                            bench(port, FILL[test], n, p)
                        c0, s0 = cpu_seconds(proc.pid), switches(proc.pid)
                        rps = bench(port, test, n, p)
                        c1, s1 = cpu_seconds(proc.pid), switches(proc.pid)
                        rounds_seen.append((r, test, p, name, rps, (c1 - c0) * 1e6 / n, (s1 - s0) / n))
                        old = best.get((test, p, name), (0.0, float("inf"), float("inf")))
                        best[(test, p, name)] = (max(old[0], rps), min(old[1], (c1 - c0) * 1e6 / n),
                                                 min(old[2], (s1 - s0) / n))
    finally:
        for proc, _ in procs.values():
            proc.kill()
            proc.wait()
        subprocess.run(["rm", "-rf", tmp])
    print("| test | P | " + " | ".join("%s rps (ratio) | %s CPU us/req | %s cs/req" % (s, s, s) for s, _ in servers)
          + " |")
    print("|---|--:|" + "--:|--:|--:|" * len(servers))
    for test in tests:
        for p in pipes:
            ref = best[(test, p, "redis")][0]
            cells = []
            for name, _ in servers:
                rps, c, cs = best[(test, p, name)]
                cells.append("%.0f (%.2f) | %.2f | %.3f" % (rps, rps / ref if ref else 0, c, cs))
            print("| %s | %d | %s |" % (test.upper(), p, " | ".join(cells)))
    if rounds > 1:
        paired_medians(rounds_seen, tests, pipes, servers, rounds)
    out = os.environ.get("AB_CSV")
    if out:
        with open(out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["round", "test", "pipeline", "server", "rps", "cpu_us_per_req", "cs_per_req"])
            w.writerows(rounds_seen)


def paired_medians(rows, tests, pipes, servers, rounds):
    """Each round's ratio to the Redis call of the same round (adjacent in time, so the machine's load
    swings hit both alike), and their median over the rounds: steadier than a ratio of bests."""
    at = {(r, t, p, name): (rps, cpu) for r, t, p, name, rps, cpu, _ in rows}
    names = [s for s, _ in servers if s != "redis"]
    print()
    print("Per-round ratios to Redis (same round), median over %d rounds; wins: rounds at or above Redis's "
          "throughput" % rounds)
    print()
    print("| test | P | " + " | ".join("%s rps ratio (min-max, wins) | %s CPU ratio" % (s, s) for s in names) + " |")
    print("|---|--:|" + "--:|--:|" * len(names))
    for test in tests:
        for p in pipes:
            cells = []
            for name in names:
                rr, cr = [], []
                for r in range(rounds):
                    ref, me = at.get((r, test, p, "redis")), at.get((r, test, p, name))
                    if ref and me and ref[0] > 0 and ref[1] > 0:
                        rr.append(me[0] / ref[0])
                        cr.append(me[1] / ref[1])
                if rr:
                    cells.append("%.2f (%.2f-%.2f, %d/%d) | %.2f" % (statistics.median(rr), min(rr), max(rr),
                                                                    sum(x >= 1.0 for x in rr), len(rr), statistics.median(cr)))
                else:
                    cells.append("- | -")
            print("| %s | %d | %s |" % (test.upper(), p, " | ".join(cells)))


if __name__ == "__main__":
    main()
