import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { asPassthruError, PassthruError } from '../conf/error.ts';
import { formatPciAddress, type PciAddress, parsePciAddress } from '../conf/pci-address.ts';
import type { DevicePresentation } from '../host/types.ts';
import type { Logger } from '../lib/logger.ts';
import type { AssignabilityReport, DeviceFacts, HostOps } from './facts.ts';
import { Journal } from './journal.ts';
import { holderOf, leasedMacs, recordsOf } from './leases.ts';
import { detach, reattach, reset } from './node-ops.ts';
import { planPrepare } from './plan.ts';
import type { HostdevRequest } from './request.ts';
import { runStep, undoChangesHost, undoStep } from './run-step.ts';
import type { DeviceRecord, JournalState, Step, StepStatus } from './steps.ts';

/**
 * The device manager: gives host devices to domains and takes them back, one device at a time.
 *
 * Public API (everything above hostdev/ uses only this):
 *   open(host, stateDir, log)      the manager over <stateDir>/hostdev/journal.json
 *   prepare(domain, requests)      detach, configure and lease any subset of a domain's devices;
 *                                  all or nothing; returns each device's PreparedDevice (its
 *                                  generation and how QEMU is to be given it)
 *   release(domain, devices?)      give back some (by alias, optionally with the generation the
 *                                  caller was given) or all of a domain's devices
 *   held(domain)                   what a domain holds now (after a daemon restart too)
 *   associateIncoming(domain)      an incoming migration's pre-associated port profiles associated
 *   recover(running)               after a restart: undo prepares that did not commit, finish
 *                                  releases that started, release what non-running domains hold
 *   detach / reattach / reset / setVfCount / check    the node-device operations
 *
 * Records and leases are keyed by (domain, alias): a domain gains and loses devices while it runs
 * (hot-plug, pools, migration). Host-wide decisions are serialised here (one queue), so two
 * domains can never plan on the same facts. Every step is journaled (fsync) before it touches the
 * host and marked done after; a prepare commits in one write, and a release is committed by its
 * first write.
 */
export interface PreparedDevice {
  readonly alias: string;
  readonly address: PciAddress;
  readonly generation: number;
  /** How QEMU is to be given it; absent for an unassigned function (no QEMU device). */
  readonly presentation?: DevicePresentation;
}

/** A device to release: its alias, and the generation the caller holds it under (a release that
 *  names an older generation than the record's is refused: the device has a newer owner). */
export type DeviceRef = string | { readonly alias: string; readonly generation?: number };

export class HostdevManager {
  readonly #host: HostOps;
  readonly #journal: Journal;
  readonly #log: Logger;
  #queue: Promise<unknown> = Promise.resolve();
  #onUndoFailed: () => void = () => undefined;

  private constructor(host: HostOps, journal: Journal, log: Logger) {
    this.#host = host;
    this.#journal = journal;
    this.#log = log;
  }

  static async open(host: HostOps, stateDir: string, log: Logger): Promise<HostdevManager> {
    const dir = join(stateDir, 'hostdev');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new HostdevManager(host, await Journal.open(dir), log);
  }

  prepare(domain: string, requests: readonly HostdevRequest[]): Promise<PreparedDevice[]> {
    return this.#serial(() => this.#prepare(domain, requests));
  }

  /** The steps `prepare` would run now, changing nothing (refusals are thrown as prepare would). */
  plan(domain: string, requests: readonly HostdevRequest[]): Promise<Step[]> {
    return this.#serial(() => this.#plan(domain, requests));
  }

  /** Returns the aliases given back. Devices the domain does not hold are skipped. */
  release(domain: string, devices?: readonly DeviceRef[]): Promise<string[]> {
    return this.#serial(async () => {
      const targets = pick(recordsOf(this.#journal.state, domain), domain, devices);
      await this.#release(targets);
      return targets.map((d) => d.alias);
    });
  }

