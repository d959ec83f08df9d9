/**
 * What a formatter writes, like libvirt's VIR_DOMAIN_DEF_FORMAT_* / VIR_NETWORK_XML_* flags.
 * - inactive: the persistent definition. No runtime aliases (only user `ua-` ones), no actual
 *   device a network allocated, host-independent.
 * - live (the default when nothing is set): what a running object looks like to its users:
 *   aliases, and an interface of type network shown as the device it got.
 * - status: the daemon's own record of a running object: the original definition plus
 *   `<actual>` children, so that it can be read back after a daemon restart.
 * - migratable: what is sent to the destination host: like inactive (no device a network or a
 *   device pool gave on this host: the destination takes its own), but with runtime aliases kept
 *   (QEMU on the destination needs the same device ids).
 */
export interface FormatFlags {
  readonly inactive?: boolean;
  readonly live?: boolean;
  readonly status?: boolean;
  readonly migratable?: boolean;
}

/** Runtime aliases are written except in the inactive definition. User aliases always. */
export function writesAlias(flags: FormatFlags, alias: string | undefined): boolean {
  if (alias === undefined) return false;
  return alias.startsWith('ua-') || !flags.inactive;
}

/** An allocated actual device is presented as what it is in live XML only. */
export function writesActualAsDevice(flags: FormatFlags): boolean {
  return !flags.inactive && !flags.status && !flags.migratable;
}
