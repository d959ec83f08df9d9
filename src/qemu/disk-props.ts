import { PassthruError } from '../conf/error.ts';
import { typedDisks } from '../conf/domain/disk.ts';
import type { BackingStoreDef, DiskCache, DiskDef, DomainDef } from '../conf/domain/types.ts';
import { childElements, type XmlElement } from '../conf/xml/tree.ts';
import { addressProps, type BusAliases, type DeviceProps, type PropValue, requireAlias } from './device-props.ts';

/**
 * Disks on QEMU's command line as libvirt >= 5.10 writes them: each image of a chain is two
 * `-blockdev` nodes, `libvirt-N-storage` (the file or block device) under `libvirt-N-format`
 * (raw or qcow2, whose `backing` names the next image's format node), then the guest device.
 * Keys come in libvirt's order (qemuBlockStorageSourceGetBackendProps and
 * qemuBlockStorageSourceGetBlockdevFormatProps, qemuBuildDiskDeviceProps).
 */

type Json = Record<string, unknown>;

/** One image of a disk's chain with its node index, top first. */
interface Layer {
  readonly type: 'file' | 'block';
  readonly path: string;
  readonly format: 'raw' | 'qcow2';
  readonly index: number;
  readonly readonly: boolean;
  readonly backing: BackingStoreDef | 'none' | undefined;
}

/**
 * Gives every image of every disk its node index, as libvirt's qemuProcessPrepareDomainStorage
 * does: disks from the last to the first, each chain from its top down, counting from 1. Indexes
 * already there (a live definition) are kept, so this can run on its own output.
 */
export function assignNodeIndexes(def: DomainDef): DomainDef {
  const disks = def.devices.disks;
  if (disks === undefined) return def;
  if (typedDisks(def.devices).some((d) => d.sourceIndex !== undefined)) return def;
  let next = 1;
  const chain = (b: BackingStoreDef | 'none' | undefined): BackingStoreDef | 'none' | undefined => {
    if (b === undefined || b === 'none') return b;
    const index = next++;
    return { ...b, index, backingStore: chain(b.backingStore) ?? 'none' };
  };
  const out = [...disks];
  for (let i = out.length - 1; i >= 0; i--) {
    const d = out[i];
    if (d === undefined) continue;
    if ('xml' in d) {
      // A disk passthru does not run still holds libvirt's numbers (the definition is refused at
      // start; this keeps the numbering of libvirt's test data).
      next += carriedImages(d.xml);
      continue;
    }
    if (d.source === undefined) continue;
    const sourceIndex = next++;
    const backingStore = chain(d.backingStore);
    out[i] = { ...d, sourceIndex, ...(backingStore === undefined ? {} : { backingStore }) };
  }
  return { ...def, devices: { ...def.devices, disks: out } };
}

/** Images of a carried disk: its source and each described `<backingStore>` under it. */
function carriedImages(el: XmlElement): number {
  const kids = childElements(el);
  const source = kids.find((c) => c.name === 'source');
  if (el.name === 'disk' && source === undefined) return 0;
  // An SD card is not a -blockdev disk in libvirt (qemuDiskBusIsSD): it gets no node.
  if (kids.some((c) => c.name === 'target' && c.attrs.get('bus') === 'sd')) return 0;
  const backing = kids.find((c) => c.name === 'backingStore' && c.attrs.has('type'));
  return 1 + (backing ? carriedImages(backing) : 0);
}

function layers(d: DiskDef): Layer[] {
  if (d.source === undefined) return [];
  const top = requireIndex(d.sourceIndex, d);
  const out: Layer[] = [
    {
      type: d.type,
      path: d.source,
      format: d.format ?? 'raw',
      index: top,
      readonly: d.readonly === true || d.device === 'cdrom',
      backing: d.backingStore,
    },
  ];
  for (let b = d.backingStore; b !== undefined && b !== 'none'; b = b.backingStore) {
    out.push({
      type: b.type,
      path: b.path,
      format: b.format,
      index: requireIndex(b.index, d),
      readonly: true,
      backing: b.backingStore ?? 'none',
    });
  }
  return out;
}

function requireIndex(i: number | undefined, d: DiskDef): number {
  if (i === undefined) {
    throw new PassthruError('INTERNAL', `disk ${d.target.dev} reached the command line without node indexes`);
  }
  return i;
}

const CACHE: Readonly<Record<Exclude<DiskCache, 'default'>, { direct: boolean; noFlush: boolean; wce: boolean }>> = {
  none: { direct: true, noFlush: false, wce: true },
  writeback: { direct: false, noFlush: false, wce: true },
  writethrough: { direct: false, noFlush: false, wce: false },
  directsync: { direct: true, noFlush: false, wce: false },
  unsafe: { direct: false, noFlush: true, wce: true },
};

function cacheObject(d: DiskDef): Json | undefined {
  const c = d.cache === undefined || d.cache === 'default' ? undefined : CACHE[d.cache];
  return c === undefined ? undefined : { direct: c.direct, 'no-flush': c.noFlush };
}

