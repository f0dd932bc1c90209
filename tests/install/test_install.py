#!/usr/bin/env python3
"""An install that stands on its own, with the build's libtorch out of reach.

    test_install.py --work DIR --gimp3-root ROOT --ofx-bundle BUNDLE --ofx-host BIN --samples DIR

Installs into a throwaway prefix (WORK/prefix, scripts/install.sh with the
ST_RUNTIME of the environment), copies the OpenFX bundle to another folder,
then runs, in a private mount namespace (`unshare -m`) where empty folders
are mounted over the styletransfer cache (which holds the venv and its
libtorch), over target/ and over models/ of this clone:

  - the installed `stylize`: `stylize runtime`, a run on a sample with a
    style image, and one with an installed pack named as the user sees it;
  - the C example (examples/c/stylize.c) compiled against the installed
    pkg-config file, and run;
  - the GIMP 3 filter (the plug-in folder inside the trixie root, which is
    self-contained) in gimp-console-3.0, chrooted;
  - the OpenFX bundle from the copy, in the test host;
  - the CLI and the C example against a libtorch runtime that reports
    another version (a copy of the installed one whose libtorch_cpu.so
    says 2.10.0, through LD_LIBRARY_PATH): both must fail with the message
    naming both versions, the C example through ST_RUNTIME_ERROR, with
    their error exit statuses (2 and 1; no crash).

Outside the namespace afterwards, every result's style term (the reference
objective's, against its style) must be at most STYLE_DROP times its
source's, and the build tree's files looked at beforehand must be as they
were (nothing moved or changed). Exits non-zero, saying why, on the first
failure.
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests", "gimp"))
from reference_loss import Scorer  # noqa: E402

# Measured at 64×48 with The Starry Night after 10 evaluations: 0.47-0.58
# of the source's style term; after 20: 0.29-0.30 (bf16, a native-bf16 Xeon).
STYLE_DROP = 0.6
ITERATIONS = 20
W, H = 64, 48


def fail(message):
    print(f"INSTALL TEST FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        fail(f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def cache_dir():
    return run([f"{ROOT}/scripts/setup.sh", "cache-dir"]).stdout.strip()


def snapshot():
    """(size, mtime) of the build-tree files an install could lean on."""
    paths = [f"{ROOT}/target/release/libstyletransfer.so", f"{ROOT}/target/release/stylize",
             f"{ROOT}/target/release/styletransfer/libstyletransfer_cuda.so", f"{ROOT}/models/vgg19.safetensors"]
    torch_lib = os.path.realpath(f"{ROOT}/.venv/lib/python3.11/site-packages/torch/lib")
    if os.path.isdir(torch_lib):
        paths += [os.path.join(torch_lib, n) for n in sorted(os.listdir(torch_lib))]
    state = {}
    for p in paths:
        if os.path.exists(p):
            st = os.stat(p)
            state[p] = (st.st_size, st.st_mtime_ns, st.st_ino)
    state["venv link"] = os.readlink(f"{ROOT}/.venv") if os.path.islink(f"{ROOT}/.venv") else None
    return state


def make_inputs(work, samples):
    os.makedirs(f"{work}/in", exist_ok=True)
    content = Image.open(f"{samples}/chelsea.jpg").convert("RGB").resize((W, H), Image.LANCZOS)
    content.save(f"{work}/in/content.png")
    content.save(f"{work}/in/content.ppm")
    style = Image.open(f"{samples}/starry_night.jpg").convert("RGB").resize((96, 77), Image.LANCZOS)
    style.save(f"{work}/in/style.png")
    rgba = np.dstack([np.asarray(content), np.full((H, W), 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(f"{work}/in/frame.png")
    # Two frames of a pan for the installed optical-flow shim.
    wide = Image.open(f"{samples}/chelsea.jpg").convert("RGB").resize((W + 8, H + 4), Image.LANCZOS)
    for t in (1, 2):
        wide.crop((3 * t, t, 3 * t + W, t + H)).save(f"{work}/in/seq_{t}.png")


def fake_runtime(work, prefix):
    """A copy of the installed runtime whose libtorch_cpu.so reports another
    version. libtorch builds its build-settings entry TORCH_VERSION from
    immediate operands (short strings are stored by mov instructions): the
    first four characters of the version ("2.11") are a 4-byte immediate a
    little after the one holding "TORCH_VE". That immediate is changed to
    the previous minor version ("2.10"), so show_config() then says
    TORCH_VERSION=2.10.0 through libtorch's own code."""
    real = f"{prefix}/lib/styletransfer"
    fake = f"{work}/fake-runtime"
    shutil.rmtree(fake, ignore_errors=True)
    shutil.copytree(real, fake, symlinks=True)
    built = run([f"{prefix}/bin/stylize", "runtime"]).stdout.split()[1]
    major, minor = built.split(".")[:2]
    head, wrong_head = f"{major}.{minor}"[:4], f"{major}.{int(minor) - 1}"[:4]
    if len(head) != 4 or len(wrong_head) != 4:
        fail(f"cannot simulate another version of libtorch {built}")
    wrong = wrong_head + built[4:]
    lib = f"{fake}/torch/lib/libtorch_cpu.so"
    data = bytearray(open(lib, "rb").read())
    key = data.find(b"TORCH_VE")
    if key < 0 or data.find(b"TORCH_VE", key + 1) >= 0:
        fail("libtorch_cpu.so does not hold the immediate 'TORCH_VE' exactly once")
    window = bytes(data[key:key + 512])
    at = window.find(head.encode())
    if at < 0 or window.find(head.encode(), at + 1) >= 0:
        fail(f"no single immediate {head!r} after 'TORCH_VE' in libtorch_cpu.so")
    data[key + at:key + at + 4] = wrong_head.encode()
    open(lib, "wb").write(bytes(data))
    return fake, built, wrong


