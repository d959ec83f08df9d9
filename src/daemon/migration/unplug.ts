import { hostdevOut, interfaceOut } from '../../conf/domain/format-devices.ts';
import { isHybrid } from '../../conf/domain/hybrid.ts';
import { parseDomainXml } from '../../conf/domain/parse.ts';
import type { DomainDef, HostdevDef, InterfaceDef } from '../../conf/domain/types.ts';
import { PassthruError } from '../../conf/error.ts';
import { out } from '../../conf/xml/tree.ts';
import { formatXml } from '../../conf/xml/writer.ts';
import { poolWants, withGrants } from '../../network/actual.ts';
import { guestNumaNodes } from '../../network/numa.ts';
import type { DeviceRef } from '../../protocol/wire.ts';
import type { DaemonContext } from '../context.ts';
import type { DomainObj } from '../domain-table.ts';
import { attachLive, detachLive } from '../hotplug.ts';

/**
 * `migrate --unplug-hostdevs` [seed 000]: a guest whose VF has no virtio standby loses it for the
 * migration. The source hot-unplugs each device a pool gave (a hostdev network's VF, a device
 * pool's device), waiting for the guest to let go, and gives it back to its pool; the guest
 * migrates without it; the destination then takes a device from its own same-named pool and
 * hot-plugs it with the same alias, guest address and MAC. On a rollback the source plugs one
 * from its own pool again. A device named by host address cannot follow: it blocks (checks.ts).
 */
export type PoolDevice = InterfaceDef | HostdevDef;

/** The devices a pool gave that are not the primary of a failover pair (QEMU moves those, a
 *  hybrid network's VF too). */
export function poolDevices(live: DomainDef): PoolDevice[] {
  return [
    ...live.devices.interfaces.filter(
      (n) => n.type === 'network' && n.actual && n.teaming?.type !== 'transient' && !isHybrid(n),
    ),
    ...live.devices.hostdevs.filter((h) => h.source.pool !== undefined && h.teaming?.type !== 'transient'),
  ];
}

/** The devices as the destination reads them: each names its network or pool, never this host's
 *  device (the migratable form), with alias, guest address and MAC kept. */
export function devicesDocument(devices: readonly PoolDevice[]): string {
  const flags = { migratable: true } as const;
  const kids = devices.map((d) => (isHostdev(d) ? hostdevOut(d, flags) : interfaceOut(d, flags)));
  return formatXml(out('devices', [], kids));
}

const isHostdev = (d: PoolDevice): d is HostdevDef => 'mode' in d && d.type === 'pci';

/**
 * Unplugs the devices, waiting up to `waitMs` for the guest, and gives each back to its pool.
 * A guest that does not let go in time stops the migration before anything moved (the device
 * stays unplug-pending, as after detach-device).
 */
export async function unplugPoolDevices(
  ctx: DaemonContext,
  obj: DomainObj,
  devices: readonly PoolDevice[],
  waitMs: number,
): Promise<void> {
  const r = await detachLive(ctx, obj, devices, waitMs);
  if (r.state !== 'detached') {
    throw new PassthruError(
      'TIMEOUT',
      `unplug of ${devices.map((d) => d.alias ?? '?').join(', ')} requested; the guest has not released it within ${waitMs} ms, so the migration did not start`,
      { hint: 'the device stays unplug-pending until the guest lets go; migrate again then' },
    );
  }
  // The hot-unplug path gave each device back to its pool (hotplug.ts finishRemoval).
}

/**
 * Hot-plugs the devices of `xml` (devicesDocument's form) into the running guest, each with a
 * device from this host's same-named network or pool: a network interface gets its VF from the
 * hot-plug path (hotplug.ts attachLive allocates it), a pool hostdev is allocated here first; all
 * or none, and a refusal gives the pool devices back.
 */
export async function plugFromPools(ctx: DaemonContext, obj: DomainObj, xml: string): Promise<DeviceRef[]> {
  const run = obj.run;
  if (!run) throw new PassthruError('OPERATION_INVALID', `domain ${obj.def.name} is not running`);
  const doc = parseDomainXml(
    `<domain type='kvm'><name>${run.live.name}</name><memory>1</memory><os><type>hvm</type></os>${xml}</domain>`,
    'migrated devices',
  );
  const deps = ctx.runs;
  const pooled: DomainDef = { ...doc, devices: { ...doc.devices, interfaces: [] } };
  const wants = poolWants(pooled, guestNumaNodes(run.live, await deps.hostViews.cpuNodes()));
  const grants =
    wants.length === 0
      ? []
      : await deps.pools.allocate(run.live.name, wants, await deps.hostViews.get(), (bdf) => deps.hostdevs.holder(bdf));
  try {
    const granted = grants.length === 0 ? pooled : withGrants(pooled, grants, deps.pools.defs());
    const withNew: DomainDef = {
      ...run.live,
      devices: {
        ...run.live.devices,
        interfaces: [...run.live.devices.interfaces, ...doc.devices.interfaces],
        hostdevs: [...run.live.devices.hostdevs, ...granted.devices.hostdevs],
      },
    };
    return await attachLive(ctx, obj, withNew);
  } catch (err) {
    const released = await deps.pools.release(
      run.live.name,
      grants.map((g) => g.bdf),
    );
    await deps.hostViews.refresh(released.map((x) => x.device));
    throw err;
  }
}
