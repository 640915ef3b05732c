#!/usr/bin/env python3
"""Issue 14's client acceptance with redis-py: the hash, set and sorted-set flows applications use (HSET with a
mapping, HGETALL, HINCRBY, SADD/SMEMBERS/SINTERSTORE, ZADD with a mapping, ZRANGEBYSCORE WITHSCORES, BZPOPMIN fed by
another client, pipelines and transactions of them, RESP2 and RESP3), run against redis-server and against
flurrydb: every result must be the same. Usage: redis_py_collections.py REF_PORT OUR_PORT
(exits non-zero on the first difference)."""
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
    # Hashes: a mapping, reads, counters, deletes.
    out.append(r.hset("user:1", mapping={"name": "ada", "visits": 1, "lang": "en"}))
    out.append(sorted(r.hgetall("user:1").items()))
    out.append(r.hincrby("user:1", "visits", 41))
    out.append(r.hincrbyfloat("user:1", "score", 2.5))
    out.append(r.hmget("user:1", ["name", "missing", "visits"]))
    out.append((r.hexists("user:1", "lang"), r.hlen("user:1"), r.hstrlen("user:1", "name")))
    out.append((r.hdel("user:1", "lang", "nope"), sorted(r.hkeys("user:1"))))
    out.append(r.hsetnx("user:1", "name", "bob"))
    # Sets: membership, algebra, a stored intersection.
    out.append(r.sadd("tags:a", "x", "y", "z", 1, 2))
    out.append(r.sadd("tags:b", "y", "z", "w"))
    out.append(sorted(r.smembers("tags:a")))
    out.append((r.sismember("tags:a", "x"), r.smismember("tags:a", ["x", "q"]), r.scard("tags:b")))
    out.append((sorted(r.sinter("tags:a", "tags:b")), sorted(r.sunion("tags:a", "tags:b"))))
    out.append((sorted(r.sdiff("tags:a", "tags:b")), r.sinterstore("tags:ab", ["tags:a", "tags:b"])))
    out.append((r.smove("tags:a", "tags:b", "x"), r.srem("tags:b", "w", "nope"), sorted(r.smembers("tags:b"))))
    # A pipeline and a transaction mixing the types.
    with r.pipeline(transaction=False) as p:
        p.hset("h2", "f", "v").sadd("s2", "m").hget("h2", "f").scard("s2").type("h2").type("s2")
        out.append(p.execute())
    with r.pipeline() as p:
        p.hincrby("h2", "n", 1).srem("s2", "m").exists("s2").hgetall("h2")
        res = p.execute()
        out.append(res[:3] + [sorted(res[3].items())])
    try:
        r.hset("tags:b", "f", "v")
        out.append("no error")
    except redis.ResponseError as e:
        out.append(str(e))
    out.extend(zset_flows(r, client))
    return out


def zset_flows(r, client):
    out = []
    out.append(r.zadd("board", {"ada": 10, "bob": 7.5, "cy": 12}))
    out.append(r.zrangebyscore("board", 0, "+inf", withscores=True))
    out.append(r.zrange("board", 0, -1, desc=True, withscores=True))
    out.append((r.zincrby("board", 2.25, "bob"), r.zscore("board", "bob"), r.zrank("board", "cy")))
    out.append(r.zadd("board", {"ada": 11, "dee": 1}, nx=True))
    out.append((r.zcount("board", "(1", 11), r.zpopmin("board"), r.zpopmax("board", 2)))
    with r.pipeline() as p:
        p.zadd("z2", {"a": 1, "b": 2}).zunionstore("z3", ["z2", "board"]).zrange("z3", 0, -1, withscores=True)
        out.append(p.execute())
    # BZPOPMIN served by a push from another client.
    got = []

    def waiter():
        got.append(client().bzpopmin(["jobs:z"], timeout=5))

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.2)
    client().zadd("jobs:z", {"job": 3})
    t.join(10)
    out.append(got)
    return out


def main():
    compare_flows(flows, "redis-py %s: hash/set/zset flows, RESP2 and RESP3, same results as redis-server: ok"
                  % redis.__version__)


main()
