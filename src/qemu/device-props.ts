import { PassthruError } from '../conf/error.ts';
import type {
  ControllerDef,
  DeviceInfo,
  DomainDef,
  GuestAddress,
  InterfaceDef,
  TeamingDef,
} from '../conf/domain/types.ts';
import { formatPciAddress } from '../conf/pci-address.ts';
import type { DevicePresentation } from '../host/types.ts';

/**
 * The ONE builder of a device's QEMU properties. The same object becomes a `-device` argument at
 * boot (formatDeviceJson) and the arguments of QMP `device_add` at hot-plug, so the golden argv
 * tests cover hot-plug too (libvirt: qemuBuildPCIHostdevDevProps feeds both). Keys are inserted
 * in libvirt's order, which JSON.stringify keeps.
 */
export type PropValue = string | number | boolean;
export type DeviceProps = Readonly<Record<string, PropValue>> & { readonly driver: string };

/** Guest bus number (the PCI controller's index) -> that controller's QEMU id. */
export type BusAliases = ReadonlyMap<number, string>;

export function busAliases(def: DomainDef): BusAliases {
  const map = new Map<number, string>();
  for (const c of def.devices.controllers) {
    if (c.type !== 'pci') continue;
    map.set(c.index, c.alias ?? defaultPciControllerAlias(c));
  }
  return map;
}

/** libvirt's names: the root bus is pcie.0 on q35 and pci.0 on i440fx, every other bus pci.N. */
export function defaultPciControllerAlias(c: Pick<ControllerDef, 'index' | 'model'>): string {
  if (c.index === 0) return c.model === 'pcie-root' ? 'pcie.0' : 'pci.0';
  return `pci.${c.index}`;
}

/** A hostdev as QEMU sees it: `<hostdev>` and `<interface type='hostdev'>` alike. */
export interface HostdevDevice extends DeviceInfo {
  readonly teaming?: TeamingDef;
}

export function hostdevProps(dev: HostdevDevice, presentation: DevicePresentation, buses: BusAliases): DeviceProps {
  const id = requireAlias(dev, 'hostdev');
  const pair = dev.teaming?.type === 'transient' ? dev.teaming.persistent : undefined;
  const p: Record<string, PropValue> = {};
  switch (presentation.kind) {
    case 'vfio':
      p['driver'] = 'vfio-pci';
      p['host'] = formatPciAddress(presentation.host);
      p['id'] = id;
      break;
    case 'emulated-nic':
      // The sim's stand-in for a VF: a real NIC model carrying the MAC programmed on the VF, so
      // the guest sees what a VF with that admin MAC would show.
      p['driver'] = presentation.model;
      p['id'] = id;
      p['mac'] = presentation.mac;
      break;
    case 'emulated-device':
      // The sim's stand-in for a function that is no NIC: a device the guest can count.
      p['driver'] = presentation.model;
      p['id'] = id;
      break;
  }
  if (dev.bootOrder !== undefined) p['bootindex'] = dev.bootOrder;
  if (pair !== undefined) p['failover_pair_id'] = pair;
  Object.assign(p, addressProps(dev.guestAddress, buses, id));
  Object.assign(p, romProps(dev));
  // An emulated NIC always goes without option ROM: the ROM is a RAM block that a migration
  // destination holding the primary hidden does not have ("Unknown ramblock ... e1000e.rom",
  // vmlab.md step 5), and the guest never boots from it. romProps came last, so the key keeps
  // its place at the end either way.
  if (presentation.kind === 'emulated-nic') p['romfile'] = '';
  return p as DeviceProps;
}

/** QEMU's device model for a user interface; virtio unless `<model type>` says otherwise. */
function nicModel(iface: InterfaceDef): string {
  const model = iface.model ?? 'virtio';
  return model === 'virtio' ? 'virtio-net-pci' : model;
}

export function netdevId(alias: string): string {
  return `host${alias}`;
}

/**
 * How QEMU gets the host side of a NIC it emulates (the host decides, host/netdev.ts): a tap
 * by descriptor (`fd`, passed at spawn, as libvirt does; `vhostfd` an open /dev/vhost-net),
 * a tap QEMU opens by name (`ifname`), or QEMU's user-mode network.
 */
export type NicBackend =
  | { readonly type: 'tap'; readonly fd: string; readonly vhostfd?: string }
  | { readonly type: 'tap'; readonly ifname: string; readonly vhostfd?: string }
  | { readonly type: 'user' };

/** `-netdev` for an interface QEMU backs: `user` itself, bridge and direct through `backend`
 *  (libvirt's qemuBuildHostNetProps order: type, fd / ifname, vhost, vhostfd, id). */
export function netdevProps(iface: InterfaceDef, backend?: NicBackend): Readonly<Record<string, PropValue>> {
  const id = netdevId(requireAlias(iface, 'interface'));
  if (iface.type === 'user') return { type: 'user', id };
  const at = iface.line === undefined ? {} : { line: iface.line };
  if (iface.type !== 'bridge' && iface.type !== 'direct') {
    throw new PassthruError(
      'CONFIG_UNSUPPORTED',
      `interface type '${iface.type}' has no QEMU network backend in passthru`,
      at,
    );
  }
  if (backend === undefined) {
    throw new PassthruError(
      'CONFIG_UNSUPPORTED',
      `interface ${iface.alias ?? ''}: a ${iface.type} NIC gets its host device at start; hot-plugging one is not supported yet`,
      at,
    );
  }
  if (backend.type === 'user') return { type: 'user', id };
  const p: Record<string, PropValue> = { type: 'tap' };
  if ('fd' in backend) p['fd'] = backend.fd;
  else Object.assign(p, { ifname: backend.ifname, script: 'no', downscript: 'no' });
  if (backend.vhostfd !== undefined) Object.assign(p, { vhost: true, vhostfd: backend.vhostfd });
  p['id'] = id;
  return p;
}

