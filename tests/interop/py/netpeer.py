"""A context in a network of several: for the broker and triangle scenarios.

    netpeer.py NAME SLOT [bind | connect PORT]...

Hosts or connects in the order given (a bind prints "PORT <n>" at once and does not wait for
its peer), has a TEXT publisher and a subscriber on SLOT, then prints "READY". Commands:
  conns K       wait until K connections are connected, print "CONNS <k>"
  pub N         publish "NAME:i" for i < N, print "PUBLISHED <n>"
  report T Q    receive until T messages arrived (at most 30 s), then Q seconds more to catch
                duplicates, and print "REPORT <total>" followed by one "<source>:<count>:
                <duplicates>:<in order 0/1>" word per source
  quit
"""

import sys
import time

import yoton
from common import QUEUE, Commands, bind, connect, out, watchdog

watchdog(120)
cmds = Commands()
name, slot = sys.argv[1], sys.argv[2]
ctx = yoton.Context(queue_params=QUEUE)
pub = yoton.PubChannel(ctx, slot, yoton.TEXT)
sub = yoton.SubChannel(ctx, slot, yoton.TEXT)
args = sys.argv[3:]
while args:
    if args[0] == "bind":
        bind(ctx)
        args = args[1:]
    else:
        connect(ctx, args[1])
        args = args[2:]
out("READY")

while True:
    parts = (cmds.get(120) or "quit").split()
    if parts[0] == "conns":
        end = time.time() + 20
        while ctx.connection_count < int(parts[1]) and time.time() < end:
            time.sleep(0.005)
        out("CONNS", ctx.connection_count)
    elif parts[0] == "pub":
        for i in range(int(parts[1])):
            pub.send("%s:%d" % (name, i))
        out("PUBLISHED", parts[1])
    elif parts[0] == "report":
        total, quiet = int(parts[1]), float(parts[2])
        seen = {}  # source -> (count, duplicates, in order, last index, set)
        got = 0
        end = time.time() + 30

        def take(m):
            src, idx = m.rsplit(":", 1)
            idx = int(idx)
            count, dups, order, last, have = seen.get(src, (0, 0, 1, -1, set()))
            if idx in have:
                dups += 1
            have.add(idx)
            if idx != last + 1:
                order = 0
            seen[src] = (count + 1, dups, order, idx, have)

        while got < total and time.time() < end:
            m = sub.recv(0.5)
            if m:
                take(m)
                got += 1
        end = time.time() + quiet
        while time.time() < end:
            m = sub.recv(0.05)
            if m:
                take(m)
                got += 1
        words = ["%s:%d:%d:%d" % (s, v[0], v[1], v[2]) for s, v in sorted(seen.items())]
        out("REPORT", got, *words)
    elif parts[0] == "quit":
        break
