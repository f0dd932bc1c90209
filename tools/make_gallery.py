#!/usr/bin/env python3
"""Renders the gallery: every sample photo against every style pack.

    make_gallery.py --stylize BIN --packs A.stpack ... --photos A.jpg ... --work DIR -o docs/gallery.png

Each photo is stylised with each pack by the CLI at its default settings
(only --device cpu is given, so the picture does not depend on the machine
having a GPU); results are kept in WORK as <photo>-<pack>.png and reused
when newer than the CLI, the pack and the photo. The grid has the packs'
thumbnails along the top, the photos down the left and each result where
the two meet, with the pack names below the thumbnails. It prints each
run's time and the style term it reached (from the CLI's JSON report).
"""
import argparse
import json
import os
import subprocess
import sys
import time

from PIL import Image, ImageDraw, ImageFont

CELL = 240  # width of a grid cell in pixels
GAP = 8
LABEL = 22


def fresh(path, *inputs):
    return os.path.exists(path) and all(os.path.getmtime(path) >= os.path.getmtime(i) for i in inputs)


def pack_info(stylize, pack):
    r = subprocess.run([stylize, "pack", "info", pack, "--json"], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def thumbnail(stylize, pack, work):
    out = os.path.join(work, os.path.basename(pack) + ".thumb.png")
    if not fresh(out, pack):
        subprocess.run([stylize, "pack", "info", pack, "--thumbnail", out], capture_output=True, check=True)
    return out


def render(stylize, photo, pack, work):
    name = f"{os.path.splitext(os.path.basename(photo))[0]}-{os.path.splitext(os.path.basename(pack))[0]}.png"
    out = os.path.join(work, name)
    if fresh(out, stylize, pack, photo):
        print(f"  {name}: up to date")
        return out
    started = time.monotonic()
    cmd = [stylize, "--content", photo, "--style-pack", pack, "-o", out, "--device", "cpu", "--report", "json"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"make_gallery: {' '.join(cmd)} failed:\n{r.stderr}")
    seconds = time.monotonic() - started
    try:
        report = json.loads(r.stdout.strip().splitlines()[-1])
        detail = (f"({report['evaluations']} evaluations at {report['working_size'][0]}x{report['working_size'][1]}, "
                  f"{report['precision']}, style term {report['loss']['style']:.4g})")
    except (ValueError, IndexError):
        detail = ""
    print(f"  {name}: {seconds:.0f} s {detail}")
    return out


def fit(path, width):
    im = Image.open(path).convert("RGB")
    return im.resize((width, max(1, round(im.height * width / im.width))), Image.LANCZOS)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stylize", required=True)
    ap.add_argument("--packs", nargs="+", required=True)
    ap.add_argument("--photos", nargs="+", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)

    names = [pack_info(args.stylize, p).get("name", os.path.basename(p)) for p in args.packs]
    thumbs = [fit(thumbnail(args.stylize, p, args.work), CELL) for p in args.packs]
    rows = []
    for photo in args.photos:
        print(f"{os.path.basename(photo)}:")
        rows.append((fit(photo, CELL), [fit(render(args.stylize, photo, p, args.work), CELL) for p in args.packs]))

    top = max(t.height for t in thumbs)
    heights = [max([photo.height] + [r.height for r in results]) for photo, results in rows]
    columns = 1 + len(args.packs)
    width = GAP + columns * (CELL + GAP)
    height = GAP + top + LABEL + GAP + sum(h + GAP for h in heights)
    grid = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for i, (thumb, name) in enumerate(zip(thumbs, names)):
        x = GAP + (i + 1) * (CELL + GAP)
        grid.paste(thumb, (x, GAP + top - thumb.height))
        draw.text((x + 2, GAP + top + 4), name, fill=(0, 0, 0), font=font)
    y = GAP + top + LABEL + GAP
    for (photo, results), h in zip(rows, heights):
        grid.paste(photo, (GAP, y))
        for i, result in enumerate(results):
            grid.paste(result, (GAP + (i + 1) * (CELL + GAP), y))
        y += h + GAP
    grid.save(args.output, optimize=True)
    print(f"wrote {args.output} ({width}x{height}, {os.path.getsize(args.output) // 1024} KiB)")


if __name__ == "__main__":
    main()
