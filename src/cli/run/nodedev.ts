import { PassthruError } from '../../conf/error.ts';
import type {
  NodedevChange,
  NodedevCheck,
  NodeDeviceSummary,
  SriovChange,
  VfTable,
  XmlBody,
} from '../../protocol/wire.ts';
import { table } from '../render.ts';
import type { Invocation } from '../spec.ts';

const path = (name: string): string => `/nodedevs/${encodeURIComponent(name)}`;
const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

export async function list({ ctx, opts }: Invocation): Promise<void> {
  const cap = opts['cap'];
  if (cap !== undefined && cap !== 'pci' && cap !== 'net') {
    throw new PassthruError('INVALID_ARG', `invalid --cap '${String(cap)}': use pci or net`);
  }
  const devices = await ctx.client().get<NodeDeviceSummary[]>(`/nodedevs${cap ? `?cap=${cap}` : ''}`);
  ctx.out(opts['json'] ? json(devices) : devices.map((d) => `${d.name}\n`).join(''));
}

export async function dumpxml({ ctx, args: [name = ''] }: Invocation): Promise<void> {
  ctx.out((await ctx.client().get<XmlBody>(`${path(name)}/xml`)).xml);
}

export async function vfs({ ctx, args: [pf = ''], opts }: Invocation): Promise<void> {
  const t = await ctx.client().get<VfTable>(`${path(pf)}/vfs`);
  ctx.out(opts['json'] ? json(t) : renderVfTable(t));
}

export async function detach({ ctx, args: [name = ''], opts }: Invocation): Promise<void> {
  const r = await ctx
    .client()
    .post<NodedevChange>(`${path(name)}/detach`, { driver: opts['driver'], ...(opts['force'] ? { force: true } : {}) });
  ctx.out(`Device ${r.device} detached (driver ${r.driver ?? 'none'})\n`);
}

export async function reattach({ ctx, args: [name = ''] }: Invocation): Promise<void> {
  const r = await ctx.client().post<NodedevChange>(`${path(name)}/reattach`);
  ctx.out(`Device ${r.device} re-attached (driver ${r.driver ?? 'none'})\n`);
}

export async function reset({ ctx, args: [name = ''] }: Invocation): Promise<void> {
  const r = await ctx.client().post<NodedevChange>(`${path(name)}/reset`);
  ctx.out(`Device ${r.device} reset\n`);
}

export async function check({ ctx, args: [name = ''], opts }: Invocation): Promise<void> {
  const r = await ctx.client().get<NodedevCheck>(`${path(name)}/check`);
  ctx.out(opts['json'] ? json(r) : renderCheck(r));
}

export async function sriov({ ctx, args: [pf = ''], opts }: Invocation): Promise<void> {
  const numvfs = String(opts['numvfs']);
  const autoprobe = opts['autoprobe'];
  if (!/^\d{1,5}$/.test(numvfs))
    throw new PassthruError('INVALID_ARG', `invalid --numvfs '${numvfs}': a VF count 0..65535`);
  if (autoprobe !== undefined && autoprobe !== 'on' && autoprobe !== 'off') {
    throw new PassthruError('INVALID_ARG', `invalid --autoprobe '${String(autoprobe)}': on or off`);
  }
  const r = await ctx.client().post<SriovChange>(`${path(pf)}/sriov`, {
    numVfs: Number(numvfs),
    ...(autoprobe === undefined ? {} : { autoprobe: autoprobe === 'on' }),
  });
  ctx.out(
    `PF ${r.pf}: ${r.before} -> ${r.after} VFs${r.settled ? '' : ' (some VFs had not settled when the wait ended)'}\n`,
  );
}

export function renderCheck(r: NodedevCheck): string {
  const lines = [`${r.device}: ${r.assignable ? 'assignable' : 'NOT assignable'}`];
  for (const why of r.reasons) lines.push(`  - ${why}`);
  for (const note of r.notes) lines.push(`  note: ${note}`);
  if (r.iommuGroup !== undefined) lines.push(`IOMMU group ${r.iommuGroup}:`);
  for (const m of r.members) {
    const extra = [m.bridge ? 'bridge' : '', m.heldBy ? `held by ${m.heldBy}` : ''].filter(Boolean).join('; ');
    lines.push(
      `  ${m.address}  driver ${m.driver ?? '-'}  netdevs ${m.netdevs.join(',') || '-'}${extra ? `  (${extra})` : ''}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** One line per VF port, the same columns as the JSON: a dual-port VF has two lines. */
export function renderVfTable(t: VfTable): string {
  const onOff = (b: boolean | undefined): string => (b === undefined ? '-' : b ? 'on' : 'off');
  return `PF ${t.pf} (${t.pfNetdev})\n${table(
    [
      'VF',
      'Address',
      'Port',
      'PF netdev',
      'Netdev',
      'Admin MAC',
      'VLAN',
      'QoS',
      'Proto',
      'Spoofchk',
      'Trust',
      'Min TX',
      'Max TX',
      'Link',
      'Driver',
      'Domain',
    ],
    t.vfs.flatMap((v) =>
      v.ports.map((p) => [
        String(v.vf),
        v.address,
        String(p.port),
        p.pfNetdev,
        p.netdev ?? '-',
        p.mac,
        String(p.vlan),
        String(p.qos),
        p.proto,
        onOff(p.spoofchk),
        onOff(p.trust),
        String(p.minTxRate),
        String(p.maxTxRate),
        p.linkState ?? '-',
        v.driver ?? '-',
        v.domain ?? '-',
      ]),
    ),
  )}`;
}
