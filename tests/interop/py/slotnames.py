"""Slot names beyond ASCII: which names a libyoton publisher and a reference subscriber share.

    slotnames.py bind|connect [PORT] NAME...

Subscribes (TEXT) on each NAME, prints "READY", then waits up to 3 s and prints one line
"HEARD <0/1>" per NAME, in order: 1 when the text NAME arrived on that slot.
"""

import sys
import time

import yoton
from common import Commands, out, setup, watchdog

watchdog(60)
cmds = Commands()
ctx = yoton.Context()
args = sys.argv[1:]
names = args[1:] if args[0] == "bind" else args[2:]
subs = [yoton.SubChannel(ctx, n, yoton.TEXT) for n in names]
conn, _ = setup(args, ctx)
out("READY")
cmds.wait_for("listen", 30)
heard = [False] * len(names)
end = time.time() + 3
while time.time() < end and not all(heard):
    for i, s in enumerate(subs):
        m = s.recv(False)
        if m:
            heard[i] = heard[i] or m == names[i]
    time.sleep(0.01)
for h in heard:
    out("HEARD", int(h))
cmds.wait_for("quit", 50)
