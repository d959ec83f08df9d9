import { PassthruError } from '../conf/error.ts';
import { type MacAddress, parseMac, ZERO_MAC } from '../conf/mac.ts';
import { formatPciAddress, type PciAddress } from '../conf/pci-address.ts';
import { readAdminMacs } from './admin-macs.ts';
import { readPciDevice } from './inventory.ts';
import type { Kernel } from './types.ts';
import { applyVfSettings } from './vf-apply.ts';

/**
 * Where the PF's embedded switch delivers a guest MAC's frames: to a VF (`vf3`: the VF's MAC
 * filter holds it), to the standby path (`standby`: the PF's own filters, where the virtio
 * standby's macvtap in bridge mode registered the MAC), or nowhere on this host.
 */
export type SteerTarget = `vf${number}` | 'standby' | 'none';

/** Where the datapath is moved to, by the host's own means: the sim's switch model
 *  (host/sim/switch.ts) or a real PF's VF admin MAC (adminMacDatapath below). */
export interface Datapath {
  /** Steers `mac` on the switch of the PF of `vf`: to the VF itself, to the standby path, or
   *  nowhere (the guest left this host). */
  steer(vf: PciAddress, mac: string, to: 'vf' | 'standby' | 'none', reason: string): Promise<SteerTarget>;
}

/** What the datapath did, for the log: the MAC written on the VF, when it is not what was asked
 *  (a driver that refuses an all-zero MAC gets 02:00:00:00:00:00, libvirt's "almost zero"). */
export interface SteerNote {
  readonly vf: string;
  readonly pfNetdev: string;
  readonly index: number;
  readonly to: SteerTarget;
  readonly wrote: MacAddress;
  readonly asked: MacAddress;
}

/** The VF's PF netdev (the uplink port, lowest dev_port, as the device manager programs) and
 *  its index in that PF's VF table. */
async function vfRow(kernel: Kernel, vf: PciAddress): Promise<{ pfNetdev: string; index: number }> {
  const dev = await readPciDevice(kernel.sysfs, vf);
  if (!dev.physfn) throw new PassthruError('DEVICE_NOT_ASSIGNABLE', `${dev.name} is not a VF: no switch steers to it`);
  const pf = await readPciDevice(kernel.sysfs, dev.physfn.pf);
  const port = [...pf.netdevs].filter((n) => !n.representor).sort((a, b) => a.devPort - b.devPort)[0];
  if (!port) {
    throw new PassthruError(
      'HOST_FAILED',
      `PF ${pf.name} of VF ${dev.name} has no netdev: its VF table cannot be written`,
    );
  }
  return { pfNetdev: port.name, index: dev.physfn.index };
}

/**
 * The datapath of a PF in legacy SR-IOV mode: the VF's admin MAC is the switch's filter.
 *
 * - `vf`: the admin MAC becomes the guest MAC, so the PF's switch delivers its frames to the VF
 *   (with or without a driver on it). Refused, changing nothing, when another VF of the host
 *   carries the MAC: two VFs with one MAC split its traffic (hostdev/guards.ts's rule).
 * - `standby` / `none`: the admin MAC is removed (all-zero; a driver that refuses it, mlx4, gets
 *   02:00:00:00:00:00 as libvirt writes), so the PF delivers the MAC to its own filters, where
 *   the standby's macvtap in bridge mode has registered it.
 *
 * The device manager still owns the VF: its journal holds the row saved before it was
 * programmed, and release writes that row back whatever the datapath did in between (undo of
 * set-vf-config writes the saved MAC unconditionally), so a crash at any moment stays
 * recoverable. The writes go through the kernel the daemon was given (audited).
 */
export function adminMacDatapath(kernel: Kernel, note?: (n: SteerNote) => void): Datapath {
  return {
    steer: async (vf, macText, to, reason) => {
      const mac = parseMac(macText);
      const { pfNetdev, index } = await vfRow(kernel, vf);
      const bdf = formatPciAddress(vf);
      const target: SteerTarget = to === 'vf' ? `vf${index}` : to;
      const asked = to === 'vf' ? mac : ZERO_MAC;
      if (to === 'vf') {
        const other = (await readAdminMacs(kernel)).find(
          (a) => a.mac === mac && !(a.pfNetdev === pfNetdev && a.vf === index),
        );
        if (other) {
          throw new PassthruError(
            'DEVICE_IN_USE',
            `MAC ${mac} is already the admin MAC of VF ${other.vf} of PF ${other.pfNetdev} (${other.address ?? `PF ${other.pf}`}): the datapath (${reason}) leaves it off VF ${index} of PF ${pfNetdev} (${bdf}), one MAC can be on one VF only`,
          );
        }
      } else {
        // Only the guest's MAC is taken off: a VF that carries another one is not ours to clear.
        const row = (await kernel.vfTable(pfNetdev)).find((r) => r.vf === index);
        if (row && row.mac !== mac) return target;
      }
      const written = await applyVfSettings(kernel, pfNetdev, index, { mac: asked });
      note?.({ vf: bdf, pfNetdev, index, to: target, wrote: written.mac ?? asked, asked });
      return target;
    },
  };
}
