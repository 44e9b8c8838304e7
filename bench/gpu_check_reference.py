#!/usr/bin/env python3
"""The Python side of bench/gpu_check.sh: the same work as tlkit, in plain PyTorch.

  data   a synthetic image folder (train/ and val/, one sub-folder per class, JPEG files)
  train  fine-tune a TorchScript classifier (every layer) over an image folder, timing each epoch
  infer  forward-only inference over an image folder (no gradients, nothing written), timed

Every subcommand writes one JSON file (--json) that bench/gpu_check_report.py reads.

No torchvision model or transform is used: the model is the same TorchScript file tlkit trains
(torch.jit.load), its preprocessing comes from the file's metadata (tlkit_crop, tlkit_resize,
tlkit_mean, tlkit_std), and the training augmentation is tlkit's default, written out here:
RandomResizedCrop(crop, scale=(0.5, 1), ratio=(3/4, 4/3)) -> horizontal flip (p 0.5) -> [0, 1]
floats -> normalise; evaluation is resize (shorter side) -> centre crop -> normalise. Images are
decoded and resized with PIL (bilinear) when it is installed, else with torchvision.io and
torch.nn.functional.interpolate (bilinear, antialiased).

Examples:
  python3 bench/gpu_check_reference.py data --out /tmp/imgs --classes 10 --train-per-class 256
  python3 bench/gpu_check_reference.py train --model vgg16.pt --data /tmp/imgs --batch-size 128 \
      --epochs 4 --optimizer adam:lr=1e-4 --device cuda --json train.json
  python3 bench/gpu_check_reference.py infer --model vgg16.pt --data /tmp/imgs/train \
      --batch-size 128 --device cuda --json infer.json
"""

import argparse
import json
import math
import os
import random
import sys
import time

import torch

try:
    import PIL.Image  # noqa: F401

    # GPU_CHECK_NO_PIL=1 takes the torchvision.io path even where PIL is installed (to test it).
    HAVE_PIL = not os.environ.get("GPU_CHECK_NO_PIL")
except ImportError:  # pragma: no cover - depends on the machine
    HAVE_PIL = False

EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


# ----------------------------------------------------------------------------- synthetic data


def make_image(label, classes, size, rng):
    """A size x size RGB uint8 image (numpy, HWC) whose class can be learnt: a class colour,
    stripes whose angle and frequency depend on the class, a random phase and offset, noise."""
    import numpy as np

    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = math.pi * label / classes + rng.uniform(-0.15, 0.15)
    freq = 3.0 + 2.0 * (label % 4) + rng.uniform(-0.5, 0.5)
    phase = rng.uniform(0, 2 * math.pi)
    stripes = 0.5 + 0.5 * np.sin(
        2 * math.pi * freq * (x * math.cos(angle) + y * math.sin(angle)) + phase)
    hue = 2 * math.pi * label / classes
    colour = np.array([0.5 + 0.4 * math.cos(hue + k * 2 * math.pi / 3) for k in range(3)],
                      dtype=np.float32)
    image = stripes[..., None] * colour[None, None, :] + (1 - stripes[..., None]) * (1 - colour)
    image += rng.normal(0, 0.08, size=(size, size, 3)).astype(np.float32)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def save_jpeg(array, path):
    if HAVE_PIL:
        from PIL import Image

        Image.fromarray(array).save(path, quality=90)
    else:
        import torchvision.io

        torchvision.io.write_jpeg(torch.from_numpy(array).permute(2, 0, 1).contiguous(), path,
                                  quality=90)


def write_class(job):
    """One class of one split (its own seed, so the files do not depend on --jobs)."""
    import numpy as np

    out, split, label, classes, per_class, size, seed = job
    rng = np.random.default_rng([seed, 0 if split == "train" else 1, label])
    folder = os.path.join(out, split, f"class_{label:02d}")
    os.makedirs(folder, exist_ok=True)
    for i in range(per_class):
        save_jpeg(make_image(label, classes, size, rng), os.path.join(folder, f"{i:05d}.jpg"))


def cmd_data(args):
    jobs = [(args.out, split, label, args.classes, per_class, args.size, args.seed)
            for split, per_class in (("train", args.train_per_class), ("val", args.val_per_class))
            for label in range(args.classes)]
    workers = max(1, min(args.jobs or os.cpu_count() or 1, len(jobs)))
    if workers > 1:
        import multiprocessing

        with multiprocessing.Pool(workers) as pool:
            pool.map(write_class, jobs)
    else:
        for job in jobs:
            write_class(job)
    written = {"train": args.train_per_class * args.classes,
               "val": args.val_per_class * args.classes}
    info = {"classes": args.classes, "size": args.size, "format": "jpeg (quality 90)",
            "encoder": "PIL" if HAVE_PIL else "torchvision.io", **written}
    print(f"wrote {written['train']} training and {written['val']} validation images of "
          f"{args.size}x{args.size} ({args.classes} classes) to {args.out}", flush=True)
    write_json(args.json, info)


# ----------------------------------------------------------------------------- image folder


