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
# Usage: bash scripts/demo.sh [out-dir]      (15 to 20 minutes on 2 cores once built)
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

# Every run is a job, as many at once as there are cores, each on one thread: these networks and
# batches are small, so two single-threaded runs side by side do about twice the work of one run
# on two threads. Pretraining runs beside the scratch runs (they do not need it); the transfer
# runs start once it is done. Longest jobs first, so the cores finish together.
jobs="${TLKIT_DEMO_JOBS:-$(nproc)}"
running=0
reap() {
  [ "$running" -gt 0 ] || { echo "pretraining did not finish: see $out/pretrain.log" >&2; exit 1; }
  wait -n || { echo "a run failed: see the logs in $out and $out/n*/seed*/" >&2; exit 1; }
  running=$((running - 1))
}
submit() {
  "$@" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then reap; fi
}
pretrain() {
  {
    $PY scripts/make_glyph_folder.py --out "$out/glyphs" --variants 12
    $PY scripts/export_vgg16.py --arch vgg_cifar --num-classes 62 --resize 32 --random-init \
      --out "$out/vgg_cifar_glyphs_random.pt"
    $tlkit train --model "$out/vgg_cifar_glyphs_random.pt" --reinit --data "$out/glyphs" \
      --out "$out/pretrain" --val-split 0.1 --epochs 2 --batch-size 128 \
      --optimizer adam:lr=2e-3 --schedule cosine --no-snapshots --ema-decay 0 --flip 0 \
      --min-crop-scale 0.7 --seed 1 --threads 1 --no-progress -q
  } >"$out/pretrain.log" 2>&1
  echo "   pretraining done ($(( $(date +%s) - start )) s)"
}
scratch() {
  local n=$1 seed=$2 run="$out/n$1/seed$2"
  mkdir -p "$run"
  $PY scripts/make_digits_folder.py --out "$run/digits" --train-per-class "$n" \
    --val-per-class "$n" --test-per-class 100 --seed "$seed" >/dev/null
  # From scratch: Adam 1e-3, cosine, 600 optimizer steps, EMA; no early stopping; validated
  # every 10 steps (an epoch is one step at 1 image per class).
  local images=$((10 * n)) batch steps epochs
  batch=$((images < 10 ? images : 10))
  steps=$(( (images + batch - 1) / batch ))
  epochs=$(( (600 + steps - 1) / steps ))
  $tlkit train --model "$out/vgg_cifar_random.pt" --reinit --data "$run/digits" \
    --out "$run/scratch" --epochs "$epochs" --batch-size "$batch" --optimizer adam:lr=1e-3 \
    --schedule cosine --patience 0 --ema-decay 0.99 --val-every $(( (10 + steps - 1) / steps )) \
    --flip 0 --seed "$seed" --threads 1 --no-progress -q >"$run/scratch.log" 2>&1
  echo "   $n per class, seed $seed: scratch done ($(( $(date +%s) - start )) s)"
}
transfer() {
  local n=$1 seed=$2 run="$out/n$1/seed$2"
  # Transfer: tlkit finetune with its defaults.
  $tlkit finetune --model "$out/pretrain/model.pt" --data "$run/digits" --out "$run/finetune" \
    --flip 0 --seed "$seed" --threads 1 --no-progress -q >"$run/finetune.log" 2>&1
  echo "   $n per class, seed $seed: transfer done ($(( $(date +%s) - start )) s)"
}

$PY scripts/export_vgg16.py --arch vgg_cifar --num-classes 10 --resize 32 --random-init \
  --out "$out/vgg_cifar_random.pt" >/dev/null
echo "== 1. pretrain vgg_cifar on printed characters, and train from scratch on digits"
[ -f "$out/pretrain/model.pt" ] || submit pretrain
for n in 1 2 30 10 5; do
  for seed in 1 2 3; do submit scratch "$n" "$seed"; done
done
echo "== 2. transfer the pretrained network to the digits"
while [ ! -f "$out/pretrain/model.pt" ]; do reap; done
for n in 30 2 10 1 5; do
  for seed in 1 2 3; do submit transfer "$n" "$seed"; done
done
while [ "$running" -gt 0 ]; do reap; done

echo "== 3. results"
$PY scripts/demo_table.py "$out" --sizes 1,2,5,10,30 --seeds 1,2,3 --out "$out/table.md" \
  --plot "$out/accuracy_vs_images.png"
echo "demo took $(( $(date +%s) - start )) s"
