"""Helpers shared by the Python peers of the interop suite (tests/interop/test_interop.c).

A peer is a process started by the C test with the reference's yoton on PYTHONPATH. It talks
to the test over plain lines: results on stdout (one line each, flushed at once), commands on
stdin. Diagnostics go to stderr, which the test passes through to the CTest log.

Every peer ends by itself: when its stdin reaches end-of-file (the test process went away)
and, at the latest, when its watchdog fires.
"""

import os
import queue
import socket
import sys
import threading
import time

import yoton

# Queues big enough that nothing is discarded in the tests (the reference's default is 10000).
QUEUE = (200000, "old")


# The reference prints diagnostics with print() (for example "Yoton: Handshake failed: ..." or
# "yoton.RepChannel: error handling request:"). Keep stdout for result lines only.
_results = sys.stdout
sys.stdout = sys.stderr


def out(*parts):
    """One result line for the test."""
    _results.write(" ".join(str(p) for p in parts) + "\n")
    _results.flush()


def log(*parts):
    sys.stderr.write("[py %d] %s\n" % (os.getpid(), " ".join(str(p) for p in parts)))
    sys.stderr.flush()


def watchdog(seconds=150.0):
    """Ends the process after `seconds`, whatever it is doing."""

    def fire():
        log("watchdog: exiting after", seconds, "s")
        os._exit(3)

    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()


def free_port():
    """A port that was free a moment ago (bind to port 0, read it, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def bind(ctx, name=""):
    """Hosts on a free port and tells the test which one (line "PORT <n>").

    Quirk Q1: the reference's bind('host:X') listens on X + 1 (X + floor(sqrt(k)) summed over
    the tries), and 'host:0' would listen on port 1. So ask for one below a free port and read
    the real port back from port1.
    """
    want = free_port()
    conn = ctx.bind("127.0.0.1:%d" % (want - 1), name=name)
    if conn.port1 != want:
        log("bind: asked for", want - 1, "expected", want, "got", conn.port1)
    out("PORT", conn.port1)
    return conn


def connect(ctx, port, name=""):
    """Connects to a C host; the reference's default timeout (1 s) is too short under load."""
    return ctx.connect("127.0.0.1:%d" % int(port), timeout=10.0, name=name)


def wait_connected(conn, timeout=20.0):
    end = time.time() + timeout
    while not conn.is_connected:
        if time.time() > end:
            out("ERROR", "no peer connected within", timeout, "s")
            os._exit(4)
        time.sleep(0.005)


class Commands:
    """Lines from stdin, read by a thread. End-of-file ends the process."""

    def __init__(self):
        self._q = queue.Queue()
        t = threading.Thread(target=self._run, daemon=True)
        t.start()

    def _run(self):
        for line in sys.stdin:
            self._q.put(line.strip())
        os._exit(0)

    def get(self, timeout=60.0):
        """The next command, or None after timeout seconds."""
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    def poll(self):
        """The next command if one is there, else None."""
        try:
            return self._q.get_nowait()
        except queue.Empty:
            return None

    def wait_for(self, word, timeout=60.0):
        """Waits for a command starting with word; returns its other words."""
        end = time.time() + timeout
        while True:
            cmd = self.get(max(0.0, end - time.time()))
            if cmd is None:
                out("ERROR", "no", word, "command within", timeout, "s")
                os._exit(4)
            parts = cmd.split()
            if parts and parts[0] == word:
                return parts[1:]
            log("ignored command", cmd)


def setup(argv, ctx):
    """Binds (argv[0] == 'bind') or connects (argv[0] == 'connect', argv[1] = port).

    Returns (connection, remaining args).
    """
    if argv[0] == "bind":
        conn = bind(ctx)
        wait_connected(conn)
        return conn, argv[1:]
    if argv[0] == "connect":
        return connect(ctx, argv[1]), argv[2:]
    raise SystemExit("first argument must be bind or connect")


# Messages of the pub/sub scenario, the same on both sides (see test_interop.c).


def text_msg(i):
    return "t%d \u00c4\u00d6\u00fc \u20ac\U0001F600 %s" % (i, "x" * (i % 50))


def bin_msg(i):
    return bytes(((i * 31 + k * 7) & 255) for k in range(i % 61 + 1))


def obj_msg(i):
    return (
        i,
        -i * 1000003,
        i * 0.25,
        "s%d \u00e9" % i,
        [None, True, False, i % 3 == 0],
        {"i": i, "neg": -i, "t": (i, "x")},
    )
