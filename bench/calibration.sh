#!/usr/bin/env bash
# Temperature scaling (--calibrate temperature) on a real small task: a small VGG (vgg_cifar,
# random init) trained by `tlkit train` on Fashion-MNIST subsets, once short (under-fitted) and
# once long on fewer images (over-fitted). T is fitted on the val split (20% of train, limited
# like the other splits); NLL and ECE (15 bins) before / after on val and on the test split are in
# each run's results.md and summary.json ("calibration"). Results: bench/results/calibration.md.
# Usage: bash bench/calibration.sh [OUT]   (OUT defaults to runs/calibration; about 5 minutes)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-runs/calibration}
tlkit=${TLKIT:-$here/build/tlkit}
data=fashion-mnist:/usr/share/datasets/fashion-mnist
mkdir -p "$out"
/usr/bin/python3 "$here/scripts/export_vgg16.py" --arch vgg_cifar --random-init --num-classes 10 \
  --out "$out/vgg_cifar.pt"
"$tlkit" train --model "$out/vgg_cifar.pt" --data "$data" --out "$out/short" --limit 3000 \
  --epochs 4 --optimizer adam --calibrate temperature --threads 1 --no-progress --seed 1
"$tlkit" train --model "$out/vgg_cifar.pt" --data "$data" --out "$out/long" --limit 1000 \
  --epochs 15 --optimizer adam --ema-decay 0 --calibrate temperature --threads 1 --no-progress \
  --seed 1
for run in short long; do
  echo "== $run"
  sed -n '/## Calibration/,/^Where this/p' "$out/$run/results.md"
done
