import type { PassthruError } from '../error.ts';
import { formatPciAddress, type PciAddress } from '../pci-address.ts';
import { collectProblems, problemsOf, type Report, withoutProblems } from '../problems.ts';
import { parseDevicePoolXml } from './parse.ts';
import type { DevicePoolDef } from './types.ts';

/** Rules of a device pool definition, each naming the element and its line. */
function devicePoolProblems(def: DevicePoolDef): PassthruError[] {
  return collectProblems((report) => {
    if (def.selectors.length === 0 && def.addresses.length === 0) {
      report(
        def.line,
        'devicepool',
        `device pool '${def.name}' has no members: give <select .../> or <address .../> elements`,
      );
    }
    checkListedOnce(def.name, def.addresses, report);
    checkListedOnce(def.name, def.resolved?.map((r) => ({ ...r.address, line: r.line })) ?? [], report);
  });
}

function checkListedOnce(
  pool: string,
  list: readonly (PciAddress & { readonly line?: number | undefined })[],
  report: Report,
): void {
  const seen = new Set<string>();
  for (const a of list) {
    const key = formatPciAddress(a);
    if (a.domain === 0 && a.bus === 0 && a.slot === 0) {
      report(a.line, 'address', `invalid PCI address ${key}: at least one of domain, bus, or slot must be > 0`);
    }
    if (seen.has(key)) report(a.line, 'address', `PCI device '${key}' can only be listed once in device pool ${pool}`);
    seen.add(key);
  }
}

export function readDevicePoolXml(text: string, source?: string): DevicePoolDef {
  const def = parseDevicePoolXml(text, source);
  return withoutProblems(def, devicePoolProblems(def));
}

export function devicePoolXmlProblems(text: string, source?: string): PassthruError[] {
  return problemsOf(() => devicePoolProblems(parseDevicePoolXml(text, source)));
}