  /**
   * An incoming migration's guest is about to run here: every port profile its prepare only
   * pre-associated is now associated (libvirt's qemuMigrationDstVPAssociatePortProfiles, before
   * the guest's CPUs run). Each device's record is rewritten after its association, so the
   * journal says what the switch was asked last; the undo (disassociate) is the same either way.
   * Returns the aliases associated.
   */
  associateIncoming(domain: string): Promise<string[]> {
    return this.#serial(async () => {
      const done: string[] = [];
      for (const d of recordsOf(this.#journal.state, domain)) {
        if (d.state !== 'prepared') continue;
        const pending = d.steps.filter((s) => s.step.kind === 'associate-port' && s.step.incoming);
        if (pending.length === 0) continue;
        for (const { step } of pending) {
          if (step.kind !== 'associate-port') continue;
          await this.#host.associatePort(step.pfNetdev, step.vf, step.profile, false);
          this.#log.info({ domain, step: { ...step, incoming: false } }, 'hostdev port associated');
        }
        const steps = d.steps.map((s) =>
          s.step.kind === 'associate-port' && s.step.incoming ? { ...s, step: { ...s.step, incoming: false } } : s,
        );
        await this.#put([{ ...d, steps }]);
        done.push(d.alias);
      }
      return done;
    });
  }

  /** Told of each step an undo could not do (the daemon counts them: restore failures). */
  onUndoFailed(listener: () => void): void {
    this.#onUndoFailed = listener;
  }

  held(domain: string): PreparedDevice[] {
    return recordsOf(this.#journal.state, domain)
      .filter((d) => d.state === 'prepared')
      .map(prepared);
  }

  recover(running: ReadonlySet<string>): Promise<string[]> {
    return this.#serial(async () => {
      const devices = this.#journal.state.devices;
      const touched = new Set<string>();
      const unfinished = devices.filter((d) => d.state === 'preparing');
      if (unfinished.length > 0) {
        await this.#undo(unfinished);
        await this.#write(without(this.#journal.state, unfinished));
      }
      const stale = devices.filter(
        (d) => d.state === 'releasing' || (d.state === 'prepared' && !running.has(d.domain)),
      );
      await this.#release(stale);
      for (const d of [...unfinished, ...stale]) touched.add(d.domain);
      for (const domain of touched) this.#log.warn({ domain }, 'recovered the host devices of a domain');
      return [...touched];
    });
  }

  /** nodedev-detach: bind the stub (vfio-pci or a variant) for a later managed='no' use. The
   *  driver it replaced is journaled, so nodedev-reattach after a daemon restart restores it.
   *  A device the host needs (default route, mounted disk in its IOMMU group) only with force. */
  detach(address: PciAddress, stub = 'vfio-pci', opts: { readonly force?: boolean } = {}): Promise<boolean> {
    return this.#serial(async () => {
      const r = await detach(this.#host, this.#holder(), address, stub, opts.force === true);
      const bdf = formatPciAddress(address);
      const s = this.#journal.state;
      if (r.changed && !s.detached.some((d) => d.address === bdf)) {
        const entry = {
          address: bdf,
          stub,
          ...(r.previousDriver === undefined ? {} : { previousDriver: r.previousDriver }),
        };
        await this.#write({ ...s, detached: [...s.detached, entry] });
      }
      return r.changed;
    });
  }

  /** nodedev-reattach: give a detached device back to its host driver. */
  reattach(address: PciAddress): Promise<void> {
    return this.#serial(async () => {
      const bdf = formatPciAddress(address);
      const s = this.#journal.state;
      const entry = s.detached.find((d) => d.address === bdf);
      await reattach(this.#host, this.#holder(), address, entry?.previousDriver);
      if (entry) await this.#write({ ...s, detached: s.detached.filter((d) => d !== entry) });
    });
  }

  /** Devices nodedev-detach took from the host and nodedev-reattach has not given back. */
  detached(): readonly { readonly address: string; readonly stub: string; readonly previousDriver?: string }[] {
    return this.#journal.state.detached;
  }

  reset(address: PciAddress): Promise<void> {
    return this.#serial(() => reset(this.#host, this.#holder(), address));
  }

  /** nodedev-sriov: refused while any VF of the PF is held by a domain. */
  setVfCount(
    pf: PciAddress,
    n: number,
    autoprobe?: boolean,
  ): Promise<{ before: number; after: number; settled: boolean }> {
    return this.#serial(() => {
      const holder = this.#holder();
      return this.#host.setVfCount(pf, n, {
        holder: (vf) => holder(formatPciAddress(vf)),
        ...(autoprobe === undefined ? {} : { autoprobe }),
      });
    });
  }

  /** The domain holding a PCI function (DDDD:BB:SS.F), if one does (nodedev-vfs shows it). */
  heldBy(bdf: string): string | undefined {
    return this.#holder()(bdf);
  }

  check(address: PciAddress): Promise<AssignabilityReport> {
    return this.#host.check(address, this.#holder());
  }

  /** The domain holding a device, or the detach marker, as the leases say now (the pools skip
   *  what the device manager holds for a plain hostdev or a nodedev-detach). */
  holder(bdf: string): string | undefined {
    return this.#holder()(bdf);
  }

  #holder(): (bdf: string) => string | undefined {
    return holderOf(this.#journal.state);
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #plan(domain: string, requests: readonly HostdevRequest[]): Promise<Step[]> {
    const state = this.#journal.state;
    const aliases = new Set<string>();
    for (const r of requests) {
      const had = state.devices.find((d) => d.domain === domain && d.alias === r.alias);
      if (had || aliases.has(r.alias)) {
        throw new PassthruError(
          'OPERATION_INVALID',
          had
            ? `device ${r.alias} of domain ${domain} is already prepared (PCI device ${had.address}, generation ${had.generation})`
            : `device alias ${r.alias} is given twice for domain ${domain}`,
        );
      }
      aliases.add(r.alias);
    }
    const facts = new Map<string, DeviceFacts | undefined>();
    for (const r of requests) facts.set(formatPciAddress(r.address), await this.#host.facts(r.address));
    // The host-wide reads, once per plan; the VF tables only when a MAC is to be set.
    const setsMac = requests.some((r) => r.net?.mac !== undefined || r.ports?.some((p) => p.net.mac !== undefined));
    const view = {
      hostUse: await this.#host.hostUse(),
      // What the VF tables show, and what our leases hold where the datapath moved it off.
      adminMacs: setsMac ? [...(await this.#host.adminMacs()), ...leasedMacs(state)] : [],
    };
    return planPrepare(domain, requests, facts, holderOf(state), view);
  }

  async #prepare(domain: string, requests: readonly HostdevRequest[]): Promise<PreparedDevice[]> {
    if (requests.length === 0) return [];
    const steps = await this.#plan(domain, requests);
    const state = this.#journal.state;
    const generation = state.nextGeneration;
    let records: DeviceRecord[] = requests.map((r) => ({
      domain,
      alias: r.alias,
      address: formatPciAddress(r.address),
      generation,
      state: 'preparing',
      assigned: r.assigned,
      steps: steps.flatMap((step, seq) => (step.alias === r.alias ? [{ seq, status: 'planned' as const, step }] : [])),
    }));
    const mark = (seq: number, status: StepStatus, step?: Step): void => {
      records = records.map((d) => ({
        ...d,
        steps: d.steps.map((s) => (s.seq === seq ? { seq, status, step: step ?? s.step } : s)),
      }));
    };
    // The first write holds every record, and with them the leases, before the host changes.
    // A step that only reads (save-vf-config) is not written before it runs: a crash during it
    // leaves nothing to undo, and what it read is written with the next step's start, before
    // anything that needs it for its undo changes the host (one fsync less per VF).
    try {
      for (const [seq, step] of steps.entries()) {
        mark(seq, 'running');
        if (changesHost(step)) await this.#put(records, generation + 1);
        const result = await runStep(this.#host, step);
        mark(seq, 'done', result);
        this.#log.info({ domain, step: result }, 'hostdev step done');
      }
      const presentations = new Map<string, DevicePresentation>();
      for (const r of requests) if (r.assigned) presentations.set(r.alias, await this.#host.present(r.address));
      records = records.map((d) => {
        const presentation = presentations.get(d.alias);
        return { ...d, state: 'prepared', ...(presentation ? { presentation } : {}) };
      });
      await this.#put(records, generation + 1); // the commit
    } catch (err) {
      const cause = asPassthruError(err);
      this.#log.error({ domain, err: cause.message }, 'hostdev prepare failed, undoing');
      // The failed step may have half-happened (a MAC set, its VLAN refused): undo it too.
      await this.#undo(records);
      await this.#write(without(this.#journal.state, records));
      throw cause;
    }
    return records.map(prepared);
  }

  /** Marks the devices releasing (the commit point: a crash after it finishes the release),
   *  undoes their steps journaling each, then drops the records and with them the leases. */
  async #release(targets: readonly DeviceRecord[]): Promise<void> {
    if (targets.length === 0) return;
    // Marked releasing, undone, dropped: no write per undone step. Every undo is safe to repeat,
    // so a release killed half way is finished by recovery undoing all of it again; a mark per
    // step would only spare it repeats, at one fsync each on every release.
    const records = targets.map((d) => ({ ...d, state: 'releasing' as const }));
    await this.#put(records);
    await this.#undo(records);
    await this.#write(without(this.#journal.state, records));
  }

  /** Undoes in reverse (newest generation first, then reverse plan order); one failure does not
   *  stop the others (a VF left behind is worse). A step recorded as running is undone like a
   *  done one: every undo is safe to repeat. */
  async #undo(records: readonly DeviceRecord[]): Promise<void> {
    const todo = records
      .flatMap((d) =>
        d.steps
          .filter((s) => (s.status === 'running' || s.status === 'done') && undoChangesHost(s.step))
          .map((s) => ({ d, s })),
      )
      .sort((a, b) => b.d.generation - a.d.generation || b.s.seq - a.s.seq);
    for (const { d, s } of todo) {
      try {
        await undoStep(
          this.#host,
          s.step,
          d.steps.map((x) => x.step),
        );
        this.#log.info({ domain: d.domain, step: s.step }, 'hostdev step undone');
      } catch (err) {
        this.#log.error({ domain: d.domain, step: s.step, err: asPassthruError(err).message }, 'hostdev undo failed');
        this.#onUndoFailed();
      }
    }
  }

  /** Writes the journal with these records replacing (or added to) those of the same key. */
  async #put(records: readonly DeviceRecord[], nextGeneration?: number): Promise<void> {
    const s = this.#journal.state;
    const others = without(s, records).devices;
    await this.#write({ ...s, nextGeneration: nextGeneration ?? s.nextGeneration, devices: [...others, ...records] });
  }

  #write(next: JournalState): Promise<void> {
    return this.#journal.write(next);
  }
}

