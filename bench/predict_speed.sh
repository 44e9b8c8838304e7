#!/usr/bin/env bash
# `tlkit predict --out` against `tlkit evaluate` on the same 1,000 images: 256x256 JPEGs (the first
# 100 of each Fashion-MNIST class, upscaled: decoding costs what it costs on photos) through a
# vgg_cifar model (random weights, 32x32 input: the timing is the same), batch 64, 2 decoding
# threads each. The two commands alternate, RUNS times each; images per second from the wall time
# of each whole command (model load and folder scan included), median over the runs.
# Usage: bash bench/predict_speed.sh [BUILD_DIR (default build)] [RUNS (3)]
#   -> bench/results/predict_speed.md
# Needs Debian's python3 with torch and Pillow and Fashion-MNIST (dataset-fashion-mnist); about a
# minute on 2 idle cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
runs="${2:-3}"
tlkit="$build/tlkit"
py=/usr/bin/python3
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export TLKIT_CACHE_DIR="$work/cache"
threads=$(nproc)

"$py" "$root/scripts/make_fashion_folder.py" --out "$work/images" --per-class 100 >/dev/null
classes=$(ls "$work/images" | paste -sd, -)
"$py" "$root/scripts/export_vgg16.py" --arch vgg_cifar --random-init --class-names "$classes" \
  --out "$work/model.pt" >/dev/null 2>&1
count=$(find "$work/images" -name '*.jpg' | wc -l)

# Seconds one command takes (wall clock, %N: nanoseconds).
seconds() {
  local start end
  start=$(date +%s.%N)
  "$@" >"$work/last.log" 2>&1 || { tail -20 "$work/last.log"; exit 1; }
  end=$(date +%s.%N)
  "$py" -c "print($end - $start)"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# One warm-up of each (page cache, scan cache), not counted.
"$tlkit" evaluate --model "$work/model.pt" --data "$work/images" --split all --threads "$threads" \
  >/dev/null 2>&1
for r in $(seq "$runs"); do
  seconds "$tlkit" evaluate --model "$work/model.pt" --data "$work/images" --split all \
    --batch-size 64 --workers 2 --threads "$threads" >>"$work/evaluate.txt"
  rm -f "$work/preds.csv"
  seconds "$tlkit" predict --model "$work/model.pt" "$work/images" --out "$work/preds.csv" \
    --batch-size 64 --workers 2 --threads "$threads" >>"$work/predict.txt"
done
rows=$(($(wc -l <"$work/preds.csv") - 1))
load="$load_before -> $(cut -d' ' -f1-3 /proc/loadavg)"

"$py" - "$work" "$count" "$rows" "$runs" "$threads" "$root/bench/results/predict_speed.md" "$load" <<'PY'
import platform, statistics, sys
work, count, rows, runs, threads, out, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7]
times = {name: [float(x) for x in open(f"{work}/{name}.txt").read().split()] for name in ("evaluate", "predict")}
rate = {name: count / statistics.median(t) for name, t in times.items()}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
with open(out, "w") as f:
    f.write("# `tlkit predict --out` against `tlkit evaluate` on the same images\n\n")
    f.write(f"`bash bench/predict_speed.sh`: {count} JPEGs of 256x256 (Fashion-MNIST upscaled), a vgg_cifar model "
            f"(32x32 input, random weights), batch 64, 2 decoding threads, `--threads {threads}`; "
            f"the wall time of each whole command (model load and folder scan included), "
            f"{runs} runs each, alternating, after one warm-up. {cpu}, {threads} cores; load average "
            f"(1, 5, 15 min) {load} (other work on the machine).\n\n")
    f.write("| command | seconds (each run) | median img/s |\n|---|---|---:|\n")
    for name, cmd in (("evaluate", "`tlkit evaluate --split all`"), ("predict", "`tlkit predict FOLDER --out preds.csv`")):
        f.write(f"| {cmd} | {', '.join(f'{t:.2f}' for t in times[name])} | {rate[name]:.0f} |\n")
    f.write(f"\npredict / evaluate: **{rate['predict'] / rate['evaluate']:.2f}x** "
            f"(predict wrote {rows} rows for {count} images).\n")
print(open(out).read())
PY
