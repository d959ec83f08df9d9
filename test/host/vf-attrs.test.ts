import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { parseMac, ZERO_MAC } from '../../src/conf/mac.ts';
import { injectFault } from '../../src/host/sim/faults.ts';
import { applyVfSettings, checkVfSettings, settingsToRestore } from '../../src/host/vf-apply.ts';
import { unsupportedSettings, vfCapabilities } from '../../src/host/vf-caps.ts';
import { hostError, simHost, treeImage } from './helpers.ts';

const fast = { sleep: () => Promise.resolve() };

test('capabilities: one table says what each PF driver refuses, with its errno', () => {
  const igb = vfCapabilities('igb');
  assert.deepEqual(
    unsupportedSettings(igb, { linkState: 'enable', trust: true, rate: { minTx: 10, maxTx: 100 } }).map((r) => [
      r.words,
      r.errno,
    ]),
    [
      ['min TX rate 10 Mbps', 'EINVAL'],
      ['link state enable', 'EOPNOTSUPP'],
    ],
  );
  assert.equal(igb.pfMustBeUp, false);
  assert.equal(vfCapabilities('mlx4_core').zeroMacEinval, true);
  assert.equal(vfCapabilities('i40e').macAsync, true);
  // An unknown driver answers for itself; it only has to keep libvirt's PF-up rule.
  assert.deepEqual(vfCapabilities('acme_nic').unsupported, {});
  assert.equal(vfCapabilities('acme_nic').pfMustBeUp, true);
});

test('igb: link state is refused before anything changes, naming the driver; the sim answers as igb', async () => {
  const { dir, kernel, done } = await simHost('intel-82576');
  try {
    const before = treeImage(dir);
    await assert.rejects(
      applyVfSettings(kernel, 'enp1s0f0', 2, { mac: parseMac('52:54:00:00:00:22'), linkState: 'disable' }, fast),
      (e: unknown) =>
        hostError('CONFIG_UNSUPPORTED')(e) &&
        (e as Error).message.includes(
          'VF 2 of PF enp1s0f0: PF driver igb cannot set link state disable (EOPNOTSUPP); nothing was changed',
        ),
    );
    assert.equal(treeImage(dir), before, 'the host is unchanged');
    // Underneath, the sim's igb refuses the same with the errno real igb answers.
    await assert.rejects(kernel.setVf('enp1s0f0', 2, { linkState: 'disable' }), hostError('HOST_FAILED', 'EOPNOTSUPP'));
    // What igb can do is written and read back.
    const done1 = await applyVfSettings(
      kernel,
      'enp1s0f0',
      2,
      { trust: true, spoofchk: false, rate: { minTx: 0, maxTx: 250 }, vlan: { id: 7, qos: 2 } },
      fast,
    );
    assert.deepEqual(done1.rate, { minTx: 0, maxTx: 250 });
    const row = (await kernel.vfTable('enp1s0f0'))[2];
    assert.deepEqual([row?.trust, row?.spoofchk, row?.maxTxRate, row?.vlan, row?.qos], [true, false, 250, 7, 2]);
  } finally {
    done();
  }
});

test('every attribute on mlx5: set, read back, and restored to the byte from the saved row', async () => {
  const { dir, kernel, done } = await simHost('mellanox-cx5');
  try {
    const pf = 'ens3f0np0';
    const before = treeImage(dir);
    const saved = (await kernel.vfTable(pf))[1];
    assert.ok(saved);
    await applyVfSettings(
      kernel,
      pf,
      1,
      {
        mac: parseMac('52:54:00:00:01:01'),
        vlan: { id: 100, qos: 5, proto: '802.1ad' },
        rate: { minTx: 100, maxTx: 1000 },
        spoofchk: true,
        linkState: 'disable',
        trust: true,
      },
      fast,
    );
    const now = (await kernel.vfTable(pf))[1];
    assert.deepEqual(now, {
      vf: 1,
      mac: '52:54:00:00:01:01',
      vlan: 100,
      qos: 5,
      vlanProto: '802.1ad',
      spoofchk: true,
      trust: true,
      linkState: 'disable',
      minTxRate: 100,
      maxTxRate: 1000,
    });
    assert.ok(now);
    await applyVfSettings(kernel, pf, 1, settingsToRestore(saved, now), fast);
    assert.deepEqual((await kernel.vfTable(pf))[1], saved);
    // The VF netdev took the MAC (mlx5 resets the VF) and keeps it: not part of the row.
    const image = treeImage(dir).replace(/52:54:00:00:01:01/g, 'X');
    assert.equal(image.split('\n').length, before.split('\n').length);
  } finally {
    done();
  }
});

test('zero MAC: a driver that refuses it (mlx4) gets 02:00:00:00:00:00, as libvirt; so does an injected EINVAL', async () => {
  const cx3 = await simHost('mellanox-cx3-dualport');
  try {
    const w = await applyVfSettings(cx3.kernel, 'ens2', 0, { mac: ZERO_MAC }, fast);
    assert.equal(w.mac, '02:00:00:00:00:00');
    assert.equal((await cx3.kernel.vfTable('ens2'))[0]?.mac, '02:00:00:00:00:00');
  } finally {
    cx3.done();
  }
  const x710 = await simHost();
  try {
    await injectFault(x710.dir, { op: 'setVf', match: 'vf 3 admin MAC 00:00:00:00:00:00', nth: 1, errno: 'EINVAL' });
    const w = await applyVfSettings(x710.kernel, 'enp6s0f0', 3, { mac: ZERO_MAC, vlan: { id: 0 } }, fast);
    assert.equal(w.mac, '02:00:00:00:00:00');
    // Any other MAC refused with EINVAL is an error naming the VF.
    await injectFault(x710.dir, { op: 'setVf', match: 'vf 3 admin MAC', nth: 1, errno: 'EINVAL' });
    await assert.rejects(
      applyVfSettings(x710.kernel, 'enp6s0f0', 3, { mac: parseMac('52:54:00:00:00:03') }, fast),
      hostError('HOST_FAILED', 'EINVAL'),
    );
  } finally {
    x710.done();
  }
});

