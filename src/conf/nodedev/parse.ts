import { PassthruError } from '../error.ts';
import { parseMac } from '../mac.ts';
import { checkPciAddress, type PciAddress } from '../pci-address.ts';
import {
  attr,
  children,
  childText,
  invalid,
  located,
  oneOf,
  onlyAttr,
  parseUnsigned,
  rejectUnknown,
  requireAttr,
  single,
} from '../xml/read.ts';
import { parseXml } from '../xml/reader.ts';
import { textOf, type XmlElement } from '../xml/tree.ts';
import type { NetCap, NodeDeviceCap, NodeDeviceDef, PciCap, PcieLinkDef } from './types.ts';

/**
 * Reads libvirt node-device XML (the `pci` and `net` capabilities). Capabilities passthru does
 * not model (scsi_host, mdev_types, vpd, usb ...) are refused as CONFIG_UNSUPPORTED rather
 * than dropped, so a read document is never written back with parts missing.
 */
export function parseNodeDevice(text: string, source = 'node device XML'): NodeDeviceDef {
  const root = parseXml(text, source);
  if (root.name !== 'device') throw invalid(root, `expected <device>, found <${root.name}>`);
  rejectUnknown(root, [], ['name', 'path', 'parent', 'driver', 'capability', 'devnode']);
  const name = childText(root, 'name');
  if (name === undefined || name === '') throw invalid(root, 'missing <name>');
  const path = childText(root, 'path');
  const parent = childText(root, 'parent');
  const driverEl = single(root, 'driver');
  let driver: string | undefined;
  if (driverEl) {
    rejectUnknown(driverEl, [], ['name']);
    driver = childText(driverEl, 'name');
  }
  const caps = children(root, 'capability').map(parseCap);
  return {
    name,
    ...(path === undefined ? {} : { path }),
    ...(parent === undefined ? {} : { parent }),
    ...(driver === undefined ? {} : { driver }),
    caps,
  };
}

function parseCap(el: XmlElement): NodeDeviceCap {
  const type = requireAttr(el, 'type');
  if (type === 'pci') return parsePciCap(el);
  if (type === 'net') return parseNetCap(el);
  throw unsupported(el, type);
}

function unsupported(el: XmlElement, type: string): PassthruError {
  return new PassthruError(
    'CONFIG_UNSUPPORTED',
    `<capability type='${type}'> at line ${el.line}: passthru models the pci and net capabilities of node devices only`,
    { line: el.line, column: el.column },
  );
}

function num(el: XmlElement, name: string): number {
  const c = single(el, name);
  if (!c) throw invalid(el, `missing <${name}>`);
  return parseUnsigned(c, name, textOf(c));
}

function address(el: XmlElement): PciAddress {
  rejectUnknown(el, ['domain', 'bus', 'slot', 'function'], []);
  const get = (k: string): number => parseUnsigned(el, k, requireAttr(el, k));
  return located(el, () =>
    checkPciAddress({ domain: get('domain'), bus: get('bus'), slot: get('slot'), function: get('function') }),
  );
}

function idElement(el: XmlElement | undefined, parent: XmlElement, name: string): { id: number; name?: string } {
  if (!el) throw invalid(parent, `missing <${name}>`);
  const id = parseUnsigned(el, 'id', onlyAttr(el, 'id'));
  const text = textOf(el);
  return text === '' ? { id } : { id, name: text };
}

const PCI_SUBCAPS = ['phys_function', 'virt_functions', 'pci-bridge', 'cardbus-bridge'] as const;

