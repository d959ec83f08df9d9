import type { Duplex } from 'node:stream';
import { PassthruError } from '../../conf/error.ts';
import type { DomainInfo, DomainSummary, ShutdownResult } from '../../protocol/wire.ts';
import type { Invocation } from '../spec.ts';

const enc = encodeURIComponent;
/** Ctrl+] leaves the console, as in virsh and telnet. */
const ESCAPE = 0x1d;

/**
 * `passthru console NAME`: the terminal in raw mode (every key goes to the guest, Ctrl+C too),
 * the guest's output on stdout, until Ctrl+] or the guest's console closes (QEMU exited).
 */
export async function console({ ctx, args: [name = ''] }: Invocation): Promise<void> {
  const stream = await ctx.client().upgrade(`/domains/${enc(name)}/console`, 'passthru-console');
  process.stderr.write(`Connected to domain '${name}'\r\nEscape character is ^] (Ctrl + ])\r\n`);
  await attach(stream, process.stdin, process.stdout);
  process.stderr.write('\r\n');
}

async function attach(stream: Duplex, input: NodeJS.ReadStream, output: NodeJS.WriteStream): Promise<void> {
  const raw = input.isTTY;
  if (raw) input.setRawMode(true);
  try {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        input.off('data', onKey);
        input.pause();
        stream.end();
        resolve();
      };
      const onKey = (chunk: Buffer): void => {
        const at = chunk.indexOf(ESCAPE);
        if (at < 0) {
          stream.write(chunk);
          return;
        }
        if (at > 0) stream.write(chunk.subarray(0, at));
        done();
      };
      input.on('data', onKey);
      input.on('end', done);
      input.resume();
      stream.on('data', (d: Buffer) => output.write(d));
      stream.on('end', done);
      stream.on('error', done);
    });
  } finally {
    if (raw) input.setRawMode(false);
  }
}

function seconds(opts: Invocation['opts']): number {
  const v = opts['timeout'];
  const n = typeof v === 'string' ? Number(v) : 120;
  if (!Number.isFinite(n) || n < 0 || n > 3600) {
    throw new PassthruError('INVALID_ARG', `--timeout '${String(v)}' is not a number of seconds (0 to 3600)`);
  }
  return n;
}

/** Exit code when the guest did not do what it was asked in time (as the issue's scripts expect). */
const NOT_DONE = 2;

export async function shutdown({ ctx, args: [name = ''], opts }: Invocation): Promise<void> {
  const s = seconds(opts);
  const r = await ctx.client().post<ShutdownResult>(`/domains/${enc(name)}/shutdown`, { timeoutMs: s * 1000 });
  if (r.done) ctx.out(`Domain '${name}' is shut off\n`);
  else {
    process.stderr.write(
      `passthru: domain '${name}' did not shut down within ${s} s; it is still running (the guest ignored the ACPI power button?)\nhint: 'passthru destroy ${name}' stops it at once\n`,
    );
    process.exitCode = NOT_DONE;
  }
}

export async function reboot({ ctx, args: [name = ''], opts }: Invocation): Promise<void> {
  const s = seconds(opts);
  const r = await ctx.client().post<ShutdownResult>(`/domains/${enc(name)}/reboot`, { timeoutMs: s * 1000 });
  if (r.done) ctx.out(`Domain '${name}' is being rebooted\n`);
  else {
    process.stderr.write(`passthru: domain '${name}' did not go down within ${s} s; it is still running\n`);
    process.exitCode = NOT_DONE;
  }
}

export async function suspend({ ctx, args: [name = ''] }: Invocation): Promise<void> {
  await ctx.client().post<DomainSummary>(`/domains/${enc(name)}/suspend`);
  ctx.out(`Domain '${name}' suspended\n`);
}

export async function resume({ ctx, args: [name = ''] }: Invocation): Promise<void> {
  await ctx.client().post<DomainSummary>(`/domains/${enc(name)}/resume`);
  ctx.out(`Domain '${name}' resumed\n`);
}

const stateWords = (s: DomainSummary['state']): string => (s === 'shutoff' ? 'shut off' : s);

export async function dominfo({ ctx, args: [name = ''], opts }: Invocation): Promise<void> {
  const i = await ctx.client().get<DomainInfo>(`/domains/${enc(name)}/info`);
  if (opts['json']) {
    ctx.out(`${JSON.stringify(i, null, 2)}\n`);
    return;
  }
  const rows: [string, string][] = [
    ['Id', i.pid === undefined ? '-' : String(i.pid)],
    ['Name', i.name],
    ['UUID', i.uuid],
    ['State', `${stateWords(i.state)}${i.reason === undefined ? '' : ` (${i.reason})`}`],
    ['CPU(s)', String(i.vcpus)],
    ['CPU time', i.cpuTimeSeconds === undefined ? '-' : `${i.cpuTimeSeconds.toFixed(1)}s`],
    ['Uptime', i.uptimeSeconds === undefined ? '-' : `${i.uptimeSeconds}s`],
    ['Max memory', `${i.memoryKiB} KiB`],
    ['Autostart', i.autostart ? 'enable' : 'disable'],
    ['Host devices', i.hostDevices.map((d) => `${d.alias}=${d.address}`).join(' ') || '-'],
  ];
  ctx.out(rows.map(([k, v]) => `${`${k}:`.padEnd(16)}${v}\n`).join(''));
}

export async function domstate({ ctx, args: [name = ''], opts }: Invocation): Promise<void> {
  const i = await ctx.client().get<DomainInfo>(`/domains/${enc(name)}/info`);
  if (opts['json']) return ctx.out(`${JSON.stringify({ state: i.state, reason: i.reason ?? null })}\n`);
  ctx.out(`${stateWords(i.state)}${opts['reason'] && i.reason !== undefined ? ` (${i.reason})` : ''}\n`);
}

export async function autostart({ ctx, args: [name = ''], opts }: Invocation): Promise<void> {
  const enable = !opts['disable'];
  await ctx.client().post<DomainInfo>(`/domains/${enc(name)}/autostart`, { enable });
  ctx.out(enable ? `Domain '${name}' marked as autostarted\n` : `Domain '${name}' unmarked as autostarted\n`);
}
