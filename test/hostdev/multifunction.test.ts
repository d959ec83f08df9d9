import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { currentDriver } from '../../src/host/bind.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { openSimHost, type SimKernel } from '../../src/host/sim/kernel.ts';
import { profileJson } from '../../src/host/sim/profile.ts';
import { hostOps } from '../../src/hostdev/host-ops.ts';
import { HostdevManager } from '../../src/hostdev/manager.ts';
import type { HostdevRequest } from '../../src/hostdev/request.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { simSnapshot, snapshotDiff } from '../helpers/sim-snapshot.ts';

async function setup(
  profile: string | { readonly json: unknown },
): Promise<{ kernel: SimKernel; host: string; m: HostdevManager; done: () => Promise<void> }> {
  const base = await mkdtemp(join(tmpdir(), 'passthru-mf-'));
  const host = join(base, 'host');
  await createSimHost(host, profile);
  const kernel = await openSimHost(host);
  const m = await HostdevManager.open(hostOps(kernel), join(base, 'state'), silentLogger());
  return { kernel, host, m, done: () => rm(base, { recursive: true, force: true }) };
}

const fn = (alias: string, bdf: string, over: Partial<HostdevRequest> = {}): HostdevRequest => ({
  alias,
  address: parsePciAddress(bdf),
  managed: true,
  stub: 'vfio-pci',
  assigned: true,
  ...over,
});
const xmlInvalid = (words: RegExp) => (e: unknown) =>
  e instanceof PassthruError && e.code === 'XML_INVALID' && words.test(e.message);

test('a multifunction card: every function must be declared, managed or not; the error names the missing ones', async () => {
  const { kernel, host, m, done } = await setup('broadcom-bcm5719');
  try {
    const before = await simSnapshot(host);
    await assert.rejects(
      m.prepare('web1', [fn('hostdev0', '0000:02:00.0'), fn('hostdev1', '0000:02:00.1')]),
      xmlInvalid(
        /^PCI device 0000:02:00\.x is a multifunction device: when one of its functions is used, every function must be declared \(managed or not\); domain web1 lacks 0000:02:00\.2, 0000:02:00\.3$/,
      ),
    );
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), []);

    // Unmanaged functions (already on vfio-pci) count the same.
    for (const f of ['0', '1', '2', '3']) await m.detach(parsePciAddress(`0000:02:00.${f}`));
    const detached = await simSnapshot(host);
    await assert.rejects(
      m.prepare('web1', [fn('hostdev0', '0000:02:00.3', { managed: false })]),
      xmlInvalid(/domain web1 lacks 0000:02:00\.0, 0000:02:00\.1, 0000:02:00\.2$/),
    );
    assert.deepEqual(snapshotDiff(detached, await simSnapshot(host)), []);
    for (const f of ['0', '1', '2', '3']) await m.reattach(parsePciAddress(`0000:02:00.${f}`));

    // All four, one unassigned: prepared; the unassigned one is detached but not presented.
    const prepared = await m.prepare('web1', [
      fn('hostdev0', '0000:02:00.0'),
      fn('hostdev1', '0000:02:00.1', { assigned: false }),
      fn('hostdev2', '0000:02:00.2'),
      fn('hostdev3', '0000:02:00.3'),
    ]);
    assert.deepEqual(
      prepared.map((p) => [p.alias, p.presentation !== undefined]),
      [
        ['hostdev0', true],
        ['hostdev1', false],
        ['hostdev2', true],
        ['hostdev3', true],
      ],
    );
    assert.equal(await currentDriver(kernel.sysfs, parsePciAddress('0000:02:00.1')), 'vfio-pci');
    await m.release('web1');
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), []);
  } finally {
    await done();
  }
});

test("assigned='no' on a function that is not part of a multifunction device is refused; host unchanged", async () => {
  const { host, m, done } = await setup('intel-x710-2port');
  try {
    const before = await simSnapshot(host);
    await assert.rejects(
      m.prepare('web1', [fn('hostdev0', '0000:06:02.1', { assigned: false })]),
      xmlInvalid(/^hostdev0: PCI device 0000:06:02\.1 is a VF alone in its IOMMU group, so it cannot be unassigned/),
    );
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), []);
  } finally {
    await done();
  }
  // A single-function device that shares its IOMMU group with an assigned one may be unassigned:
  // VFIO takes the whole group, so this is how it leaves the host. The switch without ACS puts
  // an NVMe drive and a NIC of different slots in one group (here a host that needs neither).
  const json = JSON.parse(
    JSON.stringify(profileJson('pcie-switch-no-acs'), (k, v: unknown) =>
      k === 'disks' || k === 'defaultRoute' ? undefined : v,
    ),
  ) as unknown;
  const sw = await setup({ json });
  try {
    const before = await simSnapshot(sw.host);
    const [nvme, nic] = await sw.m.prepare('web1', [
      fn('hostdev0', '0000:04:00.0'),
      fn('hostdev1', '0000:05:00.0', { assigned: false }),
    ]);
    assert.ok(nvme?.presentation && !nic?.presentation);
    await sw.m.release('web1');
    assert.deepEqual(snapshotDiff(before, await simSnapshot(sw.host)), []);
  } finally {
    await sw.done();
  }
});
