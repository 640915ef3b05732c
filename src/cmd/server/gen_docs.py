# Generates src/cmd/server/docs.resp: Redis 7.0.15's COMMAND DOCS reply for the commands in
# src/cmd/table.rs, with container subcommands limited to those flurrydb implements.
import socket, sys, re
names = re.findall(r'row!\(\s*"([a-z]+)"', open(sys.argv[1]).read())
IMPL = {"client": {"id", "info", "list", "setname", "getname", "help"},
        "config": {"get", "set", "resetstat", "rewrite", "help"},
        "command": {"count", "docs", "info", "list", "getkeys", "help"},
        "slowlog": {"get", "len", "reset", "help"},
        "latency": {"doctor", "graph", "histogram", "history", "latest", "reset", "help"}}
def enc_cmd(args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args)
s = socket.create_connection(("127.0.0.1", int(sys.argv[3]) if len(sys.argv) > 3 else 7001)); f = s.makefile("rb")
s.sendall(enc_cmd(["COMMAND", "DOCS"] + names))
def read():
    line = f.readline()[:-2]; t, r = line[:1], line[1:]
    if t == b"$":
        n = int(r); return ("$", f.read(n + 2)[:-2])
    if t == b"*": return ("*", [read() for _ in range(int(r))])
    return (t.decode(), r)
def enc(v):
    t, x = v
    if t == "$": return b"$%d\r\n%s\r\n" % (len(x), x)
    if t == "*": return b"*%d\r\n" % len(x) + b"".join(enc(e) for e in x)
    return t.encode() + x + b"\r\n"
top = read()[1]
out = []
for i in range(0, len(top), 2):
    name = top[i][1].decode(); doc = top[i + 1][1]
    for j in range(0, len(doc), 2):
        if doc[j][1] == b"subcommands":
            subs = doc[j + 1][1]; keep = []
            for k in range(0, len(subs), 2):
                if subs[k][1].decode().split("|")[1] in IMPL.get(name, set()):
                    keep.append((subs[k], subs[k + 1]))
            # Sorted by name: Redis's own order is its dict's, which differs between runs.
            doc[j + 1] = ("*", [x for pair in sorted(keep, key=lambda p: p[0][1]) for x in pair])
    out += [top[i], ("*", doc)]
assert len(out) == 2 * len(names), (len(out), len(names))
open(sys.argv[2], "wb").write(enc(("*", out)))
