import type { DomainDef } from '../../conf/domain/types.ts';
import { PassthruError } from '../../conf/error.ts';
import { formatPciAddress } from '../../conf/pci-address.ts';
import { hostdevRequests } from '../../hostdev/request.ts';
import { poolWants, withGrants } from '../../network/actual.ts';
import { guestNumaNodes } from '../../network/numa.ts';
import type { CheckReply } from '../../protocol/wire.ts';
import { prepareLiveDef } from '../../qemu/live-def.ts';
import type { ActionOf } from '../actions.ts';
import type { DaemonContext } from '../context.ts';
import { parseDefinition } from '../definitions.ts';
import { spareOption } from '../start.ts';
import { checkHybridShape, withStandbyParents } from '../hybrid.ts';

/**
 * The destination's check (libvirt's Begin/Prepare checks, asked before anything moves): the
 * definition from the source's migratable XML reads here, no other domain of that name is in the
 * way, each `<interface type='network'>` and pool hostdev gets a free device from the
 * same-named network or pool of this host (the migratable XML names the network, never the
 * source's VF), and the device manager would prepare every host device. Nothing is taken: the
 * pools' reservation is withdrawn at once and the device manager only plans.
 */
export async function checkIncoming(a: ActionOf<'migrateCheck'>, ctx: DaemonContext): Promise<CheckReply> {
  const def = parseDefinition(a.xml, 'migration XML');
  refuseInTheWay(ctx, def);
  const deps = ctx.runs;
  const wants = poolWants(def, guestNumaNodes(def, await deps.hostViews.cpuNodes()));
  const grants =
    wants.length === 0 ? [] : deps.pools.probe(wants, await deps.hostViews.get(), (bdf) => deps.hostdevs.holder(bdf));
  const live = prepareLiveDef(
    grants.length === 0 ? def : withGrants(def, grants, deps.pools.defs()),
    spareOption(deps),
  );
  checkHybridShape(def, live);
  // A hybrid's standby needs its VF's PF netdev here (read-only: found and checked, nothing made).
  await withStandbyParents(live, deps.hostViews, deps.netdevs);
  const requests = hostdevRequests(live, { incoming: true });
  await deps.hostdevs.plan(def.name, requests);
  const poolOf = new Map(grants.map((g, i) => [g.bdf, wants[i]?.ref.name]));
  return {
    devices: requests.map((r) => {
      const address = formatPciAddress(r.address);
      const pool = poolOf.get(address);
      return { alias: r.alias, address, ...(pool === undefined ? {} : { pool }) };
    }),
  };
}

/** A domain of the same name here that is another guest (another UUID) or already runs. */
export function refuseInTheWay(ctx: DaemonContext, def: DomainDef): void {
  const existing = ctx.domains.find(def.name);
  if (existing?.def.uuid && def.uuid && existing.def.uuid !== def.uuid) {
    throw new PassthruError(
      'DOMAIN_EXISTS',
      `domain ${def.name} already exists on the destination with uuid ${existing.def.uuid}, not ${def.uuid}`,
    );
  }
  if (existing?.run) {
    throw new PassthruError('OPERATION_INVALID', `domain ${def.name} is already active on the destination`);
  }
}
