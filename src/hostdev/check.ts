import { formatPciAddress, type PciAddress } from '../conf/pci-address.ts';
import { checkAssignable as hostCheck } from '../host/check.ts';
import { readPciDevice } from '../host/inventory.ts';
import type { Kernel } from '../host/types.ts';
import type { AssignabilityReport } from './facts.ts';

/**
 * nodedev-check ADDR: the host's verdict (host/check.ts: header type, IOMMU group members and
 * their drivers, default routes, mounts) plus what only the device manager knows: which domain
 * holds the device, a member of its group, or a VF of a PF.
 */
export async function checkAssignable(
  kernel: Kernel,
  holder: (bdf: string) => string | undefined,
  address: PciAddress,
): Promise<AssignabilityReport> {
  const host = await hostCheck(kernel.sysfs, address);
  const bdf = formatPciAddress(address);
  const reasons = [...host.reasons];
  for (const m of host.members) {
    const name = formatPciAddress(m.address);
    const heldBy = holder(name);
    if (heldBy === undefined) continue;
    reasons.unshift(
      name === bdf
        ? `PCI device ${bdf} is in use by domain ${heldBy}`
        : `PCI device ${name} (in IOMMU group ${host.iommuGroup ?? '?'} with ${bdf}) is in use by domain ${heldBy}`,
    );
  }
  const dev = await readPciDevice(kernel.sysfs, address);
  for (const vf of dev.sriov?.vfs ?? []) {
    const heldBy = holder(formatPciAddress(vf));
    if (heldBy !== undefined) reasons.push(`VF ${formatPciAddress(vf)} of PF ${bdf} is in use by domain ${heldBy}`);
  }
  return {
    device: bdf,
    assignable: reasons.length === 0,
    reasons,
    notes: host.notes,
    ...(host.iommuGroup === undefined ? {} : { iommuGroup: host.iommuGroup }),
    members: host.members.map((m) => {
      const name = formatPciAddress(m.address);
      const heldBy = holder(name);
      return {
        address: name,
        ...(m.driver === undefined ? {} : { driver: m.driver }),
        netdevs: m.netdevs,
        bridge: m.bridge,
        ...(heldBy === undefined ? {} : { heldBy }),
      };
    }),
  };
}
