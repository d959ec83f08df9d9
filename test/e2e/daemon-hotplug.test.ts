import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '../../src/protocol/client.ts';
import { PassthruError } from '../../src/conf/error.ts';
import type {
  DaemonEvent,
  DeviceChange,
  DomainSummary,
  InterfaceRow,
  VfRow,
  XmlBody,
} from '../../src/protocol/wire.ts';
import { QmpClient } from '../../src/qemu/qmp.ts';
import { simDaemonFixture, startDaemon, vfRow, vfState } from '../helpers/daemon.ts';
import { parseGuestNics } from './helpers/console.ts';
import { e2eGuest } from './helpers/guest.ts';

/**
 * Hot-plug and honest hot-unplug through passthrud, on a simulated X710 host with real QEMU (TCG)
 * guests: the tiny Linux guest, whose console lists its NICs every second, and a guest with no
 * OS, which never answers an unplug.
 */
const env = e2eGuest();
const skip = typeof env === 'string' ? env : false;
const PF = 'pci_0000_06_00_0';
const fixture = simDaemonFixture('pt-hp', 'intel-x710-2port', typeof env === 'string');
const dir = (): string => fixture.dir();
let client: Client;

const row = (n: number): Promise<VfRow> => vfRow(client, PF, n);

/** A q35 guest: the tiny Linux (its console at `console`) or, with no kernel, no OS at all. */
function guestXml(name: string, console: string, linux: boolean): string {
  if (typeof env === 'string') throw new Error(env);
  const os = linux
    ? `<kernel>${env.kernel}</kernel><initrd>${env.initrd}</initrd><cmdline>console=ttyS0 quiet panic=-1</cmdline>`
    : '';
  return `<domain type='kvm'><name>${name}</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type>${os}</os>
  <devices><serial type='file'><source path='${console}'/><target port='0'/></serial></devices></domain>`;
}

const vfXml = (vf: number, mac: string): string => `<interface type='hostdev' managed='yes'>
  <mac address='${mac}'/>
  <source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x${vf}'/></source>
</interface>`;

/** The MACs of the guest's last complete NIC scan printed after `offset`. */
async function scanAfter(console: string, offset: number, want: (macs: string[]) => boolean): Promise<string[]> {
  for (let i = 0; i < 600; i++) {
    const lines = (await readFile(console, 'utf8')).slice(offset).split('\n');
    const scans = lines.flatMap((l, k) => (l.startsWith('passthru-guest: scan ') ? [k] : []));
    for (let s = scans.length - 1; s >= 1; s--) {
      const macs = parseGuestNics(lines.slice((scans[s - 1] ?? 0) + 1, scans[s]).join('\n')).map((n) => n.mac);
      if (want(macs)) return macs;
    }
    await sleep(250);
  }
  throw new Error(
    `the guest's console never showed the expected NICs: ${(await readFile(console, 'utf8')).slice(-1500)}`,
  );
}

const consoleLength = async (p: string): Promise<number> => (await readFile(p, 'utf8').catch(() => '')).length;

async function waitForScan(console: string): Promise<void> {
  await scanAfter(console, 0, () => true);
}

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '-c', join(dir(), 'api.sock'), ...args], {
    encoding: 'utf8',
  });

