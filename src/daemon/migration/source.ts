import { asPassthruError, PassthruError } from '../../conf/error.ts';
import { Client, parseEndpoint } from '../../protocol/client.ts';
import type {
  FinishReply,
  IncomingReply,
  MigrationEvent,
  MigrationPhase,
  MigrationReport,
} from '../../protocol/wire.ts';
import { type MigrationResult, sendMigration } from '../../qemu/migration.ts';
import type { ActionOf } from '../actions.ts';
import type { DaemonContext } from '../context.ts';
import { formatDefinition } from '../definitions.ts';
import type { DomainObj } from '../domain-table.ts';
import { destroyRun } from '../runs.ts';
import { checkMigratable, failoverPrimaries } from './checks.ts';
import { steer, waitPlugged } from './datapath.ts';
import { addStreamTls } from './stream-tls.ts';

/**
 * The source's side, in libvirt's order (qemu_migration.c: Begin, Prepare on the destination,
 * Perform, Finish on the destination, Confirm): check here; the destination prepares its
 * devices and an incoming QEMU; QEMU sends the guest (with a failover pair it first unplugs
 * the VF with the guest's help); the destination runs the guest; only then does the source
 * stop its QEMU and give its VF back. Any failure before the destination runs the guest rolls
 * back: the destination gives back what it took, the source keeps (or resumes) the guest, and
 * QEMU plugs the source's VF back.
 */
const PEER_TIMEOUT_MS = 120_000;

export function migrateOut(a: ActionOf<'migrate'>, ctx: DaemonContext): Promise<MigrationReport> {
  return ctx.domains.locked(a, a.name, (obj) => migrateLocked(a, ctx, obj));
}

