import type { DomainDef } from '../../conf/domain/types.ts';
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
  return live.devices.interfaces.flatMap((n) =>
    n.type === 'hostdev' && n.teaming?.type === 'transient' && n.alias !== undefined
      ? [{ alias: n.alias, address: n.source.address, mac: n.mac, standby: n.teaming.persistent }]
      : [],
  );
}

/**
 * libvirt's qemuMigrationSrcIsAllowedHostdev, with its messages: a PCI host device may go only
 * as the transient half of a failover pair (QEMU unplugs it); any other blocks the migration.
 */
export function checkMigratable(live: DomainDef): void {
  const refuse = (what: string): never => {
    throw new PassthruError('OPERATION_INVALID', `cannot migrate a domain with ${what}`, {
      hint: 'give the VF a virtio standby (<teaming>) so QEMU unplugs it for the migration',
    });
  };
  for (const h of live.devices.hostdevs) {
    if (h.teaming?.type !== 'transient') refuse("<hostdev mode='subsystem' type='pci'>");
  }
  for (const p of live.devices.poolHostdevs ?? []) {
    if (p.teaming?.type !== 'transient') refuse("<hostdev mode='subsystem' type='pci'>");
  }
  for (const n of live.devices.interfaces) {
    if (n.type === 'hostdev' && n.teaming?.type !== 'transient') refuse("<interface type='hostdev'>");
  }
}
