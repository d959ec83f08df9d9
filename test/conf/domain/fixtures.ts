/** Canonical documents: what formatDomainXml writes after readDomainXml, byte for byte. */

/** The walking skeleton's guest (issue 2): a VF with admin MAC and VLAN, a user NIC, a serial
 *  log, direct kernel boot. As the user writes it. */
export const SKELETON_INPUT = `<domain type='kvm'>
  <name>web1</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>/var/cache/passthru/guest/vmlinuz</kernel>
    <initrd>/var/cache/passthru/guest/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet</cmdline>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:00:00:01'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x1'/>
      </source>
      <vlan>
        <tag id='42'/>
      </vlan>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:00:00:02'/>
      <model type='virtio'/>
    </interface>
    <hostdev mode='subsystem' type='pci' managed='no'>
      <source>
        <address domain='0x0000' bus='0x06' slot='0x02' function='0x2'/>
      </source>
    </hostdev>
    <serial type='file'>
      <source path='/var/log/passthru/web1.log'/>
    </serial>
  </devices>
</domain>
`;

/** The same after postParse, inactive. */
export const SKELETON_INACTIVE = `<domain type='kvm'>
  <name>web1</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='KiB'>262144</memory>
  <currentMemory unit='KiB'>262144</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>/var/cache/passthru/guest/vmlinuz</kernel>
    <initrd>/var/cache/passthru/guest/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='pci' index='0' model='pcie-root'/>
    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:00:00:01'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x1'/>
      </source>
      <vlan>
        <tag id='42'/>
      </vlan>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:00:00:02'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'>
      <source path='/var/log/passthru/web1.log'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
    </serial>
    <console type='file'>
      <source path='/var/log/passthru/web1.log'/>
      <target type='serial' port='0'/>
    </console>
    <hostdev mode='subsystem' type='pci' managed='no'>
      <source>
        <address domain='0x0000' bus='0x06' slot='0x02' function='0x2'/>
      </source>
    </hostdev>
  </devices>
</domain>
`;

/** What the lead writes after start: aliases, root ports and guest addresses. Live flags. */
export const SKELETON_LIVE = `<domain type='kvm'>
  <name>web1</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='KiB'>262144</memory>
  <currentMemory unit='KiB'>262144</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>/var/cache/passthru/guest/vmlinuz</kernel>
    <initrd>/var/cache/passthru/guest/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='pci' index='0' model='pcie-root'>
      <alias name='pcie.0'/>
    </controller>
    <controller type='pci' index='1' model='pcie-root-port'>
      <model name='pcie-root-port'/>
      <target chassis='1' port='0x10'/>
      <alias name='pci.1'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0' multifunction='on'/>
    </controller>
    <controller type='pci' index='2' model='pcie-root-port'>
      <model name='pcie-root-port'/>
      <target chassis='2' port='0x11'/>
      <alias name='pci.2'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x1'/>
    </controller>
    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:00:00:01'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x1'/>
      </source>
      <vlan>
        <tag id='42'/>
      </vlan>
      <alias name='hostdev0'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:00:00:02'/>
      <model type='virtio'/>
      <alias name='net0'/>
      <address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>
    </interface>
    <serial type='file'>
      <source path='/var/log/passthru/web1.log'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
      <alias name='serial0'/>
    </serial>
    <console type='file'>
      <source path='/var/log/passthru/web1.log'/>
      <target type='serial' port='0'/>
      <alias name='serial0'/>
    </console>
    <hostdev mode='subsystem' type='pci' managed='no'>
      <source>
        <address domain='0x0000' bus='0x06' slot='0x02' function='0x2'/>
      </source>
      <alias name='hostdev1'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </hostdev>
  </devices>
</domain>
`;

/** The skeleton guest with its plain `<hostdev>` replaced by `hostdevs`. */
export function skeletonWithHostdevs(hostdevs: string): string {
  const plain = /<hostdev mode='subsystem' type='pci' managed='no'>[\s\S]*?<\/hostdev>/;
  if (!plain.test(SKELETON_INPUT)) throw new Error('the skeleton guest has no plain <hostdev>');
  return SKELETON_INPUT.replace(plain, hostdevs);
}

/** [seed] partial assignment: a multi-port VF with per-port MAC/VLAN, and a function taken from
 *  the host but given no guest device. */
export const SEED_HOSTDEVS = `<hostdev mode='subsystem' type='pci' managed='yes'>
      <source>
        <address domain='0x0000' bus='0x06' slot='0x02' function='0x0'/>
      </source>
      <netdev port='1'>
        <mac address='52:54:00:01:02:03'/>
        <vlan>
          <tag id='42'/>
        </vlan>
      </netdev>
      <netdev port='2'>
        <mac address='52:54:00:01:02:04'/>
      </netdev>
    </hostdev>
    <hostdev mode='subsystem' type='pci' managed='yes' assigned='no'>
      <source>
        <address domain='0x0000' bus='0x06' slot='0x02' function='0x3'/>
      </source>
    </hostdev>`;
