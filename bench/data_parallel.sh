#!/usr/bin/env bash
# Data parallelism on this machine: 1 process vs N processes (--nproc) at the same global batch and
# the same total thread count, and what a gradient allreduce costs by message size.
# Usage: bash bench/data_parallel.sh [BUILD_DIR (default build)] [RUNS (default 3)]
#   -> bench/results/data_parallel.md
# Needs the build's tlkit and bench/dist_bench, Debian's python3 with torch (the export script)
# and Fashion-MNIST (dataset-fashion-mnist); about 10 minutes on 2 cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
runs="${2:-3}"
tlkit="$build/tlkit"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export TLKIT_CACHE_DIR="$work/cache"
cores=$(nproc)
procs=${NPROC:-2}
data=fashion-mnist:/usr/share/datasets/fashion-mnist
out="$root/bench/results/data_parallel.md"

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 1. One allreduce by message size (ranks started by hand, as any launcher would).
port=$(free_port)
for ((r = 1; r < procs; r++)); do
  RANK=$r WORLD_SIZE=$procs MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$build/bench/dist_bench" &
done
RANK=0 WORLD_SIZE=$procs MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$build/bench/dist_bench" \
  > "$work/allreduce.md"
wait

# 2. Training throughput: tlkit bench runs one fixed-lr training per call and records its training
#    time (evaluation off the clock), its steps and its time in the gradient allreduce.
/usr/bin/python3 "$root/scripts/export_vgg16.py" --arch vgg_cifar --random-init --num-classes 10 \
  --out "$work/vgg_cifar.pt" >/dev/null 2>&1
workload() {  # NAME -> the tlkit bench arguments of that workload
  case "$1" in
    fmnist_2c2d) echo "--problem fmnist_2c2d --limit 6400" ;;
    vgg_cifar) echo "--model $work/vgg_cifar.pt --keep-weights --limit 2560 --batch-size 128" ;;
  esac
}
for name in fmnist_2c2d vgg_cifar; do
  for ((i = 1; i <= runs; i++)); do
    # Interleaved, so drift on the machine hits every variant alike: 1 process, N processes with
    # the allreduce overlapped with backward (the default), N processes reducing after backward.
    for variant in 1 "$procs-overlap" "$procs-after"; do
      n=${variant%%-*}
      mode=overlap
      [ "$variant" = "$procs-after" ] && mode=after
      dir="$work/$name-$variant-$i"
      # shellcheck disable=SC2046
      "$tlkit" bench $(workload "$name") --data "$data" --optimizers momentum --schedules constant \
        --lr momentum=0.01 --epochs 1 --seeds 1 --threads "$cores" --nproc "$n" --allreduce "$mode" \
        -q --out "$dir" > "$work/log.txt" 2>&1 || { cat "$work/log.txt"; exit 1; }
    done
  done
done

/usr/bin/python3 - "$work" "$runs" "$procs" "$cores" "$out" <<'PY'
import json, statistics, subprocess, sys, os
work, runs, procs, cores, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def run_of(name, n, i):
    r = json.load(open(f"{work}/{name}-{n}-{i}/results.json"))  # n: the variant
    run = r["runs"][0]
    return run, r["environment"]
rows = []
variants = ("1", f"{procs}-overlap", f"{procs}-after")
for name, params in (("fmnist_2c2d", "3.3M"), ("vgg_cifar", "0.5M")):
    speed = {v: [] for v in variants}
    share = {v: [] for v in variants}
    batch = 128  # both workloads
    for i in range(1, runs + 1):
        for v in variants:
            run, env = run_of(name, v, i)
            speed[v].append(run["steps"] * batch / run["train_seconds"])
            share[v].append(run["allreduce_seconds"] / run["train_seconds"])
    cells = [f"{statistics.median(speed[v]):.0f} img/s" for v in variants]
    for v in variants[1:]:
        ratios = [b / a for a, b in zip(speed["1"], speed[v])]
        cells.append(f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")
    for v in variants[1:]:
        cells.append(f"{100 * statistics.median(share[v]):.0f}%")
    rows.append(f"| {name} ({params} parameters, batch 128) | " + " | ".join(cells) + " |")
cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
libtorch = env["libtorch"]
allreduce = open(f"{work}/allreduce.md").read().strip()
with open(out, "w") as f:
    f.write(f"""# Data parallelism: 1 vs {procs} processes on this machine

Measured by `bash bench/data_parallel.sh` on {cpu}, {cores} cores, LibTorch {libtorch} (CPU),
Gloo over 127.0.0.1. Absolute numbers drift on this shared machine; the ratios were measured side by
side (runs interleaved, {runs} of each, median).

## Training throughput at the same global batch and the same {cores} threads in all

`tlkit bench ... --optimizers momentum --lr momentum=0.01 --epochs 1 --seeds 1 --threads {cores}`
with `--nproc 1` ({cores} threads) and `--nproc {procs}` ({max(1, cores // procs)} thread(s) each):
training images per second over one epoch (evaluation off the clock; Fashion-MNIST, held in
memory), with the gradient allreduce (buckets of ~25 MB) overlapped with backward (`--allreduce
overlap`, the default) or after it (`--allreduce after`), and the share of the training time a
step spent in (overlapped: waiting for) the allreduce.

| workload | 1 process | {procs} processes, overlapped | {procs}, after backward | speed-up, overlapped (range) | speed-up, after | allreduce share, overlapped | allreduce share, after |
|---|---:|---:|---:|---:|---:|---:|---:|
""" + "\n".join(rows) + f"""

## One allreduce by message size ({procs} ranks, `bench/dist_bench`)

Bus bandwidth = 2 (N-1)/N x bytes / time, the convention of nccl-tests. The copy column is the
same bytes copied once in memory: the floor any exchange of them has to pay.

{allreduce}

## Reading it

Below ~64 KB an allreduce costs a fixed latency (a few tenths of a millisecond over loopback TCP),
so many small buckets cost more than one large one: this is why gradients travel in ~25 MB
buckets. From ~1 MB on the time grows with the bytes, at the bus bandwidth above. A step gains
from more processes when its compute time shrinks by more than the allreduce of the model's
gradients adds: with P parameters that is about 8 P (N-1)/N bytes / bus bandwidth per step (4 bytes
per float, sent and received). On one machine with few cores the processes also share the memory
bandwidth and the cores, so the speed-up is below N even when the allreduce is cheap, and
overlapping it with backward shortens the wait without freeing a core; across machines the
network's bandwidth replaces the loopback figure (docs/data_parallel.md).
""")
print(open(out).read())
PY
