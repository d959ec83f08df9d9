import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { formatPciAddress, type PciAddress } from '../../conf/pci-address.ts';
import { functionOfPath } from '../inventory.ts';
import { parsePciConfig } from '../pci-config.ts';

/**
 * The sim tree's primitive edits, each leaving it shaped as the kernel's: relative symlinks
 * (`driver`, `iommu_group`, `physfn`, `virtfnN`, `/sys/bus/pci/devices/<BDF>`,
 * `/sys/class/net/<if>`), attribute files with the kernel's formatting. Paths given to these
 * functions are relative to the sim root ('sys/bus/pci/...'). Synchronous on purpose: the sim
 * is a test double and its edits must not interleave.
 */
export const BUS_DEVICES = 'sys/bus/pci/devices';
export const DRIVERS = 'sys/bus/pci/drivers';
export const IOMMU_GROUPS = 'sys/kernel/iommu_groups';
export const CLASS_NET = 'sys/class/net';
export const DEV_VFIO = 'dev/vfio';

export const bdf = formatPciAddress;

/** Runs a file creation, making the parent directory only when it is missing (a mkdir per
 *  file costs more than the file at 4096 VFs). */
function inDir<T>(path: string, make: () => T): T {
  try {
    return make();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dirname(path), { recursive: true });
    return make();
  }
}

/**
 * The PCI functions the edits of one kernel operation touched, by name: the sim's word on what
 * changed, as a uevent's devpath is the kernel's (watch.ts re-reads only those). A path names
 * the function it is in by its last BDF ('sys/devices/pci0000:00/0000:00:03.0/0000:06:10.2/net/x').
 */
let touched: Set<string> | undefined;

/** `<dir>/sim/<CHANGE_LOG>`: one line per kernel operation, the names of the functions it touched. */
export const CHANGE_LOG = 'changes';

function touch(rel: string): void {
  if (touched === undefined) return;
  const name = functionOfPath(rel);
  if (name !== undefined) touched.add(name);
}

/** Runs `fn` (synchronous edits) and adds the functions it touched to `into`, even when it
 *  throws half way (what it did edit has changed). */
export function recordTouches<T>(into: Set<string>, fn: () => T): T {
  const outer = touched;
  touched = into;
  try {
    return fn();
  } finally {
    touched = outer;
    for (const n of into) outer?.add(n);
  }
}

export function writeAttr(root: string, rel: string, value: string | Buffer, mode = 0o644): void {
  touch(rel);
  const p = join(root, rel);
  inDir(p, () => {
    writeFileSync(p, typeof value === 'string' ? `${value}\n` : value, { mode });
  });
}

export function readAttr(root: string, rel: string): string | undefined {
  try {
    return readFileSync(join(root, rel), 'utf8').replace(/\n$/, '');
  } catch {
    return undefined;
  }
}

