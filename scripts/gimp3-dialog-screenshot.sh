#!/usr/bin/env bash
# Screenshot of the GIMP 3 filter's dialog with the network engine and its
# preview, taken under Xvfb from the Debian trixie root that make
# gimp3-plugin builds:
#
#   scripts/gimp3-dialog-screenshot.sh NETWORK.stnet OUT.png [IMAGE [PACKS_OUT.png]]
#
# GIMP opens IMAGE (default: the sample cat), runs the filter once
# non-interactively with the network engine on a copy (so that its values
# are the procedure's last values), then opens the dialog on the image,
# which starts from them;
# the dialog window is captured once its preview has been drawn, then
# closed. With PACKS_OUT, the style-pack menu is opened over the dialog and
# captured too. Needs Xvfb, xdotool and ImageMagick on this machine (Debian
# packages xvfb, xdotool, imagemagick).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
GIMP3_ROOT="$ROOT/build/trixie-root"
net="$(realpath "$1")"
out="$2"
image="$(realpath "${3:-$ROOT/examples/images/chelsea.jpg}")"
packs_out="${4:-}"
[ -x "$GIMP3_ROOT/work/plug-ins/style-transfer/style-transfer" ] || { echo "run make gimp3-plugin first" >&2; exit 1; }
for tool in Xvfb xdotool import; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install xvfb xdotool imagemagick)" >&2; exit 1; }
done

work="$GIMP3_ROOT/work/screenshot"
rm -rf "$work" && mkdir -p "$work"
cp "$net" "$work/net.stnet"
cp "$image" "$work/image.${image##*.}"
inner_image="/work/screenshot/image.${image##*.}"
printf '(plug-in-path "${gimp_dir}/plug-ins:${gimp_plug_in_dir}/plug-ins:/work/plug-ins")\n' > "$work/gimprc"

display=:77
Xvfb "$display" -screen 0 1600x1200x24 -listen tcp -ac >/dev/null 2>&1 &
xvfb=$!
cleanup() {
    pkill -f "gimp-3.0 -n -d -f -s --gimprc=/work/screenshot/gimprc" 2>/dev/null || true
    [ -n "${gimp:-}" ] && wait "$gimp" 2>/dev/null || true
    kill "$xvfb" 2>/dev/null || true
}
trap cleanup EXIT
sleep 2

call='(plug-in-style-transfer #:run-mode MODE #:image IMAGE #:drawables (vector LAYER) #:engine "network"
       #:network "/work/screenshot/net.stnet" #:strength 0.5 #:device "cpu")'
first=${call/MODE/RUN-NONINTERACTIVE}
first=${first/IMAGE/copy}
first=${first/LAYER/(vector-ref (gimp-image-get-layers copy) 0)}
second=${call/MODE/RUN-INTERACTIVE}
second=${second/IMAGE/image}
second=${second/LAYER/layer}
batch="(let* ((image (gimp-file-load RUN-NONINTERACTIVE \"$inner_image\")) (layer (vector-ref (gimp-image-get-layers image) 0))
              (copy (gimp-image-duplicate image)))
         $first
         (gimp-image-delete copy)
         (gimp-display-new image)
         $second)"
"$ROOT/scripts/in-gimp3-root.sh" "$GIMP3_ROOT" chroot "$GIMP3_ROOT" env -i PATH=/usr/bin:/bin HOME=/work/screenshot \
    GIMP3_DIRECTORY=/work/screenshot/gimp3-dir DISPLAY="127.0.0.1$display" \
    gimp-3.0 -n -d -f -s --gimprc=/work/screenshot/gimprc --batch-interpreter=plug-in-script-fu-eval \
    -b "(script-fu-use-v3) $batch" > "$work/gimp.log" 2>&1 &
gimp=$!

window=""
for _ in $(seq 1 120); do
    window=$(DISPLAY=$display xdotool search --name '^Style Transfer$' 2>/dev/null | head -1 || true)
    [ -n "$window" ] && break
    sleep 1
done
[ -n "$window" ] || { echo "the dialog did not open; log: $work/gimp.log" >&2; tail -20 "$work/gimp.log" >&2; exit 1; }
sleep 8 # the preview renders after the dialog maps
DISPLAY=$display import -window "$window" "$out"
# Then the style-pack menu opened (Alt+K focuses it, Alt+Down opens it), over the dialog.
if [ -n "$packs_out" ]; then
    DISPLAY=$display xdotool windowactivate --sync "$window" 2>/dev/null || DISPLAY=$display xdotool windowfocus "$window"
    DISPLAY=$display xdotool key --window "$window" alt+k
    sleep 1
    DISPLAY=$display xdotool key --window "$window" alt+Down
    sleep 3
    eval "$(DISPLAY=$display xdotool getwindowgeometry --shell "$window")"
    DISPLAY=$display import -window root -crop "$((WIDTH + 200))x$((HEIGHT + 40))+$X+$Y" +repage "$packs_out"
    DISPLAY=$display xdotool key Escape
    sleep 1
fi
# Close the dialog (the menu's Escape may have closed it already).
DISPLAY=$display xdotool key --window "$window" Escape 2>/dev/null || true
sleep 2
echo "wrote $out"
