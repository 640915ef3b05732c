#!/usr/bin/env python3
"""Pub/sub under load (issue 16 item 6), on any server: 10k subscribers on one channel, 100k
channels and 10k patterns' worth of memory, and a subscriber that never reads while other clients
are served. Prints figures; exits 1 when a bound is broken.

usage: pubsub_load.py PORT SERVER_PID [--subscribers 10000]
The server's resident memory is read from /proc/SERVER_PID/status.
"""
import argparse
import resource
import socket
import sys
import time


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def enc(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_until(s, suffix, buf=b""):
    while not buf.endswith(suffix):
        d = s.recv(1 << 20)
        if not d:
            raise EOFError(buf[-200:])
        buf += d
    return buf


def used_memory(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(enc("INFO", "memory"))
    text = read_until(s, b"\r\n\r\n").decode()
    s.close()
    return int(text.split("used_memory:")[1].split("\r\n")[0])


def read_lines(s, n):
    """n single-line replies."""
    buf = b""
    while buf.count(b"\r\n") < n:
        buf += s.recv(1 << 16)
    return buf


def cmd(port, *args):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(enc(*args))
    r = read_until(s, b"\r\n")
    s.close()
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("pid", type=int)
    ap.add_argument("--subscribers", type=int, default=10000)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.subscribers + 1000), hard))
    port, pid, ok = a.port, a.pid, True

    # 1. 100k channels and 10k patterns on one connection: memory per subscription.
    base = used_memory(port)
    big = socket.create_connection(("127.0.0.1", port))
    n = 100_000
    big.sendall(enc("SUBSCRIBE", *[f"channel:{i}" for i in range(n)]))
    read_until(big, b":%d\r\n" % n)
    mid = used_memory(port)
    # Redis 7.0 keeps a client's patterns in a list (PSUBSCRIBE is O(patterns)): 10k, not 100k.
    npat = 10_000
    big.sendall(enc("PSUBSCRIBE", *[f"pattern:{i}:*" for i in range(npat)]))
    read_until(big, b":%d\r\n" % (n + npat))
    end = used_memory(port)
    print(f"100k channels: {(mid - base) / n:.0f} B/subscription; "
          f"10k patterns: {(end - mid) / npat:.0f} B/pattern (INFO used_memory deltas)")
    p = socket.create_connection(("127.0.0.1", port))
    t = time.time()
    for i in range(200):
        p.sendall(enc("PUBLISH", f"channel:{i}", "x"))
    read_lines(p, 200)
    print(f"PUBLISH with 10k patterns to match: {(time.time() - t) / 200 * 1e3:.2f} ms each")
    big.close()
    time.sleep(0.5)

    # 2. N subscribers on one channel: each message reaches all of them.
    base = rss_kb(pid)
    subs = []
    for _ in range(a.subscribers):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(enc("SUBSCRIBE", "all"))
        subs.append(s)
    for s in subs:
        read_until(s, b":1\r\n")
    p = socket.create_connection(("127.0.0.1", port))
    t = time.time()
    msgs = 20
    for i in range(msgs):
        p.sendall(enc("PUBLISH", "all", f"m{i}"))
    replies = read_until(p, b":%d\r\n" % a.subscribers * msgs)
    for s in subs:
        read_until(s, b"m%d\r\n" % (msgs - 1))
    dt = time.time() - t
    print(f"{a.subscribers} subscribers x {msgs} messages: {a.subscribers * msgs / dt:,.0f} deliveries/s, "
          f"RSS +{(rss_kb(pid) - base) / 1024:.1f} MB with the connections")
    for s in subs:
        s.close()
    time.sleep(0.5)

    # 3. A subscriber that never reads, under the default pubsub limit (32mb hard): the server's
    # memory stays bounded and another client keeps its latency.
    cmd(port, "CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60")
    base = rss_kb(pid)
    slow = socket.create_connection(("127.0.0.1", port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(enc("SUBSCRIBE", "firehose"))
    read_until(slow, b":1\r\n")
    pinger = socket.create_connection(("127.0.0.1", port))
    payload = b"x" * 65536
    worst, peak, cut = 0.0, base, None
    for i in range(3000):  # 3000 x 64 KB = 190 MB offered
        p.sendall(enc("PUBLISH", "firehose", payload))
        r = read_until(p, b"\r\n")
        if r == b":0\r\n" and cut is None:
            cut = i
        if i % 50 == 0:
            t = time.time()
            pinger.sendall(enc("PING"))
            read_until(pinger, b"+PONG\r\n")
            worst = max(worst, time.time() - t)
            peak = max(peak, rss_kb(pid))
    grew = (peak - base) / 1024
    print(f"never-reading subscriber: cut after {cut} messages of 64 KB; RSS peak +{grew:.1f} MB over 190 MB "
          f"offered; worst PING meanwhile {worst * 1e3:.2f} ms")
    if cut is None or grew > 128:
        ok = False
    slow.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
