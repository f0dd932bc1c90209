#!/usr/bin/env bash
# Quality at equal work: 128², single scale, 100 evaluations, reference
# normalisation, the same images. Prints the reference's final loss, ours,
# and both saved outputs scored by the same reference objective.
#
# usage: scripts/bench-quality.sh [CONTENT] [STYLE] [SIZE=128] [EVALS=100]
# env:   REFERENCE=path/to/gatys_pytorch.py (default ../shared/reference/, else
#        tools/torch_reference.py)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
content=${1:-$root/examples/images/chelsea.jpg}
style=${2:-$root/examples/images/swirls.jpg}
size=${3:-128}
evals=${4:-100}
py="$root/.venv/bin/python3"
reference=${REFERENCE:-$root/../shared/reference/gatys_pytorch.py}
[ -f "$reference" ] || reference="$root/tools/torch_reference.py"
weights=$("$root/scripts/setup.sh" reference-weights)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Both sides get the same size×size inputs (the reference squashes to a square).
"$py" -c 'import sys; from PIL import Image; [Image.open(p).convert("RGB").resize((int(sys.argv[3]),)*2, Image.LANCZOS).save(o) for p, o in ((sys.argv[1], sys.argv[4]), (sys.argv[2], sys.argv[5]))]' \
    "$content" "$style" "$size" "$work/content.png" "$work/style.png"
echo "# $(date -u +%F) size=$size evals=$evals reference=$(basename "$reference")"
ref_line=$("$py" "$reference" --weights "$weights" --device cpu --sizes "$size" --evals "$evals" \
    --content "$work/content.png" --style "$work/style.png" --out "$work/ref.png")
echo "reference: $ref_line"
ours_json=$("$root/target/release/stylize" --content "$work/content.png" --style "$work/style.png" -o "$work/ours.png" \
    --size "$size" --scales 1 --iterations "$evals" --normalization reference --device cpu --precision fp32 --report json)
echo "ours:      $ours_json"
echo "scored by the reference objective (8-bit outputs):"
"$py" "$root/tools/reference_loss.py" --weights "$weights" --content "$work/content.png" --style "$work/style.png" \
    --size "$size" "$work/ref.png" "$work/ours.png" | sed "s|$work/||"
