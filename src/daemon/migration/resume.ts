import { asPassthruError } from '../../conf/error.ts';
import { Client, parseEndpoint } from '../../protocol/client.ts';
import type { FinishReply } from '../../protocol/wire.ts';
import { migrationStatus, replugFailoverPrimaries } from '../../qemu/migration.ts';
import type { DaemonContext } from '../context.ts';
import type { DomainObj } from '../domain-table.ts';
import { destroyRun, type Running } from '../runs.ts';
import { parseDefinition } from '../definitions.ts';
import type { DomainStatus } from '../store.ts';
import { failoverPrimaries } from './checks.ts';
import { keepLease } from './lease.ts';
import { steer, waitPlugged } from './datapath.ts';

/**
 * The source daemon died while its QEMU was sending the guest (the status says `migratingTo`).
 * QEMU went on alone: the migration completed, failed, or still runs. After the restart the
 * daemon settles it with the destination, so that the guest runs on exactly one side:
 * - completed, and the destination runs the guest on `finish` (idempotent there): the source's
 *   QEMU stops and its devices go back;
 * - completed, but the destination cannot run it (its daemon restarted, its QEMU died): the
 *   source resumes its guest and has QEMU plug the failover primaries back;
 * - failed or cancelled: the destination gives back what it took, the source's guest runs on
 *   (QEMU plugged its primaries back itself).
 * A migration still running is waited for (bounded), then cancelled.
 */
const SETTLE_WAIT_MS = 120_000;
const PEER_TIMEOUT_MS = 60_000;
/** The destination's lease is not known after a restart: renew as for a short one (every 1 s). */
const SETTLE_RENEW_LEASE_MS = 4_000;

export function settleInterruptedMigration(ctx: DaemonContext, obj: DomainObj, run: Running, dest: string): void {
  const name = run.live.name;
  obj.state = 'migrating';
  ctx.domains.queue(
    obj,
    async () => {
      if (obj.run !== run) return;
      await settle(ctx, obj, run, dest);
    },
    (err) => {
      obj.state = obj.run ? 'running' : 'shutoff';
      ctx.log.error({ domain: name, dest, err: asPassthruError(err).message }, 'interrupted migration not settled');
    },
  );
}

async function settle(ctx: DaemonContext, obj: DomainObj, run: Running, dest: string): Promise<void> {
  const name = run.live.name;
  const qmp = run.proc.qmp;
  const endpoint = parseEndpoint(dest);
  const peer = new Client(endpoint, endpoint.kind === 'tls' ? ctx.peers.tls : undefined);
  // The destination holds the migration on a lease while QEMU goes on: renew it until QEMU is
  // done; a destination that gave up means the migration cannot complete, so it is cancelled.
  const lease = keepLease(
    peer,
    name,
    SETTLE_RENEW_LEASE_MS,
    (why) => {
      ctx.log.warn({ domain: name, dest, why }, 'the destination gave the migration up: cancelling it');
      qmp.execute('migrate_cancel').catch(() => undefined);
    },
    (why) => ctx.log.warn({ domain: name, dest, err: why }, 'migration lease not renewed'),
  );
  const status = await finalStatus(run).finally(() => lease.stop());
  ctx.log.warn({ domain: name, dest, status }, 'settling a migration the daemon did not finish');
  const finish = (ok: boolean): Promise<FinishReply> =>
    peer.post<FinishReply>(`/migrations/${encodeURIComponent(name)}/finish`, { ok }, { timeoutMs: PEER_TIMEOUT_MS });
  const primaries = failoverPrimaries(run.live);
  if (status === 'completed') {
    const ran = await finish(true).then(
      () => true,
      (err: unknown) => {
        ctx.log.error({ domain: name, err: asPassthruError(err).message }, 'the destination did not take the guest');
        return false;
      },
    );
    if (ran) {
      await destroyRun(ctx.runs, run);
      obj.run = undefined;
      obj.state = 'shutoff';
      for (const p of primaries) await steer(ctx, p, 'none', 'migrated away (settled after a restart)');
      ctx.events.emit({ type: 'migration', name, role: 'source', phase: 'done', detail: 'settled after a restart' });
      ctx.events.emit({ type: 'domain', event: 'stopped', name, reason: 'migrated' });
      return;
    }
  }
  await finish(false).catch((err: unknown) => {
    ctx.log.error({ domain: name, err: asPassthruError(err).message }, 'destination did not confirm the rollback');
  });
  const vm = ((await qmp.execute('query-status')) as { status?: string }).status;
  if (vm === 'paused' || vm === 'postmigrate' || vm === 'finish-migrate') await qmp.execute('cont');
  // The MAC goes back on the VF before QEMU plugs it (the guest's VF driver reads it at probe).
  for (const p of primaries) await steer(ctx, p, 'vf', 'rollback after a restart: primary plugged again');
  if (status === 'completed' && primaries.length > 0) await replugFailoverPrimaries(qmp);
  const back =
    primaries.length > 0 &&
    (await waitPlugged(
      qmp,
      primaries.map((p) => p.alias),
      30_000,
    ));
  if (!back) for (const p of primaries) await steer(ctx, p, 'standby', 'rollback after a restart: primary not back');
  run.status = withoutMigratingTo(run.status);
  await ctx.store.saveStatus(run.status);
  obj.state = 'running';
  ctx.events.emit({ type: 'migration', name, role: 'source', phase: 'rolled-back', detail: 'settled after a restart' });
}

/** The migration's end as QEMU tells it; one still running is waited for, then cancelled. */
async function finalStatus(run: Running): Promise<string> {
  const qmp = run.proc.qmp;
  const end = Date.now() + SETTLE_WAIT_MS;
  let cancelled = false;
  for (;;) {
    const s = await migrationStatus(qmp);
    if (s === 'completed' || s === 'failed' || s === 'cancelled' || s === 'none') return s;
    if (cancelled && Date.now() > end + 30_000) return s;
    if (Date.now() > end && !cancelled) {
      await qmp.execute('migrate_cancel').catch(() => undefined);
      cancelled = true;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * After a restart, the status of an incoming migration whose domain was not defined here before
 * (its definition is stored only at finish): the domain is added from the status's live XML so
 * that the restart stops that QEMU and gives its devices back as for any unfinished incoming
 * migration (libvirt kills an incoming domain still in Prepare when its daemon restarts). Left
 * alone, its QEMU would wait forever and the device manager's recovery would hand its devices
 * back to the host under it.
 */
export function arrivingWithoutDefinition(ctx: DaemonContext, status: DomainStatus): DomainObj | undefined {
  if (status.incoming !== true) return undefined;
  try {
    return ctx.domains.add(parseDefinition(status.liveXml, `run/${status.name}.json`));
  } catch (err) {
    ctx.log.error({ domain: status.name, err }, 'an unfinished incoming migration cannot be read');
    return undefined;
  }
}

export function withoutMigratingTo(s: DomainStatus): DomainStatus {
  return Object.fromEntries(Object.entries(s).filter(([k]) => k !== 'migratingTo')) as unknown as DomainStatus;
}
