import type { DomainDef } from '../conf/domain/types.ts';
import { asPassthruError, PassthruError } from '../conf/error.ts';
import { formatPciAddress, type PciAddress } from '../conf/pci-address.ts';
import type { Inventory } from '../host/inventory.ts';
import { hostdevRequests } from '../hostdev/request.ts';
import { busAliases, hostdevProps } from '../qemu/device-props.ts';
import { hotplugDevice, type PluggedDevice, planHotplugDevices } from '../qemu/hotplug.ts';
import { memlockBytes, setMemlock } from '../qemu/memlock.ts';
import type { DeviceChange, DeviceRef } from '../protocol/wire.ts';
import type { DaemonContext } from './context.ts';
import { formatDefinition } from './definitions.ts';
import { hostAddressOf } from './device-doc.ts';
import type { DomainObj } from './domain-table.ts';
import { releasePoolDevices, type Running } from './runs.ts';
import { poolWants, withGrants } from '../network/actual.ts';
import { guestNumaNodes } from '../network/numa.ts';
import { attachNics, isQemuBackedNic, removeNics } from './hotplug-nics.ts';
import { refuseHybridHotplug } from './hybrid.ts';
import { expandHybrids } from '../conf/domain/hybrid.ts';

/**
 * Hot-plug and hot-unplug of host devices into a running domain, libvirt's order
 * (qemuDomainAttachHostPCIDevice / qemuDomainDetachDeviceLive): plan the guest side, prepare the
 * host side, `device_add` with the command line's property builder, and give the host back if
 * QEMU refuses; `device_del`, then the device is the host's again only once the guest let go
 * (DEVICE_DELETED). Every change of the live definition is saved in the status before the answer.
 */

export const DEFAULT_UNPLUG_WAIT_MS = 5000;

/**
 * Adds the devices of `withNew` (the live definition with them appended) to the running QEMU.
 * An `<interface type='network'>` on a hostdev network first gets a VF from its pool (as at
 * start), which goes back if anything after fails (QEMU refusing the device_add above all).
 */
export async function attachLive(ctx: DaemonContext, obj: DomainObj, withNew: DomainDef): Promise<DeviceRef[]> {
  const run = running(obj);
  const { def, devices } = await allocateInterfaces(ctx, run.live, withNew);
  try {
    return await attachHostDevices(ctx, obj, def);
  } catch (err) {
    await releasePoolDevices(ctx.runs, run.live.name, devices).catch((e: unknown) => {
      ctx.log.error(
        { domain: run.live.name, err: asPassthruError(e).message },
        'pool release after a refused hot-plug failed',
      );
    });
    throw err;
  }
}

/** The added network interfaces of `withNew` with the VFs their networks gave them (all or none),
 *  and those VFs' PCI addresses. */
async function allocateInterfaces(
  ctx: DaemonContext,
  live: DomainDef,
  withNew: DomainDef,
): Promise<{ def: DomainDef; devices: string[] }> {
  const kept = live.devices.interfaces.length;
  const added = withNew.devices.interfaces.slice(kept);
  const asking: DomainDef = {
    ...withNew,
    devices: {
      ...withNew.devices,
      interfaces: added.filter((i) => i.type === 'network'),
      hostdevs: [],
      poolHostdevs: [],
    },
  };
  const wants = poolWants(asking, guestNumaNodes(live, await ctx.runs.hostViews.cpuNodes()));
  if (wants.length === 0) return { def: withNew, devices: [] };
  const view = await ctx.runs.hostViews.get();
  const grants = await ctx.pools.allocate(live.name, wants, view, (bdf) => ctx.runs.hostdevs.holder(bdf));
  const devices = grants.map((g) => g.bdf);
  try {
    const given = withGrants(asking, grants, ctx.pools.defs()).devices.interfaces;
    let n = 0;
    const interfaces = added.map((i) => (i.type === 'network' ? (given[n++] ?? i) : i));
    return {
      def: { ...withNew, devices: { ...withNew.devices, interfaces: [...live.devices.interfaces, ...interfaces] } },
      devices,
    };
  } catch (err) {
    await releasePoolDevices(ctx.runs, live.name, devices);
    throw err;
  }
}

