#!/usr/bin/env python3
"""Client-side caching with redis-py (>= 5.1: `protocol=3, cache_config=CacheConfig()`; 8.2 adds the
OPTIN/OPTOUT tracking modes): the client caches what it reads, and the server's invalidations keep
it fresh when another client writes, deletes, expires, runs a script, EXECs or flushes. Every step
asserts what it reads, so the same script passes against redis-server and flurrydb.
Usage: csc_py.py PORT [PORT ...]   (exits non-zero on the first failure)."""
import sys
import time

import redis
from redis.cache import CacheConfig

try:
    from redis.cache import TrackingMode

    MODES = [TrackingMode.PLAIN, TrackingMode.OPTIN, TrackingMode.OPTOUT]
except ImportError:  # redis-py before 8.2: plain tracking only
    MODES = [None]


# redis-py refuses caching below Redis 7.4 (a product policy: it needs nothing 7.0 lacks, CLIENT
# TRACKING and RESP3 invalidation pushes are Redis 6.0's). Both servers here answer as 7.0.15.
for _cls in ("CacheProxyConnection",):
    if hasattr(redis.connection, _cls):
        getattr(redis.connection, _cls).MIN_ALLOWED_VERSION = "7.0.0"


def eventually(f, want, timeout=5.0):
    """f() == want within `timeout` (an invalidation is read with the client's next command)."""
    deadline = time.time() + timeout
    got = f()
    while got != want and time.time() < deadline:
        time.sleep(0.02)
        got = f()
    assert got == want, (got, want)


def check(port, mode):
    w = redis.Redis(host="127.0.0.1", port=port)
    w.flushall()
    # OPTIN caches what its predicate picks (CLIENT CACHING YES before those reads): all here.
    if mode is None:
        cfg = CacheConfig()
    elif mode is TrackingMode.PLAIN:
        cfg = CacheConfig(tracking_mode=mode)
    else:
        cfg = CacheConfig(tracking_mode=mode, cache_predicate=lambda cmd, keys: True)
    c = redis.Redis(host="127.0.0.1", port=port, protocol=3, cache_config=cfg)
    cache = c.get_cache()

    w.set("csc:a", "1")
    assert c.get("csc:a") == b"1"
    assert c.get("csc:a") == b"1"
    assert cache.size >= 1, cache.size
    assert w.info("stats")["tracking_total_keys"] >= 1
    assert w.info("clients")["tracking_clients"] == 1

    # Another client's write, delete, script, transaction: never a stale value.
    w.set("csc:a", "2")
    eventually(lambda: c.get("csc:a"), b"2")
    w.delete("csc:a")
    eventually(lambda: c.get("csc:a"), None)
    w.set("csc:b", "x")
    assert c.get("csc:b") == b"x"
    w.eval("redis.call('set', KEYS[1], 'from-script')", 1, "csc:b")
    eventually(lambda: c.get("csc:b"), b"from-script")
    with w.pipeline(transaction=True) as p:
        p.set("csc:b", "from-exec").execute()
    eventually(lambda: c.get("csc:b"), b"from-exec")

    # Expiry invalidates too.
    w.set("csc:e", "soon", px=100)
    assert c.get("csc:e") == b"soon"
    time.sleep(0.3)
    eventually(lambda: c.get("csc:e"), None)

    # Its own writes invalidate its own cache.
    c.set("csc:own", "1")
    assert c.get("csc:own") == b"1"
    c.set("csc:own", "2")
    eventually(lambda: c.get("csc:own"), b"2")

    # FLUSHALL: everything is invalid.
    w.set("csc:f", "1")
    assert c.get("csc:f") == b"1"
    w.flushall()
    eventually(lambda: c.get("csc:f"), None)
    c.close()
    w.close()


def main():
    for port in [int(p) for p in sys.argv[1:]]:
        for mode in MODES:
            check(port, mode)
        print(f"port {port}: redis-py {redis.__version__} client-side caching, modes {[str(m) for m in MODES]}: ok")


if __name__ == "__main__":
    main()
