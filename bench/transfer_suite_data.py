"""Data for bench/transfer_suite.py: the sources a backbone is pretrained on and the target pools
its transfer is measured on, all from data Debian ships or rendered here.

  glyphs     characters rendered from TrueType/OpenType fonts of Debian packages (the renderer of
             scripts/make_glyph_folder.py: white on black, 20x20, seeded size, rotation, shift).
             The font families fall into three fixed groups that never mix:
               source        only ever used to pretrain,
               target_train  the images a target's train (and val) images are drawn from,
               target_test   a target's test images: families never used for its train images.
  digits     OpenCV's handwritten digits sheet (opencv-doc: digits.png, 20x20 cells, 500 per digit).
  fashion    Fashion-MNIST (/usr/share/datasets/fashion-mnist/*.gz, idx format, 28x28).

Images are PIL "L" images; a target pool is written once as PNG files,
POOL/{train,test}/<class>/*.png, and per-run folders are made of hard links into it.
"""
import glob
import gzip
import os
import random
import shutil
import string
import struct
import sys

from PIL import Image, ImageOps

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import make_glyph_folder  # noqa: E402  (render(): the README demo's glyph renderer)

DIGITS_SHEET = "/usr/share/doc/opencv-doc/examples/data/digits.png"
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_NAMES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]

T = "/usr/share/fonts/truetype/"
O = "/usr/share/fonts/opentype/urw-base35/"
# family -> (Debian package, file globs). Families of one design lineage stay in one group
# (FreeSans/FreeSerif/FreeMono derive from URW's Nimbus fonts, so both are target_train).
FONT_GROUPS = {
    "source": [
        ("DejaVu Sans", "fonts-dejavu-core", [T + "dejavu/DejaVuSans.ttf", T + "dejavu/DejaVuSans-*.ttf",
                                              T + "dejavu/DejaVuSansCondensed*.ttf"]),
        ("DejaVu Serif", "fonts-dejavu-extra", [T + "dejavu/DejaVuSerif*.ttf"]),
        ("DejaVu Sans Mono", "fonts-dejavu-core", [T + "dejavu/DejaVuSansMono*.ttf"]),
        ("Liberation Sans", "fonts-liberation", [T + "liberation/LiberationSans-*.ttf",
                                                 T + "liberation/LiberationSansNarrow-*.ttf"]),
        ("Liberation Serif", "fonts-liberation", [T + "liberation/LiberationSerif-*.ttf"]),
        ("Liberation Mono", "fonts-liberation", [T + "liberation/LiberationMono-*.ttf"]),
        ("Noto Mono", "fonts-noto-mono", [T + "noto/NotoMono-*.ttf"]),
    ],
    "target_train": [
        ("FreeSans", "fonts-freefont-ttf", [T + "freefont/FreeSans*.ttf"]),
        ("FreeSerif", "fonts-freefont-ttf", [T + "freefont/FreeSerif*.ttf"]),
        ("FreeMono", "fonts-freefont-ttf", [T + "freefont/FreeMono*.ttf"]),
        ("Nimbus Sans", "fonts-urw-base35", [O + "NimbusSans-*.otf", O + "NimbusSansNarrow-*.otf"]),
        ("Nimbus Roman", "fonts-urw-base35", [O + "NimbusRoman-*.otf"]),
        ("Nimbus Mono PS", "fonts-urw-base35", [O + "NimbusMonoPS-*.otf"]),
        ("Carlito", "fonts-crosextra-carlito", [T + "crosextra/Carlito-*.ttf"]),
    ],
    "target_test": [
        ("URW Bookman", "fonts-urw-base35", [O + "URWBookman-*.otf"]),
        ("URW Gothic", "fonts-urw-base35", [O + "URWGothic-*.otf"]),
        ("C059", "fonts-urw-base35", [O + "C059-*.otf"]),
        ("P052", "fonts-urw-base35", [O + "P052-*.otf"]),
        ("Caladea", "fonts-crosextra-caladea", [T + "crosextra/Caladea-*.ttf"]),
    ],
}
FONT_PACKAGES = sorted({pkg for group in FONT_GROUPS.values() for _, pkg, _ in group})


def font_files(group):
    """The font files of a group, sorted; exits naming the package when a family is missing."""
    files = []
    for family, package, globs in FONT_GROUPS[group]:
        found = sorted({f for g in globs for f in glob.glob(g)})
        if not found:
            sys.exit("no font files for %s: install the Debian package %s" % (family, package))
        files += found
    return files


def font_summary():
    return {group: ["%s (%d)" % (family, len({f for g in globs for f in glob.glob(g)}))
                    for family, _, globs in FONT_GROUPS[group]] for group in FONT_GROUPS}


def char_class(ch):
    return make_glyph_folder.class_name(ch)


def glyphs(chars, group, variants, seed):
    """{class: [images]} for each character, every font of the group, `variants` renderings each."""
    rng = random.Random(seed)
    out = {}
    for ch in chars:
        out[char_class(ch)] = [make_glyph_folder.render(font, ch, rng)
                               for font in font_files(group) for _ in range(variants)]
    return out


def digits_cells():
    """{digit: [500 images]} from OpenCV's sheet, in sheet order."""
    if not os.path.exists(DIGITS_SHEET):
        sys.exit("cannot find %s: install the Debian package opencv-doc" % DIGITS_SHEET)
    sheet = Image.open(DIGITS_SHEET).convert("L")
    out = {}
    for digit in range(10):
        out[digit] = [sheet.crop((col * 20, row * 20, col * 20 + 20, row * 20 + 20))
                      for row in range(digit * 5, digit * 5 + 5) for col in range(100)]
    return out