async function attachHostDevices(ctx: DaemonContext, obj: DomainObj, withNew: DomainDef): Promise<DeviceRef[]> {
  const run = running(obj);
  const took = phases();
  const { added: unplanned } = splitAdded(run.live, withNew);
  refuseHybridHotplug(unplanned, 'hot-plugged');
  const nics = unplanned.filter(isQemuBackedNic);
  if (nics.length > 0 && nics.length === unplanned.length) {
    const { def: planned, added } = planHotplugDevices(run.live, withNew, false);
    const live = await attachNics(ctx, run, planned, added.filter(isQemuBackedNic));
    await saveLive(ctx, run, live);
    const refs = added.map(refOf);
    for (const r of refs) ctx.events.emit({ type: 'device', event: 'added', name: live.name, ...r });
    return refs;
  }
  for (const d of unplanned) {
    if (hostAddressOf(d) === undefined) {
      throw new PassthruError(
        'CONFIG_UNSUPPORTED',
        nics.length > 0
          ? 'attach host devices and the NICs QEMU backs in separate documents'
          : "this interface type cannot be hot-plugged: attach a <hostdev>, an <interface type='hostdev'> or a bridge, direct or user interface",
      );
    }
  }
  const requested = unplanned.map(hostAddressOf).filter(isAddress);
  const unit = checkUnit(await ctx.nodedevs.slotFunctions(requested), requested, [], 'attach');
  took('unit');
  const { def: live, added } = planHotplugDevices(run.live, withNew, unit);
  const aliases = new Set(added.map((d) => d.alias ?? ''));
  const requests = hostdevRequests(live).filter((r) => aliases.has(r.alias));
  const prepared = await ctx.runs.hostdevs.prepare(live.name, requests);
  took('prepare');
  const plugged: string[] = [];
  try {
    await ctx.runs.qemuOwner.lendDevices(
      live.name,
      prepared.filter((p) => p.presentation !== undefined),
    );
    // More VFIO devices may pin more (with a vIOMMU): raise the limit before QEMU maps them.
    if (prepared.some((p) => p.presentation?.kind === 'vfio')) {
      const vfio = hostdevRequests(live).filter((r) => r.assigned).length;
      const bytes = memlockBytes(live, vfio);
      if (bytes !== undefined) await setMemlock(run.pid, bytes);
    }
    took('lend');
    const buses = busAliases(live);
    // Function 0 last: the guest sees a multifunction slot when its function 0 arrives.
    const order = [...added].sort((a, b) => guestFunction(b) - guestFunction(a));
    for (const d of order) {
      const presentation = prepared.find((p) => p.alias === d.alias)?.presentation;
      if (presentation === undefined) continue; // unassigned: leased, no guest device
      await hotplugDevice(run.proc.qmp, hostdevProps(d, presentation, buses));
      plugged.push(d.alias ?? '');
    }
  } catch (err) {
    for (const alias of plugged.reverse())
      await run.proc.qmp.execute('device_del', { id: alias }).catch(() => undefined);
    await ctx.runs.qemuOwner.giveDevices(live.name, [...aliases]);
    await ctx.runs.hostdevs.release(live.name, [...aliases]).catch((e: unknown) => {
      ctx.log.error(
        { domain: live.name, err: asPassthruError(e).message },
        'giving back after a refused hot-plug failed',
      );
    });
    throw err;
  }
  took('device_add');
  await saveLive(ctx, run, live);
  ctx.log.debug({ domain: live.name, ms: took('status') }, 'hot-plug timings');
  const refs = added.map(refOf);
  for (const r of refs) ctx.events.emit({ type: 'device', event: 'added', name: live.name, ...r });
  return refs;
}

/**
 * device_del for the devices (function 0 of a multifunction unit takes its siblings along), then
 * waits up to `waitMs` for the guest to let go. Those it released are given back and leave the
 * live definition; the rest stay there, held, as unplug-pending until DEVICE_DELETED arrives.
 */
export async function detachLive(
  ctx: DaemonContext,
  obj: DomainObj,
  targets: readonly PluggedDevice[],
  waitMs: number,
): Promise<{ state: DeviceChange['state']; devices: DeviceRef[] }> {
  const run = running(obj);
  refuseHybridHotplug(targets, 'hot-unplugged');
  const took = phases();
  const requested = targets.map(hostAddressOf).filter(isAddress);
  checkUnit(await ctx.nodedevs.slotFunctions(requested), requested, heldAddresses(run.live), 'detach');
  took('unit');
  const aliases = targets.map((d) => d.alias ?? '');
  const visible = targets.filter((d) => d.guestAddress?.type !== 'unassigned' && !('assigned' in d && !d.assigned));
  const deleted = new Set<string>();
  const waits = visible.map((d) =>
    run.proc.qmp
      .waitForEvent('DEVICE_DELETED', (ev) => ev.data['device'] === d.alias, waitMs)
      .then(() => deleted.add(d.alias ?? ''))
      .catch(() => undefined),
  );
  const zeroFirst = [...visible].sort((a, b) => guestFunction(a) - guestFunction(b));
  const head = zeroFirst[0];
  try {
    // QEMU unplugs a PCIe multifunction slot through function 0; others alone are refused.
    for (const d of guestFunction(head) === 0 && zeroFirst.length > 1 ? [head] : zeroFirst) {
      if (d) await run.proc.qmp.execute('device_del', { id: d.alias });
    }
  } catch (err) {
    throw new PassthruError(
      'QEMU_FAILED',
      `QEMU refused to unplug ${aliases.join(', ')}: ${asPassthruError(err).message}`,
    );
  }
  took('device_del');
  await Promise.all(waits);
  took('guest');
  // Unassigned functions have no guest device: they go with the rest of their unit.
  const gone = targets.filter((d) => deleted.has(d.alias ?? '') || !visible.includes(d));
  const refs = targets.map(refOf);
  if (gone.length === targets.length) {
    await finishRemoval(ctx, obj, aliases);
    ctx.log.debug({ domain: run.live.name, ms: took('release') }, 'hot-unplug timings');
    return { state: 'detached', devices: refs };
  }
  const pending = new Set([...(run.status.unplugPending ?? []), ...aliases]);
  run.status = { ...run.status, unplugPending: [...pending] };
  await ctx.store.saveStatus(run.status);
  for (const r of refs) ctx.events.emit({ type: 'device', event: 'unplug-pending', name: run.live.name, ...r });
  return { state: 'unplug-pending', devices: refs };
}