test('attach a VF to a running guest: its console shows the MAC; detach: it is gone and the VF is restored', {
  skip,
}, async (t) => {
  client = fixture.current().client;
  const consoleA = join(dir(), 'a.console');
  await client.post('/domains', { xml: guestXml('hp-a', consoleA, true) });
  await client.post('/domains/hp-a/start');
  await waitForScan(consoleA);
  const before1 = await row(1);
  const file = join(dir(), 'vf1.xml');
  await writeFile(file, vfXml(1, '52:54:00:00:0a:01'));
  const events: DaemonEvent[] = [];
  let opened: () => void = () => undefined;
  const open = new Promise<void>((r) => (opened = r));
  const seen = client.events((e) => {
    if (e.type === 'device') events.push(e);
    return e.type === 'device' && e.event === 'removed';
  }, opened);
  await open;

  const attached = cli('attach-device', 'hp-a', file, '--live');
  assert.equal(attached.status, 0, attached.stderr);
  assert.match(attached.stdout, /Device attached successfully/);
  const offset = await consoleLength(consoleA);
  await scanAfter(consoleA, 0, (m) => m.includes('52:54:00:00:0a:01'));
  assert.equal((await row(1)).mac, '52:54:00:00:0a:01');
  const rows = await client.get<InterfaceRow[]>('/domains/hp-a/interfaces');
  assert.deepEqual(
    rows.map((r) => [r.type, r.alias, r.mac, r.vf, r.guestVisible]),
    [['hostdev', 'hostdev0', '52:54:00:00:0a:01', '0000:06:02.1', true]],
  );
  const live = (await client.get<XmlBody>('/domains/hp-a/xml')).xml;
  assert.match(live, /<alias name='hostdev0'\/>/);
  // --live only: the definition does not have it.
  assert.doesNotMatch((await client.get<XmlBody>('/domains/hp-a/xml?inactive=1')).xml, /0x06/);

  const r = await client.post<DeviceChange>('/domains/hp-a/devices/detach', {
    xml: vfXml(1, '52:54:00:00:0a:01'),
    timeoutMs: 60_000,
  });
  assert.equal(r.state, 'detached', r.message);
  await scanAfter(consoleA, offset, (m) => !m.includes('52:54:00:00:0a:01'));
  assert.deepEqual(vfState(await row(1)), vfState(before1));
  await seen;
  assert.deepEqual(
    events.map((e) => (e.type === 'device' ? [e.event, e.alias, e.address] : [])),
    [
      ['added', 'hostdev0', rows[0]?.address],
      ['removed', 'hostdev0', rows[0]?.address],
    ],
  );
  t.diagnostic(`guest address of the hot-plugged VF: ${rows[0]?.address ?? '?'}`);
});

test('a guest that never lets go: pending within the deadline (exit 2), the VF refused to others, destroy releases it', {
  skip,
}, async () => {
  client = fixture.current().client;
  const consoleB = join(dir(), 'b.console');
  await client.post('/domains', { xml: guestXml('hp-b', consoleB, false) });
  await client.post('/domains/hp-b/start');
  const before2 = await row(2);
  await client.post('/domains/hp-b/devices', { xml: vfXml(2, '52:54:00:00:0b:02') });
  assert.equal((await row(2)).driver, 'vfio-pci');

  const t0 = performance.now();
  const r = cli('detach-device-alias', 'hp-b', 'hostdev0', '--timeout', '1000');
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, 'unplug of hostdev0 requested; the guest has not released it yet\n');
  assert.ok(performance.now() - t0 < 60_000);
  const rows = await client.get<InterfaceRow[]>('/domains/hp-b/interfaces');
  assert.equal(rows[0]?.unplugPending, true);
  assert.match((await client.get<XmlBody>('/domains/hp-b/xml')).xml, /<alias name='hostdev0'\/>/);
  // Still the guest's: never handed to another domain, not even the one that runs next door.
  await assert.rejects(
    client.post('/domains/hp-a/devices', { xml: vfXml(2, '52:54:00:00:0a:02') }),
    (e: unknown) => e instanceof PassthruError && e.code === 'DEVICE_IN_USE' && e.message.includes('hp-b'),
  );
  assert.equal((await row(2)).driver, 'vfio-pci');
  await client.post('/domains/hp-b/destroy');
  assert.deepEqual(vfState(await row(2)), vfState(before2));
});

