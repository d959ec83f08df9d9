import { asPassthruError, PassthruError } from '../../conf/error.ts';
import { Client, parseEndpoint } from '../../protocol/client.ts';
import { formatDomainXml } from '../../conf/domain/format.ts';
import type {
  CheckReply,
  DeviceRef,
  FinishReply,
  IncomingReply,
  MigrationEvent,
  MigrationPhase,
  MigrationReport,
} from '../../protocol/wire.ts';
import { type MigrationResult, replugFailoverPrimaries, sendMigration } from '../../qemu/migration.ts';
import type { ActionOf } from '../actions.ts';
import type { DaemonContext } from '../context.ts';
import type { DomainObj } from '../domain-table.ts';
import { destroyRun } from '../runs.ts';
import { checkMigratable, failoverPrimaries } from './checks.ts';
import { steer, waitPlugged } from './datapath.ts';
import { keepLease } from './lease.ts';
import { withoutMigratingTo } from './resume.ts';
import { addStreamTls } from './stream-tls.ts';
import { devicesDocument, plugFromPools, poolDevices, unplugPoolDevices } from './unplug.ts';

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
/** No progress for this long cancels the migration, unless the daemon's setting or the request
 *  says otherwise: libvirt's keepalive gives a silent peer 30 s (5 s interval, count 5). */
const DEFAULT_STALL_MS = 30_000;
const MiB = 1024 * 1024;
/** How long the guest has to let go of a device --unplug-hostdevs unplugs. */
const UNPLUG_WAIT_MS = 30_000;

export function migrateOut(a: ActionOf<'migrate'>, ctx: DaemonContext): Promise<MigrationReport> {
  return ctx.domains.locked(a, a.name, (obj) => migrateLocked(a, ctx, obj));
}

