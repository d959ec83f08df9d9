import type { FormatFlags } from '../format-flags.ts';
import { type OutElement, out, outText } from '../xml/tree.ts';
import { infoOut } from './format-devices.ts';
import type { BackingStoreDef, DiskDef } from './types.ts';

/**
 * A typed `<disk>` in libvirt's order (virDomainDiskDefFormat): driver, source, backingStore,
 * target, readonly, serial, then boot, alias and address. The node indexes of the chain
 * (`index=`) are runtime state: live and status XML only.
 */
export function diskOut(d: DiskDef, flags: FormatFlags): OutElement {
  const live = !flags.inactive;
  const pathAttr = d.type === 'file' ? 'file' : 'dev';
  const hasDriver = d.format !== undefined || d.cache !== undefined || d.discard !== undefined;
  return out(
    'disk',
    [
      ['type', d.type],
      ['device', d.device],
    ],
    [
      hasDriver &&
        out('driver', [
          ['name', 'qemu'],
          ['type', d.format],
          ['cache', d.cache],
          ['discard', d.discard],
        ]),
      d.source !== undefined &&
        out('source', [
          [pathAttr, d.source],
          ['index', live ? d.sourceIndex : undefined],
        ]),
      backingOut(d.backingStore, live),
      out('target', [
        ['dev', d.target.dev],
        ['bus', d.target.bus],
      ]),
      d.readonly === true && out('readonly'),
      d.serial !== undefined && outText('serial', d.serial),
      ...infoOut(d, flags),
    ],
  );
}

function backingOut(b: BackingStoreDef | 'none' | undefined, live: boolean): OutElement | undefined {
  if (b === undefined) return undefined;
  if (b === 'none') return out('backingStore');
  return out(
    'backingStore',
    [
      ['type', b.type],
      ['index', live ? b.index : undefined],
    ],
    [
      out('format', [['type', b.format]]),
      out('source', [[b.type === 'file' ? 'file' : 'dev', b.path]]),
      backingOut(b.backingStore ?? 'none', live),
    ],
  );
}
