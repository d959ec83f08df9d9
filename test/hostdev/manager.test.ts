import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { parseMac } from '../../src/conf/mac.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { singleTag } from '../../src/conf/vlan.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { openSimHost, type SimKernel } from '../../src/host/sim/kernel.ts';
import { currentDriver } from '../../src/host/bind.ts';
import { hostOps } from '../../src/hostdev/host-ops.ts';
import { HostdevManager } from '../../src/hostdev/manager.ts';
import type { HostdevRequest } from '../../src/hostdev/request.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { simSnapshot, snapshotDiff } from '../helpers/sim-snapshot.ts';

async function setup(): Promise<{ kernel: SimKernel; host: string; state: string; done: () => Promise<void> }> {
  const base = await mkdtemp(join(tmpdir(), 'passthru-mgr-'));
  const host = join(base, 'host');
  await createSimHost(host, 'intel-x710-2port');
  return {
    kernel: await openSimHost(host),
    host,
    state: join(base, 'state'),
    done: () => rm(base, { recursive: true, force: true }),
  };
}

const vf = (alias: string, bdf: string, mac: string, vlan: number): HostdevRequest => ({
  alias,
  address: parsePciAddress(bdf),
  managed: true,
  stub: 'vfio-pci',
  assigned: true,
  net: { mac: parseMac(mac), vlan: singleTag(vlan) },
});
const A = vf('hostdev0', '0000:06:02.1', '52:54:00:aa:00:01', 10);
const B = vf('hostdev1', '0000:06:02.2', '52:54:00:bb:00:02', 20);

test('prepare A, prepare B, release A: A is back on its host driver with its state, B stays prepared and leased', async () => {
  const { kernel, host, state, done } = await setup();
  try {
    const m = await HostdevManager.open(hostOps(kernel), state, silentLogger());
    const before = await simSnapshot(host);
    const [a] = await m.prepare('web1', [A]);
    const afterA = await simSnapshot(host);
    const [b] = await m.prepare('web1', [B]);
    assert.ok(a && b && b.generation > a.generation, 'each prepare has its own generation');
    assert.deepEqual(b.presentation, { kind: 'emulated-nic', model: 'e1000e', mac: '52:54:00:bb:00:02' });

    assert.deepEqual(await m.release('web1', ['hostdev0']), ['hostdev0']);
    assert.equal(await currentDriver(kernel.sysfs, A.address), 'iavf');
    assert.equal(await currentDriver(kernel.sysfs, B.address), 'vfio-pci');
    const rows = await kernel.vfTable('enp6s0f0');
    assert.deepEqual([rows[1]?.mac, rows[1]?.vlan], ['00:00:00:00:00:00', 0], 'A has its admin MAC and VLAN back');
    assert.deepEqual([rows[2]?.mac, rows[2]?.vlan], ['52:54:00:bb:00:02', 20], 'B is untouched');
    assert.deepEqual(
      m.held('web1').map((d) => d.alias),
      ['hostdev1'],
    );
    // B is still leased: another domain cannot take it, and its check names the holder.
    await assert.rejects(
      m.prepare('web2', [{ ...B, alias: 'hostdev0' }]),
      (e: unknown) => e instanceof PassthruError && e.code === 'DEVICE_IN_USE' && e.message.includes('domain web1'),
    );
    // ...but A is free again.
    await m.prepare('web2', [A]);
    await m.release('web2');

    await m.release('web1');
    assert.deepEqual(m.held('web1'), []);
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), [], 'the sim tree is as before');
    assert.notDeepEqual(snapshotDiff(before, afterA), [], 'the snapshot can see a prepare');
  } finally {
    await done();
  }
});

test('a release naming an older generation is refused and changes nothing', async () => {
  const { kernel, state, done } = await setup();
  try {
    const m = await HostdevManager.open(hostOps(kernel), state, silentLogger());
    const [a] = await m.prepare('web1', [A]);
    assert.ok(a);
    await m.release('web1', [{ alias: 'hostdev0', generation: a.generation }]);
    const [again] = await m.prepare('web1', [A]);
    assert.ok(again);
    await assert.rejects(
      m.release('web1', [{ alias: 'hostdev0', generation: a.generation }]),
      /held under generation \d+, not \d+: a newer prepare owns it/,
    );
    assert.equal(await currentDriver(kernel.sysfs, A.address), 'vfio-pci');
    assert.deepEqual(
      m.held('web1').map((d) => d.generation),
      [again.generation],
    );
  } finally {
    await done();
  }
});

test('preparing an alias the domain already holds is refused', async () => {
  const { kernel, state, done } = await setup();
  try {
    const m = await HostdevManager.open(hostOps(kernel), state, silentLogger());
    await m.prepare('web1', [A]);
    await assert.rejects(
      m.prepare('web1', [{ ...B, alias: 'hostdev0' }]),
      /hostdev0 of domain web1 is already prepared/,
    );
    assert.equal(await currentDriver(kernel.sysfs, B.address), 'iavf');
  } finally {
    await done();
  }
});

test('a failed prepare undoes its steps and leaves no record; the journal survives a reopen', async () => {
  const { kernel, host, state, done } = await setup();
  try {
    const m = await HostdevManager.open(hostOps(kernel), state, silentLogger());
    await m.prepare('web1', [A]);
    const before = await simSnapshot(host);
    // QoS 9 cannot be (0..7): the PF refuses it after B was saved and bound.
    await assert.rejects(m.prepare('web1', [{ ...B, net: { vlan: singleTag(5), vlanQos: 9 } }]), /EINVAL/);
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), []);
    const reopened = await HostdevManager.open(hostOps(kernel), state, silentLogger());
    assert.deepEqual(
      reopened.held('web1').map((d) => d.alias),
      ['hostdev0'],
    );
    const journal = JSON.parse(await readFile(join(state, 'hostdev', 'journal.json'), 'utf8')) as {
      devices: unknown[];
    };
    assert.equal(journal.devices.length, 1);
  } finally {
    await done();
  }
});

test('recover releases what a domain that is not running holds, and keeps what a running one holds', async () => {
  const { kernel, host, state, done } = await setup();
  try {
    const before = await simSnapshot(host);
    const m = await HostdevManager.open(hostOps(kernel), state, silentLogger());
    await m.prepare('web1', [A]);
    await m.prepare('web2', [B]);
    const again = await HostdevManager.open(hostOps(kernel), state, silentLogger());
    assert.deepEqual(await again.recover(new Set(['web2'])), ['web1']);
    assert.deepEqual(
      again.held('web2').map((d) => d.alias),
      ['hostdev1'],
    );
    assert.deepEqual(again.held('web1'), []);
    await again.release('web2');
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), []);
  } finally {
    await done();
  }
});
