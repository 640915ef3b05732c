#!/usr/bin/env python3
"""Replication A/B: Redis and several flurrydb binaries, each as a primary with two replicas of its own
kind, in one run (the order flips every round).

    python3 benches/ab_repl.py N ROUNDS NAME=BINARY [NAME=BINARY ...]
    e.g. AB_PORT_BASE=31000 python3 benches/ab_repl.py 40000 3 before=/tmp/old after=target/release/flurrydb-server

Per round and server: a primary and two replicas (`--appendonly no --save ''`); the primary gets
$AB_KEYS keys first (key:%08d, through redis-cli --pipe; default none) and is measured alone, then both
replicas attached, synced and online, then for P in $PIPES (default "16 1") `redis-benchmark -c 50 -r 100000 -n N*P -P P
-t set` on the primary, then until both replicas hold the primary's DBSIZE. Kept per server and P: the
best throughput, and the lowest of the rounds for the primary's CPU µs/request, its context switches
per request (all threads), and the two replicas' CPU µs/request and switches/request (measured from
the benchmark's start until they converged). Per round (all samples printed): the seconds from the
benchmark's end until both replicas converged, and at the largest P a lag probe (a SET on the primary
every 20 ms; its round trip, and the delay from its reply until a GET on the first replica sees it). With $AB_THREADS set, the primary's switches per request by thread name too.
"""
import csv
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

_started = []


def cpu_s(pid):
    """utime + stime of the process, its threads that ended included (tokio's blocking threads
    end when idle), seconds."""
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def switches(pid, by_name=None):
    total = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            name, n = "?", 0
            for line in open("/proc/%d/task/%s/status" % (pid, t)):
                if line.startswith("Name:"):
                    name = line.split(None, 1)[1].strip()
                if "ctxt_switches:" in line:
                    n += int(line.split()[-1])
            total += n
            if by_name is not None:
                by_name[name] = by_name.get(name, 0) + n
        except OSError:
            pass
    return total


def waited_s(pid):
    """Seconds the process's live threads spent runnable but waiting for a CPU (schedstat)."""
    total = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            total += int(open("/proc/%d/task/%s/schedstat" % (pid, t)).read().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def command(port, *args, timeout=10.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args))
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return ""
            buf += chunk
        if buf.startswith(b"$"):
            head, rest = buf.split(b"\r\n", 1)
            need = int(head[1:]) + 2
            while len(rest) < need:
                rest += s.recv(65536)
            return rest[:need - 2].decode(errors="replace")
        return buf.split(b"\r\n", 1)[0].decode(errors="replace")


def info_field(port, field):
    for line in command(port, "INFO", "replication").splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return None


def start(binary, port, d):
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "", "--appendonly", "no",
            "--repl-diskless-sync-delay", "0"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _started.append(p)
    for _ in range(400):
        try:
            if command(port, "PING") == "+PONG":
                return p
        except OSError:
            time.sleep(0.05)
    raise SystemExit("%s did not start" % binary)


# vs_redis.py's probe, one for both benches: every 20 ms a fresh SET on the primary, then GETs on the
# replica until it shows; `set_rtt` is the SET's round trip (the primary's latency under the load, not
# replication), `after` the delay from the SET's reply until the replica shows the value.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vs_redis import _LagProbe as LagProbe  # noqa: E402


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))] if xs else float("nan")


