import { PassthruError } from '../conf/error.ts';
import { formatPciAddress, type PciAddress } from '../conf/pci-address.ts';
import { currentDriver } from './bind.ts';
import { readPciDevice } from './inventory.ts';
import type { Kernel } from './types.ts';

/**
 * nodedev-reset: a function reset through sysfs `reset` (the kernel picks FLR, AF FLR, PM or a
 * bus reset). As libvirt's virPCIDeviceReset: endpoints only, and nothing to do for a device
 * on vfio-pci, which resets it itself when it is opened and released.
 */
export async function resetDevice(kernel: Kernel, address: PciAddress): Promise<{ reset: boolean; why?: string }> {
  const name = formatPciAddress(address);
  const dev = await readPciDevice(kernel.sysfs, address);
  if (dev.headerType !== 'endpoint') {
    throw new PassthruError(
      'OPERATION_INVALID',
      `Invalid attempt to reset PCI device ${name}. Only PCI endpoint devices can be reset`,
    );
  }
  const driver = await currentDriver(kernel.sysfs, address);
  if (driver === 'vfio-pci') return { reset: false, why: `PCI device ${name} is bound to vfio-pci, which resets it` };
  try {
    await kernel.writeSysfs(`/sys/bus/pci/devices/${name}/reset`, '1');
  } catch (err) {
    const errno = err instanceof PassthruError ? err.errno : undefined;
    throw new PassthruError(
      'HOST_FAILED',
      `Unable to reset PCI device ${name}: ${errno === 'ENOTTY' ? 'no FLR, PM reset or bus reset available' : (err as Error).message}`,
      { cause: err, ...(errno === undefined ? {} : { errno }) },
    );
  }
  return { reset: true };
}
