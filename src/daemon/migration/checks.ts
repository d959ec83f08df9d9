import { expandHybrids } from '../../conf/domain/hybrid.ts';
import type { DomainDef, InterfaceDef } from '../../conf/domain/types.ts';
import { PassthruError } from '../../conf/error.ts';
import type { MacAddress } from '../../conf/mac.ts';
import type { PciAddress } from '../../conf/pci-address.ts';

/** A VF the guest holds as the primary of a failover pair: QEMU unplugs it for migration. */
export interface FailoverPrimary {
  readonly alias: string;
  readonly address: PciAddress;
  readonly mac: MacAddress | undefined;
  /** The virtio standby's alias (failover_pair_id). */
  readonly standby: string;
}

export function failoverPrimaries(live: DomainDef): FailoverPrimary[] {
  // A hostdev-hybrid interface is such a pair (conf/domain/hybrid.ts).
  return expandHybrids(live).devices.interfaces.flatMap((n) => {
    const address = vfOf(n);
    return address && n.teaming?.type === 'transient' && n.alias !== undefined
      ? [{ alias: n.alias, address, mac: n.mac, standby: n.teaming.persistent }]
      : [];
  });
}

/** The VF an interface holds: its own, or the one its hostdev network gave it at start. */
function vfOf(n: InterfaceDef): PciAddress | undefined {
  if (n.type === 'hostdev') return n.source.address;
  if (n.type === 'network') return n.actual?.source.address;
  return undefined;
}

/**
 * libvirt's qemuMigrationSrcIsAllowedHostdev, with its messages: a PCI host device may go only
 * as the transient half of a failover pair (QEMU unplugs it); any other blocks the migration.
 * With `--unplug-hostdevs` a device a network or device pool gave may go too: passthru unplugs
 * it and the destination plugs one from its same-named pool (unplug.ts); a device named by its
 * host address still blocks, since the destination has no pool to take one from.
 */
export function checkMigratable(live: DomainDef, o: { readonly unplug?: boolean } = {}): void {
  const refuse = (what: string, pooled: boolean): never => {
    throw new PassthruError('OPERATION_INVALID', `cannot migrate a domain with ${what}`, {
      hint: pooled
        ? 'migrate --unplug-hostdevs unplugs it for the migration, or give the VF a virtio standby (<teaming>)'
        : 'give the VF a virtio standby (<teaming>) so QEMU unplugs it for the migration',
    });
  };
  const moves = (teaming: { type: string } | undefined, pooled: boolean): boolean =>
    teaming?.type === 'transient' || (pooled && o.unplug === true);
  for (const h of live.devices.hostdevs) {
    const pooled = h.source.pool !== undefined;
    if (!moves(h.teaming, pooled)) refuse("<hostdev mode='subsystem' type='pci'>", pooled);
  }
  for (const p of live.devices.poolHostdevs ?? []) {
    if (!moves(p.teaming, true)) refuse("<hostdev mode='subsystem' type='pci'>", true);
  }
  // An interface names its actual type, as libvirt's message does (a network's VF: hostdev).
  // A hostdev-hybrid interface moves as the failover pair it is.
  for (const n of expandHybrids(live).devices.interfaces) {
    const pooled = n.type === 'network';
    if (vfOf(n) && !moves(n.teaming, pooled)) refuse("<interface type='hostdev'>", pooled);
  }
}
