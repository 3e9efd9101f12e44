#!/usr/bin/env bash
# Builds libyoton and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
yt_need_pkgs "${YT_BUILD_PKGS[@]}"
cmake -S . -B build-demo -DYOTON_BUILD_TESTS=OFF >/dev/null
cmake --build build-demo -j"$(nproc)" --target yt_demo
./build-demo/examples/yt_demo
