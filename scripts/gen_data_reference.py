#!/usr/bin/env python3
"""Reference outputs of torchvision 0.14's transforms for tlkit's data tests.

Each record is one line: `NAME DTYPE NDIM D0 .. Dn-1 V0 V1 ...` (a tensor, row-major; floats
written with repr(), which round-trips float32 values exactly through a double). Records:

  resize_sizes         K x 5 int64: H, W, size, H', W' from transforms.Resize(size) (shorter side)
  crop_in_N / crop_out_N / crop_size_N
                       uint8 H x W x 3 input, torchvision center_crop output (with its zero
                       padding when the crop is larger), and the crop (h, w)
  norm_in_rgb / norm_out_rgb, norm_in_grey / norm_out_grey
                       uint8 H x W x C input and float32 3 x H x W output of
                       ToTensor -> (grey: repeat to 3 channels) -> Normalize(ImageNet)
  rrc_fallback         K x 10 float64: H, W, scale lo/hi, ratio lo/hi, then the box i, j, h, w of
                       RandomResizedCrop.get_params on images where all ten tries must fail
  rrc_stats            float64 [mean area fraction, mean log aspect ratio, fraction of whole-image
                       boxes] of get_params over 20000 draws on a 375 x 500 image (defaults)
  bilinear_in / bilinear_out
                       uint8 6 x 5 x 3 and its Resize(11) (shorter side, to 13 x 11), bilinear,
                       no antialias

Image files written with PIL into DIR/data_images/, with PIL's decoding as the reference:
  pil_<file>           uint8 H x W x C as PIL decodes <file> (RGB, or L for grey; the 16-bit PNG
                       holds 8-bit values times 257, so its 8-bit reading is the 8-bit source)

Usage: /usr/bin/python3 scripts/gen_data_reference.py --out DIR   (writes DIR/data_reference.txt)
"""
import argparse
import math
import os

import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def record(out, name, tensor):
    dtype = {torch.uint8: "uint8", torch.int64: "int64", torch.float32: "float32",
             torch.float64: "float64"}[tensor.dtype]
    values = tensor.flatten().tolist()
    text = " ".join(repr(float(v)) if tensor.is_floating_point() else str(int(v)) for v in values)
    dims = " ".join(str(d) for d in tensor.shape)
    out.write(f"{name} {dtype} {tensor.dim()} {dims} {text}\n")


def patterned_image(height, width, channels, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (height, width, channels), dtype=torch.uint8, generator=generator)


def resize_sizes(out):
    rows = []
    for (h, w) in [(375, 500), (500, 375), (32, 32), (100, 333), (333, 100), (7, 3), (224, 300)]:
        for size in (256, 224, 8):
            image = torch.zeros(1, h, w)
            resized = T.Resize(size)(image)
            rows.append([h, w, size, resized.shape[1], resized.shape[2]])
    record(out, "resize_sizes", torch.tensor(rows, dtype=torch.int64))


def center_crops(out):
    cases = [(7, 9, 4, 4), (8, 8, 5, 5), (5, 6, 8, 8), (10, 7, 3, 6), (6, 6, 6, 6), (9, 4, 5, 7)]
    for n, (h, w, ch, cw) in enumerate(cases):
        image = patterned_image(h, w, 3, 100 + n)
        cropped = F.center_crop(image.permute(2, 0, 1), [ch, cw]).permute(1, 2, 0).contiguous()
        record(out, f"crop_in_{n}", image)
        record(out, f"crop_out_{n}", cropped)
        record(out, f"crop_size_{n}", torch.tensor([ch, cw], dtype=torch.int64))


def normalisation(out):
    normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    rgb = patterned_image(5, 6, 3, 7)
    record(out, "norm_in_rgb", rgb)
    record(out, "norm_out_rgb", normalize(T.ToTensor()(rgb.numpy())))
    grey = patterned_image(4, 3, 1, 8)
    record(out, "norm_in_grey", grey)
    record(out, "norm_out_grey", normalize(T.ToTensor()(grey.numpy()).repeat(3, 1, 1)))


def rrc_fallback(out):
    rows = []
    for (h, w, scale, ratio) in [(10, 1000, (0.08, 1.0), (3 / 4, 4 / 3)),
                                 (1000, 10, (0.08, 1.0), (3 / 4, 4 / 3)),
                                 (12, 700, (0.5, 1.0), (1.0, 1.0)),
                                 (700, 12, (0.3, 0.9), (0.5, 2.0)),
                                 (9, 999, (0.08, 1.0), (3 / 4, 4 / 3))]:
        i, j, bh, bw = T.RandomResizedCrop.get_params(torch.zeros(1, h, w), list(scale), list(ratio))
        rows.append([h, w, scale[0], scale[1], ratio[0], ratio[1], i, j, bh, bw])
    record(out, "rrc_fallback", torch.tensor(rows, dtype=torch.float64))


def rrc_stats(out):
    draws, area, log_ratio, whole = 20000, 0.0, 0.0, 0
    image = torch.zeros(1, 375, 500)
    for _ in range(draws):
        _, _, h, w = T.RandomResizedCrop.get_params(image, [0.08, 1.0], [3 / 4, 4 / 3])
        area += h * w / (375 * 500) / draws
        log_ratio += math.log(w / h) / draws
        whole += (h, w) == (375, 500)
    record(out, "rrc_stats", torch.tensor([area, log_ratio, whole / draws], dtype=torch.float64))


def bilinear(out):
    image = patterned_image(6, 5, 3, 9)
    resized = F.resize(image.permute(2, 0, 1), 11, interpolation=T.InterpolationMode.BILINEAR,
                       antialias=False)
    record(out, "bilinear_in", image)
    record(out, "bilinear_out", resized.permute(1, 2, 0).contiguous())


def pil_images(out, folder):
    import numpy as np
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    rgb = patterned_image(13, 17, 3, 21).numpy()
    grey = patterned_image(11, 9, 1, 22).numpy()[:, :, 0]
    alpha = patterned_image(13, 17, 1, 23).numpy()
    files = {
        "rgb.png": Image.fromarray(rgb, "RGB"),
        "grey.png": Image.fromarray(grey, "L"),
        "rgba.png": Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA"),
        "grey16.png": Image.fromarray(grey.astype(np.uint16) * 257),
        "rgb.bmp": Image.fromarray(rgb, "RGB"),
        "rgb.tiff": Image.fromarray(rgb, "RGB"),
        "rgb.webp": Image.fromarray(rgb, "RGB"),
        "rgb.jpg": Image.fromarray(rgb, "RGB"),
        "grey.jpg": Image.fromarray(grey, "L"),
    }
    for name, image in files.items():
        path = os.path.join(folder, name)
        options = {"lossless": True} if name.endswith(".webp") else {"quality": 95} if name.endswith(".jpg") else {}
        image.save(path, **options)
        decoded = Image.open(path)
        if name == "grey16.png":
            array = grey[:, :, None]
        elif decoded.mode in ("L", "I", "I;16"):
            array = np.asarray(decoded.convert("L"))[:, :, None]
        else:
            array = np.asarray(decoded.convert("RGB"))
        record(out, "pil_" + name, torch.from_numpy(np.array(array)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    path = os.path.join(args.out, "data_reference.txt")
    with open(path + ".tmp", "w") as out:
        resize_sizes(out)
        center_crops(out)
        normalisation(out)
        rrc_fallback(out)
        rrc_stats(out)
        bilinear(out)
        pil_images(out, os.path.join(args.out, "data_images"))
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
