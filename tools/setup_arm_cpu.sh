#!/usr/bin/env bash
# Sets up the emulated Arm Cortex-A72 / A76 that attendnext_keras.deploy.arm_cpu counts instructions on (Debian 12,
# root):
#   - Debian 12's qemu-user (QEMU 7.2, built with plugin support; a QEMU from 8.1 on writes its own /proc/cpuinfo for
#     aarch64 guests and deprecates the inline counter the plugin uses) and this project's instruction-count plugin
#     (tools/arm_marks.c), compiled against the qemu-plugin.h of Debian's QEMU source package;
#   - an aarch64 Python 3.11 unpacked from Debian's arm64 packages (no chroot: QEMU's -L points at it);
#   - LiteRT and NumPy for aarch64 from PyPI, at the versions this project's environment has.
# Everything lands in $ATTENDNEXT_ARM_CPU (default ~/.cache/attendnext_keras/arm_cpu; under sudo, the invoking
# user's home, and the folder is theirs); a rerun starts the folder again.
#   sudo bash tools/setup_arm_cpu.sh [python-of-the-project-venv]
set -euo pipefail
trap 'echo "setup_arm_cpu: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
OWNER="${SUDO_USER:-$(id -un)}"
HOME_OF_OWNER="$(getent passwd "$OWNER" | cut -d: -f6)"
ROOT="${ATTENDNEXT_ARM_CPU:-${HOME_OF_OWNER:-$HOME}/.cache/attendnext_keras/arm_cpu}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${1:-$HERE/../.venv/bin/python}"
[ -x "$PY" ] && [ -d "$(dirname "$PY")" ] || { echo "setup_arm_cpu: no Python at $PY: pass the project's venv Python" >&2; exit 2; }
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # absolute, not resolved: a venv Python is a link
[ "$(id -u)" = 0 ] || { echo "setup_arm_cpu: needs root (apt-get, dpkg --add-architecture)" >&2; exit 2; }
rm -rf "$ROOT/debs" "$ROOT/rootfs" "$ROOT/site" "$ROOT/wheels" "$ROOT/src"  # no old package beside a new one
mkdir -p "$ROOT/debs" "$ROOT/rootfs" "$ROOT/site" "$ROOT/wheels" "$ROOT/src"
cd "$ROOT"

# Debian's arm64 packages and QEMU's source package (deb-src) from the machine's own Debian mirror.
dpkg --add-architecture arm64
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources
fi
if [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list && ! grep -q '^deb-src ' /etc/apt/sources.list; then
  sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > /etc/apt/sources.list.d/attendnext-deb-src.list
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user gcc xz-utils util-linux \
  >/dev/null

# aarch64 Python 3.11: the packages python3.11 and libstdc++6 need, unpacked (not installed) into rootfs/.
packages=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
  --no-enhances --no-pre-depends python3.11:arm64 libstdc++6:arm64 | grep -E '^[a-z0-9].*:arm64$' | sort -u)
(cd debs && apt-get download -qq $packages)
for deb in debs/*.deb; do dpkg -x "$deb" rootfs; done

# The plugin, against the plugin API header of the installed qemu-user's source.
(cd src && apt-get source --download-only -qq qemu >/dev/null)
tarball=$(ls src/qemu_*.orig.tar.xz | head -1)
tar -xJf "$tarball" -C src --wildcards '*/include/qemu/qemu-plugin.h'
header=$(ls src/*/include/qemu/qemu-plugin.h | head -1)
gcc -shared -fPIC -O2 -Wall -I"$(dirname "$header")" "$HERE/arm_marks.c" -o libmarks.so

# LiteRT and NumPy for aarch64, at the project environment's versions.
versions=$("$PY" -c 'import importlib.metadata as m; print(*(f"{p}=={m.version(p)}" for p in ("ai-edge-litert", "numpy")))')
platforms=""
for v in $(seq 17 36); do platforms="$platforms --platform manylinux_2_${v}_aarch64"; done
"$PY" -m pip download -q --only-binary=:all: $platforms --python-version 3.11 --implementation cp -d wheels $versions
for wheel in wheels/*.whl; do (cd site && "$PY" -m zipfile -e "../$wheel" .); done

chown -R "$OWNER" "$ROOT"
echo "Arm CPU emulation ready in $ROOT ($versions)"
