import { attr, invalid, type Mutable, oneOf, parseUnsigned, rejectUnknown, requireAttr, single } from '../xml/read.ts';
import { childElements, type XmlElement } from '../xml/tree.ts';
import { parseDeviceInfo } from './parse-devices.ts';
import type { BackingStoreDef, DiskBus, DiskCache, DiskDef, ImageFormat } from './types.ts';

/**
 * `<disk>` as passthru runs it: a file or block device, raw or qcow2, on virtio, SATA, SCSI or
 * IDE. A disk that asks for more (a network source, a usb or fdc bus, io/iothread tuning, wwn ...)
 * is not an error here: it stays carried XML (generic.ts) so that libvirt's definitions round
 * trip, and the daemon refuses to start it, naming what does not run yet.
 */

const BUSES: readonly DiskBus[] = ['virtio', 'sata', 'scsi', 'ide'];
const FORMATS: readonly ImageFormat[] = ['raw', 'qcow2'];
const CACHES: readonly DiskCache[] = ['default', 'none', 'writethrough', 'writeback', 'directsync', 'unsafe'];

const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  disk: ['type', 'device'],
  driver: ['name', 'type', 'cache', 'discard'],
  source: ['file', 'dev', 'index'],
  target: ['dev', 'bus'],
  readonly: [],
  serial: [],
  boot: ['order'],
  alias: ['name'],
  address: ['type', 'domain', 'bus', 'slot', 'function', 'multifunction', 'controller', 'target', 'unit'],
  backingStore: ['type', 'index'],
};

/** Whether the typed model holds everything this `<disk>` says. */
export function isTypedDisk(el: XmlElement): boolean {
  const onlyAllowed = (e: XmlElement): boolean => [...e.attrs.keys()].every((a) => ALLOWED[e.name]?.includes(a));
  if (!onlyAllowed(el)) return false;
  if (!['file', 'block', undefined].includes(attr(el, 'type'))) return false;
  if (!['disk', 'cdrom', undefined].includes(attr(el, 'device'))) return false;
  for (const c of childElements(el)) {
    if (!(c.name in ALLOWED) || !onlyAllowed(c)) return false;
    const bus = attr(c, 'bus');
    if (c.name === 'target' && bus !== undefined && !(BUSES as readonly string[]).includes(bus)) return false;
    if (c.name === 'address' && !['pci', 'drive'].includes(attr(c, 'type') ?? '')) return false;
    if (c.name === 'backingStore' && !backingFits(c)) return false;
  }
  return true;
}

function backingFits(el: XmlElement): boolean {
  if (el.attrs.size === 0 && childElements(el).length === 0) return true;
  if (!['file', 'block'].includes(attr(el, 'type') ?? '')) return false;
  return childElements(el).every((c) => {
    if (c.name === 'format') return c.attrs.size === 1 && FORMATS.includes(attr(c, 'type') as ImageFormat);
    if (c.name === 'source') return [...c.attrs.keys()].every((a) => ['file', 'dev', 'index'].includes(a));
    return c.name === 'backingStore' && backingFits(c);
  });
}

