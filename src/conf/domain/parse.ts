import { PassthruError } from '../error.ts';
import {
  attr,
  childText,
  invalid,
  leafText,
  located,
  type Mutable,
  oneOf,
  onlyAttr,
  parseUnsigned,
  rejectUnknown,
  requireChild,
  single,
  yesNo,
} from '../xml/read.ts';
import { parseXml } from '../xml/reader.ts';
import { childElements, textOf, type XmlElement } from '../xml/tree.ts';
import {
  CLOCK_SHAPE,
  CPU_SHAPE,
  carriedAddress,
  checkShape,
  CPUTUNE_SHAPE,
  FEATURES_SHAPE,
  LOADER_SHAPE,
  MEMORY_BACKING_SHAPE,
  NUMATUNE_SHAPE,
  NVRAM_SHAPE,
  OTHER_DEVICE_SHAPES,
  PM_SHAPE,
} from './generic.ts';
import {
  parseCharDev,
  parseController,
  parseEmulator,
  parseHostdev,
  parseInterface,
  parsePoolHostdev,
} from './parse-devices.ts';
import { parseGuestAddress, parseUuidElement } from './parse-parts.ts';
import { isTypedDisk, parseDisk } from './disk-parse.ts';
import type {
  BootDev,
  ControllerDef,
  Devices,
  DomainDef,
  LifecycleAction,
  OsDef,
  DiskDef,
  OtherDeviceDef,
  OtherDeviceKind,
  PoolHostdevDef,
} from './types.ts';
import { toKiB } from './units.ts';

const TOP = [
  'name',
  'uuid',
  'title',
  'description',
  'metadata',
  'memory',
  'currentMemory',
  'memoryBacking',
  'vcpu',
  'cputune',
  'numatune',
  'os',
  'features',
  'cpu',
  'clock',
  'on_poweroff',
  'on_reboot',
  'on_crash',
  'pm',
  'devices',
];

const LIFECYCLE = ['destroy', 'restart', 'preserve', 'rename-restart', 'coredump-destroy', 'coredump-restart'] as const;

/**
 * The grammar step: XML text -> DomainDef. Refuses unknown elements and attributes with their
 * name and line, and bad values (PCI address, MAC, VLAN ...) at the element that carries them.
 * Defaults are postparse.ts's business, whole-definition rules validate.ts's.
 */
export function parseDomainXml(text: string, source = 'domain XML'): DomainDef {
  return parseDomainElement(parseXml(text, source));
}

function parseDomainElement(root: XmlElement): DomainDef {
  if (root.name !== 'domain') throw invalid(root, `expected a <domain> document, not <${root.name}>`);
  rejectUnknown(root, ['type', 'id'], TOP);
  for (const n of TOP) single(root, n);
  const type = attr(root, 'type');
  const name = childText(root, 'name');
  if (name === undefined || name === '') throw invalid(root, 'missing domain <name>');
  if (name.includes('/')) throw invalid(single(root, 'name') ?? root, `domain name '${name}' cannot contain '/'`);
  const def: Mutable<DomainDef> = {
    name,
    memoryKiB: 0,
    vcpus: 1,
    os: parseOs(requireChild(root, 'os')),
    devices: parseDevices(single(root, 'devices')),
    line: root.line,
  };
  if (type !== undefined) def.type = oneOf(root, 'type', type, ['kvm', 'qemu'] as const);
  const id = attr(root, 'id');
  if (id !== undefined && id !== '-1') def.id = parseUnsigned(root, 'id', id);
  for (const el of childElements(root)) parseTopChild(def, el);
  if (single(root, 'memory') === undefined) throw invalid(root, 'missing <memory> element');
  return def;
}

