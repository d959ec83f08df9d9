import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { parseMac } from '../../src/conf/mac.ts';
import { type PciAddress, parsePciAddress } from '../../src/conf/pci-address.ts';
import { adminMacDatapath, type SteerNote } from '../../src/host/datapath.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { openSimHost, type SimKernel } from '../../src/host/sim/kernel.ts';
import { hostOps } from '../../src/hostdev/host-ops.ts';
import { HostdevManager } from '../../src/hostdev/manager.ts';
import { silentLogger } from '../../src/lib/logger.ts';

/** A sim host with a device manager over its kernel, as the daemon has them. */
async function setup(profile: string): Promise<{
  kernel: SimKernel;
  state: string;
  m: HostdevManager;
  done: () => Promise<void>;
}> {
  const base = await mkdtemp(join(tmpdir(), 'passthru-datapath-'));
  await createSimHost(join(base, 'host'), profile);
  const kernel = await openSimHost(join(base, 'host'));
  const state = join(base, 'state');
  const m = await HostdevManager.open(hostOps(kernel), state, silentLogger());
  return { kernel, state, m, done: () => rm(base, { recursive: true, force: true }) };
}

async function vfAddress(kernel: SimKernel, pfNetdev: string, vf: number): Promise<PciAddress> {
  const link = await kernel.sysfs.readLink(`/sys/class/net/${pfNetdev}/device/virtfn${vf}`);
  assert.ok(link, `${pfNetdev} has VF ${vf}`);
  return parsePciAddress(basename(link));
}

const macOf = async (kernel: SimKernel, pfNetdev: string, vf: number): Promise<string | undefined> =>
  (await kernel.vfTable(pfNetdev)).find((r) => r.vf === vf)?.mac;

const GUEST = '52:54:00:aa:00:02';

/** The device manager takes the VF for `domain` as a managed hostdev with the guest's MAC. */
const prepareVf = (m: HostdevManager, address: PciAddress, domain = 'hyb') =>
  m.prepare(domain, [
    { alias: 'hostdev0', address, managed: true, stub: 'vfio-pci', assigned: true, net: { mac: parseMac(GUEST) } },
  ]);

test('igb: the guest MAC leaves the VF for the standby and comes back; release restores the VF exactly, after a restart too', async () => {
  const { kernel, state, m, done } = await setup('intel-82576');
  try {
    const pf = 'enp1s0f0';
    const vf2 = await vfAddress(kernel, pf, 2);
    const original = await macOf(kernel, pf, 2);
    assert.equal(original, '02:5e:00:00:00:03', 'igb gave VF 2 a random admin MAC at creation');
    await prepareVf(m, vf2);
    assert.equal(await macOf(kernel, pf, 2), GUEST);

    const notes: SteerNote[] = [];
    const dp = adminMacDatapath(kernel, (n) => notes.push(n));
    assert.equal(await dp.steer(vf2, GUEST, 'standby', 'UNPLUG_PRIMARY'), 'standby');
    assert.equal(await macOf(kernel, pf, 2), '00:00:00:00:00:00', 'igb takes the all-zero MAC: off the VF');
    assert.deepEqual(
      notes.map((n) => [n.pfNetdev, n.index, n.to, n.wrote]),
      [[pf, 2, 'standby', '00:00:00:00:00:00']],
    );
    // Again: nothing to take off, nothing written.
    assert.equal(await dp.steer(vf2, GUEST, 'none', 'confirm'), 'none');
    assert.equal(notes.length, 1);

    // While the MAC is off its VF, it is still this lease's: another domain cannot take it.
    const vf3 = await vfAddress(kernel, pf, 3);
    const vf3Before = await macOf(kernel, pf, 3);
    await assert.rejects(
      prepareVf(m, vf3, 'other'),
      (e: unknown) =>
        e instanceof PassthruError &&
        e.code === 'DEVICE_IN_USE' &&
        e.message.includes(`MAC ${GUEST} is already the admin MAC of VF 2 of PF ${pf}`) &&
        e.message.includes('held by domain hyb'),
    );
    assert.equal(await macOf(kernel, pf, 3), vf3Before, 'the refused VF is untouched');

    assert.equal(await dp.steer(vf2, GUEST, 'vf', 'FAILOVER_NEGOTIATED'), 'vf2');
    assert.equal(await macOf(kernel, pf, 2), GUEST, 'back on the VF');
    assert.equal(await dp.steer(vf2, GUEST, 'standby', 'UNPLUG_PRIMARY'), 'standby');
    assert.equal(await macOf(kernel, pf, 2), '00:00:00:00:00:00');

    // The daemon dies with the MAC off the VF; the next one releases from the journal alone.
    const again = await HostdevManager.open(hostOps(kernel), state, silentLogger());
    await again.release('hyb');
    assert.equal(await macOf(kernel, pf, 2), original, 'the saved row is written back whatever the datapath did');
    // With the lease gone, the MAC is free for another VF.
    await prepareVf(again, vf3, 'other');
    assert.equal(await macOf(kernel, pf, 3), GUEST);
    await again.release('other');
  } finally {
    await done();
  }
});

