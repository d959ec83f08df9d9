import type { PciAddress } from '../pci-address.ts';
import type { Vlan } from '../vlan.ts';
import { type OutElement, out } from '../xml/tree.ts';
import type { GuestAddress, HostdevDriver, RomDef, TeamingDef, VfBandwidthDef, VirtualPortDef } from './types.ts';

/** The writers of the small parts shared by devices and network definitions. */

const hex = (n: number, w: number): string => `0x${n.toString(16).padStart(w, '0')}`;

export function pciAttrs(a: PciAddress): [string, string][] {
  return [
    ['domain', hex(a.domain, 4)],
    ['bus', hex(a.bus, 2)],
    ['slot', hex(a.slot, 2)],
    ['function', hex(a.function, 1)],
  ];
}

export function guestAddressOut(a: GuestAddress | undefined): OutElement | undefined {
  if (a === undefined) return undefined;
  switch (a.type) {
    case 'pci':
      return out('address', [
        ['type', 'pci'],
        ...pciAttrs(a),
        ['multifunction', a.multifunction === undefined ? undefined : a.multifunction ? 'on' : 'off'],
      ]);
    case 'unassigned':
      return out('address', [['type', 'unassigned']]);
    case 'drive':
      return out('address', [
        ['type', 'drive'],
        ['controller', a.controller],
        ['bus', a.bus],
        ['target', a.target],
        ['unit', a.unit],
      ]);
  }
}

/** `<source><address .../></source>`; `<interface>` writes type='pci', `<hostdev>` does not. */
export function pciSourceOut(a: PciAddress, withType: boolean): OutElement {
  return out(
    'source',
    [],
    [out('address', [...(withType ? [['type', 'pci'] as [string, string]] : []), ...pciAttrs(a)])],
  );
}

export function hostdevDriverOut(d: HostdevDriver | undefined): OutElement | undefined {
  if (d === undefined || (d.name === undefined && d.model === undefined)) return undefined;
  return out('driver', [
    ['name', d.name],
    ['model', d.model],
  ]);
}

export function vlanOut(v: Vlan | undefined): OutElement | undefined {
  if (v === undefined) return undefined;
  return out(
    'vlan',
    [['trunk', v.trunk ? 'yes' : undefined]],
    v.tags.map((t) =>
      out('tag', [
        ['id', t.id],
        ['nativeMode', t.nativeMode],
        ['qos', t.qos],
        ['protocol', t.protocol],
      ]),
    ),
  );
}

export function virtualPortOut(v: VirtualPortDef | undefined): OutElement | undefined {
  if (v === undefined) return undefined;
  const params: [string, string | number | undefined][] = [
    ['managerid', v.managerid],
    ['typeid', v.typeid],
    ['typeidversion', v.typeidversion],
    ['instanceid', v.instanceid],
    ['profileid', v.profileid],
    ['interfaceid', v.interfaceid],
  ];
  const any = params.some((p) => p[1] !== undefined);
  return out('virtualport', [['type', v.type]], [any && out('parameters', params)]);
}

export function vfBandwidthOut(b: VfBandwidthDef | undefined): OutElement | undefined {
  if (b === undefined) return undefined;
  return out(
    'bandwidth',
    [],
    [
      out('outbound', [
        ['average', b.outbound.average],
        ['floor', b.outbound.floor],
      ]),
    ],
  );
}

export const yesNoOut = (v: boolean | undefined): string | undefined =>
  v === undefined ? undefined : v ? 'yes' : 'no';

export function teamingOut(t: TeamingDef | undefined): OutElement | undefined {
  if (t === undefined) return undefined;
  return out('teaming', [
    ['type', t.type],
    ['persistent', t.type === 'transient' ? t.persistent : undefined],
  ]);
}

export function romOut(r: RomDef | undefined): OutElement | undefined {
  if (r === undefined) return undefined;
  return out('rom', [
    ['bar', r.bar === undefined ? undefined : r.bar ? 'on' : 'off'],
    ['file', r.file],
    ['enabled', r.enabled === undefined ? undefined : r.enabled ? 'yes' : 'no'],
  ]);
}
