#!/usr/bin/env python3
"""The pause a BGSAVE costs other clients: the longest SET/INCR round trip a client sees while a
BGSAVE of KEYS keys runs, against redis-server (whose BGSAVE forks) in the same run.

    python3 benches/bgsave_latency.py [--keys 1000000] [--rounds 3] [--bin target/release/flurrydb-server]
                                      [--baseline BIN] [--port 27100] [--sync]

With --sync the probe runs during a full sync instead: per round a fresh, empty replica (the same
binary, on port+10) is started with REPLICAOF the loaded server, and the round ends when its link
is up; the "save s" column is then the sync's duration.

Each server (and --baseline, another flurrydb binary, if given) is started fresh with
--save '' --appendonly no, loaded with KEYS string keys (16-byte values, redis-cli --pipe) and
10k counters; then per round a probe client sends SET and INCR one at a time (each waits for its
reply) while another sends BGSAVE, until INFO says the save finished. Printed per server: the
median over rounds of the probe's max and p99 round trip during the save, and of the save's
duration; the max is also given as a ratio to Redis's.
"""
import argparse, os, shutil, socket, statistics, subprocess, sys, tempfile, threading, time


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")

    def cmd(self, *args):
        self.s.sendall(resp(*args))
        return self.read()

    def read(self):
        line = self.f.readline()
        t = line[:1]
        if t == b"$":
            n = int(line[1:])
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b"*":
            return [self.read() for _ in range(int(line[1:]))]
        if t == b"-":
            raise RuntimeError(line.decode().strip())
        return line[1:].strip()


def info_field(c, section, name):
    text = c.cmd("INFO", section).decode()
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1]
    return None


def start(binary, port, d):
    p = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "",
                          "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            c = Conn(port)
            if c.cmd("PING") == b"PONG":
                return p, c
        except OSError:
            pass
        time.sleep(0.05)
    p.kill()
    raise SystemExit(f"{binary} did not start")


def load(port, keys):
    data = bytearray()
    for i in range(keys):
        data += resp("SET", "key:%012d" % i, "v" * 16)
    for i in range(10000):
        data += resp("SET", "ctr:%d" % i, i)
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=bytes(data), stdout=subprocess.DEVNULL,
                   check=True)


def start_replica(binary, port, primary):
    d = tempfile.mkdtemp(prefix="bglat-replica-")
    p, c = start(binary, port, d)
    return p, c, d


def one_save(port, sync_binary=None):
    probe, ctl = Conn(port), Conn(port)
    lat, stop = [], threading.Event()

    def run():
        i = 0
        while not stop.is_set():
            i += 1
            t = time.perf_counter()
            if i % 2:
                probe.cmd("SET", "key:%012d" % (i * 7919 % 1000000), "w" * 16)
            else:
                probe.cmd("INCR", "ctr:%d" % (i % 10000))
            lat.append(time.perf_counter() - t)

    th = threading.Thread(target=run)
    th.start()
    time.sleep(0.3)
    base = len(lat)
    replica = None
    if sync_binary:
        replica = start_replica(sync_binary, port + 10, port)
        t0 = time.perf_counter()
        replica[1].cmd("REPLICAOF", "127.0.0.1", port)
        while info_field(replica[1], "replication", "master_link_status") != "up":
            time.sleep(0.005)
    else:
        t0 = time.perf_counter()
        ctl.cmd("BGSAVE")
        while info_field(ctl, "persistence", "rdb_bgsave_in_progress") != "0":
            time.sleep(0.005)
    dur = time.perf_counter() - t0
    stop.set()
    th.join()
    if replica:
        replica[0].kill()
        replica[0].wait()
        shutil.rmtree(replica[2], ignore_errors=True)
    during = sorted(lat[base:])
    return during[-1] * 1000, during[int(len(during) * 0.99)] * 1000, dur, len(during)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", default="target/release/flurrydb-server")
    ap.add_argument("--baseline")
    ap.add_argument("--port", type=int, default=27100)
    ap.add_argument("--sync", action="store_true", help="probe during a full sync instead of a BGSAVE")
    a = ap.parse_args()
    servers = [("redis", shutil.which("redis-server")), ("flurrydb", a.bin)]
    if a.baseline:
        servers.append(("baseline", a.baseline))
    results = {}
    for i, (name, binary) in enumerate(servers):
        d = tempfile.mkdtemp(prefix="bglat-")
        port = a.port + i
        p, c = start(binary, port, d)
        try:
            load(port, a.keys)
            print(f"{name}: dbsize {c.cmd('DBSIZE').decode()}", file=sys.stderr)
            runs = [one_save(port, binary if a.sync else None) for _ in range(a.rounds)]
        finally:
            p.kill()
            p.wait()
            shutil.rmtree(d, ignore_errors=True)
        med = lambda k: statistics.median(r[k] for r in runs)
        results[name] = (med(0), med(1), med(2), med(3))
        print(f"{name}: rounds {[(round(r[0], 2), round(r[1], 2), round(r[2], 3)) for r in runs]}", file=sys.stderr)
    ref = results["redis"][0]
    print(f"{'server':10} {'max ms':>8} {'p99 ms':>8} {'save s':>7} {'ops':>7} {'max/redis':>9}")
    for name, (mx, p99, dur, n) in results.items():
        print(f"{name:10} {mx:8.2f} {p99:8.2f} {dur:7.3f} {n:7d} {mx / ref:9.2f}")


if __name__ == "__main__":
    main()
