import { PassthruError } from '../conf/error.ts';
import { formatPciAddress, type PciAddress } from '../conf/pci-address.ts';
import { type DeviceFacts, type HostOps, isVfioDriver } from './facts.ts';
import { refuseHostUse } from './guards.ts';
import type { Holder } from './leases.ts';

/**
 * The node-device operations (virsh nodedev-detach / -reattach / -reset, nodedev-sriov): each
 * refused while a domain holds the device (libvirt's virHostdevPCINodeDevice* in-use check).
 * The manager runs them in its queue, so they never race a domain's prepare or release, and
 * journals what detach changed so that reattach after a daemon restart still knows it.
 */
export async function requireFree(
  host: HostOps,
  holder: Holder,
  address: PciAddress,
  verb: string,
): Promise<DeviceFacts> {
  const bdf = formatPciAddress(address);
  const facts = await host.facts(address);
  if (!facts) throw new PassthruError('NO_DEVICE', `PCI device ${bdf} does not exist on this host`);
  const domain = holder(bdf);
  if (domain !== undefined) {
    throw new PassthruError('DEVICE_IN_USE', `cannot ${verb} PCI device ${bdf}: it is in use by domain ${domain}`);
  }
  return facts;
}

/** nodedev-detach; `force` takes a device the host itself needs (its group holds the default
 *  route's netdev or a mounted disk), which is refused otherwise (guards.ts). */
export async function detach(
  host: HostOps,
  holder: Holder,
  address: PciAddress,
  stub: string,
  force = false,
): Promise<{ changed: boolean; previousDriver?: string }> {
  const facts = await requireFree(host, holder, address, 'detach');
  if (!facts.endpoint) {
    throw new PassthruError(
      'DEVICE_NOT_ASSIGNABLE',
      `Non-endpoint PCI device ${formatPciAddress(address)} cannot be detached`,
    );
  }
  if (!isVfioDriver(facts.driver)) refuseHostUse(formatPciAddress(address), facts, await host.hostUse(), force);
  return host.bindStub(address, stub);
}

export async function reattach(
  host: HostOps,
  holder: Holder,
  address: PciAddress,
  previousDriver: string | undefined,
): Promise<void> {
  await requireFree(host, holder, address, 'reattach');
  await host.rebindHostDriver(address, previousDriver);
}

export async function reset(host: HostOps, holder: Holder, address: PciAddress): Promise<void> {
  const facts = await requireFree(host, holder, address, 'reset');
  if (!facts.endpoint) {
    throw new PassthruError(
      'DEVICE_NOT_ASSIGNABLE',
      `Invalid attempt to reset PCI device ${formatPciAddress(address)}. Only PCI endpoint devices can be reset`,
    );
  }
  await host.reset(address);
}
