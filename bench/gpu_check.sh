#!/usr/bin/env bash
# gpu_check.sh: tlkit against PyTorch on one GPU, in a few minutes (about 5-8 on one H200 with 16
# cores). Run from the repository root:
#
#   bash bench/gpu_check.sh                       # -> bench/results/gpu_check.md
#   bash bench/gpu_check.sh --build build-cuda --python /opt/venv/bin/python
#   bash bench/gpu_check.sh --quick               # CPU smoke test of the script (a few minutes on
#                                                 # 2 cores; tiny model and data, temp report)
#
# Options (each also an environment variable; the option wins):
#   --build DIR          BUILD     tlkit build with tlkit and bench/optim_bench (default: build)
#   --python PY          PY        a Python with torch, CUDA torch for --device cuda (default:
#                                  python3 if it imports torch, else /usr/bin/python3)
#   --device cuda|cpu    DEVICE    where everything runs (default: cuda; cpu with --quick)
#   --out FILE           OUT       the report (default: bench/results/gpu_check.md; with --quick
#                                  $TMPDIR/gpu_check_quick.md, so the kept file is not overwritten)
#   --work DIR           WORK      work folder, kept (default: a temporary folder, removed)
#   --workers N          WORKERS   tlkit decoding threads = PyTorch DataLoader processes
#                                  (default: min(12, cores - 2))
#   --epochs N           EPOCHS    epochs per training run, the first one warm-up (default: 4;
#                                  2 with --quick)
#   --images-per-class N IMAGES_PER_CLASS  training images per class, 10 classes (default: 256;
#                                  8 with --quick)
#   --optimizer SPEC     OPTIMIZER the same on both sides: adam|adamw|sgd|momentum|nesterov
#                                  [:lr=...] (default: adam:lr=1e-4)
#   --quick              everything tiny on the CPU (vgg_cifar at 32 px on 48 px images, batches
#                        8 and 4, optim_bench over SGD only): checks the script end to end and
#                        measures nothing; a few minutes on 2 cores
#   --keep               keep the temporary work folder
#
# Steps: 1. a synthetic image folder (10 classes of 256x256 JPEGs, train/ and val/); 2. VGG16 as
# TorchScript (scripts/export_vgg16.py --random-init, 10 classes, 224); 3. fine-tuning every layer
# with `tlkit train` and with bench/gpu_check_reference.py (plain PyTorch, the same model file,
# preprocessing, optimizer and batch size) at batch 128 and 32, at fp32 and, where
# `tlkit train --help` lists --precision / --channels-last, at bf16 autocast + channels-last;
# 4. `tlkit extract` to disk against forward-only inference in PyTorch; 5. `optim_bench --device
# cuda`: the optimizer step against the device's copy bandwidth; 6. the report
# (bench/gpu_check_report.py). Fails at once when CUDA is not available (unless --quick / --device
# cpu). See bench/README.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

quick=0
keep=0
build="${BUILD:-}"
py="${PY:-}"
device="${DEVICE:-}"
out="${OUT:-}"
work="${WORK:-}"
workers="${WORKERS:-}"
epochs="${EPOCHS:-}"
per_class="${IMAGES_PER_CLASS:-}"
optimizer="${OPTIMIZER:-adam:lr=1e-4}"
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
need() { [ "$#" -ge 2 ] || { echo "gpu_check: $1 needs a value (see --help)" >&2; exit 2; }; }
while [ "$#" -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    --build) need "$@"; build="$2"; shift ;;
    --python) need "$@"; py="$2"; shift ;;
    --device) need "$@"; device="$2"; shift ;;
    --out) need "$@"; out="$2"; shift ;;
    --work) need "$@"; work="$2"; shift ;;
    --workers) need "$@"; workers="$2"; shift ;;
    --epochs) need "$@"; epochs="$2"; shift ;;
    --images-per-class) need "$@"; per_class="$2"; shift ;;
    --optimizer) need "$@"; optimizer="$2"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "gpu_check: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

start_seconds=$SECONDS
log() { printf '[gpu_check %4ds] %s\n' "$((SECONDS - start_seconds))" "$*"; }
die() { echo "gpu_check: $*" >&2; exit 1; }

