import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatPciAddress, parsePciAddress } from '../../src/conf/pci-address.ts';
import { formatNodeDevice } from '../../src/conf/nodedev/format.ts';
import { parseNodeDevice } from '../../src/conf/nodedev/parse.ts';
import { findDevice, parsePciUevent, readInventory, readPciDevice } from '../../src/host/inventory.ts';
import { listProfiles } from '../../src/host/sim/profile.ts';
import { DirSysfs } from '../../src/host/sysfs.ts';
import { nodeDevices } from '../../src/host/nodedev.ts';
import { hostError, simHost } from './helpers.ts';

test('inventory of intel-x710-2port: PFs, VFs, groups, drivers, netdevs', async () => {
  const { kernel, done } = await simHost();
  try {
    const inv = await readInventory(kernel.sysfs);
    assert.equal(inv.devices.length, 2 + 2 + 16);
    const pfs = inv.devices.filter((d) => d.sriov);
    assert.deepEqual(
      pfs.map((p) => [p.name, p.driver, p.vendor, p.device, p.sriov?.totalVfs, p.sriov?.numVfs]),
      [
        ['0000:06:00.0', 'i40e', 0x8086, 0x1572, 64, 8],
        ['0000:06:00.1', 'i40e', 0x8086, 0x1572, 64, 8],
      ],
    );
    const [pf0, pf1] = pfs;
    assert.ok(pf0 && pf1);
    assert.notEqual(pf0.iommuGroup, pf1.iommuGroup, 'the two PFs are in separate IOMMU groups');
    assert.deepEqual(pf0.iommuGroupMembers.map(formatPciAddress), ['0000:06:00.0']);
    assert.equal(pf0.multifunction, true);
    assert.equal(pf0.headerType, 'endpoint');
    assert.equal(pf0.config?.pcie?.flr, true);
    assert.deepEqual(
      pf0.netdevs.map((n) => [n.name, n.mac, n.devPort, n.physPortId]),
      [['enp6s0f0', '3c:fd:fe:a0:06:00', 0, '3cfdfea00600']],
    );
    assert.equal(formatPciAddress(pf0.parent ?? parsePciAddress('0:0.0')), '0000:00:01.0');
    const rootPort = findDevice(inv, parsePciAddress('0000:00:01.0'));
    assert.equal(rootPort?.headerType, 'pci-bridge');
    assert.deepEqual(rootPort?.config?.acs, { capability: 0x1f, control: 0x1d });

    const vfs = inv.devices.filter((d) => d.physfn);
    assert.equal(vfs.length, 16);
    const groups = new Set(vfs.map((v) => v.iommuGroup));
    assert.equal(groups.size, 16, 'each VF has its own IOMMU group');
    for (const vf of vfs) {
      assert.equal(vf.driver, 'iavf');
      assert.equal(vf.device, 0x154c);
      assert.equal(vf.netdevs.length, 1);
      assert.deepEqual(vf.iommuGroupMembers, [vf.address]);
      const pf = findDevice(inv, vf.physfn?.pf ?? parsePciAddress('0:0.0'));
      assert.deepEqual(pf?.sriov?.vfs[vf.physfn?.index ?? -1], vf.address);
      assert.equal(vf.netdevs[0]?.name, `${pf?.netdevs[0]?.name}v${vf.physfn?.index}`);
    }
    // VF n = PF RID + offset + n * stride.
    assert.deepEqual(pf0.sriov?.vfs.map(formatPciAddress).slice(0, 2), ['0000:06:02.0', '0000:06:02.1']);
    assert.deepEqual(pf1.sriov?.vfs.map(formatPciAddress).slice(0, 2), ['0000:06:0a.0', '0000:06:0a.1']);
  } finally {
    done();
  }
});

test('VF index order with more than 10 VFs comes from the link names, not the listing order', async () => {
  const { kernel, done } = await simHost();
  try {
    const pf = '/sys/bus/pci/devices/0000:06:00.0';
    await kernel.writeSysfs(`${pf}/sriov_numvfs`, '0');
    await kernel.writeSysfs(`${pf}/sriov_numvfs`, '12');
    // A listing sorts virtfn10 and virtfn11 before virtfn2.
    const listed = (await kernel.sysfs.list(pf)).filter((n) => n.startsWith('virtfn')).sort();
    assert.equal(listed[2], 'virtfn10');
    const inv = await readInventory(kernel.sysfs);
    const pf0 = findDevice(inv, parsePciAddress('0000:06:00.0'));
    const expected = Array.from({ length: 12 }, (_, i) => {
      const rid = 0x600 + 16 + i;
      return formatPciAddress({ domain: 0, bus: rid >> 8, slot: (rid >> 3) & 0x1f, function: rid & 7 });
    });
    assert.deepEqual(pf0?.sriov?.vfs.map(formatPciAddress), expected);
    const vf10 = findDevice(inv, parsePciAddress(expected[10] ?? ''));
    assert.equal(vf10?.physfn?.index, 10);
    const single = await readPciDevice(kernel.sysfs, parsePciAddress(expected[11] ?? ''));
    assert.equal(single.physfn?.index, 11);
    assert.equal(single.netdevs[0]?.name, 'enp6s0f0v11');
  } finally {
    done();
  }
});

