#!/usr/bin/python3
"""Reference weights and logits for tlkit import (tests/model/import_test.cpp).

For each ARCH:FORMAT of --models: torchvision's model with random weights (batch-norm statistics
and affine parameters randomised too, so that eps and momentum matter), saved as a state_dict in
FORMAT: zip (torch.save), legacy (torch.save's pre-1.6 format, as older hub checkpoints are) or
safetensors (written by the tiny writer below: python3-safetensors need not be installed); and
its eval-mode logits on a fixed 2x3xSIZExSIZE input. Writes DIR/<arch>_<format>.<ext>, and
DIR/<arch>_<format>_input.pt / _logits.pt (for a ResNet also _train_logits.pt and
_train_bn1_mean.pt: training mode, the first batch norm's running mean after it; TorchScript modules holding the tensor as `value`,
which LibTorch reads). --names FILE writes, for the architectures of --names-archs, every
state_dict name and shape as JSON ({arch: [[name, [sizes]], ...]}).

Usage: make_torchvision_weights.py --models resnet18:zip,mobilenet_v3_small:legacy --size 64 --out DIR
"""
import argparse
import json
import os
import struct

import torch
import torchvision


def randomise(model, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(7)


SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16",
                      torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8"}


def save_safetensors(state, path):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, tensor in state.items():
        data = tensor.contiguous().numpy().tobytes()
        header[name] = {"dtype": SAFETENSORS_DTYPES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


class Holder(torch.nn.Module):
    def __init__(self, tensor):
        super().__init__()
        self.register_buffer("value", tensor)

    def forward(self):
        return self.value


def save_model(arch, fmt, size, out, seed):
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None).eval()
    randomise(model, seed + 1)
    state = model.state_dict()
    base = os.path.join(out, f"{arch}_{fmt}")
    if fmt == "safetensors":
        save_safetensors(state, base + ".safetensors")
    else:
        torch.save(state, base + ".pth", _use_new_zipfile_serialization=fmt == "zip")
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        logits = model(x)
    torch.jit.script(Holder(x)).save(base + "_input.pt")
    torch.jit.script(Holder(logits)).save(base + "_logits.pt")
    if arch.startswith("resnet"):  # no dropout: training mode is deterministic too
        model.train()
        with torch.no_grad():
            torch.jit.script(Holder(model(x))).save(base + "_train_logits.pt")
        torch.jit.script(Holder(model.bn1.running_mean)).save(base + "_train_bn1_mean.pt")
    print(f"{arch}: {sum(p.numel() for p in model.parameters())} parameters")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="", help="ARCH:FORMAT,... (zip, legacy, safetensors)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--names", help="write the state_dict names and shapes here")
    parser.add_argument("--names-archs", default="")
    args = parser.parse_args()
    for spec in filter(None, args.models.split(",")):
        arch, fmt = spec.split(":")
        save_model(arch, fmt, args.size, args.out, args.seed)
    if args.names:
        names = {}
        for arch in filter(None, args.names_archs.split(",")):
            model = getattr(torchvision.models, arch)(weights=None)
            names[arch] = [[k, list(v.shape)] for k, v in model.state_dict().items()]
        with open(args.names, "w") as f:
            json.dump(names, f)


if __name__ == "__main__":
    main()
