import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { asPassthruError, PassthruError } from '../conf/error.ts';
import { formatPciAddress } from '../conf/pci-address.ts';
import type { Logger } from '../lib/logger.ts';
import { atomicWriteFile, removeDurably } from '../lib/atomic.ts';
import type { DeviceFacts, HostOps } from './facts.ts';
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

  static async open(host: HostOps, stateDir: string, log: Logger): Promise<HostdevManager> {
    const dir = join(stateDir, 'hostdev');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new HostdevManager(host, dir, await Leases.load(join(dir, 'leases.json')), log);
  }

  holder(bdf: string): string | undefined {
    return this.#leases.holder(bdf);
  }

  prepare(domain: string, requests: readonly HostdevRequest[]): Promise<void> {
    return this.#serial(() => this.#prepare(domain, requests));
  }

  release(domain: string): Promise<void> {
    return this.#serial(() => this.#release(domain));
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

    const generation = await this.#leases.take(domain, [...facts.keys()]);
    const done: StepRecord[] = [];
    const record = (extra: StepRecord[] = []): Promise<void> =>
      this.#writeRecord({ version: 1, domain, generation, steps: [...done, ...extra] });
    try {
      for (const step of steps) {
        await record([{ status: 'running', step }]);
        const result = await runStep(this.#host, step);
        done.push({ status: 'done', step: result });
        this.#log.info({ domain, step: result }, 'hostdev step done');
      }
      await record();
    } catch (err) {
      const cause = asPassthruError(err);
      this.#log.error({ domain, err: cause.message }, 'hostdev prepare failed, undoing');
      await this.#undo(domain, done);
      await removeDurably(this.#recordPath(domain));
      await this.#leases.drop(domain, generation);
      throw cause;
    }
  }

  async #release(domain: string): Promise<void> {
    const rec = await this.readRecord(domain);
    if (!rec) return;
    await this.#undo(
      domain,
      rec.steps.filter((s) => s.status === 'done'),
    );
    await removeDurably(this.#recordPath(domain));
    await this.#leases.drop(domain, rec.generation);
  }

  /** Undoes in reverse; one failure does not stop the others (a VF left behind is worse). */
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
