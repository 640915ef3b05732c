#!/usr/bin/env python3
"""Issue 8's client acceptance with redis-py: a transactional pipeline, a WATCH retry loop, a BLPOP worker fed by
another client, and protocol=3. Usage: redis_py.py PORT   (exits non-zero on the first failure)."""
import sys
import threading

import redis

port = int(sys.argv[1])


def client(**kw):
    return redis.Redis(host="127.0.0.1", port=port, **kw)


r = client()
r.flushall()

# A transactional pipeline (redis-py wraps it in MULTI/EXEC).
with r.pipeline() as p:
    p.set("a", 1).incr("a").rpush("l", "x", "y").lrange("l", 0, -1)
    assert p.execute() == [True, 2, 2, [b"x", b"y"]]

# A WATCH retry loop from several threads: no increment is lost.
def add(n):
    c = client()
    for _ in range(n):
        while True:
            with c.pipeline() as p:
                try:
                    p.watch("counter")
                    v = int(p.get("counter") or 0)
                    p.multi()
                    p.set("counter", v + 1)
                    p.execute()
                    break
                except redis.WatchError:
                    continue

ts = [threading.Thread(target=add, args=(50,)) for _ in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
assert int(r.get("counter")) == 200, r.get("counter")

# A BLPOP worker fed by another client.
got = []
def worker():
    c = client()
    while True:
        item = c.blpop(["jobs"], timeout=5)
        assert item is not None, "worker timed out"
        if item[1] == b"stop":
            return
        got.append(item[1])

w = threading.Thread(target=worker)
w.start()
producer = client()
for i in range(100):
    producer.rpush("jobs", f"job{i}")
producer.rpush("jobs", "stop")
w.join(10)
assert got == [f"job{i}".encode() for i in range(100)], got[:5]
assert r.blpop(["empty"], timeout=0.1) is None

# RESP3.
r3 = client(protocol=3)
assert r3.execute_command("HELLO", 3)[b"proto"] == 3
r3.set("k3", "v")
assert r3.get("k3") == b"v" and r3.get("missing") is None
assert r3.config_get("maxmemory") == {"maxmemory": "0"} or r3.config_get("maxmemory") == {b"maxmemory": b"0"}
with r3.pipeline() as p:
    p.incr("n3").incr("n3")
    assert p.execute() == [1, 2]
print("redis-py %s: pipeline, WATCH loop, BLPOP worker, RESP3: ok" % redis.__version__)
