#!/usr/bin/env python3
"""Scores images under the reference objective (tools/torch_reference.py's
loss: relu4_2 content MSE + 1e3 x sum of Gram MSEs, Caffe weights, fp32).

usage: reference_loss.py --weights FILE --content PNG --style PNG --size N IMAGE...
Prints `IMAGE loss=...` per image. Images are resized to N×N as the
reference resizes its inputs.
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import caffe_input, gram, load_weights, read_image, vgg  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--content", required=True)
    ap.add_argument("--style", required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--content-weight", type=float, default=1.0)
    ap.add_argument("--style-weight", type=float, default=1e3)
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()
    weights = load_weights(a.weights, a.device)
    with torch.no_grad():
        content_target, _ = vgg(weights, caffe_input(read_image(a.content, a.size), a.device))
        style_targets = [gram(f) for f in vgg(weights, caffe_input(read_image(a.style, a.size), a.device))[1]]
        for path in a.images:
            content, style = vgg(weights, caffe_input(read_image(path, a.size), a.device))
            loss = a.content_weight * F.mse_loss(content, content_target)
            loss = loss + a.style_weight * sum(F.mse_loss(gram(f), t) for f, t in zip(style, style_targets))
            print(f"{path} loss={loss.item():.6g}")


if __name__ == "__main__":
    main()
