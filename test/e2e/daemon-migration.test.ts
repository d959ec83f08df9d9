import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { injectFault } from '../../src/host/sim/faults.ts';
import { readNetlink } from '../../src/host/sim/state.ts';
import { readSwitch } from '../../src/host/sim/switch.ts';
import { Client } from '../../src/protocol/client.ts';
import type { DaemonEvent, InterfaceRow, MigrationReport } from '../../src/protocol/wire.ts';
import { type CertFiles, identity, makeCa, makeLeaf } from '../helpers/certs.ts';
import { startDaemon, type TestDaemon, vfRow, vfState } from '../helpers/daemon.ts';
import type { GuestNic } from './helpers/console.ts';
import { e2eGuest } from './helpers/guest.ts';
import {
  assertMacFollowed,
  consoleOf,
  enslavedVf,
  migratingGuestXml,
  nicName,
  nicRounds,
  nicUevent,
  stopHosts,
  summaryOn,
  waitConsole,
  waitNicRemoved,
  waitRound,
  watchPortRequests,
} from './helpers/migration.ts';

/**
 * Live migration between two passthrud on one machine: two sim hosts with the same profile,
 * two state directories, two sockets, both also listening with mutual TLS. Real QEMU (TCG) and
 * the test guest with net_failover; the guest's console and the sim switch are the witnesses.
 */
const execFileAsync = promisify(execFile);
const g = e2eGuest();
const skip = typeof g === 'string' ? g : false;
const PF = 'pci_0000_06_00_0';
const PF_BDF = '0000:06:00.0';
const VF = 3;
const MAC = '52:54:00:fa:33:01';

let dir = '';
let a: TestDaemon;
let b: TestDaemon;
let tlsA = '';
let tlsB = '';
let certA: CertFiles;
/** A VF no guest ever had (both hosts start alike). */
let pristine: ReturnType<typeof vfState>;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Each host's daemon arguments, to start it again after a kill. */
const hostArgs = new Map<string, string[]>();

async function startHost(name: string, cert: CertFiles): Promise<{ d: TestDaemon; tls: string }> {
  const run = join(dir, name);
  await createSimHost(join(run, 'host'), 'intel-x710-2port');
  const port = await freePort();
  const args = [
    '--listen-tls',
    `127.0.0.1:${port}`,
    '--tls-cert',
    cert.cert,
    '--tls-key',
    cert.key,
    '--tls-ca',
    cert.ca,
  ];
  hostArgs.set(name, args);
  const d = await startDaemon(run, {}, undefined, args);
  return { d, tls: `tls://127.0.0.1:${port}` };
}

/** The host's daemon again, on the same state, sim host, socket and TLS port; ready once its TLS
 *  port accepts too (it listens a moment after the unix socket answers). */
async function restartHost(name: string): Promise<TestDaemon> {
  const args = hostArgs.get(name) ?? [];
  const d = await startDaemon(join(dir, name), {}, undefined, args);
  const port = Number(/:(\d+)$/.exec(args[1] ?? '')?.[1]);
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return d;
}

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'pt-mig-'));
  const ca = makeCa(dir, 'ca');
  certA = makeLeaf(dir, 'host-a', ca);
  const hostA = await startHost('a', certA);
  const hostB = await startHost('b', makeLeaf(dir, 'host-b', ca));
  a = hostA.d;
  b = hostB.d;
  pristine = vfState(await vfRow(b.client, PF, VF));
  tlsA = hostA.tls;
  tlsB = hostB.tls;
});
after(async () => {
  if (!skip) await stopHosts([a, b], dir);
});

const stateDir = (d: TestDaemon): string => join(dir, d === a ? 'a' : 'b', 'state');
const hostDir = (d: TestDaemon): string => join(dir, d === a ? 'a' : 'b', 'host');
const summary = summaryOn;

/** Records every migration event of one daemon until stopped. */
function record(d: TestDaemon): { events: DaemonEvent[]; stop: () => void; opened: Promise<void> } {
  const events: DaemonEvent[] = [];
  const ac = new AbortController();
  let opened!: () => void;
  const p = new Promise<void>((r) => (opened = r));
  void d.client.events(
    (e) => {
      events.push(e);
      return false;
    },
    opened,
    ac.signal,
  );
  return { events, stop: () => ac.abort(), opened: p };
}

test('a guest without host devices moves to the other daemon and runs there', { skip, timeout: 240_000 }, async () => {
  if (typeof g === 'string') return;
  const name = 'mig-plain';
  await a.client.post('/domains', { xml: migratingGuestXml(name, g, { mac: '52:54:00:fa:33:09' }) });
  await a.client.post(`/domains/${name}/start`);
  await waitRound(
    consoleOf(stateDir(a), name),
    (r) => r.some((n) => n.driver === 'virtio_net'),
    120_000,
    'virtio NIC on A',
  );
  const report = await a.client.post<MigrationReport>(`/domains/${name}/migrate`, {
    dest: `unix:${b.client.endpoint.kind === 'unix' ? b.client.endpoint.path : ''}`,
    live: true,
  });
  assert.equal(report.unplugged.length, 0);
  assert.deepEqual(
    report.phases.map((p) => p.phase),
    ['check', 'prepare', 'transfer', 'confirm', 'done'],
  );
  assert.equal((await summary(a, name))?.state, 'shutoff');
  assert.equal((await summary(b, name))?.state, 'running');
  // The guest goes on printing on B: it runs there.
  await waitRound(
    consoleOf(stateDir(b), name),
    (r) => r.some((n) => n.driver === 'virtio_net'),
    60_000,
    'virtio NIC on B',
  );
  await b.client.post(`/domains/${name}/destroy`);
});

