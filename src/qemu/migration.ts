import { PassthruError } from '../conf/error.ts';
import type { QmpClient, QmpEvent } from './qmp.ts';

/**
 * Live migration between two QEMUs over QMP, in the two halves the daemons run: the
 * destination (started with `-incoming defer`, ArgvContext.incoming) listens
 * (`listenIncoming`), the source sends (`sendMigration`).
 *
 * With a failover pair the source first asks the guest to unplug the primary (status
 * `wait-unplug`, event UNPLUG_PRIMARY), then copies RAM; the destination plugs its own
 * primary once its guest negotiates again. So the destination's VF must be ready (vfio, MAC)
 * before it starts, and the source's VF may only be released after `completed`
 * (docs/migration.md). When the migration fails or is cancelled, the source QEMU plugs its
 * primary back by itself (virtio-net's failover handling of the migration state).
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

/** What the source reports while it sends (query-migrate, polled). */
export interface MigrationProgress {
  readonly status: string;
  readonly ramTransferred: number;
  readonly ramTotal: number;
  readonly ramRemaining: number;
}

/** The TLS credentials object QEMU should use (tls-creds-x509 added by the caller). */
export interface MigrationTls {
  readonly credsId: string;
  /** The name the destination's certificate is checked against (its address). */
  readonly hostname?: string;
}

export interface SendOptions {
  readonly timeoutMs?: number;
  readonly tls?: MigrationTls;
  /** Every MIGRATION status as it happens. */
  readonly onStatus?: (status: string) => void;
  /** The source asked the guest to unplug this primary (UNPLUG_PRIMARY). */
  readonly onUnplugPrimary?: (deviceId: string) => void;
  readonly onProgress?: (p: MigrationProgress) => void;
  readonly progressEveryMs?: number;
  /** Aborts the migration from outside (migrate_cancel); a PassthruError as the abort's reason
   *  is what the migration then fails with. */
  readonly signal?: AbortSignal;
  /** Cancel when neither the status nor the RAM sent moves for this long (a link gone silent,
   *  the destination frozen): 0 or absent watches nothing. */
  readonly stallMs?: number;
  /** Told once when the stall deadline cancels the migration, with the words of its error. */
  readonly onStall?: (why: string) => void;
  /** The stream's bandwidth cap, bytes/s (QEMU's max-bandwidth; default QEMU's own). */
  readonly maxBandwidth?: number;
}

/** QEMU's own max-bandwidth (MAX_THROTTLE, 128 MiB/s): set back when a migration names none, as
 *  QEMU keeps the parameter from one migration to the next. */
export const QEMU_MAX_BANDWIDTH = 128 * 1024 * 1024;

export interface MigrateOptions {
  /** Where the destination listens, e.g. 'tcp:127.0.0.1:0' (port 0: the kernel picks one). */
  readonly listen: string;
  readonly timeoutMs?: number;
}

const FINAL = new Set(['completed', 'failed', 'cancelled']);

/** Both halves on one caller (the tests, the bench's raw-QEMU figure). */
export async function migrate(src: QmpClient, dst: QmpClient, opts: MigrateOptions): Promise<MigrationResult> {
  const uri = await listenIncoming(dst, opts.listen);
  return sendMigration(src, uri, opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs });
}

/** Destination: status events on, listen, and the address it really listens on (port 0 resolved). */
export async function listenIncoming(dst: QmpClient, listen: string, tls?: MigrationTls): Promise<string> {
  await enableEvents(dst);
  if (tls) await dst.execute('migrate-set-parameters', { 'tls-creds': tls.credsId });
  await dst.execute('migrate-incoming', { uri: listen });
  return listeningUri(dst, listen);
}

/** Source: migrate to `uri` and wait for the end; a timeout or the signal cancels it. Throws
 *  QEMU_FAILED (failed, cancelled) or TIMEOUT; either way the source QEMU still has the guest. */
