import type { MacAddress } from '../mac.ts';
import type { PciAddress } from '../pci-address.ts';
import type { Uuid } from '../uuid.ts';
import type { Vlan } from '../vlan.ts';

/**
 * A libvirt domain definition, as far as passthru understands it. Plain data: parse.ts builds
 * it from XML, postparse.ts fills defaults, validate.ts checks whole-definition rules,
 * format.ts writes it back. Device kinds are discriminated unions.
 */
export interface DomainDef {
  readonly name: string;
  readonly uuid?: Uuid;
  /** KiB, as libvirt stores it whatever unit the XML used. */
  readonly memoryKiB: number;
  readonly vcpus: number;
  readonly os: OsDef;
  readonly devices: Devices;
}

export interface OsDef {
  readonly type: 'hvm';
  readonly arch?: string;
  readonly machine?: string;
  readonly kernel?: string;
  readonly initrd?: string;
  readonly cmdline?: string;
}

export interface Devices {
  readonly emulator?: string;
  readonly controllers: readonly ControllerDef[];
  /** Plain `<hostdev>` elements. `<interface type='hostdev'>` carries its own hostdev part and is
   *  not repeated here (unlike libvirt's shared pointer, which is a C memory trick). */
  readonly hostdevs: readonly HostdevDef[];
  readonly interfaces: readonly InterfaceDef[];
  readonly serials: readonly CharDevDef[];
  readonly consoles: readonly CharDevDef[];
}

/** Where a device sits in the guest. `unassigned`: taken from the host, given no guest device. */
export type GuestAddress =
  | ({ readonly type: 'pci'; readonly multifunction?: boolean } & PciAddress)
  | { readonly type: 'unassigned' };

export interface ControllerDef {
  readonly type: 'pci';
  readonly index: number;
  readonly model: 'pcie-root' | 'pcie-root-port' | 'pci-root' | 'pci-bridge';
  readonly address?: GuestAddress;
  readonly alias?: string;
}

/** The host side of a PCI host device, shared by `<hostdev>` and `<interface type='hostdev'>`. */
export interface PciHostdevSource {
  readonly managed: boolean;
  readonly address: PciAddress;
}

export interface HostdevDef {
  readonly mode: 'subsystem';
  readonly type: 'pci';
  readonly source: PciHostdevSource;
  readonly guestAddress?: GuestAddress;
  readonly alias?: string;
}

interface InterfaceCommon {
  readonly mac?: MacAddress;
  readonly guestAddress?: GuestAddress;
  readonly alias?: string;
}

export interface HostdevInterfaceDef extends InterfaceCommon {
  readonly type: 'hostdev';
  readonly source: PciHostdevSource;
  readonly vlan?: Vlan;
}

export interface UserInterfaceDef extends InterfaceCommon {
  readonly type: 'user';
  readonly model?: string;
}

export type InterfaceDef = HostdevInterfaceDef | UserInterfaceDef;

export interface CharDevDef {
  readonly type: 'file' | 'pty' | 'null';
  readonly path?: string;
  readonly targetPort?: number;
  /** console only: serial | virtio */
  readonly targetType?: string;
}
