#!/usr/bin/env python3
"""The feed-forward network against the optimiser, on this machine's CPU.

    scripts/bench-network.py [--minutes 15] [--width 16] [--size 256]
                             [--style IMG] [--work DIR] [--json FILE] [--skip-training]

1. Trains a network (`stylize train`) on the sample photos
   (examples/images/chelsea.jpg, coffee.jpg) at --size for at most
   --minutes, with the style (The Starry Night by default).
2. On photos the training never saw (OpenCV's sample photos from Debian's
   `opencv-doc`: baboon, fruits, building, butterfly; fetched once into the
   cache with `apt-get download`), each at --size on its long side: the
   network's result and Gatys's (`stylize`, one pyramid level, fp32) after
   5, 10, 25, 50, 100 and 200 evaluations, all scored by `stylize score`
   (the fp32 objective at strength 0.5: content, style and total). Says how
   many evaluations Gatys needs to reach the network's total.
3. Per-frame time of the network at 512² and 1920×1080, fp32 and bf16
   (examples/net_speed: an image in memory in and out, and a frame already
   on the device), for the trained width and for widths 8 and 32.
4. The warping error (tools/warping_error.py) of `stylize sequence --net`
   on the synthetic pan and zoom (tools/make_sequence.py), next to the
   optimiser's independent frames (--temporal off) and its flow mode.

Prints Markdown tables; --json writes every number. Takes about
--minutes + 15 minutes: it is a measurement, not a test.
"""
import argparse
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from warping_error import sequence_error  # noqa: E402

PY = os.path.join(ROOT, ".venv", "bin", "python3")
STYLIZE = os.path.join(ROOT, "target", "release", "stylize")
NET_SPEED = os.path.join(ROOT, "target", "release", "examples", "net_speed")
UNSEEN = ["baboon.jpg", "fruits.jpg", "building.jpg", "butterfly.jpg"]
EVALUATIONS = [5, 10, 25, 50, 100, 200]


def cache_dir():
    return subprocess.run([os.path.join(ROOT, "scripts", "setup.sh"), "cache-dir"], check=True,
                          capture_output=True, text=True).stdout.strip()


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def unseen_photos(size, work):
    """OpenCV's sample photos from Debian's opencv-doc, resized to `size` on the long side."""
    folder = os.path.join(cache_dir(), "opencv-doc-data")
    if not all(os.path.isfile(os.path.join(folder, name)) for name in UNSEEN):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
            deb = glob.glob(os.path.join(tmp, "opencv-doc_*.deb"))[0]
            subprocess.run(["dpkg-deb", "-x", deb, os.path.join(tmp, "x")], check=True)
            data = os.path.join(tmp, "x", "usr", "share", "doc", "opencv-doc", "examples", "data")
            os.makedirs(folder, exist_ok=True)
            for name in UNSEEN:
                shutil.copy(os.path.join(data, name), folder)
    out = []
    for name in UNSEEN:
        target = os.path.join(work, "unseen", os.path.splitext(name)[0] + ".png")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        subprocess.run([PY, "-c", (
            "import sys; from PIL import Image; im = Image.open(sys.argv[1]).convert('RGB'); "
            "s = int(sys.argv[3]) / max(im.size); "
            "im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.LANCZOS).save(sys.argv[2])")
            , os.path.join(folder, name), target, str(size)], check=True)
        out.append(target)
    return out


