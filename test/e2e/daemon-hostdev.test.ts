import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '../../src/cli/client.ts';
import { quickstartXml } from '../../src/cli/commands/quickstart.ts';
import { spawnDaemon } from '../../src/cli/local.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import type { DomainSummary, NodeDeviceSummary, VfRow, VfTable, XmlBody } from '../../src/protocol/wire.ts';
import { e2eGuest } from './helpers/guest.ts';

/**
 * The walking skeleton end to end: passthrud on a simulated X710 host, a real QEMU guest that
 * holds a VF through <interface type='hostdev'>, the guest's console as the witness.
 */
const env = e2eGuest();
let dir = '';
let daemon: ChildProcess | undefined;
let client: Client;
let pfName = '';

before(async () => {
  if (typeof env === 'string') return;
  dir = await mkdtemp(join(tmpdir(), 'passthru-e2e-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  const socket = join(dir, 'api.sock');
  daemon = spawnDaemon(
    ['--host', `sim:${join(dir, 'host')}`, '--state-dir', join(dir, 'state'), '--socket', socket],
    join(dir, 'passthrud.log'),
  );
  client = new Client(socket);
  for (
    let i = 0;
    i < 200 &&
    !(await stat(socket).then(
      (s) => s.isSocket(),
      () => false,
    ));
    i++
  )
    await sleep(100);
  const pci = await client.get<NodeDeviceSummary[]>('/nodedevs?cap=pci');
  pfName = pci.find((d) => d.detail === 'i40e')?.name ?? '';
});

after(async () => {
  if (daemon) {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon?.once('exit', r));
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

const vfRow = async (n: number): Promise<VfRow> => {
  const t = await client.get<VfTable>(`/nodedevs/${pfName}/vfs`);
  const row = t.vfs.find((v) => v.vf === n);
  assert.ok(row, `VF ${n} in the table of ${pfName}`);
  return row;
};

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
  const before0 = await vfRow(0);
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
  const during = await vfRow(0);
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

  // A second domain on the same VF is refused, and nothing changes on the host.
  const xmlB = quickstartXml(before0.address, env, join(dir, 'b.console'))
    .replace('<name>quickstart</name>', '<name>vm-b</name>')
    .replace('52:54:00:00:00:01', '52:54:00:00:00:02');
  await client.post('/domains', { xml: xmlB });
  await rejectsWith(client.post('/domains/vm-b/start'), 'DEVICE_IN_USE', /in use by domain vm-a/);
  assert.deepEqual(await vfRow(0), during);
  const list = await client.get<DomainSummary[]>('/domains');
  assert.equal(list.find((d) => d.name === 'vm-b')?.state, 'shutoff');

  // destroy gives the VF back exactly: admin MAC, VLAN, host driver.
  await client.post('/domains/vm-a/destroy');
  const after0 = await vfRow(0);
  assert.equal(after0.driver, 'iavf');
  assert.equal(after0.mac, before0.mac);
  assert.equal(after0.vlan, before0.vlan);
  assert.equal(after0.qos, before0.qos);
  assert.ok(after0.netdev, 'the VF has a host netdev again');

  // And now vm-b may have it.
  await client.post('/domains/vm-b/start');
  await consoleLine(join(dir, 'b.console'), '52:54:00:00:00:02');
  await client.post('/domains/vm-b/destroy');
  const pick = (r: VfRow) => ({ mac: r.mac, vlan: r.vlan, qos: r.qos, driver: r.driver });
  assert.deepEqual(pick(await vfRow(0)), pick(after0));
});