test('kill -9 with two guests (one unplug pending): both still run, XML the same, the unplug completes', {
  skip,
}, async () => {
  client = fixture.current().client;
  const consoleA = join(dir(), 'a.console');
  await client.post('/domains/hp-b/start');
  const before3 = await row(3);
  await client.post('/domains/hp-a/devices', { xml: vfXml(3, '52:54:00:00:0a:03') });
  await scanAfter(consoleA, 0, (m) => m.includes('52:54:00:00:0a:03'));
  const qmp = async (command: string): Promise<void> => {
    const q = await QmpClient.connect(join(dir(), 'state', 'run', 'hp-a', 'qmp.sock'), { name: 'hp-a' });
    await q.execute(command);
    await q.close();
  };

  // The guest stops answering (its vCPUs paused while no daemon holds QMP), then the unplug.
  await fixture.current().kill();
  await qmp('stop');
  fixture.replace(await startDaemon(dir()));
  client = fixture.current().client;
  const r = await client.post<DeviceChange>('/domains/hp-a/devices/hostdev0/detach', { timeoutMs: 1000 });
  assert.equal(r.state, 'unplug-pending');
  const xmlA = (await client.get<XmlBody>('/domains/hp-a/xml')).xml;
  const xmlB = (await client.get<XmlBody>('/domains/hp-b/xml')).xml;
  const list = await client.get<DomainSummary[]>('/domains');

  // Killed again; the guest lets go while no daemon listens; the next daemon finds out.
  await fixture.current().kill();
  await qmp('cont');
  await sleep(3000);
  fixture.replace(await startDaemon(dir()));
  client = fixture.current().client;
  // The same QEMUs, taken back; hp-a was paused when the list was read and runs again since 'cont'.
  assert.deepEqual(
    (await client.get<DomainSummary[]>('/domains')).map((d) => [d.name, d.state, d.pid]),
    list.map((d) => [d.name, 'running', d.pid]),
  );
  assert.equal((await client.get<XmlBody>('/domains/hp-b/xml')).xml, xmlB);
  // The VF goes back to its host driver first; the live XML is saved after the device manager's
  // last journal write (two fsyncs later, which under load is seconds): wait for both.
  const xmlOf = async (): Promise<string> => (await client.get<XmlBody>('/domains/hp-a/xml')).xml;
  for (let i = 0; i < 240 && ((await row(3)).driver === 'vfio-pci' || (await xmlOf()) === xmlA); i++) await sleep(250);
  assert.deepEqual(vfState(await row(3)), vfState(before3));
  const after = await xmlOf();
  assert.notEqual(after, xmlA);
  assert.doesNotMatch(after, /<interface type='hostdev'/);
  await client.post('/domains/hp-a/destroy');
  await client.post('/domains/hp-b/destroy');
});

test('failover pair through passthrud: domiflist shows the primary hidden, then seen once the guest negotiates', {
  skip,
}, async () => {
  client = fixture.current().client;
  if (typeof env === 'string') return;
  const consoleF = join(dir(), 'f.console');
  const mac = '52:54:00:fa:11:02';
  const xml = `<domain type='kvm'><name>hp-f</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>${env.kernel}</kernel><initrd>${env.initrd}</initrd>
  <cmdline>console=ttyS0 quiet panic=-1</cmdline></os><devices>
  <interface type='user'><mac address='${mac}'/><model type='virtio'/><teaming type='persistent'/><alias name='ua-backup0'/></interface>
  <interface type='hostdev' managed='yes'><mac address='${mac}'/>
    <source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x4'/></source>
    <teaming type='transient' persistent='ua-backup0'/></interface>
  <serial type='file'><source path='${consoleF}'/><target port='0'/></serial></devices></domain>`;
  await client.post('/domains', { xml });
  let opened: () => void = () => undefined;
  const open = new Promise<void>((r) => (opened = r));
  const negotiated = client.events(
    (e) => e.type === 'device' && e.event === 'failover-negotiated' && e.name === 'hp-f',
    opened,
  );
  await open;
  let done = false;
  void negotiated.then(() => (done = true));
  await client.post('/domains/hp-f/start');
  const early = await client.get<InterfaceRow[]>('/domains/hp-f/interfaces');
  // QEMU keeps the primary from the guest until its virtio driver negotiates (seconds of boot).
  if (!done) assert.equal(early.find((r) => r.failover === 'primary')?.guestVisible, false);
  await negotiated;
  const rows = await client.get<InterfaceRow[]>('/domains/hp-f/interfaces');
  assert.deepEqual(
    rows.map((r) => [r.type, r.alias, r.failover, r.guestVisible, r.vf]),
    [
      ['user', 'ua-backup0', 'standby', true, undefined],
      ['hostdev', 'hostdev0', 'primary', true, '0000:06:02.4'],
    ],
  );
  // The guest's net_failover enslaved the primary beside the standby.
  for (let i = 0; i < 480; i++) {
    const nics = parseGuestNics(await readFile(consoleF, 'utf8'));
    if (nics.some((n) => n.driver === 'e1000e' && n.master !== '-')) break;
    if (i === 479) throw new Error('the guest never enslaved the primary');
    await sleep(250);
  }
  await client.post('/domains/hp-f/destroy');
});
