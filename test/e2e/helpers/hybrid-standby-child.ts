/**
 * Run inside a network namespace by hybrid-linux-standby.test.ts: the daemon's start pieces of
 * a hostdev-hybrid's standby on the linux backend, against the real kernel, with `argv[2]`
 * standing in for the VF's PF (this machine has no SR-IOV NIC: the VF half cannot run here).
 * Prints one JSON line after plugging, waits for a line on stdin, unplugs, prints `unplugged`.
 */
import { once } from 'node:events';
import { fstatSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { readDomainXml } from '../../../src/conf/domain/read.ts';
import { plugHostNics, unplugHostNics } from '../../../src/daemon/host-nics.ts';
import { withStandbyParents } from '../../../src/daemon/hybrid.ts';
import { parsePciAddress } from '../../../src/conf/pci-address.ts';
import { LinuxNetdevs } from '../../../src/host/linux/netdev.ts';
import { completeDefinition } from '../../../src/qemu/define-def.ts';
import { prepareLiveDef } from '../../../src/qemu/live-def.ts';
import { formatDomainXml } from '../../../src/conf/domain/format.ts';

const [pfNetdev = '', mac = ''] = process.argv.slice(2);
const live = prepareLiveDef(
  completeDefinition(
    readDomainXml(`<domain type='kvm'><name>hy</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type machine='q35'>hvm</type></os><devices>
  <interface type='hostdev-hybrid' managed='yes'><mac address='${mac}'/><source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x3'/></source></interface>
</devices></domain>`),
  ),
);
const netdevs = await LinuxNetdevs.open();
const views = { vfOf: () => Promise.resolve({ pf: parsePciAddress('0000:06:00.0'), pfNetdev, index: 3 }) };
const placed = await withStandbyParents(live, views, netdevs);
const plugged = await plugHostNics(placed, netdevs);
const fd = plugged.fds[0];
process.stdout.write(
  `${JSON.stringify({
    xml: formatDomainXml(plugged.live),
    backends: [...plugged.backends],
    fdIsCharDevice: fd === undefined ? false : fstatSync(fd).isCharacterDevice(),
  })}\n`,
);
await once(createInterface({ input: process.stdin }), 'line');
await unplugHostNics(plugged.live, netdevs);
process.stdout.write('unplugged\n');
process.exit(0);
