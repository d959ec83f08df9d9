import type { DomainDef } from '../../conf/domain/types.ts';
import { PassthruError } from '../../conf/error.ts';
import { formatPciAddress } from '../../conf/pci-address.ts';
import { isHostdevInterface } from '../../conf/domain/hostdevs.ts';
import { completeDefinition } from '../../qemu/define-def.ts';
import { expandHybrid, markHybridNetworks } from '../../conf/domain/hybrid.ts';
import { hybridNetworks } from '../hybrid.ts';
import type { PluggedDevice } from '../../qemu/hotplug.ts';
import type { DeviceChange, DeviceRef, InterfaceRow } from '../../protocol/wire.ts';
import type { DeviceFlags } from '../actions.ts';
import type { DaemonContext, HandlerGroup } from '../context.ts';
import { formatDefinition } from '../definitions.ts';
import { findDocumentDevices, hostAddressOf, withDocument } from '../device-doc.ts';
import type { DomainObj } from '../domain-table.ts';
import { attachLive, DEFAULT_UNPLUG_WAIT_MS, detachLive, refOf } from '../hotplug.ts';
import { spareOption } from '../start.ts';

/** Guest devices of a domain: attach, detach (by XML or alias), and its NICs. */
export const deviceHandlers = {
  attachDevice: (a, ctx) =>
    ctx.domains.locked(a, a.name, async (obj) => {
      const { live, config } = flagsOf(a, obj);
      let devices: DeviceRef[] = [];
      if (live) devices = await attachLive(ctx, obj, withDocument(runningLive(obj), a.xml, true));
      if (config) {
        const doc = markHybridNetworks(withDocument(obj.def, a.xml, false), hybridNetworks(ctx.pools));
        const def = completeDefinition(doc, spareOption(ctx.runs));
        await saveConfig(ctx, obj, def);
        if (!live) devices = addedRefs(obj.def, def);
      }
      return change(a.name, 'attached', devices, live, config, 'Device attached successfully');
    }),
  detachDevice: (a, ctx) =>
    ctx.domains.locked(a, a.name, async (obj) => {
      const flags = flagsOf(a, obj);
      return detach(ctx, obj, flags, a.timeoutMs, (def) => findDocumentDevices(def, a.xml));
    }),
  detachDeviceAlias: (a, ctx) =>
    ctx.domains.locked(a, a.name, async (obj) => {
      const flags = flagsOf(a, obj);
      return detach(ctx, obj, flags, a.timeoutMs, (def) => {
        const d = [...def.devices.interfaces, ...def.devices.hostdevs].find((x) => x.alias === a.alias);
        if (d === undefined)
          throw new PassthruError('NO_DEVICE', `domain ${a.name} has no device with alias ${a.alias}`);
        return [d];
      });
    }),
  domiflist: (a, ctx) => {
    const obj = ctx.domains.get(a.name);
    return interfaceRows(obj.run?.live ?? obj.def, obj);
  },
} satisfies HandlerGroup<'attachDevice' | 'detachDevice' | 'detachDeviceAlias' | 'domiflist'>;

async function detach(
  ctx: DaemonContext,
  obj: DomainObj,
  { live, config }: { live: boolean; config: boolean },
  timeoutMs: number | undefined,
  find: (def: DomainDef) => PluggedDevice[],
): Promise<DeviceChange> {
  let state: DeviceChange['state'] = 'detached';
  let devices: DeviceRef[] = [];
  if (live) {
    const run = obj.run;
    if (!run) throw new PassthruError('OPERATION_INVALID', `domain ${obj.def.name} is not running`);
    const targets = find(run.live);
    const pending = new Set(run.status.unplugPending ?? []);
    const already = targets.filter((t) => pending.has(t.alias ?? ''));
    if (already.length > 0) {
      throw new PassthruError(
        'OPERATION_INVALID',
        `unplug of ${already.map((t) => t.alias).join(', ')} was already requested; the guest has not released it yet`,
      );
    }
    const r = await detachLive(ctx, obj, targets, timeoutMs ?? DEFAULT_UNPLUG_WAIT_MS);
    state = r.state;
    devices = r.devices;
  }
  if (config) {
    const gone = new Set(find(obj.def));
    const def: DomainDef = {
      ...obj.def,
      devices: {
        ...obj.def.devices,
        interfaces: obj.def.devices.interfaces.filter((d) => !gone.has(d)),
        hostdevs: obj.def.devices.hostdevs.filter((d) => !gone.has(d)),
      },
    };
    await saveConfig(ctx, obj, def);
    if (!live) devices = [...gone].map(refOf);
  }
  const names = devices.map((d) => (d.alias === '' ? undefined : d.alias) ?? d.host ?? '?').join(', ');
  const message =
    state === 'unplug-pending'
      ? `unplug of ${names} requested; the guest has not released it yet`
      : 'Device detached successfully';
  return change(obj.def.name, state, devices, live, config, message);
}

