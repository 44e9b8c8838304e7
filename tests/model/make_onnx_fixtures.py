#!/usr/bin/python3
"""TorchScript models for the ONNX export tests, beyond the VGG layout of scripts/export_vgg16.py.

  mixed.pt        a MobileNet/EfficientNet-style graph on 16x16 inputs: strided and depthwise
                  convolutions, batch norm, ReLU6, hardswish, SiLU, a squeeze-and-excitation gate
                  (adaptive average pool to 1x1, sigmoid, multiply), a residual add, max pooling
                  with ceil_mode, average pooling, hardsigmoid, a scalar subtraction, the mean over
                  H and W and a linear head; random weights and batch-norm statistics.
  unsupported.pt  a small convolutional model whose forward uses torch.tanh (no ONNX mapping in
                  tlkit): the export must refuse it naming aten::tanh.

Usage: /usr/bin/python3 tests/model/make_onnx_fixtures.py --out DIR
"""
import argparse
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.depthwise = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.se_reduce = nn.Conv2d(c, 4, 1)
        self.se_expand = nn.Conv2d(4, c, 1)

    def forward(self, x):
        y = F.hardswish(self.bn1(self.conv1(x)))
        y = F.silu(self.depthwise(y))
        gate = torch.sigmoid(self.se_expand(torch.relu(self.se_reduce(F.adaptive_avg_pool2d(y, 1)))))
        return x + y * gate


class Mixed(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8),
                                  nn.ReLU6(inplace=True))
        self.block = Block(8)
        self.maxpool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.avgpool = nn.AvgPool2d(2)
        self.gate = nn.Hardsigmoid()
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        x = self.block(self.stem(x))
        x = self.avgpool(self.maxpool(x))
        x = x * self.gate(x) - 0.25
        return self.fc(self.dropout(x.mean([2, 3])))


class Unsupported(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, classes)

    def forward(self, x):
        x = torch.tanh(self.conv(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def randomise(model):
    """Weights large enough for confident, varied predictions; batch-norm statistics not trivial."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0, 3.0 / m.in_features ** 0.5)


def save(model, path, classes):
    model.eval()
    scripted = torch.jit.script(model)
    meta = {"tlkit_format": 1, "tlkit_architecture": type(model).__name__.lower(),
            "tlkit_input_size": 16, "tlkit_resize": 16, "tlkit_crop": 16,
            "tlkit_mean": [0.5, 0.5, 0.5], "tlkit_std": [0.25, 0.25, 0.25],
            "tlkit_weights": "random-init (test fixture)",
            "tlkit_class_names": [f"c{i}" for i in range(classes)], "tlkit_head": "fc"}
    for name, value in meta.items():
        if isinstance(value, list):
            elem = torch._C.FloatType.get() if isinstance(value[0], float) else torch._C.StringType.get()
            typ = torch._C.ListType(elem)
        else:
            typ = torch._C.IntType.get() if isinstance(value, int) else torch._C.StringType.get()
        scripted._c._register_attribute(name, typ, value)
    scripted.save(path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    mixed = Mixed(5)
    randomise(mixed)
    save(mixed, os.path.join(args.out, "mixed.pt"), 5)
    save(Unsupported(3), os.path.join(args.out, "unsupported.pt"), 3)


if __name__ == "__main__":
    main()
