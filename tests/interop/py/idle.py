"""A connected context that runs the reference's event loop and reports its connection's
signals: for the heartbeat and closing scenarios.

    idle.py bind|connect [PORT]

Lines: "PORT <n>" (bind), "CONNECTED <pid2>", then "TIMEDOUT 1" / "TIMEDOUT 0" and
"CLOSED <reason>" as the signals fire (they need yoton.process_events(), which the main loop
calls every 10 ms), and "REPLY <text>" for each text on slot "ctl-reply". Commands:
  ping          send "ping" on TEXT slot "ctl" (the C peer answers on "ctl-reply")
  send N        publish N texts "d<i>" on slot "data", then print "SENT <n>"
  close         close the connection (the reference sends no close package, quirk Q4)
  ctxclose      close the context
  quit
"""

import sys
import time

import yoton
from common import Commands, out, setup, watchdog

watchdog(120)
cmds = Commands()
ctx = yoton.Context()
ctl = yoton.PubChannel(ctx, "ctl", yoton.TEXT)
reply = yoton.SubChannel(ctx, "ctl-reply", yoton.TEXT)
data = yoton.PubChannel(ctx, "data", yoton.TEXT)
conn, _ = setup(sys.argv[1:], ctx)
conn.timedout.bind(lambda c, flag: out("TIMEDOUT", int(bool(flag))))
conn.closed.bind(lambda c, reason: out("CLOSED", reason))
out("CONNECTED", conn.pid2)

while True:
    yoton.process_events()
    for m in reply.recv_all():
        out("REPLY", m)
    cmd = cmds.poll()
    if cmd is None:
        time.sleep(0.01)
        continue
    parts = cmd.split()
    if parts[0] == "ping":
        ctl.send("ping")
    elif parts[0] == "send":
        for i in range(int(parts[1])):
            data.send("d%d" % i)
        out("SENT", parts[1])
    elif parts[0] == "close":
        conn.close()
    elif parts[0] == "ctxclose":
        ctx.close()
    elif parts[0] == "quit":
        break
