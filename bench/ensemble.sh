#!/usr/bin/env bash
# Ensembles across runs on the transfer suite: the models tlkit finetune exported for seeds 1-3
# (each seed draws other training images; the test split is the task's, the same for every seed),
# evaluated alone and as one ensemble (`tlkit evaluate --ensemble RUN1 RUN2 RUN3`: the average of
# their softmax) on the test split. Layout without val, 5 and 30 images per class. And the case
# of one folder: at 5 per class, seed 1's folder trained with --seed 1, 2 and 3 by this build
# (tlkit's defaults and the suite's preprocessing flags; the runs stay in SUITE_WORK/ensemble/),
# the three runs' ensemble against its members.
# Usage: bash bench/ensemble.sh SUITE_WORK [BUILD_DIR (build)]
#        [TASKS (fashion-0to4-to-5to9,handwritten-to-letters)]
#   SUITE_WORK: the --work folder of bench/transfer_suite.sh after it ran the tasks at n = 5, 30.
#   -> bench/results/ensemble.md
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(cd "$1" && pwd)"
build="${2:-$root/build}"
tasks="${3:-fashion-0to4-to-5to9,handwritten-to-letters}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for task in ${tasks//,/ }; do
  for n in 5 30; do
    runs=()
    for s in 1 2 3; do
      run="$work/$task/n$n/seed$s/tlkit-noval"
      [ -f "$run/model.pt" ] || { echo "no $run/model.pt: run bench/transfer_suite.sh first" >&2; exit 1; }
      runs+=("$run")
      "$build/tlkit" evaluate --model "$run/model.pt" --data "$work/$task/n$n/seed1/data/noval" \
        --split test --threads 1 -q --json "$out/$task-$n-$s.json" >/dev/null
    done
    "$build/tlkit" evaluate --ensemble "${runs[@]}" --data "$work/$task/n$n/seed1/data/noval" \
      --split test --threads 1 -q --json "$out/$task-$n-ensemble.json" >/dev/null
  done
  # One folder, three seeds.
  data="$work/$task/n5/seed1/data/noval"
  runs=()
  for s in 1 2 3; do
    run="$work/ensemble/$task/n5/folder1-seed$s"
    if [ ! -f "$run/summary.json" ]; then
      mkdir -p "$(dirname "$run")"
      "$build/tlkit" finetune --model "$work/$task/model/model.pt" --data "$data" --out "$run" \
        --seed "$s" --no-progress -q --input-size 32 --resize 32 --mean 0.5,0.5,0.5 \
        --std 0.5,0.5,0.5 --threads 1 > "$run.log" 2>&1
    fi
    runs+=("$run")
  done
  for s in 1 2 3; do
    "$build/tlkit" evaluate --model "${runs[$((s - 1))]}/model.pt" --data "$data" --split test \
      --threads 1 -q --json "$out/$task-same-$s.json" >/dev/null
  done
  "$build/tlkit" evaluate --ensemble "${runs[@]}" --data "$data" --split test --threads 1 -q \
    --json "$out/$task-same-ensemble.json" >/dev/null
done
/usr/bin/python3 - "$out" "$root/bench/results/ensemble.md" "$tasks" <<'PY'
import json, statistics as st, sys
out, dest, tasks = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
L = ["# Ensembles across runs on the transfer suite", "",
     "`bash bench/ensemble.sh SUITE_WORK`: the models `tlkit finetune` exported for seeds 1-3 "
     "(layout without val; each seed trained on other images of the task) on the task's test split, "
     "alone and as `tlkit evaluate --ensemble RUN1 RUN2 RUN3` (the mean of their softmax)."]
gains, rows, same = [], [], []
for task in tasks:
    for n in (5, 30):
        m = [json.load(open("%s/%s-%d-%d.json" % (out, task, n, s))) for s in (1, 2, 3)]
        e = json.load(open("%s/%s-%d-ensemble.json" % (out, task, n)))
        acc = [x["accuracy"] for x in m]
        gains.append(e["accuracy"] - st.mean(acc))
        rows.append((task, n, m, e))
for task in tasks:
    m = [json.load(open("%s/%s-same-%d.json" % (out, task, s))) for s in (1, 2, 3)]
    e = json.load(open("%s/%s-same-ensemble.json" % (out, task)))
    same.append((task, 5, m, e))
for title, table in (("Each seed its own images (the suite's seeds 1-3)", rows),
                     ("One folder (seed 1's images), tlkit seeds 1-3", same)):
    L += ["", "## " + title, "",
          "| task | images per class | members' accuracy (mean, best) | ensemble accuracy | members' NLL (mean) | ensemble NLL | members' ECE (mean) | ensemble ECE |",
          "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for task, n, m, e in table:
        acc = [x["accuracy"] for x in m]
        L.append("| %s | %d | %.1f%%, %.1f%% | **%.1f%%** | %.4f | %.4f | %.4f | %.4f |" % (
            task, n, 100 * st.mean(acc), 100 * max(acc), 100 * e["accuracy"],
            st.mean(x["nll"] for x in m), e["nll"], st.mean(x["ece"] for x in m), e["ece"]))
same_gains = [e["accuracy"] - st.mean(x["accuracy"] for x in m) for _, _, m, e in same]
L += ["", "Ensemble minus the members' mean accuracy: %s points (mean %+.1f) when each member "
      "drew its own images (together they trained on up to 3n per class: part of that gain is "
      "the extra images); %s points (mean %+.1f) for three runs on one folder." % (
          ", ".join("%+.1f" % (100 * g) for g in gains), 100 * st.mean(gains),
          ", ".join("%+.1f" % (100 * g) for g in same_gains), 100 * st.mean(same_gains))]
open(dest, "w").write("\n".join(L) + "\n")
print("\n".join(L))
PY
