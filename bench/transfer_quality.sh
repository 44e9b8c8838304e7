#!/usr/bin/env bash
# Learning quality of tlkit finetune's defaults against the usual Python two-stage recipe
# (scripts/python_two_stage.py: same pretrained backbone, images, preprocessing and seeds), and of
# tlkit's stage-1 head against a tuned linear probe (scripts/linear_probe.py) on the same cached
# features. Uses the folders and runs of the README demo (bash scripts/demo.sh runs/demo first).
# Writes bench/results/transfer_quality.md.
# Usage: bash bench/transfer_quality.sh [demo-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
demo="${1:-runs/demo}"
PY=/usr/bin/python3
tlkit=build/tlkit
out=bench/results/transfer_quality.md
[ -f "$demo/pretrain/model.pt" ] || { echo "run 'bash scripts/demo.sh $demo' first" >&2; exit 1; }
rows=""
for n in 5 30; do
  for seed in 1 2 3; do
    run="$demo/n$n/seed$seed"
    python=$($PY scripts/python_two_stage.py --model "$demo/pretrain/model.pt" --data "$run/digits" \
      --seed "$seed" | $PY -c "import json,sys; print(json.load(sys.stdin)['test_accuracy'])")
    tl=$($PY -c "import json; r=json.load(open('$run/finetune/summary.json'))['results']; \
print([x['accuracy'] for x in r if x.get('exported')][0])")
    # Stage-1 head on the classification layer vs the linear probe, on the same cached features.
    $tlkit finetune --model "$demo/pretrain/model.pt" --data "$run/digits" --out "$run/head6" \
      --head-from classifier.6 --epochs 1 --flip 0 --seed "$seed" --no-progress -q >/dev/null
    head=$($PY -c "import json; r=json.load(open('$run/head6/summary.json'))['results']; \
print([x['accuracy'] for x in r if x['name'].startswith('feature extraction')][0])")
    probe=$($PY scripts/linear_probe.py "$run/head6/features" | \
      $PY -c "import json,sys; print(json.load(sys.stdin)['test_accuracy'])")
    rows="$rows$n $seed $tl $python $head $probe"$'\n'
    echo "n=$n seed=$seed: tlkit $tl, python recipe $python; stage-1 head $head, linear probe $probe"
  done
done
$PY - "$out" <<PYEOF
import statistics, sys
rows = [l.split() for l in """$rows""".strip().splitlines()]
lines = ["# Learning quality: tlkit finetune defaults vs the Python two-stage recipe", "",
         "Printed characters -> handwritten digits (the README demo's pair), 3 seeds, 1,000 test digits.",
         "tlkit: \`tlkit finetune\` with its defaults (and --flip 0), the exported model. Python:",
         "scripts/python_two_stage.py (head 400 steps Adam 1e-3, then 40 epochs Adam 1e-4 / 3e-4, last model).",
         "Stage-1 head (classification layer, \`--head-from classifier.6\`: tlkit fits it exactly, logistic",
         "regression by L-BFGS on standardised features, L2 chosen by val loss) vs a tuned linear probe",
         "(scripts/linear_probe.py: logistic regression, L2 chosen by val accuracy) on the same cached features.", "",
         "| images per class | tlkit defaults | Python recipe | ratio | stage-1 head | linear probe | ratio |",
         "|---:|---:|---:|---:|---:|---:|---:|"]
for n in ("5", "30"):
    sel = [r for r in rows if r[0] == n]
    t, p, h, q = ([float(r[i]) for r in sel] for i in (2, 3, 4, 5))
    m = statistics.mean
    lines.append("| %s | %.1f%% | %.1f%% | %.3f | %.1f%% | %.1f%% | %.3f |" %
                 (n, 100 * m(t), 100 * m(p), m(t) / m(p), 100 * m(h), 100 * m(q), m(h) / m(q)))
lines += ["", "Per run (n seed tlkit python head probe):", "", "\`\`\`"] + [" ".join(r) for r in rows] + ["\`\`\`"]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
