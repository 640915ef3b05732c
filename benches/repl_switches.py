#!/usr/bin/env python3
"""Where a primary with two replicas switches: CPU and voluntary context switches per request, by thread.

    AB_PORT_BASE=33500 P=1 python3 benches/repl_switches.py N ROUNDS NAME=BINARY [NAME=BINARY ...]
    e.g. python3 benches/repl_switches.py 40000 4 redis=/usr/bin/redis-server base=/tmp/old new=target/release/flurrydb-server

Per round and server (the order flips every round): a primary and two replicas of its own kind
(`--appendonly no --save ''`), both online, then `redis-benchmark -c 50 -n N -P $P -r 100000 -t set` on
the primary. Prints the primary's CPU us/request and its voluntary (a thread went to sleep: parked,
waited, slept) and involuntary (preempted: the machine's load) switches per request, the voluntary
ones by thread name. Voluntary switches count the wake-ups a design causes, whatever the load;
ab_repl.py's switch figures add both kinds.
"""
import os, subprocess, sys, time, socket, tempfile, shutil
def cmd(port, *a):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(("*%d\r\n" % len(a) + "".join("$%d\r\n%s\r\n" % (len(x), x) for x in a)).encode())
    d = b""
    while not d.endswith(b"\r\n") or (d.startswith(b"$") and d.count(b"\r\n") < 2):
        d += s.recv(65536)
    s.close(); return d.decode(errors="replace")
def stats(pid):
    out = {}
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            name = v = nv = 0
            for line in open("/proc/%d/task/%s/status" % (pid, t)):
                if line.startswith("Name:"): name = line.split(None, 1)[1].strip()
                if line.startswith("voluntary_ctxt_switches"): v = int(line.split()[-1])
                if line.startswith("nonvoluntary_ctxt_switches"): nv = int(line.split()[-1])
            a = out.setdefault(name, [0, 0]); a[0] += v; a[1] += nv
        except OSError: pass
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return out, (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
def start(binary, port, d, extra=()):
    p = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "", "--appendonly", "no"] + list(extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        try:
            if cmd(port, "PING").startswith("+PONG"): return p
        except OSError: time.sleep(0.05)
    p.kill(); raise SystemExit("%s did not start on port %d" % (binary, port))
N = int(sys.argv[1]); rounds = int(sys.argv[2]); bins = dict(a.split("=") for a in sys.argv[3:])
port0 = int(os.environ.get("AB_PORT_BASE", "33500"))
for r in range(rounds):
    for k, (name, b) in enumerate(list(bins.items()) if r % 2 == 0 else list(bins.items())[::-1]):
        # Fresh ports every time: a port just closed may still be held.
        base = port0 + 3 * (r * len(bins) + k) % 90
        d = tempfile.mkdtemp(); procs = []
        try:
            os.makedirs(d + "/p")
            pr = start(b, base, d + "/p"); procs.append(pr)
            for i in (1, 2):
                os.makedirs(d + "/r%d" % i)
                procs.append(start(b, base + i, d + "/r%d" % i, ["--replicaof", "127.0.0.1", str(base)]))
            for _ in range(200):
                if cmd(base, "INFO", "replication").count("state=online") == 2: break
                time.sleep(0.05)
            s0, c0 = stats(pr.pid)
            subprocess.run(["redis-benchmark", "-p", str(base), "-c", "50", "-n", str(N), "-P", os.environ.get("P", "1"), "-t", "set", "-r", "100000", "-q"], stdout=subprocess.DEVNULL)
            s1, c1 = stats(pr.pid)
            per = {k: ((s1[k][0] - s0.get(k, [0, 0])[0]) / N, (s1[k][1] - s0.get(k, [0, 0])[1]) / N) for k in s1}
            tot_v = sum(v for v, _ in per.values()); tot_nv = sum(nv for _, nv in per.values())
            print(("round %d %s P" + os.environ.get("P", "1") + ": cpu %.2f us/req, voluntary %.3f/req, involuntary %.3f/req; voluntary by thread: %s") % (r, name, (c1 - c0) * 1e6 / N, tot_v, tot_nv, ", ".join("%s %.3f" % (k, v) for k, (v, _) in sorted(per.items()) if v >= 0.0005)), flush=True)
        finally:
            for p in procs: p.kill(); p.wait()
            shutil.rmtree(d, ignore_errors=True)
