import { hostdevDriverOut, pciAttrs } from '../domain/format-parts.ts';
import type { FormatFlags } from '../format-flags.ts';
import { selectorOut } from '../network/format.ts';
import { out, outText } from '../xml/tree.ts';
import { formatXml } from '../xml/writer.ts';
import type { DevicePoolDef } from './types.ts';

/** The resolved members are host state: written in live and status XML, never inactive. */
export function formatDevicePoolXml(def: DevicePoolDef, flags: FormatFlags = {}): string {
  const resolved = !flags.inactive && def.resolved;
  return formatXml(
    out(
      'devicepool',
      [
        ['managed', def.managed ? 'yes' : 'no'],
        ['quarantine', def.quarantine === undefined ? undefined : def.quarantine ? 'yes' : 'no'],
      ],
      [
        outText('name', def.name),
        def.uuid !== undefined && outText('uuid', def.uuid),
        hostdevDriverOut(def.driver),
        ...def.selectors.map(selectorOut),
        ...def.addresses.map((a) => out('address', [['type', 'pci'], ...pciAttrs(a), ['tags', a.tags?.join(',')]])),
        resolved &&
          out(
            'resolved',
            [],
            resolved.map((r) => out('address', [['type', 'pci'], ...pciAttrs(r.address), ['usedBy', r.usedBy]])),
          ),
      ],
    ),
  );
}
