import { PassthruError } from '../../conf/error.ts';
import type { FinishReply, IncomingReply, MigrationEvent } from '../../protocol/wire.ts';
import { listenIncoming } from '../../qemu/migration.ts';
import type { QmpClient } from '../../qemu/qmp.ts';
import type { ActionOf } from '../actions.ts';
import type { DaemonContext } from '../context.ts';
import { formatDefinition, parseDefinition } from '../definitions.ts';
import type { DomainObj } from '../domain-table.ts';
import { onExit } from '../guest-exit.ts';
import { followGuest } from '../hotplug.ts';
import { destroyRun, type Running } from '../runs.ts';
import { startDomain } from '../start.ts';
import type { DomainStatus } from '../store.ts';
import { refuseInTheWay } from './check-incoming.ts';
import { type FailoverPrimary, failoverPrimaries } from './checks.ts';
import { primaryPlugged, steer } from './datapath.ts';
import { DEFAULT_INCOMING_LEASE_MS, holdLease, type Lease } from './lease.ts';
import { addStreamTls } from './stream-tls.ts';

/**
 * The destination's two phases (libvirt's Prepare and Finish). Prepare: the definition from
 * the source's live XML (aliases and guest addresses kept), its devices prepared through this
 * host's device manager (VFs bound to vfio, MAC programmed, port profiles associated) before
 * QEMU starts with -incoming and listens. Finish: run the guest and keep its definition, or give
 * everything back. Until Finish the guest belongs to the source: a daemon restart in between
 * stops this QEMU (its status says `incoming`).
 */
interface Incoming {
  /** The domain was not defined here before: a rollback forgets it again. */
  readonly added: boolean;
  /** When QEMU plugged the failover primaries (FAILOVER_NEGOTIATED), ms since the epoch. */
  pluggedAt?: number;
  /** The standbys whose guest negotiated failover here (QEMU says so while it loads the guest). */
  readonly negotiated: Set<string>;
  steered: boolean;
  stop(): void;
  /** Held while the source speaks (lease.ts); its lapse gives everything back. */
  lease?: Lease;
}

const pending = new WeakMap<DaemonContext, Map<string, Incoming>>();

function pendingOf(ctx: DaemonContext): Map<string, Incoming> {
  let m = pending.get(ctx);
  if (!m) {
    m = new Map();
    pending.set(ctx, m);
  }
  return m;
}

export async function prepareIncoming(a: ActionOf<'migrateIncoming'>, ctx: DaemonContext): Promise<IncomingReply> {
  const def = parseDefinition(a.xml, 'migration XML');
  refuseInTheWay(ctx, def);
  const existing = ctx.domains.find(def.name);
  if (a.tls && !ctx.peers.tls) {
    throw new PassthruError('OPERATION_INVALID', 'the destination has no TLS identity for the migration stream');
  }
  const added = !existing;
  if (added) ctx.domains.add(def);
  try {
    return await ctx.domains.locked(a, def.name, (obj) => prepareLocked(a, ctx, obj, def, added));
  } catch (err) {
    if (added && !ctx.domains.find(def.name)?.run) ctx.domains.delete(def.name);
    throw err;
  }
}

async function prepareLocked(
  a: ActionOf<'migrateIncoming'>,
  ctx: DaemonContext,
  obj: DomainObj,
  def: DomainObj['def'],
  added: boolean,
): Promise<IncomingReply> {
  const emit = (phase: 'prepare' | 'rolled-back', detail?: string): void => {
    ctx.log.info({ domain: def.name, phase, detail }, 'incoming migration phase');
    ctx.events.emit({
      type: 'migration',
      name: def.name,
      role: 'destination',
      phase,
      ...(detail ? { detail } : {}),
    });
  };
  emit('prepare');
  obj.state = 'migrating';
  try {
    obj.run = await startDomain(ctx.runs, def, (reason, st) => onExit(ctx, def.name, reason, st), {
      incoming: true,
    });
  } catch (err) {
    obj.state = 'shutoff';
    emit('rolled-back', 'prepare failed');
    throw err;
  }
  const run = obj.run;
  const primaries = failoverPrimaries(run.live);
  const state: Incoming = { added, negotiated: new Set(), steered: false, stop: () => undefined };
  try {
    const tls =
      a.tls && ctx.peers.tls
        ? await addStreamTls(run.proc.qmp, ctx.store.runDir(def.name), ctx.peers.tls, 'server')
        : undefined;
    // Until the guest has its primary here, its frames go the standby way (pre-associated).
    for (const p of primaries)
      await steer(ctx, p, 'standby', 'incoming migration: standby until the primary is plugged');
    state.stop = followNegotiation(ctx, run.proc.qmp, primaries, state);
    const uri = await listenIncoming(
      run.proc.qmp,
      `tcp:${a.listenHost.includes(':') ? `[${a.listenHost}]` : a.listenHost}:0`,
      tls === undefined ? undefined : { credsId: tls },
    );
    // The lease goes into the status: a daemon restarted meanwhile takes the migration back under it.
    const leaseMs = a.leaseMs ?? ctx.peers.migration?.incomingLeaseMs ?? DEFAULT_INCOMING_LEASE_MS;
    run.status = { ...run.status, incomingLeaseMs: leaseMs, ...(added ? { incomingAdded: true as const } : {}) };
    await ctx.store.saveStatus(run.status);
    pendingOf(ctx).set(def.name, state);
    state.lease = holdLease(leaseMs, () => lapse(ctx, obj, state));
    return { uri, leaseMs };
  } catch (err) {
    state.stop();
    await destroyRun(ctx.runs, run);
    obj.run = undefined;
    obj.state = 'shutoff';
    for (const p of primaries) await steer(ctx, p, 'none', 'incoming migration rolled back');
    emit('rolled-back', 'listen failed');
    throw err;
  }
}

