import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassthruError } from '../conf/error.ts';
import { atomicWriteFile, removeDurably } from '../lib/atomic.ts';

/**
 * The daemon's state on disk, libvirt's layout: the config XML of each defined domain
 * (domains/NAME.xml) and the status of each running one (run/NAME.json). Human-readable,
 * each file replaced atomically.
 */
export interface DomainStatus {
  readonly version: 1;
  readonly name: string;
  readonly pid: number;
  readonly qmpSocket: string;
  readonly pidfile: string;
  readonly consoleLog: string;
  /** The unix socket QEMU serves the serial console on, when the daemon keeps the console. */
  readonly consoleSocket?: string;
  readonly liveXml: string;
  readonly startedAt: string;
  /** Devices QEMU was asked to unplug whose guest has not let go yet (held until it does). */
  readonly unplugPending?: readonly string[];
  /** Failover standbys (virtio aliases) whose guest negotiated: their primaries are visible. */
  readonly failoverNegotiated?: readonly string[];
  /** A migration's destination whose migration is not confirmed yet: after a daemon restart
   *  its QEMU is taken back under a fresh lease (`incomingLeaseMs`), or, without one, stopped
   *  and its devices given back (the source still has the guest). */
  readonly incoming?: true;
  /** The incoming migration's lease (migration/lease.ts): restarted in full after a restart. */
  readonly incomingLeaseMs?: number;
  /** The domain was not defined here before the incoming migration: giving up forgets it. */
  readonly incomingAdded?: true;
  /** A migration's source between the transfer's start and its confirm or rollback: the
   *  destination daemon (DEST). After a daemon restart the migration is settled with it, so
   *  that the guest runs on exactly one side (migration/resume.ts). */
  readonly migratingTo?: string;
}

export class Store {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async init(): Promise<void> {
    for (const sub of ['domains', 'run', 'autostart'])
      await mkdir(join(this.dir, sub), { recursive: true, mode: 0o700 });
  }

  runDir(name: string): string {
    return join(this.dir, 'run', name);
  }

  async configs(): Promise<{ name: string; xml: string }[]> {
    const files = (await readdir(join(this.dir, 'domains'))).filter((f) => f.endsWith('.xml')).sort();
    return Promise.all(
      files.map(async (f) => ({ name: f.slice(0, -4), xml: await readFile(join(this.dir, 'domains', f), 'utf8') })),
    );
  }

  saveConfig(name: string, xml: string): Promise<void> {
    return atomicWriteFile(join(this.dir, 'domains', `${name}.xml`), xml);
  }

  removeConfig(name: string): Promise<void> {
    return removeDurably(join(this.dir, 'domains', `${name}.xml`));
  }

  /** libvirt's autostart links: a file autostart/NAME says "start NAME with the daemon". */
  async setAutostart(name: string, on: boolean): Promise<void> {
    const path = join(this.dir, 'autostart', name);
    if (on) await atomicWriteFile(path, `${name}\n`);
    else await removeDurably(path);
  }

  async autostarts(): Promise<Set<string>> {
    return new Set(await readdir(join(this.dir, 'autostart')).catch(() => []));
  }

  saveStatus(status: DomainStatus): Promise<void> {
    return atomicWriteFile(join(this.dir, 'run', `${status.name}.json`), `${JSON.stringify(status, null, 2)}\n`);
  }

  removeStatus(name: string): Promise<void> {
    return removeDurably(join(this.dir, 'run', `${name}.json`));
  }

  async statuses(): Promise<DomainStatus[]> {
    const files = (await readdir(join(this.dir, 'run'))).filter((f) => f.endsWith('.json'));
    const out: DomainStatus[] = [];
    for (const f of files) {
      const path = join(this.dir, 'run', f);
      try {
        out.push(JSON.parse(await readFile(path, 'utf8')) as DomainStatus);
      } catch (err) {
        throw new PassthruError('STATE_CORRUPT', `status file ${path} cannot be read: ${(err as Error).message}`);
      }
    }
    return out;
  }
}
