#!/usr/bin/env bash
# Imported torchvision networks at 224 against the same work in Python torch on this CPU:
#   extract  `tlkit extract` (the head's input to features.npy) against a Python loop:
#            torchvision's model without its last layer, the same preprocessing (PIL decode,
#            resize 256, centre crop 224, normalise), a DataLoader with 2 workers, np.save
#   train    `tlkit train --epochs 1` (every layer, SGD momentum lr 0.01, batch 32, no
#            augmentation, no validation, no snapshots) against a Python loop doing the same:
#            torchvision's model in training mode, cross-entropy, torch.optim.SGD momentum 0.9
# for ResNet-50 and MobileNetV3-Large, random weights written by torchvision and read by
# `tlkit import` (the timing does not depend on the values). IMAGES JPEGs of 256x256 (rounded up to ten classes) (Fashion-MNIST
# upscaled). Each pair alternates RUNS times; the wall time of each whole command (start-up, model
# load and folder scan included on both sides), median over the runs; ratio = Python / tlkit
# (above 1: tlkit faster).
# Usage: bash bench/import_speed.sh [BUILD_DIR (default build)] [RUNS (3)] [IMAGES (100)]
#   -> bench/results/import_speed.md
# Needs Debian's python3 with torch, torchvision and Pillow, and dataset-fashion-mnist; about 15
# minutes on 2 idle cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
runs="${2:-3}"
images="${3:-100}"
tlkit="$build/tlkit"
py=/usr/bin/python3
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export TLKIT_CACHE_DIR="$work/cache"
threads=$(nproc)
archs="resnet50 mobilenet_v3_large"

per_class=$(((images + 9) / 10))
"$py" "$root/scripts/make_fashion_folder.py" --out "$work/images/train" --per-class "$per_class" \
  >/dev/null
count=$(find "$work/images/train" -name '*.jpg' | wc -l)

for arch in $archs; do
  "$py" "$root/scripts/make_torchvision_weights.py" --models "$arch:zip" --size 8 --out "$work" \
    >/dev/null
  "$tlkit" import --arch "$arch" --weights "$work/${arch}_zip.pth" --out "$work/$arch.pt" \
    >/dev/null 2>&1
done

cat >"$work/reference.py" <<'PY'
"""The Python side: extract (pooled features to .npy) or train (one epoch) on DIR (class folders)."""
import sys, time
import numpy as np
import torch, torchvision
from torchvision import transforms

mode, arch, weights, data, out, threads = sys.argv[1:7]
torch.set_num_threads(int(threads))
torch.manual_seed(0)
model = getattr(torchvision.models, arch)(weights=None)
model.load_state_dict(torch.load(weights))
prep = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                           transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
folder = torchvision.datasets.ImageFolder(data, prep)
if mode == "extract":
    if arch.startswith("resnet"):
        model.fc = torch.nn.Identity()
    else:
        model.classifier[-1] = torch.nn.Identity()  # the head's input, as tlkit extract's default
    model.eval()
    loader = torch.utils.data.DataLoader(folder, batch_size=64, num_workers=2)
    features = []
    with torch.no_grad():
        for x, _ in loader:
            features.append(model(x).numpy())
    np.save(out, np.concatenate(features))
