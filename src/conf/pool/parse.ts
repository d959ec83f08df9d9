import {
  checkPoolName,
  parseHostdevDriver,
  parsePciFields,
  parseTags,
  parseUuidElement,
} from '../domain/parse-parts.ts';
import type { PciAddress } from '../pci-address.ts';
import { parseSelector } from '../network/parse.ts';
import {
  attr,
  children,
  invalid,
  leafText,
  type Mutable,
  rejectUnknown,
  requireAttr,
  single,
  yesNo,
} from '../xml/read.ts';
import { parseXml } from '../xml/reader.ts';
import type { XmlElement } from '../xml/tree.ts';
import type { DevicePoolDef, PoolAddress, ResolvedDevice } from './types.ts';

export function parseDevicePoolXml(text: string, source = 'device pool XML'): DevicePoolDef {
  const root = parseXml(text, source);
  if (root.name !== 'devicepool') throw invalid(root, `expected a <devicepool> document, not <${root.name}>`);
  rejectUnknown(root, ['managed', 'quarantine'], ['name', 'uuid', 'driver', 'select', 'address', 'resolved']);
  const nameEl = single(root, 'name');
  const name = nameEl && leafText(nameEl);
  if (!name) throw invalid(root, 'missing device pool <name>');
  checkPoolName(nameEl, name);
  const def: Mutable<DevicePoolDef> = {
    name,
    managed: yesNo(root, 'managed') ?? false,
    selectors: children(root, 'select').map(parseSelector),
    addresses: children(root, 'address').map(memberAddress),
    line: root.line,
  };
  const quarantine = yesNo(root, 'quarantine');
  if (quarantine !== undefined) def.quarantine = quarantine;
  const uuid = single(root, 'uuid');
  if (uuid) def.uuid = parseUuidElement(uuid);
  const driver = single(root, 'driver');
  if (driver) def.driver = parseHostdevDriver(driver);
  const resolved = single(root, 'resolved');
  if (resolved) {
    rejectUnknown(resolved, [], ['address']);
    def.resolved = children(resolved, 'address').map((a): ResolvedDevice => {
      const { line, ...address } = poolAddress(a, ['usedBy']);
      const usedBy = attr(a, 'usedBy');
      return { address, line, ...(usedBy === undefined ? {} : { usedBy }) };
    });
  }
  return def;
}

function memberAddress(a: XmlElement): PoolAddress {
  const address = poolAddress(a, ['tags']);
  const tags = attr(a, 'tags');
  return tags === undefined ? address : { ...address, tags: parseTags(a, tags) };
}

function poolAddress(a: XmlElement, extraAttrs: readonly string[] = []): PciAddress & { line: number } {
  rejectUnknown(a, ['type', 'domain', 'bus', 'slot', 'function', ...extraAttrs], []);
  const type = requireAttr(a, 'type');
  if (type !== 'pci') throw invalid(a, `a pool member is listed by PCI address: type='pci', not '${type}'`);
  return { ...parsePciFields(a), line: a.line };
}
