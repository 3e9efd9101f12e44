#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from tests/vectors into OUT/<target>/.

Usage: make_corpus.py VECTOR_DIR OUT_DIR
Seeds are generated at run time (nothing large is committed):
  stream     first byte = chunking seed, then the packages of header.txt (header + payload),
             alone and concatenated, plus a heartbeat and a close package
  handshake  first byte = mode, then each incoming line of handshake_parse.txt
  value      every encoding in object_codec.txt and object_invalid.txt
  address    every address of split_address.txt, plus IPv6 and ipc/unix forms
  utf8       the UTF-8 of the strings in object_codec.txt, plus a few edge sequences
"""
import os
import re
import sys


def lines(path):
    with open(path, encoding="utf-8") as f:
        for ln in f:
            ln = ln.rstrip("\n")
            if ln and not ln.startswith("#"):
                yield ln.split("\t")


def unescape(text):
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n == "x":
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
            out += {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}.get(n, n.encode())
            i += 2
            continue
        out += ch.encode("utf-8")
        i += 1
    return bytes(out)


def main():
    vec, out = sys.argv[1], sys.argv[2]
    seeds = {k: [] for k in ("stream", "handshake", "value", "address", "utf8")}

    pkgs = []
    for f in lines(os.path.join(vec, "header.txt")):
        payload = bytes.fromhex(f[0]) if f[0] not in ("", "-") else b""
        pkgs.append(bytes.fromhex(f[-1]) + payload)
    control = b"YOTON   "
    heartbeat = control + (1).to_bytes(8, "little") + bytes(40)
    close = control + (1).to_bytes(8, "little") + bytes(32) + (1).to_bytes(8, "little")
    for i, p in enumerate(pkgs):
        seeds["stream"].append(bytes([0]) + p)
        seeds["stream"].append(bytes([i * 37 % 256 or 1]) + p)
    seeds["stream"].append(bytes([5]) + b"".join(pkgs) + heartbeat)
    seeds["stream"].append(bytes([0]) + heartbeat + close)

    for f in lines(os.path.join(vec, "handshake_parse.txt")):
        for mode in (0, 3, 4):
            seeds["handshake"].append(bytes([mode]) + unescape(f[2]))

    for name in ("object_codec.txt", "object_invalid.txt", "object_noncanonical.txt"):
        for f in lines(os.path.join(vec, name)):
            try:
                seeds["value"].append(bytes.fromhex(f[0]))
            except ValueError:
                pass
            if name == "object_codec.txt":
                m = re.match(r"^'(.*)'$", f[1])
                if m:
                    seeds["utf8"].append(m.group(1).encode("utf-8", "surrogatepass"))

    for f in lines(os.path.join(vec, "split_address.txt")):
        seeds["address"].append(f[0].encode("utf-8"))
    # Our own forms (not in the reference's vectors): IPv6 and Unix sockets.
    seeds["address"] += [b"[::1]:5000", b"tcp://[::1]:0", b"tcp6://::1:pyzo+1",
                         b"tcp6://localhost:80", b"[fe80::1%lo]:7", b"[]:0", b"[::1]",
                         b"ipc:///tmp/yoton.sock", b"unix://rel/path", b"ipc://"]

    seeds["utf8"] += [b"", b"abc", "\u00e9\u20ac\U0001f600".encode(), b"\xed\xa0\x80",
                      b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x9f\x98"]

    for target, items in seeds.items():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for i, data in enumerate(dict.fromkeys(items)):
            with open(os.path.join(d, "seed-%04d" % i), "wb") as fh:
                fh.write(data)


if __name__ == "__main__":
    main()
