#!/usr/bin/env python3
"""Turns the first images of Fashion-MNIST (Debian's dataset-fashion-mnist) into a folder of
JPEGs, one subfolder per class, upscaled to photo-like sizes so that decoding and resizing cost
what they cost on real photos:

    OUT/<class>/img_<index>.jpg      --per-class images of each of the 10 classes, --size pixels
                                     a side, RGB, JPEG quality 90

The images are the first --per-class of each class in the training file's order (reproducible).
Needs Pillow (a dependency of python3-torchvision).

Usage: /usr/bin/python3 scripts/make_fashion_folder.py --out /tmp/fashion160 --per-class 16
"""
import argparse
import gzip
import os
import struct
import sys

from PIL import Image

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
           "boot"]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return shape, data[4 + 4 * dims:]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default=DEFAULT_DIR, help="folder with the *-idx*-ubyte.gz files")
    p.add_argument("--out", required=True)
    p.add_argument("--per-class", type=int, default=16)
    p.add_argument("--size", type=int, default=256, help="pixels a side after upscaling")
    args = p.parse_args(argv)
    (n, rows, cols), pixels = read_idx(os.path.join(args.dataset, "train-images-idx3-ubyte.gz"))
    (_,), labels = read_idx(os.path.join(args.dataset, "train-labels-idx1-ubyte.gz"))
    counts = [0] * len(CLASSES)
    for name in CLASSES:
        os.makedirs(os.path.join(args.out, name), exist_ok=True)
    for i in range(n):
        label = labels[i]
        if counts[label] >= args.per_class:
            if min(counts) >= args.per_class:
                break
            continue
        counts[label] += 1
        cell = pixels[i * rows * cols:(i + 1) * rows * cols]
        image = Image.frombytes("L", (cols, rows), bytes(cell)).resize(
            (args.size, args.size), Image.BICUBIC).convert("RGB")
        image.save(os.path.join(args.out, CLASSES[label], f"img_{i:05d}.jpg"), quality=90)
    print(f"wrote {sum(counts)} JPEGs of {args.size}x{args.size} in {len(CLASSES)} classes to {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
