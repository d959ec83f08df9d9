import type { Datapath } from '../host/datapath.ts';
import type { Logger } from '../lib/logger.ts';
import type { Pools } from '../network/pools.ts';
import type { TlsIdentity } from '../protocol/client.ts';
import type { AuditLog } from './audit-log.ts';
import type { ActionKind, ActionOf, ActionResults } from './actions.ts';
import type { DomainTable } from './domain-table.ts';
import type { EventBus } from './events.ts';
import type { DaemonMetrics } from './metrics.ts';
import type { NodeDevices } from './nodedevs.ts';
import type { RunDeps } from './runs.ts';
import type { Store } from './store.ts';

/** What every handler group may use: the daemon's parts, nothing of the front ends. */
export interface DaemonContext {
  readonly store: Store;
  readonly events: EventBus;
  readonly domains: DomainTable;
  /** Starting, taking back and stopping QEMU (start.ts, runs.ts). */
  readonly runs: RunDeps;
  readonly nodedevs: NodeDevices;
  /** Networks and device pools (src/network); also in `runs`, which allocates from them. */
  readonly pools: Pools;
  readonly log: Logger;
  /** Between daemons (migration): this daemon's TLS identity for calling a peer and for the
   *  migration stream, and the host's datapath switch when the backend models one. */
  readonly peers: {
    readonly tls?: TlsIdentity;
    readonly datapath?: Datapath;
    readonly migration?: MigrationDeadlines;
  };
  /** Counters and histograms fed by the door (operation.ts), gauges read at scrape time. */
  readonly metrics: DaemonMetrics;
  /** The host changes made, as the audited Kernel and the QEMU starts and stops recorded them. */
  readonly audit: AuditLog;
}

/** The daemon's migration deadlines (its settings); each migration may name its own. */
export interface MigrationDeadlines {
  /** An outgoing migration whose RAM sent does not move for this long is cancelled (0: never). */
  readonly stallMs: number;
  /** An incoming migration is given up this long after the last word from its source. */
  readonly incomingLeaseMs: number;
}

/** The handler of one action kind. */
export type Handler<K extends ActionKind> = (
  action: ActionOf<K>,
  ctx: DaemonContext,
) => ActionResults[K] | Promise<ActionResults[K]>;

/** A group's handlers: exactly the kinds it names. */
export type HandlerGroup<K extends ActionKind> = { readonly [P in K]: Handler<P> };
