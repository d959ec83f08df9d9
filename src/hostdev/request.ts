import type { DomainDef } from '../conf/domain/types.ts';
import type { MacAddress } from '../conf/mac.ts';
import type { PciAddress } from '../conf/pci-address.ts';
import type { Vlan } from '../conf/vlan.ts';

/** One host PCI device a domain asks for, whichever element it came from. */
export interface HostdevRequest {
  /** The device's alias in the live definition (hostdev0 ...): names it in errors and records. */
  readonly alias: string;
  readonly address: PciAddress;
  readonly managed: boolean;
  /** The vfio driver to bind: vfio-pci, or a variant driver named by `<driver model=.../>`. */
  readonly stub: string;
  /** For `<interface type='hostdev'>`: what to program on the VF through its PF. Plain
   *  `<hostdev>` never gets MAC/VLAN handling, as in libvirt (virHostdevIsPCINetDevice). */
  readonly net?: { readonly mac?: MacAddress; readonly vlan?: Vlan };
}

/** The host devices of a live definition (aliases assigned), in libvirt's order: interfaces of
 *  type hostdev are hostdevs too. */
export function hostdevRequests(def: DomainDef): HostdevRequest[] {
  const requests: HostdevRequest[] = [];
  def.devices.hostdevs.forEach((h, i) => {
    requests.push({
      alias: h.alias ?? `hostdev-${i}`,
      address: h.source.address,
      managed: h.source.managed,
      stub: h.source.driver?.model ?? 'vfio-pci',
    });
  });
  def.devices.interfaces.forEach((n, i) => {
    if (n.type !== 'hostdev') return;
    requests.push({
      alias: n.alias ?? `net-${i}`,
      address: n.source.address,
      managed: n.source.managed,
      stub: n.source.driver?.model ?? 'vfio-pci',
      net: { ...(n.mac ? { mac: n.mac } : {}), ...(n.vlan ? { vlan: n.vlan } : {}) },
    });
  });
  return requests;
}
