import type { Profile, ProfileDisk } from './profile.ts';
import { type PlacedDevice, placeDevices } from './topology.ts';
import { exists, link, unlink, writeAttr } from './tree.ts';

/**
 * What the host uses its devices for, in the kernel's files (host/host-use.ts reads them):
 * the default routes (/proc/net/route, /proc/net/ipv6_route), the block devices a storage
 * driver creates when it binds (/sys/dev/block/M:m, /sys/class/block/<name>) and the mounted
 * filesystems (/proc/self/mountinfo). The profile says which netdev carries a default route
 * (`defaultRoute`) and which disks a controller has (`disks`).
 *
 * Routes follow their netdev: the kernel deletes the routes of a netdev that goes away, and the
 * host's network manager adds them back when it returns; the sim plays both, so the files
 * always list the default routes of the netdevs that exist. A mount stays when its disk goes
 * (the kernel keeps the superblock of a removed device), so mountinfo is written once, at boot.
 */

/** What these edits need of an operation's context (devices.ts's Ctx has it). */
interface Ctx {
  readonly root: string;
  readonly placed: ReadonlyMap<string, PlacedDevice>;
}

const ROUTE_HEADER = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT';

/** fib_route_seq_show pads each line to 127 characters. */
const pad127 = (s: string): string => s.padEnd(127, ' ');

export function writeRoutes(ctx: Ctx): void {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const p of ctx.placed.values()) {
    for (const n of p.spec.netdevs ?? []) {
      if (n.defaultRoute === undefined || !exists(ctx.root, `sys/class/net/${n.name}`)) continue;
      if (n.defaultRoute !== 'ipv6') {
        // default via 192.168.1.1 (0101A8C0: network byte order printed as a host integer)
        v4.push(pad127(`${n.name}\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0`));
        v4.push(pad127(`${n.name}\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0`));
      }
      if (n.defaultRoute !== 'ipv4') {
        // default via fe80::1 (RTF_UP | RTF_GATEWAY | RTF_DEFAULT | RTF_ADDRCONF)
        const zero = '0'.repeat(32);
        v6.push(
          `${zero} 00 ${zero} 00 fe800000000000000000000000000001 00000400 00000001 00000000 00450003 ${n.name.padStart(8)}`,
        );
      }
    }
  }
  writeAttr(ctx.root, 'proc/net/route', [pad127(ROUTE_HEADER), ...v4].join('\n'), 0o444);
  writeAttr(ctx.root, 'proc/net/ipv6_route', v6.join('\n'), 0o444);
}

/** Whether binding or unbinding this device changes the default routes. */
export function carriesRoute(ctx: Ctx, address: string): boolean {
  return (ctx.placed.get(address)?.spec.netdevs ?? []).some((n) => n.defaultRoute !== undefined);
}

/** The block devices a storage driver's probe creates, in the kernel's shape
 *  (<device>/nvme/nvme0/nvme0n1/nvme0n1p2 for NVMe, <device>/ata1/host0/.../block/sda for SATA). */
export function addDisks(ctx: Ctx, address: string, dir: string): void {
  for (const [i, d] of (ctx.placed.get(address)?.spec.disks ?? []).entries()) {
    const diskDir = `${dir}/${diskPath(d, i)}`;
    addBlock(ctx, diskDir, d.name, d.dev, undefined);
    for (const [n, p] of (d.partitions ?? []).entries()) addBlock(ctx, `${diskDir}/${p.name}`, p.name, p.dev, n + 1);
  }
}

export function removeDisks(ctx: Ctx, address: string, dir: string): void {
  for (const [i, d] of (ctx.placed.get(address)?.spec.disks ?? []).entries()) {
    for (const p of d.partitions ?? []) removeBlock(ctx, p.name, p.dev);
    removeBlock(ctx, d.name, d.dev);
    unlink(ctx.root, `${dir}/${diskPath(d, i).split('/')[0] ?? ''}`);
  }
}

function diskPath(d: ProfileDisk, i: number): string {
  return d.name.startsWith('nvme')
    ? `nvme/nvme${i}/${d.name}`
    : `ata${i + 1}/host${i}/target${i}:0:0/${i}:0:0:0/block/${d.name}`;
}

function addBlock(ctx: Ctx, dir: string, name: string, dev: string, partition: number | undefined): void {
  writeAttr(ctx.root, `${dir}/dev`, dev, 0o444);
  writeAttr(
    ctx.root,
    `${dir}/uevent`,
    `MAJOR=${dev.split(':')[0]}\nMINOR=${dev.split(':')[1]}\nDEVNAME=${name}\nDEVTYPE=${partition === undefined ? 'disk' : 'partition'}`,
    0o644,
  );
  if (partition !== undefined) writeAttr(ctx.root, `${dir}/partition`, String(partition), 0o444);
  link(ctx.root, `sys/dev/block/${dev}`, dir);
  link(ctx.root, `sys/class/block/${name}`, dir);
}

function removeBlock(ctx: Ctx, name: string, dev: string): void {
  unlink(ctx.root, `sys/dev/block/${dev}`);
  unlink(ctx.root, `sys/class/block/${name}`);
}

/** /proc/self/mountinfo at boot: the pseudo filesystems, then each mounted disk or partition. */
export function writeMountinfo(root: string, profile: Profile): void {
  const lines = [
    '21 1 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw',
    '22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw',
    '23 1 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=8108700k,nr_inodes=2027175,mode=755',
  ];
  let id = 30;
  const mounted = placeDevices(profile)
    .flatMap((p) => p.spec.disks ?? [])
    .flatMap((d) => [d, ...(d.partitions ?? [])])
    .filter((b) => b.mount !== undefined)
    // Parents before children: / before /boot before /boot/efi, as they were mounted.
    .sort((a, b) => (a.mount ?? '').length - (b.mount ?? '').length);
  for (const b of mounted) {
    const target = (b.mount ?? '').replaceAll(' ', '\\040');
    lines.push(`${id++} 1 ${b.dev} / ${target} rw,relatime shared:1 - ${b.fstype ?? 'ext4'} /dev/${b.name} rw`);
  }
  writeAttr(root, 'proc/self/mountinfo', lines.join('\n'), 0o444);
}
