import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { quickstartXml } from '../../src/cli/run/quickstart.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import type { DomainSummary, XmlBody } from '../../src/protocol/wire.ts';
import { startDaemon, tearDown, type TestDaemon, vfRow } from '../helpers/daemon.ts';
import { e2eGuest } from './helpers/guest.ts';

/**
 * passthrud under systemd's `KillMode=process`: a stop or a crash ends the daemon's process, not
 * the QEMUs it started, and the restarted daemon takes them back. Without systemd here, the test
 * does what is harder on the guests: it SIGKILLs the daemon's whole process group.
 */
const env = e2eGuest();
const UNIT = join(import.meta.dirname, '..', '..', 'systemd', 'passthrud.service');
const PF = 'pci_0000_06_00_0';
let dir = '';
let daemon: TestDaemon | undefined;

after(() => tearDown(daemon, dir));

test('the shipped unit: after the network, restarted on failure, its directories, only the daemon killed', async () => {
  const unit = await readFile(UNIT, 'utf8');
  const directives = unit.split('\n').filter((l) => /^[A-Z]\w*=/.test(l));
  for (const d of [
    'After=network-online.target',
    'Wants=network-online.target',
    'Restart=on-failure',
    'KillMode=process',
    'StateDirectory=passthru',
    'RuntimeDirectory=passthru',
    'LogsDirectory=passthru',
    'ExecStart=passthrud',
  ]) {
    assert.ok(directives.includes(d), `${d} in ${UNIT}`);
  }
});

/** The fields of /proc/PID/stat from the state on (proc(5) numbers them from 3); the comm
 *  field before them may hold spaces. Undefined once the process is gone. */
async function stat(pid: number): Promise<string[] | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return text?.slice(text.lastIndexOf(')') + 2).split(' ');
}

async function statField(pid: number, n: number): Promise<number> {
  return Number((await stat(pid))?.[n - 3]);
}

/** Alive and not a zombie waiting for a reaper (an orphaned QEMU's parent may be slow to reap). */
async function alive(pid: number): Promise<boolean> {
  const state = (await stat(pid))?.[0];
  return state !== undefined && state !== 'Z' && state !== 'X';
}

async function consoleLines(path: string, mac: string): Promise<number> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.includes(`mac ${mac}`)).length;
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 480; i++) {
    if (await check()) return;
    await sleep(250);
  }
  throw new Error(`timed out waiting: ${what}`);
}

test('SIGKILL to the daemon and its process group: the QEMU survives and the next daemon takes it back', {
  skip: typeof env === 'string' ? env : false,
}, async () => {
  if (typeof env === 'string') return;
  dir = await mkdtemp(join(tmpdir(), 'passthru-killmode-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await startDaemon(dir, {}, undefined, [], true);
  const first = daemon;
  const vf = await vfRow(first.client, PF, 1);
  const mac = '52:54:00:00:00:11';
  const consoleLog = join(dir, 'km.console');
  const xml = quickstartXml(vf.address, env, consoleLog)
    .replace('<name>quickstart</name>', '<name>km</name>')
    .replace('52:54:00:00:00:01', mac);
  await first.client.post('/domains', { xml });
  const started = await first.client.post<DomainSummary>('/domains/km/start');
  const qemu = started.pid;
  assert.ok(qemu !== undefined);
  await until('the guest prints its NIC', async () => (await consoleLines(consoleLog, mac)) > 0);

  // The QEMU is in a session and process group of its own, not the daemon's.
  const daemonPid = first.proc.pid;
  assert.ok(daemonPid !== undefined);
  assert.equal(await statField(daemonPid, 5), daemonPid, 'the test daemon leads its process group');
  assert.notEqual(await statField(qemu, 5), daemonPid, "QEMU is not in the daemon's process group");
  assert.notEqual(await statField(qemu, 6), await statField(daemonPid, 6), "QEMU is not in the daemon's session");

  process.kill(-daemonPid, 'SIGKILL');
  await first.kill();
  assert.ok(await alive(qemu), 'QEMU outlives its daemon');
  const seen = await consoleLines(consoleLog, mac);
  await until('the guest goes on running without a daemon', async () => (await consoleLines(consoleLog, mac)) > seen);

  daemon = await startDaemon(dir, {}, undefined, [], true);
  const client = daemon.client;
  const listed = (await client.get<DomainSummary[]>('/domains')).find((d) => d.name === 'km');
  assert.equal(listed?.state, 'running');
  assert.equal(listed.pid, qemu, 'the same QEMU, taken back');
  assert.equal((await vfRow(client, PF, 1)).driver, 'vfio-pci', 'the VF stays with the guest');
  assert.match((await client.get<XmlBody>('/domains/km/xml')).xml, new RegExp(`<mac address='${mac}'/>`));
  // Taken back means driven: its QMP answers the new daemon.
  assert.equal((await client.post<DomainSummary>('/domains/km/suspend')).state, 'paused');
  assert.equal((await client.post<DomainSummary>('/domains/km/resume')).state, 'running');

  await client.post('/domains/km/destroy');
  await until('QEMU exits on destroy', async () => !(await alive(qemu)));
  assert.equal((await vfRow(client, PF, 1)).driver, vf.driver, 'destroy gives the VF back to its host driver');
});
