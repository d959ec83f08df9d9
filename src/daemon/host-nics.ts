import { isHostdevInterface } from '../conf/domain/hostdevs.ts';
import { expandHybrid, expandHybrids, isHybrid, standbyOf, withStandby } from '../conf/domain/hybrid.ts';
import type { DomainDef, InterfaceDef } from '../conf/domain/types.ts';
import { PassthruError } from '../conf/error.ts';
import type { MacAddress } from '../conf/mac.ts';
import { closeFds, type HostNetdevs, type HostNicRequest } from '../host/netdev.ts';
import type { NicBackend } from '../qemu/device-props.ts';
import type { QmpClient } from '../qemu/qmp.ts';

/** The NIC models passthru gives QEMU for bridge and direct interfaces (`<model type>`). */
const MODELS = new Set(['virtio', 'e1000e', 'e1000', 'rtl8139']);

/** The NIC QEMU emulates for an interface: itself, or a hostdev-hybrid's virtio standby, a
 *  direct NIC in bridge mode on the VF's PF (conf/domain/hybrid.ts). */
export function emulatedNic(iface: InterfaceDef): InterfaceDef {
  return expandHybrid(iface)?.standby ?? iface;
}

/** The interface with its host device's name: its own `<target dev>`, or its standby's. */
function withTargetDev(iface: InterfaceDef, name: string): InterfaceDef {
  const standby = isHybrid(iface) ? standbyOf(iface) : undefined;
  return standby ? withStandby(iface, { ...standby, targetDev: name }) : { ...iface, targetDev: name };
}

/** A bridge or direct interface's host device, as the host backend is asked for it. */
export function hostNicRequest(
  iface: InterfaceDef,
  owner?: { readonly uid: number; readonly gid: number },
): HostNicRequest | undefined {
  if (iface.type !== 'bridge' && iface.type !== 'direct') return undefined;
  const common = {
    // postParse gives every interface a MAC; one built in code without it is a bug.
    mac: iface.mac ?? ('' as MacAddress),
    ...(iface.targetDev === undefined ? {} : { name: iface.targetDev }),
    ...(iface.mtu === undefined ? {} : { mtu: iface.mtu }),
  };
  return iface.type === 'bridge'
    ? { kind: 'tap', bridge: iface.bridge, ...common, ...(owner ? { owner } : {}) }
    : { kind: 'macvtap', parent: iface.dev, mode: iface.mode ?? 'vepa', ...common };
}

/** Refuses, before anything changes, a NIC QEMU cannot give or a host device that is missing:
 *  an unknown model, an MTU on a model without one, an unknown bridge or parent netdev. */
export async function checkHostNics(def: DomainDef, netdevs: HostNetdevs): Promise<void> {
  for (const iface of def.devices.interfaces) {
    // A hybrid's standby is checked once its PF is known (daemon/hybrid.ts).
    const req = hostNicRequest(iface);
    if (!req) continue;
    const at = iface.line === undefined ? {} : { line: iface.line };
    const model = iface.model ?? 'virtio';
    if (!MODELS.has(model)) {
      throw new PassthruError('CONFIG_UNSUPPORTED', `interface model '${model}' is not supported`, {
        ...at,
        hint: `use one of ${[...MODELS].join(', ')}`,
      });
    }
    if (iface.mtu !== undefined && model !== 'virtio') {
      throw new PassthruError('CONFIG_UNSUPPORTED', `setting MTU on interface model ${model} is not supported`, {
        ...at,
        hint: "only <model type='virtio'/> tells the guest its MTU",
      });
    }
    await netdevs.check(req);
  }
}

/** What plugging a domain's host NICs gave: the live definition with `<target dev>`, QEMU's
 *  backends by alias, and the descriptors to pass at spawn (fd 3 onward, in this order). */
export interface PluggedNics {
  readonly live: DomainDef;
  readonly backends: ReadonlyMap<string, NicBackend>;
  readonly fds: readonly number[];
}

/** The first descriptor number QEMU sees a passed fd as (after stdin, stdout, stderr). */
const FIRST_PASSED_FD = 3;

/** Makes each bridge/direct interface's tap or macvtap; all or none. */
export async function plugHostNics(
  live: DomainDef,
  netdevs: HostNetdevs,
  owner?: { readonly uid: number; readonly gid: number },
): Promise<PluggedNics> {
  const backends = new Map<string, NicBackend>();
  const fds: number[] = [];
  const made: string[] = [];
  const interfaces: InterfaceDef[] = [];
  try {
    for (const iface of live.devices.interfaces) {
      const nic = emulatedNic(iface);
      const req = hostNicRequest(nic, owner);
      if (!req) {
        interfaces.push(iface);
        continue;
      }
      const got = await netdevs.plug(req);
      const alias = nic.alias ?? '';
      if (got.kind === 'user') {
        backends.set(alias, { type: 'user' });
        interfaces.push(iface);
        continue;
      }
      made.push(got.name);
      if (got.fd === undefined) backends.set(alias, { type: 'tap', ifname: got.name });
      else {
        backends.set(alias, { type: 'tap', fd: String(FIRST_PASSED_FD + fds.length) });
        fds.push(got.fd);
      }
      interfaces.push(withTargetDev(iface, got.name));
    }
  } catch (err) {
    closeFds(fds);
    for (const name of made) await netdevs.unplug(name).catch(() => undefined);
    throw err;
  }
  return { live: { ...live, devices: { ...live.devices, interfaces } }, backends, fds };
}

/** Removes the taps and macvtaps of a domain whose QEMU is gone (named in its live XML). */
export async function unplugHostNics(live: DomainDef, netdevs: HostNetdevs): Promise<void> {
  for (const iface of live.devices.interfaces.map(emulatedNic)) {
    if ((iface.type === 'bridge' || iface.type === 'direct') && iface.targetDev !== undefined)
      await netdevs.unplug(iface.targetDev);
  }
}

/** `<link state='down'/>`: QEMU starts every NIC up; libvirt sets the others down before the
 *  guest runs (qemuProcessSetLinkStates). */
export async function applyLinkStates(live: DomainDef, qmp: QmpClient): Promise<void> {
  // A hybrid's standby too (its VF's link state is programmed on the VF).
  for (const iface of expandHybrids(live).devices.interfaces) {
    if (iface.linkState === 'down' && iface.alias !== undefined && !isHostdevInterface(iface))
      await qmp.execute('set_link', { name: iface.alias, up: false });
  }
}