test("failover: the VF leaves with the guest's help, the MAC follows, the port profile is pre-associated on B, and the guest gets a VF of B enslaved again", {
  skip,
  timeout: 300_000,
}, async (t) => {
  if (typeof g === 'string') return;
  const name = 'mig-failover';
  const beforeA = vfState(await vfRow(a.client, PF, VF));
  const beforeB = vfState(await vfRow(b.client, PF, VF));
  await a.client.post('/domains', { xml: migratingGuestXml(name, g, { mac: MAC, vf: VF, portProfile: 'web' }) });
  await a.client.post(`/domains/${name}/start`);
  const consoleA = consoleOf(stateDir(a), name);
  assert.equal(readNetlink(hostDir(a), PF_BDF).vfs.find((r) => r.vf === VF)?.port?.request, 'associate');
  await waitRound(consoleA, enslavedVf(MAC), 150_000, 'VF enslaved to the failover master on A');
  assert.equal((await vfRow(a.client, PF, VF)).mac, MAC);

  const evA = record(a);
  const evB = record(b);
  await Promise.all([evA.opened, evB.opened]);
  const portsB = watchPortRequests(hostDir(b), PF_BDF, VF);
  const t0 = Date.now();
  const report = await a.client.post<MigrationReport>(`/domains/${name}/migrate`, { dest: tlsB, live: true });
  // B's switch was asked to get ready for the guest before B's QEMU started (prepare), and to
  // move it only when the guest arrived (finish); A's port is disassociated with its release.
  assert.deepEqual(portsB.stop(), [undefined, 'preassociate-rr', 'associate']);
  assert.equal(readNetlink(hostDir(a), PF_BDF).vfs.find((r) => r.vf === VF)?.port, undefined);
  t.diagnostic(`failover migration over TLS: ${JSON.stringify({ ...report, phases: undefined })}`);
  assert.deepEqual(report.unplugged, ['hostdev0']);
  assert.ok(report.statuses.includes('wait-unplug'), report.statuses.join(' > '));
  assert.ok(report.vfLessMs !== undefined);

  // The source: guest gone, its VF restored exactly; the destination holds its VF.
  assert.equal((await summary(a, name))?.state, 'shutoff');
  assert.deepEqual(vfState(await vfRow(a.client, PF, VF)), beforeA);
  assert.equal((await summary(b, name))?.state, 'running');
  const rowB = await vfRow(b.client, PF, VF);
  assert.equal(rowB.mac, MAC);
  assert.notDeepEqual(vfState(rowB), beforeB);

  // The guest saw its VF go (on A, or on B before the new one is probed) and come back enslaved on B.
  const consoleB = consoleOf(stateDir(b), name);
  await waitRound(consoleB, enslavedVf(MAC), 150_000, 'VF enslaved to the failover master on B');
  const roundsA = await waitRound(consoleA, () => true, 1_000, 'rounds on A');
  // The guest's kernel reported the VF's netdev gone (on A, or printed after the switch-over on B).
  await waitNicRemoved([consoleA, consoleB], nicName(roundsA, 'e1000e', MAC), 10_000);
  t.diagnostic(`migrate request -> VF enslaved on B: ${Date.now() - t0} ms`);

  // The switches: on A the MAC leaves the VF at UNPLUG_PRIMARY (to the standby path), then
  // leaves the host; on B it waits on the standby path and goes on the VF when QEMU plugs it.
  assertMacFollowed(hostDir(a), hostDir(b), MAC, VF);

  // Both daemons reported it.
  evA.stop();
  evB.stop();
  const phases = (evs: DaemonEvent[]) => [...new Set(evs.flatMap((e) => (e.type === 'migration' ? [e.phase] : [])))];
  assert.deepEqual(phases(evA.events), ['check', 'prepare', 'transfer', 'unplugged', 'confirm', 'done']);
  assert.deepEqual(phases(evB.events), ['prepare', 'done']);
  assert.ok(
    evA.events.some((e) => e.type === 'migration' && (e.ramTotal ?? 0) > 0),
    'RAM progress reported',
  );
});

test('no VF on the destination: refused before anything moves, nothing changed on either host', {
  skip,
  timeout: 120_000,
}, async (t) => {
  if (typeof g === 'string') return;
  const name = 'mig-failover';
  // The guest is on B now (previous test); A gets no VFs at all.
  assert.equal((await summary(b, name))?.state, 'running');
  await a.client.post(`/nodedevs/${PF}/sriov`, { numVfs: 0 });
  const rowB = await vfRow(b.client, PF, VF);
  try {
    await assert.rejects(b.client.post(`/domains/${name}/migrate`, { dest: tlsA, live: true }), (e: unknown) => {
      t.diagnostic(`refused: ${(e as Error).message}`);
      return e instanceof PassthruError && e.message.includes('0000:06:02.3');
    });
    assert.equal((await summary(b, name))?.state, 'running');
    assert.deepEqual(await vfRow(b.client, PF, VF), rowB);
    assert.equal((await summary(a, name))?.state, 'shutoff');
  } finally {
    await a.client.post(`/nodedevs/${PF}/sriov`, { numVfs: 8 });
  }
});

