#!/usr/bin/env bash
# Sourced by scripts/fuzz.sh and scripts/sanitize.sh: installs what they need (Debian packages,
# Clang) and configures build-san/ (Clang, -DTLKIT_FUZZ=ON: coverage + ASan + UBSan everywhere).
# Sets $root and $build and the sanitizer options.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
if ! command -v clang++ >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq --no-install-recommends clang
fi
build="$root/build-san"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DTLKIT_FUZZ=ON -DTLKIT_INSTALL=OFF -DTLKIT_BUILD_BENCH=OFF >/dev/null
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"  # LibTorch's own allocations live to exit
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