function parseTopChild(def: Mutable<DomainDef>, el: XmlElement): void {
  switch (el.name) {
    case 'uuid':
      def.uuid = parseUuidElement(el);
      return;
    case 'title':
    case 'description': {
      const text = leafText(el);
      if (el.name === 'title' && text.includes('\n')) throw invalid(el, 'title must not contain a newline');
      def[el.name] = text;
      return;
    }
    case 'memory':
    case 'currentMemory': {
      rejectUnknown(el, ['unit'], []);
      const kib = located(el, () => toKiB(textOf(el), attr(el, 'unit')));
      if (el.name === 'memory') def.memoryKiB = kib;
      else def.currentMemoryKiB = kib;
      return;
    }
    case 'vcpu': {
      rejectUnknown(el, ['placement', 'cpuset'], []);
      def.vcpus = parseUnsigned(el, 'vcpu', textOf(el));
      const placement = attr(el, 'placement');
      const cpuset = attr(el, 'cpuset');
      if (placement !== undefined) def.vcpuPlacement = oneOf(el, 'placement', placement, ['static', 'auto'] as const);
      if (cpuset !== undefined) {
        if (!/^\^?\d+(-\d+)?(,\^?\d+(-\d+)?)*$/.test(cpuset)) throw invalid(el, `cpuset '${cpuset}' is not a CPU list`);
        def.vcpuCpuset = cpuset;
      }
      return;
    }
    case 'metadata':
      def.metadata = checkDepth(el, 32);
      return;
    case 'memoryBacking':
      def.memoryBacking = checkShape(el, MEMORY_BACKING_SHAPE);
      return;
    case 'cputune':
      def.cputune = checkShape(el, CPUTUNE_SHAPE);
      return;
    case 'numatune':
      def.numatune = checkShape(el, NUMATUNE_SHAPE);
      return;
    case 'pm':
      def.pm = checkShape(el, PM_SHAPE);
      return;
    case 'features':
      def.features = checkShape(el, FEATURES_SHAPE);
      return;
    case 'cpu':
      def.cpu = checkShape(el, CPU_SHAPE);
      return;
    case 'clock':
      def.clock = checkShape(el, CLOCK_SHAPE);
      return;
    case 'on_poweroff':
    case 'on_reboot':
    case 'on_crash': {
      const action: LifecycleAction = oneOf(el, el.name, leafText(el), LIFECYCLE);
      if (el.name === 'on_poweroff') def.onPoweroff = action;
      else if (el.name === 'on_reboot') def.onReboot = action;
      else def.onCrash = action;
      return;
    }
    default:
    // name, os, devices: read before the loop.
  }
}

/** `<metadata>` is carried unchecked; bound its depth so that writing it back (recursively) can
 *  never exhaust the stack. Iterative on purpose. */
function checkDepth(root: XmlElement, max: number): XmlElement {
  const stack: [XmlElement, number][] = [[root, 0]];
  for (let top = stack.pop(); top; top = stack.pop()) {
    const [el, depth] = top;
    if (depth > max) throw invalid(el, `<metadata> is nested more than ${max} levels deep`);
    for (const c of childElements(el)) stack.push([c, depth + 1]);
  }
  return root;
}

const BOOT_DEVS = ['hd', 'cdrom', 'network', 'fd'] as const;

function parseOs(el: XmlElement): OsDef {
  rejectUnknown(el, ['firmware'], ['type', 'loader', 'nvram', 'kernel', 'initrd', 'cmdline', 'boot', 'bootmenu']);
  const typeEl = requireChild(el, 'type');
  rejectUnknown(typeEl, ['arch', 'machine'], []);
  const t = textOf(typeEl);
  if (t !== 'hvm')
    throw invalid(typeEl, `OS type '${t}' is not supported`, 'passthru runs QEMU guests: <type>hvm</type>');
  const os: Mutable<OsDef> = { type: 'hvm', line: el.line };
  const arch = attr(typeEl, 'arch');
  const machine = attr(typeEl, 'machine');
  if (arch !== undefined) os.arch = arch;
  if (machine !== undefined) os.machine = machine;
  const firmware = attr(el, 'firmware');
  if (firmware !== undefined) os.firmware = oneOf(el, 'firmware', firmware, ['efi', 'bios'] as const);
  const loader = single(el, 'loader');
  if (loader) os.loader = checkShape(loader, LOADER_SHAPE);
  const nvram = single(el, 'nvram');
  if (nvram) os.nvram = checkShape(nvram, NVRAM_SHAPE);
  for (const k of ['kernel', 'initrd', 'cmdline'] as const) {
    const text = childText(el, k);
    if (text !== undefined) os[k] = text;
  }
  const boots = childElements(el).filter((c) => c.name === 'boot');
  if (boots.length > 0) {
    os.bootDevs = boots.map((b): BootDev => {
      return oneOf(b, 'dev', onlyAttr(b, 'dev'), BOOT_DEVS);
    });
  }
  const menu = single(el, 'bootmenu');
  if (menu) {
    rejectUnknown(menu, ['enable'], []);
    const enable = yesNo(menu, 'enable');
    if (enable !== undefined) os.bootMenu = enable;
  }
  return os;
}

