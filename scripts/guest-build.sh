#!/bin/bash
# guest-build.sh - builds passthru's tiny test guest (npm run guest:build).
#
# Output, in ${PASSTHRU_GUEST_DIR:-<repo>/.cache/guest} (outside git):
#   vmlinux         Debian's kernel, uncompressed ELF: QEMU boots it through its PVH entry, which
#                   skips the real-mode setup and the decompressor (2.5 s less per boot under TCG)
#   initrd.cpio.gz  busybox-static + the NIC modules (e1000e, virtio_net, net_failover, failover,
#                   virtio_pci and what modules.dep says they need) + /init
#   manifest.json   written last: its presence says the two files above are complete
#
# The guest's /init prints, about once a second, one line per NIC on the serial console:
#   passthru-guest: nic eth0 mac 52:54:00:12:34:56 driver e1000e pci 0000:01:00.0 master -
# so hot-plugged NICs show up too, and one line per disk (bytes, read-only flag, serial):
#   passthru-guest: disk vda size 2097152 ro 0 serial -
# and each NIC's arrival and departure the moment the kernel reports it (its uevent):
#   passthru-guest: uevent remove net eth1
# It also runs a shell on ttyS0 (prompt 'passthru-guest# ') and powers off on the ACPI power
# button (busybox acpid on the button module's input device). Boot it with: -kernel vmlinux -initrd initrd.cpio.gz
#   -append 'console=ttyS0 quiet loglevel=3 panic=-1'
#
# Idempotent: when the manifest names the kernel that linux-image-amd64 points to now and the
# same /init, it does nothing. A build killed half way leaves no manifest and is redone.
# Env: PASSTHRU_GUEST_DIR (output directory), PASSTHRU_GUEST_KPKG (pin linux-image-<abi>-amd64),
#      PASSTHRU_GUEST_FORCE=1 (rebuild anyway).
set -euo pipefail
REPO="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
OUT="$(readlink -m "${PASSTHRU_GUEST_DIR:-$REPO/.cache/guest}")"
# NICs, then disks (virtio-blk, virtio-scsi + sd/sr, AHCI), then the ACPI power button + evdev.
MODULES=(e1000e virtio_pci virtio_net failover net_failover virtio_blk virtio_scsi sd_mod sr_mod ahci button evdev)
FORMAT=3 # bump when the layout of the output changes
export DEBIAN_FRONTEND=noninteractive
t0=$(date +%s.%N)
say() { echo "guest-build: $*" >&2; }
die() { say "error: $*"; exit 1; }

mkdir -p "$OUT"
# One build at a time per output directory (parallel test runs may all ask for the guest).
exec 9>"$OUT/.lock"
flock 9

# ---- the guest's PID 1 ---------------------------------------------------------------------
# Kept here, not in a file of its own, so its hash in the manifest covers exactly what is built.
read -r -d '' INIT <<'EOF_INIT' || true
#!/bin/sh
# PID 1 of passthru's test guest: load the NIC modules, then report every NIC once a second.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do insmod "/mods/$m" || echo "passthru-guest: insmod $m failed"; done < /mods/order
# The ACPI power button (QMP system_powerdown) powers the guest off: busybox acpid runs
# /etc/acpi/PWRF/00000080 for it. A guest started with 'passthru.noacpi' on its command line
# ignores the button (the shutdown-timeout test needs one that does).
if ! grep -q passthru.noacpi /proc/cmdline; then
  mkdir -p /etc/acpi/PWRF
  printf '#!/bin/sh\necho "passthru-guest: power button: powering off"\npoweroff -f\n' >/etc/acpi/PWRF/00000080
  chmod +x /etc/acpi/PWRF/00000080
  mkdir -p /var/log /var/run # acpid exits at once without its log and pid directories
  acpid -c /etc/acpi
