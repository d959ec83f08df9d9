import { PassthruError } from '../conf/error.ts';
import type { DomainDef } from '../conf/domain/types.ts';
import type { DomainState, DomainSummary } from '../protocol/wire.ts';
import type { Action } from './actions.ts';
import { checkAllowed } from './lifecycle.ts';
import { withAuditScope } from '../host/audit.ts';
import type { Running } from './runs.ts';

/** A defined domain: its persistent definition, lifecycle state and running QEMU, if any. */
export interface DomainObj {
  def: DomainDef;
  state: DomainState;
  run: Running | undefined;
  /** Why it is in its state (libvirt's reason words), once something happened to it. */
  reason?: string;
  /** Started when the daemon starts (autostart). */
  autostart: boolean;
  /** One lock per domain: its actions run one after another. */
  queue: Promise<unknown>;
}

/** The daemon's domains by name, each with its lock. */
export class DomainTable {
  readonly #domains = new Map<string, DomainObj>();

  add(def: DomainDef): DomainObj {
    const obj: DomainObj = { def, state: 'shutoff', run: undefined, autostart: false, queue: Promise.resolve() };
    this.#domains.set(def.name, obj);
    return obj;
  }

  delete(name: string): void {
    this.#domains.delete(name);
  }

  find(name: string): DomainObj | undefined {
    return this.#domains.get(name);
  }

  get(name: string): DomainObj {
    const obj = this.#domains.get(name);
    if (!obj)
      throw new PassthruError('NO_DOMAIN', `domain '${name}' is not defined`, { hint: "see 'passthru list --all'" });
    return obj;
  }

  /** Name-sorted, as `list` shows them. */
  entries(): [string, DomainObj][] {
    return [...this.#domains.entries()].sort(([a], [b]) => a.localeCompare(b));
  }

  /** Runs `work` under the domain's lock, once the lifecycle matrix allows `action` in the
   *  state the domain has when its turn comes (not when it was asked). */
  locked<T>(action: Action, name: string, work: (obj: DomainObj) => Promise<T>): Promise<T> {
    const obj = this.get(name);
    const run = async (): Promise<T> => {
      const current = this.get(name);
      checkAllowed(action, name, current.state);
      return work(current);
    };
    const next = obj.queue.then(run, run);
    obj.queue = next.catch(() => undefined);
    return next;
  }

  /** Queues work that is not a user's action (QEMU exited) behind the domain's lock. Its host
   *  changes are audited as `operation` for the domain, not as whichever action started the
   *  QEMU whose event set it off. */
  queue(obj: DomainObj, work: () => Promise<void>, onError: (err: unknown) => void, operation = 'guest-event'): void {
    const scoped = (): Promise<void> => withAuditScope({ operation, domain: obj.def.name }, work);
    const next = obj.queue.then(scoped, scoped);
    obj.queue = next.catch(onError);
  }

  summary(name: string, obj: DomainObj): DomainSummary {
    return {
      name,
      uuid: obj.def.uuid ?? '',
      state: obj.state,
      ...(obj.run ? { pid: obj.run.pid } : {}),
      ...(obj.reason === undefined ? {} : { reason: obj.reason }),
    };
  }

  async settled(): Promise<void> {
    await Promise.all([...this.#domains.values()].map((o) => o.queue));
  }

  values(): IterableIterator<DomainObj> {
    return this.#domains.values();
  }
}
