import type { MacAddress } from '../mac.ts';
import type { PciAddress } from '../pci-address.ts';

/**
 * A libvirt node device (`virsh nodedev-dumpxml`), as far as passthru reports host devices: the
 * `pci` capability of a PCI function and the `net` capability of a netdev. Plain data; the
 * host room builds it from the inventory, format.ts writes libvirt's XML.
 */
export interface NodeDeviceDef {
  /** pci_0000_06_10_2, net_enp6s0f0_3c_fd_fe_a0_06_00 */
  readonly name: string;
  /** The sysfs path libvirt prints as <path>; optional. */
  readonly path?: string;
  /** The parent's node-device name ('computer' for a root-bus function). */
  readonly parent?: string;
  readonly driver?: string;
  readonly caps: readonly NodeDeviceCap[];
}

export type NodeDeviceCap = PciCap | NetCap;

/** The address numbers as libvirt stores them: plain integers (its own tests carry a bus of
 *  4294967295), so a read document is written back unchanged. */
export interface PciCapAddress {
  readonly domain: number;
  readonly bus: number;
  readonly slot: number;
  readonly function: number;
}

export interface PciCap {
  readonly type: 'pci';
  readonly class?: number;
  readonly address: PciCapAddress;
  readonly product: { readonly id: number; readonly name?: string };
  readonly vendor: { readonly id: number; readonly name?: string };
  /** Set on a VF. */
  readonly physFunction?: PciAddress;
  /** Set on a PF (maxCount = sriov_totalvfs). */
  readonly virtFunctions?: { readonly maxCount?: number; readonly addresses: readonly PciAddress[] };
  /** Written only for bridges: libvirt leaves the endpoint header type out. */
  readonly headerType?: 'pci-bridge' | 'cardbus-bridge';
  readonly iommuGroup?: { readonly number: number; readonly addresses: readonly PciAddress[] };
  readonly numaNode?: number;
  readonly pciExpress?: { readonly links: readonly PcieLinkDef[] };
}

export interface PcieLinkDef {
  readonly validity: 'cap' | 'sta';
  readonly port?: number;
  /** GT/s as libvirt prints it: '2.5', '5', '8', '16' ... */
  readonly speed?: string;
  readonly width?: number;
}

export interface NetCap {
  readonly type: 'net';
  readonly interface: string;
  readonly address?: MacAddress;
  readonly link?: { readonly speed?: number; readonly state?: string };
  readonly features: readonly string[];
  readonly subCapability?: '80203' | '80211';
}

/** libvirt's node-device name of a netdev: net_<ifname>_<mac with underscores>. */
export function netNodeDeviceName(ifname: string, mac: MacAddress | undefined): string {
  return mac === undefined ? `net_${ifname}` : `net_${ifname}_${mac.replaceAll(':', '_')}`;
}
