import type { DomainDef, GuestAddress, HostdevDef, InterfaceDef } from '../conf/domain/types.ts';
import { PassthruError } from '../conf/error.ts';
import { formatPciAddress } from '../conf/pci-address.ts';
import { machineFamily, occupiedSlots } from './addresses.ts';
import { assignAliases } from './aliases.ts';
import type { DeviceProps } from './device-props.ts';
import type { QmpClient } from './qmp.ts';

/**
 * Hot-plug of one device into a running domain. Unlike a start, nothing can be added to the
 * machine's PCI topology while it runs (pcie.0 takes no hot-plugged root ports), so a device
 * goes onto a free pcie-root-port that the live definition already has — the spare that
 * prepareLiveDef keeps, or those the user defined. The QEMU properties come from the same
 * builder as the command line (device-props.ts).
 */
export function planHotplug(live: DomainDef, dev: HostdevDef): HostdevDef;
export function planHotplug(live: DomainDef, dev: InterfaceDef): InterfaceDef;
export function planHotplug(live: DomainDef, dev: HostdevDef | InterfaceDef): HostdevDef | InterfaceDef {
  const isHostdev = 'mode' in dev && dev.type === 'pci';
  const probe = assignAliases({
    ...live,
    devices: isHostdev
      ? { ...live.devices, hostdevs: [...live.devices.hostdevs, dev] }
      : { ...live.devices, interfaces: [...live.devices.interfaces, dev] },
  });
  const named = (isHostdev ? probe.devices.hostdevs.at(-1) : probe.devices.interfaces.at(-1)) ?? dev;
  const alias = named.alias ?? '';
  if ([...live.devices.interfaces, ...live.devices.hostdevs].some((d) => d.alias === alias)) {
    throw new PassthruError('OPERATION_INVALID', `domain ${live.name} already has a device with alias ${alias}`);
  }
  if (named.guestAddress?.type === 'unassigned') return named;
  return { ...named, guestAddress: hotplugAddress(live, alias, named.guestAddress) };
}

function hotplugAddress(live: DomainDef, alias: string, wanted: GuestAddress | undefined): GuestAddress {
  const used = occupiedSlots(live);
  if (wanted?.type === 'pci') {
    const bus = live.devices.controllers.find((c) => c.type === 'pci' && c.index === wanted.bus);
    if (bus === undefined || used.isUsed(wanted)) {
      const why = bus === undefined ? `no PCI controller has index ${wanted.bus}` : 'it is in use';
      throw new PassthruError('OPERATION_INVALID', `cannot hot-plug ${alias} at ${formatPciAddress(wanted)}: ${why}`);
    }
    return wanted;
  }
  if (machineFamily(live) === 'i440fx') {
    for (let slot = 2; slot < 32; slot++) {
      if (used.functionsUsed(0, slot) === 0) return { type: 'pci', domain: 0, bus: 0, slot, function: 0 };
    }
  } else {
    const port = live.devices.controllers
      .filter((c) => c.type === 'pci' && c.model === 'pcie-root-port' && c.target?.hotplug !== false)
      .sort((a, b) => a.index - b.index)
      .find((c) => !used.isUsed({ bus: c.index, slot: 0, function: 0 }));
    if (port) return { type: 'pci', domain: 0, bus: port.index, slot: 0, function: 0 };
  }
  throw new PassthruError('OPERATION_INVALID', `no free PCI slot for hot-plugging ${alias} into domain ${live.name}`, {
    hint: "define spare root ports while the domain is off: <controller type='pci' model='pcie-root-port'/>",
  });
}

/** device_add with the boot-time properties. */
export async function hotplugDevice(qmp: QmpClient, props: DeviceProps, timeoutMs?: number): Promise<void> {
  await qmp.execute('device_add', props, timeoutMs);
}

/**
 * device_del, then DEVICE_DELETED: QEMU only asks the guest to let go (PCIe native hot-plug,
 * attention button), so the device is gone — and the host may reset or rebind it — only when
 * the event says so. A guest that never answers leaves a TIMEOUT, and the device still plugged.
 */
export async function unplugDevice(qmp: QmpClient, alias: string, timeoutMs = 30_000): Promise<void> {
  const deleted = qmp.waitForEvent('DEVICE_DELETED', (ev) => ev.data['device'] === alias, timeoutMs);
  try {
    await qmp.execute('device_del', { id: alias });
  } catch (err) {
    deleted.catch(() => undefined);
    throw err;
  }
  try {
    await deleted;
  } catch (err) {
    if (err instanceof PassthruError && err.code === 'TIMEOUT') {
      throw new PassthruError('TIMEOUT', `the guest did not release ${alias} within ${timeoutMs} ms`, {
        hint: 'the guest OS must support PCIe hot-plug (pciehp); the device is still attached',
        cause: err,
      });
    }
    throw err;
  }
}