/** The guest NIC of an interface QEMU backs (virtio-net-pci, e1000e ...). */
export function nicProps(iface: InterfaceDef, buses: BusAliases): DeviceProps {
  const id = requireAlias(iface, 'interface');
  const p: Record<string, PropValue> = { driver: nicModel(iface) };
  // The MTU the guest's virtio-net driver adopts (VIRTIO_NET_F_MTU), among libvirt's virtio
  // options before netdev; only virtio-net has it (validated at start).
  if (iface.mtu !== undefined && p['driver'] === 'virtio-net-pci') p['host_mtu'] = iface.mtu;
  if (iface.teaming?.type === 'persistent') {
    // Only virtio-net can be a standby: the guest pairs through VIRTIO_NET_F_STANDBY.
    if (p['driver'] !== 'virtio-net-pci') {
      throw new PassthruError(
        'XML_INVALID',
        `interface ${id}: <teaming type='persistent'> needs <model type='virtio'/>`,
      );
    }
    p['failover'] = true;
  }
  p['netdev'] = netdevId(id);
  p['id'] = id;
  if (iface.mac !== undefined) p['mac'] = iface.mac;
  Object.assign(p, addressProps(iface.guestAddress, buses, id));
  Object.assign(p, romProps(iface));
  if (iface.bootOrder !== undefined) p['bootindex'] = iface.bootOrder;
  return p as DeviceProps;
}

/** pcie-root-port: port and chassis as libvirt derives them (port = slot << 3 | function). */
export function rootPortProps(c: ControllerDef, buses: BusAliases): DeviceProps {
  const id = c.alias ?? defaultPciControllerAlias(c);
  const addr = c.address?.type === 'pci' ? c.address : undefined;
  const port = c.target?.port ?? (addr ? (addr.slot << 3) | addr.function : undefined);
  const p: Record<string, PropValue> = { driver: c.modelName ?? 'pcie-root-port' };
  if (port !== undefined) p['port'] = port;
  p['chassis'] = c.target?.chassis ?? c.index;
  p['id'] = id;
  if (c.target?.hotplug !== undefined) p['hotplug'] = c.target.hotplug;
  Object.assign(p, addressProps(c.address, buses, id));
  return p as DeviceProps;
}

/** An x86 serial port on the chardev `char<alias>`; `index` is the guest's ttyS number. */
export function serialProps(alias: string, index: number): DeviceProps {
  return { driver: 'isa-serial', chardev: `char${alias}`, id: alias, index };
}

/** bus, multifunction, addr: where on which controller (libvirt's qemuBuildDeviceAddressProps). */
export function addressProps(addr: GuestAddress | undefined, buses: BusAliases, id: string): Record<string, PropValue> {
  if (addr === undefined) return {};
  if (addr.type !== 'pci') {
    throw new PassthruError(
      'CONFIG_UNSUPPORTED',
      `device ${id}: guest address type '${addr.type}' is not a PCI address`,
    );
  }
  const bus = buses.get(addr.bus);
  if (bus === undefined) {
    throw new PassthruError(
      'XML_INVALID',
      `device ${id}: no PCI controller with index ${addr.bus} for its guest address ${formatPciAddress(addr)}`,
    );
  }
  const p: Record<string, PropValue> = { bus };
  if (addr.multifunction !== undefined) p['multifunction'] = addr.multifunction;
  p['addr'] = addr.function === 0 ? hex(addr.slot) : `${hex(addr.slot)}.${hex(addr.function)}`;
  return p;
}

function romProps(info: DeviceInfo): Record<string, PropValue> {
  const rom = info.rom;
  if (rom === undefined) return {};
  if (rom.enabled === false) return { romfile: '' };
  const p: Record<string, PropValue> = {};
  if (rom.bar !== undefined) p['rombar'] = rom.bar ? 1 : 0;
  if (rom.file !== undefined) p['romfile'] = rom.file;
  return p;
}

export function requireAlias(info: { readonly alias?: string }, what: string): string {
  if (info.alias === undefined) {
    throw new PassthruError(
      'INTERNAL',
      `a ${what} reached the QEMU command line without an alias (prepareLiveDef not run?)`,
    );
  }
  return info.alias;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** `-device` argument in QEMU's JSON syntax (what libvirt passes to QEMU >= 6.0). */
export function formatDeviceJson(props: Readonly<Record<string, PropValue>>): string {
  return JSON.stringify(props);
}

/** The older key=value syntax (libvirt's pre-JSON .args files): booleans on/off, ',' doubled. */
export function formatDeviceKeyval(props: Readonly<Record<string, PropValue>>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(props)) {
    const text = typeof value === 'boolean' ? (value ? 'on' : 'off') : String(value).replaceAll(',', ',,');
    parts.push(key === 'driver' ? text : `${key}=${text}`);
  }
  return parts.join(',');
}
