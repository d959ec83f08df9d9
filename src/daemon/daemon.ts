import type { Action, ActionResults } from './actions.ts';
import type { DaemonContext } from './context.ts';
import { DomainTable } from './domain-table.ts';
import type { EventBus } from './events.ts';
import { loadDomains } from './groups/domains.ts';
import { loadPools } from './pools-load.ts';
import { dispatch } from './groups/index.ts';
import { withAuditScope } from '../host/audit.ts';
import { aroundAction } from './operation.ts';

export type DaemonParts = Omit<DaemonContext, 'domains'>;

/**
 * The one door: every request of every front end (HTTP API, tests) is an Action given to
 * handle(), which hands it to its group's handler (groups/index.ts). Domain actions take the
 * domain's lock; host-wide device decisions are serialised further down, in the device manager.
 */
export class Daemon {
  readonly #ctx: DaemonContext;
  #unfollow: (() => void) | undefined;

  constructor(parts: DaemonParts) {
    this.#ctx = { ...parts, domains: new DomainTable() };
  }

  get events(): EventBus {
    return this.#ctx.events;
  }

  /** Where the host changes are written. */
  get auditLog(): string {
    return this.#ctx.audit.path;
  }

  /** Startup after the store and the device records: domains and their QEMUs, then the host's
   *  changes are followed. */
  async load(): Promise<void> {
    // Host changes of the startup (the journal's recovery, QEMUs found dead) are its own.
    await withAuditScope({ operation: 'daemon-start' }, async () => {
      await loadDomains(this.#ctx);
      await loadPools(this.#ctx);
    });
    this.#unfollow = await this.#ctx.nodedevs.follow((inv) => this.#ctx.runs.hostViews.update(inv));
  }

  handle<A extends Action>(action: A): Promise<ActionResults[A['kind']]> {
    return aroundAction(this.#ctx.metrics, action, () => dispatch(action, this.#ctx));
  }

  async close(): Promise<void> {
    this.#unfollow?.();
    await this.#ctx.domains.settled();
    for (const o of this.#ctx.domains.values()) o.run?.detach();
    await this.#ctx.audit.close();
  }
}
