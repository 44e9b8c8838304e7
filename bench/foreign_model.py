#!/usr/bin/env python3
"""A model tlkit's export script did not make, for bench/foreign_model.sh: a VGG-style network with
batch normalisation, its own module names (body / pool / head) and its own preprocessing (32x32,
mean 0.5 / std 0.5), pretrained here in plain PyTorch and saved with torch.jit.script, without any
tlkit metadata, as a user's own model would be.

  pretrain --glyphs DIR --out DIR     trains it on the printed-character folder
                                      (scripts/make_glyph_folder.py); writes DIR/model.pt
                                      (TorchScript) and DIR/state.pt (its state dict)
  recipe --state DIR/state.pt --data D --seed S
                                      the usual Python two-stage recipe (scripts/python_two_stage.py)
                                      on the same network, images and preprocessing; one JSON line

Needs Debian's /usr/bin/python3 (python3-torch, python3-torchvision for Pillow).
"""
import argparse
import math
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import python_two_stage  # noqa: E402

PREP = (32, 32, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])  # resize, crop, mean, std


class Net(nn.Module):
    def __init__(self, classes):
        super().__init__()

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(*block(3, 32), *block(32, 32), nn.MaxPool2d(2),
                                  *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
                                  *block(64, 128), *block(128, 128), nn.MaxPool2d(2))
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(512, 256), nn.ReLU(inplace=True), nn.Dropout(0.3),
                                  nn.Linear(256, classes))

    def forward(self, x):
        return self.head(self.pool(self.body(x)))


def pretrain(args):
    torch.manual_seed(1)
    torch.set_num_threads(args.threads)
    classes = sorted(os.listdir(args.glyphs))
    # load_split reads ROOT/SPLIT/<class>/: the glyph folder is one split.
    parent, name = os.path.split(os.path.normpath(args.glyphs))
    x, y = python_two_stage.load_split(parent, name, classes, *PREP)
    model = Net(len(classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = args.epochs * math.ceil(len(y) / args.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    g = torch.Generator().manual_seed(1)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(args.epochs):
        total, correct = 0.0, 0
        for idx in python_two_stage.batches(len(y), args.batch_size, g):
            # A random shift of up to 3 pixels (the glyphs are centred).
            dx, dy = (int(v) for v in torch.randint(-3, 4, (2,), generator=g))
            batch = torch.roll(x[idx], shifts=(dy, dx), dims=(2, 3))
            optimizer.zero_grad()
            out = model(batch)
            loss = loss_fn(out, y[idx])
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(idx)
            correct += (out.argmax(1) == y[idx]).sum().item()
        print("epoch %d: train loss %.4f, accuracy %.2f%%" % (epoch + 1, total / len(y), 100 * correct / len(y)),
              flush=True)
    model.eval()
    os.makedirs(args.out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(args.out, "state.pt"))
    torch.jit.script(model).save(os.path.join(args.out, "model.pt"))
    return 0


def recipe(args):
    state = torch.load(args.state)
    model = Net(state["head.4.weight"].shape[0])
    model.load_state_dict(state)
    return python_two_stage.run(model, model.head, 4, PREP, args)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("pretrain")
    a.add_argument("--glyphs", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--epochs", type=int, default=2)
    a.add_argument("--batch-size", type=int, default=128)
    a.add_argument("--threads", type=int, default=2)
    b = sub.add_parser("recipe")
    b.add_argument("--state", required=True)
    python_two_stage.recipe_arguments(b)
    args = p.parse_args(argv)
    return pretrain(args) if args.command == "pretrain" else recipe(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
