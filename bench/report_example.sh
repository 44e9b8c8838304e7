#!/usr/bin/env bash
# The example report page in bench/results/pictures/report.png: a small VGG (vgg_cifar, random
# init) trained by `tlkit train` on 30 handwritten digits per class (OpenCV's digits.png; 10 per
# class for val, 30 for test) with --calibrate temperature, its RUN/report.html rendered by
# scripts/render_report.sh (Debian's headless Chromium, 1200 x 3600 pixels).
# Usage: bash bench/report_example.sh [OUT]   (OUT defaults to runs/report_example; about 1 minute)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-runs/report_example}
tlkit=${TLKIT:-$here/build/tlkit}
mkdir -p "$out"
/usr/bin/python3 "$here/scripts/make_digits_folder.py" --out "$out/digits" --train-per-class 30 \
  --val-per-class 10 --test-per-class 30 --seed 1 >/dev/null
/usr/bin/python3 "$here/scripts/export_vgg16.py" --arch vgg_cifar --num-classes 10 --resize 32 \
  --random-init --out "$out/vgg_cifar_random.pt"
"$tlkit" train --model "$out/vgg_cifar_random.pt" --reinit --data "$out/digits" \
  --out "$out/digits_train" --epochs 15 --batch-size 30 --optimizer adam:lr=1e-3 \
  --schedule cosine --flip 0 --seed 1 --threads 1 --calibrate temperature --no-progress -q
REPORT_HEIGHT=3600 bash "$here/scripts/render_report.sh" "$out/digits_train" "$out/report.png"
