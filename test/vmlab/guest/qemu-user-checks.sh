#!/bin/bash
# Runs INSIDE the VM-lab guest: passthrud --host linux --qemu-user passthru-qemu on the real
# kernel with QEMU's igb NIC behind intel-iommu. QEMU (the nested one, TCG) runs as that
# unprivileged user, so the kernel enforces its locked-memory limit: root's CAP_IPC_LOCK would
# bypass it. Two domains of 128 MiB:
#   qu1 starts holding VF0 (managed='no', nodedev-detach first, so its /dev/vfio/N outlives the
#       domain and shows who owns it after): the limit is set before QEMU runs;
#   qu2 starts with no host device (the default limit, 8 MiB here), then VF1 is hot-plugged as an
#       <interface type='hostdev' managed='yes'>: the limit must be raised before device_add, or
#       vfio cannot pin the guest's RAM;
#   qu3 holds VF0 and VF1 behind an intel vIOMMU: the limit and the pinned RAM count each device.
# Then the same QEMU, user and VF with a limit below the guest's RAM, started by hand, must fail:
# the kernel enforces the limit, so the figures above mean something.
# Prints lines "CHECK <name> <value>" that test/vmlab/daemon-linux.test.ts reads.
set -u
. /work/p/test/vmlab/guest/lab.sh
QU=passthru-qemu
getent passwd "$QU" >/dev/null || useradd --system --no-create-home --shell /usr/sbin/nologin "$QU"
echo "CHECK user $(id -u "$QU"):$(id -g "$QU")"
VF0=$(basename "$(readlink -f "/sys/bus/pci/devices/$PF/virtfn0")")
VF1=$(basename "$(readlink -f "/sys/bus/pci/devices/$PF/virtfn1")")
G0=$(basename "$(readlink "/sys/bus/pci/devices/$VF0/iommu_group")")
G1=$(basename "$(readlink "/sys/bus/pci/devices/$VF1/iommu_group")")
echo "CHECK vfs $VF0 $VF1 groups $G0 $G1"
own() { stat -c '%u:%g %a' "/dev/vfio/$1" 2>/dev/null || echo none; }
drv() { basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)" 2>/dev/null || echo none; }
# The admin MAC of VF 1 in the PF's VF table.
vfmac() { ip -d link show "$NET" | awk '$1 == "vf" && $2 == "1" { for (i = 3; i < NF; i++) if ($i == "link/ether") print $(i + 1) }'; }
ids() { awk '/^(Uid|Gid):/ { printf "%s%s %s %s %s", sep, $2, $3, $4, $5; sep = " / " } /^CapEff:/ { c = $2 } END { print " cap " c }' "/proc/$1/status"; }
limits() { awk '/^Max locked memory/ { print $4, $5 }' "/proc/$1/limits"; }
vmlck() { awk '/^VmLck:/ { print $2 }' "/proc/$1/status"; }
# How many of QEMU's descriptors are /dev/vfio/N, and how many are vfio device fds (a vfio-pci
# device QEMU realized: VFIO_GROUP_GET_DEVICE_FD).
fds() { echo "$(ls -l "/proc/$1/fd" | grep -c " /dev/vfio/$2\$") $(ls -l "/proc/$1/fd" | grep -c 'vfio-device')"; }
hostdev() { echo "<hostdev mode='subsystem' type='pci' managed='no'><source><address type='pci' domain='0x${1:0:4}' bus='0x${1:5:2}' slot='0x${1:8:2}' function='0x${1:11:1}'/></source></hostdev>"; }
domain() { echo "<domain type='kvm'><name>$1</name><memory unit='MiB'>128</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='q35'>hvm</type></os><devices>$2</devices></domain>"; }
echo "CHECK vf1-before $(vfmac) $(drv "$VF1")"

DOMAINS="qu1 qu2 qu3"
start_daemon --qemu-user "$QU"
# step NAME CMD...: runs a CLI command, prints its exit code and the start of its error.
step() { local n=$1 t=$SECONDS; shift; "$@" >/dev/null 2>/tmp/step.err; echo "CHECK $n $? $(head -c 300 /tmp/step.err | tr '\n' ' ')"; echo "TIME $n $((SECONDS - t))s"; }

step detach P nodedev-detach "pci_$(echo "$VF0" | tr ':.' '__')"
echo "CHECK before $(own "$G0") $(drv "$VF0")"
echo "CHECK vfio-container $(stat -c '%a' /dev/vfio/vfio)"
domain qu1 "$(hostdev "$VF0")" >/tmp/qu1.xml
domain qu2 "" >/tmp/qu2.xml
step define1 P define /tmp/qu1.xml
step start1 P start qu1
PID1=$(cat "$ST/run/qu1/qemu.pid" 2>/dev/null || echo 0)
echo "CHECK ids1 $(ids "$PID1")"
echo "CHECK running1 $(own "$G0")"
echo "CHECK fds1 $(fds "$PID1" "$G0")"
echo "CHECK limits1 $(limits "$PID1")"
echo "CHECK vmlck1 $(vmlck "$PID1")"
echo "CHECK enable1 $(cat "/sys/bus/pci/devices/$VF0/enable")"