/** The guest let go of these (or they never had a guest device): host devices back, live
 *  definition and status without them, `removed` events. Runs under the domain lock. */
export async function finishRemoval(ctx: DaemonContext, obj: DomainObj, aliases: readonly string[]): Promise<void> {
  const run = obj.run;
  if (!run) return;
  const gone = new Set(aliases);
  const devices: PluggedDevice[] = [...run.live.devices.interfaces, ...run.live.devices.hostdevs].filter((d) =>
    gone.has(d.alias ?? ''),
  );
  if (devices.length === 0) return;
  const nics = devices.filter(isQemuBackedNic);
  await removeNics(ctx, run, nics);
  const hostAliases = devices.filter((d) => !isQemuBackedNic(d)).map((d) => d.alias ?? '');
  await ctx.runs.qemuOwner.giveDevices(run.live.name, hostAliases);
  if (hostAliases.length > 0) await ctx.runs.hostdevs.release(run.live.name, hostAliases);
  // A network's VF goes back to its pool once the device manager has it on its host driver.
  const bdfs = devices.map(hostAddressOf).filter(isAddress).map(formatPciAddress);
  await releasePoolDevices(ctx.runs, run.live.name, bdfs);
  const live: DomainDef = {
    ...run.live,
    devices: {
      ...run.live.devices,
      interfaces: run.live.devices.interfaces.filter((d) => !gone.has(d.alias ?? '')),
      hostdevs: run.live.devices.hostdevs.filter((d) => !gone.has(d.alias ?? '')),
    },
  };
  const pending = (run.status.unplugPending ?? []).filter((a) => !gone.has(a));
  run.live = live;
  run.status = { ...run.status, liveXml: formatDefinition(live, false), unplugPending: pending };
  await ctx.store.saveStatus(run.status);
  for (const d of devices) ctx.events.emit({ type: 'device', event: 'removed', name: live.name, ...refOf(d) });
}

/**
 * Follows a running QEMU's device events for as long as it runs: DEVICE_DELETED (an unplug the
 * guest finished, also one asked for before a daemon restart, or one the guest started itself)
 * and FAILOVER_NEGOTIATED (the guest's virtio driver took the failover pair: its primary is
 * visible now). After a restart, unplugs that finished while no daemon listened are found first.
 */
export function followGuest(ctx: DaemonContext, name: string, run: Running): void {
  const work = (fn: (obj: DomainObj) => Promise<void>): void => {
    const obj = ctx.domains.find(name);
    if (obj?.run !== run) return;
    ctx.domains.queue(
      obj,
      async () => {
        if (obj.run === run) await fn(obj);
      },
      (err) => ctx.log.error({ domain: name, err: asPassthruError(err).message }, 'device event handling failed'),
    );
  };
  const pending = run.status.unplugPending ?? [];
  if (pending.length > 0) {
    work(async (obj) => {
      const present = await peripherals(run);
      const done = pending.filter((a) => !present.has(a));
      if (done.length > 0) await finishRemoval(ctx, obj, done);
    });
  }
  void (async () => {
    for await (const ev of run.proc.qmp.events()) {
      if (ev.event === 'DEVICE_DELETED' && typeof ev.data['device'] === 'string') {
        const alias = ev.data['device'];
        work((obj) => finishRemoval(ctx, obj, [alias]));
      } else if (ev.event === 'FAILOVER_NEGOTIATED' && typeof ev.data['device-id'] === 'string') {
        const standby = ev.data['device-id'];
        work(async () => {
          const negotiated = new Set([...(run.status.failoverNegotiated ?? []), standby]);
          run.status = { ...run.status, failoverNegotiated: [...negotiated] };
          await ctx.store.saveStatus(run.status);
          const live = expandHybrids(run.live);
          const primary = [...live.devices.interfaces, ...live.devices.hostdevs].find(
            (d) => d.teaming?.type === 'transient' && d.teaming.persistent === standby,
          );
          ctx.events.emit({
            type: 'device',
            event: 'failover-negotiated',
            name,
            ...refOf(primary ?? { alias: standby }),
          });
        });
      }
    }
  })().catch(() => undefined);
}

