import { basename, posix } from 'node:path';
import { PassthruError } from '../conf/error.ts';
import type { MacAddress } from '../conf/mac.ts';
import { formatPciAddress, type PciAddress, parsePciAddress } from '../conf/pci-address.ts';
import { type HeaderType, type PciConfig, parsePciConfig } from './pci-config.ts';
import type { Sysfs } from './types.ts';

/**
 * The host's PCI functions as sysfs shows them. One code path for linux and sim: it only reads
 * through Sysfs, and the sim keeps a tree of the kernel's shape.
 */
export interface Netdev {
  readonly name: string;
  readonly mac: MacAddress | undefined;
  readonly operstate: string | undefined;
  readonly ifindex: number | undefined;
  /** Link speed in Mb/s; undefined while the link is down (the kernel reads -1 or EINVAL). */
  readonly speed?: number;
  /** Which port of the function (mlx4 dual port: 0 and 1). */
  readonly devPort: number;
  readonly physPortId?: string;
  readonly physPortName?: string;
  /** A switchdev VF representor (phys_port_name pfNvfM): a port of the eswitch, not of the
   *  function, never to be taken for the PF's uplink. */
  readonly representor?: { readonly pf: number; readonly vf: number };
}

export interface Sriov {
  readonly totalVfs: number;
  readonly numVfs: number;
  readonly offset: number | undefined;
  readonly stride: number | undefined;
  readonly vfDevice: number | undefined;
  readonly autoprobe: boolean;
  /** VF addresses by index: vfs[n] is virtfnN (parsed from the link name, never glob order). */
  readonly vfs: readonly PciAddress[];
}

export interface PciDevice {
  readonly address: PciAddress;
  /** "0000:06:02.0" */
  readonly name: string;
  /** The device's directory: /sys/devices/pci0000:00/0000:00:01.0/0000:06:00.0 */
  readonly path: string;
  readonly vendor: number;
  readonly device: number;
  readonly subsystemVendor: number | undefined;
  readonly subsystemDevice: number | undefined;
  readonly class: number;
  readonly driver: string | undefined;
  readonly driverOverride: string | undefined;
  readonly iommuGroup: number | undefined;
  /** Every function of the group, this one included, sorted. */
  readonly iommuGroupMembers: readonly PciAddress[];
  readonly numaNode: number | undefined;
  readonly headerType: HeaderType;
  readonly multifunction: boolean;
  /** The upstream bridge, when the device sits behind one. */
  readonly parent: PciAddress | undefined;
  readonly config: PciConfig | undefined;
  readonly modalias: string | undefined;
  readonly sriov?: Sriov;
  /** Set on a VF: its PF and its index there. */
  readonly physfn?: { readonly pf: PciAddress; readonly index: number };
  readonly netdevs: readonly Netdev[];
}

export interface Inventory {
  readonly devices: readonly PciDevice[];
}

const DEVICES = '/sys/bus/pci/devices';

/** The PCI function a sysfs path or devpath is in: its last BDF ('/devices/pci0000:00/
 *  0000:00:03.0/0000:06:10.2/net/eth3' is in 0000:06:10.2). */
export function functionOfPath(path: string): string | undefined {
  let last: string | undefined;
  for (const m of path.matchAll(/[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]/g)) last = m[0];
  return last;
}
const BDF = /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

const num = (v: string | undefined): number | undefined => {
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v.trim());
  return Number.isFinite(n) ? n : undefined;
};

export function compareAddress(a: PciAddress, b: PciAddress): number {
  return a.domain - b.domain || a.bus - b.bus || a.slot - b.slot || a.function - b.function;
}

/** BDF names in address order (a domain may have more than 4 hex digits). */
const compareName = (a: string, b: string): number => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);

