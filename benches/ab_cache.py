#!/usr/bin/env python3
"""The cache run of vs_redis.py (section 8) for Redis and several flurrydb binaries, with the server's CPU.

    python3 benches/ab_cache.py ROUNDS SECONDS MAXMEMORY NAME=BINARY [NAME=BINARY ...]
    e.g. python3 benches/ab_cache.py 3 18 64mb before=/tmp/old-server after=target/release/flurrydb-server

Per round, under allkeys-lru then allkeys-lfu, each server in turn (the order flips every run) on a fresh
process (ports from $AB_CACHE_PORT_BASE, default 24500; --save '', appendonly no, --maxmemory MAXMEMORY):
vs_redis.py's two Zipf(0.99) GET-then-SET-on-miss clients for SECONDS, the first third warm-up. Printed per
run and as the median of the rounds with the ratio to Redis: ops/s, hit rate, the server's CPU per operation
(utime+stime from /proc/PID/stat over the measured part, divided by its GETs and SETs: on a loaded machine the
clients' share of the cores moves the throughput, much less the CPU per operation) and the RSS growth.
"""
import sys, os, time, socket, subprocess, statistics, multiprocessing as mp, tempfile, shutil
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vs_redis as v
rounds, secs, maxmem = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
servers = [("redis", "redis-server")] + [tuple(a.split("=", 1)) for a in sys.argv[4:]]
port = [int(os.environ.get("AB_CACHE_PORT_BASE", "24500"))]
def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
def rss(pid):
    for l in open("/proc/%d/status" % pid):
        if l.startswith("VmRSS:"): return int(l.split()[1]) * 1024
res = {}
for r in range(rounds):
    for pol in ("allkeys-lru", "allkeys-lfu"):
        order = servers if (r + (pol == "allkeys-lfu")) % 2 == 0 else servers[::-1]
        for name, binary in order:
            port[0] += 1; p = port[0]
            d = tempfile.mkdtemp(prefix="ab_cache.")
            args = [binary, "--port", str(p), "--bind", "127.0.0.1", "--dir", d, "--save", "", "--appendonly", "no",
                    "--maxmemory", maxmem, "--maxmemory-policy", pol]
            srv = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(200):
                try: socket.create_connection(("127.0.0.1", p)).close(); break
                except OSError: time.sleep(0.05)
            rss0 = rss(srv.pid)
            q = mp.Queue(); warm = secs / 3
            ps = [mp.Process(target=v._cache_worker, args=(p, warm, secs - warm, 7 + i, q)) for i in range(2)]
            for x in ps: x.start()
            time.sleep(warm); c0 = cpu(srv.pid)
            out = [q.get() for _ in ps]; c1 = cpu(srv.pid)
            for x in ps: x.join()
            g = sum(o[0] for o in out); h = sum(o[1] for o in out); s = sum(o[2] for o in out); t = max(o[3] for o in out)
            row = ((g + s) / t, h / g, (c1 - c0) * 1e6 / (g + s), (rss(srv.pid) - rss0) / 2**20)
            res.setdefault((pol, name), []).append(row)
            print("r%d %s %-8s ops/s %7.0f hit %.4f cpu %.3f us/op rss +%.1f MB" % ((r, pol, name) + row), flush=True)
            srv.kill(); srv.wait(); shutil.rmtree(d, ignore_errors=True)
print("median over %d rounds (ratio to redis)" % rounds)
for pol in ("allkeys-lru", "allkeys-lfu"):
    base = [statistics.median(x) for x in zip(*res[(pol, "redis")])]
    for name, _ in servers:
        m = [statistics.median(x) for x in zip(*res[(pol, name)])]
        print("%s %-8s ops/s %7.0f (%.2f) hit %.4f (%.3f) cpu %.3f us/op (%.2f) rss +%.1f MB" % (
            pol, name, m[0], m[0] / base[0], m[1], m[1] / base[1], m[2], m[2] / base[2], m[3]))