def list_image_folder(root):
    """torchvision ImageFolder's classes, labels and file order; names starting with '.' are
    left out, as tlkit does."""
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    samples = []
    for label, name in enumerate(classes):
        for folder, dirs, files in sorted(os.walk(os.path.join(root, name), followlinks=True)):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for f in sorted(files):
                if not f.startswith(".") and f.lower().endswith(EXTENSIONS):
                    samples.append((os.path.join(folder, f), label))
    if not samples:
        sys.exit(f"gpu_check_reference: no images under {root}")
    return classes, samples


def decode(path):
    """uint8 CHW tensor, RGB."""
    if HAVE_PIL:
        from PIL import Image

        with Image.open(path) as im:
            return im.convert("RGB")
    import torchvision.io

    image = torchvision.io.read_image(path, torchvision.io.ImageReadMode.RGB)
    return image


def size_of(image):  # (height, width)
    return (image.height, image.width) if HAVE_PIL else tuple(image.shape[1:])


def resized_region(image, top, left, height, width, out_h, out_w):
    """The region resized to out_h x out_w (bilinear), as a float CHW tensor in [0, 1]."""
    if HAVE_PIL:
        from PIL import Image
        import numpy as np

        region = image.resize((out_w, out_h), Image.BILINEAR,
                              box=(left, top, left + width, top + height))
        return torch.from_numpy(np.asarray(region, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255
    region = image[:, top:top + height, left:left + width].float().unsqueeze(0)
    if (height, width) != (out_h, out_w):
        region = torch.nn.functional.interpolate(region, size=(out_h, out_w), mode="bilinear",
                                                 align_corners=False, antialias=True)
    return region.squeeze(0).clamp_(0, 255) / 255


def random_resized_crop_params(height, width, scale, ratio, rng):
    """torchvision's RandomResizedCrop.get_params (ten tries, then a central crop)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class Folder(torch.utils.data.Dataset):
    def __init__(self, samples, crop, resize, mean, std, train, min_crop_scale=0.5, flip=0.5):
        self.samples, self.crop, self.resize, self.train = samples, crop, resize, train
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.scale, self.flip = (min_crop_scale, 1.0), flip

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        image = decode(path)
        h, w = size_of(image)
        if self.train:
            # Python's random module: the DataLoader seeds it in every worker (from the loader's
            # generator), and persistent workers carry its state on to the next epoch.
            rng = random
            top, left, ch, cw = random_resized_crop_params(h, w, self.scale, (3 / 4, 4 / 3), rng)
            x = resized_region(image, top, left, ch, cw, self.crop, self.crop)
            if rng.random() < self.flip:
                x = x.flip(-1)
        else:
            # Resize the shorter side to `resize` (the longer side truncated, as torchvision),
            # then the centre crop: one resample of the region the crop keeps.
            short = min(h, w)
            out_h = self.resize if h == short else int(self.resize * h / w)
            out_w = self.resize if w == short else int(self.resize * w / h)
            x = resized_region(image, 0, 0, h, w, out_h, out_w)
            top, left = int(round((out_h - self.crop) / 2.0)), int(round((out_w - self.crop) / 2.0))
            x = x[:, top:top + self.crop, left:left + self.crop]
        return (x - self.mean) / self.std, label


def model_preprocessing(model):
    def attr(name, default):
        return getattr(model, name) if hasattr(model, name) else default

    crop = int(attr("tlkit_crop", attr("tlkit_input_size", 224)))
    resize = int(attr("tlkit_resize", round(crop * 256 / 224)))
    mean = [float(v) for v in attr("tlkit_mean", [0.485, 0.456, 0.406])]
    std = [float(v) for v in attr("tlkit_std", [0.229, 0.224, 0.225])]
    return crop, resize, mean, std


# ----------------------------------------------------------------------------- precision


def setup_precision(precision, device):
    """The autocast context factory for a precision; tf32 switches TF32 on for matmul and cuDNN.
    fp32 leaves torch's defaults as they are (as tlkit without --precision does)."""
    import contextlib

    if precision == "tf32":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if precision in ("fp32", "tf32"):
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def make_optimizer(spec, params):
    name, _, rest = spec.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        options[key.strip()] = float(value)
    lr = options.pop("lr", None)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr if lr is not None else 1e-3, **options)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr if lr is not None else 1e-3, **options)
    if name in ("sgd", "momentum", "nesterov"):
        if lr is None:
            sys.exit(f"gpu_check_reference: optimizer '{spec}' needs lr=")
        if name != "sgd":
            options.setdefault("momentum", 0.9)
        return torch.optim.SGD(params, lr=lr, nesterov=name == "nesterov", **options)
    sys.exit(f"gpu_check_reference: unknown optimizer '{spec}' (adam, adamw, sgd, momentum, "
             "nesterov)")


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def loader_for(dataset, args, shuffle):
    generator = torch.Generator()
    generator.manual_seed(args.seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, shuffle=shuffle, num_workers=args.workers,
        pin_memory=args.device.startswith("cuda"), persistent_workers=args.workers > 0,
        drop_last=False, generator=generator)


