#!/usr/bin/env bash
# Runs a command with this tree's libtorch visible inside the GIMP 3 root.
#
#   scripts/in-gimp3-root.sh ROOT COMMAND...
#
# The library records the absolute run path of the venv's libtorch; the
# venv's site-packages is bind-mounted (read-only) at that same path inside
# ROOT for the command's duration, so programs in the root load it as they
# would outside. /proc is mounted too: the loader resolves $ORIGIN run paths
# through /proc/self/exe. COMMAND runs outside the root (it may chroot itself).
set -euo pipefail
root=$(cd "${1:?usage: in-gimp3-root.sh ROOT COMMAND...}" && pwd)
shift
here=$(cd "$(dirname "$0")/.." && pwd)
site=$("$here/.venv/bin/python3" -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')
real=$(readlink -f "$site")
target="$root$site"
mkdir -p "$target"
mount --bind "$real" "$target"
mount -o remount,bind,ro "$target" 2>/dev/null || true
mkdir -p "$root/proc"
mount -t proc proc "$root/proc"
trap 'umount "$target" || umount -l "$target"; umount "$root/proc" || umount -l "$root/proc"' EXIT
"$@"