export function parseDisk(el: XmlElement): DiskDef {
  const type = oneOf(el, 'type', attr(el, 'type') ?? 'file', ['file', 'block'] as const);
  const device = oneOf(el, 'device', attr(el, 'device') ?? 'disk', ['disk', 'cdrom'] as const);
  const d: Mutable<DiskDef> = { ...parseDeviceInfo(el), type, device, target: parseTarget(el) };
  const driver = single(el, 'driver');
  if (driver) {
    const name = attr(driver, 'name');
    if (name !== undefined) oneOf(driver, 'name', name, ['qemu'] as const);
    const format = attr(driver, 'type');
    if (format !== undefined) d.format = oneOf(driver, 'type', format, FORMATS);
    const cache = attr(driver, 'cache');
    if (cache !== undefined) d.cache = oneOf(driver, 'cache', cache, CACHES);
    const discard = attr(driver, 'discard');
    if (discard !== undefined) d.discard = oneOf(driver, 'discard', discard, ['unmap', 'ignore'] as const);
  }
  const source = single(el, 'source');
  if (source) {
    const path = sourcePath(source, type);
    if (path !== undefined) d.source = path;
    const index = attr(source, 'index');
    if (index !== undefined) d.sourceIndex = parseUnsigned(source, 'index', index);
  }
  if (d.source === undefined && device === 'disk') {
    throw invalid(el, `a <disk device='disk'> needs <source ${type === 'file' ? 'file' : 'dev'}=.../>`);
  }
  const backing = single(el, 'backingStore');
  if (backing) d.backingStore = parseBackingStore(backing);
  const ro = single(el, 'readonly');
  if (ro) {
    rejectUnknown(ro, [], []);
    d.readonly = true;
  }
  const serial = single(el, 'serial');
  if (serial) d.serial = parseSerial(serial);
  return d;
}

function parseTarget(el: XmlElement): DiskDef['target'] {
  const target = single(el, 'target');
  if (!target) throw invalid(el, 'missing <target dev=... bus=.../>');
  const dev = requireAttr(target, 'dev');
  if (!/^(vd|sd|hd)[a-z]+$/.test(dev)) {
    throw invalid(target, `dev='${dev}' is not a disk name such as vda, sda or hda`);
  }
  const bus = oneOf(target, 'bus', attr(target, 'bus') ?? defaultBus(dev), BUSES);
  return { dev, bus };
}

/** libvirt's virDomainDiskDefParse: the bus follows the name's prefix when none is given. */
function defaultBus(dev: string): DiskBus {
  if (dev.startsWith('vd')) return 'virtio';
  if (dev.startsWith('sd')) return 'scsi';
  return 'ide';
}

function sourcePath(source: XmlElement, type: 'file' | 'block'): string | undefined {
  const want = type === 'file' ? 'file' : 'dev';
  const other = type === 'file' ? 'dev' : 'file';
  if (attr(source, other) !== undefined) {
    throw invalid(source, `a disk of type '${type}' names its image with ${want}=, not ${other}=`);
  }
  const path = attr(source, want);
  if (path !== undefined && !path.startsWith('/')) {
    throw invalid(source, `${want}='${path}' must be an absolute path`);
  }
  return path;
}

/** The serial number QEMU shows the guest: libvirt allows these characters only. */
function parseSerial(el: XmlElement): string {
  rejectUnknown(el, [], []);
  const text = el.children.map((c) => (c.kind === 'text' ? c.text : '')).join('');
  if (!/^[A-Za-z0-9_. +-]*$/.test(text)) {
    throw invalid(el, `serial '${text}' may contain only letters, digits, '-', '_', '.', '+' and spaces`);
  }
  return text;
}

function parseBackingStore(el: XmlElement): BackingStoreDef | 'none' {
  if (el.attrs.size === 0 && childElements(el).length === 0) return 'none';
  rejectUnknown(el, ['type', 'index'], ['format', 'source', 'backingStore']);
  const type = oneOf(el, 'type', requireAttr(el, 'type'), ['file', 'block'] as const);
  const formatEl = single(el, 'format');
  if (!formatEl) throw invalid(el, 'missing <format type=.../>');
  const source = single(el, 'source');
  if (!source) throw invalid(el, 'missing <source/>');
  const path = sourcePath(source, type);
  if (path === undefined) throw invalid(source, `missing attribute '${type === 'file' ? 'file' : 'dev'}'`);
  const index = attr(el, 'index');
  const next = single(el, 'backingStore');
  return {
    type,
    format: oneOf(formatEl, 'type', requireAttr(formatEl, 'type'), FORMATS),
    path,
    ...(index === undefined ? {} : { index: parseUnsigned(el, 'index', index) }),
    ...(next ? { backingStore: parseBackingStore(next) } : {}),
  };
}
