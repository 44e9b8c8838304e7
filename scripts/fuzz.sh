#!/usr/bin/env bash
# Fuzzes tlkit's readers of user files (IDX, CIFAR-10, .npy, feature manifests / JSON) and its
# optimizer/schedule spec parsers with libFuzzer, under AddressSanitizer and UBSan.
#
# Usage: bash scripts/fuzz.sh [SECONDS_PER_TARGET (default 600)] [TARGET...]
#   targets: idx cifar10 npy manifest specs (default: all, two at a time)
#
# Builds build-san/ with Clang (-DTLKIT_FUZZ=ON: coverage + ASan + UBSan on every tlkit source),
# seeds each run from tests/fuzz/corpus/<target>/ and grows build-san/corpus/<target>/. A finding
# (crash, sanitizer report, an exception other than tlkit::Error, a hang over 10 s) is written to
# build-san/findings/<target>/ and makes the script exit non-zero. Not part of CI (.ci/run): it
# runs for SECONDS x targets / 2. The unit tests of the same build: scripts/sanitize.sh.
set -euo pipefail
seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(idx cifar10 npy manifest specs)

source "$(dirname "${BASH_SOURCE[0]}")/san_build.sh"
cmake --build "$build" --target $(printf 'fuzz_%s ' "${targets[@]}")

run() {
  local t="$1"
  # Each run reports its own findings: an earlier run's are kept aside, not counted again.
  if [ -n "$(ls -A "$build/findings/$t" 2>/dev/null)" ]; then
    mkdir -p "$build/findings/earlier"
    mv "$build/findings/$t" "$build/findings/earlier/$t.$(date +%s)"
  fi
  mkdir -p "$build/corpus/$t" "$build/findings/$t"
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 -detect_leaks=0 -artifact_prefix="$build/findings/$t/" \
    "$build/corpus/$t" "$root/tests/fuzz/corpus/$t" >"$build/fuzz_$t.log" 2>&1
}
status=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  pids=()
  for t in "${targets[@]:i:2}"; do run "$t" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || status=1; done
done
echo "target      seconds  executions  exec/s  corpus  findings"
for t in "${targets[@]}"; do
  log="$build/fuzz_$t.log"
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  corpus=$(ls "$build/corpus/$t" | wc -l)
  findings=$(ls "$build/findings/$t" | wc -l)
  printf '%-10s %8s %11s %7s %7s %9s\n' "$t" "$seconds" "$runs" "$speed" "$corpus" "$findings"
  [ "$findings" -eq 0 ] || status=1
done
exit $status