/** The `-blockdev` arguments of a disk, the bottom of its chain first. An empty cdrom has none. */
export function blockdevArgs(d: DiskDef): string[] {
  const cache = cacheObject(d);
  const args: string[] = [];
  for (const l of layers(d).reverse()) {
    const storage: Json = {
      driver: l.type === 'file' ? 'file' : d.device === 'cdrom' ? 'host_cdrom' : 'host_device',
      filename: l.path,
      'node-name': `libvirt-${l.index}-storage`,
    };
    if (cache) storage['cache'] = cache;
    storage['auto-read-only'] = true;
    storage['discard'] = 'unmap';
    const format: Json = { 'node-name': formatNode(l.index), 'read-only': l.readonly };
    if (d.discard !== undefined) format['discard'] = d.discard;
    if (cache) format['cache'] = cache;
    format['driver'] = l.format;
    format['file'] = `libvirt-${l.index}-storage`;
    // Only a format that can have a backing file says whether it has one; 'none' (the chain was
    // read and ends here) stops QEMU from opening a backing file the header might name.
    if (l.format === 'qcow2' && l.backing !== undefined) {
      format['backing'] = l.backing === 'none' ? null : formatNode(requireIndex(l.backing.index, d));
    }
    args.push(JSON.stringify(storage), JSON.stringify(format));
  }
  return args;
}

function formatNode(index: number): string {
  return `libvirt-${index}-format`;
}

/** The guest device of a disk. `bootindex` is its own `<boot order>` or what `<os><boot dev>`
 *  gave it (diskBootIndexes). */
export function diskDeviceProps(d: DiskDef, buses: BusAliases, bootindex: number | undefined): DeviceProps {
  const id = requireAlias(d, 'disk');
  const cdrom = d.device === 'cdrom';
  const p: Record<string, PropValue> = {};
  const drive = d.guestAddress?.type === 'drive' ? d.guestAddress : undefined;
  switch (d.target.bus) {
    case 'virtio':
      if (cdrom) throw new PassthruError('XML_INVALID', `disk ${d.target.dev}: a cdrom cannot be on bus 'virtio'`);
      p['driver'] = 'virtio-blk-pci';
      Object.assign(p, addressProps(d.guestAddress, buses, id));
      break;
    case 'ide':
      p['driver'] = cdrom ? 'ide-cd' : 'ide-hd';
      p['bus'] = `ide.${drive?.bus ?? 0}`;
      p['unit'] = drive?.unit ?? 0;
      break;
    case 'sata':
      // q35's built-in AHCI controller is QEMU's 'ide': its ports are buses ide.0 to ide.5.
      p['driver'] = cdrom ? 'ide-cd' : 'ide-hd';
      p['bus'] = `ide.${drive?.unit ?? 0}`;
      break;
    case 'scsi':
      p['driver'] = cdrom ? 'scsi-cd' : 'scsi-hd';
      p['bus'] = `scsi${drive?.controller ?? 0}.0`;
      p['channel'] = drive?.bus ?? 0;
      p['scsi-id'] = drive?.target ?? 0;
      p['lun'] = drive?.unit ?? 0;
      p['device_id'] = `drive-${id}`;
      break;
  }
  if (d.source !== undefined) p['drive'] = formatNode(requireIndex(d.sourceIndex, d));
  p['id'] = id;
  if (bootindex !== undefined) p['bootindex'] = bootindex;
  const c = d.cache === undefined || d.cache === 'default' ? undefined : CACHE[d.cache];
  if (c) p['write-cache'] = c.wce ? 'on' : 'off';
  // libvirt escapes spaces in the serial (qemuBuildDiskDeviceProps: virBufferEscape(' ')).
  if (d.serial !== undefined) p['serial'] = d.serial.replaceAll(' ', '\\ ');
  return p as DeviceProps;
}

/**
 * Per-disk boot indexes: a disk's own `<boot order>`; else, with `<os><boot dev=...>`, the first
 * disk gets the position of 'hd' and the first cdrom that of 'cdrom' (libvirt turns the old
 * boot list into bootindex this way: qemuProcessPrepareDomainDiskBootorder).
 */
export function diskBootIndexes(def: DomainDef): Map<DiskDef, number> {
  const disks = typedDisks(def.devices);
  const out = new Map<DiskDef, number>();
  for (const d of disks) if (d.bootOrder !== undefined) out.set(d, d.bootOrder);
  if (out.size > 0) return out;
  for (const [i, dev] of (def.os.bootDevs ?? []).entries()) {
    const want = dev === 'hd' ? 'disk' : dev === 'cdrom' ? 'cdrom' : undefined;
    const first = want === undefined ? undefined : disks.find((d) => d.device === want);
    if (first !== undefined && !out.has(first)) out.set(first, i + 1);
  }
  return out;
}

/** The SCSI controllers disks need: libvirt adds controller N (virtio-scsi on q35) for a disk
 *  whose drive address names it and that the definition does not have. */
export function withScsiControllers(def: DomainDef): DomainDef {
  const wanted = new Set<number>();
  for (const d of typedDisks(def.devices)) {
    if (d.target.bus === 'scsi' && d.guestAddress?.type === 'drive') wanted.add(d.guestAddress.controller ?? 0);
  }
  const have = new Set(def.devices.controllers.filter((c) => c.type === 'scsi').map((c) => c.index));
  const added = [...wanted].filter((i) => !have.has(i)).sort((a, b) => a - b);
  if (added.length === 0) return def;
  const controllers = [
    ...def.devices.controllers,
    ...added.map((index) => ({ type: 'scsi' as const, index, model: 'virtio-scsi' })),
  ];
  return { ...def, devices: { ...def.devices, controllers } };
}

/** virtio-scsi-pci for a `<controller type='scsi'>`. */
export function scsiControllerProps(alias: string, address: DiskDef['guestAddress'], buses: BusAliases): DeviceProps {
  return { driver: 'virtio-scsi-pci', id: alias, ...addressProps(address, buses, alias) };
}
