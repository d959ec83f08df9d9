import { PassthruError } from '../../conf/error.ts';
import type { DeviceChange, InterfaceRow } from '../../protocol/wire.ts';
import { table } from '../render.ts';
import type { Invocation } from '../spec.ts';
import { readInput } from './domain.ts';

const enc = encodeURIComponent;

/** Exit code of an unplug the guest has not finished: the device is still the guest's. */
export const EXIT_PENDING = 2;

function flagsOf(opts: Invocation['opts'], withTimeout: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (opts['live']) out['live'] = true;
  if (opts['config']) out['config'] = true;
  if (withTimeout && opts['timeout'] !== undefined) {
    const ms = Number(opts['timeout']);
    if (!Number.isInteger(ms) || ms < 0) {
      throw new PassthruError(
        'INVALID_ARG',
        `--timeout must be a whole number of milliseconds, not '${String(opts['timeout'])}'`,
      );
    }
    out['timeoutMs'] = ms;
  }
  return out;
}

function report(inv: Invocation, r: DeviceChange): void {
  if (r.state === 'unplug-pending') {
    process.stderr.write(`${r.message}\n`);
    process.exitCode = EXIT_PENDING;
    return;
  }
  inv.ctx.out(`${r.message}\n`);
}

export async function attach(inv: Invocation): Promise<void> {
  const [name = '', file = ''] = inv.args;
  const r = await inv.ctx
    .client()
    .post<DeviceChange>(`/domains/${enc(name)}/devices`, { xml: await readInput(file), ...flagsOf(inv.opts, false) });
  report(inv, r);
}

export async function detach(inv: Invocation): Promise<void> {
  const [name = '', file = ''] = inv.args;
  const r = await inv.ctx.client().post<DeviceChange>(`/domains/${enc(name)}/devices/detach`, {
    xml: await readInput(file),
    ...flagsOf(inv.opts, true),
  });
  report(inv, r);
}

export async function detachAlias(inv: Invocation): Promise<void> {
  const [name = '', alias = ''] = inv.args;
  const r = await inv.ctx
    .client()
    .post<DeviceChange>(`/domains/${enc(name)}/devices/${enc(alias)}/detach`, flagsOf(inv.opts, true));
  report(inv, r);
}

export async function domiflist({ ctx, args: [name = ''], opts }: Invocation): Promise<void> {
  const rows = await ctx.client().get<InterfaceRow[]>(`/domains/${enc(name)}/interfaces`);
  if (opts['json']) {
    ctx.out(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  ctx.out(
    table(
      ['Interface', 'Type', 'Model', 'MAC', 'Address', 'VF', 'Failover', 'Seen'],
      rows.map((r) => [
        r.alias ?? '-',
        r.type,
        r.model ?? '-',
        r.mac ?? '-',
        r.address ?? '-',
        r.vf ?? '-',
        r.failover ?? '-',
        r.unplugPending ? 'unplugging' : r.guestVisible ? 'yes' : 'no',
      ]),
    ),
  );
}
