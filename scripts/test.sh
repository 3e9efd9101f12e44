#!/usr/bin/env bash
# Builds libyoton with its tests and runs every test through CTest.
#   scripts/test.sh            normal build in build/
#   YT_SANITIZE=address|thread scripts/test.sh   sanitizer build in build-<name>/
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
yt_need_pkgs "${YT_BUILD_PKGS[@]}"

san="${YT_SANITIZE:-}"
dir="build${san:+-$san}"
cc_opt=()
werror=OFF
[ -n "${CI:-}" ] && werror=ON
cmake -S . -B "$dir" -DYOTON_BUILD_TESTS=ON -DYOTON_WERROR="$werror" -DYOTON_SANITIZE="$san" "${cc_opt[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
cd "$dir"
ctest --output-on-failure -j"$(nproc)"
