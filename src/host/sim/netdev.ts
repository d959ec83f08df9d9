import { PassthruError } from '../../conf/error.ts';
import type { HostNetdevs, HostNicBackend, HostNicRequest } from '../netdev.ts';
import type { Sysfs } from '../types.ts';

/**
 * The sim host has netdevs (its PFs' and VFs' in /sys/class/net) but no kernel to put a tap or
 * a macvtap on, so a bridged or direct NIC runs as QEMU's user-mode network instead: the guest
 * still gets the NIC with its model, MAC and MTU, with no host-side device (docs/nics.md). A
 * direct NIC's parent is checked against the sim's netdevs; the sim has no bridges, so a
 * bridge's name is not checked.
 */
export class SimNetdevs implements HostNetdevs {
  readonly backend = 'sim' as const;
  readonly #sysfs: Sysfs;

  constructor(sysfs: Sysfs) {
    this.#sysfs = sysfs;
  }

  async check(req: HostNicRequest): Promise<void> {
    if (req.kind !== 'macvtap') return;
    if (!(await this.#sysfs.list('/sys/class/net')).includes(req.parent)) {
      throw new PassthruError(
        'NO_DEVICE',
        `parent network device '${req.parent}' of a macvtap does not exist on this host`,
        { hint: "name an existing host netdev in <source dev> of <interface type='direct'>" },
      );
    }
  }

  async plug(req: HostNicRequest): Promise<HostNicBackend> {
    await this.check(req);
    return { kind: 'user' };
  }

  async unplug(): Promise<void> {
    // nothing was made on the host
  }
}
