import { asPassthruError } from '../../conf/error.ts';
import type { Client } from '../../protocol/client.ts';

/**
 * An incoming migration is held on a lease. libvirt ties the destination's job to the source's
 * connection (its close callback runs qemuMigrationDstPrepareCleanup); passthru's daemons talk in
 * separate requests, so the destination keeps the incoming QEMU and its devices only while the
 * source speaks: prepare starts the lease, every renew (the source's progress pings) starts it
 * again, finish ends it. A source that falls silent for the whole lease (its daemon died and is
 * not back, its host is gone) loses the migration: the destination gives everything back.
 */
export const DEFAULT_INCOMING_LEASE_MS = 60_000;

export interface Lease {
  readonly ms: number;
  /** The source spoke: the lease runs its full length again from now. */
  renew(): void;
  /** The migration ended another way (finish, rollback): the lease no longer fires. */
  end(): void;
}

/** Calls `lapse` once, `ms` after the last renew, unless ended first. */
export function holdLease(ms: number, lapse: () => void): Lease {
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      lapse();
    }, ms);
  };
  arm();
  return {
    ms,
    renew: () => {
      if (timer !== undefined) arm();
    },
    end: () => {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

/** How often a source renews a lease of `leaseMs`: four times within it, at most every 10 s. */
export function renewEveryMs(leaseMs: number): number {
  return Math.min(10_000, Math.max(200, Math.floor(leaseMs / 4)));
}

/**
 * The source's side: renews the destination's lease on `name` every renewEveryMs until stopped.
 * A destination that answers it has no such incoming migration any more (its lease lapsed, its
 * daemon restarted) calls `gone` once; a destination that does not answer is tried again (the
 * stall deadline or the migration's timeout ends a migration that cannot go on).
 */
export function keepLease(
  peer: Client,
  name: string,
  leaseMs: number,
  gone: (why: string) => void,
  failed: (why: string) => void,
): { stop(): void } {
  let stopped = false;
  const every = renewEveryMs(leaseMs);
  const tick = async (): Promise<void> => {
    while (!stopped) {
      await new Promise((r) => setTimeout(r, every));
      if (stopped) return;
      try {
        await peer.post(`/migrations/${encodeURIComponent(name)}/renew`, undefined, { timeoutMs: every * 2 });
      } catch (err) {
        const e = asPassthruError(err);
        if (stopped) return;
        if (e.code === 'OPERATION_INVALID' || e.code === 'NO_DOMAIN') {
          stopped = true;
          gone(e.message);
          return;
        }
        failed(e.message);
      }
    }
  };
  void tick();
  return {
    stop: () => {
      stopped = true;
    },
  };
}