export async function readInventory(sysfs: Sysfs): Promise<Inventory> {
  // In address order, one at a time: a VF's address is above its PF's (First VF Offset >= 1),
  // so each VF is reached after its PF's virtfnN links are known, and needs neither physfn nor
  // the sriov_* attributes a VF does not have (an absent attribute costs a failed read). The
  // reads are synchronous under the promises (sysfs.ts), so running them side by side would
  // gain nothing.
  const names = (await sysfs.list(DEVICES)).filter((n) => BDF.test(n)).sort(compareName);
  const vfs = new Set<string>();
  const raw: Raw[] = [];
  for (const n of names) {
    const d = await readRaw(sysfs, n, vfs.has(n), 'derive');
    if (d === undefined) continue;
    for (const vf of d.sriov?.vfs ?? []) vfs.add(formatPciAddress(vf));
    raw.push(d);
  }
  return assemble(raw);
}

/**
 * The inventory after a change of the named functions: only those are read again (a function
 * that is gone is dropped, a new one added); every other device is `before`'s own object, so a
 * diff can pass over it by identity. What a watcher does with the kernel's word on what changed
 * (a uevent's devpath, the sim's change log): one VF changing among 4,096 costs one VF's reads.
 * A PF whose VFs changed brings its old and new VFs into the read.
 */
export async function refreshInventory(sysfs: Sysfs, before: Inventory, names: Iterable<string>): Promise<Inventory> {
  const at = new Map<string, number>();
  before.devices.forEach((d, i) => at.set(d.name, i));
  const old = (n: string): PciDevice | undefined => before.devices[at.get(n) ?? -1];
  const wanted = new Set<string>();
  const want = (n: string): void => {
    if (wanted.has(n) || !BDF.test(n)) return;
    wanted.add(n);
    // A function joining or leaving an IOMMU group changes the member list of the others in it.
    for (const m of old(n)?.iommuGroupMembers ?? []) want(formatPciAddress(m));
  };
  for (const n of names) want(n);
  const groups: GroupCache = new Map();
  // VFs of the PFs read again, by name; a VF whose PF was not read again keeps its PF and index.
  const index: VfIndex = new Map();
  const fresh: Raw[] = [];
  // In address order, so PFs come before their VFs; a PF's old and new VFs join the queue.
  for (let queue = [...wanted].sort(compareName); queue.length > 0; ) {
    const next: string[] = [];
    for (const n of queue) {
      const knownVf = index.has(n) || old(n)?.physfn !== undefined;
      const d = await readRaw(sysfs, n, knownVf ? true : undefined, groups);
      if (d !== undefined) fresh.push(d);
      const now = d?.sriov?.vfs ?? [];
      now.forEach((vf, i) => index.set(formatPciAddress(vf), { pf: d?.address ?? vf, index: i }));
      for (const vf of [...(old(n)?.sriov?.vfs ?? []), ...now].map(formatPciAddress)) {
        if (!wanted.has(vf)) {
          wanted.add(vf);
          next.push(vf);
        }
      }
    }
    queue = next.sort(compareName);
  }
  // Replace in place; sort only when a function came or went.
  const devices = [...before.devices];
  let moved = false;
  for (const d of fresh) {
    const dev = toDevice(d, d.isVf ? (index.get(d.name) ?? old(d.name)?.physfn) : undefined);
    const i = at.get(d.name);
    if (i === undefined) {
      devices.push(dev);
      moved = true;
    } else devices[i] = dev;
  }
  const read = new Set(fresh.map((d) => d.name));
  const gone = new Set([...wanted].filter((n) => at.has(n) && !read.has(n)));
  if (gone.size > 0) moved = true;
  const kept = gone.size > 0 ? devices.filter((d) => !gone.has(d.name)) : devices;
  return { devices: moved ? kept.sort((a, b) => compareAddress(a.address, b.address)) : kept };
}

type VfIndex = Map<string, { pf: PciAddress; index: number }>;

function vfIndex(devices: readonly { readonly address: PciAddress; readonly sriov?: Sriov }[]): VfIndex {
  const index: VfIndex = new Map();
  for (const d of devices)
    d.sriov?.vfs.forEach((vf, i) => index.set(formatPciAddress(vf), { pf: d.address, index: i }));
  return index;
}

function withIndex(d: Raw, index: VfIndex, members?: readonly PciAddress[]): PciDevice {
  return toDevice(d, d.isVf ? index.get(d.name) : undefined, members);
}

