import { attr, invalid, rejectUnknown } from '../xml/read.ts';
import { childElements, type OutElement, textOf, type XmlElement } from '../xml/tree.ts';

/**
 * Elements passthru carries for libvirt compatibility without interpreting them (disks, inputs,
 * video, cpu, clock ...). They are still checked against an allow-list of attributes and
 * children, so a misspelt or unsupported setting is refused with its name and line instead of
 * being dropped, and they are written back as they came.
 */
export interface Shape {
  readonly attrs: readonly string[];
  readonly children?: Readonly<Record<string, Shape>>;
  /** Whether the element carries text. */
  readonly text?: boolean;
}

const leaf = (...attrs: string[]): Shape => ({ attrs });
const textLeaf = (...attrs: string[]): Shape => ({ attrs, text: true });

const ADDRESS = leaf(
  'type',
  'domain',
  'bus',
  'slot',
  'function',
  'multifunction',
  'controller',
  'target',
  'unit',
  'port',
  'reg',
  'cssid',
  'ssid',
  'devno',
  'iobase',
  'irq',
);
const DEVICE_INFO = { address: ADDRESS, alias: leaf('name'), boot: leaf('order', 'loadparm') };

const DISK_SOURCE: Shape = {
  attrs: ['file', 'dev', 'dir', 'protocol', 'name', 'pool', 'volume', 'mode', 'startupPolicy', 'index'],
  children: { host: leaf('name', 'port', 'transport', 'socket') },
};

/** A backing chain nests itself. */
const BACKING_STORE: { attrs: readonly string[]; children: Record<string, Shape> } = {
  attrs: ['type', 'index'],
  children: { format: leaf('type'), source: DISK_SOURCE },
};
BACKING_STORE.children['backingStore'] = BACKING_STORE;

export const OTHER_DEVICE_SHAPES: Readonly<Record<string, Shape>> = {
  disk: {
    attrs: ['type', 'device', 'snapshot', 'model', 'rawio', 'sgio'],
    children: {
      driver: leaf('name', 'type', 'cache', 'io', 'discard', 'error_policy', 'iothread', 'queues', 'detect_zeroes'),
      source: DISK_SOURCE,
      backingStore: BACKING_STORE,
      auth: { attrs: ['username'], children: { secret: leaf('type', 'usage', 'uuid') } },
      target: leaf('dev', 'bus', 'tray', 'removable', 'rotation_rate'),
      serial: textLeaf(),
      wwn: textLeaf(),
      readonly: leaf(),
      shareable: leaf(),
      transient: leaf(),
      ...DEVICE_INFO,
    },
  },
  filesystem: {
    attrs: ['type', 'accessmode', 'model', 'multidevs', 'fmode', 'dmode'],
    children: {
      driver: leaf('type', 'format', 'wrpolicy', 'queue'),
      source: leaf('dir', 'file', 'name', 'socket', 'usage', 'units'),
      target: leaf('dir'),
      readonly: leaf(),
      ...DEVICE_INFO,
    },
  },
  input: {
    attrs: ['type', 'bus', 'model'],
    children: {
      source: leaf('evdev', 'dev', 'grab', 'repeat', 'grabToggle'),
      driver: leaf('iommu', 'ats'),
      ...DEVICE_INFO,
    },
  },
  graphics: {
    attrs: ['type', 'port', 'autoport', 'listen', 'passwd', 'keymap', 'websocket', 'display', 'xauth', 'fullscreen'],
    children: { listen: leaf('type', 'address', 'network', 'socket'), gl: leaf('enable', 'rendernode') },
  },
  sound: { attrs: ['model'], children: { codec: leaf('type'), audio: leaf('id'), ...DEVICE_INFO } },
  audio: { attrs: ['id', 'type', 'timerPeriod'] },
  video: {
    attrs: [],
    children: {
      model: {
        attrs: ['type', 'ram', 'vram', 'vram64', 'vgamem', 'heads', 'primary'],
        children: { acceleration: leaf('accel3d', 'accel2d', 'rendernode') },
      },
      driver: leaf('name', 'vgaconf'),
      ...DEVICE_INFO,
    },
  },
  memballoon: {
    attrs: ['model', 'autodeflate', 'freePageReporting'],
    children: { stats: leaf('period'), driver: leaf('iommu', 'ats', 'packed'), ...DEVICE_INFO },
  },
  channel: {
    attrs: ['type'],
    children: {
      source: leaf('mode', 'path', 'channel'),
      target: leaf('type', 'name', 'state', 'address', 'port'),
      alias: leaf('name'),
      address: ADDRESS,
    },
  },
  tpm: {
    attrs: ['model'],
    children: {
      backend: { attrs: ['type', 'version', 'persistent_state'], children: { device: leaf('path') } },
      ...DEVICE_INFO,
    },
  },
  redirdev: { attrs: ['bus', 'type'], children: { ...DEVICE_INFO } },
  hub: { attrs: ['type'], children: { ...DEVICE_INFO } },
  watchdog: { attrs: ['model', 'action'], children: { ...DEVICE_INFO } },
  panic: { attrs: ['model'], children: { ...DEVICE_INFO } },
  iommu: {
    attrs: ['model'],
    children: {
      driver: leaf('intremap', 'caching_mode', 'eim', 'iotlb', 'aw_bits', 'dma_translation'),
      ...DEVICE_INFO,
    },
  },
  vsock: { attrs: ['model'], children: { cid: leaf('auto', 'address'), ...DEVICE_INFO } },
  rng: {
    attrs: ['model'],
    children: {
      rate: leaf('bytes', 'period'),
      backend: { attrs: ['model', 'type'], text: true, children: { source: leaf('mode', 'host', 'service') } },
      driver: leaf('iommu', 'ats', 'packed'),
      ...DEVICE_INFO,
    },
  },
};

