#!/usr/bin/env python3
"""KEYS with random glob patterns (classes, ranges, escapes, stars, high bytes) against real Redis and
flurrydb over the same random keys: the match sets must be equal. Usage: glob_vs_redis.py REF_PORT OUR_PORT [SEED]
Prints "N passed, M failed" and exits non-zero on a mismatch."""
import random, socket, sys
def conn(port):
    s=socket.create_connection(("127.0.0.1",port)); return s, s.makefile("rb")
def cmd(c,*args):
    s,f=c
    s.sendall(b"*%d\r\n"%len(args)+b"".join(b"$%d\r\n%s\r\n"%(len(a),a) for a in args))
    return read(f)
def read(f):
    l=f.readline()[:-2]; t,r=l[:1],l[1:]
    if t==b"$":
        n=int(r); return None if n<0 else f.read(n+2)[:-2]
    if t==b"*": return [read(f) for _ in range(int(r))]
    return r
rng=random.Random(int(sys.argv[3]) if len(sys.argv)>3 else 1)
R,O=conn(int(sys.argv[1])),conn(int(sys.argv[2]))
pb=b"ab*?[]^-\\cA\x80\xff"; sb=b"abcA-]^\\*?\x80\xff"
mism=0; total=0
for rnd in range(300):
    for c in (R,O): cmd(c,b"FLUSHALL")
    keys=set(bytes(rng.choice(sb) for _ in range(rng.randint(1,7))) for _ in range(60))
    for k in keys:
        for c in (R,O): cmd(c,b"SET",k,b"1")
    for _ in range(40):
        p=bytes(rng.choice(pb) for _ in range(rng.randint(0,8)))
        a=sorted(cmd(R,b"KEYS",p)); b=sorted(cmd(O,b"KEYS",p)); total+=1
        if a!=b:
            mism+=1
            if mism<5: print("MISMATCH",p,a,b)

print(total-mism,"passed,",mism,"failed")
sys.exit(1 if mism else 0)
