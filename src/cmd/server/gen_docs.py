# Generates, from a running Redis 7.0.15, the two captured replies the server embeds for the commands
# of src/cmd/table.rs (container subcommands limited to those flurrydb implements, sorted by name:
# Redis's own order is its dict's, which differs between runs):
#   docs.resp: COMMAND DOCS (summary, since, group, complexity, history, arguments)
#   info.resp: COMMAND INFO (tips, key specs, subcommands; the table stays the source of arity,
#              flags and key positions)
# Usage: python3 gen_docs.py src/cmd/table.rs src/cmd/server [PORT (default 7001)]
import os, socket, sys, re
names = re.findall(r'row!\(\s*"([a-z_]+)"', open(sys.argv[1]).read())
OUT = sys.argv[2]
PORT = int(sys.argv[3]) if len(sys.argv) > 3 else 7001
IMPL = {"pubsub": {"channels", "numpat", "numsub", "shardchannels", "shardnumsub", "help"},
        "client": {"id", "info", "list", "setname", "getname", "help", "kill", "reply", "no-evict", "tracking", "caching", "getredir", "trackinginfo"},
        "config": {"get", "set", "resetstat", "rewrite", "help"},
        "command": {"count", "docs", "info", "list", "getkeys", "getkeysandflags", "help"},
        "slowlog": {"get", "len", "reset", "help"},
        "object": {"encoding", "refcount", "freq", "idletime", "help"},
        "memory": {"doctor", "malloc-stats", "purge", "stats", "usage", "help"},
        "latency": {"doctor", "graph", "histogram", "history", "latest", "reset", "help"},
        "script": {"load", "exists", "flush", "kill", "help"},
        "function": {"load", "delete", "flush", "list", "dump", "restore", "stats", "kill", "help"},
        "xgroup": {"create", "setid", "destroy", "createconsumer", "delconsumer", "help"},
        "xinfo": {"consumers", "groups", "stream", "help"}}
IMPL["client"] |= {"pause", "unpause", "unblock"}
def enc_cmd(args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args)
s = socket.create_connection(("127.0.0.1", PORT)); f = s.makefile("rb")
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
def implemented(container, full_name):
    return full_name.split("|")[1] in IMPL.get(container, set())

s.sendall(enc_cmd(["COMMAND", "DOCS"] + names))
top = read()[1]
out = []
for i in range(0, len(top), 2):
    name = top[i][1].decode(); doc = top[i + 1][1]
    for j in range(0, len(doc), 2):
        if doc[j][1] == b"subcommands":
            subs = doc[j + 1][1]
            keep = [(subs[k], subs[k + 1]) for k in range(0, len(subs), 2) if implemented(name, subs[k][1].decode())]
            doc[j + 1] = ("*", [x for pair in sorted(keep, key=lambda p: p[0][1]) for x in pair])
    out += [top[i], ("*", doc)]
assert len(out) == 2 * len(names), (len(out), len(names))
open(os.path.join(OUT, "docs.resp"), "wb").write(enc(("*", out)))

s.sendall(enc_cmd(["COMMAND", "INFO"] + names))
top = read()[1]
for entry in top:
    name = entry[1][0][1].decode()
    subs = [e for e in entry[1][9][1] if implemented(name, e[1][0][1].decode())]
    entry[1][9] = ("*", sorted(subs, key=lambda e: e[1][0][1]))
assert len(top) == len(names)
open(os.path.join(OUT, "info.resp"), "wb").write(enc(("*", top)))
