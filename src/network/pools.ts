import { asPassthruError, PassthruError } from '../conf/error.ts';
import { formatNetworkPortXml, type NetworkPortDef, parseNetworkPortXml } from '../conf/network/port.ts';
import { formatPciAddress, parsePciAddress } from '../conf/pci-address.ts';
import type { Logger } from '../lib/logger.ts';
import { chooseMember, type PoolFacts, type PoolRef, poolLabel } from './allocate.ts';
import type { PoolDefs, PoolWant } from './actual.ts';
import { memberProblem } from './health.ts';
import { type HostView, type Member, memberOrder, patchMembers } from './members.ts';
import { formatDef, healthRules, membersOf, parseDef, type PoolDef, quarantines } from './pool-def.ts';
import { type PoolKind, PoolStore } from './store.ts';

interface Entry {
  def: PoolDef;
  /** The definition in force while active (a redefinition applies at the next start). */
  running: PoolDef | undefined;
  autostart: boolean;
  readonly allocations: Map<string, Allocation>;
  readonly quarantined: Set<string>;
  writing: Promise<void>;
  queued: Promise<void> | undefined;
}

export interface PoolSummary {
  readonly kind: PoolKind;
  readonly name: string;
  readonly uuid?: string;
  readonly active: boolean;
  readonly autostart: boolean;
}

export interface PoolInfo extends PoolSummary {
  readonly size: number;
  readonly free: number;
  readonly inUse: readonly { readonly device: string; readonly domain: string }[];
  readonly quarantined: readonly string[];
  readonly unhealthy: readonly { readonly device: string; readonly problem: string }[];
}

/** Who holds a member: the domain, and which of its devices ("interface 52:54:00:aa:00:01"). */
export interface Allocation {
  readonly domain: string;
  readonly label?: string;
  /** A network port (net-port-create): held for its owner until net-port-delete, whether or not
   *  the owner runs, so a restart keeps it. */
  readonly port?: NetworkPortDef;
}

/** A member changing hands, for the daemon's events. */
export interface PoolChange {
  readonly event: 'allocated' | 'released';
  readonly ref: PoolRef;
  readonly device: string;
  readonly domain: string;
  readonly label?: string;
  /** released into quarantine */
  readonly quarantined?: boolean;
}

export type Released = PoolChange & { readonly quarantined: boolean };

/** Another holder of a device than the pools: the device manager's leases (a plain `<hostdev>`
 *  of some domain, or a device detached with nodedev-detach). */
export type LeaseHolder = (bdf: string) => string | undefined;

const key = (ref: PoolRef): string => `${ref.kind}/${ref.name}`;

/**
 * Networks and device pools: their definitions, which are active, and which member each domain
 * holds. Allocation reserves in memory before its first await (Node runs it to that point
 * without interleaving), so concurrent starts can never be given one device twice; the state
 * file is then written (fsync) before the caller takes the device's lease in the device manager.
 */
export class Pools {
  readonly #store: PoolStore;
  readonly #log: Logger;
  readonly #entries = new Map<string, Entry>();
  /** Members by pool definition, in allocation order, with the view they were resolved on:
   *  resolving a selector over thousands of functions costs more than an allocation, and a
   *  view that differs from the last by a few functions (each allocation rebinds one) patches
   *  them (members.ts patchMembers). */
  #members = new WeakMap<PoolDef, { view: HostView; members: Member[]; at: Map<string, number> }>();
  #listener: (c: PoolChange) => void = () => undefined;

  private constructor(store: PoolStore, log: Logger) {
    this.#store = store;
    this.#log = log;
  }

  /** Where allocations and releases are told (the daemon's event bus). */
  onChange(listener: (c: PoolChange) => void): void {
    this.#listener = listener;
  }

