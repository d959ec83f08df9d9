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

/** A device of a hot-plug: a `<hostdev>` or an `<interface>`. */
export type PluggedDevice = HostdevDef | InterfaceDef;

/**
 * Places the devices a hot-plug adds (`withNew` is the live definition with them appended, as
 * read): aliases first, then guest addresses. `unit` devices are the functions of one host
 * multifunction device and share one guest slot: the lowest host function is guest function 0
 * (multifunction='on' when there are more), the others follow in host order. Other devices each
 * take their own free root port (q35) or slot (i440fx), as planHotplug.
 */
export function planHotplugDevices(
  live: DomainDef,
  withNew: DomainDef,
  unit: boolean,
): { readonly def: DomainDef; readonly added: readonly PluggedDevice[] } {
  const named = assignAliases(withNew);
  const nIfaces = live.devices.interfaces.length;
  const nHostdevs = live.devices.hostdevs.length;
  const taken = new Set([...live.devices.interfaces, ...live.devices.hostdevs].map((d) => d.alias));
  const added = [...named.devices.interfaces.slice(nIfaces), ...named.devices.hostdevs.slice(nHostdevs)];
  for (const d of added) {
    if (taken.has(d.alias)) {
      throw new PassthruError(
        'OPERATION_INVALID',
        `domain ${live.name} already has a device with alias ${d.alias ?? ''}`,
      );
    }
  }
  const placed = new Map<PluggedDevice, GuestAddress>();
  let current = live;
  const assignedOnes = added.filter((d) => d.guestAddress?.type !== 'unassigned' && !('assigned' in d && !d.assigned));
  if (unit && assignedOnes.length > 0) {
    const ordered = [...assignedOnes].sort((a, b) => hostFunction(a) - hostFunction(b));
    const first = ordered[0];
    const base = first === undefined ? undefined : hotplugAddress(live, first.alias ?? '', first.guestAddress);
    if (base?.type === 'pci') {
      ordered.forEach((d, i) => {
        placed.set(d, { ...base, function: i, ...(i === 0 && ordered.length > 1 ? { multifunction: true } : {}) });
      });
    }
  } else {
    for (const d of assignedOnes) {
      const at = hotplugAddress(current, d.alias ?? '', d.guestAddress);
      placed.set(d, at);
      current = withDevice(current, { ...d, guestAddress: at });
    }
  }
  const put = <T extends PluggedDevice>(d: T): T => {
    const at = placed.get(d);
    return at === undefined ? d : { ...d, guestAddress: at };
  };
  const def: DomainDef = {
    ...named,
    devices: {
      ...named.devices,
      interfaces: named.devices.interfaces.map((d, i) => (i < nIfaces ? d : put(d))),
      hostdevs: named.devices.hostdevs.map((d, i) => (i < nHostdevs ? d : put(d))),
    },
  };
  return {
    def,
    added: [...def.devices.interfaces.slice(nIfaces), ...def.devices.hostdevs.slice(nHostdevs)],
  };
}

function isHostdev(d: PluggedDevice): d is HostdevDef {
  return 'mode' in d && d.type === 'pci';
}

function hostFunction(d: PluggedDevice): number {
  if (isHostdev(d)) return d.source.address.function;
  return d.type === 'hostdev' || d.type === 'hostdev-hybrid' ? d.source.address.function : 0;
}

function withDevice(def: DomainDef, d: PluggedDevice): DomainDef {
  return isHostdev(d)
    ? { ...def, devices: { ...def.devices, hostdevs: [...def.devices.hostdevs, d] } }
    : { ...def, devices: { ...def.devices, interfaces: [...def.devices.interfaces, d] } };
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
