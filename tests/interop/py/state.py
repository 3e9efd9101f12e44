"""State peer.

    state.py join PORT SLOT     connects late; prints "STATE <0/1> <repr>" once the state
                                arrived (1: it equals VALUE), or "STATE 0 <none>" after 10 s
    state.py host SLOT          binds (a "PORT <n>" line) and prints "READY"; the command
                                "set" sets the state to VALUE and prints "SET"; "bind" binds
                                again and prints the new "PORT <n>"

Binding again only after the state was set matters: a waiting connection queues what is sent
meanwhile (quirk Q17), and the late joiner must learn the state from send_last(), which the
NEW_CONNECTION message of its connect() triggers, not from such a queue.
"""

import sys
import time

import yoton
from common import Commands, bind, connect, out, watchdog

VALUE = {"mode": "run", "n": 42, "l": [1.5, None, (True, "x")]}

watchdog(60)
cmds = Commands()
ctx = yoton.Context()
if sys.argv[1] == "join":
    state = yoton.StateChannel(ctx, sys.argv[3], yoton.OBJECT)
    connect(ctx, sys.argv[2])
    end = time.time() + 10
    while state.recv() is None and time.time() < end:
        time.sleep(0.01)
    v = state.recv()
    out("STATE", int(repr(v) == repr(VALUE)), repr(v) if v is not None else "<none>")
else:
    state = yoton.StateChannel(ctx, sys.argv[2], yoton.OBJECT)
    bind(ctx)
    out("READY")
    cmds.wait_for("set", 30)
    state.send(VALUE)
    out("SET")
    cmds.wait_for("bind", 30)
    bind(ctx)
cmds.wait_for("quit", 50)
