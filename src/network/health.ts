import { formatPciAddress } from '../conf/pci-address.ts';
import type { HostView, Member } from './members.ts';

/** What a free member must look like to be handed out. */
export interface HealthRules {
  /** managed pools bind the stub themselves, so a free member must NOT be on a vfio driver
   *  (someone else detached it); unmanaged ones need it already bound to the stub. */
  readonly managed: boolean;
  /** vfio-pci, or the variant driver named by the pool's `<driver model>`. */
  readonly stub: string;
}

const VFIO = /^vfio(-pci|_pci)?$|-vfio-pci$|_vfio_pci$/;

/**
 * The health check before a member is handed out: present on the host, on the expected driver,
 * and for a VF of a network PF, the PF's link up (a VF behind a down uplink passes no traffic,
 * and the guest would only see a dead NIC). Undefined when healthy, else the reason, in words
 * that name the device.
 */
export function memberProblem(m: Member, view: HostView, rules: HealthRules): string | undefined {
  const what = m.vf ? `VF ${m.bdf}` : `device ${m.bdf}`;
  if (!m.present) return `${what} is not present on the host`;
  const driver = m.driver;
  if (rules.managed) {
    if (driver !== undefined && (driver === rules.stub || VFIO.test(driver)))
      return `${what} is bound to ${driver} outside the pool (nodedev-detach?)`;
  } else if (driver !== rules.stub) {
    return `${what} is on driver ${driver ?? '(none)'}, not ${rules.stub} (an unmanaged pool takes devices already detached)`;
  }
  if (m.vf) {
    const pf = view.byBdf.get(formatPciAddress(m.vf.pf));
    const uplink = pf?.netdevs.find((n) => n.name === m.vf?.pfNetdev);
    // A PF without netdevs (an NVMe or GPU PF) has no link to be down.
    if (uplink?.operstate !== undefined && uplink.operstate !== 'up')
      return `${what}: the link of its PF ${uplink.name} is ${uplink.operstate}`;
  }
  return undefined;
}
