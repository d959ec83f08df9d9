import type { MacAddress } from '../mac.ts';
import type { PciAddress } from '../pci-address.ts';
import type { Uuid } from '../uuid.ts';
import type { Vlan } from '../vlan.ts';
import type { XmlElement } from '../xml/tree.ts';

/**
 * A libvirt domain definition, as far as passthru understands it. Plain data: parse.ts builds
 * it from XML, postparse.ts fills defaults, validate.ts checks whole-definition rules,
 * format.ts writes it back. Device kinds are discriminated unions.
 *
 * `line` fields are the 1-based line of the element in the document it was read from, kept so
 * that validation can point at it; definitions built in code leave them out.
 */
export interface DomainDef {
  /** `<domain type=...>`; libvirt's test data uses 'qemu', real hosts 'kvm'. Default 'kvm'. */
  readonly type?: 'kvm' | 'qemu';
  /** `<domain id=...>`: the running domain's number, in live and status XML only. */
  readonly id?: number;
  readonly name: string;
  readonly uuid?: Uuid;
  readonly title?: string;
  readonly description?: string;
  /** KiB, as libvirt stores it whatever unit the XML used. */
  readonly memoryKiB: number;
  readonly currentMemoryKiB?: number;
  /** `<memoryBacking>`, `<cputune>`, `<numatune>`: hugepages, pinning, NUMA (carried, checked). */
  readonly memoryBacking?: XmlElement;
  readonly cputune?: XmlElement;
  readonly numatune?: XmlElement;
  readonly vcpus: number;
  readonly vcpuPlacement?: 'static' | 'auto';
  readonly vcpuCpuset?: string;
  readonly os: OsDef;
  /** `<metadata>`: applications' own namespaced XML, carried unchecked as libvirt does. */
  readonly metadata?: XmlElement;
  /** `<features>`, `<cpu>`, `<clock>`, `<pm>`: carried checked but uninterpreted (generic.ts). */
  readonly features?: XmlElement;
  readonly cpu?: XmlElement;
  readonly clock?: XmlElement;
  readonly onPoweroff?: LifecycleAction;
  readonly onReboot?: LifecycleAction;
  readonly onCrash?: LifecycleAction;
  readonly pm?: XmlElement;
  readonly devices: Devices;
  readonly line?: number;
}

export type LifecycleAction =
  | 'destroy'
  | 'restart'
  | 'preserve'
  | 'rename-restart'
  | 'coredump-destroy'
  | 'coredump-restart';

export interface OsDef {
  readonly type: 'hvm';
  /** `<os firmware='efi'>`: let the hypervisor pick the firmware. */
  readonly firmware?: 'efi' | 'bios';
  /** `<loader>` / `<nvram>` of a UEFI guest (carried, checked). */
  readonly loader?: XmlElement;
  readonly nvram?: XmlElement;
  readonly arch?: string;
  readonly machine?: string;
  readonly kernel?: string;
  readonly initrd?: string;
  readonly cmdline?: string;
  /** `<boot dev=.../>` in order. */
  readonly bootDevs?: readonly BootDev[];
  readonly bootMenu?: boolean;
  readonly line?: number;
}

export type BootDev = 'hd' | 'cdrom' | 'network' | 'fd';

export interface Devices {
  readonly emulator?: string;
  /** Typed disks (disk.ts) and, in document order among them, disks outside what passthru runs
   *  (network sources, usb/fdc buses ...), carried as checked XML. */
  readonly disks?: readonly (DiskDef | OtherDeviceDef)[];
  readonly controllers: readonly ControllerDef[];
  /** Plain `<hostdev>` elements. `<interface type='hostdev'>` carries its own hostdev part and is
   *  not repeated here (unlike libvirt's shared pointer, which is a C memory trick). */
  readonly hostdevs: readonly HostdevDef[];
  /** [seed] `<hostdev>`s that name a device pool and have not been given a device yet. Written
   *  after the other hostdevs. */
  readonly poolHostdevs?: readonly PoolHostdevDef[];
  readonly interfaces: readonly InterfaceDef[];
  readonly serials: readonly CharDevDef[];
  readonly consoles: readonly CharDevDef[];
  /** Devices passthru carries for libvirt compatibility but does not interpret (filesystem,
   *  channel, input, tpm, graphics, sound, audio, video, redirdev, hub, watchdog, memballoon, rng,
   *  panic). Checked against an allow-list. */
  readonly others?: readonly OtherDeviceDef[];
}

/** A device outside passthru's own concern, kept as its checked XML so that it survives a round
 *  trip. `kind` is its element name. */
