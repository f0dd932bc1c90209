#!/usr/bin/env python3
"""Scores images under the reference objective (tools/torch_reference.py's
loss: relu4_2 content MSE + 1e3 x sum of Gram MSEs, Caffe weights, fp32).

usage: reference_loss.py --weights FILE --content PNG --style PNG --size N [--terms] IMAGE...
Prints `IMAGE loss=...` per image (with --terms also `content=... style=...`,
the unweighted terms). Images are resized to N×N as the reference resizes
its inputs; with --size 0 every image keeps its own size (the content and
the scored images must then have the same size).
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import caffe_input, gram, load_weights, read_image, vgg  # noqa: E402


class Scorer:
    """The reference objective's terms for one style, on pixel arrays:
    `terms(content, image)` gives (content MSE, style sum of Gram MSEs) of
    `image` against `content`, both H×W×3 in 0..1 (numpy or torch), at their
    own size. The host tests use it to check that a style was applied."""

    def __init__(self, weights_path, style_rgb, device="cpu"):
        self.device = device
        self.weights = load_weights(weights_path, device)
        with torch.no_grad():
            _, style = vgg(self.weights, caffe_input(torch.as_tensor(style_rgb).float(), device))
            self.style_targets = [gram(f) for f in style]

    def terms(self, content_rgb, image_rgb):
        with torch.no_grad():
            target, _ = vgg(self.weights, caffe_input(torch.as_tensor(content_rgb).float(), self.device))
            content, style = vgg(self.weights, caffe_input(torch.as_tensor(image_rgb).float(), self.device))
            style_term = sum(F.mse_loss(gram(f), t) for f, t in zip(style, self.style_targets))
            return F.mse_loss(content, target).item(), style_term.item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--content", required=True)
    ap.add_argument("--style", required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--content-weight", type=float, default=1.0)
    ap.add_argument("--style-weight", type=float, default=1e3)
    ap.add_argument("--terms", action="store_true")
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()
    weights = load_weights(a.weights, a.device)
    with torch.no_grad():
        content_target, _ = vgg(weights, caffe_input(read_image(a.content, a.size), a.device))
        style_targets = [gram(f) for f in vgg(weights, caffe_input(read_image(a.style, a.size), a.device))[1]]
        for path in a.images:
            content, style = vgg(weights, caffe_input(read_image(path, a.size), a.device))
            content_term = F.mse_loss(content, content_target)
            style_term = sum(F.mse_loss(gram(f), t) for f, t in zip(style, style_targets))
            loss = a.content_weight * content_term + a.style_weight * style_term
            terms = f" content={content_term.item():.6g} style={style_term.item():.6g}" if a.terms else ""
            print(f"{path} loss={loss.item():.6g}{terms}")


if __name__ == "__main__":
    main()