test('the destination QEMU killed mid-migration: the guest runs on at the source with its VF plugged back', {
  skip,
  timeout: 180_000,
}, async (t) => {
  if (typeof g === 'string') return;
  const name = 'mig-failover';
  const beforeA = vfState(await vfRow(a.client, PF, VF));
  const consoleB = consoleOf(stateDir(b), name);
  const evB = record(b);
  await evB.opened;
  // Kill A's incoming QEMU as soon as B's QEMU has started sending (its guest let go of the VF).
  const killer = new Promise<void>((resolve) => {
    const ac = new AbortController();
    void b.client.events(
      (e) => {
        if (e.type === 'migration' && e.role === 'source' && e.phase === 'unplugged') {
          void summary(a, name).then((s) => {
            if (s?.pid) process.kill(s.pid, 'SIGKILL');
            resolve();
          });
          return true;
        }
        return false;
      },
      undefined,
      ac.signal,
    );
  });
  await assert.rejects(b.client.post(`/domains/${name}/migrate`, { dest: tlsA, live: true }), (e: unknown) => {
    t.diagnostic(`refusal: ${(e as Error).message}`);
    return e instanceof PassthruError;
  });
  await killer;
  const phases = (): string[] => evB.events.flatMap((e) => (e.type === 'migration' ? [e.phase] : []));
  for (let i = 0; i < 100 && !phases().includes('rolled-back'); i++) await new Promise((r) => setTimeout(r, 50));
  evB.stop();
  assert.equal((await summary(b, name))?.state, 'running');
  assert.ok(phases().includes('rolled-back'), phases().join(' '));
  // QEMU plugged the source's VF back (the daemon waits for it) and the MAC's filter is back on it.
  assert.equal(readSwitchAny(hostDir(b)), `vf${VF}`);
  const lastB = readSwitch(hostDir(b))
    .moves.filter((m) => m.mac === MAC)
    .at(-1);
  assert.match(lastB?.reason ?? '', /rollback: primary plugged again/);
  // The guest has its VF again, enslaved to the failover master (in a round printed after the
  // rollback; the unplug and re-plug can both fall between two rounds of the console).
  const roundsAfter = (await waitRound(consoleB, () => true, 1_000, 'rounds on B')).length;
  await waitRound(consoleB, (r, i) => i >= roundsAfter && enslavedVf(MAC)(r), 120_000, 'VF enslaved again on B');
  // The destination gave back everything.
  // (A keeps its own definition of the domain from before; nothing of it runs.)
  const settled = async (): Promise<string> => (await summary(a, name))?.state ?? 'undefined';
  for (let i = 0; i < 100 && (await settled()) === 'migrating'; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await settled(), 'shutoff');
  assert.deepEqual(vfState(await vfRow(a.client, PF, VF)), beforeA);
  // The destination's pre-association was withdrawn; the source's port stays associated.
  assert.equal(readNetlink(hostDir(a), PF_BDF).vfs.find((r) => r.vf === VF)?.port, undefined);
  assert.equal(readNetlink(hostDir(b), PF_BDF).vfs.find((r) => r.vf === VF)?.port?.request, 'associate');
});

test("the destination refuses the guest after 'completed' (its switch refuses the association): the source resumes it and QEMU plugs its VF back", {
  skip,
  timeout: 240_000,
}, async (t) => {
  if (typeof g === 'string') return;
  const name = 'mig-failover';
  assert.equal((await summary(b, name))?.state, 'running');
  const beforeA = vfState(await vfRow(a.client, PF, VF));
  const consoleB = consoleOf(stateDir(b), name);
  const vfNic = nicName(await waitRound(consoleB, enslavedVf(MAC), 1_000, 'the VF on B'), 'e1000e', MAC);
  const start = (await readFile(consoleB, 'utf8')).length;
  // A pre-associates at prepare, and its switch refuses the association at finish.
  await injectFault(hostDir(a), { op: 'setVfPort', match: ' associate web', nth: 1, errno: 'EIO' });
  const evB = record(b);
  await evB.opened;
  await assert.rejects(b.client.post(`/domains/${name}/migrate`, { dest: tlsA, live: true }), (e: unknown) => {
    t.diagnostic(`refusal: ${(e as Error).message}`);
    return e instanceof PassthruError && e.message.includes('associate');
  });
  const phases = (): string[] => evB.events.flatMap((e) => (e.type === 'migration' ? [e.phase] : []));
  for (let i = 0; i < 100 && !phases().includes('rolled-back'); i++) await new Promise((r) => setTimeout(r, 50));
  evB.stop();
  assert.ok(phases().includes('confirm') && phases().includes('rolled-back'), phases().join(' '));
  assert.equal((await summary(b, name))?.state, 'running');
  assert.equal((await summary(a, name))?.state, 'shutoff');
  // The guest had let go of its VF and the migration had completed: QEMU plugs it back only
  // because passthru makes it (a migration that fails), and the guest enslaves it again.
  // The guest's kernel reports the VF gone; a round printed after that shows it enslaved again.
  await waitConsole(
    consoleB,
    (text) => {
      const gone = nicUevent(text.slice(start), 'remove', vfNic);
      return gone >= 0 && nicRounds(text.slice(start + gone)).some(enslavedVf(MAC));
    },
    120_000,
    'the VF gone, then enslaved again on B',
  );
  assert.equal(readSwitchAny(hostDir(b)), `vf${VF}`);
  // A gave back everything; B's port stays associated.
  assert.deepEqual(vfState(await vfRow(a.client, PF, VF)), beforeA);
  assert.equal(readNetlink(hostDir(a), PF_BDF).vfs.find((r) => r.vf === VF)?.port, undefined);
  assert.equal(readNetlink(hostDir(b), PF_BDF).vfs.find((r) => r.vf === VF)?.port?.request, 'associate');
});