/** The ids of QEMU's user-created devices (qom-list /machine/peripheral). */
async function peripherals(run: Running): Promise<Set<string>> {
  const list = (await run.proc.qmp.execute('qom-list', { path: '/machine/peripheral' })) as { name: string }[];
  return new Set(list.map((p) => p.name));
}

async function saveLive(ctx: DaemonContext, run: Running, live: DomainDef): Promise<void> {
  run.live = live;
  run.status = { ...run.status, liveXml: formatDefinition(live, false) };
  await ctx.store.saveStatus(run.status);
}

/**
 * Multifunction as one unit [seed]: the functions of a host multifunction device (VFs are never
 * one) are attached together or detached together. `held`: what the domain has (detach: every
 * function it holds of the unit must go). Returns whether the request is one such unit.
 */
export function checkUnit(
  inv: Inventory,
  requested: readonly PciAddress[],
  held: readonly PciAddress[],
  verb: 'attach' | 'detach',
): boolean {
  const key = (a: PciAddress): string => formatPciAddress(a).slice(0, -2);
  const want = new Set(requested.map(formatPciAddress));
  const have = new Set(held.map(formatPciAddress));
  let units = 0;
  for (const slot of new Set(requested.map(key))) {
    const functions = inv.devices
      .filter((d) => d.physfn === undefined && key(d.address) === slot)
      .filter(
        (d) => inv.devices.some((o) => o !== d && o.physfn === undefined && key(o.address) === slot) || d.multifunction,
      );
    if (functions.length < 2) continue;
    units++;
    const scope = verb === 'attach' ? functions : functions.filter((f) => have.has(f.name));
    const missing = scope.filter((f) => !want.has(f.name)).map((f) => f.name);
    if (missing.length > 0) {
      throw new PassthruError(
        'OPERATION_INVALID',
        `${slot}.x is a multifunction device: its functions are ${verb === 'attach' ? 'attached' : 'detached'} together; the request lacks ${missing.join(', ')}`,
        {
          hint: `put a <hostdev> for each function in one <devices> document (assigned='no' for one the guest must not see)`,
        },
      );
    }
  }
  return units === 1 && new Set(requested.map(key)).size === 1;
}

function heldAddresses(live: DomainDef): PciAddress[] {
  return [...live.devices.interfaces, ...live.devices.hostdevs].map(hostAddressOf).filter(isAddress);
}

function splitAdded(live: DomainDef, withNew: DomainDef): { added: PluggedDevice[] } {
  return {
    added: [
      ...withNew.devices.interfaces.slice(live.devices.interfaces.length),
      ...withNew.devices.hostdevs.slice(live.devices.hostdevs.length),
    ],
  };
}

/** Milliseconds of each phase of a hot-plug, for the structured log: each call names the phase
 *  that just ended and returns them all so far. */
function phases(): (phase: string) => Record<string, number> {
  const out: Record<string, number> = {};
  let last = performance.now();
  return (phase) => {
    const now = performance.now();
    out[phase] = Math.round(now - last);
    last = now;
    return out;
  };
}

function running(obj: DomainObj): Running {
  if (!obj.run) throw new PassthruError('OPERATION_INVALID', `domain ${obj.def.name} is not running`);
  return obj.run;
}

function guestFunction(d: PluggedDevice | undefined): number {
  return d?.guestAddress?.type === 'pci' ? d.guestAddress.function : 0;
}

function isAddress(a: PciAddress | undefined): a is PciAddress {
  return a !== undefined;
}

export function refOf(
  d: { readonly alias?: string; readonly guestAddress?: PluggedDevice['guestAddress'] } & Partial<PluggedDevice>,
): DeviceRef {
  const host = 'source' in d || 'mode' in d || 'actual' in d ? hostAddressOf(d as PluggedDevice) : undefined;
  return {
    alias: d.alias ?? '',
    ...(d.guestAddress?.type === 'pci' ? { address: formatPciAddress(d.guestAddress) } : {}),
    ...(host ? { host: formatPciAddress(host) } : {}),
  };
}
