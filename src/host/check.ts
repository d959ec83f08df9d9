import { basename } from 'node:path';
import { formatPciAddress, type PciAddress, samePciAddress } from '../conf/pci-address.ts';
import { type PciDevice, readPciDevice } from './inventory.ts';
import type { Sysfs } from './types.ts';

/**
 * nodedev-check ADDR: whether a PCI function can be given to a guest, and exactly why not
 * (PRODUCT.md A). VFIO needs every endpoint of the IOMMU group on a vfio driver (or unbound);
 * the blockers an operator cares most about are the host's own network path and disks behind
 * a group member, so those are named as such.
 */
export interface GroupMember {
  readonly address: PciAddress;
  readonly driver: string | undefined;
  readonly netdevs: readonly string[];
  /** Bridges and switch ports may stay on pcieport: VFIO does not need them. */
  readonly bridge: boolean;
}

export interface Assignability {
  readonly address: PciAddress;
  readonly assignable: boolean;
  /** One sentence per blocker, naming the device in the field's words; [] when assignable. */
  readonly reasons: readonly string[];
  /** Things to know that do not block (an SR-IOV PF whose VFs go with it, a driver to unbind). */
  readonly notes: readonly string[];
  readonly iommuGroup: number | undefined;
  readonly members: readonly GroupMember[];
}

const STUBS = new Set(['vfio-pci', 'pci-stub']);
const isStub = (d: string | undefined): boolean => d === undefined || STUBS.has(d) || d.endsWith('_vfio_pci');

export async function checkAssignable(sysfs: Sysfs, address: PciAddress): Promise<Assignability> {
  const dev = await readPciDevice(sysfs, address);
  const members: PciDevice[] = [];
  for (const m of dev.iommuGroupMembers) {
    members.push(samePciAddress(m, address) ? dev : await readPciDevice(sysfs, m));
  }
  if (members.length === 0) members.push(dev);
  const reasons: string[] = [];
  const notes: string[] = [];
  const name = dev.name;
  if (dev.headerType !== 'endpoint') {
    reasons.push(`PCI device ${name} is a ${dev.headerType}: bridges are never assignable (non-endpoint header type)`);
  }
  if (dev.iommuGroup === undefined) {
    reasons.push(
      `PCI device ${name} is in no IOMMU group: the IOMMU is off (boot with intel_iommu=on or amd_iommu=on)`,
    );
  }
  const route = await defaultRouteNetdevs(sysfs);
  const mounts = await mountsBehind(sysfs);
  for (const m of members) {
    const bridge = m.headerType !== 'endpoint';
    const self = samePciAddress(m.address, address);
    const who = self
      ? `PCI device ${name}`
      : `PCI device ${m.name} (in IOMMU group ${dev.iommuGroup ?? '?'} with ${name})`;
    for (const nd of m.netdevs) {
      if (route.has(nd.name)) reasons.push(`${who} carries the host's default route (netdev ${nd.name})`);
    }
    // A disk behind a switch port has the port in its sysfs path too; only endpoints hold it.
    for (const mount of bridge ? [] : mounts.filter((x) => x.path.includes(`/${m.name}/`))) {
      reasons.push(`${who} holds ${mount.source}, mounted on ${mount.target}`);
    }
    if (!self && !bridge && !isStub(m.driver)) {
      const nds = m.netdevs.length === 0 ? '' : `, netdev ${m.netdevs.map((n) => n.name).join(', ')}`;
      reasons.push(
        `${who} is bound to ${m.driver ?? '?'}${nds}: every endpoint of the group must go to the same guest or be unbound from its host driver`,
      );
    }
  }
  if (dev.sriov && dev.sriov.numVfs > 0) {
    notes.push(`PF ${name} has ${dev.sriov.numVfs} VFs: unbinding its driver destroys them all`);
  }
  if (!isStub(dev.driver))
    notes.push(`PCI device ${name} is bound to ${dev.driver ?? '?'}: managed assignment rebinds it to vfio-pci`);
  return {
    address,
    assignable: reasons.length === 0,
    reasons,
    notes,
    iommuGroup: dev.iommuGroup,
    members: members.map((m) => ({
      address: m.address,
      driver: m.driver,
      netdevs: m.netdevs.map((n) => n.name),
      bridge: m.headerType !== 'endpoint',
    })),
  };
}

/** Netdevs of the IPv4 and IPv6 default routes (/proc/net/route, /proc/net/ipv6_route). */
async function defaultRouteNetdevs(sysfs: Sysfs): Promise<Set<string>> {
  const out = new Set<string>();
  for (const line of ((await sysfs.read('/proc/net/route')) ?? '').split('\n').slice(1)) {
    const [iface, dest, , , , , , mask] = line.trim().split(/\s+/);
    if (iface && dest === '00000000' && (mask === undefined || mask === '00000000')) out.add(iface);
  }
  for (const line of ((await sysfs.read('/proc/net/ipv6_route')) ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === '0'.repeat(32) && f[1] === '00' && f[9] !== undefined && f[9] !== 'lo') out.add(f[9]);
  }
  return out;
}

/** Mounted block devices with the sysfs path of the device behind them. */
async function mountsBehind(sysfs: Sysfs): Promise<{ source: string; target: string; path: string }[]> {
  const out: { source: string; target: string; path: string }[] = [];
  for (const line of ((await sysfs.read('/proc/mounts')) ?? '').split('\n')) {
    const [source, target] = line.split(' ');
    if (!source?.startsWith('/dev/') || target === undefined) continue;
    const link = await sysfs.readLink(`/sys/class/block/${basename(source)}`);
    if (link !== undefined) out.push({ source, target, path: `${link}/` });
  }
  return out;
}

export function describe(a: Assignability): string {
  const head = `PCI device ${formatPciAddress(a.address)} ${a.assignable ? 'can' : 'cannot'} be assigned`;
  return [head, ...a.reasons.map((r) => `  - ${r}`), ...a.notes.map((n) => `  note: ${n}`)].join('\n');
}
