"""Networks and Python training for bench/transfer_suite.py.

Six small VGG-style backbones (32x32 RGB input, mean/std 0.5), each a user's own model: its own
module names, some with batch norm, different pooling and heads; every one runs its children in
order (what tlkit's layer walk needs), some flatten in forward() rather than with nn.Flatten.
They are pretrained here in plain PyTorch and saved with torch.jit.script, without tlkit metadata.

  pretrain   on a source (images, labels), writes model.pt (TorchScript) and state.pt
  recipe     the usual Python two-stage recipe (scripts/python_two_stage.py) on ALL the labelled
             images of a run folder (train + val): a new classification layer trained alone with
             Adam 1e-3 for 400 steps on the frozen network (eval mode; its input features are
             computed once, which is the same computation), then every layer Adam 1e-4 (3e-4 for
             the new layer) for 40 epochs, batch 32, the last model on test
  scratch    the same architecture from random weights on the same images: Adam 1e-3, 40
             epochs, batch 32, the last model on test

Needs Debian's /usr/bin/python3 (python3-torch, python3-torchvision for Pillow).
"""
import math
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import python_two_stage  # noqa: E402  (load_split, batches, accuracy)

SIZE = 32
MEAN = STD = [0.5, 0.5, 0.5]
PREP = (SIZE, SIZE, MEAN, STD)  # resize (shorter side), centre crop, mean, std


def convs(widths, bn):
    """3x3 convolutions (padding 1) with ReLU, 'M' = 2x2 max pooling."""
    layers, cin = [], 3
    for w in widths:
        if w == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        layers.append(nn.Conv2d(cin, w, 3, padding=1, bias=not bn))
        if bn:
            layers.append(nn.BatchNorm2d(w))
        layers.append(nn.ReLU(inplace=True))
        cin = w
    return layers


class BnAvgMlp(nn.Module):
    """Batch norm, 2x2 average pooling, a hidden layer with dropout (like bench/foreign_model.py)."""

    def __init__(self, classes):
        super().__init__()
        self.body = nn.Sequential(*convs([16, 16, "M", 32, 32, "M", 64, 64, "M"], bn=True))
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(256, 128), nn.ReLU(inplace=True), nn.Dropout(0.3),
                                  nn.Linear(128, classes))

    def forward(self, x):
        return self.head(self.pool(self.body(x)))


class PlainFlat(nn.Module):
    """No batch norm, the 4x4 maps flattened (in forward) into a wide hidden layer, dropout 0.5."""

    def __init__(self, classes):
        super().__init__()
        self.conv = nn.Sequential(*convs([24, "M", 48, 48, "M", 96, "M"], bn=False))
        self.fc1 = nn.Linear(96 * 16, 128)
        self.act = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(128, classes)

    def forward(self, x):
        x = torch.flatten(self.conv(x), 1)
        return self.fc2(self.drop(self.act(self.fc1(x))))


class BnGapLinear(nn.Module):
    """Batch norm, global average pooling, one linear layer: the classifier is the classification layer."""

    def __init__(self, classes):
        super().__init__()
        self.trunk = nn.Sequential(*convs([32, "M", 64, "M", 128, "M"], bn=True))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(128, classes)

    def forward(self, x):
        return self.fc(self.flat(self.gap(self.trunk(x))))


class PlainAvgMlp(nn.Module):
    """No batch norm, 2x2 average pooling, a 256-wide hidden layer without dropout."""

    def __init__(self, classes):
        super().__init__()
        self.layers = nn.Sequential(*convs([16, 16, "M", 32, 32, "M", 64, 64, "M"], bn=False),
                                    nn.AdaptiveAvgPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(256, 256), nn.ReLU(inplace=True), nn.Linear(256, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.layers(x), 1))


class BnGapDeepHead(nn.Module):
    """Batch norm, global average pooling, two hidden layers (dropout after the first)."""

    def __init__(self, classes):
        super().__init__()
        self.features = nn.Sequential(*convs([32, "M", 64, "M", 128, "M"], bn=True), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten())
        self.mlp = nn.Sequential(nn.Linear(128, 128), nn.ReLU(inplace=True), nn.Dropout(0.5),
                                 nn.Linear(128, 64), nn.ReLU(inplace=True))
        self.out = nn.Linear(64, classes)

    def forward(self, x):
        return self.out(self.mlp(self.features(x)))


class PlainMaxSmall(nn.Module):
    """No batch norm, 2x2 max pooling at the end, a narrow hidden layer."""

    def __init__(self, classes):
        super().__init__()
        self.blocks = nn.Sequential(*convs([16, 32, "M", 32, "M", 64, "M"], bn=False))
        self.squeeze = nn.AdaptiveMaxPool2d(2)
        self.top = nn.Sequential(nn.Flatten(), nn.Linear(256, 64), nn.ReLU(inplace=True), nn.Linear(64, classes))

    def forward(self, x):
        return self.top(self.squeeze(self.blocks(x)))


ARCHS = {"bn_avg_mlp": BnAvgMlp, "plain_flat": PlainFlat, "bn_gap_linear": BnGapLinear,
         "plain_avg_mlp": PlainAvgMlp, "bn_gap_deep_head": BnGapDeepHead, "plain_max_small": PlainMaxSmall}