const DEVICE_CHILDREN = [
  'emulator',
  'controller',
  'hostdev',
  'interface',
  'serial',
  'console',
  ...Object.keys(OTHER_DEVICE_SHAPES),
];

function parseDevices(el: XmlElement | undefined): Devices {
  const d = {
    controllers: [] as ControllerDef[],
    hostdevs: [] as Devices['hostdevs'][number][],
    poolHostdevs: [] as PoolHostdevDef[],
    interfaces: [] as Devices['interfaces'][number][],
    serials: [] as Devices['serials'][number][],
    consoles: [] as Devices['consoles'][number][],
    disks: [] as (DiskDef | OtherDeviceDef)[],
    others: [] as OtherDeviceDef[],
  };
  let emulator: string | undefined;
  if (el) {
    rejectUnknown(el, [], DEVICE_CHILDREN);
    const emulatorEl = single(el, 'emulator');
    if (emulatorEl) emulator = parseEmulator(emulatorEl);
    for (const c of childElements(el)) {
      switch (c.name) {
        case 'emulator':
          break;
        case 'controller':
          d.controllers.push(parseController(c));
          break;
        case 'hostdev': {
          const pooled = parsePoolHostdev(c);
          if (pooled) d.poolHostdevs.push(pooled);
          else d.hostdevs.push(parseHostdev(c));
          break;
        }
        case 'interface':
          d.interfaces.push(parseInterface(c));
          break;
        case 'serial':
          d.serials.push(parseCharDev(c));
          break;
        case 'console':
          d.consoles.push(parseCharDev(c));
          break;
        case 'disk':
          d.disks.push(isTypedDisk(c) ? parseDisk(c) : parseOther(c));
          break;
        default: {
          const other = parseOther(c);
          (other.kind === 'disk' ? d.disks : d.others).push(other);
        }
      }
    }
  }
  const { poolHostdevs, ...rest } = d;
  return {
    ...(emulator === undefined ? {} : { emulator }),
    ...rest,
    ...(poolHostdevs.length > 0 ? { poolHostdevs } : {}),
    controllers: numberControllers(d.controllers),
  };
}

function parseOther(el: XmlElement): OtherDeviceDef {
  const shape = OTHER_DEVICE_SHAPES[el.name];
  if (!shape) throw new PassthruError('INTERNAL', `no shape for <${el.name}>`);
  checkShape(el, shape);
  const addr = carriedAddress(el);
  const guestAddress = addr ? parseGuestAddressLoose(addr) : undefined;
  return { kind: el.name as OtherDeviceKind, xml: el, ...(guestAddress ? { guestAddress } : {}) };
}

/** Carried devices may have address types we do not model (usb, virtio-serial ...): only a pci
 *  one matters to us, the rest stay in the carried XML. */
function parseGuestAddressLoose(el: XmlElement): ReturnType<typeof parseGuestAddress> | undefined {
  const type = attr(el, 'type');
  return type === 'pci' || type === 'drive' ? parseGuestAddress(el) : undefined;
}

/** libvirt gives a controller without an index the first index not used by its type. */
function numberControllers(list: readonly ControllerDef[]): ControllerDef[] {
  const used = new Map<string, Set<number>>();
  const usedBy = (type: string): Set<number> => {
    const set = used.get(type) ?? new Set<number>();
    used.set(type, set);
    return set;
  };
  for (const c of list) if (c.index >= 0) usedBy(c.type).add(c.index);
  return list.map((c) => {
    if (c.index >= 0) return c;
    const set = usedBy(c.type);
    let i = 0;
    while (set.has(i)) i++;
    set.add(i);
    return { ...c, index: i };
  });
}
