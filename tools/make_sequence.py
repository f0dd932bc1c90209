#!/usr/bin/env python3
"""Renders a synthetic frame sequence with exact optical flow and occlusion masks.

    make_sequence.py --kind pan|zoom --frames N --size WxH --out DIR
                     [--source IMG] [--sprite | --no-sprite] [--speed F] [--seed S]

A virtual camera looks at a photo (default examples/images/chelsea.jpg):

* ``pan``: the view window moves by --speed output pixels per frame to the
  right (default 3) and speed/3 pixels per frame down, at a fixed scale.
* ``zoom``: the camera zooms in about the photo's centre; the scale grows
  geometrically by --speed percent per frame (default 2).

Each frame is rendered by sampling the photo through an exact affine map from
output pixel centres to photo coordinates, with bilinear interpolation. To
avoid aliasing the photo is first resized with Pillow's LANCZOS filter to a
level of a pyramid with steps of 2^(1/4); every frame samples the level on
which one output pixel is 0.92..1.09 level pixels, so the bilinear sampling is
never a strong minification. Levels are resized over an exact box, so their
geometry relative to the photo is exact as well.

With --sprite (the default) a disc of radius 0.18 x the short side, textured
with a crop of examples/images/coffee.jpg, crosses in front of the background
from right to left over the whole sequence (entering at frame 1 and leaving at
frame N), at a constant velocity. Its texture moves rigidly with it; its edge
is antialiased over one pixel. --seed picks the sprite's vertical path and the
texture crop; the output depends only on the arguments.

Pixel coordinates: the centre of pixel (column x, row y) is at (x, y), with x
and y integers from 0; the same convention applies to photo coordinates.

Files written to DIR (frames are numbered from 1):

* ``frame_%04d.png``: frame t, 8-bit RGB, W x H.
* ``flow_%04d.npy`` (t = 2..N): float32 array of shape [H, W, 2], the BACKWARD
  flow from frame t to frame t-1: the scene point seen at pixel centre (x, y)
  of frame t is seen at (x + flow[y, x, 0], y + flow[y, x, 1]) in frame t-1.
  Exact: the composition of the two frames' affine maps for the background,
  minus the sprite's displacement for sprite pixels.
* ``valid_%04d.png`` (t = 2..N): 8-bit gray mask, 255 where that
  correspondence is visible in frame t-1 and 0 elsewhere. It is 0 where the
  point falls outside frame t-1 (outside [0, W-1] x [0, H-1], so that bilinear
  sampling there stays inside the image), where background in frame t was
  hidden behind the sprite in frame t-1 (disocclusion), within 1 px of the
  sprite's edge in frame t, and within 2 px of its edge at the corresponding
  point in frame t-1 (the antialiased edge plus the bilinear footprint).
* ``sequence.json``: the arguments, the camera's affine map per frame, the
  sprite's parameters and path, the file names and the conventions in words.

Files named like the above with t > N are removed from DIR so that a shorter
sequence written over a longer one leaves no stale ground truth.
"""
import argparse
import glob
import json
import math
import os
import re
import sys

import numpy as np
from PIL import Image

from warping_error import bilinear

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SOURCE = os.path.join(REPO, "examples", "images", "chelsea.jpg")
SPRITE_TEXTURE = os.path.join(REPO, "examples", "images", "coffee.jpg")

LEVELS_PER_OCTAVE = 4  # pyramid step 2^(1/4): sampling scale stays in [0.917, 1.091]
SOURCE_MARGIN = 4.0  # photo pixels kept clear of the photo's border
SPRITE_RADIUS = 0.18  # x the short side of the frame
EDGE_CUR = 1.0  # invalid band around the sprite's edge in frame t (px)
EDGE_PREV = 2.0  # ... and around it at the corresponding point in frame t-1

FLOW_CONVENTION = (
    "backward flow from frame t to frame t-1: the scene point at pixel centre (x, y) of frame t "
    "is at (x + flow[y, x, 0], y + flow[y, x, 1]) in frame t-1; pixel centres are at integer "
    "coordinates from 0; flow_%04d.npy is float32 [H, W, 2] and exists for t = 2..N"
)
VALID_CONVENTION = (
    "valid_%04d.png is 255 where the flow's correspondence is visible in frame t-1: inside "
    "[0, W-1] x [0, H-1], not disoccluded (background in t hidden by the sprite in t-1), more "
    "than 1 px from the sprite's edge in frame t and more than 2 px from it at the point in frame "
    "t-1; 0 elsewhere"
)
CAMERA_CONVENTION = (
    "frame t samples the source photo (pixel-centre coordinates, unresized) at "
    "X = scale * (x - (W-1)/2) + centre[0], Y = scale * (y - (H-1)/2) + centre[1]"
)


