#!/usr/bin/env bash
# The OpenFX SDK for building the OFX plug-in and its test host: fetched as
# the sources of the crate openfx-sys 0.1.0 (cargo fetch of a fixture crate)
# and copied to DEST (a build folder, never the repository), once.
#
#   scripts/ofx-sdk.sh DEST     prints DEST when ready
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:?usage: ofx-sdk.sh DEST}
if [ ! -f "$dest/.complete" ]; then
    manifest="$here/tests/ofx/sdk-fixture/Cargo.toml"
    cargo fetch --locked --manifest-path "$manifest" >&2
    crate=$(cargo metadata --locked --format-version 1 --manifest-path "$manifest" |
        python3 -c 'import json, sys, os; m = json.load(sys.stdin); print(os.path.dirname(next(p["manifest_path"] for p in m["packages"] if p["name"] == "openfx-sys")))')
    rm -rf "$dest"
    mkdir -p "$dest"
    cp -r "$crate/openfx/include" "$crate/openfx/HostSupport" "$dest/"
    touch "$dest/.complete"
fi
echo "$dest"
