#!/usr/bin/env python3
"""py_bench.py - the Python reference contender (yoton 2.2 from pyzo), same roles and output
as yt_bench.c: sub, pub, pong, ping, rep, req. Needs PYTHONPATH pointing at the unpacked
reference (scripts/fetch-reference.sh prints it). Queues are sized from --count so nothing is
discarded (queue_params=(count + 1000, 'new')); the receiver checks the count anyway.
Output: "READY port=N" for listening roles, then one "RESULT key=value ..." line."""
import random
import resource
import sys
import time

import yoton

now = time.monotonic  # CLOCK_MONOTONIC, the clock of the C programs


def arg(name, default):
    argv = sys.argv
    for i in range(2, len(argv) - 1):
        if argv[i] == name:
            return type(default)(argv[i + 1])
    return default


def tail():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    hwm = 0
    with open("/proc/self/status") as f:  # VmHWM: ru_maxrss survives execve on Linux
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return " peak_rss_kb=%d cpu_s=%.4f" % (hwm, ru.ru_utime + ru.ru_stime)


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def context(count=0):
    return yoton.Context(queue_params=(max(count, 10000) + 1000, "new"))


def bind(ctx):
    c = ctx.bind("127.0.0.1:%d" % random.randint(20000, 60000), max_tries=500)
    out("READY port=%d" % c.port1)
    return c


def connect(ctx, port):
    ctx.connect("127.0.0.1:%d" % port, timeout=5.0)


def wait_gone(ctx, timeout):
    deadline, had = now() + timeout, False
    while now() < deadline:
        n = ctx.connection_count
        if n:
            had = True
        elif had:
            return
        time.sleep(0.02)


def role_sub():
    size, n, timeout = arg("--size", 16), arg("--count", 1000), arg("--timeout", 300.0)
    ctx = context(n)
    sub = yoton.SubChannel(ctx, "bench", yoton.BINARY)
    bind(ctx)
    count = bad = nbytes = 0
    t_first = t_end = 0.0
    deadline, last = now() + timeout, now()
    while count < n and now() < deadline and now() - last < 20:
        msgs = sub.recv_all()
        if not msgs:
            m = sub.recv(0.5)
            if not m:
                continue
            msgs = [m]
        if count == 0:
            t_first = now()
        for m in msgs:
            bad += len(m) != size
            nbytes += len(m)
        count += len(msgs)
        last = t_end = now()
    out("RESULT role=sub count=%d expected=%d bad=%d bytes=%d t_first=%.6f t_end=%.6f "
        "discarded=0%s" % (count, n, bad, nbytes, t_first, t_end, tail()))
    ctx.close()


def role_pub():
    size, n, port = arg("--size", 16), arg("--count", 1000), arg("--port", 0)
    ctx = context(n)
    pub = yoton.PubChannel(ctx, "bench", yoton.BINARY)
    connect(ctx, port)
    data = b"x" * size
    t_start = now()
    for _ in range(n):
        pub.send(data)
    t_sent = now()
    ok = ctx.flush(300.0)
    out("RESULT role=pub sent=%d retries=0 t_start=%.6f t_sent=%.6f t_flushed=%.6f flush_ok=%d "
        "discarded=0%s" % (n, t_start, t_sent, now(), 1 if ok is not False else 0, tail()))
    time.sleep(0.5)
    ctx.close()


def role_pong():
    ctx = context()
    sub = yoton.SubChannel(ctx, "ping", yoton.BINARY)
    pub = yoton.PubChannel(ctx, "pong", yoton.BINARY)
    bind(ctx)
    count, had, deadline = 0, False, now() + arg("--timeout", 300.0)
    while now() < deadline:
        m = sub.recv(0.2)
        if m:
            pub.send(m)
            count += 1
            had = True
            continue
        if ctx.connection_count:
            had = True
        elif had:
            break
    out("RESULT role=pong count=%d%s" % (count, tail()))
    ctx.close()


def report(role, rtt, t0):
    rtt.sort()
    med = rtt[len(rtt) // 2]
    p99 = rtt[min(len(rtt) - 1, int(0.99 * (len(rtt) - 1) + 0.5))]
    out("RESULT role=%s count=%d median_us=%.2f p99_us=%.2f t_start=%.6f t_end=%.6f%s"
        % (role, len(rtt), med * 1e6, p99 * 1e6, t0, now(), tail()))


def role_ping():
    size, n, warm = arg("--size", 16), arg("--count", 1000), arg("--warmup", 10)
    ctx = context()
    pub = yoton.PubChannel(ctx, "ping", yoton.BINARY)
    sub = yoton.SubChannel(ctx, "pong", yoton.BINARY)
    connect(ctx, arg("--port", 0))
    data = b"p" * size
    rtt, t0 = [], 0.0
    for i in range(-warm, n):
        if i == 0:
            t0 = now()
        a = now()
        pub.send(data)
        m = sub.recv(10.0)
        if len(m) != size:
            sys.exit("no pong")
        if i >= 0:
            rtt.append(now() - a)
    report("ping", rtt, t0)
    ctx.close()


def role_rep():
    ctx = context()
    rep = yoton.RepChannel(ctx, "bench")
    rep.set_mode("thread")
    bind(ctx)
    wait_gone(ctx, arg("--timeout", 300.0))
    out("RESULT role=rep%s" % tail())
    ctx.close()


def role_req():
    size, n, warm = arg("--size", 16), arg("--count", 1000), arg("--warmup", 10)
    ctx = context()
    req = yoton.ReqChannel(ctx, "bench")
    connect(ctx, arg("--port", 0))
    s = "r" * size
    rtt, t0 = [], 0.0
    for i in range(-warm, n):
        if i == 0:
            t0 = now()
        a = now()
        req.echo(s).result(10.0)
        if i >= 0:
            rtt.append(now() - a)
    report("req", rtt, t0)
    ctx.close()


if __name__ == "__main__":
    roles = {"sub": role_sub, "pub": role_pub, "pong": role_pong, "ping": role_ping,
             "rep": role_rep, "req": role_req}
    if len(sys.argv) < 2 or sys.argv[1] not in roles:
        sys.exit("usage: py_bench.py %s [--option value ...]" % "|".join(roles))
    roles[sys.argv[1]]()