def common_setup(args):
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_check_reference: --device cuda but torch.cuda.is_available() is False")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    model = torch.jit.load(args.model, map_location=device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return device, model


def cmd_train(args):
    device, model = common_setup(args)
    crop, resize, mean, std = model_preprocessing(model)
    _, samples = list_image_folder(os.path.join(args.data, "train"))
    dataset = Folder(samples, crop, resize, mean, std, train=True)
    loader = loader_for(dataset, args, shuffle=True)
    autocast = setup_precision(args.precision, device)
    scaler = torch.cuda.amp.GradScaler() if args.precision == "fp16" else None
    model.train()
    optimizer = make_optimizer(args.optimizer, [p for p in model.parameters() if p.requires_grad])
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    epochs = []
    for epoch in range(args.epochs):
        loss_sum, correct, seen, steps = 0.0, 0, 0, 0
        sync(device)
        start = time.perf_counter()
        for x, y in loader:
            x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
            y = y.to(device, non_blocking=True)
            with autocast():
                logits = model(x)
                loss = torch.nn.functional.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            # The running loss and accuracy, read every step as tlkit's trainer does.
            n = y.size(0)
            loss_sum += loss.item() * n
            correct += int((logits.argmax(1) == y).sum().item())
            seen += n
            steps += 1
        sync(device)
        seconds = time.perf_counter() - start
        epochs.append({"epoch": epoch + 1, "seconds": seconds, "images": seen, "steps": steps,
                       "train_loss": loss_sum / seen, "train_acc": correct / seen})
        print(f"  python epoch {epoch + 1}/{args.epochs}: {seen} images in {seconds:.2f} s "
              f"({seen / seconds:.1f} images/s), loss {loss_sum / seen:.4f}", flush=True)
    write_json(args.json, {
        "kind": "train", "device": device_name(device), "torch": torch.__version__,
        "batch_size": args.batch_size, "precision": args.precision,
        "channels_last": args.channels_last, "optimizer": args.optimizer,
        "workers": args.workers, "decoder": "PIL" if HAVE_PIL else "torchvision.io",
        "epochs": epochs})


def cmd_infer(args):
    device, model = common_setup(args)
    crop, resize, mean, std = model_preprocessing(model)
    _, samples = list_image_folder(args.data)
    dataset = Folder(samples, crop, resize, mean, std, train=False)
    loader = loader_for(dataset, args, shuffle=False)
    autocast = setup_precision(args.precision, device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model.eval()
    passes = []
    with torch.no_grad():
        for p in range(args.passes):
            sync(device)
            start = time.perf_counter()
            rows = 0
            for x, _ in loader:
                x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
                with autocast():
                    out = model(x)
                out = out.float().cpu()  # the outputs reach the host, as extracted features do
                rows += out.size(0)
            sync(device)
            seconds = time.perf_counter() - start
            passes.append({"pass": p + 1, "seconds": seconds, "images": rows})
            print(f"  python inference pass {p + 1}/{args.passes}: {rows} images in {seconds:.2f} s "
                  f"({rows / seconds:.1f} images/s)", flush=True)
    write_json(args.json, {
        "kind": "infer", "device": device_name(device), "torch": torch.__version__,
        "batch_size": args.batch_size, "precision": args.precision,
        "channels_last": args.channels_last, "workers": args.workers,
        "decoder": "PIL" if HAVE_PIL else "torchvision.io", "passes": passes})


def write_json(path, value):
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="write a synthetic image folder")
    d.add_argument("--out", required=True)
    d.add_argument("--classes", type=int, default=10)
    d.add_argument("--train-per-class", type=int, default=256)
    d.add_argument("--val-per-class", type=int, default=10)
    d.add_argument("--size", type=int, default=256, help="square image side in pixels")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--jobs", type=int, default=0, help="processes (0: one per core)")
    d.add_argument("--json", default="")
    d.set_defaults(run=cmd_data)

    for name, run, help_text in (("train", cmd_train, "fine-tune every layer, timed per epoch"),
                                 ("infer", cmd_infer, "forward-only inference, timed")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--model", required=True, help="TorchScript file (scripts/export_vgg16.py)")
        p.add_argument("--data", required=True,
                       help="train: a folder with train/; infer: a folder of class sub-folders")
        p.add_argument("--batch-size", type=int, default=128)
        p.add_argument("--workers", type=int, default=4, help="DataLoader worker processes")
        p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's)")
        p.add_argument("--device", default="cuda")
        p.add_argument("--precision", choices=("fp32", "tf32", "bf16", "fp16"), default="fp32")
        p.add_argument("--channels-last", action="store_true")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--json", default="")
        if name == "train":
            p.add_argument("--epochs", type=int, default=4)
            p.add_argument("--optimizer", default="adam:lr=1e-4",
                           help="adam|adamw|sgd|momentum|nesterov[:lr=...,key=value]")
        else:
            p.add_argument("--passes", type=int, default=2,
                           help="passes over the images (the first includes the warm-up)")
        p.set_defaults(run=run)

    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
