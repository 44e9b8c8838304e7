#!/usr/bin/env bash
# bf16 autocast on the CPU against fp32, for speed and accuracy, on this machine:
#   - training speed: `tlkit train` of vgg_cifar from scratch on the printed characters of the
#     README demo (62 classes), the same seed, data and budget at --precision fp32 and bf16,
#     alternating, RUNS times each: training images/s (median of the command's wall time);
#   - inference speed: `tlkit extract` over the same images, images/s (median);
#   - accuracy: `tlkit evaluate` of the demo's pretrained character model at fp32 and bf16 on the
#     same EVAL images (what bf16 arithmetic does to a trained network's predictions).
# Writes bench/results/precision_cpu.md.
# Usage: bash bench/precision_cpu.sh [glyph-folder] [pretrained-model]   (defaults
#        runs/demo/glyphs and runs/demo/pretrain/model.pt: scripts/demo.sh makes both;
#        RUNS=3 LIMIT=1000 EPOCHS=1 EVAL=3000 THREADS=2 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
glyphs="${1:-runs/demo/glyphs}"
runs="${RUNS:-3}"
limit="${LIMIT:-1000}"
pretrained="${2:-runs/demo/pretrain/model.pt}"
eval_images="${EVAL:-3000}"
epochs="${EPOCHS:-1}"
threads="${THREADS:-2}"
PY=/usr/bin/python3
tlkit=build/tlkit
out=bench/results/precision_cpu.md
[ -d "$glyphs" ] || { echo "no glyph folder at $glyphs (bash scripts/demo.sh makes it)" >&2; exit 1; }
[ -x "$tlkit" ] || { echo "build tlkit first (cmake --build build)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$PY scripts/export_vgg16.py --arch vgg_cifar --num-classes 62 --resize 32 --random-init \
  --out "$work/model.pt" >/dev/null

rows=""
for r in $(seq "$runs"); do
  for p in fp32 bf16; do
    run="$work/train_${p}_$r"
    t0=$(date +%s.%N)
    $tlkit train --model "$work/model.pt" --reinit --data "$glyphs" --out "$run" --val-split 0.1 \
      --limit "$limit" --epochs "$epochs" --batch-size 128 --optimizer adam:lr=2e-3 \
      --schedule cosine --no-snapshots --ema-decay 0 --flip 0 --min-crop-scale 0.7 --seed 1 \
      --threads "$threads" --precision "$p" --no-progress -q >/dev/null
    t1=$(date +%s.%N)
    t2=$(date +%s.%N)
    $tlkit extract --model "$work/model.pt" --data "$glyphs" --out "$work/features_$p" \
      --limit "$limit" --batch-size 128 --threads "$threads" --precision "$p" -q >/dev/null
    t3=$(date +%s.%N)
    rows="$rows$p $r $t0 $t1 - $t2 $t3"$'\n'
    echo "run $r $p: train $(echo "$t1 - $t0" | bc) s; extract $(echo "$t3 - $t2" | bc) s"
  done
done
evals=""
if [ -f "$pretrained" ]; then
  for p in fp32 bf16; do
    line=$($tlkit evaluate --model "$pretrained" --data "$glyphs" --split train --limit "$eval_images" \
      --threads "$threads" --precision "$p" -q | grep '^accuracy')
    evals="$evals$p $line"$'\n'
    echo "evaluate $p: $line"
  done
fi

$PY - "$out" "$limit" "$epochs" "$threads" "$runs" "$eval_images" <<PYEOF
import statistics, sys
out, limit, epochs, threads, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = [l.split() for l in """$rows""".strip().splitlines()]
cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip(); break
flags = open("/proc/cpuinfo").read()
bf16_isa = "yes" if "avx512_bf16" in flags or "amx_bf16" in flags else "no"
train_images = int(limit * 0.9) * epochs
def med(p, a, b):
    return statistics.median(float(r[b]) - float(r[a]) for r in rows if r[0] == p)
res = {}
for p in ("fp32", "bf16"):
    tr, ex = med(p, 2, 3), med(p, 5, 6)
    res[p] = (tr, ex)
evals = dict((l.split()[0], l.split()[2]) for l in """$evals""".strip().splitlines() if l.strip())
lines = ["# bf16 autocast on the CPU against fp32", "",
         "Measured by \`bash bench/precision_cpu.sh\` on %s (%s threads; AVX512-BF16/AMX: %s)." % (cpu, threads, bf16_isa),
         "Training: \`tlkit train\` of vgg_cifar (0.5 M parameters) from scratch on %d printed characters " % limit +
         "(62 classes, 32x32, 10%% held out), %d epoch(s), batch 128, Adam 2e-3, seed 1, the command's whole " % epochs +
         "wall time (start-up, validation and export included); inference: \`tlkit extract\` over the same %d images. " % limit +
         "Median of %s runs, fp32 and bf16 alternating. Accuracy: \`tlkit evaluate\` of the README demo's " % runs +
         "pretrained character model on %d of its training images at each precision." % int(sys.argv[6]), "",
         "| | fp32 | bf16 | bf16 / fp32 |", "|---|---:|---:|---:|"]
f, b = res["fp32"], res["bf16"]
lines.append("| train: seconds (median) | %.1f | %.1f | %.2fx the time |" % (f[0], b[0], b[0] / f[0]))
lines.append("| train: images/s | %.0f | %.0f | %.2f |" % (train_images / f[0], train_images / b[0], f[0] / b[0]))
if evals:
    lines.append("| accuracy of the pretrained model | %s | %s | |" % (evals.get("fp32", "-"), evals.get("bf16", "-")))
lines.append("| extract: seconds (median) | %.2f | %.2f | %.2fx the time |" % (f[1], b[1], b[1] / f[1]))
lines.append("| extract: images/s | %.0f | %.0f | %.2f |" % (limit / f[1], limit / b[1], f[1] / b[1]))
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
