import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { parseMac } from '../../src/conf/mac.ts';
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
  const base = await mkdtemp(join(tmpdir(), 'passthru-guards-'));
  const host = join(base, 'host');
  await createSimHost(host, profile);
  const kernel = await openSimHost(host);
  const m = await HostdevManager.open(hostOps(kernel), join(base, 'state'), silentLogger());
  return { kernel, host, m, done: () => rm(base, { recursive: true, force: true }) };
}

const refused = (code: string, words: RegExp) => (e: unknown) =>
  e instanceof PassthruError && e.code === code && words.test(e.message);

const plain = (alias: string, bdf: string): HostdevRequest => ({
  alias,
  address: parsePciAddress(bdf),
  managed: true,
  stub: 'vfio-pci',
  assigned: true,
});
const withMac = (alias: string, bdf: string, mac: string): HostdevRequest => ({
  ...plain(alias, bdf),
  net: { mac: parseMac(mac) },
});

/** intel-82576 with the host's IPv4 default route on its second port, enp1s0f1: both ports
 *  share IOMMU group igb0, each VF has a group of its own. */
function routedIgb(): { json: unknown } {
  const json = structuredClone(profileJson('intel-82576')) as {
    devices: { children: { netdevs: { name: string; defaultRoute?: string }[] }[] }[];
  };
  const port1 = json.devices[0]?.children[1]?.netdevs[0];
  assert.equal(port1?.name, 'enp1s0f1');
  port1.defaultRoute = 'ipv4';
  return { json };
}

test('a device whose IOMMU group holds the default route is never detached: not by prepare nor nodedev-detach, but with --force', async () => {
  const { kernel, host, m, done } = await setup(routedIgb());
  try {
    const before = await simSnapshot(host);
    // Port 0 carries nothing itself; its group peer, port 1, carries the route.
    await assert.rejects(
      m.prepare('web1', [plain('hostdev0', '0000:01:00.0'), plain('hostdev1', '0000:01:00.1')]),
      refused(
        'DEVICE_IN_USE',
        /^PCI device 0000:01:00\.0 cannot be detached from the host: 0000:01:00\.1 in its IOMMU group \d+ carries the host's IPv4 default route \(netdev enp1s0f1\)$/,
      ),
    );
    await assert.rejects(
      m.detach(parsePciAddress('0000:01:00.1')),
      refused(
        'DEVICE_IN_USE',
        /^PCI device 0000:01:00\.1 cannot be detached from the host: it carries the host's IPv4/,
      ),
    );
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), [], 'refusals leave the host as it was');
    // A VF of the same card is in a group of its own: the guard does not reach it.
    await m.prepare('web1', [plain('hostdev0', '0000:01:10.0')]);
    await m.release('web1');

    // --force takes it; the kernel drops the route with the netdev, and it comes back with it.
    assert.equal(await m.detach(parsePciAddress('0000:01:00.1'), 'vfio-pci', { force: true }), true);
    assert.equal(await currentDriver(kernel.sysfs, parsePciAddress('0000:01:00.1')), 'vfio-pci');
    assert.doesNotMatch(await readFile(join(host, 'proc/net/route'), 'utf8'), /enp1s0f1/);
    await m.reattach(parsePciAddress('0000:01:00.1'));
    assert.match(await readFile(join(host, 'proc/net/route'), 'utf8'), /enp1s0f1\t00000000/);
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), []);
  } finally {
    await done();
  }
});

test('a disk with a mounted filesystem is never detached, and its whole IOMMU group with it, unless forced', async () => {
  const { kernel, host, m, done } = await setup('pcie-switch-no-acs');
  try {
    const before = await simSnapshot(host);
    const nvme = '0000:04:00.0';
    const nic = '0000:05:00.0';
    await assert.rejects(
      m.prepare('web1', [plain('hostdev0', nvme), plain('hostdev1', nic)]),
      refused(
        'DEVICE_IN_USE',
        new RegExp(
          `^PCI device ${nvme} cannot be detached from the host: it holds /dev/nvme0n1p2, mounted on /; ` +
            `it holds /dev/nvme0n1p1, mounted on /boot/efi; ${nic} in its IOMMU group \\d+ carries the host's IPv4 and IPv6 default routes \\(netdev enp5s0\\)$`,
        ),
      ),
    );
    await assert.rejects(
      m.detach(parsePciAddress(nvme)),
      refused('DEVICE_IN_USE', /holds \/dev\/nvme0n1p2, mounted on \//),
    );
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), []);

    // Forced: the disk goes with the driver (the mount stays, as the kernel keeps it).
    await m.detach(parsePciAddress(nvme), 'vfio-pci', { force: true });
    assert.equal(await currentDriver(kernel.sysfs, parsePciAddress(nvme)), 'vfio-pci');
    assert.equal(await kernel.sysfs.readLink('/sys/dev/block/259:2'), undefined);
    assert.match((await kernel.sysfs.read('/proc/self/mountinfo')) ?? '', / 259:2 \/ \/ /);
    await m.reattach(parsePciAddress(nvme));
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), []);
  } finally {
    await done();
  }
});

test('one MAC on one VF: an admin MAC set by anyone, or held by another domain, is refused naming the VF; host unchanged', async () => {
  const { kernel, host, m, done } = await setup('intel-x710-2port');
  try {
    // Someone outside passthru programmed a MAC on VF 3 of enp6s0f1 (0000:06:0a.3).
    await kernel.setVf('enp6s0f1', 3, { mac: parseMac('52:54:00:00:99:03') });
    await kernel.vfTable('enp6s0f1'); // i40e hands the MAC to the VF's netdev a moment later
    const before = await simSnapshot(host);
    await assert.rejects(
      m.prepare('web1', [withMac('hostdev0', '0000:06:02.1', '52:54:00:00:99:03')]),
      refused(
        'DEVICE_IN_USE',
        /^hostdev0: MAC 52:54:00:00:99:03 is already the admin MAC of VF 3 of PF enp6s0f1 \(0000:06:0a\.3\): one MAC can be on one VF only$/,
      ),
    );
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), []);

    // Held by another domain: its name is given too.
    await m.prepare('web2', [withMac('hostdev0', '0000:06:02.2', '52:54:00:00:10:02')]);
    const held = await simSnapshot(host);
    await assert.rejects(
      m.prepare('web1', [withMac('net0', '0000:06:02.1', '52:54:00:00:10:02')]),
      refused('DEVICE_IN_USE', /VF 2 of PF enp6s0f0 \(0000:06:02\.2\), held by domain web2: one MAC/),
    );
    // Twice in one request.
    await assert.rejects(
      m.prepare('web1', [
        withMac('net0', '0000:06:02.1', '52:54:00:00:10:05'),
        withMac('net1', '0000:06:02.3', '52:54:00:00:10:05'),
      ]),
      refused('XML_INVALID', /MAC 52:54:00:00:10:05 is given twice in domain web1 \(net0 and net1\)/),
    );
    assert.deepEqual(snapshotDiff(held, await simSnapshot(host)), []);

    // The VF that already carries the MAC may take it again.
    await m.prepare('web3', [withMac('hostdev0', '0000:06:0a.3', '52:54:00:00:99:03')]);
    await m.release('web3');
    await m.release('web2');
  } finally {
    await done();
  }
});
