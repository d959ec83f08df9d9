import type { PciAddress } from '../conf/pci-address.ts';
import type { AdminMac } from '../host/admin-macs.ts';
import type { HostUse } from '../host/host-use.ts';
import type { ResetResult } from '../host/reset.ts';
import type { DevicePresentation, VfConfig, VfPortProfile, VfSettings } from '../host/types.ts';

/** What the device manager needs to know about a PCI function to plan its assignment. */
export interface DeviceFacts {
  readonly address: PciAddress;
  /** Header type 0. Bridges and cardbus are never assignable. */
  readonly endpoint: boolean;
  readonly driver: string | undefined;
  readonly iommuGroup: number | undefined;
  /** The other functions of its IOMMU group (itself excluded). */
  readonly groupPeers: readonly {
    readonly address: PciAddress;
    readonly driver: string | undefined;
    readonly endpoint: boolean;
  }[];
  /** Set when the function is an SR-IOV VF. */
  readonly vf: VfFacts | undefined;
  /** The other functions of its PCI slot (VFs aside): the rest of a multifunction device. */
  readonly slotFunctions?: readonly PciAddress[];
  /** The header's multifunction bit. */
  readonly multifunction?: boolean;
}

export interface VfFacts {
  readonly pf: PciAddress;
  /** The PF's uplink netdev (its first port). */
  readonly pfNetdev: string | undefined;
  readonly index: number;
  /** The PF's driver: what it can set on a VF is host/vf-caps.ts's vfCapabilities(pfDriver). */
  readonly pfDriver?: string | undefined;
  /** Whether the PF's netdevs are up (IFF_UP), by name. */
  readonly pfUp?: Readonly<Record<string, boolean | undefined>>;
  /** The PF's ports (uplink netdevs, not switchdev representors) by dev_port: port N of a
   *  `<netdev port='N'>` is the one with devPort N-1. */
  readonly pfPorts?: readonly { readonly name: string; readonly devPort: number }[];
}

/** The host operations the device manager performs; host/ implements them for both backends. */
export interface HostOps {
  facts(address: PciAddress): Promise<DeviceFacts | undefined>;
  /** What the host itself needs of its PCI functions: default routes, mounted disks. */
  hostUse(): Promise<HostUse>;
  /** Every VF admin MAC of the host, by whoever set it. */
  adminMacs(): Promise<AdminMac[]>;
  vfRow(pfNetdev: string, vf: number): Promise<VfConfig | undefined>;
  setVf(pfNetdev: string, vf: number, settings: VfSettings): Promise<void>;
  /** 802.1Qbh/802.1Qbg: (pre)associate the VF's port and wait for the switch's answer; a
   *  refusal leaves the port as it was (host/port-profile.ts). */
  associatePort(pfNetdev: string, vf: number, profile: VfPortProfile, incoming: boolean): Promise<void>;
  disassociatePort(pfNetdev: string, vf: number, profile: VfPortProfile): Promise<void>;
  bindStub(address: PciAddress, stub: string): Promise<{ changed: boolean; previousDriver?: string }>;
  /** Back to `hostDriver` (the one it had before) when given, else whatever the kernel probes. */
  rebindHostDriver(address: PciAddress, hostDriver?: string): Promise<void>;
  /** nodedev-check: the whole IOMMU group, who holds it and what the host does with it. */
  check(address: PciAddress, holder: (bdf: string) => string | undefined): Promise<AssignabilityReport>;
  /** Function reset in libvirt's order (FLR, PM, bus reset), done by the kernel; nothing for a
   *  device on vfio-pci, which resets it itself (host/reset.ts). */
  reset(address: PciAddress): Promise<ResetResult>;
  /** How QEMU is to be given the device (vfio-pci on linux, an emulated device on the sim). */
  present(address: PciAddress): Promise<DevicePresentation>;
  /** sriov_numvfs through 0, autoprobe, waiting for the VFs; `holder` vetoes a held VF. */
  setVfCount(
    pf: PciAddress,
    n: number,
    opts: { holder: (vf: PciAddress) => string | undefined; autoprobe?: boolean },
  ): Promise<{ before: number; after: number; vfs: readonly PciAddress[]; settled: boolean }>;
}

export function isVfioDriver(driver: string | undefined): boolean {
  return (
    driver !== undefined && (driver === 'vfio-pci' || driver.endsWith('_vfio_pci') || driver.endsWith('-vfio-pci'))
  );
}

/** nodedev-check's answer (see check.ts). */
export interface AssignabilityReport {
  readonly device: string;
  readonly assignable: boolean;
  readonly reasons: readonly string[];
  readonly notes: readonly string[];
  readonly iommuGroup?: number;
  readonly members: readonly {
    readonly address: string;
    readonly driver?: string;
    readonly netdevs: readonly string[];
    readonly bridge: boolean;
    readonly heldBy?: string;
  }[];
}
