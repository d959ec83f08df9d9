import { PassthruError } from './error.ts';

/** A PCI function's address: domain:bus:slot.function, as the kernel names it in sysfs. */
export interface PciAddress {
  readonly domain: number;
  readonly bus: number;
  readonly slot: number;
  readonly function: number;
}

const LIMITS = { domain: 0xffffffff, bus: 0xff, slot: 0x1f, function: 7 } as const;

function bad(text: string, why: string): PassthruError {
  return new PassthruError('INVALID_ARG', `invalid PCI address '${text}': ${why}`, {
    hint: "write it as DDDD:BB:SS.F, for example '0000:06:10.2'",
  });
}

/** Parses "0000:06:10.2", "06:10.2" (domain 0) or the node-device name "pci_0000_06_10_2". */
export function parsePciAddress(text: string): PciAddress {
  const m =
    /^(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$/.exec(text) ??
    /^pci_([0-9a-fA-F]{4,8})_([0-9a-fA-F]{2})_([0-9a-fA-F]{2})_([0-7])$/.exec(text);
  if (!m) throw bad(text, 'not of the form DDDD:BB:SS.F');
  return checkPciAddress(
    {
      domain: Number.parseInt(m[1] ?? '0', 16),
      bus: Number.parseInt(m[2] ?? '', 16),
      slot: Number.parseInt(m[3] ?? '', 16),
      function: Number.parseInt(m[4] ?? '', 16),
    },
    text,
  );
}

/** Range checks as libvirt's virPCIDeviceAddressIsValid (bus <= 0xff, slot <= 0x1f, function <= 7). */
export function checkPciAddress(a: PciAddress, text = formatPciAddress(a)): PciAddress {
  for (const key of ['domain', 'bus', 'slot', 'function'] as const) {
    const v = a[key];
    if (!Number.isInteger(v) || v < 0 || v > LIMITS[key]) {
      throw bad(text, `${key} ${v} is out of range 0..0x${LIMITS[key].toString(16)}`);
    }
  }
  return a;
}

export function formatPciAddress(a: PciAddress): string {
  const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');
  return `${hex(a.domain, 4)}:${hex(a.bus, 2)}:${hex(a.slot, 2)}.${a.function.toString(16)}`;
}

/** libvirt's node-device name: pci_0000_06_10_2. */
export function pciNodeDeviceName(a: PciAddress): string {
  return `pci_${formatPciAddress(a).replace(/[:.]/g, '_')}`;
}

export function samePciAddress(a: PciAddress, b: PciAddress): boolean {
  return a.domain === b.domain && a.bus === b.bus && a.slot === b.slot && a.function === b.function;
}