def gimp3_command(work_inner):
    from test_gimp import script  # the same Script-Fu the GIMP test uses
    import test_gimp
    command = script(3, work_inner)[0].replace("gimp-rgba.png", "g3-out.png").replace("rgba.png", "g3-in.png")
    settings = f"#:strength {test_gimp.STRENGTH} #:iterations {test_gimp.ITERATIONS}"
    assert settings in command, command
    return command.replace(settings, f"#:strength 1 #:iterations {ITERATIONS}")


def inner_script(a, cache, prefix, fake, ofx_copy):
    w = a.work
    env = f"env -i PATH=/usr/bin:/bin HOME={w}/home"
    q = shlex.quote
    root3 = a.gimp3_root
    g3work = f"{root3}/work/install-test"
    g3inner = "/work/install-test"
    lines = [
        "set -eu",
        "mount --make-rprivate /",
        # Empty folders over the cache (the venv and its libtorch), target/ and models/.
        *[f"mkdir -p {q(d)} && mount -t tmpfs -o size=1m,mode=0755 empty {q(d)}"
          for d in (cache, f"{ROOT}/target", f"{ROOT}/models")],
        f"test ! -e {q(ROOT)}/.venv/bin/python3",
        f"test ! -e {q(ROOT)}/target/release/libstyletransfer.so",
        f"cd {q(w)}",
        f"mkdir -p home out c",
        # The installed CLI.
        f"{env} {prefix}/bin/stylize runtime > out/runtime.txt",
        f"{env} {prefix}/bin/stylize --content in/content.png --style in/style.png -o out/cli.png "
        f"--size {W} --iterations {ITERATIONS} --device cpu --report json > out/cli.json",
        f"{env} {prefix}/bin/stylize --content in/content.png --style-pack 'The Starry Night' -o out/cli-pack.png "
        f"--size {W} --iterations {ITERATIONS} --device cpu --report json > out/cli-pack.json",
        # A frame sequence through the installed optical-flow shim.
        f"{env} {prefix}/bin/stylize sequence --content 'in/seq_%d.png' -o 'out/seq_%d.png' --style in/style.png "
        f"--size {W} --iterations {ITERATIONS} --device cpu --report json > out/seq.json",
        # The C example from the installed .pc.
        f"{env} PKG_CONFIG_PATH={prefix}/lib/pkgconfig sh -c 'cc -O2 -Wall -Werror {ROOT}/examples/c/stylize.c "
        f"$(pkg-config --cflags --libs styletransfer libpng) -o c/stylize-c'",
        f"{env} c/stylize-c in/content.ppm in/style.png out/c.png --size {W} --iterations {ITERATIONS} --device cpu "
        f"> out/c.txt 2>&1",
        # A runtime that reports another version: a clear error, exit status 2.
        f"set +e; {env} LD_LIBRARY_PATH={fake}/torch/lib {prefix}/bin/stylize --content in/content.png "
        f"--style in/style.png -o out/wrong.png --size 32 --iterations 1 --device cpu > out/wrong-cli.txt 2>&1; "
        f"echo $? > out/wrong-cli.rc",
        f"{env} LD_LIBRARY_PATH={fake}/torch/lib c/stylize-c in/content.ppm in/style.png out/wrong-c.png "
        f"--size 32 --iterations 1 --device cpu > out/wrong-c.txt 2>&1; echo $? > out/wrong-c.rc; set -e",
        # The GIMP 3 filter, chrooted into the trixie root (only /proc mounted there).
        f"mount -t proc proc {q(root3)}/proc",
        f"chroot {q(root3)} env -i PATH=/usr/bin:/bin HOME={g3inner} GIMP3_DIRECTORY={g3inner}/gimp3-dir "
        f"timeout 900 gimp-console-3.0 -i -d -f -n -c --gimprc={g3inner}/gimprc "
        f"--batch-interpreter=plug-in-script-fu-eval -b {q('(script-fu-use-v3) ' + gimp3_command(g3inner))} "
        f"--quit > {g3work}/gimp.log 2>&1",
        # The OpenFX bundle from its copy.
        f"{env} OFX_PLUGIN_PATH={ofx_copy} {a.ofx_host} --plugin org.styletransfer.StyleTransfer "
        f"--source in/frame.png --out out/ofx%d.png --param styleFile={w}/in/style.png --param iterations={ITERATIONS} "
        f"--param strength=1 --param quality=0 --param device=1 > out/ofx.txt 2>&1",
    ]
    return "\n".join(lines) + "\n"