fi
# A shell on the serial console, started again whenever it exits.
export PS1='passthru-guest# ' HOME=/
(while true; do setsid cttyhack sh; sleep 1; done) </dev/ttyS0 >/dev/ttyS0 2>&1 &
# Each NIC's arrival and departure as it happens (the kernel's uevents): the once-a-second list
# below can miss a NIC that is away for less than a second (a VF during a migration).
uevent sh -c '[ "$SUBSYSTEM" = net ] && echo "passthru-guest: uevent $ACTION net $INTERFACE"' &
echo "passthru-guest: ready kernel $(cat /KVER) uptime $(cut -d' ' -f1 /proc/uptime)"
n=0
while true; do
  n=$((n + 1))
  for d in /sys/class/net/*; do
    nic=${d##*/}
    [ "$nic" = lo ] && continue
    mac=$(cat "$d/address" 2>/dev/null) || continue
    drv=-; pci=-; master=-
    [ -e "$d/device/driver" ] && drv=$(basename "$(readlink "$d/device/driver")")
    [ -e "$d/device" ] && pci=$(basename "$(readlink "$d/device")")
    [ -e "$d/master" ] && master=$(basename "$(readlink "$d/master")")
    echo "passthru-guest: nic $nic mac $mac driver $drv pci $pci master $master"
  done
  for d in /sys/block/*; do
    disk=${d##*/}
    case "$disk" in loop* | ram*) continue ;; esac
    size=$(cat "$d/size" 2>/dev/null) || continue # also: no disks, the glob stays a glob
    serial=$(cat "$d/serial" 2>/dev/null) || serial=
    echo "passthru-guest: disk $disk size $((size * 512)) ro $(cat "$d/ro") serial ${serial:--}"
  done
  echo "passthru-guest: scan $n uptime $(cut -d' ' -f1 /proc/uptime)"
  sleep 1
done
EOF_INIT
INIT_SHA=$(printf '%s\n%s\n%s\n' "$FORMAT" "${MODULES[*]}" "$INIT" | sha256sum | cut -d' ' -f1)

