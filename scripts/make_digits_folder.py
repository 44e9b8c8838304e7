#!/usr/bin/env python3
"""Turns OpenCV's handwritten digits sheet (digits.png: 5000 digits, 20x20 cells, 50 rows x 100
columns, 500 per digit, digit = row // 5) into an image folder for tlkit:

    OUT/train/<digit>/*.png   --train-per-class images per digit
    OUT/val/<digit>/*.png     --val-per-class images per digit
    OUT/test/<digit>/*.png    --test-per-class images per digit (held out)

The cells of each digit are shuffled with --seed before they are dealt out, so the splits are
disjoint and reproducible. Needs Pillow (a dependency of python3-torchvision).

Usage: /usr/bin/python3 scripts/make_digits_folder.py --out runs/demo/digits --train-per-class 10
"""
import argparse
import os
import random
import shutil
import sys

from PIL import Image

DEFAULT_SHEET = "/usr/share/doc/opencv-doc/examples/data/digits.png"
CELL = 20


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sheet", default=DEFAULT_SHEET, help="digits.png (Debian package opencv-doc)")
    p.add_argument("--out", required=True)
    p.add_argument("--train-per-class", type=int, default=10)
    p.add_argument("--val-per-class", type=int, default=10)
    p.add_argument("--test-per-class", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not os.path.exists(args.sheet):
        sys.exit("cannot find %s: install the Debian package opencv-doc (bash scripts/setup.sh)" % args.sheet)
    need = args.train_per_class + args.val_per_class + args.test_per_class
    if need > 500 or min(args.train_per_class, args.val_per_class, args.test_per_class) < 1:
        sys.exit("each split needs >= 1 image per class and all together <= 500 per class (asked %d)" % need)
    sheet = Image.open(args.sheet).convert("L")
    if sheet.size != (2000, 1000):
        sys.exit("%s is %dx%d, expected 2000x1000" % (args.sheet, sheet.size[0], sheet.size[1]))
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    rng = random.Random(args.seed)
    for digit in range(10):
        cells = [(row, col) for row in range(digit * 5, digit * 5 + 5) for col in range(100)]
        rng.shuffle(cells)
        splits = [("train", args.train_per_class), ("val", args.val_per_class), ("test", args.test_per_class)]
        start = 0
        for split, count in splits:
            folder = os.path.join(args.out, split, str(digit))
            os.makedirs(folder, exist_ok=True)
            for row, col in cells[start:start + count]:
                box = (col * CELL, row * CELL, (col + 1) * CELL, (row + 1) * CELL)
                sheet.crop(box).save(os.path.join(folder, "r%02d_c%02d.png" % (row, col)))
            start += count
    print("wrote %s: %d train, %d val, %d test images per digit" %
          (args.out, args.train_per_class, args.val_per_class, args.test_per_class))


if __name__ == "__main__":
    main(sys.argv[1:])
