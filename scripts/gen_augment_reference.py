#!/usr/bin/env python3
"""Reference outputs of torchvision 0.14's automatic augmentation ops and RandomErasing's box
sampling, for tlkit's augmentation tests (tests/data/augment_test.cpp).

Each record is one line: `NAME DTYPE NDIM D0 .. Dn-1 V0 V1 ...` (a tensor, row-major; floats
written with repr(), which round-trips float32 values exactly through a double), as
gen_data_reference.py writes them. Records:

  in:K                 uint8 H x W x C input images: 0 noise 37 x 29 x 3, 1 a smooth gradient
                       37 x 29 x 3 whose blue channel is flat, 2 grey noise 23 x 31 x 1, 3 a
                       low-contrast RGB image 19 x 26 x 3 (values 90-149)
  mag:OP:J             float64 [magnitude]: the J-th magnitude tried for OP (both signs of
                       magnitudes from the two policies' tables)
  out:OP:J:K           uint8 H x W x C: autoaugment._apply_op(image K as C x H x W, OP, magnitude J,
                       NEAREST, fill=None), back to H x W x C
  space:rand:OP / space:wide:OP
                       float64 magnitudes per bin (31 bins) of RandAugment._augmentation_space(31,
                       (37, 29)) and TrivialAugmentWide._augmentation_space(31); absent for ops
                       without magnitudes
  signed:rand:OP / signed:wide:OP
                       int64 [1 if the sign is drawn, else 0]
  erase_case:N         float64 [H, W, scale lo, scale hi, ratio lo, ratio hi, u0, u1, ...]: fixed
                       uniform draws in [0, 1)
  erase_box:N          int64 [found, top, left, height, width] from RandomErasing.get_params
                       restated on those draws (below)

Usage: /usr/bin/python3 scripts/gen_augment_reference.py --out DIR  (writes DIR/augment_reference.txt)
"""
import argparse
import math
import os

import sys

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.autoaugment import RandAugment, TrivialAugmentWide, _apply_op

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_data_reference import record  # noqa: E402  (the tests' text format, written once)

OPS = ["Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness",
       "Color", "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize"]


def images():
    generator = torch.Generator().manual_seed(28)
    noise = torch.randint(0, 256, (37, 29, 3), dtype=torch.uint8, generator=generator)
    y = torch.arange(37, dtype=torch.float64).view(37, 1)
    x = torch.arange(29, dtype=torch.float64).view(1, 29)
    gradient = torch.stack([(y * 255 / 36).expand(37, 29), (x * 255 / 28).expand(37, 29),
                            torch.full((37, 29), 77.0)], dim=2).round().to(torch.uint8)
    grey = torch.randint(0, 256, (23, 31, 1), dtype=torch.uint8, generator=generator)
    low = torch.randint(90, 150, (19, 26, 3), dtype=torch.uint8, generator=generator)
    return [noise, gradient, grey, low]


def spaces():
    rand = RandAugment(num_magnitude_bins=31)._augmentation_space(31, (37, 29))
    wide = TrivialAugmentWide(num_magnitude_bins=31)._augmentation_space(31)
    return rand, wide


def magnitudes_tried(op, rand, wide):
    rand_values, signed = rand[op]
    wide_values, _ = wide[op]
    if rand_values.ndim == 0:
        return [0.0]
    if op == "Posterize":
        return [float(b) for b in range(0, 9)]
    if op == "Solarize":
        return [float(wide_values[b].item()) for b in (0, 3, 10, 15, 25, 30)]
    chosen = [float(wide_values[b].item()) for b in (3, 9, 17, 30)]
    chosen += [float(rand_values[b].item()) for b in (9, 30)]
    return [sign * m for m in chosen for sign in (1.0, -1.0)] if signed else chosen


def op_records(out):
    inputs = images()
    for k, image in enumerate(inputs):
        record(out, f"in:{k}", image)
    rand, wide = spaces()
    for op in OPS:
        for name, space in (("rand", rand), ("wide", wide)):
            values, signed = space[op]
            if values.ndim > 0:
                record(out, f"space:{name}:{op}", values.to(torch.float64))
            record(out, f"signed:{name}:{op}", torch.tensor([int(signed)], dtype=torch.int64))
        for j, magnitude in enumerate(magnitudes_tried(op, rand, wide)):
            record(out, f"mag:{op}:{j}", torch.tensor([magnitude], dtype=torch.float64))
            for k, image in enumerate(inputs):
                chw = image.permute(2, 0, 1).contiguous()
                result = _apply_op(chw, op, magnitude, interpolation=InterpolationMode.NEAREST,
                                   fill=None)
                record(out, f"out:{op}:{j}:{k}", result.permute(1, 2, 0).contiguous())


def erasing_box(height, width, scale, ratio, draws):
    """transforms.RandomErasing.get_params restated with its uniform draws given: the area and
    log-ratio draws of each try, then top and left as floor(u * n) of the kept box."""
    draws = iter(draws)
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        erase_area = area * (scale[0] + (scale[1] - scale[0]) * next(draws))
        aspect_ratio = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * next(draws))
        h = int(round(math.sqrt(erase_area * aspect_ratio)))
        w = int(round(math.sqrt(erase_area / aspect_ratio)))
        if not (h < height and w < width):
            continue
        i = min(height - h, math.floor(next(draws) * (height - h + 1)))
        j = min(width - w, math.floor(next(draws) * (width - w + 1)))
        return [1, i, j, h, w]
    return [0, 0, 0, height, width]


def erasing_records(out):
    generator = torch.Generator().manual_seed(33)
    cases = [(224, 224, (0.02, 0.33), (0.3, 3.3)), (37, 29, (0.02, 0.33), (0.3, 3.3)),
             (8, 40, (0.02, 0.33), (0.3, 3.3)), (32, 32, (0.1, 0.9), (0.5, 2.0)),
             (5, 5, (0.02, 0.33), (0.3, 3.3)),
             # Every try fails: a box of 90-100% of the area is never inside.
             (20, 30, (0.9, 1.0), (0.3, 3.3))]
    n = 0
    for height, width, scale, ratio in cases:
        for _ in range(8):
            draws = torch.rand(22, dtype=torch.float64, generator=generator).tolist()
            record(out, f"erase_case:{n}",
                   torch.tensor([height, width, *scale, *ratio, *draws], dtype=torch.float64))
            record(out, f"erase_box:{n}",
                   torch.tensor(erasing_box(height, width, scale, ratio, draws), dtype=torch.int64))
            n += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "augment_reference.txt")
    with open(path + ".tmp", "w") as out:
        op_records(out)
        erasing_records(out)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
