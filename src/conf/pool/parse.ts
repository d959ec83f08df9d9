import { parseHostdevDriver, parsePciFields } from '../domain/parse-parts.ts';
import { parseSelector } from '../network/parse.ts';
import { parseUuid } from '../uuid.ts';
import { attr, children, invalid, located, rejectUnknown, requireAttr, single, yesNo } from '../xml/read.ts';
import { parseXml } from '../xml/reader.ts';
import { textOf, type XmlElement } from '../xml/tree.ts';
import type { DevicePoolDef, ResolvedDevice } from './types.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export function parseDevicePoolXml(text: string, source = 'device pool XML'): DevicePoolDef {
  const root = parseXml(text, source);
  if (root.name !== 'devicepool') throw invalid(root, `expected a <devicepool> document, not <${root.name}>`);
  rejectUnknown(root, ['managed'], ['name', 'uuid', 'driver', 'select', 'address', 'resolved']);
  const nameEl = single(root, 'name');
  const name = nameEl && textOf(nameEl);
  if (!name) throw invalid(root, 'missing device pool <name>');
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw invalid(nameEl ?? root, `pool name '${name}' may contain only letters, digits, '_', '.' and '-'`);
  }
  const def: Mutable<DevicePoolDef> = {
    name,
    managed: yesNo(root, 'managed') ?? false,
    selectors: children(root, 'select').map(parseSelector),
    addresses: children(root, 'address').map(poolAddress),
    line: root.line,
  };
  const uuid = single(root, 'uuid');
  if (uuid) def.uuid = located(uuid, () => parseUuid(textOf(uuid)));
  const driver = single(root, 'driver');
  if (driver) def.driver = parseHostdevDriver(driver);
  const resolved = single(root, 'resolved');
  if (resolved) {
    rejectUnknown(resolved, [], ['address']);
    def.resolved = children(resolved, 'address').map((a): ResolvedDevice => {
      rejectUnknown(a, ['type', 'domain', 'bus', 'slot', 'function', 'usedBy'], []);
      const usedBy = attr(a, 'usedBy');
      return { address: parsePciFields(a), line: a.line, ...(usedBy === undefined ? {} : { usedBy }) };
    });
  }
  return def;
}

function poolAddress(a: XmlElement): DevicePoolDef['addresses'][number] {
  rejectUnknown(a, ['type', 'domain', 'bus', 'slot', 'function'], []);
  const type = requireAttr(a, 'type');
  if (type !== 'pci') throw invalid(a, `a pool member is listed by PCI address: type='pci', not '${type}'`);
  return { ...parsePciFields(a), line: a.line };
}
