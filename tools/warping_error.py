#!/usr/bin/env python3
"""Warping error of a (stylised) frame sequence against ground-truth optical flow.

    warping_error.py --frames 'DIR/frame_%04d.png' --truth DIR [--range A-B] [--json]

For each pair of frames (t-1, t), frame O_{t-1} is warped into frame t with the
ground-truth backward flow (bilinear sampling of O_{t-1} at (x + u, y + v)) and

    E_t = sum(M * (O_t - W(O_{t-1}))^2) / (3 * sum(M))

is computed with colours in 0..1 and M the 0/1 valid mask: the warping error of
Lai et al., "Learning Blind Video Temporal Consistency" (ECCV 2018), over the
non-occluded pixels. Independent uniform noise frames give about 1/6.

--frames is a printf-style pattern with the frame number (frames are numbered
from 1, as make_sequence.py writes them); images are read as RGB. --truth is a
directory written by tools/make_sequence.py: for t >= 2, ``flow_%04d.npy``
(float32 [H, W, 2], backward flow from frame t to frame t-1: pixel centre
(x, y) of frame t corresponds to (x + flow[y, x, 0], y + flow[y, x, 1]) in
frame t-1, pixel centres at integer coordinates) and ``valid_%04d.png`` (8-bit
gray, nonzero = valid). Frames must have the truth's size.

Pairs: with --range A-B, t = A+1..B; by default every t >= 2 for which frames
t-1 and t and the truth for t exist.

Output: one line ``t E_t`` per pair, then ``mean m``; with --json a single JSON
object {"pairs": {"t": E_t, ...}, "mean": m, "max": x, "count": n} instead. A
pair whose mask is empty has E_t = null and is left out of mean, max and count.

Importable: load_truth(dir, t), warp(image, flow), warping_error(prev, cur,
flow, mask) and sequence_error(frame_pattern, truth_dir, first, last).
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


def load_truth(truth_dir, t):
    """Ground truth between frame t and t-1: (flow float32 [H, W, 2], mask bool [H, W])."""
    flow = np.load(os.path.join(truth_dir, "flow_%04d.npy" % t)).astype(np.float32)
    mask = np.asarray(Image.open(os.path.join(truth_dir, "valid_%04d.png" % t)).convert("L")) > 0
    if flow.ndim != 3 or flow.shape[2] != 2 or flow.shape[:2] != mask.shape:
        raise ValueError("truth %d in %s: flow %s does not match mask %s" % (t, truth_dir, flow.shape, mask.shape))
    return flow, mask


def load_frame(path):
    """An image file as float32 RGB [H, W, 3] in 0..1."""
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0


def bilinear(img, x, y):
    """Samples img [h, w, c] at float coordinates x, y (same shape) with bilinear
    interpolation; coordinates are clamped to the image."""
    h, w = img.shape[:2]
    x = np.clip(x, 0.0, w - 1.0)
    y = np.clip(y, 0.0, h - 1.0)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 2) if w > 1 else np.zeros(x.shape, np.int64)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 2) if h > 1 else np.zeros(y.shape, np.int64)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def warp(image, flow):
    """Backward-warps image [H, W, C] (or [H, W]) with flow [H, W, 2]: the result
    at (x, y) is image bilinearly sampled at (x + flow[y, x, 0], y + flow[y, x, 1]).
    Sample points outside the image are clamped to its border."""
    img = np.asarray(image, dtype=np.float64)
    squeeze = img.ndim == 2
    if squeeze:
        img = img[..., None]
    h, w = img.shape[:2]
    if flow.shape[:2] != (h, w):
        raise ValueError("flow %s does not match image %s" % (flow.shape, img.shape))
    ys, xs = np.mgrid[0:h, 0:w]
    out = bilinear(img, xs + flow[..., 0].astype(np.float64), ys + flow[..., 1].astype(np.float64))
    return out[..., 0] if squeeze else out


def warping_error(prev, cur, flow, mask):
    """E = sum(M (cur - warp(prev))^2) / (C sum(M)) for images in 0..1 with C
    channels; None when the mask is empty."""
    prev = np.asarray(prev, dtype=np.float64)
    cur = np.asarray(cur, dtype=np.float64)
    if prev.shape != cur.shape:
        raise ValueError("frames differ in shape: %s vs %s" % (prev.shape, cur.shape))
    m = np.asarray(mask, dtype=bool)
    n = int(m.sum())
    if n == 0:
        return None
    diff = cur - warp(prev, flow)
    channels = 1 if cur.ndim == 2 else cur.shape[2]
    return float((diff[m] ** 2).sum() / (channels * n))


def available_pairs(frame_pattern, truth_dir):
    """Every t >= 2 for which frames t-1, t and the truth for t exist."""
    ts = []
    for path in glob.glob(os.path.join(truth_dir, "flow_*.npy")):
        m = re.fullmatch(r"flow_(\d+)\.npy", os.path.basename(path))
        if m:
            ts.append(int(m.group(1)))
    return [t for t in sorted(ts) if t >= 2
            and os.path.exists(os.path.join(truth_dir, "valid_%04d.png" % t))
            and os.path.exists(frame_pattern % t) and os.path.exists(frame_pattern % (t - 1))]


def sequence_error(frame_pattern, truth_dir, first=None, last=None):
    """Warping error of pairs t = first+1..last (both None: all available pairs).

    Returns {"pairs": {t: E_t}, "mean": m, "max": x, "count": n}; E_t is None
    for an empty mask, and such pairs are left out of mean, max and count
    (mean and max are None when no pair counts)."""
    if first is None and last is None:
        ts = available_pairs(frame_pattern, truth_dir)
    else:
        if first is None or last is None:
            raise ValueError("give both first and last, or neither")
        ts = list(range(first + 1, last + 1))
    pairs = {}
    prev_t, prev = None, None
    for t in ts:
        flow, mask = load_truth(truth_dir, t)
        before = prev if prev_t == t - 1 else load_frame(frame_pattern % (t - 1))
        cur = load_frame(frame_pattern % t)
        if cur.shape[:2] != mask.shape:
            raise ValueError("frame %d is %dx%d but the truth is %dx%d"
                             % (t, cur.shape[1], cur.shape[0], mask.shape[1], mask.shape[0]))
        pairs[t] = warping_error(before, cur, flow, mask)
        prev_t, prev = t, cur
    values = [e for e in pairs.values() if e is not None]
    return {
        "pairs": pairs,
        "mean": float(np.mean(values)) if values else None,
        "max": float(np.max(values)) if values else None,
        "count": len(values),
    }


def parse_range(text):
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) <= int(m.group(1)):
        raise argparse.ArgumentTypeError("range must be A-B with 1 <= A < B, e.g. 1-12")
    return int(m.group(1)), int(m.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Formats and definitions: see the module docstring.")
    ap.add_argument("--frames", required=True, help="printf-style frame pattern, e.g. 'out/frame_%%04d.png'")
    ap.add_argument("--truth", required=True, help="directory written by make_sequence.py")
    ap.add_argument("--range", type=parse_range, default=None, help="A-B: pairs t = A+1..B")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    args = ap.parse_args()
    try:
        args.frames % 1
    except (TypeError, ValueError):
        ap.error("--frames must contain one integer conversion such as %04d")
    first, last = args.range if args.range else (None, None)
    try:
        result = sequence_error(args.frames, args.truth, first, last)
    except (OSError, ValueError) as e:
        sys.exit("warping_error.py: %s" % e)
    if result["count"] == 0 and not result["pairs"]:
        sys.exit("warping_error.py: no frame pairs with ground truth found")
    if args.json:
        out = dict(result, pairs={str(t): e for t, e in result["pairs"].items()})
        print(json.dumps(out))
    else:
        for t, e in result["pairs"].items():
            print("%d %s" % (t, "nan" if e is None else "%.6g" % e))
        print("mean %s" % ("nan" if result["mean"] is None else "%.6g" % result["mean"]))


if __name__ == "__main__":
    main()
