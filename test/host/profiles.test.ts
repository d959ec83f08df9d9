import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMac } from '../../src/conf/mac.ts';
import { formatPciAddress, parsePciAddress } from '../../src/conf/pci-address.ts';
import { bindToStub, netdevMac, rebindHostDriver, vfOf } from '../../src/host/bind.ts';
import { findDevice, readInventory } from '../../src/host/inventory.ts';
import { scaleProfile } from '../../src/host/sim/profiles/scale.ts';
import { hostError, simHost } from './helpers.ts';

const names = (addrs: readonly { domain: number; bus: number; slot: number; function: number }[]): string[] =>
  addrs.map(formatPciAddress);

test('mellanox-cx3-dualport: two netdevs per PF and per VF, one VF table per port', async () => {
  const { kernel, done } = await simHost('mellanox-cx3-dualport');
  try {
    const inv = await readInventory(kernel.sysfs);
    const pf = findDevice(inv, parsePciAddress('0000:04:00.0'));
    assert.deepEqual(
      pf?.netdevs.map((n) => [n.name, n.devPort, n.physPortId]),
      [
        ['ens2', 0, '248a070300112230'],
        ['ens2d1', 1, '248a070300112231'],
      ],
    );
    const vf = findDevice(inv, parsePciAddress('0000:04:00.2'));
    assert.equal(vf?.physfn?.index, 1);
    assert.deepEqual(
      vf?.netdevs.map((n) => [n.name, n.devPort, n.physPortId]),
      [
        ['ens2f1p1', 0, '248a070300112230'],
        ['ens2f1p2', 1, '248a070300112231'],
      ],
    );
    assert.equal((await vfOf(kernel.sysfs, parsePciAddress('0000:04:00.2')))?.pfNetdev, 'ens2');
    // Each port keeps its own admin MAC; mlx4 hands them over when the VF driver reloads.
    await kernel.setVf('ens2', 1, { mac: parseMac('52:54:00:01:02:03') });
    await kernel.setVf('ens2d1', 1, { mac: parseMac('52:54:00:01:02:04'), vlan: { id: 43 } });
    assert.equal((await kernel.vfTable('ens2')).find((r) => r.vf === 1)?.vlan, 0);
    assert.equal((await kernel.vfTable('ens2d1')).find((r) => r.vf === 1)?.vlan, 43);
    await bindToStub(kernel, parsePciAddress('0000:04:00.2'));
    await rebindHostDriver(kernel, parsePciAddress('0000:04:00.2'));
    assert.equal(await netdevMac(kernel.sysfs, 'ens2f1p1'), '52:54:00:01:02:03');
    assert.equal(await netdevMac(kernel.sysfs, 'ens2f1p2'), '52:54:00:01:02:04');
    // mlx4 refuses an all-zero admin MAC.
    await assert.rejects(
      kernel.setVf('ens2', 0, { mac: parseMac('00:00:00:00:00:00') }),
      hostError('HOST_FAILED', 'EINVAL'),
    );
  } finally {
    done();
  }
});

test('mellanox-cx5: switchdev representors are recognised and never taken for the uplink', async () => {
  const { kernel, done } = await simHost('mellanox-cx5');
  try {
    const inv = await readInventory(kernel.sysfs);
    const pf = findDevice(inv, parsePciAddress('0000:3b:00.0'));
    const uplinks = pf?.netdevs.filter((n) => !n.representor).map((n) => n.name);
    const reps = pf?.netdevs.filter((n) => n.representor).map((n) => [n.name, n.representor?.vf]);
    assert.deepEqual(uplinks, ['ens3f0np0']);
    assert.deepEqual(reps, [
      ['ens3f0r0', 0],
      ['ens3f0r1', 1],
      ['ens3f0r2', 2],
      ['ens3f0r3', 3],
    ]);
    assert.equal((await vfOf(kernel.sysfs, parsePciAddress('0000:3b:00.3')))?.pfNetdev, 'ens3f0np0');
    await assert.rejects(kernel.vfTable('ens3f0r1'), hostError('HOST_FAILED', 'EOPNOTSUPP'));
    await assert.rejects(kernel.vfTable('ens3f0v1'), hostError('HOST_FAILED', 'EOPNOTSUPP'));
    // mlx5 applies an admin MAC to a bound VF at once; 802.1ad and min rate are supported.
    await kernel.setVf('ens3f0np0', 1, {
      mac: parseMac('52:54:00:05:00:01'),
      vlan: { id: 7, proto: '802.1ad' },
      rate: { minTx: 10, maxTx: 100 },
    });
    assert.equal(await netdevMac(kernel.sysfs, 'ens3f0v1'), '52:54:00:05:00:01');
    assert.equal((await kernel.vfTable('ens3f0np0')).find((r) => r.vf === 1)?.vlanProto, '802.1ad');
    // Disabling SR-IOV removes the representors too.
    await kernel.writeSysfs('/sys/bus/pci/devices/0000:3b:00.0/sriov_numvfs', '0');
    assert.deepEqual(await kernel.sysfs.list('/sys/bus/pci/devices/0000:3b:00.0/net'), ['ens3f0np0']);
  } finally {
    done();
  }
});

