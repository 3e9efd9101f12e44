"""zlib-compressed message types, written with the reference's MessageType API (the recipe of
docs/interop.md), meeting libyoton's YT_ZLIB(YT_TEXT) and YT_ZLIB(YT_OBJECT).

    zlibpeer.py bind|connect [PORT]

Receives on slot "zc2py" (zlib-txt and zlib-obj), sends on "zpy2c". Prints "READY"; then
sends TEXTS and OBJECTS (below) and prints "SENT"; then prints "GOT <type> <0/1> <repr>" for
each message expected from the C side (1: it equals the same item of TEXTS / OBJECTS).
"""

import sys
import zlib

import yoton
from common import Commands, out, setup, watchdog
from yoton.channels.message_types import ObjectMessageType


class ZlibText(yoton.MessageType):
    def message_type_name(self):
        return "zlib-txt"

    def message_to_bytes(self, message):
        return zlib.compress(message.encode("utf-8"))

    def message_from_bytes(self, bb):
        return zlib.decompress(bb).decode("utf-8") if bb else ""


class ZlibObject(ObjectMessageType):
    def message_type_name(self):
        return "zlib-obj"

    def message_to_bytes(self, message):
        return zlib.compress(ObjectMessageType.message_to_bytes(self, message))

    def message_from_bytes(self, bb):
        return ObjectMessageType.message_from_bytes(self, zlib.decompress(bb) if bb else b"")


TEXTS = ["hello zlib", "\u00e9\u20ac" * 1000, "x"]
OBJECTS = [(1, "two", [3.0, None]), {"k": "v" * 500, "n": [True, False]}]

watchdog(60)
cmds = Commands()
ctx = yoton.Context()
sub_t = yoton.SubChannel(ctx, "zc2py", ZlibText)
sub_o = yoton.SubChannel(ctx, "zc2py", ZlibObject)
pub_t = yoton.PubChannel(ctx, "zpy2c", ZlibText)
pub_o = yoton.PubChannel(ctx, "zpy2c", ZlibObject)
conn, _ = setup(sys.argv[1:], ctx)
out("READY")
for t in TEXTS:
    pub_t.send(t)
for o in OBJECTS:
    pub_o.send(o)
out("SENT")
for t in TEXTS:
    m = sub_t.recv(20.0)
    out("GOT txt", int(m == t), repr(m)[:60])
for o in OBJECTS:
    m = sub_o.recv(20.0)
    out("GOT obj", int(repr(m) == repr(o)), repr(m)[:60])
cmds.wait_for("quit", 50)
