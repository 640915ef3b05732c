#!/usr/bin/env python3
"""Issue 13's monitoring acceptance: prometheus-redis-exporter must export, for our server, every metric NAME it
exports for redis-server 7.0.15 after the same small workload, and log no error for ours.

Usage: exporter_check.py PATH_TO_FLURRYDB_SERVER [BASE_PORT]
Starts redis-server and our server on 127.0.0.1 (BASE_PORT, BASE_PORT+1; default 18200), one exporter for each
(web ports BASE_PORT+10, +11), scrapes /metrics once each, prints the two counts and the names ours lacks.
Installs prometheus-redis-exporter with apt only when it is missing. Exits non-zero on any failure."""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN = sys.argv[1]
BASE = int(sys.argv[2]) if len(sys.argv) > 2 else 18200
EXPORTER = "prometheus-redis-exporter"
procs = []


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def ensure_exporter():
    if shutil.which(EXPORTER):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", EXPORTER], check=True)


def wait_port(port, what, deadline_s=20):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    fail(f"{what} did not listen on {port}")


def start(args, port, what, log):
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    procs.append(p)
    wait_port(port, what)
    return p


def read_reply(f):
    """Read one RESP2 reply from a file over the socket; an error reply comes back as an Exception."""
    line = f.readline()
    if not line:
        fail("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [read_reply(f) for _ in range(n)]
    if kind == b":":
        return int(rest)
    if kind == b"-":
        return Exception(rest.decode())
    return rest


def command(sock, f, *args):
    sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args)))
    return read_reply(f)


def workload(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    for cmd in [
        ("CONFIG", "SET", "slowlog-log-slower-than", "0"),
        ("CONFIG", "SET", "latency-monitor-threshold", "1"),
        ("SET", "k", "v"),
        ("GET", "k"),
        ("GET", "missing"),
        ("INCR", "n"),
        ("LPUSH", "l", "a", "b"),
        ("INCR", "k"),  # an error reply
        ("NOSUCHCOMMAND",),  # an unknown command
        ("DEBUG", "SLEEP", "0.02"),  # a slow command, where the server has it
        ("EXPIRE", "n", "100"),
    ]:
        command(s, f, *cmd)
    s.close()


def scrape(web_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=30) as r:
        text = r.read().decode()
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, 1)[0])
    return names, text


def main():
    ensure_exporter()
    d = tempfile.mkdtemp(prefix="exporter_check")
    redis_port, ours_port = BASE, BASE + 1
    logs = {n: open(os.path.join(d, n + ".log"), "w+") for n in ["redis", "ours", "exp_redis", "exp_ours"]}
    try:
        start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--dir", d,
               "--appendonly", "no"], redis_port, "redis-server", logs["redis"])
        start([BIN, "--port", str(ours_port), "--dir", d], ours_port, "flurrydb", logs["ours"])
        workload(redis_port)
        workload(ours_port)
        results = {}
        for name, port, web in [("redis", redis_port, BASE + 10), ("ours", ours_port, BASE + 11)]:
            log = logs["exp_" + name]
            start([EXPORTER, "--redis.addr", f"redis://127.0.0.1:{port}", "--web.listen-address",
                   f"127.0.0.1:{web}"], web, "exporter", log)
            results[name] = scrape(web)
        redis_names, ours_names = results["redis"][0], results["ours"][0]
        print(f"metric names exported: redis-server {len(redis_names)}, flurrydb {len(ours_names)}")
        missing = sorted(redis_names - ours_names)
        for m in missing:
            print("  missing for flurrydb:", m)
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
        logs["exp_ours"].seek(0)
        errors = [l for l in logs["exp_ours"].read().splitlines() if re.search(r"level=(error|warning|fatal)", l)]
        ours_text = results["ours"][1]
        if not re.search(r"^redis_up 1$", ours_text, re.M):
            errors.append("redis_up is not 1")
        if re.search(r"^redis_exporter_last_scrape_error\{[^}]*\} 1$", ours_text, re.M):
            errors.append("redis_exporter_last_scrape_error is 1")
        for l in errors:
            print("  exporter log for flurrydb:", l)
        if missing or errors:
            fail(f"{len(missing)} metric names missing, {len(errors)} exporter errors")
        print("OK")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)


main()
