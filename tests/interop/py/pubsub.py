"""Pub/sub peer: N messages of each of TEXT, BINARY and OBJECT each way, then one big binary
message each way.

    pubsub.py bind|connect [PORT] N BIG_BYTES

Receives on slots "c2py" (txt, bin, obj) and "c2py-big" (bin); sends on "py2c" and "py2c-big".
Lines: "READY" once connected; when N > 0, "SENT <n> <seconds>" after sending N messages of
each type, interleaved (text i, binary i, object i, text i+1, ...), then "GOT <type> <count>
<seconds>" per type once its N messages arrived in order ("BAD <type> <i> <repr>" on the first
wrong one). Then commands: "big" receives the big message and prints "BIG <length> <crc32>",
sends one of BIG_BYTES and prints "BIGSENT <length> <crc32> <seconds>"; "quit".
"""

import random
import sys
import time
import zlib

import yoton
from common import QUEUE, Commands, bin_msg, obj_msg, out, setup, text_msg, watchdog

watchdog(150)
cmds = Commands()
ctx = yoton.Context(queue_params=QUEUE)
kinds = [("txt", yoton.TEXT, text_msg), ("bin", yoton.BINARY, bin_msg),
         ("obj", yoton.OBJECT, obj_msg)]
subs = {k: yoton.SubChannel(ctx, "c2py", t) for k, t, _ in kinds}
pubs = {k: yoton.PubChannel(ctx, "py2c", t) for k, t, _ in kinds}
big_sub = yoton.SubChannel(ctx, "c2py-big", yoton.BINARY)
big_pub = yoton.PubChannel(ctx, "py2c-big", yoton.BINARY)
conn, rest = setup(sys.argv[1:], ctx)
n = int(rest[0])
big_len = int(rest[1])
out("READY")

if n > 0:
    t0 = time.time()
    for i in range(n):
        for k, _, make in kinds:
            pubs[k].send(make(i))
    out("SENT", n, "%.3f" % (time.time() - t0))

    t0 = time.time()
    for k, _, make in kinds:
        sub = subs[k]
        got = 0
        for i in range(n):
            m = sub.recv(30.0)
            want = make(i)
            # repr tells True from 1 and 1.0 from 1, which == does not.
            if type(m) is not type(want) or repr(m) != repr(want):
                out("BAD", k, i, repr(m)[:200])
                break
            got += 1
        out("GOT", k, got, "%.3f" % (time.time() - t0))

while True:
    cmd = cmds.get(120)
    if cmd != "big":
        break
    m = big_sub.recv(60.0)
    out("BIG", len(m), zlib.crc32(m))
    data = random.Random(7).randbytes(big_len)
    t0 = time.time()
    big_pub.send(data)
    ctx.flush(60.0)
    out("BIGSENT", len(data), zlib.crc32(data), "%.3f" % (time.time() - t0))
