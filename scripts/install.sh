#!/usr/bin/env bash
# Installs the built library, header, CLI, model and pkg-config file.
#
#   scripts/install.sh PREFIX        (what `make install PREFIX=...` runs)
#   scripts/install.sh --uninstalled (writes build/pkgconfig/styletransfer-uninstalled.pc)
#
# The library keeps the run path to the libtorch it was built against, so
# programs linking it need no LD_LIBRARY_PATH (which still overrides it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -1)

write_pc() { # FILE PREFIX LIBDIR INCLUDEDIR
    cat >"$1" <<PC
prefix=$2
libdir=$3
includedir=$4

Name: styletransfer
Description: Neural style transfer (Gatys et al.) on libtorch, C ABI
Version: $version
Libs: -L\${libdir} -lstyletransfer -Wl,-rpath,\${libdir}
Cflags: -I\${includedir}
PC
}

if [ "${1:-}" = "--uninstalled" ]; then
    mkdir -p "$root/build/pkgconfig"
    write_pc "$root/build/pkgconfig/styletransfer-uninstalled.pc" "$root" "$root/target/release" "$root/include"
    exit 0
fi

prefix=${1:?usage: install.sh PREFIX}
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
for f in target/release/libstyletransfer.so target/release/libstyletransfer.a target/release/stylize models/vgg19.safetensors; do
    [ -f "$root/$f" ] || { echo "install: $f is missing (run make build model)" >&2; exit 1; }
done
install -d "$prefix/lib/pkgconfig" "$prefix/include" "$prefix/bin" "$prefix/share/styletransfer/styles"
install -m 755 "$root/target/release/libstyletransfer.so" "$prefix/lib/"
install -m 644 "$root/target/release/libstyletransfer.a" "$prefix/lib/"
install -m 644 "$root/include/styletransfer.h" "$prefix/include/"
install -m 755 "$root/target/release/stylize" "$prefix/bin/"
install -m 644 "$root/models/vgg19.safetensors" "$prefix/share/styletransfer/"
# The sample style packs (make packs).
for pack in "$root"/build/packs/*.stpack; do
    [ -f "$pack" ] && install -m 644 "$pack" "$prefix/share/styletransfer/styles/"
done
write_pc "$prefix/lib/pkgconfig/styletransfer.pc" "$prefix" "\${prefix}/lib" "\${prefix}/include"
echo "installed styletransfer $version into $prefix"
