import { PassthruError } from '../../../src/conf/error.ts';
import { validateAnyXml } from '../../../src/conf/validate-any.ts';

/** Small documents of every kind, to mutate. Small on purpose: the fuzz runs >100,000 inputs in
 *  the default test run and must stay quick. */
export const SEEDS = [
  `<domain type='kvm'><name>a</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type machine='q35'>hvm</type><kernel>/k</kernel></os>
<devices><interface type='hostdev' managed='yes'><mac address='52:54:00:00:00:01'/><source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x1'/></source><vlan><tag id='42'/></vlan><teaming type='transient' persistent='ua-b'/></interface>
<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/><teaming type='persistent'/><alias name='ua-b'/></interface>
<interface type='hostdev-hybrid' managed='yes'><mac address='52:54:00:00:00:02'/><source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x2'/></source><standby><source dev='enp6s0f0' mode='bridge'/><target dev='macvtap0'/><alias name='net1'/><address type='pci' bus='2' slot='0' function='0'/></standby></interface>
<hostdev mode='subsystem' type='pci' managed='no' assigned='no'><source><address bus='6' slot='2' function='3'/></source><netdev port='1'><mac address='52:54:00:01:02:03'/></netdev></hostdev>
<controller type='pci' index='1' model='pcie-root-port'><target chassis='1' port='0x10'/><address type='pci' bus='0' slot='2' function='0' multifunction='on'/></controller>
<serial type='file'><source path='/l'/><target port='0'/></serial></devices></domain>`,
  `<network><name>n</name><forward mode='hostdev' managed='yes'><driver name='vfio'/><address type='pci' bus='3' slot='0' function='1'/><address type='pci' bus='3' slot='0' function='2'/></forward>
<vlan><tag id='7'/></vlan><portgroup name='p' default='yes'><vlan><tag id='1'/></vlan><virtualport type='802.1Qbh'><parameters profileid='x'/></virtualport></portgroup></network>`,
  `<network trustGuestRxFilters='no'><name>v</name><forward mode='vepa'><interface dev='eth1'/></forward><virtualport type='802.1Qbg'><parameters managerid='11' typeid='1193047' typeidversion='2'/></virtualport><portgroup name='p'><vlan trunk='yes'><tag id='1' nativeMode='tagged'/><tag id='2'/></vlan></portgroup></network>`,
  `<network><name>h</name><forward mode='hostdev-hybrid' managed='no'><select vendor='8086' device='154c' driver='iavf' pf='p0#0,2-7' numa='0'/></forward></network>`,
  `<networkport><uuid>5d744f21-ba4a-4d6e-bdb2-30a35ff3207d</uuid><owner><name>m</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner><mac address='52:54:00:7b:35:93'/><plug type='hostdev-pci' managed='yes'><driver name='vfio'/><address domain='0x0001' bus='0x02' slot='0x03' function='0x4'/></plug></networkport>`,
  `<devicepool managed='yes'><name>g</name><select vendor='10de' device='1db6' numa='0'/><address type='pci' bus='0x3b' slot='0' function='0'/><resolved><address type='pci' bus='0x3b' slot='0' function='0' usedBy='w'/></resolved></devicepool>`,
  `<device><name>pci_0000_06_10_1</name><parent>pci_0000_00_03_0</parent><driver><name>iavf</name></driver><capability type='pci'><class>0x020000</class><domain>0</domain><bus>6</bus><slot>16</slot><function>1</function><product id='0x154c'/><vendor id='0x8086'/><capability type='phys_function'><address domain='0x0000' bus='0x06' slot='0x00' function='0x0'/></capability><iommuGroup number='40'><address domain='0x0000' bus='0x06' slot='0x10' function='0x1'/></iommuGroup></capability></device>`,
];

const KNOWN = new Set(['XML_SYNTAX', 'XML_INVALID', 'CONFIG_UNSUPPORTED']);

/** The fuzz property: any text gives a list of typed, located problems, never an exception. */
export function checkOnlyTypedErrors(text: string): PassthruError[] {
  const { problems } = validateAnyXml(text, 'fuzz.xml');
  for (const p of problems) {
    if (!(p instanceof PassthruError) || !KNOWN.has(p.code) || p.line === undefined) {
      throw new Error(`untyped or unlocated problem for ${JSON.stringify(text)}: ${String(p)} ${p.code} ${p.line}`);
    }
  }
  return problems;
}
