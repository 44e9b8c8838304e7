#!/usr/bin/env bash
# The unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-san/, Clang, the same
# tree scripts/fuzz.sh builds). The CLI end-to-end suites are left out: they start the sanitized
# tool hundreds of times and belong to CI's plain build. Not part of CI (.ci/run).
# Usage: bash scripts/sanitize.sh [extra gtest filter, e.g. 'Npy.*']
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
if ! command -v clang++ >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq --no-install-recommends clang
fi
build="$root/build-san"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DTLKIT_FUZZ=ON -DTLKIT_INSTALL=OFF -DTLKIT_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target tlkit_tests tlkit_cli
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"  # LibTorch's own allocations live to exit
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
filter="${1:-*}-*Cli*.*:PipelineCli.*:RunFlow.*:Reliability.*:VGG16Finetune.*"
"$build/tests/tlkit_tests" --gtest_filter="$filter" --gtest_brief=1