test('EPERM on clearing VLAN 0 is ignored (and the row still checked); on a real VLAN it is an error', async () => {
  const { dir, kernel, done } = await simHost();
  try {
    await injectFault(dir, { op: 'setVf', match: 'vf 4 VLAN 0', nth: 1, errno: 'EPERM' });
    await applyVfSettings(kernel, 'enp6s0f0', 4, { mac: parseMac('52:54:00:00:00:04'), vlan: { id: 0 } }, fast);
    assert.equal((await kernel.vfTable('enp6s0f0'))[4]?.mac, '52:54:00:00:00:04');
    await injectFault(dir, { op: 'setVf', match: 'vf 4 VLAN 42', nth: 1, errno: 'EPERM' });
    await assert.rejects(
      applyVfSettings(kernel, 'enp6s0f0', 4, { vlan: { id: 42 } }, fast),
      hostError('HOST_FAILED', 'EPERM'),
    );
    // A VLAN that is set and then "cleared" with EPERM is caught by the read-back.
    await applyVfSettings(kernel, 'enp6s0f0', 4, { vlan: { id: 42 } }, fast);
    await injectFault(dir, { op: 'setVf', match: 'vf 4 VLAN 0', nth: 1, errno: 'EPERM' });
    await assert.rejects(applyVfSettings(kernel, 'enp6s0f0', 4, { vlan: { id: 0 } }, fast), /VLAN reads 42, not 0/);
  } finally {
    done();
  }
});

test('"VF still in reset" (EAGAIN) is retried until it passes, within a bound', async () => {
  const { dir, kernel, done } = await simHost();
  try {
    for (const nth of [1, 2, 3]) await injectFault(dir, { op: 'setVf', match: 'vf 5 trust', nth, errno: 'EAGAIN' });
    let sleeps = 0;
    const sleep = (): Promise<void> => {
      sleeps++;
      return Promise.resolve();
    };
    await applyVfSettings(kernel, 'enp6s0f0', 5, { trust: true }, { sleep });
    assert.equal(sleeps, 3);
    assert.equal((await kernel.vfTable('enp6s0f0'))[5]?.trust, true);
    for (const nth of [1, 2, 3]) await injectFault(dir, { op: 'setVf', match: 'vf 5 trust', nth, errno: 'EAGAIN' });
    await assert.rejects(
      applyVfSettings(kernel, 'enp6s0f0', 5, { trust: false }, { sleep, resetTimeoutMs: 200 }),
      hostError('HOST_FAILED', 'EAGAIN'),
    );
  } finally {
    done();
  }
});

test('slow async MAC: an i40e VF that shows its admin MAC late is polled; a driver that is not async fails', async () => {
  const { dir, kernel, done } = await simHost();
  try {
    await injectFault(dir, { op: 'setVf', match: 'vf 6 admin MAC', nth: 1, lateMs: 300 });
    await applyVfSettings(kernel, 'enp6s0f0', 6, { mac: parseMac('52:54:00:00:00:06') }, { macTimeoutMs: 5000 });
    assert.equal((await kernel.vfTable('enp6s0f0'))[6]?.mac, '52:54:00:00:00:06');
    await injectFault(dir, { op: 'setVf', match: 'vf 7 admin MAC', nth: 1, lateMs: 60_000 });
    await assert.rejects(
      applyVfSettings(kernel, 'enp6s0f0', 7, { mac: parseMac('52:54:00:00:00:07') }, { macTimeoutMs: 300 }),
      /VF 7 of PF enp6s0f0 did not take the setting: admin MAC reads 00:00:00:00:00:00/,
    );
  } finally {
    done();
  }
  const igb = await simHost('intel-82576');
  try {
    await injectFault(igb.dir, { op: 'setVf', match: 'vf 1 admin MAC', nth: 1, lateMs: 60_000 });
    await assert.rejects(
      applyVfSettings(igb.kernel, 'enp1s0f0', 1, { mac: parseMac('52:54:00:00:00:11') }, fast),
      /did not take the setting/,
    );
  } finally {
    igb.done();
  }
});

test('PF must be up: refused naming the PF before anything changes; igb takes settings with its PF down', async () => {
  const { dir, kernel, done } = await simHost();
  try {
    await kernel.setNetdevUp('enp6s0f0', false);
    const before = treeImage(dir);
    await assert.rejects(
      applyVfSettings(kernel, 'enp6s0f0', 1, { mac: parseMac('52:54:00:00:00:01') }, fast),
      (e: unknown) =>
        e instanceof PassthruError &&
        e.message ===
          "Unable to configure VF 1 of PF 'enp6s0f0' because the PF is not online. Please change host network config to put the PF online." &&
        e.hint?.includes('ip link set enp6s0f0 up') === true,
    );
    assert.equal(treeImage(dir), before);
    await kernel.setNetdevUp('enp6s0f0', true);
    await checkVfSettings(kernel, 'enp6s0f0', 1, { trust: true });
  } finally {
    done();
  }
  const igb = await simHost('intel-82576');
  try {
    await igb.kernel.setNetdevUp('enp1s0f0', false);
    await applyVfSettings(igb.kernel, 'enp1s0f0', 0, { mac: parseMac('52:54:00:00:00:10'), trust: true }, fast);
  } finally {
    igb.done();
  }
});
