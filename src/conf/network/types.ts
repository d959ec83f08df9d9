import type { HostdevDriver, VfAttributesDef, VirtualPortDef } from '../domain/types.ts';
import type { PciAddress } from '../pci-address.ts';
import type { Uuid } from '../uuid.ts';
import type { Vlan } from '../vlan.ts';

/**
 * A libvirt network definition in passthru's scope: pools of devices for guests' interfaces.
 * Forward modes hostdev (VFs by PCI address, from a PF, or by selectors) and hostdev-hybrid
 * ([seed]), and the macvtap modes bridge/private/vepa/passthrough (pools of netdevs).
 */
export interface NetworkDef {
  readonly name: string;
  readonly uuid?: Uuid;
  readonly trustGuestRxFilters?: boolean;
  /** The VF attributes beyond VLAN, virtualport and trust, for every VF the network gives
   *  (passthru: spoofCheck, `<link state>`, `<bandwidth>` as the VF's TX rates; libvirt refuses a
   *  `<bandwidth>` on a hostdev network). An interface's own, then its portgroup's, win. */
  readonly vf?: NetworkVfAttributes;
  readonly forward?: ForwardDef;
  /** `<bridge name=.../>` for forward mode bridge on an existing host bridge. */
  readonly bridge?: string;
  readonly vlan?: Vlan;
  readonly virtualport?: VirtualPortDef;
  readonly portgroups: readonly PortgroupDef[];
  readonly line?: number;
}

export type ForwardMode = 'hostdev' | 'hostdev-hybrid' | 'bridge' | 'private' | 'vepa' | 'passthrough';

export interface ForwardDef {
  readonly mode: ForwardMode;
  /** hostdev modes: bind VFs to vfio-pci at allocation (libvirt writes it always for hostdev). */
  readonly managed?: boolean;
  readonly driver?: HostdevDriver;
  /** libvirt allows one `<pf>`. */
  readonly pfs: readonly { readonly dev: string; readonly line?: number }[];
  readonly interfaces: readonly { readonly dev: string; readonly line?: number }[];
  readonly addresses: readonly (PciAddress & { readonly line?: number })[];
  /** [beyond] Kubernetes-device-plugin-like selectors; a device matching any one is in the pool. */
  readonly selectors: readonly DeviceSelector[];
  /** `<forward dev=...>`: libvirt writes the first pool netdev here. */
  readonly dev?: string;
  readonly line?: number;
}

/** All given fields must match. `pf` with VF ranges: `enp6s0f0#0,2-7` = VFs 0, 2..7 of that PF;
 *  the PF may be named by its netdev or by its PCI address (`0000:06:00.0#0-3`). */
export interface DeviceSelector {
  readonly vendor?: number;
  readonly device?: number;
  readonly driver?: string;
  readonly pf?: string;
  readonly vfs?: readonly (readonly [number, number])[];
  readonly numaNode?: number;
  /** [beyond] pool policy: tags given to every device this selector takes (`tags='migratable,fast'`). */
  readonly tags?: readonly string[];
  readonly line?: number;
}

export interface PortgroupDef {
  readonly name: string;
  readonly default?: boolean;
  readonly trustGuestRxFilters?: boolean;
  readonly vf?: NetworkVfAttributes;
  readonly vlan?: Vlan;
  readonly virtualport?: VirtualPortDef;
  readonly line?: number;
}

/** spoofCheck, link state and TX rates, as on `<interface type='hostdev'>`. */
export type NetworkVfAttributes = Pick<VfAttributesDef, 'spoofCheck' | 'linkState' | 'bandwidth'>;

export function isHostdevMode(mode: ForwardMode | undefined): boolean {
  return mode === 'hostdev' || mode === 'hostdev-hybrid';
}
