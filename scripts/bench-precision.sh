#!/usr/bin/env bash
# CPU precision benchmark, one run: for each size, ms per evaluation inside
# L-BFGS of ours in fp32 and bf16 beside the PyTorch reference's, the final
# loss of each after EVALS evaluations (ours scored by the fp32 reference
# objective), bf16's drift against fp32, and the wall time until each of our
# runs reaches the reference's final loss (up to 3×EVALS evaluations; time
# and evaluations counted from the start of L-BFGS, by the run's own loss).
#
# usage: scripts/bench-precision.sh [SIZES=128,256,512] [EVALS=100] [CONTENT] [STYLE]
# env:   REFERENCE=path/to/gatys_pytorch.py (default ../shared/reference/, else
#        tools/torch_reference.py); ST_CPU_BF16=0|1 overrides the CPU detection
#        (on a CPU without native bfloat16, bf16 is emulated: fp32 kernels).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sizes=${1:-128,256,512}
evals=${2:-100}
content=${3:-$root/examples/images/chelsea.jpg}
style=${4:-$root/examples/images/swirls.jpg}
py="$root/.venv/bin/python3"
reference=${REFERENCE:-$root/../shared/reference/gatys_pytorch.py}
[ -f "$reference" ] || reference="$root/tools/torch_reference.py"
weights=$("$root/scripts/setup.sh" reference-weights)
ours="$root/target/release/examples/eval_speed"
[ -x "$ours" ] || { echo "build first: make build" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
calc() { "$py" -c "import sys; a, b = map(float, sys.argv[1:]); print($1)" "$2" "$3"; }

native=$(grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo && echo yes || echo no)
echo "# $(date -u +%F) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores," \
    "native bfloat16: $native${ST_CPU_BF16:+ (ST_CPU_BF16=$ST_CPU_BF16)}; reference: $(basename "$reference"); $evals evaluations"
printf '%-5s %9s %9s %9s %10s %12s %12s %12s %9s %8s %12s %12s\n' size fp32_ms bf16_ms ref_ms fp32/bf16 \
    loss_ref loss_fp32 loss_bf16 bf16-fp32 ref_s fp32_to_ref bf16_to_ref
IFS=, read -ra list <<<"$sizes"
for size in "${list[@]}"; do
    "$py" -c 'import sys; from PIL import Image
n = int(sys.argv[3])
for src, dst in ((sys.argv[1], sys.argv[4]), (sys.argv[2], sys.argv[5])):
    Image.open(src).convert("RGB").resize((n, n), Image.LANCZOS).save(dst)' \
        "$content" "$style" "$size" "$work/content.png" "$work/style.png"
    images=(--content "$work/content.png" --style "$work/style.png")
    ref=$("$py" "$reference" --weights "$weights" --device cpu --sizes "$size" --evals "$evals" "${images[@]}")
    target=$(field loss <<<"$ref")
    common=(--device cpu --sizes "$size" --lbfgs "${images[@]}" --model "$root/models/vgg19.safetensors")
    f32=$("$ours" "${common[@]}" --evals "$evals" --precision fp32)
    b16=$("$ours" "${common[@]}" --evals "$evals" --precision bf16)
    f32_t=$("$ours" "${common[@]}" --evals $((3 * evals)) --precision fp32 --target "$target")
    b16_t=$("$ours" "${common[@]}" --evals $((3 * evals)) --precision bf16 --target "$target")
    to_target() {
        local s; s=$(field seconds_to_target <<<"$1")
        [ "$s" = never ] && echo never || echo "${s}s/$(field evals_to_target <<<"$1")"
    }
    ref_s=$(calc 'f"{a * b / 1000:.1f}"' "$(field ms_per_eval <<<"$ref")" "$evals")
    printf '%-5s %9s %9s %9s %10s %12s %12s %12s %9s %8s %12s %12s\n' "$size" \
        "$(field ms_per_eval <<<"$f32")" "$(field ms_per_eval <<<"$b16")" "$(field ms_per_eval <<<"$ref")" \
        "$(calc 'f"{a / b:.2f}x"' "$(field ms_per_eval <<<"$f32")" "$(field ms_per_eval <<<"$b16")")" \
        "$target" "$(field final_loss <<<"$f32")" "$(field final_loss <<<"$b16")" \
        "$(calc 'f"{100 * (b / a - 1):+.2f}%"' "$(field final_loss <<<"$f32")" "$(field final_loss <<<"$b16")")" \
        "${ref_s}s" "$(to_target "$f32_t")" "$(to_target "$b16_t")"
    grep -q kernels=emulated <<<"$b16" && echo "#   bf16 at ${size}²: emulated (no native bfloat16 on this CPU)"
done
