import { PassthruError } from '../../conf/error.ts';
import type { MigrationEvent, MigrationReport } from '../../protocol/wire.ts';
import type { Invocation } from '../spec.ts';

/**
 * `passthru migrate NAME DEST`: one request to the source daemon, which does the whole
 * migration; meanwhile its migration events become a progress line on a terminal (phase,
 * RAM sent, how long the guest has been without its VF) or JSON lines with --json.
 */
export async function migrate({ ctx, args: [name = '', dest = ''], opts }: Invocation): Promise<void> {
  const timeoutS = numberOpt(opts, 'timeout', '--timeout', 'a number of seconds from 0 to 86400', 86400);
  const stallTimeoutS = numberOpt(
    opts,
    'stallTimeout',
    '--stall-timeout',
    'a number of seconds from 0 to 86400',
    86400,
    true,
  );
  const bandwidth = numberOpt(opts, 'bandwidth', '--bandwidth', 'a number of MiB/s above 0', 1048576);
  const incomingLeaseS = numberOpt(
    opts,
    'incomingLease',
    '--incoming-lease',
    'a number of seconds from 0 to 86400',
    86400,
  );
  const json = opts['json'] === true;
  const tty = !json && process.stderr.isTTY;
  const client = ctx.client();
  const stop = new AbortController();
  // The events come on their own connection and may trail the answer: the last one (done,
  // rolled-back, failed) is waited for, briefly, so that the lines end where the migration did.
  let ended = (): void => undefined;
  const last = new Promise<void>((r) => (ended = r));
  const shown = new Promise<void>((opened) => {
    client
      .events(
        (e) => {
          if (e.type === 'migration' && e.name === name && e.role === 'source') {
            show(e);
            if (e.phase === 'done' || e.phase === 'rolled-back' || e.phase === 'failed') ended();
          }
          return false;
        },
        opened,
        stop.signal,
      )
      .catch(() => opened());
  });
  const show = (e: MigrationEvent): void => {
    if (json) ctx.out(`${JSON.stringify(e)}\n`);
    else if (tty) process.stderr.write(`\r${progressLine(e)}\x1b[K`);
  };
  await shown;
  try {
    const report = await client.post<MigrationReport>(`/domains/${encodeURIComponent(name)}/migrate`, {
      dest,
      live: opts['live'] === true,
      ...(opts['unplugHostdevs'] === true ? { unplugHostdevs: true } : {}),
      ...(timeoutS === undefined ? {} : { timeoutS }),
      ...(stallTimeoutS === undefined ? {} : { stallTimeoutS }),
      ...(bandwidth === undefined ? {} : { bandwidth }),
      ...(incomingLeaseS === undefined ? {} : { incomingLeaseS }),
    });
    await lastEvent(last);
    if (tty) process.stderr.write('\n');
    if (json) ctx.out(`${JSON.stringify({ type: 'result', ...report })}\n`);
    else ctx.out(summary(report));
  } catch (err) {
    await lastEvent(last);
    if (tty) process.stderr.write('\n');
    throw err;
  } finally {
    stop.abort();
  }
}

/** The migration's last event, or 2 s: a daemon that sent none does not hold the command. */
async function lastEvent(last: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([last, new Promise<void>((r) => (timer = setTimeout(r, 2_000)))]);
  clearTimeout(timer);
}

/** A numeric option: above 0 (or 0 too with `zero`) and at most `max`, else INVALID_ARG. */
function numberOpt(
  opts: Invocation['opts'],
  key: string,
  flag: string,
  expected: string,
  max: number,
  zero = false,
): number | undefined {
  const raw = opts[key];
  if (typeof raw !== 'string') return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !(zero ? n >= 0 : n > 0) || !(n <= max)) {
    throw new PassthruError('INVALID_ARG', `${flag} must be ${expected}, not '${raw}'`);
  }
  return n;
}

const MiB = 1024 * 1024;

export function progressLine(e: MigrationEvent): string {
  const why = e.status ?? e.reason;
  const parts = [`migrating ${e.name}: ${e.phase}${why ? ` (${why})` : ''}`];
  if (e.ramTotal) {
    const frac = Math.min(1, (e.ramTransferred ?? 0) / e.ramTotal);
    const width = 20;
    const fill = Math.round(frac * width);
    parts.push(
      `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${((e.ramTransferred ?? 0) / MiB).toFixed(0)}/${(e.ramTotal / MiB).toFixed(0)} MiB`,
    );
  }
  if (e.vfLessMs !== undefined) parts.push(`VF-less ${(e.vfLessMs / 1000).toFixed(1)} s`);
  return parts.join('  ');
}

export function summary(r: MigrationReport): string {
  const ms = (v: number | undefined): string => (v === undefined ? '-' : `${v} ms`);
  return [
    `Migration of '${r.name}' to ${r.dest}: done`,
    `  total ${ms(r.totalMs)}, QEMU ${ms(r.qemuTotalMs)}, downtime ${ms(r.downtimeMs)}` +
      (r.vfLessMs === undefined ? '' : `, VF-less window ${ms(r.vfLessMs)}`),
    ...(r.unplugGapMs === undefined
      ? []
      : [`  unplugged ${r.unplugged.join(', ')} and plugged again on the destination after ${ms(r.unplugGapMs)}`]),
    ...(r.replugError === undefined ? [] : [`  the destination could not plug them again: ${r.replugError}`]),
    '',
  ].join('\n');
}
