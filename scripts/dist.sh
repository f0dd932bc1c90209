#!/usr/bin/env bash
# Writes relocatable archives into dist/ (what `make dist` runs, after it has
# built the install and every plug-in folder):
#
#   styletransfer-VERSION-linux-x86_64-RUNTIME.tar.gz           C library, header, CLI, pkg-config
#   styletransfer-gimp-2.10-VERSION-linux-x86_64-RUNTIME.tar.gz GIMP 2.10 plug-in folder
#   styletransfer-gimp-3.0-VERSION-linux-x86_64-RUNTIME.tar.gz  GIMP 3.0 plug-in folder
#   styletransfer-ofx-VERSION-linux-x86_64-RUNTIME.tar.gz       OpenFX bundle
#   styletransfer-frei0r-VERSION-linux-x86_64-RUNTIME.tar.gz    frei0r filter (FFmpeg, MLT)
#
# Each holds one top folder with a README.txt and unpacks anywhere; each gets
# a .sha256 beside it, and SHA256SUMS lists them all. RUNTIME is the
# libtorch runtime inside (scripts/install.sh, ST_RUNTIME).
#
#   scripts/dist.sh PREFIX GIMP2_DIR GIMP3_DIR OFX_BUNDLE FREI0R_LIB
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=$1 gimp2=$2 gimp3=$3 ofx=$4 frei0r=$5
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -1)
runtime=$(sed -n 's/.*runtime: \([a-z]*\).*/\1/p' "$prefix/lib/styletransfer/RUNTIME")
libtorch=$(sed -n 's/^libtorch \([^ ]*\) .*/\1/p' "$prefix/lib/styletransfer/RUNTIME")
suffix="$version-linux-x86_64-$runtime"
dist=$root/dist
stage=$root/build/dist-readme
rm -rf "$dist" "$stage" && mkdir -p "$dist" "$stage"

readme() { # NAME TITLE INSTALL-TEXT
    cat >"$stage/$1" <<TXT
$2
styletransfer $version, neural style transfer (Gatys et al.) on libtorch.

Runtime: libtorch $libtorch, $runtime part$([ "$runtime" = cuda ] && echo "s (CPU and CUDA)" || echo " only (no CUDA)"),
inside this folder (lib/styletransfer/): nothing else of libtorch, Python or
the build is needed. The folder can be moved or copied whole.

Needs: Linux x86_64 with glibc 2.36 or newer (Debian 12) and libstdc++.

$3

Source, documentation and licence: the project's README and LICENSE.
TXT
}

pack() { # ARCHIVE-NAME PARENT TOP README-NAME
    local archive="$dist/$1.tar.gz"
    # The README goes into the top folder as README.txt.
    tar -C "$2" -cf - "$3" -C "$stage" --transform "s,^$4\$,$3/README.txt," "$4" | gzip -6 >"$archive"
    (cd "$dist" && sha256sum "$(basename "$archive")" >"$(basename "$archive").sha256")
    printf '%-70s %6s MiB\n' "$(basename "$archive")" "$(( $(stat -c %s "$archive") / 1048576 ))"
}

readme lib.txt "C library and stylize CLI" "Install: unpack anywhere, e.g. into /opt. Then
  /opt/styletransfer-$version/bin/stylize --content photo.jpg --style-pack 'The Starry Night' -o out.png
C programs: PKG_CONFIG_PATH=/opt/styletransfer-$version/lib/pkgconfig pkg-config --cflags --libs styletransfer"
top=styletransfer-$version
rm -rf "$root/build/dist-lib" && mkdir -p "$root/build/dist-lib"
cp -a "$prefix" "$root/build/dist-lib/$top"
pack "styletransfer-$suffix" "$root/build/dist-lib" "$top" lib.txt
rm -rf "$root/build/dist-lib"

readme gimp2.txt "GIMP 2.10 filter (Filters > Artistic > Style Transfer)" "Install: unpack into GIMP's plug-in folder, ~/.config/GIMP/2.10/plug-ins/,
so that ~/.config/GIMP/2.10/plug-ins/style-transfer/style-transfer exists; restart GIMP."
pack "styletransfer-gimp-2.10-$suffix" "$(dirname "$gimp2")" "$(basename "$gimp2")" gimp2.txt

readme gimp3.txt "GIMP 3.0 filter (Filters > Artistic > Style Transfer)" "Install: unpack into GIMP's plug-in folder, ~/.config/GIMP/3.0/plug-ins/,
so that ~/.config/GIMP/3.0/plug-ins/style-transfer/style-transfer exists; restart GIMP.
Built against Debian trixie's GIMP 3.0 (glibc 2.41)."
pack "styletransfer-gimp-3.0-$suffix" "$(dirname "$gimp3")" "$(basename "$gimp3")" gimp3.txt

readme ofx.txt "OpenFX node for Natron, Nuke, Resolve and other OpenFX hosts" "Install: unpack into a folder your host searches (OFX_PLUGIN_PATH, or
/usr/OFX/Plugins) so that StyleTransfer.ofx.bundle is directly inside it."
pack "styletransfer-ofx-$suffix" "$(dirname "$ofx")" "$(basename "$ofx")" ofx.txt

readme frei0r.txt "frei0r filter for FFmpeg, MLT (Kdenlive, Shotcut) and other frei0r hosts" "Install: unpack, then copy styletransfer.so and the styletransfer/ folder beside
it into ~/.frei0r-1/lib/ (or a folder in FREI0R_PATH). FFmpeg:
  ffmpeg -i in.mp4 -vf \"frei0r=filter_name=styletransfer:filter_params=The Starry Night\" out.mp4"
rm -rf "$root/build/dist-frei0r" && mkdir -p "$root/build/dist-frei0r/styletransfer-frei0r"
cp -a "$frei0r/styletransfer.so" "$frei0r/styletransfer" "$root/build/dist-frei0r/styletransfer-frei0r/"
pack "styletransfer-frei0r-$suffix" "$root/build/dist-frei0r" styletransfer-frei0r frei0r.txt
rm -rf "$root/build/dist-frei0r"

(cd "$dist" && cat ./*.sha256 >SHA256SUMS)
echo "dist: $(du -sh "$dist" | cut -f1) in $dist"
