#!/usr/bin/env python3
"""flurrydb against redis-server, side by side, on this machine: one command, python3 stdlib only.

    python3 benches/vs_redis.py [--quick] [--rounds N] [--n N] [--keys N] [--skip-build] [--tests a,b]
                                [--only throughput,memory,collections,fsync,aofload,rdb,repl,scaling,scripts,fanout,cache]
                                [--cache-maxmemory 64mb] [--cache-seconds S] [--cache-baseline BIN] [--out DIR]

What it does, in order (every server it starts listens on 127.0.0.1 only and is killed on exit):
  0. Installs redis-server/redis-tools with apt-get when redis-server or redis-benchmark is missing,
     and builds target/release/flurrydb-server (`cargo build --release`) unless --skip-build.
  1. throughput: both servers started with the same flags (--port P --bind 127.0.0.1 --dir D --save ''
     --appendonly no); redis-benchmark -c 50, pipeline 1 and 16, the tests of TESTS below
     (PING SET GET INCR, the list, hash, set, sorted set and stream tests, SETBIT BITCOUNT PFADD PFCOUNT;
     the bitmap, HyperLogLog and stream tests are command lines, see CUSTOM; ping runs PING_INLINE and
     PING_MBULK; ZRANGE_100K and ZRANK_100K read one ~100k-member sorted set that a ZADD run fills
     first, see FILL; --tests picks some), random keys -r 100000, one test per redis-benchmark call
     sending N*P requests, --csv for rps and p50/p99 latency. The two servers ALTERNATE test by test
     (the order flips every round), each round on freshly started servers; per test the best
     throughput of the rounds is kept (with that run's latencies) and the lowest CPU per request.
     CPU per request: the server's own utime+stime from /proc/PID/stat, before/after the call,
     divided by the requests sent (PING counts both of its tests).
  2. memory: RSS growth and INFO used_memory growth after loading KEYS string keys (key:NNNNNNNN)
     through redis-cli --pipe, in bytes per key, for 16-byte values, 16-byte values with EX, 100-byte
     values and integers (MEMORY_KINDS), each on a fresh server; DBSIZE is checked.
  2b. collections: RSS growth per key after loading (through redis-cli --pipe) 100k small collections
     of one kind on a fresh server, one kind per server: a 10-field hash, a 10-member set of integers, a
     10-member set of words, a 10-member sorted set, a 10-element list of short strings (each in its
     compact encoding on both servers); then one large collection per server (a 1M-field hash, a
     1M-member set, a 1M-member sorted set, a 1M-element list), in bytes per element. --keys scales
     both (KEYS/10 small keys, KEYS large elements).
  3. fsync: SET throughput (50 clients, pipeline 1) with appendonly yes and appendfsync no / everysec
     / always.
  4. aofload: each server loads KEYS keys with appendonly yes, is shut down (SHUTDOWN), and is
     restarted on the same directory; the time from the restart until PING answers PONG, and the
     keys per second, are compared. DBSIZE after the restart must equal KEYS.
  5. scaling: flurrydb with --worker-threads W (and --worker-threads-in-use W: all W in use), W = 1, 2, 4
     .. up to nproc, against Redis (single-threaded),
     SET and GET at pipeline 1 and 16. redis-benchmark shares the machine's cores with the server.
     Then `cargo bench --bench scaling`: the keyspace alone on 1, 2, 4 .. nproc threads (no network,
     nothing else on the cores), which shows what each added core gives.
  6. scripts: EVALSHA of two small scripts, loaded with SCRIPT LOAD on both servers: a rate limiter
     (INCR, then PEXPIRE on the first hit) and a lock release (GET, compare, DEL), at pipeline 1 and
     16, random keys -r 100000, alternating servers as in 1.
  7. fanout: one publisher (redis-benchmark -c 1 -P 16 PUBLISH) to 1, 10 and 100 subscribers of one
     channel, messages of 16 and 512 bytes: messages delivered per second (from the first PUBLISH to
     the last byte at the last subscriber) and the server's CPU per delivered message (its threads'
     run time from /proc/PID/task/*/schedstat, in ns: N/2 messages to one subscriber are a few
     10 ms ticks of utime+stime, too coarse to compare). Then memory,
     each on a fresh server: one connection subscribes 100k channels; one connection 10k patterns;
     10k connections subscribe one channel each: INFO used_memory and RSS growth per subscription, per
     pattern, per subscribed connection.
  8. cache: a cache at its memory limit. Each server with --maxmemory CACHE_MAXMEMORY (default 64mb, to
     keep the run short: about 40 s in all) under allkeys-lru, then allkeys-lfu, fresh each time; 2
     client processes, each pipelining 64 requests: a GET of a key drawn from Zipf(0.99) over 10M
     distinct keys, then for each miss a SET of a 100-byte value (GET-then-SET-on-miss). After a
     warm-up (the cache fills and starts evicting; the first third of the time), the hit rate
     (GET hits / GETs) and the throughput (GETs and SETs per second) are measured, then the RSS and
     used_memory against the limit, and evicted_keys. (The issue's run used 256mb: --cache-maxmemory.)

Method is that of shared/tools/bench.py (same redis-benchmark flags, same CPU-per-request and memory
measurement, best-of-rounds): `--n 200000 --rounds 3 --only throughput,memory` is bench.py's default
run. Default here: --n 100000 --rounds 3 --keys 1000000 (about 10 minutes on 2 cores); --quick:
--n 60000 --rounds 1 --keys 200000 (about 1 minute).

Writes DIR/latest.csv (default benches/results/): one row per figure with both values and the ratio
flurrydb/redis, and DIR/latest.svg, a bar chart of those ratios (green: flurrydb better). Prints the
machine and Markdown tables to paste into the README.
"""
import argparse
import atexit
import csv
import hashlib
import io
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = ["ping", "set", "get", "incr", "lpush", "rpush", "lpop", "rpop", "lrange_100", "lrange_300", "lrange_600",
         "hset", "sadd", "spop", "zadd", "zpopmin", "zrange_100k", "zrank_100k", "setbit", "bitcount", "pfadd", "pfcount",
         "xadd", "xread", "xreadgroup", "xack"]
# Tests redis-benchmark has no -t name for: the command it sends (its __rand_int__ is a random
# 12-digit number below the -r keyspace, printed with leading zeros, which bit offsets may not have: so
# SETBIT and BITCOUNT go to random keys), after a setup command sent once per server. PFADD adds
# random elements to one HyperLogLog (dense after a few thousand) whose cardinality PFCOUNT reads
# (recomputed after each PFADD that changed it, as Redis does). XADD fills the stream the others
# read: XREAD the 10 oldest entries, XREADGROUP delivers one new entry to a consumer (a pending
# entry and its AOF records), XACK acknowledges a random ID.
CUSTOM = {
    "setbit": ["SETBIT", "bench:bits:__rand_int__", "100", "1"],
    "bitcount": ["BITCOUNT", "bench:bits:__rand_int__"],
    "pfadd": ["PFADD", "bench:hll", "__rand_int__"],
    "pfcount": ["PFCOUNT", "bench:hll"],
    "xadd": ["XADD", "bench:x", "*", "f", "__rand_int__"],
    "xread": ["XREAD", "COUNT", "10", "STREAMS", "bench:x", "0"],
    "xreadgroup": ["XREADGROUP", "GROUP", "bg", "c", "COUNT", "1", "STREAMS", "bench:x", ">"],
    "xack": ["XACK", "bench:x", "bg", "__rand_int__-0"],
}
SETUP = {"xadd": ["XGROUP", "CREATE", "bench:x", "bg", "$", "MKSTREAM"]}
# Tests that read one hot 100k-member sorted set: before the measured call, redis-benchmark's own
# ZADD fills bench:z100k (random scores and members below -r: ~95k members), its CPU not counted.
# ZRANGE_100K reads 10 members from a random score on (a descent by score, then a walk), ZRANK_100K
# the rank of a random member (the member index, then a descent).
CUSTOM.update({
    "zrange_100k": ["ZRANGE", "bench:z100k", "__rand_int__", "+inf", "BYSCORE", "LIMIT", "0", "10"],
    "zrank_100k": ["ZRANK", "bench:z100k", "element:__rand_int__"],
})
FILL = {t: ["-n", "300000", "-P", "16", "ZADD", "bench:z100k", "__rand_int__", "element:__rand_int__"]
        for t in ("zrange_100k", "zrank_100k")}
# Tests whose requests are long replies run a tenth of the requests (LRANGE_600 is 600 bulk strings).
SHORT = {"lrange_300": 10, "lrange_600": 10}
CLIENTS = 50
KEYSPACE = 100000
ERRORS = {}  # (server, TEST or test, pipeline) -> what redis-benchmark said instead of a CSV

# ---------------------------------------------------------------------------------------------
# processes


_started = []  # every Popen this script started; killed on exit, whatever happens
# --pin: while set, servers start on these CPUs (see `pinned`)
_server_cpus = None


