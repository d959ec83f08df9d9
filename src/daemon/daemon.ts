import { asPassthruError, PassthruError } from '../conf/error.ts';
import type { DomainDef } from '../conf/domain/types.ts';
import { assertNever } from '../lib/assert-never.ts';
import type { Logger } from '../lib/logger.ts';
import type { DomainState, DomainSummary } from '../protocol/wire.ts';
import type { Action, ActionOf, ActionResults } from './actions.ts';
import type { EventBus } from './events.ts';
import { checkAllowed } from './lifecycle.ts';
import type { NodeDevices } from './nodedevs.ts';
import { formatDefinition, parseDefinition, withUuid } from './definitions.ts';
import type { Running, VmRunner } from './vm-runner.ts';
import type { Store } from './store.ts';

interface DomainObj {
  def: DomainDef;
  state: DomainState;
  run: Running | undefined;
  /** One lock per domain: its actions run one after another. */
  queue: Promise<unknown>;
}

export interface DaemonParts {
  readonly store: Store;
  readonly events: EventBus;
  readonly runner: VmRunner;
  readonly nodedevs: NodeDevices;
  readonly log: Logger;
}

/**
 * The one door: every request of every front end (HTTP API, tests) is an Action given to
 * handle(). Domain actions take the domain's lock; host-wide device decisions are serialised
 * further down, in the device manager.
 */
export class Daemon {
  readonly #p: DaemonParts;
  readonly #domains = new Map<string, DomainObj>();
  #unfollow: (() => void) | undefined;

  constructor(parts: DaemonParts) {
    this.#p = parts;
  }

  get events(): EventBus {
    return this.#p.events;
  }