/**
 * The journal writes of a prepare that runs these steps, and of its release, in order and
 * named: the crash tier kills the daemon right before and right after each, so a new step is
 * covered without anyone listing it. Keep in step with #prepare and #release (the crash tier
 * also checks the count against a real run).
 */
export function journalWrites(steps: readonly Step[]): { prepare: string[]; release: string[] } {
  const name = (s: Step): string => `${s.kind} ${s.alias} ${s.address}`;
  return {
    prepare: [...steps.filter(changesHost).map((s) => `start ${name(s)}`), 'commit'],
    release: ['mark releasing', 'drop the records'],
  };
}

/** Whether running the step changes the host (save-vf-config only reads the VF's row). */
const changesHost = (s: Step): boolean => s.kind !== 'save-vf-config';

const key = (d: { domain: string; alias: string }): string => `${d.domain}\u0000${d.alias}`;

function without(s: JournalState, records: readonly DeviceRecord[]): JournalState {
  const gone = new Set(records.map(key));
  return { ...s, devices: s.devices.filter((d) => !gone.has(key(d))) };
}

function prepared(d: DeviceRecord): PreparedDevice {
  return {
    alias: d.alias,
    address: parsePciAddress(d.address),
    generation: d.generation,
    ...(d.presentation ? { presentation: d.presentation } : {}),
  };
}

/** The records a release names, refusing a stale generation before anything changes. */
function pick(held: readonly DeviceRecord[], domain: string, devices?: readonly DeviceRef[]): DeviceRecord[] {
  if (devices === undefined) return [...held];
  const out: DeviceRecord[] = [];
  for (const ref of devices) {
    const { alias, generation } = typeof ref === 'string' ? { alias: ref, generation: undefined } : ref;
    const d = held.find((h) => h.alias === alias);
    if (!d) continue;
    if (generation !== undefined && generation !== d.generation) {
      throw new PassthruError(
        'OPERATION_INVALID',
        `device ${alias} of domain ${domain} (PCI device ${d.address}) is held under generation ${d.generation}, not ${generation}: a newer prepare owns it, so this release is refused`,
      );
    }
    out.push(d);
  }
  return out;
}
