/** A domain holding VF `vf` (0..7) of the sim X710's first PF through <interface type='hostdev'>,
 *  with an emulator that does not exist: for everything that must happen (or fail) before QEMU. */
export function vfDomainXml(
  name: string,
  vf: number,
  o: { mac?: string; vlan?: number; extraDevices?: string } = {},
): string {
  return `<domain type='kvm'>
  <name>${name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <emulator>/nonexistent/qemu-system-x86_64</emulator>
    <interface type='hostdev' managed='yes'>
      <mac address='${o.mac ?? '52:54:00:aa:00:01'}'/>
      <source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x${vf}'/></source>
      <vlan><tag id='${o.vlan ?? 7}'/></vlan>
    </interface>${o.extraDevices ?? ''}
  </devices>
</domain>`;
}
