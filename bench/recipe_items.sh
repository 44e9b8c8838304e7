#!/usr/bin/env bash
# Training-recipe items in tlkit finetune against its defaults, on the transfer suite's folders
# (without val): batch mixing (--mixup 0.2, --cutmix 1.0), label smoothing (--label-smoothing 0.1),
# TrivialAugment (--augment trivial), RandAugment (--augment rand:2,9) and random erasing
# (--random-erasing 0.25). tlkit runs with its defaults plus the suite's preprocessing flags, one
# thread, the seed of the folder; the items apply to stage 2 (image-level fine-tuning) only.
# Reports the exported model's test accuracy, mean over seeds.
# Usage: bash bench/recipe_items.sh SUITE_WORK [BUILD_DIR (build)] [TASKS (chars-to-digits)]
#        [SETTINGS (none,mixup)] [SEEDS (1,2)] [SIZE (30)] [FIXED_FLAGS ("")]
#   SETTINGS: none, mixup, cutmix, both (mixup and cutmix), smoothing, trivial, rand, erasing.
#   FIXED_FLAGS: flags added to every run (e.g. "--no-cv": every run then trains the same length
#   and exports its last weights, so the comparison is of the training alone). Runs with them
#   go to folders named SETTING-FLAGS (mixup-no-cv, none-cv-folds_3_no-cv-augment).
#   SUITE_WORK: a --work folder of bench/transfer_suite.sh in which the tasks were prepared
#   (bench/transfer_suite.py prepare --task T --work SUITE_WORK, or a suite run).
#   -> prints the table and writes it to SUITE_WORK/mixup/table-n<SIZE><-FLAGS>.md
#      (bench/results/mixup.md and recipe_items.md quote it)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(cd "$1" && pwd)"
build="${2:-$root/build}"
tasks="${3:-chars-to-digits}"
settings="${4:-none,mixup}"
seeds="${5:-1,2}"
size="${6:-30}"
fixed="${7:-}"
# Runs with FIXED_FLAGS go to SETTING-<the flags>, e.g. mixup-no-cv.
suffix=""; [ -n "$fixed" ] && suffix="-$(echo $fixed | sed 's/--//g; s/ /_/g')"
tlkit="$build/tlkit"
py=/usr/bin/python3
flags="--input-size 32 --resize 32 --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5 --threads 1"

for task in ${tasks//,/ }; do
  [ -d "$work/$task/pool" ] || { echo "no $work/$task/pool: prepare the task first" >&2; exit 1; }
  for seed in ${seeds//,/ }; do
    dir="$work/mixup/$task/n$size/seed$seed"
    if [ ! -d "$dir/data/noval/train" ]; then
      # The suite's own folders of (task, size, seed): the same images as its runs.
      "$py" -c "import sys; sys.path.insert(0, '$root/bench'); import transfer_suite_data as d; \
d.make_folders('$work/$task/pool', '$dir/data', $size, $seed, salt='$task')"
    fi
    for setting in ${settings//,/ }; do
      case $setting in
        none) extra="" ;;
        mixup) extra="--mixup 0.2" ;;
        cutmix) extra="--cutmix 1.0" ;;
        both) extra="--mixup 0.2 --cutmix 1.0" ;;
        smoothing) extra="--label-smoothing 0.1" ;;
        trivial) extra="--augment trivial" ;;
        rand) extra="--augment rand:2,9" ;;
        erasing) extra="--random-erasing 0.25" ;;
        *) echo "unknown setting $setting (none, mixup, cutmix, both, smoothing, trivial, rand," \
             "erasing)" >&2; exit 1 ;;
      esac
      out="$dir/$setting$suffix"
      [ -f "$out/summary.json" ] && [ "$out/summary.json" -nt "$tlkit" ] && continue
      rm -rf "$out"
      echo "$task n$size seed $seed $setting $fixed" >&2
      start=$(date +%s)
      # shellcheck disable=SC2086
      "$tlkit" finetune --model "$work/$task/model/model.pt" --data "$dir/data/noval" --out "$out" \
        --seed "$seed" --no-progress -q $flags $fixed $extra >"$out.log" 2>&1
      echo $(( $(date +%s) - start )) >"$out.seconds"
    done
  done
done

"$py" - "$work/mixup" "$work/mixup/table-n$size$suffix.md" "$tasks" "$settings" "$seeds" "$size" "$suffix" <<'PY'
import json, os, statistics as st, sys
base, out, tasks, settings, seeds, size, suffix = sys.argv[1], sys.argv[2], sys.argv[3].split(","), \
    sys.argv[4].split(","), sys.argv[5].split(","), sys.argv[6], sys.argv[7]
flag = {"none": "neither", "mixup": "`--mixup 0.2`", "cutmix": "`--cutmix 1.0`",
        "both": "`--mixup 0.2 --cutmix 1.0`", "smoothing": "`--label-smoothing 0.1`",
        "trivial": "`--augment trivial`", "rand": "`--augment rand:2,9`",
        "erasing": "`--random-erasing 0.25`"}
lines = ["| task | setting | test accuracy (exported) | per seed | exported | stage 2 last weights | seconds per run |",
         "|---|---|---:|---|---|---:|---:|"]
for task in tasks:
    for s in settings:
        acc, kept, secs, last = [], [], [], []
        for seed in seeds:
            run = os.path.join(base, task, f"n{size}", f"seed{seed}", s + suffix)
            summary = json.load(open(os.path.join(run, "summary.json")))
            exported = [r for r in summary["results"] if r.get("exported")][0]
            acc.append(100 * exported["accuracy"]); kept.append(exported.get("name", "?"))
            last += [100 * r["accuracy"] for r in summary["results"] if r["name"] == "fine-tuning: last"]
            secs.append(float(open(run + ".seconds").read()))
        sd = st.pstdev(acc) if len(acc) > 1 else 0.0
        lines.append(f"| {task} (n = {size}) | {flag[s]} | {st.mean(acc):.1f} ± {sd:.1f}% | "
                     f"{', '.join(f'{a:.1f}' for a in acc)} | {', '.join(kept)} | "
                     f"{(f'{st.mean(last):.1f}%' if last else '-') + ((' (' + str(len(last)) + ' of ' + str(len(seeds)) + ' runs)') if 0 < len(last) < len(seeds) else '')} | "
                     f"{st.mean(secs):.0f} |")
table = "\n".join(lines) + "\n"
open(out, "w").write(table)
print(table)
PY
