#!/usr/bin/env python3
"""Writes the bad-input corpus: folders, files and models a user might hand tlkit, each with the
outcome tlkit must give (cases.json beside them). Run with Debian's python3 (numpy, PIL, torch):

    /usr/bin/python3 tests/bad_inputs/make_corpus.py OUT_DIR

Each case names the data (a folder under OUT_DIR or a prefixed source), optionally a model and
extra arguments for `tlkit train`, the exit code, fragments the output must contain and, for
files that are skipped, the names the run must list. tests/cli/bad_inputs_cv_test.cpp runs them.
"""
import gzip
import io
import json
import os
import struct
import sys

import numpy as np
import torch
from PIL import Image

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(3)
cases = []


def image(path, size=16, fmt=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, fmt)


def folder(name, classes=("a", "b"), per_class=4):
    root = os.path.join(out, name)
    for c in classes:
        for i in range(per_class):
            image(os.path.join(root, c, f"{i}.png"))
    return root


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def case(name, data, exit_code, contains=(), skipped=(), model=None, args=""):
    cases.append({"name": name, "data": data, "model": model, "args": args, "exit": exit_code,
                  "contains": list(contains), "skipped": list(skipped)})


# --- files in an otherwise good folder: skipped, listed, the run completes
root = folder("empty_file")
write(os.path.join(root, "a", "empty.png"), b"")
case("an empty image file", "empty_file", 0, ["empty file"], ["empty.png"])

root = folder("text_as_jpg")
write(os.path.join(root, "b", "notes.jpg"), b"these are my notes, not a photo\n")
case("a text file named .jpg", "text_as_jpg", 0, ["unknown signature"], ["notes.jpg"])

root = folder("truncated_png")
buf = io.BytesIO()
Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buf, "PNG")
write(os.path.join(root, "a", "cut.png"), buf.getvalue()[: len(buf.getvalue()) // 2])
case("a PNG cut in half", "truncated_png", 0, ["IEND"], ["cut.png"])

root = folder("jpeg_junk_inside")
write(os.path.join(root, "a", "junk.jpg"), b"\xff\xd8\xff\xe0junkjunkjunk\xff\xd9")
case("JPEG markers around junk (passes the scan, fails to decode)", "jpeg_junk_inside", 0,
     ["cannot be decoded"], ["junk.jpg"])

root = folder("jpeg_cut_with_thumbnail")
main, thumb = io.BytesIO(), io.BytesIO()
Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(main, "JPEG", quality=95)
Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(thumb, "JPEG", quality=90)
payload = b"Exif\0\0" + thumb.getvalue()
app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
whole = main.getvalue()[:2] + app1 + main.getvalue()[2:]
write(os.path.join(root, "b", "cut.jpg"), whole[: 2 + len(app1) + (len(main.getvalue()) - 2) // 2])
case("a JPEG cut in half whose kept part holds a thumbnail's end marker",
     "jpeg_cut_with_thumbnail", 0, ["truncated"], ["cut.jpg"])

root = folder("hidden_class")
image(os.path.join(root, ".ipynb_checkpoints", "x.png"))
case("a hidden class folder (.ipynb_checkpoints)", "hidden_class", 0,
     ["ignoring the hidden folder"])

# --- folders that cannot make a classifier: one line, exit 1, nothing written
folder("one_class", classes=("only",))
case("one class folder", "one_class", 1, ["at least 2 class folders"])

root = folder("empty_class")
os.makedirs(os.path.join(root, "c"), exist_ok=True)
case("a class folder without images", "empty_class", 1, ["holds no readable images"])

for i in range(3):
    image(os.path.join(out, "loose_images", f"{i}.png"))
case("images directly in the data folder", "loose_images", 1, ["lie directly inside"])

root = os.path.join(out, "only_bad_files")
for c in ("a", "b"):
    write(os.path.join(root, c, "x.png"), b"not a png")
case("class folders holding only broken files", "only_bad_files", 1,
     ["holds no readable images"])

case("a data folder that does not exist", "does_not_exist", 1, ["does not exist"])

# --- IDX and CIFAR-10 files
idx = os.path.join(out, "idx_bad_magic")
labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + bytes([1, 2])
for part in ("train", "t10k"):
    write(os.path.join(idx, f"{part}-labels-idx1-ubyte"), labels)
    write(os.path.join(idx, f"{part}-images-idx3-ubyte"), b"\x01\x02\x08\x03" + b"\0" * 64)
case("an IDX file with a wrong magic number", "fashion-mnist:" + idx, 1, ["wrong magic number"])

idx = os.path.join(out, "idx_truncated")
images = bytes([0, 0, 8, 3]) + struct.pack(">III", 10, 28, 28) + bytes(28 * 28 * 4)
labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + bytes(10)
for part in ("train", "t10k"):
    write(os.path.join(idx, f"{part}-images-idx3-ubyte.gz"), gzip.compress(images))
    write(os.path.join(idx, f"{part}-labels-idx1-ubyte.gz"), gzip.compress(labels))
case("an IDX file shorter than its header says", "fashion-mnist:" + idx, 1, ["truncated"])

cifar = os.path.join(out, "cifar_wrong_size")
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    write(os.path.join(cifar, name), bytes(3073 * 2 + 100))
case("CIFAR-10 batches that are not whole records", "cifar10:" + cifar, 1,
     ["not a whole number of"])

# --- models
write(os.path.join(out, "models", "not_a_model.pt"), b"PK\x03\x04 this is not TorchScript")
folder("good")
case("a model file that is not TorchScript", "good", 1, ["not_a_model.pt"],
     model="models/not_a_model.pt")

torch.manual_seed(0)
two = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                          torch.nn.Flatten(), torch.nn.Linear(4, 10))
torch.jit.script(two).save(os.path.join(out, "models", "two_channels.pt"))
case("a model taking 2-channel images", "good", 1, ["takes images with 2 channels"],
     model="models/two_channels.pt")

# --- options
case("--out inside the data folder", "good", 1, ["inside the data folder"],
     args="--out {data}/run")
case("a negative --threads", "good", 2, ["--threads"], args="--threads -1")
case("--val-split outside [0, 1)", "good", 1, ["--val-split"], args="--val-split 1.5")
case("a stray positional argument", "good", 2, ["unexpected"], args="stray")
case("an unknown optimizer", "good", 1, ["unknown optimizer"], args="--optimizer adamx")
case("--on-nonfinite with an unknown policy", "good", 1, ["--on-nonfinite"],
     args="--on-nonfinite ignore")

with open(os.path.join(out, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
print(f"wrote {len(cases)} cases to {out}")
