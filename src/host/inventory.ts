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
const BDF = /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

const num = (v: string | undefined): number | undefined => {
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v.trim());
  return Number.isFinite(n) ? n : undefined;
};

function compareAddress(a: PciAddress, b: PciAddress): number {
  return a.domain - b.domain || a.bus - b.bus || a.slot - b.slot || a.function - b.function;
}

export async function readInventory(sysfs: Sysfs): Promise<Inventory> {
  const names = (await sysfs.list(DEVICES)).filter((n) => BDF.test(n));
  const raw = await mapLimit(names, 32, (n) => readRaw(sysfs, n));
  // A VF's index comes from its PF's virtfnN links, read once per PF here.
  const index = new Map<string, { pf: PciAddress; index: number }>();
  for (const d of raw) {
    d.sriov?.vfs.forEach((vf, i) => index.set(formatPciAddress(vf), { pf: d.address, index: i }));
  }
  const devices = raw.map((d) => {
    const vf = d.physfnName === undefined ? undefined : index.get(d.name);
    const rest: PciDevice = withoutPhysfn(d);
    return vf === undefined ? rest : { ...rest, physfn: vf };
  });
  return { devices: devices.sort((a, b) => compareAddress(a.address, b.address)) };
}

/** Reads devices a few dozen at a time: each device reads a dozen files at once, and 4096 VFs
 *  at once would open more files than the process may (EMFILE). */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function findDevice(inv: Inventory, address: PciAddress): PciDevice | undefined {
  return inv.devices.find((d) => compareAddress(d.address, address) === 0);
}

/** One device, with its VF index when it is a VF. NO_DEVICE when the host has no such function. */
export async function readPciDevice(sysfs: Sysfs, address: PciAddress): Promise<PciDevice> {
  const name = formatPciAddress(address);
  if (!(await sysfs.exists(`${DEVICES}/${name}`))) {
    throw new PassthruError('NO_DEVICE', `PCI device ${name} does not exist on this host`);
  }
  const d = await readRaw(sysfs, name);
  const physfnName = d.physfnName;
  const rest = withoutPhysfn(d);
  if (physfnName === undefined) return rest;
  const pfLinks = await readVirtfns(sysfs, physfnName);
  const i = pfLinks.findIndex((a) => formatPciAddress(a) === name);
  return i < 0 ? rest : { ...rest, physfn: { pf: parsePciAddress(physfnName), index: i } };
}

type Raw = Omit<PciDevice, 'physfn'> & { physfnName: string | undefined };

function withoutPhysfn(d: Raw): PciDevice {
  const copy: Partial<Raw> = { ...d };
  delete copy.physfnName;
  return copy as PciDevice;
}

async function readRaw(sysfs: Sysfs, name: string): Promise<Raw> {
  const dir = `${DEVICES}/${name}`;
  const [
    vendor,
    device,
    subVendor,
    subDevice,
    klass,
    numa,
    override,
    modalias,
    driverLink,
    groupLink,
    devLink,
    physfn,
  ] = await Promise.all([
    sysfs.read(`${dir}/vendor`),
    sysfs.read(`${dir}/device`),
    sysfs.read(`${dir}/subsystem_vendor`),
    sysfs.read(`${dir}/subsystem_device`),
    sysfs.read(`${dir}/class`),
    sysfs.read(`${dir}/numa_node`),
    sysfs.read(`${dir}/driver_override`),
    sysfs.read(`${dir}/modalias`),
    sysfs.readLink(`${dir}/driver`),
    sysfs.readLink(`${dir}/iommu_group`),
    sysfs.readLink(dir),
    sysfs.readLink(`${dir}/physfn`),
  ]);
  const configBytes = await sysfs.readBytes(`${dir}/config`);
  const config = configBytes === undefined ? undefined : parsePciConfig(configBytes);
  const iommuGroup = groupLink === undefined ? undefined : num(basename(groupLink));
  const members =
    iommuGroup === undefined
      ? []
      : (await sysfs.list(`/sys/kernel/iommu_groups/${iommuGroup}/devices`))
          .filter((n) => BDF.test(n))
          .map(parsePciAddress)
          .sort(compareAddress);
  const parentName = devLink === undefined ? undefined : basename(devLink.replace(/\/[^/]+$/, ''));
  const numaNode = num(numa);
  const sriov = await readSriov(sysfs, name);
  return {
    address: parsePciAddress(name),
    name,
    path: devLink === undefined ? dir : posix.resolve(DEVICES, devLink),
    vendor: num(vendor) ?? config?.vendor ?? 0,
    device: num(device) ?? config?.device ?? 0,
    subsystemVendor: num(subVendor),
    subsystemDevice: num(subDevice),
    class: num(klass) ?? config?.class ?? 0,
    driver: driverLink === undefined ? undefined : basename(driverLink),
    driverOverride: override === undefined || override === '(null)' || override === '' ? undefined : override,
    iommuGroup,
    iommuGroupMembers: members,
    numaNode: numaNode === undefined || numaNode < 0 ? undefined : numaNode,
    headerType: config?.headerType ?? 'endpoint',
    multifunction: config?.multifunction ?? false,
    parent: parentName !== undefined && BDF.test(parentName) ? parsePciAddress(parentName) : undefined,
    config,
    modalias,
    ...(sriov === undefined ? {} : { sriov }),
    physfnName: physfn === undefined ? undefined : basename(physfn),
    netdevs: await readNetdevs(sysfs, dir),
  };
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