def split_cpus():
    """(servers' CPUs, load generator's CPUs): the first half of this process's CPUs for the servers
    (at least one), the rest for redis-benchmark; None with fewer than two CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    half = max(1, len(cpus) // 2)
    return set(cpus[:half]), set(cpus[half:])


class pinned:
    """`with pinned(on):` servers started inside run on the first half of the CPUs and this script
    (so redis-benchmark and redis-cli, its children) on the rest: the load generator has cores of its
    own, as on a machine where it runs elsewhere, and a multi-threaded server cannot take its core.
    Redis uses one core either way; flurrydb gets the same half as Redis (on 2 cores: one)."""

    def __init__(self, on):
        self.split = split_cpus() if on else None

    def __enter__(self):
        global _server_cpus
        if self.split:
            self.saved = os.sched_getaffinity(0)
            _server_cpus = self.split[0]
            os.sched_setaffinity(0, self.split[1])
        return self

    def __exit__(self, *exc):
        global _server_cpus
        if self.split:
            os.sched_setaffinity(0, self.saved)
            _server_cpus = None


def _kill_all():
    for p in _started:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass


atexit.register(_kill_all)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


_next_port = [int(os.environ.get("VS_REDIS_PORT_BASE", "0") or 0)]


def free_port():
    """A free loopback port: the kernel's pick, or the next free one from $VS_REDIS_PORT_BASE up
    (to keep to a port range on a shared machine)."""
    while _next_port[0]:
        port = _next_port[0]
        _next_port[0] += 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(port, *args, timeout=10.0):
    """Send one command, return the first reply line (type byte + text), e.g. '+PONG', ':42'."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        req = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in
                                                 (x.encode() if isinstance(x, str) else x for x in args))
        s.sendall(req)
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                return ""
            buf += chunk
        return buf.split(b"\r\n", 1)[0].decode(errors="replace")


def info_field(port, section, field, timeout=10.0):
    """One `field:value` of INFO `section`, as text, or None."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"*2\r\n$4\r\nINFO\r\n$%d\r\n%s\r\n" % (len(section), section.encode()))
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return None
            buf += chunk
        head, rest = buf.split(b"\r\n", 1)
        if not head.startswith(b"$"):
            return None
        need = int(head[1:]) + 2
        while len(rest) < need:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    for line in rest.decode(errors="replace").splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return None


class Server:
    """One server process on a loopback port, in its own directory."""

    def __init__(self, name, binary, flags, directory=None, worker_threads=None):
        self.name, self.binary, self.flags = name, binary, list(flags)
        self.dir = directory or tempfile.mkdtemp(prefix="vs-redis-%s-" % name)
        self.worker_threads = worker_threads
        self.port = free_port()
        self.proc = None

    def start(self, timeout=120.0):
        """Start and return the seconds until PING answered PONG (LOADING replies do not count)."""
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--save", ""]
        args += self.flags
        if self.worker_threads is not None:
            # Exactly W in use (by default the balancer uses as many as the load needs: src/workers.rs).
            args += ["--worker-threads", str(self.worker_threads), "--worker-threads-in-use", str(self.worker_threads)]
        t0 = time.monotonic()
        cpus = _server_cpus
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir,
                                     preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        _started.append(self.proc)
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s at start (%s)" % (self.name, self.proc.returncode, args))
            try:
                if command(self.port, "PING", timeout=2) == "+PONG":
                    return time.monotonic() - t0
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError("%s did not answer PONG within %.0fs" % (self.name, timeout))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def shutdown(self, timeout=120.0):
        """SHUTDOWN (flushes the AOF), then wait for the exit; SIGTERM, then SIGKILL, if it hangs."""
        try:
            command(self.port, "SHUTDOWN", timeout=timeout)
        except OSError:
            pass
        for sig, wait in ((None, timeout), (signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            if sig is not None and self.proc.poll() is None:
                log("  %s did not exit after SHUTDOWN; sending signal %s" % (self.name, sig))
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    @property
    def pid(self):
        return self.proc.pid

    def cpu_s(self):
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_ns(self):
        """Run time of the server's threads (live ones: a thread that exited meanwhile is not counted;
        the servers' threads here live as long as they do), nanoseconds."""
        total = 0
        for tid in os.listdir("/proc/%d/task" % self.pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (self.pid, tid)) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        return total

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def dbsize(self):
        reply = command(self.port, "DBSIZE", timeout=60)
        return int(reply[1:]) if reply.startswith(":") else reply


# ---------------------------------------------------------------------------------------------
# measurements


def redis_benchmark(server, test, requests, pipeline, timeout=300):
    """One redis-benchmark call (bench.py's flags); {TEST: (rps, p50_ms, p99_ms, cpu_us_per_request)}."""
    if test in SETUP:
        try:
            command(server.port, *SETUP[test])
        except OSError:
            pass
    what = CUSTOM[test] if test in CUSTOM else ["-t", test]
    if test in FILL:
        subprocess.run(["redis-benchmark", "-p", str(server.port), "-c", str(CLIENTS), "-r", str(KEYSPACE), "-q"]
                       + FILL[test], capture_output=True, timeout=timeout)
    c0 = server.cpu_s()
    out = subprocess.run(["redis-benchmark", "-p", str(server.port), "-n", str(requests), "-c", str(CLIENTS),
                          "-P", str(pipeline), "-r", str(KEYSPACE), "--csv", "-q"] + what,
                         capture_output=True, text=True, timeout=timeout)
    used = server.cpu_s() - c0
    # LRANGE_* tests first fill the list ("LPUSH (needed to benchmark LRANGE)"): that row is not
    # reported, and its CPU is charged to the LRANGE test on both servers alike.
    rows = [r for r in csv.DictReader(io.StringIO(out.stdout)) if "needed" not in r["test"]]
    result = {}
    for row in rows:  # "ping" runs two tests, PING_INLINE and PING_MBULK, each `requests` long
        name = test.upper() if test in CUSTOM else row["test"]
        result[name] = (float(row["rps"]), float(row["p50_latency_ms"]), float(row["p99_latency_ms"]),
                               used * 1e6 / (requests * len(rows)))
    if not rows:
        said = " ".join((out.stderr or out.stdout or "no output").split())[-200:]
        ERRORS[(server.name, test.upper(), pipeline)] = said
        log("  redis-benchmark %s -P %d on %s gave no CSV: %s" % (test, pipeline, server.name, said))
    return result


def keep_best(best, key, fig):
    """Best throughput of the rounds (with that run's latencies), lowest CPU per request."""
    old = best.get(key)
    if old is None:
        best[key] = fig
    else:
        rps, p50, p99 = (fig[0], fig[1], fig[2]) if fig[0] > old[0] else (old[0], old[1], old[2])
        best[key] = (rps, p50, p99, min(fig[3], old[3]))


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(path) for f in fs)


def throughput(binaries, opts, tests, pipelines, flags=("--appendonly", "no"), worker_threads=None, rounds=None,
               aof_sizes=None):
    """Both servers alternate test by test; returns {name: {(TEST, P): (rps, p50, p99, cpu_us)}}.
    `aof_sizes`, when given, receives each server's INFO aof_current_size before it is stopped."""
    best = {name: {} for name in binaries}
    rounds = rounds or opts.rounds
    for r in range(rounds):
        order = list(binaries) if r % 2 == 0 else list(reversed(list(binaries)))
        servers = {}
        try:
            for name in order:
                wt = worker_threads if name == "flurrydb" else None
                servers[name] = Server(name, binaries[name], flags, worker_threads=wt)
                servers[name].start()
            for pipeline in pipelines:
                for test in tests:
                    for name in order:
                        n = max(1000, opts.n * pipeline // SHORT.get(test, 1))
                        for t, fig in redis_benchmark(servers[name], test, n, pipeline).items():
                            keep_best(best[name], (t, pipeline), fig)
        finally:
            for s in servers.values():
                if aof_sizes is not None and s.proc.poll() is None:
                    try:
                        size = info_field(s.port, "persistence", "aof_current_size")
                        aof_sizes[s.name] = int(size) if size is not None else None
                    except (OSError, ValueError):
                        aof_sizes[s.name] = None
                s.stop()
                shutil.rmtree(s.dir, ignore_errors=True)
        log("  round %d/%d done" % (r + 1, rounds))
    return best


SCRIPTS = {
    "ratelimit": "local c = redis.call('INCR', KEYS[1]) if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
                 "return c",
    "unlock": "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
}
SCRIPT_ARGS = {"ratelimit": ["rl:__rand_int__", "60000"], "unlock": ["lock:__rand_int__", "token"]}


def script_benchmark(server, name, sha, requests, pipeline, timeout=300):
    """redis-benchmark of EVALSHA `sha` 1 KEY ARG: (rps, p50_ms, p99_ms, cpu_us_per_request) or None."""
    c0 = server.cpu_s()
    out = subprocess.run(["redis-benchmark", "-p", str(server.port), "-n", str(requests), "-c", str(CLIENTS),
                          "-P", str(pipeline), "-r", str(KEYSPACE), "--csv", "-q", "EVALSHA", sha, "1"]
                         + SCRIPT_ARGS[name], capture_output=True, text=True, timeout=timeout)
    used = server.cpu_s() - c0
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    if not rows:
        said = " ".join((out.stderr or out.stdout or "no output").split())[-200:]
        ERRORS[(server.name, "EVALSHA " + name, pipeline)] = said
        return None
    row = rows[0]
    return (float(row["rps"]), float(row["p50_latency_ms"]), float(row["p99_latency_ms"]), used * 1e6 / requests)


def scripts(binaries, opts):
    """{name: {(script, P): figures}}: EVALSHA of SCRIPTS, servers alternating as in `throughput`."""
    best = {name: {} for name in binaries}
    for r in range(opts.rounds):
        order = list(binaries) if r % 2 == 0 else list(reversed(list(binaries)))
        servers = {}
        try:
            for name in order:
                servers[name] = Server(name, binaries[name], ("--appendonly", "no"))
                servers[name].start()
            shas = {script: hashlib.sha1(body.encode()).hexdigest() for script, body in SCRIPTS.items()}
            for name in order:
                for script, body in SCRIPTS.items():
                    command(servers[name].port, "SCRIPT", "LOAD", body)
            for pipeline in (1, 16):
                for script in SCRIPTS:
                    for name in order:
                        fig = script_benchmark(servers[name], script, shas[script], opts.n * pipeline, pipeline)
                        if fig:
                            keep_best(best[name], (script, pipeline), fig)
        finally:
            for s in servers.values():
                s.stop()
                shutil.rmtree(s.dir, ignore_errors=True)
        log("  round %d/%d done" % (r + 1, opts.rounds))
    return best


# The memory figures' key sets: (name, value of key i, extra SET arguments). Integers start at
# 1000000: Redis shares the objects of 0..9999 (OBJ_SHARED_INTEGERS), which no real counter is.
MEMORY_KINDS = [
    ("16B", lambda i: b"v" * 16, []),
    ("16B EX", lambda i: b"v" * 16, [b"EX", b"100000"]),
    ("100B", lambda i: b"v" * 100, []),
    ("int", lambda i: b"%d" % (1000000 + i * 7), []),
]


def write_load_file(count, kind="16B"):
    """A file of `count` SET commands in RESP (bench.py's keys: key:%08d; values per MEMORY_KINDS)."""
    _, value_of, extra = next(k for k in MEMORY_KINDS if k[0] == kind)
    fd, path = tempfile.mkstemp(prefix="vs-redis-load-")
    with os.fdopen(fd, "wb") as f:
        chunk = []
        for i in range(count):
            chunk.append(resp([b"SET", b"key:%08d" % i, value_of(i)] + extra))
            if len(chunk) == 10000:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))
    return path