/** On FAILOVER_NEGOTIATED QEMU plugs the primary: the MAC's filter goes on the VF. */
function followNegotiation(
  ctx: DaemonContext,
  qmp: QmpClient,
  primaries: readonly FailoverPrimary[],
  state: Incoming,
): () => void {
  if (primaries.length === 0) return () => undefined;
  const events = qmp.events();
  void (async () => {
    for await (const ev of events) {
      if (ev.event !== 'FAILOVER_NEGOTIATED') continue;
      const standby = ev.data['device-id'];
      if (typeof standby !== 'string') continue;
      const matched = primaries.filter((p) => p.standby === standby);
      if (matched.length === 0) continue;
      state.pluggedAt ??= Date.now();
      state.negotiated.add(standby);
      for (const p of matched) await steer(ctx, p, 'vf', 'FAILOVER_NEGOTIATED: primary plugged on the destination');
      state.steered = true;
    }
  })();
  return () => void events.return?.();
}

export async function finishIncoming(a: ActionOf<'migrateFinish'>, ctx: DaemonContext): Promise<FinishReply> {
  return ctx.domains.locked(a, a.name, async (obj) => {
    const state = pendingOf(ctx).get(a.name);
    if (!state && obj.state === 'running') {
      // Finished before: a source whose daemon restarted asks again. The guest runs here, so
      // it may only be confirmed, never rolled back.
      if (a.ok) return { name: a.name, state: 'running' };
      throw new PassthruError(
        'OPERATION_INVALID',
        `domain ${a.name} runs on the destination: its migration was confirmed and cannot be rolled back`,
      );
    }
    const run = obj.run;
    if (!state && !run) {
      // Given up before (its lease lapsed): nothing of it is left here.
      if (!a.ok) return { name: a.name, state: 'shutoff' };
      throw new PassthruError('OPERATION_INVALID', `domain ${a.name} has no incoming migration on the destination`);
    }
    const giveBack = (): Promise<void> => abandon(ctx, obj, state, a.why, a.reason);
    if (!a.ok || !run) {
      await giveBack();
      if (a.ok) throw new PassthruError('QEMU_FAILED', `the incoming QEMU of domain ${a.name} is gone`);
      return { name: a.name, state: 'shutoff' };
    }
    const primaries = failoverPrimaries(run.live);
    // The switch moves the guest's port profiles here before its CPUs run (libvirt's order);
    // a switch that refuses sends the guest back to the source, which still has it.
    try {
      const associated = await ctx.runs.hostdevs.associateIncoming(a.name);
      if (associated.length > 0) ctx.log.info({ domain: a.name, associated }, 'port profiles associated');
    } catch (err) {
      await giveBack();
      throw err;
    }
    pendingOf(ctx).delete(a.name);
    state?.stop();
    state?.lease?.end();
    // The guest is ours from here: its status loses `incoming` before it runs, so that a
    // restart in between adopts it rather than stopping the only copy.
    const seen = [...(state?.negotiated ?? [])];
    const status = {
      ...withoutIncoming(run.status),
      ...(seen.length === 0 ? {} : { failoverNegotiated: seen }),
    };
    await ctx.store.saveStatus(status);
    run.status = status; // a later hot-plug writes the status from this one
    await ctx.store.saveConfig(a.name, formatDefinition(run.live, true));
    obj.def = run.live;
    // From here the guest's own device events are followed as for a guest started here
    // (unplugs it finishes, failover negotiation), queued behind this finish.
    followGuest(ctx, a.name, run);
    await run.proc.qmp.execute('cont');
    obj.state = 'running';
    // The guest negotiated failover on the source; QEMU here plugs the primary while it loads the
    // guest (FAILOVER_NEGOTIATED may come then, or not at all): a plugged primary counts as
    // negotiated, as domiflist shows it.
    const negotiated = new Set(run.status.failoverNegotiated ?? []);
    for (const p of primaries) {
      if (!(await primaryPlugged(run.proc.qmp, p.alias))) continue;
      negotiated.add(p.standby);
      if (!state?.steered) await steer(ctx, p, 'vf', 'migration finished: primary plugged on the destination');
    }
    if (negotiated.size > (run.status.failoverNegotiated?.length ?? 0)) {
      run.status = { ...run.status, failoverNegotiated: [...negotiated] };
      await ctx.store.saveStatus(run.status);
    }
    const pluggedAt = state?.pluggedAt ?? (primaries.length > 0 ? Date.now() : undefined);
    ctx.events.emit({ type: 'domain', event: 'started', name: a.name, reason: 'migrated' });
    ctx.events.emit({ type: 'migration', name: a.name, role: 'destination', phase: 'done' });
    return { name: a.name, state: 'running', ...(pluggedAt === undefined ? {} : { primaryPluggedAt: pluggedAt }) };
  });
}

