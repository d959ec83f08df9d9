import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { bindToStub, rebindHostDriver } from '../../src/host/bind.ts';
import { readInventory, refreshInventory } from '../../src/host/inventory.ts';
import type { SimKernel } from '../../src/host/sim/kernel.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import type { PoolWant } from '../../src/network/actual.ts';
import { type HostView, hostView, memberOrder, nextView, patchMembers } from '../../src/network/members.ts';
import { membersOf, parseDef } from '../../src/network/pool-def.ts';
import { Pools } from '../../src/network/pools.ts';
import { simHost } from '../host/helpers.ts';

let host: { kernel: SimKernel; done: () => void };
let view: HostView;
let dir = '';
before(async () => {
  host = await simHost();
  view = hostView(await readInventory(host.kernel.sysfs));
  dir = await mkdtemp(join(tmpdir(), 'passthru-pools-'));
});
after(async () => {
  host.done();
  await rm(dir, { recursive: true, force: true });
});

const NET = `<network><name>vfs</name><forward mode='hostdev' managed='yes'><pf dev='enp6s0f0'/></forward></network>`;
const POOL = `<devicepool managed='yes' quarantine='yes'><name>once</name><select pf='enp6s0f1#0-1'/></devicepool>`;
const net = { kind: 'network', name: 'vfs' } as const;
const once = { kind: 'devicepool', name: 'once' } as const;
const want = (ref: PoolWant['ref']): PoolWant => ({ ref, request: { numaNodes: new Set() }, label: 'test' });
const noLeases = () => undefined;
const code = (c: string, m?: RegExp) => (e: unknown) =>
  e instanceof PassthruError && e.code === c && (m === undefined || m.test(e.message));

test('define, start, concurrent allocations never share a VF, destroy refused while in use', async () => {
  const pools = await Pools.open(join(dir, 'a'), silentLogger());
  await pools.define('network', NET);
  await assert.rejects(
    pools.allocate('d0', [want(net)], view, noLeases),
    code('OPERATION_INVALID', /^network 'vfs' is not active$/),
  );
  await pools.start(net, view);
  // 20 domains at once on 8 VFs, one of them leased by the device manager to someone else.
  const leases = (bdf: string) => (bdf === '0000:06:02.0' ? 'plain-hostdev-user' : undefined);
  const results = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) => pools.allocate(`d${i}`, [want(net)], view, leases)),
  );
  const got = results.flatMap((r) => (r.status === 'fulfilled' ? r.value.map((m) => m.bdf) : []));
  assert.equal(got.length, 7);
  assert.equal(new Set(got).size, 7);
  assert.ok(!got.includes('0000:06:02.0'));
  assert.deepEqual(
    got,
    ['1', '2', '3', '4', '5', '6', '7'].map((f) => `0000:06:02.${f}`),
    'first come, lowest VF',
  );
  for (const r of results.slice(7)) {
    assert.ok(r.status === 'rejected');
    assert.ok(
      code(
        'DEVICE_IN_USE',
        /^network 'vfs' requires exclusive access to interfaces, but none are available$/,
      )(r.reason),
    );
  }
  const info = pools.info(net, view, leases);
  assert.equal(info.size, 8);
  assert.equal(info.free, 0);
  assert.equal(info.inUse.length, 8);
  await assert.rejects(pools.destroy(net), code('DEVICE_IN_USE', /is in use by domain d0, d1, d2, d3, d4, d5, d6/));
  await assert.rejects(pools.undefine(net), code('OPERATION_INVALID', /it is active; destroy it first/));
  // The state file is the allocation table, written before allocate() returned.
  const state = JSON.parse(await readFile(join(dir, 'a', 'networks', 'vfs.state.json'), 'utf8')) as {
    allocations: unknown[];
  };
  assert.equal(state.allocations.length, 7);
  for (let i = 0; i < 7; i++) await pools.release(`d${i}`);
  assert.equal(pools.info(net, view, noLeases).free, 8);
  await pools.destroy(net);
  await pools.undefine(net);
  assert.deepEqual(pools.list('network'), []);
});

