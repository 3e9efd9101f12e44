"""A client that is not yoton, knocking at a C host (no yoton import needed).

    rawclient.py PORT

Sends an HTTP request line, prints "REPLY1 <first line of the answer>", then on a new
connection a yoton greeting whose id does not parse and prints "REPLY2 <answer>".
"""

import socket
import sys
import time

from common import out, watchdog

watchdog(30)
port = int(sys.argv[1])


def knock(data):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    buf = b""
    end = time.time() + 5
    while not buf.endswith(b"\r\n") and time.time() < end:
        try:
            b = s.recv(1)
        except socket.timeout:
            break
        if not b:
            break
        buf += b
    # The host closes the socket after its error line (the reference would leave it open, Q9);
    # a reset says the same (it closed with the rest of our request unread).
    s.settimeout(2)
    try:
        closed = s.recv(1) == b""
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        closed = False
    s.close()
    return buf.decode("utf-8", "replace").rstrip("\r\n"), closed


line, closed = knock(b"GET / HTTP/1.0\r\n\r\n")
out("REPLY1", int(closed), line)
line, closed = knock(b"YOTON!xyz.12\r\n")
out("REPLY2", int(closed), line)
