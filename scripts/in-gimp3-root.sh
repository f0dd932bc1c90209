#!/usr/bin/env bash
# Runs a command with /proc mounted inside the GIMP 3 root.
#
#   scripts/in-gimp3-root.sh ROOT COMMAND...
#
# The plug-in folder inside ROOT is self-contained (its library and libtorch
# runtime sit in its lib/), but the loader resolves the plug-in's $ORIGIN
# run path through /proc/self/exe, so /proc must be there. It is unmounted
# when COMMAND ends. COMMAND runs outside the root (it may chroot itself).
set -euo pipefail
root=$(cd "${1:?usage: in-gimp3-root.sh ROOT COMMAND...}" && pwd)
shift
mkdir -p "$root/proc"
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" || umount -l "$root/proc"' EXIT
"$@"