# --- settings ---------------------------------------------------------------------------------
build="${build:-$root/build}"
[ -d "$build" ] || die "no build folder '$build' (--build DIR)"
build="$(cd "$build" && pwd)"
tlkit="$build/tlkit"
optim_bench="$build/bench/optim_bench"
[ -x "$tlkit" ] || die "no tlkit executable at $tlkit (build it: cmake --build $build)"
[ -x "$optim_bench" ] || die "no optim_bench at $optim_bench (cmake --build $build --target optim_bench)"
if [ -z "$py" ]; then
  if command -v python3 >/dev/null && python3 -c 'import torch' 2>/dev/null; then
    py=python3
  else
    py=/usr/bin/python3
  fi
fi
"$py" -c 'import torch' 2>/dev/null || die "'$py' cannot import torch (--python PY or PY=...)"
cores=$(nproc)
if [ "$quick" = 1 ]; then
  device="${device:-cpu}"
  epochs="${epochs:-2}"
  per_class="${per_class:-8}"
  val_per_class=2
  image_size=48
  arch=vgg_cifar
  batches="8 4"
  extract_batch=8
  optim_args=(--only sgd --runs 2 --warmup 1)
else
  device="${device:-cuda}"
  epochs="${epochs:-4}"
  per_class="${per_class:-256}"
  val_per_class=10
  image_size=256
  arch=vgg16
  batches="128 32"
  extract_batch=128
  optim_args=(--runs 9)
fi
workers="${workers:-$((cores > 14 ? 12 : (cores > 3 ? cores - 2 : 1)))}"
case "$device" in cpu | cuda) ;; *) die "--device takes cuda or cpu, got '$device'" ;; esac
[ "$epochs" -ge 2 ] 2>/dev/null || die "--epochs must be at least 2 (the first is warm-up)"

if [ -z "$work" ]; then
  work="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
  # Removed after a run that succeeded; kept (with the logs a failure points to) otherwise.
  [ "$keep" = 1 ] || trap 'if [ $? -eq 0 ]; then rm -rf "$work"; else echo "gpu_check: work folder kept: $work" >&2; fi' EXIT
else
  mkdir -p "$work"
  work="$(cd "$work" && pwd)"
fi
if [ -z "$out" ]; then
  if [ "$quick" = 1 ]; then
    out="${TMPDIR:-/tmp}/gpu_check_quick.md"
  else
    out="$root/bench/results/gpu_check.md"
  fi
fi
mkdir -p "$(dirname "$out")"
export TLKIT_CACHE_DIR="$work/cache"
# On the CPU: all cores, or one thread with --quick (a smoke test on a machine that may be busy:
# OpenMP's parallel regions stall whenever another process holds one of the cores). On the GPU
# both sides keep their defaults.
threads=0
if [ "$device" = cpu ]; then
  threads=$([ "$quick" = 1 ] && echo 1 || echo "$cores")
fi
threads_args=()
[ "$threads" -gt 0 ] && threads_args=(--threads "$threads")

# --- CUDA present? -------------------------------------------------------------------------------
if [ "$device" = cuda ]; then
  "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' ||
    die "CUDA is not available to '$py' (torch $("$py" -c 'import torch; print(torch.__version__)')); run on a machine with a GPU, or use --quick for a CPU smoke test"
  gpu="$("$py" -c 'import torch; print(torch.cuda.get_device_name(0))')"
  if command -v nvidia-smi >/dev/null; then
    smi="$(nvidia-smi --query-gpu=memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1 || true)"
    [ -n "$smi" ] && gpu="$gpu (${smi%%,*}, driver ${smi##*, })"
  fi
else
  gpu="cpu (no GPU used)"
fi
torch_version="$("$py" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')"
log "device $device: $gpu; $py: torch $torch_version; $workers data workers; work folder $work"

