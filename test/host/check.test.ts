import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
  const { dir, kernel, done } = await simHost('pcie-switch-no-acs');
  try {
    // The host's default route goes out of the NIC behind the switch; / is on the NVMe drive.
    mkdirSync(join(dir, 'proc/net'), { recursive: true });
    writeFileSync(
      join(dir, 'proc/net/route'),
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\nenp5s0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n',
    );
    writeFileSync(join(dir, 'proc/mounts'), '/dev/nvme0n1p2 / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n');
    mkdirSync(join(dir, 'sys/class/block'), { recursive: true });
    symlinkSync(
      '../../devices/pci0000:00/0000:00:1c.0/0000:02:00.0/0000:03:08.0/0000:04:00.0/nvme/nvme0/nvme0n1/nvme0n1p2',
      join(dir, 'sys/class/block/nvme0n1p2'),
    );
    const nvme = await checkAssignable(kernel.sysfs, parsePciAddress('0000:04:00.0'));
    assert.equal(nvme.assignable, false);
    const text = describe(nvme);
    assert.match(text, /PCI device 0000:04:00.0 holds \/dev\/nvme0n1p2, mounted on \//);
    assert.match(
      text,
      /0000:05:00.0 \(in IOMMU group \d+ with 0000:04:00.0\) carries the host's default route \(netdev enp5s0\)/,
    );
    assert.match(text, /0000:05:00.0 .* is bound to igb, netdev enp5s0: every endpoint of the group/);
    // The switch ports (bridges on pcieport) are members but not blockers.
    assert.equal(nvme.members.filter((m) => m.bridge).length, 3);
    assert.ok(!text.includes('0000:03:08.0 (in IOMMU group'));
    assert.equal(nvme.reasons.length, 3);
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