function parsePciCap(el: XmlElement): PciCap {
  rejectUnknown(
    el,
    ['type'],
    [
      'class',
      'domain',
      'bus',
      'slot',
      'function',
      'product',
      'vendor',
      'capability',
      'iommuGroup',
      'numa',
      'pci-express',
    ],
  );
  const klass = childText(el, 'class');
  let cap: PciCap = {
    type: 'pci',
    ...(klass === undefined ? {} : { class: parseUnsigned(el, 'class', klass) }),
    address: { domain: num(el, 'domain'), bus: num(el, 'bus'), slot: num(el, 'slot'), function: num(el, 'function') },
    product: idElement(single(el, 'product'), el, 'product'),
    vendor: idElement(single(el, 'vendor'), el, 'vendor'),
  };
  for (const sub of children(el, 'capability')) {
    const raw = requireAttr(sub, 'type');
    if (raw === 'mdev_types' || raw === 'vpd') throw unsupported(sub, raw);
    const t = oneOf(sub, 'type', raw, PCI_SUBCAPS);
    if (t === 'phys_function') {
      rejectUnknown(sub, ['type'], ['address']);
      const a = single(sub, 'address');
      if (!a) throw invalid(sub, 'missing <address>');
      cap = { ...cap, physFunction: address(a) };
    } else if (t === 'virt_functions') {
      rejectUnknown(sub, ['type', 'maxCount'], ['address']);
      const max = attr(sub, 'maxCount');
      cap = {
        ...cap,
        virtFunctions: {
          ...(max === undefined ? {} : { maxCount: parseUnsigned(sub, 'maxCount', max) }),
          addresses: children(sub, 'address').map(address),
        },
      };
    } else {
      rejectUnknown(sub, ['type'], []);
      cap = { ...cap, headerType: t };
    }
  }
  const group = single(el, 'iommuGroup');
  if (group) {
    rejectUnknown(group, ['number'], ['address']);
    cap = {
      ...cap,
      iommuGroup: {
        number: parseUnsigned(group, 'number', requireAttr(group, 'number')),
        addresses: children(group, 'address').map(address),
      },
    };
  }
  const numa = single(el, 'numa');
  if (numa) cap = { ...cap, numaNode: parseUnsigned(numa, 'node', onlyAttr(numa, 'node')) };
  const pcie = single(el, 'pci-express');
  if (pcie) {
    rejectUnknown(pcie, [], ['link']);
    cap = { ...cap, pciExpress: { links: children(pcie, 'link').map(parseLink) } };
  }
  return cap;
}

function parseLink(el: XmlElement): PcieLinkDef {
  rejectUnknown(el, ['validity', 'port', 'speed', 'width'], []);
  const port = attr(el, 'port');
  const speed = attr(el, 'speed');
  const width = attr(el, 'width');
  if (speed !== undefined && !['2.5', '5', '8', '16', '32', '64'].includes(speed)) {
    throw invalid(el, `speed='${speed}' is not a PCIe link speed (2.5, 5, 8, 16, 32, 64)`);
  }
  return {
    validity: oneOf(el, 'validity', requireAttr(el, 'validity'), ['cap', 'sta'] as const),
    ...(port === undefined ? {} : { port: parseUnsigned(el, 'port', port) }),
    ...(speed === undefined ? {} : { speed }),
    ...(width === undefined ? {} : { width: parseUnsigned(el, 'width', width) }),
  };
}

function parseNetCap(el: XmlElement): NetCap {
  rejectUnknown(el, ['type'], ['interface', 'address', 'link', 'feature', 'capability']);
  const ifname = childText(el, 'interface');
  if (ifname === undefined || ifname === '') throw invalid(el, 'missing <interface>');
  const addr = single(el, 'address');
  const link = single(el, 'link');
  const sub = single(el, 'capability');
  let linkDef: NetCap['link'];
  if (link) {
    rejectUnknown(link, ['speed', 'state'], []);
    const speed = attr(link, 'speed');
    const state = attr(link, 'state');
    linkDef = {
      ...(speed === undefined ? {} : { speed: parseUnsigned(link, 'speed', speed) }),
      ...(state === undefined ? {} : { state }),
    };
  }
  if (sub) rejectUnknown(sub, ['type'], []);
  return {
    type: 'net',
    interface: ifname,
    ...(addr ? { address: located(addr, () => parseMac(textOf(addr))) } : {}),
    ...(linkDef === undefined ? {} : { link: linkDef }),
    features: children(el, 'feature').map((f) => {
      return onlyAttr(f, 'name');
    }),
    ...(sub ? { subCapability: oneOf(sub, 'type', requireAttr(sub, 'type'), ['80203', '80211'] as const) } : {}),
  };
}
