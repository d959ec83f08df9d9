import { readFile } from 'node:fs/promises';
import { PassthruError } from '../../conf/error.ts';
import type { DomainSummary, XmlBody } from '../../protocol/wire.ts';
import { table } from '../render.ts';
import type { Invocation } from '../spec.ts';

const enc = encodeURIComponent;

export async function readInput(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new PassthruError(
      'INVALID_ARG',
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}

export async function define({ ctx, args: [file = ''] }: Invocation): Promise<void> {
  const d = await ctx.client().post<DomainSummary>('/domains', { xml: await readInput(file) });
  ctx.out(`Domain '${d.name}' defined from ${file}\n`);
}

export async function undefine({ ctx, args: [name = ''] }: Invocation): Promise<void> {
  await ctx.client().delete(`/domains/${enc(name)}`);
  ctx.out(`Domain '${name}' has been undefined\n`);
}

export async function start({ ctx, args: [name = ''] }: Invocation): Promise<void> {
  await ctx.client().post(`/domains/${enc(name)}/start`);
  ctx.out(`Domain '${name}' started\n`);
}

export async function destroy({ ctx, args: [name = ''] }: Invocation): Promise<void> {
  await ctx.client().post(`/domains/${enc(name)}/destroy`);
  ctx.out(`Domain '${name}' destroyed\n`);
}

export async function list({ ctx, opts }: Invocation): Promise<void> {
  const all = await ctx.client().get<DomainSummary[]>('/domains');
  const shown = opts['all'] ? all : all.filter((d) => d.state !== 'shutoff');
  if (opts['json']) ctx.out(`${JSON.stringify(shown, null, 2)}\n`);
  else
    ctx.out(
      table(
        ['Id', 'Name', 'State'],
        shown.map((d) => [d.pid ? String(d.pid) : '-', d.name, d.state === 'shutoff' ? 'shut off' : d.state]),
      ),
    );
}

export async function dumpxml({ ctx, args: [name = ''], opts }: Invocation): Promise<void> {
  const r = await ctx.client().get<XmlBody>(`/domains/${enc(name)}/xml${opts['inactive'] ? '?inactive=1' : ''}`);
  ctx.out(r.xml);
}
