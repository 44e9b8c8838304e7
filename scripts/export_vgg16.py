#!/usr/bin/python3
"""Export a VGG image classifier as a TorchScript file that tlkit (and Python) can load.

The module is compiled with torch.jit.script (not traced), so Dropout and BatchNorm follow
train()/eval(). Metadata is stored in the module as attributes readable from C++ and Python:

  tlkit_format        int        metadata format version (1)
  tlkit_architecture  str        e.g. "vgg16", "vgg_cifar"
  tlkit_input_size    int        the square input size the model expects
  tlkit_resize        int        preprocessing: resize the shorter side to this
  tlkit_crop          int        preprocessing: centre crop of this size
  tlkit_mean/_std     List[float] preprocessing: per-channel normalisation
  tlkit_weights       str        where the weights came from ("random-init" = NOT pretrained)
  tlkit_class_names   List[str]  one name per output
  tlkit_head          str        the classification layer ("classifier.6")

Examples:
  /usr/bin/python3 scripts/export_vgg16.py --out models/vgg16.pt --weights DEFAULT
  /usr/bin/python3 scripts/export_vgg16.py --out models/vgg16.pt --weights-file vgg16-397923af.pth
  /usr/bin/python3 scripts/export_vgg16.py --arch vgg_cifar --num-classes 10 --random-init --out m.pt
"""
import argparse
import hashlib
import os
import sys
import tempfile

import torch
import torch.nn as nn

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
TORCHVISION_ARCHS = ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn")


class SmallVGG(nn.Module):
    """A VGG for small inputs with torchvision's layout: features.N, avgpool, classifier.0..6."""

    def __init__(self, cfg, batch_norm, in_channels, pool, hidden, num_classes, dropout=0.5):
        super().__init__()
        layers = []
        channels = in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers.append(nn.Conv2d(channels, v, kernel_size=3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(v))
                layers.append(nn.ReLU(inplace=True))
                channels = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
        self.classifier = nn.Sequential(
            nn.Linear(channels * pool * pool, hidden), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes))
        for m in self.modules():  # torchvision's VGG initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


# name -> (cfg, batch_norm, pool, hidden, default input size)
SMALL_ARCHS = {
    "vgg_cifar": ([32, 32, "M", 64, 64, "M", 128, 128, "M"], True, 2, 256, 32),
    "vgg_tiny": ([4, "M", 8, "M"], False, 2, 16, 16),
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="vgg16", choices=sorted(TORCHVISION_ARCHS + tuple(SMALL_ARCHS)))
    p.add_argument("--num-classes", type=int, default=None,
                   help="outputs of the head (default: 1000 for torchvision archs, 10 for small ones)")
    p.add_argument("--class-names", default=None, help="comma-separated class names (default class_0, ...)")
    p.add_argument("--input-size", type=int, default=None,
                   help="square input size (default 224 for torchvision archs; 32 vgg_cifar; 16 vgg_tiny)")
    p.add_argument("--resize", type=int, default=None, help="preprocessing resize (default 256/224 x crop)")
    p.add_argument("--out", required=True, help="the TorchScript file to write (.pt)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="torchvision weights enum name, e.g. DEFAULT (downloads once)")
    src.add_argument("--weights-file", help="a torchvision .pth state dict you already have")
    src.add_argument("--random-init", action="store_true", help="random weights (NOT pretrained)")
    p.add_argument("--seed", type=int, default=0, help="seed for --random-init")
    p.add_argument("--dropout", type=float, default=0.5,
                   help="dropout probability of the small archs' classifier (0: none)")
    return p.parse_args(argv)


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_model(args):
    """Returns (model, weights description, class names or None, mean, std)."""
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if args.arch in SMALL_ARCHS:
        cfg, bn, pool, hidden, _ = SMALL_ARCHS[args.arch]
        if args.weights:
            sys.exit(f"--weights: there are no published weights for {args.arch}; use --random-init "
                     "(then train it) or --weights-file")
        model = SmallVGG(cfg, bn, 3, pool, hidden, args.num_classes or 10, dropout=args.dropout)
        return model, None, None, mean, std
    import torchvision
    builder = getattr(torchvision.models, args.arch)
    names = None
    if args.weights:
        enum = torchvision.models.get_model_weights(args.arch)
        weights = enum.DEFAULT if args.weights == "DEFAULT" else enum[args.weights]
        model = builder(weights=weights)
        names = list(weights.meta.get("categories") or [])
        return model, f"torchvision:{weights}", names, mean, std
    model = builder(weights=None)
    return model, None, None, mean, std


def load_weights_file(model, path):
    state = torch.load(path, map_location="cpu")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        sys.exit(f"--weights-file {path}: does not fit the chosen --arch: {e}")
    return f"file:{os.path.basename(path)} sha256:{sha256_of(path)}"


def replace_head(model, num_classes):
    """Gives classifier.6 a new number of outputs (torchvision's default init for Linear)."""
    old = model.classifier[6]
    if old.out_features != num_classes:
        model.classifier[6] = nn.Linear(old.in_features, num_classes)


def attach_metadata(scripted, meta):
    """Adds the tlkit_* attributes to the compiled module (visible from C++ and Python)."""
    types = {int: torch._C.IntType.get(), str: torch._C.StringType.get()}
    for name, value in meta.items():
        if isinstance(value, list):
            elem = torch._C.FloatType.get() if value and isinstance(value[0], float) else torch._C.StringType.get()
            typ = torch._C.ListType(elem)
        else:
            typ = types[type(value)]
        scripted._c._register_attribute(name, typ, value)


def atomic_save(scripted, out):
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".export.", suffix=".pt", dir=folder)
    os.close(fd)
    try:
        scripted.save(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    model, weights_source, names, mean, std = build_model(args)
    if args.weights_file:
        weights_source = load_weights_file(model, args.weights_file)
    elif args.random_init:
        weights_source = f"random-init (seed {args.seed}; NOT pretrained)"
    num_classes = args.num_classes or model.classifier[6].out_features
    if num_classes != model.classifier[6].out_features:
        replace_head(model, num_classes)
        names = None
    if args.class_names:
        names = [n.strip() for n in args.class_names.split(",")]
        if len(names) != num_classes:
            sys.exit(f"--class-names has {len(names)} names but the head has {num_classes} outputs")
    if not names or len(names) != num_classes:
        names = [f"class_{i}" for i in range(num_classes)]
    default_size = SMALL_ARCHS[args.arch][4] if args.arch in SMALL_ARCHS else 224
    size = args.input_size or default_size
    resize = args.resize or (size if args.arch in SMALL_ARCHS else round(size * 256 / 224))
    model.eval()
    with torch.no_grad():
        channels = model.features[0].in_channels
        out = model(torch.zeros(1, channels, size, size))
    if tuple(out.shape) != (1, num_classes):
        sys.exit(f"--input-size {size} does not fit {args.arch}: output shape {tuple(out.shape)}")
    scripted = torch.jit.script(model)
    attach_metadata(scripted, {
        "tlkit_format": 1, "tlkit_architecture": args.arch, "tlkit_input_size": size,
        "tlkit_resize": resize, "tlkit_crop": size, "tlkit_mean": [float(m) for m in mean],
        "tlkit_std": [float(s) for s in std], "tlkit_weights": weights_source,
        "tlkit_class_names": names, "tlkit_head": "classifier.6"})
    atomic_save(scripted, args.out)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out}: {args.arch}, {params} parameters, {num_classes} classes, "
          f"input {size}x{size}, weights: {weights_source}")
    if args.random_init:
        print("warning: random weights - this model is NOT pretrained", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