export async function sendMigration(src: QmpClient, uri: string, o: SendOptions = {}): Promise<MigrationResult> {
  const timeoutMs = o.timeoutMs ?? 120_000;
  await enableEvents(src);
  // Set every time: a QEMU that arrived over TLS keeps the parameter from then.
  await src.execute('migrate-set-parameters', {
    'tls-creds': o.tls?.credsId ?? '',
    'tls-hostname': o.tls?.hostname ?? '',
    'max-bandwidth': o.maxBandwidth ?? QEMU_MAX_BANDWIDTH,
  });
  const statuses: string[] = [];
  const unplugged: string[] = [];
  const events = src.events();
  const done = (async (): Promise<string> => {
    for await (const ev of events) {
      if (ev.event === 'UNPLUG_PRIMARY') {
        const id = stringField(ev, 'device-id');
        unplugged.push(id);
        o.onUnplugPrimary?.(id);
      }
      if (ev.event !== 'MIGRATION') continue;
      const status = stringField(ev, 'status');
      statuses.push(status);
      o.onStatus?.(status);
      if (FINAL.has(status)) return status;
    }
    throw new PassthruError('QEMU_FAILED', 'the source QEMU went away during migration');
  })();
  let why: PassthruError | undefined;
  const cancel = (reason: PassthruError): void => {
    why ??= reason;
    src.execute('migrate_cancel').catch(() => undefined);
  };
  const timer = setTimeout(() => {
    cancel(
      new PassthruError(
        'TIMEOUT',
        `migration did not finish within ${timeoutMs} ms (last status: ${statuses.at(-1) ?? 'none'}); cancelled`,
      ),
    );
  }, timeoutMs);
  const onAbort = (): void => {
    const reason: unknown = o.signal?.reason;
    cancel(reason instanceof PassthruError ? reason : new PassthruError('OPERATION_INVALID', 'migration cancelled'));
  };
  o.signal?.addEventListener('abort', onAbort);
  const stall = o.stallMs === undefined || o.stallMs <= 0 ? undefined : stallWatch(o.stallMs);
  const poller =
    o.onProgress || stall
      ? pollProgress(
          src,
          (p) => {
            o.onProgress?.(p);
            const stalled = why === undefined ? stall?.see(p, performance.now()) : undefined;
            if (stalled === undefined) return;
            o.onStall?.(stalled);
            cancel(new PassthruError('TIMEOUT', stalled));
          },
          o.progressEveryMs ?? 250,
        )
      : undefined;
  try {
    await src.execute('migrate', { uri });
    const final = await done;
    const info = await finalInfo(src, final);
    // The last figures, whatever the poller caught: a short transfer can fall between two polls.
    const progress = progressOf(info);
    if (progress) o.onProgress?.(progress);
    if (final !== 'completed') {
      if (why) throw why;
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
    o.signal?.removeEventListener('abort', onAbort);
    poller?.stop();
    await events.return?.();
    done.catch(() => undefined);
  }
}

/**
 * query-migrate once the migration ended. QEMU announces `completed` (migrate_set_state in
 * migration_completion) a moment before it computes total-time and downtime
 * (migration_calculate_complete): a query in between reads 0 for both, so it is asked again,
 * briefly, until they are there.
 */
async function finalInfo(src: QmpClient, final: string): Promise<Record<string, unknown>> {
  let info = (await src.execute('query-migrate')) as Record<string, unknown>;
  for (let i = 0; i < 20 && final === 'completed' && !(Number(info['total-time']) > 0); i++) {
    await new Promise((r) => setTimeout(r, 25));
    info = (await src.execute('query-migrate')) as Record<string, unknown>;
  }
  return info;
}

/** QEMU's migration status now ('none' when it never migrated). */
export async function migrationStatus(q: QmpClient): Promise<string> {
  const info = (await q.execute('query-migrate')) as { status?: string };
  return info.status ?? 'none';
}

/**
 * Plugs the failover primaries back into a source whose migration completed but whose destination
 * then did not run the guest. QEMU re-plugs a primary only when a migration *fails*
 * (virtio-net's migration notifier: failover_replug_primary), never after `completed`; so a
 * second migration is started towards an address that refuses it (TCP port 1 on the loopback),
 * which fails in setup and has QEMU plug the hidden primary back. Resolves once it has failed.
 */
export async function replugFailoverPrimaries(src: QmpClient, timeoutMs = 30_000): Promise<void> {
  await enableEvents(src);
  await src.execute('migrate-set-parameters', { 'tls-creds': '', 'tls-hostname': '' });
  const failed = src
    .waitForEvent('MIGRATION', (ev) => ev.data['status'] === 'failed' || ev.data['status'] === 'cancelled', timeoutMs)
    .then(
      () => true,
      () => false,
    );
  await src.execute('migrate', { uri: 'tcp:127.0.0.1:1' }).catch(() => undefined);
  const now = ((await src.execute('query-migrate')) as { status?: string }).status;
  if (now === 'failed' || now === 'cancelled' || (await failed)) return;
  throw new PassthruError('QEMU_FAILED', `the source QEMU did not fail the re-plug migration (status ${now ?? '?'})`);
}

function enableEvents(q: QmpClient): Promise<unknown> {
  // Status events; without them the progress is only visible by polling.
  return q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
}

function pollProgress(src: QmpClient, report: (p: MigrationProgress) => void, everyMs: number): { stop(): void } {
  let stopped = false;
  const tick = async (): Promise<void> => {
    while (!stopped) {
      const info = (await src.execute('query-migrate').catch(() => undefined)) as Record<string, unknown> | undefined;
      if (stopped || !info) return;
      const progress = progressOf(info);
      if (progress) report(progress);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  };
  void tick();
  return {
    stop: () => {
      stopped = true;
    },
  };
}

/** How long a guest may take to let go of its failover primary (wait-unplug) before the migration
 *  counts as stalled, unless the stall deadline is longer: as long as --unplug-hostdevs waits. */
export const UNPLUG_STALL_MS = 30_000;

/**
 * A migration stalls when neither its status nor the RAM sent moves for `stallMs`: the stream's
 * socket is full because the link went silent without a reset or the destination stopped
 * reading, and QEMU would wait for TCP's own timeouts (minutes). While the guest unplugs its
 * failover primary (wait-unplug) no RAM moves by design, and a guest may be slow to let go: that
 * phase has its own, longer deadline (QEMU would wait for the guest forever).
 */
export function stallWatch(stallMs: number): { see(p: MigrationProgress, nowMs: number): string | undefined } {
  let last: { status: string; sent: number; at: number } | undefined;
  return {
    see(p, nowMs) {
      if (last?.status !== p.status || last.sent !== p.ramTransferred) {
        last = { status: p.status, sent: p.ramTransferred, at: nowMs };
        return undefined;
      }
      const unplugging = p.status === 'wait-unplug';
      const deadline = unplugging ? Math.max(stallMs, UNPLUG_STALL_MS) : stallMs;
      if (nowMs - last.at < deadline) return undefined;
      const secs = Number((deadline / 1000).toFixed(1));
      if (unplugging) {
        return `the guest did not let go of its VF for ${secs} s (status wait-unplug): migration cancelled`;
      }
      const mib = (p.ramTransferred / (1024 * 1024)).toFixed(1);
      return `no progress for ${secs} s (status ${p.status}, ${mib} MiB sent): migration cancelled`;
    },
  };
}

function progressOf(info: Record<string, unknown>): MigrationProgress | undefined {
  const ram = (info['ram'] ?? {}) as Record<string, unknown>;
  const num = (k: string): number => (typeof ram[k] === 'number' ? ram[k] : 0);
  if (typeof info['status'] !== 'string') return undefined;
  return {
    status: info['status'],
    ramTransferred: num('transferred'),
    ramTotal: num('total'),
    ramRemaining: num('remaining'),
  };
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
