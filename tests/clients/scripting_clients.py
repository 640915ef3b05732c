#!/usr/bin/env python3
"""Issue 15's redis-py acceptance for scripting: `Lock` (acquire, a second client fails, extend,
release, expiry) and `register_script` after SCRIPT FLUSH (NOSCRIPT, then the reload).
Usage: scripting_clients.py PORT   (exits non-zero on the first failure; needs `pip install redis`)."""
import sys
import time

import redis
from redis.exceptions import LockError, LockNotOwnedError, NoScriptError

port = int(sys.argv[1])


def client():
    return redis.Redis(host="127.0.0.1", port=port)


a, b = client(), client()
a.flushall()

# Lock: one owner at a time; its release and extend are EVALSHA scripts that check the token.
la = a.lock("res", timeout=5)
lb = b.lock("res", timeout=5)
assert la.acquire(blocking=False), "first client acquires"
assert not lb.acquire(blocking=False), "second client must fail while the lock is held"
assert not lb.acquire(blocking=True, blocking_timeout=0.2), "second client times out"
t0 = a.pttl("res")
assert 0 < t0 <= 5000, t0
assert la.extend(10), "owner extends"
t1 = a.pttl("res")
assert 10000 < t1 <= 15000, t1
assert la.reacquire(), "owner resets the expiry"
assert 0 < a.pttl("res") <= 5000
try:
    lb.extend(1)
    raise AssertionError("a non-owner must not extend")
except LockError:
    pass
la.release()
assert a.get("res") is None
assert lb.acquire(blocking=False), "second client acquires after the release"
lb.release()

# Expiry: a lock whose holder stalls past its timeout goes to the next client; the stale
# holder's release then fails (the script sees another token).
short = a.lock("res2", timeout=0.3)
assert short.acquire(blocking=False)
time.sleep(0.6)
other = b.lock("res2", timeout=5)
assert other.acquire(blocking=False), "lock expired"
try:
    short.release()
    raise AssertionError("a stale holder must not release")
except LockNotOwnedError:
    pass
assert b.get("res2") == other.local.token
other.release()

# register_script: EVALSHA, then after SCRIPT FLUSH the plain EVALSHA gets NOSCRIPT and the
# Script object reloads it (redis-py catches NoScriptError and sends SCRIPT LOAD).
incrby = a.register_script(
    "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[2]) return v"
)
assert incrby(keys=["counter"], args=[5, 60000]) == 5
assert incrby(keys=["counter"], args=[2, 60000]) == 7
assert a.script_exists(incrby.sha) == [True]
assert a.script_flush() is True
assert a.script_exists(incrby.sha) == [False]
try:
    a.evalsha(incrby.sha, 1, "counter", 1, 60000)
    raise AssertionError("EVALSHA after SCRIPT FLUSH must fail")
except NoScriptError as e:
    assert "No matching script" in str(e), str(e)
assert incrby(keys=["counter"], args=[1, 60000]) == 8, "the Script reloads itself"
assert a.script_exists(incrby.sha) == [True]
assert 0 < a.pttl("counter") <= 60000

# The same through a pipeline (redis-py loads missing scripts before EXEC).
a.script_flush()
with a.pipeline() as p:
    incrby(keys=["counter"], args=[1, 60000], client=p)
    p.get("counter")
    assert p.execute() == [9, b"9"]

print("scripting_clients: Lock and register_script OK")
