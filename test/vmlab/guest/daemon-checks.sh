#!/bin/bash
# Runs INSIDE the VM-lab guest: passthrud --host linux on the real kernel with QEMU's igb NIC.
# A domain with <interface type='hostdev'> on an igb VF (MAC + VLAN 42) is defined and started
# (the nested QEMU runs under TCG; the guest inside it need not boot), the real igb VF table is
# read with ip -j, then destroy must give the VF back to igbvf with its MAC and VLAN as before.
# Prints lines "CHECK <name> <value>" that test/vmlab/daemon-linux.test.ts reads.
set -u
. /work/p/test/vmlab/guest/lab.sh
VF=$(basename "$(readlink -f "/sys/bus/pci/devices/$PF/virtfn1")")
vfrow() { ip -j -d link show "$NET" | node -e 'const l=JSON.parse(require("fs").readFileSync(0,"utf8"))[0];const v=l.vfinfo_list.find(x=>x.vf===1);console.log(v.address, (v.vlan_list?.[0]?.vlan)??0)'; }
drv() { basename "$(readlink "/sys/bus/pci/devices/$VF/driver" 2>/dev/null)" 2>/dev/null || echo none; }
echo "CHECK vf $VF"
echo "CHECK before $(vfrow) $(drv)"
DOMAINS="vmlab1 vmlab2"
start_daemon
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
stop_lab
