import { posix } from 'node:path';
import type { Sysfs } from './types.ts';

/**
 * What the host itself does with its devices, so that `nodedev-check` can say why taking one
 * would hurt: netdevs that carry a default route, block devices that are mounted. Read through
 * the same root as sysfs (/proc/net/route, /proc/net/ipv6_route, /proc/mounts, /sys/class/block).
 */
export interface HostUsage {
  /** netdev name -> 'IPv4 default route' | 'IPv6 default route' */
  readonly routes: ReadonlyMap<string, readonly string[]>;
  /** Mounted block devices: the device's sysfs path (resolved) and where it is mounted. */
  readonly mounts: readonly { readonly device: string; readonly sysPath: string; readonly mountpoint: string }[];
}

export async function readHostUsage(sysfs: Sysfs): Promise<HostUsage> {
  const routes = new Map<string, string[]>();
  const add = (dev: string, what: string): void => {
    routes.set(dev, [...(routes.get(dev) ?? []), what]);
  };
  // Iface Destination Gateway Flags ... Mask: a default route has destination and mask 0.
  for (const line of ((await sysfs.read('/proc/net/route')) ?? '').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f[1] === '00000000' && f[7] === '00000000' && f[0]) add(f[0], 'IPv4 default route');
  }
  // dest dest_len src src_len next_hop metric refcnt use flags dev
  for (const line of ((await sysfs.read('/proc/net/ipv6_route')) ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    const dev = f[9];
    if (f.length >= 10 && /^0{32}$/.test(f[0] ?? '') && f[1] === '00' && dev && dev !== 'lo')
      add(dev, 'IPv6 default route');
  }
  const mounts: { device: string; sysPath: string; mountpoint: string }[] = [];
  for (const line of ((await sysfs.read('/proc/mounts')) ?? '').split('\n')) {
    const [device, mountpoint] = line.split(' ');
    if (!device?.startsWith('/dev/') || mountpoint === undefined) continue;
    const name = posix.basename(device);
    const link = await sysfs.readLink(`/sys/class/block/${name}`);
    if (link !== undefined) mounts.push({ device, sysPath: posix.resolve('/sys/class/block', link), mountpoint });
  }
  return { routes, mounts };
}

/** The mounts whose block device sits below a PCI function's sysfs directory. */
export function mountsBehind(usage: HostUsage, pciSysPath: string): { device: string; mountpoint: string }[] {
  return usage.mounts
    .filter((m) => m.sysPath.startsWith(`${pciSysPath}/`))
    .map(({ device, mountpoint }) => ({ device, mountpoint }));
}