export interface OtherDeviceDef {
  readonly kind: OtherDeviceKind;
  readonly xml: XmlElement;
  /** The guest PCI address, if it has one: the address planner must not reuse it. */
  readonly guestAddress?: GuestAddress;
}

export type OtherDeviceKind =
  | 'disk'
  | 'filesystem'
  | 'channel'
  | 'input'
  | 'tpm'
  | 'graphics'
  | 'sound'
  | 'audio'
  | 'video'
  | 'redirdev'
  | 'hub'
  | 'watchdog'
  | 'memballoon'
  | 'rng'
  | 'panic'
  | 'iommu'
  | 'vsock';

/** Where a device sits in the guest. `unassigned`: taken from the host, given no guest device.
 *  `drive` is the address of a disk on its controller (carried, not planned by us). */
export type GuestAddress =
  | ({ readonly type: 'pci'; readonly multifunction?: boolean } & PciAddress)
  | { readonly type: 'unassigned' }
  | {
      readonly type: 'drive';
      readonly controller?: number;
      readonly bus?: number;
      readonly target?: number;
      readonly unit?: number;
    };

export type ControllerType = 'pci' | 'usb' | 'ide' | 'sata' | 'scsi' | 'virtio-serial';

export type PciControllerModel =
  | 'pcie-root'
  | 'pcie-root-port'
  | 'pci-root'
  | 'pci-bridge'
  | 'dmi-to-pci-bridge'
  | 'pcie-to-pci-bridge'
  | 'pcie-switch-upstream-port'
  | 'pcie-switch-downstream-port'
  | 'pci-expander-bus'
  | 'pcie-expander-bus';

export interface ControllerDef {
  readonly type: ControllerType;
  readonly index: number;
  /** For type pci one of PciControllerModel; for usb/scsi the libvirt model name ('none' too). */
  readonly model?: string;
  /** virtio-serial / usb: number of ports; and MSI-X vectors. */
  readonly ports?: number;
  readonly vectors?: number;
  /** `<model name=.../>`: the QEMU device behind a PCI controller (ioh3420, pcie-root-port ...). */
  readonly modelName?: string;
  readonly target?: ControllerTarget;
  readonly address?: GuestAddress;
  readonly alias?: string;
  readonly line?: number;
}

export interface ControllerTarget {
  readonly chassisNr?: number;
  readonly chassis?: number;
  readonly port?: number;
  readonly busNr?: number;
  readonly hotplug?: boolean;
}

/** The host side of a PCI host device, shared by `<hostdev>` and `<interface type='hostdev'>`. */
export interface PciHostdevSource {
  readonly managed: boolean;
  readonly address: PciAddress;
  /** [seed] the device pool this device was taken from at start (`<source pool=...>`); `address`
   *  is then the pool's choice. The inactive definition keeps only the pool name. See
   *  docs/conf-pools.md. */
  readonly pool?: string;
  /** [beyond] `<source pool=... tags='migratable'>`: the tags the pool's device had to carry. */
  readonly poolTags?: readonly string[];
  /** `<driver name=... model=...>`: the host-side PCI backend and an optional vfio variant driver. */
  readonly driver?: HostdevDriver;
}

export interface HostdevDriver {
  readonly name?: 'kvm' | 'vfio' | 'xen';
  readonly model?: string;
}

export interface RomDef {
  readonly bar?: boolean;
  readonly file?: string;
  readonly enabled?: boolean;
}

export type TeamingDef = { readonly type: 'persistent' } | { readonly type: 'transient'; readonly persistent: string };

/** libvirt's `<virtualport>`: type may be missing on interfaces of type network (merged later). */
export interface VirtualPortDef {
  readonly type?: '802.1Qbg' | '802.1Qbh' | 'openvswitch' | 'midonet';
  readonly managerid?: number;
  readonly typeid?: number;
  readonly typeidversion?: number;
  readonly instanceid?: Uuid;
  readonly profileid?: string;
  readonly interfaceid?: Uuid;
  readonly line?: number;
}

/** `<bandwidth><outbound average= floor=/></bandwidth>` on a VF, in libvirt's unit (KiB/s):
 *  average is the VF's max TX rate, floor its min TX rate (the kernel takes whole Mbit/s). */
export interface VfBandwidthDef {
  readonly outbound: { readonly average?: number; readonly floor?: number };
}

/** The VF attributes beyond MAC and VLAN, on `<interface type='hostdev'>` and on each
 *  `<netdev port>` of a `<hostdev>` (docs/vf-attributes.md). */