/** Sets each VF's index from its PF's virtfnN links (read once per PF) and each function's IOMMU
 *  group members from every function's iommu_group link (a read of the whole host has them all,
 *  so listing /sys/kernel/iommu_groups/N/devices, one directory per VF, would only repeat them),
 *  and sorts. */
function assemble(raw: readonly Raw[]): Inventory {
  const index = vfIndex(raw);
  const groups = new Map<number, PciAddress[]>();
  for (const d of raw) {
    if (d.iommuGroup === undefined) continue;
    const members = groups.get(d.iommuGroup);
    if (members) members.push(d.address);
    else groups.set(d.iommuGroup, [d.address]);
  }
  for (const m of groups.values()) m.sort(compareAddress);
  return {
    devices: raw
      .map((d) => withIndex(d, index, d.iommuGroup === undefined ? undefined : groups.get(d.iommuGroup)))
      .sort((a, b) => compareAddress(a.address, b.address)),
  };
}

export function findDevice(inv: Inventory, address: PciAddress): PciDevice | undefined {
  return inv.devices.find((d) => compareAddress(d.address, address) === 0);
}

/** One device, with its VF index when it is a VF. NO_DEVICE when the host has no such function. */
export async function readPciDevice(sysfs: Sysfs, address: PciAddress): Promise<PciDevice> {
  const name = formatPciAddress(address);
  const d = await readRaw(sysfs, name, undefined, new Map());
  if (d === undefined) throw new PassthruError('NO_DEVICE', `PCI device ${name} does not exist on this host`);
  const physfn = d.isVf ? await sysfs.readLink(`${DEVICES}/${name}/physfn`) : undefined;
  if (physfn === undefined) return toDevice(d, undefined);
  const physfnName = basename(physfn);
  const pfLinks = await readVirtfns(sysfs, physfnName);
  const i = pfLinks.findIndex((a) => formatPciAddress(a) === name);
  return toDevice(d, i < 0 ? undefined : { pf: parsePciAddress(physfnName), index: i });
}

/** A device as read, before its VF index is known (from its PF's links). */
type Raw = Omit<PciDevice, 'physfn'> & { isVf: boolean };

/** IOMMU group member lists, read once per group during one read of the host; 'derive' when the
 *  caller reads every function and sets the members from their links (assemble). */
type GroupCache = Map<number, Promise<PciAddress[]>> | 'derive';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * The device as the inventory keeps it: one literal with every field in one order, the optional
 * ones added after. A host holds thousands of these; built by spreading (`{ ...rest, physfn }`,
 * or a rest pattern to drop `isVf`), each VF got a hidden class of its own in V8, about a quarter
 * of a 4,096-VF inventory's memory.
 */
function toDevice(d: Raw, physfn: PciDevice['physfn'], members?: readonly PciAddress[]): PciDevice {
  const dev: Mutable<PciDevice> = {
    address: d.address,
    name: d.name,
    path: d.path,
    vendor: d.vendor,
    device: d.device,
    subsystemVendor: d.subsystemVendor,
    subsystemDevice: d.subsystemDevice,
    class: d.class,
    driver: d.driver,
    driverOverride: d.driverOverride,
    iommuGroup: d.iommuGroup,
    iommuGroupMembers: members ?? d.iommuGroupMembers,
    numaNode: d.numaNode,
    headerType: d.headerType,
    multifunction: d.multifunction,
    parent: d.parent,
    config: d.config,
    modalias: d.modalias,
    netdevs: d.netdevs,
  };
  if (d.sriov !== undefined) dev.sriov = d.sriov;
  if (physfn !== undefined) dev.physfn = physfn;
  return dev;
}

/** What a PCI device's `uevent` says (drivers/pci/pci-driver.c pci_uevent, plus the driver
 *  core's DRIVER=): identity, class, modalias and driver in one read instead of seven. */
interface Identity {
  readonly vendor: number | undefined;
  readonly device: number | undefined;
  readonly subsystemVendor: number | undefined;
  readonly subsystemDevice: number | undefined;
  readonly class: number | undefined;
  readonly modalias: string | undefined;
  readonly driver: string | undefined;
}

