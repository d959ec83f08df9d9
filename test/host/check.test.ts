import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { bindToStub } from '../../src/host/bind.ts';
import { checkAssignable, describe } from '../../src/host/check.ts';
import { hostError, simHost } from './helpers.ts';

test('nodedev-check: a VF alone in its group is assignable; a bridge never is', async () => {
  const { kernel, done } = await simHost();
  try {
    const vf = await checkAssignable(kernel.sysfs, parsePciAddress('0000:06:02.1'));
    assert.equal(vf.assignable, true);
    assert.deepEqual(vf.reasons, []);
    assert.match(vf.notes.join('\n'), /bound to iavf/);
    const rp = await checkAssignable(kernel.sysfs, parsePciAddress('0000:00:01.0'));
    assert.equal(rp.assignable, false);
    assert.match(rp.reasons[0] ?? '', /0000:00:01.0 is a pci-bridge: bridges are never assignable/);
    const pf = await checkAssignable(kernel.sysfs, parsePciAddress('0000:06:00.0'));
    assert.match(pf.notes.join('\n'), /PF 0000:06:00.0 has 8 VFs/);
    await assert.rejects(checkAssignable(kernel.sysfs, parsePciAddress('0000:42:00.0')), hostError('NO_DEVICE'));
  } finally {
    done();
  }
});

test('nodedev-check: group peers on host drivers, the default route and mounted disks are named', async () => {
  const { kernel, done } = await simHost('pcie-switch-no-acs');
  try {
    // The profile's host boots from the NVMe drive and routes through the NIC behind the switch.
    const nvme = await checkAssignable(kernel.sysfs, parsePciAddress('0000:04:00.0'));
    assert.equal(nvme.assignable, false);
    const text = describe(nvme);
    assert.match(text, /PCI device 0000:04:00.0 holds \/dev\/nvme0n1p2, mounted on \//);
    assert.match(text, /PCI device 0000:04:00.0 holds \/dev\/nvme0n1p1, mounted on \/boot\/efi/);
    assert.match(
      text,
      /0000:05:00.0 \(in IOMMU group \d+ with 0000:04:00.0\) carries the host's IPv4 and IPv6 default routes \(netdev enp5s0\)/,
    );
    assert.match(text, /0000:05:00.0 .* is bound to igb, netdev enp5s0: every endpoint of the group/);
    // The switch ports (bridges on pcieport) are members but not blockers.
    assert.equal(nvme.members.filter((m) => m.bridge).length, 3);
    assert.ok(!text.includes('0000:03:08.0 (in IOMMU group'));
    assert.equal(nvme.reasons.length, 4);
  } finally {
    done();
  }
});

test('nodedev-check: once the peers are on vfio-pci only the host-path blockers remain', async () => {
  const { kernel, done } = await simHost('gpu-with-audio');
  try {
    const before = await checkAssignable(kernel.sysfs, parsePciAddress('0000:01:00.0'));
    assert.deepEqual(before.reasons.length, 1);
    assert.match(before.reasons[0] ?? '', /0000:01:00.1 .* is bound to snd_hda_intel/);
    await bindToStub(kernel, parsePciAddress('0000:01:00.1'));
    const after = await checkAssignable(kernel.sysfs, parsePciAddress('0000:01:00.0'));
    assert.equal(after.assignable, true);
  } finally {
    done();
  }
});
