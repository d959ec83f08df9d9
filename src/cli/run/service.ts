import { PassthruError } from '../../conf/error.ts';
import { PASSTHRU_VERSION } from '../../protocol/version.ts';
import type { DomainSummary, NodeDeviceSummary, PoolSummary, VersionInfo } from '../../protocol/wire.ts';
import type { Invocation } from '../spec.ts';
import { completionScript, NAME_KINDS, type NameKind } from './completion.ts';

export async function version({ ctx, opts }: Invocation): Promise<void> {
  const client = { version: PASSTHRU_VERSION, node: process.version };
  let daemon: VersionInfo | { error: string };
  try {
    daemon = await ctx.client().get<VersionInfo>('/version');
  } catch (err) {
    daemon = { error: err instanceof Error ? err.message : String(err) };
    // The client's part is still printed; the exit code says the daemon's is missing.
    process.exitCode = 1;
  }
  if (opts['json']) {
    ctx.out(`${JSON.stringify({ client, daemon }, null, 2)}\n`);
    return;
  }
  const rows = [['Client', `passthru ${client.version} (node ${client.node})`]];
  if ('error' in daemon) rows.push(['Daemon', `not reachable: ${daemon.error}`]);
  else {
    const q = daemon.qemu;
    rows.push(
      ['Daemon', `passthrud ${daemon.daemon}`],
      ['QEMU', q.version === undefined ? `${q.binary}: ${q.error ?? 'unknown'}` : `${q.version} (${q.binary})`],
      ['Host', `${daemon.host.backend} backend, kernel ${daemon.host.kernel}`],
    );
  }
  ctx.out(rows.map(([k, v]) => `${`${k}:`.padEnd(8)}${v}\n`).join(''));
}

export function completion(inv: Invocation): Promise<void> {
  const { ctx, args, table } = inv;
  const [shell = ''] = args;
  if (shell === 'names') return names(inv);
  if (shell !== 'bash' && shell !== 'zsh') {
    throw new PassthruError('INVALID_ARG', `no completion for the shell '${shell}'`, {
      hint: 'bash or zsh (or names KIND)',
    });
  }
  ctx.out(completionScript(shell, table.commands, table.groups));
  return Promise.resolve();
}

const LISTS: Readonly<Record<NameKind, { path: string; names: (body: unknown) => string[] }>> = {
  domain: { path: '/domains', names: (b) => (b as DomainSummary[]).map((d) => d.name) },
  network: { path: '/networks', names: (b) => (b as PoolSummary[]).map((p) => p.name) },
  devicepool: { path: '/devpools', names: (b) => (b as PoolSummary[]).map((p) => p.name) },
  nodedev: { path: '/nodedevs', names: (b) => (b as NodeDeviceSummary[]).map((d) => d.name) },
};

/** One name a line, for the completion script. Quiet by design: no daemon, no names, exit 0. */
async function names({ ctx, args: [, kind = ''] }: Invocation): Promise<void> {
  const list = (NAME_KINDS as readonly string[]).includes(kind) ? LISTS[kind as NameKind] : undefined;
  if (list === undefined) {
    throw new PassthruError('INVALID_ARG', `no names of '${kind}'`, { hint: NAME_KINDS.join(', ') });
  }
  const body = await ctx
    .client()
    .get<unknown>(list.path, { timeoutMs: 2000 })
    .catch(() => []);
  const found = list.names(body);
  if (found.length > 0) ctx.out(`${found.join('\n')}\n`);
}
