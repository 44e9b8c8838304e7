#!/usr/bin/env bash
# The transfer suite tlkit finetune's defaults are judged on: six source -> target tasks built from
# data Debian ships (characters rendered from Debian's font packages, OpenCV's handwritten digits,
# Fashion-MNIST), each with its own small backbone pretrained in plain PyTorch and saved as
# TorchScript without tlkit metadata; each target at 1, 2, 5, 10 and 30 images per class, 3 seeds,
# two folder layouts (without / with a val folder), and three methods: tlkit finetune with its
# defaults (plus the models' preprocessing flags), the Python two-stage recipe, training from
# scratch. Details: bench/transfer_suite.py (docstring) and bench/README.md.
#
# The first three tasks (chars-to-digits, fashion-0to4-to-5to9, upper-to-lower) are the
# "choosing" half, used to choose tlkit's defaults; the last three (handwritten-to-letters,
# fashion-to-digits, digits-0to4-to-inverted-5to9) are "report only". Fixed rule: first three
# choose, last three report.
#
#   bash bench/transfer_suite.sh [--work DIR] [--tasks a,b] [--sizes 1,2,5] [--seeds 1,2,3] [--jobs N]
#
# Writes bench/results/transfer_suite.md (--report FILE to write elsewhere) and prints the summary.
# Runs are cached in the work folder (default runs/transfer_suite): an interrupted suite continues;
# a tlkit result is reused only for the same tlkit binary (sha256), Python results only for the
# same Python code. Run it under nice on a shared machine: nice -n 10 bash bench/transfer_suite.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
[ -x build/tlkit ] || { echo "build first: cmake --build build --target tlkit_cli" >&2; exit 1; }
$PY -c "import torch, PIL" 2>/dev/null || {
  echo "$PY needs torch and Pillow: apt-get install python3-torch python3-torchvision" >&2; exit 1; }
[ -f /usr/share/doc/opencv-doc/examples/data/digits.png ] || need=opencv-doc
ls /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz >/dev/null 2>&1 || \
  echo "warning: Fashion-MNIST not found in /usr/share/datasets/fashion-mnist (scripts/setup.sh)" >&2
# The font packages the glyph tasks draw from (bench/transfer_suite_data.py, FONT_GROUPS).
packages=$($PY -c "import sys; sys.path.insert(0, 'bench'); import transfer_suite_data as d; print(' '.join(d.FONT_PACKAGES))")
missing=()
for p in $packages ${need:-}; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y "${missing[@]}" >/dev/null || {
    $sudo apt-get update >/dev/null && $sudo apt-get install -y "${missing[@]}" >/dev/null; }
fi
exec $PY bench/transfer_suite.py run "$@"
