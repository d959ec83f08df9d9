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
# domain NAME TYPE VF MAC [EXTRA]: a 128 MiB q35 domain with one <interface type=TYPE> on VF.
domain() {
  cat <<XML
<domain type='kvm'>
  <name>$1</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <interface type='$2' managed='yes'>
      <mac address='$4'/>${5:-}
      <source><address type='pci' domain='0x${3:0:4}' bus='0x${3:5:2}' slot='0x${3:8:2}' function='0x${3:11:1}'/></source>
    </interface>
  </devices>
</domain>
XML
}
domain vmlab1 hostdev "$VF" 52:54:00:00:00:01 "<vlan><tag id='42'/></vlan>" >/tmp/d1.xml
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

# hostdev-hybrid on VF 0, same daemon (one lab boot): a real macvtap in bridge mode on the igb PF
# with the guest MAC, its /dev/tapN open in QEMU, the VF on vfio-pci carrying the MAC, QEMU's
# failover pair; then the linux Datapath moves the MAC off the VF and back (guest/steer.ts);
# destroy removes the macvtap and gives VF 0 back to igbvf with its MAC.
HT=$SECONDS
HVF=$(basename "$(readlink -f "/sys/bus/pci/devices/$PF/virtfn0")")
HMAC=52:54:00:00:0b:01
# The admin MAC of VF 0 in the PF's VF table (awk: a node start is a second under TCG).
vf0mac() { ip -d link show "$NET" | awk '$1 == "vf" && $2 == "0" { for (i = 3; i < NF; i++) if ($i == "link/ether") print $(i + 1) }'; }
hdrv() { basename "$(readlink "/sys/bus/pci/devices/$HVF/driver" 2>/dev/null)" 2>/dev/null || echo none; }
# "<name> <mode> <parent> <address> <ifindex>" of each macvtap, or "none".
macvtaps() { ip -j -d link show type macvtap | node -e 'const l=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(l.map(x=>[x.ifname,x.linkinfo?.info_data?.mode,x.link,x.address,x.ifindex].join(" ")).join(";")||"none")'; }
# VF 0 gets an admin MAC of its own first, so that destroy must put back exactly that one (with
# none, igbvf picks a random MAC when it binds again, and the table shows that).
ip link set "$NET" vf 0 mac 02:00:00:0b:00:01
echo "CHECK hybrid-before $(vf0mac) $(hdrv)"
domain vmlabh hostdev-hybrid "$HVF" "$HMAC" >/tmp/h.xml
DOMAINS="$DOMAINS vmlabh"
P define /tmp/h.xml >/dev/null 2>/tmp/hdefine.err; echo "CHECK hybrid-define $? $(head -c 300 /tmp/hdefine.err | tr '\n' ' ')"
T=$SECONDS
P start vmlabh >/dev/null 2>/tmp/hstart.err; echo "CHECK hybrid-start $? $(head -c 300 /tmp/hstart.err | tr '\n' ' ')"
echo "TIME hybrid-start $((SECONDS - T))s"
HPID=$(cat "$ST/run/vmlabh/qemu.pid" 2>/dev/null || echo 0)
MT=$(macvtaps)
echo "CHECK hybrid-macvtap $MT"
echo "CHECK hybrid-netdev $NET"
TAPIDX=$(echo "$MT" | awk '{ print $5 }')
echo "CHECK hybrid-tapfd $(ls -l "/proc/$HPID/fd" 2>/dev/null | grep -c " /dev/tap$TAPIDX\$")"
CMD=$(tr '\0' ' ' <"/proc/$HPID/cmdline" 2>/dev/null)
echo "CHECK hybrid-failover $(echo "$CMD" | grep -c '"failover":true') $(echo "$CMD" | grep -o '"failover_pair_id":"[^"]*"' | head -1)"
echo "CHECK hybrid-running $(vf0mac) $(hdrv)"
echo "CHECK hybrid-domiflist $(P domiflist vmlabh 2>&1 | grep -c "$HMAC")"
T=$SECONDS
node --import tsx test/vmlab/guest/steer.ts "$NET" 0 "$HVF" "$HMAC"
echo "TIME hybrid-steer $((SECONDS - T))s"
echo "CHECK hybrid-steered $(vf0mac) $(hdrv)"
P destroy vmlabh >/dev/null 2>/tmp/hdestroy.err; echo "CHECK hybrid-destroy $? $(head -c 300 /tmp/hdestroy.err | tr '\n' ' ')"
for i in $(seq 100); do [ -e "/sys/bus/pci/devices/$HVF/net" ] && break; sleep 0.1; done
echo "CHECK hybrid-after $(vf0mac) $(hdrv)"
echo "CHECK hybrid-macvtap-after $(macvtaps)"
echo "TIME hybrid-section $((SECONDS - HT))s"
echo "CHECK log $(grep -c '"level":50' /tmp/passthrud.log)"
grep '"level":50' /tmp/passthrud.log | head -3 | cut -c1-400
stop_lab
