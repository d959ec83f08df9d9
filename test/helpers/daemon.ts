import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { after, before } from 'node:test';
import { createSimHost } from '../../src/host/sim/create.ts';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '../../src/protocol/client.ts';
import { spawnDaemon } from '../../src/cli/local.ts';
import type { DomainSummary, VfRow, VfTable } from '../../src/protocol/wire.ts';

/** A passthrud child process on the sim host `<run>/host` with its state in `<run>/state`. */
export interface TestDaemon {
  readonly proc: ChildProcess;
  readonly client: Client;
  /** SIGTERM and wait (running guests keep running, as in production). */
  stop(): Promise<void>;
  /** SIGKILL and wait: the daemon dies at once, whatever it was doing. */
  kill(): Promise<void>;
}

export async function startDaemon(
  run: string,
  env: NodeJS.ProcessEnv = {},
  entryPoint?: string,
  args: readonly string[] = [],
  /** Its own process group (TestDaemon.proc.pid is the group's id), as systemd starts a service. */
  detached = false,
): Promise<TestDaemon> {
  const socket = join(run, 'api.sock');
  await rm(socket, { force: true });
  const proc = spawnDaemon(
    ['--host', `sim:${join(run, 'host')}`, '--state-dir', join(run, 'state'), '--socket', socket, ...args],
    join(run, 'passthrud.log'),
    // Not this machine's /etc/passthru/passthrud.conf: a test daemon has only the settings it is given.
    { ...process.env, PASSTHRU_CONFIG: '', ...env },
    entryPoint,
    detached,
  );
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };
  const client = new Client(socket);
  // The socket file appears at bind(), before listen(): ready means an API call answers.
  for (let i = 0; i < 400 && proc.exitCode === null; i++) {
    if (
      await client.get('/domains').then(
        () => true,
        () => false,
      )
    ) {
      return { proc, client, stop: () => end('SIGTERM'), kill: () => end('SIGKILL') };
    }
    await sleep(50);
  }
  await end('SIGKILL');
  throw new Error(`passthrud did not come up: ${await readFile(join(run, 'passthrud.log'), 'utf8').catch(() => '')}`);
}

/** One row of a PF's VF table, through the API. */
export async function vfRow(client: Client, pf: string, vf: number): Promise<VfRow> {
  const t = await client.get<VfTable>(`/nodedevs/${pf}/vfs`);
  const row = t.vfs.find((v) => v.vf === vf);
  if (!row) throw new Error(`no VF ${vf} in the table of ${pf}`);
  return row;
}

/** What "restored exactly" compares: the PF's view of the VF and the VF's driver. */
export function vfState(r: VfRow): { mac: string; vlan: number; qos: number; driver: string | undefined } {
  return { mac: r.mac, vlan: r.vlan, qos: r.qos, driver: r.driver };
}

/** The end of a test file's daemon: destroys the domains still running, stops it, removes `dir`. */
export async function tearDown(daemon: TestDaemon | undefined, dir: string): Promise<void> {
  const client = daemon?.client;
  for (const d of (await client?.get<DomainSummary[]>('/domains').catch(() => [])) ?? []) {
    if (d.state === 'running') await client?.post(`/domains/${d.name}/destroy`).catch(() => undefined);
  }
  await daemon?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}

/**
 * A daemon on a fresh sim host for one test file: `before` creates it (unless `skip`), `after`
 * destroys the domains still running and removes everything. `current()` follows restarts.
 */
export function simDaemonFixture(
  prefix: string,
  profile: string,
  skip: boolean,
): { dir(): string; current(): TestDaemon; replace(d: TestDaemon): void } {
  let dir = '';
  let daemon: TestDaemon | undefined;
  before(async () => {
    if (skip) return;
    dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
    await createSimHost(join(dir, 'host'), profile);
    daemon = await startDaemon(dir);
  });
  after(() => tearDown(daemon, dir));
  return {
    dir: () => dir,
    current: () => {
      if (!daemon) throw new Error('no daemon (the fixture was skipped)');
      return daemon;
    },
    replace: (d) => {
      daemon = d;
    },
  };
}
