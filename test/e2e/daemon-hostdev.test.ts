import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '../../src/protocol/client.ts';
import { quickstartXml } from '../../src/cli/run/quickstart.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import type { DomainSummary, NodedevCheck, VfRow, XmlBody } from '../../src/protocol/wire.ts';
import { startDaemon, type TestDaemon, vfRow, vfState } from '../helpers/daemon.ts';
import { e2eGuest } from './helpers/guest.ts';

/**
 * The walking skeleton end to end: passthrud on a simulated X710 host, a real QEMU guest that
 * holds a VF through <interface type='hostdev'>, the guest's console as the witness.
 */
const env = e2eGuest();
const PF = 'pci_0000_06_00_0';
let dir = '';
let daemon: TestDaemon | undefined;
let client: Client;

before(async () => {
  if (typeof env === 'string') return;
  dir = await mkdtemp(join(tmpdir(), 'passthru-e2e-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await startDaemon(dir);
  client = daemon.client;
});

after(async () => {
  await daemon?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const row = (n: number): Promise<VfRow> => vfRow(client, PF, n);

async function consoleLine(path: string, mac: string): Promise<string> {
  for (let i = 0; i < 480; i++) {
    const line = (await readFile(path, 'utf8').catch(() => '')).split('\n').find((l) => l.includes(`mac ${mac}`));
    if (line) return line;
    await sleep(250);
  }
  throw new Error(`the guest never printed ${mac}; console: ${await readFile(path, 'utf8').catch(() => '(none)')}`);
}

const rejectsWith = async (p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> => {
  await assert.rejects(p, (e: unknown) => e instanceof PassthruError && e.code === code && pattern.test(e.message));
};

test('a guest holding a simulated VF sees the MAC programmed on it; destroy restores the VF', {
  skip: typeof env === 'string' ? env : false,
}, async () => {
  if (typeof env === 'string') return;
  const before0 = await row(0);
  assert.equal(before0.driver, 'iavf');
  const mac = '52:54:00:00:00:01';
  const consoleA = join(dir, 'a.console');
  const xml = quickstartXml(before0.address, env, consoleA).replace('<name>quickstart</name>', '<name>vm-a</name>');
  await client.post('/domains', { xml });

  const t0 = Date.now();
  await client.post<DomainSummary>('/domains/vm-a/start');
  const line = await consoleLine(consoleA, mac);
  const seconds = (Date.now() - t0) / 1000;
  process.stderr.write(`# start -> guest console shows ${mac}: ${seconds.toFixed(1)} s\n`);
  assert.match(line, /driver e1000e/);

  // While it runs: the VF sits on vfio-pci and its PF carries the admin MAC and VLAN.
  const during = await row(0);
  assert.equal(during.driver, 'vfio-pci');
  assert.equal(during.mac, mac);
  assert.equal(during.vlan, 42);

  // The live XML shows the guest PCI address and the alias; the inactive one shows neither.
  const live = (await client.get<XmlBody>('/domains/vm-a/xml')).xml;
  const iface = /<interface type='hostdev'[\s\S]*?<\/interface>/.exec(live)?.[0] ?? '';
  assert.match(iface, /<alias name='hostdev0'\/>/);
  assert.match(iface, /<address type='pci' domain='0x0000' bus='0x0[1-9a-f]' slot='0x00' function='0x0'\/>/);
  const inactive = (await client.get<XmlBody>('/domains/vm-a/xml?inactive=1')).xml;
  assert.doesNotMatch(inactive, /<alias name='hostdev0'\/>/);

  // The node-device operations refuse a VF a domain holds, and its PF's VF count.
  await rejectsWith(client.post(`/nodedevs/${before0.address}/reattach`), 'DEVICE_IN_USE', /in use by domain vm-a/);
  await rejectsWith(
    client.post(`/nodedevs/${PF}/sriov`, { numVfs: 2 }),
    'DEVICE_IN_USE',
    /VF 0000:06:02.0 is in use by domain vm-a/,
  );
  assert.equal((await row(0)).driver, 'vfio-pci');
  const pfCheck = await client.get<NodedevCheck>(`/nodedevs/${PF}/check`);
  assert.match(pfCheck.reasons.join('\n'), /VF 0000:06:02.0 of PF 0000:06:00.0 is in use by domain vm-a/);
  const vfCheck = await client.get<NodedevCheck>(`/nodedevs/${before0.address}/check`);
  assert.deepEqual([vfCheck.assignable, vfCheck.members[0]?.heldBy], [false, 'vm-a']);

  // A second domain on the same VF is refused, and nothing changes on the host.
  const xmlB = quickstartXml(before0.address, env, join(dir, 'b.console'))
    .replace('<name>quickstart</name>', '<name>vm-b</name>')
    .replace('52:54:00:00:00:01', '52:54:00:00:00:02');
  await client.post('/domains', { xml: xmlB });
  await rejectsWith(client.post('/domains/vm-b/start'), 'DEVICE_IN_USE', /in use by domain vm-a/);
  assert.deepEqual(await row(0), during);
  const list = await client.get<DomainSummary[]>('/domains');
  assert.equal(list.find((d) => d.name === 'vm-b')?.state, 'shutoff');

  // destroy gives the VF back exactly: admin MAC, VLAN, host driver.
  await client.post('/domains/vm-a/destroy');
  const after0 = await row(0);
  assert.deepEqual(vfState(after0), vfState(before0));
  assert.ok(after0.netdev, 'the VF has a host netdev again');

  // And now vm-b may have it. Its QEMU dies on its own (killed, as a crash would): the daemon
  // notices, gives the VF back and says so on the event stream.
  const b = await client.post<DomainSummary>('/domains/vm-b/start');
  await consoleLine(join(dir, 'b.console'), '52:54:00:00:00:02');
  let opened: () => void = () => undefined;
  const open = new Promise<void>((r) => (opened = r));
  const stopped = client.events((e) => e.type === 'domain' && e.event === 'stopped' && e.name === 'vm-b', opened);
  await open;
  assert.ok(b.pid);
  process.kill(b.pid, 'SIGKILL');
  await stopped;
  assert.equal((await client.get<DomainSummary[]>('/domains')).find((d) => d.name === 'vm-b')?.state, 'shutoff');
  assert.deepEqual(vfState(await row(0)), vfState(after0));
});

test('passthrud killed while its guest runs: the next one takes the guest back, and destroy still restores the VF', {
  skip: typeof env === 'string' ? env : false,
}, async () => {
  if (typeof env === 'string' || !daemon) return;
  const before3 = await row(3);
  const consoleC = join(dir, 'c.console');
  const xml = quickstartXml(before3.address, env, consoleC)
    .replace('<name>quickstart</name>', '<name>vm-c</name>')
    .replace('52:54:00:00:00:01', '52:54:00:00:00:03');
  await client.post('/domains', { xml });
  const started = await client.post<DomainSummary>('/domains/vm-c/start');
  await consoleLine(consoleC, '52:54:00:00:00:03');

  await daemon.kill();
  daemon = await startDaemon(dir);
  client = daemon.client;
  const listed = (await client.get<DomainSummary[]>('/domains')).find((d) => d.name === 'vm-c');
  assert.equal(listed?.state, 'running');
  assert.equal(listed.pid, started.pid);
  assert.equal((await row(3)).driver, 'vfio-pci');
  assert.match((await client.get<XmlBody>('/domains/vm-c/xml')).xml, /<alias name='hostdev0'\/>/);

  await client.post('/domains/vm-c/destroy');
  assert.deepEqual(vfState(await row(3)), vfState(before3));
});
