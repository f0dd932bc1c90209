#!/usr/bin/env python3
"""Paint the project's sample style images (deterministic, made from nothing).

  swirls.jpg  -- thick curved brush strokes along a field of vortices, in a
                 night-sky palette of blues and yellows with dark edges.
  mosaic.jpg  -- stained glass: jittered Voronoi cells with lead lines.
  dabs.jpg    -- broken dabs of warm and cool colour: a sun rising over
                 water, in the manner of open-air impressionism.

usage: make_styles.py OUTPUT_DIR [--size 512]
"""
import argparse
import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def field(x, y, vortices):
    """Unit direction of a sum of vortices plus a gentle drift at (x, y)."""
    vx, vy = 0.35, 0.08
    for cx, cy, strength, radius in vortices:
        dx, dy = x - cx, y - cy
        r2 = dx * dx + dy * dy + 1e-6
        fall = strength * math.exp(-r2 / (2 * radius * radius))
        vx += -dy / math.sqrt(r2) * fall
        vy += dx / math.sqrt(r2) * fall
    n = math.hypot(vx, vy) + 1e-9
    return vx / n, vy / n


def swirls(size, rng):
    palette = np.array([[18, 38, 92], [32, 74, 150], [61, 112, 186], [110, 160, 210],
                        [231, 205, 84], [245, 226, 130], [28, 52, 110], [200, 170, 60]], float)
    img = Image.new("RGB", (size, size), (20, 36, 80))
    draw = ImageDraw.Draw(img)
    vortices = [(rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.7) * size,
                 rng.uniform(1.5, 3.0) * (1 if rng.random() < 0.7 else -1), rng.uniform(0.08, 0.2) * size)
                for _ in range(6)]
    for _ in range(2600):
        x, y = rng.uniform(0, size), rng.uniform(0, size)
        colour = palette[rng.integers(len(palette))] + rng.normal(0, 12, 3)
        bright = (x / size - 0.7) ** 2 + (y / size - 0.25) ** 2 < 0.02
        if bright:
            colour = np.array([250, 232, 120]) + rng.normal(0, 10, 3)
        colour = tuple(int(c) for c in np.clip(colour, 0, 255))
        width = int(rng.integers(3, 8))
        points = [(x, y)]
        for _ in range(int(rng.integers(6, 16))):
            dx, dy = field(x, y, vortices)
            x, y = x + dx * 4.0, y + dy * 4.0
            points.append((x, y))
        dark = tuple(int(c * 0.45) for c in colour)
        draw.line(points, fill=dark, width=width + 2, joint="curve")
        draw.line(points, fill=colour, width=width, joint="curve")
    return img.filter(ImageFilter.SMOOTH)


def mosaic(size, rng):
    n = 170
    sites = rng.uniform(0, size, (n, 2))
    colours = np.array([[176, 32, 40], [32, 84, 170], [220, 170, 40], [40, 130, 70],
                        [120, 50, 140], [230, 110, 30], [70, 160, 190], [200, 200, 180]], float)
    site_colour = colours[rng.integers(len(colours), size=n)] + rng.normal(0, 18, (n, 3))
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    d = np.full((size, size), np.inf)
    d2 = np.full((size, size), np.inf)
    owner = np.zeros((size, size), int)
    for i, (sx, sy) in enumerate(sites):
        di = np.hypot(xx - sx, yy - sy)
        closer = di < d
        d2 = np.where(closer, d, np.minimum(d2, di))
        owner = np.where(closer, i, owner)
        d = np.where(closer, di, d)
    rgb = site_colour[owner]
    # glass shading: lighter towards the cell centre, lead where two cells meet
    shade = 1.15 - 0.35 * np.clip(d / 40.0, 0, 1)
    rgb = rgb * shade[..., None] + rng.normal(0, 6, rgb.shape)
    lead = (d2 - d) < 3.0
    rgb[lead] = [25, 22, 20]
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)


def dabs(size, rng):
    yy, xx = np.mgrid[0:size, 0:size] / size
    # a sunrise over water: warm sky, a low sun, cool water below the horizon
    sky = np.array([240, 150, 70]) * (1 - yy[..., None]) + np.array([120, 90, 140]) * yy[..., None]
    water = np.array([40, 70, 110]) * (1 - yy[..., None]) + np.array([20, 40, 70]) * yy[..., None]
    ground = np.where((yy < 0.55)[..., None], sky, water)
    img = Image.fromarray(ground.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    warm = np.array([[250, 170, 40], [230, 90, 40], [255, 220, 120], [210, 60, 90]], float)
    cool = np.array([[40, 110, 200], [60, 170, 170], [30, 60, 110], [140, 120, 210]], float)
    for _ in range(3500):
        x, y = rng.uniform(0, size), rng.uniform(0, size)
        base = np.array(img.getpixel((int(x) % size, int(y) % size)), float)
        palette = warm if (y < 0.55 * size) == (rng.random() < 0.8) else cool
        accent = palette[rng.integers(4)]
        if (x / size - 0.62) ** 2 + (y / size - 0.42) ** 2 < 0.004 or (abs(x / size - 0.62) < 0.04 and y > 0.55 * size and rng.random() < 0.5):
            accent = np.array([255, 120, 30])
        colour = tuple(int(c) for c in np.clip(0.3 * base + 0.7 * accent + rng.normal(0, 12, 3), 0, 255))
        angle = rng.normal(0.05 if y > 0.55 * size else -0.4, 0.3)
        length = rng.uniform(10, 26)
        dx, dy = math.cos(angle) * length, math.sin(angle) * length
        draw.line([(x - dx / 2, y - dy / 2), (x + dx / 2, y + dy / 2)], fill=colour, width=int(rng.integers(5, 11)))
    return img.filter(ImageFilter.SMOOTH)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=512)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name, painter, seed in (("swirls", swirls, 1), ("mosaic", mosaic, 2), ("dabs", dabs, 3)):
        path = os.path.join(a.out, name + ".jpg")
        painter(a.size, np.random.default_rng(seed)).save(path, quality=90)
        print("wrote", path)


if __name__ == "__main__":
    main()