test('all or nothing: a domain asking for two devices where one is left gets neither', async () => {
  const pools = await Pools.open(join(dir, 'b'), silentLogger());
  await pools.define('devicepool', POOL);
  await pools.start(once, view);
  await assert.rejects(
    pools.allocate('big', [want(once), want(once), want(once)], view, noLeases),
    code('DEVICE_IN_USE'),
  );
  assert.equal(pools.info(once, view, noLeases).free, 2);
});

test('quarantine: a released device is held out until nodedev-release, across a restart', async () => {
  const pools = await Pools.open(join(dir, 'c'), silentLogger());
  await pools.define('devicepool', POOL);
  await pools.start(once, view);
  await pools.setAutostart(once, true);
  const [first] = await pools.allocate('g1', [want(once)], view, noLeases);
  assert.equal(first?.bdf, '0000:06:0a.0');
  const released = await pools.release('g1');
  assert.deepEqual(released, [
    { event: 'released', ref: once, device: '0000:06:0a.0', domain: 'g1', label: 'test', quarantined: true },
  ]);
  const [second] = await pools.allocate('g2', [want(once)], view, noLeases);
  assert.equal(second?.bdf, '0000:06:0a.1', 'the quarantined VF is not handed out again');
  await pools.release('g2');
  await assert.rejects(
    pools.allocate('g3', [want(once)], view, noLeases),
    (e: unknown) => code('DEVICE_IN_USE')(e) && ((e as PassthruError).hint ?? '').includes('2 quarantined'),
  );
  const again = await Pools.open(join(dir, 'c'), silentLogger());
  assert.deepEqual(again.summary(once), { kind: 'devicepool', name: 'once', active: true, autostart: true });
  assert.deepEqual(again.info(once, view, noLeases).quarantined, ['0000:06:0a.0', '0000:06:0a.1']);
  assert.deepEqual(await again.releaseQuarantine('0000:06:0a.1'), [once]);
  await assert.rejects(again.releaseQuarantine('0000:06:0a.1'), code('OPERATION_INVALID', /is not quarantined/));
  const [third] = await again.allocate('g3', [want(once)], view, noLeases);
  assert.equal(third?.bdf, '0000:06:0a.1');
});

test('restart: rebuilt from the running domains; a device claimed twice is an error, never shared', async () => {
  const pools = await Pools.open(join(dir, 'd'), silentLogger());
  await pools.define('network', NET);
  await pools.define('devicepool', POOL);
  await pools.start(net, view);
  await pools.start(once, view);
  await pools.allocate('alive', [want(net)], view, noLeases);
  await pools.allocate('dead', [want(once)], view, noLeases);
  const reopened = await Pools.open(join(dir, 'd'), silentLogger());
  const errors = await reopened.rebuild([
    { domain: 'alive', ref: net, device: '0000:06:02.0' },
    { domain: 'twin', ref: net, device: '0000:06:02.0' },
  ]);
  assert.equal(errors.length, 1);
  assert.equal(
    errors[0]?.message,
    "network 'vfs' claims the PCI device at domain=0 bus=6 slot=2 function=0 is already in use by a different domain",
  );
  assert.equal(reopened.holder('0000:06:02.0'), 'alive');
  // 'dead' no longer runs: its device is free of it, and quarantined (a guest had it).
  assert.equal(reopened.holder('0000:06:0a.0'), undefined);
  assert.deepEqual(reopened.info(once, view, noLeases).quarantined, ['0000:06:0a.0']);
});

