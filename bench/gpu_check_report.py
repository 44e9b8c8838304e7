#!/usr/bin/env python3
"""Writes bench/results/gpu_check.md from the work folder of bench/gpu_check.sh.

  gpu_check_report.py --work DIR --out FILE     the report from a finished run's files
  gpu_check_report.py --placeholder --out FILE  the same tables, every number "not measured"

What it reads in DIR (names as gpu_check.sh writes them):
  meta.txt                          key=value lines: device, mode, epochs, images, variants, ...
  train-tlkit-VARIANT-bB.log        tlkit train's output: each epoch's final progress line
  train-tlkit-VARIANT-bB.csv        its metrics.csv
  train-python-VARIANT-bB.json      gpu_check_reference.py train
  extract-tlkit-VARIANT.json        tlkit extract's manifest.json (+ "wall_seconds" added)
  infer-python-VARIANT.json         gpu_check_reference.py infer
  optim/optim_step_{cuda,cpu}.md    optim_bench's report
"""

import argparse
import csv
import json
import os
import re
import statistics
import sys

NM = "not measured"

# "train epoch 2/4 [########################] 20/20 loss=2.3 acc=0.1 lr=1.00e-04 8.5 it/s 2.4s"
PROGRESS = re.compile(r"epoch (\d+)/(\d+) \[[#.]*\] (\d+)/(\d+)\b.*?\s([0-9.]+) it/s(?: (\S+))?")


def read_meta(work):
    meta = {}
    with open(os.path.join(work, "meta.txt")) as f:
        for line in f:
            key, sep, value = line.rstrip("\n").partition("=")
            if sep:
                meta[key] = value
    return meta


def duration_seconds(text):
    """tlkit's format_duration: '12.3s', '4m05s', '1h02m'."""
    if not text:
        return None
    m = re.fullmatch(r"([0-9.]+)s", text)
    if m:
        return float(m.group(1))
    m = re.fullmatch(r"(\d+)m(\d+)s", text)
    if m:
        return 60 * int(m.group(1)) + int(m.group(2))
    return None


def tlkit_epochs(log_path):
    """Each epoch's training time from the final progress line of that epoch. The time is
    batches / (it/s), or the printed duration where that has the finer resolution (both are
    rounded to 0.1)."""
    epochs = {}
    with open(log_path, errors="replace") as f:
        for raw in f:
            for line in raw.split("\r"):
                m = PROGRESS.search(line)
                if not m or m.group(3) != m.group(4):
                    continue
                epoch, done, rate = int(m.group(1)), int(m.group(3)), float(m.group(5))
                if rate <= 0:
                    continue
                seconds = done / rate
                printed = duration_seconds(m.group(6))
                if printed is not None and printed > rate:
                    seconds = printed  # 0.1 s in a longer time is the finer of the two
                epochs[epoch] = {"epoch": epoch, "seconds": seconds, "batches": done}
    return [epochs[k] for k in sorted(epochs)]


def tlkit_train(work, variant, batch, images):
    stem = os.path.join(work, f"train-tlkit-{variant}-b{batch}")
    if not os.path.exists(stem + ".log"):
        return None
    epochs = tlkit_epochs(stem + ".log")
    loss = None
    if os.path.exists(stem + ".csv"):
        with open(stem + ".csv") as f:
            rows = list(csv.DictReader(f))
        if rows:
            loss = float(rows[-1]["train_loss"])
    for e in epochs:
        e["images"] = images
    return {"epochs": epochs, "final_loss": loss}


