#!/usr/bin/python3
"""Reference weights and logits for tlkit import (tests/model/import_test.cpp).

For each architecture: torchvision's model with random weights (batch-norm statistics and
affine parameters randomised too, so that eps and momentum matter), saved as torch.save writes
a state_dict (zip; --legacy: the pre-1.6 format; --safetensors: a .safetensors file written by a
tiny writer, python3-safetensors need not be installed), and its eval-mode logits on a fixed
input of --size pixels. Writes DIR/<arch>.<ext>, DIR/<arch>_input.pt and DIR/<arch>_logits.pt
(tensors saved with torch.save in a TorchScript-readable container: torch.jit.save of a module
holding them as attributes).

Usage: gen_import_reference.py --arch resnet18 --size 64 --out DIR [--legacy | --safetensors]
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", required=True)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--legacy", action="store_true")
    parser.add_argument("--safetensors", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = getattr(torchvision.models, args.arch)(weights=None).eval()
    randomise(model, args.seed + 1)
    state = model.state_dict()
    base = os.path.join(args.out, args.arch)
    if args.safetensors:
        save_safetensors(state, base + ".safetensors")
    else:
        torch.save(state, base + ".pth", _use_new_zipfile_serialization=not args.legacy)
    x = torch.randn(2, 3, args.size, args.size, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        logits = model(x)
    torch.jit.script(Holder(x)).save(base + "_input.pt")
    torch.jit.script(Holder(logits)).save(base + "_logits.pt")
    print(f"{args.arch}: {sum(p.numel() for p in model.parameters())} parameters")


if __name__ == "__main__":
    main()
