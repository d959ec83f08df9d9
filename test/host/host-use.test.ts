import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { readHostUse } from '../../src/host/host-use.ts';
import { DirSysfs } from '../../src/host/sysfs.ts';

/** A hand-made tree in the kernel's shapes for what the sim profiles do not have: a default
 *  route on a bridge over a bond, root on device-mapper over a partition, btrfs (major 0). */
test('host use: a route on a bridge over a bond, LVM over a partition and btrfs are traced to their PCI functions', async () => {
  const root = mkdtempSync(join(tmpdir(), 'passthru-hostuse-'));
  try {
    const file = (rel: string, text: string): void => {
      mkdirSync(dirname(join(root, rel)), { recursive: true });
      writeFileSync(join(root, rel), text);
    };
    const ln = (rel: string, target: string): void => {
      mkdirSync(dirname(join(root, rel)), { recursive: true });
      symlinkSync(target, join(root, rel));
    };
    const nic = (name: string, bdf: string): void => {
      mkdirSync(join(root, `sys/devices/pci0000:00/0000:00:1c.0/${bdf}/net/${name}`), { recursive: true });
      ln(`sys/class/net/${name}`, `../../devices/pci0000:00/0000:00:1c.0/${bdf}/net/${name}`);
    };
    nic('eno1', '0000:02:00.0');
    nic('eno2', '0000:02:00.1');
    for (const v of ['br0', 'bond0']) mkdirSync(join(root, `sys/devices/virtual/net/${v}`), { recursive: true });
    ln('sys/class/net/br0', '../../devices/virtual/net/br0');
    ln('sys/class/net/bond0', '../../devices/virtual/net/bond0');
    ln('sys/devices/virtual/net/br0/lower_bond0', '../bond0');
    ln('sys/devices/virtual/net/bond0/lower_eno1', '../../../pci0000:00/0000:00:1c.0/0000:02:00.0/net/eno1');
    ln('sys/devices/virtual/net/bond0/lower_eno2', '../../../pci0000:00/0000:00:1c.0/0000:02:00.1/net/eno2');
    file(
      'proc/net/route',
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\nbr0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n',
    );
    const part = 'sys/devices/pci0000:00/0000:00:1d.0/0000:03:00.0/nvme/nvme0/nvme0n1/nvme0n1p3';
    mkdirSync(join(root, part), { recursive: true });
    ln('sys/class/block/nvme0n1p3', `../../devices/pci0000:00/0000:00:1d.0/0000:03:00.0/nvme/nvme0/nvme0n1/nvme0n1p3`);
    mkdirSync(join(root, 'sys/devices/virtual/block/dm-0/slaves'), { recursive: true });
    ln('sys/dev/block/253:0', '../../devices/virtual/block/dm-0');
    ln(
      'sys/devices/virtual/block/dm-0/slaves/nvme0n1p3',
      '../../../../pci0000:00/0000:00:1d.0/0000:03:00.0/nvme/nvme0/nvme0n1/nvme0n1p3',
    );
    const sata = 'sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1';
    mkdirSync(join(root, sata), { recursive: true });
    ln('sys/class/block/sda1', `../../devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1`);
    file(
      'proc/self/mountinfo',
      [
        '22 1 0:21 / /proc rw shared:12 - proc proc rw',
        '30 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/vg-root rw',
        '31 30 0:40 / /srv/my\\040data rw,relatime shared:2 - btrfs /dev/sda1 rw',
        '32 30 0:40 /x /var/lib/x rw,relatime shared:3 - btrfs /dev/sda1 rw',
      ].join('\n'),
    );
    assert.deepEqual(Object.fromEntries(await readHostUse(new DirSysfs(root))), {
      '0000:02:00.0': ["carries the host's IPv4 default route (netdev eno1 under br0)"],
      '0000:02:00.1': ["carries the host's IPv4 default route (netdev eno2 under br0)"],
      '0000:03:00.0': ['holds /dev/mapper/vg-root, mounted on /'],
      '0000:00:17.0': ['holds /dev/sda1, mounted on /srv/my data (and 1 more)'],
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
