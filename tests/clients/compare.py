"""Shared by the client checks that compare flurrydb with redis-server (python3 standard library only):

  Conn            a raw RESP2/RESP3 connection; replies parsed into plain values (see Conn.read), so
                  that the replies of two servers compare with ==
  compare_flows   run a flow of client steps on both servers, under RESP2 and RESP3, and exit at the
                  first step whose result differs
"""
import socket
import sys
import time


def enc(*args):
    """A command as a RESP array of bulk strings (str arguments as latin-1, others by str())."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode("latin-1")
        elif not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Closed(Exception):
    """The server closed the connection, sent something that is not RESP, or did not answer in time."""


class Conn:
    """A raw connection. Replies: integers as int, bulk strings as bytes, nulls as None, arrays and
    pushes as lists, and the rest as tagged tuples: ("status", b), ("error", b), ("map", [(k, v)]),
    ("set", [...]), ("double", b), ("bool", b), ("bignum", b)."""

    def __init__(self, port, resp3=False, timeout=None):
        self.port = port
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        if resp3:
            self.call("HELLO", "3")

    def _fill(self):
        try:
            d = self.s.recv(1 << 16)
        except socket.timeout:
            raise Closed("no reply in time (hang?) from port %d" % self.port)
        except OSError as e:
            raise Closed("port %d: %s" % (self.port, e))
        if not d:
            raise Closed("connection closed by port %d" % self.port)
        self.buf += d

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n + 2:]
        return d

    def read(self):
        """One reply."""
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return ("status", rest)
        if t == b"-":
            return ("error", rest)
        if t == b":":
            return int(rest)
        if t in (b"$", b"=", b"!"):
            n = int(rest)
            if n < 0:
                return None
            d = self._exact(n)
            return ("error", d) if t == b"!" else d
        if t in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return None
            items = [self.read() for _ in range(n)]
            return ("set", items) if t == b"~" else items
        if t in (b"%", b"|"):
            return ("map", [(self.read(), self.read()) for _ in range(int(rest))])
        if t == b"_":
            return None
        if t == b",":
            return ("double", rest)
        if t == b"#":
            return ("bool", rest)
        if t == b"(":
            return ("bignum", rest)
        raise Closed("not RESP from port %d: %r" % (self.port, line[:40]))

    def send(self, *args):
        """Send a command without reading its reply."""
        try:
            self.s.sendall(enc(*args))
        except OSError as e:
            raise Closed("send to port %d failed: %s" % (self.port, e))

    def call(self, *args):
        self.send(*args)
        return self.read()

    def drain(self, wait):
        """Every complete message that arrives within `wait` seconds (pushes of a subscriber)."""
        time.sleep(wait)
        timeout = self.s.gettimeout()
        self.s.setblocking(False)
        try:
            while True:
                d = self.s.recv(1 << 16)
                if not d:
                    break
                self.buf += d
        except BlockingIOError:
            pass
        finally:
            self.s.settimeout(timeout)
        out = []
        while self.buf:
            out.append(self.read())
        return out


def compare_flows(flows, what):
    """`flows(port, protocol)` returns a list of step results; run it on redis-server (argv[1]) and
    flurrydb (argv[2]) under RESP2 and RESP3, exit non-zero at the first difference, else print
    `what` as passed."""
    ref, ours = int(sys.argv[1]), int(sys.argv[2])
    for protocol in (2, 3):
        want, have = flows(ref, protocol), flows(ours, protocol)
        for i, (w, h) in enumerate(zip(want, have)):
            if w != h:
                sys.exit(f"RESP{protocol} step {i}: redis-server gave {w!r}, flurrydb gave {h!r}")
        if len(want) != len(have):
            sys.exit(f"RESP{protocol}: redis-server ran {len(want)} steps, flurrydb {len(have)}")
    print(what)
