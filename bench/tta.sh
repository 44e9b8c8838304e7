#!/usr/bin/env bash
# Test-time augmentation on the transfer suite's exported models: `tlkit evaluate --split test`
# with --tta none and --tta flip on the models tlkit finetune exported (layout without val) at 5
# and 30 images per class, seeds 1-3. (The suite's images are 32x32 with resize = crop, so
# five-crop and ten-crop would repeat one view; flip is the only view that differs.)
# Usage: bash bench/tta.sh SUITE_WORK [BUILD_DIR (build)] [TASKS (fashion-0to4-to-5to9,handwritten-to-letters)]
#   -> bench/results/tta.md
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(cd "$1" && pwd)"
build="${2:-$root/build}"
tasks="${3:-fashion-0to4-to-5to9,handwritten-to-letters}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for task in ${tasks//,/ }; do
  for n in 5 30; do
    for s in 1 2 3; do
      run="$work/$task/n$n/seed$s/tlkit-noval"
      for mode in none flip; do
        "$build/tlkit" evaluate --model "$run/model.pt" --data "$work/$task/n$n/seed$s/data/noval" \
          --split test --tta "$mode" --threads 1 -q --json "$out/$task-$n-$s-$mode.json" >/dev/null
      done
    done
  done
done
/usr/bin/python3 - "$out" "$root/bench/results/tta.md" "$tasks" <<'PY'
import json, statistics as st, sys
out, dest, tasks = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
lines = ["# Test-time augmentation (flip) on the transfer suite's exported models", "",
         "`bash bench/tta.sh SUITE_WORK`: `tlkit evaluate --split test --tta none|flip` on the models "
         "`tlkit finetune` exported with its defaults (layout without val), mean test accuracy over seeds 1-3.", "",
         "| task | images per class | no TTA | flip | difference | per seed (none / flip) |", "|---|---:|---:|---:|---:|---|"]
for task in tasks:
    for n in (5, 30):
        acc = {m: [100 * json.load(open(f"{out}/{task}-{n}-{s}-{m}.json"))["accuracy"] for s in (1, 2, 3)] for m in ("none", "flip")}
        a, b = st.mean(acc["none"]), st.mean(acc["flip"])
        lines.append(f"| {task} | {n} | {a:.1f}% | {b:.1f}% | {b - a:+.1f} | " +
                     ", ".join(f"{x:.1f} / {y:.1f}" for x, y in zip(acc["none"], acc["flip"])) + " |")
lines += ["", "Flip views are off the distribution these models were fitted on: the backbones were pretrained "
          "without flips, and the exported weights often come from a fit without them (the stage-1 head on "
          "frozen features, or stage 2 where the folds chose no augmentation); printed letters and "
          "Fashion-MNIST's shoes also have a handedness. So `--tta` stays off by default; it is for models "
          "trained with flips on images that have none."]
open(dest, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
