import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { chooseReset, type ResetFacts } from '../../src/host/reset.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { openSimHost } from '../../src/host/sim/kernel.ts';
import { profileJson } from '../../src/host/sim/profile.ts';
import { readResets } from '../../src/host/sim/reset.ts';
import { hostOps } from '../../src/hostdev/host-ops.ts';
import { HostdevManager } from '../../src/hostdev/manager.ts';
import type { HostdevRequest } from '../../src/hostdev/request.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { simSnapshot, snapshotDiff } from '../helpers/sim-snapshot.ts';

async function setup(profile: string | { readonly json: unknown }) {
  const base = await mkdtemp(join(tmpdir(), 'passthru-reset-'));
  const host = join(base, 'host');
  await createSimHost(host, profile);
  const kernel = await openSimHost(host);
  const m = await HostdevManager.open(hostOps(kernel), join(base, 'state'), silentLogger());
  return { kernel, host, m, state: join(base, 'state'), done: () => rm(base, { recursive: true, force: true }) };
}

const fn = (alias: string, bdf: string, over: Partial<HostdevRequest> = {}): HostdevRequest => ({
  alias,
  address: parsePciAddress(bdf),
  managed: true,
  stub: 'vfio-pci',
  assigned: true,
  ...over,
});

test("libvirt's reset order: vfio skips, then FLR, AF FLR, PM, a bus reset alone off the root bus, else the error", () => {
  const f: ResetFacts = {
    name: '0000:02:00.0',
    endpoint: true,
    driver: 'tg3',
    flr: false,
    afFlr: false,
    pmReset: false,
    bus: 2,
    busMates: 3,
  };
  assert.deepEqual(chooseReset({ ...f, driver: 'vfio-pci', flr: true }), {
    skip: 'PCI device 0000:02:00.0 is bound to vfio-pci, which resets it itself',
  });
  assert.ok('skip' in chooseReset({ ...f, driver: 'mlx5_vfio_pci' }));
  assert.deepEqual(chooseReset({ ...f, flr: true, pmReset: true }), { method: 'flr' });
  assert.deepEqual(chooseReset({ ...f, afFlr: true, pmReset: true }), { method: 'af_flr' });
  assert.deepEqual(chooseReset({ ...f, pmReset: true }), { method: 'pm' });
  assert.deepEqual(chooseReset({ ...f, busMates: 0 }), { method: 'bus' });
  assert.throws(
    () => chooseReset({ ...f, bus: 0, busMates: 0 }),
    (e: unknown) =>
      e instanceof PassthruError &&
      e.message === 'Unable to reset PCI device 0000:02:00.0: no FLR, PM reset or bus reset available',
  );
  assert.throws(() => chooseReset(f), /no FLR, PM reset or bus reset available/);
  assert.throws(
    () => chooseReset({ ...f, endpoint: false }),
    /Invalid attempt to reset PCI device 0000:02:00.0. Only PCI endpoint devices can be reset/,
  );
});

test('a non-VF device on vfio-pci is not reset when it comes back (vfio-pci did it); the step says so', async () => {
  const { host, m, state, done } = await setup('broadcom-bcm5719');
  try {
    const before = await simSnapshot(host);
    const all = ['0', '1', '2', '3'].map((f, i) => fn(`hostdev${i}`, `0000:02:00.${f}`));
    const steps = await m.plan('web1', all);
    assert.deepEqual(
      steps.filter((s) => s.kind === 'reset-device').map((s) => s.address),
      ['0000:02:00.0', '0000:02:00.1', '0000:02:00.2', '0000:02:00.3'],
    );
    await m.prepare('web1', all);
    const journal = await readFile(join(state, 'hostdev', 'journal.json'), 'utf8');
    assert.match(journal, /"outcome": "skipped: PCI device 0000:02:00.0 is bound to vfio-pci, which resets it itself"/);
    await m.release('web1');
    assert.deepEqual(readResets(host), [], 'nothing was reset');
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), []);
  } finally {
    await done();
  }
});

test('a device that is not on a vfio driver is reset after detach and when it comes back, by the method libvirt picks', async () => {
  // The switch host without its boot disk and route, with pci-stub loaded: the NVMe drive has no
  // FLR and sits alone on bus 04 (bus reset); the NIC has a PM reset and no FLR.
  const json = JSON.parse(
    JSON.stringify(profileJson('pcie-switch-no-acs'), (k, v: unknown) =>
      k === 'disks' || k === 'defaultRoute' ? undefined : v,
    ),
  ) as { drivers: string[]; devices: unknown[] };
  json.drivers.push('pci-stub');
  const text = JSON.stringify(json)
    .replace('"driver":"nvme","numaNode":0,"flr":true', '"driver":"nvme","numaNode":0,"flr":false')
    .replace('"driver":"igb","numaNode":0,"flr":true', '"driver":"igb","numaNode":0,"flr":false,"pmReset":true');
  assert.notEqual(text, JSON.stringify(json), 'the profile edit applied');
  const { kernel, host, m, done } = await setup({ json: JSON.parse(text) as unknown });
  try {
    const before = await simSnapshot(host);
    const stub = { stub: 'pci-stub' };
    await m.prepare('web1', [fn('hostdev0', '0000:04:00.0', stub), fn('hostdev1', '0000:05:00.0', stub)]);
    assert.deepEqual(readResets(host), [
      { address: '0000:04:00.0', method: 'bus' },
      { address: '0000:05:00.0', method: 'pm' },
    ]);
    await m.release('web1');
    assert.deepEqual(
      readResets(host).slice(2),
      [
        { address: '0000:05:00.0', method: 'pm' },
        { address: '0000:04:00.0', method: 'bus' },
      ],
      'reset again when they came back, before their host drivers',
    );
    assert.equal(await kernel.sysfs.read('/sys/bus/pci/devices/0000:04:00.0/reset_method'), 'bus');
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), []);
  } finally {
    await done();
  }
});

test('nodedev-reset: a function of a card with no FLR and no PM reset, sharing its bus, cannot be reset', async () => {
  const { host, m, done } = await setup('broadcom-bcm5719');
  try {
    await assert.rejects(
      m.reset(parsePciAddress('0000:02:00.1')),
      (e: unknown) =>
        e instanceof PassthruError &&
        e.code === 'HOST_FAILED' &&
        e.message === 'Unable to reset PCI device 0000:02:00.1: no FLR, PM reset or bus reset available',
    );
    assert.deepEqual(readResets(host), []);
  } finally {
    await done();
  }
});