# --- which precision flags does this tlkit have? -----------------------------------------------
flags_of() {  # COMMAND -> "precision channels-last" (those its --help lists)
  local help found=""
  help="$("$tlkit" "$1" --help 2>&1 || true)"
  grep -q -- '--precision' <<<"$help" && found="precision"
  grep -q -- '--channels-last' <<<"$help" && found="$found channels-last"
  echo "${found# }"
}
train_flags="$(flags_of train)"
extract_flags="$(flags_of extract)"
variant_of() {  # FLAGS -> the second variant's name ("" when the command has neither flag)
  case "$1" in
    "precision channels-last") echo bf16-cl ;;
    precision) echo bf16 ;;
    channels-last) echo fp32-cl ;;
    *) echo "" ;;
  esac
}
train_variants="fp32 $(variant_of "$train_flags")"
extract_variants="fp32 $(variant_of "$extract_flags")"
log "tlkit train flags: ${train_flags:-none of --precision/--channels-last}; extract: ${extract_flags:-none}"
tlkit_variant_args() {  # VARIANT -> tlkit flags
  case "$1" in
    bf16-cl) echo "--precision bf16 --channels-last" ;;
    bf16) echo "--precision bf16" ;;
    fp32-cl) echo "--channels-last" ;;
    *) echo "" ;;
  esac
}
python_variant_args() {  # VARIANT -> gpu_check_reference.py flags
  case "$1" in
    bf16-cl) echo "--precision bf16 --channels-last" ;;
    bf16) echo "--precision bf16" ;;
    fp32-cl) echo "--precision fp32 --channels-last" ;;
    *) echo "--precision fp32" ;;
  esac
}
commands=()
run_logged() {  # LOG COMMAND... : runs it, its output to LOG; on failure shows the log's tail
  local logfile="$1"
  shift
  commands+=("$*")
  if ! "$@" >"$logfile" 2>&1; then
    tail -n 40 "$logfile" >&2
    die "failed: $* (log: $logfile)"
  fi
}

# --- 1. data -------------------------------------------------------------------------------------
data="$work/images"
train_images=$((per_class * 10))
log "1/6 data: $train_images training + $((val_per_class * 10)) validation images of ${image_size}x$image_size"
run_logged "$work/data.log" "$py" "$root/bench/gpu_check_reference.py" data --out "$data" \
  --classes 10 --train-per-class "$per_class" --val-per-class "$val_per_class" \
  --size "$image_size" --json "$work/data.json"
decoder="$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["encoder"])' "$work/data.json")"

# --- 2. model ------------------------------------------------------------------------------------
model="$work/$arch.pt"
log "2/6 model: $arch, random weights, 10 classes -> $model"
run_logged "$work/export.log" "$py" "$root/scripts/export_vgg16.py" --arch "$arch" --random-init \
  --num-classes 10 --seed 0 --out "$model"
if [ "$device" = cuda ]; then
  # The build must be one against a CUDA LibTorch: one clear message before any long step.
  if ! "$tlkit" info --model "$model" --device cuda >"$work/info.log" 2>&1; then
    tail -n 5 "$work/info.log" >&2
    die "this tlkit build ($build) cannot use CUDA: build it against a CUDA LibTorch, or use --quick"
  fi
fi

# --- 3. training ---------------------------------------------------------------------------------
for variant in $train_variants; do
  for batch in $batches; do
    name="$variant-b$batch"
    run="$work/run-$name"
    log "3/6 training, $variant, batch $batch: tlkit train ($epochs epochs)"
    # shellcheck disable=SC2046
    run_logged "$work/train-tlkit-$name.log" "$tlkit" train --model "$model" --data "$data" \
      --out "$run" --epochs "$epochs" --batch-size "$batch" --optimizer "$optimizer" \
      --schedule constant --patience 0 --ema-decay 0 --no-snapshots --workers "$workers" \
      --device "$device" --seed 0 "${threads_args[@]}" $(tlkit_variant_args "$variant")
    cp "$run/metrics.csv" "$work/train-tlkit-$name.csv"
    rm -rf "$run"  # checkpoints and the exported model: gigabytes for VGG16
    grep -E 'epoch [0-9]+/[0-9]+ \[#+\] ([0-9]+)/\1 ' "$work/train-tlkit-$name.log" | sed 's/^/    tlkit /' || true
    log "3/6 training, $variant, batch $batch: PyTorch"
    # shellcheck disable=SC2046
    run_logged "$work/train-python-$name.log" "$py" "$root/bench/gpu_check_reference.py" train \
      --model "$model" --data "$data" --batch-size "$batch" --epochs "$epochs" \
      --optimizer "$optimizer" --workers "$workers" --device "$device" --seed 0 \
      --threads "$threads" \
      $(python_variant_args "$variant") --json "$work/train-python-$name.json"
    sed 's/^/  /' "$work/train-python-$name.log"
  done