/** Waits (bounded) until `d` says `name` is in `state`. */
async function waitState(d: TestDaemon, name: string, state: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const now = (await summary(d, name))?.state ?? 'undefined';
    if (now === state) return;
    if (Date.now() > end) throw new Error(`domain ${name}: ${now}, not ${state}, after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs `act` once `d` reports the source's RAM transfer under way. */
function onTransfer(d: TestDaemon, act: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const ac = new AbortController();
    void d.client.events(
      (e) => {
        if (e.type === 'migration' && e.role === 'source' && (e.ramTransferred ?? 0) > 0) {
          act().then(resolve, reject);
          return true;
        }
        return false;
      },
      undefined,
      ac.signal,
    );
  });
}

test('the link cut mid-transfer (the stream reset): the guest runs on at the source with its VF back, the destination gave everything back', {
  skip,
  timeout: 240_000,
}, async (t) => {
  if (typeof g === 'string') return;
  const name = 'mig-failover';
  assert.equal((await summary(b, name))?.state, 'running');
  const beforeA = vfState(await vfRow(a.client, PF, VF));
  const consoleB = consoleOf(stateDir(b), name);
  const movesBefore = readSwitch(hostDir(b)).moves.length;
  // Every TCP connection of A's incoming QEMU is aborted in the kernel (ss -K): both QEMUs see
  // their stream reset, as when a link goes down between two hosts.
  const cut = onTransfer(b, async () => {
    const pid = (await summary(a, name))?.pid;
    assert.ok(pid, 'the incoming QEMU on A');
    const listening = execFileSync('ss', ['-Htnp', 'state', 'established'], { encoding: 'utf8' })
      .split('\n')
      .find((l) => l.includes(`pid=${pid},`));
    const port = /:(\d+)\s/.exec(listening ?? '')?.[1];
    assert.ok(port, `a connection of QEMU ${pid}: ${listening ?? 'none'}`);
    execFileSync('ss', ['-K', 'sport', '=', `:${port}`]);
    t.diagnostic(`cut the stream on port ${port}`);
  });
  await assert.rejects(b.client.post(`/domains/${name}/migrate`, { dest: tlsA, live: true }), (e: unknown) => {
    t.diagnostic(`refusal: ${(e as Error).message}`);
    return e instanceof PassthruError;
  });
  await cut;
  assert.equal((await summary(b, name))?.state, 'running');
  // The guest had let go of its VF (UNPLUG_PRIMARY moved its MAC to the standby path) and has it
  // again: QEMU plugged it back when the stream failed, and the MAC's filter went back on it.
  const moves = readSwitch(hostDir(b))
    .moves.slice(movesBefore)
    .filter((m) => m.mac === MAC);
  assert.deepEqual(
    moves.map((m) => m.to),
    ['standby', `vf${VF}`],
  );
  assert.match(moves[1]?.reason ?? '', /rollback: primary plugged again/);
  // (The unplug and the re-plug can fall between two rounds of the console.)
  const roundsAfter = (await waitRound(consoleB, () => true, 1_000, 'rounds on B')).length;
  await waitRound(consoleB, (r, i) => i >= roundsAfter && enslavedVf(MAC)(r), 120_000, 'VF enslaved again on B');
  await waitState(a, name, 'shutoff', 30_000);
  assert.deepEqual(vfState(await vfRow(a.client, PF, VF)), beforeA);
  assert.equal(readNetlink(hostDir(a), PF_BDF).vfs.find((r) => r.vf === VF)?.port, undefined);
});

test('the source daemon killed mid-transfer: its QEMU finishes alone, and the restarted daemon settles it — the guest runs on exactly one side, each host whole', {
  skip,
  timeout: 300_000,
}, async (t) => {
  if (typeof g === 'string') return;
  const name = 'mig-failover';
  assert.equal((await summary(b, name))?.state, 'running');
  const killed = onTransfer(b, async () => {
    await b.kill();
  });
  await assert.rejects(b.client.post(`/domains/${name}/migrate`, { dest: tlsA, live: true }));
  await killed;
  b = await restartHost('b');
  // QEMU on B went on alone and completed: the restarted daemon asks A to run the guest.
  await waitState(b, name, 'shutoff', 120_000);
  assert.equal((await summary(a, name))?.state, 'running');
  assert.deepEqual(vfState(await vfRow(b.client, PF, VF)), pristine);
  assert.equal(readNetlink(hostDir(b), PF_BDF).vfs.find((r) => r.vf === VF)?.port, undefined);
  assert.equal((await vfRow(a.client, PF, VF)).mac, MAC);
  assert.equal(readNetlink(hostDir(a), PF_BDF).vfs.find((r) => r.vf === VF)?.port?.request, 'associate');
  const roundsA = await waitRound(consoleOf(stateDir(a), name), enslavedVf(MAC), 150_000, 'VF enslaved on A');
  t.diagnostic(`rounds on A until the VF: ${roundsA.length}`);
});

function readSwitchAny(host: string, mac = MAC): string | undefined {
  for (const macs of Object.values(readSwitch(host).steering)) if (macs[mac]) return macs[mac];
  return undefined;
}

/** A hostdev network of one VF, listed by address: the two hosts list different VFs. */
const oneVfNetwork = (fn: number): string => `<network>
  <name>vfs</name>
  <forward mode='hostdev' managed='yes'>
    <address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x${fn}'/>
  </forward>
</network>`;

/** Network 'vfs' on A and on B, each with one VF (function fnA of A's PF, fnB of B's). */
async function startOneVfNetworks(fnA: number, fnB: number): Promise<void> {
  for (const [d, fn] of [
    [a, fnA],
    [b, fnB],
  ] as const) {
    await d.client.post('/networks', { xml: oneVfNetwork(fn) });
    await d.client.post('/networks/vfs/start');
  }
}

async function removeOneVfNetworks(): Promise<void> {
  for (const d of [a, b]) {
    await d.client.post('/networks/vfs/destroy').catch(() => undefined);
    await d.client.delete('/networks/vfs').catch(() => undefined);
  }
}

test("a network's VF: the check asks B for a free VF of its same-named network, and the guest arrives on B's VF (another address)", {
  skip,
  timeout: 300_000,
}, async (t) => {
  if (typeof g === 'string') return;
  const name = 'mig-net';
  const mac = '52:54:00:fa:33:0e';
  const [vfA, vfB] = [1, 6];
  await startOneVfNetworks(vfA, vfB);
  const beforeA = vfState(await vfRow(a.client, PF, vfA));
  try {
    await a.client.post('/domains', { xml: migratingGuestXml(name, g, { mac, network: 'vfs' }) });
    await a.client.post(`/domains/${name}/start`);
    await waitRound(consoleOf(stateDir(a), name), enslavedVf(mac), 150_000, 'VF enslaved on A');
    assert.equal((await vfRow(a.client, PF, vfA)).mac, mac);

    // B's only VF of 'vfs' busy: the check refuses with libvirt's words, nothing moves.
    const blocker = 'mig-net-blocker';
    await b.client.post('/domains', {
      xml: migratingGuestXml(blocker, g, { mac: '52:54:00:fa:33:0f', network: 'vfs' }),
    });
    await b.client.post(`/domains/${blocker}/start`);
    const evA = record(a);
    await evA.opened;
    await assert.rejects(a.client.post(`/domains/${name}/migrate`, { dest: tlsB, live: true }), (e: unknown) => {
      t.diagnostic(`refused: ${(e as Error).message}`);
      return (
        e instanceof PassthruError &&
        e.message.includes('requires exclusive access to interfaces, but none are available')
      );
    });
    evA.stop();
    assert.ok(!evA.events.some((e) => e.type === 'migration' && e.phase === 'prepare'), 'refused at the check');
    assert.equal((await summary(a, name))?.state, 'running');
    assert.equal((await summary(b, name))?.state ?? 'undefined', 'undefined');
    await b.client.post(`/domains/${blocker}/destroy`);

    const report = await a.client.post<MigrationReport>(`/domains/${name}/migrate`, { dest: tlsB, live: true });
    t.diagnostic(`network VF migration: ${JSON.stringify({ ...report, phases: undefined })}`);
    assert.deepEqual(report.unplugged, ['hostdev0']);
    assert.equal((await summary(b, name))?.state, 'running');
    // B gave its own VF of 'vfs' (function 6), programmed with the guest's MAC; A's is restored.
    assert.equal((await vfRow(b.client, PF, vfB)).mac, mac);
    assert.deepEqual(vfState(await vfRow(a.client, PF, vfA)), beforeA);
    const { xml: live } = await b.client.get<{ xml: string }>(`/domains/${name}/xml`);
    assert.match(live, /<interface type='hostdev'[^>]*>[\s\S]*function='0x6'/);
    await waitRound(consoleOf(stateDir(b), name), enslavedVf(mac), 150_000, 'VF of B enslaved on B');
    // B follows the arrived guest's events: its failover negotiation shows in domiflist.
    const visible = async (): Promise<boolean | undefined> =>
      (await b.client.get<InterfaceRow[]>(`/domains/${name}/interfaces`)).find((r) => r.alias === 'hostdev0')
        ?.guestVisible;
    for (let i = 0; i < 100 && (await visible()) !== true; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await visible(), true, 'the primary is visible to the guest on B (FAILOVER_NEGOTIATED followed)');
    const swB = readSwitch(hostDir(b)).moves.filter((m) => m.mac === mac);
    assert.deepEqual(
      swB.map((m) => m.to),
      ['standby', `vf${vfB}`],
    );
    await b.client.post(`/domains/${name}/destroy`);
  } finally {
    await removeOneVfNetworks();
  }
});

test('--unplug-hostdevs: the pool VF leaves before the migration, a VF of B comes back with the same MAC, the gap is reported; a VF named by address blocks', {
  skip,
  timeout: 300_000,
}, async (t) => {
  if (typeof g === 'string') return;
  const name = 'mig-unplug';
  const mac = '52:54:00:fa:33:1a';
  const [vfA, vfB] = [2, 7];
  await startOneVfNetworks(vfA, vfB);
  const beforeA = vfState(await vfRow(a.client, PF, vfA));
  const blocker = 'mig-unplug-byaddr';
  try {
    // A VF named by its host address has no pool on B to come from: libvirt's refusal.
    const byAddress = migratingGuestXml(blocker, g, { mac: '52:54:00:fa:33:1b', vf: 4 }).replace(
      /\s*<teaming type='(transient|persistent)'[^>]*\/>/g,
      '',
    );
    await a.client.post('/domains', { xml: byAddress });
    await a.client.post(`/domains/${blocker}/start`);
    await assert.rejects(
      a.client.post(`/domains/${blocker}/migrate`, { dest: tlsB, live: true, unplugHostdevs: true }),
      (e: unknown) =>
        e instanceof PassthruError && e.message === "cannot migrate a domain with <interface type='hostdev'>",
    );
    await a.client.post(`/domains/${blocker}/destroy`);

    await a.client.post('/domains', { xml: migratingGuestXml(name, g, { mac, network: 'vfs', failover: false }) });
    await a.client.post(`/domains/${name}/start`);
    const consoleA = consoleOf(stateDir(a), name);
    const withNic = (r: GuestNic[]) => r.some((n) => n.driver === 'e1000e' && n.mac === mac);
    await waitRound(consoleA, withNic, 150_000, 'the VF on A');
    // Without the flag a pool VF without a standby blocks, and the hint names the flag.
    await assert.rejects(a.client.post(`/domains/${name}/migrate`, { dest: tlsB, live: true }), (e: unknown) => {
      assert.ok(e instanceof PassthruError);
      assert.equal(e.message, "cannot migrate a domain with <interface type='hostdev'>");
      assert.match(e.hint ?? '', /--unplug-hostdevs/);
      return true;
    });

    const report = await a.client.post<MigrationReport>(`/domains/${name}/migrate`, {
      dest: tlsB,
      live: true,
      unplugHostdevs: true,
    });
    t.diagnostic(`unplug/replug migration: ${JSON.stringify({ ...report, phases: report.phases })}`);
    assert.deepEqual(report.unplugged, ['hostdev0']);
    assert.deepEqual(
      report.replugged?.map((r) => [r.alias, r.host]),
      [['hostdev0', `0000:06:02.${vfB}`]],
    );
    assert.ok((report.unplugGapMs ?? 0) > 0, 'the gap is reported');
    assert.equal((await summary(a, name))?.state, 'shutoff');
    assert.equal((await summary(b, name))?.state, 'running');
    assert.equal((await vfRow(b.client, PF, vfB)).mac, mac);
    assert.deepEqual(vfState(await vfRow(a.client, PF, vfA)), beforeA);

    // The guest saw the NIC leave and come back with its MAC (on B). It lists its NICs once a
    // second, on A until the switch-over and on B after it: a round without the NIC is on either
    // side, unless the whole gap was shorter than a round (on a quiet machine it is ~1 s).
    const roundsA = await waitRound(consoleA, () => true, 1_000, 'rounds on A');
    const consoleB = consoleOf(stateDir(b), name);
    await waitRound(consoleB, withNic, 150_000, 'the VF back on B');
    await waitNicRemoved([consoleA, consoleB], nicName(roundsA, 'e1000e', mac), 10_000);
    await b.client.post(`/domains/${name}/destroy`);
  } finally {
    await a.client.post(`/domains/${blocker}/destroy`).catch(() => undefined);
    await removeOneVfNetworks();
  }
});

test('a peer without a certificate from the CA cannot ask for a migration', { skip, timeout: 60_000 }, async () => {
  if (typeof g === 'string') return;
  const rogueCa = makeCa(dir, 'rogue');
  const intruder = new Client(tlsB, { ...identity(makeLeaf(dir, 'intruder', rogueCa)), ca: identity(certA).ca });
  await assert.rejects(
    intruder.post('/migrations/incoming', { xml: '<domain/>', listenHost: '127.0.0.1', tls: false }),
    (e: unknown) => e instanceof PassthruError && e.code === 'DAEMON_UNREACHABLE',
  );
});

/** The last time the source reported its RAM sent moving, from its migration events. */
function lastProgressAt(events: { at: number; e: DaemonEvent }[]): number {
  let sent = -1;
  let at = 0;
  for (const { at: t, e } of events) {
    if (e.type !== 'migration' || e.status !== 'active' || e.ramTransferred === undefined) continue;
    if (e.ramTransferred === sent) continue;
    sent = e.ramTransferred;
    at = t;
  }
  return at;
}

/** Every event of one daemon with its arrival time, until stopped. */
function timed(d: TestDaemon): { events: { at: number; e: DaemonEvent }[]; stop: () => void; opened: Promise<void> } {
  const events: { at: number; e: DaemonEvent }[] = [];
  const ac = new AbortController();
  let opened!: () => void;
  const p = new Promise<void>((r) => (opened = r));
  void d.client.events(
    (e) => {
      events.push({ at: Date.now(), e });
      return false;
    },
    opened,
    ac.signal,
  );
  return { events, stop: () => ac.abort(), opened: p };
}

/** `p`, or a failure naming `what` after `ms` (a step that never came must not hang the file). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

const STALL_NAME = 'mig-stall';
const STALL_VF = 5;
/** A's VF of the stall tests before any guest had it. */
let pristineA: ReturnType<typeof vfState>;
const STALL_MAC = '52:54:00:fa:33:2a';
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('a link gone silent (the destination QEMU frozen with SIGSTOP): no progress for the stall deadline cancels, the guest keeps its VF on A, B gives everything back', {
  skip,
  timeout: 300_000,
}, async (t) => {
  if (typeof g === 'string') return;
  const name = STALL_NAME;
  const pristineB = vfState(await vfRow(b.client, PF, STALL_VF));
  pristineA = vfState(await vfRow(a.client, PF, STALL_VF));
  await a.client.post('/domains', { xml: migratingGuestXml(name, g, { mac: STALL_MAC, vf: STALL_VF }) });
  await a.client.post(`/domains/${name}/start`);
  const consoleA = consoleOf(stateDir(a), name);
  await waitRound(consoleA, enslavedVf(STALL_MAC), 150_000, 'VF enslaved on A');
  const evA = timed(a);
  const evB = record(b);
  await Promise.all([evA.opened, evB.opened]);
  // B's QEMU stops reading as soon as the stream flows: the source fills the socket, then nothing moves.
  let frozen = 0;
  let stoppedAt = 0;
  const freeze = onTransfer(a, async () => {
    frozen = (await summary(b, name))?.pid ?? 0;
    assert.ok(frozen > 0, 'the incoming QEMU on B');
    process.kill(frozen, 'SIGSTOP');
    stoppedAt = Date.now();
  });
  try {
    await assert.rejects(
      a.client.post(`/domains/${name}/migrate`, {
        dest: `unix:${b.client.endpoint.kind === 'unix' ? b.client.endpoint.path : ''}`,
        live: true,
        bandwidth: 1,
        stallTimeoutS: 3,
      }),
      (e: unknown) => {
        t.diagnostic(`refusal: ${(e as Error).message}`);
        return (
          e instanceof PassthruError &&
          /^no progress for 3 s \(status active, [\d.]+ MiB sent\): migration cancelled$/.test(e.message)
        );
      },
    );
    const doneAt = Date.now();
    await within(freeze, 30_000, "the transfer started and B's QEMU was frozen");
    // (The events come on their own connection: they may trail the answer.)
    const rolledBack = (x: { e: DaemonEvent }): boolean => x.e.type === 'migration' && x.e.phase === 'rolled-back';
    for (let i = 0; i < 100 && !evA.events.some(rolledBack); i++) await new Promise((r) => setTimeout(r, 50));
    const lastMove = lastProgressAt(evA.events);
    t.diagnostic(
      `SIGSTOP -> rolled back: ${doneAt - stoppedAt} ms; last RAM progress -> rolled back (stall deadline 3 s): ${doneAt - lastMove} ms`,
    );
    // The source said why, and rolled back: the guest runs on A, its VF plugged back and the MAC on it.
    const rolled = evA.events.find(rolledBack)?.e;
    assert.equal(rolled?.type === 'migration' ? rolled.reason : undefined, 'stalled');
    assert.equal((await summary(a, name))?.state, 'running');
    assert.equal((await vfRow(a.client, PF, STALL_VF)).mac, STALL_MAC);
    const lastA = readSwitch(hostDir(a))
      .moves.filter((m) => m.mac === STALL_MAC)
      .at(-1);
    assert.equal(lastA?.to, `vf${STALL_VF}`);
    assert.match(lastA?.reason ?? '', /rollback: primary plugged again/);
    const roundsAfter = (await waitRound(consoleA, () => true, 1_000, 'rounds on A')).length;
    await waitRound(
      consoleA,
      (r, i) => i >= roundsAfter && enslavedVf(STALL_MAC)(r),
      120_000,
      'VF enslaved again on A',
    );
    // B: its frozen QEMU is gone, no domain, its VF exactly as before, and it said why.
    for (let i = 0; i < 100 && alive(frozen); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(!alive(frozen), 'the frozen incoming QEMU on B was stopped');
    assert.equal(await summary(b, name), undefined);
    assert.deepEqual(vfState(await vfRow(b.client, PF, STALL_VF)), pristineB);
    for (let i = 0; i < 100 && !evB.events.some((e) => rolledBack({ e })); i++)
      await new Promise((r) => setTimeout(r, 50));
    const rolledB = evB.events.find((e) => rolledBack({ e }));
    assert.match(rolledB?.type === 'migration' ? (rolledB.detail ?? '') : '', /^no progress for 3 s/);
    assert.equal(rolledB?.type === 'migration' ? rolledB.reason : undefined, 'stalled');
  } finally {
    evA.stop();
    evB.stop();
    if (frozen > 0 && alive(frozen)) process.kill(frozen, 'SIGCONT');
  }
});

test('the source daemon killed mid-transfer and not back: B gives the migration up when its lease lapses (no domain, VF restored); A, restarted, keeps the guest', {
  skip,
  timeout: 300_000,
}, async (t) => {
  if (typeof g === 'string') return;
  const name = STALL_NAME;
  assert.equal((await summary(a, name))?.state, 'running');
  const pristineB = vfState(await vfRow(b.client, PF, STALL_VF));
  const evB = timed(b);
  await evB.opened;
  let incomingPid = 0;
  let killedAt = 0;
  const killed = onTransfer(a, async () => {
    incomingPid = (await summary(b, name))?.pid ?? 0;
    await a.kill();
    killedAt = Date.now();
  });
  await assert.rejects(
    a.client.post(`/domains/${name}/migrate`, { dest: tlsB, live: true, bandwidth: 1, incomingLeaseS: 3 }),
  );
  await within(killed, 30_000, 'the transfer started and A was killed');
  assert.ok(incomingPid > 0, 'the incoming QEMU on B');
  // Nobody speaks for A: B's lease (3 s) lapses and B gives everything back on its own.
  const end = Date.now() + 60_000;
  const lapsed = (): { at: number; e: DaemonEvent } | undefined =>
    evB.events.find((x) => x.e.type === 'migration' && x.e.phase === 'rolled-back');
  while (!lapsed() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  evB.stop();
  const ev = lapsed();
  assert.ok(ev, 'B gave the migration up');
  assert.equal(ev.e.type === 'migration' ? ev.e.reason : undefined, 'lease-lapsed');
  assert.match(ev.e.type === 'migration' ? (ev.e.detail ?? '') : '', /^no word from the source for 3 s/);
  t.diagnostic(`source killed -> B restored: ${ev.at - killedAt} ms (lease 3 s, renewed every 750 ms)`);
  assert.equal(await summary(b, name), undefined);
  assert.ok(!alive(incomingPid), "B's incoming QEMU is gone");
  assert.deepEqual(vfState(await vfRow(b.client, PF, STALL_VF)), pristineB);
  const logB = await readFile(join(dir, 'b', 'passthrud.log'), 'utf8');
  const given = logB.split('\n').findLast((l) => l.includes('incoming migration given up'));
  t.diagnostic(`B's log: ${given ?? 'none'}`);

  // A's daemon comes back and settles: B has nothing, so the guest stays on A with its VF.
  a = await restartHost('a');
  await waitState(a, name, 'running', 120_000);
  assert.equal((await vfRow(a.client, PF, STALL_VF)).mac, STALL_MAC);
  await waitRound(consoleOf(stateDir(a), name), enslavedVf(STALL_MAC), 150_000, 'VF enslaved on A');
});

