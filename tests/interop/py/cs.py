"""Client/server peer (the reference's do_request and RequestServer; no context involved).

    cs.py client PORT TEXT...   do_request('127.0.0.1:PORT', TEXT, 5.0) for each TEXT (with
                                "\\r\\n" standing for CR LF), printing "REPLY <repr(reply)>"
    cs.py server                two RequestServers on free ports: the reference's default
                                handler, then one answering "first\\r\\nsecond" (a reply the
                                client cuts at its first CR LF, quirk Q10); prints "PORT <n>"
                                for each, then serves until "quit"
"""

import sys

import yoton
from common import Commands, out, watchdog

watchdog(60)
cmds = Commands()
if sys.argv[1] == "client":
    port = sys.argv[2]
    for text in sys.argv[3:]:
        text = text.replace("\\r\\n", "\r\n")
        out("REPLY", repr(yoton.do_request("127.0.0.1:%s" % port, text, 5.0)))
else:

    class TwoLines(yoton.RequestServer):
        def handle_request(self, request):
            return "first\r\nsecond"

    servers = [yoton.RequestServer("127.0.0.1:0"), TwoLines("127.0.0.1:0")]
    for s in servers:
        # The server thread calls listen() only when it runs; listen now so that the port
        # takes connections as soon as it is printed.
        s._bsd_socket.listen(1)
        s.start()
        out("PORT", s._bsd_socket.getsockname()[1])
cmds.wait_for("quit", 50)
