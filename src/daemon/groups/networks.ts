import { PassthruError } from '../../conf/error.ts';
import type { DomainDef } from '../../conf/domain/types.ts';
import { formatPciAddress, parsePciAddress } from '../../conf/pci-address.ts';
import { formatNetworkPortXml, type NetworkPortDef, parseNetworkPortXml } from '../../conf/network/port.ts';
import type { DomainHostdev, NetworkPortSummary, PoolKind } from '../../protocol/wire.ts';
import type { DaemonContext, HandlerGroup } from '../context.ts';

/** Networks and device pools: definitions, activation, and what they gave to whom. */
export const networkHandlers = {
  poolDefine: async (a, ctx) => {
    const s = await ctx.pools.define(a.pool, a.xml);
    emit(ctx, 'defined', a.pool, s.name);
    return s;
  },
  poolUndefine: async (a, ctx) => {
    await ctx.pools.undefine({ kind: a.pool, name: a.name });
    emit(ctx, 'undefined', a.pool, a.name);
    return {};
  },
  poolStart: async (a, ctx) => {
    const s = await ctx.pools.start({ kind: a.pool, name: a.name }, await ctx.runs.hostViews.get());
    emit(ctx, 'started', a.pool, a.name);
    return s;
  },
  poolDestroy: async (a, ctx) => {
    const s = await ctx.pools.destroy({ kind: a.pool, name: a.name });
    emit(ctx, 'stopped', a.pool, a.name);
    return s;
  },
  poolAutostart: (a, ctx) => ctx.pools.setAutostart({ kind: a.pool, name: a.name }, a.enable),
  poolList: (a, ctx) => ctx.pools.list(a.pool),
  poolDumpxml: async (a, ctx) => {
    const ref = { kind: a.pool, name: a.name };
    return { xml: ctx.pools.xml(ref, a.inactive ? undefined : await ctx.runs.hostViews.get()) };
  },
  poolInfo: async (a, ctx) => {
    const ref = { kind: a.pool, name: a.name };
    return ctx.pools.info(ref, await ctx.runs.hostViews.get(), (bdf) => ctx.runs.hostdevs.holder(bdf));
  },
  nodedevRelease: async (a, ctx) => {
    const bdf = pciOf(a.name);
    const refs = await ctx.pools.releaseQuarantine(bdf);
    return { pools: refs.map((r) => r.name) };
  },
  netPortCreate: async (a, ctx) => {
    const port = parseNetworkPortXml(a.xml);
    const view = await ctx.runs.hostViews.get();
    return portSummary(await ctx.pools.createPort(a.network, port, view, (bdf) => ctx.runs.hostdevs.holder(bdf)));
  },
  netPortDelete: async (a, ctx) => {
    await ctx.pools.deletePort(a.network, a.uuid);
    return {};
  },
  netPortList: (a, ctx) => ctx.pools.ports(a.network).map(portSummary),
  netPortDumpxml: (a, ctx) => ({ xml: formatNetworkPortXml(ctx.pools.port(a.network, a.uuid)) }),
  domhostdev: (a, ctx) => {
    const obj = ctx.domains.get(a.name);
    return domainHostdevs(obj.run ? obj.run.live : obj.def);
  },
} satisfies HandlerGroup<
  | 'poolDefine'
  | 'poolUndefine'
  | 'poolStart'
  | 'poolDestroy'
  | 'poolAutostart'
  | 'poolList'
  | 'poolDumpxml'
  | 'poolInfo'
  | 'nodedevRelease'
  | 'domhostdev'
  | 'netPortCreate'
  | 'netPortDelete'
  | 'netPortList'
  | 'netPortDumpxml'
>;

function portSummary(p: NetworkPortDef): NetworkPortSummary {
  const device = p.plug?.type === 'hostdev-pci' ? formatPciAddress(p.plug.address) : '-';
  return { uuid: p.uuid, owner: p.owner.name, mac: p.mac, device };
}

function emit(
  ctx: DaemonContext,
  event: 'defined' | 'undefined' | 'started' | 'stopped',
  kind: PoolKind,
  name: string,
) {
  ctx.events.emit({ type: 'pool', event, kind, name });
}

/** A PCI function by node-device name (pci_0000_06_02_0) or address (0000:06:02.0). */
function pciOf(name: string): string {
  const m = /^pci_([0-9a-f]{4})_([0-9a-f]{2})_([0-9a-f]{2})_([0-7])$/.exec(name);
  try {
    return formatPciAddress(parsePciAddress(m ? `${m[1]}:${m[2]}:${m[3]}.${m[4]}` : name));
  } catch {
    throw new PassthruError('NO_DEVICE', `node device '${name}' does not exist on this host`, {
      hint: 'name it by PCI address (0000:06:02.0) or node-device name (pci_0000_06_02_0)',
    });
  }
}

/** Every PCI device a domain holds (live) or asks for (inactive), and where each came from: a
 *  pool VF is listed with its interface and network. */
export function domainHostdevs(def: DomainDef): DomainHostdev[] {
  const rows: DomainHostdev[] = [];
  for (const i of def.devices.interfaces) {
    const mac = i.mac === undefined ? {} : { mac: i.mac };
    if (i.type === 'hostdev' || i.type === 'hostdev-hybrid') {
      rows.push({ alias: i.alias ?? '-', device: formatPciAddress(i.source.address), element: 'interface', ...mac });
    } else if (i.type === 'network') {
      const a = i.actual;
      rows.push({
        alias: i.alias ?? '-',
        ...(a ? { device: formatPciAddress(a.source.address) } : {}),
        element: 'interface',
        network: i.network,
        ...mac,
      });
    }
  }
  for (const h of def.devices.hostdevs) {
    rows.push({
      alias: h.alias ?? '-',
      device: formatPciAddress(h.source.address),
      element: 'hostdev',
      ...(h.source.pool === undefined ? {} : { pool: h.source.pool }),
    });
  }
  for (const h of def.devices.poolHostdevs ?? [])
    rows.push({ alias: h.alias ?? '-', element: 'hostdev', pool: h.pool });
  return rows;
}
