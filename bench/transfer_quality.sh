#!/usr/bin/env bash
# Learning quality of tlkit finetune's defaults against the usual Python two-stage recipe
# (scripts/python_two_stage.py: same pretrained backbone, images, preprocessing and seeds), and of
# tlkit's stage-1 head against a tuned linear probe (scripts/linear_probe.py) on the same cached
# features, at 5 and 30 images per class, 3 seeds.
#
#   bash bench/transfer_quality.sh [demo-dir]
#       the README demo's model and folders (bash scripts/demo.sh runs/demo first);
#       writes bench/results/transfer_quality.md
#   bash bench/transfer_quality.sh --foreign [dir]
#       a model the export script did not make (bench/foreign_model.py: batch norm, its own layer
#       names, 32x32 with mean/std 0.5, TorchScript without tlkit metadata), pretrained here in
#       PyTorch on the same printed characters; tlkit gets it with the preprocessing flags only;
#       writes bench/results/transfer_quality_foreign.md (about 25 minutes on 2 cores)
# A folder's finetune run (and the foreign model) already there is reused: delete the folder to
# measure a changed tlkit again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
tlkit=build/tlkit
[ -x "$tlkit" ] || { echo "build first: cmake --build build --target tlkit_cli" >&2; exit 1; }
if [ "${1:-}" = "--foreign" ]; then
  demo="${2:-runs/foreign}"
  out=bench/results/transfer_quality_foreign.md
  model="$demo/pretrain/model.pt"
  flags=(--input-size 32 --resize 32 --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5)
  head_layer=head.4
  if [ ! -f "$model" ]; then
    $PY scripts/make_glyph_folder.py --out "$demo/glyphs" --variants 12
    $PY bench/foreign_model.py pretrain --glyphs "$demo/glyphs" --out "$demo/pretrain"
  fi
  recipe() { $PY bench/foreign_model.py recipe --state "$demo/pretrain/state.pt" "$@"; }
  title="a foreign model (bench/foreign_model.py, TorchScript without tlkit metadata)"
  tlkit_text="\`tlkit finetune\` with its defaults plus \`${flags[*]} --flip 0\`"
else
  demo="${1:-runs/demo}"
  out=bench/results/transfer_quality.md
  model="$demo/pretrain/model.pt"
  flags=()
  head_layer=classifier.6
  [ -f "$model" ] || { echo "run 'bash scripts/demo.sh $demo' first" >&2; exit 1; }
  recipe() { $PY scripts/python_two_stage.py --model "$model" "$@"; }
  title="the README demo's model (vgg_cifar pretrained by tlkit train)"
  tlkit_text="\`tlkit finetune\` with its defaults (and --flip 0)"
fi
json() { $PY -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }
rows=""
for n in 5 30; do
  for seed in 1 2 3; do
    run="$demo/n$n/seed$seed"
    [ -d "$run/digits" ] || $PY scripts/make_digits_folder.py --out "$run/digits" \
      --train-per-class "$n" --val-per-class "$n" --test-per-class 100 --seed "$seed" >/dev/null
    if [ ! -f "$run/finetune/summary.json" ]; then
      $tlkit finetune --model "$model" "${flags[@]}" --data "$run/digits" --out "$run/finetune" \
        --flip 0 --seed "$seed" --no-progress -q >"$run/finetune.log" 2>&1
    fi
    python=$(recipe --data "$run/digits" --seed "$seed" | \
      $PY -c "import json,sys; print(json.load(sys.stdin)['test_accuracy'])")
    tl=$(json "$run/finetune/summary.json" "[x['accuracy'] for x in r['results'] if x.get('exported')][0]")
    # Stage-1 head on the classification layer vs the linear probe, on the same cached features.
    $tlkit finetune --model "$model" "${flags[@]}" --data "$run/digits" --out "$run/head_only" \
      --head-from "$head_layer" --epochs 1 --flip 0 --seed "$seed" --no-progress -q >/dev/null
    head=$(json "$run/head_only/summary.json" \
      "[x['accuracy'] for x in r['results'] if x['name'].startswith('feature extraction')][0]")
    probe=$($PY scripts/linear_probe.py "$run/head_only/features" | \
      $PY -c "import json,sys; print(json.load(sys.stdin)['test_accuracy'])")
    rows="$rows$n $seed $tl $python $head $probe"$'\n'
    echo "n=$n seed=$seed: tlkit $tl, python recipe $python; stage-1 head $head, linear probe $probe"
  done
done
$PY - "$out" "$title" "$tlkit_text" <<PYEOF
import statistics, sys
rows = [l.split() for l in """$rows""".strip().splitlines()]
lines = ["# Learning quality: tlkit finetune defaults vs the Python two-stage recipe", "",
         "Printed characters -> handwritten digits, on %s; 3 seeds, 1,000 test digits." % sys.argv[2],
         "tlkit: %s, the exported model. Python:" % sys.argv[3],
         "the two-stage recipe of scripts/python_two_stage.py (head 400 steps Adam 1e-3, then 40 epochs",
         "Adam 1e-4 / 3e-4 on every layer, last model), same images, preprocessing and seeds.",
         "Stage-1 head (the classification layer alone, \`--head-from $head_layer\`: tlkit fits it",
         "exactly, logistic regression by L-BFGS on standardised features, L2 chosen by val loss) vs a",
         "tuned linear probe (scripts/linear_probe.py: logistic regression, L2 chosen by val accuracy)",
         "on the same cached features.", "",
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