def run(args, capture=True):
    done = subprocess.run(args, check=True, capture_output=capture, text=True)
    return done.stdout


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def score(content, image, style):
    out = run([STYLIZE, "score", "--content", content, "--image", image, "--style", style])
    return json_lines(out)[0]["loss"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--style", default=os.path.join(ROOT, "examples", "images", "starry_night.jpg"))
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "network"))
    parser.add_argument("--json")
    parser.add_argument("--skip-training", action="store_true", help="reuse the network of an earlier run")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    machine = f"{cpu_name()}, {os.cpu_count()} CPUs"
    results = {"machine": machine, "date": time.strftime("%Y-%m-%d"), "style": os.path.basename(args.style),
               "width": args.width, "size": args.size}
    print(f"# {results['date']} {machine}; style {results['style']}, width {args.width}, {args.size}²")
    print()

    # 1. Training.
    photos = os.path.join(args.work, "photos")
    os.makedirs(photos, exist_ok=True)
    for name in ("chelsea.jpg", "coffee.jpg"):
        shutil.copy(os.path.join(ROOT, "examples", "images", name), photos)
    net = os.path.join(args.work, "net.stnet")
    if not args.skip_training:
        for stale in (net, net + ".ckpt"):
            if os.path.exists(stale):
                os.remove(stale)
        started = time.time()
        out = run([STYLIZE, "train", "--style", args.style, "--images", photos, "-o", net, "--size", str(args.size),
                   "--width", str(args.width), "--steps", "1000000", "--max-minutes", str(args.minutes),
                   "--device", "cpu", "--json"])
        training = json_lines(out)[0]
        training["wall_seconds"] = time.time() - started
        results["training"] = training
        print(f"Training: {training['steps']} steps in {training['seconds']:.0f} s "
              f"({training['precision']}), loss {training['first_loss']:.3f} at the first step, "
              f"{training['final_loss']:.3f} over the last 20")
        print()

    # 2. Quality on unseen photos.
    print("| photo | engine | content | style | total |")
    print("|---|---|---|---|---|")
    quality = {}
    needed = []
    for content in unseen_photos(args.size, args.work):
        name = os.path.splitext(os.path.basename(content))[0]
        rows = {"photo as it is": score(content, content, args.style)}
        for precision in ("fp32", "bf16"):
            out = os.path.join(args.work, f"{name}-net-{precision}.png")
            run([STYLIZE, "--net", net, "--content", content, "-o", out, "--device", "cpu", "--precision", precision])
            rows[f"net {precision}"] = score(content, out, args.style)
        for n in EVALUATIONS:
            out = os.path.join(args.work, f"{name}-gatys-{n}.png")
            run([STYLIZE, "--content", content, "--style", args.style, "-o", out, "--iterations", str(n),
                 "--scales", "1", "--device", "cpu", "--precision", "fp32"])
            rows[f"gatys {n}"] = score(content, out, args.style)
        for engine, loss in rows.items():
            print(f"| {name} | {engine} | {loss['content']:.3f} | {loss['style']:.3f} | {loss['total']:.3f} |",
                  flush=True)
        target = rows["net fp32"]["total"]
        # The fewest evaluations of the list whose total is at or below the network's.
        match = next((n for n in EVALUATIONS if rows[f"gatys {n}"]["total"] <= target), None)
        needed.append(match)
        quality[name] = {"losses": rows, "gatys_evaluations_to_match": match}
    results["quality"] = quality
    print()
    print("Evaluations Gatys needs to reach the network's total (fp32), from the list " +
          f"{EVALUATIONS}: " +
          ", ".join(f"{n}: {(f'at most {m}' if m == EVALUATIONS[0] else m) if m is not None else f'more than {EVALUATIONS[-1]}'}"
                    for n, m in zip(quality, needed)))
    print()

    # 3. Speed.
    print("| width | size | precision | mode | ms/frame | frames/s |")
    print("|---|---|---|---|---|---|")
    speed = []
    for width in sorted({8, args.width, 32}):
        source = ["--net", net] if width == args.width else ["--width", str(width)]
        out = run([NET_SPEED, *source, "--sizes", "512x512,1920x1080", "--precisions", "fp32,bf16", "--runs", "5",
                   "--mode", "both", "--device", "cpu"])
        for line in out.splitlines():
            fields = dict(f.split("=", 1) for f in line.split()[1:])
            speed.append(fields)
            print(f"| {fields['width']} | {fields['size']} | {fields['precision']} | {fields['mode']} | "
                  f"{float(fields['ms_per_frame']):.0f} | {float(fields['fps']):.2f} |", flush=True)
    results["speed"] = speed
    print()

    # 4. Warping error on the synthetic sequences.
    print("| shot | engine | warping error | s/frame |")
    print("|---|---|---|---|")
    temporal = {}
    for kind in ("pan", "zoom"):
        truth = os.path.join(args.work, f"{kind}-truth")
        run([PY, os.path.join(ROOT, "tools", "make_sequence.py"), "--kind", kind, "--frames", "12", "--size",
             "160x120", "--out", truth])
        shot = {}
        for engine, extra in (("net", ["--net", net]),
                              ("gatys off", ["--style", args.style, "--temporal", "off", "--iterations", "100"]),
                              ("gatys flow", ["--style", args.style, "--temporal", "flow", "--iterations", "100"])):
            out = os.path.join(args.work, f"{kind}-{engine.replace(' ', '-')}")
            shutil.rmtree(out, ignore_errors=True)
            lines = json_lines(run([STYLIZE, "sequence", "--content", f"{truth}/frame_%04d.png", "-o",
                                    f"{out}/f_%04d.png", "--device", "cpu", "--report", "json", *extra]))
            summary = [line for line in lines if "summary" in line][0]["summary"]
            error = sequence_error(f"{out}/f_%04d.png", truth, 1, 12)
            shot[engine] = {"warping_error": error["mean"], "mean_frame_seconds": summary["mean_frame_seconds"]}
            print(f"| {kind} | {engine} | {error['mean']:.5f} | {summary['mean_frame_seconds']:.2f} |", flush=True)
        temporal[kind] = shot
    results["temporal"] = temporal
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
