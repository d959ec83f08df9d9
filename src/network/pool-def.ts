import { formatNetworkXml } from '../conf/network/format.ts';
import { readNetworkXml } from '../conf/network/read.ts';
import type { NetworkDef } from '../conf/network/types.ts';
import { formatDevicePoolXml } from '../conf/pool/format.ts';
import { readDevicePoolXml } from '../conf/pool/read.ts';
import type { DevicePoolDef } from '../conf/pool/types.ts';
import type { HealthRules } from './health.ts';
import { devicePoolMembers, type HostView, type Member, networkMembers } from './members.ts';
import type { PoolKind } from './store.ts';

/** A network or a device pool: the two kinds of pool, handled alike wherever they can be. */
export type PoolDef =
  | { readonly kind: 'network'; readonly def: NetworkDef }
  | { readonly kind: 'devicepool'; readonly def: DevicePoolDef };

export function quarantines(d: PoolDef): boolean {
  return d.kind === 'devicepool' && d.def.quarantine === true;
}

export function parseDef(kind: PoolKind, xml: string, source: string): PoolDef {
  return kind === 'network'
    ? { kind, def: readNetworkXml(xml, source) }
    : { kind, def: readDevicePoolXml(xml, source) };
}

export function membersOf(def: PoolDef, view: HostView): Member[] {
  return def.kind === 'network' ? networkMembers(def.def, view) : devicePoolMembers(def.def, view);
}

export function healthRules(def: PoolDef): HealthRules {
  if (def.kind === 'network') {
    const f = def.def.forward;
    return { managed: f?.managed ?? false, stub: f?.driver?.model ?? 'vfio-pci' };
  }
  return { managed: def.def.managed, stub: def.def.driver?.model ?? 'vfio-pci' };
}

export function formatDef(
  d: PoolDef,
  live: { members: readonly Member[]; usedBy: (bdf: string) => string | undefined } | undefined,
): string {
  if (d.kind === 'network') {
    const f = d.def.forward;
    if (!live || !f || f.pfs.length === 0) return formatNetworkXml(d.def, { inactive: !live });
    return formatNetworkXml({ ...d.def, forward: { ...f, addresses: live.members.map((m) => m.address) } });
  }
  if (!live) return formatDevicePoolXml(d.def, { inactive: true });
  const resolved = live.members.map((m) => {
    const usedBy = live.usedBy(m.bdf);
    return { address: m.address, ...(usedBy === undefined ? {} : { usedBy }) };
  });
  return formatDevicePoolXml({ ...d.def, resolved });
}