class Pyramid:
    """The source photo resized by factors 2^(k/4), built on demand.

    Level k has factor f = 2^(k/LEVELS_PER_OCTAVE): one level pixel spans f
    photo pixels exactly, so photo coordinate X maps to (X + 0.5) / f - 0.5."""

    def __init__(self, photo):
        self.photo = photo
        self.levels = {}

    def level_for(self, scale):
        """The level index whose factor is nearest (in log) to `scale`."""
        return int(round(LEVELS_PER_OCTAVE * math.log2(scale)))

    def get(self, k):
        if k not in self.levels:
            f = 2.0 ** (k / LEVELS_PER_OCTAVE)
            w, h = self.photo.size
            size = (max(2, int(w / f)), max(2, int(h / f)))
            box = (0.0, 0.0, size[0] * f, size[1] * f)
            img = self.photo.resize(size, Image.LANCZOS, box=box)
            self.levels[k] = (f, np.asarray(img, dtype=np.float32) / 255.0)
        return self.levels[k]


def camera_path(kind, frames, width, height, speed, photo_size):
    """Per-frame (scale, centre): photo pixels per output pixel and the photo
    point seen at the output's centre."""
    sw, sh = photo_size
    usable_w, usable_h = sw - 2 * SOURCE_MARGIN, sh - 2 * SOURCE_MARGIN
    centre = np.array([(sw - 1) / 2.0, (sh - 1) / 2.0])
    if kind == "pan":
        v = np.array([speed, speed / 3.0])  # output pixels per frame
        travel = np.abs(v) * (frames - 1)
        scale = min(usable_w / (width + travel[0]), usable_h / (height + travel[1]))
        start = centre - v * scale * (frames - 1) / 2.0
        return [(scale, start + v * scale * i) for i in range(frames)]
    if kind == "zoom":
        growth = 1.0 + speed / 100.0
        if growth <= 0:
            sys.exit("--speed for zoom is a percentage per frame and must be > -100")
        first = min(usable_w / width, usable_h / height)
        if growth < 1:  # zooming out: the last (widest) frame must fit
            first *= growth ** (frames - 1)
        return [(first / growth ** i, centre.copy()) for i in range(frames)]
    raise ValueError(kind)


class Sprite:
    """A textured disc translating at constant velocity."""

    def __init__(self, frames, width, height, rng):
        self.radius = SPRITE_RADIUS * min(width, height)
        r = self.radius
        y0, y1 = rng.uniform(0.35, 0.65, size=2) * (height - 1)
        self.start = np.array([width - 1 + 0.5 * r, y0])
        self.end = np.array([-0.5 * r, y1])
        steps = max(frames - 1, 1)
        self.velocity = (self.end - self.start) / steps
        tex = Image.open(SPRITE_TEXTURE).convert("RGB")
        side = int(0.6 * min(tex.size))
        cx = int(rng.integers(0, tex.size[0] - side + 1))
        cy = int(rng.integers(0, tex.size[1] - side + 1))
        self.crop = [cx, cy, cx + side, cy + side]
        n = int(math.ceil(2 * r)) + 6
        self.texture = np.asarray(tex.crop(self.crop).resize((n, n), Image.LANCZOS), np.float32) / 255.0

    def centre(self, t):
        return self.start + self.velocity * (t - 1)

    def distance(self, t, x, y):
        c = self.centre(t)
        return np.hypot(x - c[0], y - c[1])

    def render(self, t, x, y):
        """(colour [H, W, 3], coverage [H, W]) of the sprite in frame t."""
        c = self.centre(t)
        half = (self.texture.shape[0] - 1) / 2.0
        colour = bilinear(self.texture, x - c[0] + half, y - c[1] + half)
        alpha = np.clip(self.radius + 0.5 - self.distance(t, x, y), 0.0, 1.0)
        return colour, alpha

    def describe(self, frames):
        return {
            "enabled": True,
            "shape": "disc",
            "radius": self.radius,
            "texture": os.path.relpath(SPRITE_TEXTURE, REPO),
            "texture_crop": self.crop,
            "texture_size": self.texture.shape[0],
            "edge": "antialiased over 1 px: coverage = clip(radius + 0.5 - distance, 0, 1)",
            "velocity": self.velocity.tolist(),
            "centres": [self.centre(t).tolist() for t in range(1, frames + 1)],
        }


def parse_size(text):
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 2 or int(m.group(2)) < 2:
        raise argparse.ArgumentTypeError("size must be WxH with W, H >= 2, e.g. 192x144")
    return int(m.group(1)), int(m.group(2))