def fashion(split):
    """{label: [28x28 images]} of Fashion-MNIST's train or t10k split, in file order."""
    prefix = os.path.join(FASHION_DIR, "train" if split == "train" else "t10k")
    try:
        with gzip.open(prefix + "-images-idx3-ubyte.gz") as f:
            _, n, h, w = struct.unpack(">IIII", f.read(16))
            pixels = f.read(n * h * w)
        with gzip.open(prefix + "-labels-idx1-ubyte.gz") as f:
            f.read(8)
            labels = f.read(n)
    except FileNotFoundError:
        sys.exit("cannot find Fashion-MNIST in %s" % FASHION_DIR)
    out = {c: [] for c in range(10)}
    for i in range(n):
        out[labels[i]].append(Image.frombytes("L", (w, h), pixels[i * h * w:(i + 1) * h * w]))
    return out


def take(images, count, seed, skip=0):
    """`count` images after the first `skip` of a seeded shuffle (disjoint slices for one seed)."""
    order = list(range(len(images)))
    random.Random(seed).shuffle(order)
    return [images[i] for i in order[skip:skip + count]]


# ---- sources: (images, labels) for pretraining ----

def source(spec):
    kind = spec["kind"]
    if kind == "glyphs":
        per_class = glyphs(spec["chars"], "source", spec["variants"], seed=11)
        classes = sorted(per_class)
        pairs = [(im, classes.index(c)) for c in classes for im in per_class[c]]
    elif kind == "digits":
        cells = digits_cells()
        classes = spec["classes"]
        pairs = [(im, i) for i, d in enumerate(classes) for im in cells[d]]
    elif kind == "fashion":
        data = fashion("train")
        classes = spec["classes"]
        pairs = [(im, i) for i, c in enumerate(classes) for im in take(data[c], spec["per_class"], seed=21)]
    else:
        raise ValueError(kind)
    return [p[0] for p in pairs], [p[1] for p in pairs], len(classes)


# ---- targets: {class: images} pools for train and test ----

def target_pools(spec):
    """(train pool, test set): {class name: [images]} each, disjoint."""
    kind = spec["kind"]
    invert = spec.get("invert", False)
    if kind == "glyphs":
        train = glyphs(spec["chars"], "target_train", spec["train_variants"], seed=31)
        test = glyphs(spec["chars"], "target_test", spec["test_variants"], seed=32)
        test = {c: take(v, spec["test_per_class"], seed=33) for c, v in test.items()}
    elif kind == "digits":
        cells = digits_cells()
        train, test = {}, {}
        for d in spec["classes"]:
            name = "digit_%d" % d
            test[name] = take(cells[d], spec["test_per_class"], seed=41)
            train[name] = take(cells[d], len(cells[d]) - spec["test_per_class"], seed=41,
                               skip=spec["test_per_class"])
    elif kind == "fashion":
        tr, te = fashion("train"), fashion("t10k")
        train, test = {}, {}
        for c in spec["classes"]:
            name = "%d_%s" % (c, FASHION_NAMES[c])
            train[name] = take(tr[c], spec["train_pool"], seed=51)
            test[name] = take(te[c], spec["test_per_class"], seed=52)
    else:
        raise ValueError(kind)
    if invert:
        train = {c: [ImageOps.invert(im) for im in v] for c, v in train.items()}
        test = {c: [ImageOps.invert(im) for im in v] for c, v in test.items()}
    return train, test


def write_pool(spec, pool_dir):
    tmp = pool_dir + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    train, test = target_pools(spec)
    for split, pools in (("train", train), ("test", test)):
        for name, images in pools.items():
            folder = os.path.join(tmp, split, name)
            os.makedirs(folder)
            for i, im in enumerate(images):
                im.save(os.path.join(folder, "%s_%04d.png" % (split, i)))
    if os.path.exists(pool_dir):
        shutil.rmtree(pool_dir)
    os.rename(tmp, pool_dir)
    return {split: {name: len(v) for name, v in pools.items()} for split, pools in (("train", train), ("test", test))}


def val_count(n):
    """Val images per class in the with-val layout: about 20%, at least 1 when n >= 2, none at 1."""
    return 0 if n < 2 else max(1, round(0.2 * n))


def make_folders(pool_dir, out_dir, n, seed, salt):
    """OUT/noval/{train,test} (n train images per class) and, for n >= 2, OUT/val/{train,val,test}
    (the same n images per class, val_count(n) of them in val). The draw is a seeded shuffle of
    each class's pool: the first n, so a seed's draws are nested across sizes."""
    tmp = out_dir + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    k = val_count(n)
    for name in sorted(os.listdir(os.path.join(pool_dir, "train"))):
        files = sorted(os.listdir(os.path.join(pool_dir, "train", name)))
        drawn = take(files, n, seed="%s/%s/%d" % (salt, name, seed))
        if len(drawn) < n:
            sys.exit("pool %s has %d images of %s, %d asked" % (pool_dir, len(files), name, n))
        layouts = [("noval", "train", drawn)]
        if n >= 2:
            layouts += [("val", "train", drawn[:n - k]), ("val", "val", drawn[n - k:])]
        for layout, split, chosen in layouts:
            folder = os.path.join(tmp, layout, split, name)
            os.makedirs(folder)
            for f in chosen:
                os.link(os.path.join(pool_dir, "train", name, f), os.path.join(folder, f))
        for layout in ("noval", "val") if n >= 2 else ("noval",):
            folder = os.path.join(tmp, layout, "test", name)
            os.makedirs(folder)
            for f in sorted(os.listdir(os.path.join(pool_dir, "test", name))):
                os.link(os.path.join(pool_dir, "test", name, f), os.path.join(folder, f))
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.rename(tmp, out_dir)


CHARS = {"digits": string.digits, "upper": string.ascii_uppercase, "lower": string.ascii_lowercase}