export function parsePciUevent(text: string): Identity | undefined {
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) vars.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const id = vars.get('PCI_ID');
  if (id === undefined) return undefined;
  const pair = (v: string | undefined): [number | undefined, number | undefined] => {
    const m = v === undefined ? null : /^([0-9A-Fa-f]{1,4}):([0-9A-Fa-f]{1,4})$/.exec(v);
    return m ? [Number.parseInt(m[1] ?? '', 16), Number.parseInt(m[2] ?? '', 16)] : [undefined, undefined];
  };
  const [vendor, device] = pair(id);
  const [subsystemVendor, subsystemDevice] = pair(vars.get('PCI_SUBSYS_ID'));
  const klass = vars.get('PCI_CLASS');
  return {
    vendor,
    device,
    subsystemVendor,
    subsystemDevice,
    // "%04X" of the 24-bit class: "20000" is 0x020000.
    class: klass !== undefined && /^[0-9A-Fa-f]+$/.test(klass) ? Number.parseInt(klass, 16) : undefined,
    modalias: vars.get('MODALIAS'),
    driver: vars.get('DRIVER'),
  };
}

/** The same facts from the one-value attributes, for a tree without `uevent`. */
async function readIdentity(sysfs: Sysfs, dir: string): Promise<Identity> {
  const [vendor, device, subVendor, subDevice, klass, modalias, driverLink] = await Promise.all([
    sysfs.read(`${dir}/vendor`),
    sysfs.read(`${dir}/device`),
    sysfs.read(`${dir}/subsystem_vendor`),
    sysfs.read(`${dir}/subsystem_device`),
    sysfs.read(`${dir}/class`),
    sysfs.read(`${dir}/modalias`),
    sysfs.readLink(`${dir}/driver`),
  ]);
  return {
    vendor: num(vendor),
    device: num(device),
    subsystemVendor: num(subVendor),
    subsystemDevice: num(subDevice),
    class: num(klass),
    modalias,
    driver: driverLink === undefined ? undefined : basename(driverLink),
  };
}

/**
 * One function's facts, or undefined when it is gone. `isVf` when the caller knows (from the
 * PF's links): a VF has no sriov_* attributes and its physfn is not needed, so neither is read.
 */
async function readRaw(
  sysfs: Sysfs,
  name: string,
  isVf: boolean | undefined,
  groups: GroupCache,
): Promise<Raw | undefined> {
  const dir = `${DEVICES}/${name}`;
  const devLink = await sysfs.readLink(dir);
  if (devLink === undefined) return undefined;
  const uevent = await sysfs.read(`${dir}/uevent`);
  const [id, numa, override, groupLink, configBytes] = await Promise.all([
    (uevent === undefined ? undefined : parsePciUevent(uevent)) ?? readIdentity(sysfs, dir),
    sysfs.read(`${dir}/numa_node`),
    sysfs.read(`${dir}/driver_override`),
    sysfs.readLink(`${dir}/iommu_group`),
    sysfs.readBytes(`${dir}/config`),
  ]);
  const config = configBytes === undefined ? undefined : parsePciConfig(configBytes);
  const iommuGroup = groupLink === undefined ? undefined : num(basename(groupLink));
  const members = iommuGroup === undefined || groups === 'derive' ? [] : await groupMembers(sysfs, iommuGroup, groups);
  const parentName = basename(devLink.replace(/\/[^/]+$/, ''));
  const numaNode = num(numa);
  const vf = isVf ?? (await sysfs.readLink(`${dir}/physfn`)) !== undefined;
  const sriov = vf ? undefined : await readSriov(sysfs, name);
  return {
    address: parsePciAddress(name),
    name,
    path: posix.resolve(DEVICES, devLink),
    vendor: id.vendor ?? config?.vendor ?? 0,
    device: id.device ?? config?.device ?? 0,
    subsystemVendor: id.subsystemVendor,
    subsystemDevice: id.subsystemDevice,
    class: id.class ?? config?.class ?? 0,
    driver: id.driver,
    driverOverride: override === undefined || override === '(null)' || override === '' ? undefined : override,
    iommuGroup,
    iommuGroupMembers: members,
    numaNode: numaNode === undefined || numaNode < 0 ? undefined : numaNode,
    headerType: config?.headerType ?? 'endpoint',
    multifunction: config?.multifunction ?? false,
    parent: BDF.test(parentName) ? parsePciAddress(parentName) : undefined,
    config,
    modalias: id.modalias,
    ...(sriov === undefined ? {} : { sriov }),
    isVf: vf,
    netdevs: await readNetdevs(sysfs, dir),
  };
}

