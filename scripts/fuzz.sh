#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang + ASan + UBSan in build-fuzz/ and runs each for
# a bounded time. Fails if any target finds a crash, a leak, a sanitizer report or a hang.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default 60 s, every target
# Seed corpora are generated from tests/vectors into build-fuzz/corpus/<target>/ (and kept there,
# so later runs start from what earlier runs found). Crash inputs land in
# build-fuzz/crashes/<target>/; turn each into a regression test in tests/reliability.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
yt_need_pkgs "${YT_BUILD_PKGS[@]}" clang python3

secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(stream handshake value address utf8)

dir=build-fuzz
CC=clang cmake -S . -B "$dir" -DYOTON_BUILD_FUZZ=ON -DYOTON_BUILD_TESTS=OFF \
  -DYOTON_BUILD_EXAMPLES=OFF -DYOTON_BUILD_TOOLS=OFF -DYOTON_SANITIZE=address \
  -DYOTON_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}")

python3 fuzz/make_corpus.py tests/vectors "$dir/corpus"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
for t in "${targets[@]}"; do
  mkdir -p "$dir/crashes/$t"
  echo "== fuzz_$t for ${secs}s"
  start=$SECONDS
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: a bounded-memory check.
  if ! "$dir/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
       -print_final_stats=1 -artifact_prefix="$dir/crashes/$t/" "$dir/corpus/$t" \
       >"$dir/fuzz_$t.log" 2>&1; then
    failed+=("$t")
    echo "FAILED: fuzz_$t (log: $dir/fuzz_$t.log, inputs: $dir/crashes/$t/)"
    grep -E "ERROR|SUMMARY|runtime error|==[0-9]+==" "$dir/fuzz_$t.log" | head -20 || true
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$dir/fuzz_$t.log" | tr '\n' ' ' || true
  echo "($((SECONDS - start)) s)"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${secs}s each without a finding"
