import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { asPassthruError, PassthruError } from '../conf/error.ts';
import { formatPciAddress, type PciAddress } from '../conf/pci-address.ts';
import { detach, reattach, reset } from './node-ops.ts';

import type { Logger } from '../lib/logger.ts';
import { atomicWriteFile, removeDurably } from '../lib/atomic.ts';
import { crashPoint } from '../lib/crash-point.ts';
import type { AssignabilityReport, DeviceFacts, HostOps } from './facts.ts';
import { Leases } from './leases.ts';
import { planPrepare } from './plan.ts';
import type { HostdevRequest } from './request.ts';
import { runStep, undoStep } from './run-step.ts';
import type { DomainRecord, StepRecord } from './steps.ts';

/**
 * The device manager: prepares the host devices of a domain and gives them back. Host-wide
 * decisions are serialised here (one queue), so two domains can never plan on the same facts.
 * Every step is recorded (fsync) before it touches the host and marked done after.
 */
export class HostdevManager {
  readonly #host: HostOps;
  readonly #dir: string;
  readonly #leases: Leases;
  readonly #log: Logger;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(host: HostOps, dir: string, leases: Leases, log: Logger) {
    this.#host = host;
    this.#dir = dir;
    this.#leases = leases;
    this.#log = log;
  }

  /** <state>/hostdev/leases.json and one record per domain in <state>/hostdev/domains/ (apart,
   *  so that no domain name can collide with the lease table). */
  static async open(host: HostOps, stateDir: string, log: Logger): Promise<HostdevManager> {
    const dir = join(stateDir, 'hostdev');
    await mkdir(join(dir, 'domains'), { recursive: true, mode: 0o700 });
    return new HostdevManager(host, join(dir, 'domains'), await Leases.load(join(dir, 'leases.json')), log);
  }

  prepare(domain: string, requests: readonly HostdevRequest[]): Promise<void> {
    return this.#serial(() => this.#prepare(domain, requests));
  }

  release(domain: string): Promise<void> {
    return this.#serial(() => this.#release(domain));
  }

  /** nodedev-detach: bind the stub (vfio-pci or a variant) for a later managed='no' use. */
  detach(address: PciAddress, stub = 'vfio-pci'): Promise<boolean> {
    return this.#serial(() => detach(this.#host, this.#leases, address, stub));
  }

  /** nodedev-reattach: give a detached device back to its host driver. */
  reattach(address: PciAddress): Promise<void> {
    return this.#serial(() => reattach(this.#host, this.#leases, address));
  }

  reset(address: PciAddress): Promise<void> {
    return this.#serial(() => reset(this.#host, this.#leases, address));
  }

  /** nodedev-sriov: refused while any VF of the PF is held by a domain. */
  setVfCount(
    pf: PciAddress,
    n: number,
    autoprobe?: boolean,
  ): Promise<{ before: number; after: number; settled: boolean }> {
    return this.#serial(() =>
      this.#host.setVfCount(pf, n, {
        holder: (vf) => this.#leases.holder(formatPciAddress(vf)),
        ...(autoprobe === undefined ? {} : { autoprobe }),
      }),
    );
  }

  check(address: PciAddress): Promise<AssignabilityReport> {
    return this.#host.check(address, (bdf) => this.#leases.holder(bdf));
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #prepare(domain: string, requests: readonly HostdevRequest[]): Promise<void> {
    if (requests.length === 0) return;
    const facts = new Map<string, DeviceFacts | undefined>();
    for (const r of requests) facts.set(formatPciAddress(r.address), await this.#host.facts(r.address));
    const steps = planPrepare(domain, requests, facts, this.#leases);

    // The lease comes first: from here on a crash leaves a holder that recover() clears.
    const generation = await this.#leases.take(domain, [...facts.keys()]);
    const done: StepRecord[] = [];
    let current: StepRecord | undefined;
    const record = (): Promise<void> =>
      this.#writeRecord({ version: 1, domain, generation, steps: current ? [...done, current] : done });
    try {
      for (const step of steps) {
        current = { status: 'running', step };
        await record();
        const result = await runStep(this.#host, step);
        current = undefined;
        done.push({ status: 'done', step: result });
        this.#log.info({ domain, step: result }, 'hostdev step done');
      }
      await record();
    } catch (err) {
      const cause = asPassthruError(err);
      this.#log.error({ domain, err: cause.message }, 'hostdev prepare failed, undoing');
      // The failed step may have half-happened (a MAC set, its VLAN refused): undo it too.
      await this.#undo(domain, current ? [...done, current] : done);
      await removeDurably(this.#recordPath(domain));
      await this.#leases.drop(domain, generation);
      throw cause;
    }
  }

  /**
   * After a daemon restart: every domain that holds devices or has a record but whose QEMU no
   * longer runs gets its host back, including a step that was in flight when the daemon died.
   */
  recover(running: ReadonlySet<string>): Promise<string[]> {
    return this.#serial(async () => {
      const recordDomains = (await readdir(this.#dir)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
      const stale = new Set([...recordDomains, ...this.#leases.holders()].filter((d) => !running.has(d)));
      for (const domain of stale) {
        const rec = await this.readRecord(domain);
        if (rec) await this.#undo(domain, rec.steps);
        await removeDurably(this.#recordPath(domain));
        await this.#leases.dropAll(domain);
        this.#log.warn(
          { domain, steps: rec?.steps.length ?? 0 },
          'recovered host devices of a domain that is not running',
        );
      }
      return [...stale];
    });
  }

  async #release(domain: string): Promise<void> {
    const rec = await this.readRecord(domain);
    if (!rec) return;
    await this.#undo(domain, rec.steps);
    await removeDurably(this.#recordPath(domain));
    await this.#leases.drop(domain, rec.generation);
  }

  /** Undoes in reverse; one failure does not stop the others (a VF left behind is worse).
   *  Every undo is safe to repeat, so a step recorded as running is undone like a done one. */
  async #undo(domain: string, done: readonly StepRecord[]): Promise<void> {
    const all = done.map((s) => s.step);
    for (const step of [...all].reverse()) {
      try {
        await undoStep(this.#host, step, all);
        this.#log.info({ domain, step }, 'hostdev step undone');
      } catch (err) {
        this.#log.error({ domain, step, err: asPassthruError(err).message }, 'hostdev undo failed');
      }
    }
  }

  #recordPath(domain: string): string {
    return join(this.#dir, `${domain}.json`);
  }

  async #writeRecord(rec: DomainRecord): Promise<void> {
    await atomicWriteFile(this.#recordPath(rec.domain), `${JSON.stringify(rec, null, 2)}\n`);
    crashPoint('record');
  }

  async readRecord(domain: string): Promise<DomainRecord | undefined> {
    let text: string;
    try {
      text = await readFile(this.#recordPath(domain), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      return JSON.parse(text) as DomainRecord;
    } catch {
      throw new PassthruError(
        'STATE_CORRUPT',
        `hostdev record of domain ${domain} cannot be read: ${this.#recordPath(domain)}`,
      );
    }
  }
}
