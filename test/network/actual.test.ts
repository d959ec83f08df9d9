import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDomainXml } from '../../src/conf/domain/format.ts';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { readNetworkXml } from '../../src/conf/network/read.ts';
import { readDevicePoolXml } from '../../src/conf/pool/read.ts';
import { poolWants, withGrants } from '../../src/network/actual.ts';
import type { Member } from '../../src/network/members.ts';
import { guestNumaNodes } from '../../src/network/numa.ts';
import { parseCpuset } from '../../src/conf/cpuset.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';

const NET = readNetworkXml(`<network>
  <name>vfs</name>
  <forward mode='hostdev' managed='yes'><driver name='vfio'/><pf dev='enp6s0f0'/></forward>
  <vlan><tag id='10'/></vlan>
  <portgroup name='web' trustGuestRxFilters='yes'><vlan><tag id='20'/></vlan></portgroup>
</network>`);
const POOL = readDevicePoolXml(`<devicepool managed='yes'><name>gpus</name><select vendor='10de'/></devicepool>`);
const defs = { network: () => NET, devicePool: () => POOL };

const domain = (ifaces: string, extra = '') =>
  readDomainXml(`<domain type='kvm'><name>web1</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='q35'>hvm</type></os>${extra}<devices>${ifaces}
<hostdev mode='subsystem' type='pci' managed='no'><source pool='gpus' tags='migratable'/></hostdev>
</devices></domain>`);
const VF0: Member = {
  address: { domain: 0, bus: 6, slot: 2, function: 3 },
  bdf: '0000:06:02.3',
  present: true,
  tags: [],
};
const GPU: Member = {
  address: { domain: 0, bus: 0x3b, slot: 0, function: 0 },
  bdf: '0000:3b:00.0',
  present: true,
  tags: [],
};

test('vlan and trust on the VF: interface > portgroup > network', () => {
  const vlanOf = (iface: string): number | undefined => {
    const live = withGrants(domain(iface), [VF0, GPU], defs);
    const i = live.devices.interfaces[0];
    assert.ok(i?.type === 'network' && i.actual);
    return i.actual.vlan?.tags[0]?.id;
  };
  const mac = "<mac address='52:54:00:aa:00:01'/>";
  assert.equal(vlanOf(`<interface type='network'>${mac}<source network='vfs'/></interface>`), 10);
  assert.equal(vlanOf(`<interface type='network'>${mac}<source network='vfs' portgroup='web'/></interface>`), 20);
  assert.equal(
    vlanOf(
      `<interface type='network'>${mac}<source network='vfs' portgroup='web'/><vlan><tag id='30'/></vlan></interface>`,
    ),
    30,
  );
  const withPg = withGrants(
    domain(`<interface type='network'>${mac}<source network='vfs' portgroup='web'/></interface>`),
    [VF0, GPU],
    defs,
  );
  const i = withPg.devices.interfaces[0];
  assert.ok(i?.type === 'network');
  assert.equal(i.actual?.trustGuestRxFilters, true);
  assert.equal(i.actual?.source.managed, true);
  assert.equal(i.actual?.source.driver?.name, 'vfio');
  assert.throws(
    () =>
      withGrants(
        domain(`<interface type='network'>${mac}<source network='vfs'/><virtualport type='openvswitch'/></interface>`),
        [VF0, GPU],
        defs,
      ),
    (e: unknown) =>
      e instanceof PassthruError &&
      e.message ===
        "<virtualport type='openvswitch'> not supported for network 'vfs' which uses an SR-IOV Virtual Function via PCI passthrough",
  );
});

