import { formatPciAddress, type PciAddress, samePciAddress } from '../conf/pci-address.ts';
import { readHostUse } from './host-use.ts';
import { type PciDevice, readPciDevice } from './inventory.ts';
import type { Sysfs } from './types.ts';

/**
 * nodedev-check ADDR: whether a PCI function can be given to a guest, and exactly why not
 * (PRODUCT.md A). VFIO needs every endpoint of the IOMMU group on a vfio driver (or unbound);
 * the blockers an operator cares most about are the host's own network path and disks behind
 * a group member, so those are named as such.
 */
export interface GroupMember {
  readonly address: PciAddress;
  readonly driver: string | undefined;
  readonly netdevs: readonly string[];
  /** Bridges and switch ports may stay on pcieport: VFIO does not need them. */
  readonly bridge: boolean;
}

export interface Assignability {
  readonly address: PciAddress;
  readonly assignable: boolean;
  /** One sentence per blocker, naming the device in the field's words; [] when assignable. */
  readonly reasons: readonly string[];
  /** Things to know that do not block (an SR-IOV PF whose VFs go with it, a driver to unbind). */
  readonly notes: readonly string[];
  readonly iommuGroup: number | undefined;
  readonly members: readonly GroupMember[];
}

const STUBS = new Set(['vfio-pci', 'pci-stub']);
const isStub = (d: string | undefined): boolean => d === undefined || STUBS.has(d) || d.endsWith('_vfio_pci');

export async function checkAssignable(sysfs: Sysfs, address: PciAddress): Promise<Assignability> {
  const dev = await readPciDevice(sysfs, address);
  const members: PciDevice[] = [];
  for (const m of dev.iommuGroupMembers) {
    members.push(samePciAddress(m, address) ? dev : await readPciDevice(sysfs, m));
  }
  if (members.length === 0) members.push(dev);
  const reasons: string[] = [];
  const notes: string[] = [];
  const name = dev.name;
  if (dev.headerType !== 'endpoint') {
    reasons.push(`PCI device ${name} is a ${dev.headerType}: bridges are never assignable (non-endpoint header type)`);
  }
  if (dev.iommuGroup === undefined) {
    reasons.push(
      `PCI device ${name} is in no IOMMU group: the IOMMU is off (boot with intel_iommu=on or amd_iommu=on)`,
    );
  }
  const use = await readHostUse(sysfs);
  for (const m of members) {
    const bridge = m.headerType !== 'endpoint';
    const self = samePciAddress(m.address, address);
    const who = self
      ? `PCI device ${name}`
      : `PCI device ${m.name} (in IOMMU group ${dev.iommuGroup ?? '?'} with ${name})`;
    for (const why of use.get(m.name) ?? []) reasons.push(`${who} ${why}`);
    if (!self && !bridge && !isStub(m.driver)) {
      const nds = m.netdevs.length === 0 ? '' : `, netdev ${m.netdevs.map((n) => n.name).join(', ')}`;
      reasons.push(
        `${who} is bound to ${m.driver ?? '?'}${nds}: every endpoint of the group must go to the same guest or be unbound from its host driver`,
      );
    }
  }
  if (dev.sriov && dev.sriov.numVfs > 0) {
    notes.push(`PF ${name} has ${dev.sriov.numVfs} VFs: unbinding its driver destroys them all`);
  }
  if (!isStub(dev.driver))
    notes.push(`PCI device ${name} is bound to ${dev.driver ?? '?'}: managed assignment rebinds it to vfio-pci`);
  return {
    address,
    assignable: reasons.length === 0,
    reasons,
    notes,
    iommuGroup: dev.iommuGroup,
    members: members.map((m) => ({
      address: m.address,
      driver: m.driver,
      netdevs: m.netdevs.map((n) => n.name),
      bridge: m.headerType !== 'endpoint',
    })),
  };
}

export function describe(a: Assignability): string {
  const head = `PCI device ${formatPciAddress(a.address)} ${a.assignable ? 'can' : 'cannot'} be assigned`;
  return [head, ...a.reasons.map((r) => `  - ${r}`), ...a.notes.map((n) => `  note: ${n}`)].join('\n');
}
