import type {
  DomainDef,
  HostdevDef,
  HostdevHybridInterfaceDef,
  HostdevInterfaceDef,
  InterfaceDef,
  NetworkInterfaceDef,
  PciHostdevSource,
} from './types.ts';

/** Interfaces that are PCI host devices: they share the hostdevN numbering (libvirt commit
 *  8f74f527: one id namespace for everything that becomes a vfio-pci device). */
export type HostdevInterface = HostdevInterfaceDef | HostdevHybridInterfaceDef | NetworkInterfaceDef;

export function isHostdevInterface(iface: InterfaceDef): iface is HostdevInterface {
  return (
    iface.type === 'hostdev' ||
    iface.type === 'hostdev-hybrid' ||
    (iface.type === 'network' && iface.actual !== undefined)
  );
}

/** The host side of such an interface: its own, or the VF its network allocated. */
export function hostdevInterfaceSource(iface: HostdevInterface): PciHostdevSource | undefined {
  return iface.type === 'network' ? iface.actual?.source : iface.source;
}

/**
 * One host PCI device of a definition, whichever element declares it:
 *   hostdev    a `<hostdev>`, also one a device pool filled at start (`source.pool` is set)
 *   interface  an `<interface type='hostdev'>` (or hostdev-hybrid), or an
 *              `<interface type='network'>` whose actual device is a VF of a hostdev network
 */
export type HostDevice =
  | {
      readonly kind: 'hostdev';
      readonly alias: string | undefined;
      readonly source: PciHostdevSource;
      /** false for `assigned='no'` and `<address type='unassigned'/>`: taken from the host, given
       *  no guest device. */
      readonly assigned: boolean;
      readonly def: HostdevDef;
    }
  | {
      readonly kind: 'interface';
      readonly alias: string | undefined;
      readonly source: PciHostdevSource;
      readonly assigned: boolean;
      readonly def: HostdevInterface;
    };

/**
 * THE list of a definition's host devices, with their aliases (set once the live definition
 * was made), in libvirt's order: interfaces first (libvirt parses them into its hostdev list
 * first), then `<hostdev>`s. The device requests, the QEMU command line and domxml-to-native all
 * take it from here, so they cannot disagree. A `<hostdev>` naming a pool that has not given it
 * a device yet (`poolHostdevs`) and a network interface without an actual device have no host
 * device yet and are not listed.
 */
export function hostDevices(def: DomainDef): HostDevice[] {
  const out: HostDevice[] = [];
  for (const iface of def.devices.interfaces) {
    if (!isHostdevInterface(iface)) continue;
    const source = hostdevInterfaceSource(iface);
    if (source) {
      const assigned = iface.guestAddress?.type !== 'unassigned';
      out.push({ kind: 'interface', alias: iface.alias, source, assigned, def: iface });
    }
  }
  for (const h of def.devices.hostdevs) {
    out.push({
      kind: 'hostdev',
      alias: h.alias,
      source: h.source,
      assigned: h.assigned !== false && h.guestAddress?.type !== 'unassigned',
      def: h,
    });
  }
  return out;
}
