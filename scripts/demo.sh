#!/usr/bin/env bash
# The whole story on data this machine has, nothing downloaded:
#   1. pretrain a small VGG (vgg_cifar) on Fashion-MNIST with `tlkit train`;
#   2. make an image folder from OpenCV's handwritten digits: a few training images per digit and a
#      held-out test set;
#   3. train the same architecture from scratch on those few digits (`tlkit train --reinit`);
#   4. transfer the Fashion-MNIST backbone to the digits with `tlkit finetune` (stage 1: head on
#      cached features; stage 2: fine-tuning with per-layer lrs, EMA, snapshot ensemble);
#   5. print one table: scratch vs feature extraction vs fine-tuning vs EMA vs ensemble.
# Usage: bash scripts/demo.sh [out-dir]      (about 3 minutes on 2 cores once built)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out="${1:-runs/demo}"
PY=/usr/bin/python3
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target tlkit_cli -j "$(nproc)"
tlkit=build/tlkit
mkdir -p "$out"
seed=1

echo "== 1. pretrain vgg_cifar on Fashion-MNIST"
$PY scripts/export_vgg16.py --arch vgg_cifar --num-classes 10 --resize 32 --random-init --out "$out/vgg_cifar_random.pt"
if [ ! -f "$out/pretrain/model.pt" ]; then
  $tlkit train --model "$out/vgg_cifar_random.pt" --data fashion-mnist:/usr/share/datasets/fashion-mnist \
    --out "$out/pretrain" --limit 20000 --epochs 2 --batch-size 128 --optimizer adam:lr=2e-3 --schedule cosine \
    --no-snapshots --ema-decay 0 --no-augment --seed $seed --no-progress
fi

echo "== 2. a small digits folder from OpenCV's digits.png"
$PY scripts/make_digits_folder.py --out "$out/digits" --train-per-class 10 --val-per-class 10 --test-per-class 200 --seed $seed

echo "== 3. from scratch on the small digits set"
# No horizontal flips for digits (a flipped 2 is not a 2); the same augmentation for both runs.
$tlkit train --model "$out/vgg_cifar_random.pt" --reinit --data "$out/digits" --out "$out/scratch" \
  --epochs 30 --batch-size 20 --optimizer adam:lr=1e-3 --schedule cosine --patience 0 --ema-decay 0.9 \
  --flip 0 --seed $seed --no-progress

echo "== 4. transfer: feature extraction, then fine-tuning"
# Digits are unlike clothes, so only the two lower conv blocks are kept as the frozen feature
# extractor: the head is the third block and the classifier (--head-from features.14), trained on
# the cached 64x8x8 block-2 features; stage 2 then fine-tunes every layer, lower ones at smaller lrs.
$tlkit finetune --model "$out/pretrain/model.pt" --data "$out/digits" --out "$out/finetune" \
  --head-from features.14 --head-epochs 200 --head-batch-size 10 --head-optimizer adam:lr=3e-3 \
  --epochs 30 --batch-size 20 --optimizer adam:lr=1e-3 --schedule restarts:T_0=10 \
  --unfreeze-from features.0 --lr-decay 0.5 --patience 0 --ema-decay 0.9 --flip 0 --seed $seed --no-progress

echo "== 5. results"
$PY scripts/demo_table.py "$out/scratch" "$out/finetune" --out "$out/table.md"
