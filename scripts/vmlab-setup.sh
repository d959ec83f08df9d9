#!/bin/bash
# vmlab-setup.sh - prepares passthru's real-kernel test tier (npm run test:vmlab), from Debian
# packages only:
#   1. apt: qemu-system-x86 busybox-static kmod pciutils iproute2 (the host's /usr is the guest's)
#   2. Debian's linux-image-<abi>-amd64: apt-get download + dpkg -x (never installed in /boot),
#      depmod, and the uncompressed vmlinux QEMU boots through its PVH entry
#   3. an initramfs: busybox-static + the virtio/9p/overlay modules + vmlab-init.sh as /init; the
#      guest's root is the host's /usr and /etc over 9p, its module tree too
#   4. QEMU 10 from bookworm-backports, extracted only (it has the igb NIC with SR-IOV); the
#      system QEMU stays as it is
# Output in ${PASSTHRU_VMLAB_DIR:-<repo>/.cache/vmlab} (outside git). Idempotent: each step is
# skipped when its output is there. Reuses the kernel .deb of npm run guest:build when present.
set -euo pipefail
REPO="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
OUT="$(readlink -m "${PASSTHRU_VMLAB_DIR:-$REPO/.cache/vmlab}")"
export DEBIAN_FRONTEND=noninteractive
say() { echo "vmlab-setup: $*" >&2; }
mkdir -p "$OUT/dl"
exec 9>"$OUT/.lock"
flock 9
t0=$(date +%s.%N)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
APT_UPDATED=0
apt_update_once() { ((APT_UPDATED)) || { say "apt-get update"; apt-get update -qq; APT_UPDATED=1; }; }

