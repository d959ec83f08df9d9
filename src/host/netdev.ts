import { closeSync } from 'node:fs';
import type { MacAddress } from '../conf/mac.ts';

/** macvtap's modes, in libvirt's words (`<source mode=...>`). */
export type MacvtapMode = 'vepa' | 'bridge' | 'private' | 'passthrough';

/**
 * A host-side network device that backs a guest NIC QEMU emulates: a tap on a Linux bridge
 * (`<interface type='bridge'>`) or a macvtap on a host netdev (`<interface type='direct'>`,
 * and the standby of hostdev-hybrid). `name` is `<target dev>` when the definition gives one,
 * else the backend picks libvirt's next free `vnetN` / `macvtapN`.
 */
export type HostNicRequest =
  | {
      readonly kind: 'tap';
      readonly bridge: string;
      readonly name?: string;
      readonly mac: MacAddress;
      readonly mtu?: number;
      /** An unprivileged QEMU (--qemu-user) attaches to the tap by name: it must own it. */
      readonly owner?: { readonly uid: number; readonly gid: number };
    }
  | {
      readonly kind: 'macvtap';
      readonly parent: string;
      readonly mode: MacvtapMode;
      readonly name?: string;
      readonly mac: MacAddress;
      readonly mtu?: number;
    };

/**
 * What QEMU is given for it. `tap`: the host device `name`, opened by QEMU by name (`ifname`,
 * a tap passthru made persistent) or, when `fd` is set, an open descriptor of it that the
 * daemon passes to QEMU (a macvtap's /dev/tapN; the caller closes it once QEMU has its copy).
 * `user`: the sim host has no netdevs to plug into; QEMU's user-mode network stands in.
 */
export type HostNicBackend =
  | { readonly kind: 'tap'; readonly name: string; readonly fd?: number }
  | { readonly kind: 'user' };

export interface HostNetdevs {
  readonly backend: 'linux' | 'sim';
  /** Refuses a bridge or parent netdev the host does not have (NO_DEVICE), touching nothing. */
  check(req: HostNicRequest): Promise<void>;
  /** Creates the device (MAC, MTU, bridge port, link up) and says how QEMU gets it. */
  plug(req: HostNicRequest): Promise<HostNicBackend>;
  /** Removes a device plug made; one already gone is not an error. */
  unplug(name: string): Promise<void>;
}

/** libvirt gives the host end of a tap the guest's MAC with 0xFE first, so that a bridge (which
 *  takes the lowest MAC of its ports) never takes the guest's address (virNetDevTapCreate...). */
export function tapHostMac(guest: MacAddress): MacAddress {
  return `fe${guest.slice(2)}` as MacAddress;
}

/** Closes descriptors handed to QEMU (it holds its own copies once spawned). */
export function closeFds(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}
