import { readFile } from 'node:fs/promises';
import { PassthruError } from '../conf/error.ts';
import { atomicWriteFile } from '../lib/atomic.ts';

/**
 * Who holds which PCI function: bdf -> (domain, generation). A new holder gets a higher
 * generation, so a late release that names an older generation can never undo the next
 * owner's setup. Persisted in one file, replaced atomically.
 */
export interface Lease {
  readonly domain: string;
  readonly generation: number;
}

interface LeaseFile {
  readonly version: 1;
  readonly nextGeneration: number;
  readonly leases: Record<string, Lease>;
}

export class Leases {
  readonly #path: string;
  #file: LeaseFile;

  private constructor(path: string, file: LeaseFile) {
    this.#path = path;
    this.#file = file;
  }

  static async load(path: string): Promise<Leases> {
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) return new Leases(path, { version: 1, nextGeneration: 1, leases: {} });
    try {
      const file = JSON.parse(text) as LeaseFile;
      if (file.version !== 1 || typeof file.leases !== 'object') throw new Error('unknown format');
      return new Leases(path, file);
    } catch (err) {
      throw new PassthruError('STATE_CORRUPT', `lease table ${path} cannot be read: ${(err as Error).message}`);
    }
  }

  holder(bdf: string): string | undefined {
    return this.#file.leases[bdf]?.domain;
  }

  /** Takes every function for the domain under one new generation. */
  async take(domain: string, bdfs: readonly string[]): Promise<number> {
    const generation = this.#file.nextGeneration;
    const leases = { ...this.#file.leases };
    for (const bdf of bdfs) leases[bdf] = { domain, generation };
    await this.#save({ version: 1, nextGeneration: generation + 1, leases });
    return generation;
  }

  /** Drops the domain's leases of that generation (and only those). */
  async drop(domain: string, generation: number): Promise<void> {
    const leases = Object.fromEntries(
      Object.entries(this.#file.leases).filter(([, l]) => !(l.domain === domain && l.generation === generation)),
    );
    await this.#save({ ...this.#file, leases });
  }

  /** Every domain that holds something. */
  holders(): Set<string> {
    return new Set(Object.values(this.#file.leases).map((l) => l.domain));
  }

  /** Drops every lease of the domain, whatever its generation (recovery after a crash). */
  async dropAll(domain: string): Promise<void> {
    const leases = Object.fromEntries(Object.entries(this.#file.leases).filter(([, l]) => l.domain !== domain));
    await this.#save({ ...this.#file, leases });
  }

  async #save(file: LeaseFile): Promise<void> {
    await atomicWriteFile(this.#path, `${JSON.stringify(file, null, 2)}\n`);
    this.#file = file;
  }
}
