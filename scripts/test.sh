#!/usr/bin/env bash
# Builds libyoton with its tests and runs every test through CTest.
#   scripts/test.sh            normal build in build/
#   YT_SANITIZE=address|thread scripts/test.sh   sanitizer build in build-<name>/
#   YT_FULL=1 scripts/test.sh  the normal run, then the whole suite again under ASan+UBSan and
#       under TSan, valgrind memcheck on a subset, and every fuzz target for 60 s
#       (YT_FUZZ_SECONDS). Always in CI (CI set, as .ci/run runs): about 15 min beyond the
#       normal run on the 2-core machines. YT_FULL=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
yt_need_pkgs "${YT_BUILD_PKGS[@]}"

san="${YT_SANITIZE:-}"
dir="build${san:+-$san}"
cc_opt=()
werror=OFF
[ -n "${CI:-}" ] && werror=ON
# The Python reference for the interop suite (tests/interop). If it cannot be fetched, the
# interop test fails and says why; every other test still runs.
pyzo_dir="$(scripts/fetch-reference.sh)" || {
  echo "warning: could not fetch the Python reference; the interop test will fail" >&2
  pyzo_dir="$PWD/build/pyzo-ref/unavailable"
}
cmake -S . -B "$dir" -DYOTON_BUILD_TESTS=ON -DYOTON_WERROR="$werror" -DYOTON_SANITIZE="$san" -DYOTON_PYZO_DIR="$pyzo_dir" "${cc_opt[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
(cd "$dir" && ctest --output-on-failure -j"$(nproc)")

# The full run: only from the top-level call (YT_SANITIZE unset), when asked.
full="${YT_FULL:-${CI:+1}}"
if [ -n "$full" ] && [ "$full" != 0 ] && [ -z "$san" ]; then
  t0=$SECONDS
  yt_need_pkgs valgrind clang python3
  echo "== valgrind memcheck (subset)"
  valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
    --error-exitcode=1 build/tests/yt_tests package network wire pubsub reqrep state
  valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
    --error-exitcode=1 build/tests/reliability/yt_reliability churn
  echo "== valgrind done ($((SECONDS - t0)) s)"
  echo "== ASan+UBSan"
  YT_SANITIZE=address YT_FULL=0 bash scripts/test.sh
  echo "== ASan+UBSan done ($((SECONDS - t0)) s)"
  echo "== TSan"
  # Suppressions, each with its reason, in tests/reliability/tsan.supp.
  TSAN_OPTIONS="suppressions=$PWD/tests/reliability/tsan.supp halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
    YT_SANITIZE=thread YT_FULL=0 bash scripts/test.sh
  echo "== TSan done ($((SECONDS - t0)) s)"
  bash scripts/fuzz.sh "${YT_FUZZ_SECONDS:-60}"
  echo "== full run done: $((SECONDS - t0)) s beyond the normal run"
fi
