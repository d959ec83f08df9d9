import type { DomainDef } from '../conf/domain/types.ts';
import type { MacAddress } from '../conf/mac.ts';
import type { PciAddress } from '../conf/pci-address.ts';
import type { Vlan } from '../conf/vlan.ts';

/** One host PCI device a domain asks for, whichever element it came from. */
export interface HostdevRequest {
  /** The device's alias in the live definition (hostdev0 ...): with the domain, the key of its
   *  record and lease. */
  readonly alias: string;
  readonly address: PciAddress;
  readonly managed: boolean;
  /** The vfio driver to bind: vfio-pci, or a variant driver named by `<driver model=.../>`. */
  readonly stub: string;
  /** false for `assigned='no'` / `<address type='unassigned'/>`: detached and leased, but QEMU
   *  gets no device for it (so prepare returns no presentation). */
  readonly assigned: boolean;
  /** For an interface of type hostdev (or a network's VF): what to program on the VF through its
   *  PF. Plain `<hostdev>` never gets it, as in libvirt (virHostdevIsPCINetDevice). */
  readonly net?: VfNetConfig;
}

/**
 * What a domain asks to be programmed on its VF, in the host's terms (IFLA_VF_* through the PF).
 * conf fills it from the definition's vocabulary; every field left out is left as the VF has it,
 * except the VLAN, which is cleared when absent (libvirt's setVlan). Release restores every
 * field that was set, from the row saved before.
 */
export interface VfNetConfig {
  /** The admin MAC the guest's VF driver will take. */
  readonly mac?: MacAddress;
  /** `<vlan>`: one tag only (SR-IOV has no trunks; the planner refuses the rest). */
  readonly vlan?: Vlan;
  /** IFLA_VF_VLAN_LIST's qos (0..7) and protocol for that tag. */
  readonly vlanQos?: number;
  readonly vlanProto?: '802.1Q' | '802.1ad';
  readonly spoofchk?: boolean;
  readonly trust?: boolean;
  readonly linkState?: 'auto' | 'enable' | 'disable';
  /** IFLA_VF_RATE, Mbit/s; 0 = no limit. */
  readonly rate?: { readonly minTx: number; readonly maxTx: number };
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
      assigned: h.assigned !== false && h.guestAddress?.type !== 'unassigned',
    });
  });
  def.devices.interfaces.forEach((n, i) => {
    if (n.type === 'network' && n.actual) {
      // A VF a hostdev network gave: its settings are the merged ones the network put in <actual>.
      const a = n.actual;
      requests.push({
        alias: n.alias ?? `net-${i}`,
        address: a.source.address,
        managed: a.source.managed,
        stub: a.source.driver?.model ?? 'vfio-pci',
        assigned: true,
        net: {
          ...(n.mac ? { mac: n.mac } : {}),
          ...(a.vlan ? { vlan: a.vlan } : {}),
          ...(a.trustGuestRxFilters === undefined ? {} : { trust: a.trustGuestRxFilters }),
        },
      });
      return;
    }
    if (n.type !== 'hostdev') return;
    requests.push({
      alias: n.alias ?? `net-${i}`,
      address: n.source.address,
      managed: n.source.managed,
      stub: n.source.driver?.model ?? 'vfio-pci',
      assigned: true,
      net: { ...(n.mac ? { mac: n.mac } : {}), ...(n.vlan ? { vlan: n.vlan } : {}) },
    });
  });
  return requests;
}
