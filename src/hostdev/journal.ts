import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassthruError } from '../conf/error.ts';
import { atomicWriteFile, removeDurably } from '../lib/atomic.ts';
import { crashPoint } from '../lib/crash-point.ts';
import type { DeviceRecord, JournalState, Step, StepRecord } from './steps.ts';

const EMPTY: JournalState = { version: 2, nextGeneration: 1, devices: [], detached: [] };

/**
 * The device manager's state file (format in steps.ts). Every write replaces the whole file
 * (tmp + fsync + rename), so what a crash leaves is always one whole state: the one before the
 * write or the one after. The crash tier kills the daemon right before and right after each
 * write (crash points `journal-before` and `journal-after`).
 */
export class Journal {
  readonly #path: string;
  #state: JournalState;

  private constructor(path: string, state: JournalState) {
    this.#path = path;
    this.#state = state;
  }

  /** Opens `<dir>/journal.json`; a state left by the first format (one record per domain in
   *  `<dir>/domains/`, leases in `<dir>/leases.json`) is carried over once. */
  static async open(dir: string): Promise<Journal> {
    const path = join(dir, 'journal.json');
    const text = await readText(path);
    if (text !== undefined) return new Journal(path, parseState(text, path));
    const journal = new Journal(path, EMPTY);
    const old = await readVersion1(dir);
    if (old.length > 0) {
      const nextGeneration = Math.max(0, ...old.map((d) => d.generation)) + 1;
      await journal.write({ ...EMPTY, nextGeneration, devices: old });
    }
    for (const f of await readdir(join(dir, 'domains')).catch(() => [])) await removeDurably(join(dir, 'domains', f));
    await removeDurably(join(dir, 'leases.json'));
    return journal;
  }

  get state(): JournalState {
    return this.#state;
  }

  async write(next: JournalState): Promise<void> {
    crashPoint('journal-before');
    await atomicWriteFile(this.#path, `${JSON.stringify(next, null, 1)}\n`);
    this.#state = next;
    crashPoint('journal-after');
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function parseState(text: string, path: string): JournalState {
  try {
    const s = JSON.parse(text) as JournalState;
    if (s.version !== 2 || !Array.isArray(s.devices) || !Array.isArray(s.detached)) throw new Error('unknown format');
    return s;
  } catch (err) {
    throw new PassthruError('STATE_CORRUPT', `device journal ${path} cannot be read: ${(err as Error).message}`);
  }
}

interface Version1Record {
  readonly version: 1;
  readonly domain: string;
  readonly generation: number;
  readonly steps: readonly { readonly status: 'running' | 'done'; readonly step: Step }[];
}

/** The first format kept a domain's steps in one list; its last write had every step done. */
async function readVersion1(dir: string): Promise<DeviceRecord[]> {
  const files = (await readdir(join(dir, 'domains')).catch(() => [] as string[])).filter((f) => f.endsWith('.json'));
  const out: DeviceRecord[] = [];
  for (const f of files) {
    const path = join(dir, 'domains', f);
    const text = await readText(path);
    if (text === undefined) continue;
    let rec: Version1Record;
    try {
      rec = JSON.parse(text) as Version1Record;
    } catch {
      throw new PassthruError('STATE_CORRUPT', `device record ${path} cannot be read`);
    }
    const committed = rec.steps.every((s) => s.status === 'done');
    const byAlias = new Map<string, StepRecord[]>();
    rec.steps.forEach((s, seq) => {
      const step = version1Step(s.step);
      byAlias.set(step.alias, [...(byAlias.get(step.alias) ?? []), { seq, status: s.status, step }]);
    });
    for (const [alias, steps] of byAlias) {
      out.push({
        domain: rec.domain,
        alias,
        address: steps[0]?.step.address ?? '',
        generation: rec.generation,
        state: committed ? 'prepared' : 'preparing',
        assigned: true,
        steps,
      });
    }
  }
  return out;
}

/** The first set-vf-config carried `mac` and `vlan` beside each other. */
function version1Step(step: Step): Step {
  if (step.kind !== 'set-vf-config' || step.settings !== undefined) return step;
  const old = step as unknown as { mac?: string; vlan: number } & Omit<Step, 'settings'>;
  const { mac, vlan, ...rest } = old;
  return {
    ...(rest as Omit<typeof step, 'settings'>),
    settings: { ...(mac === undefined ? {} : { mac: mac as never }), vlan: { id: vlan } },
  };
}
