#!/usr/bin/env python3
"""Independent PyTorch implementation of the objective, for the parity test.

Reads a model file (safetensors, as written by tools/convert_vgg19.py) and an
input file holding `content`, `style` and `x` as [H, W, 3] RGB images in 0..1,
computes the loss terms and the gradient with respect to the model input of
`x` under the requested normalisation and weights, with plain autograd, and
writes `content_loss`, `style_loss`, `tv_loss`, `total` and `grad`.

usage: parity_reference.py MODEL INPUTS OUTPUT --normalization reference|relative
       --content-weight W --style-weight W --tv-weight W
"""
import argparse

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

NAMES = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv3_4",
         "conv4_1", "conv4_2", "conv4_3", "conv4_4", "conv5_1"]
STYLE = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
POOL_BEFORE = {"conv2_1", "conv3_1", "conv4_1", "conv5_1"}


def to_input(rgb, convention):
    t = rgb.permute(2, 0, 1)[None].double()
    if convention == "caffe":
        mean = torch.tensor([103.939, 116.779, 123.68], dtype=torch.float64).view(1, 3, 1, 1)
        return t.flip(1) * 255 - mean
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    return (t - mean) / std


def features(weights, x):
    out = {}
    h = x
    for name in NAMES:
        if name in POOL_BEFORE:
            h = F.max_pool2d(h, 2)
        h = torch.relu(F.conv2d(h, weights[name + ".weight"], weights[name + ".bias"], padding=1))
        out[name] = h
    return out


def gram(f):
    _, c, h, w = f.shape
    f = f.reshape(c, h * w)
    return f @ f.t() / (c * h * w)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("inputs")
    ap.add_argument("output")
    ap.add_argument("--normalization", choices=["reference", "relative"], required=True)
    ap.add_argument("--content-weight", type=float, required=True)
    ap.add_argument("--style-weight", type=float, required=True)
    ap.add_argument("--tv-weight", type=float, required=True)
    a = ap.parse_args()
    with safe_open(a.model, "pt") as f:
        convention = f.metadata()["input_convention"]
    # float64 throughout: the reference side should carry no rounding of its own.
    weights = {k: v.double() for k, v in load_file(a.model).items()}
    images = load_file(a.inputs)
    content = to_input(images["content"], convention)
    style = to_input(images["style"], convention)
    x = to_input(images["x"], convention).requires_grad_(True)
    with torch.no_grad():
        content_target = features(weights, content)["conv4_2"]
        style_feats = features(weights, style)
        style_targets = {n: gram(style_feats[n]) for n in STYLE}
    f = features(weights, x)
    content_loss = F.mse_loss(f["conv4_2"], content_target)
    style_terms = [F.mse_loss(gram(f[n]), style_targets[n]) for n in STYLE]
    if a.normalization == "relative":
        content_loss = content_loss / content_target.pow(2).mean()
        style_terms = [t / style_targets[n].pow(2).mean() / len(STYLE) for t, n in zip(style_terms, STYLE)]
    style_loss = sum(style_terms)
    scale = 255.0 if convention == "caffe" else (1 / 0.229 + 1 / 0.224 + 1 / 0.225) / 3
    dy = x[:, :, 1:, :] - x[:, :, :-1, :]
    dx = x[:, :, :, 1:] - x[:, :, :, :-1]
    tv = (dy.pow(2).mean() + dx.pow(2).mean()) / scale ** 2
    content_loss = a.content_weight * content_loss
    style_loss = a.style_weight * style_loss
    tv = a.tv_weight * tv
    total = content_loss + style_loss + tv
    total.backward()
    out = {
        "content_loss": content_loss.detach().reshape(1),
        "style_loss": style_loss.detach().reshape(1),
        "tv_loss": tv.detach().reshape(1),
        "total": total.detach().reshape(1),
        "grad": x.grad.detach(),
    }
    save_file({k: v.double().contiguous() for k, v in out.items()}, a.output)


if __name__ == "__main__":
    main()
