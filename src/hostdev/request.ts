import { kibPerSecToMbps } from '../conf/domain/parse-parts.ts';
import { type HostdevInterface, hostDevices } from '../conf/domain/hostdevs.ts';
import type { DomainDef, VfAttributesDef, VirtualPortDef } from '../conf/domain/types.ts';
import { PassthruError } from '../conf/error.ts';
import type { MacAddress } from '../conf/mac.ts';
import type { PciAddress } from '../conf/pci-address.ts';
import type { Vlan } from '../conf/vlan.ts';
import type { VfPortProfile } from '../host/types.ts';

/** One host PCI device a domain asks for, whichever element it came from. */
export interface HostdevRequest {
  /** The device's alias in the live definition (hostdev0 ...): with the domain, the key of its
   *  record and lease. */
  readonly alias: string;
  readonly address: PciAddress;
  readonly managed: boolean;
  /** The vfio driver to bind: vfio-pci, or a variant driver named by `<driver model=.../>`. */
  readonly stub: string;
  /** false for `assigned='no'` / `<address type='unassigned'/>`: detached and leased, but QEMU
   *  gets no device for it (so prepare returns no presentation). */
  readonly assigned: boolean;
  /** For an interface of type hostdev (or a network's VF): what to program on the VF through its
   *  PF. Plain `<hostdev>` never gets it, as in libvirt (virHostdevIsPCINetDevice). */
  readonly net?: VfNetConfig;
  /** [seed] `<netdev port='N'>` of a `<hostdev>`: what to program on each port of a multi-port
   *  VF (port N = the PF netdev whose dev_port is N-1). */
  readonly ports?: readonly { readonly port: number; readonly net: VfNetConfig }[];
  /** The domain is the target of an incoming migration: port profiles are pre-associated. */
  readonly incoming?: boolean;
}

/**
 * What a domain asks to be programmed on its VF, in the host's terms (IFLA_VF_* through the PF).
 * conf fills it from the definition's vocabulary; every field left out is left as the VF has it,
 * except the VLAN, which is cleared when absent (libvirt's setVlan). Release restores every
 * field that was set, from the row saved before.
 */
export interface VfNetConfig {
  /** The admin MAC the guest's VF driver will take. */
  readonly mac?: MacAddress;
  /** `<vlan>`: one tag only (SR-IOV has no trunks; the planner refuses the rest). */
  readonly vlan?: Vlan;
  /** IFLA_VF_VLAN_LIST's qos (0..7) and protocol for that tag. */
  readonly vlanQos?: number;
  readonly vlanProto?: '802.1Q' | '802.1ad';
  readonly spoofchk?: boolean;
  readonly trust?: boolean;
  readonly linkState?: 'auto' | 'enable' | 'disable';
  /** IFLA_VF_RATE, Mbit/s; 0 = no limit. */
  readonly rate?: { readonly minTx: number; readonly maxTx: number };
  /** `<virtualport>` 802.1Qbh / 802.1Qbg: associated through the PF after the MAC is set. */
  readonly portProfile?: VfPortProfile;
}

/** The definition's words for a VF (docs/vf-attributes.md) in the host's terms. */
export function vfNetConfig(
  mac: MacAddress | undefined,
  vlan: Vlan | undefined,
  a: VfAttributesDef,
  portProfile?: VfPortProfile,
): VfNetConfig {
  const tag = vlan?.tags[0];
  const out = a.bandwidth?.outbound;
  return {
    ...(mac === undefined ? {} : { mac }),
    ...(vlan === undefined ? {} : { vlan }),
    ...(tag?.qos === undefined ? {} : { vlanQos: tag.qos }),
    ...(tag?.protocol === undefined ? {} : { vlanProto: tag.protocol }),
    ...(a.spoofCheck === undefined ? {} : { spoofchk: a.spoofCheck }),
    ...(a.trustGuestRxFilters === undefined ? {} : { trust: a.trustGuestRxFilters }),
    ...(a.linkState === undefined ? {} : { linkState: a.linkState === 'up' ? 'enable' : 'disable' }),
    ...(out === undefined
      ? {}
      : { rate: { minTx: kibPerSecToMbps(out.floor ?? 0), maxTx: kibPerSecToMbps(out.average ?? 0) } }),
    ...(portProfile === undefined ? {} : { portProfile }),
  };
}

/** A `<virtualport>` of a hostdev interface as the PF carries it. libvirt fills a missing
 *  802.1Qbg instanceid itself (VIR_VPORT_XML_GENERATE_MISSING_DEFAULTS); passthru asks for it,
 *  since a made-up one would differ at every start. */
export function portProfileOf(
  v: VirtualPortDef | undefined,
  domainUuid: string | undefined,
  alias: string,
): VfPortProfile | undefined {
  if (v === undefined || (v.type !== '802.1Qbh' && v.type !== '802.1Qbg')) return undefined;
  const missing = (what: string): PassthruError =>
    new PassthruError('XML_INVALID', `${alias}: <virtualport type='${v.type}'> needs ${what}`, {
      ...(v.line === undefined ? {} : { line: v.line }),
    });
  if (v.type === '802.1Qbh') {
    if (v.profileid === undefined) throw missing("<parameters profileid='...'/>");
    if (domainUuid === undefined) throw missing('a domain <uuid> (the instance UUID of 802.1Qbh)');
    return { type: '802.1Qbh', profileid: v.profileid, instanceUuid: domainUuid };
  }
  if (
    v.managerid === undefined ||
    v.typeid === undefined ||
    v.typeidversion === undefined ||
    v.instanceid === undefined
  )
    throw missing('managerid, typeid, typeidversion and instanceid');
  return {
    type: '802.1Qbg',
    managerid: v.managerid,
    typeid: v.typeid,
    typeidversion: v.typeidversion,
    instanceUuid: v.instanceid,
  };
}

/** The device requests of a live definition (aliases assigned): one per host device of conf's
 *  one list (conf/domain/hostdevs.ts), so they cannot disagree with the QEMU command line.
 *  `incoming`: for an incoming migration (port profiles are pre-associated). */
export function hostdevRequests(def: DomainDef, opts: { readonly incoming?: boolean } = {}): HostdevRequest[] {
  const incoming = opts.incoming === true ? { incoming: true } : {};
  return hostDevices(def).map((h, i) => {
    const alias = h.alias ?? `hostdev-${i}`;
    const request = {
      alias,
      address: h.source.address,
      managed: h.source.managed,
      stub: h.source.driver?.model ?? 'vfio-pci',
      assigned: h.assigned,
      ...incoming,
    };
    if (h.kind === 'interface') return { ...request, net: interfaceNetConfig(h.def, def.uuid, alias) };
    const ports = h.def.netdevs ?? [];
    return ports.length === 0
      ? request
      : { ...request, ports: ports.map((n) => ({ port: n.port, net: vfNetConfig(n.mac, n.vlan, n) })) };
  });
}

/** What an interface asks to be programmed on its VF. A network's VF takes the settings its
 *  allocation merged into the actual device (interface > portgroup > network). */
function interfaceNetConfig(iface: HostdevInterface, uuid: string | undefined, alias: string): VfNetConfig {
  if (iface.type !== 'network') {
    return vfNetConfig(iface.mac, iface.vlan, iface, portProfileOf(iface.virtualport, uuid, alias));
  }
  const a = iface.actual;
  // The actual device carries every VF attribute merged (trust, spoof check, link, TX rates).
  return vfNetConfig(iface.mac, a?.vlan, a ?? {}, portProfileOf(a?.virtualport, uuid, alias));
}