def bench(ports, procs, p, n, names, probe=False):
    """One redis-benchmark SET run on ports[0]; waits until the replicas (ports[1:]) hold its DBSIZE.
    With probe, a LagProbe on ports[0] -> ports[1] runs during the benchmark."""
    reqs = n * p
    c0 = [cpu_s(x.pid) for x in procs]
    sw0 = [switches(x.pid) for x in procs[1:]]
    w0 = [waited_s(x.pid) for x in procs]
    by0 = {}
    s0 = switches(procs[0].pid, by0)
    lp = LagProbe(ports[0], ports[1]) if probe and len(ports) > 1 else None
    if lp:
        lp.start()
    res = subprocess.run(["redis-benchmark", "-p", str(ports[0]), "-c", "50", "-r", "100000", "-n",
                          str(reqs), "-P", str(p), "--csv", "-t", "set"], capture_output=True, text=True)
    t_end = time.monotonic()
    if lp:
        lp.stop_flag = True
        lp.join(timeout=60)
    by1 = {}
    s1 = switches(procs[0].pid, by1)
    c1p = cpu_s(procs[0].pid)
    rows = [r for r in csv.reader(io.StringIO(res.stdout)) if r and r[0] != "test"]
    rps = float(rows[-1][1]) if rows else 0.0
    want = command(ports[0], "DBSIZE")
    # Converged: each replica processed the primary's stream up to where it stood after the run
    # (DBSIZE alone saturates long before the stream's end with -r 100000), and holds its DBSIZE.
    off = int(info_field(ports[0], "master_repl_offset") or 0) if len(ports) > 1 else 0
    t1 = time.monotonic()
    while time.monotonic() - t1 < 60 and not all(
            int(info_field(x, "master_repl_offset") or 0) >= off and command(x, "DBSIZE") == want for x in ports[1:]):
        time.sleep(0.005)
    catch_up = time.monotonic() - t_end
    c1 = [cpu_s(x.pid) for x in procs]
    sw1 = [switches(x.pid) for x in procs[1:]]
    w1 = [waited_s(x.pid) for x in procs]
    wait = [b - a for a, b in zip(w0, w1)]
    c1[0] = c1p
    us = [(b - a) * 1e6 / reqs for a, b in zip(c0, c1)]
    names.update(by1)
    rep_us = sum(us[1:]) / len(us[1:]) if len(us) > 1 else 0.0
    rep_sw = sum(b - a for a, b in zip(sw0, sw1)) / len(sw0) / reqs if sw0 else 0.0
    lag = (pct(lp.set_rtt, 0.5), pct(lp.after, 0.5), pct(lp.after, 0.99), len(lp.after)) if lp else None
    return (rps, us[0], (s1 - s0) / reqs, rep_us, {k: (by1.get(k, 0) - by0.get(k, 0)) / reqs for k in by1},
            rep_sw, catch_up, lag, wait, lp.after if lp else [])


