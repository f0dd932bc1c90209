#!/usr/bin/env python3
"""Drives the OpenFX node through the test host (tests/ofx/host) and checks
its pixels, statuses and messages.

    test_ofx.py --host BIN --host-asan BIN --plugins DIR --stylize BIN
                --work DIR --samples DIR

DIR (--plugins) holds StyleTransfer.ofx.bundle; the host finds it through
OFX_PLUGIN_PATH, as a real host does.

Checks: two frames rendered at byte and float depth equal the CLI's results
for the same inputs (tolerance: 8-bit rounding); short depth, RGB and
premultiplied input; render scale 0.5 gives a half-size result equal to the
CLI's on the half-size frame; alpha is preserved; the Style clip and a mask;
a render aborted midway fails quickly and the instance renders again
afterwards, under AddressSanitizer with leak checking; bad input (missing
style file, empty render window, unsupported depth or components) gives an
error status and a persistent error message, never a crash; temporal mode
starts frame 2 from frame 1's result, which differs from starting from the
content and stays closer to frame 1; rendering frames 1..6 of a synthetic pan
(tools/make_sequence.py) in the "follow the motion" mode gives a lower
warping error against the true motion than temporal off, and keeps the
style; a frame rendered alone in that mode (a render-farm job) is rendered on
its own, with a warning; the Network engine gives the CLI's --net result
(full size and render scale 0.5), and a missing or bad network file is an
error message. Exits non-zero on the first failure.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from reference_loss import Scorer  # noqa: E402
from warping_error import load_truth, warping_error  # noqa: E402

PLUGIN = "org.styletransfer.StyleTransfer"
ITERATIONS = 8
STRENGTH = 0.5
W, H = 48, 36
TOLERANCE = 1.5 / 255
OK, FAILED = 0, 1  # kOfxStatOK, kOfxStatFailed
# A result's style term (the reference objective's, fp32, against the style
# image) must be at most this share of the source's. Measured at 48×36: 0.34
# after 8 evaluations, 0.92 after 3; the source plus Gaussian noise of σ
# 0.05: 0.94. A render that leaves the frame as it was fails.
STYLE_DROP = 0.6
SCORER = []


def fail(message):
    print(f"OFX TEST FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def make_inputs(work, samples):
    chelsea = Image.open(os.path.join(samples, "chelsea.jpg")).convert("RGB")
    # Two frames of a slow pan: the same picture shifted by a few pixels.
    frames = []
    for i, shift in enumerate((0, 6)):
        crop = chelsea.crop((40 + shift * 4, 20, 40 + shift * 4 + 400, 320)).resize((W, H), Image.LANCZOS)
        rgb = np.asarray(crop)
        alpha = np.full((H, W), 255, np.uint8)
        alpha[:, : W // 4] = (np.arange(H)[:, None] * 7 % 256).astype(np.uint8)  # a graded strip
        alpha[0:4, W - 6 :] = 0  # and fully transparent corner
        Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(f"{work}/frame{i}.png")
        Image.fromarray(rgb, "RGB").save(f"{work}/frame{i}-rgb.png")
        frames.append(f"{work}/frame{i}.png")
        # What premultiplied pixels carry: no colour where alpha is 0.
        cleared = np.dstack([rgb * (alpha[..., None] > 0), alpha]).astype(np.uint8)
        Image.fromarray(cleared, "RGBA").save(f"{work}/frame{i}-cleared.png")
    Image.open(os.path.join(samples, "swirls.jpg")).convert("RGB").resize((64, 64), Image.LANCZOS).save(
        f"{work}/style.png"
    )
    # A mask whose right half is on.
    mask = np.zeros((H, W, 4), np.uint8)
    mask[:, W // 2 :, 3] = 255
    Image.fromarray(mask, "RGBA").save(f"{work}/mask.png")
    # The host's half-size proxy frames (box filter, rounded as the host does).
    for i in range(2):
        a = np.asarray(Image.open(f"{work}/frame{i}.png")).astype(np.int64)
        half = a.reshape(H // 2, 2, W // 2, 2, 4).sum(axis=(1, 3))
        Image.fromarray(((half + 2) // 4).astype(np.uint8), "RGBA").save(f"{work}/frame{i}-half.png")
    return frames


def cli(args, content, out, size=W, extra=(), iterations=ITERATIONS):
    cmd = [args.stylize, "--content", content, "--style", f"{args.work}/style.png", "-o", out,
           "--iterations", str(iterations), "--strength", str(STRENGTH), "--device", "cpu", "--size", str(size),
           *extra]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"stylize failed: {result.stderr}")


def host(args, *extra, asan=False, params=None, timeout=600, expect_exit=0):
    """Runs the host; returns (renders, messages, stdout, seconds)."""
    values = {"styleFile": f"{args.work}/style.png", "iterations": ITERATIONS, "strength": STRENGTH,
              "quality": 0, "device": 1, "seed": 0}
    values.update(params or {})
    cmd = [args.host_asan if asan else args.host, "--plugin", PLUGIN, *extra]
    for name, value in values.items():
        cmd += ["--param", f"{name}={value}"]
    env = dict(os.environ, OFX_PLUGIN_PATH=args.plugins)
    if asan:
        env["ASAN_OPTIONS"] = "detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=23"
    started = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    seconds = time.monotonic() - started
    if result.returncode != expect_exit:
        fail(f"host exited {result.returncode} (expected {expect_exit}) for {' '.join(cmd)}\n"
             f"{result.stdout}\n{result.stderr[-6000:]}")
    renders = [
        {"pass": m[0], "frame": int(m[1]), "status": int(m[2]), "polls": int(m[3])}
        for m in re.findall(r"render pass=(\w+) frame=(\d+) status=(-?\d+) abort_polls=(\d+)", result.stdout)
    ]
    messages = re.findall(r"persistent message type=(\S+) text=(.*)", result.stdout)
    return renders, messages, result.stdout, seconds


def expect_statuses(renders, wanted, what):
    got = [r["status"] for r in renders]
    if got != wanted:
        fail(f"{what}: render statuses {got}, expected {wanted}")


def read(path):
    return np.asarray(Image.open(path).convert("RGBA")).astype(np.float64) / 255.0


def compare(what, ofx_file, cli_file, source_file, tolerance=TOLERANCE, min_alpha=0.0, check_style=True):
    o, c, s = read(ofx_file), read(cli_file), read(source_file)
    if o.shape != c.shape:
        fail(f"{what}: size {o.shape[1]}x{o.shape[0]}, CLI {c.shape[1]}x{c.shape[0]}")
    visible = s[..., 3] > min_alpha
    diff = np.abs(o[..., :3] - c[..., :3])[visible].max()
    if diff > tolerance:
        fail(f"{what}: differs from the CLI by {diff * 255:.2f}/255 (tolerance {tolerance * 255:.2f}/255)")
    alpha = np.abs(o[..., 3] - s[..., 3]).max()
    if alpha > 1 / 255 + 1e-9:
        fail(f"{what}: alpha changed by {alpha * 255:.2f}/255")
    styled = ""
    if check_style:
        _, before = SCORER[0].terms(s[..., :3], s[..., :3])
        _, after = SCORER[0].terms(s[..., :3], o[..., :3])
        if not after <= STYLE_DROP * before:
            fail(f"{what}: the style was not applied: style term {after:.4g} against the source's {before:.4g} "
                 f"(at most {STYLE_DROP}x)")
        styled = f", style term {after / before:.2f}x the source's"
    print(f"ok: {what} (max difference from the CLI {diff * 255:.2f}/255{styled})")


def main():
    ap = argparse.ArgumentParser()
    for name in ("host", "host-asan", "plugins", "stylize", "work", "samples"):
        ap.add_argument(f"--{name}", required=True)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    for old in os.listdir(args.work):
        path = os.path.join(args.work, old)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    w = args.work
    frames = make_inputs(w, args.samples)
    SCORER.append(Scorer(os.path.join(ROOT, "models", "vgg19.safetensors"), read(f"{w}/style.png")[..., :3]))
    both = ",".join(frames)
    for i in range(2):
        cli(args, frames[i], f"{w}/cli{i}.png")
        cli(args, f"{w}/frame{i}-rgb.png", f"{w}/cli{i}-rgb.png")
        # Three evaluations: the 16-bit unpremultiplied pixels differ from the
        # 8-bit cleared PNG by rounding, which more evaluations amplify.
        cli(args, f"{w}/frame{i}-cleared.png", f"{w}/cli{i}-cleared.png", iterations=3)
        cli(args, f"{w}/frame{i}-half.png", f"{w}/cli{i}-half.png", size=W // 2)

    # Two frames at byte and float depth, RGBA: the CLI's pixels.
    for depth in ("byte", "float"):
        renders, messages, out, _ = host(args, "--source", both, "--frames", "0,1", "--depth", depth,
                                         "--out", f"{w}/{depth}%d.png")
        expect_statuses(renders, [OK, OK], depth)
        if "progress updates=" not in out:
            fail(f"{depth}: the progress suite was not used")
        for i in range(2):
            compare(f"{depth} depth, frame {i + 1}", f"{w}/{depth}{i}.png", f"{w}/cli{i}.png", frames[i])

    # Short depth with premultiplied RGBA: unpremultiplied before, premultiplied after
    # (compared with the CLI on the same pixels, which have no colour where alpha
    # is 0, where alpha leaves enough precision in the 8-bit PNGs).
    renders, _, _, _ = host(args, "--source", frames[0], "--depth", "short", "--premult", "--out", f"{w}/short%d.png",
                            params={"iterations": 3})
    expect_statuses(renders, [OK], "short premultiplied")
    compare("short depth, premultiplied", f"{w}/short0.png", f"{w}/cli0-cleared.png", frames[0], tolerance=2.5 / 255,
            min_alpha=0.5, check_style=False)

    # RGB components.
    renders, _, _, _ = host(args, "--source", f"{w}/frame0-rgb.png", "--components", "RGB", "--out", f"{w}/rgb%d.png")
    expect_statuses(renders, [OK], "RGB")
    compare("RGB components", f"{w}/rgb0.png", f"{w}/cli0-rgb.png", f"{w}/frame0-rgb.png")

    # Render scale 0.5: a half-size result, the CLI's on the half-size frame.
    renders, _, _, _ = host(args, "--source", both, "--frames", "0,1", "--scale", "0.5", "--out", f"{w}/half%d.png")
    expect_statuses(renders, [OK, OK], "render scale 0.5")
    for i in range(2):
        size = Image.open(f"{w}/half{i}.png").size
        if size != (W // 2, H // 2):
            fail(f"render scale 0.5 gave {size}, expected {(W // 2, H // 2)}")
        # (At 24×18 eight evaluations bring the style term to about 0.63×
        # the source's, within what noise reaches; the full-size renders
        # carry the style check.)
        compare(f"render scale 0.5, frame {i + 1}", f"{w}/half{i}.png", f"{w}/cli{i}-half.png", f"{w}/frame{i}-half.png",
                check_style=False)

    # The Style clip carries the same pixels as the style file: the same result.
    renders, _, _, _ = host(args, "--source", frames[0], "--style-clip", f"{w}/style.png", "--context", "general",
                            "--out", f"{w}/clip%d.png", params={"styleFile": ""})
    expect_statuses(renders, [OK], "Style clip")
    compare("Style clip", f"{w}/clip0.png", f"{w}/cli0.png", frames[0])

    # Mask: its alpha blends the result with the source.
    renders, _, _, _ = host(args, "--source", frames[0], "--mask", f"{w}/mask.png", "--context", "general",
                            "--out", f"{w}/mask%d.png")
    expect_statuses(renders, [OK], "mask")
    masked, styled, source = read(f"{w}/mask0.png"), read(f"{w}/cli0.png"), read(frames[0])
    visible = source[..., 3] > 0
    left, right = np.zeros((H, W), bool), np.zeros((H, W), bool)
    left[:, : W // 2], right[:, W // 2 :] = True, True
    if np.abs(masked - source)[..., :3][left & visible].max() > TOLERANCE:
        fail("mask: pixels where the mask is off changed")
    if np.abs(masked - styled)[..., :3][right & visible].max() > TOLERANCE:
        fail("mask: pixels where the mask is on are not the styled ones")
    print("ok: mask")

    # An installed style pack, chosen by the menu.
    renders, _, _, _ = host(args, "--source", frames[0], "--out", f"{w}/pack%d.png", params={"stylePack": 1})
    expect_statuses(renders, [OK], "style pack")
    print("ok: style pack from the menu")

    # The Network engine: one pass of a network trained with `stylize train`,
    # the CLI's --net result at full size and at render scale 0.5.
    net = f"{w}/net.stnet"
    trained = subprocess.run([args.stylize, "train", "--style", f"{w}/style.png", "--images", f"{w}/frame0-rgb.png",
                              "-o", net, "--size", "32", "--steps", "20", "--width", "8", "--blocks", "1",
                              "--device", "cpu"], capture_output=True, text=True)
    if trained.returncode != 0:
        fail(f"stylize train failed: {trained.stderr}")
    for i, (frame, suffix) in enumerate(((frames[0], ""), (frames[1], ""), (f"{w}/frame0-half.png", "-half"))):
        out = f"{w}/cli-net{i}{suffix}.png"
        ran = subprocess.run([args.stylize, "--net", net, "--content", frame, "-o", out, "--strength", str(STRENGTH),
                              "--device", "cpu"], capture_output=True, text=True)
        if ran.returncode != 0:
            fail(f"stylize --net failed: {ran.stderr}")
    network = {"engine": 1, "networkFile": net, "styleFile": "", "iterations": 1}
    renders, messages, _, _ = host(args, "--source", both, "--frames", "0,1", "--depth", "float",
                                   "--out", f"{w}/net%d.png", params=network)
    expect_statuses(renders, [OK, OK], "network engine")
    for i in range(2):
        compare(f"network engine, frame {i + 1}", f"{w}/net{i}.png", f"{w}/cli-net{i}.png", frames[i],
                check_style=False)
    renders, _, _, _ = host(args, "--source", frames[0], "--scale", "0.5", "--out", f"{w}/net-half%d.png",
                            params=network)
    expect_statuses(renders, [OK], "network engine at render scale 0.5")
    compare("network engine, render scale 0.5", f"{w}/net-half0.png", f"{w}/cli-net2-half.png",
            f"{w}/frame0-half.png", check_style=False)

    # Abort midway, then render again, under AddressSanitizer with leak checking.
    abort_iterations = 200
    renders, _, _, seconds = host(args, "--source", frames[0], "--abort-after", "2", "--render-again",
                                  "--out", f"{w}/abort%d.png", asan=True, params={"iterations": abort_iterations})
    expect_statuses(renders, [FAILED, OK], "abort then render again")
    if renders[0]["polls"] > 3:
        fail(f"abort: the plug-in polled abort() {renders[0]['polls']} times after the host asked it to stop")
    if os.path.exists(f"{w}/abort0.png") or not os.path.exists(f"{w}/abort0-again.png"):
        fail("abort: the aborted render wrote a frame, or the second render did not")
    print(f"ok: aborted after {renders[0]['polls']} polls, rendered {abort_iterations} evaluations again, "
          f"no leaks under ASAN ({seconds:.1f} s)")

    # Bad input: an error status and a persistent error message, no crash.
    bad = [
        ("missing style file", ["--source", frames[0]], {"styleFile": f"{w}/no-such-style.png"}, "style file"),
        ("no style at all", ["--source", frames[0]], {"styleFile": ""}, "no style"),
        ("empty render window", ["--source", frames[0], "--window", "0,0,0,0"], {}, "render window"),
        ("half-float depth", ["--source", frames[0], "--depth", "half"], {}, "depth"),
        ("YUVA components", ["--source", frames[0], "--components", "YUVA"], {}, "components"),
        ("network engine without a file", ["--source", frames[0]], {"engine": 1}, "network file"),
        ("missing network file", ["--source", frames[0]], {"engine": 1, "networkFile": f"{w}/none.stnet"},
         "network file"),
        ("a style image as the network", ["--source", frames[0]], {"engine": 1, "networkFile": f"{w}/style.png"},
         "not a network file"),
    ]
    for what, extra, params, needle in bad:
        renders, messages, out, _ = host(args, *extra, "--out", f"{w}/bad%d.png", params=params)
        if len(renders) != 1 or renders[0]["status"] == OK:
            fail(f"{what}: expected an error status, got {renders}\n{out}")
        errors = [text for kind, text in messages if kind == "OfxMessageError"]
        if not errors or needle not in errors[-1].lower():
            fail(f"{what}: expected a persistent error message about '{needle}', got {messages}\n{out}")
        print(f"ok: {what}: status {renders[0]['status']}, \"{errors[-1]}\"")

    # Temporal mode: frame 2 from frame 1's result (30 evaluations, so that
    # frame 2 moves well away from where it starts).
    for mode in (0, 1):
        renders, _, _, _ = host(args, "--source", both, "--frames", "0,1", "--out", f"{w}/temporal{mode}-%d.png",
                                params={"temporal": mode, "iterations": 30})
        expect_statuses(renders, [OK, OK], f"temporal {mode}")
    first = read(f"{w}/temporal0-0.png")[..., :3]
    off, on = read(f"{w}/temporal0-1.png")[..., :3], read(f"{w}/temporal1-1.png")[..., :3]
    if np.abs(read(f"{w}/temporal1-0.png")[..., :3] - first).max() != 0:
        fail("temporal: frame 1 should not depend on the mode")
    if np.abs(on - off).max() < 2 / 255:
        fail("temporal: frame 2 started from frame 1's result equals frame 2 started from its content")
    d_off, d_on = np.abs(off - first).mean(), np.abs(on - first).mean()
    if d_on < 0.5 / 255:
        fail(f"temporal: frame 2 barely moved from frame 1 ({d_on * 255:.2f}/255 mean)")
    if not d_on < d_off:
        fail(f"temporal: frame 2 is not closer to frame 1 ({d_on * 255:.2f} vs {d_off * 255:.2f} /255 mean)")
    print(f"ok: temporal: frame 2's mean distance to frame 1 {d_on * 255:.2f}/255 (from content: {d_off * 255:.2f}/255)")

    # Follow the motion: six frames of a pan with a sprite crossing, whose
    # true flow and occlusions are known.
    seq = f"{w}/seq"
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_sequence.py"), "--kind", "pan", "--frames", "6",
                    "--size", f"{W}x{H}", "--out", seq], check=True, stdout=subprocess.DEVNULL)
    shot = ",".join(f"{seq}/frame_{t:04d}.png" for t in range(1, 7))
    errors = {}
    for mode in (0, 2):
        renders, messages, out, _ = host(args, "--source", shot, "--frames", "0,1,2,3,4,5",
                                         "--out", f"{w}/motion{mode}-%d.png", params={"temporal": mode, "iterations": 30})
        expect_statuses(renders, [OK] * 6, f"temporal mode {mode}")
        warnings = [text for kind, text in messages if kind == "OfxMessageWarning"]
        if warnings:
            fail(f"temporal mode {mode}: frames rendered in order gave warnings: {warnings}")
        pairs = []
        for t in range(2, 7):
            flow, valid = load_truth(seq, t)
            before, after = read(f"{w}/motion{mode}-{t - 2}.png")[..., :3], read(f"{w}/motion{mode}-{t - 1}.png")[..., :3]
            pairs.append(warping_error(before, after, flow, valid))
        errors[mode] = float(np.mean(pairs))
    if not errors[2] < errors[0]:
        fail(f"follow the motion: warping error {errors[2]:.5f}, not below temporal off's {errors[0]:.5f}")
    source6 = read(f"{seq}/frame_0006.png")[..., :3]
    _, before = SCORER[0].terms(source6, source6)
    _, after = SCORER[0].terms(source6, read(f"{w}/motion2-5.png")[..., :3])
    if not after <= STYLE_DROP * before:
        fail(f"follow the motion: the style was not applied to frame 6: {after:.4g} against the source's {before:.4g}")
    print(f"ok: follow the motion: warping error {errors[2]:.5f} against {errors[0]:.5f} with temporal off "
          f"({errors[2] / errors[0]:.2f}x); frame 6's style term {after / before:.2f}x the source's")

    # Frame 4 alone, as a render-farm job would render it: on its own, with a warning.
    renders, messages, out, _ = host(args, "--source", shot, "--frames", "3", "--out", f"{w}/alone-%d.png",
                                     params={"temporal": 2, "iterations": 30})
    expect_statuses(renders, [OK], "frame 4 alone")
    warnings = [text for kind, text in messages if kind == "OfxMessageWarning"]
    if not warnings or "on its own" not in warnings[-1]:
        fail(f"frame 4 alone: expected a warning that it was rendered on its own, got {messages}\n{out}")
    alone, independent = read(f"{w}/alone-3.png")[..., :3], read(f"{w}/motion0-3.png")[..., :3]
    if np.abs(alone - independent).max() > 1 / 255:
        fail("frame 4 alone differs from frame 4 rendered with temporal off")
    print(f"ok: frame 4 alone: rendered on its own, \"{warnings[-1]}\"")
    print("OFX tests passed")


if __name__ == "__main__":
    main()
