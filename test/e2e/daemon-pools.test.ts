import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Client } from '../../src/protocol/client.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import type {
  DaemonEvent,
  DeviceChange,
  DomainHostdev,
  DomainSummary,
  PoolInfo,
  SriovChange,
  VfTable,
  XmlBody,
} from '../../src/protocol/wire.ts';
import { startDaemon, type TestDaemon, vfState } from '../helpers/daemon.ts';
import { waitForGuestNic } from './helpers/console.ts';
import { qemuEnv } from './helpers/env.ts';
import { e2eGuest } from './helpers/guest.ts';
import { haltedQemu } from './helpers/halted-qemu.ts';

/**
 * Hostdev networks and device pools through the API, on a simulated X710 (PF enp6s0f0 with up
 * to 64 VFs, enp6s0f1 with 8), each running domain a real QEMU whose firmware only halts
 * (cheap enough for 64 of them on two cores).
 */
const env = qemuEnv();
const skip = env.skip ?? false;
const PF0 = 'pci_0000_06_00_0';
let dir = '';
let daemon: TestDaemon | undefined;
let client: Client;
let emulator = '';

before(async () => {
  if (env.skip !== undefined) return;
  dir = await mkdtemp(join(tmpdir(), 'passthru-pools-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await startDaemon(dir);
  client = daemon.client;
  emulator = await haltedQemu(dir, env.need());
});

after(async () => {
  await daemon?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const NETWORK = `<network>
  <name>vfs</name>
  <forward mode='hostdev' managed='yes'><pf dev='enp6s0f0'/></forward>
  <vlan><tag id='10'/></vlan>
  <portgroup name='web' trustGuestRxFilters='yes'><vlan><tag id='20'/></vlan></portgroup>
</network>`;

const domainXml = (name: string, devices: string, emu = emulator) => `<domain type='kvm'>
  <name>${name}</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <emulator>${emu}</emulator>
    ${devices}
  </devices>
</domain>`;

const netIface = (mac: string, extra = '') =>
  `<interface type='network'><mac address='${mac}'/><source network='vfs'${extra}/></interface>`;
const mac = (i: number) =>
  `52:54:00:10:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
const table = (pf = PF0) => client.get<VfTable>(`/nodedevs/${pf}/vfs`);
const info = (name = 'vfs') => client.get<PoolInfo>(`/networks/${name}/info`);
const code = (c: string, m: RegExp) => (e: unknown) => e instanceof PassthruError && e.code === c && m.test(e.message);

test('guests on a network get distinct VFs with their MAC and the merged VLAN; live XML and domhostdev name the VF, the inactive XML never does; stop gives them back', {
  skip,
}, async () => {
  await client.post('/networks', { xml: NETWORK });
  await assert.rejects(client.post('/domains/nope/start'), code('NO_DOMAIN', /nope/));
  await client.post('/networks/vfs/start');
  const before0 = await table();
  const events: DaemonEvent[] = [];
  let opened: () => void = () => undefined;
  const open = new Promise<void>((r) => (opened = r));
  const released = client.events((e) => {
    if (e.type === 'pool-device') events.push(e);
    return e.type === 'pool-device' && e.event === 'released' && e.device === '0000:06:02.2';
  }, opened);
  await open;

  await client.post('/domains', { xml: domainXml('web1', netIface(mac(1), " portgroup='web'")) });
  await client.post('/domains', {
    xml: domainXml(
      'web2',
      `${netIface(mac(2))}<interface type='network'><mac address='${mac(3)}'/><source network='vfs'/><vlan><tag id='30'/></vlan></interface>`,
    ),
  });
  await client.post('/domains/web1/start');
  await client.post('/domains/web2/start');

  // The VF table: lowest VFs first, each with its guest's MAC; VLAN portgroup 20 > network 10,
  // the interface's own 30 over both.
  const during = await table();
  const row = (vf: number) => during.vfs.find((r) => r.vf === vf);
  assert.deepEqual(
    [0, 1, 2].map((vf) => [row(vf)?.mac, row(vf)?.vlan, row(vf)?.driver]),
    [
      [mac(1), 20, 'vfio-pci'],
      [mac(2), 10, 'vfio-pci'],
      [mac(3), 30, 'vfio-pci'],
    ],
  );
  assert.equal(row(0)?.trust, true, "the portgroup's trustGuestRxFilters");
  assert.equal(row(1)?.trust, false, 'no trust outside the portgroup');
  assert.deepEqual(
    (await client.get<DomainHostdev[]>('/domains/web2/hostdevs')).map((h) => [h.alias, h.device, h.network, h.mac]),
    [
      ['hostdev0', '0000:06:02.1', 'vfs', mac(2)],
      ['hostdev1', '0000:06:02.2', 'vfs', mac(3)],
    ],
  );
  const live = (await client.get<XmlBody>('/domains/web1/xml')).xml;
  assert.match(live, /<interface type='hostdev' managed='yes' trustGuestRxFilters='yes'>/);
  assert.match(live, /<source>\s*<address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x0'\/>/);
  const inactive = (await client.get<XmlBody>('/domains/web1/xml?inactive=1')).xml;
  assert.match(inactive, /<interface type='network'>/);
  assert.doesNotMatch(inactive, /bus='0x06'/);
  const i = await info();
  assert.deepEqual(
    [i.size, i.free, i.inUse.map((u) => `${u.device}=${u.domain}`)],
    [8, 5, ['0000:06:02.0=web1', '0000:06:02.1=web2', '0000:06:02.2=web2']],
  );
  await assert.rejects(client.post('/networks/vfs/destroy'), code('DEVICE_IN_USE', /in use by domain web1, web2/));

  await client.post('/domains/web1/destroy');
  await client.post('/domains/web2/destroy');
  await released;
  assert.deepEqual(
    (await table()).vfs.map(vfState),
    before0.vfs.map(vfState),
    'every VF as it was: admin MAC, VLAN, driver',
  );
  assert.equal((await info()).free, 8);
  assert.deepEqual(
    events.map((e) => (e.type === 'pool-device' ? `${e.event} ${e.device} ${e.domain} ${e.label ?? ''}` : '')),
    [
      `allocated 0000:06:02.0 web1 interface ${mac(1)}`,
      `allocated 0000:06:02.1 web2 interface ${mac(2)}`,
      `allocated 0000:06:02.2 web2 interface ${mac(3)}`,
      `released 0000:06:02.0 web1 interface ${mac(1)}`,
      `released 0000:06:02.1 web2 interface ${mac(2)}`,
      `released 0000:06:02.2 web2 interface ${mac(3)}`,
    ],
  );
  for (const d of ['web1', 'web2']) await client.delete(`/domains/${d}`);
});

const guest = e2eGuest();

test('a real guest on the network sees the MAC programmed on the VF the pool gave it; detach by its <hostdev> gives it back; hot-plug of a network interface', {
  skip: typeof guest === 'string' ? guest : false,
}, async (t) => {
  if (typeof guest === 'string') return;
  const consoleLog = join(dir, 'tiny.console');
  const xml = `<domain type='kvm'>
  <name>tiny</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>${guest.kernel}</kernel>
    <initrd>${guest.initrd}</initrd>
    <cmdline>${guest.append}</cmdline>
  </os>
  <devices>
    ${netIface(mac(7), " portgroup='web'")}
    <serial type='file'><source path='${consoleLog}'/><target port='0'/></serial>
  </devices>
</domain>`;
  await client.post('/domains', { xml });
  const initial = (await table()).vfs;
  const free0 = initial.find((r) => r.vf === 0);
  const free1 = initial.find((r) => r.vf === 1);
  if (!free0 || !free1) throw new Error('no VF 0 or 1 in the table of enp6s0f0');
  await client.post('/domains/tiny/start');
  const nic = await waitForGuestNic(consoleLog, (n) => n.mac === mac(7), 180_000);
  assert.equal(nic.driver, 'e1000e', 'the sim presents the VF as an emulated NIC carrying its admin MAC');
  const row0 = (await table()).vfs.find((r) => r.vf === 0);
  assert.deepEqual([row0?.mac, row0?.vlan, row0?.driver], [mac(7), 20, 'vfio-pci']);
  const [held] = await client.get<DomainHostdev[]>('/domains/tiny/hostdevs');
  assert.equal(held?.device, '0000:06:02.0');

  // detach-device given the VF's <hostdev> acts on its interface: unplugged, VF restored, back
  // in the pool.
  const hostdev = `<hostdev mode='subsystem' type='pci' managed='yes'>
    <source><address domain='0x0000' bus='0x06' slot='0x02' function='0x0'/></source></hostdev>`;
  const gone = await client.post<DeviceChange>('/domains/tiny/devices/detach', { xml: hostdev, timeoutMs: 120_000 });
  assert.equal(gone.state, 'detached', gone.message);
  assert.deepEqual(
    gone.devices.map((d) => d.alias),
    ['hostdev0'],
  );
  assert.equal((await info()).free, 8, 'the VF is back in the pool');
  assert.deepEqual(vfState((await table()).vfs.find((r) => r.vf === 0) ?? free1), vfState(free0), 'VF 0 as it was');
  assert.deepEqual(await client.get<DomainHostdev[]>('/domains/tiny/hostdevs'), []);
  assert.doesNotMatch((await client.get<XmlBody>('/domains/tiny/xml')).xml, /<interface/);

  // Hot-plug of <interface type='network'>: a VF from the pool (the lowest free), the network's
  // VLAN on it, the guest sees the MAC.
  await client.post('/domains/tiny/devices', { xml: netIface(mac(8)) });
  await waitForGuestNic(consoleLog, (n) => n.mac === mac(8), 180_000);
  const plugged = (await table()).vfs.find((r) => r.vf === 0);
  assert.deepEqual([plugged?.mac, plugged?.vlan, plugged?.driver], [mac(8), 10, 'vfio-pci']);
  assert.equal((await info()).free, 7);
  assert.match((await client.get<XmlBody>('/domains/tiny/xml')).xml, /<interface type='hostdev'/);
  assert.deepEqual(
    (await client.get<DomainHostdev[]>('/domains/tiny/hostdevs')).map((h) => [h.device, h.element, h.network, h.mac]),
    [['0000:06:02.0', 'interface', 'vfs', mac(8)]],
  );
  // Refused after the allocation (when the hot-plug root ports run out): the VF it was given
  // goes back, untouched.
  let plugs = 1;
  let refused: unknown;
  for (let i = 9; i < 14 && refused === undefined; i++) {
    await client.post('/domains/tiny/devices', { xml: netIface(mac(i)) }).then(
      () => plugs++,
      (e: unknown) => (refused = e),
    );
  }
  assert.ok(refused instanceof PassthruError, 'a hot-plug beyond the free root ports is refused');
  t.diagnostic(`refused after ${plugs} hot-plugged interfaces: ${refused.message}`);
  assert.equal((await info()).free, 8 - plugs, 'the refused hot-plug gave its VF back');
  const next = (await table()).vfs.find((r) => r.vf === plugs);
  const was = initial.find((r) => r.vf === plugs);
  assert.ok(next && was);
  assert.deepEqual(vfState(next), vfState(was), `VF ${plugs}, given to the refused one, as it was`);
  await client.post('/domains/tiny/destroy');
  await client.delete('/domains/tiny');
  assert.equal((await info()).free, 8);
});

test('a failed start gives its VF back; a PF losing VFs shrinks the pool, and a VF in use blocks that', {
  skip,
}, async () => {
  await client.post('/domains', { xml: domainXml('broken', netIface(mac(9)), '/nonexistent/qemu') });
  await assert.rejects(client.post('/domains/broken/start'), code('QEMU_FAILED', /./));
  assert.equal((await info()).free, 8);
  assert.equal((await table()).vfs[0]?.driver, 'iavf');
  await client.delete('/domains/broken');

  await client.post('/domains', { xml: domainXml('holder', netIface(mac(4))) });
  await client.post('/domains/holder/start');
  await assert.rejects(
    client.post(`/nodedevs/${PF0}/sriov`, { numVfs: 2 }),
    code('DEVICE_IN_USE', /VF 0000:06:02.0 is in use by domain holder/),
  );
  assert.equal((await info()).size, 8);
  await client.post('/domains/holder/destroy');
  await client.post<SriovChange>(`/nodedevs/${PF0}/sriov`, { numVfs: 3 });
  const small = await info();
  assert.deepEqual([small.size, small.free], [3, 3]);
  await client.post<SriovChange>(`/nodedevs/${PF0}/sriov`, { numVfs: 8 });
  assert.equal((await info()).size, 8);
  await client.delete('/domains/holder');
});

test('device pool with quarantine: a returned device is held out until nodedev-release', { skip }, async () => {
  await client.post('/devpools', {
    xml: `<devicepool managed='yes' quarantine='yes'><name>once</name><select pf='enp6s0f1#0-1' tags='fast'/></devicepool>`,
  });
  await client.post('/devpools/once/start');
  const hostdev = `<hostdev mode='subsystem' type='pci' managed='yes'><source pool='once' tags='fast'/></hostdev>`;
  for (const d of ['q1', 'q2', 'q3']) await client.post('/domains', { xml: domainXml(d, hostdev) });
  await client.post('/domains/q1/start');
  const live = (await client.get<XmlBody>('/domains/q1/xml')).xml;
  assert.match(
    live,
    /<source pool='once' tags='fast'>\s*<address domain='0x0000' bus='0x06' slot='0x0a' function='0x0'\/>/,
  );
  assert.match((await client.get<XmlBody>('/devpools/once/xml')).xml, /function='0x0' usedBy='q1'/);
  await client.post('/domains/q1/destroy');
  assert.deepEqual((await client.get<PoolInfo>('/devpools/once/info')).quarantined, ['0000:06:0a.0']);
  await client.post('/domains/q2/start');
  assert.equal((await client.get<DomainHostdev[]>('/domains/q2/hostdevs'))[0]?.device, '0000:06:0a.1');
  await client.post('/domains/q2/destroy');
  await assert.rejects(
    client.post('/domains/q3/start'),
    code('DEVICE_IN_USE', /^device pool 'once' requires exclusive access to devices, but none are available$/),
  );
  await client.post('/nodedevs/0000:06:0a.1/release');
  await client.post('/domains/q3/start');
  assert.equal((await client.get<DomainHostdev[]>('/domains/q3/hostdevs'))[0]?.device, '0000:06:0a.1');
  await client.post('/domains/q3/destroy');
  for (const d of ['q1', 'q2', 'q3']) await client.delete(`/domains/${d}`);
});

test('restart: the pools are rebuilt from the running domains, autostarted networks come back', { skip }, async () => {
  await client.post('/networks/vfs/autostart', { enable: true });
  await client.post('/domains', { xml: domainXml('stays', netIface(mac(5))) });
  await client.post('/domains/stays/start');
  await daemon?.kill();
  daemon = await startDaemon(dir);
  client = daemon.client;
  const i = await info();
  assert.equal(i.active, true);
  assert.deepEqual(i.inUse, [{ device: '0000:06:02.0', domain: 'stays' }]);
  // The next guest does not get the VF the first one still has.
  await client.post('/domains', { xml: domainXml('next', netIface(mac(6))) });
  await client.post('/domains/next/start');
  assert.equal((await client.get<DomainHostdev[]>('/domains/next/hostdevs'))[0]?.device, '0000:06:02.1');
  for (const d of ['stays', 'next']) {
    await client.post(`/domains/${d}/destroy`);
    await client.delete(`/domains/${d}`);
  }
});

test('200 concurrent starts on a pool of 64 VFs: exactly 64 run, 136 get "none available", no VF twice; all back after', {
  skip,
}, async () => {
  await client.post<SriovChange>(`/nodedevs/${PF0}/sriov`, { numVfs: 64 });
  const before64 = await table();
  assert.equal(before64.vfs.length, 64);
  const names = Array.from({ length: 200 }, (_, i) => `race${i}`);
  for (const [i, n] of names.entries()) await client.post('/domains', { xml: domainXml(n, netIface(mac(100 + i))) });
  const t0 = Date.now();
  const results = await Promise.allSettled(names.map((n) => client.post<DomainSummary>(`/domains/${n}/start`)));
  const seconds = (Date.now() - t0) / 1000;
  process.stderr.write(`# 200 concurrent starts on 64 VFs: ${seconds.toFixed(1)} s\n`);
  const ok = names.filter((_, i) => results[i]?.status === 'fulfilled');
  const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  assert.equal(ok.length, 64);
  assert.equal(failed.length, 136);
  for (const e of failed)
    assert.ok(
      code('DEVICE_IN_USE', /^network 'vfs' requires exclusive access to interfaces, but none are available$/)(e),
      String(e),
    );
  const held = await Promise.all(ok.map((n) => client.get<DomainHostdev[]>(`/domains/${n}/hostdevs`)));
  const devices = held.flatMap((h) => h.map((x) => x.device));
  assert.equal(new Set(devices).size, 64, 'every running guest has its own VF');
  const during = await table();
  const macs = new Set(during.vfs.map((r) => r.mac));
  assert.equal(macs.size, 64, 'each VF carries a different guest MAC');
  assert.ok(during.vfs.every((r) => r.driver === 'vfio-pci'));
  const running = (await client.get<DomainSummary[]>('/domains')).filter((d) => d.state === 'running');
  assert.equal(new Set(running.map((d) => d.pid)).size, 64, 'a QEMU process per running domain');

  await Promise.all(ok.map((n) => client.post(`/domains/${n}/destroy`)));
  assert.deepEqual((await table()).vfs.map(vfState), before64.vfs.map(vfState));
  const i = await info();
  assert.deepEqual([i.size, i.free, i.inUse.length], [64, 64, 0]);
  for (const n of names) await client.delete(`/domains/${n}`);
  await client.post<SriovChange>(`/nodedevs/${PF0}/sriov`, { numVfs: 8 });
});