/** libvirt's flags: --live, --config, both; neither is the live domain when it runs, else the
 *  definition (VIR_DOMAIN_AFFECT_CURRENT). */
function flagsOf(a: DeviceFlags, obj: DomainObj): { live: boolean; config: boolean } {
  const neither = a.live !== true && a.config !== true;
  const live = a.live === true || (neither && obj.run !== undefined);
  const config = a.config === true || (neither && obj.run === undefined);
  if (live && !obj.run) throw new PassthruError('OPERATION_INVALID', `domain ${obj.def.name} is not running`);
  return { live, config };
}

function runningLive(obj: DomainObj): DomainDef {
  if (!obj.run) throw new PassthruError('OPERATION_INVALID', `domain ${obj.def.name} is not running`);
  return obj.run.live;
}

async function saveConfig(ctx: DaemonContext, obj: DomainObj, def: DomainDef): Promise<void> {
  await ctx.store.saveConfig(def.name, formatDefinition(def, true));
  obj.def = def;
}

function addedRefs(before: DomainDef, after: DomainDef): DeviceRef[] {
  return [
    ...after.devices.interfaces.slice(before.devices.interfaces.length),
    ...after.devices.hostdevs.slice(before.devices.hostdevs.length),
  ].map(refOf);
}

function change(
  domain: string,
  state: DeviceChange['state'],
  devices: DeviceRef[],
  live: boolean,
  config: boolean,
  message: string,
): DeviceChange {
  return { domain, state, devices, live, config, message };
}

/** domiflist: every guest NIC with where it sits, what backs it and whether the guest sees it. */
function interfaceRows(def: DomainDef, obj: DomainObj): InterfaceRow[] {
  const pending = new Set(obj.run?.status.unplugPending ?? []);
  const negotiated = new Set(obj.run?.status.failoverNegotiated ?? []);
  const row = (type: string, d: PluggedDevice, mac: string | undefined, model: string | undefined): InterfaceRow => {
    const host = hostAddressOf(d);
    const teaming = d.teaming;
    const failover = teaming?.type === 'persistent' ? 'standby' : teaming?.type === 'transient' ? 'primary' : undefined;
    const hidden =
      teaming?.type === 'transient' && teaming.persistent !== undefined && !negotiated.has(teaming.persistent);
    return {
      type,
      ...(d.alias === undefined ? {} : { alias: d.alias }),
      ...(mac === undefined ? {} : { mac }),
      ...(model === undefined ? {} : { model }),
      ...(d.guestAddress?.type === 'pci' ? { address: formatPciAddress(d.guestAddress) } : {}),
      ...(host === undefined ? {} : { vf: formatPciAddress(host) }),
      ...(failover === undefined ? {} : { failover }),
      guestVisible: obj.run !== undefined && !hidden && d.guestAddress?.type !== 'unassigned',
      ...(pending.has(d.alias ?? '') ? { unplugPending: true } : {}),
    };
  };
  return [
    // A hostdev-hybrid interface is two rows, its standby and its VF, one MAC (conf/domain/hybrid.ts).
    ...def.devices.interfaces.flatMap((i) => {
      const pair = expandHybrid(i);
      if (pair)
        return [row(i.type, pair.standby, i.mac, pair.standby.model), row(i.type, pair.primary, i.mac, undefined)];
      return [row(i.type, i, i.mac, isHostdevInterface(i) ? undefined : (i as { model?: string }).model)];
    }),
    ...def.devices.hostdevs.filter((h) => h.teaming !== undefined).map((h) => row('hostdev', h, undefined, undefined)),
  ];
}
