import { parseUnicastMac, type MacAddress } from '../mac.ts';
import { checkPciAddress, type PciAddress } from '../pci-address.ts';
import { parseUuid, type Uuid } from '../uuid.ts';
import { parseVlanId, type Vlan, type VlanTag } from '../vlan.ts';
import {
  attr,
  children,
  invalid,
  leafText,
  located,
  type Mutable,
  oneOf,
  onlyAttr,
  parseUnsigned,
  rejectUnknown,
  requireAttr,
  single,
  yesNo,
} from '../xml/read.ts';
import type { XmlElement } from '../xml/tree.ts';
import type { GuestAddress, HostdevDriver, RomDef, TeamingDef, VfBandwidthDef, VirtualPortDef } from './types.ts';

/** Grammar of the small parts shared by devices (and by network definitions): addresses, MAC,
 *  VLAN, virtualport, teaming, rom, driver. */

function num(el: XmlElement, name: string, max?: number): number | undefined {
  const v = attr(el, name);
  if (v === undefined) return undefined;
  const n = parseUnsigned(el, name, v);
  if (max !== undefined && n > max) throw invalid(el, `${name}='${v}' is out of range 0..${max}`);
  return n;
}

/** A PCI address element's four fields, hex ('0x1f') or decimal ('31') like libvirt. */
export function parsePciFields(el: XmlElement): PciAddress {
  const a = {
    domain: num(el, 'domain') ?? 0,
    bus: num(el, 'bus') ?? 0,
    slot: num(el, 'slot') ?? 0,
    function: num(el, 'function') ?? 0,
  };
  return located(el, () => checkPciAddress(a));
}

const PCI_ATTRS = ['type', 'domain', 'bus', 'slot', 'function', 'multifunction'];
const DRIVE_ATTRS = ['type', 'controller', 'bus', 'target', 'unit'];

/** A guest-side `<address>`. */
export function parseGuestAddress(el: XmlElement): GuestAddress {
  const type = requireAttr(el, 'type');
  switch (type) {
    case 'pci': {
      rejectUnknown(el, PCI_ATTRS, []);
      const mf = attr(el, 'multifunction');
      const multifunction = mf === undefined ? undefined : oneOf(el, 'multifunction', mf, ['on', 'off']) === 'on';
      return { type: 'pci', ...parsePciFields(el), ...(multifunction === undefined ? {} : { multifunction }) };
    }
    case 'unassigned':
      rejectUnknown(el, ['type'], []);
      return { type: 'unassigned' };
    case 'drive': {
      rejectUnknown(el, DRIVE_ATTRS, []);
      const out: Record<string, number | string> = { type: 'drive' };
      for (const k of ['controller', 'bus', 'target', 'unit']) {
        const v = num(el, k);
        if (v !== undefined) out[k] = v;
      }
      return out as GuestAddress;
    }
    default:
      throw invalid(
        el,
        `address type '${type}' is not supported here`,
        "supported address types: 'pci', 'unassigned', 'drive'",
      );
  }
}

/** The host source `<address>` of a PCI hostdev; `type='pci'` is optional on `<hostdev>` and
 *  required on `<interface>` (where libvirt reads the type from it). */
export function parseSourceAddress(el: XmlElement, typeRequired: boolean): PciAddress {
  rejectUnknown(el, ['type', 'domain', 'bus', 'slot', 'function'], []);
  const type = attr(el, 'type');
  if (type === undefined && typeRequired) throw invalid(el, 'missing source address type');
  if (type !== undefined && type !== 'pci') {
    throw invalid(el, `host device source address type '${type}' is not supported`, "only type='pci' is");
  }
  return parsePciFields(el);
}

/** `<uuid>` of a domain, network, pool or port. */
export function parseUuidElement(el: XmlElement): Uuid {
  return located(el, () => parseUuid(leafText(el)));
}

/** A pool name is referenced from domains and becomes part of file names: a safe set only. */
export function checkPoolName(el: XmlElement, name: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(name))
    throw invalid(el, `pool name '${name}' may contain only letters, digits, '_', '.' and '-'`);
  return name;
}

export function parseMacElement(el: XmlElement): MacAddress {
  return located(el, () => parseUnicastMac(onlyAttr(el, 'address')));
}

