#!/usr/bin/env bash
# The bench harness's own cost: one `tlkit bench` run against the same training run by
# `tlkit train` (same model file and weights, data subset, split, batch size, optimizer, schedule
# and epochs; no augmentation, EMA, early stopping or snapshots), measured side by side, alternating,
# REPEATS times; the median wall-clock ratio is the overhead. The bench also evaluates the test
# split after every epoch (off its training clock); its training time alone is reported too.
# Writes bench/results/bench_overhead.md.
# Usage: bash bench/bench_overhead.sh [repeats]
set -euo pipefail
cd "$(dirname "$0")/.."
repeats="${1:-3}"
tlkit=build/tlkit
PY=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
data=fashion-mnist:/usr/share/datasets/fashion-mnist
common="--data $data --limit 4000 --val-split 0.04 --batch-size 128 --epochs 3 --threads 2"
$PY scripts/export_vgg16.py --arch vgg_cifar --num-classes 10 --random-init --input-size 28 \
  --out "$work/model.pt" >/dev/null
now() { date +%s.%N; }
train_times=() bench_times=() bench_train=()
for r in $(seq "$repeats"); do
  t0=$(now)
  $tlkit train --model "$work/model.pt" $common --optimizer momentum:lr=0.01 --schedule cosine \
    --no-augment --ema-decay 0 --patience 0 --no-snapshots --no-progress -q \
    --out "$work/train$r" >/dev/null
  t1=$(now)
  $tlkit bench --model "$work/model.pt" --keep-weights $common --optimizers momentum \
    --schedules cosine --lr momentum=0.01 --seeds 1 -q --out "$work/bench$r" >/dev/null
  t2=$(now)
  train_times+=("$($PY -c "print($t1 - $t0)")")
  bench_times+=("$($PY -c "print($t2 - $t1)")")
  bench_train+=("$($PY -c "import json; r=json.load(open('$work/bench$r/results.json'))['runs'][0]; \
print(r['train_seconds'], r['eval_seconds'], r['wall_seconds'])")")
done
$PY - "$repeats" "${train_times[@]}" "${bench_times[@]}" "${bench_train[@]}" <<'PYEOF' \
  > bench/results/bench_overhead.md
import statistics, sys, platform
n = int(sys.argv[1]); a = sys.argv[2:]
train = [float(x) for x in a[:n]]; bench = [float(x) for x in a[n:2 * n]]
parts = [[float(v) for v in x.split()] for x in a[2 * n:]]
ratios = [b / t for b, t in zip(bench, train)]
print("# Bench harness overhead\n")
print("`bash bench/bench_overhead.sh %d`: the export script's vgg_cifar (random weights, 28x28 input)"
      " on 4000 Fashion-MNIST training images, 3 epochs, momentum lr 0.01 + cosine, batch 128, "
      "2 threads; `tlkit train` and `tlkit bench` alternating, %d times each.\n" % (n, n))
print("| repeat | tlkit train (s) | tlkit bench (s) | ratio | bench: training (s) | bench: evaluation (s) |")
print("|---|---|---|---|---|---|")
for i in range(n):
    print("| %d | %.1f | %.1f | %.3f | %.1f | %.1f |" % (i + 1, train[i], bench[i], ratios[i], parts[i][0], parts[i][1]))
print("\n**Median ratio bench / train: %.3f** (whole processes, wall clock)." % statistics.median(ratios))
print("The bench evaluates validation and test after every epoch (train: validation each epoch, "
      "test once at the end) and holds the split in memory instead of decoding it per batch.")
PYEOF
cat bench/results/bench_overhead.md
