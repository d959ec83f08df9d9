import { functionOfPath } from './inventory.ts';
import type { Sysfs } from './types.ts';

/**
 * What the host itself needs of its PCI functions: the network path behind its default routes
 * and the disks under its mounted filesystems. Taking such a function from the host (binding
 * vfio-pci) cuts the host off or pulls a filesystem from under it, so the device manager never
 * detaches a device whose IOMMU group holds one, unless told `--force` (hostdev/guards.ts), and
 * nodedev-check names them (host/check.ts).
 *
 * Read from the kernel's own files, the same on linux and sim (the sim writes them in the
 * kernel's format from its profile):
 * - /proc/net/route and /proc/net/ipv6_route: the netdevs of the default routes; a virtual
 *   netdev (bridge, bond, VLAN) is followed down its `lower_*` links to the NICs under it;
 * - /proc/self/mountinfo: each mounted filesystem's device major:minor, found through
 *   /sys/dev/block/M:m (device-mapper and md devices through their `slaves/`); a filesystem
 *   with an anonymous device (major 0, btrfs) through its source's /sys/class/block entry.
 */

/** PCI function (DDDD:BB:SS.F) -> why the host needs it, one phrase each ("carries the host's
 *  IPv4 default route (netdev eno1)", "holds /dev/nvme0n1p2, mounted on /"). */
export type HostUse = ReadonlyMap<string, readonly string[]>;

export async function readHostUse(sysfs: Sysfs): Promise<HostUse> {
  const out = new Map<string, string[]>();
  const add = (bdf: string, why: string): void => {
    const list = out.get(bdf) ?? [];
    if (!list.includes(why)) list.push(why);
    out.set(bdf, list);
  };
  for (const [netdev, families] of await defaultRouteNetdevs(sysfs)) {
    const family = `${[...families].sort().join(' and ')} default route${families.size > 1 ? 's' : ''}`;
    for (const { bdf, via } of await netdevFunctions(sysfs, netdev, 0)) {
      add(bdf, `carries the host's ${family} (netdev ${via === netdev ? netdev : `${via} under ${netdev}`})`);
    }
  }
  const bySource = new Map<string, { targets: string[]; functions: Set<string> }>();
  for (const m of await mounts(sysfs)) {
    const functions = await blockFunctions(sysfs, m);
    if (functions.length === 0) continue;
    const entry = bySource.get(m.source) ?? { targets: [], functions: new Set<string>() };
    if (!entry.targets.includes(m.target)) entry.targets.push(m.target);
    for (const f of functions) entry.functions.add(f);
    bySource.set(m.source, entry);
  }
  for (const [source, { targets, functions }] of bySource) {
    // Bind mounts repeat one filesystem many times (containers): name the first, count the rest.
    const more = targets.length > 1 ? ` (and ${targets.length - 1} more)` : '';
    for (const bdf of functions) add(bdf, `holds ${source}, mounted on ${targets[0] ?? '?'}${more}`);
  }
  return out;
}

/** Netdevs of the IPv4 and IPv6 default routes, with their families. */
async function defaultRouteNetdevs(sysfs: Sysfs): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  const add = (netdev: string, family: string): void => {
    out.set(netdev, (out.get(netdev) ?? new Set()).add(family));
  };
  // Iface Destination Gateway Flags RefCnt Use Metric Mask ... (hex, network byte order)
  for (const line of ((await sysfs.read('/proc/net/route')) ?? '').split('\n').slice(1)) {
    const [iface, dest, , , , , , mask] = line.trim().split(/\s+/);
    if (iface && dest === '00000000' && (mask === undefined || mask === '00000000')) add(iface, 'IPv4');
  }
  // dest dest_plen src src_plen nexthop metric refcnt use flags devname
  for (const line of ((await sysfs.read('/proc/net/ipv6_route')) ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === '0'.repeat(32) && f[1] === '00' && f[9] !== undefined && f[9] !== 'lo') add(f[9], 'IPv6');
  }
  return out;
}

/** The PCI functions under a netdev: its own device, or those of the netdevs below a bridge,
 *  bond or VLAN (`lower_<name>` links), each with the physical netdev it was reached by. */
async function netdevFunctions(sysfs: Sysfs, netdev: string, depth: number): Promise<{ bdf: string; via: string }[]> {
  const link = await sysfs.readLink(`/sys/class/net/${netdev}`);
  const bdf = link === undefined ? undefined : functionOfPath(link);
  if (bdf !== undefined) return [{ bdf, via: netdev }];
  if (depth > 8) return [];
  const out: { bdf: string; via: string }[] = [];
  for (const entry of await sysfs.list(`/sys/class/net/${netdev}`)) {
    if (entry.startsWith('lower_')) out.push(...(await netdevFunctions(sysfs, entry.slice(6), depth + 1)));
  }
  return out;
}

interface Mount {
  readonly dev: string;
  readonly source: string;
  readonly target: string;
}

/** /proc/self/mountinfo: "36 35 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw". */
async function mounts(sysfs: Sysfs): Promise<Mount[]> {
  const out: Mount[] = [];
  for (const line of ((await sysfs.read('/proc/self/mountinfo')) ?? '').split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-');
    const dev = f[2];
    const target = f[4];
    const source = dash < 0 ? undefined : f[dash + 2];
    if (dev === undefined || target === undefined || source === undefined) continue;
    out.push({ dev, source: unescape(source), target: unescape(target) });
  }
  return out;
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

async function blockFunctions(sysfs: Sysfs, m: Mount): Promise<string[]> {
  if (!m.dev.startsWith('0:')) {
    const found = await blockDeviceFunctions(sysfs, `/sys/dev/block/${m.dev}`, 0);
    if (found.length > 0) return found;
  }
  if (!m.source.startsWith('/dev/')) return [];
  return blockDeviceFunctions(sysfs, `/sys/class/block/${m.source.slice(m.source.lastIndexOf('/') + 1)}`, 0);
}

/** The PCI functions behind a block device: the one in its sysfs path, or for a virtual one
 *  (device-mapper, md) those of the devices it is built on. */
async function blockDeviceFunctions(sysfs: Sysfs, path: string, depth: number): Promise<string[]> {
  const link = await sysfs.readLink(path);
  if (link === undefined) return [];
  const bdf = functionOfPath(link);
  if (bdf !== undefined) return [bdf];
  if (depth > 8) return [];
  const out: string[] = [];
  for (const slave of await sysfs.list(`${path}/slaves`)) {
    out.push(...(await blockDeviceFunctions(sysfs, `/sys/class/block/${slave}`, depth + 1)));
  }
  return out;
}
