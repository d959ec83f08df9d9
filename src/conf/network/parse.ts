import {
  parseGuestAddress,
  parseHostdevDriver,
  parseTags,
  parseUuidElement,
  parseVfBandwidth,
  parseVirtualPort,
  parseVlan,
} from '../domain/parse-parts.ts';
import {
  attr,
  children,
  invalid,
  leafText,
  type Mutable,
  oneOf,
  onlyAttr,
  parseUnsigned,
  rejectUnknown,
  requireAttr,
  single,
  yesNo,
} from '../xml/read.ts';
import { parseXml } from '../xml/reader.ts';
import type { XmlElement } from '../xml/tree.ts';
import type { DeviceSelector, ForwardDef, NetworkDef, NetworkVfAttributes, PortgroupDef } from './types.ts';

const MODES = ['hostdev', 'hostdev-hybrid', 'bridge', 'private', 'vepa', 'passthrough'] as const;

/** The grammar step for `<network>`: unknown elements and attributes are refused with their line.
 *  Routed/NAT networks (`<ip>`, `<dns>`, `<dhcp>`) are outside passthru's scope. */
export function parseNetworkXml(text: string, source = 'network XML'): NetworkDef {
  return parseNetworkElement(parseXml(text, source));
}

function parseNetworkElement(root: XmlElement): NetworkDef {
  if (root.name !== 'network') throw invalid(root, `expected a <network> document, not <${root.name}>`);
  rejectUnknown(
    root,
    ['trustGuestRxFilters', 'spoofCheck'],
    ['name', 'uuid', 'forward', 'bridge', 'bandwidth', 'vlan', 'virtualport', 'link', 'portgroup'],
  );
  const nameEl = single(root, 'name');
  const name = nameEl && leafText(nameEl);
  if (!name) throw invalid(root, 'missing network <name>');
  if (name.includes('/')) throw invalid(nameEl, `network name '${name}' cannot contain '/'`);
  const def: Mutable<NetworkDef> = {
    name,
    portgroups: children(root, 'portgroup').map(parsePortgroup),
    line: root.line,
  };
  const uuid = single(root, 'uuid');
  if (uuid) def.uuid = parseUuidElement(uuid);
  const trust = yesNo(root, 'trustGuestRxFilters');
  if (trust !== undefined) def.trustGuestRxFilters = trust;
  const vf = parseVfAttributes(root);
  if (vf) def.vf = vf;
  const forward = single(root, 'forward');
  if (forward) def.forward = parseForward(forward, name);
  const bridge = single(root, 'bridge');
  if (bridge) def.bridge = onlyAttr(bridge, 'name');
  const vlan = single(root, 'vlan');
  if (vlan) def.vlan = parseVlan(vlan);
  const vport = single(root, 'virtualport');
  if (vport) def.virtualport = parseVirtualPort(vport);
  return def;
}

function parseForward(el: XmlElement, network: string): ForwardDef {
  rejectUnknown(el, ['mode', 'managed', 'dev'], ['driver', 'pf', 'interface', 'address', 'select']);
  const mode = oneOf(el, 'mode', requireAttr(el, 'mode'), MODES);
  const pfEls = children(el, 'pf');
  if (pfEls.length > 1)
    throw invalid(pfEls[1] ?? el, `only one <pf> element is allowed in <forward> of network ${network}`);
  const f: Mutable<ForwardDef> = {
    mode,
    line: el.line,
    pfs: pfEls.map((p) => {
      return { dev: onlyAttr(p, 'dev'), line: p.line };
    }),
    interfaces: children(el, 'interface').map((i) => {
      return { dev: onlyAttr(i, 'dev'), line: i.line };
    }),
    addresses: children(el, 'address').map((a) => {
      const g = parseGuestAddress(a);
      if (g.type !== 'pci') throw invalid(a, `a pool device is listed by PCI address: type='pci', not '${g.type}'`);
      return { domain: g.domain, bus: g.bus, slot: g.slot, function: g.function, line: a.line };
    }),
    selectors: children(el, 'select').map(parseSelector),
  };
  const managed = attr(el, 'managed');
  // libvirt compares case-insensitively here (STRCASEEQ), unlike everywhere else.
  if (managed !== undefined) f.managed = oneOf(el, 'managed', managed.toLowerCase(), ['yes', 'no']) === 'yes';
  const dev = attr(el, 'dev');
  if (dev !== undefined) f.dev = dev;
  const driver = single(el, 'driver');
  if (driver) f.driver = parseHostdevDriver(driver);
  return f;
}