function groupMembers(sysfs: Sysfs, group: number, cache: Exclude<GroupCache, 'derive'>): Promise<PciAddress[]> {
  let members = cache.get(group);
  if (!members) {
    members = sysfs.list(`/sys/kernel/iommu_groups/${group}/devices`).then((names) =>
      names
        .filter((n) => BDF.test(n))
        .map(parsePciAddress)
        .sort(compareAddress),
    );
    cache.set(group, members);
  }
  return members;
}

/** virtfnN links in index order, by the number in the name: a glob sorts virtfn10 before
 *  virtfn2, and position in a listing is not the VF index. */
async function readVirtfns(sysfs: Sysfs, pf: string): Promise<PciAddress[]> {
  const links = (await sysfs.list(`${DEVICES}/${pf}`))
    .map((n) => /^virtfn(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ index: Number(m[1]), link: m[0] }))
    .sort((a, b) => a.index - b.index);
  const out: PciAddress[] = [];
  for (const { index, link } of links) {
    const target = await sysfs.readLink(`${DEVICES}/${pf}/${link}`);
    if (target === undefined) continue;
    out[index] = parsePciAddress(basename(target));
  }
  return out;
}

async function readSriov(sysfs: Sysfs, name: string): Promise<Sriov | undefined> {
  const dir = `${DEVICES}/${name}`;
  const total = num(await sysfs.read(`${dir}/sriov_totalvfs`));
  if (total === undefined || total === 0) return undefined;
  const [numVfs, offset, stride, vfDevice, autoprobe] = await Promise.all([
    sysfs.read(`${dir}/sriov_numvfs`),
    sysfs.read(`${dir}/sriov_offset`),
    sysfs.read(`${dir}/sriov_stride`),
    sysfs.read(`${dir}/sriov_vf_device`),
    sysfs.read(`${dir}/sriov_drivers_autoprobe`),
  ]);
  return {
    totalVfs: total,
    numVfs: num(numVfs) ?? 0,
    offset: num(offset),
    stride: num(stride),
    // sriov_vf_device is "%x" without 0x.
    vfDevice: vfDevice === undefined ? undefined : Number.parseInt(vfDevice, 16),
    autoprobe: autoprobe !== '0',
    vfs: await readVirtfns(sysfs, name),
  };
}

async function readNetdevs(sysfs: Sysfs, dir: string): Promise<Netdev[]> {
  const names = (await sysfs.list(`${dir}/net`)).sort();
  return Promise.all(
    names.map(async (ifname) => {
      const d = `${dir}/net/${ifname}`;
      const [mac, operstate, ifindex, devPort, physPortId, physPortName, speed] = await Promise.all([
        sysfs.read(`${d}/address`),
        sysfs.read(`${d}/operstate`),
        sysfs.read(`${d}/ifindex`),
        sysfs.read(`${d}/dev_port`),
        sysfs.read(`${d}/phys_port_id`),
        sysfs.read(`${d}/phys_port_name`),
        sysfs.read(`${d}/speed`),
      ]);
      const mbps = num(speed);
      const rep = physPortName === undefined ? null : /^pf(\d+)vf(\d+)$/.exec(physPortName);
      return {
        name: ifname,
        mac: mac === undefined ? undefined : (mac.toLowerCase() as MacAddress),
        operstate,
        ifindex: num(ifindex),
        devPort: num(devPort) ?? 0,
        ...(mbps !== undefined && mbps > 0 ? { speed: mbps } : {}),
        ...(physPortId === undefined || physPortId === '' ? {} : { physPortId }),
        ...(physPortName === undefined || physPortName === '' ? {} : { physPortName }),
        ...(rep ? { representor: { pf: Number(rep[1]), vf: Number(rep[2]) } } : {}),
      };
    }),
  );
}