test('intel-82576: interleaved VFs, igb refuses exactly what real igb refuses', async () => {
  const { kernel, done } = await simHost('intel-82576');
  try {
    const inv = await readInventory(kernel.sysfs);
    const pf = findDevice(inv, parsePciAddress('0000:01:00.0'));
    assert.deepEqual(names(pf?.sriov?.vfs ?? []), [
      '0000:01:10.0',
      '0000:01:10.2',
      '0000:01:10.4',
      '0000:01:10.6',
      '0000:01:11.0',
      '0000:01:11.2',
      '0000:01:11.4',
    ]);
    assert.equal(pf?.sriov?.totalVfs, 7);
    assert.deepEqual(names(pf?.iommuGroupMembers ?? []), ['0000:01:00.0', '0000:01:00.1']);
    const vfs = inv.devices.filter((d) => d.physfn);
    assert.equal(new Set(vfs.map((v) => v.iommuGroup)).size, 7);
    assert.ok(vfs.every((v) => v.driver === 'igbvf' && v.netdevs.length === 1));

    await kernel.setVf('enp1s0f0', 0, {
      mac: parseMac('52:54:00:aa:bb:cc'),
      vlan: { id: 42 },
      spoofchk: true,
      trust: true,
    });
    await kernel.setVf('enp1s0f0', 1, { vlan: { id: 43, qos: 3 }, rate: { minTx: 0, maxTx: 100 } });
    await kernel.setVf('enp1s0f0', 1, { trust: false, spoofchk: false });
    const rows = await kernel.vfTable('enp1s0f0');
    assert.deepEqual(
      rows.slice(0, 2).map((r) => [r.vlan, r.qos, r.spoofchk, r.trust, r.maxTxRate]),
      [
        [42, 0, true, true, 0],
        [43, 3, false, false, 100],
      ],
    );
    // igb gives each new VF a random MAC of its own and reports it in the table (VM lab).
    assert.equal(rows[0]?.mac, '52:54:00:aa:bb:cc');
    assert.match(rows[1]?.mac ?? '', /^02:5e:/);
    assert.equal(await netdevMac(kernel.sysfs, 'enp1s0f0v1'), rows[1]?.mac);
    await assert.rejects(
      kernel.setVf('enp1s0f0', 0, { vlan: { id: 42, proto: '802.1ad' } }),
      hostError('HOST_FAILED', 'EPROTONOSUPPORT'),
    );
    await assert.rejects(
      kernel.setVf('enp1s0f0', 0, { rate: { minTx: 10, maxTx: 100 } }),
      hostError('HOST_FAILED', 'EINVAL'),
    );
    await assert.rejects(kernel.setVf('enp1s0f0', 0, { linkState: 'enable' }), hostError('HOST_FAILED', 'EOPNOTSUPP'));
    // "Reload the VF driver to make this change effective".
    const vf0 = parsePciAddress('0000:01:10.0');
    assert.notEqual(await netdevMac(kernel.sysfs, 'enp1s0f0v0'), '52:54:00:aa:bb:cc');
    await bindToStub(kernel, vf0);
    await rebindHostDriver(kernel, vf0);
    assert.equal(await netdevMac(kernel.sysfs, 'enp1s0f0v0'), '52:54:00:aa:bb:cc');
    // The second port starts with 0 VFs; 0 -> 7 interleaves with the first port's.
    await kernel.writeSysfs('/sys/bus/pci/devices/0000:01:00.1/sriov_numvfs', '7');
    const pf1 = findDevice(await readInventory(kernel.sysfs), parsePciAddress('0000:01:00.1'));
    assert.equal(names(pf1?.sriov?.vfs ?? [])[0], '0000:01:10.1');
  } finally {
    done();
  }
});