const hexOrDec = (el: XmlElement, name: string, v: string): number =>
  /^[0-9a-fA-F]{4}$/.test(v) ? Number.parseInt(v, 16) : parseUnsigned(el, name, v);

/** `<select vendor='8086' device='154c' driver='iavf' pf='enp6s0f0#0,2-7' numa='0'/>` */
export function parseSelector(el: XmlElement): DeviceSelector {
  rejectUnknown(el, ['vendor', 'device', 'driver', 'pf', 'numa', 'tags'], []);
  if ([...el.attrs.keys()].filter((k) => k !== 'tags').length === 0)
    throw invalid(el, 'an empty <select/> would take every device of the host; name at least one property');
  const s: Mutable<DeviceSelector> = { line: el.line };
  const vendor = attr(el, 'vendor');
  const device = attr(el, 'device');
  const driver = attr(el, 'driver');
  const pf = attr(el, 'pf');
  const numa = attr(el, 'numa');
  if (vendor !== undefined) s.vendor = hexOrDec(el, 'vendor', vendor);
  if (device !== undefined) s.device = hexOrDec(el, 'device', device);
  if (driver !== undefined) s.driver = driver;
  if (numa !== undefined) s.numaNode = parseUnsigned(el, 'numa', numa);
  const tags = attr(el, 'tags');
  if (tags !== undefined) s.tags = parseTags(el, tags);
  if (pf !== undefined) {
    const [name, ranges] = pf.split('#', 2);
    if (!name) throw invalid(el, `pf='${pf}' names no PF`);
    s.pf = name;
    if (ranges !== undefined) s.vfs = parseVfRanges(el, ranges);
  }
  return s;
}

function parseVfRanges(el: XmlElement, text: string): [number, number][] {
  return text.split(',').map((part) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m?.[1]) throw invalid(el, `VF range '${part}' is not N or N-M`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw invalid(el, `VF range '${part}' runs backwards`);
    return [lo, hi];
  });
}

function parsePortgroup(el: XmlElement): PortgroupDef {
  rejectUnknown(
    el,
    ['name', 'default', 'trustGuestRxFilters', 'spoofCheck'],
    ['vlan', 'virtualport', 'bandwidth', 'link'],
  );
  const p: Mutable<PortgroupDef> = { name: requireAttr(el, 'name'), line: el.line };
  const vf = parseVfAttributes(el);
  if (vf) p.vf = vf;
  const def = yesNo(el, 'default');
  const trust = yesNo(el, 'trustGuestRxFilters');
  if (def !== undefined) p.default = def;
  if (trust !== undefined) p.trustGuestRxFilters = trust;
  const vlan = single(el, 'vlan');
  if (vlan) p.vlan = parseVlan(vlan);
  const vport = single(el, 'virtualport');
  if (vport) p.virtualport = parseVirtualPort(vport);
  return p;
}

/** spoofCheck, `<link state>` and `<bandwidth>` (the VF's TX rates) of a network or portgroup. */
function parseVfAttributes(el: XmlElement): NetworkVfAttributes | undefined {
  const spoof = yesNo(el, 'spoofCheck');
  const link = single(el, 'link');
  const bandwidth = single(el, 'bandwidth');
  const vf: NetworkVfAttributes = {
    ...(spoof === undefined ? {} : { spoofCheck: spoof }),
    ...(link ? { linkState: oneOf(link, 'state', onlyAttr(link, 'state'), ['up', 'down'] as const) } : {}),
    ...(bandwidth ? { bandwidth: parseVfBandwidth(bandwidth) } : {}),
  };
  return Object.keys(vf).length > 0 ? vf : undefined;
}