test('the source daemon killed and the destination daemon restarted mid-transfer: the restarted destination holds the migration on the lease it persisted, and gives it up when the lease lapses', {
  skip,
  timeout: 300_000,
}, async (t) => {
  if (typeof g === 'string') return;
  const name = STALL_NAME;
  assert.equal((await summary(a, name))?.state, 'running');
  const pristineB = vfState(await vfRow(b.client, PF, STALL_VF));
  let incomingPid = 0;
  let restartedAt = 0;
  const both = onTransfer(a, async () => {
    incomingPid = (await summary(b, name))?.pid ?? 0;
    await a.kill();
    await b.kill();
    b = await restartHost('b');
    restartedAt = Date.now();
  });
  await assert.rejects(
    a.client.post(`/domains/${name}/migrate`, { dest: tlsB, live: true, bandwidth: 1, incomingLeaseS: 3 }),
  );
  await within(both, 60_000, 'the transfer started, A was killed and B restarted');
  assert.ok(incomingPid > 0, 'the incoming QEMU on B');
  for (let i = 0; i < 300 && (await summary(b, name)) !== undefined; i++) await new Promise((r) => setTimeout(r, 100));
  t.diagnostic(`B restarted -> B restored: ${Date.now() - restartedAt} ms (lease 3 s, from the restart)`);
  assert.equal(await summary(b, name), undefined);
  assert.ok(!alive(incomingPid), "B's incoming QEMU is gone");
  assert.deepEqual(vfState(await vfRow(b.client, PF, STALL_VF)), pristineB);
  // The restarted daemon took it back (the lease from its status), then gave it up for silence.
  const logB = (await readFile(join(dir, 'b', 'passthrud.log'), 'utf8')).split('\n');
  const took = logB.findLastIndex((l) => l.includes('took back an incoming migration') && l.includes('"leaseMs":3000'));
  const gave = logB.findLastIndex((l) => l.includes('no word from the source for 3 s'));
  assert.ok(took >= 0 && gave > took, 'B took the migration back with its 3 s lease, then gave it up');

  a = await restartHost('a');
  await waitState(a, name, 'running', 120_000);
  await waitRound(consoleOf(stateDir(a), name), enslavedVf(STALL_MAC), 150_000, 'VF enslaved on A');
});