def classification_layer(model):
    """(parent module, child name, full name) of the last nn.Linear: the layer the recipe replaces."""
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            found = name
    parent_name, _, child = found.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), child, found


def tensors(images, labels=None):
    """PIL images -> the normalised batch tlkit sees (resize shorter side to 32, centre crop)."""
    xs = []
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    for image in images:
        image = image.convert("RGB").resize((SIZE, SIZE), resample=2)  # PIL bilinear, square inputs
        x = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(SIZE, SIZE, 3)
        xs.append((x.permute(2, 0, 1).float() / 255 - mean) / std)
    return torch.stack(xs)


def train_epochs(model, params, x, y, epochs, batch_size, generator, shift=0, schedule=None):
    loss_fn = nn.CrossEntropyLoss()
    batch = min(batch_size, len(y))
    for _ in range(epochs):
        model.train()
        for idx in python_two_stage.batches(len(y), batch, generator):
            xb = x[idx]
            if shift:
                dx, dy = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=generator))
                xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            params.zero_grad()
            loss_fn(model(xb), y[idx]).backward()
            params.step()
            if schedule:
                schedule.step()


def pretrain(arch, images, labels, classes, out, epochs, threads, seed=1):
    """Trains ARCHS[arch] on a source (90%; 10% held out to report), Adam 2e-3 with a cosine
    schedule and random shifts of up to 3 pixels; writes out/model.pt and out/state.pt."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    x, y = tensors(images), torch.tensor(labels)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=g)
    held = order[:len(y) // 10]
    fit = order[len(y) // 10:]
    model = ARCHS[arch](classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = epochs * math.ceil(len(fit) / 128)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    start = time.time()
    train_epochs(model, optimizer, x[fit], y[fit], epochs, 128, g, shift=3, schedule=schedule)
    held_acc = python_two_stage.accuracy(model, x[held], y[held])
    model.eval()
    os.makedirs(out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(out, "state.pt"))
    scripted = torch.jit.script(model)
    # The TorchScript file must compute what the eager model does.
    probe = x[held[:8]]
    with torch.no_grad():
        assert torch.allclose(scripted(probe), model(probe), atol=1e-5)
    scripted.save(os.path.join(out, "model.pt"))
    return {"arch": arch, "params": sum(p.numel() for p in model.parameters()), "source_images": len(y),
            "source_classes": classes, "epochs": epochs, "held_out_accuracy": held_acc,
            "seconds": time.time() - start, "threads": threads}


def load_run(data):
    """ALL labelled images of a run folder (train + val) and its test split."""
    classes = sorted(os.listdir(os.path.join(data, "train")))
    xs, ys = [], []
    for split in ("train", "val"):
        if os.path.isdir(os.path.join(data, split)):
            x, y = python_two_stage.load_split(data, split, classes, *PREP)
            xs.append(x)
            ys.append(y)
    test = python_two_stage.load_split(data, "test", classes, *PREP)
    return (torch.cat(xs), torch.cat(ys)), test, len(classes)


def recipe(arch, state_path, data, seed, threads, head_steps=400, epochs=40, batch_size=32):
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    (x, y), (tx, ty), classes = load_run(data)
    state = torch.load(state_path)
    model = ARCHS[arch](state[classification_layer(ARCHS[arch](1))[2] + ".weight"].shape[0])
    model.load_state_dict(state)
    parent, child, _ = classification_layer(model)
    setattr(parent, child, nn.Linear(getattr(parent, child).in_features, classes))
    head = getattr(parent, child)
    g = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    batch = min(batch_size, len(y))

    # 1. The new layer alone on the frozen network in eval mode: its input, computed once.
    model.eval()
    features = {}
    hook = head.register_forward_hook(lambda m, inp, out: features.__setitem__("x", inp[0].detach()))
    with torch.no_grad():
        model(x)
    hook.remove()
    f = features["x"]
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
    steps = 0
    while steps < head_steps:
        for idx in python_two_stage.batches(len(y), batch, g):
            optimizer.zero_grad()
            loss_fn(head(f[idx]), y[idx]).backward()
            optimizer.step()
            steps += 1
            if steps == head_steps:
                break
    stage1 = python_two_stage.accuracy(model, tx, ty)

    # 2. Every layer, Adam 1e-4 (3e-4 for the new layer), last model.
    head_ids = {id(q) for q in head.parameters()}
    optimizer = torch.optim.Adam([
        {"params": [q for q in model.parameters() if id(q) not in head_ids], "lr": 1e-4},
        {"params": list(head.parameters()), "lr": 3e-4}])
    train_epochs(model, optimizer, x, y, epochs, batch_size, g)
    return {"stage1_test_accuracy": stage1, "test_accuracy": python_two_stage.accuracy(model, tx, ty),
            "train_images": len(y), "test_images": len(ty)}


def scratch(arch, data, seed, threads, epochs=40, batch_size=32, lr=1e-3):
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    (x, y), (tx, ty), classes = load_run(data)
    model = ARCHS[arch](classes)
    g = torch.Generator().manual_seed(seed)
    train_epochs(model, torch.optim.Adam(model.parameters(), lr=lr), x, y, epochs, batch_size, g)
    return {"test_accuracy": python_two_stage.accuracy(model, tx, ty), "train_images": len(y),
            "test_images": len(ty)}
