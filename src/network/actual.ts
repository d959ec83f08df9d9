import type {
  ActualHostdev,
  DomainDef,
  HostdevDef,
  InterfaceDef,
  NetworkInterfaceDef,
  PoolHostdevDef,
} from '../conf/domain/types.ts';
import { PassthruError } from '../conf/error.ts';
import { portSettings } from '../conf/network/merge.ts';
import type { NetworkDef } from '../conf/network/types.ts';
import type { DevicePoolDef } from '../conf/pool/types.ts';
import type { AllocationRequest, PoolRef } from './allocate.ts';
import type { Member } from './members.ts';

/** One device a definition asks a pool for, in definition order (interfaces, then pool hostdevs). */
export interface PoolWant {
  readonly ref: PoolRef;
  readonly request: AllocationRequest;
  /** Names the device in errors and events: "interface 52:54:00:aa:00:01", "hostdev of pool gpus". */
  readonly label: string;
}

/** The pool devices of a definition. Interfaces of type network only count when their network
 *  is a hostdev one; the caller says which networks those are. */
export function poolWants(def: DomainDef, numaNodes: ReadonlySet<number>): PoolWant[] {
  const wants: PoolWant[] = [];
  for (const i of def.devices.interfaces) {
    if (i.type !== 'network') continue;
    wants.push({
      ref: { kind: 'network', name: i.network },
      request: { numaNodes },
      label: interfaceLabel(i),
    });
  }
  for (const h of def.devices.poolHostdevs ?? []) {
    wants.push({
      ref: { kind: 'devicepool', name: h.pool },
      request: { numaNodes, ...(h.tags ? { requireTags: h.tags } : {}) },
      label: poolHostdevLabel(h.pool),
    });
  }
  return wants;
}

/** How events and errors name a domain's device that holds a pool member. */
export function interfaceLabel(i: NetworkInterfaceDef): string {
  return i.mac === undefined ? `interface on network '${i.network}'` : `interface ${i.mac}`;
}

export function poolHostdevLabel(pool: string): string {
  return `hostdev of pool '${pool}'`;
}

/** libvirt accepts only 802.1Qbg/802.1Qbh port profiles on a VF given by a hostdev network. */
const VF_PORT_TYPES = new Set(['802.1Qbg', '802.1Qbh']);

/**
 * What an `<interface type='network'>` becomes on a hostdev network: the VF, with vlan,
 * virtualport and trustGuestRxFilters merged as libvirt merges them (interface > portgroup >
 * network; virtualports merged parameter by parameter), managed and driver from `<forward>`.
 */
export function actualInterface(iface: NetworkInterfaceDef, net: NetworkDef, vf: Member): ActualHostdev {
  const s = portSettings(iface, net);
  const vport = s.virtualport;
  if (vport?.type !== undefined && !VF_PORT_TYPES.has(vport.type)) {
    throw new PassthruError(
      'CONFIG_UNSUPPORTED',
      `<virtualport type='${vport.type}'> not supported for network '${net.name}' which uses an SR-IOV Virtual Function via PCI passthrough`,
    );
  }
  const driver = net.forward?.driver;
  return {
    // A hybrid network's VF gets a virtio standby (conf/domain/hybrid.ts).
    type: net.forward?.mode === 'hostdev-hybrid' ? 'hostdev-hybrid' : 'hostdev',
    source: { managed: net.forward?.managed ?? false, address: vf.address, ...(driver ? { driver } : {}) },
    ...(s.vlan ? { vlan: s.vlan } : {}),
    ...(vport ? { virtualport: vport } : {}),
    ...(s.trustGuestRxFilters === undefined ? {} : { trustGuestRxFilters: s.trustGuestRxFilters }),
    ...s.vf,
  };
}

/** A pool hostdev given its device: an ordinary hostdev that remembers its pool. The pool's
 *  `managed` wins: an unmanaged pool's devices are kept detached between guests. */
export function pooledHostdev(h: PoolHostdevDef, pool: DevicePoolDef, m: Member): HostdevDef {
  const { mode, type, teaming, assigned, netdevs, guestAddress, alias, bootOrder, rom, line } = h;
  const d = h.driver ?? pool.driver;
  return {
    mode,
    type,
    ...(teaming ? { teaming } : {}),
    ...(assigned === undefined ? {} : { assigned }),
    ...(netdevs ? { netdevs } : {}),
    ...(guestAddress ? { guestAddress } : {}),
    ...(alias === undefined ? {} : { alias }),
    ...(bootOrder === undefined ? {} : { bootOrder }),
    ...(rom ? { rom } : {}),
    ...(line === undefined ? {} : { line }),
    source: {
      managed: pool.managed,
      address: m.address,
      pool: h.pool,
      ...(h.tags ? { poolTags: h.tags } : {}),
      ...(d ? { driver: d } : {}),
    },
  };
}

export interface PoolDefs {
  network(name: string): NetworkDef;
  devicePool(name: string): DevicePoolDef;
}

/**
 * The definition with every pool device given: `grants[i]` answers `poolWants(def)[i]`. The
 * result still needs its aliases and guest addresses (the live-definition step), which is why
 * allocation comes first: a network interface with a VF takes a hostdevN alias, as in libvirt.
 */
export function withGrants(def: DomainDef, grants: readonly Member[], defs: PoolDefs): DomainDef {
  let n = 0;
  const next = (): Member => {
    const g = grants[n++];
    if (!g) throw new PassthruError('INTERNAL', `internal error: fewer pool grants than pool devices in ${def.name}`);
    return g;
  };
  const interfaces = def.devices.interfaces.map((i): InterfaceDef => {
    if (i.type !== 'network') return i;
    return { ...i, actual: actualInterface(i, defs.network(i.network), next()) };
  });
  const pooled = (def.devices.poolHostdevs ?? []).map((h) => pooledHostdev(h, defs.devicePool(h.pool), next()));
  const devices = { ...def.devices, interfaces, hostdevs: [...def.devices.hostdevs, ...pooled] };
  delete devices.poolHostdevs;
  return { ...def, devices };
}
