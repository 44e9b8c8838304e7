#!/usr/bin/env bash
# The unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-san/, Clang, the same
# tree scripts/fuzz.sh builds). The CLI end-to-end suites are left out: they start the sanitized
# tool hundreds of times and belong to CI's plain build. Not part of CI (.ci/run).
# Usage: bash scripts/sanitize.sh [extra gtest filter, e.g. 'Npy.*']
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/san_build.sh"
cmake --build "$build" --target tlkit_tests tlkit_cli
filter="${1:-*}-*Cli*.*:PipelineCli.*:RunFlow.*:Reliability.*:VGG16Finetune.*:BadInputs.*"
"$build/tests/tlkit_tests" --gtest_filter="$filter" --gtest_brief=1