  static async open(stateDir: string, log: Logger): Promise<Pools> {
    const store = new PoolStore(stateDir);
    await store.init();
    const pools = new Pools(store, log);
    for (const kind of ['network', 'devicepool'] as const) {
      for (const c of await store.configs(kind)) {
        try {
          const def = parseDef(kind, c.xml, `${store.dir(kind)}/${c.name}.xml`);
          const rt = await store.runtime(kind, c.name);
          pools.#entries.set(key({ kind, name: c.name }), {
            def,
            running: rt?.active ? def : undefined,
            autostart: c.autostart,
            allocations: new Map(
              (rt?.allocations ?? []).map((a) => [
                a.bdf,
                {
                  domain: a.domain,
                  ...(a.label === undefined ? {} : { label: a.label }),
                  ...(a.port === undefined ? {} : { port: parseNetworkPortXml(a.port) }),
                },
              ]),
            ),
            quarantined: new Set(rt?.quarantined ?? []),
            writing: Promise.resolve(),
            queued: undefined,
          });
        } catch (err) {
          log.error({ kind, name: c.name, err: asPassthruError(err).message }, 'pool definition skipped: unreadable');
        }
      }
    }
    return pools;
  }

  async define(kind: PoolKind, xml: string): Promise<PoolSummary> {
    const def = parseDef(kind, xml, `${kind} XML`);
    const ref = { kind, name: def.def.name };
    const existing = this.#entries.get(key(ref));
    if (existing?.def.def.uuid && def.def.uuid && existing.def.def.uuid !== def.def.uuid) {
      throw new PassthruError(
        'OPERATION_INVALID',
        `${poolLabel(ref)} already exists with uuid ${existing.def.def.uuid}, not ${def.def.uuid}`,
      );
    }
    await this.#store.saveConfig(kind, ref.name, formatDef(def, undefined));
    if (existing) existing.def = def;
    else {
      this.#entries.set(key(ref), {
        def,
        running: undefined,
        autostart: false,
        allocations: new Map(),
        quarantined: new Set(),
        writing: Promise.resolve(),
        queued: undefined,
      });
    }
    return this.summary(ref);
  }

  async undefine(ref: PoolRef): Promise<void> {
    const e = this.#get(ref);
    if (e.running) throw refuse(ref, 'undefine', 'it is active; destroy it first');
    await this.#store.removeConfig(ref.kind, ref.name);
    this.#entries.delete(key(ref));
  }

  /** Checks the pool against the host as libvirt's network start does (the PF exists, each
   *  listed device is a VF) and activates it. */
  async start(ref: PoolRef, view: HostView): Promise<PoolSummary> {
    const e = this.#get(ref);
    if (e.running) throw refuse(ref, 'start', 'it is already active');
    membersOf(e.def, view);
    e.running = e.def;
    await this.#save(ref, e);
    return this.summary(ref);
  }

  async destroy(ref: PoolRef): Promise<PoolSummary> {
    const e = this.#get(ref);
    if (!e.running) throw refuse(ref, 'destroy', 'it is not active');
    if (e.allocations.size > 0) {
      const users = [...new Set([...e.allocations.values()].map((a) => a.domain))].sort();
      throw new PassthruError('DEVICE_IN_USE', `${poolLabel(ref)} is in use by domain ${users.join(', ')}`, {
        hint: 'stop those domains first',
      });
    }
    e.running = undefined;
    await this.#save(ref, e);
    return this.summary(ref);
  }

  async setAutostart(ref: PoolRef, on: boolean): Promise<PoolSummary> {
    const e = this.#get(ref);
    await this.#store.setAutostart(ref.kind, ref.name, on);
    e.autostart = on;
    return this.summary(ref);
  }

  list(kind: PoolKind): PoolSummary[] {
    return [...this.#entries.values()]
      .filter((e) => e.def.kind === kind)
      .map((e) => this.summary({ kind, name: e.def.def.name }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  summary(ref: PoolRef): PoolSummary {
    const e = this.#get(ref);
    const uuid = e.def.def.uuid;
    return { kind: ref.kind, name: ref.name, ...(uuid ? { uuid } : {}), active: !!e.running, autostart: e.autostart };
  }

  /** The pools to start with the daemon. */
  autostarts(): PoolRef[] {
    return [...this.#entries.values()]
      .filter((e) => e.autostart && !e.running)
      .map((e) => ({ kind: e.def.kind, name: e.def.def.name }));
  }

  /** The running definitions, for building a domain's live definition (actual.ts). */
  defs(): PoolDefs {
    return {
      network: (name) => {
        const d = this.definition({ kind: 'network', name });
        if (d.kind !== 'network') throw new PassthruError('INTERNAL', `internal error: ${name} is not a network`);
        return d.def;
      },
      devicePool: (name) => {
        const d = this.definition({ kind: 'devicepool', name });
        if (d.kind !== 'devicepool')
          throw new PassthruError('INTERNAL', `internal error: ${name} is not a device pool`);
        return d.def;
      },
    };
  }

  definition(ref: PoolRef): PoolDef {
    const e = this.#get(ref);
    return e.running ?? e.def;
  }

  /** Inactive: the stored definition. Live: the running one, with what it resolved to on this
   *  host (a `<pf>` network's VF addresses, as libvirt writes them; a pool's members and users). */
  xml(ref: PoolRef, view: HostView | undefined): string {
    const e = this.#get(ref);
    if (!e.running || view === undefined) return formatDef(e.def, undefined);
    return formatDef(e.running, { members: membersOf(e.running, view), usedBy: (bdf) => this.holder(bdf) });
  }

  info(ref: PoolRef, view: HostView, leases: LeaseHolder): PoolInfo {
    const e = this.#get(ref);
    const def = e.running ?? e.def;
    const members = membersOf(def, view);
    const rules = healthRules(def);
    const inUse: { device: string; domain: string }[] = [];
    const unhealthy: { device: string; problem: string }[] = [];
    let free = 0;
    for (const m of members) {
      const holder = this.holder(m.bdf) ?? leases(m.bdf);
      const problem = memberProblem(m, view, rules);
      if (holder !== undefined) inUse.push({ device: m.bdf, domain: holder });
      else if (problem !== undefined) unhealthy.push({ device: m.bdf, problem });
      else if (!e.quarantined.has(m.bdf)) free++;
    }
    return {
      ...this.summary(ref),
      size: members.length,
      free: e.running ? free : 0,
      inUse,
      quarantined: [...e.quarantined].sort(),
      unhealthy,
    };
  }

  /** The domain a pool gave the device to, whichever pool. */
  holder(bdf: string): string | undefined {
    for (const e of this.#entries.values()) {
      const a = e.allocations.get(bdf);
      if (a !== undefined) return a.domain;
    }
    return undefined;
  }

  /** Which pool gave `bdf` to a domain. */
  poolOf(bdf: string): PoolRef | undefined {
    for (const e of this.#entries.values())
      if (e.allocations.has(bdf)) return { kind: e.def.kind, name: e.def.def.name };
    return undefined;
  }

  /**
   * One member for each want, all or none. The reservation is made synchronously (before the
   * first await), so no concurrent call can choose the same member; then the touched pools'
   * state is written. The device manager takes the leases after this returns.
   */
  async allocate(domain: string, wants: readonly PoolWant[], view: HostView, leases: LeaseHolder): Promise<Member[]> {
    const taken: { e: Entry; bdf: string }[] = [];
    const undo = (): void => {
      for (const t of taken) t.e.allocations.delete(t.bdf);
    };
    const grants: Member[] = [];
    try {
      for (const w of wants) {
        const e = this.#active(w.ref);
        const def = e.running ?? e.def;
        const facts: PoolFacts = {
          holder: (bdf) => this.holder(bdf) ?? leases(bdf),
          quarantined: (bdf) => e.quarantined.has(bdf),
          problem: (m) => memberProblem(m, view, healthRules(def)),
        };
        const m = chooseMember(w.ref, this.#membersOf(def, view), facts, w.request, true);
        e.allocations.set(m.bdf, { domain, label: w.label });
        taken.push({ e, bdf: m.bdf });
        grants.push(m);
      }
    } catch (err) {
      undo();
      throw err;
    }
    try {
      await Promise.all([...new Set(taken.map((t) => t.e))].map((e) => this.#save(refOf(e), e)));
    } catch (err) {
      undo();
      throw err;
    }
    wants.forEach((w, i) => {
      const g = grants[i];
      if (g) this.#listener({ event: 'allocated', ref: w.ref, device: g.bdf, domain, label: w.label });
    });
    return grants;
  }

  /** What `allocate` would give now, all or none, reserving nothing (a migration's check on its
   *  destination): two wants of one pool never get the same member. */
  probe(wants: readonly PoolWant[], view: HostView, leases: LeaseHolder): Member[] {
    const chosen = new Set<string>();
    return wants.map((w) => {
      const e = this.#active(w.ref);
      const def = e.running ?? e.def;
      const m = chooseMember(
        w.ref,
        this.#membersOf(def, view),
        {
          holder: (bdf) => (chosen.has(bdf) ? 'this migration' : (this.holder(bdf) ?? leases(bdf))),
          quarantined: (bdf) => e.quarantined.has(bdf),
          problem: (x) => memberProblem(x, view, healthRules(def)),
        },
        w.request,
      );
      chosen.add(m.bdf);
      return m;
    });
  }

  /** Gives back what the pools gave `domain` (only `devices` when given). A quarantine pool
   *  holds the device out until nodedev-release. */
  async release(domain: string, devices?: readonly string[]): Promise<Released[]> {
    const out: Released[] = [];
    const touched = new Set<Entry>();
    for (const e of this.#entries.values()) {
      for (const [bdf, a] of e.allocations) {
        if (a.port || a.domain !== domain || (devices !== undefined && !devices.includes(bdf))) continue;
        e.allocations.delete(bdf);
        const quarantine = quarantines(e.running ?? e.def);
        if (quarantine) e.quarantined.add(bdf);
        touched.add(e);
        out.push({
          event: 'released',
          ref: refOf(e),
          device: bdf,
          domain,
          ...(a.label === undefined ? {} : { label: a.label }),
          quarantined: quarantine,
        });
      }
    }
    await Promise.all([...touched].map((e) => this.#save(refOf(e), e)));
    for (const r of out) this.#listener(r);
    return out;
  }

  /** nodedev-release: an operator puts a quarantined device back into its pools. */
  async releaseQuarantine(device: string): Promise<PoolRef[]> {
    const bdf = formatPciAddress(parsePciAddress(device));
    const refs: PoolRef[] = [];
    for (const e of this.#entries.values()) {
      if (!e.quarantined.delete(bdf)) continue;
      refs.push(refOf(e));
      await this.#save(refOf(e), e);
    }
    if (refs.length === 0)
      throw new PassthruError('OPERATION_INVALID', `device ${bdf} is not quarantined in any device pool`);
    return refs;
  }

  /**
   * After a daemon restart: the running domains say which pool device each holds. A device
   * claimed by two domains is reported (the first claim keeps it), never shared silently; a
   * device that the state file gave to a domain that no longer runs goes back (or into
   * quarantine, for a quarantine pool: a guest had it).
   */
  async rebuild(
    claims: readonly { domain: string; ref: PoolRef; device: string; label?: string }[],
  ): Promise<PassthruError[]> {
    const errors: PassthruError[] = [];
    const before = new Map([...this.#entries.values()].map((e) => [e, new Map(e.allocations)]));
    // Ports are not claimed by running domains: they stay until net-port-delete.
    for (const e of this.#entries.values())
      for (const [bdf, a] of e.allocations) if (!a.port) e.allocations.delete(bdf);
    for (const c of claims) {
      const e = this.#entries.get(key(c.ref));
      if (!e) {
        errors.push(
          new PassthruError(
            'NO_NETWORK',
            `domain ${c.domain} holds ${c.device} from ${poolLabel(c.ref)}, which is not defined`,
          ),
        );
        continue;
      }
      const other = this.holder(c.device);
      if (other !== undefined && other !== c.domain) {
        const a = parsePciAddress(c.device);
        errors.push(
          new PassthruError(
            'DEVICE_IN_USE',
            `${poolLabel(c.ref)} claims the PCI device at domain=${a.domain} bus=${a.bus} slot=${a.slot} function=${a.function} is already in use by a different domain`,
            { hint: `held by ${other}, claimed again by ${c.domain}` },
          ),
        );
        continue;
      }
      e.running ??= e.def;
      e.allocations.set(c.device, { domain: c.domain, ...(c.label === undefined ? {} : { label: c.label }) });
    }
    for (const [e, old] of before) {
      if (quarantines(e.def)) for (const bdf of old.keys()) if (!e.allocations.has(bdf)) e.quarantined.add(bdf);
      await this.#save(refOf(e), e);
    }
    for (const err of errors) this.#log.error({ err: err.message }, 'pool state rebuilt with an error');
    return errors;
  }

  /**
   * net-port-create: a VF of a hostdev network for the port's owner, chosen as for a start, and
   * the port as libvirt returns it (`<plug type='hostdev-pci'>` naming the VF). The allocation is
   * in the state file (fsync, shared with concurrent changes) before this returns.
   */
  async createPort(name: string, port: NetworkPortDef, view: HostView, leases: LeaseHolder): Promise<NetworkPortDef> {
    const ref = { kind: 'network', name } as const;
    const e = this.#active(ref);
    if (e.running?.kind !== 'network') throw new PassthruError('INTERNAL', `internal error: ${name} is not a network`);
    const net = e.running.def;
    if (this.#port(e, port.uuid))
      throw new PassthruError('OPERATION_INVALID', `network port ${port.uuid} already exists in network '${name}'`);
    const m = chooseMember(
      ref,
      this.#membersOf(e.running, view),
      {
        holder: (bdf) => this.holder(bdf) ?? leases(bdf),
        quarantined: (bdf) => e.quarantined.has(bdf),
        problem: (x) => memberProblem(x, view, healthRules(e.running ?? e.def)),
      },
      { numaNodes: new Set() },
      true,
    );
    const plugged: NetworkPortDef = {
      ...port,
      plug: {
        type: 'hostdev-pci',
        managed: net.forward?.managed ?? false,
        ...(net.forward?.driver ? { driver: net.forward.driver } : {}),
        address: m.address,
      },
    };
    const label = `port ${port.uuid}`;
    e.allocations.set(m.bdf, { domain: port.owner.name, label, port: plugged });
    try {
      await this.#save(ref, e);
    } catch (err) {
      e.allocations.delete(m.bdf);
      throw err;
    }
    this.#listener({ event: 'allocated', ref, device: m.bdf, domain: port.owner.name, label });
    return plugged;
  }

  /** net-port-delete: the port's VF goes back to its network. */
  async deletePort(name: string, uuid: string): Promise<void> {
    const ref = { kind: 'network', name } as const;
    const e = this.#get(ref);
    const hit = this.#port(e, uuid);
    if (!hit) throw noPort(name, uuid);
    e.allocations.delete(hit.bdf);
    await this.#save(ref, e);
    this.#listener({ event: 'released', ref, device: hit.bdf, domain: hit.a.domain, label: `port ${uuid}` });
  }

  /** net-port-list / net-port-dumpxml: the ports of a network, in device order. */
  ports(name: string): NetworkPortDef[] {
    const e = this.#get({ kind: 'network', name });
    return [...e.allocations.values()].flatMap((a) => (a.port ? [a.port] : []));
  }

  port(name: string, uuid: string): NetworkPortDef {
    const hit = this.#port(this.#get({ kind: 'network', name }), uuid);
    if (!hit?.a.port) throw noPort(name, uuid);
    return hit.a.port;
  }

  #port(e: Entry, uuid: string): { bdf: string; a: Allocation } | undefined {
    for (const [bdf, a] of e.allocations) if (a.port?.uuid === uuid) return { bdf, a };
    return undefined;
  }

  #membersOf(def: PoolDef, view: HostView): Member[] {
    const c = this.#members.get(def);
    if (c?.view === view) return c.members;
    const patched =
      c && view.patch?.prev === c.view
        ? patchMembers(c.members, c.at, view, view.patch.names, (narrow) => membersOf(def, narrow))
        : undefined;
    if (c && patched) {
      this.#members.set(def, { view, members: patched, at: c.at });
      return patched;
    }
    const members = membersOf(def, view).sort(memberOrder);
    this.#members.set(def, { view, members, at: new Map(members.map((m, i) => [m.bdf, i])) });
    return members;
  }

  #get(ref: PoolRef): Entry {
    const e = this.#entries.get(key(ref));
    if (!e) {
      const what = ref.kind === 'network' ? 'network' : 'device pool';
      throw new PassthruError('NO_NETWORK', `no ${what} with matching name '${ref.name}'`, {
        hint: `see 'passthru ${ref.kind === 'network' ? 'net' : 'devpool'}-list --all'`,
      });
    }
    return e;
  }

  #active(ref: PoolRef): Entry {
    const e = this.#get(ref);
    if (!e.running)
      throw new PassthruError('OPERATION_INVALID', `${poolLabel(ref)} is not active`, {
        hint: `start it with 'passthru ${ref.kind === 'network' ? 'net' : 'devpool'}-start ${ref.name}'`,
      });
    return e;
  }

  /** Writes coalesce: a change waits for the write that starts after it, never for more. */
  #save(ref: PoolRef, e: Entry): Promise<void> {
    if (e.queued) return e.queued;
    const write = async (): Promise<void> => {
      e.queued = undefined;
      await this.#store.saveRuntime(ref.kind, ref.name, {
        version: 1,
        active: !!e.running,
        allocations: [...e.allocations].map(([bdf, a]) => ({
          bdf,
          domain: a.domain,
          ...(a.label === undefined ? {} : { label: a.label }),
          ...(a.port === undefined ? {} : { port: formatNetworkPortXml(a.port) }),
        })),
        quarantined: [...e.quarantined],
      });
    };
    const p = e.writing.then(write, write);
    e.queued = p;
    e.writing = p.catch(() => undefined);
    return p;
  }
}

function refOf(e: Entry): PoolRef {
  return { kind: e.def.kind, name: e.def.def.name };
}

/** libvirt's words (virNetworkPortLookupByUUID). */
function noPort(network: string, uuid: string): PassthruError {
  return new PassthruError('NO_NETWORK', `network port not found: Network port with UUID ${uuid} not found`, {
    hint: `see 'passthru net-port-list ${network}'`,
  });
}

function refuse(ref: PoolRef, what: string, why: string): PassthruError {
  return new PassthruError('OPERATION_INVALID', `cannot ${what} ${poolLabel(ref)}: ${why}`);
}
