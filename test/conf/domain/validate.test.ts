import assert from 'node:assert/strict';
import { test } from 'node:test';
import { domainXmlProblems, readDomainXml } from '../../../src/conf/domain/read.ts';

/** A q35 guest with the given devices. Line 14 is the first device. */
function guest(devices: string, os = ''): string {
  return `<domain type='kvm'>
  <name>v</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>/k</kernel>${os}
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='pci' index='0' model='pcie-root'/>
    <controller type='pci' index='1' model='pcie-root-port'/>
    <controller type='pci' index='2' model='pcie-root-port'/>
${devices}
  </devices>
</domain>`;
}

const hostdev = (fn: number, extra = '', attrs = ''): string =>
  `<hostdev mode='subsystem' type='pci' managed='yes'${attrs}><source><address bus='6' slot='2' function='${fn}'/></source>${extra}</hostdev>`;
const vf = (fn: number, extra = '', type = 'hostdev'): string =>
  `<interface type='${type}' managed='yes'><mac address='52:54:00:00:00:0${fn}'/><source><address type='pci' bus='6' slot='2' function='${fn}'/></source>${extra}</interface>`;
const user = (extra = ''): string => `<interface type='user'><mac address='52:54:00:00:00:09'/>${extra}</interface>`;

/** [devices, os extra, expected (line, message) of each problem] */
const CASES: [string, string, string, [number, RegExp][]][] = [
  [
    'assigned=no with an address',
    hostdev(1, "<address type='pci' bus='1' slot='0' function='0'/>", " assigned='no'"),
    '',
    [[14, /assigned='no' forbids an <address>/]],
  ],
  [
    'assigned=yes contradicts unassigned',
    hostdev(1, "<address type='unassigned'/>", " assigned='yes'"),
    '',
    [[14, /contradicts <address type='unassigned'\/>/]],
  ],
  [
    'unassigned with boot order',
    hostdev(1, "<boot order='1'/><address type='unassigned'/>"),
    '',
    [[14, /unassigned host device cannot have a <boot order>/]],
  ],
  [
    'drive address on a hostdev',
    hostdev(1, "<address type='drive' controller='0'/>"),
    '',
    [[14, /must use 'pci' or 'unassigned'/]],
  ],
  [
    'unassigned address on an interface',
    vf(1, "<address type='unassigned'/>"),
    '',
    [[14, /guest address type 'unassigned' is not supported/]],
  ],
  [
    'hostdev teaming must be transient',
    hostdev(1, "<teaming type='persistent'/>"),
    '',
    [[14, /must have type='transient'/]],
  ],
  [
    'ROM tuning with ROM disabled',
    hostdev(1, "<rom enabled='no' bar='on'/>"),
    '',
    [[14, /ROM tuning is not supported/]],
  ],
  ['netdev port twice', hostdev(0, "<netdev port='1'/><netdev port='1'/>"), '', [[14, /port 1 is declared twice/]]],
  [
    'same VF twice',
    `${hostdev(1)}\n${vf(1)}`,
    '',
    [[15, /host PCI device 0000:06:02.1 is already used by another device \(line 14\)/]],
  ],
  [
    'same guest address twice',
    `${hostdev(1, "<address type='pci' bus='1' slot='0' function='0'/>")}\n${vf(2, "<address type='pci' bus='1' slot='0' function='0'/>")}`,
    '',
    [[15, /guest PCI address 0000:01:00.0 is already in use by the device at line 14/]],
  ],
  [
    'alias twice',
    `${hostdev(1, "<alias name='ua-x'/>")}\n${hostdev(2, "<alias name='ua-x'/>")}`,
    '',
    [[15, /alias 'ua-x' is already used/]],
  ],
  [
    'boot order twice',
    `${hostdev(1, "<boot order='1'/>")}\n${vf(2, "<boot order='1'/>")}`,
    '',
    [[15, /boot order 1 is already used/]],
  ],
  [
    'per-device boot with os boot',
    hostdev(1, "<boot order='1'/>"),
    "\n    <boot dev='hd'/>",
    [[15, /cannot be used together with os\/boot/]],
  ],
  [
    'transient names nobody',
    vf(1, "<teaming type='transient' persistent='ua-b'/>"),
    '',
    [[14, /names no <interface> with <teaming type='persistent'\/>/]],
  ],
  [
    'persistent side not virtio',
    user("<model type='e1000e'/><teaming type='persistent'/><alias name='ua-b'/>"),
    '',
    [[14, /must have <model type='virtio'\/>/]],
  ],
  [
    'persistent side without user alias',
    user("<model type='virtio'/><teaming type='persistent'/>"),
    '',
    [[14, /needs a user alias/]],
  ],
  [
    'transient on a user interface',
    user("<model type='virtio'/><teaming type='transient' persistent='ua-b'/>"),
    '',
    [
      [14, /teaming transient device must be type='hostdev'/],
      [14, /names no <interface>/],
    ],
  ],
  [
    'two transients on one persistent',
    `${user("<model type='virtio'/><teaming type='persistent'/><alias name='ua-b'/>")}\n${vf(1, "<teaming type='transient' persistent='ua-b'/>")}\n${hostdev(2, "<teaming type='transient' persistent='ua-b'/>")}`,
    '',
    [[16, /already the persistent side of another teaming pair/]],
  ],
  [
    'hostdev-hybrid takes no teaming',
    vf(1, "<teaming type='transient' persistent='ua-b'/>", 'hostdev-hybrid'),
    '',
    [
      [14, /teaming transient device must be/],
      [14, /hostdev-hybrid builds its own failover pair/],
      [14, /names no <interface>/],
    ],
  ],
  ['custom tap on a VF', vf(1, "<target dev='tap0'/>"), '', [[14, /custom tap device path is not supported/]]],
  [
    'openvswitch on a VF',
    vf(1, "<virtualport type='openvswitch'/>"),
    '',
    [[14, /virtualport type openvswitch is not supported/]],
  ],
  [
    'vlan on direct bridge mode',
    "<interface type='direct'><mac address='52:54:00:00:00:01'/><source dev='eth0' mode='bridge'/><vlan><tag id='3'/></vlan></interface>",
    '',
    [[14, /vlan tag not supported/]],
  ],
  [
    'pci controller index twice',
    "<controller type='pci' index='1' model='pcie-root-port'/>",
    '',
    [[14, /multiple controllers of type pci with index 1/]],
  ],
  [
    'pci-root on q35',
    "<controller type='pci' index='3' model='pci-root'/>",
    '',
    [
      [14, /must have index 0/],
      [14, /a q35 machine has pcie-root, not pci-root/],
    ],
  ],
];

