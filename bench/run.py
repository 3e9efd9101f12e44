#!/usr/bin/env python3
"""run.py - runs the benchmark suite of issue 7 and prints one table (called by bench/run.sh).

Every measurement is two (or three) processes on 127.0.0.1 started here, the listening side
first (it prints "READY port=N"), then the other; each prints one "RESULT k=v ..." line. Every
process has a time limit and is killed by its PID if it overruns; none outlives the script.
Each figure is the median of --runs runs, with the spread [min-max]. Results go to OUTDIR
(results.md, results.json, throughput.png); --docs also writes them into docs/benchmarks.md
between the RESULTS markers and the plot next to it.

  bench/run.py --bin BUILD/bench [--quick] [--runs N] [--out DIR] [--docs] [--only NAMES]
               [--ipc] [--contenders yoton,yoton-ipc,tcp,zmq,python]
               [--from-json results.json]   (report again from a saved run, measuring nothing)
"""
import argparse
import atexit
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIVE = []  # processes started and not yet reaped


def cleanup():
    for p in LIVE:
        if p.poll() is None:
            p.kill()  # by PID: Popen.kill() signals exactly this process
            p.wait()


atexit.register(cleanup)


def parse_kv(line):
    d = {}
    for tok in line.split()[1:]:
        k, _, v = tok.partition("=")
        try:
            d[k] = float(v) if any(c in v for c in ".e") or not v.lstrip("-").isdigit() else int(v)
        except ValueError:
            d[k] = v
    return d


