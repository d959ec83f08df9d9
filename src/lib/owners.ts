import { lchown, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile } from './atomic.ts';

/** A file's owner, as chown takes it. */
export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** A path to lend: `recursive` gives back everything below it too (a directory the borrower
 *  filled with files of its own). */
export interface Lent {
  readonly path: string;
  readonly recursive?: boolean;
}

interface Entry extends Owner {
  readonly path: string;
  readonly recursive?: boolean;
  /** Who holds the path now; it goes back to uid:gid when the last one gives it back. */
  holders: string[];
}

interface LedgerFile {
  readonly version: 1;
  readonly entries: readonly Entry[];
}

/**
 * Paths lent to another owner (chown) and given back, libvirt's "remember owner" for DAC
 * labels: the first holder of a path records its owner before anything changes, later holders
 * (two domains reading one base image) only add their name, the last one to give it back puts
 * the recorded owner back. The record is written (fsync) before a chown and after a give-back,
 * so a daemon killed at any point finds every lent path in the file and its holders give it
 * back; both chowns are idempotent. Operations are serialised: a take and a give of one path
 * never interleave.
 */
export class OwnerLedger {
  readonly #file: string;
  readonly #entries: Map<string, Entry>;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(file: string, entries: Map<string, Entry>) {
    this.#file = file;
    this.#entries = entries;
  }

  static async open(file: string): Promise<OwnerLedger> {
    const text = await readFile(file, 'utf8').catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    });
    const entries = new Map<string, Entry>();
    if (text !== undefined) {
      for (const e of (JSON.parse(text) as LedgerFile).entries) entries.set(e.path, { ...e, holders: [...e.holders] });
    }
    return new OwnerLedger(file, entries);
  }

  /** Lends the paths to `to` for `holder`. A path that does not exist is skipped. */
  take(holder: string, paths: readonly Lent[], to: Owner): Promise<void> {
    return this.#serial(async () => {
      const present: string[] = [];
      for (const p of paths) {
        const known = this.#entries.get(p.path);
        if (known) {
          if (!known.holders.includes(holder)) known.holders.push(holder);
          present.push(p.path);
          continue;
        }
        const st = await stat(p.path).catch(() => undefined);
        if (!st) continue;
        this.#entries.set(p.path, {
          path: p.path,
          uid: st.uid,
          gid: st.gid,
          ...(p.recursive ? { recursive: true } : {}),
          holders: [holder],
        });
        present.push(p.path);
      }
      await this.#save();
      for (const path of present) await chownIfThere(path, to);
    });
  }

  /** Gives back what `holder` holds (only `paths`, when named): each path whose last holder
   *  this was gets its recorded owner again. */
  give(holder: string, paths?: readonly string[]): Promise<void> {
    return this.#serial(async () => {
      const only = paths === undefined ? undefined : new Set(paths);
      const back: Entry[] = [];
      for (const e of this.#entries.values()) {
        if (!e.holders.includes(holder) || (only && !only.has(e.path))) continue;
        e.holders = e.holders.filter((h) => h !== holder);
        if (e.holders.length === 0) back.push(e);
      }
      for (const e of back) await restore(e);
      for (const e of back) this.#entries.delete(e.path);
      await this.#save();
    });
  }

  /** The holders with something lent (after a restart: whose QEMU may still run). */
  holders(): Set<string> {
    return new Set([...this.#entries.values()].flatMap((e) => e.holders));
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #save(): Promise<void> {
    const file: LedgerFile = { version: 1, entries: [...this.#entries.values()] };
    return atomicWriteFile(this.#file, `${JSON.stringify(file, null, 2)}\n`);
  }
}

async function restore(e: Entry): Promise<void> {
  if (e.recursive) {
    const below = await readdir(e.path, { recursive: true }).catch(() => [] as string[]);
    for (const name of below) await chownIfThere(join(e.path, name), e);
  }
  await chownIfThere(e.path, e);
}

/** lchown: a symlink in a lent directory is changed itself, never what it points to. */
async function chownIfThere(path: string, to: Owner): Promise<void> {
  await lchown(path, to.uid, to.gid).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  });
}
