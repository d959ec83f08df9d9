import { PassthruError } from '../conf/error.ts';
import { formatPciAddress } from '../conf/pci-address.ts';
import type { DeviceFacts } from './facts.ts';
import type { Holder } from './leases.ts';
import type { HostdevRequest } from './request.ts';

/**
 * The rules of partial multifunction assignment [seed 004]. libvirt has no words for either
 * (its `<address type='unassigned'/>` is accepted anywhere, and an undeclared function surfaces
 * as QEMU's "group is not viable"), so passthru's say what is wrong and what to add:
 *
 * - When any function of a multifunction device is used, every function must be declared in the
 *   domain (this request or what the domain already holds), managed or not: the card is one
 *   unit of isolation, and half of it left to the host is a device shared with the guest.
 * - `assigned='no'` / `<address type='unassigned'/>` takes a function from the host without
 *   giving it to the guest; that only has a purpose for a function of a multifunction device,
 *   or for a member of the IOMMU group of another device of the request (VFIO takes the whole
 *   group: a switch without ACS puts functions of different slots in one). Anywhere else it is
 *   refused rather than silently detaching a device nobody uses.
 */
export function checkMultifunction(
  domain: string,
  wanted: ReadonlyMap<string, HostdevRequest>,
  facts: ReadonlyMap<string, DeviceFacts | undefined>,
  holder: Holder,
): void {
  const declared = (bdf: string): boolean => wanted.has(bdf) || holder(bdf) === domain;
  const slots = new Set<string>();
  for (const [bdf, r] of wanted) {
    const f = facts.get(bdf);
    if (!f) continue;
    const siblings = (f.slotFunctions ?? []).map(formatPciAddress);
    const partOfCard = f.vf === undefined && (siblings.length > 0 || f.multifunction === true);
    if (!r.assigned && !partOfCard && !f.groupPeers.some((p) => wanted.has(formatPciAddress(p.address)))) {
      throw new PassthruError(
        'XML_INVALID',
        `${r.alias}: PCI device ${bdf} is ${f.vf ? 'a VF' : 'a single-function device'} alone in its IOMMU group, so it cannot be unassigned (assigned='no' or <address type='unassigned'/>): that is only for a function of a multifunction device or a member of an assigned device's IOMMU group`,
        { hint: 'give it to the guest, or leave it out of the domain' },
      );
    }
    const slot = bdf.slice(0, -2);
    if (!partOfCard || slots.has(slot)) continue;
    slots.add(slot);
    const missing = siblings.filter((s) => !declared(s));
    if (missing.length > 0) {
      throw new PassthruError(
        'XML_INVALID',
        `PCI device ${slot}.x is a multifunction device: when one of its functions is used, every function must be declared (managed or not); domain ${domain} lacks ${missing.join(', ')}`,
        {
          hint: "add a <hostdev> for each missing function (with <address type='unassigned'/> for one the guest must not see)",
        },
      );
    }
  }
}
