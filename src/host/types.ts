import type { MacAddress } from '../conf/mac.ts';
import type { PciAddress } from '../conf/pci-address.ts';

/**
 * The kernel boundary. Reads go through Sysfs (rooted at '/' on linux, at the sim tree for sim);
 * writes with effects go through Kernel, which LinuxKernel performs and SimKernel simulates by
 * the kernel's rules. Everything above host/ sees only these interfaces.
 */
export interface Sysfs {
  /** The directory that plays '/' (so paths below are always absolute, '/sys/bus/pci/...'). */
  readonly root: string;
  /** File content without the trailing newline, or undefined when the file does not exist. */
  read(path: string): Promise<string | undefined>;
  readBytes(path: string): Promise<Buffer | undefined>;
  /** The link's target as the kernel writes it (relative), or undefined when not a link. */
  readLink(path: string): Promise<string | undefined>;
  /** Entry names of a directory, sorted by the caller's needs, [] when absent. */
  list(path: string): Promise<string[]>;
  exists(path: string): Promise<boolean>;
}

/** One VF's row of its PF's table, as rtnetlink's IFLA_VFINFO_LIST reports it. */
export interface VfConfig {
  readonly vf: number;
  /** The admin MAC set through the PF (00:00:00:00:00:00 when none). */
  readonly mac: MacAddress;
  readonly vlan: number;
  readonly qos: number;
  readonly vlanProto?: '802.1Q' | '802.1ad';
  readonly spoofchk?: boolean;
  readonly trust?: boolean;
  readonly linkState?: 'auto' | 'enable' | 'disable';
  readonly minTxRate?: number;
  readonly maxTxRate?: number;
}

/** What may be changed on a VF through its PF; absent keys are left alone. */
export interface VfSettings {
  readonly mac?: MacAddress;
  readonly vlan?: { readonly id: number; readonly qos?: number; readonly proto?: '802.1Q' | '802.1ad' };
  readonly spoofchk?: boolean;
  readonly trust?: boolean;
  readonly linkState?: 'auto' | 'enable' | 'disable';
  readonly rate?: { readonly minTx: number; readonly maxTx: number };
}

/** How QEMU is to be given a host device; the host backend decides. */
export type DevicePresentation =
  | { readonly kind: 'vfio'; readonly host: PciAddress }
  /** sim: an emulated NIC carrying the MAC that was programmed on the simulated VF. */
  | { readonly kind: 'emulated-nic'; readonly model: 'e1000e'; readonly mac: MacAddress };

export interface Kernel {
  readonly backend: 'linux' | 'sim';
  readonly sysfs: Sysfs;
  /** A write to a sysfs attribute with the kernel's effects (bind, unbind, drivers_probe,
   *  driver_override, sriov_numvfs, reset). Throws PassthruError HOST_FAILED with `errno`. */
  writeSysfs(path: string, value: string): Promise<void>;
  /** The PF's VF table (rtnetlink RTM_GETLINK with RTEXT_FILTER_VF). */
  vfTable(pfNetdev: string): Promise<VfConfig[]>;
  /** rtnetlink RTM_SETLINK IFLA_VFINFO_LIST on the PF. */
  setVf(pfNetdev: string, vf: number, settings: VfSettings): Promise<void>;
  present(address: PciAddress): Promise<DevicePresentation>;
  /** modprobe, for a stub driver that is not loaded yet (linux); the sim has its drivers. */
  loadModule?(name: string): Promise<void>;
}
