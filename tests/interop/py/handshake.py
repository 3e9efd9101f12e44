"""Handshake peer: prints what the reference learnt from a C context's greeting.

    handshake.py bind|connect [PORT] [ID_HEX]

With ID_HEX the context takes that id before the handshake (to show quirk Q2 with an id below
2^60). Lines: "PORT <n>" (bind), then "IDS <own id> <id2> <pid2> <own pid>", then it sends
"hello from python" on TEXT pub/sub slot "hs" and prints "GOT <text>" for the first message on
slot "hs-back".
"""

import os
import sys

import yoton
from common import Commands, out, setup, watchdog

watchdog(60)
cmds = Commands()
args = sys.argv[1:]
ctx = yoton.Context()
rest = args[1:] if args[0] == "bind" else args[2:]
if rest:
    ctx._id = int(rest[0], 16)
pub = yoton.PubChannel(ctx, "hs", yoton.TEXT)
sub = yoton.SubChannel(ctx, "hs-back", yoton.TEXT)
conn, _ = setup(args, ctx)
out("IDS", ctx.id, conn.id2, conn.pid2, os.getpid())
pub.send("hello from python")
m = sub.recv(20.0)
out("GOT", m if m else "<nothing>")
cmds.wait_for("quit", 60)
