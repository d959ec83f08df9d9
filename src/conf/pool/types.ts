import type { HostdevDriver } from '../domain/types.ts';
import type { DeviceSelector } from '../network/types.ts';
import type { PciAddress } from '../pci-address.ts';
import type { Uuid } from '../uuid.ts';

/**
 * [seed] A generalised device pool: any PCI devices (GPUs, NVMe VFs, accelerators), chosen by
 * selectors and/or listed by address, from which a `<hostdev><source pool='NAME'/></hostdev>`
 * takes one device at start. Syntax in docs/conf-pools.md.
 */
export interface DevicePoolDef {
  readonly name: string;
  readonly uuid?: Uuid;
  /** Bind members to vfio-pci when they are handed out (like `<hostdev managed='yes'>`). */
  readonly managed: boolean;
  /** [beyond] `quarantine='yes'`: a device given back is reset and held out of the pool until an
   *  operator releases it (`passthru nodedev-release`), like Nova's one_time_use. */
  readonly quarantine?: boolean;
  readonly driver?: HostdevDriver;
  readonly selectors: readonly DeviceSelector[];
  readonly addresses: readonly PoolAddress[];
  /** Live/status only: the devices the pool resolved to on this host, and who holds each. */
  readonly resolved?: readonly ResolvedDevice[];
  readonly line?: number;
}

/** An explicit member, optionally tagged (`tags='migratable'`) for requests that require tags. */
export type PoolAddress = PciAddress & { readonly tags?: readonly string[]; readonly line?: number };

export interface ResolvedDevice {
  readonly address: PciAddress;
  /** The domain holding the device, if any. */
  readonly usedBy?: string;
  readonly line?: number;
}
