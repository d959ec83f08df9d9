import { PassthruError } from '../conf/error.ts';
import { formatPciAddress, type PciAddress } from '../conf/pci-address.ts';
import type { DeviceFacts, HostOps } from './facts.ts';
import type { Leases } from './leases.ts';

/**
 * The node-device operations (virsh nodedev-detach / -reattach / -reset, nodedev-sriov): each
 * refused while a domain holds the device (libvirt's virHostdevPCINodeDevice* in-use check).
 * The manager runs them in its queue, so they never race a domain's prepare or release.
 */
export async function requireFree(
  host: HostOps,
  leases: Leases,
  address: PciAddress,
  verb: string,
): Promise<DeviceFacts> {
  const bdf = formatPciAddress(address);
  const facts = await host.facts(address);
  if (!facts) throw new PassthruError('NO_DEVICE', `PCI device ${bdf} does not exist on this host`);
  const holder = leases.holder(bdf);
  if (holder !== undefined) {
    throw new PassthruError('DEVICE_IN_USE', `cannot ${verb} PCI device ${bdf}: it is in use by domain ${holder}`);
  }
  return facts;
}

export async function detach(host: HostOps, leases: Leases, address: PciAddress, stub: string): Promise<boolean> {
  const facts = await requireFree(host, leases, address, 'detach');
  if (!facts.endpoint) {
    throw new PassthruError(
      'DEVICE_NOT_ASSIGNABLE',
      `Non-endpoint PCI device ${formatPciAddress(address)} cannot be detached`,
    );
  }
  return (await host.bindStub(address, stub)).changed;
}

export async function reattach(host: HostOps, leases: Leases, address: PciAddress): Promise<void> {
  await requireFree(host, leases, address, 'reattach');
  await host.rebindHostDriver(address);
}

export async function reset(host: HostOps, leases: Leases, address: PciAddress): Promise<void> {
  const facts = await requireFree(host, leases, address, 'reset');
  if (!facts.endpoint) {
    throw new PassthruError(
      'DEVICE_NOT_ASSIGNABLE',
      `Invalid attempt to reset PCI device ${formatPciAddress(address)}. Only PCI endpoint devices can be reset`,
    );
  }
  await host.reset(address);
}
