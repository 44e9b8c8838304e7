#!/usr/bin/env bash
# Scale: the folder scan of 100,000 files, and `tlkit extract` over 5,000 and 50,000 images with
# its peak memory (features are streamed to disk, so the peak should not grow with the count).
# Usage: bash bench/scale.sh [BUILD_DIR (default build)]   -> bench/results/scale.md
# Needs Debian's python3 with PIL (scripts/setup.sh) and GNU time; takes a few minutes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
tlkit="$build/tlkit"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
py=/usr/bin/python3
export TLKIT_CACHE_DIR="$work/cache"  # the scan cache starts empty and stays out of ~/.cache

# 16x16 PNGs in 10 class folders: N images under DIR.
make_folder() {
  "$py" - "$1" "$2" <<'PY'
import os, sys, numpy as np
from PIL import Image
root, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
for c in range(10):
    os.makedirs(f"{root}/class_{c}", exist_ok=True)
for i in range(n):
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
        f"{root}/class_{i % 10}/img_{i:06d}.png")
PY
}
measure() {  # prints "seconds peak_rss_mb" of the command
  /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >/dev/null 2>"$work/err.txt" ||
    { cat "$work/err.txt"; exit 1; }
  awk '{printf "%.1f %.0f\n", $1, $2 / 1024}' "$work/time.txt"
}

"$py" "$root/scripts/export_vgg16.py" --arch vgg_tiny --random-init --out "$work/tiny.pt" >/dev/null 2>&1
make_folder "$work/files100k" 100000
make_folder "$work/images5k" 5000
make_folder "$work/images50k" 50000

# The scan alone is what `--limit 1` leaves of an extraction (start-up + scan + one row).
read -r scan_s scan_mb < <(measure "$tlkit" extract --model "$work/tiny.pt" --data "$work/files100k" \
  --out "$work/scan" --split all --limit 1 --threads 2 -q)
# The same scan again: the files are unchanged, so their checks come from the scan cache (the
# folder is still listed and every file stat'ed, so added, removed or changed files are seen).
read -r rescan_s rescan_mb < <(measure "$tlkit" extract --model "$work/tiny.pt" --data "$work/files100k" \
  --out "$work/scan3" --split all --limit 1 --threads 2 -q)
read -r small_s small_mb < <(measure "$tlkit" extract --model "$work/tiny.pt" --data "$work/images5k" \
  --out "$work/f5k" --split all --threads 2 -q)
read -r big_s big_mb < <(measure "$tlkit" extract --model "$work/tiny.pt" --data "$work/images50k" \
  --out "$work/f50k" --split all --threads 2 -q)

out="$root/bench/results/scale.md"
{
  echo "# Scale: folder scan and feature extraction"
  echo
  echo "Measured by \`bench/scale.sh\` on $(nproc) cores, $(date -u +%Y-%m-%d); vgg_tiny (16x16 PNGs,"
  echo "10 classes), \`--threads 2\`. Peak RSS from GNU time (whole process, LibTorch included)."
  echo
  echo "| run | files | seconds | peak RSS (MB) |"
  echo "|---|---:|---:|---:|"
  echo "| scan (extract --limit 1) | 100,000 | $scan_s | $scan_mb |"
  echo "| rescan, unchanged folder (checks cached) | 100,000 | $rescan_s | $rescan_mb |"
  echo "| extract | 5,000 | $small_s | $small_mb |"
  echo "| extract | 50,000 | $big_s | $big_mb |"
  echo
  echo "Flat memory: 10x the images costs $(awk -v a="$small_mb" -v b="$big_mb" 'BEGIN{printf "%+.0f", b - a}') MB of peak RSS (features stream to"
  echo "\`features.npy\` batch by batch; the file list and labels are the only per-image memory)."
} >"$out"
cat "$out"
