import { PassthruError } from '../conf/error.ts';
import type { QmpClient, QmpEvent } from './qmp.ts';

/**
 * Live migration between two QEMUs over QMP. The destination runs with `-incoming defer`
 * (ArgvContext.incoming), so the address it listens on is chosen here, after it is up.
 *
 * With a failover pair the source first asks the guest to unplug the primary (status
 * `wait-unplug`, event UNPLUG_PRIMARY), then copies RAM; the destination plugs its own
 * primary once its guest negotiates again. So the destination's VF must be ready (vfio, MAC)
 * before it starts, and the source's VF may only be released after `completed`
 * (QEMU's docs/system/virtio-net-failover.rst; UNPLUG_PRIMARY in qapi/migration.json).
 */
export interface MigrationResult {
  readonly status: 'completed';
  readonly totalTimeMs?: number;
  readonly downtimeMs?: number;
  /** Every MIGRATION status the source went through, in order (setup, wait-unplug, active ...). */
  readonly statuses: readonly string[];
  /** Devices the source asked the guest to unplug (UNPLUG_PRIMARY device-id). */
  readonly unpluggedPrimaries: readonly string[];
}

export interface MigrateOptions {
  /** Where the destination listens, e.g. 'tcp:127.0.0.1:0' (port 0: the kernel picks one). */
  readonly listen: string;
  readonly timeoutMs?: number;
}

const FINAL = new Set(['completed', 'failed', 'cancelled']);

export async function migrate(src: QmpClient, dst: QmpClient, opts: MigrateOptions): Promise<MigrationResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  // Status events on both sides; without them the source's progress is only visible by polling.
  for (const q of [src, dst]) {
    await q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
  }
  await dst.execute('migrate-incoming', { uri: opts.listen });
  const uri = await listeningUri(dst, opts.listen);

  const statuses: string[] = [];
  const unplugged: string[] = [];
  const events = src.events();
  const done = (async (): Promise<string> => {
    for await (const ev of events) {
      if (ev.event === 'UNPLUG_PRIMARY') unplugged.push(stringField(ev, 'device-id'));
      if (ev.event !== 'MIGRATION') continue;
      const status = stringField(ev, 'status');
      statuses.push(status);
      if (FINAL.has(status)) return status;
    }
    throw new PassthruError('QEMU_FAILED', 'the source QEMU went away during migration');
  })();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new PassthruError(
          'TIMEOUT',
          `migration did not finish within ${timeoutMs} ms (last status: ${statuses.at(-1) ?? 'none'})`,
        ),
      );
    }, timeoutMs);
  });
  try {
    await src.execute('migrate', { uri });
    const final = await Promise.race([done, timeout]);
    const info = (await src.execute('query-migrate')) as Record<string, unknown>;
    if (final !== 'completed') {
      const desc = typeof info['error-desc'] === 'string' ? `: ${info['error-desc']}` : '';
      throw new PassthruError('QEMU_FAILED', `migration ${final}${desc}`);
    }
    return {
      status: 'completed',
      ...(typeof info['total-time'] === 'number' ? { totalTimeMs: info['total-time'] } : {}),
      ...(typeof info['downtime'] === 'number' ? { downtimeMs: info['downtime'] } : {}),
      statuses,
      unpluggedPrimaries: unplugged,
    };
  } finally {
    clearTimeout(timer);
    await events.return?.();
    done.catch(() => undefined);
  }
}

/** The address the destination really listens on (port 0 resolved), from its query-migrate. */
async function listeningUri(dst: QmpClient, listen: string): Promise<string> {
  const m = /^tcp:([^:]+):0$/.exec(listen);
  if (!m) return listen;
  const info = (await dst.execute('query-migrate')) as {
    'socket-address'?: { type: string; host?: string; port?: string }[];
  };
  const inet = info['socket-address']?.find((a) => a.type === 'inet' && a.port !== undefined);
  if (inet?.port === undefined) {
    throw new PassthruError('QEMU_FAILED', `the migration destination does not say where it listens for ${listen}`);
  }
  return `tcp:${inet.host ?? m[1] ?? '127.0.0.1'}:${inet.port}`;
}

function stringField(ev: QmpEvent, key: string): string {
  const v = ev.data[key];
  return typeof v === 'string' ? v : '';
}