export function parseVlan(el: XmlElement): Vlan {
  rejectUnknown(el, ['trunk'], ['tag']);
  const trunk = yesNo(el, 'trunk') ?? false;
  const tags: VlanTag[] = children(el, 'tag').map((t) => {
    rejectUnknown(t, ['id', 'nativeMode', 'qos', 'protocol'], []);
    const id = located(t, () => parseVlanId(requireAttr(t, 'id')));
    const nm = attr(t, 'nativeMode');
    const qos = num(t, 'qos', 7);
    const protocol = attr(t, 'protocol');
    return {
      id,
      ...(nm === undefined ? {} : { nativeMode: oneOf(t, 'nativeMode', nm, ['tagged', 'untagged'] as const) }),
      ...(qos === undefined ? {} : { qos }),
      ...(protocol === undefined ? {} : { protocol: oneOf(t, 'protocol', protocol, ['802.1Q', '802.1ad'] as const) }),
    };
  });
  if (tags.length === 0) throw invalid(el, 'a <vlan> needs at least one <tag id=.../>');
  return { tags, trunk };
}

const VPORT_PARAMS: Record<NonNullable<VirtualPortDef['type']> | 'any', readonly string[]> = {
  '802.1Qbg': ['managerid', 'typeid', 'typeidversion', 'instanceid'],
  '802.1Qbh': ['profileid'],
  openvswitch: ['interfaceid', 'profileid'],
  midonet: ['interfaceid'],
  any: ['managerid', 'typeid', 'typeidversion', 'instanceid', 'profileid', 'interfaceid'],
};

export function parseVirtualPort(el: XmlElement): VirtualPortDef {
  rejectUnknown(el, ['type'], ['parameters']);
  const t = attr(el, 'type');
  const type =
    t === undefined ? undefined : oneOf(el, 'type', t, ['802.1Qbg', '802.1Qbh', 'openvswitch', 'midonet'] as const);
  const p = single(el, 'parameters');
  const out: Mutable<VirtualPortDef> = { line: el.line };
  if (type !== undefined) out.type = type;
  if (p) {
    rejectUnknown(p, VPORT_PARAMS[type ?? 'any'], []);
    const managerid = num(p, 'managerid', 255);
    const typeid = num(p, 'typeid', 0xffffff);
    const typeidversion = num(p, 'typeidversion', 255);
    const instanceid = attr(p, 'instanceid');
    const profileid = attr(p, 'profileid');
    const interfaceid = attr(p, 'interfaceid');
    if (managerid !== undefined) out.managerid = managerid;
    if (typeid !== undefined) out.typeid = typeid;
    if (typeidversion !== undefined) out.typeidversion = typeidversion;
    if (instanceid !== undefined) out.instanceid = located(p, () => parseUuid(instanceid));
    if (profileid !== undefined) {
      // IFLA_PORT_PROFILE is a 40-byte string with its NUL, as libvirt checks.
      if (profileid.length === 0 || profileid.length > 39)
        throw invalid(p, `profileid '${profileid}' must be 1 to 39 characters`);
      out.profileid = profileid;
    }
    if (interfaceid !== undefined) out.interfaceid = located(p, () => parseUuid(interfaceid));
  }
  return out;
}

/** `<bandwidth>` on a VF: the VF's TX rate limits are the only shaping a VF has, so only
 *  `<outbound average= floor=>` (KiB/s, libvirt's unit) is taken; the rest is refused here, at
 *  its element, rather than silently dropped. */
