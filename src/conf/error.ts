/**
 * The one error type of passthru. `code` is public API: clients match on it, the daemon maps it to
 * an HTTP status in one table (daemon/api/status.ts) and the CLI renders it in one place.
 * Messages name the object in the field's words ("VF 0000:06:10.2 of PF enp6s0f0 ...").
 */
export const ERROR_CODES = [
  'XML_SYNTAX', // not well-formed XML
  'XML_INVALID', // well-formed, but not a valid definition (unknown element, bad attribute value)
  'CONFIG_UNSUPPORTED', // valid libvirt, but outside what passthru does
  'INVALID_ARG', // a bad argument: PCI address, MAC, VLAN id, name, CLI option
  'NO_DOMAIN',
  'NO_NETWORK',
  'NO_DEVICE', // a PCI function or netdev that the host does not have
  'DOMAIN_EXISTS',
  'OPERATION_INVALID', // the action is not allowed in the object's current state
  'DEVICE_IN_USE', // held by another domain
  'DEVICE_NOT_ASSIGNABLE', // bridge, IOMMU group split, not a VF ...
  'HOST_FAILED', // a write to the kernel failed (carries the errno)
  'QEMU_FAILED', // QEMU refused, exited or QMP answered an error
  'TIMEOUT',
  'STATE_CORRUPT', // a state file that cannot be read back
  'DAEMON_UNREACHABLE',
  'ACCESS_DENIED', // a change asked of the read-only socket
  'REQUEST_TOO_LARGE', // an API request body over the daemon's limit
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorDetails {
  /** What the user can do about it. */
  readonly hint?: string;
  /** Where in an input document: 1-based line and column. */
  readonly line?: number;
  readonly column?: number;
  /** The kernel's errno name for HOST_FAILED (EBUSY, ERANGE ...). */
  readonly errno?: string;
  readonly cause?: unknown;
}

export class PassthruError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly errno: string | undefined;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'PassthruError';
    this.code = code;
    this.hint = details.hint;
    this.line = details.line;
    this.column = details.column;
    this.errno = details.errno;
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/** Narrows anything thrown into a PassthruError, keeping the original as the cause. */
export function asPassthruError(err: unknown): PassthruError {
  if (err instanceof PassthruError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new PassthruError('INTERNAL', `internal error: ${message}`, { cause: err });
}
