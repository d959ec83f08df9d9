import { PassthruError } from '../conf/error.ts';
import { formatPciAddress } from '../conf/pci-address.ts';
import type { AdminMac } from '../host/admin-macs.ts';
import type { HostUse } from '../host/host-use.ts';
import type { DeviceFacts } from './facts.ts';
import type { Holder } from './leases.ts';
import type { MacAddress } from '../conf/mac.ts';

/**
 * Two host-wide guards, pure over what the host was read to hold before the plan:
 *
 * - **The host's own path.** A device whose IOMMU group holds the netdev of a default route or
 *   a disk with a mounted filesystem is never taken from the host: not by a start, a hot-plug
 *   or nodedev-detach; only `nodedev-detach --force` does (then a start finds it on vfio-pci
 *   already and detaches nothing). VFIO needs the whole group, so a peer's use counts.
 * - **One MAC, one VF.** A guest MAC that is already the admin MAC of any VF of the host (set
 *   by passthru for another domain, or by anyone else) is refused, naming that VF: two VFs with
 *   one MAC split its traffic at the switch. The VF being prepared may already carry it.
 */
export interface HostView {
  /** PCI function -> why the host needs it (host/host-use.ts). */
  readonly hostUse: HostUse;
  /** Every VF admin MAC of the host (host/admin-macs.ts); read only when a request sets one. */
  readonly adminMacs: readonly AdminMac[];
}

export const EMPTY_VIEW: HostView = { hostUse: new Map(), adminMacs: [] };

/** Refuses to detach a device whose IOMMU group holds what the host needs. */
export function refuseHostUse(bdf: string, f: DeviceFacts, use: HostUse, force = false): void {
  if (force) return;
  const members = [bdf, ...f.groupPeers.map((p) => formatPciAddress(p.address))];
  const why = members.flatMap((m) =>
    (use.get(m) ?? []).map((w) => (m === bdf ? `it ${w}` : `${m} in its IOMMU group ${f.iommuGroup ?? '?'} ${w}`)),
  );
  if (why.length === 0) return;
  throw new PassthruError('DEVICE_IN_USE', `PCI device ${bdf} cannot be detached from the host: ${why.join('; ')}`, {
    hint: `move the host off it first; 'passthru nodedev-detach ${bdf} --force' detaches it regardless`,
  });
}

/** One use of a MAC a prepare would program: on which VF, through which PF netdev. */
export interface WantedMac {
  readonly mac: MacAddress;
  readonly alias: string;
  readonly address: string;
  readonly pfNetdev: string;
}

/** Refuses a MAC given twice in the request, or already the admin MAC of another VF. */
export function refuseDuplicateMacs(
  domain: string,
  wanted: readonly WantedMac[],
  adminMacs: readonly AdminMac[],
  holder: Holder,
): void {
  const seen = new Map<string, WantedMac>();
  for (const w of wanted) {
    const twin = seen.get(w.mac);
    if (twin) {
      throw new PassthruError(
        'XML_INVALID',
        `MAC ${w.mac} is given twice in domain ${domain} (${twin.alias} and ${w.alias}): one MAC can be on one VF only`,
      );
    }
    seen.set(w.mac, w);
    const other = adminMacs.find((a) => a.mac === w.mac && !(a.address === w.address && a.pfNetdev === w.pfNetdev));
    if (other === undefined) continue;
    const held = other.address === undefined ? undefined : holder(other.address);
    throw new PassthruError(
      'DEVICE_IN_USE',
      `${w.alias}: MAC ${w.mac} is already the admin MAC of VF ${other.vf} of PF ${other.pfNetdev} (${other.address ?? `PF ${other.pf}`})${held === undefined ? '' : `, held by domain ${held}`}: one MAC can be on one VF only`,
      {
        hint:
          held === undefined
            ? `give the guest another MAC, or clear it: ip link set ${other.pfNetdev} vf ${other.vf} mac 00:00:00:00:00:00`
            : 'give the guest another MAC',
      },
    );
  }
}