export function parseVfBandwidth(el: XmlElement): VfBandwidthDef {
  rejectUnknown(el, [], ['outbound', 'inbound']);
  const inbound = single(el, 'inbound');
  if (inbound)
    throw invalid(
      inbound,
      'a VF cannot limit what the guest receives: only <outbound> (its TX rate) is supported on a VF',
    );
  const o = single(el, 'outbound');
  if (!o) throw invalid(el, 'a <bandwidth> on a VF needs <outbound average=... floor=.../>');
  rejectUnknown(o, ['average', 'peak', 'burst', 'floor'], []);
  for (const name of ['peak', 'burst'])
    if (attr(o, name) !== undefined)
      throw invalid(o, `a VF's TX rate has no ${name}: use average (its max TX rate) and floor (its min TX rate)`);
  const average = num(o, 'average');
  const floor = num(o, 'floor');
  if (average === undefined && floor === undefined)
    throw invalid(o, '<outbound> on a VF needs average (max TX rate) or floor (min TX rate)');
  for (const [name, v] of [
    ['average', average],
    ['floor', floor],
  ] as const) {
    if (v !== undefined && v > 0 && kibPerSecToMbps(v) === 0)
      throw invalid(o, `${name}='${v}' KiB/s is below 1 Mbit/s, the smallest VF TX rate (write at least 62)`);
  }
  if (average !== undefined && average > 0 && floor !== undefined && floor > average)
    throw invalid(o, `floor='${floor}' is above average='${average}': a VF's min TX rate cannot exceed its max`);
  return { outbound: { ...(average === undefined ? {} : { average }), ...(floor === undefined ? {} : { floor }) } };
}

/** libvirt's bandwidth unit (KiB/s) to the kernel's VF rate unit (Mbit/s, 10^6 bit/s), to the
 *  nearest whole Mbit/s: 1 KiB/s = 8192 bit/s. */
export function kibPerSecToMbps(kib: number): number {
  return Math.round((kib * 8192) / 1_000_000);
}

export function parseTeaming(el: XmlElement): TeamingDef {
  rejectUnknown(el, ['type', 'persistent'], []);
  const type = oneOf(el, 'type', requireAttr(el, 'type'), ['persistent', 'transient'] as const);
  const persistent = attr(el, 'persistent');
  if (type === 'persistent') {
    if (persistent !== undefined)
      throw invalid(el, "teaming persistent attribute not allowed if teaming type is 'persistent'");
    return { type };
  }
  if (persistent === undefined)
    throw invalid(el, "teaming persistent attribute must be set if teaming type is 'transient'");
  return { type, persistent };
}

export function parseRom(el: XmlElement): RomDef {
  rejectUnknown(el, ['bar', 'file', 'enabled'], []);
  const bar = attr(el, 'bar');
  const file = attr(el, 'file');
  const enabled = yesNo(el, 'enabled');
  return {
    ...(bar === undefined ? {} : { bar: oneOf(el, 'bar', bar, ['on', 'off']) === 'on' }),
    ...(file === undefined ? {} : { file }),
    ...(enabled === undefined ? {} : { enabled }),
  };
}

export function parseHostdevDriver(el: XmlElement): HostdevDriver {
  rejectUnknown(el, ['name', 'model'], []);
  const name = attr(el, 'name');
  const model = attr(el, 'model');
  return {
    ...(name === undefined ? {} : { name: oneOf(el, 'name', name, ['kvm', 'vfio', 'xen'] as const) }),
    ...(model === undefined ? {} : { model }),
  };
}

/** `loadparm` (s390 only) is refused: the model has no place for it, and it would be dropped. */
export function parseBootOrder(el: XmlElement): number {
  const n = parseUnsigned(el, 'order', onlyAttr(el, 'order'));
  if (n < 1) throw invalid(el, 'boot order must be 1 or more');
  return n;
}

/** `<alias name=.../>`. User aliases ('ua-...') use only [A-Za-z0-9_-] as libvirt requires; the
 *  aliases of live XML are QEMU ids such as 'pci.1'. */
export function parseAlias(el: XmlElement): string {
  const name = onlyAttr(el, 'name');
  const ok = name.startsWith('ua-') ? /^ua-[A-Za-z0-9_-]+$/ : /^[A-Za-z0-9_.-]+$/;
  if (!ok.test(name)) throw invalid(el, `alias '${name}' may contain only letters, digits, '_' and '-'`);
  return name;
}

const TAG = /^[A-Za-z0-9_.-]+$/;

/** `tags='migratable,fast'`: pool policy labels, each a plain word. */
export function parseTags(el: XmlElement, text: string): string[] {
  const tags = text.split(',').map((t) => t.trim());
  for (const t of tags)
    if (!TAG.test(t)) throw invalid(el, `tag '${t}' is not a word of letters, digits, '_', '.', '-'`);
  return tags;
}
