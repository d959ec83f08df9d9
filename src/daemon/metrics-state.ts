import { formatPciAddress } from '../conf/pci-address.ts';
import type { PoolKind } from '../network/store.ts';
import type { DaemonContext } from './context.ts';
import type { DeviceState, StateCounts } from './metrics.ts';

const VF_STATES = ['free', 'leased', 'quarantined', 'unplug_pending'] as const;

/**
 * The gauges' figures, from what the daemon already holds: the host view the pools allocate
 * from, the device manager's leases, the pools' allocations and quarantine, and the running
 * domains' unplug-pending devices. Nothing here reads the host beyond the cached view.
 */
export async function stateCounts(ctx: DaemonContext): Promise<StateCounts> {
  const view = await ctx.runs.hostViews.get();
  const hostdevs = ctx.runs.hostdevs;
  const holder = (bdf: string): string | undefined => hostdevs.holder(bdf) ?? ctx.pools.holder(bdf);

  // A device the guest was asked to give back and has not yet: still leased, but on its way.
  const pending = new Set<string>();
  const domains = new Map<string, number>();
  let qemuProcesses = 0;
  for (const obj of ctx.domains.values()) {
    domains.set(obj.state, (domains.get(obj.state) ?? 0) + 1);
    const run = obj.run;
    if (!run) continue;
    qemuProcesses++;
    const aliases = new Set(run.status.unplugPending ?? []);
    if (aliases.size === 0) continue;
    for (const d of hostdevs.held(obj.def.name)) if (aliases.has(d.alias)) pending.add(formatPciAddress(d.address));
  }

  const quarantined = new Set<string>();
  const pools: StateCounts['pools'][number][] = [];
  for (const kind of ['network', 'devicepool'] as const satisfies readonly PoolKind[]) {
    for (const summary of ctx.pools.list(kind)) {
      if (!summary.active) continue;
      const info = ctx.pools.info({ kind, name: summary.name }, view, (bdf) => hostdevs.holder(bdf));
      for (const q of info.quarantined) quarantined.add(q);
      const waiting = info.inUse.filter((u) => pending.has(u.device)).length;
      const counts: Record<DeviceState, number> = {
        free: info.free,
        leased: info.inUse.length - waiting,
        unplug_pending: waiting,
        quarantined: info.quarantined.length,
        unhealthy: info.unhealthy.length,
      };
      for (const [state, count] of Object.entries(counts)) {
        pools.push({ kind, name: summary.name, state: state as DeviceState, count });
      }
    }
  }

  const pfVfs: StateCounts['pfVfs'][number][] = [];
  for (const [pf, dev] of view.byBdf) {
    if (!dev.sriov) continue;
    const counts: Record<(typeof VF_STATES)[number], number> = {
      free: 0,
      leased: 0,
      quarantined: 0,
      unplug_pending: 0,
    };
    for (const vf of dev.sriov.vfs.map(formatPciAddress)) {
      if (pending.has(vf)) counts.unplug_pending++;
      else if (holder(vf) !== undefined) counts.leased++;
      else if (quarantined.has(vf)) counts.quarantined++;
      else counts.free++;
    }
    for (const state of VF_STATES) pfVfs.push({ pf, state, count: counts[state] });
  }

  return {
    pfVfs,
    pools,
    domains: [...domains].map(([state, count]) => ({ state, count })),
    qemuProcesses,
  };
}
