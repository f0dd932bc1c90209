#!/usr/bin/env bash
# Installs the built library with a libtorch runtime beside it.
#
#   scripts/install.sh PREFIX          (make install PREFIX=...): the library,
#                                      header, CLI, model, sample packs and
#                                      pkg-config file under PREFIX
#   scripts/install.sh --libdir DIR    the library and its runtime alone into
#                                      DIR: the lib/ folder of a plug-in
#                                      (GIMP, OpenFX, frei0r)
#   scripts/install.sh --uninstalled   writes build/pkgconfig/styletransfer-uninstalled.pc
#
# The runtime goes into LIBDIR/styletransfer/: libtorch's libraries in
# torch/lib/, the CUDA libraries of the wheels in nvidia/ (the layout the
# wheels use, so libtorch's own run paths hold), the CUDA shim
# libstyletransfer_cuda.so, and the optical-flow shim libstyletransfer_flow.so
# (OpenCV's DIS flow for frame sequences; it links the system's OpenCV 4,
# Debian's libopencv-video406). The installed library's run path is
# $ORIGIN/styletransfer/torch/lib and the CLI's
# $ORIGIN/../lib/styletransfer/torch/lib: nothing points back into the build
# tree, the venv or the cache, and the folder can be moved or copied whole.
#
# ST_RUNTIME chooses what of the runtime is copied:
#   cpu   libtorch's CPU part and what it loads (about 460 MB)
#   cuda  also the CUDA part and the wheels' CUDA libraries (about 3.5 GB)
#   auto  (default) cuda when the build's libtorch has the CUDA part and
#         this machine has an NVIDIA driver (/proc/driver/nvidia/version),
#         else cpu
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -1)
built_lib=$root/target/release/libstyletransfer.so
built_shim=$root/target/release/styletransfer/libstyletransfer_cuda.so
built_flow=$root/target/release/styletransfer/libstyletransfer_flow.so

log() { printf 'install: %s\n' "$*" >&2; }

write_pc() { # FILE PREFIX LIBDIR INCLUDEDIR RUNTIME_DIR
    # -rpath-link lets the linker find libtorch behind the library's
    # $ORIGIN run path (GNU ld does not expand $ORIGIN there).
    cat >"$1" <<PC
prefix=$2
libdir=$3
includedir=$4

Name: styletransfer
Description: Neural style transfer (Gatys et al.) on libtorch, C ABI
Version: $version
Libs: -L\${libdir} -lstyletransfer -Wl,-rpath,\${libdir} -Wl,-rpath-link,$5
Cflags: -I\${includedir}
PC
}

# The libtorch folder the built library records: the first entry of its run path.
built_torch_lib() { readelf -d "$built_lib" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p' | cut -d: -f1; }

if [ "${1:-}" = "--uninstalled" ]; then
    mkdir -p "$root/build/pkgconfig"
    write_pc "$root/build/pkgconfig/styletransfer-uninstalled.pc" "$root" "$root/target/release" "$root/include" \
        "$(built_torch_lib)"
    exit 0
fi

[ -f "$built_lib" ] || { log "target/release/libstyletransfer.so is missing (run make build)"; exit 1; }
command -v patchelf >/dev/null || "$root/scripts/setup.sh" apt patchelf

# The libtorch the library was built against: its recorded run path.
torch_lib=$(readlink -f "$(built_torch_lib)")
[ -f "$torch_lib/libtorch_cpu.so" ] || { log "no libtorch_cpu.so in the library's run path ($torch_lib)"; exit 1; }
# The wheels' layout: site-packages/torch/lib and site-packages/nvidia/*/lib.
site=$(cd "$torch_lib/../.." && pwd)

kind=${ST_RUNTIME:-auto}
case "$kind" in
    auto) if [ -f "$torch_lib/libtorch_cuda.so" ] && [ -e /proc/driver/nvidia/version ]; then kind=cuda; else kind=cpu; fi ;;
    cpu) ;;
    cuda) [ -f "$torch_lib/libtorch_cuda.so" ] || { log "ST_RUNTIME=cuda: the build's libtorch has no CUDA part"; exit 1; } ;;
    *) log "ST_RUNTIME must be auto, cpu or cuda (not $kind)"; exit 1 ;;
esac

