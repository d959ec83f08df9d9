import { open, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { PassthruError } from '../conf/error.ts';
import type { BackingStoreDef, DiskDef, DomainDef, ImageFormat } from '../conf/domain/types.ts';

/**
 * Disk images as the host has them: each image is checked to exist, and a qcow2's backing chain
 * is read from its header, so the live definition shows the chain (as libvirt does) and QEMU is
 * told every node instead of probing.
 *
 * The header is read here rather than through `qemu-img info --backing-chain`: a start then
 * costs a few small reads instead of a process per disk, needs no qemu-utils on the host, and
 * every fault (a missing backing file, a loop, a header that names no backing format) is one of
 * our errors naming the disk and the image, not qemu-img's text. The qcow2 header layout is
 * QEMU's docs/interop/qcow2.txt.
 */

const QCOW2_MAGIC = 0x514649fb; // 'QFI\xfb'
const EXT_END = 0;
const EXT_BACKING_FORMAT = 0xe2792aca;
/** A longer chain is a loop or a mistake (libvirt stops at 200 too). */
const MAX_DEPTH = 200;
const HEADER_BYTES = 4096;

export interface Qcow2Header {
  readonly version: number;
  readonly virtualSize: bigint;
  /** As written in the image: relative paths are relative to the image's directory. */
  readonly backingFile?: string;
  readonly backingFormat?: string;
}

/** Parses the first bytes of a qcow2 image; undefined when it is not qcow2 (no magic). */
export function parseQcow2Header(buf: Buffer): Qcow2Header | undefined {
  if (buf.length < 72 || buf.readUInt32BE(0) !== QCOW2_MAGIC) return undefined;
  const version = buf.readUInt32BE(4);
  const backingOffset = Number(buf.readBigUInt64BE(8));
  const backingSize = buf.readUInt32BE(16);
  const virtualSize = buf.readBigUInt64BE(24);
  let backingFile: string | undefined;
  if (backingOffset > 0 && backingSize > 0 && backingOffset + backingSize <= buf.length) {
    backingFile = buf.subarray(backingOffset, backingOffset + backingSize).toString('utf8');
  }
  let backingFormat: string | undefined;
  // Header extensions follow the header: at 72 in version 2, at header_length in version 3.
  let at = version >= 3 && buf.length >= 104 ? buf.readUInt32BE(100) : 72;
  while (at + 8 <= buf.length) {
    const type = buf.readUInt32BE(at);
    const len = buf.readUInt32BE(at + 4);
    if (type === EXT_END) break;
    if (type === EXT_BACKING_FORMAT && at + 8 + len <= buf.length) {
      backingFormat = buf.subarray(at + 8, at + 8 + len).toString('utf8');
    }
    at += 8 + Math.ceil(len / 8) * 8;
  }
  return {
    version,
    virtualSize,
    ...(backingFile === undefined ? {} : { backingFile }),
    ...(backingFormat === undefined ? {} : { backingFormat }),
  };
}

async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await fh.read(buf, 0, HEADER_BYTES, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** The image must be there and be what the disk's type says (a file, a block device). */
async function checkImage(path: string, type: 'file' | 'block', what: string): Promise<void> {
  const st = await stat(path).catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PassthruError(
      'NO_DEVICE',
      `${what}: image ${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(err)})`}`,
    );
  });
  if (type === 'block' && !st.isBlockDevice()) {
    throw new PassthruError('INVALID_ARG', `${what}: ${path} is not a block device`, {
      hint: "use <disk type='file'> with <source file=.../> for an image file",
    });
  }
  if (type === 'file' && !st.isFile()) {
    throw new PassthruError('INVALID_ARG', `${what}: ${path} is not a regular file`);
  }
}

/**
 * One disk's chain below its top image, read from the images. A raw image ends the chain. The
 * top must exist; so must every backing file, and each must say its format (libvirt >= 6.0
 * refuses to probe it too: a raw image could otherwise claim to be qcow2 and reach any file).
 */
export async function readBackingChain(disk: DiskDef, domain: string): Promise<BackingStoreDef | 'none'> {
  const what = `disk ${disk.target.dev} of domain ${domain}`;
  const top = disk.source;
  if (top === undefined) return 'none';
  await checkImage(top, disk.type, what);
  const seen = new Set<string>([await realpath(top)]);
  const chain: { type: 'file' | 'block'; format: ImageFormat; path: string }[] = [];
  let path = top;
  let format: ImageFormat = disk.format ?? 'raw';
  for (let depth = 0; format === 'qcow2'; depth++) {
    const header = parseQcow2Header(await readHead(path));
    if (header === undefined) {
      throw new PassthruError('INVALID_ARG', `${what}: image ${path} is not a qcow2 image`, {
        hint: "say <driver name='qemu' type='raw'/> if it is raw",
      });
    }
    if (header.backingFile === undefined) break;
    if (depth >= MAX_DEPTH)
      throw new PassthruError('INVALID_ARG', `${what}: the backing chain is deeper than ${MAX_DEPTH} images`);
    const file = header.backingFile;
    if (/^[a-z]+:/.test(file) && !file.startsWith('/')) {
      throw new PassthruError(
        'CONFIG_UNSUPPORTED',
        `${what}: image ${path} has backing '${file}', which is not a local file`,
      );
    }
    const backing = isAbsolute(file) ? file : resolve(dirname(path), file);
    if (header.backingFormat !== 'raw' && header.backingFormat !== 'qcow2') {
      throw new PassthruError(
        'INVALID_ARG',
        header.backingFormat === undefined
          ? `${what}: image ${path} does not say the format of its backing file ${backing}`
          : `${what}: backing file ${backing} of ${path} is '${header.backingFormat}', not raw or qcow2`,
        { hint: `write it into the image: qemu-img rebase -u -F qcow2 -b ${backing} ${path}` },
      );
    }
    const st = await stat(backing).catch(() => undefined);
    if (st === undefined) {
      throw new PassthruError('NO_DEVICE', `${what}: backing file ${backing} of image ${path} does not exist`);
    }
    const real = await realpath(backing);
    if (seen.has(real))
      throw new PassthruError('INVALID_ARG', `${what}: image ${backing} appears twice in its backing chain`);
    seen.add(real);
    chain.push({ type: st.isBlockDevice() ? 'block' : 'file', format: header.backingFormat, path: backing });
    path = backing;
    format = header.backingFormat;
  }
  let out: BackingStoreDef | 'none' = 'none';
  for (const b of chain.reverse()) out = { ...b, backingStore: out };
  return out;
}

/** The definition with every disk's backing chain read from its images (those not given). */
export async function withBackingChains(def: DomainDef): Promise<DomainDef> {
  const disks = def.devices.disks;
  if (disks === undefined) return def;
  const out = await Promise.all(
    disks.map(async (d) => {
      if ('xml' in d || d.backingStore !== undefined) return d;
      return { ...d, backingStore: await readBackingChain(d, def.name) };
    }),
  );
  return { ...def, devices: { ...def.devices, disks: out } };
}

/** Every image a definition's disks open, by real path, and whether QEMU writes to it. */
export async function diskImages(def: DomainDef): Promise<Map<string, { disk: string; writable: boolean }>> {
  const images = new Map<string, { disk: string; writable: boolean }>();
  for (const d of def.devices.disks ?? []) {
    if ('xml' in d || d.source === undefined) continue;
    const add = async (path: string, writable: boolean): Promise<void> => {
      const real = await realpath(path).catch(() => path);
      const was = images.get(real);
      images.set(real, { disk: d.target.dev, writable: writable || (was?.writable ?? false) });
    };
    await add(d.source, d.readonly !== true && d.device === 'disk');
    for (let b = d.backingStore; b !== undefined && b !== 'none'; b = b.backingStore) await add(b.path, false);
  }
  return images;
}