def pipe_load(server, path, timeout=600):
    t0 = time.monotonic()
    with open(path, "rb") as f:
        subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], stdin=f, capture_output=True,
                       timeout=timeout)
    return time.monotonic() - t0


def rss_growth(name, binary, path, settle, inspect=None):
    """Load `path` through redis-cli --pipe into a fresh server: (RSS growth in bytes, INFO
    used_memory growth in bytes, what `inspect(server)` returns, DBSIZE)."""
    s = Server(name, binary, ["--appendonly", "no"])
    try:
        s.start()
        time.sleep(0.2)
        base = s.rss_kb()
        used0 = int(info_field(s.port, "memory", "used_memory") or 0)
        pipe_load(s, path)
        time.sleep(settle)
        grown = (s.rss_kb() - base) * 1024.0
        used = int(info_field(s.port, "memory", "used_memory") or 0) - used0
        return grown, used, inspect(s) if inspect else None, s.dbsize()
    finally:
        s.stop()
        shutil.rmtree(s.dir, ignore_errors=True)


def memory(binaries, load_path, keys):
    """{name: (bytes_per_key by RSS growth, dbsize, bytes_per_key by used_memory growth)}."""
    mem = {}
    for name, binary in binaries.items():
        grown, used, _, dbsize = rss_growth(name, binary, load_path, 0.2)
        mem[name] = (grown / keys, dbsize, used / float(keys))
    return mem


WORDS = [b"apple", b"banana", b"cherry", b"damson", b"elder", b"fig", b"grape", b"hazel", b"iris", b"juniper",
         b"kiwi", b"lemon", b"mango", b"nectar", b"olive", b"peach", b"quince", b"rowan", b"sloe", b"tansy"]


