#!/usr/bin/env bash
# CPU speed: our ms per evaluation beside the PyTorch reference's, same run,
# same machine, sizes interleaved so both see the same load. Both sides run
# their evaluations inside L-BFGS (ours / torch.optim.LBFGS).
#
# usage: scripts/bench-cpu.sh [SIZES=64,128,256] [EVALS=10] [ROUNDS=3]
# env:   REFERENCE=a peer script with tools/torch_reference.py's command line
#        (default: the peer's own gatys_pytorch.py when a checkout keeps it in
#        ../shared/reference/, outside this repository; else the project's
#        reimplementation tools/torch_reference.py)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sizes=${1:-64,128,256}
evals=${2:-10}
rounds=${3:-3}
py="$root/.venv/bin/python3"
reference=${REFERENCE:-$root/../shared/reference/gatys_pytorch.py}
[ -f "$reference" ] || reference="$root/tools/torch_reference.py"
weights=$("$root/scripts/setup.sh" reference-weights)
ours="$root/target/release/examples/eval_speed"
[ -x "$ours" ] || { echo "build first: make build" >&2; exit 1; }
echo "# $(date -u +%F) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; reference: $(basename "$reference")"
printf '%-6s %-6s %12s %12s %8s\n' size round ours_ms ref_ms ratio
IFS=, read -ra list <<<"$sizes"
for size in "${list[@]}"; do
    for round in $(seq "$rounds"); do
        o=$("$ours" --sizes "$size" --evals "$evals" --lbfgs --model "$root/models/vgg19.safetensors" | sed -n 's/.*ms_per_eval=\([0-9.]*\).*/\1/p')
        r=$("$py" "$reference" --weights "$weights" --device cpu --sizes "$size" --evals "$evals" | sed -n 's/.*ms_per_eval=\([0-9.]*\).*/\1/p')
        printf '%-6s %-6s %12s %12s %8s\n' "$size" "$round" "$o" "$r" "$(python3 -c "print(f'{$r/$o:.2f}x')")"
    done
done