test("the datapath never puts a MAC on a second VF, and never clears a MAC that is not the guest's", async () => {
  const { kernel, done } = await setup('intel-82576');
  try {
    const pf = 'enp1s0f0';
    const dp = adminMacDatapath(kernel);
    const vf1 = await vfAddress(kernel, pf, 1);
    await kernel.setVf(pf, 4, { mac: parseMac(GUEST) }); // someone else's VF carries it
    await assert.rejects(dp.steer(vf1, GUEST, 'vf', 'FAILOVER_NEGOTIATED'), (e: unknown) => {
      assert.ok(e instanceof PassthruError && e.code === 'DEVICE_IN_USE');
      assert.match(
        e.message,
        /^MAC 52:54:00:aa:00:02 is already the admin MAC of VF 4 of PF enp1s0f0 \(0000:01:1[01]\.\d\): the datapath \(FAILOVER_NEGOTIATED\) leaves it off VF 1 of PF enp1s0f0/,
      );
      return true;
    });
    assert.equal(await macOf(kernel, pf, 1), '02:5e:00:00:00:02', 'VF 1 unchanged');
    // VF 1 carries its own MAC, not the guest's: the standby move leaves it alone.
    assert.equal(await dp.steer(vf1, GUEST, 'standby', 'UNPLUG_PRIMARY'), 'standby');
    assert.equal(await macOf(kernel, pf, 1), '02:5e:00:00:00:02');
    // A PF is no VF.
    await assert.rejects(dp.steer(parsePciAddress('0000:01:00.0'), GUEST, 'vf', 'x'), (e: unknown) => {
      return e instanceof PassthruError && e.code === 'DEVICE_NOT_ASSIGNABLE' && e.message.includes('is not a VF');
    });
  } finally {
    await done();
  }
});

test('mlx4 refuses the all-zero MAC: 02:00:00:00:00:00 is written instead and said so; the guest MAC still leaves', async () => {
  const { kernel, m, done } = await setup('mellanox-cx3-dualport');
  try {
    const pf = 'ens2';
    const vf0 = await vfAddress(kernel, pf, 0);
    await prepareVf(m, vf0);
    assert.equal(await macOf(kernel, pf, 0), GUEST);
    const notes: SteerNote[] = [];
    const dp = adminMacDatapath(kernel, (n) => notes.push(n));
    assert.equal(await dp.steer(vf0, GUEST, 'standby', 'UNPLUG_PRIMARY'), 'standby');
    assert.equal(await macOf(kernel, pf, 0), '02:00:00:00:00:00');
    assert.deepEqual(
      notes.map((n) => [n.asked, n.wrote]),
      [['00:00:00:00:00:00', '02:00:00:00:00:00']],
    );
    assert.equal(await dp.steer(vf0, GUEST, 'vf', 'FAILOVER_NEGOTIATED'), 'vf0');
    assert.equal(await macOf(kernel, pf, 0), GUEST);
    await m.release('hyb');
    assert.equal(await macOf(kernel, pf, 0), '02:00:00:00:00:00', 'mlx4 gets the almost-zero MAC back for its zero');
  } finally {
    await done();
  }
});