async function migrateLocked(a: ActionOf<'migrate'>, ctx: DaemonContext, obj: DomainObj): Promise<MigrationReport> {
  const t0 = performance.now();
  const phases: { phase: MigrationPhase; atMs: number }[] = [];
  let unpluggedAt: number | undefined;
  const emit = (phase: MigrationPhase, extra: Partial<MigrationEvent> = {}): void => {
    if (phases.at(-1)?.phase !== phase) {
      phases.push({ phase, atMs: Math.round(performance.now() - t0) });
      ctx.log.info({ domain: a.name, dest: a.dest, phase, detail: extra.detail }, 'migration phase');
    }
    ctx.events.emit({
      type: 'migration',
      name: a.name,
      role: 'source',
      phase,
      ...(unpluggedAt === undefined ? {} : { vfLessMs: Date.now() - unpluggedAt }),
      ...extra,
    });
  };
  const run = obj.run;
  if (!run) throw new PassthruError('OPERATION_INVALID', `domain ${a.name} is not running`);

  emit('check');
  checkMigratable(run.live);
  const endpoint = parseEndpoint(a.dest);
  if (endpoint.kind === 'tls' && !ctx.peers.tls) {
    throw new PassthruError('OPERATION_INVALID', `migration to ${a.dest} needs this daemon's TLS identity`, {
      hint: 'start passthrud with --tls-cert, --tls-key and --tls-ca',
    });
  }
  const peer = new Client(endpoint, endpoint.kind === 'tls' ? ctx.peers.tls : undefined);
  const useTls = endpoint.kind === 'tls';
  const listenHost = endpoint.kind === 'tls' ? endpoint.host : '127.0.0.1';
  const primaries = failoverPrimaries(run.live);
  const qmp = run.proc.qmp;

  emit('prepare');
  obj.state = 'migrating';
  let incoming: IncomingReply;
  try {
    incoming = await peer.post<IncomingReply>(
      '/migrations/incoming',
      { xml: formatDefinition(run.live, false), listenHost, tls: useTls },
      { timeoutMs: PEER_TIMEOUT_MS },
    );
  } catch (err) {
    // Nothing moved: the destination refused (no free VF, domain running there) or is away.
    obj.state = 'running';
    emit('failed', { detail: asPassthruError(err).message });
    throw err;
  }

  // From here the destination holds devices: every way out tells it.
  const finish = (ok: boolean): Promise<FinishReply> =>
    peer.post<FinishReply>(`/migrations/${encodeURIComponent(a.name)}/finish`, { ok }, { timeoutMs: PEER_TIMEOUT_MS });
  let result: MigrationResult;
  emit('transfer');
  try {
    if (a.live === false) await qmp.execute('stop');
    const creds =
      useTls && ctx.peers.tls ? await addStreamTls(qmp, ctx.store.runDir(a.name), ctx.peers.tls, 'client') : undefined;
    result = await sendMigration(qmp, incoming.uri, {
      ...(a.timeoutMs === undefined ? {} : { timeoutMs: a.timeoutMs }),
      ...(creds === undefined ? {} : { tls: { credsId: creds, hostname: listenHost } }),
      onUnplugPrimary: (alias) => {
        unpluggedAt ??= Date.now();
        emit('unplugged', { detail: alias });
        const p = primaries.find((x) => x.alias === alias);
        if (p) void steer(ctx, p, 'standby', 'UNPLUG_PRIMARY: the guest let go of the VF');
      },
      onStatus: (status) => emit(unpluggedAt === undefined ? 'transfer' : 'unplugged', { status }),
      onProgress: (p) => emit('transfer', { status: p.status, ramTransferred: p.ramTransferred, ramTotal: p.ramTotal }),
    });
  } catch (err) {
    await rollBack(ctx, a, obj, finish, unpluggedAt !== undefined);
    emit('rolled-back', { detail: asPassthruError(err).message });
    throw err;
  }

  emit('confirm', { status: 'completed' });
  let fin: FinishReply;
  try {
    fin = await finish(true);
  } catch (err) {
    // The destination could not run the guest: the source still has it (postmigrate).
    await finish(false).catch(() => undefined);
    await rollBack(ctx, a, obj, () => Promise.resolve({ name: a.name, state: 'shutoff' }), unpluggedAt !== undefined);
    emit('rolled-back', { detail: asPassthruError(err).message });
    throw err;
  }

  // Confirmed: the guest runs on the destination; the source's QEMU stops and its VF goes back.
  await destroyRun(ctx.runs, run);
  obj.run = undefined;
  obj.state = 'shutoff';
  for (const p of primaries) await steer(ctx, p, 'none', 'migrated away');
  const vfLessMs =
    unpluggedAt === undefined ? undefined : Math.max(0, (fin.primaryPluggedAt ?? Date.now()) - unpluggedAt);
  unpluggedAt = undefined;
  emit('done');
  ctx.events.emit({ type: 'domain', event: 'stopped', name: a.name, reason: 'migrated' });
  return {
    name: a.name,
    dest: a.dest,
    totalMs: Math.round(performance.now() - t0),
    ...(result.totalTimeMs === undefined ? {} : { qemuTotalMs: result.totalTimeMs }),
    ...(result.downtimeMs === undefined ? {} : { downtimeMs: result.downtimeMs }),
    ...(vfLessMs === undefined ? {} : { vfLessMs }),
    statuses: result.statuses,
    unplugged: result.unpluggedPrimaries,
    phases,
  };
}

/**
 * The destination gives back what it took; the source's guest runs on. QEMU plugs the failover
 * primary back by itself once the migration has failed; the MAC's filter returns to the VF when
 * it is there again.
 */
async function rollBack(
  ctx: DaemonContext,
  a: ActionOf<'migrate'>,
  obj: DomainObj,
  finish: (ok: boolean) => Promise<FinishReply>,
  unplugged: boolean,
): Promise<void> {
  await finish(false).catch((err: unknown) => {
    ctx.log.error({ domain: a.name, err: asPassthruError(err).message }, 'destination did not confirm the rollback');
  });
  const run = obj.run;
  obj.state = 'running';
  if (!run?.proc.isAlive()) return; // its exit handler gives the devices back
  const status = ((await run.proc.qmp.execute('query-status').catch(() => ({}))) as { status?: string }).status;
  if (status === 'paused' || status === 'postmigrate' || status === 'finish-migrate') {
    await run.proc.qmp.execute('cont').catch((err: unknown) => {
      ctx.log.error({ domain: a.name, err: asPassthruError(err).message }, 'source guest could not be resumed');
    });
  }
  const primaries = failoverPrimaries(run.live);
  if (!unplugged || primaries.length === 0) return;
  const back = await waitPlugged(
    run.proc.qmp,
    primaries.map((p) => p.alias),
    30_000,
  );
  for (const p of primaries) {
    await steer(
      ctx,
      p,
      back ? 'vf' : 'standby',
      back ? 'rollback: primary plugged again' : 'rollback: primary not back',
    );
  }
}
