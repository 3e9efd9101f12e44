"""Sync-mode peer.

    sync.py bind|connect [PORT] pub SLOT   a publisher that a C subscriber holds back
    sync.py bind|connect [PORT] sub SLOT   a subscriber in sync mode holding a C publisher back

Messages are TEXT "m<i>", i counting from 0.
pub: prints "READY"; "burst N" sends N messages at once, prints "BURST <n>"; "timed N" sends N
  more, prints "TIMED <n> <slowest send in s> <fastest send in s>".
sub: sets sync mode, prints "READY", and runs the reference's event loop (it needs it: the
  queue is checked when the received event is handled). "drain N" receives with recv(False)
  until N messages were taken and it comes back empty (that last call sends "ok"), then prints
  "DRAINED <n>"; "count N" waits up to 30 s until N messages were received in all, then prints
  "TOTAL <n> <in order 0/1>".
"""

import sys
import time

import yoton
from common import Commands, out, setup, watchdog

watchdog(120)
cmds = Commands()
ctx = yoton.Context()
args = sys.argv[1:]
rest = args[1:] if args[0] == "bind" else args[2:]
role, slot = rest[0], rest[1]
if role == "pub":
    ch = yoton.PubChannel(ctx, slot, yoton.TEXT)
else:
    ch = yoton.SubChannel(ctx, slot, yoton.TEXT)
    ch.set_sync_mode(True)
conn, _ = setup(args, ctx)
out("READY")

sent = 0
received = []


def take(m):
    received.append(m)


while True:
    if role == "sub":
        yoton.process_events()
        cmd = cmds.poll()
        if cmd is None:
            time.sleep(0.005)
            continue
    else:
        cmd = cmds.get(110) or "quit"
    parts = cmd.split()
    if parts[0] == "burst":
        for _ in range(int(parts[1])):
            ch.send("m%d" % sent)
            sent += 1
        out("BURST", parts[1])
    elif parts[0] == "timed":
        times = []
        for _ in range(int(parts[1])):
            t0 = time.time()
            ch.send("m%d" % sent)
            times.append(time.time() - t0)
            sent += 1
        out("TIMED", parts[1], "%.3f" % max(times), "%.3f" % min(times))
    elif parts[0] == "drain":
        # Until N messages were taken (the last ones may still be on their way) and the queue
        # is found empty by recv(False), which is the call that sends "ok".
        want = int(parts[1])
        n = 0
        end = time.time() + 10
        while time.time() < end:
            m = ch.recv(False)
            if m:
                take(m)
                n += 1
            elif n >= want:
                break
            else:
                yoton.process_events()
                time.sleep(0.005)
        out("DRAINED", n)
    elif parts[0] == "count":
        want = int(parts[1])
        end = time.time() + 30
        while len(received) < want and time.time() < end:
            yoton.process_events()
            m = ch.recv(0.01)
            if m:
                take(m)
        order = int(received == ["m%d" % i for i in range(len(received))])
        out("TOTAL", len(received), order)
    elif parts[0] == "quit":
        break
