#!/usr/bin/env bash
# tlkit finetune on an imbalanced folder: --class-weights auto and --sampler balanced against
# neither. From the transfer suite's folders at 30 images per class (without val), half of the
# classes (every second in name order) keep a tenth (3 images); the test split stays the suite's
# balanced one. tlkit runs with its defaults plus the suite's preprocessing flags, one thread, the
# seed of the folder. Reports the exported model's balanced accuracy (= mean per-class recall on
# the balanced test split) and the recall of the reduced and of the full classes, mean over seeds.
# Usage: bash bench/class_imbalance.sh SUITE_WORK [BUILD_DIR (build)] [TASKS (chars-to-digits)]
#        [SETTINGS (none,weights,sampler)] [SEEDS (1,2,3)]
#   SUITE_WORK: the --work folder of bench/transfer_suite.sh after it ran the tasks at n = 30.
#   -> bench/results/class_imbalance.md (the runs stay in SUITE_WORK/imbalance/)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(cd "$1" && pwd)"
build="${2:-$root/build}"
tasks="${3:-chars-to-digits}"
settings="${4:-none,weights,sampler}"
seeds="${5:-1,2,3}"
tlkit="$build/tlkit"
py=/usr/bin/python3
flags="--input-size 32 --resize 32 --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5 --threads 1"

for task in ${tasks//,/ }; do
  for seed in ${seeds//,/ }; do
    src="$work/$task/n30/seed$seed/data/noval"
    [ -d "$src/train" ] || { echo "no $src/train: run bench/transfer_suite.sh --tasks $task --sizes 30 first" >&2; exit 1; }
    dir="$work/imbalance/$task/seed$seed"
    if [ ! -d "$dir/data/train" ]; then
      mkdir -p "$dir/data.tmp/train"
      ln -sfn "$src/test" "$dir/data.tmp/test"
      i=0
      for c in $(ls "$src/train" | sort); do
        mkdir -p "$dir/data.tmp/train/$c"
        if [ $((i % 2)) -eq 1 ]; then
          ls "$src/train/$c" | sort | head -3 | while read -r f; do cp "$src/train/$c/$f" "$dir/data.tmp/train/$c/"; done
        else
          cp "$src/train/$c/"* "$dir/data.tmp/train/$c/"
        fi
        i=$((i + 1))
      done
      mv "$dir/data.tmp" "$dir/data"
    fi
    for setting in ${settings//,/ }; do
      case $setting in
        none) extra="" ;;
        weights) extra="--class-weights auto" ;;
        sampler) extra="--sampler balanced" ;;
        *) echo "unknown setting $setting (none, weights, sampler)" >&2; exit 1 ;;
      esac
      out="$dir/$setting"
      [ -f "$out/summary.json" ] && [ "$out/summary.json" -nt "$tlkit" ] && continue
      rm -rf "$out"
      echo "$task seed $seed $setting" >&2
      # shellcheck disable=SC2086
      "$tlkit" finetune --model "$work/$task/model/model.pt" --data "$dir/data" --out "$out" \
        --seed "$seed" --no-progress -q $flags $extra >"$out.log" 2>&1
    done
  done
done

"$py" - "$work/imbalance" "$root/bench/results/class_imbalance.md" "$tasks" "$settings" "$seeds" <<'PY'
import json, os, statistics as st, sys
base, out, tasks, settings, seeds = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4].split(","), sys.argv[5].split(",")
flag = {"none": "neither", "weights": "`--class-weights auto`", "sampler": "`--sampler balanced`"}
lines = ["# tlkit finetune on an imbalanced folder: class weights, balanced sampler, neither", "",
         "`bash bench/class_imbalance.sh SUITE_WORK`: the transfer suite's folders at 30 images per class "
         "(without val), every second class (in name order) cut to 3 images (a tenth); the test split is "
         "the suite's balanced one. tlkit finetune with its defaults and the suite's preprocessing flags; "
         "the exported model's balanced accuracy (the mean recall per class), and the mean recall of the "
         "reduced and of the full classes; mean ± std over seeds " + ", ".join(seeds) + ".", "",
         "| task | setting | balanced accuracy | reduced classes' recall | full classes' recall | per seed |",
         "|---|---|---:|---:|---:|---|"]
for task in tasks:
    for s in settings:
        bal, low, high = [], [], []
        for seed in seeds:
            m = json.load(open(os.path.join(base, task, f"seed{seed}", s, "summary.json")))["exported_metrics"]
            rec = [row[i] / max(1, sum(row)) for i, row in enumerate(m["confusion"])]
            bal.append(100 * m["balanced_accuracy"]); low.append(100 * st.mean(rec[1::2])); high.append(100 * st.mean(rec[0::2]))
        sd = st.pstdev(bal) if len(bal) > 1 else 0.0
        lines.append(f"| {task} | {flag[s]} | {st.mean(bal):.1f} ± {sd:.1f}% | {st.mean(low):.1f}% | "
                     f"{st.mean(high):.1f}% | {', '.join(f'{b:.1f}' for b in bal)} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