else:
    head = model.fc if arch.startswith("resnet") else model.classifier[-1]
    new = torch.nn.Linear(head.in_features, len(folder.classes))
    if arch.startswith("resnet"):
        model.fc = new
    else:
        model.classifier[-1] = new
    model.train()
    loader = torch.utils.data.DataLoader(folder, batch_size=32, shuffle=True, num_workers=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for x, y in loader:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
PY

# Seconds one command takes (wall clock).
seconds() {
  local start end
  start=$(date +%s.%N)
  "$@" >"$work/last.log" 2>&1 || { tail -20 "$work/last.log" >&2; exit 1; }
  end=$(date +%s.%N)
  "$py" -c "print($end - $start)"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for arch in $archs; do
  # One warm-up of each side (page cache, the folder scan cache), not counted.
  "$tlkit" extract --model "$work/$arch.pt" --data "$work/images/train" --out "$work/f" \
    --threads "$threads" >/dev/null 2>&1 || true
  "$py" "$work/reference.py" extract "$arch" "$work/${arch}_zip.pth" "$work/images/train" "$work/p.npy" \
    "$threads" >/dev/null 2>&1
  for r in $(seq "$runs"); do
    rm -rf "$work/f"
    seconds "$tlkit" extract --model "$work/$arch.pt" --data "$work/images/train" --out "$work/f" \
      --batch-size 64 --workers 2 --threads "$threads" >>"$work/$arch.extract.tlkit"
    seconds "$py" "$work/reference.py" extract "$arch" "$work/${arch}_zip.pth" "$work/images/train" \
      "$work/p.npy" "$threads" >>"$work/$arch.extract.python"
    rm -rf "$work/run"
    seconds "$tlkit" train --model "$work/$arch.pt" --data "$work/images/train" --out "$work/run" \
      --epochs 1 --batch-size 32 --optimizer momentum:lr=0.01 --schedule constant --val-split 0 \
      --no-augment --no-snapshots --workers 2 --threads "$threads" --no-progress \
      >>"$work/$arch.train.tlkit"
    seconds "$py" "$work/reference.py" train "$arch" "$work/${arch}_zip.pth" "$work/images/train" "" \
      "$threads" >>"$work/$arch.train.python"
  done
  # The features agree (the same preprocessing and network on both sides).
  "$py" -c "import numpy as np, sys; a = np.load(sys.argv[1]); b = np.load(sys.argv[2]); \
print(float(abs(a - b).max() / abs(b).max()))" "$work/f/features.npy" "$work/p.npy" \
    >"$work/$arch.agree"
done
load="$load_before -> $(cut -d' ' -f1-3 /proc/loadavg)"

"$py" - "$work" "$count" "$runs" "$threads" "$root/bench/results/import_speed.md" "$load" $archs <<'PY'
import platform, statistics, sys
work, count, runs, threads, out, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
archs = sys.argv[7:]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
def times(arch, job, side):
    return [float(x) for x in open(f"{work}/{arch}.{job}.{side}").read().split()]
with open(out, "w") as f:
    f.write("# Imported torchvision networks at 224: tlkit against Python torch on the same CPU\n\n")
    f.write(f"`bash bench/import_speed.sh`: {count} JPEGs of 256x256 (Fashion-MNIST upscaled), resize 256 + centre "
            f"crop 224, random weights written by torchvision and read by `tlkit import`; `--threads {threads}` / "
            f"`torch.set_num_threads({threads})`, 2 decoding workers on both sides. **extract**: `tlkit extract` "
            f"(the head's input to features.npy) vs torchvision's model without its last layer over a DataLoader, np.save. "
            f"**train**: one epoch of every layer, batch 32, SGD momentum lr 0.01, no augmentation: "
            f"`tlkit train --epochs 1 --val-split 0 --no-augment --no-snapshots` vs the same loop in Python. "
            f"Wall time of each whole command (start-up, model load, folder scan included on both sides), {runs} runs "
            f"each, alternating, after one warm-up; ratio = Python median / tlkit median (above 1: tlkit is faster). "
            f"{cpu}, {threads} cores; load average (1, 5, 15 min) {load}.\n\n")
    f.write("| network | work | tlkit seconds (each run) | Python seconds (each run) | ratio |\n|---|---|---|---|---:|\n")
    for arch in archs:
        for job in ("extract", "train"):
            t, p = times(arch, job, "tlkit"), times(arch, job, "python")
            f.write(f"| {arch} | {job} | {', '.join(f'{x:.1f}' for x in t)} | {', '.join(f'{x:.1f}' for x in p)} | "
                    f"**{statistics.median(p) / statistics.median(t):.2f}** |\n")
    f.write("\nThe features agree: largest difference relative to the largest feature, tlkit vs Python: " +
            ", ".join(f"{arch} {float(open(f'{work}/{arch}.agree').read()):.1e}" for arch in archs) + ".\n")
print(open(out).read())
PY
