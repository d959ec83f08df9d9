import { PassthruError } from '../error.ts';
import { formatPciAddress, type PciAddress } from '../pci-address.ts';
import { parseDevicePoolXml } from './parse.ts';
import type { DevicePoolDef } from './types.ts';

/** Rules of a device pool definition, each naming the element and its line. */
export function devicePoolProblems(def: DevicePoolDef): PassthruError[] {
  const problems: PassthruError[] = [];
  const report = (line: number | undefined, element: string, message: string): void => {
    const at = line === undefined ? `<${element}>` : `<${element}> at line ${line}`;
    problems.push(new PassthruError('XML_INVALID', `${at}: ${message}`, line === undefined ? {} : { line }));
  };
  if (def.selectors.length === 0 && def.addresses.length === 0) {
    report(
      def.line,
      'devicepool',
      `device pool '${def.name}' has no members: give <select .../> or <address .../> elements`,
    );
  }
  const check = (a: PciAddress, line: number | undefined, seen: Set<string>, element: string): void => {
    const key = formatPciAddress(a);
    if (a.domain === 0 && a.bus === 0 && a.slot === 0) {
      report(line, element, `invalid PCI address ${key}: at least one of domain, bus, or slot must be > 0`);
    }
    if (seen.has(key)) report(line, element, `PCI device '${key}' can only be listed once in device pool ${def.name}`);
    seen.add(key);
  };
  const listed = new Set<string>();
  for (const a of def.addresses) check(a, a.line, listed, 'address');
  const resolved = new Set<string>();
  for (const r of def.resolved ?? []) check(r.address, r.line, resolved, 'address');
  return problems;
}

export function readDevicePoolXml(text: string, source?: string): DevicePoolDef {
  const def = parseDevicePoolXml(text, source);
  const [first] = devicePoolProblems(def);
  if (first) throw first;
  return def;
}

export function devicePoolXmlProblems(text: string, source?: string): PassthruError[] {
  try {
    return devicePoolProblems(parseDevicePoolXml(text, source));
  } catch (err) {
    if (err instanceof PassthruError) return [err];
    throw err;
  }
}
