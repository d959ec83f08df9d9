import { PassthruError } from '../conf/error.ts';
import { formatPciAddress, type PciAddress } from '../conf/pci-address.ts';
import { currentDriver } from './bind.ts';
import { readPciDevice } from './inventory.ts';
import type { Kernel } from './types.ts';

/**
 * The one reset path (nodedev-reset, and a device coming back from a guest: hostdev's
 * reset-device step), in libvirt's order (virPCIDeviceReset, src/util/virpci.c):
 *
 *   endpoints only -> nothing while bound to vfio-pci (or a vfio variant driver), which resets
 *   the device itself when QEMU releases it -> FLR (PCIe DevCap, or the AF capability) ->
 *   PM reset (D3hot -> D0, when the PM capability does not say No_Soft_Reset) -> secondary
 *   bus reset of the parent bridge.
 *
 * The reset is done by the kernel: the chosen method is written to `reset_method` (Linux >= 5.15,
 * Documentation/ABI/testing/sysfs-bus-pci), then `reset`, then `reset_method` back to
 * `default`; without `reset_method` the kernel's own order is the same for these methods. One
 * difference from libvirt: its bus reset writes the bridge's control register itself, with
 * other functions on the bus (their config saved and restored) as long as none is in use; the
 * kernel's `bus` method needs the function alone on a non-root bus (pci_parent_bus_reset), and
 * passthru asks the kernel.
 */
export type ResetMethod = 'flr' | 'af_flr' | 'pm' | 'bus';

export interface ResetFacts {
  readonly name: string;
  readonly endpoint: boolean;
  readonly driver: string | undefined;
  readonly flr: boolean;
  readonly afFlr: boolean;
  readonly pmReset: boolean;
  readonly bus: number;
  /** The other functions on its bus. */
  readonly busMates: number;
}

export type ResetChoice = { readonly method: ResetMethod } | { readonly skip: string };

export interface ResetResult {
  readonly reset: boolean;
  readonly method?: ResetMethod;
  /** Why nothing was done (bound to vfio-pci). */
  readonly why?: string;
}

const isVfio = (d: string | undefined): boolean =>
  d !== undefined && (d === 'vfio-pci' || d.endsWith('_vfio_pci') || d.endsWith('-vfio-pci'));

/** libvirt's choice, as a pure function; throws its errors. */
export function chooseReset(f: ResetFacts): ResetChoice {
  if (!f.endpoint) {
    throw new PassthruError(
      'OPERATION_INVALID',
      `Invalid attempt to reset PCI device ${f.name}. Only PCI endpoint devices can be reset`,
    );
  }
  if (isVfio(f.driver)) return { skip: `PCI device ${f.name} is bound to ${f.driver}, which resets it itself` };
  if (f.flr) return { method: 'flr' };
  if (f.afFlr) return { method: 'af_flr' };
  if (f.pmReset) return { method: 'pm' };
  if (f.bus !== 0 && f.busMates === 0) return { method: 'bus' };
  throw new PassthruError(
    'HOST_FAILED',
    `Unable to reset PCI device ${f.name}: no FLR, PM reset or bus reset available`,
    {
      errno: 'ENOTTY',
      hint:
        f.bus === 0
          ? 'a bus reset is not an option on the root bus'
          : `a bus reset needs it alone on bus ${f.bus.toString(16).padStart(2, '0')}`,
    },
  );
}

export async function resetFacts(kernel: Kernel, address: PciAddress): Promise<ResetFacts> {
  const dev = await readPciDevice(kernel.sysfs, address);
  const bus = dev.name.slice(0, -4); // DDDD:BB:
  const mates = (await kernel.sysfs.list('/sys/bus/pci/devices')).filter((n) => n.startsWith(bus) && n !== dev.name);
  return {
    name: dev.name,
    endpoint: dev.headerType === 'endpoint',
    driver: await currentDriver(kernel.sysfs, address),
    flr: dev.config?.pcie?.flr === true,
    afFlr: dev.config?.afFlr === true,
    pmReset: dev.config?.pmReset === true,
    bus: address.bus,
    busMates: mates.length,
  };
}

export async function resetDevice(kernel: Kernel, address: PciAddress): Promise<ResetResult> {
  const name = formatPciAddress(address);
  const choice = chooseReset(await resetFacts(kernel, address));
  if ('skip' in choice) return { reset: false, why: choice.skip };
  const dir = `/sys/bus/pci/devices/${name}`;
  const pick = await kernel.sysfs.exists(`${dir}/reset_method`);
  try {
    if (pick) await kernel.writeSysfs(`${dir}/reset_method`, choice.method);
    try {
      await kernel.writeSysfs(`${dir}/reset`, '1');
    } finally {
      if (pick) await kernel.writeSysfs(`${dir}/reset_method`, 'default');
    }
  } catch (err) {
    const errno = err instanceof PassthruError ? err.errno : undefined;
    throw new PassthruError(
      'HOST_FAILED',
      `Unable to reset PCI device ${name}: ${errno === 'ENOTTY' ? 'no FLR, PM reset or bus reset available' : (err as Error).message}`,
      { cause: err, ...(errno === undefined ? {} : { errno }) },
    );
  }
  return { reset: true, method: choice.method };
}
