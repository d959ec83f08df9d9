import { PassthruError } from '../conf/error.ts';
import { formatPciAddress, type PciAddress } from '../conf/pci-address.ts';
import { type PciDevice, readPciDevice } from '../host/inventory.ts';
import type { Kernel } from '../host/types.ts';
import { type HostUsage, mountsBehind, readHostUsage } from '../host/usage.ts';
import { type AssignabilityReport, isVfioDriver } from './facts.ts';

/**
 * nodedev-check ADDR: the planner's rules, said out loud before anything is tried. VFIO gives a
 * guest a whole IOMMU group, so every member counts: who holds it, what it is bound to, and
 * whether the host lives on it (a default route through its netdev, a mounted disk behind it).
 */
export async function checkAssignable(
  kernel: Kernel,
  holder: (bdf: string) => string | undefined,
  address: PciAddress,
): Promise<AssignabilityReport> {
  const bdf = formatPciAddress(address);
  const dev = await readPciDevice(kernel.sysfs, address).catch((err: unknown) => {
    if (err instanceof PassthruError && err.code === 'NO_DEVICE') {
      throw new PassthruError('NO_DEVICE', `PCI device ${bdf} does not exist on this host`);
    }
    throw err;
  });
  const usage = await readHostUsage(kernel.sysfs);
  const members: PciDevice[] = [dev];
  for (const m of dev.iommuGroupMembers) {
    if (formatPciAddress(m) !== bdf) members.push(await readPciDevice(kernel.sysfs, m));
  }
  const reasons: string[] = [];
  const notes: string[] = [];
  if (dev.headerType !== 'endpoint')
    reasons.push(`${bdf} is a ${dev.headerType}: only PCI endpoints can be assigned to guests`);
  if (dev.sriov && dev.sriov.numVfs > 0) {
    reasons.push(
      `${bdf} is an SR-IOV PF with ${dev.sriov.numVfs} VFs enabled: taking it from its driver destroys them (set them to 0 first, or assign a VF)`,
    );
  }
  if (dev.iommuGroup === undefined) {
    reasons.push(
      `${bdf} has no IOMMU group: the host has no IOMMU enabled (intel_iommu=on / amd_iommu=on), so VFIO cannot take it`,
    );
  }
  for (const m of members) {
    const name = m.name;
    const self = name === bdf;
    const who = self ? name : `IOMMU group ${dev.iommuGroup} member ${name}`;
    const heldBy = holder(name);
    if (heldBy !== undefined) reasons.push(`${who} is in use by domain ${heldBy}`);
    for (const use of usedBy(m, usage)) reasons.push(`${who} ${use}; giving it to a guest would take it from the host`);
    if (
      !self &&
      m.headerType === 'endpoint' &&
      heldBy === undefined &&
      !isVfioDriver(m.driver) &&
      m.driver !== undefined
    ) {
      notes.push(
        `${name} (driver ${m.driver}) shares IOMMU group ${dev.iommuGroup}: the domain must take it too (assigned='no' keeps it from the guest)`,
      );
    }
  }
  return {
    device: bdf,
    assignable: reasons.length === 0,
    reasons,
    notes,
    ...(dev.iommuGroup === undefined ? {} : { iommuGroup: dev.iommuGroup }),
    members: members.map((m) => {
      const heldBy = holder(m.name);
      return {
        address: m.name,
        ...(m.driver === undefined ? {} : { driver: m.driver }),
        netdevs: m.netdevs.map((n) => n.name),
        ...(heldBy === undefined ? {} : { heldBy }),
        usedBy: usedBy(m, usage),
      };
    }),
  };
}

function usedBy(d: PciDevice, usage: HostUsage): string[] {
  const out: string[] = [];
  for (const n of d.netdevs)
    for (const r of usage.routes.get(n.name) ?? []) out.push(`carries the host's ${r} (via ${n.name})`);
  for (const m of mountsBehind(usage, d.path)) out.push(`holds ${m.device}, mounted at ${m.mountpoint}`);
  return out;
}
