#!/usr/bin/env python3
"""Renders the 62 characters 0-9, A-Z, a-z from the TrueType fonts installed on this machine
(Debian's fonts-dejavu: 22 faces) into an image folder for tlkit, white on black at 20x20 pixels
like OpenCV's digits.png:

    OUT/<class>/*.png      class = digit_0..digit_9, upper_A..upper_Z, lower_a..lower_z

Each font and character is drawn --variants times with a seeded random size, rotation and shift,
so the set is reproducible. It is the pretraining source of the README demo: printed characters
(including printed digits) -> handwritten digits. Needs Pillow (a dependency of
python3-torchvision).

Usage: /usr/bin/python3 scripts/make_glyph_folder.py --out runs/demo/glyphs --variants 12
"""
import argparse
import glob
import os
import random
import shutil
import string
import sys

from PIL import Image, ImageDraw, ImageFont

FONT_GLOB = "/usr/share/fonts/truetype/dejavu/*.ttf"
CELL = 20


def class_name(ch):
    if ch.isdigit():
        return "digit_" + ch
    return ("upper_" if ch.isupper() else "lower_") + ch


def render(font_path, ch, rng):
    canvas = 64
    size = rng.randint(34, 46)
    font = ImageFont.truetype(font_path, size)
    image = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), ch, font=font)
    x = (canvas - (right - left)) / 2 - left + rng.uniform(-3, 3)
    y = (canvas - (bottom - top)) / 2 - top + rng.uniform(-3, 3)
    draw.text((x, y), ch, fill=255, font=font)
    image = image.rotate(rng.uniform(-12, 12), resample=Image.BILINEAR)
    # Crop to the glyph with a margin, keep the aspect ratio, and fit it into a 20x20 cell.
    box = image.getbbox() or (0, 0, canvas, canvas)
    w, h = box[2] - box[0], box[3] - box[1]
    side = int(max(w, h) * rng.uniform(1.25, 1.45)) + 1
    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    square = image.crop((cx - side // 2, cy - side // 2, cx - side // 2 + side, cy - side // 2 + side))
    return square.resize((CELL, CELL), Image.LANCZOS)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--variants", type=int, default=12, help="renderings per font and character")
    p.add_argument("--fonts", default=FONT_GLOB, help="glob of the .ttf files to use")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    fonts = sorted(glob.glob(args.fonts))
    if not fonts:
        sys.exit("no fonts match %s: install the Debian package fonts-dejavu-core / fonts-dejavu-extra" % args.fonts)
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    rng = random.Random(args.seed)
    chars = string.digits + string.ascii_uppercase + string.ascii_lowercase
    count = 0
    for ch in chars:
        folder = os.path.join(args.out, class_name(ch))
        os.makedirs(folder)
        for f, font in enumerate(fonts):
            for v in range(args.variants):
                render(font, ch, rng).save(os.path.join(folder, "f%02d_v%02d.png" % (f, v)))
                count += 1
    print("wrote %s: %d images, %d classes, %d fonts x %d variants" %
          (args.out, count, len(chars), len(fonts), args.variants))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
