#!/usr/bin/env python3
"""Issue 15's client acceptance with redis-py: its Lock (acquire, a second client fails, extend, release,
expiry; all Lua scripts run by EVALSHA) and register_script after SCRIPT FLUSH (NOSCRIPT, then redis-py
reloads it). Usage: redis_py_scripts.py PORT   (exits non-zero on the first failure)."""
import sys
import time

import redis

port = int(sys.argv[1])
r = redis.Redis(host="127.0.0.1", port=port)
other = redis.Redis(host="127.0.0.1", port=port)
r.flushall()
r.script_flush()

lock = r.lock("resource", timeout=5)
assert lock.acquire(blocking=False)
second = other.lock("resource", timeout=5)
assert not second.acquire(blocking=False), "a second client must not get the lock"
assert lock.extend(10)
ttl = r.pttl("resource")
assert 10000 < ttl <= 15000, ttl
assert lock.reacquire()
assert 4000 < r.pttl("resource") <= 5000
lock.release()
assert r.get("resource") is None
try:
    lock.release()
    raise AssertionError("releasing a lock not held must fail")
except redis.exceptions.LockError:
    pass

# Releasing a lock another client took over (token mismatch: the release script's GET/compare/DEL).
mine = r.lock("taken", timeout=0.2)
assert mine.acquire(blocking=False)
time.sleep(0.4)
theirs = other.lock("taken", timeout=5)
assert theirs.acquire(blocking=False)
try:
    mine.release()
    raise AssertionError("releasing a lock now owned by another client must fail")
except redis.exceptions.LockNotOwnedError:
    pass
assert other.get("taken") == theirs.local.token

# Expiry: a lock with a short timeout is free again once it expired.
short = r.lock("short", timeout=0.2)
assert short.acquire(blocking=False)
time.sleep(0.4)
assert other.lock("short", timeout=1).acquire(blocking=False)

# register_script: EVALSHA, NOSCRIPT after SCRIPT FLUSH, then redis-py loads it again.
incr_by = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
assert incr_by(keys=["n"], args=[5]) == 5
r.script_flush()
assert not r.script_exists(incr_by.sha)[0]
assert incr_by(keys=["n"], args=[2]) == 7
assert r.script_exists(incr_by.sha)[0]

# Functions through redis-py.
r.function_load("#!lua name=pylib\nredis.register_function('twice', function(keys, args) return args[1] * 2 end)",
                replace=True)
assert r.fcall("twice", 0, 21) == 42
r.function_delete("pylib")
print("redis-py scripts: ok")
