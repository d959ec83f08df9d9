#!/bin/bash
# Runs INSIDE the VM-lab guest: passthrud --host linux on the real kernel with QEMU's igb NIC.
# A domain with <interface type='hostdev'> on an igb VF (MAC + VLAN 42) is defined and started
# (the nested QEMU runs under TCG; the guest inside it need not boot), the real igb VF table is
# read with ip -j, then destroy must give the VF back to igbvf with its MAC and VLAN as before.
# Prints lines "CHECK <name> <value>" that test/vmlab/daemon-linux.test.ts reads.
set -u
cd /work/p
PF=$(for d in /sys/bus/pci/devices/*; do [ "$(cat "$d/device")" = 0x10c9 ] && basename "$d"; done | head -1)
NET=$(ls "/sys/bus/pci/devices/$PF/net" | head -1)
ip link set "$NET" up
echo 2 >"/sys/bus/pci/devices/$PF/sriov_numvfs"
for i in $(seq 100); do [ -e "/sys/bus/pci/devices/$PF/virtfn1/net" ] && break; sleep 0.1; done
VF=$(basename "$(readlink -f "/sys/bus/pci/devices/$PF/virtfn1")")
vfrow() { ip -j -d link show "$NET" | node -e 'const l=JSON.parse(require("fs").readFileSync(0,"utf8"))[0];const v=l.vfinfo_list.find(x=>x.vf===1);console.log(v.address, (v.vlan_list?.[0]?.vlan)??0)'; }
drv() { basename "$(readlink "/sys/bus/pci/devices/$VF/driver" 2>/dev/null)" 2>/dev/null || echo none; }
echo "CHECK vf $VF"
echo "CHECK before $(vfrow) $(drv)"
ST=/tmp/passthru-state; SOCK=/tmp/passthru.sock
# The built daemon and CLI (the test runs `npm run build` on the host first): under TCG, tsx
# compiling some 300 modules at each start took longer than the wait below.
node dist/src/daemon/main.js --host linux --state-dir "$ST" --socket "$SOCK" >/tmp/passthrud.log 2>&1 &
DPID=$!
P() { node dist/cli/passthru.js -c "$SOCK" "$@"; }
# Under TCG (and a busy host) the daemon takes a while; it is up when its API answers.
up=0
for i in $(seq 240); do
  if [ -S "$SOCK" ] && P list --all >/dev/null 2>&1; then up=1; break; fi
  sleep 1
done
echo "CHECK daemon $up"
cleanup() {
  # Never leave a VF held by a QEMU: disabling SR-IOV would wait for it forever.
  for d in vmlab1 vmlab2; do P destroy "$d" >/dev/null 2>&1; done
  kill "$DPID" 2>/dev/null
  wait "$DPID" 2>/dev/null
  timeout 30 sh -c "echo 0 >/sys/bus/pci/devices/$PF/sriov_numvfs"
}
if [ "$up" != 1 ]; then
  tail -20 /tmp/passthrud.log
  cleanup
  exit 1
fi
echo "CHECK nodedev $(P nodedev-list --cap pci | grep -c "pci_$(echo "$VF" | tr ':.' '__')")"
cat >/tmp/d1.xml <<XML
<domain type='kvm'>
  <name>vmlab1</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:00:00:01'/>
      <vlan><tag id='42'/></vlan>
      <source><address type='pci' domain='0x${VF:0:4}' bus='0x${VF:5:2}' slot='0x${VF:8:2}' function='0x${VF:11:1}'/></source>
    </interface>
  </devices>
</domain>
XML
P define /tmp/d1.xml >/dev/null 2>/tmp/define.err; echo "CHECK define $? $(head -c 300 /tmp/define.err | tr '\n' ' ')"
P start vmlab1 >/dev/null 2>/tmp/start.err; echo "CHECK start $? $(head -c 300 /tmp/start.err | tr '\n' ' ')"
echo "CHECK running $(vfrow) $(drv)"
echo "CHECK livexml $(P dumpxml vmlab1 | grep -c "<address type='pci' domain='0x0000' bus='0x0[1-9]'")"
# A second domain on the same VF is refused and changes nothing.
sed 's/vmlab1/vmlab2/' /tmp/d1.xml >/tmp/d2.xml
P define /tmp/d2.xml >/dev/null 2>&1
P start vmlab2 >/dev/null 2>/tmp/start2.err; echo "CHECK second $? $(head -c 200 /tmp/start2.err | tr '\n' ' ')"
echo "CHECK stillrunning $(vfrow) $(drv)"
P destroy vmlab1 >/dev/null 2>/tmp/destroy.err; echo "CHECK destroy $? $(head -c 300 /tmp/destroy.err | tr '\n' ' ')"
for i in $(seq 100); do [ -e "/sys/bus/pci/devices/$VF/net" ] && break; sleep 0.1; done
echo "CHECK after $(vfrow) $(drv)"
echo "CHECK log $(grep -c '"level":50' /tmp/passthrud.log)"
cleanup