  /** Loads the definitions, takes back the QEMUs that run (after a daemon restart), gives back
   *  the devices of domains that no longer run, then follows the host's changes. */
  async load(): Promise<void> {
    for (const { name, xml } of await this.#p.store.configs()) {
      try {
        const def = parseDefinition(xml, `domains/${name}.xml`);
        this.#domains.set(name, { def, state: 'shutoff', run: undefined, queue: Promise.resolve() });
      } catch (err) {
        // One unreadable definition must not keep every other domain from being managed.
        this.#p.log.error({ domain: name, err: asPassthruError(err).message }, 'definition skipped: it cannot be read');
      }
    }
    for (const status of await this.#p.store.statuses()) {
      const obj = this.#domains.get(status.name);
      if (!obj) continue;
      obj.run = await this.#p.runner.reattach(status, (reason) => this.#onExit(status.name, reason));
      obj.state = obj.run ? 'running' : 'shutoff';
    }
    const running = new Set([...this.#domains].filter(([, o]) => o.run).map(([n]) => n));
    for (const name of await this.#p.runner.recoverDevices(running)) {
      this.#p.log.warn({ domain: name }, 'gave back the host devices of a domain that was not running');
    }
    this.#unfollow = await this.#p.nodedevs.follow();
  }

  async handle<A extends Action>(action: A): Promise<ActionResults[A['kind']]> {
    return (await this.#dispatch(action)) as ActionResults[A['kind']];
  }

  async #dispatch(action: Action): Promise<ActionResults[Action['kind']]> {
    switch (action.kind) {
      case 'define':
        return this.#define(action);
      case 'undefine':
        return this.#locked(action, action.name, async () => {
          await this.#p.store.removeConfig(action.name);
          this.#domains.delete(action.name);
          this.#p.events.emit({ type: 'domain', event: 'undefined', name: action.name });
          return {};
        });
      case 'start':
        return this.#locked(action, action.name, async (obj) => {
          obj.state = 'starting';
          try {
            obj.run = await this.#p.runner.start(obj.def, (reason) => this.#onExit(action.name, reason));
          } catch (err) {
            obj.state = 'shutoff';
            throw err;
          }
          obj.state = 'running';
          this.#p.events.emit({ type: 'domain', event: 'started', name: action.name });
          return this.#summary(action.name, obj);
        });
      case 'destroy':
        return this.#locked(action, action.name, async (obj) => {
          const run = obj.run;
          if (!run) throw new PassthruError('OPERATION_INVALID', `domain ${action.name} is not running`);
          obj.state = 'stopping';
          await this.#p.runner.destroy(run);
          obj.run = undefined;
          obj.state = 'shutoff';
          this.#p.events.emit({ type: 'domain', event: 'stopped', name: action.name, reason: 'destroyed' });
          return this.#summary(action.name, obj);
        });
      case 'list':
        return [...this.#domains.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([n, o]) => this.#summary(n, o));
      case 'dumpxml': {
        const obj = this.#get(action.name);
        const def = !action.inactive && obj.run ? obj.run.live : obj.def;
        return { xml: formatDefinition(def, action.inactive || !obj.run) };
      }
      case 'nodedevList':
        return this.#p.nodedevs.list(action.cap);
      case 'nodedevDumpxml':
        return { xml: await this.#p.nodedevs.dumpxml(action.name) };
      case 'nodedevVfTable':
        return this.#p.nodedevs.vfTable(action.name);
      case 'nodedevDetach':
        return this.#p.nodedevs.detach(action.name, action.driver);
      case 'nodedevReattach':
        return this.#p.nodedevs.reattach(action.name);
      case 'nodedevReset':
        return this.#p.nodedevs.reset(action.name);
      case 'nodedevCheck':
        return this.#p.nodedevs.check(action.name);
      case 'nodedevSriov':
        return this.#p.nodedevs.sriov(action.name, action.numVfs, action.autoprobe);
      default:
        return assertNever(action);
    }
  }

  async #define(action: ActionOf<'define'>): Promise<DomainSummary> {
    const parsed = parseDefinition(action.xml, 'domain XML');
    const existing = this.#domains.get(parsed.name);
    const def = withUuid(parsed, existing?.def);
    if (existing?.def.uuid && def.uuid && existing.def.uuid !== def.uuid) {
      throw new PassthruError(
        'DOMAIN_EXISTS',
        `domain ${def.name} already exists with uuid ${existing.def.uuid}, not ${def.uuid}`,
      );
    }
    const uuidTwin = [...this.#domains.entries()].find(
      ([n, o]) => n !== def.name && def.uuid && o.def.uuid === def.uuid,
    );
    if (uuidTwin) {
      throw new PassthruError('DOMAIN_EXISTS', `domain ${uuidTwin[0]} already has uuid ${String(def.uuid)}`);
    }
    await this.#p.store.saveConfig(def.name, formatDefinition(def, true));
    if (existing) existing.def = def;
    else this.#domains.set(def.name, { def: def, state: 'shutoff', run: undefined, queue: Promise.resolve() });
    this.#p.events.emit({ type: 'domain', event: 'defined', name: def.name });
    return this.#summary(def.name, this.#get(def.name));
  }

  #get(name: string): DomainObj {
    const obj = this.#domains.get(name);
    if (!obj)
      throw new PassthruError('NO_DOMAIN', `domain '${name}' is not defined`, { hint: "see 'passthru list --all'" });
    return obj;
  }

  #locked<T>(action: Action, name: string, work: (obj: DomainObj) => Promise<T>): Promise<T> {
    const obj = this.#get(name);
    const run = async (): Promise<T> => {
      const current = this.#get(name);
      checkAllowed(action, name, current.state);
      return work(current);
    };
    const next = obj.queue.then(run, run);
    obj.queue = next.catch(() => undefined);
    return next;
  }

  /** QEMU went away without destroy (guest poweroff, crash, kill). */
  #onExit(name: string, reason: string): void {
    const obj = this.#domains.get(name);
    if (!obj?.run) return;
    const run = obj.run;
    const work = async (): Promise<void> => {
      if (obj.run !== run) return;
      await this.#p.runner.cleanup(run);
      obj.run = undefined;
      obj.state = 'shutoff';
      this.#p.events.emit({ type: 'domain', event: 'stopped', name, reason });
    };
    const next = obj.queue.then(work, work);
    obj.queue = next.catch((err: unknown) => {
      this.#p.log.error({ domain: name, err }, 'cleanup after QEMU exit failed');
    });
  }

  #summary(name: string, obj: DomainObj): DomainSummary {
    return {
      name,
      uuid: obj.def.uuid ?? '',
      state: obj.state,
      ...(obj.run ? { pid: obj.run.pid } : {}),
    };
  }

  async close(): Promise<void> {
    this.#unfollow?.();
    await Promise.all([...this.#domains.values()].map((o) => o.queue));
    for (const o of this.#domains.values()) o.run?.detach();
  }
}