class Proc:
    def __init__(self, cmd, env=None, hold=False):
        self.cmd = cmd
        # hold: the process gets a pipe as stdin and keeps running until release() closes it.
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                  text=True,
                                  stdin=subprocess.PIPE if hold else subprocess.DEVNULL)
        LIVE.append(self.p)
        self.lines = []

    def readline(self, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                line = self.p.stdout.readline()
                if not line:
                    return None
                self.lines.append(line)
                return line

    def ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(deadline)
            if line is None:
                raise RuntimeError("no READY from %s: %s" % (" ".join(self.cmd), self.stderr()))
            if line.startswith("READY"):
                return parse_kv(line)

    def result(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(deadline)
            if line is None:
                self.kill()
                raise RuntimeError("no RESULT from %s (timeout or exit): %s"
                                   % (" ".join(self.cmd[:4]), self.stderr()))
            if line.startswith("RESULT"):
                return parse_kv(line)

    def release(self):
        if self.p.stdin:
            self.p.stdin.close()

    def finish(self, timeout=30):
        self.release()
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()

    def stderr(self):
        if self.p.poll() is None:
            return "(still running)"
        return self.p.stderr.read()[-500:]


class Bench:
    def __init__(self, args):
        self.a = args
        self.bin = args.bin
        self.env = dict(os.environ)
        if args.pyref:
            self.env["PYTHONPATH"] = args.pyref
        self.results = {}  # key -> list of dicts

    def tool(self, contender):
        return {
            "yoton": [os.path.join(self.bin, "yt_bench")],
            "yoton-ipc": [os.path.join(self.bin, "yt_bench")],
            "tcp": [os.path.join(self.bin, "tcp_bench")],
            "zmq": [os.path.join(self.bin, "zmq_bench")],
            "python": [sys.executable, os.path.join(ROOT, "bench", "py_bench.py")],
        }[contender]

    def have(self, contender):
        if contender == "zmq":
            return os.path.exists(os.path.join(self.bin, "zmq_bench"))
        if contender == "python":
            return bool(self.a.pyref)
        if contender == "yoton-ipc":
            return self.a.ipc
        return True

    def pair(self, contender, server_role, client_role, sargs, cargs, timeout, pin=False):
        pre = ["taskset", "-c", "0"] if pin else []
        t = self.tool(contender)
        if contender == "yoton-ipc":
            # libyoton over a Unix socket: both roles derive the socket path from this dir.
            d = tempfile.mkdtemp(prefix="yt-bench-ipc-")
            try:
                return self.pair_in(t, pre, server_role, client_role, sargs + ["--ipc", d],
                                    cargs + ["--ipc", d], timeout)
            finally:
                shutil.rmtree(d, ignore_errors=True)
        return self.pair_in(t, pre, server_role, client_role, sargs, cargs, timeout)

    def pair_in(self, t, pre, server_role, client_role, sargs, cargs, timeout):
        s = Proc(pre + t + [server_role] + sargs + ["--timeout", str(timeout)], self.env)
        try:
            port = s.ready()["port"]
            c = Proc(pre + t + [client_role, "--port", str(port)] + cargs
                     + ["--timeout", str(timeout)], self.env)
            try:
                cr = c.result(timeout + 30)
                sr = s.result(timeout + 30)
            finally:
                c.finish()
        finally:
            s.finish()
        return sr, cr

    def record(self, key, value):
        self.results.setdefault(key, []).append(value)

    # ------------------------------------------------------------------------------------
    def throughput(self, contender, size, count, queue):
        extra = ["--size", str(size), "--count", str(count)]
        if contender in ("yoton", "yoton-ipc"):
            extra += ["--queue", str(queue)]
        if contender == "zmq":
            extra += ["--hwm", str(queue)]
        sr, pr = self.pair(contender, "sub", "pub", extra, extra, self.a.timeout)
        el = max(sr["t_end"] - pr["t_start"], 1e-9)
        got = sr["count"]
        return {
            "count": got, "expected": count, "dropped": count - got, "bad": sr.get("bad", 0),
            "msgs_s": got / el, "mb_s": sr["bytes"] / el / 1e6, "elapsed": el,
            "retries": pr.get("retries", 0),
            "rss_pub_kb": pr["peak_rss_kb"], "rss_sub_kb": sr["peak_rss_kb"],
            "cpu_pub_per_M": pr["cpu_s"] / max(got, 1) * 1e6,
            "cpu_sub_per_M": sr["cpu_s"] / max(got, 1) * 1e6,
        }

    def roundtrip(self, contender, kind, count, pin):
        if contender in ("yoton", "yoton-ipc", "python"):
            roles = ("pong", "ping") if kind == "pubsub" else ("rep", "req")
        elif contender == "tcp":
            roles = ("pong", "ping")
        else:
            roles = ("rep", "req")
        sr, cr = self.pair(contender, roles[0], roles[1], [], ["--count", str(count),
                                                               "--size", "16"],
                           self.a.timeout, pin)
        return {"median_us": cr["median_us"], "p99_us": cr["p99_us"],
                "rss_client_kb": cr["peak_rss_kb"], "rss_server_kb": sr["peak_rss_kb"]}

    def idle(self, n=100):
        t = self.tool("yoton")
        h = Proc(t + ["idle-host", "--n", str(n)])
        try:
            ports = h.ready()["ports"]
            ports = str(ports)
            c = Proc(t + ["idle-client", "--ports", ports])
            try:
                cr = c.result(120)
                hr = h.result(120)
            finally:
                c.finish()
        finally:
            h.finish()
        return {"host_kb": hr["per_conn_kb"], "client_kb": cr["per_conn_kb"],
                "host_threads": hr["threads"], "client_threads": cr["threads"]}

    def broker(self, nsubs, size, count, queue):
        t = self.tool("yoton")
        timeout = self.a.timeout
        b = Proc(t + ["broker", "--n", str(nsubs + 1), "--queue", str(queue),
                      "--timeout", str(timeout)])
        procs = [b]
        try:
            ports = str(b.ready()["ports"]).split(",")
            s = Proc(t + ["subs", "--ports", ",".join(ports[1:]), "--size", str(size),
                          "--count", str(count), "--queue", str(queue),
                          "--timeout", str(timeout)])
            procs.append(s)
            s.ready(120)
            # The publisher stays connected until the subscribers are done: if it closes at
            # once, the broker loses what it has not read yet (docs/benchmarks.md).
            p = Proc(t + ["pub", "--port", ports[0], "--size", str(size), "--count", str(count),
                          "--queue", str(queue), "--timeout", str(timeout), "--hold", "1"],
                     hold=True)
            procs.append(p)
            pr = p.result(timeout + 30)
            sr = s.result(timeout + 30)
            p.release()
            br = b.result(60)
        finally:
            for x in reversed(procs):
                x.finish()
        el = max(sr["t_end"] - pr["t_start"], 1e-9)
        return {"delivered": sr["count"], "expected": sr["expected"],
                "short_subs": sr["short_subs"], "min_per_sub": sr["min_per_sub"],
                "deliveries_s": sr["count"] / el, "msgs_s": sr["count"] / nsubs / el,
                "broker_rss_kb": br["peak_rss_kb"], "broker_cpu_per_M": br["cpu_s"] /
                max(sr["count"], 1) * 1e6, "subs_rss_kb": sr["peak_rss_kb"],
                "broker_discarded": br["discarded"]}

    # ------------------------------------------------------------------------------------
    def run(self):
        q = self.a.quick
        div = 10 if q else 1
        sizes = [(16, 5_000_000, 200_000), (1024, 1_000_000, 100_000), (65536, 20_000, 2_000),
                 (256 << 20, 1, 4)]
        py_counts = {16: 20_000, 1024: 20_000, 65536: 2_000}
        rt_count = 20_000 // div
        py_rt = 100 // (4 if q else 1)
        only = set(self.a.only.split(",")) if self.a.only else None

        def want(name):
            return only is None or name in only

        contenders = [c for c in ("yoton", "yoton-ipc", "tcp", "zmq", "python") if self.have(c)]
        if self.a.contenders:
            contenders = [c for c in contenders if c in self.a.contenders.split(",")]
        for r in range(self.a.runs):
            log("== run %d of %d" % (r + 1, self.a.runs))
            if want("throughput"):
                for size, count, queue in sizes:
                    for c in contenders:
                        n = max(1, count // div)
                        if c == "python":
                            if size not in py_counts:
                                continue
                            n = py_counts[size] // div
                        self.attempt(("tp", c, size), lambda: self.throughput(c, size, n, queue))
            if want("latency"):
                for pin in (True, False):
                    for c in contenders:
                        n = py_rt if c == "python" else rt_count
                        for kind in ("pubsub", "reqrep"):
                            if kind == "reqrep" and c == "tcp":
                                continue  # the raw figure is the same round trip as pub/sub
                            if kind == "pubsub" and c == "zmq":
                                continue  # libzmq's round trip is measured with REQ/REP
                            self.attempt(("rt", c, kind, pin),
                                         lambda: self.roundtrip(c, kind, n, pin))
            if want("idle"):
                self.attempt(("idle",), lambda: self.idle(100))
            if want("broker"):
                self.attempt(("broker",), lambda: self.broker(100, 16, 20_000 // div, 200_000))

    def attempt(self, key, fn):
        label = " ".join(str(k) for k in key)
        t0 = time.monotonic()
        try:
            v = fn()
        except Exception as e:  # a contender failing is a result too
            v = {"error": str(e)[:300]}
        log("   %-32s %5.1fs  %s" % (label, time.monotonic() - t0, short(v)))
        self.record(key, v)


def short(v):
    return " ".join("%s=%s" % (k, ("%.4g" % x) if isinstance(x, float) else x)
                    for k, x in list(v.items())[:6])


def log(s):
    print(s, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# Reporting

def med(runs, field):
    vals = [r[field] for r in runs if field in r and "error" not in r]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def fmt_rate(x):
    if x >= 1e6:
        return "%.2f M" % (x / 1e6)
    if x >= 1e3:
        return "%.1f k" % (x / 1e3)
    return "%.3g" % x


def cell(runs, field, unit_fmt, dropcheck=False):
    if not runs:
        return "not run"
    m = med(runs, field)
    if m is None:
        return "failed: " + runs[0].get("error", "?")[:60].replace("|", "/")
    s = "%s [%s–%s]" % (unit_fmt(m[0]), unit_fmt(m[1]), unit_fmt(m[2]))
    if dropcheck:
        drops = [r for r in runs if "error" not in r and (r["dropped"] or r.get("bad"))]
        if drops:
            s = "**DROPS** %d/%d delivered; %s" % (drops[0]["count"], drops[0]["expected"], s)
    return s


def ratio(a_runs, b_runs, field, invert=False):
    a, b = med(a_runs or [], field), med(b_runs or [], field)
    if not a or not b or not b[0] or not a[0]:
        return "–"
    r = (b[0] / a[0]) if invert else (a[0] / b[0])
    return "%.2f×" % r


SIZE_NAMES = {16: "16 B", 1024: "1 KiB", 65536: "64 KiB", 256 << 20: "256 MiB"}
TARGETS_TP = {16: "≥ 1.2× zmq", 1024: "≥ 3× zmq", 65536: "≥ 0.8× TCP", 256 << 20: "≥ 0.9× TCP"}


def report(b, args):
    R = {tuple(json.loads(k)) if isinstance(k, str) else k: v for k, v in b.results.items()}
    out = []
    counts = "quick (counts ÷ 10)" if args.quick else "full"
    meta = R.get(("meta",), [{}])[0]
    out.append("Run: %s, %s run(s) per figure, %s; %s; %s CPUs; load average (1, 5, 15 min) "
               "before %s, after %s."
               % (meta.get("time"), meta.get("runs"), counts, meta.get("platform"),
                  meta.get("cpus"), meta.get("load_before"), meta.get("load_after")))
    out.append("")
    out.append("Figures: median [min–max] over the runs. Ratios are libyoton ÷ contender "
               "(above 1 = libyoton better for rates; for round trips the ratio is "
               "libyoton's time ÷ the contender's, so below 1 = libyoton better).")
    out.append("")
    out.append("### Pub→sub throughput (messages/s counted at the receiver)")
    out.append("")
    out.append("| size × count | libyoton | raw TCP | libzmq | Python ref | yt/TCP | yt/zmq "
               "| yt/py | target |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    div = 10 if args.quick else 1
    for size, count in ((16, 5_000_000), (1024, 1_000_000), (65536, 20_000), (256 << 20, 1)):
        row = ["%s × %s" % (SIZE_NAMES[size], "{:,}".format(max(1, count // div)))]
        runs = {c: R.get(("tp", c, size)) for c in ("yoton", "tcp", "zmq", "python")}
        f = (lambda x: fmt_rate(x) + "/s") if size < (1 << 20) else (lambda x: "%.0f MB/s" % x)
        field = "msgs_s" if size < (1 << 20) else "mb_s"
        for c in ("yoton", "tcp", "zmq", "python"):
            row.append(cell(runs[c], field, f, dropcheck=True))
        for c in ("tcp", "zmq", "python"):
            row.append(ratio(runs["yoton"], runs[c], field))
        row.append(TARGETS_TP[size])
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    out.append("Python reference counts: 16 B and 1 KiB × %s, 64 KiB × %s, no 256 MiB run "
               "(its rate does not depend on the count; its queues are sized above the count)."
               % ("{:,}".format(20_000 // div), "{:,}".format(2_000 // div)))
    out.append("")
    out.append("### Round trips of a 16 B message (µs; median and p99 over %s round trips, "
               "Python %s)" % ("{:,}".format(20_000 // div), "{:,}".format(100 // (4 if args.quick else 1))))
    out.append("")
    out.append("| round trip | pinned | libyoton | raw TCP | libzmq REQ/REP | Python ref | yt/TCP "
               "| yt/zmq | target |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for kind, label, target in (("pubsub", "pub/sub ping-pong", "≤ 2× TCP and < zmq"),
                                ("reqrep", "req/rep (yoton: 2 round trips by protocol)",
                                 "≤ 4× TCP")):
        for pin in (True, False):
            for field in ("median_us", "p99_us"):
                y = R.get(("rt", "yoton", kind, pin))
                t = R.get(("rt", "tcp", "pubsub", pin))
                z = R.get(("rt", "zmq", "reqrep", pin))
                p = R.get(("rt", "python", kind, pin))
                f = lambda x: "%.1f" % x
                row = ["%s, %s" % (label, field.split("_")[0]),
                       "taskset -c 0" if pin else "no",
                       cell(y, field, f), cell(t, field, f), cell(z, field, f), cell(p, field, f),
                       ratio(y, t, field), ratio(y, z, field),
                       target if field == "median_us" else ""]
                out.append("| " + " | ".join(row) + " |")
    out.append("")
    ipc_tp = {size: R.get(("tp", "yoton-ipc", size)) for size in SIZE_NAMES}
    ipc_rt = {(k, p): R.get(("rt", "yoton-ipc", k, p)) for k in ("pubsub", "reqrep")
              for p in (True, False)}
    if any(ipc_tp.values()) or any(ipc_rt.values()):
        out.append("### libyoton over Unix sockets (ipc://) next to TCP")
        out.append("")
        out.append("| test | libyoton ipc | libyoton TCP | ipc/TCP |")
        out.append("|---|---|---|---|")
        for size, count in ((16, 5_000_000), (1024, 1_000_000), (65536, 20_000),
                            (256 << 20, 1)):
            if not ipc_tp[size]:
                continue
            f = (lambda x: fmt_rate(x) + "/s") if size < (1 << 20) else \
                (lambda x: "%.0f MB/s" % x)
            field = "msgs_s" if size < (1 << 20) else "mb_s"
            tcp = R.get(("tp", "yoton", size))
            out.append("| pub→sub %s × %s | %s | %s | %s |" % (
                SIZE_NAMES[size], "{:,}".format(max(1, count // div)),
                cell(ipc_tp[size], field, f, dropcheck=True), cell(tcp, field, f),
                ratio(ipc_tp[size], tcp, field)))
        for (kind, pin), runs in ipc_rt.items():
            if not runs:
                continue
            for field in ("median_us", "p99_us"):
                tcp = R.get(("rt", "yoton", kind, pin))
                f = lambda x: "%.1f µs" % x
                out.append("| %s round trip, %s%s | %s | %s | %s |" % (
                    "pub/sub" if kind == "pubsub" else "req/rep", field.split("_")[0],
                    ", taskset -c 0" if pin else "", cell(runs, field, f), cell(tcp, field, f),
                    ratio(runs, tcp, field)))
        out.append("")
    out.append("### Memory and CPU of the throughput runs (medians)")
    out.append("")
    out.append("| test | contender | peak RSS pub / sub | CPU s per M msgs pub / sub | "
               "sender retries (queue full) |")
    out.append("|---|---|---|---|---|")
    for size in (16, 1024, 65536, 256 << 20):
        for c in ("yoton", "tcp", "zmq", "python"):
            runs = R.get(("tp", c, size))
            if not runs or med(runs, "rss_pub_kb") is None:
                continue
            rp, rs = med(runs, "rss_pub_kb")[0], med(runs, "rss_sub_kb")[0]
            cp, cs = med(runs, "cpu_pub_per_M")[0], med(runs, "cpu_sub_per_M")[0]
            rt = med(runs, "retries")[0]
            cpu = ("%.2f / %.2f" % (cp, cs)) if size < (1 << 20) else \
                ("%.2f / %.2f s for the message" % (cp / 1e6, cs / 1e6))
            out.append("| %s | %s | %.1f / %.1f MiB | %s | %d |"
                       % (SIZE_NAMES[size], c, rp / 1024, rs / 1024, cpu, rt))
    out.append("")
    out.append("### Idle connections and a broker (libyoton)")
    out.append("")
    idle = R.get(("idle",))
    if idle:
        out.append("- RSS per idle connection, 100 connections (target ≤ 256 KiB): hosting side "
                   "%s KiB, connecting side %s KiB; threads per side: %s / %s."
                   % (cell(idle, "host_kb", lambda x: "%.0f" % x),
                      cell(idle, "client_kb", lambda x: "%.0f" % x),
                      cell(idle, "host_threads", lambda x: "%.0f" % x),
                      cell(idle, "client_threads", lambda x: "%.0f" % x)))
    br = R.get(("broker",))
    if br:
        ok = [r for r in br if "error" not in r]
        deliv = "; ".join("run %d: %d of %d delivered%s" % (
            i + 1, r["delivered"], r["expected"],
            (" (%d subscribers short, the worst got %d)" % (r["short_subs"], r["min_per_sub"]))
            if r["short_subs"] else "") for i, r in enumerate(ok))
        out.append("- Broker relaying 16 B × %s messages from one publisher to 100 subscribers "
                   "(three processes: publisher, broker context, 100 subscriber contexts): "
                   "%s deliveries/s (%s messages/s per subscriber), %s; broker peak RSS %s MiB, "
                   "broker CPU %s s per M deliveries, subscribers' process peak RSS %s MiB."
                   % ("{:,}".format(20_000 // div),
                      cell(br, "deliveries_s", fmt_rate), cell(br, "msgs_s", fmt_rate), deliv,
                      cell(br, "broker_rss_kb", lambda x: "%.1f" % (x / 1024)),
                      cell(br, "broker_cpu_per_M", lambda x: "%.2f" % x),
                      cell(br, "subs_rss_kb", lambda x: "%.1f" % (x / 1024))))
    return "\n".join(out) + "\n"


def plot(b, outdir):
    R = b.results
    names = {"yoton": "libyoton", "tcp": "raw TCP", "zmq": "libzmq", "python": "Python reference"}
    series = []
    for c in ("yoton", "tcp", "zmq", "python"):
        pts = []
        for size in (16, 1024, 65536, 256 << 20):
            runs = R.get(("tp", c, size))
            m = med(runs or [], "mb_s")
            if m:
                pts.append((size, m[0]))
        if pts:
            path = os.path.join(outdir, "tp-%s.dat" % c)
            with open(path, "w") as f:
                for s, v in pts:
                    f.write("%d %g\n" % (s, v))
            series.append((path, names[c]))
    if not series or not shutil.which("gnuplot"):
        return None
    png = os.path.join(outdir, "throughput.png")
    script = ["set terminal png size 800,500", "set output '%s'" % png,
              "set logscale xy", "set xlabel 'message size (bytes)'",
              "set ylabel 'payload throughput (MB/s, at the receiver)'",
              "set title 'pub→sub throughput on 127.0.0.1 (median of runs)'",
              "set key right bottom box opaque", "set grid",
              "set xtics ('16 B' 16, '1 KiB' 1024, '64 KiB' 65536, '256 MiB' 268435456)",
              "plot " + ", ".join("'%s' with linespoints lw 2 title '%s'" % s for s in series)]
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=False)
    return png if os.path.exists(png) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="directory holding yt_bench etc.")
    ap.add_argument("--pyref", default="", help="PYTHONPATH of the Python reference")
    ap.add_argument("--quick", action="store_true", help="counts divided by 10")
    ap.add_argument("--runs", type=int, default=0, help="runs per figure (3; quick: 2)")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench-results"))
    ap.add_argument("--docs", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--only", default="", help="throughput,latency,idle,broker")
    ap.add_argument("--ipc", action="store_true",
                    help="also run libyoton throughput and round trips over Unix sockets "
                         "(rows 'libyoton ipc')")
    ap.add_argument("--contenders", default="",
                    help="run only these (comma-separated: yoton,yoton-ipc,tcp,zmq,python)")
    ap.add_argument("--timeout", type=float, default=120.0, help="per process, seconds")
    ap.add_argument("--from-json", default="", help="report from a saved results.json only")
    args = ap.parse_args()
    if not args.runs:
        args.runs = 2 if args.quick else 3
    args.load_before = " ".join("%.2f" % x for x in os.getloadavg())
    os.makedirs(args.out, exist_ok=True)
    b = Bench(args)
    if args.from_json:
        # Report again from a saved run (no measuring): results.json of an earlier run.
        with open(args.from_json) as f:
            b.results = {tuple(json.loads(k)): v for k, v in json.load(f).items()}
        meta = b.results.get(("meta",), [{}])[0]
        args.quick = meta.get("quick", args.quick)
    else:
        b.run()
        b.results[("meta",)] = [{
            "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": args.runs,
            "quick": args.quick, "platform": platform.platform(), "cpus": os.cpu_count(),
            "load_before": args.load_before,
            "load_after": " ".join("%.2f" % x for x in os.getloadavg())}]
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({json.dumps(list(k)): v for k, v in b.results.items()}, f, indent=1)
    text = report(b, args)
    png = plot(b, args.out)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    print(text)
    if png:
        log("plot: %s" % png)
    if args.docs:
        doc = os.path.join(ROOT, "docs", "benchmarks.md")
        s = open(doc).read()
        a, z = "<!-- BEGIN RESULTS -->", "<!-- END RESULTS -->"
        i, j = s.index(a) + len(a), s.index(z)
        img = "\n![pub→sub throughput against message size](benchmarks-throughput.png)\n" \
            if png else ""
        s = s[:i] + "\n" + text + img + "\n" + s[j:]
        open(doc, "w").write(s)
        if png:
            shutil.copy(png, os.path.join(ROOT, "docs", "benchmarks-throughput.png"))
        log("updated %s" % doc)


if __name__ == "__main__":
    main()