async function migrateLocked(a: ActionOf<'migrate'>, ctx: DaemonContext, obj: DomainObj): Promise<MigrationReport> {
  const t0 = performance.now();
  const phases: { phase: MigrationPhase; atMs: number }[] = [];
  let unpluggedAt: number | undefined;
  /** --unplug-hostdevs: when the source asked the guest to let go of its pool devices. */
  let unplugStart: number | undefined;
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
      ...((unpluggedAt ?? unplugStart) === undefined
        ? {}
        : { vfLessMs: Date.now() - (unpluggedAt ?? unplugStart ?? 0) }),
      ...extra,
    });
  };
  const run = obj.run;
  if (!run) throw new PassthruError('OPERATION_INVALID', `domain ${a.name} is not running`);

  emit('check');
  checkMigratable(run.live, { unplug: a.unplugHostdevs === true });
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

  // --unplug-hostdevs: the pool devices leave before the migration and come back after (unplug.ts).
  const toUnplug = a.unplugHostdevs === true ? poolDevices(run.live) : [];
  const unplugDoc = toUnplug.length === 0 ? undefined : devicesDocument(toUnplug);
  let unplugDone = false;
  const replugHere = async (): Promise<void> => {
    if (unplugDoc === undefined || !unplugDone) return;
    const back = await plugFromPools(ctx, obj, unplugDoc);
    emit('replugged', { detail: `on the source: ${describeRefs(back)}` });
  };

  // The migratable XML: aliases and guest addresses kept, a network's or pool's device left out
  // (the destination takes one from its same-named network or pool). The check sees the devices
  // to unplug too: the destination must have them free for after.
  obj.state = 'migrating';
  let incoming: IncomingReply;
  let xml = formatDomainXml(run.live, { migratable: true });
  try {
    const check = await peer.post<CheckReply>('/migrations/check', { xml }, { timeoutMs: PEER_TIMEOUT_MS });
    if (check.devices.length > 0) emit('check', { detail: describeDevices(check) });
    if (toUnplug.length > 0) {
      unplugStart = Date.now();
      await unplugPoolDevices(ctx, obj, toUnplug, UNPLUG_WAIT_MS);
      unplugDone = true;
      emit('unplugged', { detail: toUnplug.map((d) => d.alias ?? '?').join(', ') });
      xml = formatDomainXml(run.live, { migratable: true });
    }
    emit('prepare');
    incoming = await peer.post<IncomingReply>(
      '/migrations/incoming',
      {
        xml,
        listenHost,
        tls: useTls,
        ...(a.incomingLeaseMs === undefined ? {} : { leaseS: a.incomingLeaseMs / 1000 }),
      },
      { timeoutMs: PEER_TIMEOUT_MS },
    );
  } catch (err) {
    // Nothing moved: the destination refused (no free VF, domain running there) or is away.
    obj.state = 'running';
    await replugHere().catch((e: unknown) => replugFailed(ctx, a, e));
    emit('failed', { detail: asPassthruError(err).message });
    throw err;
  }

  // From here the destination holds devices: every way out tells it (why, on a rollback), and
  // until then its lease on them is renewed; a destination that gave up cancels the transfer.
  const finish = (ok: boolean, why?: string, reason?: MigrationEvent['reason']): Promise<FinishReply> =>
    peer.post<FinishReply>(
      `/migrations/${encodeURIComponent(a.name)}/finish`,
      { ok, ...(why === undefined ? {} : { why }), ...(reason === undefined ? {} : { reason }) },
      { timeoutMs: PEER_TIMEOUT_MS },
    );
  const giveUp = new AbortController();
  const lease = keepLease(
    peer,
    a.name,
    incoming.leaseMs,
    (why) => {
      gaveUp = true;
      giveUp.abort(new PassthruError('OPERATION_INVALID', `the destination gave the migration up: ${why}`));
    },
    (why) => ctx.log.warn({ domain: a.name, dest: a.dest, err: why }, 'migration lease not renewed'),
  );
  let stalled: string | undefined;
  let gaveUp = false;
  let result: MigrationResult;
  emit('transfer');
  try {
    // A daemon that dies from here on settles the migration with the destination at its restart.
    run.status = { ...run.status, migratingTo: a.dest };
    await ctx.store.saveStatus(run.status);
    if (a.live === false) await qmp.execute('stop');
    const creds =
      useTls && ctx.peers.tls ? await addStreamTls(qmp, ctx.store.runDir(a.name), ctx.peers.tls, 'client') : undefined;
    result = await sendMigration(qmp, incoming.uri, {
      ...(a.timeoutMs === undefined ? {} : { timeoutMs: a.timeoutMs }),
      ...(creds === undefined ? {} : { tls: { credsId: creds, hostname: listenHost } }),
      stallMs: a.stallTimeoutMs ?? ctx.peers.migration?.stallMs ?? DEFAULT_STALL_MS,
      onStall: (why) => {
        stalled = why;
      },
      ...(a.bandwidth === undefined ? {} : { maxBandwidth: Math.round(a.bandwidth * MiB) }),
      signal: giveUp.signal,
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
    lease.stop();
    const why = asPassthruError(err).message;
    const reason = stalled !== undefined ? 'stalled' : gaveUp ? 'lease-lapsed' : undefined;
    await rollBack(ctx, a, obj, (ok) => finish(ok, why, reason), unpluggedAt === undefined ? 'no' : 'yes', replugHere);
    emit('rolled-back', { detail: why, ...(reason === undefined ? {} : { reason }) });
    throw err;
  }
  lease.stop();

  emit('confirm', { status: 'completed' });
  let fin: FinishReply;
  try {
    fin = await finish(true);
  } catch (err) {
    // The destination could not run the guest: the source still has it (postmigrate).
    await finish(false, asPassthruError(err).message).catch(() => undefined);
    await rollBack(
      ctx,
      a,
      obj,
      () => Promise.resolve({ name: a.name, state: 'shutoff' }),
      unpluggedAt === undefined ? 'no' : 'after-completed',
      replugHere,
    );
    emit('rolled-back', { detail: asPassthruError(err).message });
    throw err;
  }

  // Confirmed: the guest runs on the destination, which plugs the unplugged devices from its own
  // pools first (the guest's gap ends there); the source's QEMU stops and its VF goes back.
  const replug = unplugDoc === undefined ? undefined : await replugThere(peer, a.name, unplugDoc);
  if (replug?.devices) emit('replugged', { detail: `on the destination: ${describeRefs(replug.devices)}` });
  if (replug?.error) emit('failed', { detail: `the destination could not plug the devices again: ${replug.error}` });
  const unplugGapMs = replug?.devices && unplugStart !== undefined ? Date.now() - unplugStart : undefined;
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
    unplugged: [...toUnplug.map((d) => d.alias ?? '?'), ...result.unpluggedPrimaries],
    ...(replug?.devices ? { replugged: replug.devices } : {}),
    ...(unplugGapMs === undefined ? {} : { unplugGapMs }),
    ...(replug?.error === undefined ? {} : { replugError: replug.error }),
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
  /** Whether the guest let go of its failover primaries, and whether that migration completed
   *  (then QEMU does not plug them back by itself). */
  unplugged: 'no' | 'yes' | 'after-completed',
  replug: () => Promise<void>,
): Promise<void> {
  await finish(false).catch((err: unknown) => {
    ctx.log.error({ domain: a.name, err: asPassthruError(err).message }, 'destination did not confirm the rollback');
  });
  const run = obj.run;
  obj.state = 'running';
  if (!run?.proc.isAlive()) return; // its exit handler gives the devices back
  run.status = withoutMigratingTo(run.status);
  await ctx.store.saveStatus(run.status);
  const status = ((await run.proc.qmp.execute('query-status').catch(() => ({}))) as { status?: string }).status;
  if (status === 'paused' || status === 'postmigrate' || status === 'finish-migrate') {
    await run.proc.qmp.execute('cont').catch((err: unknown) => {
      ctx.log.error({ domain: a.name, err: asPassthruError(err).message }, 'source guest could not be resumed');
    });
  }
  await replug().catch((e: unknown) => replugFailed(ctx, a, e));
  const primaries = failoverPrimaries(run.live);
  if (unplugged === 'no' || primaries.length === 0) return;
  // The MAC goes back on the VF before QEMU plugs it: a legacy VF's driver in the guest reads
  // its MAC from the PF when it probes, and net_failover enslaves it only with the standby's MAC.
  for (const p of primaries) await steer(ctx, p, 'vf', 'rollback: primary plugged again');
  if (unplugged === 'after-completed') {
    await replugFailoverPrimaries(run.proc.qmp).catch((err: unknown) => {
      ctx.log.error({ domain: a.name, err: asPassthruError(err).message }, 'failover primaries not plugged back');
    });
  }
  const back = await waitPlugged(
    run.proc.qmp,
    primaries.map((p) => p.alias),
    30_000,
  );
  if (!back) for (const p of primaries) await steer(ctx, p, 'standby', 'rollback: primary not back');
}

/** "hostdev0 0000:06:02.3 (network vfs)": what the destination will give, for the check event. */
function describeDevices(c: CheckReply): string {
  return `destination devices: ${c.devices
    .map((d) => `${d.alias} ${d.address}${d.pool === undefined ? '' : ` (${d.pool})`}`)
    .join(', ')}`;
}

/** The destination plugs the devices the source unplugged; a refusal leaves the guest running there
 *  without them (the migration itself is done), and is reported. */
async function replugThere(
  peer: Client,
  name: string,
  xml: string,
): Promise<{ devices?: readonly DeviceRef[]; error?: string }> {
  try {
    const r = await peer.post<{ devices: readonly DeviceRef[] }>(
      `/migrations/${encodeURIComponent(name)}/plug`,
      { xml },
      { timeoutMs: PEER_TIMEOUT_MS },
    );
    return { devices: r.devices };
  } catch (err) {
    return { error: asPassthruError(err).message };
  }
}

function replugFailed(ctx: DaemonContext, a: ActionOf<'migrate'>, err: unknown): void {
  ctx.log.error(
    { domain: a.name, err: asPassthruError(err).message },
    'the unplugged devices could not be plugged back',
  );
}

/** "hostdev1 0000:06:02.6": the device each alias got. */
function describeRefs(refs: readonly DeviceRef[]): string {
  return refs.map((r) => `${r.alias}${r.host === undefined ? '' : ` ${r.host}`}`).join(', ');
}
