import { PassthruError } from '../../conf/error.ts';
import type { AuditEntry } from '../../protocol/wire.ts';
import { table } from '../render.ts';
import type { Invocation } from '../spec.ts';

const AGE = /^(\d+)\s*(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `--since`: an ISO 8601 time, or an age back from now ("10m"). */
export function sinceTime(text: string, now: Date = new Date()): string {
  const age = AGE.exec(text.trim());
  if (age?.[1] && age[2]) {
    return new Date(now.getTime() - Number(age[1]) * UNIT_MS[age[2] as keyof typeof UNIT_MS]).toISOString();
  }
  const t = Date.parse(text);
  if (Number.isNaN(t)) {
    throw new PassthruError('INVALID_ARG', `--since must be a date and time or an age such as 10m, not '${text}'`, {
      hint: 'e.g. --since 2026-11-30T06:00:00Z, --since 2h',
    });
  }
  return new Date(t).toISOString();
}

export async function audit({ ctx, opts }: Invocation): Promise<void> {
  const q = new URLSearchParams();
  if (typeof opts['since'] === 'string') q.set('since', sinceTime(opts['since']));
  if (typeof opts['device'] === 'string') q.set('device', opts['device']);
  if (typeof opts['limit'] === 'string') q.set('limit', opts['limit']);
  const query = q.size > 0 ? `?${q.toString()}` : '';
  const entries = await ctx.client().get<AuditEntry[]>(`/audit${query}`);
  if (opts['json']) {
    ctx.out(`${JSON.stringify(entries, null, 2)}\n`);
    return;
  }
  ctx.out(
    table(
      ['Time', 'Operation', 'Domain', 'Action', 'Device', 'Change', 'Result'],
      entries.map((e) => [
        e.time,
        e.operation ?? '-',
        e.domain ?? '-',
        e.action,
        e.device ?? '-',
        change(e),
        e.result === 'ok' ? 'ok' : `failed: ${e.error ?? ''}`,
      ]),
    ),
  );
}

/** "igb -> vfio-pci (vfio-pci)": the state before and after, and what else the entry names. */
function change(e: AuditEntry): string {
  const show = (v: unknown): string =>
    v === undefined ? '?' : v === null ? 'none' : typeof v === 'string' ? v : JSON.stringify(v);
  const move = e.before === undefined && e.after === undefined ? '' : `${show(e.before)} -> ${show(e.after)}`;
  return [move, e.detail === undefined ? '' : `(${e.detail})`].filter((s) => s !== '').join(' ') || '-';
}

export async function metrics({ ctx }: Invocation): Promise<void> {
  ctx.out((await ctx.client().getText('/metrics')).text);
}