/**
 * After a daemon restart, an incoming migration held on a lease (its status says so): its QEMU
 * may still be receiving, and its source may come to finish it. It is held again under a full
 * lease from now (the source's last word is not known; its renewals failed while this daemon
 * was away), followed as at prepare, and given up when the lease lapses.
 */
export function takeBackIncoming(ctx: DaemonContext, obj: DomainObj, run: Running): void {
  const name = run.live.name;
  const leaseMs = run.status.incomingLeaseMs ?? DEFAULT_INCOMING_LEASE_MS;
  obj.state = 'migrating';
  const state: Incoming = {
    added: run.status.incomingAdded === true,
    negotiated: new Set(),
    steered: false,
    stop: () => undefined,
  };
  state.stop = followNegotiation(ctx, run.proc.qmp, failoverPrimaries(run.live), state);
  pendingOf(ctx).set(name, state);
  state.lease = holdLease(leaseMs, () => lapse(ctx, obj, state));
  ctx.log.warn({ domain: name, leaseMs }, 'took back an incoming migration: held while its source renews the lease');
}

/** The source renews its lease on an incoming migration (lease.ts); none here is an error the
 *  source acts on (it cancels). */
export function renewIncoming(a: ActionOf<'migrateRenew'>, ctx: DaemonContext): { name: string; leaseMs: number } {
  const lease = pendingOf(ctx).get(a.name)?.lease;
  if (!lease) {
    throw new PassthruError('OPERATION_INVALID', `domain ${a.name} has no incoming migration on the destination`);
  }
  lease.renew();
  return { name: a.name, leaseMs: lease.ms };
}

/** The incoming QEMU stops, its devices go back, a domain defined for it is forgotten: the guest
 *  stays the source's. `why` goes with the event (the source's words, or the lease's). */
async function abandon(
  ctx: DaemonContext,
  obj: DomainObj,
  state: Incoming | undefined,
  why?: string,
  reason?: MigrationEvent['reason'],
): Promise<void> {
  const name = obj.def.name;
  const t0 = performance.now();
  if (pendingOf(ctx).get(name) === state) pendingOf(ctx).delete(name);
  state?.stop();
  state?.lease?.end();
  const run = obj.run;
  if (run) await destroyRun(ctx.runs, run);
  obj.run = undefined;
  obj.state = 'shutoff';
  for (const p of run ? failoverPrimaries(run.live) : []) await steer(ctx, p, 'none', 'incoming migration rolled back');
  if (state?.added) ctx.domains.delete(name);
  const restoreMs = Math.round(performance.now() - t0);
  ctx.log.warn({ domain: name, why, restoreMs }, 'incoming migration given up: devices restored');
  ctx.events.emit({
    type: 'migration',
    name,
    role: 'destination',
    phase: 'rolled-back',
    ...(why === undefined ? {} : { detail: why }),
    ...(reason === undefined ? {} : { reason }),
  });
}

/** The source fell silent for the whole lease: the destination gives the migration up, behind
 *  whatever the domain's lock is doing (a finish that came first wins). */
function lapse(ctx: DaemonContext, obj: DomainObj, state: Incoming): void {
  const name = obj.def.name;
  const secs = Number(((state.lease?.ms ?? 0) / 1000).toFixed(1));
  ctx.domains.queue(
    obj,
    async () => {
      if (pendingOf(ctx).get(name) !== state) return;
      await abandon(
        ctx,
        obj,
        state,
        `no word from the source for ${secs} s: incoming migration given up`,
        'lease-lapsed',
      );
    },
    (err) => ctx.log.error({ domain: name, err }, 'incoming migration not given up after its lease lapsed'),
    'migration-lease',
  );
}

const INCOMING_KEYS = new Set(['incoming', 'incomingLeaseMs', 'incomingAdded']);

function withoutIncoming(s: DomainStatus): DomainStatus {
  return Object.fromEntries(Object.entries(s).filter(([k]) => !INCOMING_KEYS.has(k))) as unknown as DomainStatus;
}