# ---- 1. host packages --------------------------------------------------------------------------
need=()
for p in qemu-system-x86 busybox-static kmod pciutils iproute2 cpio xz-utils; do installed "$p" || need+=("$p"); done
if ((${#need[@]})); then
  say "installing ${need[*]}"
  apt_update_once
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# ---- 2. guest kernel -----------------------------------------------------------------------------
resolve_kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
KPKG=${PASSTHRU_VMLAB_KPKG:-$(resolve_kpkg || true)}
if [ -z "$KPKG" ]; then apt_update_once; KPKG=$(resolve_kpkg); fi
KVER=${KPKG#linux-image-}
if [ ! -s "$OUT/vmlinux" ] || [ "$(cat "$OUT/KVER" 2>/dev/null)" != "$KVER" ]; then
  rm -rf "$OUT/kx" "$OUT/vmlinux" "$OUT/initrd.cpio.gz"
  deb=$(ls "$OUT/dl/${KPKG}"_*.deb "$REPO/.cache/guest/dl/${KPKG}"_*.deb 2>/dev/null | head -1 || true)
  if [ -z "$deb" ]; then
    say "downloading $KPKG"
    (cd "$OUT/dl" && apt-get download -q "$KPKG" >/dev/null)
    deb=$(ls "$OUT/dl/${KPKG}"_*.deb | head -1)
  fi
  say "extracting $deb"
  mkdir -p "$OUT/kx"
  dpkg -x "$deb" "$OUT/kx"
  depmod -b "$OUT/kx" "$KVER"
  # The bzImage carries an xz stream: the ELF vmlinux inside boots through PVH (CONFIG_PVH=y).
  off=$(LC_ALL=C grep -obUaP '\xfd\x37\x7a\x58\x5a\x00' "$OUT/kx/boot/vmlinuz-$KVER" | head -1 | cut -d: -f1)
  tail -c +$((off + 1)) "$OUT/kx/boot/vmlinuz-$KVER" | xz -dc >"$OUT/vmlinux.tmp" 2>/dev/null || true
  [ -s "$OUT/vmlinux.tmp" ] || { say "could not extract vmlinux"; exit 1; }
  mv "$OUT/vmlinux.tmp" "$OUT/vmlinux"
  echo "$KVER" >"$OUT/KVER"
fi
ln -sfn "kx/lib/modules/$KVER" "$OUT/modules"

# ---- 3. initramfs ----------------------------------------------------------------------------------
INIT="$REPO/scripts/vmlab-init.sh"
if [ ! -f "$OUT/initrd.cpio.gz" ] || [ "$INIT" -nt "$OUT/initrd.cpio.gz" ] || [ "${BASH_SOURCE[0]}" -nt "$OUT/initrd.cpio.gz" ]; then
  R=$(mktemp -d "$OUT/initrd.XXXXXX")
  # mktemp -d makes it 0700, and it becomes the guest's /: no user but root could then reach
  # anything (an unprivileged QEMU, the --qemu-user test, failed opening its libraries).
  chmod 0755 "$R"
  # busybox lives in /busybox/bin: /bin becomes the host's usr/bin, whose absolute links
  # (/usr/sbin/modprobe -> /bin/kmod) must resolve as on the host.
  mkdir -p "$R"/{busybox/bin,mods,proc,sys,dev,run,tmp,mnt,job,root}
  cp /bin/busybox "$R/busybox/busybox"
  for a in $("$R/busybox/busybox" --list); do ln -s ../busybox "$R/busybox/bin/$a"; done
  for m in virtio_pci 9pnet_virtio 9p overlay; do
    modprobe -d "$OUT/kx" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
  done | awk '!seen[$0]++' | while read -r p; do
    cp "$p" "$R/mods/"
    basename "$p" >>"$R/mods/order"
  done
  cp "$INIT" "$R/init"
  chmod +x "$R/init"
  echo "$KVER" >"$R/KVER"
  (cd "$R" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$OUT/initrd.tmp")
  mv "$OUT/initrd.tmp" "$OUT/initrd.cpio.gz"
  rm -rf "$R"
fi

# ---- 4. QEMU 10 from bookworm-backports (extract only) ------------------------------------------------
if [ "${PASSTHRU_VMLAB_BPO_QEMU:-1}" != 0 ] && [ ! -x "$OUT/qemu-bpo/usr/bin/qemu-system-x86_64" ]; then
  say "fetching QEMU from bookworm-backports"
  mkdir -p "$OUT/apt-bpo/lists/partial" "$OUT/apt-bpo/etc" "$OUT/dl-bpo"
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    >"$OUT/apt-bpo/etc/bpo.sources"
  O=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$OUT/apt-bpo/etc"
    -o Dir::State::Lists="$OUT/apt-bpo/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
  apt-get "${O[@]}" update -qq
  (cd "$OUT/dl-bpo" && apt-get "${O[@]}" download -q qemu-system-x86/bookworm-backports \
    qemu-system-common/bookworm-backports qemu-system-data/bookworm-backports seabios/bookworm-backports >/dev/null)
  rm -rf "$OUT/qemu-bpo.tmp"
  mkdir -p "$OUT/qemu-bpo.tmp"
  for d in "$OUT/dl-bpo"/*.deb; do dpkg -x "$d" "$OUT/qemu-bpo.tmp"; done
  rm -rf "$OUT/qemu-bpo"
  mv "$OUT/qemu-bpo.tmp" "$OUT/qemu-bpo"
fi
if [ -x "$OUT/qemu-bpo/usr/bin/qemu-system-x86_64" ]; then
  # (-device help would try the system QEMU's modules and abort; asking one device does not.)
  "$OUT/qemu-bpo/usr/bin/qemu-system-x86_64" -machine none -nodefaults -display none -device igb,help 2>/dev/null |
    grep -q 'igb options' || { say "the backports QEMU has no igb device"; exit 1; }
fi
awk -v a="$t0" -v b="$(date +%s.%N)" -v k="$KVER" 'BEGIN{printf "vmlab-setup: ready in %.1f s (guest kernel %s)\n", b-a, k}' >&2
