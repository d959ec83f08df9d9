import { formatPciAddress, type PciAddress } from '../pci-address.ts';
import type { DeviceSelector } from './types.ts';

/** What a selector looks at, filled by whoever knows the host (the inventory). */
export interface SelectableDevice {
  readonly address: PciAddress;
  readonly vendor: number;
  readonly device: number;
  /** The host driver bound now, if any. */
  readonly driver?: string;
  /** For a VF: its PF's netdev name and its index among the PF's VFs. */
  readonly pf?: string;
  /** For a VF: its PF's PCI address ("0000:06:00.0"), which a selector may name instead. */
  readonly pfAddress?: string;
  readonly vfIndex?: number;
  readonly numaNode?: number;
}

/** All the selector's given properties must match. */
export function selectorMatches(s: DeviceSelector, d: SelectableDevice): boolean {
  if (s.vendor !== undefined && s.vendor !== d.vendor) return false;
  if (s.device !== undefined && s.device !== d.device) return false;
  if (s.driver !== undefined && s.driver !== d.driver) return false;
  if (s.numaNode !== undefined && s.numaNode !== d.numaNode) return false;
  if (s.pf !== undefined) {
    if (s.pf !== d.pf && s.pf !== d.pfAddress) return false;
    if (s.vfs !== undefined) {
      const i = d.vfIndex;
      if (i === undefined || !s.vfs.some(([lo, hi]) => i >= lo && i <= hi)) return false;
    }
  }
  return true;
}

/** The devices that match any selector, in the order given, each once. */
export function selectDevices(
  selectors: readonly DeviceSelector[],
  devices: readonly SelectableDevice[],
): SelectableDevice[] {
  const seen = new Set<string>();
  return devices.filter((d) => {
    const key = formatPciAddress(d.address);
    if (seen.has(key) || !selectors.some((s) => selectorMatches(s, d))) return false;
    seen.add(key);
    return true;
  });
}
