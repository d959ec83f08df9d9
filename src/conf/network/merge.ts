import type { InterfaceDef, VirtualPortDef } from '../domain/types.ts';
import { PassthruError } from '../error.ts';
import type { Vlan } from '../vlan.ts';
import type { Mutable } from '../xml/read.ts';
import type { NetworkDef, NetworkVfAttributes, PortgroupDef } from './types.ts';

/**
 * What an `<interface type='network'>` gets from its network: libvirt's precedence (section b of
 * libvirt-behaviour.md) is interface > portgroup > network for `<vlan>` and
 * trustGuestRxFilters, and a merge of the three `<virtualport>`s
 * (virNetDevVPortProfileMerge3) where a parameter given twice must agree.
 */
export interface PortSettings {
  readonly portgroup?: PortgroupDef;
  readonly vlan?: Vlan;
  readonly virtualport?: VirtualPortDef;
  readonly trustGuestRxFilters?: boolean;
  /** Spoof check, link state and TX rates, each from the first of interface, portgroup, network
   *  that sets it (passthru; libvirt has the same precedence for `<bandwidth>`). */
  readonly vf: NetworkVfAttributes;
}

/** The named portgroup, or the network's default one when the interface names none. */
export function findPortgroup(net: NetworkDef, name: string | undefined): PortgroupDef | undefined {
  if (name === undefined) return net.portgroups.find((p) => p.default === true);
  const pg = net.portgroups.find((p) => p.name === name);
  if (!pg) {
    throw new PassthruError('XML_INVALID', `network '${net.name}' has no portgroup named '${name}'`, {
      hint:
        net.portgroups.length === 0
          ? 'it has no portgroups'
          : `its portgroups: ${net.portgroups.map((p) => p.name).join(', ')}`,
    });
  }
  return pg;
}

export function portSettings(iface: InterfaceDef, net: NetworkDef): PortSettings {
  const pg = findPortgroup(net, iface.type === 'network' ? iface.portgroup : undefined);
  const vlan = iface.vlan ?? pg?.vlan ?? net.vlan;
  const trust = iface.trustGuestRxFilters ?? pg?.trustGuestRxFilters ?? net.trustGuestRxFilters;
  const who = iface.mac === undefined ? 'interface' : `interface ${iface.mac}`;
  const virtualport = mergeVirtualPorts(
    [iface.virtualport, pg?.virtualport, net.virtualport],
    `${who} on network '${net.name}'`,
  );
  const spoofCheck = ('spoofCheck' in iface ? iface.spoofCheck : undefined) ?? pg?.vf?.spoofCheck ?? net.vf?.spoofCheck;
  const linkState = iface.linkState ?? pg?.vf?.linkState ?? net.vf?.linkState;
  const bandwidth = ('bandwidth' in iface ? iface.bandwidth : undefined) ?? pg?.vf?.bandwidth ?? net.vf?.bandwidth;
  return {
    ...(pg ? { portgroup: pg } : {}),
    ...(vlan ? { vlan } : {}),
    ...(virtualport ? { virtualport } : {}),
    ...(trust === undefined ? {} : { trustGuestRxFilters: trust }),
    vf: {
      ...(spoofCheck === undefined ? {} : { spoofCheck }),
      ...(linkState === undefined ? {} : { linkState }),
      ...(bandwidth === undefined ? {} : { bandwidth }),
    },
  };
}

const PARAMS = ['managerid', 'typeid', 'typeidversion', 'instanceid', 'profileid', 'interfaceid'] as const;

/** Merges virtualports, first one first. A type or parameter set by two of them must agree. */
function mergeVirtualPorts(list: readonly (VirtualPortDef | undefined)[], what: string): VirtualPortDef | undefined {
  const present = list.filter((v): v is VirtualPortDef => v !== undefined);
  if (present.length === 0) return undefined;
  const merged: Mutable<VirtualPortDef> = {};
  for (const v of present) {
    if (v.type !== undefined) {
      if (merged.type !== undefined && merged.type !== v.type) {
        throw new PassthruError(
          'XML_INVALID',
          `${what}: attempt to merge virtualports with mismatched types (${merged.type} and ${v.type})`,
        );
      }
      merged.type = v.type;
    }
    for (const k of PARAMS) {
      const value = v[k];
      if (value === undefined) continue;
      const prev = merged[k];
      if (prev !== undefined && prev !== value) {
        throw new PassthruError(
          'XML_INVALID',
          `${what}: attempt to merge virtualports with mismatched ${k}: ${String(prev)} and ${String(value)}`,
        );
      }
      (merged as Record<string, unknown>)[k] = value;
    }
  }
  return merged;
}
