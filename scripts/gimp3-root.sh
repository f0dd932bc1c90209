#!/usr/bin/env bash
# A Debian trixie root with GIMP 3.0 and its development files, for building
# and testing the GIMP 3 filter on a Debian 12 machine (which has no GIMP 3).
#
#   scripts/gimp3-root.sh ROOT      create it (idempotent: ROOT/.complete marks a finished one)
#
# Packages come from the Debian mirror this machine already uses.
set -euo pipefail
root=${1:?usage: gimp3-root.sh ROOT}
[ -f "$root/.complete" ] && exit 0
command -v debootstrap >/dev/null || "$(dirname "$0")/setup.sh" apt debootstrap
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/\{0,1\}$/\1/p; s/^deb *\(http[^ ]*debian\)\/\{0,1\} .*/\1/p' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null | head -1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
echo "[gimp3-root] debootstrap trixie from $mirror into $root" >&2
rm -rf "$root"
mkdir -p "$root"
debootstrap --variant=minbase trixie "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
chroot "$root" apt-get update -qq
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    gimp libgimp-3.0-dev gcc libc6-dev pkg-config >>"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
chroot "$root" apt-get clean
touch "$root/.complete"
echo "[gimp3-root] ready: $(chroot "$root" gimp-console-3.0 --version 2>/dev/null | head -1)" >&2