/** `passthru -c SOCKET ARGS...`, under a pseudo-terminal when `tty` (script(1)): its output. */
async function passthruCli(socket: string, args: string[], tty = false): Promise<string> {
  const argv = [process.execPath, '--import', 'tsx', 'src/cli/main.ts', '-c', socket, ...args];
  const { stdout } = tty
    ? await execFileAsync('script', ['-qefc', argv.map((w) => `'${w}'`).join(' '), '/dev/null'], { encoding: 'utf8' })
    : await execFileAsync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8' });
  return stdout;
}

test('passthru migrate: --json gives each phase with the RAM sent and the VF-less window, then the result; on a terminal one progress line says the same', {
  skip,
  timeout: 300_000,
}, async () => {
  if (typeof g === 'string') return;
  const name = STALL_NAME;
  assert.equal((await summary(a, name))?.state, 'running');
  const sock = (d: TestDaemon): string => (d.client.endpoint.kind === 'unix' ? d.client.endpoint.path : '');
  const out = await passthruCli(sock(a), ['migrate', name, `unix:${sock(b)}`, '--live', '--json']);
  const lines = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const result = lines.at(-1);
  assert.equal(result?.['type'], 'result');
  assert.equal(typeof result?.['vfLessMs'], 'number');
  const events = lines.slice(0, -1);
  assert.ok(events.every((e) => e['type'] === 'migration' && e['name'] === name && e['role'] === 'source'));
  assert.deepEqual(
    [...new Set(events.map((e) => e['phase']))],
    ['check', 'prepare', 'transfer', 'unplugged', 'confirm', 'done'],
  );
  assert.ok(
    events.some((e) => e['phase'] === 'transfer' && Number(e['ramTotal']) > 0),
    'a line with the RAM sent',
  );
  assert.ok(
    events.some((e) => e['phase'] !== 'done' && typeof e['vfLessMs'] === 'number'),
    'a line with the VF-less window so far',
  );
  assert.equal((await summary(b, name))?.state, 'running');

  // Back to A on a terminal: the progress line (redrawn with \r) names the phase, the RAM bar and
  // the VF-less window; the summary follows.
  await waitRound(consoleOf(stateDir(b), name), enslavedVf(STALL_MAC), 150_000, 'VF enslaved on B');
  const screen = await passthruCli(sock(b), ['migrate', name, `unix:${sock(a)}`, '--live'], true);
  const drawn = screen.split('\r').map((l) => l.replaceAll('\x1b[K', ''));
  assert.ok(
    drawn.some((l) =>
      /^migrating mig-stall: (transfer|unplugged) \(\w[\w-]*\)\s+\[[#.]{20}\] \d+\/\d+ MiB\s+VF-less \d+\.\d s/.test(l),
    ),
    screen,
  );
  assert.match(screen, /Migration of 'mig-stall' to unix:\S+: done/);
  assert.match(screen, /VF-less window \d+ ms/);
  assert.equal((await summary(a, name))?.state, 'running');
  await a.client.post(`/domains/${name}/destroy`);
});

test('the destination daemon killed mid-transfer and restarted: it takes the incoming QEMU back under its lease, the source finishes, and the guest arrives on B with its VF; A restored', {
  skip,
  timeout: 300_000,
}, async (t) => {
  if (typeof g === 'string') return;
  // A fresh guest: the stall tests' one has let go of its VF and had it back many times.
  const name = 'mig-adopt';
  await a.client.post('/domains', { xml: migratingGuestXml(name, g, { mac: STALL_MAC, vf: STALL_VF }) });
  await a.client.post(`/domains/${name}/start`);
  await waitRound(consoleOf(stateDir(a), name), enslavedVf(STALL_MAC), 150_000, 'VF enslaved on A');
  let incomingPid = 0;
  const restarted = onTransfer(a, async () => {
    incomingPid = (await summary(b, name))?.pid ?? 0;
    await b.kill();
    b = await restartHost('b');
  });
  const report = await a.client.post<MigrationReport>(`/domains/${name}/migrate`, {
    dest: tlsB,
    live: true,
    bandwidth: 4,
  });
  await within(restarted, 60_000, 'the transfer started and B was restarted');
  t.diagnostic(`migration through a restart of B: total ${report.totalMs} ms, QEMU ${report.qemuTotalMs} ms`);
  // The same QEMU: B's restart took it back rather than stopping it, and ran the guest at finish.
  assert.ok(incomingPid > 0, 'the incoming QEMU on B');
  assert.equal((await summary(b, name))?.pid, incomingPid);
  assert.equal((await summary(b, name))?.state, 'running');
  assert.equal((await vfRow(b.client, PF, STALL_VF)).mac, STALL_MAC);
  assert.equal((await summary(a, name))?.state, 'shutoff');
  assert.deepEqual(vfState(await vfRow(a.client, PF, STALL_VF)), pristineA);
  const logB = await readFile(join(dir, 'b', 'passthrud.log'), 'utf8');
  assert.match(logB, /took back an incoming migration/);
  await waitRound(consoleOf(stateDir(b), name), enslavedVf(STALL_MAC), 150_000, 'VF enslaved on B');
  assert.equal(readSwitchAny(hostDir(b), STALL_MAC), `vf${STALL_VF}`);
  await b.client.post(`/domains/${name}/destroy`);
});
