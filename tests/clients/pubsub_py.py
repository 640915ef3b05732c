#!/usr/bin/env python3
"""Issue 16's client acceptance with redis-py's PubSub: subscribe and psubscribe with handlers,
get_message, listen, RESP3 (protocol=3), run_in_thread, and keyspace notifications. Every flow
asserts what it receives, so the same script passes against redis-server and flurrydb.
Usage: pubsub_py.py PORT [PORT ...]   (exits non-zero on the first failure)."""
import sys
import threading
import time

import redis


def wait_for(p, n=1, timeout=5.0):
    """The next `n` non-None messages from get_message."""
    out, deadline = [], time.time() + timeout
    while len(out) < n and time.time() < deadline:
        m = p.get_message(timeout=0.1)
        if m is not None:
            out.append(m)
    assert len(out) == n, out
    return out


def check(port):
    r = redis.Redis(host="127.0.0.1", port=port)
    r.flushall()
    r.config_set("notify-keyspace-events", "")

    # subscribe + get_message: the confirmation, then a message, then unsubscribe.
    p = r.pubsub()
    p.subscribe("news")
    assert wait_for(p) == [{"type": "subscribe", "pattern": None, "channel": b"news", "data": 1}]
    assert r.publish("news", "hello") == 1
    assert wait_for(p) == [{"type": "message", "pattern": None, "channel": b"news", "data": b"hello"}]
    assert r.pubsub_numsub("news") == [(b"news", 1)]
    assert r.pubsub_channels() == [b"news"]
    p.unsubscribe("news")
    assert wait_for(p)[0]["type"] == "unsubscribe"
    assert r.publish("news", "nobody") == 0
    p.close()

    # psubscribe with a handler: messages go to the handler, get_message returns None for them.
    got = []
    p = r.pubsub(ignore_subscribe_messages=True)
    p.psubscribe(**{"orders.*": got.append})
    # redis-py sends PSUBSCRIBE without waiting: another connection may ask before it is done.
    deadline = time.time() + 5
    while r.pubsub_numpat() != 1 and time.time() < deadline:
        time.sleep(0.01)
    assert r.pubsub_numpat() == 1
    assert r.publish("orders.eu", "o1") == 1
    assert r.publish("orders.us", "o2") == 1
    assert r.publish("other", "x") == 0
    deadline = time.time() + 5
    while len(got) < 2 and time.time() < deadline:
        p.get_message(timeout=0.1)
    assert [(m["type"], m["pattern"], m["channel"], m["data"]) for m in got] == [
        ("pmessage", b"orders.*", b"orders.eu", b"o1"),
        ("pmessage", b"orders.*", b"orders.us", b"o2"),
    ], got
    p.close()

    # listen(): a generator over everything, ended by our own unsubscribe.
    p = r.pubsub()
    p.subscribe("jobs")

    def produce():
        deadline = time.time() + 5
        while r.pubsub_numsub("jobs") != [(b"jobs", 1)] and time.time() < deadline:
            time.sleep(0.01)
        for i in range(3):
            r.publish("jobs", f"j{i}")
        r.publish("jobs", "stop")

    threading.Thread(target=produce).start()
    seen = []
    for m in p.listen():
        if m["type"] == "message":
            if m["data"] == b"stop":
                break
            seen.append(m["data"])
    assert seen == [b"j0", b"j1", b"j2"], seen
    p.close()

    # run_in_thread: handlers called from redis-py's worker thread.
    done = threading.Event()
    received = []

    def handler(m):
        received.append(m["data"])
        if len(received) == 5:
            done.set()

    p = r.pubsub()
    p.subscribe(**{"events": handler})
    worker = p.run_in_thread(sleep_time=0.01, daemon=True)
    deadline = time.time() + 5
    while r.pubsub_numsub("events") != [(b"events", 1)] and time.time() < deadline:
        time.sleep(0.01)
    for i in range(5):
        r.publish("events", f"e{i}")
    assert done.wait(5), received
    assert received == [b"e0", b"e1", b"e2", b"e3", b"e4"], received
    worker.stop()
    worker.join(5)
    p.close()

    # RESP3: pushes on a connection that also runs ordinary commands.
    r3 = redis.Redis(host="127.0.0.1", port=port, protocol=3)
    p = r3.pubsub()
    p.subscribe("c3")
    assert wait_for(p)[0]["type"] == "subscribe"
    assert r3.publish("c3", "v3") == 1
    assert wait_for(p) == [{"type": "message", "pattern": None, "channel": b"c3", "data": b"v3"}]
    p.psubscribe("c*")
    assert wait_for(p)[0]["type"] == "psubscribe"
    r3.publish("c3", "both")
    msgs = wait_for(p, 2)
    assert sorted(m["type"] for m in msgs) == ["message", "pmessage"], msgs
    p.close()

    # Keyspace notifications: a key with a 100 ms TTL announces its expiry.
    r.config_set("notify-keyspace-events", "KEA")
    assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": "AKE"}
    p = r.pubsub(ignore_subscribe_messages=True)
    p.psubscribe("__keyevent@0__:*")
    time.sleep(0.05)
    r.set("session", "x", px=100)
    events = [m["channel"] for m in wait_for(p, 2)]
    assert events == [b"__keyevent@0__:set", b"__keyevent@0__:expire"], events
    expired = wait_for(p, 1, timeout=3)[0]
    assert (expired["channel"], expired["data"]) == (b"__keyevent@0__:expired", b"session"), expired
    p.close()
    r.config_set("notify-keyspace-events", "")
    print(f"port {port}: redis-py PubSub flows passed")


for port in sys.argv[1:]:
    check(int(port))
