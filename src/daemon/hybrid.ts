import { hostdevInterfaceSource, isHostdevInterface } from '../conf/domain/hostdevs.ts';
import { isHybrid, standbyOf, withStandby } from '../conf/domain/hybrid.ts';
import type { DomainDef, InterfaceDef } from '../conf/domain/types.ts';
import { PassthruError } from '../conf/error.ts';
import { formatPciAddress } from '../conf/pci-address.ts';
import type { HostNetdevs } from '../host/netdev.ts';
import type { PluggedDevice } from '../qemu/hotplug.ts';
import type { HostViews } from './host-views.ts';
import { hostNicRequest, emulatedNic } from './host-nics.ts';

/**
 * [seed 002] hostdev-hybrid in the daemon. The interface runs as the failover pair it stands for
 * (conf/domain/hybrid.ts); what only this host knows is where its standby sits: on a macvtap, in
 * bridge mode, of the PF whose VF the interface holds (linux: a real macvtap whose /dev/tapN
 * QEMU inherits; sim: QEMU's user-mode network, as every direct NIC there, docs/nics.md).
 */

/** Whether a network is a hostdev-hybrid one; an unknown network is not (start refuses it). */
export function hybridNetworks(pools: {
  defs(): { network(name: string): { readonly forward?: { readonly mode: string } } };
}): (name: string) => boolean {
  return (name) => {
    try {
      return pools.defs().network(name).forward?.mode === 'hostdev-hybrid';
    } catch {
      return false;
    }
  };
}

/**
 * The live definition with each hybrid's standby on its PF: the PF netdev of the VF (libvirt's
 * choice among a multi-port PF's netdevs), checked to exist, before anything is taken from the
 * host. A device that is no VF cannot have a standby on its PF, and is refused naming it.
 */
export async function withStandbyParents(
  live: DomainDef,
  views: Pick<HostViews, 'vfOf'>,
  netdevs: HostNetdevs,
): Promise<DomainDef> {
  if (!live.devices.interfaces.some(isHybrid)) return live;
  const interfaces: InterfaceDef[] = [];
  for (const iface of live.devices.interfaces) {
    const standby = standbyOf(iface);
    const source = isHostdevInterface(iface) ? hostdevInterfaceSource(iface) : undefined;
    if (!isHybrid(iface) || !standby || !source) {
      interfaces.push(iface);
      continue;
    }
    const vf = await views.vfOf(source.address);
    if (!vf) {
      throw new PassthruError(
        'CONFIG_UNSUPPORTED',
        `interface ${iface.mac ?? iface.alias ?? ''}: host device ${formatPciAddress(source.address)} is not an SR-IOV VF; a hostdev-hybrid interface needs a VF (its standby sits on the VF's PF)`,
        iface.line === undefined ? {} : { line: iface.line },
      );
    }
    const placed = withStandby(iface, { ...standby, parent: vf.pfNetdev });
    const req = hostNicRequest(emulatedNic(placed));
    if (req) await netdevs.check(req);
    interfaces.push(placed);
  }
  return { ...live, devices: { ...live.devices, interfaces } };
}

/** Hot-plug and hot-unplug of a hybrid are refused, naming it: its standby's macvtap and
 *  netdev, the standby and the VF would have to come and go as one (not built yet). */
export function refuseHybridHotplug(devices: readonly PluggedDevice[], verb: 'hot-plugged' | 'hot-unplugged'): void {
  for (const d of devices) {
    if ('mode' in d || !isHybrid(d)) continue;
    throw new PassthruError(
      'CONFIG_UNSUPPORTED',
      `interface ${d.mac ?? d.alias ?? ''}: a hostdev-hybrid interface cannot be ${verb} yet; its virtio standby and VF come and go with the domain`,
      {
        hint:
          verb === 'hot-plugged'
            ? 'attach it with --config and start the domain again'
            : 'detach it with --config; it goes at the next stop',
      },
    );
  }
}

/**
 * A migration's destination runs the guest with the same devices or not at all: a network
 * interface that came with a standby (a hybrid network on the source) must find a hybrid network
 * of the same name here, and one without must not (QEMU's incoming device set would differ from
 * the stream's). Refused at the check, before anything moves. `incoming` is the definition read
 * from the source's migratable XML, `live` the same after this host's pools gave their devices.
 */
export function checkHybridShape(incoming: DomainDef, live: DomainDef): void {
  incoming.devices.interfaces.forEach((sent, i) => {
    if (sent.type !== 'network') return;
    const here = live.devices.interfaces[i];
    const hadStandby = sent.standby !== undefined;
    if (here === undefined || hadStandby === isHybrid(here)) return;
    const alias = sent.alias ?? sent.mac ?? sent.network;
    throw new PassthruError(
      'OPERATION_INVALID',
      hadStandby
        ? `interface ${alias} has a virtio standby (network '${sent.network}' is hostdev-hybrid on the source), but network '${sent.network}' of the destination is not a hostdev-hybrid network`
        : `network '${sent.network}' of the destination is a hostdev-hybrid network, but interface ${alias} has no virtio standby on the source`,
      { hint: `give network '${sent.network}' the same forward mode on both hosts` },
    );
  });
}
