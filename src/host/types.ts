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

/** IFLA_PORT_REQUEST: what is asked of the switch for a VF's port. The pre-associations serve
 *  an incoming migration (libvirt: PREASSOCIATE for 802.1Qbg, PREASSOCIATE_RR for 802.1Qbh). */
export type PortRequest = 'preassociate' | 'preassociate-rr' | 'associate' | 'disassociate';

/** IFLA_PORT_RESPONSE: the switch's answer (802.1Qbh PORT_PROFILE_RESPONSE_*, 802.1Qbg
 *  PORT_VDP_RESPONSE_*). */
export type PortResponse =
  | 'success'
  | 'in-progress'
  | 'invalid'
  | 'bad-state'
  | 'insufficient-resources'
  | 'error'
  | 'invalid-format'
  | 'unused-vtid'
  | 'vtid-violation'
  | 'vtid-version-violation'
  | 'out-of-sync';

/** A port profile as the kernel carries it in IFLA_VF_PORT: 802.1Qbh names a profile, 802.1Qbg
 *  a VSI type; both carry the instance UUID (Qbh: the domain's UUID; Qbg: the instanceid). */
export type VfPortProfile =
  | { readonly type: '802.1Qbh'; readonly profileid: string; readonly instanceUuid: string }
  | {
      readonly type: '802.1Qbg';
      readonly managerid: number;
      readonly typeid: number;
      readonly typeidversion: number;
      readonly instanceUuid: string;
    };

/** A VF's port as IFLA_VF_PORTS reports it. */
export interface VfPortState {
  readonly profile: VfPortProfile;
  readonly request: PortRequest;
  readonly response?: PortResponse;
}

/** How QEMU is to be given a host device; the host backend decides. */
export type DevicePresentation =
  | { readonly kind: 'vfio'; readonly host: PciAddress }
  /** sim: an emulated NIC carrying the MAC that was programmed on the simulated VF. */
  | { readonly kind: 'emulated-nic'; readonly model: 'e1000e'; readonly mac: MacAddress }
  /** sim: a function that is no NIC (a GPU, its audio function, an NVMe controller) as QEMU's
   *  `edu` device (PCI 1234:11e8), one per function, which the guest can count. */
  | { readonly kind: 'emulated-device'; readonly model: 'edu' };

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
  /** rtnetlink RTM_SETLINK IFLA_VF_PORTS on the PF: ask the switch to (pre)associate or
   *  disassociate the VF's port. The answer comes later, through vfPortStatus. */
  setVfPort(pfNetdev: string, vf: number, profile: VfPortProfile, request: PortRequest): Promise<void>;
  /** The VF's port from IFLA_VF_PORTS, undefined when it has none. */
  vfPortStatus(pfNetdev: string, vf: number): Promise<VfPortState | undefined>;
  present(address: PciAddress): Promise<DevicePresentation>;
  /** modprobe, for a stub driver that is not loaded yet (linux); the sim has its drivers. */
  loadModule?(name: string): Promise<void>;
}
