import { parseUuid } from '../uuid.ts';
import {
  attr,
  children,
  invalid,
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
import { textOf, type XmlElement } from '../xml/tree.ts';
import {
  checkPoolName,
  parseAlias,
  parseBootOrder,
  parseGuestAddress,
  parseHostdevDriver,
  parseMacElement,
  parseRom,
  parseSourceAddress,
  parseTeaming,
  parseVirtualPort,
  parseTags,
  parseVfBandwidth,
  parseVlan,
} from './parse-parts.ts';
import { checkShape, VIRTIO_NET_DRIVER_SHAPE } from './generic.ts';
import type {
  ActualHostdev,
  CharDevDef,
  ControllerDef,
  ControllerTarget,
  DeviceInfo,
  HostdevDef,
  HostdevNetdevPort,
  InterfaceDef,
  InterfaceType,
  PciHostdevSource,
  PoolHostdevDef,
  StandbyDef,
  VfAttributesDef,
} from './types.ts';

const INFO_CHILDREN = ['address', 'alias', 'boot', 'rom'];

/** boot, alias, rom and guest address: the children every guest-visible device may have. */
export function parseDeviceInfo(el: XmlElement): DeviceInfo {
  const info: Mutable<DeviceInfo> = { line: el.line };
  const address = single(el, 'address');
  const alias = single(el, 'alias');
  const boot = single(el, 'boot');
  const rom = single(el, 'rom');
  if (address) info.guestAddress = parseGuestAddress(address);
  if (alias) info.alias = parseAlias(alias);
  if (boot) info.bootOrder = parseBootOrder(boot);
  if (rom) info.rom = parseRom(rom);
  return info;
}

function parseManaged(el: XmlElement): boolean {
  return yesNo(el, 'managed') ?? false;
}

/** `<driver>` + `<source><address/></source>` of a PCI host device. `<source pool=...>` only on
 *  `<hostdev>` (pools may be given): without an address it is left to the caller. */
function parsePciSource(
  el: XmlElement,
  managed: boolean,
  typeRequired: boolean,
  poolAllowed = false,
): PciHostdevSource {
  const source = single(el, 'source');
  if (!source) throw invalid(el, `missing <source> element in <${el.name}>`);
  rejectUnknown(source, poolAllowed ? ['pool', 'tags'] : [], ['address']);
  const address = single(source, 'address');
  if (!address) throw invalid(source, 'missing <address> inside <source>');
  const driverEl = single(el, 'driver');
  const driver = driverEl ? parseHostdevDriver(driverEl) : undefined;
  const pool = attr(source, 'pool');
  const tags = attr(source, 'tags');
  return {
    managed,
    address: parseSourceAddress(address, typeRequired),
    ...(driver ? { driver } : {}),
    ...(pool === undefined ? {} : { pool }),
    ...(pool === undefined || tags === undefined ? {} : { poolTags: parseTags(source, tags) }),
  };
}

/** A `<hostdev>` naming a pool without a device yet, or undefined if it is an ordinary one. */
export function parsePoolHostdev(el: XmlElement): PoolHostdevDef | undefined {
  const source = single(el, 'source');
  const pool = source && attr(source, 'pool');
  if (source === undefined || pool === undefined || single(source, 'address')) return undefined;
  const h = parseHostdevCommon(el);
  rejectUnknown(source, ['pool', 'tags'], []);
  checkPoolName(source, pool);
  const driverEl = single(el, 'driver');
  const tags = attr(source, 'tags');
  return {
    ...h,
    pool,
    ...(tags === undefined ? {} : { tags: parseTags(source, tags) }),
    managed: parseManaged(el),
    ...(driverEl ? { driver: parseHostdevDriver(driverEl) } : {}),
  };
}

function parseHostdevCommon(el: XmlElement): Omit<HostdevDef, 'source'> {
  rejectUnknown(
    el,
    ['mode', 'type', 'managed', 'assigned'],
    ['driver', 'source', 'teaming', 'netdev', ...INFO_CHILDREN],
  );
  const mode = requireAttr(el, 'mode');
  if (mode !== 'subsystem') throw invalid(el, `hostdev mode '${mode}' is not supported`, "only mode='subsystem' is");
  const type = requireAttr(el, 'type');
  if (type !== 'pci') throw invalid(el, `hostdev type '${type}' is not supported`, "only type='pci' is");
  const teaming = single(el, 'teaming');
  const assigned = yesNo(el, 'assigned');
  const netdevs = children(el, 'netdev').map(parseNetdevPort);
  return {
    mode,
    type,
    ...parseDeviceInfo(el),
    ...(teaming ? { teaming: parseTeaming(teaming) } : {}),
    ...(assigned === undefined ? {} : { assigned }),
    ...(netdevs.length > 0 ? { netdevs } : {}),
  };
}

export function parseHostdev(el: XmlElement): HostdevDef {
  return { ...parseHostdevCommon(el), source: parsePciSource(el, parseManaged(el), false, true) };
}

function parseNetdevPort(el: XmlElement): HostdevNetdevPort {
  rejectUnknown(el, ['port', 'trustGuestRxFilters', 'spoofCheck'], ['mac', 'vlan', 'link', 'bandwidth']);
  const port = parseUnsigned(el, 'port', requireAttr(el, 'port'));
  if (port < 1) throw invalid(el, `netdev port '${port}' is invalid: ports are numbered from 1`);
  const mac = single(el, 'mac');
  const vlan = single(el, 'vlan');
  return {
    port,
    line: el.line,
    ...(mac ? { mac: parseMacElement(mac) } : {}),
    ...(vlan ? { vlan: parseVlan(vlan) } : {}),
    ...parseVfAttributes(el),
  };
}

/** trustGuestRxFilters, spoofCheck, `<link state>` and `<bandwidth>` of a VF (or a VF port). */
function parseVfAttributes(el: XmlElement): VfAttributesDef {
  const trust = yesNo(el, 'trustGuestRxFilters');
  const spoof = yesNo(el, 'spoofCheck');
  const link = single(el, 'link');
  const bandwidth = single(el, 'bandwidth');
  return {
    ...(trust === undefined ? {} : { trustGuestRxFilters: trust }),
    ...(spoof === undefined ? {} : { spoofCheck: spoof }),
    ...(link ? { linkState: oneOf(link, 'state', onlyAttr(link, 'state'), ['up', 'down'] as const) } : {}),
    ...(bandwidth ? { bandwidth: parseVfBandwidth(bandwidth) } : {}),
  };
}

const INTERFACE_TYPES = ['hostdev', 'hostdev-hybrid', 'network', 'bridge', 'direct', 'user', 'ethernet'] as const;
const COMMON_CHILDREN = ['mac', 'model', 'vlan', 'virtualport', 'teaming', 'target', 'link', 'mtu', ...INFO_CHILDREN];
const TYPE_CHILDREN: Record<InterfaceType, readonly string[]> = {
  hostdev: ['source', 'driver', 'bandwidth'],
  'hostdev-hybrid': ['source', 'driver', 'bandwidth', 'standby'],
  network: ['source', 'actual', 'driver', 'bandwidth', 'standby'],
  bridge: ['source', 'driver'],
  direct: ['source', 'driver'],
  user: ['driver'],
  ethernet: ['driver'],
};

export function parseInterface(el: XmlElement): InterfaceDef {
  const type = oneOf(el, 'type', requireAttr(el, 'type'), INTERFACE_TYPES);
  const isHostdev = type === 'hostdev' || type === 'hostdev-hybrid';
  const attrs = isHostdev ? ['type', 'managed', 'trustGuestRxFilters', 'spoofCheck'] : ['type', 'trustGuestRxFilters'];
  rejectUnknown(el, attrs, [...COMMON_CHILDREN, ...TYPE_CHILDREN[type]]);
  const c: Mutable<Omit<InterfaceDef, 'type'>> = parseDeviceInfo(el);
  const mac = single(el, 'mac');
  const model = single(el, 'model');
  const vlan = single(el, 'vlan');
  const vport = single(el, 'virtualport');
  const teaming = single(el, 'teaming');
  const target = single(el, 'target');
  const link = single(el, 'link');
  const mtu = single(el, 'mtu');
  const trust = yesNo(el, 'trustGuestRxFilters');
  if (mac) c.mac = parseMacElement(mac);
  if (model) c.model = onlyAttr(model, 'type');
  if (vlan) c.vlan = parseVlan(vlan);
  if (vport) c.virtualport = parseVirtualPort(vport);
  if (teaming) c.teaming = parseTeaming(teaming);
  if (trust !== undefined) c.trustGuestRxFilters = trust;
  const driver = single(el, 'driver');
  if (driver && !isHostdev) c.virtioDriver = checkShape(driver, VIRTIO_NET_DRIVER_SHAPE);
  if (target) c.targetDev = onlyAttr(target, 'dev');
  if (link) c.linkState = oneOf(link, 'state', onlyAttr(link, 'state'), ['up', 'down'] as const);
  if (mtu) c.mtu = parseUnsigned(mtu, 'size', onlyAttr(mtu, 'size'));
  const standbyEl = single(el, 'standby');
  const standby = standbyEl ? { standby: parseStandby(standbyEl) } : {};
  switch (type) {
    case 'hostdev':
    case 'hostdev-hybrid': {
      const { spoofCheck, bandwidth } = parseVfAttributes(el);
      return {
        type,
        ...c,
        ...(spoofCheck === undefined ? {} : { spoofCheck }),
        ...(bandwidth === undefined ? {} : { bandwidth }),
        source: parsePciSource(el, parseManaged(el), true),
        ...standby,
      };
    }
    case 'user':
    case 'ethernet':
      return { type, ...c };
    case 'network': {
      const s = requireSource(el, ['network', 'portgroup', 'portid']);
      const portgroup = attr(s, 'portgroup');
      const portid = attr(s, 'portid');
      const actual = single(el, 'actual');
      const bandwidth = single(el, 'bandwidth');
      return {
        type,
        ...c,
        ...(bandwidth ? { bandwidth: parseVfBandwidth(bandwidth) } : {}),
        network: requireAttr(s, 'network'),
        ...(portgroup === undefined ? {} : { portgroup }),
        ...(portid === undefined ? {} : { portid: located(s, () => parseUuid(portid)) }),
        ...(actual ? { actual: parseActual(actual) } : {}),
        ...standby,
      };
    }
    case 'bridge':
      return { type, ...c, bridge: requireAttr(requireSource(el, ['bridge']), 'bridge') };
    case 'direct': {
      const s = requireSource(el, ['dev', 'mode']);
      const mode = attr(s, 'mode');
      return {
        type,
        ...c,
        dev: requireAttr(s, 'dev'),
        ...(mode === undefined
          ? {}
          : { mode: oneOf(s, 'mode', mode, ['vepa', 'bridge', 'private', 'passthrough'] as const) }),
      };
    }
  }
}

/** [seed] `<standby>`: the hybrid's virtio standby (types.ts StandbyDef); `<source>` and
 *  `<target>` are live state, read back from status XML. */
function parseStandby(el: XmlElement): StandbyDef {
  rejectUnknown(el, [], ['source', 'target', 'alias', 'address']);
  const out: Mutable<StandbyDef> = { line: el.line };
  const source = single(el, 'source');
  if (source) {
    rejectUnknown(source, ['dev', 'mode'], []);
    out.parent = requireAttr(source, 'dev');
    oneOf(source, 'mode', attr(source, 'mode') ?? 'bridge', ['bridge'] as const);
  }
  const target = single(el, 'target');
  if (target) out.targetDev = onlyAttr(target, 'dev');
  const alias = single(el, 'alias');
  if (alias) out.alias = parseAlias(alias);
  const address = single(el, 'address');
  if (address) out.guestAddress = parseGuestAddress(address);
  return out;
}

function requireSource(el: XmlElement, attrs: readonly string[]): XmlElement {
  const s = single(el, 'source');
  if (!s) throw invalid(el, `missing <source> element in <interface type='${attr(el, 'type') ?? ''}'>`);
  rejectUnknown(s, attrs, []);
  return s;
}

/** The `<actual type='hostdev'>` of status XML: what a network allocated. */
function parseActual(el: XmlElement): ActualHostdev {
  rejectUnknown(
    el,
    ['type', 'managed', 'trustGuestRxFilters', 'spoofCheck'],
    ['source', 'driver', 'vlan', 'virtualport', 'bandwidth', 'link'],
  );
  const type = requireAttr(el, 'type');
  if (type !== 'hostdev' && type !== 'hostdev-hybrid')
    throw invalid(el, `unsupported type '${type}' in interface's <actual> element`);
  const vlan = single(el, 'vlan');
  const vport = single(el, 'virtualport');
  const { trustGuestRxFilters: trust, ...vf } = parseVfAttributes(el);
  return {
    type,
    source: parsePciSource(el, parseManaged(el), true),
    ...(trust === undefined ? {} : { trustGuestRxFilters: trust }),
    ...vf,
    ...(vlan ? { vlan: parseVlan(vlan) } : {}),
    ...(vport ? { virtualport: parseVirtualPort(vport) } : {}),
  };
}

const CONTROLLER_TYPES = ['pci', 'usb', 'ide', 'sata', 'scsi', 'virtio-serial'] as const;
const PCI_MODELS = [
  'pci-root',
  'pcie-root',
  'pcie-root-port',
  'pci-bridge',
  'dmi-to-pci-bridge',
  'pcie-to-pci-bridge',
  'pcie-switch-upstream-port',
  'pcie-switch-downstream-port',
  'pci-expander-bus',
  'pcie-expander-bus',
] as const;

/** A controller; `index` is -1 when the document leaves it out (parse.ts numbers them). */
export function parseController(el: XmlElement): ControllerDef {
  rejectUnknown(el, ['type', 'index', 'model', 'ports', 'vectors'], ['model', 'target', 'alias', 'address']);
  const type = oneOf(el, 'type', requireAttr(el, 'type'), CONTROLLER_TYPES);
  const idx = attr(el, 'index');
  const model = attr(el, 'model');
  if (type === 'pci' && model === undefined)
    throw invalid(el, "a PCI controller needs a model, e.g. model='pcie-root-port'");
  if (type === 'pci' && model !== undefined) oneOf(el, 'model', model, PCI_MODELS);
  const out: Mutable<ControllerDef> = {
    type,
    index: idx === undefined ? -1 : parseUnsigned(el, 'index', idx),
    line: el.line,
  };
  if (model !== undefined) out.model = model;
  for (const k of ['ports', 'vectors'] as const) {
    const v = attr(el, k);
    if (v !== undefined) out[k] = parseUnsigned(el, k, v);
  }
  const modelEl = single(el, 'model');
  if (modelEl) out.modelName = onlyAttr(modelEl, 'name');
  const target = single(el, 'target');
  if (target) out.target = parseControllerTarget(target);
  const alias = single(el, 'alias');
  if (alias) out.alias = parseAlias(alias);
  const address = single(el, 'address');
  if (address) out.address = parseGuestAddress(address);
  return out;
}

function parseControllerTarget(el: XmlElement): ControllerTarget {
  rejectUnknown(el, ['chassisNr', 'chassis', 'port', 'busNr', 'hotplug'], []);
  const t: Mutable<ControllerTarget> = {};
  for (const k of ['chassisNr', 'chassis', 'port', 'busNr'] as const) {
    const v = attr(el, k);
    if (v !== undefined) t[k] = parseUnsigned(el, k, v);
  }
  const hp = attr(el, 'hotplug');
  if (hp !== undefined) t.hotplug = oneOf(el, 'hotplug', hp, ['on', 'off']) === 'on';
  return t;
}

const CHAR_TYPES = ['file', 'pty', 'null', 'stdio', 'unix'] as const;

export function parseCharDev(el: XmlElement): CharDevDef {
  // `tty` is the pty libvirt got at start, written in live XML: runtime state that a definition
  // read back does not keep (libvirt's own inactive parse ignores it too).
  rejectUnknown(el, ['type', 'tty'], ['source', 'target', 'alias', 'address']);
  const type = oneOf(el, 'type', requireAttr(el, 'type'), CHAR_TYPES);
  const out: Mutable<CharDevDef> = { type, line: el.line };
  const source = single(el, 'source');
  if (source) {
    rejectUnknown(source, ['path', 'mode', 'append'], []);
    const path = attr(source, 'path');
    if (path !== undefined) out.path = path;
    const mode = attr(source, 'mode');
    if (mode !== undefined) out.mode = oneOf(source, 'mode', mode, ['bind', 'connect'] as const);
    const append = attr(source, 'append');
    if (append !== undefined) out.append = oneOf(source, 'append', append, ['on', 'off']) === 'on';
  }
  if ((type === 'file' || type === 'unix') && out.path === undefined) {
    throw invalid(el, `a <${el.name} type='${type}'> needs <source path=.../>`);
  }
  const target = single(el, 'target');
  if (target) {
    rejectUnknown(target, ['type', 'port'], ['model']);
    const tt = attr(target, 'type');
    const port = attr(target, 'port');
    if (tt !== undefined) out.targetType = tt;
    if (port !== undefined) out.targetPort = parseUnsigned(target, 'port', port);
    const m = single(target, 'model');
    if (m) out.targetModel = onlyAttr(m, 'name');
  }
  const alias = single(el, 'alias');
  if (alias) out.alias = parseAlias(alias);
  const address = single(el, 'address');
  if (address) out.guestAddress = parseGuestAddress(address);
  return out;
}

export function parseEmulator(el: XmlElement): string {
  rejectUnknown(el, [], []);
  const path = textOf(el);
  if (!path.startsWith('/')) throw invalid(el, `emulator '${path}' must be an absolute path`);
  return path;
}