export interface VfAttributesDef {
  /** `trustGuestRxFilters`: the VF's trust (the guest may change its MAC, go promiscuous). */
  readonly trustGuestRxFilters?: boolean;
  /** passthru's `spoofCheck='yes|no'`: the VF's source-MAC anti-spoof check. */
  readonly spoofCheck?: boolean;
  /** `<link state='up|down'/>`: the VF's link state forced on (enable) or off (disable). */
  readonly linkState?: 'up' | 'down';
  readonly bandwidth?: VfBandwidthDef;
}

/** Per-port settings of a multi-port VF (PRODUCT.md C, [seed]). Ports are numbered from 1. */
export interface HostdevNetdevPort extends VfAttributesDef {
  readonly port: number;
  readonly mac?: MacAddress;
  readonly vlan?: Vlan;
  readonly line?: number;
}

/** Properties every device with a guest identity has. */
export interface DeviceInfo {
  readonly guestAddress?: GuestAddress;
  readonly alias?: string;
  readonly bootOrder?: number;
  readonly rom?: RomDef;
  readonly line?: number;
}

export interface HostdevDef extends DeviceInfo {
  readonly mode: 'subsystem';
  readonly type: 'pci';
  readonly source: PciHostdevSource;
  readonly teaming?: TeamingDef;
  /** [seed] partial assignment: false = taken from the host, given no guest device. */
  readonly assigned?: boolean;
  readonly netdevs?: readonly HostdevNetdevPort[];
}

/** A `<hostdev>` whose `<source pool=.../>` names a device pool: the daemon picks a device from
 *  the pool at start and turns it into a HostdevDef with `source.pool` set. */
export interface PoolHostdevDef extends DeviceInfo {
  readonly mode: 'subsystem';
  readonly type: 'pci';
  readonly pool: string;
  /** [beyond] only a member carrying every one of these tags will do (`<source pool=... tags=...>`). */
  readonly tags?: readonly string[];
  readonly managed: boolean;
  readonly driver?: HostdevDriver;
  readonly teaming?: TeamingDef;
  readonly assigned?: boolean;
  readonly netdevs?: readonly HostdevNetdevPort[];
}

interface InterfaceCommon extends DeviceInfo {
  readonly mac?: MacAddress;
  readonly model?: string;
  readonly vlan?: Vlan;
  readonly virtualport?: VirtualPortDef;
  readonly teaming?: TeamingDef;
  readonly trustGuestRxFilters?: boolean;
  /** `<target dev=.../>`: the host tap/macvtap name. */
  readonly targetDev?: string;
  readonly linkState?: 'up' | 'down';
  readonly mtu?: number;
  /** `<driver>` of an interface QEMU backs (vhost, queues ...): carried, checked (generic.ts). On
   *  hostdev types `<driver>` is the PCI backend instead (`source.driver`). */
  readonly virtioDriver?: XmlElement;
}

export interface HostdevInterfaceDef extends InterfaceCommon {
  readonly type: 'hostdev';
  readonly source: PciHostdevSource;
  readonly vlan?: Vlan;
  /** passthru's `spoofCheck` and the VF's `<bandwidth>` (trust and link state are common). */
  readonly spoofCheck?: boolean;
  readonly bandwidth?: VfBandwidthDef;
}

/** [seed] a VF plus a virtio standby on a macvtap of the same PF, one MAC, as a failover pair
 *  (conf/domain/hybrid.ts expands it). The VF's alias and guest address are the interface's own;
 *  the standby's are in `standby`. `<model>` is the standby's (virtio, the only failover model). */
export interface HostdevHybridInterfaceDef extends InterfaceCommon {
  readonly type: 'hostdev-hybrid';
  readonly source: PciHostdevSource;
  readonly spoofCheck?: boolean;
  readonly bandwidth?: VfBandwidthDef;
  readonly standby?: StandbyDef;
}

/**
 * [seed] passthru's `<standby>` child of a hostdev-hybrid interface (and of a network interface,
 * for a network with `<forward mode='hostdev-hybrid'>`): the virtio standby's QEMU id and guest
 * PCI address, both kept from define on like every other device's, so the pair keeps its places
 * across restarts and migrations. The live definition also names the macvtap (`<target dev>`)
 * and the PF netdev it sits on (`<source dev>`): this host's runtime state, never in the
 * inactive or migratable XML.
 */
export interface StandbyDef {
  readonly alias?: string;
  readonly guestAddress?: GuestAddress;
  readonly targetDev?: string;
  /** The PF netdev of the VF (the macvtap's parent), found at start. */
  readonly parent?: string;
  readonly line?: number;
}

