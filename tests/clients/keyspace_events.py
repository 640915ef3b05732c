#!/usr/bin/env python3
"""Keyspace notifications, compared with redis-server: run the same command script on both servers
with a `PSUBSCRIBE __key*__:*` listener and compare the event streams, command by command.

usage: keyspace_events.py REF_PORT OUR_PORT   (exit 1 on any difference)
Only the standard library: a raw RESP client.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import Conn  # noqa: E402


SCRIPT = [
    # strings
    ["set", "s", "1"], ["set", "s", "2", "ex", "100"], ["set", "s", "3", "keepttl"], ["set", "s", "4", "nx"],
    ["setnx", "s2", "x"], ["setex", "s3", "100", "v"], ["psetex", "s4", "100000", "v"], ["getset", "s", "5"],
    ["getdel", "s2"], ["getex", "s3", "px", "5000"], ["getex", "s3", "persist"], ["getex", "s3"],
    ["mset", "m1", "1", "m2", "2"], ["msetnx", "m3", "1", "m4", "2"], ["msetnx", "m3", "1", "m5", "2"],
    ["append", "a", "x"], ["append", "a", "y"], ["setrange", "a", "1", "zz"], ["setrange", "a", "0", ""],
    ["incr", "n"], ["decr", "n"], ["incrby", "n", "5"], ["decrby", "n", "2"], ["incrbyfloat", "n", "1.5"],
    ["set", "e", "v", "px", "1"], ["sleep", "0.01"], ["set", "e", "v2"],
    ["set", "s", "x", "get"], ["getex", "s", "exat", "1"],
    # generic
    ["del", "m1", "m2", "nosuch"], ["unlink", "m3"], ["expire", "m4", "100"], ["pexpire", "m4", "100000"],
    ["expireat", "m4", "9999999999"], ["pexpireat", "m4", "9999999999000"], ["persist", "m4"], ["persist", "m4"],
    ["expire", "m4", "0"], ["set", "r", "1"], ["rename", "r", "r2"], ["set", "r3", "x"], ["rename", "r2", "r3"],
    ["renamenx", "r3", "r4"], ["rename", "r4", "r4"], ["copy", "r4", "r5"], ["copy", "r4", "r5", "replace"],
    ["move", "r5", "1"], ["set", "x", "1"], ["expire", "x", "-1"],
    # lists
    ["lpush", "l", "a", "b", "c"], ["rpush", "l", "d"], ["lpushx", "l", "e"], ["rpushx", "nol", "e"],
    ["lpop", "l"], ["rpop", "l", "2"], ["lset", "l", "0", "z"], ["linsert", "l", "before", "z", "y"],
    ["linsert", "l", "before", "nope", "y"], ["lrem", "l", "0", "y"], ["ltrim", "l", "0", "-1"],
    ["rpush", "l", "p", "q"], ["lmove", "l", "l2", "left", "right"], ["rpoplpush", "l", "l2"],
    ["lmpop", "2", "nol", "l", "left", "count", "5"], ["ltrim", "l2", "5", "10"],
    ["rpush", "l3", "a"], ["lpop", "l3"], ["rpush", "l4", "a", "b"], ["lrem", "l4", "0", "a"], ["lrem", "l4", "0", "b"],
    ["rpush", "l5", "a"], ["lmove", "l5", "l5", "left", "left"],
    ["rpush", "l6", "a"], ["blpop", "l6", "0"], ["rpush", "l6", "b"], ["blmove", "l6", "l7", "left", "left", "0"],
    ["blmpop", "0", "1", "l7", "right"], ["rpush", "l8", "x"], ["brpoplpush", "l8", "l9", "0"],
    # hashes
    ["hset", "h", "a", "1", "b", "2"], ["hset", "h", "a", "1"], ["hsetnx", "h", "a", "3"], ["hsetnx", "h", "c", "3"],
    ["hmset", "h", "d", "4"], ["hincrby", "h", "n", "2"], ["hincrbyfloat", "h", "f", "1.5"], ["hdel", "h", "a", "zz"],
    ["hdel", "h", "b", "c", "d", "n", "f"], ["hdel", "h", "x"],
    # sets
    ["sadd", "st", "a", "b", "c", "d"], ["sadd", "st", "a"], ["srem", "st", "a", "zz"], ["srem", "st", "zz"],
    ["spop", "st"], ["smove", "st", "st2", "zz"], ["sadd", "st3", "q"], ["smove", "st3", "st2", "q"],
    ["sadd", "sa", "1", "2"], ["sadd", "sb", "2", "3"], ["sinterstore", "si", "sa", "sb"],
    ["sunionstore", "su", "sa", "sb"], ["sdiffstore", "sd", "sa", "sb"], ["sinterstore", "si", "sa", "nosuch"],
    ["sdiffstore", "sd", "nosuch", "sa"], ["spop", "sa", "5"], ["sadd", "sp", "1", "2", "3"], ["spop", "sp", "1"],
    ["spop", "sp", "0"], ["spop", "sp", "10"],
    # sorted sets
    ["zadd", "z", "1", "a", "2", "b", "3", "c"], ["zadd", "z", "1", "a"], ["zadd", "z", "5", "a"],
    ["zadd", "z", "incr", "1", "a"], ["zincrby", "z", "1", "b"], ["zrem", "z", "a", "nope"], ["zrem", "z", "nope"],
    ["zadd", "z", "4", "d", "5", "e", "6", "f", "7", "g"],
    ["zremrangebyrank", "z", "0", "0"], ["zremrangebyscore", "z", "4", "4"], ["zremrangebylex", "z", "[x", "[y"],
    ["zpopmin", "z"], ["zpopmax", "z", "2"], ["zmpop", "1", "z", "min"], ["zadd", "za", "1", "a", "2", "b"],
    ["zadd", "zb", "1", "b"], ["zunionstore", "zu", "2", "za", "zb"], ["zinterstore", "zi", "2", "za", "zb"],
    ["zdiffstore", "zd", "2", "za", "zb"], ["zinterstore", "zi", "2", "za", "nosuch"], ["zrangestore", "zr", "za", "0", "0"],
    ["zrangestore", "zr", "za", "5", "6"], ["bzpopmin", "za", "0"], ["bzpopmax", "za", "0"], ["zadd", "zc", "1", "x"],
    ["bzmpop", "0", "1", "zc", "max"], ["zadd", "zz", "1", "a"], ["zremrangebyscore", "zz", "-inf", "+inf"],
    # sort
    ["rpush", "so", "3", "1", "2"], ["sort", "so", "store", "sos"], ["sort", "nosuch", "store", "sos"],
    # bitmaps
    ["setbit", "b", "3", "1"], ["setbit", "b", "3", "1"], ["setbit", "b", "3", "0"], ["setbit", "b", "100", "0"],
    ["bitfield", "bf", "set", "u8", "0", "255"], ["bitfield", "bf", "get", "u8", "0"],
    ["bitfield", "bf", "overflow", "fail", "incrby", "u8", "0", "10"], ["bitfield", "bf", "incrby", "u8", "0", "1"],
    ["bitfield_ro", "bf", "get", "u8", "0"],
    ["bitop", "and", "bo", "b", "bf"], ["bitop", "or", "bo", "nosuch", "nosuch2"], ["bitop", "or", "bo", "nosuch"],
    ["bitop", "not", "bo2", "bf"],
    # hyperloglog
    ["pfadd", "hl", "a", "b"], ["pfadd", "hl", "a"], ["pfadd", "hl2"], ["pfadd", "hl2"], ["pfcount", "hl"],
    ["pfcount", "hl", "hl2"], ["pfadd", "hl3", "c"], ["pfmerge", "hl4", "hl", "hl3"], ["pfmerge", "hl4"],
    ["pfmerge", "hl5"], ["pfcount", "nokeyhll"],
    # geo
    ["geoadd", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"],
    ["geoadd", "g", "nx", "13.361389", "38.115556", "Palermo"],
    ["geoadd", "g", "xx", "ch", "13.4", "38.1", "Palermo"],
    ["geosearchstore", "gs", "g", "fromlonlat", "15", "37", "byradius", "200", "km", "asc"],
    ["geosearchstore", "gs", "g", "fromlonlat", "0", "0", "byradius", "1", "km"],
    ["geosearchstore", "gs", "g", "fromlonlat", "0", "0", "byradius", "1", "km"],
    ["georadius", "g", "15", "37", "200", "km", "store", "gr"], ["georadius", "g", "15", "37", "200", "km", "storedist", "gr2"],
    ["georadiusbymember", "g", "Palermo", "300", "km", "store", "gr3"],
    ["georadius", "g", "0", "0", "1", "km", "store", "gr"], ["georadius", "g", "0", "0", "1", "km", "store", "gr"],
    ["geosearchstore", "gs2", "g", "frommember", "Palermo", "bybox", "400", "400", "km", "storedist"],
    # streams
    ["xadd", "x", "1-1", "f", "v"], ["xadd", "x", "2-1", "f", "v"], ["xadd", "x", "3-1", "f", "v"],
    ["xadd", "x", "maxlen", "2", "4-1", "f", "v"], ["xadd", "x", "maxlen", "~", "2", "5-1", "f", "v"],
    ["xadd", "x", "minid", "4", "6-1", "f", "v"], ["xadd", "nostream", "nomkstream", "1-1", "f", "v"],
    ["xadd", "x", "maxlen", "10", "7-1", "f", "v"],
    ["xtrim", "x", "maxlen", "3"], ["xtrim", "x", "maxlen", "3"], ["xtrim", "x", "maxlen", "~", "1"],
    ["xtrim", "x", "minid", "6"], ["xdel", "x", "6-1", "99-1"], ["xdel", "x", "99-1"],
    ["xsetid", "x", "100-1"], ["xsetid", "x", "100-1", "entriesadded", "50", "maxdeletedid", "9-0"],
    ["xgroup", "create", "x", "g1", "0"], ["xgroup", "create", "x", "g1", "0"],
    ["xgroup", "create", "xs", "g1", "$", "mkstream"], ["xgroup", "create", "nostream", "g1", "$"],
    ["xgroup", "setid", "x", "g1", "0"], ["xgroup", "setid", "x", "g1", "$", "entriesread", "3"],
    ["xgroup", "setid", "x", "g1", "0"],
    ["xgroup", "createconsumer", "x", "g1", "c1"], ["xgroup", "createconsumer", "x", "g1", "c1"],
    ["xreadgroup", "group", "g1", "c2", "count", "1", "streams", "x", ">"],
    ["xreadgroup", "group", "g1", "c2", "count", "1", "streams", "x", ">"],
    ["xreadgroup", "group", "g1", "c9", "streams", "xs", ">"],
    ["xclaim", "x", "g1", "c3", "0", "7-1", "justid"], ["xclaim", "x", "g1", "c4", "0", "99-9", "justid"],
    ["xautoclaim", "x", "g1", "c5", "0", "0-0", "justid"], ["xautoclaim", "x", "g1", "c6", "0", "0-0", "justid"],
    ["xack", "x", "g1", "7-1"], ["xautoclaim", "x", "g1", "c7", "0", "0-0", "justid"],
    ["xgroup", "delconsumer", "x", "g1", "c1"], ["xgroup", "delconsumer", "x", "g1", "c1"],
    ["xgroup", "destroy", "x", "g1"], ["xgroup", "destroy", "x", "g1"],
    ["xadd", "xb", "1-1", "f", "v"], ["xgroup", "create", "xb", "gb", "$"],
    ["xreadgroup", "group", "gb", "cb", "block", "50", "streams", "xb", ">"], ["xreadgroup", "group", "gb", "cb2", "streams", "xb", ">"],
    # a blocked reader served by XADD (on a second connection: "async" sends, "await" reads its reply)
    ["async", "xreadgroup", "group", "gb", "cb3", "block", "0", "streams", "xb", ">"], ["xadd", "xb", "2-1", "f", "v"],
    ["await"], ["async", "blpop", "bl", "0"], ["rpush", "bl", "a"], ["await"], ["async", "blpop", "bl", "0"],
    ["rpush", "bl", "a", "b"], ["await"], ["async", "bzpopmin", "bz", "0"], ["zadd", "bz", "1", "a"], ["await"],
    ["async", "bzpopmin", "bz", "0"], ["zadd", "bz", "1", "a", "2", "b"], ["await"],
    ["del", "xb"],
    # scripting: redis.call writes announce as the commands do
    ["eval", "redis.call('set', KEYS[1], 'v'); redis.call('rpush', KEYS[2], 'a'); return redis.call('xadd', KEYS[3], '1-1', 'f', 'v')",
     "3", "sc1", "sc2", "sc3"],
    ["eval", "redis.call('setbit', KEYS[1], 1, 1); redis.call('pfadd', KEYS[2], 'a'); return redis.call('del', KEYS[1], KEYS[2])",
     "2", "sc4", "sc5"],
    # sort store, copy/rename/move of the new types
    ["sort", "so2", "store", "sos2"],
    ["copy", "x", "xc"], ["copy", "hl", "hlc"], ["copy", "gs", "gsc"], ["rename", "xc", "xr"], ["renamenx", "hlc", "hlr"],
    ["move", "xr", "1"], ["move", "hlr", "1"], ["copy", "x", "xr", "db", "1"], ["copy", "x", "xr", "db", "1", "replace"],
    # reads that miss (class m)
    ["get", "nokey"], ["exists", "nokey", "s"], ["type", "nokey"], ["ttl", "nokey"], ["pttl", "nokey"],
    ["strlen", "nokey"], ["getrange", "nokey", "0", "1"], ["mget", "nokey", "s"], ["hget", "nokey", "f"],
    ["hgetall", "nokey"], ["lrange", "nokey", "0", "-1"], ["llen", "nokey"], ["lindex", "nokey", "0"],
    ["smembers", "nokey"], ["sismember", "nokey", "a"], ["scard", "nokey"], ["sinter", "nokey", "sa"],
    ["zscore", "nokey", "a"], ["zrange", "nokey", "0", "-1"], ["zcard", "nokey"], ["sort", "nokey"],
    ["lcs", "nokey", "s"], ["hexists", "nokey", "f"],
    # expiry: active and lazy
    ["set", "ae", "1", "px", "50"], ["sleep", "0.3"], ["set", "le", "1", "px", "20"], ["sleep", "0.05"],
    ["lpush", "le", "x"],
    ["flushdb"],
]


def run(port, flags):
    c = Conn(port)
    sub = Conn(port)
    bg = Conn(port)
    c.call("flushall")
    c.call("config", "set", "notify-keyspace-events", flags)
    sub.call("psubscribe", "__key*__:*")
    log = []
    for step in SCRIPT:
        if step[0] == "sleep":
            time.sleep(float(step[1]))
            reply = None
        elif step[0] == "async":
            bg.send(*step[1:])
            reply = None
        elif step[0] == "await":
            reply = bg.read()
        else:
            reply = c.call(*step)
        events = [(m[2].decode(), m[3].decode()) for m in sub.drain(0.03)]
        log.append((step, reply, events))
    c.call("config", "set", "notify-keyspace-events", "")
    return log


# Replies that are random by design (the events must still match).
RANDOM_REPLY = {"spop", "srandmember"}


def merge_sleeps(log):
    """A key may expire actively just after the step that set it, during a sleep, or lazily at the
    next command (active expiry's timing is not Redis's to the millisecond): a sleep and the steps
    on both sides of it are compared as one."""
    out, glue = [], False
    for step, reply, events in log:
        if step[0] == "sleep":
            if out:
                out[-1] = (out[-1][0], out[-1][1], out[-1][2] + events)
            glue = True
            continue
        if glue and out:
            prev = out[-1]
            out[-1] = (prev[0] + ["+"] + step, (prev[1], reply), prev[2] + events)
        else:
            out.append((step, reply, events))
        glue = False
    return out


def main():
    bad = 0
    steps = 0
    for flags in ["KEA", "KEAn", "Kgx", "E$lshz", "Km"]:
        ref, ours = run(int(sys.argv[1]), flags), run(int(sys.argv[2]), flags)
        for (step, r1, e1), (_, r2, e2) in zip(merge_sleeps(ref), merge_sleeps(ours)):
            steps += 1
            if e1 != e2 or (r1 != r2 and step[0] not in RANDOM_REPLY):
                bad += 1
                print("DIFF", flags, " ".join(step))
                print("  redis:", r1, e1)
                print("  ours: ", r2, e2)
    print(f"{steps} steps, {bad} differences")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
