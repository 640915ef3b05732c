#!/usr/bin/env python3
"""Issue 17's stream acceptance with redis-py: the consumer-group flow workers use (xgroup_create with mkstream,
xreadgroup blocking fed by another client, xack, xpending summary and range, xautoclaim, xclaim, xinfo, trimming),
run against redis-server and against flurrydb: every result must be the same (idle times left out).
Usage: streams_py.py REF_PORT OUR_PORT (exits non-zero on the first difference)."""
import os
import sys
import threading
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import compare_flows  # noqa: E402


def flows(port, protocol):
    def client():
        return redis.Redis(host="127.0.0.1", port=port, protocol=protocol)

    r = client()
    r.flushall()
    out = []
    out.append(r.xgroup_create("jobs", "workers", id="0", mkstream=True))
    for i in range(1, 6):
        out.append(r.xadd("jobs", {"task": "t%d" % i, "n": i}, id="%d-0" % i))
    out.append(r.xlen("jobs"))
    out.append(r.xrange("jobs", "-", "+", count=2))
    out.append(r.xrevrange("jobs", "+", "(3-0"))
    # Two workers read their share; one acknowledges.
    out.append(r.xreadgroup("workers", "w1", {"jobs": ">"}, count=2))
    out.append(r.xreadgroup("workers", "w2", {"jobs": ">"}, count=2))
    out.append(r.xack("jobs", "workers", "1-0", "3-0"))
    out.append(r.xpending("jobs", "workers"))
    out.append([{k: v for k, v in p.items() if k != "time_since_delivered"}
                for p in r.xpending_range("jobs", "workers", "-", "+", 10)])
    # A crashed worker's entries are taken over.
    out.append(r.xautoclaim("jobs", "workers", "w3", min_idle_time=0, start_id="0-0", count=1))
    out.append(r.xclaim("jobs", "workers", "w3", min_idle_time=0, message_ids=["4-0"], justid=True))
    # A blocked reader fed by another client.
    got = []

    def waiter():
        got.append(client().xreadgroup("workers", "w4", {"jobs": ">"}, count=10, block=5000))

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.3)
    client().xadd("jobs", {"task": "late"}, id="9-0")
    t.join(10)
    out.append(got)
    got.clear()

    def plain_reader():
        got.append(client().xread({"jobs": "$"}, block=5000))

    t = threading.Thread(target=plain_reader)
    t.start()
    time.sleep(0.3)
    client().xadd("jobs", {"task": "later"}, id="10-0", maxlen=3, approximate=False)
    t.join(10)
    out.append(got)
    out.append(r.xinfo_groups("jobs"))
    out.append([{k: v for k, v in c.items() if k != "idle"} for c in r.xinfo_consumers("jobs", "workers")])
    info = r.xinfo_stream("jobs")
    out.append({k: v for k, v in info.items() if not k.startswith("radix")})
    out.append((r.xdel("jobs", "9-0"), r.xtrim("jobs", minid="10-0"), r.xlen("jobs")))
    out.append(r.xgroup_delconsumer("jobs", "workers", "w3"))
    out.append(r.xgroup_destroy("jobs", "workers"))
    try:
        r.xreadgroup("workers", "w1", {"jobs": ">"})
        out.append("no error")
    except redis.ResponseError as e:
        out.append(str(e))
    return out


def main():
    compare_flows(flows, "redis-py %s: stream consumer-group flow, RESP2 and RESP3, same results as redis-server: ok"
                  % redis.__version__)


main()
