import type {
  DomainHostdev,
  NetworkPortSummary,
  PoolInfo,
  PoolKind,
  PoolSummary,
  XmlBody,
} from '../../protocol/wire.ts';
import { table } from '../render.ts';
import type { Invocation } from '../spec.ts';
import { readInput } from './domain.ts';

const enc = encodeURIComponent;
const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;
const PATH: Record<PoolKind, string> = { network: '/networks', devicepool: '/devpools' };
const NOUN: Record<PoolKind, string> = { network: 'Network', devicepool: 'Device pool' };
const base = (kind: PoolKind, name: string): string => `${PATH[kind]}/${enc(name)}`;

export async function define(kind: PoolKind, { ctx, args: [file = ''] }: Invocation): Promise<void> {
  const s = await ctx.client().post<PoolSummary>(PATH[kind], { xml: await readInput(file) });
  ctx.out(`${NOUN[kind]} ${s.name} defined from ${file}\n`);
}

export async function undefine(kind: PoolKind, { ctx, args: [name = ''] }: Invocation): Promise<void> {
  await ctx.client().delete(base(kind, name));
  ctx.out(`${NOUN[kind]} ${name} has been undefined\n`);
}

export async function start(kind: PoolKind, { ctx, args: [name = ''] }: Invocation): Promise<void> {
  await ctx.client().post(`${base(kind, name)}/start`);
  ctx.out(`${NOUN[kind]} ${name} started\n`);
}

export async function destroy(kind: PoolKind, { ctx, args: [name = ''] }: Invocation): Promise<void> {
  await ctx.client().post(`${base(kind, name)}/destroy`);
  ctx.out(`${NOUN[kind]} ${name} destroyed\n`);
}

export async function autostart(kind: PoolKind, { ctx, args: [name = ''], opts }: Invocation): Promise<void> {
  const off = opts['disable'] === true;
  await ctx.client().post(`${base(kind, name)}/autostart`, { enable: !off });
  ctx.out(`${NOUN[kind]} ${name} ${off ? 'unmarked' : 'marked'} as autostarted\n`);
}

export async function list(kind: PoolKind, { ctx, opts }: Invocation): Promise<void> {
  const all = await ctx.client().get<PoolSummary[]>(PATH[kind]);
  const shown = opts['all'] ? all : all.filter((p) => p.active);
  ctx.out(
    opts['json']
      ? json(shown)
      : table(
          ['Name', 'State', 'Autostart'],
          shown.map((p) => [p.name, p.active ? 'active' : 'inactive', p.autostart ? 'yes' : 'no']),
        ),
  );
}

export async function dumpxml(kind: PoolKind, { ctx, args: [name = ''], opts }: Invocation): Promise<void> {
  ctx.out((await ctx.client().get<XmlBody>(`${base(kind, name)}/xml${opts['inactive'] ? '?inactive=1' : ''}`)).xml);
}

export async function info(kind: PoolKind, { ctx, args: [name = ''], opts }: Invocation): Promise<void> {
  const i = await ctx.client().get<PoolInfo>(`${base(kind, name)}/info`);
  ctx.out(opts['json'] ? json(i) : infoText(i));
}

function infoText(i: PoolInfo): string {
  const lines = [
    ['Name:', i.name],
    ['UUID:', i.uuid ?? '-'],
    ['Active:', i.active ? 'yes' : 'no'],
    ['Autostart:', i.autostart ? 'yes' : 'no'],
    ['Size:', String(i.size)],
    ['Free:', String(i.free)],
    ['In use:', String(i.inUse.length)],
    ['Quarantined:', String(i.quarantined.length)],
  ].map(([k, v]) => `${(k ?? '').padEnd(14)}${v ?? ''}`);
  for (const u of i.inUse) lines.push(`  ${u.device}  ${u.domain}`);
  for (const q of i.quarantined) lines.push(`  ${q}  quarantined`);
  for (const u of i.unhealthy) lines.push(`  ${u.device}  unhealthy: ${u.problem}`);
  return `${lines.join('\n')}\n`;
}

export async function release({ ctx, args: [device = ''] }: Invocation): Promise<void> {
  const r = await ctx.client().post<{ pools: string[] }>(`/nodedevs/${enc(device)}/release`);
  ctx.out(`Device ${device} released into device pool ${r.pools.join(', ')}\n`);
}

export async function domhostdev({ ctx, args: [name = ''], opts }: Invocation): Promise<void> {
  const rows = await ctx.client().get<DomainHostdev[]>(`/domains/${enc(name)}/hostdevs`);
  ctx.out(
    opts['json']
      ? json(rows)
      : table(
          ['Alias', 'Device', 'Element', 'From', 'MAC'],
          rows.map((r) => [
            r.alias,
            r.device ?? '-',
            r.element,
            r.network !== undefined ? `network ${r.network}` : r.pool !== undefined ? `pool ${r.pool}` : '-',
            r.mac ?? '-',
          ]),
        ),
  );
}

const ports = (network: string): string => `${base('network', network)}/ports`;

export async function portCreate({ ctx, args: [network = '', file = ''] }: Invocation): Promise<void> {
  const p = await ctx.client().post<NetworkPortSummary>(ports(network), { xml: await readInput(file) });
  ctx.out(`Network port ${p.uuid} created from ${file} (VF ${p.device})\n`);
}

export async function portDelete({ ctx, args: [network = '', uuid = ''] }: Invocation): Promise<void> {
  await ctx.client().delete(`${ports(network)}/${enc(uuid)}`);
  ctx.out(`Network port ${uuid} deleted\n`);
}

export async function portList({ ctx, args: [network = ''], opts }: Invocation): Promise<void> {
  const rows = await ctx.client().get<NetworkPortSummary[]>(ports(network));
  ctx.out(
    opts['json']
      ? json(rows)
      : table(
          ['UUID', 'Owner', 'MAC', 'VF'],
          rows.map((p) => [p.uuid, p.owner, p.mac, p.device]),
        ),
  );
}

export async function portDumpxml({ ctx, args: [network = '', uuid = ''] }: Invocation): Promise<void> {
  ctx.out((await ctx.client().get<XmlBody>(`${ports(network)}/${enc(uuid)}/xml`)).xml);
}