test('the live XML shows the VF and the pool device; the inactive and migratable XML never name them', () => {
  const def = domain("<interface type='network'><mac address='52:54:00:aa:00:01'/><source network='vfs'/></interface>");
  const wants = poolWants(def, new Set());
  assert.deepEqual(
    wants.map((w) => [w.ref.kind, w.ref.name, w.label, w.request.requireTags]),
    [
      ['network', 'vfs', 'interface 52:54:00:aa:00:01', undefined],
      ['devicepool', 'gpus', "hostdev of pool 'gpus'", ['migratable']],
    ],
  );
  const live = prepareLiveDef(withGrants(def, [VF0, GPU], defs));
  const xml = formatDomainXml(live);
  assert.match(xml, /<interface type='hostdev' managed='yes'>/);
  assert.match(xml, /<address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x3'\/>/);
  assert.match(xml, /<vlan>\s*<tag id='10'\/>\s*<\/vlan>/);
  assert.match(xml, /<source pool='gpus' tags='migratable'>\s*<address domain='0x0000' bus='0x3b'/);
  // The pool decides managed (devices of an unmanaged pool stay detached between guests).
  assert.match(xml, /<hostdev mode='subsystem' type='pci' managed='yes'>/);
  assert.equal(live.devices.interfaces[0]?.alias, 'hostdev0', 'a VF interface is a hostdev for QEMU');
  for (const flags of [{ inactive: true }, { migratable: true }]) {
    const portable = formatDomainXml(live, flags);
    assert.doesNotMatch(portable, /bus='0x06'|bus='0x3b'/, JSON.stringify(flags));
    assert.match(portable, /<interface type='network'>/);
    assert.match(portable, /<source pool='gpus' tags='migratable'\/>/);
  }
  // The status XML keeps the original interface and the <actual> device, and reads back.
  const status = formatDomainXml(live, { status: true });
  assert.match(status, /<source network='vfs'\/>\s*<actual type='hostdev' managed='yes'>/);
  const back = readDomainXml(status);
  const i = back.devices.interfaces[0];
  assert.ok(i?.type === 'network');
  assert.equal(i.actual?.source.address.function, 3);
  assert.equal(back.devices.hostdevs[0]?.source.pool, 'gpus');
});

test("the guest's NUMA nodes: numatune memory first, else pinned vCPUs through the host's CPU map", () => {
  const cpuNode = new Map([
    [0, 0],
    [1, 0],
    [2, 1],
    [3, 1],
  ]);
  const iface = '';
  assert.deepEqual(
    [...guestNumaNodes(domain(iface, "<numatune><memory mode='strict' nodeset='1'/></numatune>"), cpuNode)],
    [1],
  );
  assert.deepEqual([...guestNumaNodes(domain(iface), cpuNode)], [], 'not pinned: no preference');
  const pinned = domain(iface, "<cputune><vcpupin vcpu='0' cpuset='2-3'/></cputune>");
  assert.deepEqual([...guestNumaNodes(pinned, cpuNode)], [1]);
  assert.deepEqual(parseCpuset('0-3,^2,8'), [0, 1, 3, 8]);
  assert.throws(() => parseCpuset('1-x'), /is not a CPU or node set/);
});

test('spoof check, link state and TX rates: interface > portgroup > network, kept through the status XML', () => {
  const net = readNetworkXml(`<network spoofCheck='no'>
  <name>vfs</name>
  <forward mode='hostdev' managed='yes'><pf dev='enp6s0f0'/></forward>
  <bandwidth><outbound average='12500' floor='1250'/></bandwidth>
  <link state='up'/>
  <portgroup name='pg' spoofCheck='yes'><link state='down'/></portgroup>
</network>`);
  const with2 = { network: () => net, devicePool: () => POOL };
  const actualOf = (inner: string) => {
    const live = withGrants(
      domain(`<interface type='network'><mac address='52:54:00:aa:00:01'/>${inner}</interface>`),
      [VF0, GPU],
      with2,
    );
    const back = readDomainXml(formatDomainXml(live, { status: true }));
    const i = back.devices.interfaces[0];
    assert.ok(i?.type === 'network' && i.actual);
    const a = i.actual;
    return [a.spoofCheck, a.linkState, a.bandwidth?.outbound.average, a.bandwidth?.outbound.floor];
  };
  assert.deepEqual(actualOf("<source network='vfs'/>"), [false, 'up', 12500, 1250]);
  assert.deepEqual(actualOf("<source network='vfs' portgroup='pg'/>"), [true, 'down', 12500, 1250]);
  assert.deepEqual(
    actualOf(
      "<source network='vfs' portgroup='pg'/><link state='up'/><bandwidth><outbound average='25000'/></bandwidth>",
    ),
    [true, 'up', 25000, undefined],
  );
});