/** A symlink at `linkRel` pointing at `targetRel`, written relative as the kernel does. */
export function link(root: string, linkRel: string, targetRel: string): void {
  touch(linkRel);
  touch(targetRel);
  const p = join(root, linkRel);
  const target = relative(dirname(p), join(root, targetRel));
  inDir(p, () => {
    try {
      symlinkSync(target, p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      rmSync(p, { force: true });
      symlinkSync(target, p);
    }
  });
}

export function unlink(root: string, rel: string): void {
  touch(rel);
  rmSync(join(root, rel), { force: true, recursive: true });
}

export function exists(root: string, rel: string): boolean {
  return existsSync(join(root, rel));
}

export function list(root: string, rel: string): string[] {
  try {
    return readdirSync(join(root, rel));
  } catch {
    return [];
  }
}

/** Where a link points, relative to the root (the kernel's links are relative to the link). */
export function resolveLink(root: string, rel: string): string | undefined {
  try {
    return relative(root, join(root, dirname(rel), readlinkSync(join(root, rel))));
  } catch {
    return undefined;
  }
}

/** The device directory ('sys/devices/pci0000:00/.../0000:06:00.0') of a BDF. */
export function deviceDir(root: string, address: string): string | undefined {
  return resolveLink(root, `${BUS_DEVICES}/${address}`);
}

export function driverOf(root: string, address: string): string | undefined {
  const target = resolveLink(root, `${BUS_DEVICES}/${address}/driver`);
  return target === undefined ? undefined : basename(target);
}

export function ensureDriver(root: string, name: string): void {
  const dir = `${DRIVERS}/${name}`;
  if (exists(root, dir)) return;
  for (const f of ['bind', 'unbind', 'new_id', 'remove_id']) writeAttr(root, `${dir}/${f}`, '', 0o200);
}

export interface NewPciDevice {
  readonly address: PciAddress;
  /** The directory under sys/devices. */
  readonly dir: string;
  readonly vendor: number;
  readonly device: number;
  readonly class: number;
  readonly numaNode: number;
  readonly iommuGroup: number;
  readonly config: Buffer;
}

const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;
const up8 = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');

/** The methods of a fresh device's `reset_method`: the function-level ones from its config
 *  space, and `bus` off the root bus (whether it works is probed when it is asked for). */
export function initialResetMethods(config: Buffer, bus: number): string {
  const cfg = parsePciConfig(config);
  const m = [
    ...(cfg?.pcie?.flr ? ['flr'] : []),
    ...(cfg?.afFlr ? ['af_flr'] : []),
    ...(cfg?.pmReset ? ['pm'] : []),
    ...(bus !== 0 ? ['bus'] : []),
  ];
  return m.join(' ');
}

export function addPciDevice(root: string, d: NewPciDevice): void {
  const name = bdf(d.address);
  const c = d.class;
  writeAttr(root, `${d.dir}/vendor`, hex4(d.vendor), 0o444);
  writeAttr(root, `${d.dir}/device`, hex4(d.device), 0o444);
  writeAttr(root, `${d.dir}/subsystem_vendor`, hex4(d.vendor), 0o444);
  writeAttr(root, `${d.dir}/subsystem_device`, hex4(0), 0o444);
  writeAttr(root, `${d.dir}/class`, `0x${c.toString(16).padStart(6, '0')}`, 0o444);
  writeAttr(root, `${d.dir}/revision`, '0x01', 0o444);
  writeAttr(root, `${d.dir}/numa_node`, String(d.numaNode), 0o644);
  writeAttr(root, `${d.dir}/driver_override`, '(null)', 0o644);
  writeAttr(root, `${d.dir}/enable`, '1', 0o644);
  writeAttr(root, `${d.dir}/reset`, '', 0o200);
  // The kernel shows reset_method only on a function with a reset method.
  const methods = initialResetMethods(d.config, d.address.bus);
  if (methods !== '') writeAttr(root, `${d.dir}/reset_method`, methods, 0o644);
  writeAttr(root, `${d.dir}/remove`, '', 0o200);
  writeAttr(root, `${d.dir}/config`, d.config, 0o644);
  const [bc, sc, pi] = [(c >> 16) & 0xff, (c >> 8) & 0xff, c & 0xff].map((x) =>
    x.toString(16).toUpperCase().padStart(2, '0'),
  );
  const modalias = `pci:v${up8(d.vendor)}d${up8(d.device)}sv${up8(d.vendor)}sd${up8(0)}bc${bc}sc${sc}i${pi}`;
  writeAttr(root, `${d.dir}/modalias`, modalias, 0o444);
  // The kernel builds uevent when it is read (pci_uevent, plus DRIVER= from the driver core);
  // the sim keeps it written, and attachDriver/detachDriver keep its DRIVER= line true.
  const up4 = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');
  writeAttr(
    root,
    `${d.dir}/uevent`,
    [
      `PCI_CLASS=${up4(c)}`,
      `PCI_ID=${up4(d.vendor)}:${up4(d.device)}`,
      `PCI_SUBSYS_ID=${up4(d.vendor)}:${up4(0)}`,
      `PCI_SLOT_NAME=${name}`,
      `MODALIAS=${modalias}`,
    ].join('\n'),
    0o644,
  );
  link(root, `${d.dir}/subsystem`, 'sys/bus/pci');
  link(root, `${BUS_DEVICES}/${name}`, d.dir);
  joinIommuGroup(root, name, d.dir, d.iommuGroup);
}

function joinIommuGroup(root: string, name: string, dir: string, group: number): void {
  const g = `${IOMMU_GROUPS}/${group}`;
  if (!exists(root, `${g}/type`)) writeAttr(root, `${g}/type`, 'DMA', 0o644);
  link(root, `${g}/devices/${name}`, dir);
  link(root, `${dir}/iommu_group`, g);
}

export function iommuGroupOf(root: string, address: string): number | undefined {
  const target = resolveLink(root, `${BUS_DEVICES}/${address}/iommu_group`);
  return target === undefined ? undefined : Number(basename(target));
}

/** The kernel's IDA hands out the lowest free number. */
export function lowestFree(used: ReadonlySet<number>): number {
  let n = 0;
  while (used.has(n)) n++;
  return n;
}

export function removePciDevice(root: string, address: string): void {
  const dir = deviceDir(root, address);
  const group = iommuGroupOf(root, address);
  if (group !== undefined) {
    unlink(root, `${IOMMU_GROUPS}/${group}/devices/${address}`);
    if (list(root, `${IOMMU_GROUPS}/${group}/devices`).length === 0) unlink(root, `${IOMMU_GROUPS}/${group}`);
  }
  unlink(root, `${BUS_DEVICES}/${address}`);
  if (dir !== undefined) unlink(root, dir);
}

export function attachDriver(root: string, address: string, driver: string): void {
  const dir = deviceDir(root, address);
  if (dir === undefined) return;
  ensureDriver(root, driver);
  link(root, `${dir}/driver`, `${DRIVERS}/${driver}`);
  link(root, `${DRIVERS}/${driver}/${address}`, dir);
  setUeventDriver(root, dir, driver);
}

/** The DRIVER= line of a device's uevent: first, as the driver core adds it before the bus's. */
function setUeventDriver(root: string, dir: string, driver: string | undefined): void {
  const text = readAttr(root, `${dir}/uevent`);
  if (text === undefined) return;
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('DRIVER='));
  writeAttr(root, `${dir}/uevent`, [...(driver === undefined ? [] : [`DRIVER=${driver}`]), ...lines].join('\n'), 0o644);
}