export interface UserInterfaceDef extends InterfaceCommon {
  readonly type: 'user';
  readonly model?: string;
}

export interface EthernetInterfaceDef extends InterfaceCommon {
  readonly type: 'ethernet';
}

export interface BridgeInterfaceDef extends InterfaceCommon {
  readonly type: 'bridge';
  readonly bridge: string;
}

export interface DirectInterfaceDef extends InterfaceCommon {
  readonly type: 'direct';
  readonly dev: string;
  readonly mode?: 'vepa' | 'bridge' | 'private' | 'passthrough';
}

/** What a network allocated to an interface at start: shown in live and status XML only. */
export interface ActualHostdev {
  /** hostdev-hybrid: the network's forward mode is hostdev-hybrid (the VF gets a standby). */
  readonly type: 'hostdev' | 'hostdev-hybrid';
  readonly source: PciHostdevSource;
  /** Merged from interface, portgroup and network (conf/network/merge.ts). */
  readonly vlan?: Vlan;
  readonly virtualport?: VirtualPortDef;
  readonly trustGuestRxFilters?: boolean;
  /** passthru: spoof check, link state and TX rates merged the same way (network and portgroup
   *  carry them too, see conf/network/types.ts). */
  readonly spoofCheck?: boolean;
  readonly linkState?: 'up' | 'down';
  readonly bandwidth?: VfBandwidthDef;
}

export interface NetworkInterfaceDef extends InterfaceCommon {
  readonly type: 'network';
  readonly network: string;
  readonly portgroup?: string;
  readonly portid?: Uuid;
  readonly actual?: ActualHostdev;
  /** The standby when the network is a hostdev-hybrid one (define adds it, see StandbyDef). */
  readonly standby?: StandbyDef;
  /** The VF's TX rates (`<outbound average= floor=>`), over the portgroup's and the network's. */
  readonly bandwidth?: VfBandwidthDef;
}

export type InterfaceDef =
  | HostdevInterfaceDef
  | HostdevHybridInterfaceDef
  | UserInterfaceDef
  | EthernetInterfaceDef
  | BridgeInterfaceDef
  | DirectInterfaceDef
  | NetworkInterfaceDef;

export type InterfaceType = InterfaceDef['type'];

export interface CharDevDef {
  readonly type: 'file' | 'pty' | 'null' | 'stdio' | 'unix';
  readonly path?: string;
  /** unix only: bind (server) or connect (client). */
  readonly mode?: 'bind' | 'connect';
  /** file: append to the file instead of truncating it at start (`<source append='on'>`). */
  readonly append?: boolean;
  readonly targetPort?: number;
  /** serial: isa-serial | pci-serial | usb-serial ...; console: serial | virtio */
  readonly targetType?: string;
  /** serial `<target><model name=.../></target>`. */
  readonly targetModel?: string;
  readonly alias?: string;
  readonly guestAddress?: GuestAddress;
  readonly line?: number;
}

export type DiskBus = 'virtio' | 'sata' | 'scsi' | 'ide';
export type DiskCache = 'default' | 'none' | 'writethrough' | 'writeback' | 'directsync' | 'unsafe';
export type ImageFormat = 'raw' | 'qcow2';

/** `<disk type='file'|'block' device='disk'|'cdrom'>`: the disks passthru runs (disk-parse.ts). */
export interface DiskDef extends DeviceInfo {
  readonly type: 'file' | 'block';
  readonly device: 'disk' | 'cdrom';
  /** `<driver name='qemu' type= cache= discard=>`. */
  readonly format?: ImageFormat;
  readonly cache?: DiskCache;
  readonly discard?: 'unmap' | 'ignore';
  /** The image file or block device; a cdrom may be empty (no medium). */
  readonly source?: string;
  /** libvirt's node index of the top image (`<source index=>`), live XML only. */
  readonly sourceIndex?: number;
  /** The backing chain: undefined when not known yet (read from the image at start), 'none' when
   *  known to end here (`<backingStore/>`). */
  readonly backingStore?: BackingStoreDef | 'none';
  readonly target: { readonly dev: string; readonly bus: DiskBus };
  readonly readonly?: boolean;
  readonly serial?: string;
}

/** One image under a disk's top image, as libvirt shows it in live XML. */
export interface BackingStoreDef {
  readonly type: 'file' | 'block';
  readonly format: ImageFormat;
  readonly path: string;
  readonly index?: number;
  readonly backingStore?: BackingStoreDef | 'none';
}
