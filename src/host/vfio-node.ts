import { basename, join } from 'node:path';
import { formatPciAddress, type PciAddress } from '../conf/pci-address.ts';
import type { Sysfs } from './types.ts';

/**
 * The character device through which a process opens a device's IOMMU group (/dev/vfio/N,
 * made by vfio when a member binds to a vfio driver; the sim makes the same file in its tree).
 * It is the file an unprivileged QEMU must own to take the device. Undefined for a device with
 * no IOMMU group.
 */
export async function vfioGroupNode(sysfs: Sysfs, address: PciAddress): Promise<string | undefined> {
  const link = await sysfs.readLink(`/sys/bus/pci/devices/${formatPciAddress(address)}/iommu_group`);
  return link === undefined ? undefined : join(sysfs.root, 'dev/vfio', basename(link));
}