test('validation rules: each problem names the element and its line', async (t) => {
  for (const [name, devices, os, expected] of CASES) {
    await t.test(name, () => {
      const problems = domainXmlProblems(guest(devices, os));
      assert.equal(problems.length, expected.length, problems.map((p) => p.message).join('\n'));
      expected.forEach(([line, re], i) => {
        assert.equal(problems[i]?.line, line, problems[i]?.message);
        assert.match(problems[i]?.message ?? '', re);
        assert.equal(problems[i]?.code === 'XML_INVALID' || problems[i]?.code === 'CONFIG_UNSUPPORTED', true);
      });
    });
  }
});

test('the valid forms of the same devices pass', () => {
  const ok = guest(
    [
      hostdev(0, "<netdev port='1'><mac address='52:54:00:01:02:03'/></netdev><netdev port='2'/>"),
      hostdev(1, '', " assigned='no'"),
      hostdev(2, "<address type='unassigned'/>"),
      user("<model type='virtio'/><teaming type='persistent'/><alias name='ua-b'/>"),
      vf(
        3,
        "<teaming type='transient' persistent='ua-b'/><boot order='1'/><address type='pci' bus='1' slot='0' function='0'/>",
      ),
      vf(4, "<vlan><tag id='4095'/></vlan>", 'hostdev-hybrid'),
      "<interface type='direct'><mac address='52:54:00:00:00:07'/><source dev='eth0' mode='passthrough'/><vlan><tag id='3'/></vlan></interface>",
    ].join('\n'),
  );
  assert.deepEqual(domainXmlProblems(ok), []);
  assert.equal(readDomainXml(ok).devices.hostdevs.length, 3);
});
