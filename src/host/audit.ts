import { AsyncLocalStorage } from 'node:async_hooks';
import { asPassthruError } from '../conf/error.ts';

/**
 * The audit trail of what the daemon changed on the host: one entry per change (a sysfs write,
 * a VF attribute, a port request, a module load, a QEMU started or stopped), with the domain it
 * was made for and the state before and after. Host writes are recorded by a decorator around
 * the Kernel (audit-kernel.ts), so no write can be forgotten; QEMU by the daemon.
 */
export interface AuditEntry {
  /** ISO 8601, UTC. */
  readonly time: string;
  /** The daemon's action that made the change ('start', 'nodedevSriov'), or the background work
   *  ('guest-exit', 'guest-event', 'daemon-start', 'autostart'). */
  readonly operation?: string;
  readonly action: AuditAction;
  readonly domain?: string;
  /** The PCI function changed (DDDD:BB:SS.F): the VF for a VF attribute, the PF for a VF count. */
  readonly device?: string;
  /** What was changed besides the device: the driver bound, "PF eth0 VF 3", the QEMU pid. */
  readonly detail?: string;
  readonly before?: unknown;
  readonly after?: unknown;
  readonly result: 'ok' | 'failed';
  /** Why it failed, the error's own sentence. */
  readonly error?: string;
}

export type AuditAction =
  | 'bind'
  | 'unbind'
  | 'probe'
  | 'driver-override'
  | 'vf-count'
  | 'vf-autoprobe'
  | 'reset'
  | 'vf-attribute'
  | 'port-profile'
  | 'load-module'
  | 'sysfs-write'
  | 'qemu-start'
  | 'qemu-stop';

/** Whose change it is: the daemon's operation in progress, carried through every await. */
export interface AuditScope {
  readonly operation: string;
  /** The domain the operation is for, when it is for one. */
  readonly domain?: string;
  /** An operation on the host itself (nodedev-*, pools): its changes belong to no domain. */
  readonly hostWide?: boolean;
}

const scopes = new AsyncLocalStorage<AuditScope>();

/** Runs `fn` (and everything it awaits or starts) as part of this operation. */
export function withAuditScope<T>(scope: AuditScope, fn: () => T): T {
  return scopes.run(scope, fn);
}

/** One change about to be made: what it is, and how to read its state before and after. */
export interface HostChange<T = unknown> {
  readonly action: AuditAction;
  readonly device?: string;
  readonly detail?: string;
  /** The domain, when the caller knows better than the scope (QEMU of an incoming migration). */
  readonly domain?: string;
  /** Reads the state the change acts on; called before and after it. */
  readonly read?: () => Promise<unknown>;
  /** The states, when they are not read (a port request: a read is itself an exchange). */
  readonly before?: unknown;
  readonly after?: unknown;
  /** The state after, from what the change returned (QEMU started: its pid). */
  readonly outcome?: (out: T) => unknown;
}

export interface AuditTrailOptions {
  /** Where entries go (an append-only file, audit-log.ts). */
  readonly append: (entry: AuditEntry) => Promise<void>;
  /** An entry that could not be written: the change stands, so it is reported, not thrown. */
  readonly onError: (err: unknown, entry: AuditEntry) => void;
  readonly now?: () => Date;
}

export class AuditTrail {
  readonly #o: AuditTrailOptions;
  #holder: (bdf: string) => string | undefined = () => undefined;

  constructor(o: AuditTrailOptions) {
    this.#o = o;
  }

  /** Who holds a device (the device manager's leases): the domain of a change made by work that
   *  names none, such as the journal's recovery at daemon start. */
  resolveDomainsWith(holder: (bdf: string) => string | undefined): void {
    this.#holder = holder;
  }

  /** Makes the change and records it, whatever its outcome; the change's own error is rethrown. */
  async change<T>(c: HostChange<T>, work: () => Promise<T>): Promise<T> {
    const before = c.read ? await c.read().catch(() => undefined) : c.before;
    try {
      const out = await work();
      const after = c.read ? await c.read().catch(() => undefined) : c.outcome ? c.outcome(out) : c.after;
      await this.#write(c, before, after);
      return out;
    } catch (err) {
      const after = c.read ? await c.read().catch(() => undefined) : undefined;
      await this.#write(c, before, after, err);
      throw err;
    }
  }

  async #write(c: HostChange<never>, before: unknown, after: unknown, err?: unknown): Promise<void> {
    const scope = scopes.getStore();
    const domain =
      c.domain ?? scope?.domain ?? (scope?.hostWide || c.device === undefined ? undefined : this.#holder(c.device));
    const entry: AuditEntry = {
      time: (this.#o.now?.() ?? new Date()).toISOString(),
      ...(scope ? { operation: scope.operation } : {}),
      action: c.action,
      ...(domain === undefined ? {} : { domain }),
      ...(c.device === undefined ? {} : { device: c.device }),
      ...(c.detail === undefined ? {} : { detail: c.detail }),
      ...(before === undefined ? {} : { before }),
      ...(after === undefined ? {} : { after }),
      result: err === undefined ? 'ok' : 'failed',
      ...(err === undefined ? {} : { error: asPassthruError(err).message }),
    };
    try {
      await this.#o.append(entry);
    } catch (e) {
      this.#o.onError(e, entry);
    }
  }
}
