#!/usr/bin/env bash
# Installs what passthru's quickstart and tests need on a fresh Debian 12 machine, and does
# nothing when it is all there: Debian packages (QEMU, busybox for the test guest, xmllint),
# the npm dependencies, and the tiny test guest (npm run guest:build).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'setup: %s\n' "$*" >&2; }

# qemu-utils: the tests make their qcow2 images (with backing files) with qemu-img.
# openssl: the mutual-TLS tests make their certificates with it.
# systemd: CI checks the shipped unit with systemd-analyze verify (scripts/pack-check.sh).
PKGS=(qemu-system-x86 qemu-utils busybox-static cpio xz-utils kmod libxml2-utils iproute2 openssl systemd)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
need=()
for p in "${PKGS[@]}"; do installed "$p" || need+=("$p"); done
if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: ${need[*]}; run as root or: sudo apt-get install ${need[*]}"
    exit 1
  fi
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The account the --qemu-user tests run QEMU as (passthrud --qemu-user passthru-qemu).
if ! getent passwd passthru-qemu >/dev/null && [ "$(id -u)" = 0 ]; then
  say "creating the system user passthru-qemu"
  useradd --system --no-create-home --shell /usr/sbin/nologin passthru-qemu
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund >&2
fi

bash scripts/guest-build.sh
