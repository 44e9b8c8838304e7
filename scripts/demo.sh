#!/usr/bin/env bash
# The whole story on data this machine has, nothing downloaded:
#   1. pretrain a small VGG (vgg_cifar) with `tlkit train` on printed characters: 62 classes
#      (0-9, A-Z, a-z) rendered from the 22 DejaVu fonts, 16,368 images;
#   2. for 1, 2, 5, 10 and 30 handwritten digits per class (OpenCV's digits.png) and 3 seeds:
#      train the same network from scratch (a generous fixed recipe: Adam, 600 optimizer steps),
#      and transfer the pretrained one with `tlkit finetune` and its DEFAULTS (only --flip 0:
#      a mirrored digit is not a digit);
#   3. print one table (mean and std over the seeds, 1,000 held-out test digits) and draw
#      accuracy against images per class.
# Usage: bash scripts/demo.sh [out-dir]      (about 15 minutes on 2 cores once built)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out="${1:-runs/demo}"
PY=/usr/bin/python3
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target tlkit_cli -j "$(nproc)"
tlkit=build/tlkit
mkdir -p "$out"
start=$(date +%s)

echo "== 1. pretrain vgg_cifar on printed characters"
if [ ! -f "$out/pretrain/model.pt" ]; then
  $PY scripts/make_glyph_folder.py --out "$out/glyphs" --variants 12
  $PY scripts/export_vgg16.py --arch vgg_cifar --num-classes 62 --resize 32 --random-init \
    --out "$out/vgg_cifar_glyphs_random.pt"
  $tlkit train --model "$out/vgg_cifar_glyphs_random.pt" --reinit --data "$out/glyphs" \
    --out "$out/pretrain" --val-split 0.1 --epochs 2 --batch-size 128 --optimizer adam:lr=2e-3 \
    --schedule cosine --no-snapshots --ema-decay 0 --flip 0 --min-crop-scale 0.7 --seed 1 \
    --no-progress -q
fi
$PY scripts/export_vgg16.py --arch vgg_cifar --num-classes 10 --resize 32 --random-init \
  --out "$out/vgg_cifar_random.pt" >/dev/null

echo "== 2. scratch vs transfer on handwritten digits"
# One (size, seed) pair per job, as many jobs at once as there are cores, each on one thread:
# these networks and batches are small, so two single-threaded runs side by side do about twice
# the work of one run on two threads.
jobs="${TLKIT_DEMO_JOBS:-$(nproc)}"
one_pair() {
  local n=$1 seed=$2 run="$out/n$1/seed$2"
  $PY scripts/make_digits_folder.py --out "$run/digits" --train-per-class "$n" \
    --val-per-class "$n" --test-per-class 100 --seed "$seed" >/dev/null
  # From scratch: Adam 1e-3, cosine, 600 optimizer steps, EMA; no early stopping; validated about
  # every 50 steps (an epoch is one step at 1 image per class).
  local images=$((10 * n)) batch steps epochs
  batch=$((images < 10 ? images : 10))
  steps=$(( (images + batch - 1) / batch ))
  epochs=$(( (600 + steps - 1) / steps ))
  $tlkit train --model "$out/vgg_cifar_random.pt" --reinit --data "$run/digits" \
    --out "$run/scratch" --epochs "$epochs" --batch-size "$batch" --optimizer adam:lr=1e-3 \
    --schedule cosine --patience 0 --ema-decay 0.99 --val-every $(( (50 + steps - 1) / steps )) \
    --flip 0 --seed "$seed" --threads 1 \
    --no-progress -q >"$run/scratch.log" 2>&1
  # Transfer: tlkit finetune with its defaults.
  $tlkit finetune --model "$out/pretrain/model.pt" --data "$run/digits" --out "$run/finetune" \
    --flip 0 --seed "$seed" --threads 1 --no-progress -q >"$run/finetune.log" 2>&1
  echo "   $n per class, seed $seed done ($(( $(date +%s) - start )) s)"
}
running=0
# The largest sizes and the 600-epoch scratch runs at 1 per class first, so the jobs end together.
for n in 30 1 10 5 2; do
  for seed in 1 2 3; do
    mkdir -p "$out/n$n/seed$seed"
    one_pair "$n" "$seed" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
      wait -n || { echo "a run failed: see $out/n*/seed*/{scratch,finetune}.log" >&2; exit 1; }
      running=$((running - 1))
    fi
  done
done
while [ "$running" -gt 0 ]; do
  wait -n || { echo "a run failed: see $out/n*/seed*/{scratch,finetune}.log" >&2; exit 1; }
  running=$((running - 1))
done

echo "== 3. results"
$PY scripts/demo_table.py "$out" --sizes 1,2,5,10,30 --seeds 1,2,3 --out "$out/table.md" \
  --plot "$out/accuracy_vs_images.png"
echo "demo took $(( $(date +%s) - start )) s"