export function detachDriver(root: string, address: string): void {
  const driver = driverOf(root, address);
  const dir = deviceDir(root, address);
  if (driver === undefined || dir === undefined) return;
  unlink(root, `${dir}/driver`);
  unlink(root, `${DRIVERS}/${driver}/${address}`);
  setUeventDriver(root, dir, undefined);
}

export interface NewNetdev {
  readonly name: string;
  readonly mac: string;
  readonly ifindex: number;
  readonly devPort: number;
  readonly operstate: string;
  readonly physPortId?: string;
  readonly physPortName?: string;
}

export function addNetdev(root: string, deviceDirRel: string, n: NewNetdev): void {
  const d = `${deviceDirRel}/net/${n.name}`;
  writeAttr(root, `${d}/address`, n.mac, 0o444);
  writeAttr(root, `${d}/addr_len`, '6', 0o444);
  writeAttr(root, `${d}/operstate`, n.operstate, 0o444);
  writeAttr(root, `${d}/carrier`, n.operstate === 'up' ? '1' : '0', 0o644);
  writeAttr(root, `${d}/dev_port`, String(n.devPort), 0o444);
  writeAttr(root, `${d}/dev_id`, '0x0', 0o444);
  writeAttr(root, `${d}/ifindex`, String(n.ifindex), 0o444);
  writeAttr(root, `${d}/iflink`, String(n.ifindex), 0o444);
  writeAttr(root, `${d}/mtu`, '1500', 0o644);
  writeAttr(root, `${d}/type`, '1', 0o444);
  writeAttr(root, `${d}/speed`, n.operstate === 'up' ? '10000' : '-1', 0o444);
  if (n.physPortId !== undefined) writeAttr(root, `${d}/phys_port_id`, n.physPortId, 0o444);
  if (n.physPortName !== undefined) writeAttr(root, `${d}/phys_port_name`, n.physPortName, 0o444);
  link(root, `${d}/device`, deviceDirRel);
  link(root, `${CLASS_NET}/${n.name}`, d);
}

export function removeNetdevs(root: string, deviceDirRel: string): void {
  for (const name of list(root, `${deviceDirRel}/net`)) unlink(root, `${CLASS_NET}/${name}`);
  unlink(root, `${deviceDirRel}/net`);
}
