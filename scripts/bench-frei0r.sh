#!/usr/bin/env bash
# The frei0r filter's speed inside the real FFmpeg: frames per second of
# `-vf frei0r=filter_name=styletransfer` on FFmpeg's test pattern, for each
# size, at the filter's defaults (100 evaluations per level, working size the
# frame's up to 512) unless ITERATIONS and QUALITY say otherwise. Start-up
# (libtorch, the model, the style targets) is measured apart: the rate is
# (FRAMES - 1) frames over the time the run takes beyond a one-frame run.
#
# usage: scripts/bench-frei0r.sh [SIZES=320x240,1280x720] [FRAMES=4]
# env:   ITERATIONS (default 100), QUALITY (default 0), STYLE (default the
#        Swirls sample), PRECISION (auto, or fp32: sets ST_CPU_BF16=0)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sizes=${1:-320x240,1280x720}
frames=${2:-4}
iterations=${ITERATIONS:-100}
quality=${QUALITY:-0}
style=${STYLE:-$root/examples/images/swirls.jpg}
[ -f "$root/build/frei0r/lib/styletransfer.so" ] || { echo "build first: make frei0r-plugin" >&2; exit 1; }
export FREI0R_PATH="$root/build/frei0r/lib"
[ "${PRECISION:-auto}" = fp32 ] && export ST_CPU_BF16=0
echo "# $(date -u +%F) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores;" \
     "iterations $iterations, quality $quality, precision ${PRECISION:-auto}"
printf '%-10s %8s %12s %12s %10s\n' size frames one_frame_s all_s fps
run() { # size count -> seconds
    local start end
    start=$(date +%s.%N)
    ffmpeg -v error -f lavfi -i "testsrc=size=$1:rate=25" -frames:v "$2" \
        -vf "frei0r=filter_name=styletransfer:filter_params=$style|0.5|$iterations|$quality" -f null - </dev/null
    end=$(date +%s.%N)
    python3 -c "print($end - $start)"
}
IFS=, read -ra list <<<"$sizes"
for size in "${list[@]}"; do
    one=$(run "$size" 1)
    all=$(run "$size" "$frames")
    printf '%-10s %8s %12.1f %12.1f %10s\n' "$size" "$frames" "$one" "$all" \
        "$(python3 -c "print(f'{($frames - 1) / ($all - $one):.3f}')")"
done