def run_one(binary, base, n, pipes, names, load_path):
    dirs = [tempfile.mkdtemp(prefix="ab-repl-") for _ in range(3)]
    ports = [base, base + 1, base + 2]
    procs = []
    out = {}
    try:
        for port, d in zip(ports, dirs):
            procs.append(start(binary, port, d))
        if load_path:
            with open(load_path, "rb") as f:
                subprocess.run(["redis-cli", "-p", str(ports[0]), "--pipe"], stdin=f, capture_output=True)
        for p in pipes:
            out[("alone", p)] = bench(ports[:1], procs[:1], p, n, {})
        for port in ports[1:]:
            command(port, "REPLICAOF", "127.0.0.1", str(ports[0]))
        want = command(ports[0], "DBSIZE")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120:
            if all(info_field(p, "master_link_status") == "up" and command(p, "DBSIZE") == want for p in ports[1:]):
                break
            time.sleep(0.05)
        else:
            raise SystemExit("replicas did not come up")
        for p in pipes:
            out[("2 replicas", p)] = bench(ports, procs, p, n, names, probe=p == max(pipes))
    finally:
        for x in procs:
            x.kill()
            x.wait()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
    return out


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    n, rounds = int(sys.argv[1]), int(sys.argv[2])
    servers = [("redis", shutil.which("redis-server"))] + [a.split("=", 1) for a in sys.argv[3:]]
    pipes = [int(x) for x in os.environ.get("PIPES", "16 1").split()]
    base = int(os.environ.get("AB_PORT_BASE", "26100"))
    keys = int(os.environ.get("AB_KEYS", "0"))
    load_path = None
    if keys:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from vs_redis import write_load_file
        load_path = write_load_file(keys)
    best = {}
    names = {}
    lags = {}
    pooled = {}
    for r in range(rounds):
        order = servers if r % 2 == 0 else list(reversed(servers))
        for name, binary in order:
            got = run_one(binary, base, n, pipes, {} if name == "redis" else names, load_path)
            for (what, p), fig in got.items():
                p = (what, p)
                old = best.get((name, p))
                extra = ""
                if what == "2 replicas":
                    extra = ", replica %.3f sw/req, catch-up %.3f s, waited for a CPU s: %s" % (
                        fig[5], fig[6], "/".join("%.2f" % w for w in fig[8]))
                    lags.setdefault((name, p), []).append((fig[6],) + (fig[7] or ()))
                    pooled.setdefault(name, []).extend(fig[9])
                    if fig[7]:
                        extra += ", SET rtt p50 %.2f ms, delay after reply p50 %.2f p99 %.2f ms (%d)" % fig[7]
                print("round %d %s %s P%d: %.0f rps, primary %.2f us/req, %.3f sw/req, replica %.2f us/req%s" % (
                    r, name, what, p[1], fig[0], fig[1], fig[2], fig[3], extra), file=sys.stderr, flush=True)
                if old is None:
                    best[(name, p)] = fig
                else:
                    best[(name, p)] = (max(old[0], fig[0]), min(old[1], fig[1]), min(old[2], fig[2]),
                                       min(old[3], fig[3]), fig[4] if fig[1] < old[1] else old[4],
                                       min(old[5], fig[5]), min(old[6], fig[6]), None, None, [])
    if load_path:
        os.unlink(load_path)
    print("| SET | P | server | rps | ratio | primary CPU us/req | ratio | primary switches/req | "
          "replica CPU us/req | ratio | replica switches/req |")
    print("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    cases = [(w, p) for w in ("alone", "2 replicas") for p in pipes]
    for c in cases:
        red = best[("redis", c)]
        for name, _ in servers:
            f = best[(name, c)]
            rr = "%.2f | %.2f | %.3f" % (f[3], f[3] / red[3], f[5]) if red[3] else "| |"
            print("| %s | %d | %s | %.0f | %.2f | %.2f | %.2f | %.3f | %s |" % (
                c[0], c[1], name, f[0], f[0] / red[0], f[1], f[1] / red[1], f[2], rr))
    print()
    for c in cases:
        if c[0] == "2 replicas" and c[1] != max(pipes):
            print("catch-up after the run at P%d, s: %s" % (c[1], "; ".join(
                "%s %s" % (name, " / ".join("%.2f" % x[0] for x in lags.get((name, c), []))) for name, _ in servers)))
    print()
    print("| SET with 2 replicas | P | server | catch-up after the run, s | SET rtt p50, ms | "
          "delay after the reply p50, ms | p99, ms | samples |")
    print("|---|--:|---|---|---|---|---|---|")
    for c in cases:
        for name, _ in servers:
            rows = lags.get((name, c), [])
            if not any(len(x) > 1 for x in rows):
                continue  # no probe at this pipeline (only the largest has one)

            def col(i, fmt):
                return " / ".join(fmt % x[i] if len(x) > i else "-" for x in rows)
            print("| %s | %d | %s | %s | %s | %s | %s | %s |" % (
                c[0], c[1], name, col(0, "%.2f"), col(1, "%.2f"), col(2, "%.2f"), col(3, "%.1f"), col(4, "%d")))
    print()
    print("| server | delay after the reply, all rounds' samples: p50 | p90 | p99 | mean, ms | samples |")
    print("|---|--:|--:|--:|--:|--:|")
    for name, _ in servers:
        xs = pooled.get(name, [])
        if xs:
            print("| %s | %.2f | %.2f | %.2f | %.2f | %d |" % (
                name, pct(xs, 0.5), pct(xs, 0.9), pct(xs, 0.99), sum(xs) / len(xs), len(xs)))
    if os.environ.get("AB_THREADS"):
        for c in cases:
            for name, _ in servers[1:]:
                per = best[(name, c)][4]
                print("%s %s P%d switches/req by thread: %s" % (name, c[0], c[1], ", ".join(
                    "%s %.3f" % (k, v) for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v > 0.0005)))


if __name__ == "__main__":
    try:
        main()
    finally:
        for proc in _started:
            if proc.poll() is None:
                proc.kill()
