#!/usr/bin/env bash
# Screenshot of the GIMP 2.10 filter's dialog under Xvfb, from the plug-in
# folder make gimp2-plugin builds:
#
#   scripts/gimp2-dialog-screenshot.sh OUT.png [IMAGE]
#
# GIMP 2.10 opens IMAGE (default: the sample cat) and the filter's dialog
# with its defaults (a GIMP 2 plug-in's last values live for one session);
# the dialog window is captured once its preview has been drawn, then
# closed. Needs Xvfb, xdotool and ImageMagick (Debian packages xvfb,
# xdotool, imagemagick).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
out="$1"
image="$(realpath "${2:-$ROOT/examples/images/chelsea.jpg}")"
[ -x "$ROOT/build/gimp2/plug-ins/style-transfer/style-transfer" ] || { echo "run make gimp2-plugin first" >&2; exit 1; }
for tool in Xvfb xdotool import gimp-2.10; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install xvfb xdotool imagemagick gimp)" >&2; exit 1; }
done
work="$ROOT/build/gimp2/screenshot"
rm -rf "$work" && mkdir -p "$work"
printf '(plug-in-path "${gimp_dir}/plug-ins:${gimp_plug_in_dir}/plug-ins:%s")\n' "$ROOT/build/gimp2/plug-ins" > "$work/gimprc"

display=:78
Xvfb "$display" -screen 0 1600x1200x24 >/dev/null 2>&1 &
xvfb=$!
cleanup() {
    [ -n "${gimp:-}" ] && { kill "$gimp" 2>/dev/null; wait "$gimp" 2>/dev/null; } || true
    kill "$xvfb" 2>/dev/null || true
}
trap cleanup EXIT
sleep 2
DISPLAY=$display GIMP2_DIRECTORY="$work/gimp-dir" gimp-2.10 -n -d -f -s --gimprc="$work/gimprc" \
    -b "(let* ((image (car (gimp-file-load RUN-NONINTERACTIVE \"$image\" \"$image\")))
               (drawable (car (gimp-image-get-active-drawable image))))
          (gimp-display-new image)
          (plug-in-style-transfer RUN-INTERACTIVE image drawable \"\" 0.5 100 1 FALSE 0 0 \"\"))" \
    > "$work/gimp.log" 2>&1 &
gimp=$!
window=""
for _ in $(seq 1 120); do
    window=$(DISPLAY=$display xdotool search --name '^Style Transfer$' 2>/dev/null | head -1 || true)
    [ -n "$window" ] && break
    sleep 1
done
[ -n "$window" ] || { echo "the dialog did not open; log: $work/gimp.log" >&2; tail -20 "$work/gimp.log" >&2; exit 1; }
sleep 5
DISPLAY=$display import -window "$window" "$out"
DISPLAY=$display xdotool key --window "$window" Escape 2>/dev/null || true
sleep 2
echo "wrote $out"