# ---- host tools ----------------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
APT_UPDATED=0
apt_update_once() { ((APT_UPDATED)) || { say "apt-get update"; apt-get update -qq; APT_UPDATED=1; }; }
need=()
for p in busybox-static cpio xz-utils kmod; do installed "$p" || need+=("$p"); done
if ((${#need[@]})); then
  [ "$(id -u)" = 0 ] || die "missing packages ${need[*]}; install them as root (apt-get install ${need[*]})"
  apt_update_once
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# ---- which kernel ----------------------------------------------------------------------------
# linux-image-amd64 follows bookworm-security, and old ABIs leave the mirror: resolve it now.
resolve_kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
KPKG=${PASSTHRU_GUEST_KPKG:-}
[ -n "$KPKG" ] || KPKG=$(resolve_kpkg || true)
[ -n "$KPKG" ] || { apt_update_once; KPKG=$(resolve_kpkg || true); }
[ -n "$KPKG" ] || die "cannot tell which kernel linux-image-amd64 depends on (apt-cache depends linux-image-amd64)"
KVER=${KPKG#linux-image-}

manifest_field() { sed -n "s/^  \"$1\": \"\(.*\)\",\?$/\1/p" "$OUT/manifest.json" 2>/dev/null; }
if [ "${PASSTHRU_GUEST_FORCE:-0}" != 1 ] && [ -s "$OUT/vmlinux" ] && [ -s "$OUT/initrd.cpio.gz" ] &&
  [ "$(manifest_field kernelVersion)" = "$KVER" ] && [ "$(manifest_field initSha256)" = "$INIT_SHA" ]; then
  say "up to date: kernel $KVER in $OUT"
  exit 0
fi

# ---- build -----------------------------------------------------------------------------------
# Everything is made in a scratch directory and moved into place at the end, manifest last.
rm -f "$OUT/manifest.json"
rm -rf "$OUT"/.build.* || true # a killed build's leftovers (its children may still be writing)
W=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$OUT/dl"
deb=$(ls "$OUT/dl/${KPKG}"_*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
  say "apt-get download $KPKG"
  (cd "$W" && { apt-get download -q "$KPKG" >/dev/null 2>&1 || { apt_update_once; apt-get download -q "$KPKG" >/dev/null; }; })
  rm -f "$OUT/dl"/linux-image-*.deb # an older ABI's package is of no further use
  mv "$W/${KPKG}"_*.deb "$OUT/dl/"
  deb=$(ls "$OUT/dl/${KPKG}"_*.deb | head -1)
fi
KDEBVER=$(dpkg-deb -f "$deb" Version)
say "unpacking $KPKG $KDEBVER"
# Only the kernel image and the module tree are needed, not the whole 400 MB package.
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$W" --wildcards "./boot/vmlinuz-$KVER" "./lib/modules/$KVER/*"
KX="$W"
[ -d "$KX/lib/modules/$KVER" ] || die "$deb has no lib/modules/$KVER"
depmod -b "$KX" "$KVER"

# The bzImage carries the kernel as an xz stream; PVH needs the plain ELF inside it.
vmlinuz="$KX/boot/vmlinuz-$KVER"
off=$(LC_ALL=C grep -obUaP '\xfd\x37\x7a\x58\x5a\x00' "$vmlinuz" | head -1 | cut -d: -f1)
[ -n "$off" ] || die "no xz stream in $vmlinuz (kernel not xz-compressed?)"
# xz reports "trailing garbage" after the stream: expected, the check is the ELF magic below.
tail -c +$((off + 1)) "$vmlinuz" | xz -dc >"$W/vmlinux" 2>/dev/null || true
[ "$(head -c 4 "$W/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || die "could not extract an ELF vmlinux from $vmlinuz"

# initramfs: busybox + modules in dependency order (modules.dep through modprobe) + /init
R="$W/root"
mkdir -p "$R"/{bin,mods,proc,sys,dev,tmp}
cp /bin/busybox "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$R/bin/$a"; done
for m in "${MODULES[@]}"; do
  modprobe -d "$KX" -S "$KVER" --show-depends "$m" || die "module $m not found for kernel $KVER"
done | awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++' >"$W/modpaths"
while read -r p; do
  name=$(basename "$p")
  case "$name" in
    *.ko.xz) xz -dc "$p" >"$R/mods/${name%.xz}"; name=${name%.xz} ;;
    *.ko.zst) die "zstd-compressed module $name: not handled" ;;
    *) cp "$p" "$R/mods/$name" ;;
  esac
  echo "$name" >>"$R/mods/order"
done <"$W/modpaths"
printf '%s\n' "$INIT" >"$R/init"
chmod +x "$R/init"
echo "$KVER" >"$R/KVER"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -6 >"$W/initrd.cpio.gz")

mods_json=$(sed 's/.*/"&"/' "$R/mods/order" | paste -sd, -)
mv -f "$W/vmlinux" "$OUT/vmlinux"
mv -f "$W/initrd.cpio.gz" "$OUT/initrd.cpio.gz"
cat >"$W/manifest.json" <<EOF
{
  "format": $FORMAT,
  "kernelPackage": "$KPKG",
  "kernelVersion": "$KVER",
  "kernelDebVersion": "$KDEBVER",
  "initSha256": "$INIT_SHA",
  "vmlinux": "vmlinux",
  "initrd": "initrd.cpio.gz",
  "append": "console=ttyS0 quiet loglevel=3 panic=-1",
  "modules": [$mods_json],
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
sync "$OUT/vmlinux" "$OUT/initrd.cpio.gz" "$W/manifest.json" 2>/dev/null || sync
mv -f "$W/manifest.json" "$OUT/manifest.json"
awk -v a="$t0" -v b="$(date +%s.%N)" -v k="$KVER" -v o="$OUT" \
  'BEGIN { printf "guest-build: built kernel %s into %s in %.1f s\n", k, o, b - a }' >&2
ls -l "$OUT/vmlinux" "$OUT/initrd.cpio.gz" | awk '{ print "  " $5 "\t" $9 }' >&2
