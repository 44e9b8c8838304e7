#!/usr/bin/env python3
"""Python reference for data_cv_bench: torchvision ImageFolder + DataLoader throughput.

The same work as tlkit's loader in bench/data_cv_bench.cpp: decode JPEG (PIL), RandomResizedCrop(224)
(scale (0.08, 1), ratio (3/4, 4/3)), RandomHorizontalFlip, ToTensor, Normalize(ImageNet), batches
of 64, shuffled, on `--workers` worker processes. One untimed warm-up epoch starts the (persistent)
workers and fills the page cache; each timed epoch then iterates every batch. Prints one JSON line:
{"images_per_s": [...], "images": N, "seconds": [...], "workers": W, "batch_size": B}.
With --stage-costs it prints instead the single-process cost of each stage over the first 100
images: {"decode_ms": ..., "transform_ms": ...} (PIL open + convert("RGB"); the transforms).

Usage: /usr/bin/python3 bench/data_bench_reference.py --dir IMAGES [--workers 2] [--batch-size 64]
       [--epochs 1] [--stage-costs]
"""
import argparse
import json
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms as T


def stage_costs(dataset, transform, n):
    torch.set_num_threads(1)
    n = min(n, len(dataset))
    decode = rest = 0.0
    for i in range(n):
        start = time.perf_counter()
        image = dataset.loader(dataset.samples[i][0])  # PIL open + convert("RGB")
        decode += time.perf_counter() - start
        start = time.perf_counter()
        transform(image)
        rest += time.perf_counter() - start
    return {"decode_ms": 1000 * decode / n, "transform_ms": 1000 * rest / n}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="image folder (one sub-folder per class)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs after the warm-up")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stage-costs", action="store_true", help="time decode and transforms alone")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    transform = T.Compose([
        T.RandomResizedCrop(224),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])
    dataset = datasets.ImageFolder(args.dir, transform=transform)
    if args.stage_costs:
        print(json.dumps(stage_costs(dataset, transform, 100)))
        return
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                        persistent_workers=args.workers > 0)
    for _ in loader:  # warm-up
        pass
    seconds = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        images = 0
        for batch, _labels in loader:
            images += batch.shape[0]
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"images_per_s": [len(dataset) / s for s in seconds], "images": len(dataset),
                      "seconds": seconds, "workers": args.workers, "batch_size": args.batch_size}))


if __name__ == "__main__":
    main()