def resp(args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def collection_commands(kind, count):
    """Yield RESP commands building `count` small collections of `kind`, or (kinds starting with
    "large ") one collection of `count` elements in batches of 100."""
    if kind == "hash":
        for i in range(count):
            args = [b"HSET", b"hash:%08d" % i]
            for j in range(10):
                args += [b"field:%d" % j, b"value:%06d" % ((i + j) % 1000000)]
            yield resp(args)
    elif kind == "set of integers":
        for i in range(count):
            yield resp([b"SADD", b"iset:%08d" % i] + [b"%d" % (i * 10 + j) for j in range(10)])
    elif kind == "set of words":
        for i in range(count):
            yield resp([b"SADD", b"wset:%08d" % i] + [WORDS[(i + j) % len(WORDS)] for j in range(10)])
    elif kind == "sorted set":
        for i in range(count):
            args = [b"ZADD", b"zset:%08d" % i]
            for j in range(10):
                args += [b"%d" % (i + j), b"member:%d" % j]
            yield resp(args)
    elif kind == "list":
        for i in range(count):
            yield resp([b"RPUSH", b"list:%08d" % i] + [b"item:%d" % j for j in range(10)])
    else:
        cmd, key = {"large hash": (b"HSET", b"bighash"), "large set": (b"SADD", b"bigset"),
                    "large sorted set": (b"ZADD", b"bigzset"), "large list": (b"RPUSH", b"biglist")}[kind]
        for start in range(0, count, 100):
            args = [cmd, key]
            for i in range(start, min(start + 100, count)):
                if cmd == b"HSET":
                    args += [b"field:%07d" % i, b"value:%07d" % i]
                elif cmd == b"ZADD":
                    args += [b"%d" % i, b"member:%07d" % i]
                else:
                    args.append(b"element:%07d" % i)
            yield resp(args)


SMALL_KINDS = ["hash", "set of integers", "set of words", "sorted set", "list"]
LARGE_KINDS = ["large hash", "large set", "large sorted set", "large list"]


def collections_memory(binaries, keys):
    """[(kind, count, {name: (bytes per key or element, encoding)})]: each kind loaded into a fresh server."""
    out = []
    for kind in SMALL_KINDS + LARGE_KINDS:
        count = max(keys // 10, 1000) if kind in SMALL_KINDS else max(keys, 10000)
        fd, path = tempfile.mkstemp(prefix="vs-redis-coll-")
        with os.fdopen(fd, "wb") as f:
            chunk = []
            for c in collection_commands(kind, count):
                chunk.append(c)
                if len(chunk) == 10000:
                    f.write(b"".join(chunk))
                    chunk = []
            f.write(b"".join(chunk))
        figs = {}
        try:
            for name, binary in binaries.items():
                grown, _, enc, dbsize = rss_growth(name, binary, path, 0.5, random_key_encoding)
                figs[name] = (grown / count, enc, dbsize)
        finally:
            os.unlink(path)
        out.append((kind, count, figs))
    return out


def random_key_encoding(s):
    cli = ["redis-cli", "-p", str(s.port), "--raw"]
    key = subprocess.run(cli + ["RANDOMKEY"], capture_output=True, timeout=30).stdout.strip()
    return subprocess.run(cli + ["OBJECT", "ENCODING", key], capture_output=True,
                          timeout=30).stdout.decode(errors="replace").strip()


def fsync_policies(binaries, opts):
    """{policy: ({name: (rps, p50, p99, cpu_us)}, {name: aof_bytes})}: SET, 50 clients, P=1, appendonly yes."""
    out = {}
    for policy in ("no", "everysec", "always"):
        n = opts.n if policy != "always" else max(opts.n // 5, 2000)
        sub = argparse.Namespace(**vars(opts))
        sub.n = n
        sizes = {}
        best = throughput(binaries, sub, ["set"], [1], flags=("--appendonly", "yes", "--appendfsync", policy),
                          rounds=1, aof_sizes=sizes)
        out[policy] = ({name: best[name].get(("SET", 1)) for name in binaries}, sizes)
        log("  appendfsync %s done" % policy)
    return out


def aof_load(binaries, load_path, keys):
    """{name: (seconds_to_pong, keys_loaded, aof_bytes)} after a restart on a KEYS-key AOF."""
    res = {}
    for name, binary in binaries.items():
        flags = ["--appendonly", "yes", "--appendfsync", "everysec"]
        s = Server(name, binary, flags)
        try:
            s.start()
            pipe_load(s, load_path)
            s.shutdown()
            size = dir_bytes(s.dir)
            s2 = Server(name, binary, flags, directory=s.dir)
            try:
                secs = s2.start(timeout=300)
                res[name] = (secs, s2.dbsize(), size)
            finally:
                s2.stop()
        finally:
            s.stop()
            shutil.rmtree(s.dir, ignore_errors=True)
    return res


def rdb_save_load(binaries, load_path, keys):
    """{name: (save_s, load_s, keys_loaded, rdb_bytes)}: SAVE of KEYS keys, then a restart on the dump."""
    res = {}
    for name, binary in binaries.items():
        s = Server(name, binary, ["--appendonly", "no"])
        try:
            s.start()
            pipe_load(s, load_path)
            t0 = time.monotonic()
            reply = command(s.port, "SAVE", timeout=600)
            save_s = time.monotonic() - t0 if reply == "+OK" else None
            size = os.path.getsize(os.path.join(s.dir, "dump.rdb")) if save_s else None
            s.stop()
            s2 = Server(name, binary, ["--appendonly", "no"], directory=s.dir)
            try:
                load_s = s2.start(timeout=300)
                res[name] = (save_s, load_s, s2.dbsize(), size)
            finally:
                s2.stop()
        finally:
            s.stop()
            shutil.rmtree(s.dir, ignore_errors=True)
    return res


REPL_FLAGS = ["--appendonly", "no", "--repl-diskless-sync-delay", "0"]


def _replica_synced(port, keys):
    try:
        if info_field(port, "replication", "master_link_status") != "up":
            return False
        return command(port, "DBSIZE", timeout=30) == ":%d" % keys
    except OSError:
        return False


def _attach(replica, primary, keys, timeout=300):
    """REPLICAOF the primary; seconds until the link is up and the replica holds `keys` keys."""
    t0 = time.monotonic()
    command(replica.port, "REPLICAOF", "127.0.0.1", str(primary.port))
    while time.monotonic() - t0 < timeout:
        if _replica_synced(replica.port, keys):
            return time.monotonic() - t0
        time.sleep(0.01)
    return None


class _LagProbe(threading.Thread):
    """Every 20 ms: SET a fresh value on the primary, then read the replica until it shows it; the
    propagation delay of each write, in ms (the replica polled as fast as one connection can). Kept
    per write: from sending the SET (`delays`, the figure of earlier runs: it includes the SET's own
    round trip through the loaded primary), the SET's round trip (`set_rtt`), and from the SET's
    reply (`after`: the write was applied before it was answered, so this is the part that is
    replication -- the stream's way to the replica and its apply -- plus one GET round trip)."""

    def __init__(self, primary_port, replica_port):
        super().__init__(daemon=True)
        self.pp, self.rp, self.stop_flag = primary_port, replica_port, False
        self.delays, self.set_rtt, self.after = [], [], []

    def run(self):
        p = socket.create_connection(("127.0.0.1", self.pp), timeout=30)
        r = socket.create_connection(("127.0.0.1", self.rp), timeout=30)
        i = 0
        while not self.stop_flag:
            i += 1
            val = b"%d" % i
            t0 = time.monotonic()
            p.sendall(_resp(b"SET", b"lag:probe", val))
            _read_until(p, b"\r\n")
            t1 = time.monotonic()
            want = b"$%d\r\n%s\r\n" % (len(val), val)
            while not self.stop_flag:
                r.sendall(_resp(b"GET", b"lag:probe"))
                if _read_bulk(r) == want:
                    t2 = time.monotonic()
                    self.delays.append((t2 - t0) * 1000.0)
                    self.set_rtt.append((t1 - t0) * 1000.0)
                    self.after.append((t2 - t1) * 1000.0)
                    break
            time.sleep(0.02)
        p.close()
        r.close()


def _read_bulk(sock):
    """One reply that is a simple line or a bulk string, whole, as received."""
    buf = _read_until(sock, b"\r\n")
    if buf.startswith(b"$") and not buf.startswith(b"$-"):
        head = buf.index(b"\r\n")
        need = head + 2 + int(buf[1:head]) + 2
        while len(buf) < need:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise EOFError(buf[-200:])
            buf += chunk
    return buf


def replication(binaries, load_path, keys, opts):
    """{name: {...}}: full sync of KEYS keys to an empty replica (seconds), then with two replicas
    attached: redis-benchmark SET at P1/P16 on the primary (rps, CPU of the primary per request), and
    the propagation delay primary -> replica under the P16 load (p50, p99 ms). The primary alone is
    measured first on the same keyspace for the throughput ratio with replicas."""
    res = {}
    for name, binary in binaries.items():
        prim = Server(name, binary, REPL_FLAGS)
        reps = [Server(name, binary, REPL_FLAGS) for _ in range(2)]
        figs = {}
        try:
            prim.start()
            pipe_load(prim, load_path)
            for pl in (1, 16):
                n = max(1000, opts.n * pl)
                fig = redis_benchmark(prim, "set", n, pl).get("SET")
                figs["alone_p%d" % pl] = fig
            total = command(prim.port, "DBSIZE")
            keys_now = int(total[1:])
            for r in reps:
                r.start()
            figs["full_sync_s"] = _attach(reps[0], prim, keys_now)
            figs["second_sync_s"] = _attach(reps[1], prim, keys_now)
            probe = _LagProbe(prim.port, reps[0].port)
            for pl in (1, 16):
                n = max(1000, opts.n * pl)
                if pl == 16:
                    probe.start()
                fig = redis_benchmark(prim, "set", n, pl).get("SET")
                figs["replicas_p%d" % pl] = fig
            probe.stop_flag = True
            probe.join(timeout=30)
            for key, xs in (("lag_ms", probe.delays), ("lag_after_ms", probe.after), ("set_rtt_ms", probe.set_rtt)):
                d = sorted(xs)
                figs[key] = (d[len(d) // 2], d[min(len(d) - 1, int(len(d) * 0.99))], len(d)) if d else None
            t0 = time.monotonic()
            final = command(prim.port, "DBSIZE")
            figs["converged"] = all(_wait_dbsize(r.port, final, 60) for r in reps)
            figs["catch_up_s"] = time.monotonic() - t0
        except (OSError, RuntimeError, ValueError) as e:
            log("  replication on %s: %s" % (name, e))
        finally:
            for s in [prim] + reps:
                s.stop()
                shutil.rmtree(s.dir, ignore_errors=True)
        res[name] = figs
    return res


def _wait_dbsize(port, want, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if command(port, "DBSIZE") == want:
                return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def scaling(binaries, opts, redis_best):
    """{workers: {(TEST, P): (rps, p50, p99, cpu_us)}} for flurrydb; Redis figures measured alongside."""
    counts, w = [], 1
    while w <= max(2, os.cpu_count() or 1):
        counts.append(w)
        w *= 2
    out = {}
    for w in counts:
        best = throughput(binaries, opts, ["set", "get"], [1, 16], worker_threads=w,
                          rounds=max(1, opts.rounds - 1))
        out[w] = best["flurrydb"]
        for key, fig in best["redis"].items():
            keep_best(redis_best, key, fig)
        log("  --worker-threads %d done" % w)
    return out, counts


def _fanout_subscribers(port, channel, count, expect_bytes, ready, done):
    """In a child process: `count` subscriber connections draining until each got `expect_bytes`
    of messages after its confirmation; puts the seconds from `ready` to the last byte on `done`."""
    import selectors
    conns, want = [], {}
    confirm = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(channel), channel)
    for _ in range(count):
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(channel), channel))
        conns.append(c)
    for c in conns:
        buf = b""
        while len(buf) < len(confirm):
            buf += c.recv(len(confirm) - len(buf))
        c.setblocking(False)
        want[c] = expect_bytes
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c, selectors.EVENT_READ)
    ready.put(True)
    t0, cut = None, 0
    while want:
        for key, _ in sel.select(timeout=30):
            c = key.fileobj
            n = len(c.recv(1 << 20))
            if t0 is None:
                t0 = time.monotonic()
            want[c] -= n
            if want[c] <= 0 or n == 0:
                cut += n == 0
                sel.unregister(c)
                del want[c]
    done.put((time.monotonic(), cut))
    for c in conns:
        c.close()


FANOUT_DELIVERIES = 2_000_000  # messages delivered per case and server (publishes x subscribers), at least


def _fanout_case(srv, name, subs, size, n):
    """One publisher to `subs` subscribers, `size`-byte messages, on a running server: (msgs/s, us/msg)."""
    import multiprocessing as mp
    channel = b"fanout"
    payload = b"x" * size
    msg_len = len(b"*3\r\n$7\r\nmessage\r\n$6\r\nfanout\r\n$%d\r\n%s\r\n" % (size, payload))
    # Enough messages that the run lasts seconds, not milliseconds (start-up and scheduling noise).
    msgs = max(n, FANOUT_DELIVERIES // subs)
    total = msgs * subs
    # Several draining processes, so that the reader is not the bottleneck.
    procs = min(subs, max(1, (os.cpu_count() or 2) // 2))
    per = [subs // procs + (1 if i < subs % procs else 0) for i in range(procs)]
    ready, done = mp.Queue(), mp.Queue()
    ps = [mp.Process(target=_fanout_subscribers, args=(srv.port, channel, k, msgs * msg_len, ready, done))
          for k in per]
    for p in ps:
        p.start()
    for _ in ps:
        ready.get(timeout=60)
    c0 = srv.cpu_ns()
    t0 = time.monotonic()
    subprocess.run(["redis-benchmark", "-p", str(srv.port), "-c", "1", "-P", "16", "-n", str(msgs), "-q",
                    "PUBLISH", channel.decode(), payload.decode()],
                   capture_output=True, timeout=600)
    ends = [done.get(timeout=600) for _ in ps]
    t1 = max(t for t, _ in ends)
    cut = sum(c for _, c in ends)
    if cut:
        ERRORS[(name, "fanout %d subscribers %d B" % (subs, size), 16)] = \
            "%d subscriber(s) closed before taking every message" % cut
        log("  fanout %s: %d subscriber(s) closed early: figures invalid" % (name, cut))
    used = (srv.cpu_ns() - c0) / 1e9
    for p in ps:
        p.join(timeout=30)
    secs = max(t1 - t0, 1e-9)
    return total / secs, used * 1e6 / total


def fanout(binaries, opts):
    """One publisher (redis-benchmark -c 1 -P 16 PUBLISH) to S subscribers on one channel: delivered
    messages per second and server CPU per delivered message, {(S, size): {server: (msgs/s, us/msg)}}:
    the medians (upper) of `opts.rounds` rounds (at least 4, an even number), the servers taking turns
    case by case (the order flips every round), each case delivering at least FANOUT_DELIVERIES messages."""
    n = max(10000, opts.n // 2)
    # An even number of rounds: each server goes first in half of them (the second of a pair often
    # reads lower, whichever it is).
    rounds = max(4, opts.rounds + opts.rounds % 2)
    runs = {}
    servers = {}
    try:
        for name, binary in binaries.items():
            servers[name] = Server(name, binary, ("--appendonly", "no", "--maxclients", "10000"))
            servers[name].start()
        for r in range(rounds):
            order = list(servers.items())
            if r % 2:
                order.reverse()
            for subs in (1, 10, 100):
                for size in (16, 512):
                    for name, srv in order:
                        fig = _fanout_case(srv, name, subs, size, n)
                        runs.setdefault((subs, size), {}).setdefault(name, []).append(fig)
                        log("  fanout %s round %d: %d subscribers, %d B: %.0f msgs/s, %.3f us CPU/msg" % (
                            name, r + 1, subs, size, fig[0], fig[1]))
    finally:
        for srv in servers.values():
            srv.stop()

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]

    return {case: {name: (median([f[0] for f in figs]), median([f[1] for f in figs])) for name, figs in per.items()}
            for case, per in runs.items()}


def _resp(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _read_until(sock, suffix):
    buf = b""
    while not buf.endswith(suffix):
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise EOFError(buf[-200:])
        buf += chunk
    return buf


FANOUT_MEM_CHANNELS = 100_000
# Redis 7.0 keeps a client's patterns in a list (each PSUBSCRIBE scans it): 10k, not 100k.
FANOUT_MEM_PATTERNS = 10_000
FANOUT_MEM_CLIENTS = 10_000


def fanout_memory(binaries):
    """Memory per subscription, per pattern and per subscribed client, each measured on a fresh
    server (a step's freed request and reply buffers would otherwise hold the next step's
    allocations, crediting its RSS to the wrong step): {what: {server: (used_memory bytes each, RSS
    bytes each)}}. One connection subscribes FANOUT_MEM_CHANNELS channels (channel:N); one
    connection PSUBSCRIBEs FANOUT_MEM_PATTERNS patterns (pattern:N:*); FANOUT_MEM_CLIENTS
    connections each SUBSCRIBE one channel."""
    out = {}
    n, npat = FANOUT_MEM_CHANNELS, FANOUT_MEM_PATTERNS

    def one_connection(command, name, count):
        """A step where one connection sends `command` with `count` names (`name % i`)."""
        def step(port, conns):
            big = socket.create_connection(("127.0.0.1", port))
            conns.append(big)
            big.sendall(_resp(command, *[name % i for i in range(count)]))
            _read_until(big, b":%d\r\n" % count)
            return count
        return step

    channels = one_connection(b"SUBSCRIBE", b"channel:%d", n)
    patterns = one_connection(b"PSUBSCRIBE", b"pattern:%d:*", npat)

    def clients(port, conns):
        for _ in range(FANOUT_MEM_CLIENTS):
            c = socket.create_connection(("127.0.0.1", port))
            c.sendall(_resp(b"SUBSCRIBE", b"all"))
            conns.append(c)
        for c in conns:
            _read_until(c, b":1\r\n")
        return FANOUT_MEM_CLIENTS

    steps = (("channel subscription", channels), ("pattern subscription", patterns), ("subscribed client", clients))
    for name, binary in binaries.items():
        for what, step in steps:
            srv = Server(name, binary, ("--appendonly", "no", "--maxclients", str(FANOUT_MEM_CLIENTS + 100)))
            srv.start()
            conns = []
            try:
                def snap():
                    time.sleep(0.3)
                    return int(info_field(srv.port, "memory", "used_memory")), srv.rss_kb() * 1024

                before = snap()
                count = step(srv.port, conns)
                after = snap()
                each = ((after[0] - before[0]) / count, (after[1] - before[1]) / count)
                out.setdefault(what, {})[name] = each
                log("  fanout memory %s: %s %.0f B used_memory, %.0f B RSS each" % (name, what, each[0], each[1]))
            finally:
                for c in conns:
                    c.close()
                srv.stop()
    return out


CACHE_KEYS = 10_000_000
CACHE_ZIPF_S = 0.99
CACHE_VALUE = b"v" * 100


def _cache_worker(port, seconds_warm, seconds_run, seed, out):
    """One client process of the cache run: Zipf(0.99) GETs pipelined 64 deep, a SET per miss;
    puts (gets, hits, sets, seconds) of the measured part on `out`."""
    import random
    rng = random.Random(seed)
    n, s = CACHE_KEYS, CACHE_ZIPF_S
    # Inverse of the integral approximation of the generalized harmonic number H_s(k).
    h_n = (n ** (1 - s) - 1) / (1 - s) + 1
    inv = 1 / (1 - s)

    def key():
        u = rng.random() * h_n
        k = 1 if u <= 1 else int(((u - 1) * (1 - s) + 1) ** inv)
        return b"c:%d" % ((min(k, n) * 2654435761) % n)

    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = sock.makefile("rb", buffering=1 << 16)
    depth = 64
    t0 = time.monotonic()
    measuring_since = None
    gets = hits = sets = 0
    while True:
        now = time.monotonic()
        if measuring_since is None and now - t0 >= seconds_warm:
            measuring_since = now
            gets = hits = sets = 0
        if now - t0 >= seconds_warm + seconds_run:
            break
        keys = [key() for _ in range(depth)]
        sock.sendall(b"".join(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k) for k in keys))
        misses = []
        for k in keys:
            head = f.readline()
            if head.startswith(b"$-1"):
                misses.append(k)
            elif head.startswith(b"$"):
                f.read(int(head[1:]) + 2)
            else:
                raise RuntimeError("GET: %r" % head)
        gets += depth
        hits += depth - len(misses)
        if misses:
            sock.sendall(b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                                  % (len(k), k, len(CACHE_VALUE), CACHE_VALUE) for k in misses))
            for _ in misses:
                head = f.readline()
                if not head.startswith(b"+OK"):
                    raise RuntimeError("SET: %r" % head)
            sets += len(misses)
    out.put((gets, hits, sets, time.monotonic() - measuring_since))
    sock.close()


def cache(binaries, opts):
    """{policy: {server: (hit_rate, ops_per_s, rss_growth_bytes, used_memory, evicted_keys, maxmemory_bytes)}}."""
    import multiprocessing as mp
    out = {}
    procs = 2
    warm = opts.cache_seconds / 3
    for round_, policy in enumerate(("allkeys-lru", "allkeys-lfu")):
        # The servers alternate: the order flips with each policy.
        order = list(binaries.items())
        for name, binary in (order if round_ % 2 == 0 else order[::-1]):
            srv = Server(name, binary, ("--appendonly", "no", "--maxmemory", opts.cache_maxmemory,
                                        "--maxmemory-policy", policy))
            srv.start()
            try:
                rss0 = srv.rss_kb() * 1024
                q = mp.Queue()
                ps = [mp.Process(target=_cache_worker, args=(srv.port, warm, opts.cache_seconds - warm, 7 + i, q))
                      for i in range(procs)]
                for p in ps:
                    p.start()
                res = [q.get(timeout=opts.cache_seconds + 120) for _ in ps]
                for p in ps:
                    p.join(timeout=30)
                gets = sum(r[0] for r in res)
                hits = sum(r[1] for r in res)
                sets = sum(r[2] for r in res)
                secs = max(r[3] for r in res)
                rss = srv.rss_kb() * 1024
                used = int(info_field(srv.port, "memory", "used_memory") or 0)
                maxmem = int(info_field(srv.port, "memory", "maxmemory") or 0)
                evicted = int(info_field(srv.port, "stats", "evicted_keys") or 0)
                hit_rate = hits / gets if gets else None
                ops = (gets + sets) / secs if secs > 0 else None
                out.setdefault(policy, {})[name] = (hit_rate, ops, rss - rss0, used, evicted, maxmem)
                log("  cache %s %s: hit rate %.4f, %.0f ops/s, RSS %d MB (+%d MB), used_memory %d MB, %d evicted"
                    % (name, policy, hit_rate or 0, ops or 0, rss >> 20, (rss - rss0) >> 20, used >> 20, evicted))
            finally:
                srv.stop()
    return out


def keyspace_scaling(opts):
    """Markdown lines: `cargo bench --bench scaling` (the keyspace with 1, 2, 4 .. nproc threads, no network)."""
    secs = "0.5" if opts.quick else "1"
    log("scaling: cargo bench --bench scaling -- --secs %s ..." % secs)
    try:
        out = subprocess.run(["cargo", "bench", "--bench", "scaling", "--", "--secs", secs], cwd=REPO,
                             capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        return ["(keyspace scaling bench not run: %s)" % e, ""]
    table = [l for l in out.stdout.splitlines() if l.startswith("|")]
    if out.returncode != 0 or not table:
        return ["(keyspace scaling bench failed: %s)" % (out.stderr.strip().splitlines() or ["?"])[-1], ""]
    return ["### Scaling of the keyspace alone: `cargo bench --bench scaling` (commands through execute() on N "
            "threads, no network, no load generator; M commands/s, ratio to 1 thread)\n"] + table + [""]


# ---------------------------------------------------------------------------------------------
# setup


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    redis_v = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    return "%d cores (nproc), %s, Linux %s; %s; flurrydb %s" % (
        os.cpu_count() or 0, model, platform.release(), redis_v.split(" sha=")[0], rev or "?")


def ensure_redis():
    if all(shutil.which(t) for t in ("redis-server", "redis-benchmark", "redis-cli")):
        return
    log("installing redis-server and redis-tools with apt-get ...")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "update"], check=True, env=env, timeout=600)
    subprocess.run(sudo + ["apt-get", "install", "-y", "redis-server", "redis-tools"], check=True, env=env,
                   timeout=600)
    # Debian's package starts a system redis-server; it is left alone (it uses port 6379, not ours).


def build(skip):
    binary = os.path.join(REPO, "target", "release", "flurrydb-server")
    if not skip:
        log("cargo build --release ...")
        subprocess.run(["cargo", "build", "--release", "--bin", "flurrydb-server"], cwd=REPO, check=True,
                       timeout=1800)
    if not os.path.exists(binary):
        raise SystemExit("no %s (build it, or drop --skip-build)" % binary)
    return binary


# ---------------------------------------------------------------------------------------------
# report


class Report:
    """Rows of (section, test, pipeline, config, metric, unit, redis, flurrydb, better)."""

    def __init__(self):
        self.rows = []

    def add(self, section, test, pipeline, config, metric, unit, redis, ours, better):
        self.rows.append((section, test, pipeline, config, metric, unit, redis, ours, better))

    @staticmethod
    def ratio(redis, ours):
        if isinstance(redis, (int, float)) and isinstance(ours, (int, float)) and redis:
            return ours / redis
        return None

    def write_csv(self, path):
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["section", "test", "pipeline", "config", "metric", "unit", "redis", "flurrydb",
                        "ratio_flurrydb_over_redis", "better"])
            for r in self.rows:
                ratio = self.ratio(r[6], r[7])
                w.writerow(list(r[:6]) + [csv_num(r[6]), csv_num(r[7]), csv_num(ratio), r[8]])

    def write_svg(self, path, title, subtitle):
        """Horizontal bars of flurrydb/redis per figure on a log scale, a line at 1 (= Redis)."""
        bars = [(r, self.ratio(r[6], r[7])) for r in self.rows if r[4] in CHART_METRICS]
        bars = [(r, q) for r, q in bars if q is not None and q > 0]
        lo, hi = 0.125, 8.0
        row_h, label_w, plot_w, top = 18, 330, 520, 66
        height = top + row_h * len(bars) + 60
        width = label_w + plot_w + 90

        def x(q):
            q = min(max(q, lo), hi)
            return label_w + plot_w * (math.log2(q) - math.log2(lo)) / (math.log2(hi) - math.log2(lo))

        out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
               'font-size="11">' % (width, height),
               '<rect width="100%" height="100%" fill="white"/>',
               '<text x="10" y="18" font-size="14" font-weight="bold">%s</text>' % esc(title),
               '<text x="10" y="34" fill="#555">%s</text>' % esc(subtitle),
               '<text x="10" y="50" fill="#555">flurrydb / Redis, log scale; green = flurrydb better '
               '(higher throughput, lower latency/CPU/memory/load time), red = worse</text>']
        for q in (0.125, 0.25, 0.5, 1, 2, 4, 8):
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>' % (
                x(q), top - 4, x(q), top + row_h * len(bars), "#000" if q == 1 else "#ddd"))
            out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%gx</text>' % (
                x(q), top + row_h * len(bars) + 14, q))
        for i, (r, q) in enumerate(bars):
            y = top + i * row_h
            good = (q >= 1) if r[8] == "higher" else (q <= 1)
            label = "%s %s%s%s %s" % (r[0], r[1], " P=%s" % r[2] if r[2] != "" else "",
                                      " " + r[3] if r[3] else "", r[4])
            x0, x1 = sorted((x(1), x(q)))
            out.append('<text x="%d" y="%d" text-anchor="end">%s</text>' % (label_w - 6, y + 12, esc(label)))
            out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>' % (
                x0, y + 3, max(x1 - x0, 1), row_h - 6, "#3a3" if good else "#c33"))
            out.append('<text x="%.1f" y="%d">%.2f</text>' % (max(x(q), x(1)) + 4, y + 12, q))
        out.append("</svg>")
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")


