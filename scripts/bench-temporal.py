#!/usr/bin/env python3
"""Temporal coherence of `stylize sequence` on the synthetic sequences.

    scripts/bench-temporal.py [--size 160x120] [--frames 12] [--iterations 100]
                              [--chunk-frames 40] [--style IMG] [--work DIR] [--json FILE]

For a pan and a zoom with a sprite crossing (tools/make_sequence.py, exact
flow and occlusions), runs the three temporal modes with the same settings
(every frame --iterations evaluations per level; content start, so the seed
does not matter) and reports for each:

* the warping error against the ground truth (tools/warping_error.py), and
  its ratio to the independent frames' (off);
* each frame's style term against the same frame run independently (the
  largest ratio over the frames after the first);
* the mean time of a frame after the first, against off's;
* the set-up time (model, styles, style targets) against the time per frame.

Then a --chunk-frames pan rendered as two render-farm chunks, frames
1..N/2 and N/2+1..N with --warmup 4, into one folder: the warping error of
the pair at the join against the mean of the pairs inside the chunks.

Prints a Markdown table; --json writes every number. Takes minutes: it is a
measurement, not a test.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from warping_error import sequence_error  # noqa: E402

PY = os.path.join(ROOT, ".venv", "bin", "python3")
STYLIZE = os.path.join(ROOT, "target", "release", "stylize")


def make(kind, frames, size, out):
    subprocess.run([PY, os.path.join(ROOT, "tools", "make_sequence.py"), "--kind", kind, "--frames", str(frames),
                    "--size", size, "--out", out], check=True, stdout=subprocess.DEVNULL)


def sequence(truth, out, style, iterations, extra):
    args = [STYLIZE, "sequence", "--content", f"{truth}/frame_%04d.png", "-o", f"{out}/f_%04d.png",
            "--style", style, "--iterations", str(iterations), "--report", "json"] + extra
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return [l for l in lines if "frame" in l and not l.get("skipped")], [l for l in lines if "summary" in l][0]["summary"]


def mean(values):
    return sum(values) / len(values) if values else float("nan")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="160x120")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--chunk-frames", type=int, default=40)
    parser.add_argument("--style", default=os.path.join(ROOT, "examples", "images", "starry_night.jpg"))
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "temporal"))
    parser.add_argument("--json")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    results = {"machine": f"{cpu_name()}, {os.cpu_count()} CPUs", "size": args.size, "frames": args.frames,
               "iterations": args.iterations, "style": os.path.basename(args.style), "shots": {}}
    print(f"# {time.strftime('%Y-%m-%d')} {results['machine']}; {args.size}, {args.frames} frames, "
          f"{args.iterations} evaluations per frame, style {results['style']}")
    print()
    print("| shot | mode | warping error | vs off | style vs off (max over frames) | s/frame after the first | vs off | set-up s |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in ("pan", "zoom"):
        truth = os.path.join(args.work, f"{kind}-truth")
        make(kind, args.frames, args.size, truth)
        shot = {}
        for mode in ("off", "init", "flow"):
            out = os.path.join(args.work, f"{kind}-{mode}")
            frames, summary = sequence(truth, out, args.style, args.iterations, ["--temporal", mode])
            error = sequence_error(f"{out}/f_%04d.png", truth, 1, args.frames)
            shot[mode] = {"frames": frames, "summary": summary, "warping_error": error["mean"],
                          "pairs": error["pairs"]}
        off = shot["off"]
        for mode in ("off", "init", "flow"):
            r = shot[mode]
            style = [f["loss"]["style"] / o["loss"]["style"] for f, o in zip(r["frames"][1:], off["frames"][1:])]
            later = mean([f["seconds"] for f in r["frames"][1:]])
            r["style_ratio_max"] = max(style)
            r["style_ratios"] = style
            r["later_seconds"] = later
            r["warping_ratio"] = r["warping_error"] / off["warping_error"]
            r["time_ratio"] = later / mean([f["seconds"] for f in off["frames"][1:]])
            setup = r["summary"]["setup_seconds"] + r["summary"]["targets_seconds"]
            print(f"| {kind} | {mode} | {r['warping_error']:.5f} | {r['warping_ratio']:.2f}× | "
                  f"{r['style_ratio_max']:.3f}× | {later:.2f} | {r['time_ratio']:.2f}× | {setup:.2f} |", flush=True)
        for mode in ("off", "init", "flow"):
            del shot[mode]["frames"]
        results["shots"][kind] = shot

    # Two chunks of a longer pan, the second warmed up on the 4 frames before it.
    n = args.chunk_frames
    half = n // 2
    truth = os.path.join(args.work, "chunks-truth")
    make("pan", n, args.size, truth)
    out = os.path.join(args.work, "chunks")
    subprocess.run(["rm", "-rf", out], check=True)
    sequence(truth, out, args.style, args.iterations, ["--frames", f"1-{half}"])
    sequence(truth, out, args.style, args.iterations, ["--frames", f"{half + 1}-{n}", "--warmup", "4"])
    error = sequence_error(f"{out}/f_%04d.png", truth, 1, n)
    pairs = {int(t): e for t, e in error["pairs"].items() if e is not None}
    join = pairs[half + 1]
    inside = mean([e for t, e in pairs.items() if t != half + 1])
    results["chunks"] = {"frames": n, "join_pair": [half, half + 1], "join_error": join, "inside_mean": inside,
                         "ratio": join / inside, "pairs": pairs}
    print()
    print(f"Chunks 1-{half} and {half + 1}-{n} (--warmup 4), pan, flow: warping error at the join "
          f"{join:.5f}, mean inside the chunks {inside:.5f}: {join / inside:.2f}×")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