test('readPciDevice: NO_DEVICE for a function the host does not have', async () => {
  const { kernel, done } = await simHost();
  try {
    await assert.rejects(readPciDevice(kernel.sysfs, parsePciAddress('0000:42:00.0')), hostError('NO_DEVICE'));
  } finally {
    done();
  }
});

test('node devices of the profile: libvirt XML of a PF, a VF and a netdev', async () => {
  const { kernel, done } = await simHost();
  try {
    const defs = nodeDevices(await readInventory(kernel.sysfs));
    const byName = new Map(defs.map((d) => [d.name, d]));
    const pf = byName.get('pci_0000_06_00_0');
    assert.ok(pf);
    const pfXml = formatNodeDevice(pf);
    assert.match(pfXml, /<parent>pci_0000_00_01_0<\/parent>/);
    assert.match(pfXml, /<driver>\n {4}<name>i40e<\/name>\n {2}<\/driver>/);
    assert.match(
      pfXml,
      /<capability type='virt_functions' maxCount='64'>\n(\s+<address domain='0x0000' bus='0x06' slot='0x02' function='0x[0-7]'\/>\n){8}\s+<\/capability>/,
    );
    assert.match(pfXml, /<link validity='cap' port='0' speed='8' width='8'\/>/);
    const vf = byName.get('pci_0000_06_02_3');
    assert.ok(vf);
    const vfXml = formatNodeDevice(vf);
    assert.match(
      vfXml,
      /<capability type='phys_function'>\n\s+<address domain='0x0000' bus='0x06' slot='0x00' function='0x0'\/>/,
    );
    assert.match(
      vfXml,
      /<iommuGroup number='\d+'>\n\s+<address domain='0x0000' bus='0x06' slot='0x02' function='0x3'\/>\n\s+<\/iommuGroup>/,
    );
    assert.match(vfXml, /<numa node='0'\/>/);
    const rp = byName.get('pci_0000_00_01_0');
    assert.ok(rp);
    assert.match(formatNodeDevice(rp), /<capability type='pci-bridge'\/>/);
    const net = byName.get('net_enp6s0f0_3c_fd_fe_a0_06_00');
    assert.ok(net);
    assert.equal(
      formatNodeDevice(net),
      [
        '<device>',
        '  <name>net_enp6s0f0_3c_fd_fe_a0_06_00</name>',
        '  <path>/sys/devices/pci0000:00/0000:00:01.0/0000:06:00.0/net/enp6s0f0</path>',
        '  <parent>pci_0000_06_00_0</parent>',
        "  <capability type='net'>",
        '    <interface>enp6s0f0</interface>',
        '    <address>3c:fd:fe:a0:06:00</address>',
        "    <link speed='10000' state='up'/>",
        "    <capability type='80203'/>",
        '  </capability>',
        '</device>',
        '',
      ].join('\n'),
    );
    // What we write reads back to the same definition.
    for (const d of [pf, vf, rp, net])
      assert.equal(formatNodeDevice(parseNodeDevice(formatNodeDevice(d))), formatNodeDevice(d));
  } finally {
    done();
  }
});

test("a device's uevent gives identity, class, modalias and driver in one read; without it the one-value files say the same", async () => {
  const { dir, kernel, done } = await simHost();
  try {
    const sysfs = kernel.sysfs;
    const vf = '/sys/bus/pci/devices/0000:06:02.0';
    const uevent = (await sysfs.read(`${vf}/uevent`)) ?? '';
    // The kernel's layout (pci_uevent): class "%04X", ids "%04X:%04X"; DRIVER= first.
    assert.match(
      uevent,
      /^DRIVER=iavf\nPCI_CLASS=20000\nPCI_ID=8086:154C\nPCI_SUBSYS_ID=8086:0000\nPCI_SLOT_NAME=0000:06:02.0\nMODALIAS=pci:v00008086d0000154Csv00008086sd00000000bc02sc00i00$/,
    );
    assert.deepEqual(parsePciUevent(uevent), {
      vendor: 0x8086,
      device: 0x154c,
      subsystemVendor: 0x8086,
      subsystemDevice: 0,
      class: 0x020000,
      modalias: 'pci:v00008086d0000154Csv00008086sd00000000bc02sc00i00',
      driver: 'iavf',
    });
    const withUevent = await readInventory(sysfs);
    for (const d of withUevent.devices) rmSync(join(dir, 'sys', 'bus', 'pci', 'devices', d.name, 'uevent'));
    assert.deepEqual(await readInventory(new DirSysfs(dir)), withUevent);
  } finally {
    done();
  }
});

test("every profile: a whole read's IOMMU group members (from each function's link) are the kernel's group listing", async () => {
  // scale-* repeat the device kinds of the others by the thousand: too slow for the unit tier.
  for (const profile of listProfiles().filter((p) => !p.startsWith('scale-'))) {
    const { kernel, done } = await simHost(profile);
    try {
      const inv = await readInventory(kernel.sysfs);
      for (const d of inv.devices) {
        if (d.iommuGroup === undefined) continue;
        const listed = (await kernel.sysfs.list(`/sys/kernel/iommu_groups/${d.iommuGroup}/devices`)).sort();
        assert.deepEqual(d.iommuGroupMembers.map(formatPciAddress), listed, `${profile}: ${d.name}`);
      }
    } finally {
      done();
    }
  }
});
