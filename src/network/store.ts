import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassthruError } from '../conf/error.ts';
import { atomicWriteFile, removeDurably } from '../lib/atomic.ts';

export type PoolKind = 'network' | 'devicepool';

/**
 * A pool's runtime state on disk (`<state>/networks/NAME.state.json`, `<state>/devpools/...`),
 * replaced atomically with fsync on every change:
 * - `active`: started (autostart is the separate marker file NAME.autostart, as libvirt's link);
 * - `allocations`: which domain holds which member. After a daemon restart the running domains
 *   are the truth; this list tells which devices were given to a guest that died meanwhile (a
 *   quarantine pool must hold those out too);
 * - `quarantined`: members given back and held out until `nodedev-release`.
 */
export interface PoolRuntime {
  readonly version: 1;
  readonly active: boolean;
  readonly allocations: readonly {
    readonly bdf: string;
    readonly domain: string;
    readonly label?: string;
    /** A network port's XML (net-port-create), kept until net-port-delete. */
    readonly port?: string;
  }[];
  readonly quarantined: readonly string[];
}

const DIRS: Record<PoolKind, string> = { network: 'networks', devicepool: 'devpools' };

export class PoolStore {
  readonly #dir: string;

  constructor(stateDir: string) {
    this.#dir = stateDir;
  }

  dir(kind: PoolKind): string {
    return join(this.#dir, DIRS[kind]);
  }

  async init(): Promise<void> {
    for (const d of Object.values(DIRS)) await mkdir(join(this.#dir, d), { recursive: true, mode: 0o700 });
  }

  async configs(kind: PoolKind): Promise<{ name: string; xml: string; autostart: boolean }[]> {
    const files = await readdir(this.dir(kind));
    const names = files.filter((f) => f.endsWith('.xml')).map((f) => f.slice(0, -4));
    return Promise.all(
      names.sort().map(async (name) => ({
        name,
        xml: await readFile(join(this.dir(kind), `${name}.xml`), 'utf8'),
        autostart: files.includes(`${name}.autostart`),
      })),
    );
  }

  saveConfig(kind: PoolKind, name: string, xml: string): Promise<void> {
    return atomicWriteFile(join(this.dir(kind), `${name}.xml`), xml);
  }

  async removeConfig(kind: PoolKind, name: string): Promise<void> {
    for (const ext of ['xml', 'autostart', 'state.json']) await removeDurably(join(this.dir(kind), `${name}.${ext}`));
  }

  async setAutostart(kind: PoolKind, name: string, on: boolean): Promise<void> {
    const path = join(this.dir(kind), `${name}.autostart`);
    if (on) await atomicWriteFile(path, '');
    else await removeDurably(path);
  }

  saveRuntime(kind: PoolKind, name: string, state: PoolRuntime): Promise<void> {
    return atomicWriteFile(join(this.dir(kind), `${name}.state.json`), `${JSON.stringify(state)}\n`);
  }

  async runtime(kind: PoolKind, name: string): Promise<PoolRuntime | undefined> {
    const path = join(this.dir(kind), `${name}.state.json`);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const r = JSON.parse(text) as PoolRuntime;
      if (r.version !== 1 || !Array.isArray(r.allocations) || !Array.isArray(r.quarantined)) throw new Error('shape');
      return r;
    } catch {
      throw new PassthruError('STATE_CORRUPT', `runtime state of ${kind} ${name} cannot be read: ${path}`);
    }
  }
}