step define2 P define /tmp/qu2.xml
step start2 P start qu2
PID2=$(cat "$ST/run/qu2/qemu.pid" 2>/dev/null || echo 0)
echo "CHECK ids2 $(ids "$PID2")"
echo "CHECK limits2 $(limits "$PID2")"
cat >/tmp/vf1.xml <<XML
<interface type='hostdev' managed='yes'>
  <mac address='52:54:00:00:0c:02'/>
  <source><address type='pci' domain='0x${VF1:0:4}' bus='0x${VF1:5:2}' slot='0x${VF1:8:2}' function='0x${VF1:11:1}'/></source>
</interface>
XML
step attach P attach-device qu2 /tmp/vf1.xml --live
echo "CHECK attached $(own "$G1") $(drv "$VF1") $(vfmac)"
echo "CHECK fds2 $(fds "$PID2" "$G1")"
echo "CHECK limits2-attached $(limits "$PID2")"
echo "CHECK vmlck2 $(vmlck "$PID2")"

step destroy2 P destroy qu2
for i in $(seq 100); do [ -e "/sys/bus/pci/devices/$VF1/net" ] && break; sleep 0.1; done
echo "CHECK after2 $(own "$G1") $(vfmac) $(drv "$VF1")"

step destroy1 P destroy qu1
echo "CHECK after1 $(own "$G0") $(drv "$VF0")"
echo "CHECK ledger $(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).entries.length' "$ST/owners.json")"

# qu3: VF0 (still detached) and VF1 (managed) behind the guest's intel vIOMMU. Each VFIO device
# then has a DMA address space of its own and pins the guest's RAM in it: the limit is counted
# per device, and vfio's pinned pages (VmLck) show both copies.
managed() { hostdev "$1" | sed "s/managed='no'/managed='yes'/"; }
domain qu3 "$(hostdev "$VF0")$(managed "$VF1")<iommu model='intel'><driver caching_mode='on'/></iommu>" >/tmp/qu3.xml
step define3 P define /tmp/qu3.xml
step start3 P start qu3
PID3=$(cat "$ST/run/qu3/qemu.pid" 2>/dev/null || echo 0)
echo "CHECK viommu3 $(tr '\0' ' ' <"/proc/$PID3/cmdline" | grep -o '"driver":"intel-iommu","id":"iommu0","caching-mode":true' || echo none)"
echo "CHECK fds3 $(ls -l "/proc/$PID3/fd" | grep -c 'vfio-device')"
echo "CHECK limits3 $(limits "$PID3")"
echo "CHECK vmlck3 $(vmlck "$PID3")"
step destroy3 P destroy qu3
for i in $(seq 100); do [ -e "/sys/bus/pci/devices/$VF1/net" ] && break; sleep 0.1; done
echo "CHECK after3 $(own "$G0") $(drv "$VF0") $(drv "$VF1")"
echo "CHECK ledger3 $(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).entries.length' "$ST/owners.json")"

# The same user, VF and 128 MiB with a 16 MiB limit: vfio cannot pin the RAM, QEMU fails.
chown "$QU:" "/dev/vfio/$G0"
timeout 180 prlimit --memlock=$((16 << 20)):$((16 << 20)) -- setpriv --reuid="$QU" --regid="$QU" --init-groups -- \
  qemu-system-x86_64 -machine q35,accel=tcg -m 128 -display none -nodefaults -S \
  -device "vfio-pci,host=$VF0" >/tmp/toolow.out 2>&1
rc=$?
echo "CHECK toolow $rc $(grep -o -m1 -E 'vfio_dma_map.*|Cannot allocate memory' /tmp/toolow.out || tail -c 300 /tmp/toolow.out | tr '\n' ' ')"
chown 0:0 "/dev/vfio/$G0"
step reattach P nodedev-reattach "pci_$(echo "$VF0" | tr ':.' '__')"
for i in $(seq 100); do [ -e "/sys/bus/pci/devices/$VF0/net" ] && break; sleep 0.1; done
echo "CHECK reattached $(drv "$VF0")"
echo "CHECK log $(grep -c '"level":50' /tmp/passthrud.log)"
grep '"level":50' /tmp/passthrud.log | head -3
stop_lab
echo "CHECK took ${SECONDS}s"
