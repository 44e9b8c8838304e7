#!/usr/bin/env python3
"""The usual Python two-stage transfer recipe, as a reference for tlkit finetune's defaults:

  1. replace the classification layer (classifier.6) for the folder's classes and train it alone
     on the frozen network (eval mode) for --head-steps steps, Adam 1e-3;
  2. fine-tune every layer for --epochs epochs, Adam 1e-4 on the pretrained layers and 3e-4 on
     the new head, batch 32; report the last model on the test split.

It reads a tlkit model file (the TorchScript export with its tlkit_* metadata: architecture,
preprocessing) and an image folder DIR/{train,val,test}/<class>/*.png, uses the same
preprocessing (resize the shorter side, centre crop, normalise), and prints one JSON line.
Needs Debian's /usr/bin/python3 with python3-torch, python3-torchvision (Pillow).

Usage: /usr/bin/python3 scripts/python_two_stage.py --model runs/demo/pretrain/model.pt \
           --data runs/demo/n5/seed1/digits --seed 1
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_vgg16  # noqa: E402  (the same architectures tlkit's models are exported from)


def load_split(root, split, classes, resize, crop, mean, std):
    xs, ys = [], []
    folder = os.path.join(root, split)
    for label, name in enumerate(classes):
        for file in sorted(os.listdir(os.path.join(folder, name))):
            image = Image.open(os.path.join(folder, name, file)).convert("RGB")
            w, h = image.size
            scale = resize / min(w, h)
            image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
            w, h = image.size
            left, top = (w - crop) // 2, (h - crop) // 2
            image = image.crop((left, top, left + crop, top + crop))
            x = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(crop, crop, 3)
            x = x.permute(2, 0, 1).float() / 255
            xs.append((x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1))
            ys.append(label)
    return torch.stack(xs), torch.tensor(ys)


def batches(n, size, generator):
    order = torch.randperm(n, generator=generator)
    return [order[i:i + size] for i in range(0, n, size)]


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def two_stage(model, holder, head_key, train, test, args):
    """Stage 1 then stage 2 on `model`, whose classification layer is holder[head_key] (replaced
    here for the folder's classes). Returns (stage-1 test accuracy, final test accuracy)."""
    train_x, train_y = train
    test_x, test_y = test
    classes = int(max(train_y.max(), test_y.max())) + 1
    holder[head_key] = nn.Linear(holder[head_key].in_features, classes)
    head = holder[head_key]
    g = torch.Generator().manual_seed(args.seed)
    loss_fn = nn.CrossEntropyLoss()
    batch = min(args.batch_size, len(train_y))

    # 1. The new head on the frozen network.
    for q in model.parameters():
        q.requires_grad_(False)
    for q in head.parameters():
        q.requires_grad_(True)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
    model.eval()
    steps = 0
    while steps < args.head_steps:
        for idx in batches(len(train_y), batch, g):
            optimizer.zero_grad()
            loss_fn(model(train_x[idx]), train_y[idx]).backward()
            optimizer.step()
            steps += 1
            if steps == args.head_steps:
                break
    stage1 = accuracy(model, test_x, test_y)

    # 2. Every layer, Adam 1e-4 (3e-4 for the new head).
    for q in model.parameters():
        q.requires_grad_(True)
    head_ids = {id(q) for q in head.parameters()}
    optimizer = torch.optim.Adam([
        {"params": [q for q in model.parameters() if id(q) not in head_ids], "lr": 1e-4},
        {"params": list(head.parameters()), "lr": 3e-4}])
    for _ in range(args.epochs):
        model.train()
        for idx in batches(len(train_y), batch, g):
            optimizer.zero_grad()
            loss_fn(model(train_x[idx]), train_y[idx]).backward()
            optimizer.step()
    return stage1, accuracy(model, test_x, test_y)


def recipe_arguments(p):
    p.add_argument("--data", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--head-steps", type=int, default=400)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)


def run(model, holder, head_key, prep, args):
    """Loads DIR/train and DIR/test with `prep` (resize, crop, mean, std), runs the recipe and
    prints its JSON line."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    classes = sorted(os.listdir(os.path.join(args.data, "train")))
    train = load_split(args.data, "train", classes, *prep)
    test = load_split(args.data, "test", classes, *prep)
    stage1, final = two_stage(model, holder, head_key, train, test, args)
    print(json.dumps({"data": args.data, "seed": args.seed, "stage1_test_accuracy": stage1,
                      "test_accuracy": final, "train_images": len(train[1]), "test_images": len(test[1])}))
    return 0


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    recipe_arguments(p)
    args = p.parse_args(argv)
    scripted = torch.jit.load(args.model)
    ns = argparse.Namespace(arch=scripted.tlkit_architecture, num_classes=len(scripted.tlkit_class_names),
                            weights=None, dropout=0.5)
    model = export_vgg16.build_model(ns)[0]
    model.load_state_dict(scripted.state_dict())
    prep = (scripted.tlkit_resize, scripted.tlkit_crop, list(scripted.tlkit_mean), list(scripted.tlkit_std))
    return run(model, model.classifier, 6, prep, args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