# Copies FILE (a path under $site) to DEST/<its path under $site>.
copy_from_site() { # FILE DEST
    local rel=${1#"$site"/}
    [ "$rel" != "$1" ] || { log "$1 is outside $site"; exit 1; }
    install -D -m 644 "$1" "$2/$rel"
}

# The libraries FILE loads that live in the wheels (ldd, resolved paths).
site_deps() {
    ldd "$1" | awk '$2 == "=>" {print $3}' | while read -r dep; do
        dep=$(readlink -f "$dep")
        case "$dep" in "$site"/*) echo "$dep" ;; esac
    done
}

# The library, its runtime and the shim into LIBDIR.
install_library() { # LIBDIR
    local dir=$1 runtime=$1/styletransfer
    install -d "$dir"
    rm -rf "$runtime"
    install -m 755 "$built_lib" "$dir/libstyletransfer.so"
    strip --strip-debug "$dir/libstyletransfer.so"
    patchelf --set-rpath '$ORIGIN/styletransfer/torch/lib' "$dir/libstyletransfer.so"
    local files=("$torch_lib/libtorch_cpu.so" "$torch_lib/libc10.so")
    mapfile -t -O ${#files[@]} files < <(site_deps "$torch_lib/libtorch_cpu.so")
    if [ "$kind" = cuda ]; then
        # libtorch's CUDA libraries and every library of the CUDA wheels:
        # cuDNN, cuBLAS and others load parts of themselves with dlopen,
        # which ldd does not see.
        for f in "$torch_lib"/lib*.so*; do
            case "$(basename "$f")" in libtorch_python.so | libshm.so | libshm_windows*) ;; *) files+=("$f") ;; esac
        done
        while IFS= read -r f; do files+=("$f"); done < <(find "$site/nvidia" -path '*/lib/*.so*' -type f | sort)
    fi
    local f
    for f in $(printf '%s\n' "${files[@]}" | sort -u); do
        copy_from_site "$f" "$runtime"
    done
    if [ "$kind" = cuda ] && [ -f "$built_shim" ]; then
        install -m 755 "$built_shim" "$runtime/libstyletransfer_cuda.so"
        strip --strip-debug "$runtime/libstyletransfer_cuda.so"
        patchelf --set-rpath '$ORIGIN/torch/lib' "$runtime/libstyletransfer_cuda.so"
    fi
    if [ -f "$built_flow" ]; then
        install -m 755 "$built_flow" "$runtime/libstyletransfer_flow.so"
        strip --strip-debug "$runtime/libstyletransfer_flow.so"
    fi
    printf '%s\n' "libtorch $(sed -n 's/^__version__ = .\(.*\).$/\1/p' "$site/torch/version.py" 2>/dev/null || echo '?') runtime: $kind" \
        >"$runtime/RUNTIME"
}

if [ "${1:-}" = "--libdir" ]; then
    install_library "${2:?usage: install.sh --libdir DIR}"
    exit 0
fi

prefix=${1:?usage: install.sh PREFIX | --libdir DIR | --uninstalled}
for f in target/release/libstyletransfer.a target/release/stylize models/vgg19.safetensors; do
    [ -f "$root/$f" ] || { log "$f is missing (run make build model)"; exit 1; }
done
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
install -d "$prefix/lib/pkgconfig" "$prefix/include" "$prefix/bin" "$prefix/share/styletransfer/styles"
install_library "$prefix/lib"
install -m 644 "$root/target/release/libstyletransfer.a" "$prefix/lib/"
strip --strip-debug "$prefix/lib/libstyletransfer.a"
install -m 644 "$root/include/styletransfer.h" "$prefix/include/"
install -m 755 "$root/target/release/stylize" "$prefix/bin/"
strip --strip-debug "$prefix/bin/stylize"
patchelf --set-rpath '$ORIGIN/../lib/styletransfer/torch/lib' "$prefix/bin/stylize"
install -m 644 "$root/models/vgg19.safetensors" "$prefix/share/styletransfer/"
# The sample style packs (make packs).
for pack in "$root"/build/packs/*.stpack; do
    [ -f "$pack" ] && install -m 644 "$pack" "$prefix/share/styletransfer/styles/"
done
# prefix is the .pc's own folder, two up: the install can be moved.
write_pc "$prefix/lib/pkgconfig/styletransfer.pc" "\${pcfiledir}/../.." "\${prefix}/lib" "\${prefix}/include" \
    "\${libdir}/styletransfer/torch/lib"
echo "installed styletransfer $version into $prefix (runtime: $kind, $(du -sh "$prefix" | cut -f1))"