def check_styled(scorer, what, source, result_path, style):
    result = np.asarray(Image.open(result_path).convert("RGB")).astype(np.float64) / 255.0
    if result.shape != source.shape:
        fail(f"{what}: size {result.shape[1]}x{result.shape[0]}, expected {source.shape[1]}x{source.shape[0]}")
    _, before = scorer.terms(source, source)
    _, after = scorer.terms(source, result)
    print(f"  {what}: style term {after:.4g}, the source's {before:.4g} ({after / before:.2f}x)")
    if not after <= STYLE_DROP * before:
        fail(f"{what}: the style was not applied (style term {after:.4g}, the source's {before:.4g})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--gimp3-root", required=True)
    ap.add_argument("--ofx-bundle", required=True)
    ap.add_argument("--ofx-host", required=True)
    ap.add_argument("--samples", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    before = snapshot()

    prefix = f"{a.work}/prefix"
    started = time.monotonic()
    out = run([f"{ROOT}/scripts/install.sh", prefix]).stdout.strip()
    print(f"  {out} in {time.monotonic() - started:.1f} s")
    make_inputs(a.work, a.samples)
    fake, built, wrong = fake_runtime(a.work, prefix)
    ofx_copy = f"{a.work}/ofx-copy"
    os.makedirs(ofx_copy)
    run(["cp", "-a", a.ofx_bundle, ofx_copy])
    g3work = f"{a.gimp3_root}/work/install-test"
    shutil.rmtree(g3work, ignore_errors=True)
    os.makedirs(g3work)
    shutil.copy(f"{a.work}/in/frame.png", f"{g3work}/g3-in.png")
    shutil.copy(f"{a.work}/in/style.png", f"{g3work}/style.png")
    with open(f"{g3work}/gimprc", "w") as f:
        f.write('(plug-in-path "${gimp_dir}/plug-ins:${gimp_plug_in_dir}/plug-ins:/work/plug-ins")\n')

    script = inner_script(a, cache_dir(), prefix, fake, ofx_copy)
    with open(f"{a.work}/inner.sh", "w") as f:
        f.write(script)
    started = time.monotonic()
    r = subprocess.run(["unshare", "-m", "sh", f"{a.work}/inner.sh"], capture_output=True, text=True)
    print(f"  isolated runs: {time.monotonic() - started:.0f} s")
    if r.returncode != 0:
        logs = ""
        for name in ("out/c.txt", "out/ofx.txt"):
            if os.path.exists(f"{a.work}/{name}"):
                logs += f"\n--- {name}\n" + open(f"{a.work}/{name}").read()[-2000:]
        if os.path.exists(f"{g3work}/gimp.log"):
            logs += "\n--- gimp.log\n" + open(f"{g3work}/gimp.log").read()[-3000:]
        fail(f"the isolated runs failed (exit {r.returncode}):\n{r.stderr[-3000:]}{logs}")

    runtime = open(f"{a.work}/out/runtime.txt").read()
    print("  " + runtime.strip().replace("\n", "\n  "))
    if f"libtorch: {built} (built for {built}), {prefix}" not in runtime.replace("/bin/../lib/", "/lib/") \
            and f"{prefix}/bin/../lib/styletransfer/torch/lib/libtorch_cpu.so" not in runtime:
        fail(f"the installed CLI did not load the installed runtime:\n{runtime}")
    # The CLI exits 2 on errors, the C example 1 (printing st_create's status text and st_last_error(NULL)).
    for name, code, needle in (("wrong-cli", 2, "libtorch runtime: "),
                               ("wrong-c", 1, "st_create: libtorch runtime of another version: ")):
        rc = int(open(f"{a.work}/out/{name}.rc").read())
        text = open(f"{a.work}/out/{name}.txt").read()
        print(f"  {name}: exit {rc}: {text.strip().splitlines()[-1] if text.strip() else ''}")
        if rc != code:
            fail(f"{name}: exit status {rc} with a runtime of another version (expected {code}, an error):\n{text}")
        if needle not in text or f"version {wrong}" not in text or f"libtorch {built}" not in text:
            fail(f"{name}: the message does not name both versions ({wrong}, {built}) as expected:\n{text}")

    source = np.asarray(Image.open(f"{a.work}/in/content.png").convert("RGB")).astype(np.float64) / 255.0
    style = np.asarray(Image.open(f"{a.work}/in/style.png").convert("RGB")).astype(np.float64) / 255.0
    scorer = Scorer(os.path.join(ROOT, "models", "vgg19.safetensors"), style)
    check_styled(scorer, "installed CLI", source, f"{a.work}/out/cli.png", style)
    check_styled(scorer, "installed CLI, installed pack", source, f"{a.work}/out/cli-pack.png", style)
    check_styled(scorer, "C example from the .pc", source, f"{a.work}/out/c.png", style)
    check_styled(scorer, "GIMP 3 filter", source, f"{g3work}/g3-out.png", style)
    check_styled(scorer, "OpenFX bundle (copied)", source, f"{a.work}/out/ofx0.png", style)

    frames = [json.loads(line) for line in open(f"{a.work}/out/seq.json") if '"frame"' in line]
    if [f["temporal"] for f in frames] != ["off", "flow"] or not frames[1]["loss"]["temporal"] > 0:
        fail(f"installed CLI, sequence: frame 2 did not follow frame 1 by the flow: {frames}")
    print(f"  installed CLI, sequence: frame 2 followed the flow (reliable {frames[1]['reliable']:.2f}, "
          f"temporal term {frames[1]['loss']['temporal']:.3g})")
    check_styled(scorer, "installed CLI, sequence frame 2",
                 np.asarray(Image.open(f"{a.work}/in/seq_2.png").convert("RGB")).astype(np.float64) / 255.0,
                 f"{a.work}/out/seq_2.png", style)

    after = snapshot()
    if after != before:
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        fail(f"the build tree changed: {changed}")
    print(f"  build tree unchanged ({len(before)} files checked)")
    print("install test passed")


if __name__ == "__main__":
    main()