def remove_stale(out, frames):
    for pattern in ("frame_*.png", "flow_*.npy", "valid_*.png"):
        for path in glob.glob(os.path.join(out, pattern)):
            m = re.fullmatch(r"(?:frame|flow|valid)_(\d+)\.(?:png|npy)", os.path.basename(path))
            if m and int(m.group(1)) > frames:
                os.remove(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Output files and conventions: see the module docstring.")
    ap.add_argument("--kind", choices=("pan", "zoom"), required=True)
    ap.add_argument("--frames", type=int, required=True, help="number of frames N (>= 1)")
    ap.add_argument("--size", type=parse_size, required=True, help="WxH, e.g. 192x144")
    ap.add_argument("--out", required=True, help="output directory (created if missing)")
    ap.add_argument("--source", default=DEFAULT_SOURCE, help="background photo (default: %(default)s)")
    ap.add_argument("--sprite", action=argparse.BooleanOptionalAction, default=True,
                    help="a textured disc crossing in front (default: on)")
    ap.add_argument("--speed", type=float, default=None,
                    help="pan: output px per frame (default 3; vertical drift speed/3); "
                         "zoom: scale growth in percent per frame (default 2)")
    ap.add_argument("--seed", type=int, default=0, help="picks the sprite's path and texture crop")
    args = ap.parse_args()
    if args.frames < 1:
        ap.error("--frames must be >= 1")
    speed = args.speed if args.speed is not None else (3.0 if args.kind == "pan" else 2.0)
    width, height = args.size

    photo = Image.open(args.source).convert("RGB")
    pyramid = Pyramid(photo)
    path = camera_path(args.kind, args.frames, width, height, speed, photo.size)
    rng = np.random.default_rng(args.seed)
    sprite = Sprite(args.frames, width, height, rng) if args.sprite else None

    os.makedirs(args.out, exist_ok=True)
    remove_stale(args.out, args.frames)

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    cameras = []
    for t in range(1, args.frames + 1):
        scale, centre = path[t - 1]
        k = pyramid.level_for(scale)
        f, level = pyramid.get(k)
        # Output pixel centre -> photo coordinate -> level coordinate.
        sx = scale * (xs - cx) + centre[0]
        sy = scale * (ys - cy) + centre[1]
        img = bilinear(level, (sx + 0.5) / f - 0.5, (sy + 0.5) / f - 0.5)
        if sprite is not None:
            colour, alpha = sprite.render(t, xs, ys)
            img = img * (1 - alpha[..., None]) + colour * alpha[..., None]
        frame = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
        Image.fromarray(frame, "RGB").save(os.path.join(args.out, "frame_%04d.png" % t))
        cameras.append({"scale": scale, "centre": centre.tolist(), "level_factor": f,
                        "sampling_scale": scale / f})

        if t == 1:
            continue
        # Background: q = A_{t-1}^{-1}(A_t(p)).
        pscale, pcentre = path[t - 2]
        qx = cx + (sx - pcentre[0]) / pscale
        qy = cy + (sy - pcentre[1]) / pscale
        valid = np.ones((height, width), bool)
        if sprite is not None:
            d_cur = sprite.distance(t, xs, ys)
            on_sprite = d_cur < sprite.radius
            shift = sprite.centre(t - 1) - sprite.centre(t)
            qx = np.where(on_sprite, xs + shift[0], qx)
            qy = np.where(on_sprite, ys + shift[1], qy)
            d_prev = sprite.distance(t - 1, qx, qy)
            valid &= np.abs(d_cur - sprite.radius) >= EDGE_CUR
            valid &= np.abs(d_prev - sprite.radius) >= EDGE_PREV
            valid &= on_sprite | (d_prev >= sprite.radius)  # background hidden in t-1
        valid &= (qx >= 0) & (qx <= width - 1) & (qy >= 0) & (qy <= height - 1)
        flow = np.stack([qx - xs, qy - ys], axis=-1).astype(np.float32)
        np.save(os.path.join(args.out, "flow_%04d.npy" % t), flow)
        Image.fromarray(valid.astype(np.uint8) * 255, "L").save(os.path.join(args.out, "valid_%04d.png" % t))

    meta = {
        "kind": args.kind,
        "frames": args.frames,
        "size": [width, height],
        "speed": speed,
        "speed_units": "output px per frame (vertical drift speed/3)" if args.kind == "pan"
                       else "percent scale growth per frame",
        "seed": args.seed,
        "source": os.path.relpath(os.path.abspath(args.source), REPO),
        "source_size": list(photo.size),
        "camera_convention": CAMERA_CONVENTION,
        "camera": cameras,
        "sprite": sprite.describe(args.frames) if sprite is not None else {"enabled": False},
        "files": {"frame": "frame_%04d.png", "flow": "flow_%04d.npy", "valid": "valid_%04d.png"},
        "flow_convention": FLOW_CONVENTION,
        "valid_convention": VALID_CONVENTION,
    }
    with open(os.path.join(args.out, "sequence.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
