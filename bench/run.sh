#!/usr/bin/env bash
# Builds and runs the benchmark suite (issue 7) and prints one table; see docs/benchmarks.md.
#
#   bench/run.sh [--quick] [--docs] [--runs N] [--only throughput,latency,idle,broker]
#
# Installs what it needs from Debian when missing (build tools, libzmq3-dev, gnuplot-nox,
# python3), fetches the Python reference into build/pyzo-ref with scripts/fetch-reference.sh,
# builds into build/bench (RelWithDebInfo) and runs bench/run.py. Loopback only; every process
# it starts has a time limit and is cleaned up by its PID. Not part of CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
yt_need_pkgs "${YT_BUILD_PKGS[@]}" libzmq3-dev gnuplot-nox python3 util-linux >&2
builddir="${YT_BENCH_BUILD:-build/bench}"
cmake -S . -B "$builddir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DYOTON_BUILD_BENCH=ON \
  -DYOTON_BUILD_TESTS=OFF -DYOTON_BUILD_EXAMPLES=OFF -DYOTON_BUILD_TOOLS=OFF >/dev/null
cmake --build "$builddir" -j2 >&2
pyref="$(scripts/fetch-reference.sh 2>/dev/null || true)"
[ -n "$pyref" ] || echo "warning: Python reference unavailable; its column stays empty" >&2
exec python3 bench/run.py --bin "$builddir/bench" --pyref "$pyref" \
  --out "${YT_BENCH_OUT:-build/bench-results}" "$@"
