import type {
  DirectInterfaceDef,
  DomainDef,
  HostdevInterfaceDef,
  InterfaceDef,
  NetworkInterfaceDef,
  StandbyDef,
} from './types.ts';

/**
 * [seed] hostdev-hybrid (PRODUCT.md, seed 002): one interface that the guest sees as a failover
 * pair with one MAC, a VF (the primary, hidden from the guest while it migrates) and a virtio
 * standby on a macvtap of the VF's PF. Everything below QEMU runs the pair through the failover
 * code that `<teaming>` pairs use: expandHybrid turns the interface into exactly what a user
 * would write for such a pair, a `direct` interface in bridge mode with
 * `<teaming type='persistent'/>` and a `hostdev` (or network) interface with
 * `<teaming type='transient' persistent='STANDBY'/>`.
 */

/** Whether an interface is a hybrid now: its own type, or a network interface whose network is
 *  a hostdev-hybrid one (its actual device, set at start, says so). */
export function isHybrid(i: InterfaceDef): boolean {
  return i.type === 'hostdev-hybrid' || (i.type === 'network' && i.actual?.type === 'hostdev-hybrid');
}

/**
 * The standby an interface has or must get: every hostdev-hybrid interface has one; a network
 * interface has one when its network is a hybrid one (at start its actual device says so; before,
 * define marks it with an empty `<standby>`, see markHybridNetworks).
 */
export function standbyOf(i: InterfaceDef): StandbyDef | undefined {
  if (i.type === 'hostdev-hybrid') return i.standby ?? {};
  if (i.type !== 'network') return undefined;
  if (i.actual) return i.actual.type === 'hostdev-hybrid' ? (i.standby ?? {}) : undefined;
  return i.standby;
}

/** The interface with its standby replaced (only hybrid and network interfaces have one). */
export function withStandby(i: InterfaceDef, s: StandbyDef | undefined): InterfaceDef {
  if (i.type !== 'hostdev-hybrid' && i.type !== 'network') return i;
  if (s !== undefined) return { ...i, standby: s };
  const rest = { ...i };
  delete rest.standby;
  return rest;
}

/** The two interfaces of a hybrid's failover pair, as a user would write them. */
export interface FailoverPair {
  readonly standby: DirectInterfaceDef;
  readonly primary: HostdevInterfaceDef | NetworkInterfaceDef;
}

/**
 * A hybrid interface as its failover pair; undefined for any other interface. The standby has
 * the interface's MAC, model, MTU and link state (the VF's is programmed on the VF), `<source dev>` = the PF netdev found at start (empty
 * before), bridge mode (the VF and the guest's other neighbours on the PF reach it through the
 * PF's embedded switch). The primary keeps everything else (VLAN, port profile, VF attributes).
 */
export function expandHybrid(i: InterfaceDef): FailoverPair | undefined {
  if (!isHybrid(i) || (i.type !== 'hostdev-hybrid' && i.type !== 'network')) return undefined;
  const s = standbyOf(i) ?? {};
  const { model, mtu, ...rest } = i;
  delete rest.standby;
  const teaming = { type: 'transient', persistent: s.alias ?? '' } as const;
  const primary: HostdevInterfaceDef | NetworkInterfaceDef =
    rest.type === 'hostdev-hybrid'
      ? { ...rest, type: 'hostdev', teaming }
      : { ...rest, ...(rest.actual ? { actual: { ...rest.actual, type: 'hostdev' } } : {}), teaming };
  const line = s.line ?? i.line;
  const standby: DirectInterfaceDef = {
    type: 'direct',
    dev: s.parent ?? '',
    mode: 'bridge',
    model: model ?? 'virtio',
    teaming: { type: 'persistent' },
    ...(i.mac === undefined ? {} : { mac: i.mac }),
    ...(mtu === undefined ? {} : { mtu }),
    ...(i.linkState === undefined ? {} : { linkState: i.linkState }),
    ...(s.alias === undefined ? {} : { alias: s.alias }),
    ...(s.guestAddress === undefined ? {} : { guestAddress: s.guestAddress }),
    ...(s.targetDev === undefined ? {} : { targetDev: s.targetDev }),
    ...(line === undefined ? {} : { line }),
  };
  return { standby, primary };
}

/** The definition with each hybrid interface replaced by its pair (standby first: QEMU's
 *  virtio-net must exist before the primary it hides). What the QEMU command line, the host
 *  NICs, the failover tracking and domiflist read. */
export function expandHybrids(def: DomainDef): DomainDef {
  if (!def.devices.interfaces.some(isHybrid)) return def;
  const interfaces = def.devices.interfaces.flatMap((i): InterfaceDef[] => {
    const pair = expandHybrid(i);
    return pair ? [pair.standby, pair.primary] : [i];
  });
  return { ...def, devices: { ...def.devices, interfaces } };
}

/** Marks the network interfaces whose network is a hostdev-hybrid one with an (empty) standby,
 *  so that define gives it its guest address like every other device's. */
export function markHybridNetworks(def: DomainDef, isHybridNetwork: (name: string) => boolean): DomainDef {
  const interfaces = def.devices.interfaces.map((i) =>
    i.type === 'network' && i.standby === undefined && isHybridNetwork(i.network) ? { ...i, standby: {} } : i,
  );
  return { ...def, devices: { ...def.devices, interfaces } };
}
