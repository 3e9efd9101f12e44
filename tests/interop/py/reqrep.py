"""Request/reply peer.

    reqrep.py bind|connect [PORT] req SLOT     calls the methods of a C RepChannel
    reqrep.py bind|connect [PORT] rep SLOT     a RepChannel subclass the C side calls

req: after "READY", calls on SLOT and prints one line per check:
  "TYPES <0/1> <repr>"    types(*ARGS, **KWARGS) must return (ARGS, KWARGS) (the C handler
                          echoes its arguments), compared with repr so that True != 1
  "ADD <result>"          add(3, 4)
  "ECHO <repr>"           echo('hi') (the C replier's built-in echo)
  "UNKNOWN <message>"     nosuch() fails: the error text
  "FAIL <message>"        fail() fails: the message the C handler wrote
rep: a RepChannel in thread mode with methods types(*args, **kwargs) -> (args, kwargs),
  add(a, b), who(delay) -> "py" after sleeping delay seconds, and the built-in echo. Prints
  "READY" and "ID <context id>", then serves until "quit".
"""

import sys
import time

import yoton
from common import Commands, out, setup, watchdog

ARGS = (None, True, False, 0, 1, -1, 2**63 - 1, -2**63, 1.5, -0.0, 1e300, float("inf"),
        "", "pl\u00e4in \u20ac\U0001F600", [1, [2, (3,)]], (), (None,), {"a": 1},
        {1: "int key", 2.5: "float key", "t": (1, 2), (1, "x"): []})
KWARGS = {"none": None, "b": True, "i": -7, "f": 0.1, "s": "\u00df", "l": [1, 2.0, "3"],
          "t": (1, (2,)), "d": {"nested": {"deep": [None]}}}


class Replier(yoton.RepChannel):
    def types(self, *args, **kwargs):
        return args, kwargs

    def add(self, a, b):
        return a + b

    def who(self, delay):
        time.sleep(delay)
        return "py"


watchdog(120)
cmds = Commands()
ctx = yoton.Context()
args = sys.argv[1:]
rest = args[1:] if args[0] == "bind" else args[2:]
role, slot = rest[0], rest[1]
if role == "req":
    req = yoton.ReqChannel(ctx, slot)
else:
    rep = Replier(ctx, slot)
    rep.set_mode("thread")
conn, _ = setup(args, ctx)
out("READY")

if role == "rep":
    out("ID", ctx.id)
    cmds.wait_for("quit", 110)
    sys.exit(0)

cmds.wait_for("go", 60)


def call(name, *a, **kw):
    f = getattr(req, name)(*a, **kw)
    try:
        return True, f.result(20.0)
    except Exception as e:
        return False, str(e)


ok, r = call("types", *ARGS, **KWARGS)
want = (ARGS, KWARGS)
out("TYPES", int(ok and type(r) is tuple and repr(r) == repr(want)), repr(r)[:300])
ok, r = call("add", 3, 4)
out("ADD", r if ok else "error " + r)
ok, r = call("echo", "hi")
out("ECHO", repr(r) if ok else "error " + r)
ok, r = call("nosuch")
out("UNKNOWN", ("unexpected success " + repr(r)) if ok else r.replace("\n", "|"))
ok, r = call("fail")
out("FAIL", ("unexpected success " + repr(r)) if ok else r.replace("\n", "|"))
cmds.wait_for("quit", 60)
