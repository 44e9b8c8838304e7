#!/usr/bin/env python3
"""The README demo's table and plot, from the summary.json files of its runs:

    OUT/n<N>/seed<S>/{scratch,finetune}/summary.json

One row per training-set size: scratch vs feature extraction (the stage-1 head) vs fine-tuning
(last / EMA / snapshot ensemble / the model tlkit exported), mean and std over the seeds, on each
run's held-out test digits. The plot (PNG, drawn with Pillow) is accuracy against images per class.

Usage: python3 scripts/demo_table.py runs/demo --sizes 1,2,5,10,30 --seeds 1,2,3 --out table.md
"""
import argparse
import json
import math
import os
import sys


def load(path):
    with open(os.path.join(path, "summary.json")) as f:
        return json.load(f)


def pick(results, prefix=None, exported=False):
    for r in results:
        if exported and r.get("exported"):
            return r["accuracy"]
        if prefix is not None and r["name"].startswith(prefix):
            return r["accuracy"]
    return None


COLUMNS = [
    ("scratch", lambda s, f: pick(s["results"], exported=True)),
    ("feature extraction", lambda s, f: pick(f["results"], "feature extraction")),
    ("fine-tuning: last", lambda s, f: pick(f["results"], "fine-tuning: last")),
    ("fine-tuning: EMA", lambda s, f: pick(f["results"], "fine-tuning: EMA")),
    ("fine-tuning: ensemble", lambda s, f: pick(f["results"], "fine-tuning: snapshot ensemble")),
    ("transfer: exported", lambda s, f: pick(f["results"], exported=True)),
]


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    m = sum(values) / len(values)
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, s


def plot(path, sizes, series):
    from PIL import Image, ImageDraw
    w, h, left, right, top, bottom = 720, 440, 70, 200, 30, 50
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    xs = [math.log(n) for n in sizes]
    x0, x1 = min(xs), max(xs)
    px = lambda x: left + (x - x0) / (x1 - x0) * (w - left - right)
    py = lambda y: top + (1 - y) * (h - top - bottom)
    d.rectangle([left, top, w - right, h - bottom], outline="black")
    for k in range(0, 11, 2):
        y = k / 10
        d.line([left, py(y), w - right, py(y)], fill=(225, 225, 225))
        d.text((left - 35, py(y) - 6), "%d%%" % (100 * y), fill="black")
    for n, x in zip(sizes, xs):
        d.text((px(x) - 6, h - bottom + 8), str(n), fill="black")
    d.text((left + 120, h - 22), "training images per class (log scale)", fill="black")
    d.text((left, 8), "handwritten digits: accuracy on held-out test digits (mean of seeds)", fill="black")
    colors = [(200, 30, 30), (30, 100, 200), (30, 160, 60), (150, 60, 180)]
    for i, (name, ys) in enumerate(series):
        pts = [(px(x), py(y)) for x, y in zip(xs, ys) if y is not None]
        d.line(pts, fill=colors[i % len(colors)], width=3)
        for p in pts:
            d.ellipse([p[0] - 4, p[1] - 4, p[0] + 4, p[1] + 4], fill=colors[i % len(colors)])
        d.line([w - right + 15, top + 20 + 22 * i, w - right + 40, top + 20 + 22 * i],
               fill=colors[i % len(colors)], width=3)
        d.text((w - right + 45, top + 14 + 22 * i), name, fill="black")
    img.save(path)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root")
    p.add_argument("--sizes", default="1,2,5,10,30")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--out")
    p.add_argument("--plot")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    head = "| images per class | " + " | ".join(c[0] for c in COLUMNS) + " | transfer - scratch |"
    lines = [head, "|" + "---:|" * (len(COLUMNS) + 2)]
    means = {c[0]: [] for c in COLUMNS}
    for n in sizes:
        cells, per = [], {}
        for name, get in COLUMNS:
            values = []
            for seed in seeds:
                run = os.path.join(args.root, "n%d" % n, "seed%d" % seed)
                try:
                    values.append(get(load(os.path.join(run, "scratch")), load(os.path.join(run, "finetune"))))
                except FileNotFoundError:
                    values.append(None)
            per[name] = values
            m, s = mean_std(values)
            means[name].append(m)
            cells.append("—" if m is None else "%.1f ± %.1f%%" % (100 * m, 100 * s))
        gaps = [t - s for t, s in zip(per["transfer: exported"], per["scratch"]) if t is not None and s is not None]
        gm, gs = mean_std(gaps)
        cells.append("—" if gm is None else "%+.1f ± %.1f" % (100 * gm, 100 * gs))
        lines.append("| %d | " % n + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    if args.plot:
        plot(args.plot, sizes, [("scratch", means["scratch"]), ("feature extraction", means["feature extraction"]),
                                ("fine-tuning: last", means["fine-tuning: last"]),
                                ("transfer: exported", means["transfer: exported"])])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
