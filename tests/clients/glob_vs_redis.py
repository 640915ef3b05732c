#!/usr/bin/env python3
"""KEYS with random glob patterns (classes, ranges, escapes, stars, high bytes) against real Redis and
flurrydb over the same random keys: the match sets must be equal. Usage: glob_vs_redis.py REF_PORT OUR_PORT [SEED]
Prints "N passed, M failed" and exits non-zero on a mismatch."""
import os, random, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import Conn  # noqa: E402
rng=random.Random(int(sys.argv[3]) if len(sys.argv)>3 else 1)
R,O=Conn(int(sys.argv[1])),Conn(int(sys.argv[2]))
pb=b"ab*?[]^-\\cA\x80\xff"; sb=b"abcA-]^\\*?\x80\xff"
mism=0; total=0
for rnd in range(300):
    for c in (R,O): c.call(b"FLUSHALL")
    keys=set(bytes(rng.choice(sb) for _ in range(rng.randint(1,7))) for _ in range(60))
    for k in keys:
        for c in (R,O): c.call(b"SET",k,b"1")
    for _ in range(40):
        p=bytes(rng.choice(pb) for _ in range(rng.randint(0,8)))
        a=sorted(R.call(b"KEYS",p)); b=sorted(O.call(b"KEYS",p)); total+=1
        if a!=b:
            mism+=1
            if mism<5: print("MISMATCH",p,a,b)

print(total-mism,"passed,",mism,"failed")
sys.exit(1 if mism else 0)
