import type { DomainDef, InterfaceDef } from '../conf/domain/types.ts';
import { PassthruError } from '../conf/error.ts';
import { busAliases, netdevId, nicProps, netdevProps } from '../qemu/device-props.ts';
import { hotplugDevice, type PluggedDevice } from '../qemu/hotplug.ts';
import type { DaemonContext } from './context.ts';
import { checkHostNics, plugHostNics } from './host-nics.ts';
import type { Running } from './runs.ts';

/** Interfaces QEMU itself backs (a tap, a macvtap, user-mode networking): hot-plugged with
 *  netdev_add + device_add, as libvirt's qemuDomainAttachNetDevice. */
const QEMU_BACKED = new Set(['bridge', 'direct', 'user']);

export function isQemuBackedNic(d: PluggedDevice): d is InterfaceDef {
  return !('mode' in d) && QEMU_BACKED.has(d.type);
}

/**
 * Plugs QEMU-backed NICs already planned into `planned` (aliases, guest addresses): the host side
 * first (tap or macvtap, through the same code as start), then `-netdev`'s and `-device`'s
 * properties of the command line through QMP. All or none: what was made is taken back when
 * QEMU refuses. Returns the live definition with each NIC's `<target dev>`.
 */
export async function attachNics(
  ctx: DaemonContext,
  run: Running,
  planned: DomainDef,
  added: readonly InterfaceDef[],
): Promise<DomainDef> {
  const only: DomainDef = { ...planned, devices: { ...planned.devices, interfaces: [...added] } };
  await checkHostNics(only, ctx.runs.netdevs);
  const plugged = await plugHostNics(only, ctx.runs.netdevs);
  const made = plugged.live.devices.interfaces.flatMap((i) =>
    (i.type === 'bridge' || i.type === 'direct') && i.targetDev !== undefined ? [i.targetDev] : [],
  );
  const done: string[] = [];
  try {
    if (plugged.fds.length > 0) {
      throw new PassthruError(
        'CONFIG_UNSUPPORTED',
        'hot-plug of a NIC whose tap QEMU takes by descriptor is not supported yet: attach it with the domain stopped (--config)',
      );
    }
    const buses = busAliases(planned);
    for (const iface of plugged.live.devices.interfaces) {
      const alias = iface.alias ?? '';
      await run.proc.qmp.execute('netdev_add', netdevProps(iface, plugged.backends.get(alias)));
      done.push(alias);
      await hotplugDevice(run.proc.qmp, nicProps(iface, buses));
    }
  } catch (err) {
    for (const alias of done.reverse()) {
      await run.proc.qmp.execute('device_del', { id: alias }).catch(() => undefined);
      await run.proc.qmp.execute('netdev_del', { id: netdevId(alias) }).catch(() => undefined);
    }
    for (const name of made) await ctx.runs.netdevs.unplug(name).catch(() => undefined);
    throw err;
  }
  const withDev = new Map(plugged.live.devices.interfaces.map((i) => [i.alias, i]));
  return {
    ...planned,
    devices: {
      ...planned.devices,
      interfaces: planned.devices.interfaces.map((i) => withDev.get(i.alias) ?? i),
    },
  };
}

/** After the guest let go of QEMU-backed NICs: their backends and host devices go too. */
export async function removeNics(ctx: DaemonContext, run: Running, nics: readonly InterfaceDef[]): Promise<void> {
  for (const iface of nics) {
    await run.proc.qmp.execute('netdev_del', { id: netdevId(iface.alias ?? '') }).catch(() => undefined);
    if ((iface.type === 'bridge' || iface.type === 'direct') && iface.targetDev !== undefined)
      await ctx.runs.netdevs.unplug(iface.targetDev);
  }
}