test('broadcom-bcm5719: four functions in one IOMMU group, no SR-IOV', async () => {
  const { kernel, done } = await simHost('broadcom-bcm5719');
  try {
    const inv = await readInventory(kernel.sysfs);
    const fns = inv.devices.filter((d) => d.vendor === 0x14e4);
    assert.equal(fns.length, 4);
    assert.ok(fns.every((f) => f.multifunction && f.driver === 'tg3' && !f.sriov && f.iommuGroupMembers.length === 4));
    assert.equal(new Set(fns.map((f) => f.iommuGroup)).size, 1);
    await assert.rejects(
      kernel.writeSysfs('/sys/bus/pci/devices/0000:02:00.0/sriov_numvfs', '1'),
      hostError('HOST_FAILED', 'ENOENT'),
    );
  } finally {
    done();
  }
});

test('gpu-with-audio: GPU and HDMI audio share a group; no reset method for them', async () => {
  const { kernel, done } = await simHost('gpu-with-audio');
  try {
    const inv = await readInventory(kernel.sysfs);
    const gpu = findDevice(inv, parsePciAddress('0000:01:00.0'));
    const audio = findDevice(inv, parsePciAddress('0000:01:00.1'));
    assert.equal(gpu?.class, 0x030000);
    assert.equal(audio?.driver, 'snd_hda_intel');
    assert.equal(gpu?.iommuGroup, audio?.iommuGroup);
    await assert.rejects(
      kernel.writeSysfs('/sys/bus/pci/devices/0000:01:00.0/reset', '1'),
      hostError('HOST_FAILED', 'ENOTTY'),
    );
    // No NIC: QEMU gets an edu device for it (docs/hostdev.md).
    assert.deepEqual(await kernel.present(parsePciAddress('0000:01:00.0')), { kind: 'emulated-device', model: 'edu' });
  } finally {
    done();
  }
});

test('pcie-switch-no-acs: switch ports and endpoints behind them share one group', async () => {
  const { kernel, done } = await simHost('pcie-switch-no-acs');
  try {
    const inv = await readInventory(kernel.sysfs);
    const nvme = findDevice(inv, parsePciAddress('0000:04:00.0'));
    assert.deepEqual(names(nvme?.iommuGroupMembers ?? []), [
      '0000:02:00.0',
      '0000:03:08.0',
      '0000:03:10.0',
      '0000:04:00.0',
      '0000:05:00.0',
    ]);
    assert.equal(formatPciAddress(nvme?.parent ?? parsePciAddress('0:0.0')), '0000:03:08.0');
    const down = findDevice(inv, parsePciAddress('0000:03:08.0'));
    assert.equal(down?.config?.pcie?.type, 'switch-downstream');
    assert.equal(down?.config?.acs, undefined);
    assert.equal(findDevice(inv, parsePciAddress('0000:00:1c.0'))?.config?.acs?.control, 0x1d);
    // FLR-capable NVMe resets fine.
    await kernel.writeSysfs('/sys/bus/pci/devices/0000:04:00.0/reset', '1');
  } finally {
    done();
  }
});

test('a PF with 256 VFs: every VF by index, VF table complete', async () => {
  const { kernel, done } = await simHost({ json: scaleProfile(1, 256) });
  try {
    const inv = await readInventory(kernel.sysfs);
    const pf = findDevice(inv, parsePciAddress('0000:10:00.0'));
    assert.equal(pf?.sriov?.vfs.length, 256);
    // Offset 8 from 10:00.0: VF 247 is the last on bus 0x10, VF 248 the first on bus 0x11.
    assert.equal(formatPciAddress(pf?.sriov?.vfs[247] ?? parsePciAddress('0:0.0')), '0000:10:1f.7');
    assert.equal(formatPciAddress(pf?.sriov?.vfs[248] ?? parsePciAddress('0:0.0')), '0000:11:00.0');
    assert.equal(findDevice(inv, parsePciAddress('0000:11:00.0'))?.physfn?.index, 248);
    const rows = await kernel.vfTable('ens0f0');
    assert.deepEqual(
      rows.map((r) => r.vf),
      Array.from({ length: 256 }, (_, i) => i),
    );
  } finally {
    done();
  }
});
