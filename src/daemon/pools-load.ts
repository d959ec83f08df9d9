import { asPassthruError } from '../conf/error.ts';
import { formatPciAddress } from '../conf/pci-address.ts';
import { interfaceLabel, poolHostdevLabel } from '../network/actual.ts';
import type { PoolRef } from '../network/allocate.ts';
import type { DaemonContext } from './context.ts';

/**
 * Startup, after the QEMUs are taken back: the pools' allocation tables are rebuilt from the
 * running domains' live definitions (a device two of them claim is an error, reported, never
 * shared), then the autostart networks and pools start.
 */
export async function loadPools(ctx: DaemonContext): Promise<void> {
  const claims: { domain: string; ref: PoolRef; device: string; label?: string }[] = [];
  for (const [name, obj] of ctx.domains.entries()) {
    const live = obj.run?.live;
    if (!live) continue;
    for (const i of live.devices.interfaces) {
      if (i.type !== 'network' || !i.actual) continue;
      claims.push({
        domain: name,
        ref: { kind: 'network', name: i.network },
        device: formatPciAddress(i.actual.source.address),
        label: interfaceLabel(i),
      });
    }
    for (const h of live.devices.hostdevs) {
      if (h.source.pool === undefined) continue;
      claims.push({
        domain: name,
        ref: { kind: 'devicepool', name: h.source.pool },
        device: formatPciAddress(h.source.address),
        label: poolHostdevLabel(h.source.pool),
      });
    }
  }
  await ctx.pools.rebuild(claims);
  for (const ref of ctx.pools.autostarts()) {
    try {
      await ctx.pools.start(ref, await ctx.runs.hostViews.get());
      ctx.events.emit({ type: 'pool', event: 'started', kind: ref.kind, name: ref.name });
    } catch (err) {
      // One pool that cannot start (its PF is gone) must not keep the daemon from serving.
      ctx.log.error({ pool: ref, err: asPassthruError(err).message }, 'autostart failed');
    }
  }
}