def python_train(work, variant, batch):
    path = os.path.join(work, f"train-python-{variant}-b{batch}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        r = json.load(f)
    r["final_loss"] = r["epochs"][-1]["train_loss"] if r["epochs"] else None
    return r


def rates(run):
    """(steady images/s: median over epochs 2.., first-epoch seconds)."""
    if not run or not run["epochs"]:
        return None, None
    epochs = run["epochs"]
    steady = epochs[1:] if len(epochs) > 1 else epochs
    return (statistics.median(e["images"] / e["seconds"] for e in steady), epochs[0]["seconds"])


def num(x, digits=1):
    return NM if x is None else f"{x:,.{digits}f}"


def ratio(a, b):
    return NM if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def variant_label(v):
    return {"fp32": "fp32 (defaults)", "bf16-cl": "bf16 autocast + channels-last",
            "bf16": "bf16 autocast", "fp32-cl": "fp32 + channels-last"}.get(v, v)


def train_table(work, meta, variants, batches):
    images = int(meta.get("train_images", "0")) if work else 0
    rows = ["| precision | batch | tlkit images/s | PyTorch images/s | tlkit / PyTorch | "
            "first epoch s, tlkit / PyTorch | final train loss, tlkit / PyTorch |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for v in variants:
        for b in batches:
            t = tlkit_train(work, v, b, images) if work else None
            p = python_train(work, v, b) if work else None
            t_rate, t_first = rates(t)
            p_rate, p_first = rates(p)
            loss_t = None if not t else t["final_loss"]
            loss_p = None if not p else p["final_loss"]
            rows.append(f"| {variant_label(v)} | {b} | {num(t_rate)} | {num(p_rate)} | "
                        f"{ratio(t_rate, p_rate)} | {num(t_first, 2)} / {num(p_first, 2)} | "
                        f"{num(loss_t, 4)} / {num(loss_p, 4)} |")
    return "\n".join(rows)


def extract_table(work, variants, batch):
    rows = ["| precision | batch | tlkit extract to disk, images/s | tlkit extract command, s "
            "(wall, incl. model load) | PyTorch inference, images/s (first pass) | PyTorch "
            "inference, images/s (second pass) | tlkit extract / PyTorch first pass |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for v in variants:
        t_rate = t_wall = p_first = p_second = None
        if work:
            path = os.path.join(work, f"extract-tlkit-{v}.json")
            if os.path.exists(path):
                with open(path) as f:
                    m = json.load(f)
                t_rate = m["rows"] / m["seconds"] if m.get("seconds") else None
                t_wall = m.get("wall_seconds")
            path = os.path.join(work, f"infer-python-{v}.json")
            if os.path.exists(path):
                with open(path) as f:
                    r = json.load(f)
                passes = r["passes"]
                p_first = passes[0]["images"] / passes[0]["seconds"]
                if len(passes) > 1:
                    p_second = passes[1]["images"] / passes[1]["seconds"]
        rows.append(f"| {variant_label(v)} | {batch} | {num(t_rate)} | {num(t_wall, 2)} | "
                    f"{num(p_first)} | {num(p_second)} | {ratio(t_rate, p_first)} |")
    return "\n".join(rows)


def optim_section(work):
    if work:
        for name in ("optim_step_cuda.md", "optim_step_cpu.md"):
            path = os.path.join(work, "optim", name)
            if os.path.exists(path):
                with open(path) as f:
                    text = f.read().strip()
                # One level down: the optimizer report's headings sit under this section's.
                return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", text,
                              flags=re.M)
    return ("| optimizer | B/param | tlkit ms | torch::optim ms | speed-up | floor ms | "
            "tlkit/floor |\n|---|---:|---:|---:|---:|---:|---:|\n" +
            "\n".join(f"| {o} | {b} | {NM} | {NM} | {NM} | {NM} | {NM} |"
                      for o, b in (("sgd", 12), ("momentum", 20), ("nesterov", 20),
                                   ("adagrad", 20), ("rmsprop", 20), ("rmsprop-centered", 36),
                                   ("adam", 28), ("adam-amsgrad", 36), ("adamw", 28))))


def write(args):
    work = None if args.placeholder else args.work
    # The placeholder states the settings a default run will use; only the numbers are missing.
    meta = read_meta(work) if work else {
        "model": "vgg16 (scripts/export_vgg16.py --random-init), 10 classes",
        "data": "2560 training images (10 classes x 256), 256x256 JPEG, synthetic; 100 "
                "validation images",
        "optimizer": "adam:lr=1e-4", "workers": "min(12, cores - 2)", "epochs": "4",
        "train_images": "2560"}
    get = lambda key, default=NM: meta.get(key) or default  # noqa: E731
    variants = get("variants", "fp32 bf16-cl").split()
    batches = [int(b) for b in get("batches", "128 32").split()]
    extract_batch = get("extract_batch", "128")
    quick = get("mode", "") == "quick"
    lines = []
    title = "# GPU check: tlkit against PyTorch on one GPU"
    if quick:
        title += " (--quick smoke test: tiny model and data, NOT a measurement)"
    lines.append(title + "\n")
    if work:
        lines.append(f"Produced by `bash bench/gpu_check.sh{' --quick' if quick else ''}` on "
                     f"{get('date')} in {get('total_seconds')} s.\n")
    else:
        lines.append("**Not measured yet: every number below reads \"not measured\".** No GPU was "
                     "at hand when this file was written. To produce it, on a machine with one "
                     "CUDA GPU, a CUDA build of tlkit in `build/` and a Python with CUDA torch "
                     "(about 5-8 minutes on one H200 with 16 cores):\n\n"
                     "```bash\nbash bench/gpu_check.sh                 # -> bench/results/gpu_check.md\n"
                     "bash bench/gpu_check.sh --build build-cuda --python /opt/venv/bin/python\n"
                     "bash bench/gpu_check.sh --quick         # CPU smoke test of the script only "
                     "(writes a temporary file)\n```\n\nThe script, its options and what each "
                     "number means: [bench/README.md](../README.md#gpu_checksh-tlkit-against-pytorch-on-one-gpu).\n")
    lines.append("| setting | value |\n|---|---|")
    for key, label in (("gpu", "device"), ("torch", "Python torch"), ("libtorch", "LibTorch (tlkit)"),
                       ("tlkit", "tlkit"), ("cpu", "host CPU"), ("cores", "host cores"),
                       ("workers", "data workers (tlkit threads / DataLoader processes)"),
                       ("decoder", "Python image decoding"), ("model", "model"),
                       ("data", "data"), ("optimizer", "optimizer"),
                       ("tlkit_flags", "tlkit precision flags found in --help")):
        lines.append(f"| {label} | {get(key)} |")
    lines.append("")

    epochs = get("epochs", "4")
    arch = {"vgg16": "VGG16"}.get(get("arch", "vgg16"), get("arch", "vgg16"))
    lines.append(f"## 1. Fine-tuning {arch} at {get('input', '224')}: tlkit train against the same "
                 "loop in PyTorch\n")
    lines.append(
        f"Every layer trained from the same TorchScript file, {epochs} epochs over the same "
        f"{get('train_images', '2,560')} training images (random resized crop at scale 0.5-1 + "
        "flip, tlkit's defaults, on both sides), the same optimizer, constant learning rate, "
        "no early stopping, EMA or snapshots. **images/s** is the median over epochs 2 and later "
        "of training images / the epoch's training time (validation and checkpoints excluded; "
        "tlkit: its progress line's batches / it/s, PyTorch: the loop timed between two "
        "`torch.cuda.synchronize()`); the first epoch (warm-up, cuDNN autotuning, allocator) is "
        "shown apart. Both read the loss and the accuracy of every batch (one device sync per "
        "step, as tlkit's trainer does). Neither side turns on `cudnn.benchmark`; \"fp32\" is "
        "both frameworks' defaults (which let cuDNN use TF32 for convolutions). The losses are a "
        "sanity check that both trained, not a parity claim: the augmentation draws and the "
        "dropout masks differ.\n")
    lines.append(train_table(work, meta, variants, batches) + "\n")
    lines.append("## 2. Feature extraction to disk against forward-only inference\n")
    lines.append(
        f"`tlkit extract` over the training images at batch {extract_batch} (decode, resize, "
        "centre crop, forward to the head's input `classifier.4`, features written to "
        "`features.npy` as it goes; its own clock, from the first batch to the last row "
        "written) against PyTorch inference over the same files with the same preprocessing "
        "(`torch.no_grad()`, the whole model, outputs copied to the host, nothing written). "
        "tlkit's time and PyTorch's first pass both include the first batch's warm-up; the second "
        "pass is warm.\n")
    extract_variants = get("extract_variants", "fp32 bf16-cl").split()
    lines.append(extract_table(work, extract_variants, extract_batch) + "\n")
    lines.append("## 3. Optimizer step against copy bandwidth\n")
    if get("device", "cuda") == "cpu":
        lines.append(
            "`build/bench/optim_bench --device cpu` (no GPU in this run): one `step()` over "
            "VGG16's 138,357,544 parameters on the CPU against the STREAM-triad floor.\n")
    else:
        lines.append(
            "`build/bench/optim_bench --device cuda`: one `step()` over VGG16's 138,357,544 "
            "parameters on the GPU, tlkit::optim vs torch::optim, each step between two "
            "`torch::cuda::synchronize()`; floor = the bytes the update must read and write / "
            "the bandwidth of a device-to-device copy of a tensor as large as the parameter "
            "set.\n")
    lines.append(optim_section(work) + "\n")
    if work:
        lines.append("## Commands\n")
        lines.append("```\n" + get("commands", "").replace(" ;; ", "\n") + "\n```\n")
    text = "\n".join(lines)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", help="gpu_check.sh's work folder")
    parser.add_argument("--out", required=True)
    parser.add_argument("--placeholder", action="store_true",
                        help="every number 'not measured' (the file kept until a GPU run)")
    args = parser.parse_args()
    if not args.placeholder and not args.work:
        sys.exit("gpu_check_report.py: give --work DIR or --placeholder")
    write(args)


if __name__ == "__main__":
    main()
