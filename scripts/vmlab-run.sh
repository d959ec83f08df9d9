#!/bin/bash
# vmlab-run.sh - boots the VM-lab guest (Debian's kernel, host /usr and /etc over 9p) under QEMU,
# runs one shell command in it as root, prints its output, exits with its exit code.
#
#   scripts/vmlab-run.sh [options] 'shell command'      (or --script FILE)
# Options:
#   --iommu            q35 with intel-iommu (intremap, caching-mode) and intel_iommu=on
#   --igb              an igb NIC (82576, SR-IOV) behind a PCIe root port (needs the QEMU 10
#                      that vmlab-setup.sh extracts from bookworm-backports)
#   --qemu 'ARGS'      more QEMU arguments (word-split)
#   --share HOST[:GUEST[:ro|rw]]   9p-share a host directory
#   -m MiB             guest memory (default 2048)
#   --timeout S        default 600; exit 124 on timeout
# Exit codes: the command's own; 124 timeout; 125 the VM never ran the command.
# TCG unless kvm_intel/kvm_amd is loaded (a kvm-pvm /dev/kvm boots Debian's kernel >100x slower).
set -uo pipefail
REPO="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
OUT="$(readlink -m "${PASSTHRU_VMLAB_DIR:-$REPO/.cache/vmlab}")"
MEM=2048 IOMMU=0 IGB=0 EXTRA=() APPEND="" SHARES=() TMO=600 SCRIPT=""
while (($#)); do
  case "$1" in
    --iommu) IOMMU=1; shift ;;
    --igb) IGB=1; shift ;;
    --qemu) read -r -a _a <<<"$2"; EXTRA+=("${_a[@]}"); shift 2 ;;
    --share) SHARES+=("$2"); shift 2 ;;
    -m) MEM=$2; shift 2 ;;
    --timeout) TMO=$2; shift 2 ;;
    --script) SCRIPT=$2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ -s "$OUT/vmlinux" ] && [ -s "$OUT/initrd.cpio.gz" ] || { echo "vmlab-run: run scripts/vmlab-setup.sh first" >&2; exit 125; }
QEMU=qemu-system-x86_64 LARGS=()
if [ -x "$OUT/qemu-bpo/usr/bin/qemu-system-x86_64" ]; then
  QEMU="$OUT/qemu-bpo/usr/bin/qemu-system-x86_64"
  LARGS=(-L "$OUT/qemu-bpo/usr/share/qemu" -L "$OUT/qemu-bpo/usr/share/seabios")
elif ((IGB)); then
  echo "vmlab-run: --igb needs QEMU >= 8.0 (run vmlab-setup.sh with the backports QEMU)" >&2; exit 125
fi
mkdir -p "$OUT/jobs"
JOB=$(mktemp -d "$OUT/jobs/job.XXXXXX")
if [ -n "$SCRIPT" ]; then cp "$SCRIPT" "$JOB/cmd.sh"; else printf '%s\n' "$*" >"$JOB/cmd.sh"; fi
ACCEL=tcg CPU=max
if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then ACCEL=kvm CPU=host,-arch-capabilities; fi
MACH="q35,accel=$ACCEL"
DEVS=()
if ((IOMMU)); then
  [ "$ACCEL" = kvm ] && MACH="$MACH,kernel-irqchip=split"
  DEVS+=(-device intel-iommu,intremap=on,caching-mode=on)
  APPEND="$APPEND intel_iommu=on"
fi
((IGB)) && DEVS+=(-device pcie-root-port,id=rp1,chassis=1,slot=1 -device igb,bus=rp1,id=igb0)
i=0
for s in "${SHARES[@]}"; do
  IFS=: read -r h g mo <<<"$s"; g=${g:-$h}; mo=${mo:-ro}
  ro=""; [ "$mo" = ro ] && ro=",readonly=on"
  DEVS+=(-virtfs "local,path=$h,mount_tag=share$i,security_model=none$ro")
  APPEND="$APPEND vmlab.share=share$i:$g:$mo"
  i=$((i + 1))
done
# no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer probe can miss its ticks, and
# with interrupt remapping on it then panics ("timer doesn't work through Interrupt-remapped IO-APIC", seen in CI).
t0=$(date +%s.%N)
timeout -k 5 "$TMO" "$QEMU" "${LARGS[@]}" -machine "$MACH" -cpu "$CPU" -m "$MEM" -smp 2 \
  -nodefaults -no-user-config -display none -no-reboot -monitor none \
  -kernel "$OUT/vmlinux" -initrd "$OUT/initrd.cpio.gz" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 no_timer_check $APPEND" \
  -serial "file:$JOB/console.log" \
  -virtfs "local,path=/usr,mount_tag=usr,security_model=none,readonly=on" \
  -virtfs "local,path=/etc,mount_tag=etc,security_model=none,readonly=on" \
  -virtfs "local,path=$(readlink -f "$OUT/modules"),mount_tag=mods,security_model=none,readonly=on" \
  -virtfs "local,path=$JOB,mount_tag=job,security_model=none" \
  "${DEVS[@]}" "${EXTRA[@]}" </dev/null >"$JOB/qemu.out" 2>&1
qrc=$?
if [ -f "$JOB/rc" ]; then
  cat "$JOB/out"
  rc=$(cat "$JOB/rc")
elif [ $qrc -eq 124 ] || [ $qrc -eq 137 ]; then
  echo "vmlab-run: timeout after ${TMO}s" >&2; cat "$JOB/out" 2>/dev/null; rc=124
else
  echo "vmlab-run: the VM exited ($qrc) without running the command; QEMU said:" >&2
  cat "$JOB/qemu.out" >&2; echo "--- console:" >&2; tail -30 "$JOB/console.log" >&2 2>/dev/null; rc=125
fi
awk -v a="$t0" -v b="$(date +%s.%N)" -v acc="$ACCEL" 'BEGIN{printf "vmlab-run: accel=%s wall=%.1fs\n", acc, b-a}' >&2
rm -rf "$JOB"
exit "$rc"