done

# --- 4. extraction against inference --------------------------------------------------------------
for variant in $extract_variants; do
  log "4/6 extraction, $variant, batch $extract_batch: tlkit extract to disk"
  t0=$(date +%s.%N)
  # shellcheck disable=SC2046
  run_logged "$work/extract-tlkit-$variant.log" "$tlkit" extract --model "$model" --data "$data" \
    --split train --out "$work/features-$variant" --batch-size "$extract_batch" \
    --workers "$workers" --device "$device" "${threads_args[@]}" $(tlkit_variant_args "$variant")
  t1=$(date +%s.%N)
  "$py" - "$work/features-$variant/manifest.json" "$work/extract-tlkit-$variant.json" "$t0" "$t1" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
keep = {k: m[k] for k in ("rows", "seconds", "layer") if k in m}
keep["wall_seconds"] = float(sys.argv[4]) - float(sys.argv[3])
json.dump(keep, open(sys.argv[2], "w"), indent=2)
print(f"    tlkit extract: {keep['rows']} rows in {keep['seconds']:.2f} s "
      f"({keep['rows'] / keep['seconds']:.1f} images/s); command {keep['wall_seconds']:.2f} s")
PY
  rm -rf "$work/features-$variant"
  log "4/6 extraction, $variant: PyTorch forward-only inference"
  # shellcheck disable=SC2046
  run_logged "$work/infer-python-$variant.log" "$py" "$root/bench/gpu_check_reference.py" infer \
    --model "$model" --data "$data/train" --batch-size "$extract_batch" --workers "$workers" \
    --device "$device" --threads "$threads" \
    $(python_variant_args "$variant") --json "$work/infer-python-$variant.json"
  sed 's/^/  /' "$work/infer-python-$variant.log"
done

# --- 5. optimizer step against copy bandwidth ----------------------------------------------------
log "5/6 optimizer step: optim_bench --device $device ${optim_args[*]}"
run_logged "$work/optim.log" "$optim_bench" --device "$device" "${optim_args[@]}" \
  "${threads_args[@]}" --out "$work/optim"
grep -E '^  [a-z-]+: tlkit' "$work/optim.log" | sed 's/^/  /' || true

# --- 6. report -----------------------------------------------------------------------------------
libtorch="$("$py" -c 'import json, sys, glob
for f in glob.glob(sys.argv[1] + "/optim/*.json"):
    print(json.load(open(f)).get("libtorch", "?")); break' "$work")"
tlkit_version="$("$tlkit" --version 2>/dev/null | head -1 | sed 's/^tlkit //' || true)"
cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)"
{
  echo "mode=$([ "$quick" = 1 ] && echo quick || echo full)"
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "device=$device"
  echo "gpu=$gpu"
  echo "torch=$torch_version"
  echo "libtorch=${libtorch:-unknown}"
  echo "tlkit=${tlkit_version:-unknown}"
  echo "cpu=$cpu_model"
  echo "cores=$cores"
  echo "workers=$workers"
  echo "decoder=$decoder"
  echo "model=$arch (scripts/export_vgg16.py --random-init), 10 classes"
  echo "arch=$arch"
  echo "input=$([ "$arch" = vgg16 ] && echo 224 || echo 32)"
  echo "data=$train_images training images (10 classes x $per_class), ${image_size}x$image_size JPEG, synthetic; $((val_per_class * 10)) validation images"
  echo "optimizer=$optimizer"
  echo "tlkit_flags=train: ${train_flags:-none}; extract: ${extract_flags:-none}"
  echo "epochs=$epochs"
  echo "train_images=$train_images"
  echo "variants=$train_variants"
  echo "extract_variants=$extract_variants"
  echo "batches=$batches"
  echo "extract_batch=$extract_batch"
  echo "total_seconds=$((SECONDS - start_seconds))"
  printf 'commands='
  printf '%s ;; ' "${commands[@]}" | sed "s# ;; \$##; s#$work#\$WORK#g; s#$root/##g"
  echo
} >"$work/meta.txt"
"$py" "$root/bench/gpu_check_report.py" --work "$work" --out "$out" >/dev/null
log "6/6 report: $out"
sed -n '/^## 1\./,/^## 3\./p' "$out" | grep '^|' || true
log "done in $((SECONDS - start_seconds)) s"