CHART_METRICS = ("rps", "p99_ms", "cpu_us_per_req", "bytes_per_key", "load_s", "hit_rate")


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def csv_num(v):
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return "%.6g" % v if isinstance(v, float) else str(v)


def fmt(v, spec=None):
    """A figure for a table or the CSV; "—" when it is missing (an error, or nothing measured)."""
    if v is None or (isinstance(v, float) and v != v):
        return "—"
    if spec:
        return spec % v
    if isinstance(v, float):
        return "%.4g" % v if abs(v) < 1000 else "%.0f" % v
    return str(v)


def ratio_s(redis, ours):
    q = Report.ratio(redis, ours)
    return "—" if q is None else "%.2f" % q


def errors_note(md):
    if ERRORS:
        md.append("Figures marked — are missing: redis-benchmark got an error instead of a result:\n")
        for (name, test, p), said in sorted(ERRORS.items()):
            md.append("- %s %s -P %d: `%s`" % (name, test, p, said))
        md.append("")


def pin_note(pin):
    if not pin.split:
        return ""
    return "; servers pinned to CPU %s, redis-benchmark to CPU %s" % (
        ",".join(map(str, sorted(pin.split[0]))), ",".join(map(str, sorted(pin.split[1]))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one short round of everything (about 2 minutes)")
    ap.add_argument("--rounds", type=int, help="rounds of the throughput tests (default 3, quick 1)")
    ap.add_argument("--n", type=int, help="requests per redis-benchmark call at pipeline 1; N*P when pipelined "
                    "(default 100000, quick 60000; bench.py uses 200000)")
    ap.add_argument("--keys", type=int, help="keys for the memory and AOF-load figures (default 1000000, "
                    "quick 200000)")
    ap.add_argument("--cache-maxmemory", default="64mb", help="maxmemory of the cache run (default 64mb)")
    ap.add_argument("--cache-baseline", help="another flurrydb-server binary run in the cache section too "
                    "(as flurrydb-base, alternating with the others: an A/B of two builds in one run)")
    ap.add_argument("--cache-seconds", type=float, default=18.0,
                    help="seconds per server and policy of the cache run, a third of them warm-up (default 18)")
    ap.add_argument("--only", default="throughput,memory,collections,aofload,rdb,repl,fsync,scaling,scripts,fanout,"
                    "cache",
                    help="comma-separated sections to run (default all)")
    ap.add_argument("--tests", help="comma-separated throughput tests to run (default: all of TESTS)")
    ap.add_argument("--pin", action="store_true", help="throughput and scripts sections: servers on the first "
                    "half of the CPUs, redis-benchmark on the rest (the load generator on cores of its own)")
    ap.add_argument("--skip-build", action="store_true", help="use the existing target/release/flurrydb-server")
    ap.add_argument("--server", help="flurrydb-server binary to use instead of building target/release's")
    ap.add_argument("--out", default=os.path.join(REPO, "benches", "results"), help="where latest.csv/.svg go")
    opts = ap.parse_args()
    opts.rounds = opts.rounds or (1 if opts.quick else 3)
    opts.n = opts.n or (60000 if opts.quick else 100000)
    opts.keys = opts.keys or (200000 if opts.quick else 1000000)
    sections = set(opts.only.split(","))

    t_start = time.monotonic()
    ensure_redis()
    ours = opts.server or build(opts.skip_build)
    binaries = {"redis": shutil.which("redis-server"), "flurrydb": os.path.abspath(ours)}
    desc = machine()
    log(desc)
    rep = Report()
    md = []

    if "throughput" in sections:
        log("throughput: %d round(s), n=%d ..." % (opts.rounds, opts.n))
        tests = opts.tests.split(",") if opts.tests else TESTS
        with pinned(opts.pin) as pin:
            best = throughput(binaries, opts, tests, [1, 16])
        md.append("### Throughput, latency and server CPU (appendonly no, %d clients, -r %d, -n %d x P, "
                  "best of %d round(s)%s)\n" % (CLIENTS, KEYSPACE, opts.n, opts.rounds, pin_note(pin)))
        md.append("| test | P | Redis rps | flurrydb rps | ratio | Redis p50/p99 ms | flurrydb p50/p99 ms | "
                  "p99 ratio | Redis CPU µs/req | flurrydb CPU µs/req | CPU ratio |")
        md.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for key in sorted(best["redis"], key=lambda k: (k[1], k[0])):
            r = best["redis"][key]
            c = best["flurrydb"].get(key, (None, None, None, None))
            test, p = key
            for i, (metric, unit, better) in enumerate((("rps", "req/s", "higher"), ("p50_ms", "ms", "lower"),
                                                        ("p99_ms", "ms", "lower"),
                                                        ("cpu_us_per_req", "us", "lower"))):
                rep.add("throughput", test, p, "", metric, unit, r[i], c[i], better)
            md.append("| %s | %d | %s | %s | %s | %s / %s | %s / %s | %s | %s | %s | %s |" % (
                test, p, fmt(r[0], "%.0f"), fmt(c[0], "%.0f"), ratio_s(r[0], c[0]), fmt(r[1], "%.3f"),
                fmt(r[2], "%.3f"), fmt(c[1], "%.3f"), fmt(c[2], "%.3f"), ratio_s(r[2], c[2]), fmt(r[3], "%.2f"),
                fmt(c[3], "%.2f"), ratio_s(r[3], c[3])))
        md.append("")

    load_path = None
    try:
        if sections & {"memory", "aofload", "rdb", "repl"}:
            load_path = write_load_file(opts.keys)
        if "memory" in sections:
            md.append("### Memory per key (%d SETs through redis-cli --pipe; keys key:NNNNNNNN)\n" % opts.keys)
            md.append("| values | Redis RSS B/key | flurrydb RSS B/key | ratio | Redis used_memory B/key | "
                      "flurrydb used_memory B/key | ratio | DBSIZE Redis / flurrydb |")
            md.append("|---|--:|--:|--:|--:|--:|--:|--:|")
            for kind, _, _ in MEMORY_KINDS:
                log("memory %s: %d keys ..." % (kind, opts.keys))
                path = load_path if kind == "16B" else write_load_file(opts.keys, kind)
                try:
                    mem = memory(binaries, path, opts.keys)
                finally:
                    if path != load_path:
                        os.unlink(path)
                r, c = mem["redis"], mem["flurrydb"]
                test = "SET 16B" if kind == "16B" else "SET " + kind
                rep.add("memory", test, "", "%d keys" % opts.keys, "bytes_per_key", "B", r[0], c[0], "lower")
                rep.add("memory", test, "", "%d keys" % opts.keys, "used_memory_per_key", "B", r[2], c[2], "lower")
                md.append("| %s | %.1f | %.1f | %s | %.1f | %.1f | %s | %s / %s |" % (
                    kind, r[0], c[0], ratio_s(r[0], c[0]), r[2], c[2], ratio_s(r[2], c[2]), r[1], c[1]))
            md.append("")
        if "collections" in sections:
            log("collections: %d small keys of each kind, %d-element large ones ..." % (opts.keys // 10, opts.keys))
            rows = collections_memory(binaries, opts.keys)
            md.append("### Memory of collections (RSS growth through redis-cli --pipe, one kind per fresh server)\n")
            md.append("| data | Redis B | flurrydb B | ratio | encoding (Redis / flurrydb) |")
            md.append("|---|--:|--:|--:|---|")
            for kind, count, figs in rows:
                r, c = figs.get("redis"), figs.get("flurrydb")
                unit = "per key" if kind in SMALL_KINDS else "per element"
                what = ("%d keys, each a 10-item %s" % (count, kind) if kind in SMALL_KINDS
                        else "one %s of %d elements" % (kind[len("large "):], count))
                rep.add("collections", kind, "", "%d" % count, "bytes_" + unit.replace(" ", "_"), "B",
                        r and r[0], c and c[0], "lower")
                md.append("| %s, %s | %s | %s | %s | %s / %s |" % (
                    what, unit, fmt(r and r[0], "%.1f"), fmt(c and c[0], "%.1f"), ratio_s(r and r[0], c and c[0]),
                    r and r[1], c and c[1]))
            md.append("")
        if "aofload" in sections:
            log("aofload: %d keys ..." % opts.keys)
            al = aof_load(binaries, load_path, opts.keys)
            # A load that did not bring every key back is not a load time: no ratio for it.
            ok = {n: v[1] == opts.keys for n, v in al.items()}
            secs = {n: (v[0] if ok[n] else None) for n, v in al.items()}
            rate = {n: (opts.keys / v[0] if ok[n] and v[0] > 0 else None) for n, v in al.items()}
            cfg = "%d keys" % opts.keys
            rep.add("aofload", "restart", "", cfg, "load_s", "s", secs["redis"], secs["flurrydb"], "lower")
            rep.add("aofload", "restart", "", cfg, "keys_per_s", "keys/s", rate["redis"], rate["flurrydb"], "higher")
            rep.add("aofload", "restart", "", cfg, "aof_bytes", "B", al["redis"][2], al["flurrydb"][2], "lower")
            r, c = al["redis"], al["flurrydb"]
            md.append("### AOF load (restart on the AOF of %d SETs, until PING answers PONG)\n" % opts.keys)
            md.append("| | Redis | flurrydb | ratio |\n|---|--:|--:|--:|")
            md.append("| seconds to PONG | %.2f | %.2f | %s |" % (r[0], c[0], ratio_s(secs["redis"], secs["flurrydb"])))
            md.append("| keys loaded (DBSIZE) | %s | %s | |" % (r[1], c[1]))
            md.append("| keys per second | %s | %s | %s |" % (fmt(rate["redis"], "%.0f"), fmt(rate["flurrydb"], "%.0f"),
                                                             ratio_s(rate["redis"], rate["flurrydb"])))
            md.append("| AOF bytes on disk | %d | %d | %s |" % (r[2], c[2], ratio_s(r[2], c[2])))
            if not all(ok.values()):
                md.append("\nNo load-time ratio: %s did not bring back all %d keys after the restart."
                          % (" and ".join(n for n in ok if not ok[n]), opts.keys))
            md.append("")
        if "rdb" in sections:
            log("rdb: SAVE of %d keys, restart on the dump ..." % opts.keys)
            rd = rdb_save_load(binaries, load_path, opts.keys)
            r, c = rd["redis"], rd["flurrydb"]
            cfg = "%d keys" % opts.keys
            rate = {n: (opts.keys / v[1] if v[2] == opts.keys and v[1] else None) for n, v in rd.items()}
            rep.add("rdb", "SAVE", "", cfg, "save_s", "s", r[0], c[0], "lower")
            rep.add("rdb", "restart", "", cfg, "keys_per_s", "keys/s", rate["redis"], rate["flurrydb"], "higher")
            md.append("### RDB (SAVE of %d SETs of 16-byte values, then a restart on dump.rdb until PONG)\n"
                      % opts.keys)
            md.append("| | Redis | flurrydb | ratio |\n|---|--:|--:|--:|")
            md.append("| SAVE seconds | %s | %s | %s |" % (fmt(r[0], "%.2f"), fmt(c[0], "%.2f"), ratio_s(r[0], c[0])))
            md.append("| load seconds to PONG | %s | %s | %s |" % (fmt(r[1], "%.2f"), fmt(c[1], "%.2f"),
                                                                 ratio_s(r[1], c[1])))
            md.append("| load keys per second | %s | %s | %s |" % (
                fmt(rate["redis"], "%.0f"), fmt(rate["flurrydb"], "%.0f"), ratio_s(rate["redis"], rate["flurrydb"])))
            md.append("| keys loaded | %s | %s | |" % (r[2], c[2]))
            md.append("| dump.rdb bytes | %s | %s | %s |\n" % (r[3], c[3], ratio_s(r[3], c[3])))
        if "repl" in sections:
            log("repl: full sync of %d keys, SET with two replicas, propagation delay ..." % opts.keys)
            rp = replication(binaries, load_path, opts.keys, opts)
            r, c = rp["redis"], rp["flurrydb"]
            cfg = "%d keys" % opts.keys
            md.append("### Replication (primary loaded with %d keys; each server replicated by two of its own kind; "
                      "redis-benchmark SET on the primary; delay: a SET on the primary until a GET on a replica "
                      "sees it, every 20 ms during the P16 run)\n" % opts.keys)
            md.append("| | Redis | flurrydb | ratio |\n|---|--:|--:|--:|")

            def row(label, key, unit, better, idx=None, spec="%.2f", metric=None):
                a, b = r.get(key), c.get(key)
                if idx is not None:
                    a, b = a and a[idx], b and b[idx]
                if metric:
                    rep.add("repl", label, "", cfg, metric, unit, a, b, better)
                md.append("| %s | %s | %s | %s |" % (label, fmt(a, spec), fmt(b, spec), ratio_s(a, b)))

            row("full sync to an empty replica, s", "full_sync_s", "s", "lower", metric="full_sync_s")
            row("second replica's full sync, s", "second_sync_s", "s", "lower")
            for pl in (1, 16):
                row("SET P%d alone, rps" % pl, "alone_p%d" % pl, "req/s", "higher", 0, "%.0f")
                row("SET P%d with 2 replicas, rps" % pl, "replicas_p%d" % pl, "req/s", "higher", 0, "%.0f",
                    metric="rps_p%d_2_replicas" % pl)
                row("SET P%d with 2 replicas, primary CPU µs/req" % pl, "replicas_p%d" % pl, "us", "lower", 3)
            row("propagation delay p50, ms", "lag_ms", "ms", "lower", 0, "%.3f", metric="lag_p50_ms")
            row("propagation delay p99, ms", "lag_ms", "ms", "lower", 1, "%.3f", metric="lag_p99_ms")
            row("delay samples", "lag_ms", "", "higher", 2, "%d")
            # The delay above counts from the SET's sending: its round trip through the primary under
            # the load is in it. From the SET's reply on, it is the replication's part alone.
            row("SET round trip under the load p50, ms", "set_rtt_ms", "ms", "lower", 0, "%.3f")
            row("delay from the SET's reply p50, ms", "lag_after_ms", "ms", "lower", 0, "%.3f",
                metric="lag_after_reply_p50_ms")
            row("delay from the SET's reply p99, ms", "lag_after_ms", "ms", "lower", 1, "%.3f",
                metric="lag_after_reply_p99_ms")
            md.append("| replicas converged (DBSIZE) | %s | %s | |\n" % (r.get("converged"), c.get("converged")))
    finally:
        if load_path:
            os.unlink(load_path)

    if "fsync" in sections:
        log("fsync: SET under appendfsync no/everysec/always ...")
        fs = fsync_policies(binaries, opts)
        md.append("### SET with the AOF on (%d clients, pipeline 1, -r %d)\n" % (CLIENTS, KEYSPACE))
        md.append("| appendfsync | Redis rps | flurrydb rps | ratio | Redis p99 ms | flurrydb p99 ms | "
                  "Redis CPU µs/req | flurrydb CPU µs/req | aof_current_size Redis / flurrydb |")
        md.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        empty = []
        for policy, (figs, sizes) in fs.items():
            r = figs["redis"] or (None,) * 4
            c = figs["flurrydb"] or (None,) * 4
            cfg = "appendfsync " + policy
            rep.add("fsync", "SET", 1, cfg, "rps", "req/s", r[0], c[0], "higher")
            rep.add("fsync", "SET", 1, cfg, "p99_ms", "ms", r[2], c[2], "lower")
            rep.add("fsync", "SET", 1, cfg, "cpu_us_per_req", "us", r[3], c[3], "lower")
            md.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |" % (
                policy, fmt(r[0], "%.0f"), fmt(c[0], "%.0f"), ratio_s(r[0], c[0]), fmt(r[2], "%.3f"),
                fmt(c[2], "%.3f"), fmt(r[3], "%.2f"), fmt(c[3], "%.2f"), sizes.get("redis"), sizes.get("flurrydb")))
            empty += [n for n in binaries if not sizes.get(n)]
        if empty:
            md.append("\nWarning: %s reported no AOF bytes (INFO persistence aof_current_size): its figures may "
                      "not be those of a server writing an AOF." % " and ".join(sorted(set(empty))))
        md.append("")

    if "scaling" in sections:
        log("scaling: flurrydb --worker-threads ...")
        redis_best = {}
        sc, counts = scaling(binaries, opts, redis_best)
        md.append("### Scaling: flurrydb --worker-threads W against Redis (rps, ratio to Redis; %d cores shared "
                  "with redis-benchmark)\n" % (os.cpu_count() or 0))
        md.append("| test | P | Redis | " + " | ".join("W=%d" % w for w in counts) + " |")
        md.append("|---|--:|--:|" + "--:|" * len(counts))
        for key in sorted(redis_best, key=lambda k: (k[1], k[0])):
            r = redis_best[key]
            cells = []
            for w in counts:
                c = sc[w].get(key, (None,))
                rep.add("scaling", key[0], key[1], "worker-threads %d" % w, "rps", "req/s", r[0], c[0], "higher")
                cells.append("%s (%s)" % (fmt(c[0], "%.0f"), ratio_s(r[0], c[0])))
            md.append("| %s | %d | %.0f | %s |" % (key[0], key[1], r[0], " | ".join(cells)))
        md.append("")
        md.extend(keyspace_scaling(opts))

    if "scripts" in sections:
        log("scripts: EVALSHA rate limiter and lock release ...")
        with pinned(opts.pin) as pin:
            best = scripts(binaries, opts)
        md.append("### Scripts: EVALSHA (%d clients, -r %d, -n %d x P, best of %d round(s)%s)\n"
                  % (CLIENTS, KEYSPACE, opts.n, opts.rounds, pin_note(pin)))
        md.append("| script | P | Redis rps | flurrydb rps | ratio | Redis p99 ms | flurrydb p99 ms | "
                  "Redis CPU µs/req | flurrydb CPU µs/req |")
        md.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        for key in sorted(best["redis"], key=lambda k: (k[1], k[0])):
            r = best["redis"][key]
            c = best["flurrydb"].get(key, (None, None, None, None))
            rep.add("scripts", "EVALSHA " + key[0], key[1], "", "rps", "req/s", r[0], c[0], "higher")
            rep.add("scripts", "EVALSHA " + key[0], key[1], "", "p99_ms", "ms", r[2], c[2], "lower")
            rep.add("scripts", "EVALSHA " + key[0], key[1], "", "cpu_us_per_req", "us", r[3], c[3], "lower")
            md.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                key[0], key[1], fmt(r[0], "%.0f"), fmt(c[0], "%.0f"), ratio_s(r[0], c[0]), fmt(r[2], "%.3f"),
                fmt(c[2], "%.3f"), fmt(r[3], "%.2f"), fmt(c[3], "%.2f")))
    if "fanout" in sections:
        log("fanout: one publisher at pipeline 16 to 1, 10, 100 subscribers ...")
        fo = fanout(binaries, opts)
        md.append("### Pub/sub fan-out (one publisher, redis-benchmark -c 1 -P 16 PUBLISH; S subscribers on one "
                  "channel, drained by %d processes; at least %d deliveries per case, median of %d rounds)\n"
                  % (max(1, (os.cpu_count() or 2) // 2), FANOUT_DELIVERIES, max(4, opts.rounds + opts.rounds % 2)))
        md.append("| subscribers | message | Redis msgs/s | flurrydb msgs/s | ratio | Redis CPU µs/msg | "
                  "flurrydb CPU µs/msg | CPU ratio |")
        md.append("|--:|--:|--:|--:|--:|--:|--:|--:|")
        for (subs, size), figs in sorted(fo.items()):
            r = figs.get("redis", (None, None))
            c = figs.get("flurrydb", (None, None))
            cfg = "%d subscribers, %d B" % (subs, size)
            rep.add("fanout", "PUBLISH", 16, cfg, "msgs_per_s", "msg/s", r[0], c[0], "higher")
            rep.add("fanout", "PUBLISH", 16, cfg, "cpu_us_per_msg", "us", r[1], c[1], "lower")
            md.append("| %d | %d B | %s | %s | %s | %s | %s | %s |" % (
                subs, size, fmt(r[0], "%.0f"), fmt(c[0], "%.0f"), ratio_s(r[0], c[0]), fmt(r[1], "%.3f"),
                fmt(c[1], "%.3f"), ratio_s(r[1], c[1])))
        md.append("")
        log("fanout memory, each on a fresh server: %d channels, %d patterns on one connection, %d subscribed connections ..."
            % (FANOUT_MEM_CHANNELS, FANOUT_MEM_PATTERNS, FANOUT_MEM_CLIENTS))
        fm = fanout_memory(binaries)
        md.append("### Pub/sub memory (each on a fresh server: one connection subscribing %d channels; one %d patterns; %d "
                  "connections subscribing one channel; growth of INFO used_memory and of RSS, per item)\n"
                  % (FANOUT_MEM_CHANNELS, FANOUT_MEM_PATTERNS, FANOUT_MEM_CLIENTS))
        md.append("| per | Redis used_memory B | flurrydb used_memory B | ratio | Redis RSS B | flurrydb RSS B | "
                  "RSS ratio |")
        md.append("|---|--:|--:|--:|--:|--:|--:|")
        for what, figs in fm.items():
            r = figs.get("redis", (None, None))
            c = figs.get("flurrydb", (None, None))
            rep.add("fanout", "memory", 0, what, "used_memory_bytes", "B", r[0], c[0], "lower")
            rep.add("fanout", "memory", 0, what, "rss_bytes", "B", r[1], c[1], "lower")
            md.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                what, fmt(r[0], "%.0f"), fmt(c[0], "%.0f"), ratio_s(r[0], c[0]), fmt(r[1], "%.0f"),
                fmt(c[1], "%.0f"), ratio_s(r[1], c[1])))
        md.append("")

    if "cache" in sections:
        log("cache: Zipf(%.2f) GET-then-SET-on-miss over %d keys, maxmemory %s ..."
            % (CACHE_ZIPF_S, CACHE_KEYS, opts.cache_maxmemory))
        cache_bins = dict(binaries)
        if opts.cache_baseline:
            cache_bins["flurrydb-base"] = os.path.abspath(opts.cache_baseline)
        ca = cache(cache_bins, opts)
        md.append("### Cache at maxmemory %s (Zipf(%.2f) GETs over %dM keys, SET of 100 B on each miss; 2 clients "
                  "pipelining 64; %.0f s per run, the first third warm-up)\n"
                  % (opts.cache_maxmemory, CACHE_ZIPF_S, CACHE_KEYS // 1_000_000, opts.cache_seconds))
        md.append("| policy | Redis hit rate | flurrydb hit rate | ratio | Redis ops/s | flurrydb ops/s | ratio | "
                  "RSS growth MB Redis / flurrydb | evicted Redis / flurrydb |")
        md.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        for policy, figs in ca.items():
            r = figs.get("redis", (None,) * 6)
            c = figs.get("flurrydb", (None,) * 6)
            cfg = "maxmemory %s" % opts.cache_maxmemory
            rep.add("cache", policy, 64, cfg, "hit_rate", "", r[0], c[0], "higher")
            rep.add("cache", policy, 64, cfg, "rps", "ops/s", r[1], c[1], "higher")
            rep.add("cache", policy, 64, cfg, "rss_growth_bytes", "B", r[2], c[2], "lower")
            md.append("| %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s |" % (
                policy, fmt(r[0], "%.4f"), fmt(c[0], "%.4f"), ratio_s(r[0], c[0]), fmt(r[1], "%.0f"),
                fmt(c[1], "%.0f"), ratio_s(r[1], c[1]), fmt(r[2] and r[2] / 2**20, "%.1f"),
                fmt(c[2] and c[2] / 2**20, "%.1f"), r[4], c[4]))
            b = figs.get("flurrydb-base")
            if b:
                md.append("| %s (--cache-baseline) | | %s | %s | | %s | %s | %s | %s |" % (
                    policy, fmt(b[0], "%.4f"), ratio_s(r[0], b[0]), fmt(b[1], "%.0f"), ratio_s(r[1], b[1]),
                    fmt(b[2] and b[2] / 2**20, "%.1f"), b[4]))
        md.append("")

    errors_note(md)
    os.makedirs(opts.out, exist_ok=True)
    rep.write_csv(os.path.join(opts.out, "latest.csv"))
    rep.write_svg(os.path.join(opts.out, "latest.svg"), "flurrydb vs Redis",
                  "%s; python3 benches/vs_redis.py %s" % (desc, " ".join(sys.argv[1:])))
    print("Machine: %s  " % desc)
    print("Command: `python3 benches/vs_redis.py %s` (%.0f s)\n" % (" ".join(sys.argv[1:]),
                                                                   time.monotonic() - t_start))
    print("\n".join(md))
    print("Wrote %s and %s" % (os.path.join(opts.out, "latest.csv"), os.path.join(opts.out, "latest.svg")))


if __name__ == "__main__":
    try:
        main()
    finally:
        _kill_all()
