import { asPassthruError } from '../../conf/error.ts';
import type { QmpClient } from '../../qemu/qmp.ts';
import type { DaemonContext } from '../context.ts';
import type { FailoverPrimary } from './checks.ts';

/**
 * The datapath follows QEMU's failover events: the guest MAC's filter is on the VF while the
 * guest has its primary, and on the standby path while it has not (seed 003: "the QMP event
 * is served as a checkpoint to switch MAC filter"). The sim moves its switch model; a linux
 * host moves the VF's admin MAC on the PF (host/datapath.ts). A host without a datapath only
 * logs the move it would make.
 */
export async function steer(
  ctx: Pick<DaemonContext, 'peers' | 'log'>,
  p: FailoverPrimary,
  to: 'vf' | 'standby' | 'none',
  reason: string,
): Promise<void> {
  if (!p.mac) return;
  const mac: string = p.mac;
  const dp = ctx.peers.datapath;
  if (!dp) {
    ctx.log.info({ mac, to, reason }, 'datapath move not modelled on this host');
    return;
  }
  try {
    const target = await dp.steer(p.address, mac, to, reason);
    ctx.log.info({ mac, to: target, reason }, 'datapath steered');
  } catch (err) {
    // The guest's frames take a worse path, but the migration itself must not fail on it.
    ctx.log.error({ mac, to, reason, err: asPassthruError(err).message }, 'datapath move failed');
  }
}

/** Whether QEMU has the primary as a device now (plugged, not hidden). */
export async function primaryPlugged(qmp: QmpClient, alias: string): Promise<boolean> {
  const list = (await qmp.execute('qom-list', { path: '/machine/peripheral' }).catch(() => [])) as { name: string }[];
  return list.some((e) => e.name === alias);
}

/** Waits (bounded) until QEMU has plugged every primary again. */
export async function waitPlugged(qmp: QmpClient, aliases: readonly string[], timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let all = true;
    for (const a of aliases) if (!(await primaryPlugged(qmp, a))) all = false;
    if (all) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}
