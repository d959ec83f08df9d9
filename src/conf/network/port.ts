import { checkShape, type Shape, toOut } from '../domain/generic.ts';
import { hostdevDriverOut, pciAttrs, virtualPortOut, vlanOut } from '../domain/format-parts.ts';
import {
  parseHostdevDriver,
  parseMacElement,
  parsePciFields,
  parseUuidElement,
  parseVirtualPort,
  parseVlan,
} from '../domain/parse-parts.ts';
import type { HostdevDriver, VirtualPortDef } from '../domain/types.ts';
import type { PassthruError } from '../error.ts';
import type { MacAddress } from '../mac.ts';
import type { PciAddress } from '../pci-address.ts';
import { problemsOf } from '../problems.ts';
import type { Uuid } from '../uuid.ts';
import type { Vlan } from '../vlan.ts';
import {
  attr,
  invalid,
  leafText,
  oneOf,
  rejectUnknown,
  requireAttr,
  requireChild,
  single,
  yesNo,
} from '../xml/read.ts';
import { parseXml } from '../xml/reader.ts';
import { type OutElement, out, outText, type XmlElement } from '../xml/tree.ts';
import { formatXml } from '../xml/writer.ts';

/** libvirt's `<networkport>`: one guest interface's connection to a network, and what it was
 *  plugged into (for a hostdev pool: the VF). */
export interface NetworkPortDef {
  readonly uuid: Uuid;
  readonly owner: { readonly name: string; readonly uuid: Uuid };
  readonly group?: string;
  readonly mac: MacAddress;
  readonly virtualport?: VirtualPortDef;
  /** Carried, checked (`<inbound>`/`<outbound>` rates). */
  readonly bandwidth?: XmlElement;
  readonly vlan?: Vlan;
  readonly isolated?: boolean;
  readonly trustGuestRxFilters?: boolean;
  readonly plug?: PortPlug;
}

export type PortPlug =
  | { readonly type: 'network' | 'bridge'; readonly bridge: string; readonly macTableManager?: 'kernel' | 'libvirt' }
  | { readonly type: 'direct'; readonly dev: string; readonly mode?: string }
  | {
      readonly type: 'hostdev-pci';
      readonly managed: boolean;
      readonly driver?: HostdevDriver;
      readonly address: PciAddress;
    };

const RATE = ['average', 'peak', 'floor', 'burst'];
const BANDWIDTH: Shape = {
  attrs: ['classID'],
  children: { inbound: { attrs: RATE }, outbound: { attrs: RATE } },
};

export function parseNetworkPortXml(text: string, source = 'network port XML'): NetworkPortDef {
  const root = parseXml(text, source);
  if (root.name !== 'networkport') throw invalid(root, `expected a <networkport> document, not <${root.name}>`);
  rejectUnknown(
    root,
    [],
    ['uuid', 'owner', 'group', 'mac', 'virtualport', 'bandwidth', 'vlan', 'port', 'rxfilters', 'plug'],
  );
  const owner = requireChild(root, 'owner');
  rejectUnknown(owner, [], ['name', 'uuid']);
  const group = single(root, 'group');
  const vport = single(root, 'virtualport');
  const bandwidth = single(root, 'bandwidth');
  const vlan = single(root, 'vlan');
  const port = single(root, 'port');
  const rx = single(root, 'rxfilters');
  const plug = single(root, 'plug');
  if (port) rejectUnknown(port, ['isolated'], []);
  if (rx) rejectUnknown(rx, ['trustGuest'], []);
  const isolated = port && yesNo(port, 'isolated');
  const trust = rx && yesNo(rx, 'trustGuest');
  return {
    uuid: parseUuidElement(requireChild(root, 'uuid')),
    owner: { name: leafText(requireChild(owner, 'name')), uuid: parseUuidElement(requireChild(owner, 'uuid')) },
    mac: parseMacElement(requireChild(root, 'mac')),
    ...(group ? { group: leafText(group) } : {}),
    ...(vport ? { virtualport: parseVirtualPort(vport) } : {}),
    ...(bandwidth ? { bandwidth: checkShape(bandwidth, BANDWIDTH) } : {}),
    ...(vlan ? { vlan: parseVlan(vlan) } : {}),
    ...(isolated === undefined ? {} : { isolated }),
    ...(trust === undefined ? {} : { trustGuestRxFilters: trust }),
    ...(plug ? { plug: parsePlug(plug) } : {}),
  };
}

function parsePlug(el: XmlElement): PortPlug {
  const type = oneOf(el, 'type', requireAttr(el, 'type'), ['network', 'bridge', 'direct', 'hostdev-pci'] as const);
  switch (type) {
    case 'network':
    case 'bridge': {
      rejectUnknown(el, ['type', 'bridge', 'macTableManager'], []);
      const mtm = attr(el, 'macTableManager');
      return {
        type,
        bridge: requireAttr(el, 'bridge'),
        ...(mtm === undefined
          ? {}
          : { macTableManager: oneOf(el, 'macTableManager', mtm, ['kernel', 'libvirt'] as const) }),
      };
    }
    case 'direct': {
      rejectUnknown(el, ['type', 'dev', 'mode'], []);
      const mode = attr(el, 'mode');
      return { type, dev: requireAttr(el, 'dev'), ...(mode === undefined ? {} : { mode }) };
    }
    case 'hostdev-pci': {
      rejectUnknown(el, ['type', 'managed'], ['driver', 'address']);
      const driver = single(el, 'driver');
      return {
        type,
        managed: yesNo(el, 'managed') ?? false,
        address: parsePciFields(requireChild(el, 'address')),
        ...(driver ? { driver: parseHostdevDriver(driver) } : {}),
      };
    }
  }
}

export function formatNetworkPortXml(p: NetworkPortDef): string {
  return formatXml(
    out(
      'networkport',
      [],
      [
        outText('uuid', p.uuid),
        out('owner', [], [outText('name', p.owner.name), outText('uuid', p.owner.uuid)]),
        p.group !== undefined && outText('group', p.group),
        out('mac', [['address', p.mac]]),
        virtualPortOut(p.virtualport),
        p.bandwidth && toOut(p.bandwidth),
        vlanOut(p.vlan),
        p.isolated !== undefined && out('port', [['isolated', p.isolated ? 'yes' : 'no']]),
        p.trustGuestRxFilters !== undefined && out('rxfilters', [['trustGuest', p.trustGuestRxFilters ? 'yes' : 'no']]),
        p.plug && plugOut(p.plug),
      ],
    ),
  );
}

function plugOut(p: PortPlug): OutElement {
  switch (p.type) {
    case 'network':
    case 'bridge':
      return out('plug', [
        ['type', p.type],
        ['bridge', p.bridge],
        ['macTableManager', p.macTableManager],
      ]);
    case 'direct':
      return out('plug', [
        ['type', p.type],
        ['dev', p.dev],
        ['mode', p.mode],
      ]);
    case 'hostdev-pci':
      return out(
        'plug',
        [
          ['type', p.type],
          ['managed', p.managed ? 'yes' : 'no'],
        ],
        [hostdevDriverOut(p.driver), out('address', pciAttrs(p.address))],
      );
  }
}

export function networkPortXmlProblems(text: string, source?: string): PassthruError[] {
  return problemsOf(() => {
    parseNetworkPortXml(text, source);
    return [];
  });
}