test('live XML of a <pf> network lists its VFs; inactive only the PF; a pool shows who uses what', async () => {
  const pools = await Pools.open(join(dir, 'e'), silentLogger());
  await pools.define('network', NET);
  assert.doesNotMatch(pools.xml(net, view), /<address/);
  await pools.start(net, view);
  const live = pools.xml(net, view);
  assert.equal((live.match(/<address type='pci'/g) ?? []).length, 8);
  await pools.define('devicepool', POOL);
  await pools.start(once, view);
  await pools.allocate('web1', [want(once)], view, noLeases);
  assert.match(pools.xml(once, view), /function='0x0' usedBy='web1'\/>/);
  assert.doesNotMatch(pools.xml(once, undefined), /resolved/);
  await assert.rejects(
    pools.define(
      'network',
      "<network><name>x</name><forward mode='hostdev'><pf dev='a'/><pf dev='b'/></forward></network>",
    ),
    code('XML_INVALID', /only one <pf>/),
  );
  assert.throws(
    () => pools.summary({ kind: 'network', name: 'ghost' }),
    code('NO_NETWORK', /^no network with matching name 'ghost'$/),
  );
});

test('a view patched for the functions the host changed (no new resolution over the host): health and membership follow them', async () => {
  const pools = await Pools.open(join(dir, 'patch'), silentLogger());
  const byPf = { kind: 'network', name: 'bypf' } as const;
  const byDriver = { kind: 'network', name: 'bydriver' } as const;
  await pools.define(
    'network',
    `<network><name>bypf</name><forward mode='hostdev' managed='yes'><select pf='enp6s0f0#0-3'/></forward></network>`,
  );
  await pools.define(
    'network',
    `<network><name>bydriver</name><forward mode='hostdev' managed='yes'><select pf='enp6s0f0' driver='iavf'/></forward></network>`,
  );
  const inv1 = await readInventory(host.kernel.sysfs);
  const v1 = nextView(undefined, inv1);
  await pools.start(byPf, v1);
  await pools.start(byDriver, v1);
  assert.equal(pools.info(byDriver, v1, noLeases).size, 8);
  const [a] = await pools.allocate('a', [want(byPf)], v1, noLeases);
  assert.equal(a?.bdf, '0000:06:02.0');
  await pools.release('a');
  // Someone detaches VF 0 (nodedev-detach): the watcher's refresh re-reads that one function.
  await bindToStub(host.kernel, parsePciAddress('0000:06:02.0'));
  try {
    const v2 = nextView(v1, await refreshInventory(host.kernel.sysfs, inv1, ['0000:06:02.0']));
    assert.deepEqual(v2.patch?.names, ['0000:06:02.0']);
    assert.equal(v2.patch?.prev, v1);
    const [b] = await pools.allocate('b', [want(byPf)], v2, noLeases);
    assert.equal(b?.bdf, '0000:06:02.1', 'VF 0 is on vfio-pci outside the pool now: not handed out');
    // Patched members: VF 0 in its place with its new driver; a driver selector drops VF 0, so
    // its pool cannot be patched and is resolved again.
    const resolve = (xml: string) => {
      const def = parseDef('network', xml, 'test');
      const before = membersOf(def, v1).sort(memberOrder);
      const at = new Map(before.map((m, i) => [m.bdf, i]));
      return patchMembers(before, at, v2, ['0000:06:02.0'], (narrow) => membersOf(def, narrow));
    };
    const patched = resolve(`<network><name>p</name><forward mode='hostdev'><pf dev='enp6s0f0'/></forward></network>`);
    assert.equal(patched?.length, 8);
    assert.equal(patched?.[0]?.driver, 'vfio-pci');
    assert.equal(patched?.[1]?.driver, 'iavf');
    assert.equal(
      resolve(`<network><name>p</name><forward mode='hostdev'><select driver='iavf'/></forward></network>`),
      undefined,
    );
    const info = pools.info(byDriver, v2, noLeases);
    assert.equal(info.size, 7);
    const [c] = await pools.allocate('c', [want(byDriver)], v2, noLeases);
    assert.equal(c?.bdf, '0000:06:02.2');
    await pools.release('b');
    await pools.release('c');
  } finally {
    await rebindHostDriver(host.kernel, parsePciAddress('0000:06:02.0'), 'iavf');
  }
});
