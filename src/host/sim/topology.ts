import type { PciAddress } from '../../conf/pci-address.ts';
import type { Profile, ProfileDevice, ProfileSriov } from './profile.ts';
import { bdf } from './tree.ts';

/** A profile device with its place in the tree: address, sys/devices directory, parent bridge. */
export interface PlacedDevice {
  readonly address: PciAddress;
  readonly dir: string;
  readonly spec: ProfileDevice;
  readonly parent?: PciAddress;
}

export const HOST_BRIDGE_DIR = 'sys/devices/pci0000:00';

/** Walks the profile in depth-first order (the order the kernel enumerates the bus). */
export function placeDevices(profile: Profile): PlacedDevice[] {
  const out: PlacedDevice[] = [];
  const walk = (devices: readonly ProfileDevice[], bus: number, dir: string, parent?: PciAddress): void => {
    for (const spec of devices) {
      const address = { domain: 0, bus, slot: spec.slot, function: spec.function };
      const here = `${dir}/${bdf(address)}`;
      out.push({ address, dir: here, spec, ...(parent === undefined ? {} : { parent }) });
      if (spec.children && spec.secondaryBus !== undefined) walk(spec.children, spec.secondaryBus, here, address);
    }
  };
  walk(profile.devices, 0, HOST_BRIDGE_DIR);
  return out;
}

export function placedByAddress(profile: Profile): Map<string, PlacedDevice> {
  return new Map(placeDevices(profile).map((p) => [bdf(p.address), p]));
}

/** VF n's address: routing ID = PF RID + offset + n * stride (PCIe SR-IOV spec; may cross into
 *  the next bus). */
export function vfAddress(pf: PciAddress, sriov: Pick<ProfileSriov, 'offset' | 'stride'>, index: number): PciAddress {
  const rid = (pf.bus << 8) + (pf.slot << 3) + pf.function + sriov.offset + index * sriov.stride;
  return { domain: pf.domain, bus: (rid >> 8) & 0xff, slot: (rid >> 3) & 0x1f, function: rid & 7 };
}

/** The highest bus number a bridge's subtree uses, for its subordinate bus register. */
export function subordinateBus(spec: ProfileDevice): number {
  let max = spec.secondaryBus ?? 0;
  for (const c of spec.children ?? []) {
    max = Math.max(max, subordinateBus(c));
    if (c.sriov) {
      const last = vfAddress(
        { domain: 0, bus: spec.secondaryBus ?? 0, slot: c.slot, function: c.function },
        c.sriov,
        c.sriov.totalVfs - 1,
      );
      max = Math.max(max, last.bus);
    }
  }
  return max;
}