const OFFLOADS = ['csum', 'gso', 'tso4', 'tso6', 'ecn', 'ufo', 'mrg_rxbuf'];

/** virtio-net tuning on interfaces QEMU backs. */
export const VIRTIO_NET_DRIVER_SHAPE: Shape = {
  attrs: [
    'name',
    'txmode',
    'ioeventfd',
    'event_idx',
    'queues',
    'rx_queue_size',
    'tx_queue_size',
    'iommu',
    'ats',
    'packed',
    'page_per_vq',
    'rss',
    'rss_hash_report',
  ],
  children: { host: leaf(...OFFLOADS), guest: leaf(...OFFLOADS) },
};

const FEATURE_NAMES = [
  'acpi',
  'apic',
  'pae',
  'hap',
  'viridian',
  'privnet',
  'pvspinlock',
  'pmu',
  'vmport',
  'vmcoreinfo',
];

export const FEATURES_SHAPE: Shape = {
  attrs: [],
  children: {
    ...Object.fromEntries(FEATURE_NAMES.map((n) => [n, leaf('state', 'eoi')])),
    ioapic: leaf('driver'),
    smm: leaf('state'),
    kvm: { attrs: [], children: { hidden: leaf('state') } },
    hyperv: {
      attrs: ['mode'],
      children: Object.fromEntries(
        ['relaxed', 'vapic', 'spinlocks', 'vpindex', 'runtime', 'synic', 'stimer', 'reset', 'frequencies'].map((n) => [
          n,
          leaf('state', 'retries'),
        ]),
      ),
    },
  },
};

export const CPU_SHAPE: Shape = {
  attrs: ['mode', 'match', 'check', 'migratable'],
  children: {
    model: textLeaf('fallback', 'vendor_id'),
    vendor: textLeaf(),
    topology: leaf('sockets', 'dies', 'clusters', 'cores', 'threads'),
    feature: leaf('policy', 'name'),
    cache: leaf('level', 'mode'),
    numa: {
      attrs: [],
      children: { cell: leaf('id', 'cpus', 'memory', 'unit', 'memAccess', 'discard') },
    },
  },
};

/** Hugepages, locked memory, CPU pinning, NUMA placement: what SR-IOV/NFV guests carry. */
export const MEMORY_BACKING_SHAPE: Shape = {
  attrs: [],
  children: {
    hugepages: { attrs: [], children: { page: leaf('size', 'unit', 'nodeset') } },
    nosharepages: leaf(),
    locked: leaf(),
    source: leaf('type'),
    access: leaf('mode'),
    allocation: leaf('mode', 'threads'),
    discard: leaf(),
  },
};

export const CPUTUNE_SHAPE: Shape = {
  attrs: [],
  children: {
    ...Object.fromEntries(
      [
        'shares',
        'period',
        'quota',
        'global_period',
        'global_quota',
        'emulator_period',
        'emulator_quota',
        'iothread_period',
        'iothread_quota',
      ].map((n) => [n, textLeaf()]),
    ),
    vcpupin: leaf('vcpu', 'cpuset'),
    emulatorpin: leaf('cpuset'),
    iothreadpin: leaf('iothread', 'cpuset'),
    vcpusched: leaf('vcpus', 'scheduler', 'priority'),
    iothreadsched: leaf('iothreads', 'scheduler', 'priority'),
  },
};

export const NUMATUNE_SHAPE: Shape = {
  attrs: [],
  children: { memory: leaf('mode', 'nodeset', 'placement'), memnode: leaf('cellid', 'mode', 'nodeset') },
};

/** `<os>` parts passthru carries for UEFI guests. */
export const LOADER_SHAPE: Shape = { attrs: ['readonly', 'secure', 'type', 'stateless', 'format'], text: true };
export const NVRAM_SHAPE: Shape = { attrs: ['template', 'format'], text: true };

export const PM_SHAPE: Shape = {
  attrs: [],
  children: { 'suspend-to-mem': leaf('enabled'), 'suspend-to-disk': leaf('enabled') },
};

export const CLOCK_SHAPE: Shape = {
  attrs: ['offset', 'adjustment', 'basis', 'timezone'],
  children: { timer: leaf('name', 'present', 'tickpolicy', 'track', 'frequency', 'mode') },
};

/** Checks an element against its shape, recursively. Throws XML_INVALID naming the first
 *  unsupported attribute or element and its line. */
export function checkShape(el: XmlElement, shape: Shape): XmlElement {
  const kids = shape.children ?? {};
  rejectUnknown(el, shape.attrs, Object.keys(kids));
  if (!shape.text && textOf(el) !== '') throw invalid(el, `<${el.name}> does not take text`);
  for (const c of childElements(el)) {
    const s = kids[c.name];
    if (s) checkShape(c, s);
  }
  return el;
}

/** Writes a carried element back, with the document's attribute and child order. */
export function toOut(el: XmlElement): OutElement {
  const text = textOf(el);
  return {
    name: el.name,
    attrs: [...el.attrs.entries()],
    children: childElements(el).map(toOut),
    ...(text === '' ? {} : { text }),
  };
}

/** The `<address>` child of a carried device, if any, for the guest address planner. */
export function carriedAddress(el: XmlElement): XmlElement | undefined {
  return childElements(el).find((c) => c.name === 'address' && attr(c, 'type') !== undefined);
}
